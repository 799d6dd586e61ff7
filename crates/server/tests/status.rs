//! `GET /api/v2/status`, the status page route and the node verdict series,
//! in-process with paused time so ages and verdicts are exact.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use netchecker_server::Policy;
use netchecker_server::app::Settings;
use netchecker_server::{App, PodView, router};
use serde_json::{Value, json};

mod fixture;
mod oneshot;
use oneshot::call;

const GO_REPORT: &str = include_str!("../../wire/tests/fixtures/go-agent-report.json");

fn settings() -> Settings {
    Settings {
        policy: Policy {
            outdated_factor: 2.0,
            startup_grace: Duration::from_secs(30),
            report_ttl: None,
            lossy_ratio: 0.05,
        },
        ..Settings::default()
    }
}

/// A Go-agent report from `node` with the given interval, lookups and probes.
fn report(node: &str, interval: u64, nslookup: Value, probes: Value) -> String {
    let mut r: Value = serde_json::from_str(GO_REPORT).unwrap();
    r["nodename"] = json!(node);
    r["report_interval"] = json!(interval);
    r["nslookup"] = nslookup;
    r["network_probes"] = probes;
    // The agent's clock runs 2 s ahead of the server's.
    let ahead = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2);
    r["hostdate"] = json!(ahead.to_string());
    r.to_string()
}

fn ok_probe() -> Value {
    json!([{"URL": "http://netchecker-service:8081/api/v1/ping", "ConnectionResult": 1,
            "HTTPCode": 200, "Total": 3, "ContentTransfer": 0, "TCPConnection": 1,
            "DNSLookup": 1, "Connect": 1, "ServerProcessing": 1}])
}

fn dns_ok() -> Value {
    json!({"netchecker-service": ["10.233.0.10"]})
}

fn healthy(node: &str, interval: u64) -> String {
    report(node, interval, dns_ok(), ok_probe())
}

async fn post(r: &Router, pod: &str, body: String) {
    let body = fixture::as_agent(&body, pod);
    let a = call(r, "POST", &format!("/api/v1/agents/{pod}"), body).await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&a.body)
    );
}

async fn status(r: &Router) -> Value {
    let a = call(r, "GET", "/api/v2/status", String::new()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), "application/json");
    a.json()
}

fn node<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == name)
        .unwrap_or_else(|| panic!("node {name} missing from {status:#}"))
}

/// Five nodes, each in a different condition, plus an agent that never
/// reported; the server has been up longer than its start-up grace.
async fn cluster() -> (App, Router) {
    let app = App::new(
        settings(),
        PodView::fixed(["netchecker-agent-never".to_string()]),
    )
    .unwrap();
    let r = router(app.clone());
    tokio::time::advance(Duration::from_secs(31)).await;
    // n2's pod agent and both of n3's agents report every second, then stop.
    post(&r, "netchecker-agent-n2", healthy("n2", 1)).await;
    post(&r, "netchecker-agent-n3", healthy("n3", 1)).await;
    post(&r, "netchecker-agent-hostnet-n3", healthy("n3", 1)).await;
    tokio::time::advance(Duration::from_secs(5)).await;
    for n in ["n1", "n2"] {
        post(&r, &format!("netchecker-agent-hostnet-{n}"), healthy(n, 15)).await;
    }
    post(&r, "netchecker-agent-n1", healthy("n1", 15)).await;
    let no_dns = json!({"netchecker-service": []});
    post(
        &r,
        "netchecker-agent-n4",
        report("n4", 15, no_dns, ok_probe()),
    )
    .await;
    post(&r, "netchecker-agent-hostnet-n4", healthy("n4", 15)).await;
    let failing = json!([{"URL": "http://10.0.0.1:8081/api/v1/ping", "ConnectionResult": 0,
        "HTTPCode": 0, "Total": 5000, "ContentTransfer": 0, "TCPConnection": 0,
        "DNSLookup": 0, "Connect": 0, "ServerProcessing": 0}]);
    post(
        &r,
        "netchecker-agent-n5",
        report("n5", 15, dns_ok(), failing),
    )
    .await;
    post(&r, "netchecker-agent-hostnet-n5", healthy("n5", 15)).await;
    tokio::time::advance(Duration::from_millis(1500)).await;
    (app, r)
}

