use std::collections::HashMap;
use std::net::IpAddr;

use super::*;
use crate::mesh::assign::Ring;
use crate::mesh::roster::Member;

fn result(node: &str, outcome: ProbeOutcome, total_us: u64) -> PeerResult {
    PeerResult {
        node: node.into(),
        address: "198.18.0.9".into(),
        outcome,
        total_us,
        error: if outcome == ProbeOutcome::Ok {
            String::new()
        } else {
            "no answer".into()
        },
        ..Default::default()
    }
}

fn report(round: u64, results: Vec<PeerResult>) -> MeshReport {
    MeshReport {
        port: 8083,
        round,
        results,
        ..Default::default()
    }
}

/// A roster of `nodes` on the pod network.
fn roster(nodes: &[&str]) -> Arc<Roster> {
    let members: HashMap<Box<str>, Member> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let member = Member::new([format!("198.18.0.{}", i + 1).parse().unwrap()], 8083);
            ((*n).into(), member)
        })
        .collect();
    Arc::new(Roster {
        rings: [Ring::new(nodes.iter().copied()), Ring::default()],
        members: [members, HashMap::new()],
        places: Vec::new(),
    })
}

fn settings(peers: usize) -> MeshSettings {
    MeshSettings {
        peers,
        round: Duration::from_secs(10),
        ..MeshSettings::default()
    }
}

const T: i64 = 1_796_000_000;

fn at(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(T + secs).unwrap()
}

/// Agent of node `a` reports `results` for `round` at `secs`, then is handed
/// its peers for `next`.
fn exchange(
    m: &MeshStore,
    s: &MeshSettings,
    round: u64,
    results: Vec<PeerResult>,
    secs: i64,
    next: u64,
) -> (Vec<Recorded>, MeshRound) {
    let r = report(round, results);
    let received = Received {
        name: "agent-a",
        node: "a",
        network: Network::Pod,
        report: &r,
        interval: Duration::from_secs(10),
    };
    let recorded = m.record(&received, s, at(secs));
    let answer = m.assign("agent-a", "a", Network::Pod, next, s);
    (recorded, answer)
}

fn state<'m>(p: &'m Pairs, from: &str, to: &str) -> &'m PairState {
    p.get(Network::Pod, from, to, IpFamily::Ipv4).expect("kept")
}

/// A roster of dual-stack `nodes` on the pod network, but for `v4_only`.
fn dual_roster(nodes: &[&str], v4_only: &str) -> Arc<Roster> {
    let members: HashMap<Box<str>, Member> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let v4: IpAddr = format!("198.18.0.{}", i + 1).parse().unwrap();
            let v6: IpAddr = format!("2001:2::{}", i + 1).parse().unwrap();
            let addresses = if *n == v4_only {
                vec![v4]
            } else {
                vec![v6, v4]
            };
            ((*n).into(), Member::new(addresses, 8083))
        })
        .collect();
    Arc::new(Roster {
        rings: [Ring::new(nodes.iter().copied()), Ring::default()],
        members: [members, HashMap::new()],
        places: Vec::new(),
    })
}

