use netchecker_wire::mesh::Peer;

use super::prober::peer_addr;
use super::*;

fn peer(address: &str, port: u16) -> Peer {
    Peer {
        node: "node-2".into(),
        address: address.into(),
        port,
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
