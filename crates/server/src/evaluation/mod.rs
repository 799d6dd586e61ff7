//! The one evaluation: every rule applied once to (expected agents, stored
//! reports, now, server start, policy), giving each agent's state, each
//! node's verdict and the counts of the cluster summary.
//!
//! Every answer is a rendering of this one result: the v1 check
//! ([`Evaluation::check_response`]), `/api/v2/status` (`crate::status`),
//! the background round's metrics and node verdict events (`crate::round`).
//! None of them judges anything itself. The result borrows names and
//! reports from the caller's locked state: nothing per agent is copied, and
//! an agent whose DNS and probes are fine costs no allocation.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use netchecker_wire::CheckResponse;
use tokio::time::Instant;

use crate::diagnosis::{self, AgentFacts};
use crate::domain::{
    AgentKind, AgentState, ExpectedAgent, IpFamily, NodeVerdict, Policy, Reported,
};
use crate::mesh::judge::{MeshEvaluation, MeshVerdict};
use crate::mesh::pairs::Pairs;
use crate::mesh::roster::Roster;
use crate::path::PathCounts;
use crate::verdict::state_of;

/// Everything judged at one moment.
#[derive(Debug)]
pub struct Evaluation<'a, R> {
    /// The server is within its start-up grace ([`Policy::in_grace`]).
    pub in_grace: bool,
    /// Every agent, sorted by node, then name: the expected ones with their
    /// state, and reporters that are not expected (state `None`; only with
    /// Kubernetes, where the pods say who is expected), each with its
    /// stored report.
    pub agents: Vec<AgentFacts<'a, R>>,
    /// Every node, sorted by name, with its verdict.
    pub nodes: Vec<NodeEval<'a>>,
    /// Expected agents per state, indexed like [`AgentState::ALL`].
    pub states: [usize; AgentState::ALL.len()],
    /// Reporters that are not expected.
    pub unexpected: usize,
    /// Nodes per verdict, indexed like [`NodeVerdict::ALL`].
    pub verdicts: [usize; NodeVerdict::ALL.len()],
    /// The one rule for "healthy": no expected agent is absent or outdated
    /// (pending ones do not count).
    pub healthy: bool,
    /// The node-to-node mesh, when it was judged ([`Evaluation::with_mesh`]).
    pub mesh: Option<MeshPart<'a>>,
    /// The minute since the server started ([`crate::path::minute`]): the
    /// end of the path windows.
    pub minute: u64,
    /// When it was judged.
    pub now: Instant,
}

/// The mesh as judged with the rest: who takes part, the kept pairs and
/// what they say.
#[derive(Debug)]
pub struct MeshPart<'a> {
    pub judged: MeshEvaluation<'a>,
    /// Every node's place on each network.
    /// Who takes part and every node's place.
    pub roster: &'a Roster,
    pub pairs: &'a Pairs,
    /// Wall-clock second of the evaluation.
    pub unix: i64,
    pub round_seconds: u64,
}

/// One node and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEval<'a> {
    /// `""` for agents whose node is not known.
    pub name: &'a str,
    pub verdict: NodeVerdict,
    /// Its agents in [`Evaluation::agents`].
    pub agents: Range<usize>,
}

