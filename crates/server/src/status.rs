//! The `GET /api/v2/status` answer: every agent with what is known of it,
//! grouped by node with the node's verdict, and a cluster summary.
//!
//! Built from the same state and rules as the v1 check ([`crate::verdict`])
//! plus the per-node rules of [`crate::diagnosis`].

use std::collections::{BTreeMap, HashSet};

use netchecker_wire::ProbeResult;

use serde::Serialize;
use tokio::time::Instant;

use crate::cache::Entry;
use crate::diagnosis::{AgentFacts, NodeVerdict, judge_node};
use crate::podview::{AgentKind, ExpectedPod, PodRef, ViewHealth};
use crate::verdict::{AgentState, Policy, state_of};

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub generated_at: jiff::Timestamp,
    pub summary: Summary,
    pub nodes: Vec<NodeStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// No expected agent absent or outdated (pending ones do not count).
    pub healthy: bool,
    pub nodes: usize,
    pub agents: usize,
    /// Nodes per verdict; every verdict is present.
    pub verdicts: BTreeMap<&'static str, usize>,
    /// Agents per state; every state is present.
    pub agent_states: BTreeMap<&'static str, usize>,
    pub in_startup_grace: bool,
    pub pod_view: PodViewStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodViewStatus {
    /// `kubernetes` or `static`.
    pub source: &'static str,
    pub synced: bool,
    pub stale: bool,
    pub age_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub node: String,
    pub verdict: NodeVerdict,
    pub reason: String,
    pub agents: Vec<AgentStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentStatus {
    pub name: String,
    pub namespace: Option<String>,
    pub node: String,
    pub kind: AgentKind,
    pub state: &'static str,
    pub last_report_age_seconds: Option<f64>,
    pub report_interval_seconds: Option<u64>,
    pub clock_skew_seconds: Option<f64>,
    pub dns: Option<Dns>,
    pub probes: Vec<Probe>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dns {
    /// False when a looked-up name resolved to nothing.
    pub ok: bool,
    pub lookups: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub url: String,
    pub ok: bool,
    pub connection_result: i64,
    pub http_code: i64,
    pub total_ms: i64,
}

impl Serialize for NodeVerdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for AgentKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The state name of the v2 answer; `None` is an unexpected reporter.
pub fn state_name(state: Option<AgentState>) -> &'static str {
    state.map_or("unexpected", AgentState::as_str)
}

/// A probe succeeded: TCP connected and the answer was 2xx or 3xx.
pub fn probe_ok(p: &ProbeResult) -> bool {
    p.connection_result == 1 && (200..400).contains(&p.http_code)
}

/// Everything [`build`] reads, gathered by the caller under its locks.
pub struct Inputs<'a> {
    /// Expected pods, sorted by name, each with its state from the verdict.
    pub expected: Vec<(ExpectedPod, AgentState)>,
    pub entries: &'a std::collections::HashMap<String, Entry>,
    /// Whether reporters outside `expected` are unexpected (Kubernetes) or
    /// cannot exist (without Kubernetes every reporter is expected).
    pub kube: bool,
    pub view: ViewHealth,
    pub in_grace: bool,
    pub now: Instant,
    pub wall: jiff::Timestamp,
}

/// One agent, ready for the answer and for its node's judgement.
struct Row<'a> {
    facts: AgentFacts<'a>,
    status: AgentStatus,
}

