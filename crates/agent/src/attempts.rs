//! Every attempt at delivering a report, counted.
//!
//! Each request of a report (the first, and each retry) is one attempt;
//! each attempt starts one TCP connection, or two when its connect was
//! raced ([`crate::transport`]). The counts are kept by place (an endpoint,
//! or an address with `--report-to-all-addresses`) for the round under
//! way, so that the next round's report to the same place can tell the
//! server how the previous one went (`report_attempts`, see
//! [`netchecker_wire::ReportAttempts`]), and summed since start for
//! [`crate::Stats`].

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use netchecker_wire::{AttemptCounts, ReportAttempts};

use crate::transport::Connects;

/// Report attempts since the agent started, over every place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Requests made: first attempts and retries.
    pub attempts: u64,
    /// TCP connections started for them, raced ones included.
    pub connects: u64,
    /// Attempts whose connect was raced by a second connection.
    pub raced: u64,
    /// Races that the second connection won.
    pub race_won: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Reports that a place took after a retry (not on the first attempt).
    pub taken_after_retry: u64,
}

impl Attempts {
    fn add(&mut self, c: &AttemptCounts) {
        self.attempts += u64::from(c.attempts);
        self.connects += u64::from(c.connects);
        self.raced += u64::from(c.raced);
        self.race_won += u64::from(c.race_won);
        self.failed += u64::from(c.failed);
        self.taken_after_retry += u64::from(c.taken && !c.first_try);
    }
}

/// This round's counts by place, and the totals since start.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The round under way (or the last one, until the next starts).
    round: BTreeMap<String, AttemptCounts>,
    totals: Attempts,
}

impl Ledger {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Start a round: returns the last round's counts by place (a round
    /// cut short included, with the attempts it finished), and begins anew.
    pub fn new_round(&self) -> BTreeMap<String, AttemptCounts> {
        std::mem::take(&mut self.state().round)
    }

    /// Attempt number `n` (1 for the first) of this round's report to
    /// `place`: its connections, and whether the place took the report.
    pub fn record(&self, place: &str, n: u32, connects: &Connects, taken: bool) {
        let mut state = self.state();
        let mut one = AttemptCounts {
            attempts: 1,
            connects: connects.started(),
            raced: u32::from(connects.raced()),
            race_won: u32::from(connects.race_won()),
            failed: u32::from(!taken),
            taken,
            first_try: taken && n == 1,
        };
        state.totals.add(&one);
        let c = state.round.entry(place.to_owned()).or_default();
        c.attempts += one.attempts;
        c.connects += one.connects;
        c.raced += one.raced;
        c.race_won += one.race_won;
        c.failed += one.failed;
        c.taken |= one.taken;
        c.first_try |= one.first_try;
        one = *c;
        drop(state);
        tracing::trace!(place, attempt = n, ?one, "report attempt");
    }

    /// The totals since start.
    pub fn totals(&self) -> Attempts {
        self.state().totals
    }

    /// This round's counts, summed over its places.
    pub fn round_sum(&self) -> Attempts {
        let mut sum = Attempts::default();
        for c in self.state().round.values() {
            sum.add(c);
        }
        sum
    }
}

/// The `report_attempts` field of attempt `attempt` of a report, given how
/// the previous report to the same place went; `None` (no field at all)
/// when there is nothing to tell: the first attempt of the first report.
pub(crate) fn field(attempt: u32, previous: Option<AttemptCounts>) -> Option<ReportAttempts> {
    (attempt > 1 || previous.is_some()).then_some(ReportAttempts { attempt, previous })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_add_up_by_place_and_round() {
        let ledger = Ledger::default();
        let one = Connects::default();
        ledger.record("a", 1, &one, false);
        ledger.record("a", 2, &one, true);
        ledger.record("b", 1, &one, true);
        let round = ledger.new_round();
        assert_eq!(
            round["a"],
            AttemptCounts {
                attempts: 2,
                failed: 1,
                taken: true,
                first_try: false,
                ..AttemptCounts::default()
            }
        );
        assert!(round["b"].first_try && round["b"].taken);
        assert_eq!(ledger.totals().attempts, 3);
        assert_eq!(ledger.totals().failed, 1);
        assert_eq!(ledger.totals().taken_after_retry, 1);
        // The next round starts empty.
        assert!(ledger.new_round().is_empty());
        assert_eq!(ledger.round_sum(), Attempts::default());
    }

    #[test]
    fn the_field_is_left_out_only_when_there_is_nothing_to_tell() {
        assert_eq!(field(1, None), None);
        assert_eq!(
            field(2, None),
            Some(ReportAttempts {
                attempt: 2,
                previous: None
            })
        );
        let previous = AttemptCounts {
            attempts: 1,
            taken: true,
            first_try: true,
            ..AttemptCounts::default()
        };
        assert_eq!(field(1, Some(previous)).unwrap().previous, Some(previous));
    }
}
