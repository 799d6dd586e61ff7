//! One report to several servers: a `,`-separated `--serverendpoint`, and
//! with `--report-to-all-addresses` every address its name resolves to
//! (through a resolver the test hands the agent, so that one name stands
//! for recorders on several loopback ports). Every server gets every report,
//! byte for byte; a server that stalls or refuses costs only its own
//! timeout and is counted; a huge address list is cut to 16; without the
//! flag one request per round goes to the name, as ever.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::logs::Logs;
use common::{REPORTS, Recorder, Silent, config, refused_addr};
use netchecker_agent::{Agent, Resolver, TargetCounts};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A name that the C library refuses before any DNS query: the ping probe
/// and `nslookup` of it fail at once, and nothing leaves the machine.
const NAME: &str = "replicas..invalid:8081";

/// A resolver that answers `addrs` for any name and counts its calls.
fn fixed(addrs: Vec<SocketAddr>) -> (Resolver, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let resolver: Resolver = Arc::new(move |_host, _port| {
        counter.fetch_add(1, Ordering::SeqCst);
        let addrs = addrs.clone();
        Box::pin(async move { Ok(addrs) })
    });
    (resolver, calls)
}

fn fan_out_config(extra: &[&str]) -> netchecker_agent::Config {
    let endpoint = format!("-serverendpoint={NAME}");
    let mut args = vec![
        endpoint.as_str(),
        "-report-to-all-addresses=true",
        "-reportinterval=10",
        "--probe-timeout=1",
        "--report-timeout=2",
    ];
    args.extend_from_slice(extra);
    config(&args, "netchecker-agent-fan", Some("node-1"))
}

/// A recorder whose address sorts after all of `others`: reporting in
/// sorted order one after the other would reach it last.
async fn recorder_after(others: &[SocketAddr]) -> Recorder {
    for _ in 0..100 {
        let rec = Recorder::start().await;
        if others.iter().all(|o| *o < rec.addr()) {
            return rec;
        }
    }
    panic!("no port above {others:?} in 100 tries");
}

fn counts(sent: u64, failed: u64) -> TargetCounts {
    TargetCounts { sent, failed }
}

#[tokio::test]
async fn every_address_of_the_name_gets_every_report_byte_for_byte() {
    let recs = [
        Recorder::start().await,
        Recorder::start().await,
        Recorder::start().await,
    ];
    let mut addrs: Vec<SocketAddr> = recs.iter().map(Recorder::addr).collect();
    // The resolver's order is no order, and a repeat is one place.
    addrs.reverse();
    addrs.push(recs[1].addr());
    let (resolver, calls) = fixed(addrs);
    let agent = Agent::with_resolver(fan_out_config(&[]), resolver).unwrap();
    for _ in 0..2 {
        agent.round().await.unwrap();
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the name is resolved each round"
    );
    let got: Vec<_> = recs.iter().map(|r| r.requests_to(REPORTS)).collect();
    for reports in &got {
        assert_eq!(reports.len(), 2, "{reports:#?}");
        for r in reports {
            assert_eq!(r.path, "/api/v1/agents/netchecker-agent-fan");
            assert_eq!(r.header("host"), Some(NAME), "the Host of the name");
            assert_eq!(r.header("connection"), Some("close"));
            let zeros = r.json()["zero_extender"].as_array().unwrap().len();
            assert_eq!(zeros, 1500);
        }
    }
    for (round, first) in got[0].iter().enumerate() {
        assert_eq!(first.body, got[1][round].body);
        assert_eq!(first.body, got[2][round].body);
    }
    let expected: BTreeMap<String, TargetCounts> = recs
        .iter()
        .map(|r| (r.addr().to_string(), counts(2, 0)))
        .collect();
    assert_eq!(agent.target_counts(), expected);
}

#[tokio::test]
async fn each_endpoint_of_a_list_gets_every_report_by_its_name() {
    let (a, b) = (Recorder::start().await, Recorder::start().await);
    let list = format!("-serverendpoint={}, {}", a.addr(), b.addr());
    let cfg = config(&[list.as_str(), "-reportinterval=10"], "agent-list", None);
    let agent = Agent::new(cfg).unwrap();
    agent.round().await.unwrap();
    agent.round().await.unwrap();
    for rec in [&a, &b] {
        let reports = rec.requests_to(REPORTS);
        assert_eq!(reports.len(), 2);
        let host = rec.addr().to_string();
        assert!(
            reports
                .iter()
                .all(|r| r.header("host") == Some(host.as_str()))
        );
        // Each server is still pinged, once per round.
        assert_eq!(rec.requests_to("/api/v1/ping").len(), 2);
    }
    assert_eq!(
        a.requests_to(REPORTS)[1].body,
        b.requests_to(REPORTS)[1].body
    );
    let report = a.requests_to(REPORTS)[0].json();
    let probed: Vec<&str> = (report["network_probes"].as_array().unwrap().iter())
        .map(|p| p["URL"].as_str().unwrap())
        .collect();
    assert_eq!(
        probed,
        [
            format!("http://{}/api/v1/ping", a.addr()),
            format!("http://{}/api/v1/ping", b.addr())
        ]
    );
    assert_eq!(agent.target_counts().len(), 2);
}

