use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn one_endpoint_is_a_list_of_one() {
    assert_eq!(
        split_endpoints("netchecker-service:8081"),
        ["netchecker-service:8081"]
    );
    assert_eq!(split_endpoints("[fd00::1]:8081"), ["[fd00::1]:8081"]);
}

#[test]
fn endpoints_split_on_commas_trimmed_in_order_without_blanks_or_repeats() {
    assert_eq!(
        split_endpoints(" b:8081 ,a:8081,,b:8081, [fd00::1]:8081 ,"),
        ["b:8081", "a:8081", "[fd00::1]:8081"]
    );
    assert!(split_endpoints(" , ,").is_empty());
}

#[test]
fn picked_addresses_are_unique_and_sorted_whatever_the_resolver_order() {
    let (picked, ignored) = pick([
        (0, addr("10.0.0.9:8081")),
        (0, addr("10.0.0.2:8081")),
        (0, addr("10.0.0.9:8081")),
        // The same replica named by the second endpoint stays the first's.
        (1, addr("10.0.0.2:8081")),
        (1, addr("[fd00::2]:8081")),
        // An IPv4-mapped address is the IPv4 address.
        (1, addr("[::ffff:10.0.0.9]:8081")),
        (1, addr("10.0.0.2:9000")),
    ]);
    assert_eq!(
        picked,
        [
            (0, addr("10.0.0.2:8081")),
            (1, addr("10.0.0.2:9000")),
            (0, addr("10.0.0.9:8081")),
            (1, addr("[fd00::2]:8081")),
        ]
    );
    assert!(ignored.is_empty());
}

#[test]
fn a_huge_answer_is_cut_to_the_bound_the_same_way_every_time() {
    // 300 addresses, as a hostile DNS answer could carry, in two orders.
    let all: Vec<(usize, SocketAddr)> = (0..300u32)
        .map(|i| {
            let ip = Ipv4Addr::from(0x0a00_0000 + i * 7919 % 65_536);
            (0, SocketAddr::new(IpAddr::V4(ip), 8081))
        })
        .collect();
    let unique = all
        .iter()
        .map(|(_, a)| *a)
        .collect::<std::collections::BTreeSet<_>>();
    let (picked, ignored) = pick(all.iter().copied());
    let (again, _) = pick(all.iter().rev().copied());
    assert_eq!(picked.len(), MAX_TARGETS);
    assert_eq!(picked, again, "the same addresses whatever the order");
    assert_eq!(picked.len() + ignored.len(), unique.len());
    let lowest: Vec<SocketAddr> = unique.iter().copied().take(MAX_TARGETS).collect();
    assert_eq!(
        picked.iter().map(|(_, a)| *a).collect::<Vec<_>>(),
        lowest,
        "the lowest addresses are kept"
    );
}

#[test]
fn exactly_the_bound_is_not_cut() {
    let all = (1..=MAX_TARGETS as u16).map(|i| {
        (
            0,
            SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i)), 80),
        )
    });
    let (picked, ignored) = pick(all);
    assert_eq!((picked.len(), ignored.len()), (MAX_TARGETS, 0));
}

#[test]
fn the_tally_counts_each_place_and_forgets_the_longest_unseen() {
    let tally = Tally::default();
    tally.record("10.0.0.1:8081", true);
    tally.record("10.0.0.1:8081", false);
    tally.record("10.0.0.2:8081", true);
    let counts = tally.counts();
    assert_eq!(counts["10.0.0.1:8081"], TargetCounts { sent: 1, failed: 1 });
    assert_eq!(counts["10.0.0.2:8081"], TargetCounts { sent: 1, failed: 0 });
    assert_eq!(
        summary(&counts),
        "10.0.0.1:8081 sent 1 failed 1, 10.0.0.2:8081 sent 1 failed 0"
    );

    // Replicas replaced over and over: the map stays bounded, and the
    // place still reported to is kept.
    for i in 0..200 {
        tally.record(&format!("10.1.{}.{}:8081", i / 250, i % 250), true);
        tally.record("10.0.0.1:8081", true);
    }
    let counts = tally.counts();
    assert_eq!(counts.len(), MAX_COUNTED);
    assert_eq!(counts["10.0.0.1:8081"].sent, 201);
    assert!(!counts.contains_key("10.0.0.2:8081"));
}
