//! Per-node diagnosis: a pure function from the facts about a node's agents
//! to a verdict and a one-line reason an operator can act on.
//!
//! A node normally runs two agents: one on the pod network and one on the
//! host network. Comparing them tells a CNI problem (host network fine, pod
//! network late) from a node that is down or cut off (both late), and the
//! contents of fresh reports tell DNS trouble and failing probes apart.

use std::fmt::Write as _;
use std::time::Duration;

use crate::domain::{AgentKind, AgentState, IpFamily, NodeVerdict};

/// What the diagnosis needs to know about one agent of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentFacts<'a, R = ()> {
    pub name: &'a str,
    /// The pod's namespace (`None` without Kubernetes).
    pub namespace: Option<&'a str>,
    /// The node the agent runs on (`""` when unknown).
    pub node: &'a str,
    pub kind: AgentKind,
    /// The agent's state; `None` when it reports but is not expected
    /// (not among the watched pods). Such agents are listed, never judged.
    pub state: Option<AgentState>,
    /// Age of the last report, if any.
    pub age: Option<Duration>,
    /// The agent's report interval, if it has reported.
    pub interval: Option<Duration>,
    /// Names the agent looked up that resolved to nothing.
    pub dns_failures: Vec<&'a str>,
    /// URLs of the agent's failing probes.
    pub failing_probes: Vec<&'a str>,
    /// One of them failed in the agent's previous report too.
    pub probe_failure_repeated: bool,
    /// Its pod is being deleted.
    pub terminating: bool,
    /// Where it answers on its network (the watched pod's addresses).
    pub addresses: &'a [std::net::IpAddr],
    /// How its reports got through lately (agents that tell).
    pub path: Option<&'a crate::path::PathWindow>,
    /// A family its reports came over and no longer do, with the age of
    /// the last report over it, while they still come over the other.
    pub family_late: Option<(IpFamily, Duration)>,
    /// Probes that fail over one family while the same URL answers over
    /// the other: the family, the URL and the address probed.
    pub family_probes_failing: Vec<(IpFamily, &'a str, &'a str)>,
    /// The stored report the facts come from, for the renderings that show
    /// its details; the rules never read it.
    pub report: Option<&'a R>,
}

/// A node's verdict with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeJudgement {
    pub verdict: NodeVerdict,
    pub reason: String,
}

fn kind_phrase(kind: AgentKind) -> &'static str {
    match kind {
        AgentKind::PodNetwork => "pod-network agent",
        AgentKind::HostNetwork => "host-network agent",
        AgentKind::Unknown => "agent",
    }
}

/// "pod-network agent netchecker-agent-x is outdated (last report 47 s ago, interval 15 s)".
fn describe_late<R>(a: &AgentFacts<R>) -> String {
    let what = kind_phrase(a.kind);
    match (a.state, a.age, a.interval) {
        (Some(AgentState::Outdated), Some(age), Some(interval)) => format!(
            "{what} {} is outdated (last report {} s ago, interval {} s)",
            a.name,
            age.as_secs(),
            interval.as_secs()
        ),
        _ => format!(
            "{what} {} is absent (no report since the server started)",
            a.name
        ),
    }
}