#[test]
fn a_dual_stack_pair_is_probed_and_kept_over_each_family() {
    let m = MeshStore::default();
    m.set_roster(dual_roster(&["a", "b", "c"], "c"));
    let s = settings(8);
    let (_, answer) = exchange(&m, &s, 0, vec![], 0, 1);
    let mut handed: Vec<(&str, &str)> = answer
        .peers
        .iter()
        .map(|p| (p.node.as_str(), p.address.as_str()))
        .collect();
    handed.sort_unstable();
    assert_eq!(
        handed,
        [("b", "198.18.0.2"), ("b", "2001:2::2"), ("c", "198.18.0.3")],
        "b over both families, c (IPv4 only) over IPv4"
    );
    let at = |node: &str, address: &str, outcome| PeerResult {
        address: address.into(),
        ..result(node, outcome, 10)
    };
    // b answers over IPv4 and not over IPv6; a result over a family c was
    // not handed is dropped.
    let (rec, next) = exchange(
        &m,
        &s,
        1,
        vec![
            at("b", "198.18.0.2", ProbeOutcome::Ok),
            at("b", "2001:2::2", ProbeOutcome::ConnectFailed),
            at("c", "2001:2::3", ProbeOutcome::ConnectFailed),
            at("c", "198.18.0.3", ProbeOutcome::Ok),
        ],
        10,
        2,
    );
    assert_eq!(rec.len(), 3);
    m.with_pairs(|p| {
        let get = |to, family| p.get(Network::Pod, "a", to, family).map(|s| s.failures);
        assert_eq!(get("b", IpFamily::Ipv4), Some(0));
        assert_eq!(get("b", IpFamily::Ipv6), Some(1));
        assert_eq!(get("c", IpFamily::Ipv4), Some(0));
        assert_eq!(get("c", IpFamily::Ipv6), None);
    });
    // The failing family is handed again, once.
    let b: Vec<&str> = next
        .peers
        .iter()
        .filter(|p| p.node == "b")
        .map(|p| p.address.as_str())
        .collect();
    assert_eq!(b, ["198.18.0.2", "2001:2::2"]);
}

#[test]
fn only_results_for_the_peers_handed_out_for_that_round_are_kept() {
    let m = MeshStore::default();
    m.set_roster(roster(&["a", "b", "c", "d"]));
    let s = settings(8);
    // First report: nothing was handed out yet, nothing is kept.
    let (rec, answer) = exchange(&m, &s, 1, vec![result("b", ProbeOutcome::Ok, 10)], 0, 1);
    assert!(rec.is_empty());
    let mut handed: Vec<&str> = answer.peers.iter().map(|p| p.node.as_str()).collect();
    handed.sort_unstable();
    assert_eq!(handed, ["b", "c", "d"], "with K >= N-1 every other node");
    assert!(
        answer
            .peers
            .iter()
            .all(|p| p.port == 8083 && p.address.starts_with("198.18.0."))
    );
    assert_eq!(answer.timeout_ms, 2000);
    // A result for a node not handed out, a repeat, and the agent's own
    // node are dropped; a result labelled with another round is dropped.
    let (rec, _) = exchange(
        &m,
        &s,
        1,
        vec![
            result("b", ProbeOutcome::Ok, 10),
            result("b", ProbeOutcome::ConnectFailed, 0),
            result("zz", ProbeOutcome::ConnectFailed, 0),
            result("a", ProbeOutcome::ConnectFailed, 0),
        ],
        10,
        2,
    );
    assert_eq!(rec.len(), 1);
    assert_eq!(
        (&*rec[0].peer, rec[0].failed, rec[0].rtt_us),
        ("b", false, Some(10))
    );
    let (rec, _) = exchange(&m, &s, 1, vec![result("c", ProbeOutcome::Ok, 10)], 20, 3);
    assert!(
        rec.is_empty(),
        "handed out for round 2, reported as round 1"
    );
    assert_eq!(m.pair_count(), 1);
}

