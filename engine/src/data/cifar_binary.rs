//! The official CIFAR-10 / CIFAR-100 *binary* formats.
//!
//! CIFAR-10: `cifar-10-batches-bin/data_batch_{1..5}.bin` and `test_batch.bin`, records of
//! 1 label byte + 3072 pixel bytes (R plane, G plane, B plane), class names in
//! `batches.meta.txt`. CIFAR-100: `cifar-100-binary/train.bin` and `test.bin`, records of
//! a coarse label byte, a fine label byte and 3072 pixel bytes; names in
//! `fine_label_names.txt` / `coarse_label_names.txt`. Both read from the official
//! `.tar.gz` or from the folder it extracts to.

use super::{DataError, IMAGE_BYTES, ImageSet, archive};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cifar {
    Ten,
    /// CIFAR-100 with its 100 fine labels.
    HundredFine,
    /// CIFAR-100 with its 20 coarse (superclass) labels.
    HundredCoarse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

impl Cifar {
    fn record_bytes(self) -> usize {
        match self {
            Cifar::Ten => 1 + IMAGE_BYTES,
            _ => 2 + IMAGE_BYTES,
        }
    }

    fn num_classes(self) -> usize {
        match self {
            Cifar::Ten => 10,
            Cifar::HundredFine => 100,
            Cifar::HundredCoarse => 20,
        }
    }

    fn files(self, split: Split) -> Vec<&'static str> {
        match (self, split) {
            (Cifar::Ten, Split::Train) => vec![
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            (Cifar::Ten, Split::Test) => vec!["test_batch.bin"],
            (_, Split::Train) => vec!["train.bin"],
            (_, Split::Test) => vec!["test.bin"],
        }
    }

    fn names_file(self) -> &'static str {
        match self {
            Cifar::Ten => "batches.meta.txt",
            Cifar::HundredFine => "fine_label_names.txt",
            Cifar::HundredCoarse => "coarse_label_names.txt",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Cifar::Ten => "cifar10",
            Cifar::HundredFine => "cifar100",
            Cifar::HundredCoarse => "cifar100-coarse",
        }
    }
}

/// Reads one split from a `.tar.gz` (as published) or from an extracted folder.
pub fn load(path: &Path, kind: Cifar, split: Split) -> Result<ImageSet, DataError> {
    let wanted: Vec<&str> = kind
        .files(split)
        .into_iter()
        .chain([kind.names_file()])
        .collect();
    let files = if path.is_dir() {
        read_from_folder(path, &wanted)?
    } else {
        let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        read_from_tar_gz(file, &path.display().to_string(), &wanted)?
    };
    from_files(&files, &path.display().to_string(), kind, split)
}

/// Reads one split from the bytes of the official `.tar.gz` (the browser has no files:
/// the page hands over what the user picked). `origin` names it in errors.
pub fn load_tar_gz_bytes(
    bytes: &[u8],
    origin: &str,
    kind: Cifar,
    split: Split,
) -> Result<ImageSet, DataError> {
    let wanted: Vec<&str> = kind
        .files(split)
        .into_iter()
        .chain([kind.names_file()])
        .collect();
    let files = read_from_tar_gz(bytes, origin, &wanted)?;
    from_files(&files, origin, kind, split)
}

fn from_files(
    files: &BTreeMap<String, Vec<u8>>,
    origin: &str,
    kind: Cifar,
    split: Split,
) -> Result<ImageSet, DataError> {
    for name in kind.files(split) {
        if !files.contains_key(name) {
            return Err(DataError::Invalid(format!(
                "{origin}: no {name} found; expected the official {} binary release \
                 (get it with `sparselab data fetch {}`)",
                kind.label(),
                if kind == Cifar::Ten {
                    "cifar10"
                } else {
                    "cifar100"
                }
            )));
        }
    }
    let class_names = match files.get(kind.names_file()) {
        Some(bytes) => parse_names(bytes, kind.num_classes()),
        None => None,
    }
    .unwrap_or_else(|| default_names(kind));
    let mut set = ImageSet {
        name: format!(
            "{}-{}",
            kind.label(),
            if split == Split::Train {
                "train"
            } else {
                "test"
            }
        ),
        images: Vec::new(),
        labels: Vec::new(),
        class_names,
    };
    for name in kind.files(split) {
        parse_records(&files[name], kind, &format!("{origin}:{name}"), &mut set)?;
    }
    Ok(set)
}

fn default_names(kind: Cifar) -> Vec<String> {
    match kind {
        Cifar::Ten => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
        _ => (0..kind.num_classes())
            .map(|i| format!("class{i}"))
            .collect(),
    }
}

