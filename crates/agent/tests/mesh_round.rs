//! The mesh round against the recording server: the header and the `mesh`
//! field on each report, the peers named in the answer probed and their
//! results in the next report with the round's number, an answer without
//! peers changing nothing, the schedule kept, and the mesh off leaving the
//! request as it always was.

mod common;

use std::time::Duration;

use common::logs::Logs;
use common::mesh::{MeshPeer, Script, Scripted, mesh_answer, peer};
use common::{Behaviour, REPORTS, Recorder, config, refused_addr};
use netchecker_agent::{Agent, Stats};
use netchecker_wire::AgentReport;
use netchecker_wire::mesh::{MeshReport, ProbeOutcome};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The `mesh` field of a recorded report.
fn mesh_of(r: &common::Recorded) -> MeshReport {
    serde_json::from_slice::<AgentReport>(&r.body)
        .unwrap()
        .mesh
        .expect("the report has a mesh field")
}

fn mesh_config(rec: &Recorder, extra: &[&str]) -> netchecker_agent::Config {
    let endpoint = format!("-serverendpoint={}", rec.addr());
    let mut args = vec![
        endpoint.as_str(),
        "-reportinterval=60",
        "-zeroextenderlength=1500",
    ];
    args.extend_from_slice(extra);
    config(&args, "netchecker-agent-mesh", Some("node-1"))
}

#[tokio::test]
async fn the_peers_of_an_answer_are_in_the_next_report_with_its_round() {
    let rec = Recorder::start().await;
    let a = MeshPeer::start().await;
    let b = MeshPeer::start().await;
    let gone = refused_addr().await;
    rec.answer_reports([mesh_answer(
        7,
        2000,
        vec![a.peer("node-2"), b.peer("node-3"), peer("node-4", gone)],
    )]);
    let agent = Agent::new(mesh_config(&rec, &["-mesh-port=8083"])).unwrap();
    for _ in 0..3 {
        agent.round().await.unwrap();
    }
    let reports = rec.requests_to(REPORTS);
    assert_eq!(reports.len(), 3);
    for r in &reports {
        assert_eq!(r.header("netchecker-mesh"), Some("1"));
    }
    // The first report: nothing probed yet; the address announced is the
    // one the server saw the agent connect from, once it has.
    let first = mesh_of(&reports[0]);
    assert_eq!((first.port, first.round, first.results.len()), (8083, 0, 0));
    assert!(first.addresses.is_empty(), "{first:?}");
    // The second: round 7's results, in the peers' order.
    let second = mesh_of(&reports[1]);
    assert_eq!(second.round, 7);
    assert_eq!(second.addresses, [reports[1].peer.ip().to_string()]);
    let outcomes: Vec<(&str, ProbeOutcome)> = second
        .results
        .iter()
        .map(|r| (r.node.as_str(), r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("node-2", ProbeOutcome::Ok),
            ("node-3", ProbeOutcome::Ok),
            ("node-4", ProbeOutcome::ConnectFailed)
        ]
    );
    assert!(second.results.iter().all(|r| r.padding == 1500));
    assert_eq!(second.results[0].address, "127.0.0.1");
    // The third: the server named no peers for round 8, so nothing.
    let third = mesh_of(&reports[2]);
    assert_eq!((third.round, third.results.len()), (0, 0));
    let mesh = agent.mesh().unwrap();
    assert_eq!((mesh.probes(), mesh.failed()), (3, 1));
    // The peers saw one probe each, on its own connection.
    for p in [&a, &b] {
        let answered = p.counts.answered.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(answered, 1);
    }
}

