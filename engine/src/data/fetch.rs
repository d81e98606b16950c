//! `sparselab data fetch`: download an official CIFAR binary tarball, verify its published
//! MD5, and extract it. The download goes to `<file>.part`, is capped in size, and is
//! renamed only once the checksum matches; a failed or wrong download is deleted, so it
//! never looks finished.

use super::DataError;
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub struct Release {
    pub name: &'static str,
    pub url: &'static str,
    pub file: &'static str,
    /// The MD5 published beside the download on the CIFAR page.
    pub md5: &'static str,
    pub folder: &'static str,
}

pub const CIFAR10: Release = Release {
    name: "cifar10",
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    file: "cifar-10-binary.tar.gz",
    md5: "c32a1d4ab5d03f1284b67883e8d87530",
    folder: "cifar-10-batches-bin",
};

pub const CIFAR100: Release = Release {
    name: "cifar100",
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    file: "cifar-100-binary.tar.gz",
    md5: "03b5dce01913d631647c71ecec9e9cb8",
    folder: "cifar-100-binary",
};

pub fn release(name: &str) -> Result<&'static Release, DataError> {
    match name {
        "cifar10" => Ok(&CIFAR10),
        "cifar100" => Ok(&CIFAR100),
        other => Err(DataError::Invalid(format!(
            "unknown dataset '{other}': `data fetch` knows cifar10 and cifar100"
        ))),
    }
}

/// MD5 of a file, hex.
pub fn md5_file(path: &Path) -> Result<String, DataError> {
    let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `archive` against `md5`, then extracts it into `to`. Returns the data folder.
pub fn verify_and_extract(
    archive: &Path,
    md5: &str,
    to: &Path,
    folder: &str,
) -> Result<PathBuf, DataError> {
    let got = md5_file(archive)?;
    if got != md5 {
        return Err(DataError::corrupt(
            archive.display(),
            format!(
                "MD5 is {got}, the published one is {md5}: the file is corrupt or not the official release; delete it and fetch again"
            ),
        ));
    }
    let file = std::fs::File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    tar.unpack(to)
        .map_err(|e| DataError::corrupt(archive.display(), format!("cannot extract: {e}")))?;
    let out = to.join(folder);
    if !out.is_dir() {
        return Err(DataError::corrupt(
            archive.display(),
            format!("extracted, but {folder}/ is missing: not the official release"),
        ));
    }
    Ok(out)
}

/// The official tarballs are about 170 MB: a download past this is not one of them.
pub const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

/// Downloads `url` to `part` with a progress bar, at most `MAX_DOWNLOAD_BYTES`; returns the
/// MD5. `dest` (the final name) is only named in messages.
pub fn download(url: &str, part: &Path, dest: &Path, progress: bool) -> Result<String, DataError> {
    let failed = |what: String| {
        DataError::Invalid(format!(
            "download of {url} failed: {what}. Check the network, or download the file by \
             hand, put it at {} and run the command again (it will be verified)",
            dest.display()
        ))
    };
    let response = ureq::get(url)
        .timeout(std::time::Duration::from_secs(60))
        .call()
        .map_err(|e| failed(e.to_string()))?;
    let total: Option<u64> = response
        .header("Content-Length")
        .and_then(|v| v.parse().ok());
    if let Some(t) = total
        && t > MAX_DOWNLOAD_BYTES
    {
        return Err(failed(format!(
            "the server announces {t} bytes, more than the {MAX_DOWNLOAD_BYTES} an official \
             tarball can be"
        )));
    }
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(
            dest.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut out = std::fs::File::create(part).map_err(|e| DataError::io(part, e))?;
    let mut reader = response.into_reader();
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| failed(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| DataError::io(part, e))?;
        received += n as u64;
        if received > MAX_DOWNLOAD_BYTES {
            return Err(failed(format!(
                "more than {MAX_DOWNLOAD_BYTES} bytes arrived, more than an official tarball"
            )));
        }
        bar.set_position(received);
    }
    out.sync_all().map_err(|e| DataError::io(part, e))?;
    bar.finish();
    if let Some(t) = total
        && t != received
    {
        return Err(failed(format!("received {received} of {t} bytes")));
    }
    Ok(hex(&hasher.finalize()))
}

/// The whole `data fetch`: reuse a verified tarball in `to`, or download one, then extract.
pub fn fetch(
    release: &Release,
    to: &Path,
    url: Option<&str>,
    progress: bool,
) -> Result<PathBuf, DataError> {
    std::fs::create_dir_all(to).map_err(|e| DataError::io(to, e))?;
    let archive = to.join(release.file);
    let have_good = archive.is_file() && md5_file(&archive)? == release.md5;
    if !have_good {
        let part = archive.with_extension("part");
        let got = download(url.unwrap_or(release.url), &part, &archive, progress);
        let got = match got {
            Ok(md5) if md5 == release.md5 => md5,
            Ok(md5) => {
                let _ = std::fs::remove_file(&part);
                return Err(DataError::corrupt(
                    url.unwrap_or(release.url),
                    format!(
                        "the download's MD5 is {md5}, the published one is {}: it is not the \
                         official release (deleted; nothing was kept)",
                        release.md5
                    ),
                ));
            }
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
        };
        debug_assert_eq!(got, release.md5);
        std::fs::rename(&part, &archive).map_err(|e| DataError::io(&archive, e))?;
    }
    verify_and_extract(&archive, release.md5, to, release.folder)
}