fn parse_names(bytes: &[u8], expected: usize) -> Option<Vec<String>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    (names.len() == expected).then_some(names)
}

/// Appends the records of one batch file, checking its size and every label.
pub fn parse_records(
    bytes: &[u8],
    kind: Cifar,
    origin: &str,
    set: &mut ImageSet,
) -> Result<(), DataError> {
    let record = kind.record_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(DataError::corrupt(
            origin,
            format!(
                "{} bytes is not a whole number of {record}-byte {} records; \
                 the file is truncated or not {} binary data: download it again",
                bytes.len(),
                kind.label(),
                kind.label()
            ),
        ));
    }
    let classes = kind.num_classes();
    set.images.reserve(bytes.len() / record * IMAGE_BYTES);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = match kind {
            Cifar::Ten => rec[0],
            Cifar::HundredCoarse => rec[0],
            Cifar::HundredFine => rec[1],
        } as usize;
        if label >= classes {
            return Err(DataError::corrupt(
                origin,
                format!(
                    "record {i} has label {label}, but {} has {classes} classes",
                    kind.label()
                ),
            ));
        }
        set.labels.push(label as u16);
        set.images.extend_from_slice(&rec[record - IMAGE_BYTES..]);
    }
    Ok(())
}

fn read_from_folder(dir: &Path, wanted: &[&str]) -> Result<BTreeMap<String, Vec<u8>>, DataError> {
    // Accept the folder the tarball extracts to, or its parent.
    let mut out = BTreeMap::new();
    let candidates = [
        dir.to_path_buf(),
        dir.join("cifar-10-batches-bin"),
        dir.join("cifar-100-binary"),
    ];
    for name in wanted {
        if let Some(p) = candidates
            .iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
        {
            let bytes =
                super::bounded::read_bounded(&p, archive::CIFAR.entry, archive::CIFAR.what)?;
            out.insert(name.to_string(), bytes);
        }
    }
    Ok(out)
}

fn read_from_tar_gz(
    reader: impl Read,
    origin: &str,
    wanted: &[&str],
) -> Result<BTreeMap<String, Vec<u8>>, DataError> {
    let base = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_string);
    let files = archive::read_tar_gz(reader, origin, archive::CIFAR, |p| {
        base(p).is_some_and(|b| wanted.contains(&b.as_str()))
    })?;
    Ok(files
        .into_iter()
        .filter_map(|(p, bytes)| Some((base(&p)?, bytes)))
        .collect())
}

/// Writes records in the official format: used by tests and by `data fetch`'s self-check.
pub fn encode_records(kind: Cifar, images: &[u8], fine: &[u8], coarse: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, img) in images.chunks_exact(IMAGE_BYTES).enumerate() {
        match kind {
            Cifar::Ten => out.push(fine[i]),
            _ => {
                out.push(coarse[i]);
                out.push(fine[i]);
            }
        }
        out.extend_from_slice(img);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank_set() -> ImageSet {
        ImageSet {
            name: "t".into(),
            images: vec![],
            labels: vec![],
            class_names: vec![],
        }
    }

    #[test]
    fn cifar100_reads_fine_or_coarse_label() {
        let img = vec![7u8; IMAGE_BYTES * 2];
        let bytes = encode_records(Cifar::HundredFine, &img, &[42, 99], &[3, 19]);
        let mut fine = blank_set();
        parse_records(&bytes, Cifar::HundredFine, "x", &mut fine).unwrap();
        assert_eq!(fine.labels, vec![42, 99]);
        let mut coarse = blank_set();
        parse_records(&bytes, Cifar::HundredCoarse, "x", &mut coarse).unwrap();
        assert_eq!(coarse.labels, vec![3, 19]);
        assert_eq!(coarse.images.len(), 2 * IMAGE_BYTES);
    }

    #[test]
    fn truncated_batch_names_the_file() {
        let bytes = encode_records(Cifar::Ten, &vec![1u8; IMAGE_BYTES * 3], &[0, 1, 2], &[]);
        let err = parse_records(
            &bytes[..bytes.len() - 5],
            Cifar::Ten,
            "data_batch_1.bin",
            &mut blank_set(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("data_batch_1.bin") && err.contains("truncated"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_label_is_an_error() {
        let bytes = encode_records(Cifar::Ten, &vec![1u8; IMAGE_BYTES], &[10], &[]);
        let err = parse_records(&bytes, Cifar::Ten, "b.bin", &mut blank_set()).unwrap_err();
        assert!(err.to_string().contains("label 10"), "{err}");
    }
}
