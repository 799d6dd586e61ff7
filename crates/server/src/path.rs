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
    /// Mesh probes that connected, and of those the ones whose first SYN
    /// went unanswered.
    mesh_probes: u16,
    mesh_unanswered: u16,
    /// The probes of the server: total times in milliseconds.
    probes: Samples,
    /// The mesh probes that completed: connect to answer read, in
    /// microseconds.
    mesh_rtt: Samples,
}

/// Times sampled: how many, the largest, their sum and sum of squares
/// (saturating: a window holds far fewer than would saturate them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Samples {
    n: u32,
    max: u32,
    sum: u64,
    sum_sq: u64,
}

impl Samples {
    fn push(&mut self, x: u32) {
        self.n = self.n.saturating_add(1);
        self.max = self.max.max(x);
        self.sum = self.sum.saturating_add(u64::from(x));
        self.sum_sq = self.sum_sq.saturating_add(u64::from(x) * u64::from(x));
    }

    fn add(&mut self, o: &Samples) {
        self.n = self.n.saturating_add(o.n);
        self.max = self.max.max(o.max);
        self.sum = self.sum.saturating_add(o.sum);
        self.sum_sq = self.sum_sq.saturating_add(o.sum_sq);
    }

    /// The spread in milliseconds of samples in units of `1 / per_ms` ms;
    /// `None` without a sample.
    fn spread(&self, per_ms: f64) -> Option<Spread> {
        if self.n == 0 {
            return None;
        }
        let n = f64::from(self.n);
        // Sums of milliseconds or microseconds: exact in f64 far beyond
        // what a window holds.
        #[allow(clippy::cast_precision_loss)]
        let (sum, sum_sq) = (self.sum as f64, self.sum_sq as f64);
        let mean = sum / n;
        let var = (sum_sq / n - mean * mean).max(0.0);
        Some(Spread {
            samples: self.n,
            mean: round3(mean / per_ms),
            stddev: round3(var.sqrt() / per_ms),
            max: f64::from(self.max) / per_ms,
        })
    }
}

/// An agent's last [`WINDOW_MINUTES`] minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathWindow {
    buckets: [Bucket; WINDOW_MINUTES as usize],
    /// Reports still to come whose `previous` counts are left out: they
    /// tell of reports sent across the end of an outage.
    skip_previous: u8,
}

