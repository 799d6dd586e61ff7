//! A kept report's DNS answers and probes, rendered once as the status
//! answer writes them ([`Details`]): kept with the entry, so an answer
//! copies them instead of parsing the stored JSON back.

use netchecker_wire::{AgentReport, ProbeResult};
use serde::Serialize;
use serde::ser::Serializer;

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

#[cfg(test)]
mod tests {
    use netchecker_wire::AgentReport;

    use super::*;
    use crate::cache::Entry;
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
