//! The agent against a recording HTTP server on loopback: when reports go
//! out, on which connections, and what happens while the server is down.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{Behaviour, Recorder, config, refused_addr};
use netchecker_agent::{Agent, Stats};
use tokio_util::sync::CancellationToken;

const REPORTS: &str = "/api/v1/agents/";

/// Run the agent in the background; returns the token that stops it and the
/// task that yields its stats.
fn spawn_agent(
    cfg: netchecker_agent::Config,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<netchecker_agent::Result<Stats>>,
) {
    let token = CancellationToken::new();
    let task = tokio::spawn(netchecker_agent::run(cfg, token.clone()));
    (token, task)
}

#[tokio::test]
async fn first_report_at_once_then_every_interval_each_on_a_fresh_connection() {
    let rec = Recorder::start().await;
    let endpoint = rec.addr().to_string();
    let started = std::time::Instant::now();
    let (stop, task) = spawn_agent(config(
        &["-serverendpoint", &endpoint, "-reportinterval=1"],
        "netchecker-agent-x7k2p",
        Some("node-1"),
    ));
    let reports = rec.wait_for(REPORTS, 4, Duration::from_secs(10)).await;
    stop.cancel();
    let stats = task.await.unwrap().unwrap();
    // The last report may still be waiting for its answer at the cancel.
    assert!(stats.sent >= 3 && stats.failed == 0, "{stats:?}");

    // The first report goes out at start, not one interval later.
    let first = reports[0].at.duration_since(started);
    assert!(
        first < Duration::from_millis(800),
        "first report after {first:?}"
    );
    // Then one per interval (the schedule is fixed, so gaps stay near 1 s).
    for pair in reports.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap > Duration::from_millis(500) && gap < Duration::from_millis(1500),
            "gap between reports {gap:?}"
        );
    }

    for r in &reports {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/api/v1/agents/netchecker-agent-x7k2p");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.header("host"), Some(endpoint.as_str()));
        assert_eq!(r.json()["podname"], "netchecker-agent-x7k2p");
    }
    // A new connection (and so a new source port) for every report.
    let conns: HashSet<u64> = reports.iter().map(|r| r.conn).collect();
    let ports: HashSet<u16> = reports.iter().map(|r| r.peer.port()).collect();
    assert_eq!(conns.len(), reports.len());
    assert_eq!(ports.len(), reports.len());
    // And no connection carried a second request (pings included).
    let mut per_conn: HashMap<u64, usize> = HashMap::new();
    for r in rec.requests() {
        *per_conn.entry(r.conn).or_default() += 1;
    }
    assert!(per_conn.values().all(|&n| n == 1), "{per_conn:?}");
    // The server was pinged each round, on its own connections.
    let pings = rec.requests_to("/api/v1/ping");
    assert!(pings.len() >= reports.len(), "{} pings", pings.len());
    assert!(pings.iter().all(|p| p.method == "GET"));
}

#[tokio::test]
async fn reports_resume_when_the_server_comes_back() {
    let addr = refused_addr().await;
    let endpoint = addr.to_string();
    let (stop, task) = spawn_agent(config(
        &["-serverendpoint", &endpoint, "-reportinterval=1"],
        "agent-a",
        None,
    ));
    // Two rounds against nothing: refused, logged, retried.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !task.is_finished(),
        "the agent gave up while the server was down"
    );

    let rec = Recorder::start_on(addr).await;
    let reports = rec.wait_for(REPORTS, 2, Duration::from_secs(5)).await;
    assert_eq!(reports[0].path, "/api/v1/agents/agent-a");

    // Down again, then back again.
    let addr = rec.stop();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let rec = Recorder::start_on(addr).await;
    rec.wait_for(REPORTS, 2, Duration::from_secs(5)).await;

    stop.cancel();
    let stats = task.await.unwrap().unwrap();
    // Each outage cost at least one round; in each up phase the report
    // before the last one was answered.
    assert!(stats.failed >= 2, "{stats:?}");
    assert!(stats.sent >= 2, "{stats:?}");
    assert!(stats.rounds >= stats.sent + stats.failed, "{stats:?}");
}

#[tokio::test]
async fn a_refusal_by_the_server_is_a_failure_and_is_retried() {
    let rec = Recorder::start().await;
    rec.set(Behaviour {
        status: 400,
        body: "invalid report: hostdate is missing",
        ..Behaviour::default()
    });
    let cfg = config(
        &[
            "-serverendpoint",
            &rec.addr().to_string(),
            "-reportinterval=1",
        ],
        "agent-b",
        None,
    );
    let agent = Agent::new(cfg).unwrap();
    let err = agent.round().await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("400"), "{text}");
    assert!(text.contains("hostdate is missing"), "{text}");

    rec.set(Behaviour::default());
    agent.round().await.unwrap();
    assert_eq!(rec.requests_to(REPORTS).len(), 2);
}

#[tokio::test]
async fn an_unresolvable_server_is_reported_as_a_dns_failure() {
    // An empty label: glibc refuses it before sending any query.
    let cfg = config(
        &[
            "-serverendpoint=no-such-host..invalid:8081",
            "-reportinterval=1",
        ],
        "agent-c",
        None,
    );
    let agent = Agent::new(cfg).unwrap();
    let report = agent.gather().await;
    assert_eq!(
        report.nslookup["no-such-host..invalid"],
        Vec::<String>::new()
    );
    let ping = &report.network_probes[0];
    assert_eq!((ping.connection_result, ping.http_code), (0, 0));
    let err = agent.round().await.unwrap_err();
    assert!(err.to_string().contains("DNS"), "{err}");
}

/// Each attempt costs one report timeout; one that ran out of time is sent
/// again, after 100 ms, 200 ms, 400 ms …, until the next report is due.
#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_costs_one_report_timeout_per_attempt() {
    let silent = common::Silent::start().await;
    let cfg = config(
        &[
            "-serverendpoint",
            &silent.addr.to_string(),
            "-reportinterval=10",
            "--probe-timeout=0.3",
            "--report-timeout=0.3",
        ],
        "agent-d",
        None,
    );
    let agent = Agent::new(cfg).unwrap();
    let t0 = tokio::time::Instant::now();
    let err = agent.round().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("timed out after 300ms in the wait for the response"),
        "{text}"
    );
    // The first round probes first (0.3 s), then attempts at 0.3, 0.7,
    // 1.2, 1.9, 3.0, 4.9 and 8.4 s; the next pause (6.4 s) would pass the
    // next report's time.
    assert_eq!(t0.elapsed(), Duration::from_millis(8700));
    let attempts = agent.attempts();
    assert_eq!((attempts.attempts, attempts.failed), (7, 7), "{attempts:?}");
    assert_eq!(agent.retries(), 6);
}
