//! Identifiers and addresses the fake hands out: UIDs, and default pod and
//! host IPs from the benchmarking range 198.18.0.0/15 (IPv6: 2001:2::/48),
//! which never reach a real network.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use jiff::Timestamp;

static UID_COUNTER: AtomicU64 = AtomicU64::new(1);

/// A fresh UID in the usual 8-4-4-4-12 form, unique within this process.
pub(crate) fn new_uid() -> String {
    let n = UID_COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = Timestamp::now().as_nanosecond() as u64;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (t >> 32) as u32,
        (t >> 16) as u16,
        (t & 0xfff) as u16,
        (n >> 48) & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

/// Five characters for a `generateName`, from the alphabet the real API
/// uses (no vowels, no look-alike digits), unique enough for a test.
pub(crate) fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let n = UID_COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = Timestamp::now().as_nanosecond() as u64;
    let mut x = (n ^ t.rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..5)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize];
            x /= ALPHABET.len() as u64;
            char::from(c)
        })
        .collect()
}

/// A UID that is always the same for the same `kind` and `name`: for objects
/// the fake names in tokens but does not store (service accounts, nodes
/// that were never added).
pub(crate) fn stable_uid(kind: &str, name: &str) -> String {
    // FNV-1a, twice with different offsets, for 128 bits.
    let hash = |offset: u64| {
        let mut h = offset;
        for b in kind.bytes().chain([0]).chain(name.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    };
    let (a, b) = (hash(0xcbf2_9ce4_8422_2325), hash(0x6c62_272e_07bb_0142));
    format!(
        "{:08x}-{:04x}-5{:03x}-8{:03x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        a & 0xfff,
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// Host IPs by node name, handed out in order from 198.18.0.1.
static HOST_IPS: LazyLock<Mutex<HashMap<String, Ipv4Addr>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Pod IPs, handed out in order from 198.19.0.1.
static POD_IPS: AtomicU32 = AtomicU32::new(0);

/// `198.X.Y.Z` for the `index`-th address of `base` (198.18 or 198.19),
/// skipping `.0` and `.255` in the last octet so addresses look ordinary.
fn nth_address(base: u8, index: u32) -> Ipv4Addr {
    let index = index % (256 * 254);
    let third = (index / 254) as u8;
    let fourth = (index % 254) as u8 + 1;
    Ipv4Addr::new(198, base, third, fourth)
}

/// The default host IP of node `node_name` (its `InternalIP`, and the
/// `hostIP` of its pods): from 198.18.0.0/16, the same for the same name
/// throughout the process, different for different names (up to 65,024).
pub fn default_host_ip(node_name: &str) -> Ipv4Addr {
    let mut ips = HOST_IPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let next = ips.len() as u32;
    *ips.entry(node_name.to_owned())
        .or_insert_with(|| nth_address(18, next))
}

/// A fresh default pod IP from 198.19.0.0/16 (in order, wrapping after
/// 65,024 pods).
pub fn next_pod_ip() -> Ipv4Addr {
    nth_address(19, POD_IPS.fetch_add(1, Ordering::Relaxed))
}

/// The IPv6 twin of a default IPv4 address, for dual-stack objects:
/// `2001:2::` with the IPv4 address in the last 32 bits
/// (198.18.0.1 becomes `2001:2::c612:1`).
pub fn ipv6_twin(v4: Ipv4Addr) -> Ipv6Addr {
    Ipv6Addr::from((0x2001_0002_u128 << 96) | u128::from(u32::from(v4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_unique_or_stable_as_asked() {
        assert_ne!(new_uid(), new_uid());
        assert_eq!(stable_uid("sa", "ns/a"), stable_uid("sa", "ns/a"));
        assert_ne!(stable_uid("sa", "ns/a"), stable_uid("sa", "ns/b"));
        assert_ne!(stable_uid("sa", "x"), stable_uid("node", "x"));
        assert_eq!(stable_uid("node", "x").len(), 36);
    }

    #[test]
    fn addresses_come_from_the_benchmarking_range() {
        let a = default_host_ip("ids-test-node-a");
        assert_eq!(a, default_host_ip("ids-test-node-a"));
        assert_ne!(a, default_host_ip("ids-test-node-b"));
        assert_eq!(&a.octets()[..2], &[198, 18]);
        let p = next_pod_ip();
        assert_eq!(&p.octets()[..2], &[198, 19]);
        assert_ne!(p, next_pod_ip());
        assert_eq!(nth_address(18, 0), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(nth_address(18, 254), Ipv4Addr::new(198, 18, 1, 1));
        assert_eq!(
            ipv6_twin(Ipv4Addr::new(198, 18, 0, 1)),
            "2001:2::c612:1".parse::<Ipv6Addr>().unwrap()
        );
        // Inside 2001:2::/48.
        assert_eq!(&ipv6_twin(p).segments()[..3], &[0x2001, 2, 0]);
    }
}