fn row<'a>(
    name: &'a str,
    namespace: Option<&str>,
    node: &str,
    kind: AgentKind,
    state: Option<AgentState>,
    entry: Option<&'a Entry>,
    now: Instant,
) -> Row<'a> {
    let facts = facts(name, None, kind, state, entry, now);
    let detail = entry.map(Entry::detail);
    let status = AgentStatus {
        name: name.to_owned(),
        namespace: namespace.map(str::to_owned),
        node: node.to_owned(),
        kind,
        state: state_name(state),
        last_report_age_seconds: facts.age.map(|a| round_ms(a.as_secs_f64())),
        report_interval_seconds: facts.interval.map(|i| i.as_secs()),
        clock_skew_seconds: entry.map(|e| round_ms(e.skew_seconds)),
        dns: detail.as_ref().map(|d| Dns {
            ok: facts.dns_failures.is_empty(),
            lookups: d.nslookup.clone(),
        }),
        probes: detail
            .map(|d| d.network_probes)
            .unwrap_or_default()
            .iter()
            .map(|p| Probe {
                url: p.url.clone(),
                ok: probe_ok(p),
                connection_result: p.connection_result,
                http_code: p.http_code,
                total_ms: p.total,
            })
            .collect(),
    };
    Row { facts, status }
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// Build the answer.
pub fn build(inputs: Inputs) -> Status {
    let Inputs {
        expected,
        entries,
        kube,
        view,
        in_grace,
        now,
        wall,
    } = inputs;
    let mut by_node: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut agent_states: BTreeMap<&'static str, usize> = AgentState::ALL
        .iter()
        .map(|s| (s.as_str(), 0))
        .chain([("unexpected", 0)])
        .collect();
    let mut healthy = true;
    let expected_names: HashSet<&str> = expected.iter().map(|(p, _)| p.name.as_str()).collect();
    for (pod, state) in &expected {
        let (name, entry) = match entries.get_key_value(&pod.name) {
            Some((k, e)) => (k.as_str(), Some(e)),
            None => (pod.name.as_str(), None),
        };
        let node = pod
            .node
            .clone()
            .or_else(|| entry.map(|e| e.nodename.to_string()))
            .unwrap_or_default();
        healthy &= !state.is_failing();
        *agent_states.entry(state.as_str()).or_default() += 1;
        let r = row(
            name,
            pod.namespace.as_deref(),
            &node,
            pod.kind,
            Some(*state),
            entry,
            now,
        );
        by_node.entry(node).or_default().push(r);
    }
    if kube {
        for (name, entry) in entries {
            if expected_names.contains(name.as_str()) {
                continue;
            }
            let node = entry.nodename.to_string();
            *agent_states.entry("unexpected").or_default() += 1;
            let r = row(
                name,
                None,
                &node,
                AgentKind::from_name(name),
                None,
                Some(entry),
                now,
            );
            by_node.entry(node).or_default().push(r);
        }
    }
    let mut verdicts: BTreeMap<&'static str, usize> =
        NodeVerdict::ALL.iter().map(|v| (v.as_str(), 0)).collect();
    let mut agents = 0;
    let nodes: Vec<NodeStatus> = by_node
        .into_iter()
        .map(|(node, mut rows)| {
            rows.sort_by(|a, b| a.facts.name.cmp(b.facts.name));
            let facts: Vec<AgentFacts> = rows.iter().map(|r| r.facts.clone()).collect();
            let judgement = judge_node(&facts);
            *verdicts.entry(judgement.verdict.as_str()).or_default() += 1;
            agents += rows.len();
            NodeStatus {
                node,
                verdict: judgement.verdict,
                reason: judgement.reason,
                agents: rows.into_iter().map(|r| r.status).collect(),
            }
        })
        .collect();
    Status {
        generated_at: wall,
        summary: Summary {
            healthy,
            nodes: nodes.len(),
            agents,
            verdicts,
            agent_states,
            in_startup_grace: in_grace,
            pod_view: PodViewStatus {
                source: if kube { "kubernetes" } else { "static" },
                synced: view.synced,
                stale: view.stale,
                age_seconds: round_ms(view.age_seconds),
            },
        },
        nodes,
    }
}

/// Every agent's facts, borrowed and sorted by node: what the background
/// loop needs to judge states and nodes, without building the answer.
pub struct Tally<'a> {
    facts: Vec<AgentFacts<'a>>,
    /// Expected agents per state, indexed like [`AgentState::ALL`].
    pub states: [usize; AgentState::ALL.len()],
    /// No expected agent absent or outdated.
    pub healthy: bool,
}

fn facts<'a>(
    name: &'a str,
    node: Option<&'a str>,
    kind: AgentKind,
    state: Option<AgentState>,
    entry: Option<&'a Entry>,
    now: Instant,
) -> AgentFacts<'a> {
    AgentFacts {
        name,
        node: node.or(entry.map(|e| &*e.nodename)).unwrap_or(""),
        kind,
        state,
        age: entry.map(|e| now.saturating_duration_since(e.received)),
        interval: entry.map(|e| e.interval),
        // Collected only when there is something to collect: no allocation
        // for the usual agent with working DNS and probes.
        dns_failures: entry
            .map(|e| e.dns_failures.iter().map(|n| &**n).collect())
            .unwrap_or_default(),
        failing_probes: entry
            .map(|e| {
                e.probes
                    .iter()
                    .filter(|(_, ok)| !ok)
                    .map(|(url, _)| &**url)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

impl<'a> Tally<'a> {
    /// Judge the expected `pods` (sorted by name, without repeats) and,
    /// with Kubernetes, take in the reporters that are not among them.
    pub fn new(
        pods: &[PodRef<'a>],
        entries: &'a std::collections::HashMap<String, Entry>,
        kube: bool,
        now: Instant,
        in_grace: bool,
        policy: &Policy,
    ) -> Self {
        let mut states = [0; AgentState::ALL.len()];
        let mut healthy = true;
        let mut all = Vec::with_capacity(pods.len());
        for pod in pods {
            let entry = entries.get(pod.name);
            let state = state_of(entry.map(Entry::seen), now, in_grace, policy);
            if let Some(i) = AgentState::ALL.iter().position(|s| *s == state) {
                states[i] += 1;
            }
            healthy &= !state.is_failing();
            all.push(facts(pod.name, pod.node, pod.kind, Some(state), entry, now));
        }
        if kube {
            for (name, entry) in entries {
                if pods.binary_search_by(|p| p.name.cmp(name)).is_err() {
                    let kind = AgentKind::from_name(name);
                    all.push(facts(name, None, kind, None, Some(entry), now));
                }
            }
        }
        all.sort_by(|a, b| a.node.cmp(b.node).then(a.name.cmp(b.name)));
        Self {
            facts: all,
            states,
            healthy,
        }
    }

    /// Each node with its agents, sorted by node.
    pub fn nodes(&self) -> impl Iterator<Item = (&'a str, &[AgentFacts<'a>])> {
        self.facts
            .chunk_by(|a, b| a.node == b.node)
            .map(|agents| (agents[0].node, agents))
    }
}
