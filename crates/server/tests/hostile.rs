//! The real `netchecker-server` binary under hostile input: a flood of
//! made-up agent names, hundreds of clients that trickle a request and
//! stall, and malformed bodies sent at the wire level.
//!
//! Counts are small by default so `cargo test` stays fast; `hack/reliability.sh`
//! runs the same tests on release builds at full size through the
//! `RELIABILITY_*` variables and prints the figures (`--nocapture`).
//! Only loopback is used, and only the processes started here are killed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
mod fixture;
mod scrape;
use common::Server;

const GO_REPORT: &str = include_str!("../../wire/tests/fixtures/go-agent-report.json");
const KNOWN: [&str; 2] = ["netchecker-agent-known1", "netchecker-agent-hostnet-known2"];

/// A count from the environment (full-size runs), else `default`.
fn scale(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small valid report: what a flood sender would post.
fn small_report(node: &str) -> String {
    format!(
        r#"{{"report_interval":15,"nodename":"{node}","podname":"x","hostdate":"2026-11-21T10:11:12Z","uptime":1,"nslookup":{{}},"ips":{{}},"network_probes":[]}}"#
    )
}

/// Start the binary without Kubernetes on a free loopback port with `args`.
fn spawn(args: &[&str]) -> Server {
    let mut s = Server::start(|cmd, addr, _| {
        cmd.args(["--kube=false", "--endpoint", &addr.to_string()])
            .args(args)
            .env_remove("RUST_LOG");
    });
    s.wait_ready();
    s
}

impl Server {
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, _)) = raw(self.addr, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited with {status}:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server not ready:\n{}", self.logs());
    }

    fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the server died:\n{}",
            self.logs()
        );
    }
}

/// Send `request` verbatim on a new connection (adding `Connection: close`
/// is up to the caller) and read the answer to EOF: (status, body).
fn raw(addr: SocketAddr, request: &str) -> std::io::Result<(u16, String)> {
    raw_bytes(addr, request.as_bytes())
}

fn raw_bytes(addr: SocketAddr, request: &[u8]) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(request)?;
    let mut out = Vec::new();
    // A reset after the answer (the server closing on unread input) is fine.
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = fixture::dechunk(chunked, body);
    Ok((status, body))
}

/// A report POST for `name`; a body with a `podname` names `name`, as an
/// agent's own report does.
fn post_request(name: &str, body: &[u8]) -> Vec<u8> {
    let renamed = std::str::from_utf8(body).map(|b| fixture::as_agent(b, name));
    let body = renamed.as_ref().map_or(body, |b| b.as_bytes());
    let mut req = format!(
        "POST /api/v1/agents/{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

fn agents(addr: SocketAddr) -> Value {
    let (code, body) = raw(
        addr,
        "GET /api/v1/agents/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn metrics(addr: SocketAddr) -> String {
    raw(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap()
    .1
}

/// A keep-alive HTTP/1.1 connection: enough of a client for floods, with
/// nothing between the test and the wire.
struct Conn {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: tokio::io::BufReader::new(stream),
        })
    }

    /// One request; (status, body). The server must answer with a
    /// Content-Length, as it does for every route.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, String)> {
        use tokio::io::AsyncBufReadExt;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut status = 0;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(code) = line.strip_prefix("HTTP/1.1 ") {
                status = code.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            } else if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// Latency figures of a list of samples, in ms: (min, median, p99, max).
fn latency_ms(samples: &mut [Duration]) -> (f64, f64, f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    (at(0.0), at(0.5), at(0.99), at(1.0))
}

/// Post `names` over `concurrency` keep-alive connections; the count of
/// each status seen (0: the connection failed).
async fn flood(
    addr: SocketAddr,
    names: std::ops::Range<usize>,
    concurrency: usize,
) -> std::collections::BTreeMap<u16, usize> {
    let body = small_report("flood-node");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(names.start));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (next, body, end) = (next.clone(), body.clone(), names.end);
        senders.spawn(async move {
            let mut seen = Vec::new();
            let mut conn = Conn::open(addr).await.ok();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                let path = format!("/api/v1/agents/flood-{i:06}");
                let named = fixture::as_agent(&body, &format!("flood-{i:06}"));
                let status = match conn.as_mut() {
                    Some(c) => c.send("POST", &path, named.as_bytes()).await.map(|r| r.0),
                    None => Err(std::io::ErrorKind::NotConnected.into()),
                };
                match status {
                    Ok(code) => seen.push(code),
                    Err(_) => {
                        seen.push(0);
                        conn = Conn::open(addr).await.ok();
                    }
                }
            }
            seen
        });
    }
    let mut counts = std::collections::BTreeMap::new();
    while let Some(seen) = senders.join_next().await {
        for s in seen.unwrap() {
            *counts.entry(s).or_default() += 1;
        }
    }
    counts
}