#[tokio::test(start_paused = true)]
async fn every_node_gets_its_verdict_and_reason() {
    let (_app, r) = cluster().await;
    let s = status(&r).await;
    let verdicts: Vec<(&str, &str)> = s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].as_str().unwrap(), n["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("", "unreachable"),
            ("n1", "healthy"),
            ("n2", "pod_network_down"),
            ("n3", "unreachable"),
            ("n4", "dns_failure"),
            ("n5", "probe_failures"),
        ],
        "sorted by node name"
    );
    assert_eq!(
        node(&s, "n2")["reason"],
        "host-network agent reports on time but pod-network agent netchecker-agent-n2 is \
         outdated (last report 6 s ago, interval 1 s): check the pod network (CNI) on this node"
    );
    assert_eq!(
        node(&s, "n4")["reason"],
        "pod-network agent netchecker-agent-n4 could not resolve netchecker-service: \
         check cluster DNS from this node"
    );
    assert_eq!(
        node(&s, "n5")["reason"],
        "failing probes: http://10.0.0.1:8081/api/v1/ping from netchecker-agent-n5"
    );
    assert_eq!(
        node(&s, "")["reason"],
        "its only agent: pod-network agent netchecker-agent-never is absent \
         (no report since the server started); the node is down or cannot reach the server"
    );

    let summary = &s["summary"];
    assert_eq!(summary["healthy"], false);
    assert_eq!(summary["nodes"], 6);
    assert_eq!(summary["agents"], 11);
    assert_eq!(
        summary["verdicts"],
        json!({"healthy": 1, "pending": 0, "pod_network_down": 1, "host_network_down": 0,
               "unreachable": 2, "agents_late": 0, "dns_failure": 1, "probe_failures": 1,
               "mesh_outbound_down": 0, "mesh_inbound_down": 0, "mesh_partition": 0,
               "mesh_mtu": 0, "mesh_slow": 0, "family_down": 0, "lossy": 0, "unknown": 0})
    );
    assert_eq!(
        summary["agent_states"],
        json!({"ok": 7, "absent": 1, "outdated": 3, "pending": 0, "unexpected": 0})
    );
    assert_eq!(summary["in_startup_grace"], false);
    assert_eq!(
        summary["pod_view"],
        json!({"source": "static", "synced": true, "stale": false, "age_seconds": 0.0})
    );
    let generated: jiff::Timestamp = s["generated_at"].as_str().unwrap().parse().unwrap();
    assert!((jiff::Timestamp::now() - generated).get_seconds().abs() < 60);
}

#[tokio::test(start_paused = true)]
async fn each_agent_is_described_in_full() {
    let (_app, r) = cluster().await;
    let s = status(&r).await;
    let n2 = node(&s, "n2");
    assert_eq!(
        n2["agents"][0],
        json!({
            "name": "netchecker-agent-hostnet-n2", "namespace": null, "node": "n2",
            "kind": "host_network", "state": "ok",
            "last_report_age_seconds": 1.5, "report_interval_seconds": 15,
            "clock_skew_seconds": n2["agents"][0]["clock_skew_seconds"].clone(),
            "dns": {"ok": true, "lookups": {"netchecker-service": ["10.233.0.10"]}},
            "probes": [{"url": "http://netchecker-service:8081/api/v1/ping", "ok": true,
                        "connection_result": 1, "http_code": 200, "total_ms": 3}],
            "auth": null
        })
    );
    let skew = n2["agents"][0]["clock_skew_seconds"].as_f64().unwrap();
    assert!(
        (1.5..=2.5).contains(&skew),
        "hostdate minus the server's receive time: {skew}"
    );
    let pod = &n2["agents"][1];
    assert_eq!(pod["name"], "netchecker-agent-n2");
    assert_eq!(pod["kind"], "pod_network");
    assert_eq!(pod["state"], "outdated");
    assert_eq!(pod["last_report_age_seconds"], 6.5);

    let never = &node(&s, "")["agents"][0];
    assert_eq!(
        never,
        &json!({
            "name": "netchecker-agent-never", "namespace": null, "node": "", "kind": "pod_network",
            "state": "absent", "last_report_age_seconds": null, "report_interval_seconds": null,
            "clock_skew_seconds": null, "dns": null, "probes": [], "auth": null
        })
    );
    let n5_pod = &node(&s, "n5")["agents"][1];
    assert_eq!(n5_pod["probes"][0]["ok"], false);
    assert_eq!(node(&s, "n4")["agents"][1]["dns"]["ok"], false);
}