#[tokio::test(start_paused = true)]
async fn without_peers_in_the_answer_the_agent_reports_as_usual() {
    let (logs, _capturing) = Logs::capture();
    let rec = Recorder::start().await;
    // The original server's empty 200, then an answer that is no round.
    rec.answer_reports([
        Behaviour::default(),
        Behaviour {
            body: "OK",
            ..Behaviour::default()
        },
    ]);
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let task = tokio::spawn(netchecker_agent::run(
        mesh_config(&rec, &["-mesh-port", &free_port().await.to_string()]),
        stop.clone(),
    ));
    let reports = rec.wait_for(REPORTS, 4, Duration::from_secs(600)).await;
    stop.cancel();
    let stats = task.await.unwrap().unwrap();
    let times: Vec<f64> = common::seconds_since(t0, &reports);
    assert_eq!(times, [0.0, 60.0, 120.0, 180.0]);
    for r in &reports {
        let mesh = mesh_of(r);
        assert_eq!((mesh.round, mesh.results.len()), (0, 0));
    }
    assert_eq!(
        (stats.failed, stats.mesh_probes, stats.mesh_failed),
        (0, 0, 0)
    );
    let said = logs.lines_with("hands out no mesh peers");
    assert_eq!(said.len(), 1, "{}", logs.text());
    assert!(logs.lines_with("ERROR").is_empty(), "{}", logs.text());
}

/// A port nothing listens on, on every address.
async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("[::]:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(start_paused = true)]
async fn probes_end_before_the_next_report_is_due() {
    let (logs, _capturing) = Logs::capture();
    let rec = Recorder::start().await;
    let silent = Scripted::start(Script::HoldAfterHead).await;
    let port = free_port().await;
    let own = peer("node-1", format!("127.0.0.1:{port}").parse().unwrap());
    // The server allows 120 s per probe, more than the whole interval.
    rec.answer_reports([
        mesh_answer(1, 120_000, vec![own.clone(), silent.peer("node-9")]),
        mesh_answer(2, 120_000, vec![own, silent.peer("node-9")]),
    ]);
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let task = tokio::spawn(netchecker_agent::run(
        mesh_config(&rec, &["-mesh-port", &port.to_string()]),
        stop.clone(),
    ));
    let reports = rec.wait_for(REPORTS, 3, Duration::from_secs(600)).await;
    stop.cancel();
    let stats: Stats = task.await.unwrap().unwrap();
    let times: Vec<f64> = common::seconds_since(t0, &reports);
    // The schedule is kept: the probes were cut to end 100 ms before.
    assert_eq!(times, [0.0, 60.0, 120.0]);
    let second = mesh_of(&reports[1]);
    assert_eq!(second.round, 1);
    // The agent's own listener answered (on every address, loopback too).
    assert_eq!(second.results[0].outcome, ProbeOutcome::Ok, "{second:?}");
    let stuck = &second.results[1];
    assert_eq!(stuck.outcome, ProbeOutcome::TransferFailed);
    assert_eq!(stuck.total_us, 59_900_000);
    assert_eq!(mesh_of(&reports[2]).round, 2);
    assert_eq!((stats.sent, stats.failed), (2, 0), "{stats:?}");
    assert_eq!((stats.mesh_probes, stats.mesh_failed), (4, 2), "{stats:?}");
    // One line per round with failures (a minute apart: none held back).
    let warned = logs.lines_with("mesh probes failed");
    assert_eq!(warned.len(), 2, "{}", logs.text());
    for line in &warned {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("node-9 transfer_failed"), "{line}");
    }
    assert!(logs.lines_with("agent stopped")[0].contains("mesh_probes=4"));
}

#[tokio::test]
async fn with_the_mesh_off_a_report_has_neither_header_nor_field() {
    let rec = Recorder::start().await;
    // Even a server that hands out peers gets the report of old.
    let peer = MeshPeer::start().await;
    rec.set(mesh_answer(3, 2000, vec![peer.peer("node-2")]));
    let agent = Agent::new(mesh_config(&rec, &[])).unwrap();
    assert!(agent.mesh().is_none());
    agent.round().await.unwrap();
    agent.round().await.unwrap();
    for r in rec.requests_to(REPORTS) {
        assert_eq!(r.header("netchecker-mesh"), None);
        assert!(r.json().get("mesh").is_none());
    }
    assert_eq!(
        peer.counts
            .answered
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
