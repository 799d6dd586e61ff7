//! A node and its agents as [`super::write`] writes them: the fields of
//! [`netchecker_wire::NodeStatus`] and [`netchecker_wire::AgentStatus`]
//! borrowed from the evaluation, and an agent's DNS answers and probes
//! copied as [`Details`] rendered them when its report was kept. At 10,000
//! agents, parsing every stored report into owned strings and copying the
//! names into an owned answer took a third of a status answer; parsing
//! them in place still took a quarter. The bytes are those of
//! [`super::render`]'s answer (tested: "one answer, two ways").

use netchecker_wire::{
    AgentKind, AgentReport, AuthResult, NodeVerdict, PathFigures, ProbeResult, state_name,
};
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};
use serde_json::value::RawValue;

use crate::cache::Entry;
use crate::evaluation::{Evaluation, path_of, round_ms, round_ms_f64};
use crate::verdict::probe_ok;

/// A kept report's DNS answers (`dns.lookups`) and probes (`probes`) as
/// the answer writes them, rendered once when the report is kept (from the
/// report as checked and redacted, the one whose JSON is stored), so that
/// an answer copies them instead of parsing the stored JSON again.
#[derive(Debug, Clone)]
pub struct Details {
    lookups: Box<RawValue>,
    probes: Box<RawValue>,
}

impl Details {
    /// The details of `report`, as [`super::render`] would show them.
    pub fn of(report: &AgentReport) -> Self {
        // Strings and numbers into a string: serialising cannot fail.
        const INFALLIBLE: &str = "a map of strings and a list of plain structs serialise";
        Details {
            lookups: serde_json::value::to_raw_value(&report.nslookup).expect(INFALLIBLE),
            probes: serde_json::value::to_raw_value(&StoredProbes(&report.network_probes))
                .expect(INFALLIBLE),
        }
    }
}

/// [`netchecker_wire::NodeStatus`], borrowed.
#[derive(Serialize)]
pub(super) struct NodeOut<'a> {
    node: &'a str,
    verdict: NodeVerdict,
    reason: String,
    agents: Vec<Agent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<PathFigures>,
}

/// [`netchecker_wire::AgentStatus`], borrowed.
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
    probes: Probes<'a>,
    auth: Option<AuthResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<PathFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    families: Option<netchecker_wire::FamilyAges>,
}

#[derive(Serialize)]
struct Dns<'a> {
    ok: bool,
    lookups: &'a RawValue,
}

/// An agent's probes: those of its kept report, none without one.
struct Probes<'a>(Option<&'a RawValue>);

impl Serialize for Probes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(raw) => raw.serialize(s),
            None => s.serialize_seq(Some(0))?.end(),
        }
    }
}

/// A report's probes as [`netchecker_wire::Probe`]s, serialised from the
/// report without copying it.
struct StoredProbes<'a>(&'a [ProbeResult]);

impl Serialize for StoredProbes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|p| Probe {
            url: &p.url,
            ok: probe_ok(p),
            connection_result: p.connection_result,
            http_code: p.http_code,
            total_ms: p.total,
        }))
    }
}

/// [`netchecker_wire::Probe`], borrowed.
#[derive(Serialize)]
struct Probe<'a> {
    url: &'a str,
    ok: bool,
    connection_result: i64,
    http_code: i64,
    total_ms: i64,
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
fn agent<'a>(eval: &'a Evaluation<'_, Entry>, i: usize) -> Agent<'a> {
    let facts = &eval.agents[i];
    let entry = facts.report;
    let details = entry.map(Entry::status_details);
    Agent {
        name: facts.name,
        namespace: facts.namespace,
        node: facts.node,
        kind: facts.kind,
        state: state_name(facts.state),
        last_report_age_seconds: facts.age.map(round_ms),
        report_interval_seconds: facts.interval.map(|i| i.as_secs()),
        clock_skew_seconds: entry.map(|e| round_ms_f64(e.skew_seconds)),
        dns: details.map(|d| Dns {
            ok: facts.dns_failures.is_empty(),
            lookups: &d.lookups,
        }),
        probes: Probes(details.map(|d| &*d.probes)),
        auth: entry.and_then(|e| e.auth),
        path: facts.path.and_then(|w| w.counts(eval.minute).figures()),
        families: super::family_ages(eval, entry),
    }
}

#[cfg(test)]
mod tests {
    use netchecker_wire::AgentReport;

    use super::*;
    use crate::limits;

    /// What the answer wrote before [`Details`]: the DNS answers and probes
    /// of the stored JSON, parsed back.
    fn parsed_back(entry: &Entry) -> (String, String) {
        let d = entry.detail();
        let probes: Vec<netchecker_wire::Probe> = d
            .network_probes
            .iter()
            .map(|p| netchecker_wire::Probe {
                url: p.url.clone(),
                ok: probe_ok(p),
                connection_result: p.connection_result,
                http_code: p.http_code,
                total_ms: p.total,
            })
            .collect();
        (
            serde_json::to_string(&d.nslookup).unwrap(),
            serde_json::to_string(&probes).unwrap(),
        )
    }

    /// A report as ingest keeps it: checked against the bounds, then
    /// redacted.
    fn kept(body: &str) -> Entry {
        let mut report: AgentReport = serde_json::from_str(body).unwrap();
        limits::check("netchecker-agent-x7k2p", &report).unwrap();
        limits::redact(&mut report);
        Entry::new(
            &report,
            None,
            "node-1-private_network".to_owned(),
            tokio::time::Instant::now(),
            jiff::Timestamp::UNIX_EPOCH,
        )
    }

    /// The Go agent's report, and hostile ones (escapes, control
    /// characters, non-ASCII, markup, extreme numbers, nulls, secrets in
    /// URLs): the rendered details are byte for byte what parsing the
    /// stored JSON back wrote, and hold no secret cut by the redaction.
    #[test]
    fn details_are_the_stored_report_parsed_back() {
        let go = include_str!("../../../wire/tests/fixtures/go-agent-report.json");
        let probe = |url: &str, conn: i64, code: i64, total: i64| serde_json::json!({"URL": url, "ConnectionResult": conn, "HTTPCode": code, "Total": total});
        let hostile = [
            serde_json::json!({
                "report_interval": 15,
                "nslookup": {
                    "we\"ird\nname\\": ["10.0.0.1", "</script>"],
                    "": [],
                    "\u{1}\u{1f}\u{7f}é😀\u{2028}": ["::1"],
                },
                "network_probes": [
                    probe("https://user:hunter2@svc:8081/p?token=hunter2#frag", 1, 200, 3),
                    probe("http://svc/\"quoted\"\\path\t", 0, 0, -1),
                    probe("", i64::MAX, i64::MIN, i64::MAX),
                    probe("http://svc/ü", 1, 399, 0),
                ],
            }),
            serde_json::json!({"report_interval": 15, "nslookup": null, "network_probes": null}),
            serde_json::json!({"report_interval": 15}),
        ];
        let bodies = std::iter::once(go.to_owned()).chain(hostile.iter().map(|v| v.to_string()));
        for body in bodies {
            let entry = kept(&body);
            let d = entry.status_details();
            let (lookups, probes) = parsed_back(&entry);
            assert_eq!(d.lookups.get(), lookups, "{body}");
            assert_eq!(d.probes.get(), probes, "{body}");
            assert!(!d.probes.get().contains("hunter2"), "redacted: {probes}");
        }
    }
}
