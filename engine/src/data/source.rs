//! Which dataset a run uses, as written in a config file, and loading it.

use super::cifar_binary::{self, Cifar, Split};
use super::{DataError, ImageSet, image_folder, synthetic};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataKind {
    /// Built-in procedural shapes: needs no file.
    Synthetic,
    /// Official CIFAR-10 binary release (`.tar.gz` or extracted folder).
    Cifar10,
    /// Official CIFAR-100 binary release, fine labels.
    Cifar100,
    /// Official CIFAR-100 binary release, coarse labels.
    Cifar100Coarse,
    /// `root/<class>/*.jpg|png`, as a folder or a `.tar.gz`.
    Folder,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub kind: DataKind,
    pub path: Option<PathBuf>,
    /// Fraction of the training images held out for validation (stratified, seeded).
    pub val_fraction: f64,
    /// Images in the synthetic set (training split; the test split has a fifth of it).
    pub synthetic_size: usize,
    /// Pad-and-crop plus horizontal-flip augmentation of training batches.
    pub augment: bool,
    /// Use only this many training images (0 = all): for quick runs and tests.
    pub limit: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            kind: DataKind::Synthetic,
            path: None,
            val_fraction: 0.1,
            synthetic_size: 10_000,
            augment: true,
            limit: 0,
        }
    }
}

/// The synthetic set is generated in memory (3 KiB an image): 1M images is 3 GiB.
const MAX_SYNTHETIC_IMAGES: usize = 1_000_000;

impl DataConfig {
    /// Every check, the data file's existence included.
    pub fn validate(&self) -> Result<(), DataError> {
        self.validate_values()?;
        // The browser has no file system: there the page hands over the file's bytes.
        if let Some(p) = &self.path
            && self.kind != DataKind::Synthetic
            && cfg!(not(target_arch = "wasm32"))
            && !p.exists()
        {
            return Err(DataError::Invalid(format!(
                "data.path = {} does not exist{}",
                p.display(),
                match self.kind {
                    DataKind::Cifar10 => "; get it with `sparselab data fetch cifar10 --to DIR`",
                    DataKind::Cifar100 | DataKind::Cifar100Coarse =>
                        "; get it with `sparselab data fetch cifar100 --to DIR`",
                    _ => "",
                }
            )));
        }
        Ok(())
    }

    /// The settings alone (a checkpoint's config is checked so, wherever its data is now).
    pub fn validate_values(&self) -> Result<(), DataError> {
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(DataError::Invalid(format!(
                "data.val_fraction = {} must be in [0, 1)",
                self.val_fraction
            )));
        }
        if self.kind != DataKind::Synthetic && self.path.is_none() {
            return Err(DataError::Invalid(format!(
                "data.kind = {:?} needs data.path (a .tar.gz or a folder)",
                self.kind
            )));
        }
        if self.kind == DataKind::Synthetic && self.synthetic_size < 20 {
            return Err(DataError::Invalid(
                "data.synthetic_size must be at least 20".into(),
            ));
        }
        if self.synthetic_size > MAX_SYNTHETIC_IMAGES {
            return Err(DataError::Invalid(format!(
                "data.synthetic_size = {} is more than {MAX_SYNTHETIC_IMAGES} images",
                self.synthetic_size
            )));
        }
        Ok(())
    }
}

/// Loads the training (`test = false`) or the test split of the configured dataset.
pub fn load_split(config: &DataConfig, test: bool, seed: u64) -> Result<ImageSet, DataError> {
    config.validate()?;
    let split = if test { Split::Test } else { Split::Train };
    let path = config.path.clone().unwrap_or_default();
    let mut set = match config.kind {
        DataKind::Synthetic => {
            // The test split comes from its own seed stream: never the training images.
            let (n, s) = if test {
                (config.synthetic_size / 5, seed ^ 0x7E57)
            } else {
                (config.synthetic_size, seed)
            };
            synthetic::generate(n, s)
        }
        DataKind::Cifar10 => cifar_binary::load(&path, Cifar::Ten, split)?,
        DataKind::Cifar100 => cifar_binary::load(&path, Cifar::HundredFine, split)?,
        DataKind::Cifar100Coarse => cifar_binary::load(&path, Cifar::HundredCoarse, split)?,
        DataKind::Folder => {
            image_folder::load(&path, Some(if test { "test" } else { "train" }), test)?
        }
    };
    if !test {
        apply_limit(&mut set, config.limit);
    }
    Ok(set)
}

/// Loads a split from the bytes of an archive (`.tar.gz`: CIFAR's official release or an
/// image folder), as the browser must: `origin` (the file's name) names it in errors.
pub fn load_split_from_bytes(
    config: &DataConfig,
    bytes: &[u8],
    origin: &str,
    test: bool,
) -> Result<ImageSet, DataError> {
    let split = if test { Split::Test } else { Split::Train };
    let mut set = match config.kind {
        DataKind::Synthetic => {
            return Err(DataError::Invalid(
                "the synthetic set is generated, not read from a file".into(),
            ));
        }
        DataKind::Cifar10 => cifar_binary::load_tar_gz_bytes(bytes, origin, Cifar::Ten, split)?,
        DataKind::Cifar100 => {
            cifar_binary::load_tar_gz_bytes(bytes, origin, Cifar::HundredFine, split)?
        }
        DataKind::Cifar100Coarse => {
            cifar_binary::load_tar_gz_bytes(bytes, origin, Cifar::HundredCoarse, split)?
        }
        DataKind::Folder => image_folder::load_tar_gz_bytes(
            bytes,
            origin,
            Some(if test { "test" } else { "train" }),
            test,
        )?,
    };
    if !test {
        apply_limit(&mut set, config.limit);
    }
    Ok(set)
}

fn apply_limit(set: &mut ImageSet, limit: usize) {
    if limit > 0 && limit < set.len() {
        // An evenly strided subset: deterministic, and class-balanced for class-sorted sets.
        let stride = set.len() as f64 / limit as f64;
        let keep: Vec<usize> = (0..limit).map(|i| (i as f64 * stride) as usize).collect();
        let mut images = Vec::with_capacity(keep.len() * super::IMAGE_BYTES);
        let labels = keep.iter().map(|&i| set.labels[i]).collect();
        for &i in &keep {
            images.extend_from_slice(set.image(i));
        }
        set.images = images;
        set.labels = labels;
    }
}
