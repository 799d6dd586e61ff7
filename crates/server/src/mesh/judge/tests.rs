use super::*;
use crate::mesh::pairs::PairState;

/// The wall-clock second the pairs are judged at.
const NOW: i64 = 1_796_000_000;

/// A result received at `received` (fresh for 20 s).
fn state(outcome: PairOutcome, failures: u32, received: i64) -> PairState {
    PairState {
        family: IpFamily::Ipv4,
        outcome,
        failures,
        failing_since: (failures > 0).then(|| "2026-12-01T00:00:00Z".parse().unwrap()),
        round: 10,
        received,
        fresh_until: received + 20,
        rtt_us: 300,
        error: "".into(),
    }
}

fn insert(pairs: &mut Pairs, from: &str, to: &str, s: PairState) {
    pairs.insert(Network::Pod, from, to, s);
}

/// Every node probing every other on the pod network just now, `fail`
/// listing the pairs (from, to, outcome, failures) that fail.
fn full_mesh(nodes: &[&str], fail: &[(&str, &str, PairOutcome, u32)]) -> Pairs {
    let mut pairs = Pairs::new();
    for a in nodes {
        for b in nodes {
            if a != b {
                insert(&mut pairs, a, b, state(PairOutcome::Ok, 0, NOW - 5));
            }
        }
    }
    for (a, b, outcome, n) in fail {
        insert(&mut pairs, a, b, state(*outcome, *n, NOW - 5));
    }
    pairs
}

fn judged<'a>(pairs: &'a Pairs, rings: &'a [Ring; 2]) -> MeshEvaluation<'a> {
    judge(pairs, &[&rings[0], &rings[1]], NOW, 10, 8)
}

const NODES: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

/// n1 and n2 partitioned from each other on `on`, n3 fine.
fn assert_n1_n2_partitioned(e: &MeshEvaluation<'_>, on: &str) {
    assert_eq!(e.verdict("n1"), MeshVerdict::Partition);
    assert_eq!(e.verdict("n2"), MeshVerdict::Partition);
    assert_eq!(e.verdict("n3"), MeshVerdict::Ok);
    assert_eq!(
        e.reason("n1"),
        format!(
            "partitioned from n2 on {on}: probes between them fail while both reach the server"
        )
    );
}

#[test]
fn a_pair_fails_only_after_two_failures_in_a_row() {
    let rings = [Ring::new(NODES), Ring::new([])];
    let pairs = full_mesh(&NODES, &[("n1", "n2", PairOutcome::Unreachable, 1)]);
    let e = judged(&pairs, &rings);
    assert!(e.failing.is_empty());
    assert_eq!(e.verdict("n1"), MeshVerdict::Ok);
    let pairs = full_mesh(&NODES, &[("n1", "n2", PairOutcome::Unreachable, 2)]);
    let e = judged(&pairs, &rings);
    assert_eq!(e.failing.len(), 1);
    assert_eq!(
        (e.failing[0].from, e.failing[0].to, e.failing[0].kind),
        ("n1", "n2", PairKind::Unreachable)
    );
}

#[test]
fn a_partition_between_two_nodes_is_named_as_such() {
    let rings = [Ring::new(NODES), Ring::new([])];
    let pairs = full_mesh(
        &NODES,
        &[
            ("n1", "n2", PairOutcome::Unreachable, 3),
            ("n2", "n1", PairOutcome::Unreachable, 3),
        ],
    );
    let e = judged(&pairs, &rings);
    assert_n1_n2_partitioned(&e, "the pod network");
    assert_eq!(
        e.nodes["n1"][0],
        NodeCounts {
            probed: 4,
            failed: 1,
            probed_by: 4,
            failed_by: 1
        }
    );
}

