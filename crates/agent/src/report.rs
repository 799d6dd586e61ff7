//! One round: send the report at once, carrying the previous round's
//! probe results, while this round's probes run for the next report; pad
//! it, POST it on a new connection (with the bearer token of
//! `--token-file`, if any) to every server ([`crate::fanout`]), racing a
//! second connection when the SYN goes unanswered, and send it again
//! promptly while a server has not seen this pod yet or an attempt ran out
//! of time. The first round (and one after a round whose probes did not
//! finish) has no previous results: it probes first and then reports, so
//! that the first report is complete. With the mesh on, the report also
//! carries the last round's mesh probe results, and the peers that a
//! server names in its answer are probed before the next report.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use netchecker_wire::mesh::{MESH_HEADER, MESH_VERSION};
use netchecker_wire::{
    AGENTS_PATH, AgentReport, FamilyProbe, HostDate, OutgoingReport, PING_PATH, ProbeResult,
    ReportAttempts,
};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::attempts::{Attempts, Ledger};
use crate::config::Config;
use crate::mesh::Mesh;
use crate::retry::Retries;
use crate::targets::{Resolver, Tally, TargetCounts, system_resolver};
use crate::token::TokenFile;
use crate::transport::{self, Connects, RequestSpec, Target};
use crate::{Error, Result, gather, probe};

/// How much of a refusal's body is kept for the log line.
const KEEP_ANSWER_BYTES: usize = 512;
/// Largest answer read as a mesh round (64 peers take about 20 KB); a
/// longer one is no round.
const MAX_MESH_ANSWER: usize = 64 * 1024;
/// Mesh probes end this long before the next report is due, so that the
/// round ends before its interval does.
pub(crate) const MESH_MARGIN: Duration = Duration::from_millis(100);
/// What a round's probes found, for the report that carries them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Probed {
    nslookup: gather::AddressMap,
    network_probes: Vec<ProbeResult>,
    family_probes: Vec<FamilyProbe>,
}

/// The agent: its configuration and everything derived from it once.
pub struct Agent {
    pub(crate) config: Config,
    /// One per server endpoint, in the order given.
    pub(crate) report_targets: Vec<Target>,
    /// Each server endpoint's ping, then the extra probe URLs.
    probes: Vec<Target>,
    /// Built only when some probe uses https.
    tls: Option<TlsConnector>,
    /// Where the report's bearer token comes from (`--token-file`).
    token: Option<TokenFile>,
    /// Report attempts sent without a token because the file was unusable.
    without_token: AtomicU64,
    pub(crate) retries: Retries,
    /// The node-to-node mesh (`--mesh-port`); `None`: off.
    pub(crate) mesh: Option<Mesh>,
    /// Resolves the server names with `--report-to-all-addresses`.
    pub(crate) resolver: Resolver,
    /// Reports taken and not taken, by place reported to.
    pub(crate) tally: Tally,
    /// Every report attempt, by place for the round under way.
    pub(crate) ledger: Ledger,
    /// The last round's probe results, for the next report; `None` before
    /// the first round and after one whose probes did not finish.
    probed: Mutex<Option<Probed>>,
}

impl Agent {
    pub fn new(config: Config) -> Result<Self> {
        Self::with_resolver(config, system_resolver())
    }

    /// An agent that resolves the server names it reports to (with
    /// `--report-to-all-addresses`) through `resolver`; probes and
    /// `nslookup` still use the system resolver.
    pub fn with_resolver(config: Config, resolver: Resolver) -> Result<Self> {
        let path = format!("{AGENTS_PATH}/{}", config.pod_name);
        let mut report_targets = Vec::new();
        let mut probes = Vec::new();
        for endpoint in &config.server_endpoints {
            report_targets.push(Target::server(endpoint, &path)?);
            probes.push(Target::server(endpoint, PING_PATH)?);
        }
        for url in &config.probe_urls {
            probes.push(url.parse()?);
        }
        let tls = if probes.iter().any(|p| p.tls) {
            Some(transport::tls_connector()?)
        } else {
            None
        };
        let token = config.token_file.as_ref().map(TokenFile::new);
        let mesh = config
            .mesh
            .as_ref()
            .map(|m| Mesh::new(m, config.zero_extender_length, config.probe_timeout));
        Ok(Self {
            config,
            report_targets,
            probes,
            tls,
            token,
            without_token: AtomicU64::new(0),
            retries: Retries::default(),
            mesh,
            resolver,
            tally: Tally::default(),
            ledger: Ledger::default(),
            probed: Mutex::new(None),
        })
    }

