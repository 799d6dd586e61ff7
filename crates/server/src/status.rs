//! The `GET /api/v2/status` answer, rendered from the one evaluation
//! ([`crate::evaluation`]): every agent with what is known of it, grouped by
//! node with the node's verdict and reason, and a cluster summary. Nothing
//! here judges; it only shows the judgement beside the stored details.

use std::collections::BTreeMap;

use netchecker_wire::{
    AgentStatus, AuthResult, Dns, FamilyAges, Membership, MeshFailingPair, MeshMatrix,
    MeshNetworkStatus, MeshNode, MeshNodeNetwork, MeshStatus, NodeStatus, PodViewSource,
    PodViewStatus, Probe, Status, Summary, UNEXPECTED,
};

use crate::cache::Entry;
use crate::domain::{AgentState, NodeVerdict};
use crate::evaluation::{Evaluation, MeshPart, path_of, round_ms, round_ms_f64};
use crate::mesh::Network;
use crate::mesh::judge::{CONFIRM, MeshVerdict};
use crate::mesh::pairs::{NodeId, PairOutcome};
use crate::mesh::roster::Place;
use crate::podview::ViewHealth;
use crate::verdict::probe_ok;

/// Where the expected agents came from and how current that is.
#[derive(Debug, Clone, Copy)]
pub struct ViewFacts {
    pub source: PodViewSource,
    pub health: ViewHealth,
}

/// Render the answer for `eval`, made at wall-clock time `wall`.
pub fn render(eval: &Evaluation<'_, Entry>, view: ViewFacts, wall: jiff::Timestamp) -> Status {
    Status {
        generated_at: wall,
        summary: summary(eval, view),
        nodes: (0..eval.nodes.len()).map(|n| node(eval, n)).collect(),
        mesh: Some(mesh(eval)),
    }
}

/// Write the answer for `eval` as JSON into `out`, exactly as `render`'s
/// result serialises, one node at a time: the answer is held once, as
/// bytes, never a second time as values.
pub fn write(
    eval: &Evaluation<'_, Entry>,
    view: ViewFacts,
    wall: jiff::Timestamp,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"{\"generated_at\":");
    let _ = serde_json::to_writer(&mut *out, &wall);
    out.extend_from_slice(b",\"summary\":");
    let _ = serde_json::to_writer(&mut *out, &summary(eval, view));
    out.extend_from_slice(b",\"nodes\":[");
    for n in 0..eval.nodes.len() {
        if n > 0 {
            out.push(b',');
        }
        written::node(eval, n, out);
    }
    out.extend_from_slice(b"],\"mesh\":");
    let _ = serde_json::to_writer(&mut *out, &mesh(eval));
    out.push(b'}');
}

/// The mesh part of the answer (`enabled: false` and empty without it).
fn mesh<R>(eval: &Evaluation<'_, R>) -> MeshStatus {
    let Some(part) = &eval.mesh else {
        return MeshStatus {
            enabled: false,
            peers: 0,
            round: 0,
            round_seconds: 0,
            networks: Vec::new(),
            failing_pairs: Vec::new(),
            nodes: Vec::new(),
            matrix: None,
        };
    };
    let judged = &part.judged;
    let networks = Network::ALL
        .iter()
        .map(|n| {
            let cover = judged.cover_rounds[n.index()];
            MeshNetworkStatus {
                network: *n,
                members: judged.members[n.index()],
                cover_rounds: cover,
                cover_seconds: cover.map(|c| c.saturating_mul(part.round_seconds)),
            }
        })
        .collect();
    let failing_pairs = judged
        .failing
        .iter()
        .map(|p| MeshFailingPair {
            from: p.from.to_owned(),
            to: p.to.to_owned(),
            network: p.network,
            family: Some(p.family),
            kind: p.kind,
            since: p.since,
            failures: p.failures,
            reason: judged.pair_reason(p),
            error: p.error.to_owned(),
        })
        .collect();
    let nodes = part
        .roster
        .places
        .iter()
        .map(|(node, places)| {
            let (node, places) = (&**node, *places);
            let member = places.iter().flatten().any(|p| *p == Place::Member);
            let verdict = match judged.verdict(node) {
                _ if places.iter().flatten().all(|p| *p == Place::NoMesh) => {
                    netchecker_wire::MeshVerdict::NoMesh
                }
                MeshVerdict::Ok if !member => netchecker_wire::MeshVerdict::Ok,
                v => v.wire(),
            };
            let counts = judged.nodes.get(node).copied().unwrap_or_default();
            let networks = Network::ALL
                .iter()
                .filter_map(|n| {
                    let place = places[n.index()]?;
                    let c = counts[n.index()];
                    let (membership, left_out) = match place {
                        Place::Member => (Membership::Member, None),
                        Place::NoMesh => (Membership::NoMesh, None),
                        Place::LeftOut(why) => (Membership::LeftOut, Some(why.as_str().to_owned())),
                    };
                    Some(MeshNodeNetwork {
                        network: *n,
                        membership,
                        left_out,
                        probed: c.probed,
                        failed: c.failed,
                        probed_by: c.probed_by,
                        failed_by: c.failed_by,
                    })
                })
                .collect();
            MeshNode {
                node: (*node).to_owned(),
                verdict,
                networks,
            }
        })
        .collect();
    MeshStatus {
        enabled: true,
        peers: judged.peers,
        round: judged.round,
        round_seconds: part.round_seconds,
        networks,
        failing_pairs,
        nodes,
        matrix: matrix(part),
    }
}

