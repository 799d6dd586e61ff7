//! Dual-stack: the server listens on IPv6 and IPv4 at once, notes the
//! family each report came over (an IPv4-mapped peer is IPv4), and names
//! the family whose reports stopped while the other's go on.

use std::net::SocketAddr;
use std::time::Duration;

use netchecker_server::auth::Verdict;
use netchecker_server::{App, Config, PodView, Policy, run_on};
use netchecker_wire::{IpFamily, NodeVerdict};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod fixture;

const POD: &str = "netchecker-agent-a";
const HOST: &str = "netchecker-agent-hostnet-a";

/// The Go agent's report from node `a`, at a 1 s interval.
fn report(name: &str) -> Vec<u8> {
    fixture::go_report(name)
        .replace("\"report_interval\":15", "\"report_interval\":1")
        .into_bytes()
}

fn app() -> App {
    let settings = netchecker_server::Settings {
        policy: Policy {
            startup_grace: Duration::ZERO,
            ..Policy::default()
        },
        ..netchecker_server::Settings::default()
    };
    App::new(settings, PodView::fixed([HOST.to_owned(), POD.to_owned()])).unwrap()
}

fn ingest(app: &App, name: &str, at: Instant, family: IpFamily) {
    app.ingest_report_over(
        name,
        Verdict::Unchecked,
        &report(name),
        at,
        false,
        Some(family),
    )
    .unwrap();
}

