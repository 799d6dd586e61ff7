//! Log capture in the test's own process: every event of every crate at
//! every level, trace included, as the plain text the binary would print.
//!
//! One global subscriber (installed on first use) writes each event to the
//! capture of the thread that logs it. A per-test `set_default` would be
//! simpler, but tracing caches per call site whether anyone listens, and a
//! test running on another thread without a subscriber can make that cache
//! drop events here.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use tracing_subscriber::fmt::MakeWriter;

/// The captured text; a clone shares it.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CURRENT: RefCell<Option<Logs>> = const { RefCell::new(None) };
}

/// Ends the capture of this thread when dropped.
pub struct Capturing(());

impl Drop for Capturing {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

impl Logs {
    /// Capture what this thread logs until the guard is dropped. On tokio's
    /// current-thread runtime (the default of `#[tokio::test]`) that
    /// includes every spawned task.
    pub fn capture() -> (Self, Capturing) {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(ToCurrent)
                .init();
        });
        let logs = Self::default();
        CURRENT.with(|c| *c.borrow_mut() = Some(logs.clone()));
        (logs, Capturing(()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Lines that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

/// Writes to the capture of the current thread, if any.
struct ToCurrent;

impl Write for ToCurrent {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CURRENT.with(|c| {
            if let Some(logs) = &*c.borrow() {
                logs.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ToCurrent {
    type Writer = ToCurrent;

    fn make_writer(&'a self) -> Self::Writer {
        ToCurrent
    }
}
