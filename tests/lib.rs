//! Helpers shared by the end-to-end tests.

pub mod hostile;

use std::path::{Path, PathBuf};

/// The shared data folder beside the project root (`../shared/data`), if present.
pub fn shared_data(file: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .to_path_buf();
    let p = root.parent()?.join("shared").join("data").join(file);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "skipped: {} is absent (see the README's Data section)",
            p.display()
        );
        None
    }
}

/// Appends a file to a tar builder.
pub fn tar_add(builder: &mut tar::Builder<impl std::io::Write>, path: &str, bytes: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, path, bytes)
        .expect("tar append");
}

/// Writes a `.tar.gz` holding `files` (path, bytes).
pub fn write_tar_gz(dest: &Path, files: &[(String, Vec<u8>)]) {
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dest).unwrap(),
        flate2::Compression::fast(),
    );
    let mut builder = tar::Builder::new(gz);
    for (p, b) in files {
        tar_add(&mut builder, p, b);
    }
    builder.into_inner().unwrap().finish().unwrap();
}

/// A config from `key=value` settings on top of the defaults (as `--set` takes them).
pub fn config_from(base: &[&str], extra: &[&str]) -> sparselab::train::TrainConfig {
    let sets: Vec<&str> = base.iter().chain(extra).copied().collect();
    let sets = sparselab::train::Setting::parse_all(&sets).unwrap();
    sparselab::train::TrainConfig::load(None, &sets).unwrap()
}

/// A trainer on the built-in synthetic set, on the Flex CPU backend.
pub fn synthetic_trainer(c: &sparselab::train::TrainConfig) -> sparselab::train::Trainer {
    use sparselab::train::{TrainData, Trainer};
    let set = sparselab::data::synthetic::generate(c.data.synthetic_size, c.seed);
    Trainer::new(
        c.clone(),
        TrainData::new(set, c.data.val_fraction, c.seed),
        sparselab::burn::tensor::Device::flex().autodiff(),
    )
    .unwrap()
}
