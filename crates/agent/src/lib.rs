//! The netchecker agent: gathers what a node sees of the network and reports
//! it to the netchecker server on a timer.
//!
//! Each round builds an [`AgentReport`] padded with `zero_extender` and
//! POSTs it on a new connection to every server endpoint (with
//! `--report-to-all-addresses`, to every address of each, concurrently:
//! [`fanout`]) at the start of the round: interfaces, uptime and the clock
//! read then, the DNS lookup of the server host and the timed HTTP probes
//! from the previous round, while this round's run for the next report.
//! The first round starts at once and probes before it reports, so that
//! the first report is complete; later rounds follow the interval without
//! drift and never overlap. A report's connect that goes unanswered is
//! raced by a second connection, an attempt that runs out of time is sent
//! again within the interval, and every attempt is counted ([`attempts`]).
//! A failed round is logged, counted and retried at the next tick: the
//! network being broken is exactly when the agent must keep going.
//!
//! With `--mesh-port` the agent also takes part in the node-to-node mesh
//! ([`mesh`]): it answers its peers' probes on that port and probes the
//! peers the server names in its answer to each report.
//!
//! `main.rs` only parses the command line, sets up logging and a
//! single-threaded runtime, and calls [`run`].
//!
//! [`AgentReport`]: netchecker_wire::AgentReport

#![forbid(unsafe_code)]

/// Every report attempt, counted by place and since start.
pub mod attempts;
/// Command line, environment and the validated [`Config`].
pub mod config;
/// Sending one report to every server at once.
pub mod fanout;
/// The collectors of a report: interfaces, DNS, uptime.
pub mod gather;
/// The node-to-node mesh: the probe listener, the prober, the round state.
pub mod mesh;
/// Timed HTTP probes with per-phase durations.
pub mod probe;
/// Building and sending one report.
pub mod report;
/// Prompt retries while the server has not seen this pod yet.
pub mod retry;
/// The timer loop around the rounds.
pub mod schedule;
/// The server endpoints and addresses reported to, and their counts.
pub mod targets;
/// The bearer token file, read before each report.
pub mod token;
/// URLs, connections (TCP, TLS) and one HTTP/1.1 exchange per connection.
pub mod transport;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use attempts::Attempts;
pub use config::{Args, Config};
pub use report::Agent;
pub use schedule::{Stats, schedule};
pub use targets::{Resolver, TargetCounts};
pub use transport::{Phase, Target};

/// Everything that can go wrong in the agent. Network errors end one round,
/// never the process; configuration errors stop it at start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or invalid.
    #[error("{0}")]
    Config(String),
    /// A URL that the agent cannot use.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The system resolver could not resolve a host name.
    #[error("DNS lookup of {host:?} failed: {source}")]
    Dns {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The resolver answered, but with no address.
    #[error("DNS lookup of {host:?} returned no addresses")]
    NoAddresses { host: String },
    /// No TCP connection to any of the host's addresses.
    #[error("cannot connect to {host:?} ({addrs}): {source}")]
    Connect {
        host: String,
        addrs: String,
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (or the host is no valid TLS server name).
    #[error("TLS handshake with {host:?} failed: {source}")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed after the connection was made. The message
    /// names the underlying cause too (hyper's own text alone says only
    /// "connection error" for a reset).
    #[error("HTTP exchange with {authority} failed: {}", with_causes(.source))]
    Http {
        authority: String,
        #[source]
        source: hyper::Error,
    },
    /// A phase did not finish before the deadline.
    #[error("timed out after {after:?} in the {phase}")]
    Timeout { phase: Phase, after: Duration },
    /// The server answered, but not with 2xx.
    #[error("server answered {status}: {body:?}")]
    Status {
        status: http::StatusCode,
        body: String,
    },
    /// The report could not be serialised (never expected).
    #[error("cannot encode the report: {0}")]
    Encode(#[from] serde_json::Error),
    /// Several servers were to get the report, and none took it.
    #[error("no server took the report: {0}")]
    NotTaken(String),
    /// A whole round outlived the interval and was abandoned.
    #[error("round did not finish within the report interval ({0:?}); abandoned")]
    RoundTimeout(Duration),
    /// The mesh probe listener could not be set up (at start only).
    #[error("cannot listen for mesh probes on port {port} (--mesh-port): {source}")]
    MeshListen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// An error and its chain of causes, joined with ": ".
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Result with the agent's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Run the agent until `shutdown` is cancelled: report at once, then every
/// interval. Returns the counts of rounds, reports sent and failures. With
/// the mesh on, the probe listener is bound first: a port that cannot be
/// bound is an error, before any report.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<Stats> {
    run_with(config, targets::system_resolver(), shutdown).await
}

/// [`run`], resolving the server names that `--report-to-all-addresses`
/// fans out to through `resolver` (tests pass a fixed list).
pub async fn run_with(
    config: Config,
    resolver: Resolver,
    shutdown: CancellationToken,
) -> Result<Stats> {
    if config.node_name.is_empty() {
        tracing::warn!("MY_NODE_NAME is not set; reports carry an empty nodename");
    }
    let period = config.report_interval;
    let listener = match config.mesh.as_ref().map(|m| (m.port, m.addresses.clone())) {
        Some((port, announced)) => {
            let listener = mesh::Listener::bind_port(port)
                .await
                .map_err(|source| Error::MeshListen { port, source })?;
            tracing::info!(
                listening = ?listener.local_addrs(),
                ?announced,
                "mesh probe listener started"
            );
            Some(tokio::spawn(listener.serve(shutdown.clone())))
        }
        None => None,
    };
    let agent = Agent::with_resolver(config, resolver)?;
    tracing::info!(
        server = %agent.report_urls().join(", "),
        all_addresses = agent.config().report_to_all_addresses,
        interval = ?period,
        probes = agent.probe_urls().len(),
        probe_timeout = ?agent.config().probe_timeout,
        report_timeout = ?agent.config().report_timeout,
        token_file = ?agent.config().token_file,
        "agent started"
    );
    let mut stats = schedule(period, shutdown, || agent.round()).await;
    if let Some(listener) = listener {
        // It stops with the same token.
        let _ = listener.await;
    }
    stats.retries = agent.retries();
    stats.without_token = agent.reports_without_token();
    stats.targets = agent.target_counts();
    stats.attempts = agent.attempts();
    if let Some(mesh) = agent.mesh() {
        stats.mesh_probes = mesh.probes();
        stats.mesh_failed = mesh.failed();
    }
    tracing::info!(
        rounds = stats.rounds,
        sent = stats.sent,
        failed = stats.failed,
        retries = stats.retries,
        without_token = stats.without_token,
        mesh_probes = stats.mesh_probes,
        mesh_failed = stats.mesh_failed,
        attempts = stats.attempts.attempts,
        connects = stats.attempts.connects,
        raced = stats.attempts.raced,
        race_won = stats.attempts.race_won,
        attempts_failed = stats.attempts.failed,
        taken_after_retry = stats.attempts.taken_after_retry,
        targets = %targets::summary(&stats.targets),
        "agent stopped"
    );
    Ok(stats)
}
