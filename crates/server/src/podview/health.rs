//! How current the watched pod view is: the watch loop (`crate::watch`)
//! reports what happens to it here, and every answer reads the result.
//!
//! The watcher retries with a bounded exponential backoff (0.8 s doubling to
//! 30 s, with jitter), so while the API stays unreachable an error arrives at
//! least that often. A watch that re-establishes on a quiet cluster yields no
//! event at all; so once no error has arrived for clearly longer than the
//! retry schedule allows, the watch is taken to be current again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How current the pod view is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewHealth {
    /// The view has completed its first full list.
    pub synced: bool,
    /// The watch is currently failing (answers come from the last known pods).
    pub stale: bool,
    /// Seconds since the API last answered, while stale; else 0.
    pub age_seconds: f64,
}

impl ViewHealth {
    /// The health of a view that needs no API (without Kubernetes).
    pub const ALWAYS_CURRENT: ViewHealth = ViewHealth {
        synced: true,
        stale: false,
        age_seconds: 0.0,
    };
}

/// A relist running longer than this means the API is not answering it.
const RELIST_PATIENCE: Duration = Duration::from_secs(10);

/// Health of the pod watch, written by the watch task, read by everyone.
#[derive(Default)]
pub struct WatchStatus {
    synced_once: AtomicBool,
    /// `Some` while the watch is failing.
    failing: Mutex<Option<Failing>>,
    last_ok: Mutex<Option<Instant>>,
    /// When the relist in progress started (`Event::Init` comes before the
    /// LIST request), `None` when no relist is running.
    relisting: Mutex<Option<Instant>>,
}

/// Every guarded field is a plain value written in one assignment: a
/// panic elsewhere cannot leave it half-changed, so poison is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WatchStatus {
    /// The view has completed a first full list.
    pub fn synced(&self) -> bool {
        self.synced_once.load(Ordering::Acquire)
    }

    /// A relist starts at `now` (before its LIST request is sent).
    pub fn relist_started(&self, now: Instant) {
        *lock(&self.relisting) = Some(now);
    }

    /// The API answered at `now`. True when it had been failing.
    pub fn answered(&self, now: Instant) -> bool {
        let was_failing = lock(&self.failing).take().is_some();
        *lock(&self.last_ok) = Some(now);
        was_failing
    }

    /// A relist completed. True when it was the first one.
    pub fn relist_done(&self) -> bool {
        *lock(&self.relisting) = None;
        !self.synced_once.swap(true, Ordering::AcqRel)
    }

    /// The watch failed at `now`; `started`: when the server started (the
    /// view's age counts from there if the API never answered).
    pub fn failed(&self, now: Instant, started: Instant) {
        let last_ok = lock(&self.last_ok).unwrap_or(started);
        let mut failing = lock(&self.failing);
        *failing = Some(Failing::after_error(*failing, last_ok, now));
    }

    pub fn health(&self, now: Instant) -> ViewHealth {
        let synced = self.synced();
        let relisting = *lock(&self.relisting);
        if let Some(since) = relisting
            && synced
            && now.saturating_duration_since(since) > RELIST_PATIENCE
        {
            // The view is frozen at what it held when the relist began.
            return ViewHealth {
                synced,
                stale: true,
                age_seconds: now.saturating_duration_since(since).as_secs_f64(),
            };
        }
        match *lock(&self.failing) {
            // A failure followed by a relist still running is not over,
            // however long ago the last error came.
            Some(f) if f.is_stale(now) || relisting.is_some() => ViewHealth {
                synced,
                stale: true,
                age_seconds: now.saturating_duration_since(f.since).as_secs_f64(),
            },
            _ => ViewHealth {
                synced,
                stale: false,
                age_seconds: 0.0,
            },
        }
    }
}

/// Bookkeeping of a failing watch.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Failing {
    /// When the API last answered (the view's age counts from here).
    since: Instant,
    last_error: Instant,
    /// Time between the last two errors, the current retry delay.
    gap: Option<Duration>,
}

impl Failing {
    const FIRST_RETRY: Duration = Duration::from_millis(800);
    const LONGEST_HOLD: Duration = Duration::from_secs(90);

    fn after_error(previous: Option<Failing>, last_ok: Instant, now: Instant) -> Failing {
        match previous {
            Some(f) => Failing {
                since: f.since,
                last_error: now,
                gap: Some(now.saturating_duration_since(f.last_error)),
            },
            None => Failing {
                since: last_ok,
                last_error: now,
                gap: None,
            },
        }
    }

    /// Still failing at `now`: the next retry is not overdue yet.
    fn is_stale(&self, now: Instant) -> bool {
        let retry = self.gap.unwrap_or(Self::FIRST_RETRY);
        let hold = (retry * 4 + Duration::from_secs(1)).min(Self::LONGEST_HOLD);
        now.saturating_duration_since(self.last_error) <= hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_watch_is_stale_until_its_next_retry_is_clearly_overdue() {
        let t0 = Instant::now();
        let s = |secs: f64| t0 + Duration::from_secs_f64(secs);
        let first = Failing::after_error(None, t0, s(10.0));
        assert_eq!(first.since, t0, "age counts from the last answer");
        assert!(
            first.is_stale(s(14.2)),
            "first retry comes after about 0.8 s"
        );
        assert!(!first.is_stale(s(14.3)));

        let second = Failing::after_error(Some(first), t0, s(12.0));
        assert_eq!(
            (second.since, second.gap),
            (t0, Some(Duration::from_secs(2)))
        );
        assert!(second.is_stale(s(21.0)));
        assert!(!second.is_stale(s(21.1)));

        let long = Failing::after_error(Some(second), t0, s(100.0));
        assert!(
            long.is_stale(s(190.0)),
            "retries every 30 s or so are still an outage"
        );
        assert!(!long.is_stale(s(190.1)), "hold is capped");
    }

    #[test]
    fn a_relist_that_hangs_makes_a_synced_view_stale() {
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        let w = WatchStatus::default();
        assert!(!w.health(t0).synced);
        w.relist_started(t0);
        w.answered(at(1));
        assert!(w.relist_done(), "first sync");
        assert!(!w.relist_done(), "only the first is first");
        assert_eq!(w.health(at(2)), ViewHealth::ALWAYS_CURRENT);
        w.relist_started(at(3));
        assert!(!w.health(at(13)).stale, "within the patience");
        let h = w.health(at(14));
        assert!(h.stale && h.age_seconds == 11.0, "{h:?}");
        // An error during a relist keeps the view stale until the relist ends.
        w.failed(at(20), t0);
        assert!(w.health(at(200)).stale);
        assert!(w.answered(at(201)), "it had been failing");
        w.relist_done();
        assert!(!w.health(at(202)).stale);
    }
}