/// Judge every agent and every node at `now`. `expected` must be sorted by
/// name without repeats (as the pod view lists them); `reports` are the
/// stored reports by agent name; `started` is when the server started.
///
/// Both are sorted by name, so one pass walks them side by side (a merge
/// join): every expected agent meets its report, and every report met by
/// no expected agent is an unexpected reporter, without hashing a name.
pub fn evaluate<'a, R: Reported>(
    expected: &[ExpectedAgent<'a>],
    reports: &'a BTreeMap<String, R>,
    now: Instant,
    started: Instant,
    policy: &Policy,
) -> Evaluation<'a, R> {
    debug_assert!(expected.windows(2).all(|w| w[0].name < w[1].name));
    let in_grace = policy.in_grace(now, started);
    let minute = crate::path::minute(now, started);
    let mut states = [0; AgentState::ALL.len()];
    let mut unexpected = 0;
    let mut agents: Vec<AgentFacts<'a, R>> = Vec::with_capacity(expected.len());
    let mut pods = expected.iter().peekable();
    let mut stored = reports.iter().peekable();
    loop {
        let order = match (pods.peek(), stored.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(pod), Some((name, _))) => pod.name.cmp(name.as_str()),
        };
        match order {
            Ordering::Less | Ordering::Equal => {
                let pod = pods.next().expect("peeked");
                let (name, report) = match order {
                    Ordering::Equal => {
                        let (name, report) = stored.next().expect("peeked");
                        (name.as_str(), Some(report))
                    }
                    _ => (pod.name, None),
                };
                let state = state_of(report.map(R::seen), now, in_grace, policy);
                states[state.index()] += 1;
                let mut facts = facts(name, pod.node, pod.kind, Some(state), report, now, policy);
                facts.namespace = pod.namespace;
                facts.terminating = pod.terminating;
                facts.addresses = pod.addresses;
                agents.push(facts);
            }
            Ordering::Greater => {
                let (name, report) = stored.next().expect("peeked");
                unexpected += 1;
                let kind = AgentKind::from_name(name);
                agents.push(facts(name, None, kind, None, Some(report), now, policy));
            }
        }
    }
    // Names are unique: the order is the same whatever the sort.
    agents.sort_unstable_by(|a, b| a.node.cmp(b.node).then(a.name.cmp(b.name)));
    let mut verdicts = [0; NodeVerdict::ALL.len()];
    let mut nodes = Vec::new();
    let mut start = 0;
    for chunk in agents.chunk_by(|a, b| a.node == b.node) {
        let mut verdict = diagnosis::node_verdict(chunk);
        if lossy_wins(verdict, chunk) && path_of(chunk, minute).is_lossy(policy.lossy_ratio) {
            verdict = NodeVerdict::Lossy;
        }
        verdicts[verdict.index()] += 1;
        nodes.push(NodeEval {
            name: chunk[0].node,
            verdict,
            agents: start..start + chunk.len(),
        });
        start += chunk.len();
    }
    let healthy = AgentState::ALL
        .iter()
        .all(|s| !s.is_failing() || states[s.index()] == 0);
    Evaluation {
        in_grace,
        agents,
        nodes,
        states,
        unexpected,
        verdicts,
        healthy,
        mesh: None,
        minute,
        now,
    }
}

impl<'a, R> Evaluation<'a, R> {
    /// Fold the mesh's judgement into the node verdicts: a node whose agents
    /// reach the server but not their peers gets the mesh verdict. A verdict
    /// about the node's own path to the server (down, late, pending,
    /// unknown) stays: it explains more. An MTU, partition or path verdict
    /// outranks DNS and probe failures; a slow pair only a healthy node.
    pub fn with_mesh<'b>(self, mesh: MeshPart<'b>) -> Evaluation<'b, R>
    where
        'a: 'b,
    {
        let mut eval: Evaluation<'b, R> = self;
        for node in &mut eval.nodes {
            let folded = fold(node.verdict, mesh.judged.verdict(node.name));
            if folded != node.verdict {
                eval.verdicts[node.verdict.index()] -= 1;
                eval.verdicts[folded.index()] += 1;
                node.verdict = folded;
            }
        }
        eval.mesh = Some(mesh);
        eval
    }
}

/// Whether a node judged `verdict` from its `agents` is `lossy` when its
/// path figures say so: a healthy one, and one whose failing probes each
/// failed once only. On a path that loses packets a probe fails now and
/// then (its handshake or request lost past its timeout); the loss figure
/// explains that, and naming it would flip the node between `lossy` and
/// `probe_failures` from report to report. A probe that fails in two
/// consecutive reports is named.
fn lossy_wins<R>(verdict: NodeVerdict, agents: &[AgentFacts<'_, R>]) -> bool {
    match verdict {
        NodeVerdict::Healthy => true,
        NodeVerdict::ProbeFailures => !agents
            .iter()
            .any(|a| a.state.is_some() && a.probe_failure_repeated),
        _ => false,
    }
}

/// A node's verdict, given its mesh verdict.
pub fn fold(base: NodeVerdict, mesh: MeshVerdict) -> NodeVerdict {
    let folded = match mesh {
        MeshVerdict::OutboundDown => NodeVerdict::MeshOutboundDown,
        MeshVerdict::InboundDown => NodeVerdict::MeshInboundDown,
        MeshVerdict::Partition => NodeVerdict::MeshPartition,
        MeshVerdict::Mtu => NodeVerdict::MeshMtu,
        MeshVerdict::Slow => NodeVerdict::MeshSlow,
        MeshVerdict::Ok => return base,
    };
    match base {
        NodeVerdict::Healthy => folded,
        NodeVerdict::DnsFailure | NodeVerdict::ProbeFailures | NodeVerdict::Lossy
            if mesh != MeshVerdict::Slow =>
        {
            folded
        }
        _ => base,
    }
}

/// What the rules know of one agent at `now`.
fn facts<'a, R: Reported>(
    name: &'a str,
    node: Option<&'a str>,
    kind: AgentKind,
    state: Option<AgentState>,
    report: Option<&'a R>,
    now: Instant,
    policy: &Policy,
) -> AgentFacts<'a, R> {
    let seen = report.map(R::seen);
    let family_late = match (report, seen) {
        (Some(r), Some(s)) => family_late(r.families(), now, s.interval, policy),
        _ => None,
    };
    AgentFacts {
        name,
        namespace: None,
        node: node.or(report.map(R::node)).unwrap_or(""),
        kind,
        state,
        age: seen.map(|s| now.saturating_duration_since(s.received)),
        interval: seen.map(|s| s.interval),
        // Collected only when there is something to collect: no allocation
        // for the usual agent with working DNS and probes.
        dns_failures: report
            .map(|r| r.dns_failures().collect())
            .unwrap_or_default(),
        failing_probes: report
            .map(|r| r.failing_probes().collect())
            .unwrap_or_default(),
        probe_failure_repeated: report.is_some_and(R::probe_failure_repeated),
        terminating: false,
        addresses: &[],
        path: report.and_then(R::path),
        family_late,
        family_probes_failing: report
            .map(|r| {
                r.family_failures()
                    .iter()
                    .map(|f| (f.family, &*f.url, &*f.address))
                    .collect()
            })
            .unwrap_or_default(),
        report,
    }
}

