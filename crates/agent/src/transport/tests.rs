use super::*;

#[test]
fn targets_parse() {
    let t: Target = "http://netchecker-service:8081/api/v1/ping"
        .parse()
        .unwrap();
    assert_eq!(
        t,
        Target {
            url: "http://netchecker-service:8081/api/v1/ping".into(),
            tls: false,
            host: "netchecker-service".into(),
            port: 8081,
            authority: "netchecker-service:8081".into(),
            path: "/api/v1/ping".into(),
        }
    );
    let t: Target = "https://example.org".parse().unwrap();
    assert_eq!((t.tls, t.port, t.path.as_str()), (true, 443, "/"));
    let t: Target = "http://[::1]:9/x?y=1".parse().unwrap();
    assert_eq!(
        (
            t.host.as_str(),
            t.port,
            t.authority.as_str(),
            t.path.as_str()
        ),
        ("::1", 9, "[::1]:9", "/x?y=1")
    );
    let t: Target = "http://user:pw@h.example/".parse().unwrap();
    assert_eq!(
        (t.host.as_str(), t.authority.as_str(), t.port),
        ("h.example", "h.example", 80)
    );
}

#[test]
fn server_targets_come_from_host_port() {
    let t = Target::server("localhost:8081", "/api/v1/agents/p").unwrap();
    assert_eq!(t.url, "http://localhost:8081/api/v1/agents/p");
    assert_eq!((t.host.as_str(), t.port), ("localhost", 8081));
    let t = Target::server("netchecker-service", "/").unwrap();
    assert_eq!(t.port, 80);
}

#[test]
fn bad_targets() {
    for url in [
        "ftp://x/",
        "x",
        "//x/y",
        "http://",
        "http://a b/",
        "https://:1/",
    ] {
        assert!(url.parse::<Target>().is_err(), "{url}");
    }
}

#[test]
fn tls_connector_builds() {
    tls_connector().unwrap();
}

#[test]
fn phases_name_dns_for_dns() {
    assert!(Phase::Dns.to_string().contains("DNS"));
}
