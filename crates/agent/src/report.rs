//! One round: gather a fresh report, pad it, POST it on a new connection
//! (with the bearer token of `--token-file`, if any), and send it again
//! promptly while the server has not seen this pod yet. With the mesh on,
//! the report also carries the last round's probe results, and the peers
//! that the server names in its answer are probed before the next report.

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
const MESH_MARGIN: Duration = Duration::from_millis(100);

/// The agent: its configuration and everything derived from it once.
pub struct Agent {
    config: Config,
    report_target: Target,
    /// The server's ping first, then the extra probe URLs.
    probes: Vec<Target>,
    /// Built only when some probe uses https.
    tls: Option<TlsConnector>,
    /// Where the report's bearer token comes from (`--token-file`).
    token: Option<TokenFile>,
    /// Report attempts sent without a token because the file was unusable.
    without_token: AtomicU64,
    retries: Retries,
    /// The node-to-node mesh (`--mesh-port`); `None`: off.
    mesh: Option<Mesh>,
}

impl Agent {
    pub fn new(config: Config) -> Result<Self> {
        let report_target = Target::server(
            &config.server_endpoint,
            &format!("{AGENTS_PATH}/{}", config.pod_name),
        )?;
        let mut probes = vec![Target::server(&config.server_endpoint, PING_PATH)?];
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
            report_target,
            probes,
            tls,
            token,
            without_token: AtomicU64::new(0),
            retries: Retries::default(),
            mesh,
        })
    }

    /// The mesh state (`None` with the mesh off).
    pub fn mesh(&self) -> Option<&Mesh> {
        self.mesh.as_ref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where reports go: `http://{serverendpoint}/api/v1/agents/{pod}`.
    pub fn report_url(&self) -> &str {
        &self.report_target.url
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

    /// Every URL probed each round, the server's ping first.
    pub fn probe_urls(&self) -> Vec<&str> {
        self.probes.iter().map(|p| p.url.as_str()).collect()
    }

    /// Gather a fresh report. Never fails: what cannot be had is empty or 0.
    /// Everything that waits on the network runs concurrently, each part
    /// bounded by the probe timeout.
    pub async fn gather(&self) -> AgentReport {
        let c = &self.config;
        let server_host = &self.report_target.host;
        let nslookup = async {
            match tokio::time::timeout(c.probe_timeout, gather::nslookup(server_host)).await {
                Ok(map) => map,
                Err(_) => {
                    tracing::debug!(
                        "DNS lookup of {server_host:?} timed out after {:?}",
                        c.probe_timeout
                    );
                    gather::AddressMap::from([(server_host.clone(), Vec::new())])
                }
            }
        };
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
            nslookup,
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

    /// POST one encoded report on a new connection, within the report timeout.
    pub async fn send(&self, body: Bytes) -> Result<()> {
        self.send_within(body, self.config.report_timeout)
            .await
            .map(drop)
    }

    /// POST one encoded report on a new connection, within `limit`, with
    /// the token as the file holds it now (the probes never carry it) and,
    /// with the mesh on, its header. With the mesh on, returns the body of
    /// the 2xx answer (empty when it was too long to be a mesh round); with
    /// the mesh off, always an empty one.
    async fn send_within(&self, body: Bytes, limit: Duration) -> Result<Bytes> {
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
            connect_to: None,
        };
        let ex = transport::request(&self.report_target, spec).await;
        if let (Some(mesh), Some(local)) = (&self.mesh, ex.local) {
            mesh.connected_from(local);
        }
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

    /// Gather, encode and send one report; send it again after 1 s, 2 s,
    /// 4 s … while the server answers that it does not watch this pod yet,
    /// until the next report is due (one interval after this round began).
    /// With the mesh on, the report carries the last round's results, and
    /// the peers in the server's answer are probed until shortly before the
    /// next report is due. The outcome is the report's: the mesh never
    /// fails a round.
    pub async fn round(&self) -> Result<()> {
        let due = Instant::now() + self.config.report_interval;
        let mut report = self.gather().await;
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
        let mut first = true;
        let attempt = |limit| {
            if !first {
                // The same report, but `hostdate` is the time of sending:
                // the server reports the difference to its clock as skew.
                report.hostdate = HostDate::from_timestamp(jiff::Timestamp::now());
            }
            first = false;
            let body = self.encode(&report);
            async move { self.send_within(body?, limit).await }
        };
        let answer = self
            .retries
            .run(due, self.config.report_timeout, attempt)
            .await?;
        if let Some(mesh) = &self.mesh
            && let Some(round) = mesh.round_of(&answer)
        {
            mesh.probe(round, due - MESH_MARGIN).await;
        }
        Ok(())
    }
}
