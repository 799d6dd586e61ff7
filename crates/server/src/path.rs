//! How an agent's reports get through to the server, over a sliding
//! window, pure: from the `report_attempts` our agents send (how many
//! requests and connections their previous report took, how many SYNs went
//! unanswered within the race delay, how many requests failed) and from
//! the total times of their HTTP probes of the server; beside them, from
//! the agents' mesh probes of their peers (how many connected, how many of
//! those had to race an unanswered SYN, their round trips). What it gives
//! is a figure (loss ratio, jitter), not a state: a node is `lossy` when
//! its agents' pooled ratio of report connections is at least the
//! policy's threshold over enough attempts to mean something. The mesh's
//! ratio is shown, not judged: a handshake lost between two nodes may be
//! either node's, and on a small cluster a clean node's share of pairs
//! with a lossy one is large.

use netchecker_wire::mesh::{PeerResult, ProbeOutcome};
use netchecker_wire::{AttemptCounts, MeshPathFigures, PathFigures, Spread};

/// Minutes the window spans: the current one and the four before it.
pub const WINDOW_MINUTES: u64 = 5;
/// Fewest attempts in the window for a loss ratio to judge by (with
/// fewer, one lost SYN would be a large share).
pub const MIN_ATTEMPTS: u32 = 20;

/// The minute of `now` since `started`: windows count in these.
pub fn minute(now: tokio::time::Instant, started: tokio::time::Instant) -> u64 {
    now.saturating_duration_since(started).as_secs() / 60
}

/// One minute of an agent's reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    /// Minutes since the server started; buckets of older minutes are
    /// reused.
    minute: u32,
    reports: u16,
    attempts: u16,
    unanswered: u16,
    failed: u16,
    probes: u16,
    probe_max: u16,
    probe_sum: u32,
    probe_sum_sq: u64,
    mesh: MeshBucket,
}

/// One minute of an agent's mesh probes: those that connected, those of
/// them whose first SYN went unanswered, and the round trips (connect to
/// answer read, in microseconds) of those that completed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct MeshBucket {
    probes: u16,
    unanswered: u16,
    rtts: u16,
    rtt_max_us: u32,
    rtt_sum_us: u64,
    rtt_sum_sq_us: u64,
}

/// An agent's last [`WINDOW_MINUTES`] minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathWindow {
    buckets: [Bucket; WINDOW_MINUTES as usize],
}

/// Counts over a window, summed over buckets or agents.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PathCounts {
    pub reports: u32,
    pub attempts: u32,
    pub unanswered: u32,
    pub failed: u32,
    probes: u32,
    probe_max: u32,
    probe_sum: u64,
    probe_sum_sq: u64,
    pub mesh_probes: u32,
    pub mesh_unanswered: u32,
    mesh_rtts: u32,
    mesh_rtt_max_us: u32,
    mesh_rtt_sum_us: u64,
    mesh_rtt_sum_sq_us: u64,
}

fn sat16(n: u32) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

impl PathWindow {
    /// Note a report received at `minute` (since the server started) that
    /// says how its predecessor went (`previous`), with its probes' total
    /// times in milliseconds.
    pub fn record(
        &mut self,
        minute: u64,
        previous: Option<&AttemptCounts>,
        probe_ms: impl IntoIterator<Item = u32>,
    ) {
        let b = self.bucket(minute);
        // A report no attempt got through is an outage (shown as such:
        // the agent is late), not a lossy path: left out.
        if let Some(p) = previous.filter(|p| p.taken) {
            b.reports = b.reports.saturating_add(1);
            b.attempts = b.attempts.saturating_add(sat16(p.attempts));
            b.unanswered = b.unanswered.saturating_add(sat16(p.raced.min(p.attempts)));
            b.failed = b.failed.saturating_add(sat16(p.failed.min(p.attempts)));
        }
        for ms in probe_ms {
            let ms16 = sat16(ms);
            b.probes = b.probes.saturating_add(1);
            b.probe_max = b.probe_max.max(ms16);
            b.probe_sum = b.probe_sum.saturating_add(u32::from(ms16));
            b.probe_sum_sq = b
                .probe_sum_sq
                .saturating_add(u64::from(ms16) * u64::from(ms16));
        }
    }

