//! Command line and environment of `netchecker-server`.
//!
//! Every option has an idiomatic `--kebab-case` spelling with a
//! `NETCHECKER_*` environment fallback, and the original Go spellings keep
//! working (`-endpoint 0.0.0.0:8081`, `-kubeproxyinit=false`, `-v 5`), so
//! manifests written for the original run unchanged.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, CommandFactory, FromArgMatches, Parser};
use netchecker_cli::{LogFormat, go_bool, normalize_args};

use crate::app::Settings;
use crate::auth::Mode;
use crate::domain::Policy;
use crate::leader::decide::Timings;
use crate::mesh::pairs::MeshSettings;

/// The largest `--mesh-peers`: a quarter of what one answer may hand out
/// (each peer twice on a dual-stack mesh, and as many re-probed).
const MAX_MESH_PEERS: u64 = netchecker_wire::mesh::MAX_PEERS as u64 / 4;
use crate::podview::DEFAULT_AGENT_SELECTOR;
use crate::webhook::WebhookSettings;

/// Flags of the original that configured etcd storage or timeouts this
/// server does not have. They are accepted, so old manifests run, and
/// ignored with one warning.
pub const IGNORED_FLAGS: [&str; 6] = [
    "ping-timeout",
    "etcd-endpoints",
    "etcd-tree",
    "etcd-key",
    "etcd-cert",
    "etcd-ca",
];

/// Ids of the Go-style boolean flags (`-name`, `-name=false`).
const GO_BOOLS: [&str; 7] = [
    "kube",
    "kubeproxyinit",
    "logtostderr",
    "alsologtostderr",
    "leader_election",
    "ready_when_warm",
    "node_conditions",
];

#[derive(Debug, Clone, Parser)]
#[command(
    name = "netchecker-server",
    version,
    about = "Collects netchecker agent reports and answers the cluster connectivity check"
)]
pub struct Config {
    /// Address to listen on (host:port; ":8081" means all interfaces).
    #[arg(long, env = "NETCHECKER_ENDPOINT", default_value = "0.0.0.0:8081")]
    pub endpoint: String,

    /// Watch agent pods through the Kubernetes API whenever a configuration
    /// is found (in-cluster or KUBECONFIG). With =false no Kubernetes client
    /// is created: the expected agents are those that reported plus
    /// --expected-agents.
    #[arg(long, env = "NETCHECKER_KUBE", default_value = "true", action = ArgAction::Set)]
    pub kube: bool,

    /// The original's storage switch (TPR with true, etcd with false). Both
    /// values keep reports in memory and watch the agent pods whenever a
    /// Kubernetes configuration is found, as the original listed them either
    /// way; only --kube=false turns Kubernetes off.
    #[arg(long, action = ArgAction::Set)]
    pub kubeproxyinit: Option<bool>,

    /// Seconds after which a stored report is dropped (the original's etcd
    /// TTL). Without Kubernetes and without this flag: 5 outdated windows of
    /// the agent, at least 300 s. With Kubernetes and without it: none (a
    /// deleted pod's report leaves with the pod).
    #[arg(long, env = "NETCHECKER_REPORT_TTL", value_parser = clap::value_parser!(u64).range(1..))]
    pub report_ttl: Option<u64>,

    /// Watch agent pods in this namespace only (default: all namespaces).
    #[arg(long, env = "NETCHECKER_NAMESPACE")]
    pub namespace: Option<String>,

    /// Label selector of the agent pods.
    #[arg(long, env = "NETCHECKER_AGENT_SELECTOR", default_value = DEFAULT_AGENT_SELECTOR)]
    pub agent_selector: String,

    /// Without Kubernetes: agents expected even before they report (comma-separated pod names).
    #[arg(long, env = "NETCHECKER_EXPECTED_AGENTS", value_delimiter = ',')]
    pub expected_agents: Vec<String>,

    /// An agent is outdated when its last report is older than this many of its report intervals.
    #[arg(long, env = "NETCHECKER_OUTDATED_FACTOR", default_value_t = 2.0, value_parser = positive_f64)]
    pub outdated_factor: f64,