/// "IPv6 pod network down: pod-network agent x reports over IPv4, but
/// its last report over IPv6 came 12 s ago (interval 1 s)"; "IPv6 down on
/// both networks: ..." when every kind lost the same family.
fn family_text<R>(expected: &[&AgentFacts<R>]) -> String {
    let late: Vec<(&AgentFacts<R>, IpFamily, Duration)> = expected
        .iter()
        .filter_map(|a| a.family_late.map(|(f, age)| (*a, f, age)))
        .collect();
    let probing: Vec<(&AgentFacts<R>, IpFamily, &str, &str)> = expected
        .iter()
        .flat_map(|a| {
            a.family_probes_failing
                .iter()
                .map(move |(f, url, address)| (*a, *f, *url, *address))
        })
        .collect();
    let mut heads: Vec<String> = Vec::new();
    for f in IpFamily::ALL {
        let mut kinds: Vec<AgentKind> =
            late.iter().filter(|d| d.1 == f).map(|d| d.0.kind).collect();
        kinds.extend(probing.iter().filter(|d| d.1 == f).map(|d| d.0.kind));
        if kinds.is_empty() {
            continue;
        }
        let both = [AgentKind::PodNetwork, AgentKind::HostNetwork]
            .iter()
            .all(|k| kinds.contains(k));
        if both {
            heads.push(format!("{} down on both networks", f.name()));
        } else {
            for k in [
                AgentKind::PodNetwork,
                AgentKind::HostNetwork,
                AgentKind::Unknown,
            ] {
                if kinds.contains(&k) {
                    let net = match k {
                        AgentKind::PodNetwork => "pod network",
                        AgentKind::HostNetwork => "host network",
                        AgentKind::Unknown => "network",
                    };
                    heads.push(format!("{} {net} down", f.name()));
                }
            }
        }
    }
    let late_details = late.iter().map(|(a, f, age)| {
        format!(
            "{} {} reports over {}, but its last report over {} came {} s ago (interval {} s)",
            kind_phrase(a.kind),
            a.name,
            f.other().name(),
            f.name(),
            age.as_secs(),
            a.interval.map_or(0, |i| i.as_secs())
        )
    });
    let probe_details = probing.iter().map(|(a, f, url, address)| {
        format!(
            "{} {}'s probe of {url} fails over {} ({address}) and answers over {}",
            kind_phrase(a.kind),
            a.name,
            f.name(),
            f.other().name(),
        )
    });
    let details = join(late_details.chain(probe_details));
    format!("{}: {details}", heads.join(", "))
}

fn join(parts: impl IntoIterator<Item = String>) -> String {
    parts.into_iter().collect::<Vec<_>>().join(", ")
}

/// The failing probes of the expected `agents`, "URL from agent, ..."
/// (empty when none fails).
pub fn failing_probes_text<R>(agents: &[AgentFacts<R>]) -> String {
    join(agents.iter().filter(|a| a.state.is_some()).flat_map(|a| {
        a.failing_probes
            .iter()
            .map(move |url| format!("{url} from {}", a.name))
    }))
}

fn is_late<R>(a: &AgentFacts<R>) -> bool {
    a.state.is_some_and(AgentState::is_failing)
}

/// Judge one node from its agents: its verdict and the reason.
pub fn judge_node<R>(agents: &[AgentFacts<R>]) -> NodeJudgement {
    let verdict = node_verdict(agents);
    NodeJudgement {
        verdict,
        reason: reason(verdict, agents),
    }
}

/// The verdict alone, without allocating: the first rule that applies
/// wins; only expected agents count (see `doc/api.md` for the table).
pub fn node_verdict<R>(agents: &[AgentFacts<R>]) -> NodeVerdict {
    let expected = || agents.iter().filter(|a| a.state.is_some());
    let late = || expected().filter(|a| is_late(a));
    let count = expected().count();
    if count == 0 {
        return NodeVerdict::Unknown;
    }
    let late_count = late().count();
    if late_count == count {
        return NodeVerdict::Unreachable;
    }
    if late_count > 0 {
        let ok_kind = |kind| expected().any(|a| a.kind == kind && a.state == Some(AgentState::Ok));
        let all_late_are = |kind| late().all(|a| a.kind == kind);
        if all_late_are(AgentKind::PodNetwork) && ok_kind(AgentKind::HostNetwork) {
            return NodeVerdict::PodNetworkDown;
        }
        if all_late_are(AgentKind::HostNetwork) && ok_kind(AgentKind::PodNetwork) {
            return NodeVerdict::HostNetworkDown;
        }
        return NodeVerdict::AgentsLate;
    }
    if expected().any(|a| a.state == Some(AgentState::Pending)) {
        NodeVerdict::Pending
    } else if expected().any(|a| a.family_late.is_some() || !a.family_probes_failing.is_empty()) {
        NodeVerdict::FamilyDown
    } else if expected().any(|a| !a.dns_failures.is_empty()) {
        NodeVerdict::DnsFailure
    } else if expected().any(|a| !a.failing_probes.is_empty()) {
        NodeVerdict::ProbeFailures
    } else {
        NodeVerdict::Healthy
    }
}

