//! HTTP probes against loopback servers that refuse, stall, answer slowly or
//! speak the wrong protocol.

mod common;

use std::time::Duration;

use common::{Behaviour, Recorder, Silent, config, refused_addr};
use netchecker_agent::probe::probe;
use netchecker_agent::transport::tls_connector;
use netchecker_agent::{Agent, Target};

const TIMEOUT: Duration = Duration::from_secs(2);

fn target(url: &str) -> Target {
    url.parse().unwrap()
}

#[tokio::test]
async fn an_answering_server() {
    let rec = Recorder::start().await;
    rec.set(Behaviour {
        body: "pong",
        ..Behaviour::default()
    });
    let url = format!("http://{}/api/v1/ping", rec.addr());
    let r = probe(&target(&url), TIMEOUT, None).await;
    assert_eq!(r.url, url);
    assert_eq!((r.connection_result, r.http_code), (1, 200));
    assert!(r.total >= r.connect && r.connect >= r.dns_lookup, "{r:?}");
    let req = &rec.requests()[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/api/v1/ping")
    );
    assert_eq!(req.header("connection"), Some("close"));
}

#[tokio::test]
async fn a_refused_port() {
    let addr = refused_addr().await;
    let r = probe(&target(&format!("http://{addr}/")), TIMEOUT, None).await;
    assert_eq!((r.connection_result, r.http_code), (0, 0), "{r:?}");
    assert_eq!(
        (
            r.tcp_connection,
            r.connect,
            r.server_processing,
            r.content_transfer
        ),
        (0, 0, 0, 0),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_slow_server_shows_in_server_processing() {
    let rec = Recorder::start().await;
    rec.set(Behaviour {
        head_delay: Duration::from_millis(200),
        body_delay: Duration::from_millis(400),
        body: "slow",
        ..Behaviour::default()
    });
    let r = probe(
        &target(&format!("http://{}/slow", rec.addr())),
        TIMEOUT,
        None,
    )
    .await;
    assert_eq!((r.connection_result, r.http_code), (1, 200));
    // The server waits 200 ms after reading the request, so the head cannot
    // be seen sooner. Where the client notices the head splits the next
    // 400 ms between the two phases: on a loaded machine it notices late,
    // moving part of the body delay into ServerProcessing. Half the body
    // delay is ample room for that; the sum must cover both delays.
    assert!(r.server_processing >= 200, "{r:?}");
    assert!(r.content_transfer >= 200, "{r:?}");
    assert!(r.server_processing + r.content_transfer >= 600, "{r:?}");
    assert!(r.total >= r.server_processing + r.content_transfer, "{r:?}");
}

#[tokio::test]
async fn an_error_status_is_reported_as_is() {
    let rec = Recorder::start().await;
    rec.set(Behaviour {
        status: 503,
        ..Behaviour::default()
    });
    let r = probe(&target(&format!("http://{}/", rec.addr())), TIMEOUT, None).await;
    assert_eq!((r.connection_result, r.http_code), (1, 503));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_after_connecting() {
    let silent = Silent::start().await;
    let timeout = Duration::from_millis(300);
    let r = probe(&target(&format!("http://{}/", silent.addr)), timeout, None).await;
    assert_eq!((r.connection_result, r.http_code), (1, 0), "{r:?}");
    assert_eq!(r.server_processing, 0, "{r:?}");
    assert!(r.total >= 300, "{r:?}");
}

#[tokio::test]
async fn https_to_a_plain_http_port() {
    let rec = Recorder::start().await;
    let tls = tls_connector().unwrap();
    let r = probe(
        &target(&format!("https://{}/", rec.addr())),
        TIMEOUT,
        Some(&tls),
    )
    .await;
    // TCP connected, the TLS handshake failed: no HTTP answer, no `Connect`.
    assert_eq!((r.connection_result, r.http_code), (1, 0), "{r:?}");
    assert_eq!((r.connect, r.server_processing), (0, 0), "{r:?}");
}

#[tokio::test]
async fn https_to_a_silent_port_times_out_in_the_handshake() {
    let silent = Silent::start().await;
    let tls = tls_connector().unwrap();
    let r = probe(
        &target(&format!("https://localhost:{}/", silent.addr.port())),
        Duration::from_millis(300),
        Some(&tls),
    )
    .await;
    assert_eq!(
        (r.connection_result, r.http_code, r.connect),
        (1, 0, 0),
        "{r:?}"
    );
    assert!(r.total >= 300, "{r:?}");
}

#[tokio::test]
async fn failed_probes_never_stop_the_report() {
    let rec = Recorder::start().await;
    let refused = refused_addr().await;
    let probe_urls = format!(
        "-probeurls=https://{plain}/;http://{refused}/x,http://{plain}/ok",
        plain = rec.addr()
    );
    let cfg = config(
        &[
            "-serverendpoint",
            &rec.addr().to_string(),
            "-reportinterval=2",
            &probe_urls,
        ],
        "agent-probes",
        Some("node-1"),
    );
    let agent = Agent::new(cfg).unwrap();
    agent
        .round()
        .await
        .expect("the report is sent whatever the probes say");
    let report = rec
        .wait_for("/api/v1/agents/", 1, Duration::from_secs(1))
        .await[0]
        .json();
    let probes = report["network_probes"].as_array().unwrap();
    let by_url = |u: &str| {
        probes
            .iter()
            .find(|p| p["URL"] == u)
            .unwrap_or_else(|| panic!("no probe of {u}: {probes:#?}"))
    };
    assert_eq!(probes.len(), 4);
    let ping = by_url(&format!("http://{}/api/v1/ping", rec.addr()));
    assert_eq!(
        (ping["ConnectionResult"].as_i64(), ping["HTTPCode"].as_i64()),
        (Some(1), Some(200))
    );
    let tls = by_url(&format!("https://{}/", rec.addr()));
    assert_eq!(
        (tls["ConnectionResult"].as_i64(), tls["HTTPCode"].as_i64()),
        (Some(1), Some(0))
    );
    let refused = by_url(&format!("http://{refused}/x"));
    assert_eq!(
        (
            refused["ConnectionResult"].as_i64(),
            refused["HTTPCode"].as_i64()
        ),
        (Some(0), Some(0))
    );
    let ok = by_url(&format!("http://{}/ok", rec.addr()));
    assert_eq!(ok["HTTPCode"].as_i64(), Some(200));
}

/// A name of both families whose server listens on IPv4 only: the
/// `network_probes` entry is IPv4's answer (the name answers), and each
/// family's own result says IPv6 fails; over one family, no family results.
#[tokio::test]
async fn a_name_of_both_families_is_probed_over_each() {
    use netchecker_agent::probe::probe_resolved;
    use netchecker_wire::IpFamily;
    use std::net::{Ipv6Addr, SocketAddr};

    let rec = Recorder::start().await;
    let port = rec.addr().port();
    // Nothing listens on [::1] at the IPv4 listener's port: refused.
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    let url = format!("http://dual.invalid:{port}/api/v1/ping");
    let t = target(&url);
    let t0 = tokio::time::Instant::now();
    // IPv6 first, as resolvers order a dual-stack name.
    let (entry, families) = probe_resolved(&t, &[v6, rec.addr()], t0, TIMEOUT, None).await;
    assert_eq!(entry.url, url);
    assert_eq!((entry.connection_result, entry.http_code), (1, 200));
    let got: Vec<_> = families
        .iter()
        .map(|f| {
            (
                f.family,
                f.address.as_str(),
                f.probe.connection_result,
                f.probe.http_code,
                f.probe.url.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (IpFamily::Ipv4, "127.0.0.1", 1, 200, url.as_str()),
            (IpFamily::Ipv6, "::1", 0, 0, url.as_str()),
        ]
    );
    // One request reached the server, with the name in its Host header.
    let reqs = rec.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].header("host"),
        Some(&*format!("dual.invalid:{port}"))
    );

    // Both answer: the entry is the first family's (IPv6 here).
    let both = Recorder::start_on(v6).await;
    assert_eq!(both.addr(), v6);
    let (entry, families) = probe_resolved(&t, &[v6, rec.addr()], t0, TIMEOUT, None).await;
    assert_eq!((entry.connection_result, entry.http_code), (1, 200));
    assert!(families.iter().all(|f| f.probe.http_code == 200));
    assert_eq!(both.requests().len(), 1);
    assert_eq!(rec.requests().len(), 2);

    // One family only: as before, one probe and no family results.
    let (entry, families) = probe_resolved(&t, &[rec.addr()], t0, TIMEOUT, None).await;
    assert_eq!((entry.connection_result, entry.http_code), (1, 200));
    assert!(families.is_empty());
}
