use std::time::Duration;

use netchecker_wire::mesh::{MeshRound, Peer, PeerResult, ProbeOutcome};
use tokio::time::Instant;

use super::log::FailureLog;
use super::prober::peer_addr;
use super::*;
use crate::config::MeshConfig;

fn peer(address: &str, port: u16) -> Peer {
    Peer {
        node: "node-2".into(),
        address: address.into(),
        port,
    }
}

fn mesh(addresses: &[&str]) -> Mesh {
    let config = MeshConfig {
        port: 8083,
        addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
    };
    Mesh::new(&config, 100_000, Duration::from_secs(2))
}

fn result(node: &str, outcome: ProbeOutcome) -> PeerResult {
    PeerResult {
        node: node.into(),
        outcome,
        error: if outcome == ProbeOutcome::Ok {
            String::new()
        } else {
            "no complete answer within 2s".into()
        },
        ..PeerResult::default()
    }
}

#[test]
fn zeros_are_zeros_and_capped() {
    assert_eq!(zeros(0).len(), 0);
    assert!(zeros(1500).iter().all(|b| *b == 0));
    assert_eq!(zeros(1500).len(), 1500);
    assert_eq!(zeros(MAX_PROBE_PADDING + 1).len(), MAX_PROBE_PADDING);
}

#[test]
fn peers_are_reached_by_ip_address_only() {
    assert_eq!(
        peer_addr(&peer("198.18.2.2", 8083)),
        Some("198.18.2.2:8083".parse().unwrap())
    );
    for v6 in ["fd00::2", "[fd00::2]", " fd00::2 "] {
        assert_eq!(
            peer_addr(&peer(v6, 8083)),
            Some("[fd00::2]:8083".parse().unwrap()),
            "{v6}"
        );
    }
    assert_eq!(peer_addr(&peer("node-2.example", 8083)), None);
    assert_eq!(peer_addr(&peer("", 8083)), None);
    assert_eq!(peer_addr(&peer("198.18.2.2", 0)), None);
}

#[test]
fn only_a_mesh_answer_is_a_round() {
    let m = mesh(&[]);
    for no_round in [
        &b""[..],
        b"\r\n",
        b"OK",
        b"{}",
        b"{\"mesh\":7}",
        b"{\"mesh\":{\"round\":1}}",
    ] {
        assert_eq!(m.round_of(no_round), None, "{no_round:?}");
    }
    let round = m
        .round_of(br#"{"mesh":{"round":8,"timeout_ms":2000,"peers":[{"node":"node-3","address":"198.18.3.2","port":8083}]},"more":1}"#)
        .unwrap();
    assert_eq!(round.round, 8);
    assert_eq!(round.peers[0].node, "node-3");
}

#[tokio::test(start_paused = true)]
async fn a_report_takes_the_last_rounds_results_once() {
    let m = mesh(&[]);
    let first = m.report();
    assert_eq!((first.port, first.round, first.results.len()), (8083, 0, 0));
    assert!(first.addresses.is_empty());
    m.connected_from("[::ffff:10.0.0.7]:40000".parse().unwrap());
    // A round whose peers cannot be probed any more still counts as a round.
    let round = MeshRound {
        round: 4,
        timeout_ms: 1000,
        peers: vec![peer("127.0.0.1", 1)],
    };
    m.probe(round, Instant::now()).await;
    let second = m.report();
    assert_eq!((second.round, second.results.len()), (4, 0));
    assert_eq!(second.addresses, ["10.0.0.7"]);
    let third = m.report();
    assert_eq!((third.round, third.results.len()), (0, 0));
    // Configured addresses win over the connection's.
    let m = mesh(&["10.1.0.5", "fd00::5"]);
    m.connected_from("10.0.0.7:40000".parse().unwrap());
    assert_eq!(m.report().addresses, ["10.1.0.5", "fd00::5"]);
    // The padding of a probe is capped.
    assert_eq!(m.padding(), MAX_PROBE_PADDING);
}

#[tokio::test(start_paused = true)]
async fn failures_are_logged_at_most_once_a_minute() {
    let mut log = FailureLog::default();
    let ok = [result("node-2", ProbeOutcome::Ok)];
    let bad = [
        result("node-2", ProbeOutcome::Ok),
        result("node-3", ProbeOutcome::TransferFailed),
    ];
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    assert!(!log.round(at(0), 1, &ok), "nothing to say");
    assert!(log.round(at(10), 2, &bad));
    assert!(!log.round(at(20), 3, &bad), "within the minute");
    assert!(!log.round(at(69), 4, &bad));
    assert!(log.round(at(70), 5, &bad), "a minute after the last line");
    assert!(log.round(at(80), 6, &ok), "all answered again");
    assert!(!log.round(at(90), 7, &ok));
    assert!(!log.round(at(100), 8, &bad), "still within the minute");
}
