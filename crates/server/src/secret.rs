//! A secret kept in a file (a mounted Kubernetes Secret): read at start,
//! and read again whenever the file changes, so rotating the Secret needs
//! no restart. Its contents never reach a log or an answer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// A secret file, re-read when its modification time or size changes.
#[derive(Clone)]
pub struct SecretFile(Arc<Inner>);

struct Inner {
    path: PathBuf,
    last: Mutex<Read>,
}

struct Read {
    stamp: Option<(SystemTime, u64)>,
    secret: Arc<[u8]>,
}

impl std::fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SecretFile").field(&self.0.path).finish()
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read(path: &Path) -> std::io::Result<Arc<[u8]>> {
    let bytes = std::fs::read(path)?;
    let secret = bytes.trim_ascii();
    if secret.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is empty",
        ));
    }
    Ok(secret.into())
}

impl SecretFile {
    /// Read `path` now: a missing, unreadable or empty file is an error.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let secret = read(path)?;
        Ok(Self(Arc::new(Inner {
            path: path.to_owned(),
            last: Mutex::new(Read {
                stamp: stamp(path),
                secret,
            }),
        })))
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// The secret as the file holds it now. When the file changed but
    /// cannot be read, the last good secret stays (and that is logged).
    pub fn current(&self) -> Arc<[u8]> {
        let now = stamp(&self.0.path);
        let mut last = self.0.last.lock().unwrap_or_else(PoisonError::into_inner);
        if now != last.stamp {
            match read(&self.0.path) {
                Ok(secret) => {
                    last.secret = secret;
                    last.stamp = now;
                }
                Err(error) => {
                    tracing::warn!(path = ?self.0.path, %error, "secret file changed but cannot be read; keeping the last one");
                    last.stamp = now;
                }
            }
        }
        last.secret.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_is_read_again_and_a_broken_one_keeps_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        assert!(SecretFile::open(&path).is_err(), "missing");
        std::fs::write(&path, "\n").unwrap();
        assert!(SecretFile::open(&path).is_err(), "empty");
        std::fs::write(&path, "first\n").unwrap();
        let s = SecretFile::open(&path).unwrap();
        assert_eq!(&*s.current(), b"first");
        // Replaced as Kubernetes does: a new file renamed over the old.
        let next = dir.path().join("next");
        std::fs::write(&next, "second-and-longer").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_eq!(&*s.current(), b"second-and-longer");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            &*s.current(),
            b"second-and-longer",
            "the last good one stays"
        );
        assert!(!format!("{s:?}").contains("second"), "never printed");
    }
}
