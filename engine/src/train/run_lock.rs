//! One run per folder: an advisory lock on `<out>/run.lock`, held for the whole run and
//! released by the OS when the process ends (a SIGKILL included), with the holder's PID
//! written inside so a refused second run can say who holds it.

use anyhow::{Context, bail};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Held while it lives.
pub struct RunLock {
    _file: File,
}

/// Takes the lock of `dir` (which must exist), or says which process holds it.
pub fn lock_run_folder(dir: &Path) -> anyhow::Result<RunLock> {
    let path = dir.join("run.lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open the run lock {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| writeln!(file, "{}", std::process::id()))
                .and_then(|()| file.flush())
                .with_context(|| format!("cannot write the run lock {}", path.display()))?;
            Ok(RunLock { _file: file })
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            bail!(
                "{} is in use by another sparselab run ({}): wait for it to finish, or \
                 choose another --out",
                dir.display(),
                if holder.is_empty() {
                    "starting up".to_string()
                } else {
                    format!("PID {holder}")
                }
            )
        }
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_run_folder(dir.path()).unwrap();
        let err = lock_run_folder(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("in use") && err.contains(&std::process::id().to_string()),
            "{err}"
        );
        drop(held);
        lock_run_folder(dir.path()).unwrap();
    }
}
