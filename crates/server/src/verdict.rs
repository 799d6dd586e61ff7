//! The verdict: a pure function from what is expected and what was received
//! to a state per agent and the v1 connectivity-check answer.
//!
//! Every rule of the check lives here and takes time as an argument, so the
//! rules are tested exhaustively without I/O or sleeping.

use std::time::Duration;

use netchecker_wire::CheckResponse;
use tokio::time::Instant;

/// Tunables of the verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// An agent is outdated once its last report is older than
    /// `outdated_factor` times its own report interval.
    pub outdated_factor: f64,
    /// For this long after the server started, an expected agent that has
    /// not reported yet is pending rather than absent (for metrics only).
    pub startup_grace: Duration,
    /// Drop a stored report once it is this old (`-report-ttl`). `None`:
    /// never with Kubernetes (a deleted pod's report leaves with the pod),
    /// [`DEFAULT_TTL_WINDOWS`] outdated windows without it.
    pub report_ttl: Option<Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            outdated_factor: 2.0,
            startup_grace: Duration::from_secs(120),
            report_ttl: None,
        }
    }
}

/// Without Kubernetes and without `-report-ttl`, a report is dropped after
/// this many outdated windows of its agent...
pub const DEFAULT_TTL_WINDOWS: f64 = 5.0;
/// ...and never before this (the original's default etcd TTL).
pub const DEFAULT_TTL_FLOOR: Duration = Duration::from_secs(300);

/// How long a report of an agent with `interval` is kept; `kube`: the
/// expected agents come from watched pods. `None`: kept until its pod goes.
pub fn report_ttl(policy: &Policy, interval: Duration, kube: bool) -> Option<Duration> {
    match policy.report_ttl {
        Some(ttl) => Some(ttl),
        None if kube => None,
        None => {
            let windows = interval.as_secs_f64() * policy.outdated_factor * DEFAULT_TTL_WINDOWS;
            Some(Duration::from_secs_f64(windows.min(1e9)).max(DEFAULT_TTL_FLOOR))
        }
    }
}

/// True when a report received at `seen.received` is past its TTL at `now`.
pub fn is_expired(seen: &Seen, now: Instant, policy: &Policy, kube: bool) -> bool {
    report_ttl(policy, seen.interval, kube)
        .is_some_and(|ttl| now.saturating_duration_since(seen.received) > ttl)
}

/// What the server knows of one agent's latest report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// When the report was received (server's monotonic clock).
    pub received: Instant,
    /// The agent's own report interval.
    pub interval: Duration,
}

/// State of one expected agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentState {
    /// Reported within its window.
    Ok,
    /// Never reported since the server started, and the start-up grace is over.
    Absent,
    /// Reported, but longer ago than the window allows.
    Outdated,
    /// Not reported yet, but the server started too recently to tell.
    Pending,
}

impl AgentState {
    pub const ALL: [AgentState; 4] = [
        AgentState::Ok,
        AgentState::Absent,
        AgentState::Outdated,
        AgentState::Pending,
    ];

    /// Absent or outdated: what fails the check and pages someone
    /// (pending agents do not).
    pub fn is_failing(self) -> bool {
        matches!(self, AgentState::Absent | AgentState::Outdated)
    }

    /// Label value used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Ok => "ok",
            AgentState::Absent => "absent",
            AgentState::Outdated => "outdated",
            AgentState::Pending => "pending",
        }
    }
}

/// The outcome of judging every expected agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Expected agent name and its state, sorted by name.
    pub agents: Vec<(String, AgentState)>,
}

impl Verdict {
    /// Number of agents in `state`.
    pub fn count(&self, state: AgentState) -> usize {
        self.agents.iter().filter(|(_, s)| *s == state).count()
    }

    /// True when nothing would page anyone: no agent absent or outdated
    /// (pending agents do not count against the check).
    pub fn is_ok(&self) -> bool {
        self.agents.iter().all(|(_, s)| !s.is_failing())
    }

    /// The literal v1 answer: an agent without a report is `Absent`, whether
    /// or not it is still pending, exactly as the original server answered.
    pub fn response(&self) -> CheckResponse {
        let mut absent = Vec::new();
        let mut outdated = Vec::new();
        for (name, state) in &self.agents {
            match state {
                AgentState::Absent | AgentState::Pending => absent.push(name.clone()),
                AgentState::Outdated => outdated.push(name.clone()),
                AgentState::Ok => {}
            }
        }
        CheckResponse::new(self.agents.len(), absent, outdated)
    }
}

/// True when a report received at `seen.received` is too old at `now`.
pub fn is_outdated(seen: &Seen, now: Instant, policy: &Policy) -> bool {
    let age = now.saturating_duration_since(seen.received);
    age.as_secs_f64() > policy.outdated_factor * seen.interval.as_secs_f64()
}

