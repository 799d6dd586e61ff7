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
//! 3. **Check.** A second server watches the fake Kubernetes API
//!    (`netchecker-fake-apiserver`) holding `--agents` agent pods; every
//!    agent reports; then `--checks` sequential `GET
//!    /api/v1/connectivity_check`, their latency, and the API requests the
//!    server made meanwhile (the fake's counters).
//!
//! Prints Markdown on stdout, progress on stderr. Loopback only; every
//! process started is killed by PID at the end, on failure or on panic.

mod http;
mod procs;
mod reports;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use clap::builder::RangedU64ValueParser;
use hdrhistogram::Histogram;
use netchecker_fake_apiserver::{RequestCounts, agent_pod};
use netchecker_wire::{CHECK_PATH, CheckResponse, healthy_message};

use crate::http::{LoadResult, Mode, Reports};
use crate::procs::{Child, start_http};

/// The benchmark's command line (`hack/bench.sh` passes it).
#[derive(Parser)]
#[command(
    name = "netchecker-bench",
    about = "The server benchmark of `make bench`"
)]
struct Args {
    /// Where the release binaries are: netchecker-server,
    /// netchecker-bench-ceiling, netchecker-fake-apiserver
    #[arg(long, value_name = "DIR", default_value = "target/release")]
    bin_dir: PathBuf,
    /// Agents: reports stored, and pods the fake Kubernetes API holds
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = positive::<usize>())]
    agents: usize,
    /// Concurrent connections of the load generator
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = positive::<usize>())]
    connections: usize,
    /// Length of each ingest run, in seconds
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = positive::<u64>())]
    seconds: u64,
    /// Ingest rounds (the order of server and ceiling alternates)
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = positive::<usize>())]
    rounds: usize,
    /// Sequential connectivity checks timed
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = positive::<usize>())]
    checks: usize,
    /// Tokio worker threads of the load generator
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = positive::<usize>())]
    client_threads: usize,
    /// Profiling aid: load a server already running there instead
    #[arg(long, value_name = "ADDR")]
    against: Option<SocketAddr>,
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

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn latency_cells(h: &Histogram<u64>) -> String {
    format!(
        "{:.2} | {:.2} | {:.2} | {:.2}",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max())
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

/// One server under load: its process, address and what each run measured.
struct Target {
    label: &'static str,
    child: Child,
    addr: std::net::SocketAddr,
    runs: Vec<(Mode, LoadResult, f64)>,
}

impl Target {
    async fn load(
        &mut self,
        reports: &Arc<Reports>,
        mode: Mode,
        a: &Args,
        round: usize,
    ) -> anyhow::Result<()> {
        self.child.ensure_running()?;
        let cpu0 = self.child.cpu_seconds();
        let r = http::run(
            self.addr,
            reports.clone(),
            mode,
            a.connections,
            Duration::from_secs(a.seconds),
            None,
        )
        .await?;
        let cpu_us = (self.child.cpu_seconds() - cpu0) * 1e6 / r.sent.max(1) as f64;
        eprintln!(
            "   round {round}, {}, {}: {:.0} reports/s, {} failed, p99 {:.2} ms",
            mode.label(),
            self.label,
            r.per_second(),
            r.failed,
            ms(r.latency.value_at_quantile(0.99))
        );
        self.runs.push((mode, r, cpu_us));
        Ok(())
    }

    fn of(&self, mode: Mode) -> impl Iterator<Item = &(Mode, LoadResult, f64)> {
        self.runs.iter().filter(move |(m, _, _)| *m == mode)
    }

    fn merged(&self, mode: Mode) -> anyhow::Result<Histogram<u64>> {
        let mut h = Histogram::new_from(&self.runs[0].1.latency);
        for (_, r, _) in self.of(mode) {
            h.add(&r.latency)?;
        }
        Ok(h)
    }
}

/// Fill `addr` with one report from every agent over keep-alive connections.
async fn fill(addr: std::net::SocketAddr, reports: &Arc<Reports>, a: &Args) -> anyhow::Result<()> {
    let r = http::run(
        addr,
        reports.clone(),
        Mode::KeepAlive,
        a.connections,
        Duration::from_secs(120),
        Some(a.agents as u64),
    )
    .await?;
    if r.sent != a.agents as u64 || r.failed != 0 {
        bail!(
            "filling: {} of {} reports accepted, {} failed",
            r.sent,
            a.agents,
            r.failed
        );
    }
    Ok(())
}

async fn stored_agents(addr: std::net::SocketAddr) -> anyhow::Result<usize> {
    let (status, body) = http::get(addr, "/api/v1/agents/").await?;
    if status != 200 {
        bail!("GET /api/v1/agents/ answered {status}");
    }
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)?;
    Ok(map.len())
}

