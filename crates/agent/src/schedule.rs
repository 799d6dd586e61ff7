//! The timer loop: a round at once, then one per interval, until shutdown.
//!
//! Ticks follow `tokio::time::interval`, so the schedule does not drift with
//! the time a round takes. Rounds run one after the other, never side by
//! side: each is bounded by its own timeouts (below the interval) and, as a
//! last guard, abandoned when it outlives a whole interval; a tick missed
//! meanwhile fires once, right away, and the schedule continues from there.
//! Shutdown interrupts a round in the middle (probes included).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::time::{MissedTickBehavior, interval, timeout};
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// What the loop did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Rounds started.
    pub rounds: u64,
    /// Rounds whose report a server accepted (at least one of them, when
    /// there are several).
    pub sent: u64,
    /// Rounds that failed (network, timeout, refusal: at every server).
    pub failed: u64,
    /// Report attempts made again within a round because the server did
    /// not watch the pod yet; filled in by [`crate::run`] from the agent.
    pub retries: u64,
    /// Report attempts sent without a token because the token file could
    /// not be used; filled in by [`crate::run`] from the agent.
    pub without_token: u64,
    /// Mesh probes sent to peers; filled in by [`crate::run`].
    pub mesh_probes: u64,
    /// Mesh probes whose outcome was not `ok`; filled in by [`crate::run`].
    pub mesh_failed: u64,
    /// Rounds whose report each place took and did not take, by place (an
    /// endpoint's `host:port`, or with `--report-to-all-addresses` each
    /// address); filled in by [`crate::run`] from [`crate::Agent::target_counts`].
    pub targets: BTreeMap<String, crate::TargetCounts>,
    /// Every report attempt: requests, connections, races and their
    /// winners, failures, reports taken after a retry; filled in by
    /// [`crate::run`] from [`crate::Agent::attempts`].
    pub attempts: crate::Attempts,
}