    /// A node whose agents (ours, which tell how their reports went) saw at
    /// least this share of their connections to the server go unanswered
    /// at first, over the last 5 minutes and at least 20 attempts, is
    /// `lossy` (when nothing worse is wrong); 0 turns the verdict off. The
    /// figures are shown either way.
    #[arg(long, env = "NETCHECKER_LOSSY_THRESHOLD", default_value_t = 0.05, value_parser = ratio)]
    pub lossy_threshold: f64,

    /// Seconds between background evaluations that update metrics and error counters.
    #[arg(long, env = "NETCHECKER_CHECK_INTERVAL", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub check_interval: u64,

    /// Seconds after start during which agents that have not reported yet
    /// are "pending" rather than failures in metrics (the v1 check stays literal).
    #[arg(long, env = "NETCHECKER_STARTUP_GRACE", default_value_t = 120)]
    pub startup_grace: u64,

    /// Report ready (`/readyz`) only once warm: every expected agent has
    /// reported, or the start-up grace is over. For several replicas behind
    /// one Service: a restarted replica then answers no check before it
    /// knows the cluster (its agents must reach it while it is not ready,
    /// e.g. through a headless Service that publishes not-ready addresses).
    #[arg(long, env = "NETCHECKER_READY_WHEN_WARM", default_value = "false", action = ArgAction::Set)]
    pub ready_when_warm: bool,

    /// Largest accepted report body in bytes (a real report plus padding
    /// past a 9000-byte jumbo frame is under 30 KiB).
    #[arg(long, env = "NETCHECKER_MAX_REPORT_BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_report_bytes: u64,

    /// What a report that does not prove its sender costs: off (nothing is
    /// checked), warn (accepted, counted and shown), enforce (refused).
    #[arg(long, env = "NETCHECKER_REPORT_AUTH", value_enum, default_value_t = Mode::Warn)]
    pub report_auth: Mode,