    /// Note the mesh probes of a report received at `minute`: a probe
    /// whose connect failed is the mesh's verdict (a pair that cannot
    /// connect), not loss, and is left out.
    pub fn record_mesh(&mut self, minute: u64, results: &[PeerResult]) {
        let m = &mut self.bucket(minute).mesh;
        for r in results {
            if r.outcome == ProbeOutcome::ConnectFailed {
                continue;
            }
            m.probes = m.probes.saturating_add(1);
            m.unanswered = m.unanswered.saturating_add(u16::from(r.raced));
            if r.outcome == ProbeOutcome::Ok {
                let us = u32::try_from(r.transfer_us).unwrap_or(u32::MAX);
                m.rtts = m.rtts.saturating_add(1);
                m.rtt_max_us = m.rtt_max_us.max(us);
                m.rtt_sum_us = m.rtt_sum_us.saturating_add(u64::from(us));
                m.rtt_sum_sq_us = m
                    .rtt_sum_sq_us
                    .saturating_add(u64::from(us) * u64::from(us));
            }
        }
    }

    /// The bucket of `minute`, emptied first when it held an older one.
    fn bucket(&mut self, minute: u64) -> &mut Bucket {
        let minute = u32::try_from(minute).unwrap_or(u32::MAX);
        let slot = minute as usize % self.buckets.len();
        let b = &mut self.buckets[slot];
        if b.minute != minute {
            *b = Bucket {
                minute,
                ..Bucket::default()
            };
        }
        b
    }

    /// The counts of the window that ends at `minute`.
    pub fn counts(&self, minute: u64) -> PathCounts {
        let mut c = PathCounts::default();
        for b in &self.buckets {
            let age = minute.checked_sub(u64::from(b.minute));
            if age.is_none_or(|a| a >= WINDOW_MINUTES) || *b == Bucket::default() {
                continue;
            }
            c.add(&PathCounts {
                reports: u32::from(b.reports),
                attempts: u32::from(b.attempts),
                unanswered: u32::from(b.unanswered),
                failed: u32::from(b.failed),
                probes: u32::from(b.probes),
                probe_max: u32::from(b.probe_max),
                probe_sum: u64::from(b.probe_sum),
                probe_sum_sq: b.probe_sum_sq,
                mesh_probes: u32::from(b.mesh.probes),
                mesh_unanswered: u32::from(b.mesh.unanswered),
                mesh_rtts: u32::from(b.mesh.rtts),
                mesh_rtt_max_us: b.mesh.rtt_max_us,
                mesh_rtt_sum_us: b.mesh.rtt_sum_us,
                mesh_rtt_sum_sq_us: b.mesh.rtt_sum_sq_us,
            });
        }
        c
    }
}

impl PathCounts {
    pub fn add(&mut self, o: &PathCounts) {
        self.reports += o.reports;
        self.attempts += o.attempts;
        self.unanswered += o.unanswered;
        self.failed += o.failed;
        self.probes += o.probes;
        self.probe_max = self.probe_max.max(o.probe_max);
        self.probe_sum += o.probe_sum;
        self.probe_sum_sq += o.probe_sum_sq;
        self.mesh_probes += o.mesh_probes;
        self.mesh_unanswered += o.mesh_unanswered;
        self.mesh_rtts += o.mesh_rtts;
        self.mesh_rtt_max_us = self.mesh_rtt_max_us.max(o.mesh_rtt_max_us);
        self.mesh_rtt_sum_us = self.mesh_rtt_sum_us.saturating_add(o.mesh_rtt_sum_us);
        self.mesh_rtt_sum_sq_us = self.mesh_rtt_sum_sq_us.saturating_add(o.mesh_rtt_sum_sq_us);
    }

    /// Share of attempts whose first connection went unanswered (0 with
    /// no attempt).
    pub fn loss_ratio(&self) -> f64 {
        if self.attempts == 0 {
            0.0
        } else {
            f64::from(self.unanswered) / f64::from(self.attempts)
        }
    }

    /// Lossy at `threshold`: enough attempts, and the ratio at least it.
    pub fn is_lossy(&self, threshold: f64) -> bool {
        threshold > 0.0 && self.attempts >= MIN_ATTEMPTS && self.loss_ratio() >= threshold
    }

    /// The probes' spread (`None` without a probe).
    pub fn probe_spread(&self) -> Option<Spread> {
        spread(
            self.probes,
            self.probe_sum,
            self.probe_sum_sq,
            self.probe_max,
            1.0,
        )
    }