/// The one-line reason for `verdict` on a node with these `agents`.
pub fn reason<R>(verdict: NodeVerdict, agents: &[AgentFacts<R>]) -> String {
    let expected: Vec<&AgentFacts<R>> = agents.iter().filter(|a| a.state.is_some()).collect();
    let late_text = || {
        join(
            expected
                .iter()
                .filter(|a| is_late(a))
                .map(|a| describe_late(a)),
        )
    };
    match verdict {
        NodeVerdict::Unknown => format!(
            "no expected agent on this node; reporting here without a pod in the view: {}",
            join(agents.iter().map(|a| a.name.to_owned()))
        ),
        NodeVerdict::Unreachable => {
            let subject = if expected.len() == 1 {
                "its only agent"
            } else {
                "no agent on this node reports on time"
            };
            format!(
                "{subject}: {}; the node is down or cannot reach the server",
                late_text()
            )
        }
        NodeVerdict::PodNetworkDown => format!(
            "host-network agent reports on time but {}: check the pod network (CNI) on this node",
            late_text()
        ),
        NodeVerdict::HostNetworkDown => format!(
            "pod-network agent reports on time but {}: check the node's own network path to the server",
            late_text()
        ),
        NodeVerdict::AgentsLate => late_text(),
        NodeVerdict::FamilyDown => family_text(&expected),
        NodeVerdict::Pending => format!(
            "waiting for the first report of {} since the server restarted",
            join(
                expected
                    .iter()
                    .filter(|a| a.state == Some(AgentState::Pending))
                    .map(|a| a.name.to_owned())
            )
        ),
        NodeVerdict::DnsFailure => {
            let mut dns = String::new();
            for a in expected.iter().filter(|a| !a.dns_failures.is_empty()) {
                if !dns.is_empty() {
                    dns.push_str("; ");
                }
                let _ = write!(
                    dns,
                    "{} {} could not resolve {}",
                    kind_phrase(a.kind),
                    a.name,
                    a.dns_failures.join(", ")
                );
            }
            format!("{dns}: check cluster DNS from this node")
        }
        NodeVerdict::ProbeFailures => format!("failing probes: {}", failing_probes_text(agents)),
        // Judged from the mesh: the evaluation writes these reasons from
        // the failing pairs (`crate::mesh::judge`); this is the fallback.
        NodeVerdict::MeshOutboundDown
        | NodeVerdict::MeshInboundDown
        | NodeVerdict::MeshPartition
        | NodeVerdict::MeshMtu
        | NodeVerdict::MeshSlow => {
            format!("{}: see the failing pairs of the mesh", verdict.as_str())
        }
        // Written from the path figures by the evaluation; the fallback.
        NodeVerdict::Lossy => "lossy: see the node's path figures".to_owned(),
        NodeVerdict::Healthy => {
            let n = expected.len();
            format!(
                "{n} agent{} on time, DNS answers, probes succeed",
                if n == 1 { "" } else { "s" }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgentKind::{HostNetwork as H, PodNetwork as P, Unknown as U};
    use AgentState::{Absent, Ok as Fine, Outdated, Pending as Waiting};

    fn agent(name: &str, kind: AgentKind, state: Option<AgentState>) -> AgentFacts<'_> {
        let reported = matches!(state, Some(Fine | Outdated) | None);
        AgentFacts {
            name,
            namespace: None,
            node: "n",
            kind,
            state,
            age: reported
                .then(|| Duration::from_secs(if state == Some(Outdated) { 47 } else { 3 })),
            interval: reported.then_some(Duration::from_secs(15)),
            dns_failures: Vec::new(),
            failing_probes: Vec::new(),
            probe_failure_repeated: false,
            terminating: false,
            path: None,
            family_late: None,
            family_probes_failing: Vec::new(),
            addresses: &[],
            report: None,
        }
    }

    fn verdict_of(agents: &[AgentFacts]) -> NodeVerdict {
        judge_node(agents).verdict
    }

    /// Every combination of a pod-network and a host-network agent's states.
    #[test]
    fn two_agent_table() {
        use NodeVerdict::*;
        let s = |x| Some(x);
        #[rustfmt::skip]
        let table = [
            // pod agent,   host agent,   verdict
            (s(Fine),     s(Fine),     Healthy),
            (s(Outdated), s(Fine),     PodNetworkDown),
            (s(Absent),   s(Fine),     PodNetworkDown),
            (s(Fine),     s(Outdated), HostNetworkDown),
            (s(Fine),     s(Absent),   HostNetworkDown),
            (s(Outdated), s(Outdated), Unreachable),
            (s(Absent),   s(Absent),   Unreachable),
            (s(Absent),   s(Outdated), Unreachable),
            (s(Waiting),  s(Waiting),  Pending),
            (s(Waiting),  s(Fine),     Pending),
            (s(Fine),     s(Waiting),  Pending),
            (s(Outdated), s(Waiting),  AgentsLate),
            (s(Waiting),  s(Absent),   AgentsLate),
            (None,        s(Fine),     Healthy),
            (None,        s(Outdated), Unreachable),
            (None,        None,        Unknown),
        ];
        for (pod, host, want) in table {
            let agents = [agent("pod-a", P, pod), agent("hostnet-a", H, host)];
            assert_eq!(verdict_of(&agents), want, "pod {pod:?}, host {host:?}");
        }
    }

    #[test]
    fn reasons_name_the_agents_and_what_to_check() {
        let j = judge_node(&[agent("ncp", P, Some(Outdated)), agent("nch", H, Some(Fine))]);
        assert_eq!(
            j.reason,
            "host-network agent reports on time but pod-network agent ncp is outdated \
             (last report 47 s ago, interval 15 s): check the pod network (CNI) on this node"
        );
        let j = judge_node(&[
            agent("ncp", P, Some(Absent)),
            agent("nch", H, Some(Outdated)),
        ]);
        assert_eq!(
            j.reason,
            "no agent on this node reports on time: pod-network agent ncp is absent \
             (no report since the server started), host-network agent nch is outdated \
             (last report 47 s ago, interval 15 s); the node is down or cannot reach the server"
        );
        let j = judge_node(&[agent("ncp", P, Some(Fine)), agent("nch", H, Some(Fine))]);
        assert_eq!(j.reason, "2 agents on time, DNS answers, probes succeed");
        let j = judge_node(&[agent("ncp", P, Some(Waiting))]);
        assert_eq!(
            j.reason,
            "waiting for the first report of ncp since the server restarted"
        );
        let j = judge_node(&[agent("stray", P, None)]);
        assert!(
            j.reason.ends_with("without a pod in the view: stray"),
            "{}",
            j.reason
        );
    }

    #[test]
    fn a_single_agent_node_is_unreachable_when_its_agent_is_late() {
        let j = judge_node(&[agent("only", P, Some(Outdated))]);
        assert_eq!(j.verdict, NodeVerdict::Unreachable);
        assert!(
            j.reason
                .starts_with("its only agent: pod-network agent only is outdated")
        );
        assert_eq!(
            verdict_of(&[agent("only", H, Some(Fine))]),
            NodeVerdict::Healthy
        );
    }

    #[test]
    fn unknown_kinds_and_same_kind_pairs_fall_back_to_agents_late() {
        let agents = [agent("a", U, Some(Outdated)), agent("b", H, Some(Fine))];
        assert_eq!(verdict_of(&agents), NodeVerdict::AgentsLate);
        let agents = [agent("a", P, Some(Outdated)), agent("b", P, Some(Fine))];
        assert_eq!(verdict_of(&agents), NodeVerdict::AgentsLate);
        let j = judge_node(&agents);
        assert_eq!(
            j.reason,
            "pod-network agent a is outdated (last report 47 s ago, interval 15 s)"
        );
    }

    #[test]
    fn dns_failure_wins_over_probe_failures_and_needs_fresh_reports() {
        let mut pod = agent("ncp", P, Some(Fine));
        pod.dns_failures = vec!["netchecker-service"];
        pod.failing_probes = vec!["http://x/"];
        let host = agent("nch", H, Some(Fine));
        let j = judge_node(&[pod.clone(), host.clone()]);
        assert_eq!(j.verdict, NodeVerdict::DnsFailure);
        assert_eq!(
            j.reason,
            "pod-network agent ncp could not resolve netchecker-service: check cluster DNS from this node"
        );

        pod.dns_failures.clear();
        let j = judge_node(&[pod.clone(), host.clone()]);
        assert_eq!(j.verdict, NodeVerdict::ProbeFailures);
        assert_eq!(j.reason, "failing probes: http://x/ from ncp");

        // A late agent's old report does not make a DNS verdict.
        let mut late = agent("ncp", P, Some(Outdated));
        late.dns_failures = vec!["netchecker-service"];
        assert_eq!(
            verdict_of(&[late, host.clone()]),
            NodeVerdict::PodNetworkDown
        );

        // Unexpected reporters are never judged.
        let mut stray = agent("stray", P, None);
        stray.failing_probes = vec!["http://y/"];
        assert_eq!(verdict_of(&[stray, host]), NodeVerdict::Healthy);
    }
}