/// Run `round` at once and then every `period` until `shutdown` is
/// cancelled. Each outcome is logged and counted; a failure never stops the
/// loop.
pub async fn schedule<F, Fut>(period: Duration, shutdown: CancellationToken, mut round: F) -> Stats
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut ticker = interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stats = Stats::default();
    let mut consecutive_failures = 0u64;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        stats.rounds += 1;
        let outcome = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = timeout(period, round()) => r.unwrap_or(Err(Error::RoundTimeout(period))),
        };
        match outcome {
            Ok(()) => {
                stats.sent += 1;
                if stats.sent == 1 {
                    tracing::info!("first report accepted by the server");
                } else if consecutive_failures > 0 {
                    tracing::info!(
                        after_failures = consecutive_failures,
                        "report accepted again"
                    );
                } else {
                    tracing::debug!(sent = stats.sent, "report accepted");
                }
                consecutive_failures = 0;
            }
            Err(e) => {
                stats.failed += 1;
                consecutive_failures += 1;
                tracing::error!(
                    failed = stats.failed,
                    consecutive = consecutive_failures,
                    "report failed: {e}; retrying in {period:?}"
                );
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use tokio::time::{Instant, sleep};

    use super::*;

    const PERIOD: Duration = Duration::from_secs(10);

    /// Start times of the rounds, relative to the start of the loop.
    type Log = Rc<RefCell<Vec<Duration>>>;

    /// Run the loop with a round that records its start and then behaves as
    /// `behave(n)` says, until `stop_after` of virtual time.
    async fn run_for<B, Fut>(stop_after: Duration, behave: B) -> (Stats, Vec<Duration>)
    where
        B: Fn(usize) -> Fut + 'static,
        Fut: Future<Output = Result<()>> + 'static,
    {
        let t0 = Instant::now();
        let log: Log = Rc::default();
        let shutdown = CancellationToken::new();
        let stopper = shutdown.clone();
        let log2 = log.clone();
        let running = Rc::new(RefCell::new(0usize));
        let stats = tokio::join!(
            schedule(PERIOD, shutdown, move || {
                let n = log2.borrow().len();
                log2.borrow_mut().push(t0.elapsed());
                let running = running.clone();
                let fut = behave(n);
                async move {
                    *running.borrow_mut() += 1;
                    assert_eq!(*running.borrow(), 1, "rounds overlap");
                    struct Done(Rc<RefCell<usize>>);
                    impl Drop for Done {
                        fn drop(&mut self) {
                            *self.0.borrow_mut() -= 1;
                        }
                    }
                    let _done = Done(running);
                    fut.await
                }
            }),
            async move {
                sleep(stop_after).await;
                stopper.cancel();
            }
        )
        .0;
        let starts = log.borrow().clone();
        (stats, starts)
    }

    fn secs(list: &[f64]) -> Vec<Duration> {
        list.iter().map(|s| Duration::from_secs_f64(*s)).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn first_round_at_once_then_every_period_without_drift() {
        // Each round takes 3 s; the schedule must not slide by 3 s per round.
        let (stats, starts) = run_for(Duration::from_secs(42), |_| async {
            sleep(Duration::from_secs(3)).await;
            Ok(())
        })
        .await;
        assert_eq!(starts, secs(&[0.0, 10.0, 20.0, 30.0, 40.0]));
        assert_eq!(
            stats,
            Stats {
                rounds: 5,
                sent: 4,
                failed: 0,
                ..Stats::default()
            },
            "the round running at shutdown is cut short and not counted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_counted_and_retried_at_the_next_tick() {
        let (stats, starts) = run_for(Duration::from_secs(35), |n| async move {
            if n % 2 == 0 {
                Err(Error::NoAddresses {
                    host: "netchecker-service".into(),
                })
            } else {
                Ok(())
            }
        })
        .await;
        assert_eq!(starts, secs(&[0.0, 10.0, 20.0, 30.0]));
        assert_eq!(
            stats,
            Stats {
                rounds: 4,
                sent: 2,
                failed: 2,
                ..Stats::default()
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_round_is_abandoned_and_never_overlaps_the_next() {
        // Round 1 hangs forever: it is cut at one period, and the missed
        // tick fires right then, not on top of the stuck round.
        let (stats, starts) = run_for(Duration::from_secs(45), |n| async move {
            if n == 1 {
                std::future::pending::<()>().await;
            }
            Ok(())
        })
        .await;
        assert_eq!(starts, secs(&[0.0, 10.0, 20.0, 30.0, 40.0]));
        assert_eq!(
            stats,
            Stats {
                rounds: 5,
                sent: 4,
                failed: 1,
                ..Stats::default()
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_longer_than_expected_delays_the_next_tick_without_a_burst() {
        // Round 0 takes 25 s, which cannot happen with real timeouts but
        // shows the guard: it is abandoned at 10 s and the loop goes on.
        let (_, starts) = run_for(Duration::from_secs(31), |n| async move {
            if n == 0 {
                sleep(Duration::from_secs(25)).await;
            }
            Ok(())
        })
        .await;
        assert_eq!(starts, secs(&[0.0, 10.0, 20.0, 30.0]));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_interrupts_a_round_at_once() {
        let t0 = Instant::now();
        let shutdown = CancellationToken::new();
        let stopper = shutdown.clone();
        let stats = tokio::join!(
            schedule(PERIOD, shutdown, || async {
                sleep(Duration::from_secs(9)).await;
                Ok(())
            }),
            async move {
                sleep(Duration::from_secs(1)).await;
                stopper.cancel();
            }
        )
        .0;
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
        assert_eq!(
            stats,
            Stats {
                rounds: 1,
                sent: 0,
                failed: 0,
                ..Stats::default()
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_token_stops_before_any_round() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let stats = schedule(PERIOD, shutdown, || async { Ok(()) }).await;
        assert_eq!(stats, Stats::default());
    }
}
