//! The collectors of a report, each a plain function testable on its own.
//!
//! A collector never fails the report: what cannot be read is logged and
//! reported as empty (or zero), and the report still goes out.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// Host or interface name mapped to addresses, as in the report.
pub type AddressMap = BTreeMap<String, Vec<String>>;

/// Every interface with its IPv4 and IPv6 addresses in CIDR form
/// (`127.0.0.1/8`, `::1/128`), from getifaddrs. Interfaces without an
/// address are not listed.
pub fn interfaces() -> AddressMap {
    match if_addrs::get_if_addrs() {
        Ok(list) => {
            let mut map = AddressMap::new();
            for iface in list {
                let (ip, prefix): (IpAddr, u8) = match &iface.addr {
                    if_addrs::IfAddr::V4(a) => (a.ip.into(), a.prefixlen),
                    if_addrs::IfAddr::V6(a) => (a.ip.into(), a.prefixlen),
                };
                map.entry(iface.name)
                    .or_default()
                    .push(format!("{ip}/{prefix}"));
            }
            map
        }
        Err(e) => {
            tracing::warn!("cannot list network interfaces: {e}");
            AddressMap::new()
        }
    }
}

/// `{host: [addresses]}` as the system resolver sees `host`; the list is
/// empty when the lookup fails (the failure is logged at debug level: the
/// report itself shows it).
pub async fn nslookup(host: &str) -> AddressMap {
    let addrs = match crate::transport::resolve(host, 0).await {
        Ok(addrs) => {
            let mut ips: Vec<String> = Vec::with_capacity(addrs.len());
            for a in addrs {
                let ip = a.ip().to_string();
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
            ips
        }
        Err(e) => {
            tracing::debug!("{e}");
            Vec::new()
        }
    };
    AddressMap::from([(host.to_owned(), addrs)])
}

/// Host uptime in whole seconds from a `/proc/uptime`-style file; 0 (and a
/// warning) when it cannot be read.
pub fn uptime(path: &Path) -> u64 {
    match std::fs::read_to_string(path) {
        Ok(text) => match parse_uptime(&text) {
            Some(secs) => secs,
            None => {
                tracing::warn!("cannot parse uptime from {}: {text:?}", path.display());
                0
            }
        },
        Err(e) => {
            tracing::warn!("cannot read uptime from {}: {e}", path.display());
            0
        }
    }
}

/// The first field of `/proc/uptime` ("12345.67 54321.00"), truncated.
pub fn parse_uptime(text: &str) -> Option<u64> {
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then_some(secs as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rejected by glibc before any query is built (an empty label), so the
    /// lookup fails without sending a packet anywhere.
    const UNRESOLVABLE: &str = "no-such-host..invalid";

    #[test]
    fn loopback_is_listed_in_cidr_form() {
        let ips = interfaces();
        let lo = ips.get("lo").expect("lo is listed");
        assert!(lo.contains(&"127.0.0.1/8".to_owned()), "{lo:?}");
        for addrs in ips.values() {
            for a in addrs {
                let (ip, prefix) = a.split_once('/').expect("CIDR form");
                ip.parse::<IpAddr>().unwrap();
                prefix.parse::<u8>().unwrap();
            }
        }
    }

    /// Every IPv6 address the kernel lists, link-local ones included, is in
    /// the report (the original's reports carry `fe80::.../64` too).
    #[test]
    fn ipv6_addresses_match_the_kernel_list() {
        let Ok(table) = std::fs::read_to_string("/proc/net/if_inet6") else {
            eprintln!("no /proc/net/if_inet6 (IPv6 disabled?): nothing to compare");
            return;
        };
        let ips = interfaces();
        let mut compared = 0;
        for line in table.lines() {
            // address(32 hex) index prefix scope flags name
            let f: Vec<&str> = line.split_whitespace().collect();
            let [hex, _, prefix, _, _, name] = f[..] else {
                continue;
            };
            let bits = u128::from_str_radix(hex, 16).unwrap();
            let prefix = u8::from_str_radix(prefix, 16).unwrap();
            let want = format!("{}/{prefix}", std::net::Ipv6Addr::from(bits));
            let got = ips.get(name).cloned().unwrap_or_default();
            assert!(got.contains(&want), "{want} of {name} missing: {ips:?}");
            compared += 1;
        }
        assert!(compared > 0 || table.is_empty());
    }

    #[tokio::test]
    async fn localhost_resolves() {
        let map = nslookup("localhost").await;
        assert_eq!(map.len(), 1);
        let addrs = &map["localhost"];
        assert!(
            addrs.iter().any(|a| a == "127.0.0.1" || a == "::1"),
            "{addrs:?}"
        );
    }

    #[tokio::test]
    async fn an_etc_hosts_entry_resolves_to_its_address() {
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
        // The first name (other than localhost) whose only entry is one
        // loopback address, so that the answer is known exactly.
        let entries: Vec<(IpAddr, &str)> = hosts
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default())
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let ip: IpAddr = words.next()?.parse().ok()?;
                Some(words.map(move |name| (ip, name)))
            })
            .flatten()
            .collect();
        let pick = entries.iter().find(|(ip, name)| {
            ip.is_loopback()
                && *name != "localhost"
                && entries.iter().filter(|(_, n)| n == name).count() == 1
        });
        let Some((ip, name)) = pick else {
            panic!("/etc/hosts has no loopback entry besides localhost:\n{hosts}");
        };
        let map = nslookup(name).await;
        assert_eq!(map[*name], vec![ip.to_string()], "{name}");
    }

    #[tokio::test]
    async fn an_unresolvable_name_gives_an_empty_list() {
        let map = nslookup(UNRESOLVABLE).await;
        assert_eq!(map[UNRESOLVABLE], Vec::<String>::new());
    }

    #[tokio::test]
    async fn an_ip_literal_resolves_to_itself() {
        let map = nslookup("127.0.0.1").await;
        assert_eq!(map["127.0.0.1"], ["127.0.0.1"]);
    }

    #[test]
    fn uptime_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uptime");
        std::fs::write(&path, "350735.47 234388.90\n").unwrap();
        assert_eq!(uptime(&path), 350735);
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(uptime(&path), 0);
        assert_eq!(uptime(&dir.path().join("missing")), 0);
    }

    #[test]
    fn uptime_parsing() {
        assert_eq!(parse_uptime("12.99 1.0"), Some(12));
        assert_eq!(parse_uptime("0.00 0.00"), Some(0));
        assert_eq!(parse_uptime(""), None);
        assert_eq!(parse_uptime("-1 0"), None);
    }

    #[test]
    fn real_uptime_is_read() {
        if Path::new("/proc/uptime").exists() {
            assert!(uptime(Path::new("/proc/uptime")) > 0);
        }
    }
}
