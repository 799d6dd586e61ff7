//! Bounds on everything a report may carry, and what is cut from it before
//! it is stored or shown. A real agent's report is far inside every bound
//! (doc/security.md gives the sizes); a report outside one is refused with a
//! 400 that names the limit, and nothing is stored.
//!
//! With these bounds a stored report, and the metric series made from it,
//! have a fixed upper size whatever a client sends.

use std::borrow::Cow;

use netchecker_wire::AgentReport;

/// Longest report interval accepted, in seconds (an hour). A longer one
/// would keep a dead agent's last report "fresh" for as long.
pub const MAX_REPORT_INTERVAL: u64 = 3600;
/// Node and pod names are Kubernetes names.
pub const MAX_NAME: usize = 253;
/// Interfaces in `ips` (a node with hundreds of pods has a veth per pod).
pub const MAX_INTERFACES: usize = 512;
/// Addresses in `ips`, over all interfaces.
pub const MAX_ADDRESSES: usize = 2048;
/// One interface name (Linux allows 15 characters).
pub const MAX_INTERFACE_NAME: usize = 64;
/// One address, as `address/prefix` (the longest IPv6 form is 49).
pub const MAX_ADDRESS: usize = 64;
/// Names looked up in `nslookup`.
pub const MAX_LOOKUPS: usize = 16;
/// Addresses in `nslookup`, over all names.
pub const MAX_LOOKUP_ADDRESSES: usize = 256;
/// Entries in `network_probes` (the agent's ping plus `-probeurls`).
pub const MAX_PROBES: usize = 16;
/// One probe URL.
pub const MAX_URL: usize = 2048;

/// Addresses an agent may announce for the mesh.
pub const MAX_MESH_ADDRESSES: usize = 8;
/// The agent's words for a failed mesh probe (longer ones are cut, not
/// refused).
pub const MAX_MESH_ERROR: usize = 200;

/// Why a report is outside the bounds: a sentence naming the limit.
pub type Exceeded = String;

fn at_most(what: &str, len: usize, max: usize) -> Result<(), Exceeded> {
    if len > max {
        return Err(format!("{what} has {len}, at most {max} allowed"));
    }
    Ok(())
}

/// Check `report`, received for agent `name`, against every bound.
pub fn check(name: &str, report: &AgentReport) -> Result<(), Exceeded> {
    if report.report_interval == 0 {
        return Err("report_interval must be a positive number of seconds".into());
    }
    if report.report_interval > MAX_REPORT_INTERVAL {
        return Err(format!(
            "report_interval {} s is above the limit of {MAX_REPORT_INTERVAL} s",
            report.report_interval
        ));
    }
    at_most("nodename (characters)", report.nodename.len(), MAX_NAME)?;
    at_most("podname (characters)", report.podname.len(), MAX_NAME)?;
    if !report.podname.is_empty() && report.podname != name {
        return Err(format!(
            "podname {:?} in the body does not match the agent name {name:?} in the URL",
            report.podname
        ));
    }
    at_most("ips (interfaces)", report.ips.len(), MAX_INTERFACES)?;
    let mut addresses = 0;
    for (interface, list) in &report.ips {
        at_most(
            "an interface name (characters)",
            interface.len(),
            MAX_INTERFACE_NAME,
        )?;
        addresses += list.len();
        for a in list {
            at_most("an address in ips (characters)", a.len(), MAX_ADDRESS)?;
        }
    }
    at_most("ips (addresses)", addresses, MAX_ADDRESSES)?;
    at_most("nslookup (names)", report.nslookup.len(), MAX_LOOKUPS)?;
    let mut addresses = 0;
    for (host, list) in &report.nslookup {
        at_most("a looked-up name (characters)", host.len(), MAX_NAME)?;
        addresses += list.len();
        for a in list {
            at_most("an address in nslookup (characters)", a.len(), MAX_ADDRESS)?;
        }
    }
    at_most("nslookup (addresses)", addresses, MAX_LOOKUP_ADDRESSES)?;
    at_most(
        "network_probes (entries)",
        report.network_probes.len(),
        MAX_PROBES,
    )?;
    for p in &report.network_probes {
        at_most("a probe URL (characters)", p.url.len(), MAX_URL)?;
    }
    check_family_probes(&report.family_probes)?;
    if let Some(mesh) = &report.mesh {
        check_mesh(mesh)?;
    }
    Ok(())
}

