//! One `WARN` line for a round whose probes failed, naming the peers and
//! the outcomes, at most one a minute (the rounds in between are counted in
//! the next line); one `INFO` line when every probe succeeds again.

use std::time::Duration;

use netchecker_wire::mesh::{PeerResult, ProbeOutcome};
use tokio::time::Instant;

/// Shortest time between two lines about failed probes.
pub const EVERY: Duration = Duration::from_secs(60);
/// Peers named in one line; the rest are counted.
const NAMED: usize = 5;

/// Whether and when a line about failed probes was last written.
#[derive(Debug, Default)]
pub struct FailureLog {
    last: Option<Instant>,
    /// Rounds with failures since the last line, not logged.
    not_logged: u64,
    /// The last round had failures.
    failing: bool,
}

impl FailureLog {
    /// Note how a round went; log it when it had failures and the last
    /// line is a minute old. Returns whether a line was written.
    pub fn round(&mut self, now: Instant, round: u64, results: &[PeerResult]) -> bool {
        let failed: Vec<&PeerResult> = results
            .iter()
            .filter(|r| r.outcome != ProbeOutcome::Ok)
            .collect();
        if failed.is_empty() {
            if std::mem::take(&mut self.failing) {
                tracing::info!(
                    round,
                    probed = results.len(),
                    "mesh probes all answered again"
                );
                return true;
            }
            return false;
        }
        self.failing = true;
        if self.last.is_some_and(|last| now < last + EVERY) {
            self.not_logged += 1;
            return false;
        }
        let mut peers: Vec<String> = failed
            .iter()
            .take(NAMED)
            .map(|r| format!("{} {} ({})", r.node, outcome_name(r.outcome), r.error))
            .collect();
        if failed.len() > NAMED {
            peers.push(format!("and {} more", failed.len() - NAMED));
        }
        tracing::warn!(
            round,
            failed = failed.len(),
            probed = results.len(),
            rounds_not_logged = self.not_logged,
            "mesh probes failed: {}",
            peers.join(", ")
        );
        self.last = Some(now);
        self.not_logged = 0;
        true
    }
}

/// The outcome as the wire spells it.
pub fn outcome_name(outcome: ProbeOutcome) -> &'static str {
    match outcome {
        ProbeOutcome::Ok => "ok",
        ProbeOutcome::ConnectFailed => "connect_failed",
        ProbeOutcome::TransferFailed => "transfer_failed",
        ProbeOutcome::BadAnswer => "bad_answer",
    }
}
