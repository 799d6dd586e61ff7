//! The bearer token that proves to the server which pod a report comes from.
//!
//! In Kubernetes the token is a projected ServiceAccount token (a JWT with
//! audience `netchecker`, bound to the agent's pod) that the kubelet writes
//! into a volume and rotates in place: it writes the new token into a new
//! directory and swaps the `..data` symlink over atomically. Without
//! Kubernetes it can be a shared secret in a plain file. Either way it goes
//! to the server as `Authorization: Bearer <token>` on the report POST only.
//!
//! The file is read again before every report attempt, in full, rather than
//! only when `stat` says it changed. Measured on ext4 with a 1.1 KB token,
//! a read (open, read, close) costs about 4 µs and a `stat` about 1 µs,
//! both nothing beside the 0.6 ms of CPU a round costs (doc/agent.md);
//! reading every time has no cache to go stale, so it also catches a file
//! rewritten in place within the timestamp granularity of its filesystem,
//! and a file swapped between a `stat` and a read.
//!
//! The token never reaches a log line, an error message or `Debug` output:
//! problems are described by the file's path and the OS error only, and the
//! header value is marked sensitive.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use http::HeaderValue;

/// Largest token file accepted. A projected ServiceAccount token is about
/// 1 KB; anything this large is the wrong file, and is not sent.
pub const MAX_TOKEN_BYTES: u64 = 16 * 1024;

/// The token file and what the agent last made of it.
pub struct TokenFile {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The header last built from the file, to tell a rotation in the log.
    last: Option<HeaderValue>,
    /// The problem last logged; `None` while the file is usable. A warning
    /// is logged only when this changes, not once per report.
    problem: Option<String>,
}

impl TokenFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            state: Mutex::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `Authorization` header for the next report attempt, from the
    /// file as it is now; `None` when the file is missing, empty, unreadable
    /// or unusable (logged once per change of the problem).
    pub fn header(&self) -> Option<HeaderValue> {
        let outcome = read_header(&self.path);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(value) => {
                if let Some(problem) = state.problem.take() {
                    tracing::info!(
                        path = %self.path.display(),
                        "token file usable again ({problem} before); reports carry its token"
                    );
                } else if state.last.as_ref().is_some_and(|last| *last != value) {
                    tracing::info!(path = %self.path.display(), "token file holds a new token");
                }
                state.last = Some(value.clone());
                Some(value)
            }
            Err(problem) => {
                if state.problem.as_deref() != Some(problem.as_str()) {
                    tracing::warn!(
                        path = %self.path.display(),
                        "cannot use the token file: {problem}; reports go without a token \
                         (the server decides whether to accept them) until it can be read"
                    );
                    state.problem = Some(problem);
                }
                state.last = None;
                None
            }
        }
    }
}

impl fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// `Bearer <contents>` with surrounding whitespace trimmed, or why not.
/// The text of an error never holds any of the file's contents.
fn read_header(path: &Path) -> Result<HeaderValue, String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_TOKEN_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_TOKEN_BYTES {
        return Err(format!(
            "it is larger than {MAX_TOKEN_BYTES} bytes, more than any token"
        ));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| "it is not UTF-8 text".to_owned())?;
    let token = text.trim();
    if token.is_empty() {
        return Err("it is empty".to_owned());
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "it holds characters that an HTTP header cannot carry".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOlsibmV0Y2hlY2tlciJdfQ.c2lnbmF0dXJl";

    #[test]
    fn the_header_is_bearer_and_the_trimmed_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("\n  {TOKEN}\r\n\t")).unwrap();
        let file = TokenFile::new(&path);
        let value = file.header().unwrap();
        assert_eq!(value.to_str().unwrap(), format!("Bearer {TOKEN}"));
        assert!(value.is_sensitive());
    }

    #[test]
    fn every_call_sees_the_file_as_it_is_now() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let file = TokenFile::new(&path);
        assert!(file.header().is_none(), "missing");
        std::fs::write(&path, "one").unwrap();
        assert_eq!(file.header().unwrap(), "Bearer one");
        // Rewritten in place with the same length: no stat would tell.
        std::fs::write(&path, "two").unwrap();
        assert_eq!(file.header().unwrap(), "Bearer two");
        std::fs::write(&path, " \n").unwrap();
        assert!(file.header().is_none(), "empty");
        std::fs::write(&path, "three").unwrap();
        assert_eq!(file.header().unwrap(), "Bearer three");
    }

    #[test]
    fn unusable_contents_are_refused_without_quoting_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let too_long = "a".repeat(MAX_TOKEN_BYTES as usize + 1);
        let with_newline = format!("{TOKEN}\n{TOKEN}");
        for (contents, want) in [
            (too_long.as_bytes(), "larger than"),
            (with_newline.as_bytes(), "HTTP header"),
            (b"\xff\xfe token".as_slice(), "not UTF-8"),
            (b"   ".as_slice(), "empty"),
        ] {
            std::fs::write(&path, contents).unwrap();
            let problem = read_header(&path).unwrap_err();
            assert!(problem.contains(want), "{problem}");
            assert!(!problem.contains("aaaa") && !problem.contains(TOKEN));
        }
        let problem = read_header(dir.path()).unwrap_err();
        assert!(problem.contains("directory"), "{problem}");
        let problem = read_header(&dir.path().join("missing")).unwrap_err();
        assert!(problem.contains("No such file"), "{problem}");
    }

    #[test]
    fn debug_output_shows_the_path_and_never_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, TOKEN).unwrap();
        let file = TokenFile::new(&path);
        let value = file.header().unwrap();
        let debug = format!("{file:?} {value:?}");
        assert!(debug.contains("token"), "{debug}");
        assert!(!debug.contains(TOKEN), "{debug}");
    }
}