    /// The share of mesh probes that connected whose first SYN went
    /// unanswered (0 without one).
    pub fn mesh_loss_ratio(&self) -> f64 {
        if self.mesh_probes == 0 {
            0.0
        } else {
            f64::from(self.mesh_unanswered) / f64::from(self.mesh_probes)
        }
    }

    /// The mesh figures, when a mesh probe connected in the window.
    pub fn mesh_figures(&self) -> Option<MeshPathFigures> {
        (self.mesh_probes > 0).then(|| MeshPathFigures {
            probes: self.mesh_probes,
            unanswered: self.mesh_unanswered,
            loss_ratio: round3(self.mesh_loss_ratio()),
            rtt_ms: spread(
                self.mesh_rtts,
                self.mesh_rtt_sum_us,
                self.mesh_rtt_sum_sq_us,
                self.mesh_rtt_max_us,
                1000.0,
            ),
        })
    }

    /// The figures shown, when there is anything to show.
    pub fn figures(&self) -> Option<PathFigures> {
        if self.reports == 0 && self.probes == 0 && self.mesh_probes == 0 {
            return None;
        }
        Some(PathFigures {
            window_seconds: WINDOW_MINUTES * 60,
            reports: self.reports,
            attempts: self.attempts,
            unanswered: self.unanswered,
            failed: self.failed,
            loss_ratio: round3(self.loss_ratio()),
            probe_ms: self.probe_spread(),
            mesh: self.mesh_figures(),
        })
    }
}

/// The spread of `n` samples from their sum, sum of squares and maximum,
/// in milliseconds (samples in units of `1 / per_ms` ms); `None` without
/// a sample.
fn spread(n: u32, sum: u64, sum_sq: u64, max: u32, per_ms: f64) -> Option<Spread> {
    if n == 0 {
        return None;
    }
    let count = f64::from(n);
    // Sums of milliseconds or microseconds: exact in f64 far beyond what a
    // window holds.
    #[allow(clippy::cast_precision_loss)]
    let (sum, sum_sq) = (sum as f64, sum_sq as f64);
    let mean = sum / count;
    let var = (sum_sq / count - mean * mean).max(0.0);
    Some(Spread {
        samples: n,
        mean: round3(mean / per_ms),
        stddev: round3(var.sqrt() / per_ms),
        max: f64::from(max) / per_ms,
    })
}

