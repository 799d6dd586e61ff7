//! The mesh benchmark: a server (without Kubernetes) with `--mesh-peers K`
//! and N simulated nodes, each with a pod-network and a host-network agent
//! (2·N agents) that report with the mesh header, announce an address and
//! carry one result per peer they were handed. Measured: ingest throughput
//! against the ceiling server under the same load, the server's RSS, and
//! the latency and size of `GET /api/v2/status`.
//!
//! The round is an hour long (`--mesh-round 3600`) so that each agent's
//! prebuilt results stay valid for every report of the run: each one is
//! checked against the peers handed out and recorded, as in a cluster.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use netchecker_wire::mesh::{MeshAnswer, MeshReport, PeerResult, ProbeOutcome};
use netchecker_wire::{AgentReport, OutgoingReport};

use crate::Args;
use crate::figures::{median, mib, ms};
use crate::http::{self, Mode, Reports};
use crate::ingest::Target;
use crate::procs::start_http;
use crate::reports::{PADDING, node_name};

const GO_REPORT: &str = include_str!("../../wire/tests/fixtures/go-agent-report.json");

/// The pod-network and host-network agent of node `i`.
fn agents(i: usize) -> [(String, String); 2] {
    [
        (
            format!("netchecker-agent-{i:05}"),
            format!("198.18.{}.{}", i / 250, 1 + i % 250),
        ),
        (
            format!("netchecker-agent-hostnet-{i:05}"),
            format!("198.19.{}.{}", i / 250, 1 + i % 250),
        ),
    ]
}

/// Every agent's report carrying `results(agent index)` for `round`.
fn build(
    nodes: usize,
    template: &AgentReport,
    round: &[u64],
    results: impl Fn(usize) -> Vec<PeerResult>,
) -> anyhow::Result<Reports> {
    let mut paths = Vec::with_capacity(2 * nodes);
    let mut bodies = Vec::with_capacity(2 * nodes);
    for i in 0..nodes {
        for (j, (name, address)) in agents(i).into_iter().enumerate() {
            let a = 2 * i + j;
            let mut r = template.clone();
            r.podname = name.clone();
            r.nodename = node_name(i);
            r.mesh = Some(MeshReport {
                port: 8083,
                addresses: vec![address],
                round: round.get(a).copied().unwrap_or(0),
                results: results(a),
            });
            paths.push(format!("{}/{name}", netchecker_wire::AGENTS_PATH));
            bodies.push(Bytes::from(serde_json::to_vec(&OutgoingReport::new(
                &r, PADDING,
            ))?));
        }
    }
    Ok(Reports {
        paths,
        bodies,
        tokens: Vec::new(),
        mesh: true,
    })
}

pub struct MeshFigures {
    pub nodes: usize,
    pub peers: usize,
    pub ratio: f64,
    pub rss_mib: f64,
    pub status_p99_ms: f64,
}