/// The answer's DNS answers and probes are rendered when a report is kept:
/// from the report as redacted, escaped as any other string.
#[tokio::test(start_paused = true)]
async fn probe_urls_are_shown_redacted_and_names_escaped() {
    let app = App::new(settings(), PodView::fixed(Vec::<String>::new())).unwrap();
    let r = router(app);
    let probes = json!([{"URL": "https://ops:hunter2@svc:8443/ping?token=hunter2#x",
        "ConnectionResult": 1, "HTTPCode": 204, "Total": 7}]);
    let lookups = json!({"svc\"</script>\n": ["10.0.0.1"]});
    post(
        &r,
        "netchecker-agent-a",
        report("n1", 15, lookups.clone(), probes),
    )
    .await;
    let text = call(&r, "GET", "/api/v2/status", String::new())
        .await
        .text();
    assert!(!text.contains("hunter2"), "{text}");
    let s = status(&r).await;
    let agent = &node(&s, "n1")["agents"][0];
    assert_eq!(agent["dns"]["lookups"], lookups);
    assert_eq!(
        agent["probes"],
        json!([{"url": "https://svc:8443/ping", "ok": true, "connection_result": 1,
                "http_code": 204, "total_ms": 7}])
    );
}

#[tokio::test(start_paused = true)]
async fn agents_not_yet_reported_after_a_restart_are_pending() {
    let app = App::new(
        settings(),
        PodView::fixed(["netchecker-agent-a".to_string()]),
    )
    .unwrap();
    let r = router(app);
    post(&r, "netchecker-agent-hostnet-a", healthy("n1", 15)).await;
    let s = status(&r).await;
    assert_eq!(s["summary"]["in_startup_grace"], true);
    assert_eq!(
        s["summary"]["healthy"], true,
        "pending does not count against it"
    );
    assert_eq!(node(&s, "")["verdict"], "pending");
    assert_eq!(
        node(&s, "")["reason"],
        "waiting for the first report of netchecker-agent-a since the server restarted"
    );
    assert_eq!(node(&s, "n1")["verdict"], "healthy");
    // The v1 answer stays literal meanwhile.
    let v1 = call(&r, "GET", "/api/v1/connectivity_check", String::new()).await;
    assert_eq!(v1.status, StatusCode::BAD_REQUEST);
    assert_eq!(v1.json()["Absent"], json!(["netchecker-agent-a"]));
}

#[tokio::test(start_paused = true)]
async fn the_v1_check_says_how_current_the_pod_view_is_in_headers_only() {
    let (_app, r) = cluster().await;
    let a = call(&r, "GET", "/api/v1/connectivity_check", String::new()).await;
    assert_eq!(a.header("netchecker-pod-view"), "current");
    assert_eq!(a.header("netchecker-pod-view-age"), "0");
    let keys: Vec<String> = a.json().as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        ["Absent", "Message", "Outdated"],
        "v1 body unchanged (keys sorted)"
    );
}

