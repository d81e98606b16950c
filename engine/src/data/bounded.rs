//! Reading files a user names, bounded: only regular files (never a device such as
//! /dev/zero), never more than a limit, with the limit in the message.

use super::DataError;
use super::archive::human;
use std::io::Read;
use std::path::Path;

/// Config and sweep files are small: anything larger is the wrong file.
pub const MAX_SETTINGS_BYTES: u64 = 1 << 20;

/// Reads a file that must be a regular file of at most `limit` bytes (configs, sweep
/// files): never a device such as /dev/zero, never an unbounded read.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let meta = file.metadata().map_err(|e| DataError::io(path, e))?;
    if !meta.is_file() {
        return Err(DataError::corrupt(
            path.display(),
            format!("not a regular file; give the path of a {what}"),
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(DataError::corrupt(
            path.display(),
            format!(
                "larger than {}, the limit for a {what}; is this the right file?",
                human(limit)
            ),
        ));
    }
    Ok(bytes)
}

/// A config or sweep file (`what` names it in errors): bounded, and UTF-8 text.
pub fn read_settings_file(path: &Path, what: &str) -> Result<String, DataError> {
    let bytes = read_bounded(path, MAX_SETTINGS_BYTES, what)?;
    String::from_utf8(bytes)
        .map_err(|_| DataError::corrupt(path.display(), "not a text file (invalid UTF-8)"))
}