#[test]
fn a_node_that_reaches_no_peer_has_a_broken_outbound_path_and_its_peers_are_fine() {
    let rings = [Ring::new(NODES), Ring::new([])];
    let fail: Vec<_> = NODES[1..]
        .iter()
        .map(|b| ("n1", *b, PairOutcome::Unreachable, 2))
        .collect();
    let pairs = full_mesh(&NODES, &fail);
    let e = judged(&pairs, &rings);
    assert_eq!(e.verdict("n1"), MeshVerdict::OutboundDown);
    for n in &NODES[1..] {
        assert_eq!(e.verdict(n), MeshVerdict::Ok, "{n}: explained by n1");
    }
    assert_eq!(
        e.reason("n1"),
        "cannot reach 4 of the 4 peers it probed on the pod network (n2, n3, n4, n5): this node's outbound path is broken"
    );
}

#[test]
fn a_node_no_peer_reaches_has_a_broken_inbound_path() {
    let rings = [Ring::new(NODES), Ring::new([])];
    let fail: Vec<_> = NODES
        .iter()
        .filter(|a| **a != "n3")
        .map(|a| (*a, "n3", PairOutcome::Unreachable, 2))
        .collect();
    let pairs = full_mesh(&NODES, &fail);
    let e = judged(&pairs, &rings);
    assert_eq!(e.verdict("n3"), MeshVerdict::InboundDown);
    assert_eq!(e.verdict("n1"), MeshVerdict::Ok);
    assert_eq!(
        e.reason("n3"),
        "4 of the 4 peers that probed it cannot reach it on the pod network (n1, n2, n4, n5): this node's inbound path is broken"
    );
}

#[test]
fn a_connect_that_works_with_a_transfer_that_fails_is_an_mtu_problem() {
    let rings = [Ring::new(NODES), Ring::new([])];
    let pairs = full_mesh(
        &NODES,
        &[
            ("n1", "n3", PairOutcome::Mtu, 2),
            ("n3", "n1", PairOutcome::Mtu, 2),
        ],
    );
    let e = judged(&pairs, &rings);
    assert_eq!(e.failing[0].kind, PairKind::Mtu);
    assert_eq!(e.verdict("n1"), MeshVerdict::Mtu);
    assert!(
        e.reason("n3").contains("MTU blackhole"),
        "{}",
        e.reason("n3")
    );
}

#[test]
fn pairs_off_the_ring_or_too_old_do_not_count() {
    let rings = [Ring::new(["n1", "n2", "n3"]), Ring::new([])];
    let mut pairs = full_mesh(&NODES, &[("n1", "n4", PairOutcome::Unreachable, 5)]);
    insert(
        &mut pairs,
        "n1",
        "n2",
        state(PairOutcome::Unreachable, 5, NOW - 21),
    );
    let e = judged(&pairs, &rings);
    assert!(e.failing.is_empty(), "{:?}", e.failing);
    assert_eq!(e.nodes.len(), 3);
    assert_eq!(e.members, [3, 0]);
    assert_eq!(e.cover_rounds, [Some(1), None]);
}

#[test]
fn a_node_slow_to_every_peer_is_slow_not_down() {
    let rings = [Ring::new(NODES), Ring::new([])];
    let slow: Vec<(&str, &str, PairOutcome, u32)> = NODES[1..]
        .iter()
        .map(|to| ("n1", *to, PairOutcome::Slow, 2))
        .collect();
    let pairs = full_mesh(&NODES, &slow);
    let e = judged(&pairs, &rings);
    assert_eq!(e.failing.len(), 4, "the slow pairs are still listed");
    assert!(e.failing.iter().all(|p| p.kind == PairKind::Slow));
    assert_eq!(e.verdict("n1"), MeshVerdict::Slow);
    assert_eq!(e.nodes["n1"][0].failed, 0, "slow is not a failure to reach");
    // The same pairs unreachable: the node's outbound path is down.
    let down: Vec<_> = slow
        .iter()
        .map(|(a, b, _, n)| (*a, *b, PairOutcome::Unreachable, *n))
        .collect();
    let pairs = full_mesh(&NODES, &down);
    let e = judged(&pairs, &rings);
    assert_eq!(e.verdict("n1"), MeshVerdict::OutboundDown);
}

