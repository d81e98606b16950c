//! Hostile inputs, made by code: the crafted files the regression tests feed the parsers,
//! and the seed corpus the fuzz targets mutate. Nothing here is a fixture on disk.

use sparselab::data::IMAGE_BYTES;
use sparselab::data::cifar_binary::{Cifar, encode_records};
use sparselab::train::TrainConfig;
use sparselab::train::checkpoint::{Checkpoint, CheckpointMeta, EpochSums, NamedTensor, Payload};
use std::io::Write;

/// An uncompressed tar of `files` (path, bytes).
pub fn tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (p, b) in files {
        crate::tar_add(&mut builder, p, b);
    }
    builder.into_inner().expect("tar")
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

/// One tar header that declares a 2^62-byte CIFAR batch file, and no data: about 100
/// bytes gzipped, and a reader that trusts the header asks for 4 EiB.
pub fn huge_declared_entry() -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header
        .set_path("cifar-10-batches-bin/data_batch_1.bin")
        .expect("path");
    header.set_size(1 << 62);
    header.set_mode(0o644);
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 1024]);
    gzip(&bytes)
}

/// A gzip bomb: one entry named `name` of `inflated` zero bytes (a few KB compressed).
pub fn bomb(name: &str, inflated: usize) -> Vec<u8> {
    gzip(&tar(&[(name.to_string(), vec![0u8; inflated])]))
}

/// `tgz` with its gzip CRC damaged (the data inflate fine, the checksum does not match).
pub fn bad_crc(mut tgz: Vec<u8>) -> Vec<u8> {
    let n = tgz.len();
    tgz[n - 8] ^= 0x5A;
    tgz
}

/// Images whose pixels encode their index.
pub fn images(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (0..IMAGE_BYTES).map(move |p| ((i * 31 + p) % 251) as u8))
        .collect()
}

/// The files of a tiny official-format CIFAR-10 release, `per_batch` images per file.
pub fn cifar10_files(per_batch: usize) -> Vec<(String, Vec<u8>)> {
    let labels = |b: usize| -> Vec<u8> { (0..per_batch).map(|i| ((i + b) % 10) as u8).collect() };
    let mut files: Vec<(String, Vec<u8>)> = (1..=5)
        .map(|b| {
            (
                format!("cifar-10-batches-bin/data_batch_{b}.bin"),
                encode_records(Cifar::Ten, &images(per_batch), &labels(b), &[]),
            )
        })
        .collect();
    files.push((
        "cifar-10-batches-bin/test_batch.bin".into(),
        encode_records(Cifar::Ten, &images(per_batch), &labels(0), &[]),
    ));
    files.push((
        "cifar-10-batches-bin/batches.meta.txt".into(),
        b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n".to_vec(),
    ));
    files
}

/// A small PNG of one colour.
pub fn png(side: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(side, side, image::Rgb(rgb));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("png");
    out
}

/// An image folder with `per_class` images in each of `train` and `test` classes.
pub fn image_folder_files(
    train: &[&str],
    test: &[&str],
    per_class: usize,
) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for (split, classes) in [("train", train), ("test", test)] {
        for (c, class) in classes.iter().enumerate() {
            for i in 0..per_class {
                let shade = (40 * c + 3 * i) as u8;
                files.push((
                    format!("{split}/{class}/{i}.png"),
                    png(8, [shade, 255 - shade, 128]),
                ));
            }
        }
    }
    files
}

/// A valid checkpoint of a made-up run: every section present, small tensors.
pub fn checkpoint() -> Checkpoint {
    let f32s = |n: usize| Payload::F32((0..n).map(|i| i as f32 * 0.25 - 1.0).collect());
    Checkpoint {
        meta: CheckpointMeta {
            step: 7,
            config: TrainConfig::default(),
            num_classes: 2,
            class_names: vec!["a".into(), "b".into()],
            normalization: sparselab::data::Normalization {
                mean: [0.5; 3],
                std: [0.25; 3],
            },
            epoch_sums: EpochSums::default(),
            best_val_accuracy: Some(0.5),
            train_flops: 1e6,
            dyrelu_phase: None,
            sparse_kernel_layers: Some(vec![]),
            dataset_fingerprint: Some("2 images".into()),
        },
        tensors: vec![
            NamedTensor {
                name: "param:stem.weight".into(),
                dims: vec![12],
                payload: Some(f32s(12)),
            },
            NamedTensor {
                name: "momentum:stem.weight".into(),
                dims: vec![12],
                payload: Some(f32s(12)),
            },
            NamedTensor {
                name: "mask:stem.weight".into(),
                dims: vec![3, 4],
                payload: Some(Payload::Bits((0..12).map(|i| i % 3 == 0).collect())),
            },
        ],
    }
}

/// `checkpoint()` in the format before checksums (magic `ckpt2`, no CRCs): mutations of it
/// reach the header and offset checks instead of stopping at a checksum.
pub fn checkpoint_v2() -> Vec<u8> {
    let bytes = checkpoint().encode();
    let hlen = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")) as usize;
    let mut header: serde_json::Value =
        serde_json::from_slice(&bytes[24..24 + hlen]).expect("a JSON header");
    for t in header["tensors"].as_array_mut().expect("tensors") {
        t.as_object_mut().expect("an entry").remove("crc32");
    }
    let header = serde_json::to_vec(&header).expect("serialises");
    let mut out = b"sparselab-ckpt2\n".to_vec();
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&bytes[24 + hlen + 4..]);
    out
}
