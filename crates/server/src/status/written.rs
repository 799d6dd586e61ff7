//! Nodes and their agents as [`super::write`] writes them: the fields of
//! [`netchecker_wire::NodeStatus`] and [`netchecker_wire::AgentStatus`]
//! written straight from the evaluation, keys and all, and an agent's DNS
//! answers and probes copied as [`Details`] rendered them when its report
//! was kept. At 10,000 agents, parsing every stored report into owned
//! strings and copying the names into an owned answer took a third of a
//! status answer; parsing them in place still took a quarter, and serde
//! escaping every one of an agent's 13 keys and building each node's
//! agents as a vector first, several percent more. The bytes are those of
//! [`super::render`]'s answer (tested: "one answer, two ways").

use netchecker_wire::{AgentReport, ProbeResult, state_name};
use serde::Serialize;
use serde::ser::Serializer;

use crate::cache::Entry;
use crate::evaluation::{Evaluation, path_of, round_ms, round_ms_f64};
use crate::verdict::probe_ok;

/// A kept report's DNS answers (`dns.lookups`) and probes (`probes`) as
/// the answer writes them, rendered once when the report is kept (from the
/// report as checked and redacted, the one whose JSON is stored), so that
/// an answer copies them instead of parsing the stored JSON again. One
/// allocation: the lookups' JSON, then the probes'.
#[derive(Debug, Clone)]
pub struct Details {
    json: Box<str>,
    lookups_len: usize,
}

impl Details {
    /// The details of `report`, as [`super::render`] would show them.
    pub fn of(report: &AgentReport) -> Self {
        let mut json = Vec::with_capacity(256);
        let lookups = serde_json::to_writer(&mut json, &report.nslookup);
        let lookups_len = json.len();
        let probes = serde_json::to_writer(&mut json, &StoredProbes(&report.network_probes));
        // A map of strings and plain structs into a vector, as UTF-8: this
        // cannot fail, and if it did a report would show no details rather
        // than stop the server.
        match (lookups, probes, std::str::from_utf8(&json)) {
            (Ok(()), Ok(()), Ok(json)) => Details {
                json: json.into(),
                lookups_len,
            },
            _ => Details {
                json: "{}[]".into(),
                lookups_len: 2,
            },
        }
    }

    /// `dns.lookups`: a JSON object.
    pub fn lookups(&self) -> &str {
        &self.json[..self.lookups_len]
    }

    /// `probes`: a JSON array.
    pub fn probes(&self) -> &str {
        &self.json[self.lookups_len..]
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

/// Append `value` as JSON. Into a vector, serialising the values written
/// here (strings, numbers, the wire's enums and figures) cannot fail.
fn json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Append node `n` of the evaluation with its agents, as
/// [`netchecker_wire::NodeStatus`] serialises.
pub(super) fn node(eval: &Evaluation<'_, Entry>, n: usize, out: &mut Vec<u8>) {
    let node = &eval.nodes[n];
    out.extend_from_slice(b"{\"node\":");
    json(out, node.name);
    out.extend_from_slice(b",\"verdict\":");
    json(out, &node.verdict);
    out.extend_from_slice(b",\"reason\":");
    json(out, &eval.reason(node));
    out.extend_from_slice(b",\"agents\":[");
    for i in node.agents.clone() {
        if i > node.agents.start {
            out.push(b',');
        }
        agent(eval, i, out);
    }
    out.push(b']');
    if let Some(path) = path_of(eval.agents_of(node), eval.minute).figures() {
        out.extend_from_slice(b",\"path\":");
        json(out, &path);
    }
    out.push(b'}');
}

/// Append agent `i` of the evaluation with the details of its stored
/// report, as [`netchecker_wire::AgentStatus`] serialises.
fn agent(eval: &Evaluation<'_, Entry>, i: usize, out: &mut Vec<u8>) {
    let facts = &eval.agents[i];
    let entry = facts.report;
    out.extend_from_slice(b"{\"name\":");
    json(out, facts.name);
    out.extend_from_slice(b",\"namespace\":");
    json(out, &facts.namespace);
    out.extend_from_slice(b",\"node\":");
    json(out, facts.node);
    out.extend_from_slice(b",\"kind\":");
    json(out, &facts.kind);
    out.extend_from_slice(b",\"state\":");
    json(out, state_name(facts.state));
    out.extend_from_slice(b",\"last_report_age_seconds\":");
    json(out, &facts.age.map(round_ms));
    out.extend_from_slice(b",\"report_interval_seconds\":");
    json(out, &facts.interval.map(|i| i.as_secs()));
    out.extend_from_slice(b",\"clock_skew_seconds\":");
    json(out, &entry.map(|e| round_ms_f64(e.skew_seconds)));
    match entry.map(Entry::status_details) {
        None => out.extend_from_slice(b",\"dns\":null,\"probes\":[]"),
        Some(d) => {
            out.extend_from_slice(b",\"dns\":{\"ok\":");
            json(out, &facts.dns_failures.is_empty());
            out.extend_from_slice(b",\"lookups\":");
            out.extend_from_slice(d.lookups().as_bytes());
            out.extend_from_slice(b"},\"probes\":");
            out.extend_from_slice(d.probes().as_bytes());
        }
    }
    out.extend_from_slice(b",\"auth\":");
    json(out, &entry.and_then(|e| e.auth));
    if let Some(path) = facts.path.and_then(|w| w.counts(eval.minute).figures()) {
        out.extend_from_slice(b",\"path\":");
        json(out, &path);
    }
    if let Some(families) = super::family_ages(eval, entry) {
        out.extend_from_slice(b",\"families\":");
        json(out, &families);
    }
    out.push(b'}');
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
            assert_eq!(d.lookups(), lookups, "{body}");
            assert_eq!(d.probes(), probes, "{body}");
            assert!(!d.probes().contains("hunter2"), "redacted: {probes}");
        }
    }
}