/// Counts over a window, summed over buckets or agents.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PathCounts {
    pub reports: u32,
    pub attempts: u32,
    pub unanswered: u32,
    pub failed: u32,
    pub mesh_probes: u32,
    pub mesh_unanswered: u32,
    probes: Samples,
    mesh_rtt: Samples,
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
        let skip = self.skip_previous > 0;
        self.skip_previous = self.skip_previous.saturating_sub(1);
        let b = self.bucket(minute);
        // A report no attempt got through is an outage (shown as such:
        // the agent is late), not a lossy path: left out.
        if let Some(p) = previous.filter(|p| p.taken && !skip) {
            b.reports = b.reports.saturating_add(1);
            b.attempts = b.attempts.saturating_add(sat16(p.attempts));
            b.unanswered = b.unanswered.saturating_add(sat16(p.raced.min(p.attempts)));
            b.failed = b.failed.saturating_add(sat16(p.failed.min(p.attempts)));
        }
        for ms in probe_ms {
            b.probes.push(ms);
        }
    }

    /// Note that the report about to be recorded ends an outage (the
    /// agent was late: none of its reports got through for longer than
    /// its outdated window). Its `previous` tells of a report that never
    /// got through (left out anyway); the next report's tells of this
    /// one, whose first connection may have been started while the path
    /// was still down and raced one that got through once it was back:
    /// the end of an outage, not loss. Both are left out.
    pub fn outage_ended(&mut self) {
        self.skip_previous = 2;
    }

    /// Note the mesh probes of a report received at `minute`: a probe
    /// whose connect failed is the mesh's verdict (a pair that cannot
    /// connect), not loss, and is left out.
    pub fn record_mesh(&mut self, minute: u64, results: &[PeerResult]) {
        let b = self.bucket(minute);
        for r in results {
            if r.outcome == ProbeOutcome::ConnectFailed {
                continue;
            }
            b.mesh_probes = b.mesh_probes.saturating_add(1);
            b.mesh_unanswered = b.mesh_unanswered.saturating_add(u16::from(r.raced));
            if r.outcome == ProbeOutcome::Ok {
                b.mesh_rtt
                    .push(u32::try_from(r.transfer_us).unwrap_or(u32::MAX));
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
                mesh_probes: u32::from(b.mesh_probes),
                mesh_unanswered: u32::from(b.mesh_unanswered),
                probes: b.probes,
                mesh_rtt: b.mesh_rtt,
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
        self.mesh_probes += o.mesh_probes;
        self.mesh_unanswered += o.mesh_unanswered;
        self.probes.add(&o.probes);
        self.mesh_rtt.add(&o.mesh_rtt);
    }

    /// Share of attempts whose first connection went unanswered (0 with
    /// no attempt).
    pub fn loss_ratio(&self) -> f64 {
        share(self.unanswered, self.attempts)
    }

    /// Lossy at `threshold`: enough attempts, and the ratio at least it.
    pub fn is_lossy(&self, threshold: f64) -> bool {
        threshold > 0.0 && self.attempts >= MIN_ATTEMPTS && self.loss_ratio() >= threshold
    }

    /// The probes' spread (`None` without a probe).
    pub fn probe_spread(&self) -> Option<Spread> {
        self.probes.spread(1.0)
    }

    /// The share of mesh probes that connected whose first SYN went
    /// unanswered (0 without one).
    pub fn mesh_loss_ratio(&self) -> f64 {
        share(self.mesh_unanswered, self.mesh_probes)
    }

    /// The mesh figures, when a mesh probe connected in the window.
    pub fn mesh_figures(&self) -> Option<MeshPathFigures> {
        (self.mesh_probes > 0).then(|| MeshPathFigures {
            probes: self.mesh_probes,
            unanswered: self.mesh_unanswered,
            loss_ratio: round3(self.mesh_loss_ratio()),
            rtt_ms: self.mesh_rtt.spread(1000.0),
        })
    }

    /// The figures shown, when there is anything to show.
    pub fn figures(&self) -> Option<PathFigures> {
        if self.reports == 0 && self.probes.n == 0 && self.mesh_probes == 0 {
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
    // The mesh's figure, when there is one, as a second witness.
    let mesh = c
        .mesh_figures()
        .map(|m| {
            format!(
                "; {:.0}% of its mesh probes of peers went unanswered at first ({} of {})",
                m.loss_ratio * 100.0,
                m.unanswered,
                m.probes
            )
        })
        .unwrap_or_default();
    format!(
        "{:.0}% of report connections to the server went unanswered at first ({} of {} in the last {} minutes, {} failed){jitter}: the node's path loses packets; reports still get through{mesh}",
        c.loss_ratio() * 100.0,
        c.unanswered,
        c.attempts,
        WINDOW_MINUTES,
        c.failed
    )
}

/// `part / whole`, 0 when `whole` is.
fn share(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
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
        // A lossy reason quotes the mesh's figure beside the path's.
        let mut lossy = c;
        lossy.attempts = 40;
        lossy.unanswered = 8;
        assert!(
            lossy_reason(&lossy).ends_with(
                "reports still get through; 25% of its mesh probes of peers went unanswered at first (1 of 4)"
            ),
            "{}",
            lossy_reason(&lossy)
        );
        assert!(!lossy_reason(&PathCounts::default()).contains("mesh"));
    }

    #[test]
    fn the_two_reports_after_an_outage_tell_nothing_of_loss() {
        let mut w = PathWindow::default();
        w.outage_ended();
        // The first after the outage: its predecessor never got through.
        w.record(0, Some(&AttemptCounts::default()), [3]);
        // The next: the first raced a SYN sent while the path was down.
        w.record(0, Some(&counts(1, 1, 0)), [3]);
        assert_eq!((w.counts(0).attempts, w.counts(0).unanswered), (0, 0));
        assert_eq!(w.counts(0).probe_spread().unwrap().samples, 2);
        // From then on, a raced report counts.
        w.record(0, Some(&counts(1, 1, 0)), [3]);
        assert_eq!((w.counts(0).attempts, w.counts(0).unanswered), (1, 1));
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
