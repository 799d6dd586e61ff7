//! One round: gather a fresh report, pad it, POST it on a new connection
//! (with the bearer token of `--token-file`, if any) to every server
//! ([`crate::fanout`]), and send it again promptly while a server has not
//! seen this pod yet. With the mesh on, the report also carries the last
//! round's probe results, and the peers that a server names in its answer
//! are probed before the next report.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use netchecker_wire::mesh::{MESH_HEADER, MESH_VERSION};
use netchecker_wire::{AGENTS_PATH, AgentReport, HostDate, OutgoingReport, PING_PATH};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::config::Config;
use crate::mesh::Mesh;
use crate::retry::Retries;
use crate::targets::{Resolver, Tally, TargetCounts, system_resolver};
use crate::token::TokenFile;
use crate::transport::{self, RequestSpec, Target};
use crate::{Error, Result, gather, probe};

/// How much of a refusal's body is kept for the log line.
const KEEP_ANSWER_BYTES: usize = 512;
/// Largest answer read as a mesh round (64 peers take about 20 KB); a
/// longer one is no round.
const MAX_MESH_ANSWER: usize = 64 * 1024;
/// Mesh probes end this long before the next report is due, so that the
/// round ends before its interval does.
pub(crate) const MESH_MARGIN: Duration = Duration::from_millis(100);
/// How long a report's TCP connect may go unanswered before a second
/// connection is started beside it (at most a quarter of the attempt's
/// time limit): well above a cluster's round trip, well below TCP's 1 s
/// wait before it sends a lost SYN again.
pub const RACE_AFTER: Duration = Duration::from_millis(200);

/// The race delay of an attempt limited to `limit`: [`RACE_AFTER`], or a
/// quarter of the limit when that is shorter.
pub fn race_delay(limit: Duration) -> Duration {
    RACE_AFTER.min(limit / 4)
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

    /// Every URL probed each round, the server endpoints' pings first.
    pub fn probe_urls(&self) -> Vec<&str> {
        self.probes.iter().map(|p| p.url.as_str()).collect()
    }

    /// Gather a fresh report. Never fails: what cannot be had is empty or 0.
    /// Everything that waits on the network runs concurrently, each part
    /// bounded by the probe timeout.
    pub async fn gather(&self) -> AgentReport {
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
                .map(|t| probe::probe(t, c.probe_timeout, self.tls.as_ref())),
        );
        let (nslookup, network_probes) = tokio::join!(nslookup, probes);
        AgentReport {
            report_interval: c.report_interval.as_secs(),
            nodename: c.node_name.clone(),
            podname: c.pod_name.clone(),
            // Taken last, so that it is as close as possible to the send:
            // the server compares it with its own clock.
            hostdate: HostDate::from_timestamp(jiff::Timestamp::now()),
            uptime: gather::uptime(&c.proc_uptime_path),
            nslookup: nslookup.into_iter().flatten().collect(),
            ips: gather::interfaces(),
            network_probes,
            mesh: None,
        }
    }

    /// The JSON body: the report followed by `zero_extender`.
    pub fn encode(&self, report: &AgentReport) -> Result<Bytes> {
        let out = OutgoingReport::new(report, self.config.zero_extender_length);
        Ok(serde_json::to_vec(&out)?.into())
    }

    /// POST one encoded report on a new connection to the first endpoint,
    /// within the report timeout.
    pub async fn send(&self, body: Bytes) -> Result<()> {
        let limit = self.config.report_timeout;
        self.send_to(&self.report_targets[0], None, body, limit)
            .await
            .0
            .map(drop)
    }

    /// POST one encoded report on a new connection to `target` (at
    /// `connect_to` when given, else wherever its name resolves), within
    /// `limit`, with the token as the file holds it now (the probes never
    /// carry it) and, with the mesh on, its header. With the mesh on,
    /// returns the body of the 2xx answer (empty when it was too long to be
    /// a mesh round); with the mesh off, always an empty one. Also returns
    /// this end's address of the connection, once connected.
    pub(crate) async fn send_to(
        &self,
        target: &Target,
        connect_to: Option<SocketAddr>,
        body: Bytes,
        limit: Duration,
    ) -> (Result<Bytes>, Option<SocketAddr>) {
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
            connect_to,
            race_after: Some(race_delay(limit)),
        };
        let ex = transport::request(target, spec).await;
        let local = ex.local;
        (self.answer(ex), local)
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
    pub async fn round(&self) -> Result<()> {
        let due = Instant::now() + self.config.report_interval;
        let (mut report, places) = tokio::join!(self.gather(), self.places());
        report.mesh = self.mesh.as_ref().map(Mesh::report);
        for p in &report.network_probes {
            tracing::debug!(
                url = %p.url,
                connected = p.connection_result,
                code = p.http_code,
                total_ms = p.total,
                "probe"
            );
        }
        self.deliver(&report, places, due).await
    }
}
