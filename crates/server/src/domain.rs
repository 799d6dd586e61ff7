//! The server's vocabulary: what an expected agent is, what is known of a
//! stored report, and the policy the rules apply. Pure data and the few
//! one-line rules that define it, with no Kubernetes or HTTP in sight; the
//! rules (`verdict`, `diagnosis`, `evaluation`) and everything above build
//! on these.
//!
//! The names the server judges by (agent kind, agent state, node verdict)
//! are wire types, shared with clients: they live in `netchecker_wire` and
//! are re-exported here.

use std::net::IpAddr;
use std::time::Duration;

pub use netchecker_wire::{AgentKind, AgentState, IpFamily, NodeVerdict, state_name};
use tokio::time::Instant;

/// Tunables of the rules.
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
    /// a default number of outdated windows without it
    /// ([`crate::verdict::report_ttl`]).
    pub report_ttl: Option<Duration>,
    /// A node whose agents' share of unanswered connections to the server
    /// is at least this (over enough attempts) is `lossy`; 0: never.
    pub lossy_ratio: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            outdated_factor: 2.0,
            startup_grace: Duration::from_secs(120),
            report_ttl: None,
            lossy_ratio: 0.05,
        }
    }
}

impl Policy {
    /// The one rule for the start-up grace: at `now` the server, started at
    /// `started`, is still within it.
    pub fn in_grace(&self, now: Instant, started: Instant) -> bool {
        now.saturating_duration_since(started) <= self.startup_grace
    }
}

/// The original's `agent` metric label: the node name and which network
/// the agent runs on, by the one name rule ([`AgentKind::from_name`]).
pub fn agent_label(pod: &str, node: &str) -> String {
    let network = match AgentKind::from_name(pod) {
        AgentKind::HostNetwork => "host_network",
        AgentKind::PodNetwork | AgentKind::Unknown => "private_network",
    };
    format!("{node}-{network}")
}

/// What the freshness rules need of an agent's latest report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// When the report was received (server's monotonic clock).
    pub received: Instant,
    /// The agent's own report interval.
    pub interval: Duration,
}

/// An agent the server expects to hear from, borrowed from the pod view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedAgent<'a> {
    /// The pod name, under which the agent reports.
    pub name: &'a str,
    /// `None` without Kubernetes.
    pub namespace: Option<&'a str>,
    /// The node the pod is scheduled on (`None` without Kubernetes, or
    /// while unscheduled).
    pub node: Option<&'a str>,
    pub kind: AgentKind,
    /// The pod is being deleted.
    pub terminating: bool,
    /// Where it answers on its network: the pod's IPs for a pod-network
    /// agent, the node's for a host-network one (empty without Kubernetes).
    pub addresses: &'a [IpAddr],
}

impl<'a> ExpectedAgent<'a> {
    /// An agent known by name only (without Kubernetes): its kind follows
    /// the name rule ([`AgentKind::from_name`]).
    pub fn named(name: &'a str) -> Self {
        ExpectedAgent {
            name,
            namespace: None,
            node: None,
            kind: AgentKind::from_name(name),
            terminating: false,
            addresses: &[],
        }
    }
}

/// A probe that fails over one IP family while the same URL answers over
/// the other: that family's path is down, not the probed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyFailure {
    pub family: netchecker_wire::IpFamily,
    pub url: Box<str>,
    pub address: Box<str>,
}

/// What the rules read of a stored report. The cache keeps reports in its
/// own compact form and implements this; the rules never see that form.
pub trait Reported {
    /// When it arrived and the agent's interval.
    fn seen(&self) -> Seen;
    /// The node name the agent reported.
    fn node(&self) -> &str;
    /// Looked-up names that resolved to nothing.
    fn dns_failures(&self) -> impl Iterator<Item = &str>;
    /// URLs of the probes that failed.
    fn failing_probes(&self) -> impl Iterator<Item = &str>;
    /// Whether a probe that fails in this report failed in the agent's
    /// previous report too (the same URL).
    fn probe_failure_repeated(&self) -> bool {
        false
    }
    /// How its reports got through lately (agents that tell).
    fn path(&self) -> Option<&crate::path::PathWindow> {
        None
    }
    /// When a report last came over IPv4 and over IPv6 (by `IpFamily`).
    fn families(&self) -> [Option<Instant>; 2] {
        [None; 2]
    }
    /// Probes failing over one family while answering over the other.
    fn family_failures(&self) -> &[FamilyFailure] {
        &[]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_ends_after_exactly_the_configured_time() {
        let t0 = Instant::now();
        let p = Policy {
            startup_grace: Duration::from_secs(30),
            ..Policy::default()
        };
        assert!(p.in_grace(t0, t0));
        assert!(p.in_grace(t0 + Duration::from_secs(30), t0));
        assert!(!p.in_grace(t0 + Duration::from_millis(30_001), t0));
        let none = Policy {
            startup_grace: Duration::ZERO,
            ..p
        };
        assert!(!none.in_grace(t0 + Duration::from_millis(1), t0));
    }

    #[test]
    fn agent_label_values_match_the_original() {
        assert_eq!(
            agent_label("netchecker-agent-hostnet-abcde", "node-1"),
            "node-1-host_network"
        );
        assert_eq!(
            agent_label("netchecker-agent-x7k2p", "node-1"),
            "node-1-private_network"
        );
    }

    #[test]
    fn an_agent_known_by_name_takes_its_kind_from_the_name() {
        let a = ExpectedAgent::named("netchecker-agent-hostnet-a");
        assert_eq!(
            (a.kind, a.node, a.namespace),
            (AgentKind::HostNetwork, None, None)
        );
        assert_eq!(
            ExpectedAgent::named("netchecker-agent-b").kind,
            AgentKind::PodNetwork
        );
    }
}
