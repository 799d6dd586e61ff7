//! The mesh with several servers: the peers to probe come from one answer,
//! the lowest address's while it answers, and the results go to every
//! server with the next report.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::mesh::{MeshPeer, mesh_answer};
use common::{REPORTS, Recorder, Silent, config, refused_addr};
use netchecker_agent::{Agent, Resolver};
use netchecker_wire::AgentReport;
use netchecker_wire::mesh::MeshReport;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn fixed(addrs: Vec<SocketAddr>) -> Resolver {
    Arc::new(move |_host, _port| {
        let addrs = addrs.clone();
        Box::pin(async move { Ok(addrs) })
    })
}

fn mesh_config() -> netchecker_agent::Config {
    config(
        &[
            "-serverendpoint=replicas..invalid:8081",
            "--report-to-all-addresses",
            "-reportinterval=10",
            "--probe-timeout=1",
            "--report-timeout=2",
            "-mesh-port=8083",
        ],
        "netchecker-agent-mesh",
        Some("node-1"),
    )
}

fn mesh_of(r: &common::Recorded) -> MeshReport {
    serde_json::from_slice::<AgentReport>(&r.body)
        .unwrap()
        .mesh
        .expect("the report has a mesh field")
}

/// Recorders answering rounds 11, 12, 13 … each naming the peer as a node
/// of its own (`node-11` …), and each address with its round, from the
/// lowest address.
async fn replicas(n: u64, peer: &MeshPeer) -> (Vec<Recorder>, BTreeMap<SocketAddr, u64>) {
    let mut recs = Vec::new();
    let mut rounds = BTreeMap::new();
    for round in 11..11 + n {
        let rec = Recorder::start().await;
        rec.set(mesh_answer(
            round,
            2000,
            vec![peer.peer(&format!("node-{round}"))],
        ));
        rounds.insert(rec.addr(), round);
        recs.push(rec);
    }
    (recs, rounds)
}

#[tokio::test]
async fn the_peers_come_from_the_lowest_address_that_answers() {
    let peer = MeshPeer::start().await;
    let (mut recs, rounds) = replicas(3, &peer).await;
    let sorted: Vec<SocketAddr> = rounds.keys().copied().collect();
    let mut shuffled = sorted.clone();
    shuffled.rotate_left(1);
    let agent = Agent::with_resolver(mesh_config(), fixed(shuffled)).unwrap();
    agent.round().await.unwrap();
    agent.round().await.unwrap();
    let probes = |p: &MeshPeer| p.counts.answered.load(Ordering::Relaxed);
    // One answer's peers per round, not every server's.
    assert_eq!(probes(&peer), 2);
    let lowest = rounds[&sorted[0]];
    for rec in &recs {
        let reports = rec.requests_to(REPORTS);
        assert_eq!(reports.len(), 2);
        let second = mesh_of(&reports[1]);
        assert_eq!(second.round, lowest, "{second:?}");
        let nodes: Vec<&str> = second.results.iter().map(|r| r.node.as_str()).collect();
        assert_eq!(nodes, [format!("node-{lowest}")]);
        assert_eq!(second.addresses, ["127.0.0.1"]);
        assert_eq!(reports[1].body, recs[0].requests_to(REPORTS)[1].body);
    }

    // The lowest goes away: the next one in order hands out the peers.
    let gone = recs.iter().position(|r| r.addr() == sorted[0]).unwrap();
    recs.remove(gone).stop();
    agent.round().await.unwrap();
    agent.round().await.unwrap();
    assert_eq!(probes(&peer), 4);
    let next = rounds[&sorted[1]];
    for rec in &recs {
        let reports = rec.requests_to(REPORTS);
        assert_eq!(mesh_of(&reports[3]).round, next);
    }
}

#[tokio::test(start_paused = true)]
async fn a_stalled_or_closed_server_never_costs_the_mesh_its_round() {
    let peer = MeshPeer::start().await;
    let (recs, rounds) = replicas(2, &peer).await;
    let silent = Silent::start().await;
    let closed = refused_addr().await;
    let resolver = fixed(vec![silent.addr, closed, recs[1].addr(), recs[0].addr()]);
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let task = tokio::spawn(netchecker_agent::run_with(
        mesh_config(),
        resolver,
        stop.clone(),
    ));
    let reports = recs[0].wait_for(REPORTS, 3, Duration::from_secs(600)).await;
    stop.cancel();
    let stats = task.await.unwrap().unwrap();
    let times: Vec<f64> = common::seconds_since(t0, &reports);
    assert_eq!(times, [0.0, 10.0, 20.0]);
    let lowest = rounds.values().next().copied().unwrap();
    for r in &reports[1..] {
        let mesh = mesh_of(r);
        assert_eq!(mesh.round, lowest, "{mesh:?}");
        assert_eq!(mesh.results.len(), 1);
    }
    assert_eq!((stats.sent, stats.failed), (2, 0), "{stats:?}");
    assert_eq!((stats.mesh_probes, stats.mesh_failed), (2, 0), "{stats:?}");
}
