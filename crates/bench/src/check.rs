//! The check benchmark: a server watching the fake Kubernetes API with
//! `--agents` pods, every agent reported, then `--checks` sequential
//! connectivity checks and the API requests made meanwhile.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{Context, bail};
use netchecker_fake_apiserver::{RequestCounts, agent_pod};
use netchecker_wire::{CHECK_PATH, CheckResponse, healthy_message};

use crate::figures::{latency_cells, mib, ms};
use crate::http::{self, Reports};
use crate::ingest::fill;
use crate::procs::{Child, start_http};
use crate::{Args, reports};

/// Removes the scratch directory when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn request_counts(addr: SocketAddr) -> anyhow::Result<RequestCounts> {
    let (status, body) = http::get(addr, "/fake/requests").await?;
    if status != 200 {
        bail!("GET /fake/requests answered {status}");
    }
    Ok(serde_json::from_slice(&body)?)
}

pub struct CheckFigures {
    pub p99_ms: f64,
    pub api_requests: u64,
    pub healthy: bool,
}

pub async fn check(a: &Args, reports: &Arc<Reports>) -> anyhow::Result<CheckFigures> {
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

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
