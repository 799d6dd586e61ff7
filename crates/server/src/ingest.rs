//! Reports coming in: validate the agent name, check that it is an
//! expected agent, parse the body past its padding, hold it to the bounds
//! of [`crate::limits`], cut secrets out of its URLs, and store it with its
//! metric series. A refused report never changes what is stored; every
//! refusal is counted, a few per second are logged (escaped).

use std::time::Duration;

use netchecker_wire::mesh::{MeshAnswer, MeshReport};
use netchecker_wire::{AgentKind, AgentReport, IpFamily, MeshNetwork};
use tokio::time::Instant;

use crate::app::App;
use crate::auth::{Mode, Verdict};
use crate::cache::{CacheFull, Entry};
use crate::domain::agent_label;
use crate::limits;
use crate::mesh::pairs::Received;
use crate::metrics::Rejection;
use crate::podview::Watched;
use crate::verdict::{family_failures, probe_ok};

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
    #[error(
        "no watched agent pod is named {name:?}: reports are accepted only from the agent pods the server watches"
    )]
    UnknownAgent { name: String },
    #[error("report refused: {0} (this server requires a valid token, --report-auth enforce)")]
    Unauthenticated(String),
    #[error("report refused: {0}")]
    Forbidden(String),
}

impl IngestError {
    pub fn rejection(&self) -> Rejection {
        match self {
            IngestError::InvalidName { .. } => Rejection::InvalidName,
            IngestError::InvalidJson(_) => Rejection::InvalidJson,
            IngestError::InvalidReport(_) => Rejection::InvalidReport,
            IngestError::CacheFull { .. } => Rejection::CacheFull,
            IngestError::UnknownAgent { .. } => Rejection::UnknownAgent,
            IngestError::Unauthenticated(_) => Rejection::Unauthenticated,
            IngestError::Forbidden(_) => Rejection::Forbidden,
        }
    }
}

impl App {
    /// What the `Authorization` header of a report for `name` proves.
    pub async fn authenticate(&self, name: &str, header: Option<&[u8]>) -> Verdict {
        self.0.auth.check(name, header, &self.0.pods).await
    }

    /// Parse, validate and store a report for agent `name` received at
    /// `now`, sent without credentials.
    pub fn ingest(&self, name: &str, body: &[u8], now: Instant) -> Result<(), IngestError> {
        let verdict = if self.0.auth.checks() {
            Verdict::Missing
        } else {
            Verdict::Unchecked
        };
        self.ingest_as(name, verdict, body, now)
    }

    /// Parse, validate and store a report for agent `name` received at
    /// `now`, whose credentials proved `verdict`.
    pub fn ingest_as(
        &self,
        name: &str,
        verdict: Verdict,
        body: &[u8],
        now: Instant,
    ) -> Result<(), IngestError> {
        self.ingest_report(name, verdict, body, now, false)
            .map(|_| ())
    }

    /// [`App::ingest_as`], and take in the report's mesh part; an agent
    /// that `wants_mesh` (the request header) gets its peers for the next
    /// round, when the mesh is on.
    pub fn ingest_report(
        &self,
        name: &str,
        verdict: Verdict,
        body: &[u8],
        now: Instant,
        wants_mesh: bool,
    ) -> Result<Option<MeshAnswer>, IngestError> {
        self.ingest_report_over(name, verdict, body, now, wants_mesh, None)
    }

    /// [`App::ingest_report`] for a report that came over `family` (the
    /// peer's address; `None` when not known).
    pub fn ingest_report_over(
        &self,
        name: &str,
        verdict: Verdict,
        body: &[u8],
        now: Instant,
        wants_mesh: bool,
        family: Option<IpFamily>,
    ) -> Result<Option<MeshAnswer>, IngestError> {
        match self.try_ingest(name, verdict, body, now, family) {
            Ok(stored) => Ok(self.mesh_exchange(name, stored, wants_mesh)),
            Err(e) => {
                self.0.metrics.report_rejected(e.rejection());
                self.log_refusal(name, &e, now);
                Err(e)
            }
        }
    }

    /// Record a stored report's probe results, and hand its agent its next
    /// peers if it asked.
    fn mesh_exchange(&self, name: &str, stored: Stored, wants_mesh: bool) -> Option<MeshAnswer> {
        let settings = &self.0.settings.mesh;
        let mesh = stored.mesh?;
        if !settings.enabled() || stored.node.is_empty() {
            return None;
        }
        let network = MeshNetwork::of(stored.kind)?;
        let wall = jiff::Timestamp::now();
        let received = Received {
            name,
            node: &stored.node,
            network,
            report: &mesh,
            interval: stored.interval,
        };
        let series = self.0.metrics.mesh();
        for r in self.0.mesh.record(&received, settings, wall) {
            series.probe(network, &stored.node, &r.peer, r.failed, r.rtt_us);
        }
        if !wants_mesh {
            return None;
        }
        let round = settings.round_at(wall.as_second());
        let mesh = self
            .0
            .mesh
            .assign(name, &stored.node, network, round, settings);
        Some(MeshAnswer { mesh })
    }

