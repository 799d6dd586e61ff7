//! Prompt retries of a report that the server refused because its
//! Kubernetes watch has not seen this pod yet, or that ran out of time.
//!
//! A brand-new pod's first report can race the watch event that tells the
//! server about the pod: until that event arrives (usually within a second
//! or two), the server answers `404` with `no watched agent pod is named
//! "<name>": …`. Waiting a whole interval (60 s by default) would leave the
//! node looking absent all that time, so such a report is sent again after
//! 1 s, then 2 s, 4 s … doubling, as long as the next attempt still starts
//! before the next regular report is due. That attempt's time limit is cut
//! so that it also ends by then: rounds never overlap, and the schedule's
//! last-resort guard (a round outliving its interval) is never what ends it.
//!
//! A report whose attempt ran out of time (the connect, the wait for the
//! answer or its body: on a lossy path, packets that TCP could not repair
//! within the report timeout) is sent again too, on a new connection, after
//! 100 ms, then 200 ms, 400 ms … doubling, under the same rule: each retry
//! starts before the next report is due and ends by then. The report
//! already goes out at the start of its interval, so most of the interval
//! is left for these.
//!
//! Any other answer, a `404` without that text included, is no reason to
//! hurry, and neither is a refused or reset connection (something answered
//! on the path): it fails the round as before, and the next report goes
//! out at the next tick.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use http::StatusCode;
use tokio::time::{Instant, sleep_until};

use crate::{Error, Result};

/// What the server's refusal of a report from an unwatched pod starts with.
pub const NOT_WATCHED: &str = "no watched agent pod is named";

/// The pause before the first retry of a report from an unwatched pod;
/// each further one doubles it.
pub const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// The pause before the first retry of a report whose attempt ran out of
/// time; each further one doubles it.
pub const LOST_PAUSE: Duration = Duration::from_millis(100);

/// Whether `error` is the server's answer to a report from a pod that its
/// watch has not seen (yet).
pub fn is_not_watched(error: &Error) -> bool {
    matches!(error, Error::Status { status, body }
        if *status == StatusCode::NOT_FOUND && body.contains(NOT_WATCHED))
}

/// Whether `error` is an attempt that ran out of time: what a lossy path
/// does to a report, and worth an early retry.
pub fn is_lost(error: &Error) -> bool {
    matches!(error, Error::Timeout { .. })
}

/// The retries of one agent: how many were made, and whether the agent is
/// in an episode of "not watched" answers (logged once at its start).
#[derive(Debug, Default)]
pub struct Retries {
    count: AtomicU64,
    episode: AtomicBool,
}