#[tokio::test]
async fn without_the_flag_one_request_per_round_goes_to_the_name() {
    let recs = [Recorder::start().await, Recorder::start().await];
    let (resolver, calls) = fixed(recs.iter().map(Recorder::addr).collect());
    let endpoint = format!("-serverendpoint={}", recs[0].addr());
    let cfg = config(
        &[endpoint.as_str(), "-reportinterval=10"],
        "agent-one",
        None,
    );
    let agent = Agent::with_resolver(cfg, resolver).unwrap();
    agent.round().await.unwrap();
    agent.round().await.unwrap();
    assert_eq!(recs[0].requests_to(REPORTS).len(), 2);
    assert!(recs[1].requests().is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the resolver is not asked");
    let endpoint = recs[0].addr().to_string();
    assert_eq!(
        agent.target_counts(),
        BTreeMap::from([(endpoint, counts(2, 0))])
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_and_a_closed_server_cost_only_their_own_timeout() {
    let (logs, _capturing) = Logs::capture();
    let silent = Silent::start().await;
    let closed = refused_addr().await;
    let good = recorder_after(&[silent.addr, closed]).await;
    let (resolver, _) = fixed(vec![good.addr(), closed, silent.addr]);
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let task = tokio::spawn(netchecker_agent::run_with(
        fan_out_config(&[]),
        resolver,
        stop.clone(),
    ));
    let reports = good.wait_for(REPORTS, 3, Duration::from_secs(600)).await;
    stop.cancel();
    let stats = task.await.unwrap().unwrap();
    let times: Vec<f64> = common::seconds_since(t0, &reports);
    // Neither the 2 s the silent server costs nor the refusal moved them.
    assert_eq!(times, [0.0, 10.0, 20.0]);
    // The third round was cut by the shutdown.
    assert_eq!((stats.rounds, stats.sent, stats.failed), (3, 2, 0));
    let expected = BTreeMap::from([
        (good.addr().to_string(), counts(2, 0)),
        (silent.addr.to_string(), counts(0, 2)),
        (closed.to_string(), counts(0, 2)),
    ]);
    assert_eq!(stats.targets, expected);

    let warned = logs.lines_with("report not taken by every server");
    assert_eq!(warned.len(), 2, "one line per round:\n{}", logs.text());
    for line in &warned {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("taken=1 failed=2"), "{line}");
        // Retried until the next report was due, the last attempt cut to
        // end by then (0.5 s of the 2 s report timeout).
        let stalled = format!(
            "{}: timed out after 500ms in the wait for the response",
            silent.addr
        );
        assert!(line.contains(&stalled), "{line}");
        assert!(
            line.contains(&format!("{closed}: cannot connect")),
            "{line}"
        );
        assert!(!line.contains(&good.addr().to_string()), "{line}");
    }
    let summary = &logs.lines_with("agent stopped")[0];
    let good_counts = format!("{} sent 2 failed 0", good.addr());
    assert!(summary.contains(&good_counts), "{summary}");
    assert!(logs.lines_with("ERROR").is_empty(), "{}", logs.text());
}

#[tokio::test(start_paused = true)]
async fn a_round_no_server_took_fails_when_the_interval_is_spent_naming_each() {
    let silent = Silent::start().await;
    let closed = refused_addr().await;
    let (resolver, _) = fixed(vec![closed, silent.addr]);
    let agent = Agent::with_resolver(fan_out_config(&[]), resolver).unwrap();
    let t0 = Instant::now();
    let err = agent.round().await.unwrap_err().to_string();
    // The stalled server's attempts time out and are sent again (at 0,
    // 2.1, 4.3, 6.7 and 9.5 s, the last cut to end at 10 s, when the next
    // report is due); the refused one is not retried.
    assert_eq!(t0.elapsed(), Duration::from_secs(10));
    let attempts = agent.attempts();
    assert_eq!((attempts.attempts, attempts.failed), (6, 6), "{attempts:?}");
    assert_eq!(agent.retries(), 4);
    assert!(err.starts_with("no server took the report: "), "{err}");
    assert!(err.contains(&format!("{closed}: cannot connect")), "{err}");
    assert!(
        err.contains(&format!("{}: timed out", silent.addr)),
        "{err}"
    );
}

#[tokio::test]
async fn a_huge_address_list_is_cut_to_the_lowest_sixteen() {
    let (logs, _capturing) = Logs::capture();
    let recs = [Recorder::start().await, Recorder::start().await];
    // 40 closed ports beside the two recorders, as a hostile answer could name.
    let mut closed = Vec::new();
    for _ in 0..40 {
        closed.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let mut addrs: Vec<SocketAddr> = closed.iter().map(|l| l.local_addr().unwrap()).collect();
    drop(closed);
    addrs.extend(recs.iter().map(Recorder::addr));
    let mut lowest = addrs.clone();
    lowest.sort();
    lowest.truncate(16);
    let (resolver, _) = fixed(addrs);
    let agent = Agent::with_resolver(fan_out_config(&[]), resolver).unwrap();
    let _ = agent.round().await;

    let places: Vec<String> = agent.target_counts().into_keys().collect();
    let mut expected: Vec<String> = lowest.iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(places, expected);
    for rec in &recs {
        let reports = rec.requests_to(REPORTS).len();
        assert_eq!(reports, usize::from(lowest.contains(&rec.addr())));
    }
    let ignored = logs.lines_with("more than 16 addresses");
    assert_eq!(ignored.len(), 1, "{}", logs.text());
    assert!(ignored[0].contains("ignored=26"), "{}", ignored[0]);
}
