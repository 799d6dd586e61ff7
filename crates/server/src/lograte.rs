//! A limit on repetitive log lines: a flood of bad reports must not turn
//! into a flood of log lines (100,000 refusals were 27 MB of log).

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use tokio::time::Instant;

/// Lets at most `per_window` lines through per `window`; counts the rest.
#[derive(Debug)]
pub struct LogRate {
    per_window: u32,
    window: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    started: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl LogRate {
    pub fn new(per_window: u32, window: Duration) -> Self {
        Self {
            per_window,
            window,
            state: Mutex::new(State {
                started: None,
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether a line may be logged at `now`: `Some(n)` with the number of
    /// lines suppressed since the last one logged, `None` to drop this one.
    pub fn allow(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.started
            .is_none_or(|t| now.saturating_duration_since(t) >= self.window)
        {
            s.started = Some(now);
            s.logged = 0;
        }
        if s.logged < self.per_window {
            s.logged += 1;
            Some(std::mem::take(&mut s.suppressed))
        } else {
            s.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_a_few_through_per_window_and_counts_the_rest() {
        let rate = LogRate::new(2, Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(rate.allow(t0), Some(0));
        assert_eq!(rate.allow(t0), Some(0));
        assert_eq!(rate.allow(t0), None);
        assert_eq!(rate.allow(t0 + Duration::from_millis(999)), None);
        // A new window: the first line says how many were dropped.
        assert_eq!(rate.allow(t0 + Duration::from_secs(1)), Some(2));
        assert_eq!(rate.allow(t0 + Duration::from_secs(1)), Some(0));
        assert_eq!(rate.allow(t0 + Duration::from_secs(1)), None);
    }
}
