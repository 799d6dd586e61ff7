//! `netchecker-fake-apiserver`: the fake Kubernetes API as a process, for
//! end-to-end harnesses. Prints `listening on ADDR` on stdout once ready,
//! optionally writes a kubeconfig and preloads pods and nodes, and serves
//! (API and `/fake/` control routes) until SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use k8s_openapi::api::core::v1::{Node, Pod};
use netchecker_cli::{LogFormat, init_logging, shutdown_on_signal};
use netchecker_fake_apiserver::FakeApiServer;
use serde::de::DeserializeOwned;

/// A fake Kubernetes API server for tests: pod and node LIST and WATCH,
/// a service-account token issuer, and TokenReview.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write a kubeconfig pointing at this server to this path.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Preload pods from this file (a JSON array of Pods).
    #[arg(long)]
    pods: Option<PathBuf>,
    /// Preload nodes from this file (a JSON array of Nodes).
    #[arg(long)]
    nodes: Option<PathBuf>,
    /// The service-account issuer URL (`iss` of minted tokens).
    #[arg(long, default_value = netchecker_fake_apiserver::DEFAULT_ISSUER)]
    issuer: String,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "plain")]
    log_format: LogFormat,
    /// Log verbosity (0 = info).
    #[arg(short = 'v', default_value_t = 0)]
    verbosity: u8,
}

fn load<T: DeserializeOwned>(path: &PathBuf, kind: &str) -> anyhow::Result<Vec<T>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a JSON array of {kind}s", path.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_format, args.verbosity);
    // Read the pods before listening, so a bad file fails before anyone
    // connects.
    let pods: Vec<Pod> = match &args.pods {
        Some(path) => load(path, "Pod")?,
        None => Vec::new(),
    };
    if pods.iter().any(|p| p.metadata.name.is_none()) {
        anyhow::bail!("every pod in the pods file needs metadata.name");
    }
    let nodes: Vec<Node> = match &args.nodes {
        Some(path) => load(path, "Node")?,
        None => Vec::new(),
    };
    if nodes.iter().any(|n| n.metadata.name.is_none()) {
        anyhow::bail!("every node in the nodes file needs metadata.name");
    }
    let stop = shutdown_on_signal();
    let server = FakeApiServer::start_on(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    server.set_issuer(&args.issuer);
    for node in nodes {
        server.add_node(node);
    }
    for pod in pods {
        server.add_pod(pod);
    }
    if let Some(path) = &args.kubeconfig_out {
        server
            .write_kubeconfig(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", server.addr())?;
        stdout.flush()?;
    }
    stop.cancelled().await;
    server.shutdown().await;
    Ok(())
}
