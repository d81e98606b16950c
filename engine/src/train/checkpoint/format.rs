//! The checkpoint file: a magic line, the header's length, a JSON header and its CRC-32,
//! then raw little-endian data, each tensor with its CRC-32 in the header. Every length,
//! offset and checksum is verified on load; files are written atomically.

use super::{Checkpoint, CheckpointError, CheckpointMeta, NamedTensor, Payload};
use serde::{Deserialize, Serialize};
use std::path::Path;

const MAGIC: &[u8; 16] = b"sparselab-ckpt3\n";
/// The format before checksums: still read (with every bound checked), never written.
const MAGIC_V2: &[u8; 16] = b"sparselab-ckpt2\n";
/// A header larger than this is not one of ours (a ResNet-50's is well under 1 MiB).
const MAX_HEADER_BYTES: usize = 64 << 20;

/// What a tensor's name may start with (see `Checkpoint::tensors`).
const KNOWN_PREFIXES: [&str; 4] = ["param:", "momentum:", "mask:", "ever:"];

#[derive(Serialize, Deserialize)]
struct Header {
    meta: CheckpointMeta,
    tensors: Vec<TensorEntry>,
}

#[derive(Serialize, Deserialize)]
struct TensorEntry {
    name: String,
    dims: Vec<usize>,
    kind: String,
    offset: usize,
    len: usize,
    /// CRC-32 of the tensor's bytes (absent in the format before checksums).
    #[serde(default)]
    crc32: Option<u32>,
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let mut entries = Vec::new();
        for t in &self.tensors {
            let offset = body.len();
            let kind = match t.payload.as_ref().expect("tensor payload") {
                Payload::F32(v) => {
                    body.reserve(v.len() * 4);
                    for x in v {
                        body.extend_from_slice(&x.to_le_bytes());
                    }
                    "f32"
                }
                Payload::Bits(v) => {
                    let mut bytes = vec![0u8; v.len().div_ceil(8)];
                    for (i, &b) in v.iter().enumerate() {
                        if b {
                            bytes[i / 8] |= 1 << (i % 8);
                        }
                    }
                    body.extend_from_slice(&bytes);
                    "bits"
                }
            };
            entries.push(TensorEntry {
                name: t.name.clone(),
                dims: t.dims.clone(),
                kind: kind.into(),
                offset,
                len: body.len() - offset,
                crc32: Some(crc32fast::hash(&body[offset..])),
            });
        }
        let header = serde_json::to_vec(&Header {
            meta: self.meta.clone(),
            tensors: entries,
        })
        .expect("header serialises");
        let mut out = Vec::with_capacity(MAGIC.len() + 12 + header.len() + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&crc32fast::hash(&header).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    pub fn decode(bytes: &[u8], origin: &str) -> Result<Self, CheckpointError> {
        let fail = |m: String| CheckpointError {
            origin: origin.to_string(),
            message: m,
        };
        let damaged = |what: String| {
            fail(format!(
                "{what}: the file is damaged (a bad disk, copy or download); use another copy \
                 or an earlier checkpoint"
            ))
        };
        let magic = bytes.get(..MAGIC.len());
        let checksummed = magic == Some(MAGIC.as_slice());
        if !checksummed && magic != Some(MAGIC_V2.as_slice()) {
            return Err(fail(
                "not a sparselab checkpoint (wrong magic bytes)".into(),
            ));
        }
        let start = MAGIC.len() + 8;
        let hlen = bytes
            .get(MAGIC.len()..start)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| {
                fail("truncated: the header is cut short; the file is incomplete".into())
            })?;
        if hlen > MAX_HEADER_BYTES as u64 {
            return Err(damaged(format!("the header claims {hlen} bytes")));
        }
        let hlen = hlen as usize;
        let body_start = start + hlen + if checksummed { 4 } else { 0 };
        if bytes.len() < body_start {
            return Err(fail(
                "truncated: the header is cut short; the file is incomplete".into(),
            ));
        }
        let header_bytes = &bytes[start..start + hlen];
        if checksummed {
            let stored = u32::from_le_bytes(bytes[start + hlen..body_start].try_into().expect("4"));
            if crc32fast::hash(header_bytes) != stored {
                return Err(damaged("the header's checksum does not match".into()));
            }
        }
        let header: Header = serde_json::from_slice(header_bytes).map_err(|e| {
            fail(format!(
                "unreadable header ({e}); written by another version?"
            ))
        })?;
        header
            .meta
            .config
            .validate_settings()
            .map_err(|e| fail(format!("its run config is invalid: {e}")))?;
        let body = &bytes[body_start..];
        let mut tensors = Vec::with_capacity(header.tensors.len().min(4096));
        // Tensors lie back to back in header order and fill the body exactly.
        let mut expected_offset = 0usize;
        for e in header.tensors {
            if !KNOWN_PREFIXES.iter().any(|p| e.name.starts_with(p)) {
                return Err(damaged(format!("unknown tensor name {:?}", e.name)));
            }
            let numel = e
                .dims
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| damaged(format!("tensor {} has an impossible shape", e.name)))?;
            let end = e.offset.checked_add(e.len);
            let raw = match end {
                Some(end) if e.offset == expected_offset => body.get(e.offset..end),
                _ => None,
            }
            .ok_or_else(|| {
                fail(format!(
                    "truncated or damaged: tensor {} does not lie where the header says \
                     (offset {}, {} bytes, file body {} bytes)",
                    e.name,
                    e.offset,
                    e.len,
                    body.len()
                ))
            })?;
            expected_offset = e.offset + e.len;
            if checksummed && e.crc32 != Some(crc32fast::hash(raw)) {
                return Err(damaged(format!(
                    "tensor {}'s checksum does not match",
                    e.name
                )));
            }
            let payload = match e.kind.as_str() {
                "f32" if numel.checked_mul(4) == Some(e.len) => Payload::F32(
                    raw.chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                        .collect(),
                ),
                "bits" if e.len == numel.div_ceil(8) => {
                    Payload::Bits((0..numel).map(|i| raw[i / 8] >> (i % 8) & 1 == 1).collect())
                }
                _ => {
                    return Err(fail(format!(
                        "tensor {} has a size that does not match its shape",
                        e.name
                    )));
                }
            };
            tensors.push(NamedTensor {
                name: e.name,
                dims: e.dims,
                payload: Some(payload),
            });
        }
        if expected_offset != body.len() {
            return Err(damaged(format!(
                "{} bytes follow the last tensor",
                body.len() - expected_offset
            )));
        }
        Ok(Checkpoint {
            meta: header.meta,
            tensors,
        })
    }

    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|e| CheckpointError {
            origin: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        Self::decode(&bytes, &path.display().to_string())
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        write_atomic(path, &self.encode())
    }
}

