//! Command line and environment of the agent.
//!
//! The original Go agent's flags keep working in every spelling Go's `flag`
//! package accepted (`-serverendpoint x`, `-serverendpoint=x`, `--x`), beside
//! `--kebab-case` aliases and `NETCHECKER_*` environment fallbacks. The pod
//! and node names come from the Downward API variables `MY_POD_NAME` and
//! `MY_NODE_NAME`, exactly as in the original manifests.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use netchecker_cli::{LogFormat, go_bool, normalize_args};

use crate::targets::{MAX_TARGETS, split_endpoints};
use crate::transport::Target;
use crate::{Error, Result};

/// Environment variable with the agent's pod name (required).
pub const POD_NAME_ENV: &str = "MY_POD_NAME";
/// Environment variable with the node name (optional, warned about).
pub const NODE_NAME_ENV: &str = "MY_NODE_NAME";
/// Environment variable with the pod's IP addresses (Downward API
/// `status.podIP` or `status.podIPs`); announced as the mesh addresses
/// unless `--mesh-address` is given.
pub const POD_IP_ENV: &str = "MY_POD_IP";

/// Upper bound of the derived probe and report timeouts.
const MAX_DERIVED_TIMEOUT: Duration = Duration::from_secs(10);

/// The agent's command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "netchecker-agent",
    version,
    about = "Reports this node's view of the network to the netchecker server",
    args_override_self = true
)]
pub struct Args {
    /// host:port of the netchecker server; several, separated by `,`, get
    /// every report each.
    #[arg(
        long = "serverendpoint",
        visible_alias = "server-endpoint",
        env = "NETCHECKER_SERVER_ENDPOINT",
        value_name = "HOST:PORT",
        default_value = "netchecker-service:8081"
    )]
    pub server_endpoint: String,

    /// Report to every address each server endpoint's name resolves to
    /// (all replicas behind a headless Service), at most 16, instead of
    /// one connection to the name.
    #[arg(
        long = "report-to-all-addresses",
        env = "NETCHECKER_REPORT_TO_ALL_ADDRESSES",
        value_name = "BOOL",
        default_value = "false",
        action = clap::ArgAction::Set
    )]
    pub report_to_all_addresses: bool,

    /// Seconds between two reports (at most an hour: the server refuses
    /// longer intervals, which would keep a dead agent's report fresh).
    #[arg(
        long = "reportinterval",
        visible_alias = "report-interval",
        env = "NETCHECKER_REPORT_INTERVAL",
        value_name = "SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub report_interval: u64,

    /// Extra URLs to probe (http or https), separated by `,` or `;`.
    #[arg(
        long = "probeurls",
        visible_alias = "probe-urls",
        env = "NETCHECKER_PROBE_URLS",
        value_name = "URLS",
        default_value = ""
    )]
    pub probe_urls: String,

    /// Number of zeros in `zero_extender`, which pads the report past the MTU.
    #[arg(
        long = "zeroextenderlength",
        visible_alias = "zero-extender-length",
        env = "NETCHECKER_ZERO_EXTENDER_LENGTH",
        value_name = "N",
        default_value_t = 1500
    )]
    pub zero_extender_length: usize,

    /// Time limit of each probe, in seconds [default: 40% of the interval, at most 10].
    #[arg(
        long = "probe-timeout",
        env = "NETCHECKER_PROBE_TIMEOUT",
        value_name = "SECS"
    )]
    pub probe_timeout: Option<Seconds>,

    /// Time limit of sending one report, in seconds [default: 50% of the interval, at most 10].
    #[arg(
        long = "report-timeout",
        env = "NETCHECKER_REPORT_TIMEOUT",
        value_name = "SECS"
    )]
    pub report_timeout: Option<Seconds>,

    /// File holding a bearer token to send with every report (a projected
    /// ServiceAccount token, or a shared secret); re-read before each report.
    #[arg(
        long = "token-file",
        env = "NETCHECKER_TOKEN_FILE",
        value_name = "PATH"
    )]
    pub token_file: Option<PathBuf>,

    /// Port to answer node-to-node mesh probes on, on every address; 0
    /// (the default) leaves the mesh off.
    #[arg(
        long = "mesh-port",
        env = "NETCHECKER_MESH_PORT",
        value_name = "PORT",
        default_value_t = 0
    )]
    pub mesh_port: u16,

    /// IP addresses that peers may probe this agent on, separated by `,`
    /// [default: MY_POD_IP, else the local address of the connection to the server].
    #[arg(
        long = "mesh-address",
        env = "NETCHECKER_MESH_ADDRESS",
        value_name = "ADDRS"
    )]
    pub mesh_address: Option<String>,

    /// Log line format.
    #[arg(
        long = "log-format",
        env = "NETCHECKER_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Plain
    )]
    pub log_format: LogFormat,

    /// glog-style verbosity: 0-2 info, 3-5 debug, 6+ trace (RUST_LOG wins when set).
    #[arg(
        short = 'v',
        long = "v",
        env = "NETCHECKER_VERBOSITY",
        value_name = "N",
        default_value_t = 0
    )]
    pub verbosity: u8,

    /// Accepted for compatibility; logs always go to stderr.
    #[arg(long = "logtostderr", value_name = "BOOL")]
    pub logtostderr: Option<bool>,

    /// Accepted for compatibility; logs always go to stderr.
    #[arg(long = "alsologtostderr", value_name = "BOOL")]
    pub alsologtostderr: Option<bool>,

    /// Where host uptime is read from.
    #[arg(long = "proc-uptime-path", hide = true, default_value = "/proc/uptime")]
    pub proc_uptime_path: PathBuf,
}

