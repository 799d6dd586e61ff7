//! How an agent's attempts at delivering its reports went: our agents only.
//!
//! A report may carry `report_attempts` after its original fields, just
//! before `zero_extender` ([`crate::OutgoingReport`]). Every server that
//! predates it skips it as an unknown key, and an agent leaves it out when
//! it has nothing to say (the first attempt of its first report), so such
//! a report is exactly what it always was. Our server reads it as
//! [`crate::AgentReport::report_attempts`] and takes it out before storing
//! the report (which so keeps the original's shape): how many connections
//! and attempts the previous report took, and whether the first got
//! through, tell how lossy the agent's path to the server is.

use serde::{Deserialize, Serialize};

/// The `report_attempts` field of a report.
///
/// ```json
/// "report_attempts": {"attempt": 1,
///   "previous": {"attempts": 2, "connects": 3, "raced": 1, "race_won": 1,
///                "failed": 1, "taken": true, "first_try": false}}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAttempts {
    /// Which attempt at sending this report this request is, within its
    /// round: 1 for the first, 2 for the first retry, and so on.
    #[serde(default)]
    pub attempt: u32,
    /// How the previous report to the same server went; absent for the
    /// agent's first report to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<AttemptCounts>,
}

/// How one report's delivery to one server went, over its round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttemptCounts {
    /// Requests made: the first attempt and every retry.
    pub attempts: u32,
    /// TCP connections started, a second one raced beside an unanswered
    /// SYN included.
    pub connects: u32,
    /// Attempts whose connect was not done within the race delay, so that
    /// a second connection was started beside the first.
    pub raced: u32,
    /// Of those, the ones where the second connection connected first.
    pub race_won: u32,
    /// Attempts that failed (timeout, connection refused or broken, an
    /// answer other than 2xx).
    pub failed: u32,
    /// The server took the report (on some attempt).
    pub taken: bool,
    /// The server took it on the first attempt, without a retry.
    pub first_try: bool,
}