/// `family_probes`: two per probe at most, each at an address of its
/// family.
fn check_family_probes(probes: &[netchecker_wire::FamilyProbe]) -> Result<(), Exceeded> {
    at_most("family_probes (entries)", probes.len(), 2 * MAX_PROBES)?;
    for p in probes {
        at_most(
            "a family probe URL (characters)",
            p.probe.url.len(),
            MAX_URL,
        )?;
        let address = p.address.parse::<std::net::IpAddr>().map_err(|_| {
            format!(
                "family_probes holds address {:?}, not an IP address",
                p.address.chars().take(MAX_ADDRESS).collect::<String>()
            )
        })?;
        if netchecker_wire::IpFamily::of(address) != p.family {
            return Err(format!(
                "family_probes holds address {address} under {}",
                p.family.name()
            ));
        }
    }
    Ok(())
}

/// The mesh part: a port, a few addresses, one result per assigned peer.
fn check_mesh(mesh: &netchecker_wire::mesh::MeshReport) -> Result<(), Exceeded> {
    use netchecker_wire::mesh::MAX_RESULTS;
    if mesh.port == 0 {
        return Err("mesh.port must be a port number (1-65535)".into());
    }
    at_most(
        "mesh.addresses (entries)",
        mesh.addresses.len(),
        MAX_MESH_ADDRESSES,
    )?;
    for a in &mesh.addresses {
        if a.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "mesh.addresses holds {:?}, not an IP address",
                a.chars().take(MAX_ADDRESS).collect::<String>()
            ));
        }
    }
    at_most("mesh.results (entries)", mesh.results.len(), MAX_RESULTS)?;
    for r in &mesh.results {
        at_most("a mesh result's node (characters)", r.node.len(), MAX_NAME)?;
        at_most(
            "a mesh result's address (characters)",
            r.address.len(),
            MAX_ADDRESS,
        )?;
        at_most(
            "a mesh result's error (characters)",
            r.error.len(),
            4 * MAX_MESH_ERROR,
        )?;
    }
    Ok(())
}

/// A URL as it may be shown: without credentials (`user:password@`), query
/// string or fragment, which may hold secrets. Text that is not a URL is
/// cut at its first `?` or `#` all the same.
pub fn redact_url(url: &str) -> Cow<'_, str> {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let (scheme, rest) = match url[..end].split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, &url[..end]),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    if end == url.len() && host.len() == authority.len() {
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(end);
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    out.push_str(host);
    out.push_str(path);
    Cow::Owned(out)
}