/// The reason of a `lossy` node, from its agents' pooled counts.
pub fn lossy_reason(c: &PathCounts) -> String {
    let jitter = c
        .probe_spread()
        .map(|s| {
            format!(
                "; probes of the server take {:.1} ms ± {:.1} ms",
                s.mean, s.stddev
            )
        })
        .unwrap_or_default();
    format!(
        "{:.0}% of report connections to the server went unanswered at first ({} of {} in the last {} minutes, {} failed){jitter}: the node's path loses packets; reports still get through",
        c.loss_ratio() * 100.0,
        c.unanswered,
        c.attempts,
        WINDOW_MINUTES,
        c.failed
    )
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(attempts: u32, raced: u32, failed: u32) -> AttemptCounts {
        AttemptCounts {
            attempts,
            connects: attempts + raced,
            raced,
            race_won: raced,
            failed,
            taken: true,
            first_try: failed == 0,
        }
    }

    #[test]
    fn the_ratio_counts_unanswered_handshakes_over_the_window_only() {
        let mut w = PathWindow::default();
        // Minute 0: 10 reports, 2 of whose requests raced.
        for i in 0..10 {
            w.record(0, Some(&counts(1, u32::from(i < 2), 0)), [3]);
        }
        let c = w.counts(0);
        assert_eq!((c.reports, c.attempts, c.unanswered), (10, 10, 2));
        assert!((c.loss_ratio() - 0.2).abs() < 1e-9);
        assert!(!c.is_lossy(0.05), "too few attempts to judge");
        // Minutes 1-4: 10 more each, none lost; with 50 attempts the ratio
        // is 4%, under a 5% threshold, over 3%.
        for m in 1..5 {
            for _ in 0..10 {
                w.record(m, Some(&counts(1, 0, 0)), [3]);
            }
        }
        let c = w.counts(4);
        assert_eq!(c.attempts, 50);
        assert!(!c.is_lossy(0.05) && c.is_lossy(0.03));
        // Minute 5: minute 0 leaves the window (its bucket is reused).
        w.record(5, Some(&counts(1, 0, 0)), []);
        assert_eq!(w.counts(5).unanswered, 0);
        assert_eq!(w.counts(5).attempts, 41);
        // Long after: nothing.
        assert_eq!(w.counts(60), PathCounts::default());
        assert_eq!(w.counts(60).figures(), None);
    }

    fn peer(outcome: ProbeOutcome, raced: bool, transfer_us: u64) -> PeerResult {
        PeerResult {
            node: "n".into(),
            address: "198.18.0.9".into(),
            outcome,
            connect_us: 300,
            transfer_us,
            raced,
            ..PeerResult::default()
        }
    }

    #[test]
    fn mesh_probes_count_what_connected_and_leave_the_window_with_their_minute() {
        let mut w = PathWindow::default();
        // Minute 0: four probes connected, one of them raced, two
        // completed (1 and 3 ms); one did not connect (not loss).
        w.record_mesh(
            0,
            &[
                peer(ProbeOutcome::Ok, true, 1000),
                peer(ProbeOutcome::Ok, false, 3000),
                peer(ProbeOutcome::TransferFailed, false, 0),
                peer(ProbeOutcome::BadAnswer, false, 0),
                peer(ProbeOutcome::ConnectFailed, true, 0),
            ],
        );
        let c = w.counts(0);
        assert_eq!((c.mesh_probes, c.mesh_unanswered), (4, 1));
        let f = c
            .figures()
            .expect("mesh probes alone are something to show");
        assert_eq!(f.attempts, 0);
        let m = f.mesh.unwrap();
        assert_eq!((m.probes, m.unanswered, m.loss_ratio), (4, 1, 0.25));
        assert_eq!(
            m.rtt_ms,
            Some(Spread {
                samples: 2,
                mean: 2.0,
                stddev: 1.0,
                max: 3.0
            })
        );
        // Pooled with another agent's counts.
        let mut pooled = c;
        pooled.add(&c);
        assert_eq!(pooled.mesh_figures().unwrap().probes, 8);
        // Five minutes on, minute 0 has left the window.
        w.record_mesh(5, &[peer(ProbeOutcome::Ok, false, 500)]);
        let m = w.counts(5).mesh_figures().unwrap();
        assert_eq!((m.probes, m.unanswered, m.loss_ratio), (1, 0, 0.0));
        assert_eq!(PathCounts::default().mesh_figures(), None);
    }

    #[test]
    fn a_report_that_never_got_through_is_an_outage_not_loss() {
        let mut w = PathWindow::default();
        // A cut link: five rounds whose every attempt went unanswered.
        for _ in 0..5 {
            let lost = AttemptCounts {
                taken: false,
                ..counts(4, 4, 4)
            };
            w.record(0, Some(&lost), []);
        }
        w.record(0, Some(&counts(1, 0, 0)), []);
        let c = w.counts(0);
        assert_eq!((c.reports, c.attempts, c.unanswered), (1, 1, 0));
    }

    #[test]
    fn retries_and_failures_count_and_odd_counts_are_bounded() {
        let mut w = PathWindow::default();
        w.record(0, Some(&counts(3, 1, 2)), []);
        // A report claiming more races than requests counts as many.
        w.record(0, Some(&counts(1, 7, 9)), []);
        // A first report tells nothing about a previous one.
        w.record(0, None, [5]);
        let c = w.counts(0);
        assert_eq!(
            (c.reports, c.attempts, c.unanswered, c.failed),
            (2, 4, 2, 3)
        );
        let mut pooled = PathCounts::default();
        pooled.add(&c);
        pooled.add(&c);
        assert_eq!(pooled.attempts, 8);
    }

    #[test]
    fn the_probe_spread_is_the_mean_and_standard_deviation() {
        let mut w = PathWindow::default();
        w.record(0, None, [2, 4, 4, 4]);
        w.record(1, None, [5, 5, 7, 9]);
        let s = w.counts(1).probe_spread().unwrap();
        assert_eq!((s.samples, s.mean, s.stddev, s.max), (8, 5.0, 2.0, 9.0));
        let f = w.counts(1).figures().unwrap();
        assert_eq!((f.reports, f.attempts, f.loss_ratio), (0, 0, 0.0));
        assert_eq!(f.window_seconds, 300);
    }
}