/// Made-up agent names posted as fast as the client can: the cache stops
/// at `--max-agents` (507 past it), known agents keep being updated and the
/// check keeps answering meanwhile, and memory does not follow the number
/// of names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_made_up_agent_names_is_bounded_by_max_agents() {
    let names = scale("RELIABILITY_FLOOD_NAMES", 3_000);
    let max = scale("RELIABILITY_MAX_AGENTS", 600);
    let concurrency = scale("RELIABILITY_FLOOD_CONCURRENCY", 32);
    assert!(max > KNOWN.len() && names > max);
    let mut server = spawn(&["--max-agents", &max.to_string(), "--check-interval", "1"]);
    let addr = server.addr;
    for name in KNOWN {
        let (code, body) = raw_bytes(addr, &post_request(name, GO_REPORT.as_bytes())).unwrap();
        assert_eq!(code, 200, "{body}");
    }
    let before_flood = agents(addr);
    let mem_start = server.memory_kib();

    // Beside the flood: the known agents keep reporting and a client keeps
    // asking for the check, timing each answer.
    let flooding = Arc::new(AtomicBool::new(true));
    let known = tokio::spawn({
        let flooding = flooding.clone();
        async move {
            let mut statuses = Vec::new();
            let mut conn = Conn::open(addr).await.unwrap();
            while flooding.load(Ordering::Relaxed) {
                for name in KNOWN {
                    let r = conn
                        .send(
                            "POST",
                            &format!("/api/v1/agents/{name}"),
                            fixture::go_report(name).as_bytes(),
                        )
                        .await;
                    statuses.push(r.map(|r| r.0).unwrap_or(0));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            statuses
        }
    });
    let checks = tokio::spawn({
        let flooding = flooding.clone();
        async move {
            let mut samples = Vec::new();
            let mut bad = Vec::new();
            let mut conn = Conn::open(addr).await.unwrap();
            while flooding.load(Ordering::Relaxed) {
                let t = Instant::now();
                let answer = conn
                    .send("GET", "/api/v1/connectivity_check", b"")
                    .await
                    .unwrap_or_else(|e| (0, e.to_string()));
                samples.push(t.elapsed());
                // Every agent is fresh: the check must say so.
                if answer.0 != 200 || !answer.1.contains("successfully reported") {
                    bad.push(answer);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (samples, bad)
        }
    });

    // Phase 1: new names until the cache is full; phase 2: only refusals.
    let fill = max - KNOWN.len();
    let t0 = Instant::now();
    let filled = flood(addr, 0..fill, concurrency).await;
    let fill_time = t0.elapsed();
    let mem_full = server.memory_kib();
    let t1 = Instant::now();
    let refused = flood(addr, fill..names, concurrency).await;
    let refuse_time = t1.elapsed();
    let mem_end = server.memory_kib();
    flooding.store(false, Ordering::Relaxed);
    let known_statuses = known.await.unwrap();
    let (mut samples, bad_checks) = checks.await.unwrap();
    server.assert_alive();

    assert_eq!(
        filled.into_iter().collect::<Vec<_>>(),
        [(200, fill)],
        "every new name is stored until the cache is full"
    );
    assert_eq!(
        refused.into_iter().collect::<Vec<_>>(),
        [(507, names - fill)],
        "every further new name is refused with 507"
    );
    let after = agents(addr);
    let stored = after.as_object().unwrap();
    assert_eq!(stored.len(), max, "the cache holds --max-agents agents");
    for name in KNOWN {
        assert_ne!(
            stored[name]["last_updated"], before_flood[name]["last_updated"],
            "{name} kept being updated during the flood"
        );
    }
    assert!(!known_statuses.is_empty());
    assert!(
        known_statuses.iter().all(|&s| s == 200),
        "known agents refused during the flood: {known_statuses:?}"
    );
    assert!(!samples.is_empty(), "no check answered during the flood");
    assert!(
        bad_checks.is_empty(),
        "checks during the flood: {bad_checks:?}"
    );

    // Metric series: one per stored pod, none for refused names.
    let m = metrics(addr);
    let pods_with_series = m
        .lines()
        .filter(|l| l.starts_with("netchecker_agent_clock_skew_seconds{"))
        .filter(|l| l.contains("pod=\"flood-"))
        .count();
    assert_eq!(pods_with_series, fill);
    assert_eq!(
        scrape::metric(
            &m,
            r#"netchecker_reports_rejected_total{reason="cache_full"}"#
        ),
        (names - fill) as f64
    );
    // The refusals retained nothing: memory grew less while refusing many
    // more names than it did while storing the first ones (plus allocator
    // slack).
    let grew_storing = mem_full.0.saturating_sub(mem_start.0);
    let grew_refusing = mem_end.0.saturating_sub(mem_full.0);
    let log_bytes = std::fs::metadata(&server.log).map(|m| m.len()).unwrap_or(0);
    let (min, med, p99, max_ms) = latency_ms(&mut samples);
    println!(
        "flood: {names} names, {concurrency} in flight, --max-agents {max}: \
         {fill} stored in {:.2} s, {} refused (507) in {:.2} s ({:.0} req/s); \
         RSS KiB start {} / full {} / end {} (peak {}); \
         check latency during the flood over {} checks: min {min:.1} ms, median {med:.1} ms, p99 {p99:.1} ms, max {max_ms:.1} ms; \
         known-agent updates {} (all 200); server log {log_bytes} bytes",
        fill_time.as_secs_f64(),
        names - fill,
        refuse_time.as_secs_f64(),
        (names - fill) as f64 / refuse_time.as_secs_f64(),
        mem_start.0,
        mem_full.0,
        mem_end.0,
        mem_end.1,
        samples.len(),
        known_statuses.len(),
    );
    assert!(
        grew_refusing <= grew_storing + 8 * 1024,
        "memory grew by {grew_refusing} KiB while refusing {} names, {grew_storing} KiB while storing {fill}",
        names - fill
    );
}

/// What one stalled connection does before it stops sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stall {
    /// Connects and sends nothing.
    Idle,
    /// Sends part of the request head, byte by byte.
    Head,
    /// Sends the whole head and part of the body, byte by byte.
    Body,
}

/// Open a connection, trickle its bytes, then stall; returns how long after
/// connecting the server closed it and what it answered (if anything).
async fn stall(
    addr: SocketAddr,
    kind: Stall,
    i: usize,
    limit: Duration,
) -> Result<(Duration, String), String> {
    let connected = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let head = format!(
        "POST /api/v1/agents/stalled-{i} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        GO_REPORT.len()
    );
    let trickle: &[u8] = match kind {
        Stall::Idle => b"",
        Stall::Head => &head.as_bytes()[..head.len() - 2],
        Stall::Body => b"",
    };
    let body_part = &GO_REPORT.as_bytes()[..40];
    if kind == Stall::Body {
        s.write_all(head.as_bytes())
            .await
            .map_err(|e| format!("write head: {e}"))?;
    }
    let trickle = if kind == Stall::Body {
        body_part
    } else {
        trickle
    };
    for b in trickle.iter().take(40) {
        s.write_all(std::slice::from_ref(b))
            .await
            .map_err(|e| format!("write: {e}"))?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(limit, s.read_to_end(&mut answer)).await;
    match read {
        Ok(_) => Ok((
            connected.elapsed(),
            String::from_utf8_lossy(&answer).into_owned(),
        )),
        Err(_) => Err(format!(
            "{kind:?} connection {i} still open after {limit:?}"
        )),
    }
}

/// Hundreds of clients that trickle a request byte by byte and then stall:
/// real reports on other connections are still served, and every stalled
/// connection is closed once `--request-timeout` has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_are_closed_after_the_timeout_and_others_are_served() {
    let count = scale("RELIABILITY_STALLED", 150);
    let timeout_secs = 2u64;
    let mut server = spawn(&["--request-timeout", &timeout_secs.to_string()]);
    let addr = server.addr;
    // A bound against a broken server only. A connection whose handshake
    // the kernel dropped from a full accept queue is accepted (and timed
    // out) only after SYN-ACK retransmits, seconds later.
    let limit = Duration::from_secs(timeout_secs + 30);
    let kinds = [Stall::Idle, Stall::Head, Stall::Body];
    let mut stalled = tokio::task::JoinSet::new();
    for i in 0..count {
        let kind = kinds[i % kinds.len()];
        stalled.spawn(async move { (kind, stall(addr, kind, i, limit).await) });
        // Opened in quick batches rather than all in one burst, as a slow
        // client attack ramps up: the listen backlog is 128.
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // While they trickle and stall: real reports and checks, each on a new
    // connection, are answered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let served = tokio::task::spawn_blocking(move || {
        let mut served = Vec::new();
        for k in 0..10 {
            let name = format!("netchecker-agent-real{k}");
            let t = Instant::now();
            let (code, body) = raw_bytes(addr, &post_request(&name, GO_REPORT.as_bytes())).unwrap();
            assert_eq!(code, 200, "{body}");
            served.push(t.elapsed());
            let (code, body) = raw(
                addr,
                "GET /api/v1/connectivity_check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
            assert_eq!(code, 200, "{body}");
            std::thread::sleep(Duration::from_millis(50));
        }
        served
    })
    .await
    .unwrap();

    let mut closed_after: Vec<(Stall, Duration)> = Vec::new();
    let mut failures = Vec::new();
    while let Some(done) = stalled.join_next().await {
        let (kind, outcome) = done.unwrap();
        match outcome {
            Ok((after, answer)) => {
                if kind == Stall::Body {
                    assert!(
                        answer.starts_with("HTTP/1.1 408"),
                        "a stalled body is answered 408: {answer:?}"
                    );
                    assert!(answer.contains("request not completed within"), "{answer}");
                }
                closed_after.push((kind, after));
            }
            Err(e) => failures.push(e),
        }
    }
    server.assert_alive();
    assert!(
        failures.is_empty(),
        "{} not closed: {failures:?}",
        failures.len()
    );
    assert_eq!(closed_after.len(), count);
    // Closed because of the timeout, not before it.
    for (kind, after) in &closed_after {
        assert!(
            *after >= Duration::from_secs(timeout_secs),
            "{kind:?} closed {after:?} after connecting, before the {timeout_secs} s timeout"
        );
    }
    let stored = agents(addr);
    let names: Vec<&String> = stored.as_object().unwrap().keys().collect();
    assert_eq!(
        names.len(),
        10,
        "only the real reports are stored: {names:?}"
    );
    let bodies = closed_after
        .iter()
        .filter(|(k, _)| *k == Stall::Body)
        .count();
    assert_eq!(
        scrape::metric(
            &metrics(addr),
            r#"netchecker_reports_rejected_total{reason="timeout"}"#
        ),
        bodies as f64
    );
    let mut by_kind = String::new();
    for kind in kinds {
        let mut d: Vec<Duration> = closed_after
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, d)| *d)
            .collect();
        let (min, _, _, max) = latency_ms(&mut d);
        by_kind.push_str(&format!(
            "{kind:?} x{}: closed {:.2}-{:.2} s after connecting; ",
            d.len(),
            min / 1000.0,
            max / 1000.0
        ));
    }
    let mut served = served;
    let (_, med, _, max) = latency_ms(&mut served);
    println!(
        "stalls: {count} stalled connections, --request-timeout {timeout_secs}: {by_kind}\
         10 real reports meanwhile all 200 (median {med:.1} ms, max {max:.1} ms); RSS KiB {}",
        server.memory_kib().0
    );
}

