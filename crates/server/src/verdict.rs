//! The rules for one agent: is its report fresh, how many windows has it
//! missed, when does its report expire, did a probe succeed. Pure functions
//! of the facts and the time, tested without I/O or sleeping; the
//! evaluation (`crate::evaluation`) applies them to every agent.

use std::time::Duration;

use netchecker_wire::{FamilyProbe, IpFamily, ProbeResult};
use tokio::time::Instant;

use crate::domain::{AgentState, Policy, Seen};

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

/// True when a report received at `seen.received` is too old at `now`.
pub fn is_outdated(seen: &Seen, now: Instant, policy: &Policy) -> bool {
    let age = now.saturating_duration_since(seen.received);
    age.as_secs_f64() > policy.outdated_factor * seen.interval.as_secs_f64()
}

/// The state of one expected agent whose latest report is `seen`;
/// `in_grace`: the server is within its start-up grace
/// ([`Policy::in_grace`]).
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

/// A probe succeeded: TCP connected and the answer was 2xx or 3xx.
pub fn probe_ok(p: &ProbeResult) -> bool {
    codes_ok(p.connection_result, p.http_code)
}

pub use crate::domain::FamilyFailure;

/// Most [`FamilyFailure`]s kept per agent (an agent probes the server and
/// a few URLs): what a report may make the server keep stays small.
pub const MAX_FAMILY_FAILURES: usize = 4;

/// The [`FamilyFailure`]s among an agent's `family_probes`, the first
/// [`MAX_FAMILY_FAILURES`]: each failed one whose URL answered over the
/// other family in the same report. A URL failing over both is a failing
/// probe (its `network_probes` entry says so), not a family's fault.
pub fn family_failures(probes: &[FamilyProbe]) -> Box<[FamilyFailure]> {
    let answered = |url: &str, family: IpFamily| {
        probes
            .iter()
            .any(|p| p.family == family && p.probe.url == url && probe_ok(&p.probe))
    };
    probes
        .iter()
        .filter(|p| !probe_ok(&p.probe) && answered(&p.probe.url, p.family.other()))
        .take(MAX_FAMILY_FAILURES)
        .map(|p| FamilyFailure {
            family: p.family,
            url: p.probe.url.as_str().into(),
            address: p.address.as_str().into(),
        })
        .collect()
}

/// [`probe_ok`] on a probe's connection result and HTTP code.
pub fn codes_ok(connection_result: i64, http_code: i64) -> bool {
    connection_result == 1 && (200..400).contains(&http_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_fails_only_while_the_other_answers_the_same_url() {
        let probe = |family: &str, address: &str, url: &str, ok: bool| -> FamilyProbe {
            serde_json::from_value(serde_json::json!({"family": family, "address": address,
                "probe": {"URL": url, "ConnectionResult": i32::from(ok),
                          "HTTPCode": if ok { 200 } else { 0 }}}))
            .unwrap()
        };
        let failures = family_failures(&[
            probe("ipv4", "198.18.0.1", "http://s/", true),
            probe("ipv6", "2001:2::1", "http://s/", false),
            // Down over both: a failing probe, no family's fault.
            probe("ipv4", "198.18.0.2", "http://t/", false),
            probe("ipv6", "2001:2::2", "http://t/", false),
            // Answered over both.
            probe("ipv4", "198.18.0.3", "http://u/", true),
            probe("ipv6", "2001:2::3", "http://u/", true),
            // IPv4 down; IPv6 answers.
            probe("ipv6", "2001:2::4", "http://v/", true),
            probe("ipv4", "198.18.0.4", "http://v/", false),
        ]);
        let got: Vec<_> = failures
            .iter()
            .map(|f| (f.family, &*f.url, &*f.address))
            .collect();
        assert_eq!(
            got,
            [
                (IpFamily::Ipv6, "http://s/", "2001:2::1"),
                (IpFamily::Ipv4, "http://v/", "198.18.0.4"),
            ]
        );
        assert!(family_failures(&[]).is_empty());

        // However many a report carries, a few are kept.
        let many: Vec<FamilyProbe> = (0..16)
            .flat_map(|i| {
                let url = format!("http://s{i}/");
                [
                    probe("ipv4", "198.18.0.1", &url, true),
                    probe("ipv6", "2001:2::1", &url, false),
                ]
            })
            .collect();
        assert_eq!(family_failures(&many).len(), MAX_FAMILY_FAILURES);
    }

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
            lossy_ratio: 0.05,
        }
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
