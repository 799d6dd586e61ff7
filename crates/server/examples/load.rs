//! Load benchmark of the `netchecker-server` binary (run by `make bench`).
//!
//! Starts the release binary without Kubernetes on loopback, then:
//! 1. ingest: `--agents` distinct agents POST the Go agent's padded report
//!    (3.4 KB) over `--concurrency` keep-alive connections for `--seconds`;
//! 2. check: `GET /api/v1/connectivity_check` with every agent expected,
//!    sequentially, recording latency percentiles;
//! 3. memory: the server's resident set before and after the cache filled,
//!    per cached agent.
//!
//! Prints a Markdown table. Traffic goes to 127.0.0.1 only and the run is
//! bounded in time; the server process is killed by PID at the end.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const REPORT: &str = include_str!("../../wire/tests/fixtures/go-agent-report.json");

struct Args {
    server: String,
    agents: usize,
    concurrency: usize,
    seconds: u64,
    checks: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        server: "target/release/netchecker-server".into(),
        agents: 10_000,
        concurrency: 32,
        seconds: 10,
        checks: 200,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--server" => a.server = v,
            "--agents" => a.agents = v.parse().expect("--agents N"),
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency N"),
            "--seconds" => a.seconds = v.parse().expect("--seconds N"),
            "--checks" => a.checks = v.parse().expect("--checks N"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(&args.server)
        .args([
            "--kube=false",
            "--endpoint",
            &format!("127.0.0.1:{port}"),
            "--check-interval",
            "10",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the server binary (build it with `make release`)");
    let pid = child.id();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .unwrap();
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_idle = rss_kib(pid);

    // 1. ingest
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_seconds(pid);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (http, base, sent, failed) = (http.clone(), base.clone(), sent.clone(), failed.clone());
        let agents = args.agents;
        let step = args.concurrency;
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while Instant::now() < deadline {
                let url = format!("{base}/api/v1/agents/netchecker-agent-{:05}", i % agents);
                match http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(REPORT)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => sent.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
                i += step;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_ingest = cpu_seconds(pid) - cpu_before;
    let reports = sent.load(Ordering::Relaxed);
    let rss_full = rss_kib(pid);
    let cached = http
        .get(format!("{base}/api/v1/agents/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&b)
                .unwrap()
                .len()
        })
        .unwrap();

    // 2. checks
    let mut lat = Vec::with_capacity(args.checks);
    for _ in 0..args.checks {
        let t = Instant::now();
        let r = http
            .get(format!("{base}/api/v1/connectivity_check"))
            .send()
            .await
            .unwrap();
        let _ = r.bytes().await.unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();

    let _ = child.kill();
    let _ = child.wait();

    println!("| measure | value |");
    println!("|---|---|");
    println!("| agents cached | {cached} |");
    println!(
        "| ingest: concurrency, duration | {} connections, {elapsed:.1} s |",
        args.concurrency
    );
    println!(
        "| ingest: reports stored per second | {:.0} |",
        reports as f64 / elapsed
    );
    println!(
        "| ingest: failed requests | {} |",
        failed.load(Ordering::Relaxed)
    );
    println!(
        "| ingest: server CPU per report | {:.1} µs |",
        cpu_ingest * 1e6 / reports.max(1) as f64
    );
    println!(
        "| check with {cached} expected agents: p50 / p99 / max | {:.2} / {:.2} / {:.2} ms |",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "| server RSS idle / with cache full | {:.1} / {:.1} MiB |",
        rss_idle as f64 / 1024.0,
        rss_full as f64 / 1024.0
    );
    println!(
        "| memory per cached agent | {:.2} KiB |",
        (rss_full.saturating_sub(rss_idle)) as f64 / cached.max(1) as f64
    );
}
