//! A node and its agents as [`super::write`] writes them: the fields of
//! [`netchecker_wire::NodeStatus`] and [`AgentStatus`] borrowed from the evaluation and from
//! the stored report, which is parsed in place. At 10,000 agents, parsing
//! every stored report into owned strings and copying the names into an
//! owned answer took a third of a status answer. The bytes are those of
//! [`super::render`]'s answer (tested: "one answer, two ways").

use std::collections::BTreeMap;

use netchecker_wire::{AgentKind, AgentStatus, AuthResult, NodeVerdict, PathFigures, state_name};
use serde::{Deserialize, Serialize};

use crate::cache::Entry;
use crate::evaluation::{Evaluation, path_of, round_ms, round_ms_f64};
use crate::verdict::codes_ok;

/// [`netchecker_wire::NodeStatus`], borrowed.
#[derive(Serialize)]
pub(super) struct NodeOut<'a> {
    node: &'a str,
    verdict: NodeVerdict,
    reason: String,
    agents: Vec<AgentOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<PathFigures>,
}

/// [`AgentStatus`], borrowed where the stored report allows it.
#[derive(Serialize)]
#[serde(untagged)]
enum AgentOut<'a> {
    Borrowed(Agent<'a>),
    /// A stored report with an escaped string in the parts shown, which
    /// cannot be borrowed.
    Owned(AgentStatus),
}

#[derive(Serialize)]
struct Agent<'a> {
    name: &'a str,
    namespace: Option<&'a str>,
    node: &'a str,
    kind: AgentKind,
    state: &'static str,
    last_report_age_seconds: Option<f64>,
    report_interval_seconds: Option<u64>,
    clock_skew_seconds: Option<f64>,
    dns: Option<Dns<'a>>,
    probes: Vec<Probe<'a>>,
    auth: Option<AuthResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<PathFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    families: Option<netchecker_wire::FamilyAges>,
}

#[derive(Serialize)]
struct Dns<'a> {
    ok: bool,
    lookups: BTreeMap<&'a str, Vec<&'a str>>,
}

#[derive(Serialize)]
struct Probe<'a> {
    url: &'a str,
    ok: bool,
    connection_result: i64,
    http_code: i64,
    total_ms: i64,
}

/// The parts of a stored report the answer shows ([`crate::cache::Detail`]),
/// borrowed from its JSON (which the server wrote itself).
#[derive(Deserialize)]
struct Detail<'a> {
    #[serde(default, borrow)]
    nslookup: BTreeMap<&'a str, Vec<&'a str>>,
    #[serde(default, borrow)]
    network_probes: Vec<StoredProbe<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StoredProbe<'a> {
    #[serde(rename = "URL", borrow)]
    url: &'a str,
    #[serde(default)]
    connection_result: i64,
    #[serde(rename = "HTTPCode", default)]
    http_code: i64,
    #[serde(default)]
    total: i64,
}

/// Node `n` of the evaluation with its agents, borrowed.
pub(super) fn node<'a>(eval: &'a Evaluation<'_, Entry>, n: usize) -> NodeOut<'a> {
    let node = &eval.nodes[n];
    NodeOut {
        node: node.name,
        verdict: node.verdict,
        reason: eval.reason(node),
        agents: node.agents.clone().map(|i| agent(eval, i)).collect(),
        path: path_of(eval.agents_of(node), eval.minute).figures(),
    }
}

/// Agent `i` of the evaluation with the details of its stored report.
fn agent<'a>(eval: &'a Evaluation<'_, Entry>, i: usize) -> AgentOut<'a> {
    let facts = &eval.agents[i];
    let entry = facts.report;
    let detail = match entry.map(|e| serde_json::from_slice::<Detail<'_>>(e.json())) {
        None => None,
        Some(Ok(detail)) => Some(detail),
        Some(Err(_)) => return AgentOut::Owned(super::agent(eval, i)),
    };
    let (dns, probes) = match detail {
        None => (None, Vec::new()),
        Some(d) => (
            Some(Dns {
                ok: facts.dns_failures.is_empty(),
                lookups: d.nslookup,
            }),
            d.network_probes
                .into_iter()
                .map(|p| Probe {
                    url: p.url,
                    ok: codes_ok(p.connection_result, p.http_code),
                    connection_result: p.connection_result,
                    http_code: p.http_code,
                    total_ms: p.total,
                })
                .collect(),
        ),
    };
    AgentOut::Borrowed(Agent {
        name: facts.name,
        namespace: facts.namespace,
        node: facts.node,
        kind: facts.kind,
        state: state_name(facts.state),
        last_report_age_seconds: facts.age.map(round_ms),
        report_interval_seconds: facts.interval.map(|i| i.as_secs()),
        clock_skew_seconds: entry.map(|e| round_ms_f64(e.skew_seconds)),
        dns,
        probes,
        auth: entry.and_then(|e| e.auth),
        path: facts.path.and_then(|w| w.counts(eval.minute).figures()),
        families: super::family_ages(eval, entry),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Go agent's report as stored: its details are borrowed, not
    /// parsed into owned strings (the owned rendering is only the
    /// fallback for escaped strings).
    #[test]
    fn a_stored_go_report_is_read_in_place() {
        let report: netchecker_wire::AgentReport = serde_json::from_str(include_str!(
            "../../../wire/tests/fixtures/go-agent-report.json"
        ))
        .unwrap();
        let entry = Entry::new(
            &report,
            None,
            "node-1-private_network".to_owned(),
            tokio::time::Instant::now(),
            jiff::Timestamp::UNIX_EPOCH,
        );
        let d: Detail<'_> = serde_json::from_slice(entry.json()).expect("borrowed");
        assert_eq!(d.nslookup.len(), report.nslookup.len());
        assert_eq!(d.network_probes.len(), report.network_probes.len());
        let (p, q) = (&d.network_probes[0], &report.network_probes[0]);
        assert_eq!(
            (p.url, p.connection_result, p.http_code, p.total),
            (&*q.url, q.connection_result, q.http_code, q.total)
        );
    }
}