    /// The mesh state (`None` with the mesh off).
    pub fn mesh(&self) -> Option<&Mesh> {
        self.mesh.as_ref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where reports go: `http://{serverendpoint}/api/v1/agents/{pod}`
    /// (the first endpoint's, when there are several).
    pub fn report_url(&self) -> &str {
        &self.report_targets[0].url
    }

    /// Every endpoint's report URL, in the order given.
    pub fn report_urls(&self) -> Vec<&str> {
        self.report_targets.iter().map(|t| t.url.as_str()).collect()
    }

    /// Report attempts made again because the server did not watch this
    /// pod yet (see [`crate::retry`]).
    pub fn retries(&self) -> u64 {
        self.retries.count()
    }

    /// Report attempts sent without the `Authorization` header because the
    /// token file was missing, empty or unreadable (0 without `--token-file`).
    pub fn reports_without_token(&self) -> u64 {
        self.without_token.load(Ordering::Relaxed)
    }

    /// Rounds whose report each place took and did not take, by place:
    /// the `host:port` of an endpoint, or with `--report-to-all-addresses`
    /// each address reported to (and an endpoint whose name did not resolve).
    pub fn target_counts(&self) -> BTreeMap<String, TargetCounts> {
        self.tally.counts()
    }

    /// Every report attempt since start: requests, connections, races,
    /// failures, reports taken after a retry (see [`crate::attempts`]).
    pub fn attempts(&self) -> Attempts {
        self.ledger.totals()
    }

    /// Every URL probed each round, the server endpoints' pings first.
    pub fn probe_urls(&self) -> Vec<&str> {
        self.probes.iter().map(|p| p.url.as_str()).collect()
    }

    /// Gather a fresh report. Never fails: what cannot be had is empty or 0.
    /// Everything that waits on the network runs concurrently, each part
    /// bounded by the probe timeout.
    pub async fn gather(&self) -> AgentReport {
        let probed = self.probe().await;
        self.report_of(&probed)
    }

    /// Look up the server names and run every probe, concurrently, each
    /// bounded by the probe timeout.
    async fn probe(&self) -> Probed {
        let c = &self.config;
        let mut hosts: Vec<&String> = Vec::new();
        for target in &self.report_targets {
            if !hosts.contains(&&target.host) {
                hosts.push(&target.host);
            }
        }
        let nslookup = futures::future::join_all(hosts.into_iter().map(|host| async move {
            match tokio::time::timeout(c.probe_timeout, gather::nslookup(host)).await {
                Ok(map) => map,
                Err(_) => {
                    tracing::debug!(
                        "DNS lookup of {host:?} timed out after {:?}",
                        c.probe_timeout
                    );
                    gather::AddressMap::from([(host.clone(), Vec::new())])
                }
            }
        }));
        let probes = futures::future::join_all(
            self.probes
                .iter()
                .map(|t| probe::probe_families(t, c.probe_timeout, self.tls.as_ref())),
        );
        let (nslookup, probed) = tokio::join!(nslookup, probes);
        let (network_probes, family_probes): (Vec<_>, Vec<_>) = probed.into_iter().unzip();
        for p in &network_probes {
            tracing::debug!(
                url = %p.url,
                connected = p.connection_result,
                code = p.http_code,
                total_ms = p.total,
                "probe"
            );
        }
        Probed {
            nslookup: nslookup.into_iter().flatten().collect(),
            network_probes,
            family_probes: family_probes.into_iter().flatten().collect(),
        }
    }

    /// A report of `probed` and of what is read at once (interfaces,
    /// uptime, the clock).
    fn report_of(&self, probed: &Probed) -> AgentReport {
        let c = &self.config;
        AgentReport {
            report_interval: c.report_interval.as_secs(),
            nodename: c.node_name.clone(),
            podname: c.pod_name.clone(),
            // Taken last, so that it is as close as possible to the send:
            // the server compares it with its own clock.
            hostdate: HostDate::from_timestamp(jiff::Timestamp::now()),
            uptime: gather::uptime(&c.proc_uptime_path),
            nslookup: probed.nslookup.clone(),
            ips: gather::interfaces(),
            network_probes: probed.network_probes.clone(),
            mesh: None,
            // Per server: set on each body (`OutgoingReport`), not here.
            report_attempts: None,
            family_probes: probed.family_probes.clone(),
        }
    }

    /// The JSON body: the report followed by `zero_extender`.
    pub fn encode(&self, report: &AgentReport) -> Result<Bytes> {
        self.encode_with(report, None)
    }

    /// The JSON body: the report, `report_attempts` when given, then
    /// `zero_extender`.
    pub fn encode_with(
        &self,
        report: &AgentReport,
        attempts: Option<&ReportAttempts>,
    ) -> Result<Bytes> {
        let out =
            OutgoingReport::new(report, self.config.zero_extender_length).with_attempts(attempts);
        Ok(serde_json::to_vec(&out)?.into())
    }

    /// POST one encoded report on a new connection to the first endpoint,
    /// within the report timeout.
    pub async fn send(&self, body: Bytes) -> Result<()> {
        let limit = self.config.report_timeout;
        self.send_to(&self.report_targets[0], None, body, limit)
            .await
            .outcome
            .map(drop)
    }

    /// POST one encoded report on a new connection to `target` (at
    /// `connect_to` when given, else wherever its name resolves), within
    /// `limit`, with the token as the file holds it now (the probes never
    /// carry it) and, with the mesh on, its header. With the mesh on,
    /// returns the body of the 2xx answer (empty when it was too long to be
    /// a mesh round); with the mesh off, always an empty one. Also returns
    /// this end's address of the connection, once connected, and the
    /// connections started: a second one is raced beside the first when it
    /// has not connected within [`transport::race_delay`].
    pub(crate) async fn send_to(
        &self,
        target: &Target,
        connect_to: Option<SocketAddr>,
        body: Bytes,
        limit: Duration,
    ) -> Sent {
        let spec = RequestSpec {
            method: Method::POST,
            content_type: Some("application/json"),
            body,
            keep_body: match self.mesh {
                Some(_) => MAX_MESH_ANSWER,
                None => KEEP_ANSWER_BYTES,
            },
            timeout: limit,
            tls: None,
            extra_header: self.mesh.as_ref().map(|_| {
                (
                    HeaderName::from_static(MESH_HEADER),
                    HeaderValue::from_static(MESH_VERSION),
                )
            }),
            authorization: self.authorization(),
            connect_to: connect_to.into_iter().collect(),
            race_after: Some(transport::race_delay(limit)),
        };
        let mut ex = transport::request(target, spec).await;
        let local = ex.local;
        let connects = std::mem::take(&mut ex.connects);
        Sent {
            outcome: self.answer(ex),
            local,
            connects,
        }
    }

    /// The outcome of a report's exchange: the body of a 2xx answer as
    /// [`Agent::send_to`] says, or why the report was not taken.
    fn answer(&self, ex: transport::Exchange) -> Result<Bytes> {
        ex.outcome?;
        match ex.status {
            Some(status) if status.is_success() => {
                if self.mesh.is_none() {
                    return Ok(Bytes::new());
                }
                if ex.body_len > ex.body.len() as u64 {
                    tracing::debug!(bytes = ex.body_len, "the server's answer is too long");
                    return Ok(Bytes::new());
                }
                Ok(ex.body)
            }
            Some(status) => Err(Error::Status {
                status,
                body: String::from_utf8_lossy(&ex.body[..ex.body.len().min(KEEP_ANSWER_BYTES)])
                    .trim()
                    .to_owned(),
            }),
            None => unreachable!("a completed exchange has a status"),
        }
    }
    /// `Bearer <token>` from the token file, read afresh; `None` without
    /// `--token-file`, or (counted) when the file cannot be used.
    fn authorization(&self) -> Option<HeaderValue> {
        let value = self.token.as_ref()?.header();
        if value.is_none() {
            self.without_token.fetch_add(1, Ordering::Relaxed);
        }
        value
    }

    /// Gather a report (and, with `--report-to-all-addresses`, resolve the
    /// servers meanwhile), encode it and send it to every server at once
    /// ([`crate::fanout`]): each send on its own connection, with its own
    /// timeout, and sent again after 1 s, 2 s, 4 s … while that server
    /// answers that it does not watch this pod yet, until the next report is
    /// due (one interval after this round began). The round succeeds when at
    /// least one server took the report. With the mesh on, the report
    /// carries the last round's results, and the peers in one server's
    /// answer are probed until shortly before the next report is due. The
    /// mesh never fails a round.
    ///
    /// The report goes out at the start of the round with the previous
    /// round's probe results (DNS lookups and HTTP probes), while this
    /// round's probes run for the next one. With none (the first round, or
    /// after a round cut short before its probes finished) the round
    /// probes first and then reports, as every round once did.
    pub async fn round(&self) -> Result<()> {
        let due = Instant::now() + self.config.report_interval;
        let previous = self.probed_slot().take();
        let (outcome, probed) = match previous {
            Some(previous) => {
                let report = async {
                    let places = self.places().await;
                    let mut report = self.report_of(&previous);
                    report.mesh = self.mesh.as_ref().map(Mesh::report);
                    self.deliver(&report, places, due).await
                };
                tokio::join!(report, self.probe())
            }
            None => {
                let (probed, places) = tokio::join!(self.probe(), self.places());
                let mut report = self.report_of(&probed);
                report.mesh = self.mesh.as_ref().map(Mesh::report);
                (self.deliver(&report, places, due).await, probed)
            }
        };
        // Results gathered while the report could not get through are
        // likely the same outage's: the next round probes afresh first,
        // rather than reporting a fault that has passed.
        *self.probed_slot() = outcome.is_ok().then_some(probed);
        outcome
    }

    fn probed_slot(&self) -> std::sync::MutexGuard<'_, Option<Probed>> {
        self.probed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one request of a report came to.
pub(crate) struct Sent {
    /// The answer's body (see [`Agent::send_to`]), or why it was not taken.
    pub outcome: Result<Bytes>,
    /// This end's address of the connection, once connected.
    pub local: Option<SocketAddr>,
    /// The TCP connections started.
    pub connects: Connects,
}