/// The last result of every pair, while few enough nodes take part.
fn matrix(part: &MeshPart<'_>) -> Option<MeshMatrix> {
    let mut nodes: Vec<&str> = part.roster.rings.iter().flat_map(|r| r.nodes()).collect();
    nodes.sort_unstable();
    nodes.dedup();
    if nodes.is_empty() || nodes.len() > MeshMatrix::MAX_NODES {
        return None;
    }
    let pairs = part.pairs;
    let ids: Vec<Option<NodeId>> = nodes.iter().map(|n| pairs.id(n)).collect();
    let rows = |network: Network| -> Vec<String> {
        ids.iter()
            .enumerate()
            .map(|(row, from)| {
                let probed = from.map_or(&[][..], |f| pairs.targets(network, f));
                ids.iter()
                    .enumerate()
                    .map(|(column, to)| {
                        if row == column {
                            return '-';
                        }
                        // Over each family of a dual-stack pair: the worst.
                        let Some(to) = to else {
                            return '.';
                        };
                        probed
                            .iter()
                            .filter(|(t, s)| t == to && s.fresh(part.unix))
                            .map(|(_, s)| match s.outcome {
                                PairOutcome::Ok => (0, 'o'),
                                _ if s.failures < CONFIRM => (1, 'x'),
                                PairOutcome::Slow => (2, 's'),
                                PairOutcome::Mtu => (3, 'm'),
                                PairOutcome::Unreachable | PairOutcome::BadAnswer => (4, 'u'),
                            })
                            .max()
                            .map_or('.', |(_, c)| c)
                    })
                    .collect()
            })
            .collect()
    };
    Some(MeshMatrix {
        nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
        pod: rows(Network::Pod),
        host: rows(Network::Host),
    })
}

fn summary(eval: &Evaluation<'_, Entry>, view: ViewFacts) -> Summary {
    let verdicts = NodeVerdict::ALL
        .iter()
        .map(|v| (v.as_str().to_owned(), eval.verdicts[v.index()]))
        .collect();
    let agent_states: BTreeMap<String, usize> = AgentState::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), eval.states[s.index()]))
        .chain([(UNEXPECTED.to_owned(), eval.unexpected)])
        .collect();
    Summary {
        healthy: eval.healthy,
        nodes: eval.nodes.len(),
        agents: eval.agents.len(),
        verdicts,
        agent_states,
        in_startup_grace: eval.in_grace,
        pod_view: PodViewStatus {
            source: view.source,
            synced: view.health.synced,
            stale: view.health.stale,
            age_seconds: round_ms_f64(view.health.age_seconds),
        },
        unauthenticated: eval
            .agents
            .iter()
            .filter_map(|a| a.report?.auth)
            .filter(|r| *r != AuthResult::Ok)
            .count(),
    }
}

/// Node `n` of the evaluation with its agents.
fn node(eval: &Evaluation<'_, Entry>, n: usize) -> NodeStatus {
    let node = &eval.nodes[n];
    NodeStatus {
        node: node.name.to_owned(),
        verdict: node.verdict,
        reason: eval.reason(node),
        agents: node.agents.clone().map(|i| agent(eval, i)).collect(),
        path: path_of(eval.agents_of(node), eval.minute).figures(),
    }
}

/// Agent `i` of the evaluation with the details of its stored report.
fn agent(eval: &Evaluation<'_, Entry>, i: usize) -> AgentStatus {
    let facts = &eval.agents[i];
    let entry = facts.report;
    let mut detail = entry.map(Entry::detail);
    AgentStatus {
        name: facts.name.to_owned(),
        namespace: facts.namespace.map(str::to_owned),
        node: facts.node.to_owned(),
        kind: facts.kind,
        state: facts.state,
        last_report_age_seconds: facts.age.map(round_ms),
        report_interval_seconds: facts.interval.map(|i| i.as_secs()),
        clock_skew_seconds: entry.map(|e| round_ms_f64(e.skew_seconds)),
        dns: detail.as_mut().map(|d| Dns {
            ok: facts.dns_failures.is_empty(),
            lookups: std::mem::take(&mut d.nslookup),
        }),
        probes: detail
            .map(|d| d.network_probes)
            .unwrap_or_default()
            .into_iter()
            .map(|p| Probe {
                ok: probe_ok(&p),
                url: p.url,
                connection_result: p.connection_result,
                http_code: p.http_code,
                total_ms: p.total,
            })
            .collect(),
        auth: entry.and_then(|e| e.auth),
        path: facts.path.and_then(|w| w.counts(eval.minute).figures()),
        families: family_ages(eval, entry),
    }
}

/// The ages of an agent's last report over each family, once it reported
/// over both.
fn family_ages(eval: &Evaluation<'_, Entry>, entry: Option<&Entry>) -> Option<FamilyAges> {
    let [Some(v4), Some(v6)] = entry?.families else {
        return None;
    };
    let age = |t| Some(round_ms(eval.now.saturating_duration_since(t)));
    Some(FamilyAges {
        ipv4: age(v4),
        ipv6: age(v6),
    })
}

mod written;

#[cfg(test)]
mod tests;