impl Retries {
    /// Retries made so far (attempts beyond the first of each round, for
    /// either reason).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Run `attempt(limit)`, and again after 1 s, 2 s, 4 s … while the
    /// server answers that it does not watch this pod (after 100 ms, 200 ms,
    /// 400 ms … while attempts run out of time) and the next attempt
    /// starts before `due` (when the next regular report is due). A retry's
    /// limit is cut so that it ends by `due`. Returns the last outcome.
    pub async fn run<T, F, Fut>(&self, due: Instant, limit: Duration, mut attempt: F) -> Result<T>
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut outcome = attempt(limit).await;
        let mut last_pause: Option<Duration> = None;
        loop {
            let (first_pause, not_watched) = match &outcome {
                Err(e) if is_not_watched(e) => (FIRST_PAUSE, true),
                Err(e) if is_lost(e) => (LOST_PAUSE, false),
                _ => {
                    self.episode.store(false, Ordering::Relaxed);
                    return outcome;
                }
            };
            let pause = last_pause.map_or(first_pause, |p| p * 2);
            let start = Instant::now() + pause;
            if start >= due {
                return outcome;
            }
            if not_watched && !self.episode.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    "the server does not watch this pod yet (a new pod's first reports can \
                     race the server's watch); retrying after 1s, 2s, 4s, … until the next \
                     report is due"
                );
            }
            let cause = match &outcome {
                Err(e) => e.to_string(),
                Ok(_) => unreachable!("only failures are retried"),
            };
            sleep_until(start).await;
            let retries = self.count.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::debug!(retries, after = ?pause, "report retried: {cause}");
            outcome = attempt(limit.min(due - start)).await;
            last_pause = Some(pause);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    fn refusal(status: u16, body: &str) -> Error {
        Error::Status {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.to_owned(),
        }
    }

    fn not_watched() -> Error {
        refusal(
            404,
            "no watched agent pod is named \"netchecker-agent-x7k2p\": reports are accepted \
             only from the agent pods the server watches",
        )
    }

    /// Run the retries with `due` in `due_in` and answers from `answer(n)`;
    /// returns the outcome and each attempt's start (relative) and limit.
    async fn attempts(
        due_in: Duration,
        retries: &Retries,
        answer: impl Fn(usize) -> Result<()>,
    ) -> (Result<()>, Vec<(Duration, Duration)>) {
        let t0 = Instant::now();
        let seen = RefCell::new(Vec::new());
        let outcome = retries
            .run(t0 + due_in, LIMIT, |limit| {
                let n = seen.borrow().len();
                seen.borrow_mut().push((t0.elapsed(), limit));
                let out = answer(n);
                async move {
                    // The server takes 20 ms to answer.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    out
                }
            })
            .await;
        (outcome, seen.into_inner())
    }

    fn starts(seen: &[(Duration, Duration)]) -> Vec<f64> {
        seen.iter().map(|(at, _)| at.as_secs_f64()).collect()
    }

    #[test]
    fn only_timeouts_count_as_lost() {
        assert!(is_lost(&timed_out(LIMIT)));
        assert!(!is_lost(&not_watched()));
        assert!(!is_lost(&refusal(500, "injected fault")));
        assert!(!is_lost(&Error::NoAddresses { host: "x".into() }));
    }

    #[test]
    fn only_the_not_watched_refusal_counts() {
        assert!(is_not_watched(&not_watched()));
        assert!(!is_not_watched(&refusal(404, "404 page not found")));
        assert!(!is_not_watched(&refusal(400, NOT_WATCHED)));
        assert!(!is_not_watched(&Error::NoAddresses { host: "x".into() }));
    }

    #[tokio::test(start_paused = true)]
    async fn retried_after_1_2_4_seconds_until_accepted() {
        let retries = Retries::default();
        let (outcome, seen) = attempts(Duration::from_secs(60), &retries, |n| {
            if n < 3 { Err(not_watched()) } else { Ok(()) }
        })
        .await;
        outcome.unwrap();
        // Each pause starts when the answer (20 ms) arrived.
        assert_eq!(starts(&seen), [0.0, 1.02, 3.04, 7.06]);
        assert!(seen.iter().all(|(_, limit)| *limit == LIMIT));
        assert_eq!(retries.count(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_starts_at_or_after_the_next_report() {
        let retries = Retries::default();
        let (outcome, seen) =
            attempts(Duration::from_secs(60), &retries, |_| Err(not_watched())).await;
        assert!(is_not_watched(&outcome.unwrap_err()));
        assert_eq!(starts(&seen), [0.0, 1.02, 3.04, 7.06, 15.08, 31.1]);
        assert_eq!(retries.count(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_retry_is_cut_to_end_when_the_next_report_is_due() {
        let retries = Retries::default();
        let (_, seen) = attempts(Duration::from_secs(5), &retries, |_| Err(not_watched())).await;
        assert_eq!(starts(&seen), [0.0, 1.02, 3.04]);
        let limits: Vec<Duration> = seen.iter().map(|(_, l)| *l).collect();
        // A retry never outlasts the time left until the next report.
        assert_eq!(
            limits,
            [
                LIMIT,
                Duration::from_millis(3980),
                Duration::from_millis(1960)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_failures_wait_for_the_next_tick() {
        for error in [
            refusal(500, "injected fault"),
            refusal(404, "404 page not found"),
            refusal(403, NOT_WATCHED),
            Error::Connect {
                host: "netchecker-service".into(),
                addrs: "10.233.0.10:8081".into(),
                source: std::io::ErrorKind::ConnectionRefused.into(),
            },
        ] {
            let retries = Retries::default();
            let text = error.to_string();
            let error = RefCell::new(Some(error));
            let (outcome, seen) = attempts(Duration::from_secs(60), &retries, |_| {
                Err(error.borrow_mut().take().expect("one attempt only"))
            })
            .await;
            assert_eq!(outcome.unwrap_err().to_string(), text);
            assert_eq!(seen.len(), 1, "{text}");
            assert_eq!(retries.count(), 0);
        }
    }

    fn timed_out(limit: Duration) -> Error {
        Error::Timeout {
            phase: crate::Phase::TcpConnect,
            after: limit,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_ran_out_of_time_is_retried_within_the_interval() {
        // 1 s interval, 0.5 s report timeout: the attempt times out at
        // 0.5 s, the retry starts 100 ms later with what is left (0.4 s).
        let retries = Retries::default();
        let t0 = Instant::now();
        let seen = RefCell::new(Vec::new());
        let outcome = retries
            .run(
                t0 + Duration::from_secs(1),
                Duration::from_millis(500),
                |limit| {
                    let n = seen.borrow().len();
                    seen.borrow_mut().push((t0.elapsed(), limit));
                    async move {
                        if n == 0 {
                            tokio::time::sleep(limit).await;
                            Err(timed_out(limit))
                        } else {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(())
                        }
                    }
                },
            )
            .await;
        outcome.unwrap();
        assert_eq!(
            seen.into_inner(),
            [
                (Duration::ZERO, Duration::from_millis(500)),
                (Duration::from_millis(600), Duration::from_millis(400)),
            ]
        );
        assert_eq!(retries.count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_are_retried_after_100_200_400_ms_until_the_next_report() {
        let retries = Retries::default();
        let (outcome, seen) =
            attempts(Duration::from_secs(2), &retries, |_| Err(timed_out(LIMIT))).await;
        assert!(is_lost(&outcome.unwrap_err()));
        // Each attempt fails 20 ms in; the pauses double from 100 ms.
        let millis: Vec<u128> = seen.iter().map(|(at, _)| at.as_millis()).collect();
        assert_eq!(millis, [0, 120, 340, 760, 1580]);
        let limits: Vec<Duration> = seen.iter().map(|(_, l)| *l).collect();
        assert_eq!(
            limits[4],
            Duration::from_millis(420),
            "cut to end by the due time"
        );
        assert_eq!(retries.count(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn an_interval_too_short_for_a_retry_gets_none() {
        let retries = Retries::default();
        let (outcome, seen) =
            attempts(Duration::from_secs(1), &retries, |_| Err(not_watched())).await;
        assert!(outcome.is_err());
        assert_eq!(seen.len(), 1);
    }
}