/// Malformed bodies at the wire level: every one is refused with a 4xx and
/// a reason, and the stored state stays exactly as it was.
#[test]
fn malformed_bodies_are_refused_with_a_reason_and_change_nothing() {
    // Room for the 200 KB nesting below (the default is 64 KiB).
    let mut server = spawn(&["--request-timeout", "2", "--max-report-bytes", "262144"]);
    let addr = server.addr;
    let pod = "netchecker-agent-x7k2p";
    let (code, _) = raw_bytes(addr, &post_request(pod, GO_REPORT.as_bytes())).unwrap();
    assert_eq!(code, 200);

    // Nesting 100,000 deep in a field the parser skips is valid JSON: it
    // is skipped without recursion (no stack overflow) and the report kept.
    let deep = |field: &str, open: &str, inner: &str, close: &str, n: usize| {
        format!(
            r#"{{"report_interval":15,"nodename":"node-1","hostdate":"2026-11-21T10:11:12Z","{field}":{}{inner}{}}}"#,
            open.repeat(n),
            close.repeat(n)
        )
    };
    let (code, body) = raw_bytes(
        addr,
        &post_request(pod, deep("extra", "[", "", "]", 100_000).as_bytes()),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    server.assert_alive();
    let before = agents(addr);
    assert_eq!(before[pod]["nodename"], "node-1");

    let field = |json: &str| {
        let mut v: Value = serde_json::from_str(GO_REPORT).unwrap();
        let patch: Value = serde_json::from_str(json).unwrap();
        for (k, x) in patch.as_object().unwrap() {
            v[k] = x.clone();
        }
        v.to_string()
    };
    let mut cases: Vec<(String, Vec<u8>, u16, &str)> = vec![
        ("empty".into(), post_request(pod, b""), 400, "invalid JSON"),
        ("null".into(), post_request(pod, b"null"), 400, "invalid report"),
        ("array".into(), post_request(pod, b"[]"), 400, "invalid report"),
        ("string".into(), post_request(pod, b"\"report\""), 400, "invalid report"),
        (
            "trailing garbage".into(),
            post_request(pod, format!("{GO_REPORT} xyz").as_bytes()),
            400,
            "invalid JSON",
        ),
        (
            "invalid UTF-8 in a string".into(),
            post_request(
                pod,
                b"{\"report_interval\":15,\"nodename\":\"n\xff\xfe\",\"hostdate\":\"2026-11-21T10:11:12Z\"}",
            ),
            400,
            "invalid",
        ),
        (
            "arrays nested 100000 deep where strings belong".into(),
            post_request(pod, deep("nslookup", "[", "", "]", 100_000).as_bytes()),
            400,
            "invalid report",
        ),
        (
            "objects nested 40000 deep where a map belongs".into(),
            post_request(pod, deep("ips", "{\"a\":", "1", "}", 40_000).as_bytes()),
            400,
            "invalid report",
        ),
        (
            "unclosed nesting".into(),
            post_request(pod, deep("extra", "[", "", "", 50_000).as_bytes()),
            400,
            "invalid JSON",
        ),
        (
            "truncated after the head".into(),
            format!(
                "POST /api/v1/agents/{pod} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 50\r\n\r\n{{\"report_interval\":15,\"nodena"
            )
            .into_bytes(),
            408,
            "request not completed within",
        ),
        (
            "Content-Length past the limit, body sent".into(),
            post_request(pod, &vec![b' '; 300_000]),
            413,
            "exceeds 262144 bytes",
        ),
        (
            "chunked body past the limit".into(),
            {
                let chunk = " ".repeat(64 * 1024);
                let mut req = format!(
                    "POST /api/v1/agents/{pod} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
                );
                for _ in 0..5 {
                    req.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
                }
                req.push_str("0\r\n\r\n");
                req.into_bytes()
            },
            413,
            "exceeds 262144 bytes",
        ),
        (
            "malformed chunked encoding".into(),
            format!(
                "POST /api/v1/agents/{pod} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
            )
            .into_bytes(),
            400,
            "",
        ),
    ];
    for (what, patch) in [
        ("report_interval negative", r#"{"report_interval":-1}"#),
        ("report_interval fractional", r#"{"report_interval":1.5}"#),
        (
            "report_interval past u64",
            r#"{"report_interval":18446744073709551616}"#,
        ),
        ("report_interval null", r#"{"report_interval":null}"#),
        ("nodename a number", r#"{"nodename":5}"#),
        ("ips a string", r#"{"ips":"10.0.0.1"}"#),
        ("ips with numbers", r#"{"ips":{"eth0":[1,2]}}"#),
        ("nslookup a list", r#"{"nslookup":["a"]}"#),
        (
            "network_probes an object",
            r#"{"network_probes":{"URL":"x"}}"#,
        ),
        (
            "a probe code a string",
            r#"{"network_probes":[{"URL":"u","HTTPCode":"200"}]}"#,
        ),
        ("hostdate a number", r#"{"hostdate":1700000000}"#),
        (
            "hostdate not a time",
            r#"{"hostdate":"2026-13-45T99:99:99Z"}"#,
        ),
        ("uptime a string", r#"{"uptime":"long"}"#),
    ] {
        cases.push((
            what.into(),
            post_request(pod, field(patch).as_bytes()),
            400,
            "invalid report",
        ));
    }
    // A number too large for a float is a syntax error to the parser.
    cases.push((
        "report_interval 1e400".into(),
        post_request(
            pod,
            field(r#"{"report_interval":1}"#)
                .replace("\"report_interval\":1", "\"report_interval\":1e400")
                .as_bytes(),
        ),
        400,
        "invalid",
    ));

    let mut failures = Vec::new();
    // A Content-Length of 10 GB with no body behind it: refused at once for
    // its declared size, without waiting for the body.
    let (code, body) = raw(
        addr,
        &format!(
            "POST /api/v1/agents/{pod} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10000000000\r\n\r\n{{"
        ),
    )
    .unwrap();
    let huge = (code, body);
    if !matches!(&huge, (413, b) if b.contains("exceeds 262144 bytes")) {
        failures.push(format!("Content-Length of 10 GB: got {huge:?}"));
    }
    for (what, request, status, reason) in &cases {
        let (code, body) = raw_bytes(addr, request).unwrap();
        if code != *status || !body.contains(reason) || body.trim().is_empty() {
            failures.push(format!(
                "{what}: got {code} {body:?}, want {status} with {reason:?}"
            ));
        }
        let now = agents(addr);
        if now != before {
            failures.push(format!("{what}: the stored state changed"));
        }
    }
    server.assert_alive();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let m = metrics(addr);
    assert_eq!(scrape::metric(&m, "netchecker_reports_received_total"), 2.0);
    println!(
        "bad bodies: {} cases, each refused with a reason, nothing stored; \
         arrays nested 100000 deep in an unknown field: accepted (skipped without recursion); \
         a 10 GB Content-Length with no body: {} {:?}",
        cases.len() + 1,
        huge.0,
        huge.1.trim()
    );
}

/// A report for `node` whose single probe is `url`.
fn report_with_probe(node: &str, url: &str) -> String {
    format!(
        r#"{{"report_interval":15,"nodename":"{node}","hostdate":"2026-11-21T10:11:12Z","network_probes":[{{"URL":"{url}","ConnectionResult":1,"HTTPCode":200,"Total":3,"ContentTransfer":0,"TCPConnection":1,"DNSLookup":1,"Connect":1,"ServerProcessing":1}}]}}"#
    )
}

/// Without Kubernetes, agents forgotten with `DELETE` leave no cache entry
/// and no metric series behind (the original's per-agent series lingered
/// forever).
#[test]
fn deleted_agents_leave_no_cache_entry_or_metric_series() {
    let mut server = spawn(&["--check-interval", "1"]);
    let addr = server.addr;
    let count = 50;
    for i in 0..count {
        let body = report_with_probe(&format!("gone-node-{i}"), &format!("http://gone-{i}/"));
        let (code, b) = raw_bytes(
            addr,
            &post_request(&format!("netchecker-agent-gone{i}"), body.as_bytes()),
        )
        .unwrap();
        assert_eq!(code, 200, "{b}");
    }
    // A background round publishes ages and missed windows for them too.
    std::thread::sleep(Duration::from_millis(1200));
    let m = metrics(addr);
    assert!(m.lines().filter(|l| l.contains("gone-")).count() >= count * 10);
    for i in 0..count {
        let (code, b) = raw(
            addr,
            &format!(
                "DELETE /api/v1/agents/netchecker-agent-gone{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            ),
        )
        .unwrap();
        assert_eq!(code, 200, "{b}");
    }
    assert_eq!(agents(addr), serde_json::json!({}));
    std::thread::sleep(Duration::from_millis(1200));
    let m = metrics(addr);
    let left: Vec<&str> = m.lines().filter(|l| l.contains("gone-")).collect();
    assert!(left.is_empty(), "series of deleted agents: {left:#?}");
    server.assert_alive();
}

/// An agent whose probe URLs change from report to report (a reconfigured
/// or hostile agent) must not grow the metric series without bound: only
/// the probes of its latest report keep series, and none survive it.
#[test]
fn changing_probe_urls_leave_no_stale_series() {
    let mut server = spawn(&[]);
    let addr = server.addr;
    let name = "netchecker-agent-fickle";
    for i in 0..20 {
        let body = report_with_probe("fickle-node", &format!("http://probe-{i}.example/"));
        let (code, b) = raw_bytes(addr, &post_request(name, body.as_bytes())).unwrap();
        assert_eq!(code, 200, "{b}");
    }
    let probe_series = |m: &str| {
        m.lines()
            .filter(|l| l.starts_with("ncagent_http_probe_") && l.contains("fickle-node"))
            .count()
    };
    assert_eq!(
        probe_series(&metrics(addr)),
        8,
        "eight probe gauges for the one URL of the latest report"
    );
    let (code, _) = raw(
        addr,
        &format!("DELETE /api/v1/agents/{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
    .unwrap();
    assert_eq!(code, 200);
    assert_eq!(probe_series(&metrics(addr)), 0);
    server.assert_alive();
}
