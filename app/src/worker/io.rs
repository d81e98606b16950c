//! Getting a dataset's bytes into the worker: a picked or dropped file read in slices,
//! a URL streamed, each with progress messages, then decoded.

use super::post;
use crate::protocol::FromWorker;
use js_sys::{Reflect, Uint8Array};
use sparselab::data::{DataKind, ImageSet, load_split_from_bytes};
use sparselab::train::TrainConfig;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::File;

/// Files are read in slices of this size, with a progress message after each.
const CHUNK_BYTES: f64 = 8.0 * 1024.0 * 1024.0;

pub(super) fn decode(config: &TrainConfig, bytes: &[u8], origin: &str) -> Result<ImageSet, String> {
    post(&FromWorker::Loading {
        what: format!("decoding {origin}"),
        done: bytes.len() as u64,
        total: Some(bytes.len() as u64),
    });
    if config.data.kind == DataKind::Synthetic {
        return Err("choose the dataset's format (CIFAR-10, CIFAR-100 or image folder) before loading a file".into());
    }
    load_split_from_bytes(&config.data, bytes, origin, false).map_err(|e| e.to_string())
}

/// Reads a picked or dropped file in `CHUNK_BYTES` slices, reporting progress.
pub(super) async fn read_file(file: &File) -> Result<Vec<u8>, String> {
    let total = file.size();
    let mut bytes = Vec::with_capacity(total as usize);
    let mut offset = 0.0;
    while offset < total {
        let end = (offset + CHUNK_BYTES).min(total);
        let blob = file
            .slice_with_f64_and_f64(offset, end)
            .map_err(|e| format!("cannot read {}: {e:?}", file.name()))?;
        let buffer = JsFuture::from(blob.array_buffer())
            .await
            .map_err(|e| format!("cannot read {}: {e:?}", file.name()))?;
        bytes.extend_from_slice(&Uint8Array::new(&buffer).to_vec());
        offset = end;
        post(&FromWorker::Loading {
            what: format!("reading {}", file.name()),
            done: offset as u64,
            total: Some(total as u64),
        });
    }
    Ok(bytes)
}

/// Downloads a dataset, streaming the body (progress after every chunk).
pub(super) async fn fetch_url(url: &str) -> Result<Vec<u8>, String> {
    let fail = |e: JsValue| {
        format!(
            "cannot download {url}: {e:?} (is the address right, and does the server allow cross-origin requests?)"
        )
    };
    let response: web_sys::Response = JsFuture::from(super::scope().fetch_with_str(url))
        .await
        .map_err(fail)?
        .unchecked_into();
    if !response.ok() {
        return Err(format!("cannot download {url}: HTTP {}", response.status()));
    }
    let total = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    let body = response
        .body()
        .ok_or(format!("{url}: the response has no body"))?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(fail)?;
        if Reflect::get(&chunk, &"done".into())
            .map(|d| d.is_truthy())
            .unwrap_or(true)
        {
            break;
        }
        let value = Reflect::get(&chunk, &"value".into()).map_err(fail)?;
        bytes.extend_from_slice(&Uint8Array::new(&value).to_vec());
        post(&FromWorker::Loading {
            what: format!("downloading {url}"),
            done: bytes.len() as u64,
            total,
        });
    }
    Ok(bytes)
}