#[test]
fn a_node_cut_off_both_ways_is_named_alone_and_its_peers_are_fine() {
    // n1 sends nothing to its peers, so it neither reaches them nor
    // answers their probes: both of its paths fail.
    let rings = [Ring::new(NODES), Ring::new([])];
    let fail: Vec<_> = NODES[1..]
        .iter()
        .flat_map(|b| {
            [
                ("n1", *b, PairOutcome::Unreachable, 2),
                (*b, "n1", PairOutcome::Unreachable, 2),
            ]
        })
        .collect();
    let pairs = full_mesh(&NODES, &fail);
    let e = judged(&pairs, &rings);
    assert_eq!(e.failing.len(), 8);
    assert_eq!(e.verdict("n1"), MeshVerdict::OutboundDown);
    for n in &NODES[1..] {
        assert_eq!(e.verdict(n), MeshVerdict::Ok, "{n}: explained by n1");
    }
    let into = e.failing.iter().find(|p| p.to == "n1").unwrap();
    assert!(
        e.pair_reason(into).contains("n1's inbound path is broken"),
        "{}",
        e.pair_reason(into)
    );
    assert!(
        e.reason("n1")
            .contains("and 4 of the 4 peers that probed it cannot reach it"),
        "{}",
        e.reason("n1")
    );
}

/// Every node probing every other over both families on the pod network,
/// `fail` listing the pairs (from, to) that fail over IPv6.
fn dual_mesh(nodes: &[&str], fail_v6: &[(&str, &str)]) -> Pairs {
    let mut pairs = full_mesh(nodes, &[]);
    for a in nodes {
        for b in nodes {
            if a != b {
                let failures = u32::from(fail_v6.contains(&(a, b))) * 3;
                let outcome = if failures > 0 {
                    PairOutcome::Unreachable
                } else {
                    PairOutcome::Ok
                };
                let s = PairState {
                    family: IpFamily::Ipv6,
                    ..state(outcome, failures, NOW - 5)
                };
                pairs.insert(Network::Pod, a, b, s);
            }
        }
    }
    pairs
}

#[test]
fn a_node_whose_ipv6_is_broken_is_named_with_that_family() {
    let rings = [Ring::new(NODES), Ring::new([])];
    let fail: Vec<_> = ["n1", "n3", "n4", "n5"].map(|b| ("n2", b)).to_vec();
    let pairs = dual_mesh(&NODES, &fail);
    let e = judged(&pairs, &rings);
    // Half of n2's probes fail (every IPv6 one): per family, all of them.
    assert_eq!(e.verdict("n2"), MeshVerdict::OutboundDown);
    assert_eq!(
        e.reason("n2"),
        "cannot reach 4 of the 4 peers it probed on the pod network over IPv6 (n1, n3, n4, n5): this node's outbound path is broken"
    );
    for n in ["n1", "n3", "n4", "n5"] {
        assert_eq!(e.verdict(n), MeshVerdict::Ok, "{n}: explained by n2");
    }
    assert!(e.failing.iter().all(|p| p.family == IpFamily::Ipv6));
    assert_eq!(e.nodes["n2"][0].probed, 8, "both families counted");
    assert_eq!(e.nodes["n2"][0].failed, 4);
}

#[test]
fn a_partition_over_ipv6_only_is_named_with_that_family() {
    let rings = [Ring::new(NODES), Ring::new([])];
    let pairs = dual_mesh(&NODES, &[("n1", "n2"), ("n2", "n1")]);
    let e = judged(&pairs, &rings);
    assert_n1_n2_partitioned(&e, "the pod network over IPv6");
    assert_eq!(e.failing.len(), 2);
    let p = &e.failing[0];
    assert_eq!((p.from, p.to, p.family), ("n1", "n2", IpFamily::Ipv6));
    assert_eq!(
        e.pair_reason(p),
        "n1 cannot reach n2 on the pod network over IPv6 (3 probes in a row failed) while both reach the server: the path between these two nodes is blocked"
    );
}