/// Writes `bytes` to `path` so that `path` holds either the old or the new content, never
/// a mix: temporary file in the same folder, fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // A full disk: the old file stays as it was, and no partial copy is left behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(std::io::Error::new(
            e.kind(),
            format!("cannot write {}: {e}", path.display()),
        ));
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Normalization;
    use crate::train::TrainConfig;
    use crate::train::checkpoint::EpochSums;

    fn sample() -> Checkpoint {
        Checkpoint {
            meta: CheckpointMeta {
                step: 3,
                config: TrainConfig::default(),
                num_classes: 2,
                class_names: vec!["a".into(), "b".into()],
                normalization: Normalization {
                    mean: [0.5; 3],
                    std: [0.25; 3],
                },
                epoch_sums: EpochSums::default(),
                best_val_accuracy: None,
                train_flops: 0.0,
                dyrelu_phase: None,
                sparse_kernel_layers: None,
                dataset_fingerprint: None,
            },
            tensors: vec![
                NamedTensor {
                    name: "param:w".into(),
                    dims: vec![4],
                    payload: Some(Payload::F32(vec![1.0, -2.0, 3.5, 0.0])),
                },
                NamedTensor {
                    name: "mask:w".into(),
                    dims: vec![2, 2],
                    payload: Some(Payload::Bits(vec![true, false, false, true])),
                },
            ],
        }
    }

    /// Edits the JSON header and writes it back with a valid checksum: what a crafted
    /// (not merely damaged) file looks like.
    fn craft(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
        let start = MAGIC.len() + 8;
        let hlen = u64::from_le_bytes(bytes[MAGIC.len()..start].try_into().unwrap()) as usize;
        let mut header: serde_json::Value =
            serde_json::from_slice(&bytes[start..start + hlen]).unwrap();
        edit(&mut header);
        let header = serde_json::to_vec(&header).unwrap();
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&crc32fast::hash(&header).to_le_bytes());
        out.extend_from_slice(&bytes[start + hlen + 4..]);
        out
    }

    fn error(bytes: &[u8]) -> String {
        Checkpoint::decode(bytes, "c.bin").unwrap_err().to_string()
    }

    #[test]
    fn round_trips() {
        let c = sample();
        assert_eq!(Checkpoint::decode(&c.encode(), "c.bin").unwrap(), c);
    }

    #[test]
    fn a_flipped_bit_anywhere_is_caught() {
        let bytes = sample().encode();
        // In the tensor data, and in the header.
        for at in [bytes.len() - 3, MAGIC.len() + 8 + 20] {
            let mut b = bytes.clone();
            b[at] ^= 0x40;
            let err = error(&b);
            assert!(err.contains("c.bin") && err.contains("checksum"), "{err}");
        }
    }

    #[test]
    fn crafted_lengths_and_offsets_are_errors_not_panics() {
        let bytes = sample().encode();
        let mut huge = bytes.clone();
        huge[MAGIC.len()..MAGIC.len() + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(error(&huge).contains("header claims"), "{}", error(&huge));
        let moved = craft(&bytes, |h| h["tensors"][0]["offset"] = 4.into());
        assert!(
            error(&moved).contains("does not lie where"),
            "{}",
            error(&moved)
        );
        let overflow = craft(&bytes, |h| {
            h["tensors"][1]["offset"] = serde_json::json!(usize::MAX);
        });
        assert!(error(&overflow).contains("param:w") || error(&overflow).contains("mask:w"));
        let shape = craft(&bytes, |h| {
            h["tensors"][0]["dims"] = serde_json::json!([usize::MAX, 4]);
        });
        assert!(
            error(&shape).contains("impossible shape"),
            "{}",
            error(&shape)
        );
        let renamed = craft(&bytes, |h| h["tensors"][0]["name"] = "momentom:w".into());
        assert!(
            error(&renamed).contains("unknown tensor name"),
            "{}",
            error(&renamed)
        );
        let config = craft(&bytes, |h| {
            h["meta"]["config"]["eval_batch_size"] = 0.into();
        });
        assert!(
            error(&config).contains("eval_batch_size"),
            "{}",
            error(&config)
        );
        let seed = craft(&bytes, |h| {
            h["meta"]["config"]["seed"] = serde_json::json!(u64::MAX);
        });
        assert!(error(&seed).contains("out of range"), "{}", error(&seed));
        for cut in [0, 10, MAGIC.len() + 3, bytes.len() - 1] {
            assert!(Checkpoint::decode(&bytes[..cut], "c.bin").is_err());
        }
    }

    #[test]
    fn the_format_before_checksums_still_loads() {
        let c = sample();
        let bytes = c.encode();
        let start = MAGIC.len() + 8;
        let hlen = u64::from_le_bytes(bytes[MAGIC.len()..start].try_into().unwrap()) as usize;
        // A v2 header has no checksums at all.
        let mut header: serde_json::Value =
            serde_json::from_slice(&bytes[start..start + hlen]).unwrap();
        for t in header["tensors"].as_array_mut().unwrap() {
            t.as_object_mut().unwrap().remove("crc32");
        }
        let header = serde_json::to_vec(&header).unwrap();
        let mut v2 = MAGIC_V2.to_vec();
        v2.extend_from_slice(&(header.len() as u64).to_le_bytes());
        v2.extend_from_slice(&header);
        v2.extend_from_slice(&bytes[start + hlen + 4..]);
        assert_eq!(Checkpoint::decode(&v2, "old.bin").unwrap(), c);
    }
}
