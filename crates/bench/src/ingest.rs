//! The ingest benchmark: the server against the ceiling server under the
//! same load, and the server's memory with every agent stored; also the
//! `--against` profiling aid.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use hdrhistogram::Histogram;

use crate::Args;
use crate::figures::{latency_cells, median, mib, ms};
use crate::http::{self, LoadResult, Mode, Reports};
use crate::procs::{Child, start_http};

/// One server under load: its process, address and what each run measured.
pub(crate) struct Target {
    pub(crate) label: &'static str,
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) runs: Vec<(Mode, LoadResult, f64)>,
}

/// Print the table of `mode`'s rounds, ceiling and server side by side;
/// returns the server's throughput over the ceiling's, round by round.
pub(crate) fn round_rows(ceiling: &Target, server: &Target, mode: Mode) -> Vec<f64> {
    println!(
        "| round | target | reports/s | failed | CPU per report | p50 ms | p99 ms | p99.9 ms | max ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
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
        ratios.push(s.1.per_second() / c.1.per_second());
    }
    ratios
}

/// Print `who`'s throughput over the ceiling's by round and their median;
/// returns the median.
pub(crate) fn ratio_line(who: &str, ratios: &[f64]) -> f64 {
    let m = median(ratios.to_vec());
    println!(
        "\n{who} / ceiling throughput by round: {}; median **{:.0}%**.\n",
        ratios
            .iter()
            .map(|r| format!("{:.0}%", r * 100.0))
            .collect::<Vec<_>>()
            .join(", "),
        m * 100.0
    );
    m
}

impl Target {
    pub(crate) async fn load(
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

    pub(crate) fn of(&self, mode: Mode) -> impl Iterator<Item = &(Mode, LoadResult, f64)> {
        self.runs.iter().filter(move |(m, _, _)| *m == mode)
    }

    pub(crate) fn merged(&self, mode: Mode) -> anyhow::Result<Histogram<u64>> {
        let mut h = Histogram::new_from(&self.runs[0].1.latency);
        for (_, r, _) in self.of(mode) {
            h.add(&r.latency)?;
        }
        Ok(h)
    }
}

/// Fill `addr` with one report from every agent over keep-alive connections.
pub async fn fill(addr: SocketAddr, reports: &Arc<Reports>, a: &Args) -> anyhow::Result<()> {
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

async fn stored_agents(addr: SocketAddr) -> anyhow::Result<usize> {
    let (status, body) = http::get(addr, "/api/v1/agents/").await?;
    if status != 200 {
        bail!("GET /api/v1/agents/ answered {status}");
    }
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)?;
    Ok(map.len())
}

pub struct IngestFigures {
    pub ratio_keep_alive: f64,
    pub ratio_new_conn: f64,
    pub p99_keep_alive_ms: f64,
    pub rss_full_kib: u64,
    pub rss_end_kib: u64,
}

pub async fn ingest(a: &Args, reports: &Arc<Reports>) -> anyhow::Result<IngestFigures> {
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
        let mode_ratios = round_rows(&ceiling, &server, mode);
        let ch = ceiling.merged(mode)?;
        let sh = server.merged(mode)?;
        println!("| all | ceiling | | | | {} |", latency_cells(&ch));
        println!("| all | server | | | | {} |", latency_cells(&sh));
        let m = ratio_line("Server", &mode_ratios);
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

/// Profiling aid: fill a server started by hand (under valgrind, say),
/// then load it with keep-alive connections for `--seconds`.
pub async fn against(addr: SocketAddr, a: &Args, reports: &Arc<Reports>) -> anyhow::Result<()> {
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