struct IngestFigures {
    ratio_keep_alive: f64,
    ratio_new_conn: f64,
    p99_keep_alive_ms: f64,
    rss_full_kib: u64,
    rss_end_kib: u64,
}

async fn ingest(a: &Args, reports: &Arc<Reports>) -> anyhow::Result<IngestFigures> {
    let server_bin = a.bin_dir.join("netchecker-server");
    let ceiling_bin = a.bin_dir.join("netchecker-bench-ceiling");
    let (child, addr) = start_http("ceiling", &ceiling_bin, &[], &[], "/healthz").await?;
    let mut ceiling = Target {
        label: "ceiling",
        child,
        addr,
        runs: Vec::new(),
    };
    let (child, addr) = start_http(
        "netchecker-server",
        &server_bin,
        &["--kube=false".to_owned()],
        &[],
        "/healthz",
    )
    .await?;
    let mut server = Target {
        label: "server",
        child,
        addr,
        runs: Vec::new(),
    };
    let (rss_idle, _) = server.child.memory_kib();
    let threads = (ceiling.child.threads(), server.child.threads());
    eprintln!("== ingest: filling both with {} agents", a.agents);
    fill(ceiling.addr, reports, a).await?;
    fill(server.addr, reports, a).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_full, _) = server.child.memory_kib();

    for round in 1..=a.rounds {
        for mode in [Mode::KeepAlive, Mode::NewConnection] {
            // Alternate who goes first, so a drift in the machine's speed
            // during a round does not favour one side.
            if round % 2 == 1 {
                ceiling.load(reports, mode, a, round).await?;
                server.load(reports, mode, a, round).await?;
            } else {
                server.load(reports, mode, a, round).await?;
                ceiling.load(reports, mode, a, round).await?;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_end, hwm_end) = server.child.memory_kib();
    let stored = stored_agents(server.addr).await?;
    if stored != a.agents {
        bail!("the server stores {stored} agents, expected {}", a.agents);
    }

    println!("### Report ingest: the server against the ceiling\n");
    println!(
        "{} agents, {} connections, {} s per run, {} rounds; load generator: {} tokio worker thread(s). \
         Server threads {}, ceiling threads {} (at start).\n",
        a.agents, a.connections, a.seconds, a.rounds, a.client_threads, threads.1, threads.0
    );
    let mut ratios = Vec::new();
    for mode in [Mode::KeepAlive, Mode::NewConnection] {
        println!("#### {}\n", mode.label());
        println!(
            "| round | target | reports/s | failed | CPU per report | p50 ms | p99 ms | p99.9 ms | max ms |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let mut mode_ratios = Vec::new();
        for (round, (c, s)) in ceiling.of(mode).zip(server.of(mode)).enumerate() {
            for (t, (_, r, cpu)) in [("ceiling", c), ("server", s)] {
                println!(
                    "| {} | {t} | {:.0} | {} | {cpu:.0} µs | {} |",
                    round + 1,
                    r.per_second(),
                    r.failed,
                    latency_cells(&r.latency)
                );
            }
            mode_ratios.push(s.1.per_second() / c.1.per_second());
        }
        let ch = ceiling.merged(mode)?;
        let sh = server.merged(mode)?;
        println!("| all | ceiling | | | | {} |", latency_cells(&ch));
        println!("| all | server | | | | {} |", latency_cells(&sh));
        let m = median(mode_ratios.clone());
        println!(
            "\nServer / ceiling throughput by round: {}; median **{:.0}%**.\n",
            mode_ratios
                .iter()
                .map(|r| format!("{:.0}%", r * 100.0))
                .collect::<Vec<_>>()
                .join(", "),
            m * 100.0
        );
        ratios.push((m, ms(sh.value_at_quantile(0.99))));
    }
    println!("### Server memory\n");
    println!("| when | VmRSS |");
    println!("|---|---|");
    println!("| idle, before any report | {:.1} MiB |", mib(rss_idle));
    println!(
        "| all {} agents stored (after the first report of each) | {:.1} MiB |",
        a.agents,
        mib(rss_full)
    );
    println!(
        "| after every run ({} agents stored, {} reports replaced) | {:.1} MiB (peak {:.1} MiB) |",
        stored,
        server.runs.iter().map(|(_, r, _)| r.sent).sum::<u64>(),
        mib(rss_end),
        mib(hwm_end)
    );
    println!();
    Ok(IngestFigures {
        ratio_keep_alive: ratios[0].0,
        ratio_new_conn: ratios[1].0,
        p99_keep_alive_ms: ratios[0].1,
        rss_full_kib: rss_full,
        rss_end_kib: rss_end,
    })
}

/// Removes the scratch directory when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn request_counts(addr: std::net::SocketAddr) -> anyhow::Result<RequestCounts> {
    let (status, body) = http::get(addr, "/fake/requests").await?;
    if status != 200 {
        bail!("GET /fake/requests answered {status}");
    }
    Ok(serde_json::from_slice(&body)?)
}

struct CheckFigures {
    p99_ms: f64,
    api_requests: u64,
    healthy: bool,
}

async fn check(a: &Args, reports: &Arc<Reports>) -> anyhow::Result<CheckFigures> {
    let scratch =
        Scratch(std::env::temp_dir().join(format!("netchecker-bench-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)?;
    let pods: Vec<_> = (0..a.agents)
        .map(|i| {
            agent_pod(
                "netchecker",
                &reports::pod_name(i),
                "netchecker-agent",
                &reports::node_name(i),
            )
        })
        .collect();
    let pods_file = scratch.0.join("pods.json");
    std::fs::write(&pods_file, serde_json::to_vec(&pods)?)?;
    drop(pods);
    let kubeconfig = scratch.0.join("kubeconfig");
    let mut fake = Child::spawn(
        "netchecker-fake-apiserver",
        Command::new(a.bin_dir.join("netchecker-fake-apiserver"))
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .arg("--pods")
            .arg(&pods_file)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    )?;
    let fake_addr = fake.wait_listening()?;
    eprintln!(
        "== check: fake Kubernetes API on {fake_addr} with {} agent pods",
        a.agents
    );
    let (mut server, addr) = start_http(
        "netchecker-server (Kubernetes)",
        &a.bin_dir.join("netchecker-server"),
        &[],
        &[("KUBECONFIG", path_string(&kubeconfig))],
        "/readyz",
    )
    .await?;
    let synced = request_counts(fake_addr).await?;
    fill(addr, reports, a).await?;
    let (status, body) = http::get(addr, CHECK_PATH).await?;
    let first: CheckResponse = serde_json::from_slice(&body).with_context(|| {
        format!(
            "check answered {status}: {}",
            String::from_utf8_lossy(&body)
        )
    })?;
    let healthy = status == 200 && first.message == healthy_message(a.agents);
    let before = request_counts(fake_addr).await?;
    eprintln!("== check: {} sequential checks", a.checks);
    let (hist, status, body) = http::timed_gets(addr, CHECK_PATH, a.checks).await?;
    let after = request_counts(fake_addr).await?;
    server.ensure_running()?;
    let (rss, hwm) = server.memory_kib();
    let last: CheckResponse = serde_json::from_slice(&body)?;
    let healthy = healthy && status == 200 && last.message == healthy_message(a.agents);
    let api_requests = after.total - before.total;

    println!("### Connectivity check over {} expected pods\n", a.agents);
    println!(
        "The server watches the fake Kubernetes API holding {} agent pods; all {} agents \
         reported; then {} sequential checks on one keep-alive connection.\n",
        a.agents, a.agents, a.checks
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!("| answer | {} {:?} |", status, last.message);
    println!(
        "| latency p50 / p99 / p99.9 / max | {} ms |",
        latency_cells(&hist).replace(" | ", " / ")
    );
    println!(
        "| API requests: until synced (list+watch) / during the fill / during the {} checks | {} / {} / **{}** |",
        a.checks,
        synced.total,
        before.total - synced.total,
        api_requests
    );
    println!(
        "| server VmRSS with {} pods watched and {} agents stored | {:.1} MiB (peak {:.1} MiB) |",
        a.agents,
        a.agents,
        mib(rss),
        mib(hwm)
    );
    println!();
    drop(server);
    drop(fake);
    Ok(CheckFigures {
        p99_ms: ms(hist.value_at_quantile(0.99)),
        api_requests,
        healthy,
    })
}

/// Profiling aid: fill a server started by hand (under valgrind, say),
/// then load it with keep-alive connections for `--seconds`.
async fn against(
    addr: std::net::SocketAddr,
    a: &Args,
    reports: &Arc<Reports>,
) -> anyhow::Result<()> {
    fill(addr, reports, a).await?;
    eprintln!("filled {addr} with {} agents", a.agents);
    let r = http::run(
        addr,
        reports.clone(),
        Mode::KeepAlive,
        a.connections,
        Duration::from_secs(a.seconds),
        None,
    )
    .await?;
    println!(
        "{:.0} reports/s, {} failed, latency p50/p99/p99.9/max {} ms",
        r.per_second(),
        r.failed,
        latency_cells(&r.latency).replace(" | ", "/")
    );
    Ok(())
}

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
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
        return against(addr, &a, &reports).await;
    }
    let i = ingest(&a, &reports).await?;
    let c = check(&a, &reports).await?;
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
    Ok(())
}