    /// The audience agents' ServiceAccount tokens must be issued for.
    #[arg(
        long,
        env = "NETCHECKER_REPORT_AUTH_AUDIENCE",
        default_value = "netchecker"
    )]
    pub report_auth_audience: String,

    /// Without Kubernetes: a file holding the secret agents send as their
    /// bearer token (re-read when it changes).
    #[arg(long, env = "NETCHECKER_REPORT_TOKEN_FILE")]
    pub report_token_file: Option<PathBuf>,

    /// A file holding the bearer token the agent list, /api/v2/status,
    /// DELETE and /metrics then require (re-read when it changes).
    #[arg(long, env = "NETCHECKER_READ_TOKEN_FILE")]
    pub read_token_file: Option<PathBuf>,

    /// Most connections served at once; beyond it new ones get 503 with
    /// Retry-After and are closed.
    #[arg(long, env = "NETCHECKER_MAX_CONNECTIONS", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,

    /// Seconds an answer may wait for the client to read it before the
    /// connection is closed.
    #[arg(long, env = "NETCHECKER_WRITE_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub write_timeout: u64,

    /// Most agents kept; reports from further new agents are refused while known ones keep updating.
    #[arg(long, env = "NETCHECKER_MAX_AGENTS", default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_agents: u64,

    /// Seconds a request (headers and body) may take before it is timed out.
    #[arg(long, env = "NETCHECKER_REQUEST_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,

    /// Seconds to let in-flight requests finish after SIGTERM/SIGINT.
    #[arg(long, env = "NETCHECKER_SHUTDOWN_TIMEOUT", default_value_t = 10)]
    pub shutdown_timeout: u64,

    /// POST a JSON event here whenever a node's verdict changes (repeatable;
    /// comma-separated in the environment).
    #[arg(long = "webhook-url", env = "NETCHECKER_WEBHOOK_URL", value_delimiter = ',', value_parser = parse_webhook_url)]
    pub webhook_urls: Vec<http::Uri>,

    /// Seconds one webhook delivery attempt may take.
    #[arg(long, env = "NETCHECKER_WEBHOOK_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_timeout: u64,

    /// Delivery attempts per webhook event (backoff 1 s doubling up to 60 s between them).
    #[arg(long, env = "NETCHECKER_WEBHOOK_MAX_ATTEMPTS", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..))]
    pub webhook_max_attempts: u32,

    /// Peers each node probes (and is probed by) per mesh round, at most
    /// 32 so that an answer's 64 peers always leave room for re-probes of
    /// failing pairs; 0 turns the node-to-node mesh off. Only agents that
    /// ask for peers take part.
    #[arg(long, env = "NETCHECKER_MESH_PEERS", default_value_t = 8, value_parser = clap::value_parser!(u64).range(0..=MAX_MESH_PEERS))]
    pub mesh_peers: u64,

    /// Seconds per mesh round: the assignment rotates every round. Set it to
    /// the agents' report interval (they probe once per report).
    #[arg(long, env = "NETCHECKER_MESH_ROUND", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub mesh_round: u64,

    /// Seconds after which a completed mesh probe counts as slow.
    #[arg(long, env = "NETCHECKER_MESH_SLOW", default_value_t = 1.0, value_parser = positive_f64)]
    pub mesh_slow: f64,

    /// Seconds one mesh probe may take (handed to the agents).
    #[arg(long, env = "NETCHECKER_MESH_TIMEOUT", default_value_t = 2.0, value_parser = positive_f64)]
    pub mesh_timeout: f64,

    /// Take part in the election of one leader among several server
    /// replicas (a `coordination.k8s.io/v1` Lease): only the leader sends
    /// webhook events, writes node conditions and records Kubernetes
    /// Events. Every replica still judges the cluster and answers checks.
    /// Without Kubernetes a server is its own leader.
    #[arg(long, env = "NETCHECKER_LEADER_ELECTION", default_value = "false", action = ArgAction::Set)]
    pub leader_election: bool,

    /// The Lease the replicas elect their leader with.
    #[arg(
        long,
        env = "NETCHECKER_LEADER_ELECTION_LEASE",
        default_value = "netchecker-server"
    )]
    pub leader_election_lease: String,

    /// The namespace of the Lease (default: POD_NAMESPACE, else the
    /// Kubernetes client's default namespace).
    #[arg(long, env = "NETCHECKER_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// This replica's name in the Lease (default: POD_NAME, else the
    /// hostname). Must differ between replicas.
    #[arg(long, env = "NETCHECKER_LEADER_ELECTION_IDENTITY")]
    pub leader_election_identity: Option<String>,

    /// Seconds a leader's Lease lasts without renewal: the longest a
    /// crashed leader's replicas wait before one takes over.
    #[arg(long, env = "NETCHECKER_LEASE_DURATION", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_duration: u64,

    /// Seconds a leader keeps leading without a successful renewal; then
    /// it steps down (shorter than --lease-duration).
    #[arg(long, env = "NETCHECKER_LEASE_RENEW_DEADLINE", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_renew_deadline: u64,

    /// Seconds between two attempts to acquire or renew the Lease
    /// (shorter than --lease-renew-deadline).
    #[arg(long, env = "NETCHECKER_LEASE_RETRY_PERIOD", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_retry_period: u64,

    /// The ConfigMap (in the Lease's namespace) where the leader keeps the
    /// open incidents and the webhook events not yet delivered, so that the
    /// next leader (or this one after a restart) sends a recovery that
    /// happened meanwhile and sends nothing twice. Used with
    /// --leader-election on Kubernetes; empty: kept in memory only.
    #[arg(
        long,
        env = "NETCHECKER_INCIDENTS_CONFIGMAP",
        default_value = "netchecker-incidents"
    )]
    pub incidents_configmap: String,

    /// The leader sets the condition `NetcheckerNetworkProblem` on each
    /// node (True with the verdict while it has a network problem, False
    /// when healthy) and records a Kubernetes Event on each node verdict
    /// change. Needs Kubernetes, and RBAC to patch nodes/status and create
    /// events.
    #[arg(long, env = "NETCHECKER_NODE_CONDITIONS", default_value = "false", action = ArgAction::Set)]
    pub node_conditions: bool,

    /// Log line format.
    #[arg(long, env = "NETCHECKER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,

    /// glog-style verbosity (0-2 info, 3-5 debug, 6+ trace); RUST_LOG overrides.
    #[arg(
        short = 'v',
        long = "v",
        env = "NETCHECKER_VERBOSITY",
        default_value_t = 0
    )]
    pub verbosity: u8,

    /// Accepted for compatibility; logs always go to stderr.
    #[arg(long, default_value = "false", action = ArgAction::Set)]
    pub logtostderr: bool,

    /// Accepted for compatibility; logs always go to stderr.
    #[arg(long, default_value = "false", action = ArgAction::Set)]
    pub alsologtostderr: bool,

    /// Original flags given on the command line that this server ignores.
    #[arg(skip)]
    pub ignored: Vec<String>,
}

