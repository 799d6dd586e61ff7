//! The `GET /api/v2/status` answer, rendered from the one evaluation
//! ([`crate::evaluation`]): every agent with what is known of it, grouped by
//! node with the node's verdict and reason, and a cluster summary. Nothing
//! here judges; it only shows the judgement beside the stored details.

use std::collections::BTreeMap;

use netchecker_wire::{
    AgentStatus, AuthResult, Dns, Membership, MeshFailingPair, MeshMatrix, MeshNetworkStatus,
    MeshNode, MeshNodeNetwork, MeshStatus, NodeStatus, PodViewSource, PodViewStatus, Probe, Status,
    Summary, UNEXPECTED,
};

use crate::cache::Entry;
use crate::domain::{AgentState, NodeVerdict};
use crate::evaluation::{Evaluation, MeshPart, round_ms, round_ms_f64};
use crate::mesh::Network;
use crate::mesh::judge::{CONFIRM, MeshVerdict};
use crate::mesh::pairs::PairOutcome;
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
        let _ = serde_json::to_writer(&mut *out, &node(eval, n));
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
            kind: p.kind,
            since: p.since,
            failures: p.failures,
            reason: judged.pair_reason(p),
            error: p.error.to_owned(),
        })
        .collect();
    let nodes = part
        .places
        .iter()
        .map(|(node, places)| {
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
    let rows = |network: Network| -> Vec<String> {
        nodes
            .iter()
            .map(|from| {
                let probed = part.pairs.get(&(network, (*from).into()));
                nodes
                    .iter()
                    .map(|to| {
                        if from == to {
                            return '-';
                        }
                        let Some(s) = probed
                            .and_then(|p| p.get(*to))
                            .filter(|s| s.fresh(part.unix))
                        else {
                            return '.';
                        };
                        match s.outcome {
                            PairOutcome::Ok => 'o',
                            _ if s.failures < CONFIRM => 'x',
                            PairOutcome::Mtu => 'm',
                            PairOutcome::Slow => 's',
                            PairOutcome::Unreachable | PairOutcome::BadAnswer => 'u',
                        }
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
    }
}

/// Agent `i` of the evaluation with the details of its stored report.
fn agent(eval: &Evaluation<'_, Entry>, i: usize) -> AgentStatus {
    let facts = &eval.agents[i];
    let entry = facts.report;
    let detail = entry.map(Entry::detail);
    AgentStatus {
        name: facts.name.to_owned(),
        namespace: facts.namespace.map(str::to_owned),
        node: facts.node.to_owned(),
        kind: facts.kind,
        state: facts.state,
        last_report_age_seconds: facts.age.map(round_ms),
        report_interval_seconds: facts.interval.map(|i| i.as_secs()),
        clock_skew_seconds: entry.map(|e| round_ms_f64(e.skew_seconds)),
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
        auth: entry.and_then(|e| e.auth),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use netchecker_wire::{AgentKind, AgentReport};
    use tokio::time::Instant;

    use super::*;
    use crate::domain::{ExpectedAgent, Policy};
    use crate::evaluation::evaluate;

    const SEC: Duration = Duration::from_secs(1);

    fn entry(node: &str, received: Instant, nslookup: serde_json::Value, code: i64) -> Entry {
        let report: AgentReport = serde_json::from_value(serde_json::json!({
            "report_interval": 15,
            "nodename": node,
            "hostdate": "2026-11-21T10:00:01.5Z",
            "nslookup": nslookup,
            "network_probes": [{"URL": "http://s/ping", "ConnectionResult": 1, "HTTPCode": code, "Total": 3}],
        }))
        .unwrap();
        let wall: jiff::Timestamp = "2026-11-21T10:00:00Z".parse().unwrap();
        Entry::new(
            &report,
            None,
            format!("{node}-private_network"),
            received,
            wall,
        )
    }

    #[test]
    fn renders_nodes_agents_details_and_summary_from_the_evaluation() {
        let t0 = Instant::now();
        let ok = serde_json::json!({"netchecker-service": ["10.0.0.1"]});
        let reports = BTreeMap::from([
            ("pod-a".to_string(), entry("node-1", t0, ok.clone(), 200)),
            (
                "hostnet-a".to_string(),
                entry("node-1", t0 + 40 * SEC, ok.clone(), 200),
            ),
            (
                "pod-b".to_string(),
                entry(
                    "node-2",
                    t0 + 40 * SEC,
                    serde_json::json!({"netchecker-service": []}),
                    200,
                ),
            ),
            ("stray".to_string(), entry("node-3", t0 + 40 * SEC, ok, 503)),
        ]);
        let expected = [
            ExpectedAgent {
                namespace: Some("nc"),
                node: Some("node-1"),
                ..ExpectedAgent::named("hostnet-a")
            },
            ExpectedAgent {
                namespace: Some("nc"),
                node: Some("node-1"),
                ..ExpectedAgent::named("pod-a")
            },
            ExpectedAgent {
                namespace: Some("nc"),
                node: Some("node-2"),
                ..ExpectedAgent::named("pod-b")
            },
        ];
        let policy = Policy::default();
        let now = t0 + 41 * SEC;
        let eval = evaluate(&expected, &reports, now, t0 - 200 * SEC, &policy);
        let view = ViewFacts {
            source: PodViewSource::Kubernetes,
            health: ViewHealth {
                synced: true,
                stale: true,
                age_seconds: 12.345_6,
            },
        };
        let wall: jiff::Timestamp = "2026-11-21T10:00:41Z".parse().unwrap();
        let s = render(&eval, view, wall);
        let mut written = Vec::new();
        write(&eval, view, wall, &mut written);
        assert_eq!(
            written,
            serde_json::to_vec(&s).unwrap(),
            "one answer, two ways"
        );

        assert_eq!(s.generated_at, wall);
        let nodes: Vec<_> = s
            .nodes
            .iter()
            .map(|n| (n.node.as_str(), n.verdict))
            .collect();
        assert_eq!(
            nodes,
            [
                ("node-1", NodeVerdict::PodNetworkDown),
                ("node-2", NodeVerdict::DnsFailure),
                ("node-3", NodeVerdict::Unknown),
            ]
        );
        assert_eq!(
            s.nodes[0].reason,
            "host-network agent reports on time but pod-network agent pod-a is outdated \
             (last report 41 s ago, interval 15 s): check the pod network (CNI) on this node"
        );
        let a = &s.nodes[0].agents[1];
        assert_eq!(
            (a.name.as_str(), a.namespace.as_deref(), a.kind, a.state),
            (
                "pod-a",
                Some("nc"),
                AgentKind::PodNetwork,
                Some(AgentState::Outdated)
            )
        );
        assert_eq!(
            (a.last_report_age_seconds, a.report_interval_seconds),
            (Some(41.0), Some(15))
        );
        assert_eq!(a.clock_skew_seconds, Some(1.5));
        assert!(a.dns.as_ref().unwrap().ok);
        assert_eq!(a.probes.len(), 1);
        assert!(a.probes[0].ok && a.probes[0].http_code == 200 && a.probes[0].total_ms == 3);
        let b = &s.nodes[1].agents[0];
        assert!(!b.dns.as_ref().unwrap().ok);
        assert_eq!(
            b.dns.as_ref().unwrap().lookups["netchecker-service"],
            Vec::<String>::new()
        );
        let stray = &s.nodes[2].agents[0];
        assert_eq!((stray.state, stray.namespace.as_deref()), (None, None));
        assert!(!stray.probes[0].ok, "503 is a failing probe");

        let sum = &s.summary;
        assert!(!sum.healthy);
        assert_eq!((sum.nodes, sum.agents), (3, 4));
        assert_eq!(sum.verdicts.len(), NodeVerdict::ALL.len());
        assert_eq!(sum.verdicts["pod_network_down"], 1);
        assert_eq!(sum.verdicts["healthy"], 0);
        assert_eq!(
            sum.agent_states
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect::<Vec<_>>(),
            [
                ("absent", 0),
                ("ok", 2),
                ("outdated", 1),
                ("pending", 0),
                ("unexpected", 1)
            ]
        );
        assert!(!sum.in_startup_grace);
        assert_eq!(sum.pod_view.source, PodViewSource::Kubernetes);
        assert!(sum.pod_view.synced && sum.pod_view.stale);
        assert_eq!(sum.pod_view.age_seconds, 12.346);
    }

    #[test]
    fn an_agent_without_a_report_shows_no_details() {
        let t0 = Instant::now();
        let reports: BTreeMap<String, Entry> = BTreeMap::new();
        let expected = [ExpectedAgent::named("netchecker-agent-hostnet-x")];
        let eval = evaluate(&expected, &reports, t0, t0, &Policy::default());
        let view = ViewFacts {
            source: PodViewSource::Static,
            health: ViewHealth::ALWAYS_CURRENT,
        };
        let s = render(&eval, view, jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(s.nodes.len(), 1);
        let n = &s.nodes[0];
        assert_eq!((n.node.as_str(), n.verdict), ("", NodeVerdict::Pending));
        let a = &n.agents[0];
        assert_eq!(
            (a.kind, a.state),
            (AgentKind::HostNetwork, Some(AgentState::Pending))
        );
        assert!(a.dns.is_none() && a.probes.is_empty() && a.last_report_age_seconds.is_none());
        assert!(a.clock_skew_seconds.is_none() && a.report_interval_seconds.is_none());
        assert!(s.summary.healthy && s.summary.in_startup_grace);
        assert_eq!(s.summary.pod_view.source, PodViewSource::Static);
    }
}