impl Args {
    /// The clap command with Go-style booleans for the glog flags.
    pub fn go_command() -> clap::Command {
        Self::command()
            .mut_arg("logtostderr", go_bool)
            .mut_arg("alsologtostderr", go_bool)
            .mut_arg("report_to_all_addresses", go_bool)
    }

    /// Parse a full argv (program name first), accepting Go spellings.
    pub fn try_parse_go<I, T>(argv: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let mut cmd = Self::go_command();
        let argv = normalize_args(&cmd, argv);
        let matches = cmd.try_get_matches_from_mut(argv)?;
        Self::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
    }
}

/// A duration given as (possibly fractional) seconds, e.g. `2` or `0.5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let secs: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a number of seconds"))?;
        if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
            return Err(format!(
                "{s:?} must be more than 0 and at most 86400 seconds"
            ));
        }
        Ok(Self(Duration::from_secs_f64(secs)))
    }
}

/// Everything a running agent needs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `--serverendpoint` as given.
    pub server_endpoint: String,
    /// Its `host:port` endpoints, in order, without repeats: one or more.
    pub server_endpoints: Vec<String>,
    /// `--report-to-all-addresses`: report to every address of each
    /// endpoint's name rather than to the name.
    pub report_to_all_addresses: bool,
    pub report_interval: Duration,
    /// Extra probe URLs, as given (the server ping is added by the agent).
    pub probe_urls: Vec<String>,
    pub zero_extender_length: usize,
    pub pod_name: String,
    /// Empty when `MY_NODE_NAME` is not set.
    pub node_name: String,
    pub probe_timeout: Duration,
    pub report_timeout: Duration,
    pub proc_uptime_path: PathBuf,
    /// Where the bearer token is read from before each report; `None`: no
    /// `Authorization` header at all. Only the path: the token itself is
    /// never part of the configuration (nor of its `Debug` output).
    pub token_file: Option<PathBuf>,
    /// The node-to-node mesh; `None` (`--mesh-port 0`): off, and the
    /// reports are exactly what they were without it.
    pub mesh: Option<MeshConfig>,
}

/// Where this agent answers mesh probes and what it announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshConfig {
    /// Port of the probe listener (on every address).
    pub port: u16,
    /// Addresses announced to the server: `--mesh-address`, else
    /// `MY_POD_IP`; empty: the local address of the connection to the server.
    pub addresses: Vec<IpAddr>,
}