fn parse_webhook_url(s: &str) -> Result<http::Uri, String> {
    crate::webhook::validate_url(s)
}

/// A share between 0 and 1.
fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Ok(_) => Err(format!("{s} is not between 0 and 1")),
        Err(e) => Err(format!("{s:?}: {e}")),
    }
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

impl Config {
    /// Parse arguments (Go or kebab spellings) and the environment.
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let mut cmd = Config::command();
        for name in GO_BOOLS {
            cmd = cmd.mut_arg(name, go_bool);
        }
        for name in IGNORED_FLAGS {
            cmd = cmd.arg(
                Arg::new(name)
                    .long(name)
                    .hide(true)
                    .num_args(1)
                    .action(ArgAction::Set),
            );
        }
        let matches = cmd
            .clone()
            .try_get_matches_from(normalize_args(&cmd, args))?;
        let mut config = Config::from_arg_matches(&matches)?;
        config.ignored = IGNORED_FLAGS
            .iter()
            .filter(|name| {
                matches.value_source(name) == Some(clap::parser::ValueSource::CommandLine)
            })
            .map(|name| name.to_string())
            .collect();
        config.expected_agents.retain(|a| !a.trim().is_empty());
        if let Err(why) = config.election_timings().validate() {
            return Err(cmd.error(clap::error::ErrorKind::ValueValidation, why));
        }
        Ok(config)
    }

    /// The listen address with Go's ":port" shorthand expanded.
    pub fn listen_address(&self) -> String {
        if self.endpoint.starts_with(':') {
            format!("0.0.0.0{}", self.endpoint)
        } else {
            self.endpoint.clone()
        }
    }

    /// The timings of the leader election.
    pub fn election_timings(&self) -> Timings {
        Timings {
            lease_duration: Duration::from_secs(self.lease_duration),
            renew_deadline: Duration::from_secs(self.lease_renew_deadline),
            retry_period: Duration::from_secs(self.lease_retry_period),
        }
    }

    /// This replica's name in the Lease: the flag, else `POD_NAME`, else
    /// the hostname.
    pub fn leader_identity(&self) -> String {
        let env = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
        self.leader_election_identity
            .clone()
            .filter(|i| !i.trim().is_empty())
            .or_else(|| env("POD_NAME"))
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
            })
            .or_else(|| env("HOSTNAME"))
            .unwrap_or_else(|| format!("netchecker-server-{}", std::process::id()))
    }

    /// The Lease's namespace: the flag, else `POD_NAMESPACE`, else
    /// `default` (the Kubernetes client's default namespace).
    pub fn leader_namespace(&self, default: &str) -> String {
        self.leader_election_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| default.to_owned())
    }

    /// How node verdict changes are delivered.
    pub fn webhook_settings(&self) -> WebhookSettings {
        WebhookSettings {
            urls: self.webhook_urls.clone(),
            timeout: Duration::from_secs(self.webhook_timeout),
            max_attempts: self.webhook_max_attempts,
            ..WebhookSettings::default()
        }
    }

    pub fn settings(&self) -> Settings {
        Settings {
            policy: Policy {
                outdated_factor: self.outdated_factor,
                startup_grace: Duration::from_secs(self.startup_grace),
                report_ttl: self.report_ttl.map(Duration::from_secs),
                lossy_ratio: self.lossy_threshold,
            },
            ready_when_warm: self.ready_when_warm,
            max_report_bytes: usize::try_from(self.max_report_bytes).unwrap_or(usize::MAX),
            max_agents: usize::try_from(self.max_agents).unwrap_or(usize::MAX),
            request_timeout: Duration::from_secs(self.request_timeout),
            read_token: None,
            mesh: MeshSettings {
                peers: usize::try_from(self.mesh_peers).unwrap_or(0),
                round: Duration::from_secs(self.mesh_round),
                slow: Duration::from_secs_f64(self.mesh_slow.min(3600.0)),
                timeout: Duration::from_secs_f64(self.mesh_timeout.min(60.0)),
            },
        }
    }
}

#[cfg(test)]
mod tests;
