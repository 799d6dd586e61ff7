use std::collections::{HashMap, HashSet};

use super::*;

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("node-{i:05}")).collect()
}

fn ring(n: usize) -> Ring {
    let names = names(n);
    Ring::new(names.iter().map(String::as_str))
}

#[test]
fn offsets_are_distinct_start_with_the_successor_and_stay_on_the_ring() {
    for n in [2, 3, 4, 10, 101, 5000] {
        for k in [1, 2, 3, 8, 32] {
            for round in [0, 1, 7, 1_000_003] {
                let o = offsets(n, k, round);
                assert_eq!(o.len(), k.min(n - 1), "n {n} k {k}");
                assert_eq!(o[0], 1);
                assert!(o.iter().all(|&d| (1..n).contains(&d)));
                assert_eq!(o.iter().collect::<HashSet<_>>().len(), o.len());
            }
        }
    }
    assert!(offsets(1, 8, 0).is_empty());
    assert!(offsets(5, 0, 0).is_empty());
}

#[test]
fn every_node_probes_and_is_probed_by_exactly_k_peers() {
    for (n, k) in [(2, 8), (3, 2), (10, 3), (100, 8), (1000, 32), (5000, 8)] {
        let r = ring(n);
        for round in [0, 1, 2, 999] {
            let mut probed_by: HashMap<&str, usize> = HashMap::new();
            for node in r.nodes() {
                let peers = r.peers(node, round, k);
                assert_eq!(peers.len(), k.min(n - 1), "n {n} k {k}");
                assert!(!peers.contains(&node), "never itself");
                assert_eq!(peers.iter().collect::<HashSet<_>>().len(), peers.len());
                for p in peers {
                    *probed_by.entry(p).or_default() += 1;
                }
            }
            assert_eq!(probed_by.len(), n);
            assert!(
                probed_by.values().all(|&c| c == k.min(n - 1)),
                "n {n} k {k}"
            );
        }
    }
}

/// Every ordered pair within `cover_rounds`, from any starting round.
fn covered(n: usize, k: usize, start: u64) -> bool {
    let r = ring(n);
    let rounds = cover_rounds(n, k).unwrap();
    let mut seen = vec![false; n * n];
    let index: HashMap<&str, usize> = r.nodes().enumerate().map(|(i, s)| (s, i)).collect();
    for round in start..start + rounds {
        for a in r.nodes() {
            for b in r.peers(a, round, k) {
                seen[index[a] * n + index[b]] = true;
            }
        }
    }
    (0..n).all(|a| (0..n).all(|b| a == b || seen[a * n + b]))
}

#[test]
fn every_ordered_pair_is_probed_within_the_cover_time() {
    for (n, k) in [
        (3, 2),
        (4, 2),
        (10, 2),
        (10, 3),
        (101, 8),
        (500, 32),
        (1000, 8),
    ] {
        for start in [0, 5, 123_457] {
            assert!(covered(n, k, start), "n {n} k {k} from round {start}");
        }
    }
}

#[test]
#[ignore = "minutes in debug builds; run with --ignored (make reliability runs it)"]
fn every_ordered_pair_is_probed_within_the_cover_time_at_5000_nodes() {
    for k in [8, 32] {
        assert!(covered(5000, k, 42), "k {k}");
    }
}

#[test]
fn cover_times_for_the_documented_sizes() {
    // doc/mesh.md's table.
    assert_eq!(cover_rounds(100, 8), Some(14));
    assert_eq!(cover_rounds(1000, 8), Some(143));
    assert_eq!(cover_rounds(5000, 8), Some(714));
    assert_eq!(cover_rounds(1000, 32), Some(33));
    assert_eq!(cover_rounds(5000, 32), Some(162));
    assert_eq!(cover_rounds(9, 8), Some(1));
    assert_eq!(cover_rounds(10, 1), None);
    assert_eq!(cover_rounds(2, 1), Some(1));
}

#[test]
fn the_ring_does_not_depend_on_the_order_nodes_came_in() {
    let mut names = names(50);
    let a = Ring::new(names.iter().map(String::as_str));
    names.reverse();
    let b = Ring::new(names.iter().map(String::as_str).chain(["node-00001"]));
    assert_eq!(a, b);
    assert_eq!(
        a.position("node-00007").map(|i| &*a.nodes[i].1),
        Some("node-00007")
    );
    assert_eq!(a.position("node-99999"), None);
    assert!(a.peers("node-99999", 0, 3).is_empty());
}

#[test]
fn a_joining_or_leaving_node_leaves_the_rest_of_the_ring_in_place() {
    let base = names(200);
    let before = Ring::new(base.iter().map(String::as_str));
    let joined = Ring::new(base.iter().map(String::as_str).chain(["node-new"]));
    // The others keep their relative order: the new node is inserted.
    let without: Vec<&str> = joined.nodes().filter(|n| *n != "node-new").collect();
    assert_eq!(without, before.nodes().collect::<Vec<_>>());
    // On the successor ring (K = 1) only its predecessor's peer changes.
    let changed: Vec<&str> = before
        .nodes()
        .filter(|n| before.peers(n, 0, 1) != joined.peers(n, 0, 1))
        .collect();
    let pos = joined.position("node-new").unwrap();
    let predecessor = &*joined.nodes[(pos + joined.len() - 1) % joined.len()].1;
    assert_eq!(changed, [predecessor]);
    assert_eq!(joined.peers(predecessor, 0, 1), ["node-new"]);
    // Leaving is the same in reverse.
    let left = Ring::new(
        base.iter()
            .map(String::as_str)
            .filter(|n| *n != "node-00042"),
    );
    let changed: Vec<&str> = left
        .nodes()
        .filter(|n| before.peers(n, 0, 1) != left.peers(n, 0, 1))
        .collect();
    assert_eq!(changed.len(), 1, "only the leaver's predecessor");
    assert_eq!(before.peers(changed[0], 0, 1), ["node-00042"]);
}