/// The family whose reports stopped while the other's go on: reports
/// came over both, the last over one is older than the outdated window
/// and the last over the other is not.
pub fn family_late(
    families: [Option<Instant>; 2],
    now: Instant,
    interval: Duration,
    policy: &Policy,
) -> Option<(IpFamily, Duration)> {
    let [Some(v4), Some(v6)] = families else {
        return None;
    };
    let window = interval.mul_f64(policy.outdated_factor);
    let (a4, a6) = (
        now.saturating_duration_since(v4),
        now.saturating_duration_since(v6),
    );
    match (a4 > window, a6 > window) {
        (true, false) => Some((IpFamily::Ipv4, a4)),
        (false, true) => Some((IpFamily::Ipv6, a6)),
        _ => None,
    }
}

/// The pooled path counts of a node's expected agents at `minute`.
pub fn path_of<R>(agents: &[AgentFacts<'_, R>], minute: u64) -> PathCounts {
    let mut pooled = PathCounts::default();
    for a in agents.iter().filter(|a| a.state.is_some()) {
        if let Some(w) = a.path {
            pooled.add(&w.counts(minute));
        }
    }
    pooled
}

impl<'a, R> Evaluation<'a, R> {
    /// Expected agents (unexpected reporters are not).
    pub fn expected(&self) -> usize {
        self.states.iter().sum()
    }

    /// The agents of `node`.
    pub fn agents_of(&self, node: &NodeEval) -> &[AgentFacts<'a, R>] {
        &self.agents[node.agents.clone()]
    }

    /// The one-line reason for `node`'s verdict (written only when asked:
    /// the background round needs it for changes alone).
    pub fn reason(&self, node: &NodeEval) -> String {
        match (&self.mesh, node.verdict) {
            (
                Some(mesh),
                NodeVerdict::MeshOutboundDown
                | NodeVerdict::MeshInboundDown
                | NodeVerdict::MeshPartition
                | NodeVerdict::MeshMtu
                | NodeVerdict::MeshSlow,
            ) => mesh.judged.reason(node.name),
            (_, NodeVerdict::Lossy) => {
                let agents = self.agents_of(node);
                let mut reason = crate::path::lossy_reason(&path_of(agents, self.minute));
                let once = diagnosis::failing_probes_text(agents);
                if !once.is_empty() {
                    reason.push_str("; failed once, named if it fails again: ");
                    reason.push_str(&once);
                }
                reason
            }
            _ => diagnosis::reason(node.verdict, self.agents_of(node)),
        }
    }

    /// The v1 answer, literal as the original's: an expected agent without
    /// a report is `Absent`, pending or not; the lists are sorted by name.
    pub fn check_response(&self) -> CheckResponse {
        let mut absent = Vec::new();
        let mut outdated = Vec::new();
        for a in &self.agents {
            match a.state {
                Some(AgentState::Absent | AgentState::Pending) => absent.push(a.name.to_owned()),
                Some(AgentState::Outdated) => outdated.push(a.name.to_owned()),
                Some(AgentState::Ok) | None => {}
            }
        }
        absent.sort_unstable();
        outdated.sort_unstable();
        CheckResponse::new(self.expected(), absent, outdated)
    }
}

/// Seconds rounded to milliseconds, as every answer shows ages and skews.
pub fn round_ms(d: Duration) -> f64 {
    round_ms_f64(d.as_secs_f64())
}

/// [`round_ms`] for a number of seconds.
pub fn round_ms_f64(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests;
