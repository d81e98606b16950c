//! Reading `.tar.gz` archives that someone else made. A tar header's declared size is never
//! trusted for an allocation; every kept entry and the archive as a whole are capped (the
//! limit is in the message); and the gzip stream is read to its very end, so its CRC is
//! verified: a corrupted download is an error, never a dataset of damaged pixels.

use super::DataError;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Caps for one archive. `entry` bounds one kept file, `kept` all kept files together,
/// `inflated` every byte the gzip stream expands to (skipped entries included), so a
/// small bomb costs neither memory nor unbounded time.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub entry: u64,
    pub kept: u64,
    pub inflated: u64,
    /// What one entry is, for the message ("CIFAR batch file", "image").
    pub what: &'static str,
}

const MIB: u64 = 1 << 20;

/// CIFAR's official archives: the largest file (CIFAR-100 `train.bin`) is 154 MB.
pub const CIFAR: Limits = Limits {
    entry: 256 * MIB,
    kept: 512 * MIB,
    inflated: 1024 * MIB,
    what: "CIFAR batch file",
};

/// Image folders: a photo is far below 32 MiB; the whole set is held in memory, and in
/// the browser that memory is a 4 GiB address space shared with everything else.
pub const IMAGE_FOLDER: Limits = if cfg!(target_arch = "wasm32") {
    Limits {
        entry: 32 * MIB,
        kept: 512 * MIB,
        inflated: 2048 * MIB,
        what: "image",
    }
} else {
    Limits {
        entry: 32 * MIB,
        kept: 4096 * MIB,
        inflated: 8192 * MIB,
        what: "image",
    }
};

pub(super) fn human(bytes: u64) -> String {
    if bytes >= MIB {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Counts what the gzip decoder yields and stops with an error past `limit`.
struct Capped<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other(format!(
                "it expands to more than {}, the limit for one archive; it is not a dataset \
                 (or an archive bomb)",
                human(self.limit)
            )));
        }
        Ok(n)
    }
}

/// Reads the regular files of a `.tar.gz` that `keep` accepts, as (path, bytes), in archive
/// order. `origin` names the archive in errors.
pub fn read_tar_gz(
    reader: impl Read,
    origin: &str,
    limits: Limits,
    mut keep: impl FnMut(&Path) -> bool,
) -> Result<Vec<(PathBuf, Vec<u8>)>, DataError> {
    let broken = |e: std::io::Error| {
        DataError::corrupt(
            origin,
            format!(
                "not a readable .tar.gz ({e}); the file is truncated or corrupt: download it again"
            ),
        )
    };
    let capped = Capped {
        inner: flate2::read::GzDecoder::new(reader),
        read: 0,
        limit: limits.inflated,
    };
    let mut archive = tar::Archive::new(capped);
    let mut out = Vec::new();
    let mut kept = 0u64;
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let path = entry.path().map_err(broken)?.into_owned();
        if !entry.header().entry_type().is_file() || !keep(&path) {
            continue;
        }
        let declared = entry.size();
        let too_big = |size: String| {
            DataError::corrupt(
                format!("{origin}:{}", path.display()),
                format!(
                    "{size}, more than the limit of {} for one {}; not a dataset file",
                    human(limits.entry),
                    limits.what
                ),
            )
        };
        if declared > limits.entry {
            return Err(too_big(format!("declares {declared} bytes")));
        }
        // The declared size is now bounded, so it may size the buffer; `take` holds the
        // read to it whatever the stream says.
        let mut bytes = Vec::with_capacity(declared as usize);
        (&mut entry)
            .take(limits.entry + 1)
            .read_to_end(&mut bytes)
            .map_err(broken)?;
        if bytes.len() as u64 > limits.entry {
            return Err(too_big(format!("holds over {} bytes", limits.entry)));
        }
        kept += bytes.len() as u64;
        if kept > limits.kept {
            return Err(DataError::corrupt(
                origin,
                format!(
                    "its files add up to more than {}, the limit for one dataset; split it \
                     or use data.limit",
                    human(limits.kept)
                ),
            ));
        }
        out.push((path, bytes));
    }
    // The tar end marker can come before the end of the gzip stream: read on to the end so
    // the decoder checks the stream's CRC and length.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink()).map_err(broken)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *bytes).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn reads_kept_entries_in_order() {
        let bytes = tar_gz(&[("a/x.bin", b"xx"), ("b.txt", b"skip"), ("c/y.bin", b"yyy")]);
        let files = read_tar_gz(&bytes[..], "t.tar.gz", CIFAR, |p| {
            p.extension().is_some_and(|e| e == "bin")
        })
        .unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[1], (PathBuf::from("c/y.bin"), b"yyy".to_vec()));
    }

    #[test]
    fn caps_one_entry_and_the_whole_archive() {
        let big = vec![0u8; 5000];
        let small = Limits {
            entry: 4096,
            kept: 1 << 20,
            inflated: 1 << 20,
            what: "image",
        };
        let err = read_tar_gz(&tar_gz(&[("x.png", &big)])[..], "t", small, |_| true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.png") && err.contains("4096 bytes"), "{err}");
        let tight = Limits {
            inflated: 4096,
            ..small
        };
        let err = read_tar_gz(&tar_gz(&[("x.png", &big)])[..], "t", tight, |_| false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("limit for one archive"), "{err}");
    }

    #[test]
    fn a_bad_gzip_checksum_is_an_error() {
        let mut bytes = tar_gz(&[("x.bin", &[7u8; 3000])]);
        let n = bytes.len();
        bytes[n - 8] ^= 0xFF; // the CRC32 in the gzip trailer
        let err = read_tar_gz(&bytes[..], "t.tar.gz", CIFAR, |_| true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.tar.gz") && err.contains("corrupt"), "{err}");
    }
}