pub async fn mesh(a: &Args, nodes: usize, k: usize) -> anyhow::Result<MeshFigures> {
    let template: AgentReport = serde_json::from_str(GO_REPORT)?;
    let boot = Arc::new(build(nodes, &template, &[], |_| Vec::new())?);
    let agents = boot.paths.len();
    let server_bin = a.bin_dir.join("netchecker-server");
    let args: Vec<String> = [
        "--kube=false",
        "--mesh-peers",
        &k.to_string(),
        "--mesh-round",
        "3600",
        "--check-interval",
        "1",
        "--startup-grace",
        "0",
        "--max-agents",
        &(agents + 10).to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (child, addr) = start_http("netchecker-server", &server_bin, &args, &[], "/readyz").await?;
    let mut server = Target {
        label: "netchecker-server",
        child,
        addr,
        runs: Vec::new(),
    };
    // Every agent reports; once the round has built the rings, each is
    // handed its peers.
    let mut answers = Vec::new();
    for _ in 0..20 {
        answers = http::post_each(addr, boot.clone(), a.connections).await?;
        let handed = answers
            .iter()
            .filter(|(status, body)| {
                *status == 200
                    && serde_json::from_slice::<MeshAnswer>(body)
                        .is_ok_and(|m| m.mesh.peers.len() == k.min(nodes - 1))
            })
            .count();
        if handed == agents {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let handed: Vec<MeshAnswer> = answers
        .iter()
        .map(|(_, body)| serde_json::from_slice(body))
        .collect::<Result<_, _>>()
        .context("an answer without peers")?;
    if handed
        .iter()
        .any(|m| m.mesh.peers.len() != k.min(nodes - 1))
    {
        bail!("not every agent was handed {k} peers");
    }
    // Every result ok, except node 0's pod-network agent, which reaches nobody.
    let rounds: Vec<u64> = handed.iter().map(|m| m.mesh.round).collect();
    let steady = Arc::new(build(nodes, &template, &rounds, |agent| {
        handed[agent]
            .mesh
            .peers
            .iter()
            .map(|p| PeerResult {
                node: p.node.clone(),
                address: p.address.clone(),
                outcome: if agent == 0 {
                    ProbeOutcome::ConnectFailed
                } else {
                    ProbeOutcome::Ok
                },
                connect_us: 180,
                transfer_us: 240,
                total_us: 420,
                padding: PADDING as u32,
                raced: false,
                error: if agent == 0 {
                    "connect: connection refused".into()
                } else {
                    String::new()
                },
            })
            .collect()
    })?);
    let body_bytes = steady.bodies[1].len();
    let ceiling_bin = a.bin_dir.join("netchecker-bench-ceiling");
    let (child, caddr) = start_http("ceiling", &ceiling_bin, &[], &[], "/healthz").await?;
    let mut ceiling = Target {
        label: "ceiling",
        child,
        addr: caddr,
        runs: Vec::new(),
    };
    for round in 0..a.rounds {
        let (first, second) = if round % 2 == 0 {
            (&mut server, &mut ceiling)
        } else {
            (&mut ceiling, &mut server)
        };
        first.load(&steady, Mode::KeepAlive, a, round).await?;
        second.load(&steady, Mode::KeepAlive, a, round).await?;
    }
    let rate = |t: &Target| median(t.of(Mode::KeepAlive).map(|r| r.1.per_second()).collect());
    let cpu = |t: &Target| median(t.of(Mode::KeepAlive).map(|r| r.2).collect());
    let ratio = rate(&server) / rate(&ceiling);
    let ingest_p99 = ms(server.merged(Mode::KeepAlive)?.value_at_quantile(0.99));
    // Two rounds so the gauges and the roster saw the results.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Server CPU per answer: its own work, which the machine's other load
    // does not inflate as it does the wall time (the rounds run too, once
    // a second, and are counted in).
    let cpu_before = server.child.cpu_seconds();
    let (hist, status, body) = http::timed_gets(addr, "/api/v2/status", 30).await?;
    let status_cpu_ms = (server.child.cpu_seconds() - cpu_before) * 1000.0 / 30.0;
    if status != 200 {
        bail!("GET /api/v2/status answered {status}");
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let members: Vec<u64> = v["mesh"]["networks"]
        .as_array()
        .map(|n| n.iter().filter_map(|x| x["members"].as_u64()).collect())
        .unwrap_or_default();
    let failing = v["mesh"]["failing_pairs"].as_array().map_or(0, Vec::len);
    let verdict_0 = v["mesh"]["nodes"][0]["verdict"].clone();
    let (rss, _) = server.child.memory_kib();
    ceiling.child.ensure_running()?;
    println!("#### {nodes} nodes, K = {k}\n");
    println!(
        "{agents} agents (a pod-network and a host-network agent per node), each report {body_bytes} bytes \
         with {} results; node-00000's pod-network agent reaches no peer.\n",
        k.min(nodes - 1)
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| ingest, keep-alive, {} connections | {:.0} reports/s ({:.0}% of the ceiling's {:.0}/s), p99 {ingest_p99:.2} ms, {:.0} µs CPU per report |",
        a.connections,
        rate(&server),
        ratio * 100.0,
        rate(&ceiling),
        cpu(&server)
    );
    println!("| server RSS after the runs | {:.1} MiB |", mib(rss));
    println!(
        "| `GET /api/v2/status` (30 sequential) | p50 {:.1} ms, p99 {:.1} ms, {:.2} MB; server CPU {status_cpu_ms:.1} ms per answer |",
        ms(hist.value_at_quantile(0.5)),
        ms(hist.value_at_quantile(0.99)),
        body.len() as f64 / 1e6
    );
    println!(
        "| members (pod, host) | {members:?}; {failing} failing pairs; node-00000's mesh verdict {verdict_0} |\n"
    );
    Ok(MeshFigures {
        nodes,
        peers: k,
        ratio,
        rss_mib: mib(rss),
        status_p99_ms: ms(hist.value_at_quantile(0.99)),
    })
}