#[test]
fn failures_in_a_row_are_counted_and_failing_peers_are_probed_again() {
    let m = MeshStore::default();
    let nodes: Vec<String> = (0..40).map(|i| format!("n{i:02}")).collect();
    let mut names: Vec<&str> = nodes.iter().map(String::as_str).collect();
    names.push("a");
    m.set_roster(roster(&names));
    let s = settings(4);
    let (_, first) = exchange(&m, &s, 0, vec![], 0, 1);
    assert_eq!(first.peers.len(), 4);
    let victim = first.peers[3].node.clone();
    let results = |answer: &MeshRound, outcome: ProbeOutcome| {
        answer
            .peers
            .iter()
            .map(|p| {
                result(
                    &p.node,
                    if p.node == victim {
                        outcome
                    } else {
                        ProbeOutcome::Ok
                    },
                    100,
                )
            })
            .collect::<Vec<_>>()
    };
    let (_, second) = exchange(
        &m,
        &s,
        1,
        results(&first, ProbeOutcome::TransferFailed),
        10,
        2,
    );
    // Round 2 rotates the offsets away from the victim, yet it is probed
    // again: it failed.
    assert_eq!(second.peers.len(), 5);
    assert_eq!(second.peers[4].node, victim);
    let ring_peers = m.roster().ring(Network::Pod).peers("a", 2, 4).len();
    assert_eq!(ring_peers, 4);
    let (_, third) = exchange(
        &m,
        &s,
        2,
        results(&second, ProbeOutcome::TransferFailed),
        20,
        3,
    );
    m.with_pairs(|p| {
        let v = state(p, "a", &victim);
        assert_eq!(
            (v.failures, v.outcome, v.failing_since),
            (2, PairOutcome::Mtu, Some(at(10)))
        );
        assert_eq!(&*v.error, "no answer");
    });
    assert!(third.peers.iter().any(|p| p.node == victim));
    // Recovery clears the run; slow is a failure of its own kind.
    // (Then handed round 1's peers again, the victim among them.)
    exchange(&m, &s, 3, results(&third, ProbeOutcome::Ok), 30, 1);
    m.with_pairs(|p| {
        let v = state(p, "a", &victim);
        assert_eq!((v.failures, v.failing_since, v.rtt_us), (0, None, 100));
    });
    let slow = vec![result(&victim, ProbeOutcome::Ok, 1_500_000)];
    let (_, fourth) = exchange(&m, &s, 1, slow, 40, 4);
    m.with_pairs(|p| assert_eq!(state(p, "a", &victim).outcome, PairOutcome::Slow));
    assert!(
        fourth.peers.iter().any(|p| p.node == victim),
        "a slow pair is re-probed too"
    );
}

#[test]
fn at_most_max_peers_are_handed_out() {
    let m = MeshStore::default();
    let nodes: Vec<String> = (0..200).map(|i| format!("n{i:03}")).collect();
    let mut names: Vec<&str> = nodes.iter().map(String::as_str).collect();
    names.push("a");
    m.set_roster(roster(&names));
    let s = settings(MAX_PEERS);
    let (_, first) = exchange(&m, &s, 0, vec![], 0, 1);
    assert_eq!(first.peers.len(), MAX_PEERS);
    // Every one fails: next round's own K plus the failing ones, capped.
    let failed = first
        .peers
        .iter()
        .map(|p| result(&p.node, ProbeOutcome::ConnectFailed, 0))
        .collect();
    let (rec, second) = exchange(&m, &s, 1, failed, 10, 2);
    assert_eq!(rec.len(), MAX_PEERS);
    assert_eq!(second.peers.len(), MAX_PEERS);
}

#[test]
fn a_node_off_the_roster_is_handed_nothing_and_stale_pairs_go() {
    let m = MeshStore::default();
    m.set_roster(roster(&["a", "b", "c"]));
    let s = settings(8);
    let (_, first) = exchange(&m, &s, 0, vec![], 0, 1);
    let ok = first
        .peers
        .iter()
        .map(|p| result(&p.node, ProbeOutcome::Ok, 5))
        .collect();
    exchange(&m, &s, 1, ok, 10, 2);
    assert_eq!(m.pair_count(), 2);
    // Fresh for two rounds (20 s) or three intervals (30 s), whichever is longer.
    m.prune(T + 40, &[]);
    assert_eq!(m.pair_count(), 2);
    m.prune(T + 41, &[]);
    assert_eq!(m.pair_count(), 0);
    exchange(&m, &s, 2, vec![], 50, 2);
    m.set_roster(roster(&["b", "c"]));
    let answer = m.assign("agent-a", "a", Network::Pod, 3, &s);
    assert!(answer.peers.is_empty());
    m.prune(T + 50, &["agent-a".into()]);
    assert!(m.with_agents(|a| a.is_empty()));
}

#[test]
fn rounds_follow_the_wall_clock() {
    let s = settings(0);
    assert_eq!(
        (s.round_at(0), s.round_at(9), s.round_at(10), s.round_at(-5)),
        (0, 0, 1, 0)
    );
    assert!(!s.enabled());
    assert_eq!(s.fresh_for(Duration::from_secs(1)), Duration::from_secs(20));
    assert_eq!(
        s.fresh_for(Duration::from_secs(60)),
        Duration::from_secs(180)
    );
}
