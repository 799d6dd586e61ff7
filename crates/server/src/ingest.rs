//! Reports coming in: validate the agent name, parse the body past its
//! padding, and store the report with its metric series. A refused report
//! never changes what is stored; every refusal is counted, a few per second
//! are logged.

use netchecker_wire::AgentReport;
use tokio::time::Instant;

use crate::app::App;
use crate::cache::{CacheFull, Entry};
use crate::domain::agent_label;
use crate::metrics::Rejection;

/// Why a report was not stored. The cache is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid agent name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
    #[error("invalid JSON in report: {0}")]
    InvalidJson(#[source] serde_json::Error),
    #[error("invalid report: {0}")]
    InvalidReport(String),
    #[error(
        "agent cache is full ({max} agents); refusing new agent {name:?} (known agents keep updating)"
    )]
    CacheFull { name: String, max: usize },
}

impl IngestError {
    pub fn rejection(&self) -> Rejection {
        match self {
            IngestError::InvalidName { .. } => Rejection::InvalidName,
            IngestError::InvalidJson(_) => Rejection::InvalidJson,
            IngestError::InvalidReport(_) => Rejection::InvalidReport,
            IngestError::CacheFull { .. } => Rejection::CacheFull,
        }
    }
}

impl App {
    /// Parse, validate and store a report for agent `name` received at `now`.
    pub fn ingest(&self, name: &str, body: &[u8], now: Instant) -> Result<(), IngestError> {
        let result = self.try_ingest(name, body, now);
        if let Err(e) = &result {
            self.0.metrics.report_rejected(e.rejection());
            // Every refusal is counted; only a few per second are logged.
            if let Some(suppressed) = self.0.refusal_log.allow(now) {
                tracing::warn!(agent = %name, error = %e, suppressed, "report refused");
            }
        }
        result
    }

    fn try_ingest(&self, name: &str, body: &[u8], now: Instant) -> Result<(), IngestError> {
        validate_pod_name(name).map_err(|why| IngestError::InvalidName {
            name: name.to_owned(),
            why,
        })?;
        let fast = crate::padding::without_padding(body)
            .and_then(|cut| serde_json::from_slice::<AgentReport>(&cut).ok());
        let report = match fast {
            Some(report) => report,
            None => parse(body)?,
        };
        if report.report_interval == 0 {
            return Err(IngestError::InvalidReport(
                "report_interval must be a positive number of seconds".into(),
            ));
        }
        let agent = agent_label(name, &report.nodename);
        let entry = Entry::new(&report, agent.clone(), now, jiff::Timestamp::now());
        let skew = entry.skew_seconds;
        let cache = &self.0.cache;
        match cache.insert(name, entry) {
            Ok(previous) => {
                let probes = &report.network_probes;
                match previous {
                    // The pod's node name changed: its old label's series go.
                    Some(prev) if prev.agent != agent => self.forget_series(name, &prev),
                    // Probe URLs the agent no longer reports lose their
                    // series, unless another pod shares the label (rare, so
                    // the cache is searched only when URLs changed).
                    Some(prev) => {
                        let dropped: Vec<&str> = prev
                            .probes
                            .iter()
                            .map(|(old, _)| &**old)
                            .filter(|old| probes.iter().all(|new| new.url != *old))
                            .collect();
                        if !dropped.is_empty() && !cache.has_agent_label(&agent, name) {
                            self.0.metrics.forget_probes(&agent, &dropped);
                        }
                    }
                    None => {}
                }
                self.0.metrics.report_accepted(&agent, name, probes, skew);
                tracing::debug!(agent = name, "report stored");
                Ok(())
            }
            Err(CacheFull { max }) => Err(IngestError::CacheFull {
                name: name.to_owned(),
                max,
            }),
        }
    }
}

/// Parse a whole body; the error says whether it is not JSON at all or
/// JSON of the wrong shape.
fn parse(body: &[u8]) -> Result<AgentReport, IngestError> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            IngestError::InvalidReport(e.to_string())
        } else {
            IngestError::InvalidJson(e)
        }
    })
}

/// A pod name is a DNS subdomain (RFC 1123): at most 253 characters of
/// lowercase letters, digits, `-` and `.`, starting and ending alphanumeric.
pub fn validate_pod_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > 253 {
        return Err("must be at most 253 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err("must consist of lowercase letters, digits, '-' and '.'");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(name.as_bytes()[0]) || !alnum(name.as_bytes()[name.len() - 1]) {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_names() {
        for ok in [
            "a",
            "netchecker-agent-x7k2p",
            "netchecker-agent-hostnet-q8w3z",
            "a.b-1",
            &"a".repeat(253),
        ] {
            assert_eq!(validate_pod_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "A",
            "-a",
            "a-",
            "a_b",
            "a/b",
            "a b",
            ".a",
            "ä",
            &"a".repeat(254),
        ] {
            assert!(validate_pod_name(bad).is_err(), "{bad}");
        }
    }
}