fn node(status: &netchecker_wire::Status) -> &netchecker_wire::NodeStatus {
    status.nodes.iter().find(|n| !n.node.is_empty()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_family_whose_reports_stop_is_named_while_the_other_goes_on() {
    let app = app();
    let t0 = Instant::now();
    // Both agents report over both families every second for 5 s, then
    // the pod-network agent's IPv6 reports stop; IPv4 goes on.
    for s in 0..10 {
        let at = t0 + Duration::from_secs(s);
        for f in IpFamily::ALL {
            ingest(&app, HOST, at, f);
            if s < 5 || f == IpFamily::Ipv4 {
                ingest(&app, POD, at, f);
            }
        }
    }
    let now = t0 + Duration::from_millis(9_500);
    let status = app.status(now).unwrap();
    let n = node(&status);
    assert_eq!(n.verdict, NodeVerdict::FamilyDown, "{n:#?}");
    assert_eq!(
        n.reason,
        "IPv6 pod network down: pod-network agent netchecker-agent-a reports over IPv4, \
         but its last report over IPv6 came 5 s ago (interval 1 s)"
    );
    let pod = n.agents.iter().find(|a| a.name == POD).unwrap();
    let ages = pod.families.expect("reported over both");
    assert_eq!((ages.ipv4, ages.ipv6), (Some(0.5), Some(5.5)));
    assert!(status.summary.healthy, "the v1 check counts any report");
    assert_eq!(app.check(now).unwrap().absent.len(), 0);

    // The host-network agent loses IPv6 too: both networks.
    for s in 10..14 {
        let at = t0 + Duration::from_secs(s);
        ingest(&app, HOST, at, IpFamily::Ipv4);
        ingest(&app, POD, at, IpFamily::Ipv4);
    }
    let status = app.status(t0 + Duration::from_millis(13_500)).unwrap();
    assert!(
        node(&status)
            .reason
            .starts_with("IPv6 down on both networks: "),
        "{}",
        node(&status).reason
    );

    // IPv6 comes back: healthy within the window.
    for f in IpFamily::ALL {
        ingest(&app, HOST, t0 + Duration::from_secs(14), f);
        ingest(&app, POD, t0 + Duration::from_secs(14), f);
    }
    let status = app.status(t0 + Duration::from_millis(14_500)).unwrap();
    assert_eq!(node(&status).verdict, NodeVerdict::Healthy);
}

#[tokio::test(start_paused = true)]
async fn an_agent_seen_over_one_family_only_is_judged_as_before() {
    let app = app();
    let t0 = Instant::now();
    for s in 0..10 {
        let at = t0 + Duration::from_secs(s);
        ingest(&app, HOST, at, IpFamily::Ipv4);
        ingest(&app, POD, at, IpFamily::Ipv6);
    }
    let status = app.status(t0 + Duration::from_millis(9_500)).unwrap();
    assert_eq!(node(&status).verdict, NodeVerdict::Healthy);
    assert!(node(&status).agents.iter().all(|a| a.families.is_none()));
}

/// The report of `name` with its probe of the server answered over IPv4
/// and, when `v6_ok` is false, failing over IPv6 (`family_probes`, as our
/// agent sends them when the name resolves to both families).
fn probing(name: &str, v6_ok: bool) -> Vec<u8> {
    let mut r: Value = serde_json::from_slice(&report(name)).unwrap();
    let entry = r["network_probes"][0].clone();
    let url = entry["URL"].as_str().unwrap().to_owned();
    let mut v6 = entry.clone();
    if !v6_ok {
        v6 = serde_json::json!({"URL": url, "ConnectionResult": 0, "HTTPCode": 0,
            "Total": 1000, "ContentTransfer": 0, "TCPConnection": 0, "DNSLookup": 1,
            "Connect": 0, "ServerProcessing": 0});
    }
    r["family_probes"] = serde_json::json!([
        {"family": "ipv4", "address": "198.18.0.10", "probe": entry},
        {"family": "ipv6", "address": "2001:2::10", "probe": v6},
    ]);
    r.to_string().into_bytes()
}

/// One report whose probe of the server fails over IPv6 while IPv4
/// answers names the family at once (the reports themselves arrive over
/// IPv4 only, so only the probe can tell); the v1 check and the stored
/// report are as before; the next report with both answering heals it.
#[tokio::test(start_paused = true)]
async fn a_probe_failing_over_one_family_names_that_family() {
    let app = app();
    let t0 = Instant::now();
    let over = |name, body: &[u8]| {
        app.ingest_report_over(
            name,
            Verdict::Unchecked,
            body,
            t0,
            false,
            Some(IpFamily::Ipv4),
        )
        .unwrap();
    };
    over(HOST, &probing(HOST, true));
    over(POD, &probing(POD, false));
    let status = app.status(t0).unwrap();
    let n = node(&status);
    assert_eq!(n.verdict, NodeVerdict::FamilyDown, "{n:#?}");
    let url = "http://netchecker-service:8081/api/v1/ping";
    assert_eq!(
        n.reason,
        format!(
            "IPv6 pod network down: pod-network agent netchecker-agent-a's probe of {url} \
             fails over IPv6 (2001:2::10) and answers over IPv4"
        )
    );
    let check = app.check(t0).unwrap();
    assert_eq!(
        check.message,
        netchecker_wire::healthy_message(2),
        "v1 untouched"
    );
    let stored = serde_json::to_string(&app.report(POD).unwrap()).unwrap();
    assert!(stored.contains("network_probes"), "{stored}");
    assert!(!stored.contains("family_probes"), "{stored}");

    // Failing over both families is a failing probe, not a family's fault.
    let mut both_down: Value = serde_json::from_slice(&probing(POD, false)).unwrap();
    for path in ["/network_probes/0", "/family_probes/0/probe"] {
        let probe = both_down.pointer_mut(path).unwrap();
        probe["ConnectionResult"] = 0.into();
        probe["HTTPCode"] = 0.into();
    }
    let both_down = both_down.to_string();
    over(POD, both_down.as_bytes());
    assert_eq!(
        node(&app.status(t0).unwrap()).verdict,
        NodeVerdict::ProbeFailures
    );

    over(POD, &probing(POD, true));
    assert_eq!(node(&app.status(t0).unwrap()).verdict, NodeVerdict::Healthy);
}

/// Over real sockets: a server bound to `[::]` answers both families,
/// and the family of each report is the peer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_listens_on_both_families_and_tells_them_apart() {
    let listener = match TcpListener::bind("[::]:0").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("SKIPPED: no IPv6 on this machine ({e})");
            return;
        }
    };
    let port = listener.local_addr().unwrap().port();
    let config = Config::try_parse_args([
        "netchecker-server",
        "--kube=false",
        "--expected-agents",
        POD,
    ])
    .unwrap();
    let shutdown = CancellationToken::new();
    let pods = PodView::fixed([POD.to_owned()]);
    let task = tokio::spawn(run_on(config, listener, pods, None, shutdown.clone()));
    let client = reqwest::Client::new();
    let v4: SocketAddr = ([127, 0, 0, 1], port).into();
    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    for addr in [v4, v6] {
        let r = client
            .post(format!("http://{addr}/api/v1/agents/{POD}"))
            .body(report(POD))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "over {addr}");
    }
    let text = client
        .get(format!("http://{v6}/api/v2/status"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let status: Value = serde_json::from_str(&text).unwrap();
    let agent = &status["nodes"][0]["agents"][0];
    assert_eq!(agent["name"], POD);
    let ages = &agent["families"];
    assert!(
        ages["ipv4"].as_f64().unwrap() < 5.0 && ages["ipv6"].as_f64().unwrap() < 5.0,
        "{agent:#}"
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