/// Judge every expected agent. `expected` may hold duplicates and come in
/// any order; `seen` looks up an agent's latest report; `started` is when
/// the server started.
pub fn judge<'a>(
    expected: impl IntoIterator<Item = &'a str>,
    seen: impl Fn(&str) -> Option<Seen>,
    now: Instant,
    started: Instant,
    policy: &Policy,
) -> Verdict {
    let in_grace = now.saturating_duration_since(started) <= policy.startup_grace;
    let mut names: Vec<&str> = expected.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    let agents = names
        .into_iter()
        .map(|name| (name.to_owned(), state_of(seen(name), now, in_grace, policy)))
        .collect();
    Verdict { agents }
}

/// The state of one expected agent whose latest report is `seen`;
/// `in_grace`: the server started less than the start-up grace ago.
pub fn state_of(seen: Option<Seen>, now: Instant, in_grace: bool, policy: &Policy) -> AgentState {
    match seen {
        None if in_grace => AgentState::Pending,
        None => AgentState::Absent,
        Some(s) if is_outdated(&s, now, policy) => AgentState::Outdated,
        Some(_) => AgentState::Ok,
    }
}

/// Reporting windows an agent has missed, as `ncagent_error_count_total`
/// counts them: the first once the report is older than `factor` intervals,
/// then one more for every further interval without a report.
pub fn missed_windows(seen: &Seen, now: Instant, policy: &Policy) -> u64 {
    if !is_outdated(seen, now, policy) {
        return 0;
    }
    let interval = seen.interval.as_secs_f64();
    if interval <= 0.0 {
        return 1;
    }
    let age = now.saturating_duration_since(seen.received).as_secs_f64();
    ((age / interval - policy.outdated_factor).floor() as u64).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn seen(received: Instant, interval_secs: u64) -> Seen {
        Seen {
            received,
            interval: Duration::from_secs(interval_secs),
        }
    }

    fn policy() -> Policy {
        Policy {
            outdated_factor: 2.0,
            startup_grace: 30 * SEC,
            report_ttl: None,
        }
    }

    fn lookup(map: &HashMap<String, Seen>) -> impl Fn(&str) -> Option<Seen> + '_ {
        |name| map.get(name).copied()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fresh_agents_are_ok_and_answer_is_healthy() {
        let t0 = Instant::now();
        let map = HashMap::from([("a".into(), seen(t0, 15)), ("b".into(), seen(t0, 15))]);
        let v = judge(["b", "a"], lookup(&map), t0 + 10 * SEC, t0, &policy());
        assert_eq!(
            v.agents,
            vec![("a".into(), AgentState::Ok), ("b".into(), AgentState::Ok)]
        );
        let r = v.response();
        assert_eq!(
            r.message,
            "All 2 pods successfully reported back to the server"
        );
        assert!(r.absent.is_empty() && r.outdated.is_empty());
        assert!(v.is_ok());
    }

    #[test]
    fn outdated_boundary_is_strictly_greater_than_factor_times_interval() {
        let t0 = Instant::now();
        let s = seen(t0, 15);
        let p = policy();
        assert!(
            !is_outdated(&s, t0 + 30 * SEC, &p),
            "exactly 2 x 15 s is still fresh"
        );
        assert!(is_outdated(
            &s,
            t0 + 30 * SEC + Duration::from_millis(1),
            &p
        ));
        let p1 = Policy {
            outdated_factor: 1.0,
            ..p
        };
        assert!(is_outdated(&s, t0 + 16 * SEC, &p1));
        let p15 = Policy {
            outdated_factor: 1.5,
            ..p
        };
        assert!(!is_outdated(&s, t0 + 22 * SEC, &p15));
        assert!(is_outdated(&s, t0 + 23 * SEC, &p15));
    }

    #[test]
    fn each_agent_is_judged_by_its_own_interval() {
        let t0 = Instant::now();
        let map = HashMap::from([("fast".into(), seen(t0, 5)), ("slow".into(), seen(t0, 60))]);
        let v = judge(["fast", "slow"], lookup(&map), t0 + 11 * SEC, t0, &policy());
        assert_eq!(v.response().outdated, names(&["fast"]));
        assert!(v.response().absent.is_empty());
    }

    #[test]
    fn missing_agent_is_pending_in_grace_then_absent_but_v1_says_absent_in_both() {
        let t0 = Instant::now();
        let map = HashMap::new();
        let during = judge(["x"], lookup(&map), t0 + 30 * SEC, t0, &policy());
        assert_eq!(during.agents, vec![("x".into(), AgentState::Pending)]);
        assert!(during.is_ok(), "pending must not fail metrics");
        assert_eq!(during.response().absent, names(&["x"]), "v1 stays literal");
        assert!(!during.response().is_healthy());
        let after = judge(["x"], lookup(&map), t0 + 31 * SEC, t0, &policy());
        assert_eq!(after.agents, vec![("x".into(), AgentState::Absent)]);
        assert!(!after.is_ok());
    }

    #[test]
    fn reported_agents_are_judged_normally_during_grace() {
        let t0 = Instant::now();
        let map = HashMap::from([("a".into(), seen(t0, 1))]);
        let v = judge(["a"], lookup(&map), t0 + 5 * SEC, t0, &policy());
        assert_eq!(v.agents, vec![("a".into(), AgentState::Outdated)]);
    }

    #[test]
    fn lists_are_sorted_deduplicated_and_message_is_exact() {
        let t0 = Instant::now();
        let map = HashMap::from([
            ("z-old".into(), seen(t0, 1)),
            ("a-old".into(), seen(t0, 1)),
            ("m-ok".into(), seen(t0 + 99 * SEC, 60)),
        ]);
        let v = judge(
            ["z-old", "y-none", "m-ok", "a-old", "b-none", "y-none"],
            lookup(&map),
            t0 + 100 * SEC,
            t0,
            &policy(),
        );
        let r = v.response();
        assert_eq!(r.absent, names(&["b-none", "y-none"]));
        assert_eq!(r.outdated, names(&["a-old", "z-old"]));
        assert_eq!(
            r.message,
            "Connectivity check fails. Reason: there are absent or outdated pods; look up the payload"
        );
        assert_eq!(v.agents.len(), 5);
        assert_eq!(
            (
                v.count(AgentState::Ok),
                v.count(AgentState::Absent),
                v.count(AgentState::Outdated)
            ),
            (1, 2, 2)
        );
    }

    #[test]
    fn reports_of_unexpected_agents_are_ignored() {
        let t0 = Instant::now();
        let map = HashMap::from([("gone".into(), seen(t0, 1))]);
        let v = judge(["here"], lookup(&map), t0 + 100 * SEC, t0, &policy());
        assert_eq!(v.response().absent, names(&["here"]));
        assert!(v.response().outdated.is_empty());
    }

    #[test]
    fn no_expected_agents_is_healthy_like_the_original() {
        let t0 = Instant::now();
        let v = judge([], lookup(&HashMap::new()), t0, t0, &policy());
        assert_eq!(
            v.response().message,
            "All 0 pods successfully reported back to the server"
        );
    }

    #[test]
    fn clock_before_receipt_is_not_outdated() {
        let t0 = Instant::now();
        let s = seen(t0 + 10 * SEC, 1);
        assert!(!is_outdated(&s, t0, &policy()));
        assert_eq!(missed_windows(&s, t0, &policy()), 0);
    }

    #[test]
    fn missed_windows_count_one_then_one_per_further_interval() {
        let t0 = Instant::now();
        let s = seen(t0, 10);
        let p = policy();
        let at = |secs: u64| missed_windows(&s, t0 + Duration::from_secs(secs), &p);
        assert_eq!(at(0), 0);
        assert_eq!(at(20), 0);
        assert_eq!(at(21), 1);
        assert_eq!(at(29), 1);
        assert_eq!(at(30), 2);
        assert_eq!(at(45), 3);
        assert_eq!(at(100), 9);
    }

    #[test]
    fn reports_expire_after_the_ttl_or_by_default_only_without_kubernetes() {
        let t0 = Instant::now();
        let s = seen(t0, 10);
        let at = |secs| t0 + Duration::from_secs(secs);
        // With Kubernetes and no flag: the pod watch decides, never the age.
        assert!(!is_expired(&s, at(1_000_000), &policy(), true));
        // Without Kubernetes: 5 outdated windows (100 s here), at least 300 s.
        assert_eq!(report_ttl(&policy(), 10 * SEC, false), Some(300 * SEC));
        assert!(!is_expired(&s, at(300), &policy(), false));
        assert!(is_expired(&s, at(301), &policy(), false));
        assert_eq!(report_ttl(&policy(), 60 * SEC, false), Some(600 * SEC));
        let slow = seen(t0, 60);
        assert!(!is_expired(&slow, at(600), &policy(), false));
        assert!(is_expired(&slow, at(601), &policy(), false));
        // An explicit -report-ttl holds in both modes.
        let p = Policy {
            report_ttl: Some(20 * SEC),
            ..policy()
        };
        for kube in [true, false] {
            assert!(!is_expired(&s, at(20), &p, kube));
            assert!(is_expired(&s, at(21), &p, kube));
        }
        // A huge interval does not overflow.
        assert!(report_ttl(&policy(), Duration::from_secs(u64::MAX / 4), false).is_some());
    }

    #[test]
    fn zero_interval_is_outdated_immediately_and_counts_once() {
        let t0 = Instant::now();
        let s = seen(t0, 0);
        assert!(is_outdated(&s, t0 + Duration::from_millis(1), &policy()));
        assert_eq!(missed_windows(&s, t0 + 100 * SEC, &policy()), 1);
    }
}
