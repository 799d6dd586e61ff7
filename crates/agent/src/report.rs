//! One round: gather a fresh report, pad it, POST it on a new connection
//! (with the bearer token of `--token-file`, if any), and send it again
//! promptly while the server has not seen this pod yet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method};
use netchecker_wire::{AGENTS_PATH, AgentReport, HostDate, OutgoingReport, PING_PATH};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::config::Config;
use crate::retry::Retries;
use crate::token::TokenFile;
use crate::transport::{self, RequestSpec, Target};
use crate::{Error, Result, gather, probe};

/// How much of a refusal's body is kept for the log line.
const KEEP_ANSWER_BYTES: usize = 512;

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
        Ok(Self {
            config,
            report_target,
            probes,
            tls,
            token,
            without_token: AtomicU64::new(0),
            retries: Retries::default(),
        })
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
        self.send_within(body, self.config.report_timeout).await
    }

    /// POST one encoded report on a new connection, within `limit`, with
    /// the token as the file holds it now (the probes never carry it).
    async fn send_within(&self, body: Bytes, limit: Duration) -> Result<()> {
        let spec = RequestSpec {
            method: Method::POST,
            content_type: Some("application/json"),
            body,
            keep_body: KEEP_ANSWER_BYTES,
            timeout: limit,
            tls: None,
            authorization: self.authorization(),
        };
        let ex = transport::request(&self.report_target, spec).await;
        ex.outcome?;
        match ex.status {
            Some(status) if status.is_success() => Ok(()),
            Some(status) => Err(Error::Status {
                status,
                body: String::from_utf8_lossy(&ex.body).trim().to_owned(),
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
    pub async fn round(&self) -> Result<()> {
        let due = Instant::now() + self.config.report_interval;
        let mut report = self.gather().await;
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
        self.retries
            .run(due, self.config.report_timeout, attempt)
            .await
    }
}