/// Cut what may hold secrets out of every probe URL of `report`.
pub fn redact(report: &mut AgentReport) {
    let family = report.family_probes.iter_mut().map(|f| &mut f.probe);
    for p in report.network_probes.iter_mut().chain(family) {
        if let Cow::Owned(clean) = redact_url(&p.url) {
            p.url = clean;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(json: serde_json::Value) -> AgentReport {
        let mut base =
            serde_json::json!({"report_interval": 15, "nodename": "node-1", "podname": "a"});
        base.as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn a_go_agent_report_is_within_every_bound() {
        let go: AgentReport = serde_json::from_str(include_str!(
            "../../wire/tests/fixtures/go-agent-report.json"
        ))
        .unwrap();
        assert_eq!(check("netchecker-agent-x7k2p", &go), Ok(()));
    }

    #[test]
    fn each_bound_refuses_with_a_sentence_naming_it() {
        let many = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>();
        let cases = [
            (serde_json::json!({"report_interval": 0}), "positive"),
            (
                serde_json::json!({"report_interval": 3601}),
                "limit of 3600 s",
            ),
            (
                serde_json::json!({"report_interval": 1_000_000_000u64}),
                "limit of 3600 s",
            ),
            (serde_json::json!({"nodename": "n".repeat(254)}), "nodename"),
            (serde_json::json!({"podname": "b"}), "does not match"),
            (
                serde_json::json!({"ips": many(513, &|i| format!("if{i}")).into_iter().map(|k| (k, serde_json::json!(["10.0.0.1/8"]))).collect::<serde_json::Map<_, _>>()}),
                "at most 512",
            ),
            (
                serde_json::json!({"ips": {"eth0": many(2049, &|i| format!("10.0.{}.{}/32", i / 256, i % 256))}}),
                "ips (addresses) has 2049",
            ),
            (
                serde_json::json!({"ips": {"e".repeat(65): ["10.0.0.1/8"]}}),
                "interface name",
            ),
            (
                serde_json::json!({"ips": {"eth0": ["1".repeat(65)]}}),
                "an address in ips",
            ),
            (
                serde_json::json!({"nslookup": many(17, &|i| format!("h{i}")).into_iter().map(|k| (k, serde_json::json!([]))).collect::<serde_json::Map<_, _>>()}),
                "nslookup (names)",
            ),
            (
                serde_json::json!({"nslookup": {"s": many(257, &|i| format!("10.0.{}.{}", i / 256, i % 256))}}),
                "nslookup (addresses)",
            ),
            (
                serde_json::json!({"network_probes": many(17, &|i| format!("http://h/{i}")).into_iter().map(|u| serde_json::json!({"URL": u})).collect::<Vec<_>>()}),
                "at most 16",
            ),
            (
                serde_json::json!({"network_probes": [{"URL": format!("http://h/{}", "p".repeat(2048))}]}),
                "a probe URL",
            ),
            (
                serde_json::json!({"family_probes": many(33, &|_| "198.18.0.1".to_owned()).into_iter().map(|a| serde_json::json!({"family": "ipv4", "address": a, "probe": {"URL": "http://h/"}})).collect::<Vec<_>>()}),
                "family_probes (entries) has 33, at most 32",
            ),
            (
                serde_json::json!({"family_probes": [{"family": "ipv6", "address": "evil.example", "probe": {"URL": "http://h/"}}]}),
                "not an IP address",
            ),
            (
                serde_json::json!({"family_probes": [{"family": "ipv6", "address": "198.18.0.1", "probe": {"URL": "http://h/"}}]}),
                "address 198.18.0.1 under IPv6",
            ),
            (
                serde_json::json!({"family_probes": [{"family": "ipv4", "address": "198.18.0.1", "probe": {"URL": format!("http://h/{}", "p".repeat(2048))}}]}),
                "a family probe URL",
            ),
            (serde_json::json!({"mesh": {"port": 0}}), "mesh.port"),
            (
                serde_json::json!({"mesh": {"port": 1, "addresses": many(9, &|i| format!("198.18.0.{i}"))}}),
                "mesh.addresses (entries) has 9",
            ),
            (
                serde_json::json!({"mesh": {"port": 1, "addresses": ["evil.example"]}}),
                "not an IP address",
            ),
            (
                serde_json::json!({"mesh": {"port": 1, "results": many(netchecker_wire::mesh::MAX_RESULTS + 1, &|i| format!("n{i}")).into_iter().map(|n| serde_json::json!({"node": n, "address": "a", "outcome": "ok"})).collect::<Vec<_>>()}}),
                "mesh.results (entries) has 129",
            ),
            (
                serde_json::json!({"mesh": {"port": 1, "results": [{"node": "n".repeat(254), "address": "a", "outcome": "ok"}]}}),
                "mesh result's node",
            ),
        ];
        for (json, want) in cases {
            let err = check("a", &report(json.clone())).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
        // An empty podname (older agents) is no mismatch.
        assert_eq!(
            check("a", &report(serde_json::json!({"podname": ""}))),
            Ok(())
        );
        assert_eq!(
            check("a", &report(serde_json::json!({"report_interval": 3600}))),
            Ok(())
        );
        let mesh = serde_json::json!({"mesh": {"port": 8083, "addresses": ["198.18.0.1", "2001:2::1"], "round": 3,
            "results": [{"node": "n2", "address": "198.18.0.2", "outcome": "transfer_failed", "error": "e".repeat(800)}]}});
        assert_eq!(check("a", &report(mesh)), Ok(()));
    }

    #[test]
    fn credentials_queries_and_fragments_are_cut_from_urls() {
        for (url, want) in [
            (
                "http://user:s3cret@10.0.0.1:8081/api/v1/ping?token=abc123",
                "http://10.0.0.1:8081/api/v1/ping",
            ),
            ("https://u@h/p#frag", "https://h/p"),
            ("http://h:1/a/b?x=1&y=2", "http://h:1/a/b"),
            ("http://a@b@host/", "http://host/"),
            ("http://h/ok", "http://h/ok"),
            ("http://h", "http://h"),
            ("not a url?secret", "not a url"),
            ("user:pw@host/x", "host/x"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
        assert!(matches!(redact_url("http://h/ok"), Cow::Borrowed(_)));
        let mut r = report(serde_json::json!({
            "network_probes": [{"URL": "http://u:p@h/x?t=1"}, {"URL": "http://h/y"}],
            "family_probes": [{"family": "ipv6", "address": "2001:2::1",
                               "probe": {"URL": "http://u:p@h/x?t=1"}}]}));
        redact(&mut r);
        let urls: Vec<_> = r.network_probes.iter().map(|p| p.url.as_str()).collect();
        assert_eq!(urls, ["http://h/x", "http://h/y"]);
        assert_eq!(r.family_probes[0].probe.url, "http://h/x");
    }
}