#[tokio::test(start_paused = true)]
async fn node_verdict_series_follow_changes_and_leave_with_the_node() {
    let (app, r) = cluster().await;
    app.tick(tokio::time::Instant::now());
    let metrics = |r: Router| async move {
        String::from_utf8(call(&r, "GET", "/metrics", String::new()).await.body).unwrap()
    };
    let text = metrics(r.clone()).await;
    assert!(text.contains(r#"netchecker_node_verdict{node="n2",verdict="pod_network_down"} 1"#));
    assert!(text.contains(r#"netchecker_node_verdict{node="n1",verdict="healthy"} 1"#));
    assert!(text.contains(r#"netchecker_nodes{verdict="unreachable"} 2"#));

    // n2's pod agent comes back: its old series goes, the new one appears.
    post(&r, "netchecker-agent-n2", healthy("n2", 15)).await;
    app.tick(tokio::time::Instant::now());
    let text = metrics(r.clone()).await;
    assert!(text.contains(r#"netchecker_node_verdict{node="n2",verdict="healthy"} 1"#));
    assert!(
        !text.contains(r#"node="n2",verdict="pod_network_down""#),
        "{text}"
    );

    // Forgetting n5's agents removes the node and its series.
    for pod in ["netchecker-agent-n5", "netchecker-agent-hostnet-n5"] {
        assert_eq!(
            call(
                &r,
                "DELETE",
                &format!("/api/v1/agents/{pod}"),
                String::new()
            )
            .await
            .status,
            StatusCode::OK
        );
    }
    app.tick(tokio::time::Instant::now());
    let text = metrics(r).await;
    assert!(!text.contains(r#"node="n5""#), "{text}");
    assert!(text.contains(r#"netchecker_nodes{verdict="probe_failures"} 0"#));
}

/// `healthy(node, 2)` as our agent sends it: with how its previous report
/// went, `raced` meaning its first SYN went unanswered.
fn telling(node: &str, raced: bool) -> String {
    let mut r: Value = serde_json::from_str(&healthy(node, 2)).unwrap();
    r["report_attempts"] = json!({"attempt": 1, "previous": {"attempts": 1,
        "connects": 1 + u32::from(raced), "raced": u32::from(raced),
        "race_won": u32::from(raced), "failed": 0, "taken": true, "first_try": true}});
    r.to_string()
}

#[tokio::test(start_paused = true)]
async fn a_lossy_path_is_a_figure_and_a_verdict_and_the_stored_report_keeps_its_shape() {
    let app = App::new(settings(), PodView::fixed([])).unwrap();
    let r = router(app.clone());
    // Three minutes at a 2 s interval: on "lossy" one report in five had to
    // race its handshake (20%), on "clean" none; both report on time.
    for i in 0..90 {
        for node in ["clean", "lossy"] {
            let raced = node == "lossy" && i % 5 == 0;
            post(
                &r,
                &format!("netchecker-agent-{node}"),
                telling(node, raced),
            )
            .await;
            post(
                &r,
                &format!("netchecker-agent-hostnet-{node}"),
                telling(node, raced),
            )
            .await;
        }
        tokio::time::advance(Duration::from_secs(2)).await;
    }
    let s = status(&r).await;
    let lossy = node(&s, "lossy");
    assert_eq!(lossy["verdict"], "lossy", "{lossy:#}");
    assert_eq!(
        lossy["path"],
        json!({"window_seconds": 300, "reports": 180, "attempts": 180, "unanswered": 36,
               "failed": 0, "loss_ratio": 0.2,
               "probe_ms": {"samples": 180, "mean": 3.0, "stddev": 0.0, "max": 3.0}})
    );
    assert!(
        lossy["reason"]
            .as_str()
            .unwrap()
            .starts_with("20% of report connections"),
        "{}",
        lossy["reason"]
    );
    assert_eq!(lossy["agents"][0]["path"]["attempts"], 90, "per agent too");
    let clean = node(&s, "clean");
    assert_eq!(clean["verdict"], "healthy");
    assert_eq!(clean["path"]["loss_ratio"], 0.0);
    assert_eq!(
        s["summary"]["healthy"], true,
        "the v1 check's rule is untouched"
    );

    app.tick(tokio::time::Instant::now());
    let text = String::from_utf8(call(&r, "GET", "/metrics", String::new()).await.body).unwrap();
    assert!(
        text.contains(r#"netchecker_node_loss_ratio{node="lossy"} 0.2"#),
        "{text}"
    );
    assert!(text.contains(r#"netchecker_node_loss_ratio{node="clean"} 0"#));
    assert!(text.contains(r#"netchecker_node_probe_jitter_seconds{node="lossy"} 0"#));
    assert!(text.contains(r#"netchecker_node_verdict{node="lossy",verdict="lossy"} 1"#));

    // What the agent sent besides the original's fields is not stored.
    let a = call(
        &r,
        "GET",
        "/api/v1/agents/netchecker-agent-lossy",
        String::new(),
    )
    .await;
    let stored = String::from_utf8(a.body).unwrap();
    assert!(stored.contains("\"nodename\":\"lossy\""), "{stored}");
    assert!(!stored.contains("report_attempts"), "{stored}");

    // A Go agent's report tells nothing: no figures, no series.
    post(&r, "netchecker-agent-go", healthy("go", 15)).await;
    app.tick(tokio::time::Instant::now());
    let s = status(&r).await;
    assert!(node(&s, "go").get("path").is_none());
    let text = String::from_utf8(call(&r, "GET", "/metrics", String::new()).await.body).unwrap();
    assert!(!text.contains(r#"netchecker_node_loss_ratio{node="go"}"#));
}

/// `telling(node, true)` after an outage: its previous report got
/// through on no attempt (the link was cut).
fn telling_after_outage(node: &str) -> String {
    let mut r: Value = serde_json::from_str(&telling(node, true)).unwrap();
    r["report_attempts"]["previous"]["taken"] = json!(false);
    r["report_attempts"]["previous"]["failed"] = json!(1);
    r.to_string()
}

/// A cut link that heals while a report's first SYN is unanswered: the
/// raced connection gets through once the link is back, so the report
/// after it says "raced, taken". That is the end of an outage, not loss:
/// with a short window (a server restarted shortly before) it made a node
/// read `lossy` for seconds after the heal (e2e scenario 9: 2 of 28).
#[tokio::test(start_paused = true)]
async fn the_end_of_an_outage_is_not_loss() {
    let app = App::new(settings(), PodView::fixed([])).unwrap();
    let r = router(app.clone());
    tokio::time::advance(Duration::from_secs(31)).await;
    let both = |body: fn(&str) -> String| {
        let r = &r;
        async move {
            post(r, "netchecker-agent-cut", body("cut")).await;
            post(r, "netchecker-agent-hostnet-cut", body("cut")).await;
        }
    };
    for _ in 0..12 {
        both(|n| telling(n, false)).await;
        tokio::time::advance(Duration::from_secs(2)).await;
    }
    // Cut for 10 s, five windows of the 2 s interval.
    tokio::time::advance(Duration::from_secs(10)).await;
    // The first report after the heal: its predecessor never got through.
    both(telling_after_outage).await;
    tokio::time::advance(Duration::from_secs(2)).await;
    // The next says the first was raced (its SYN went out during the cut).
    both(|n| telling(n, true)).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    let s = status(&r).await;
    let cut = node(&s, "cut");
    assert_eq!(cut["verdict"], "healthy", "{cut:#}");
    assert_eq!(cut["path"]["unanswered"], 0, "{cut:#}");
    assert_eq!(cut["path"]["attempts"], 24, "{cut:#}");
    // After that, a raced report counts again.
    both(|n| telling(n, true)).await;
    let s = status(&r).await;
    assert_eq!(node(&s, "cut")["path"]["unanswered"], 2);
}

/// The mesh probes of an agent that tells how its reports went are figures
/// beside its path's: the share of those that connected whose first SYN
/// went unanswered, and their round trips. A probe whose connect failed is
/// the mesh's verdict, not loss. They judge nothing: a node whose path to
/// the server is clean stays healthy at any mesh figure.
#[tokio::test(start_paused = true)]
async fn mesh_probes_give_a_loss_figure_and_round_trips_but_no_verdict() {
    let app = App::new(settings(), PodView::fixed([])).unwrap();
    let r = router(app.clone());
    let result = |node: &str, outcome: &str, transfer_us: u64, raced: bool| {
        json!({"node": node, "address": "198.18.0.9", "outcome": outcome,
               "connect_us": 300, "transfer_us": transfer_us, "total_us": 5000,
               "padding": 1500, "raced": raced})
    };
    // Two minutes at a 2 s interval: each report of node "peers" carries
    // four results that connected (one raced, one whose transfer failed)
    // and one whose connect failed.
    for _ in 0..60 {
        let mut report: Value = serde_json::from_str(&telling("peers", false)).unwrap();
        report["mesh"] = json!({"port": 8083, "round": 1, "results": [
            result("n1", "ok", 1000, true),
            result("n2", "ok", 3000, false),
            result("n3", "ok", 1000, false),
            result("n4", "transfer_failed", 0, false),
            result("n5", "connect_failed", 0, true),
        ]});
        post(&r, "netchecker-agent-peers", report.to_string()).await;
        post(&r, "netchecker-agent-quiet", telling("quiet", false)).await;
        tokio::time::advance(Duration::from_secs(2)).await;
    }
    let s = status(&r).await;
    let peers = node(&s, "peers");
    assert_eq!(peers["verdict"], "healthy", "{peers:#}");
    let mean = 5.0 / 3.0;
    let stddev = (((1.0 - mean) * (1.0f64 - mean)) * 2.0 + (3.0 - mean) * (3.0 - mean)) / 3.0;
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    assert_eq!(
        peers["path"]["mesh"],
        json!({"probes": 240, "unanswered": 60, "loss_ratio": 0.25,
               "rtt_ms": {"samples": 180, "mean": round3(mean),
                          "stddev": round3(stddev.sqrt()), "max": 3.0}}),
        "{peers:#}"
    );
    assert_eq!(peers["agents"][0]["path"]["mesh"]["probes"], 240);
    assert_eq!(peers["path"]["loss_ratio"], 0.0, "the report path's own");
    assert!(node(&s, "quiet")["path"].get("mesh").is_none());

    app.tick(tokio::time::Instant::now());
    let text = String::from_utf8(call(&r, "GET", "/metrics", String::new()).await.body).unwrap();
    assert!(
        text.contains(r#"netchecker_node_mesh_loss_ratio{node="peers"} 0.25"#),
        "{text}"
    );
    assert!(!text.contains(r#"netchecker_node_mesh_loss_ratio{node="quiet"}"#));
    let stored = call(
        &r,
        "GET",
        "/api/v1/agents/netchecker-agent-peers",
        String::new(),
    )
    .await;
    let stored = String::from_utf8(stored.body).unwrap();
    assert!(!stored.contains("\"mesh\""), "{stored}");
}

/// A lost handshake or request fails a probe now and then on a lossy path:
/// the node stays `lossy` until the same probe fails in two consecutive
/// reports of an agent; on a clean path one failure is named at once.
#[tokio::test(start_paused = true)]
async fn on_a_lossy_node_a_probe_must_fail_twice_in_a_row_to_be_named() {
    let app = App::new(settings(), PodView::fixed([])).unwrap();
    let r = router(app.clone());
    let url = "http://netchecker-service:8081/api/v1/ping";
    let with_probe = |node: &str, failed: bool| {
        let mut v: Value = serde_json::from_str(&telling(node, node == "lossy")).unwrap();
        if failed {
            v["network_probes"] = json!([{"URL": url, "ConnectionResult": 1, "HTTPCode": 0,
                "Total": 800, "ContentTransfer": 0, "TCPConnection": 0, "DNSLookup": 0,
                "Connect": 0, "ServerProcessing": 0}]);
        }
        v.to_string()
    };
    // A minute of reports, every one of "lossy"'s raced: lossy.
    for _ in 0..30 {
        for node in ["clean", "lossy"] {
            post(
                &r,
                &format!("netchecker-agent-{node}"),
                with_probe(node, false),
            )
            .await;
        }
        tokio::time::advance(Duration::from_secs(2)).await;
    }
    let verdict_of = |s: &Value, n: &str| node(s, n)["verdict"].as_str().unwrap().to_owned();
    assert_eq!(verdict_of(&status(&r).await, "lossy"), "lossy");

    // Each step: the probe of this report failed or not, and the verdict.
    let steps = [
        (true, "lossy"),
        (true, "probe_failures"),
        (false, "lossy"),
        (true, "lossy"),
        (false, "lossy"),
    ];
    for (i, (failed, want)) in steps.into_iter().enumerate() {
        post(&r, "netchecker-agent-lossy", with_probe("lossy", failed)).await;
        let s = status(&r).await;
        assert_eq!(
            verdict_of(&s, "lossy"),
            want,
            "step {i}: {:#}",
            node(&s, "lossy")
        );
        if failed && want == "lossy" {
            let reason = node(&s, "lossy")["reason"].as_str().unwrap().to_owned();
            assert!(
                reason.ends_with(&format!(
                    "; failed once, named if it fails again: {url} from netchecker-agent-lossy"
                )),
                "{reason}"
            );
        }
    }
    post(&r, "netchecker-agent-clean", with_probe("clean", true)).await;
    assert_eq!(verdict_of(&status(&r).await, "clean"), "probe_failures");
}

#[tokio::test(start_paused = true)]
async fn the_status_page_is_served_self_contained_and_locked_down() {
    let r = router(App::new(settings(), PodView::fixed([])).unwrap());
    let a = call(&r, "GET", "/", String::new()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), "text/html; charset=utf-8");
    let csp = a.header("content-security-policy");
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let html = String::from_utf8(a.body).unwrap();
    assert!(html.to_ascii_lowercase().starts_with("<!doctype html>"));
    for external in ["src=\"http", "href=\"http", "src='http", "@import"] {
        assert!(!html.contains(external), "page loads {external}...");
    }
}