impl Config {
    /// Validate `args` and read the pod and node names through `env`
    /// (`std::env::var` in the binary, a map in tests).
    pub fn from_args(args: Args, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let pod_name = env(POD_NAME_ENV)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::Config(format!(
                    "environment variable {POD_NAME_ENV} is not set: the agent needs its pod name \
                     to report as (set it from the Downward API: fieldRef metadata.name)"
                ))
            })?;
        if !pod_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        {
            return Err(Error::Config(format!(
                "{POD_NAME_ENV}={pod_name:?} is not a valid pod name \
                 (letters, digits, '-', '.', '_' and '~' only)"
            )));
        }
        let node_name = env(NODE_NAME_ENV)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();

        let report_interval = Duration::from_secs(args.report_interval);
        let probe_timeout = args
            .probe_timeout
            .map(|s| s.0)
            .unwrap_or_else(|| (report_interval * 2 / 5).min(MAX_DERIVED_TIMEOUT));
        let report_timeout = args
            .report_timeout
            .map(|s| s.0)
            .unwrap_or_else(|| (report_interval / 2).min(MAX_DERIVED_TIMEOUT));
        if probe_timeout + report_timeout >= report_interval {
            return Err(Error::Config(format!(
                "probe timeout ({probe_timeout:?}) plus report timeout ({report_timeout:?}) \
                 must be shorter than the report interval ({report_interval:?}), \
                 so that one round ends before the next begins"
            )));
        }

        // Fail at start on a server endpoint or probe URL that can never work.
        let server_endpoints = split_endpoints(&args.server_endpoint);
        if server_endpoints.is_empty() {
            // The error of old for an empty value: "invalid URL".
            Target::server(&args.server_endpoint, "/")?;
            return Err(Error::Config(
                "--serverendpoint names no host:port of the server".into(),
            ));
        }
        if server_endpoints.len() > MAX_TARGETS {
            return Err(Error::Config(format!(
                "--serverendpoint names {} servers; at most {MAX_TARGETS} get each report",
                server_endpoints.len()
            )));
        }
        for endpoint in &server_endpoints {
            Target::server(endpoint, "/")?;
        }
        let probe_urls = split_probe_urls(&args.probe_urls);
        for url in &probe_urls {
            url.parse::<Target>()?;
        }

        let mesh = mesh_config(args.mesh_port, args.mesh_address.as_deref(), &env)?;

        Ok(Self {
            server_endpoint: args.server_endpoint,
            server_endpoints,
            report_to_all_addresses: args.report_to_all_addresses,
            report_interval,
            probe_urls,
            zero_extender_length: args.zero_extender_length,
            pod_name,
            node_name,
            probe_timeout,
            report_timeout,
            proc_uptime_path: args.proc_uptime_path,
            token_file: args.token_file,
            mesh,
        })
    }
}

/// The mesh part of the configuration: off without a port; the announced
/// addresses from `--mesh-address`, else `MY_POD_IP` (each a list of IP
/// addresses separated by `,`).
fn mesh_config(
    port: u16,
    addresses: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<MeshConfig>> {
    let addresses = addresses.filter(|a| !a.trim().is_empty());
    if port == 0 {
        return match addresses {
            Some(_) => Err(Error::Config(
                "--mesh-address needs --mesh-port: without a port the mesh is off".into(),
            )),
            None => Ok(None),
        };
    }
    let (source, list) = match addresses {
        Some(list) => ("--mesh-address", list.to_owned()),
        None => (POD_IP_ENV, env(POD_IP_ENV).unwrap_or_default()),
    };
    let addresses = list
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse::<IpAddr>()
                .map_err(|_| Error::Config(format!("{source}: {a:?} is not an IP address")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(MeshConfig { port, addresses }))
}

/// Split `-probeurls` on `,` and `;`, dropping blanks.
pub fn split_probe_urls(s: &str) -> Vec<String> {
    s.split([',', ';'])
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests;
