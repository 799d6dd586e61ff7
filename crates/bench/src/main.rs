//! `netchecker-bench`: the server benchmark of `make bench`.
//!
//! 1. **Ingest.** The release `netchecker-server` (without Kubernetes) and
//!    the ceiling server (`netchecker-bench-ceiling`: same runtime and HTTP
//!    stack, reads each body and answers 200, stores nothing) run side by
//!    side. Both first receive one report from each of `--agents` agents;
//!    then, for `--rounds` rounds, each gets the same load for `--seconds`,
//!    in turn (the order alternates every round): reports at maximum rate
//!    over `--connections` keep-alive connections, then the same with a new
//!    connection per report as agents send them. Reports are the Go agent's
//!    (3.5 KB with the 1500-zero padding) under rotating agent names.
//!    Throughput, latency percentiles (HDR histogram) and the ratio of the
//!    server's throughput to the ceiling's, round by round.
//! 2. **Memory.** The server's `VmRSS` once every agent is stored, and at
//!    the end of all the runs.
//! 3. **Authenticated ingest.** The same load against a server with
//!    `--report-auth enforce` in Kubernetes mode, every agent sending its
//!    own pod-bound ServiceAccount token (see `auth.rs`).
//! 4. **Check.** A second server watches the fake Kubernetes API
//!    (`netchecker-fake-apiserver`) holding `--agents` agent pods; every
//!    agent reports; then `--checks` sequential `GET
//!    /api/v1/connectivity_check`, their latency, and the API requests the
//!    server made meanwhile (the fake's counters).
//!
//! 5. **Mesh.** A server with `--mesh-peers K` and `--mesh-nodes` simulated
//!    nodes (a pod-network and a host-network agent each) whose reports
//!    carry one result per assigned peer: ingest against the ceiling, RSS,
//!    `/api/v2/status` latency and size (see `mesh.rs`).
//!
//! Prints Markdown on stdout, progress on stderr. Loopback only; every
//! process started is killed by PID at the end, on failure or on panic.

mod auth;
mod check;
mod figures;
mod http;
mod ingest;
mod mesh;
mod procs;
mod reports;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use clap::builder::RangedU64ValueParser;

use crate::figures::met;

/// The benchmark's command line (`hack/bench.sh` passes it).
#[derive(Parser)]
#[command(
    name = "netchecker-bench",
    about = "The server benchmark of `make bench`"
)]
pub struct Args {
    /// Where the release binaries are: netchecker-server,
    /// netchecker-bench-ceiling, netchecker-fake-apiserver
    #[arg(long, value_name = "DIR", default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// Agents: reports stored, and pods the fake Kubernetes API holds
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = positive::<usize>())]
    pub agents: usize,
    /// Concurrent connections of the load generator
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = positive::<usize>())]
    pub connections: usize,
    /// Length of each ingest run, in seconds
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = positive::<u64>())]
    pub seconds: u64,
    /// Ingest rounds (the order of server and ceiling alternates)
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = positive::<usize>())]
    pub rounds: usize,
    /// Sequential connectivity checks timed
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = positive::<usize>())]
    pub checks: usize,
    /// Tokio worker threads of the load generator
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = positive::<usize>())]
    pub client_threads: usize,
    /// Simulated nodes of the mesh benchmark (comma-separated; 0 skips it)
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_values_t = [1000, 5000])]
    pub mesh_nodes: Vec<usize>,
    /// Peers per node and round in the mesh benchmark
    #[arg(long, value_name = "K", default_value_t = 8, value_parser = RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub mesh_peers: usize,
    /// Profiling aid: load a server already running there instead
    #[arg(long, value_name = "ADDR")]
    pub against: Option<SocketAddr>,
    /// Run the mesh benchmark alone (no ingest, authenticated ingest or
    /// check runs, no targets table): for comparing builds of the status
    /// answer quickly
    #[arg(long)]
    pub mesh_only: bool,
}

/// A whole number of at least 1.
fn positive<T: TryFrom<u64> + Clone + Send + Sync + 'static>() -> RangedU64ValueParser<T> {
    RangedU64ValueParser::new().range(1..)
}

