//! Datasets: the official CIFAR binary formats, image folders (plain or `.tar.gz`), a
//! built-in synthetic set, and the split/augment/normalise pipeline that feeds training.

pub mod archive;
pub mod batcher;
pub mod bounded;
pub mod cifar_binary;
#[cfg(feature = "native")]
pub mod fetch;
pub mod image_folder;
pub mod source;
pub mod split;
pub mod synthetic;

pub use batcher::{Batch, Batcher, Normalization};
pub use source::{DataConfig, DataKind, load_split, load_split_from_bytes};
pub use split::TrainValSplit;

/// Side of the square images every model here takes.
pub const IMAGE_SIZE: usize = 32;
/// Bytes of one image: 3 channels x 32 x 32, channel-major (CHW), like CIFAR's binary files.
pub const IMAGE_BYTES: usize = 3 * IMAGE_SIZE * IMAGE_SIZE;

/// A labelled set of 32x32 RGB images held in memory as CHW bytes.
#[derive(Clone, Debug)]
pub struct ImageSet {
    pub name: String,
    pub images: Vec<u8>,
    pub labels: Vec<u16>,
    pub class_names: Vec<String>,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    pub fn image(&self, index: usize) -> &[u8] {
        &self.images[index * IMAGE_BYTES..(index + 1) * IMAGE_BYTES]
    }

    /// Identifies the images: count, classes and a CRC-32 of names, labels and pixels
    /// (fast enough to compute on every checkpoint; not a cryptographic hash).
    pub fn fingerprint(&self) -> String {
        let mut crc = crc32fast::Hasher::new();
        for name in &self.class_names {
            crc.update(name.as_bytes());
            crc.update(&[0]);
        }
        for l in &self.labels {
            crc.update(&l.to_le_bytes());
        }
        crc.update(&self.images);
        format!(
            "{} images, {} classes, crc32 {:08x}",
            self.len(),
            self.num_classes(),
            crc.finalize()
        )
    }

    /// Images per class, to show class balance and to check a parse.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}

/// Errors a dataset can give; each names the file (or entry) and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Corrupt { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
    /// The dataset has no such split (an image folder without `test/`): not an error for
    /// a run, which then reports no test accuracy.
    #[error("{0}")]
    NoSplit(String),
}

impl DataError {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub fn corrupt(path: impl std::fmt::Display, message: impl Into<String>) -> Self {
        DataError::Corrupt {
            path: path.to_string(),
            message: message.into(),
        }
    }
}