    /// Every refusal is counted; a few per second are logged, the agent's
    /// name and the reason escaped so no line can be forged.
    fn log_refusal(&self, name: &str, e: &IngestError, now: Instant) {
        if let Some(suppressed) = self.0.refusal_log.allow(now) {
            tracing::warn!(agent = ?name, error = ?e.to_string(), suppressed, "report refused");
        }
    }

    fn try_ingest(
        &self,
        name: &str,
        verdict: Verdict,
        body: &[u8],
        now: Instant,
        family: Option<IpFamily>,
    ) -> Result<Stored, IngestError> {
        validate_pod_name(name).map_err(|why| IngestError::InvalidName {
            name: name.to_owned(),
            why,
        })?;
        // Once the pods are known, only a watched pod may report, and its
        // node is the pod's, never what the body says.
        let (node, kind) = match self.0.pods.watched_pod(name) {
            Watched::Pod(node, kind) => (node, kind),
            Watched::NotWatched => {
                return Err(IngestError::UnknownAgent {
                    name: name.to_owned(),
                });
            }
            Watched::NoView => (None, AgentKind::from_name(name)),
        };
        let auth = verdict.result();
        if let Some(result) = auth {
            self.0.metrics.report_auth(result);
        }
        if self.0.auth.mode == Mode::Enforce {
            match verdict {
                Verdict::Ok | Verdict::Unchecked => {}
                Verdict::Missing => {
                    return Err(IngestError::Unauthenticated(
                        "no bearer token in the Authorization header".to_owned(),
                    ));
                }
                Verdict::Invalid(why) => return Err(IngestError::Unauthenticated(why)),
                Verdict::Forbidden(why) => return Err(IngestError::Forbidden(why)),
            }
        }
        let fast = crate::padding::without_padding(body)
            .and_then(|cut| serde_json::from_slice::<AgentReport>(&cut).ok());
        let mut report = match fast {
            Some(report) => report,
            None => parse(body)?,
        };
        limits::check(name, &report).map_err(IngestError::InvalidReport)?;
        limits::redact(&mut report);
        // The mesh part is not a stored report's: the v1 answers serve back
        // exactly what the original's agents send.
        let mesh = report.mesh.take();
        // Neither is `report_attempts`: its figures are kept apart. Nor
        // `family_probes`: only what fails over one family is kept.
        let attempts = report.report_attempts.take();
        let family_failures = family_failures(&std::mem::take(&mut report.family_probes));
        let node = node.as_deref();
        let agent = agent_label(name, node.unwrap_or(&report.nodename));
        let mut entry = Entry::new(&report, node, agent.clone(), now, jiff::Timestamp::now());
        entry.auth = auth;
        entry.family_failures = family_failures;
        let skew = entry.skew_seconds;
        let cache = &self.0.cache;
        let minute = self.minute(now);
        let policy = &self.0.settings.policy;
        let carry = |old: Option<&mut Entry>, new: &mut Entry| {
            let old_families = old.as_ref().map(|o| o.families).unwrap_or_default();
            let after_outage = old
                .as_ref()
                .is_some_and(|o| crate::verdict::is_outdated(&o.seen(), now, policy));
            new.probe_failure_repeated = old.as_ref().is_some_and(|o| {
                new.failing_probes
                    .iter()
                    .any(|url| o.failing_probes.contains(url))
            });
            let mut window = old.and_then(|o| o.path.take());
            if let Some(a) = &attempts {
                let probes = report
                    .network_probes
                    .iter()
                    .filter(|p| probe_ok(p))
                    .map(|p| u32::try_from(p.total).unwrap_or(0));
                let window = window.get_or_insert_default();
                if after_outage {
                    window.outage_ended();
                }
                window.record(minute, a.previous.as_ref(), probes);
                if let Some(m) = &mesh {
                    window.record_mesh(minute, &m.results);
                }
            }
            new.path = window;
            new.families = old_families;
            if let Some(f) = family {
                new.families[f.index()] = Some(now);
            }
        };
        match cache.insert_carrying(name, entry, carry) {
            Ok(_) => {
                let probes = &report.network_probes;
                self.0.metrics.report_accepted(&agent, name, probes, skew);
                tracing::debug!(agent = name, "report stored");
                Ok(Stored {
                    node: node.unwrap_or(&report.nodename).into(),
                    kind,
                    interval: Duration::from_secs(report.report_interval),
                    mesh,
                })
            }
            Err(CacheFull { max }) => Err(IngestError::CacheFull {
                name: name.to_owned(),
                max,
            }),
        }
    }
}

/// What the mesh needs of a stored report.
struct Stored {
    /// The pod's node (the reported one without Kubernetes).
    node: Box<str>,
    /// The watched pod's kind (by its name without Kubernetes).
    kind: AgentKind,
    interval: Duration,
    mesh: Option<MeshReport>,
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