fn main() -> anyhow::Result<()> {
    procs::kill_children_on_panic();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    runtime.block_on(bench(args))
}

async fn bench(a: Args) -> anyhow::Result<()> {
    let reports = Arc::new(reports::build(a.agents)?);
    eprintln!(
        "== {} reports of {} bytes each",
        reports.bodies.len(),
        reports.bodies[0].len()
    );
    println!(
        "Report body: the Go agent's fixture under each agent's name, {} bytes \
         (padding of {} zeros).\n",
        reports.bodies[0].len(),
        reports::PADDING
    );
    if let Some(addr) = a.against {
        return ingest::against(addr, &a, &reports).await;
    }
    if a.mesh_only {
        println!("### Mesh\n");
        for &nodes in a.mesh_nodes.iter().filter(|n| **n >= 2) {
            mesh::mesh(&a, nodes, a.mesh_peers).await?;
        }
        return Ok(());
    }
    let i = ingest::ingest(&a, &reports).await?;
    let au = auth::authenticated(&a, &reports).await?;
    let c = check::check(&a, &reports).await?;
    println!("### Mesh\n");
    let mut meshes = Vec::new();
    for &nodes in a.mesh_nodes.iter().filter(|n| **n >= 2) {
        meshes.push(mesh::mesh(&a, nodes, a.mesh_peers).await?);
    }
    let rss_mb = i.rss_end_kib.max(i.rss_full_kib) as f64 * 1024.0 / 1e6;
    println!("### Server targets\n");
    println!("| target | measured | |");
    println!("|---|---|---|");
    println!(
        "| ingest ≥ 60% of the ceiling, keep-alive | {:.0}% | {} |",
        i.ratio_keep_alive * 100.0,
        met(i.ratio_keep_alive >= 0.6)
    );
    println!(
        "| ingest ≥ 60% of the ceiling, new connection per report | {:.0}% | {} |",
        i.ratio_new_conn * 100.0,
        met(i.ratio_new_conn >= 0.6)
    );
    println!(
        "| ingest with --report-auth enforce ≥ 60% of the ceiling, keep-alive | {:.0}% | {} |",
        au.ratio_keep_alive * 100.0,
        met(au.ratio_keep_alive >= 0.6)
    );
    println!(
        "| ingest p99 ≤ 10 ms at {} connections | {:.2} ms | {} |",
        a.connections,
        i.p99_keep_alive_ms,
        met(i.p99_keep_alive_ms <= 10.0)
    );
    println!(
        "| server RSS ≤ 25 MB with {} agents stored | {:.1} MB | {} |",
        a.agents,
        rss_mb,
        met(rss_mb <= 25.0)
    );
    println!(
        "| check p99 ≤ 20 ms over {} pods | {:.2} ms | {} |",
        a.agents,
        c.p99_ms,
        met(c.p99_ms <= 20.0)
    );
    println!(
        "| zero API requests during the checks | {} | {} |",
        c.api_requests,
        met(c.api_requests == 0)
    );
    println!(
        "| every check healthy (all pods reported) | {} | {} |",
        c.healthy,
        met(c.healthy)
    );
    for m in meshes.iter().filter(|m| m.nodes >= 5000) {
        println!(
            "| mesh, {} nodes, K = {}: server RSS < 100 MB | {:.1} MB | {} |",
            m.nodes,
            m.peers,
            m.rss_mib * 1.048_576,
            met(m.rss_mib * 1.048_576 < 100.0)
        );
        println!(
            "| mesh, {} nodes, K = {}: status p99 < 100 ms | {:.1} ms | {} |",
            m.nodes,
            m.peers,
            m.status_p99_ms,
            met(m.status_p99_ms < 100.0)
        );
    }
    for m in &meshes {
        println!(
            "| mesh, {} nodes, K = {}: ingest vs ceiling (no target; for comparison) | {:.0}% | |",
            m.nodes,
            m.peers,
            m.ratio * 100.0
        );
    }
    Ok(())
}
