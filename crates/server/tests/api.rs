//! In-process tests of every route and every bad-input case, through
//! `router(app).oneshot(..)`. Time is paused, so freshness is exact.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use netchecker_server::Policy;
use netchecker_server::app::Settings;
use netchecker_server::{App, PodView, router};
use serde_json::{Value, json};

mod fixture;
mod oneshot;
mod scrape;
use oneshot::{Answer, call};

const GO_REPORT: &str = include_str!("../../wire/tests/fixtures/go-agent-report.json");
const GO_REPORT_HOSTNET: &str =
    include_str!("../../wire/tests/fixtures/go-agent-report-hostnet.json");
const POD: &str = "netchecker-agent-x7k2p";
const HOSTNET_POD: &str = "netchecker-agent-hostnet-q8w3z";

fn settings() -> Settings {
    Settings {
        policy: Policy {
            outdated_factor: 2.0,
            startup_grace: Duration::from_secs(30),
            report_ttl: None,
            lossy_ratio: 0.05,
        },
        ready_when_warm: false,
        max_report_bytes: 256 * 1024,
        max_agents: 3,
        request_timeout: Duration::from_secs(5),
        read_token: None,
        mesh: Default::default(),
    }
}

fn app_expecting(names: &[&str]) -> App {
    App::new(
        settings(),
        PodView::fixed(names.iter().map(|s| s.to_string())),
    )
    .unwrap()
}

async fn post(router: &Router, name: &str, body: impl Into<Body>) -> Answer {
    call(router, "POST", &format!("/api/v1/agents/{name}"), body).await
}

async fn delete(router: &Router, name: &str) -> Answer {
    call(
        router,
        "DELETE",
        &format!("/api/v1/agents/{name}"),
        Body::empty(),
    )
    .await
}

async fn get(router: &Router, uri: &str) -> Answer {
    call(router, "GET", uri, Body::empty()).await
}

async fn all_agents(router: &Router) -> Value {
    get(router, "/api/v1/agents/").await.json()
}

#[tokio::test(start_paused = true)]
async fn a_go_agent_report_is_stored_and_served_like_the_original() {
    let app = app_expecting(&[]);
    let r = router(app);
    let ans = post(&r, POD, GO_REPORT).await;
    assert_eq!(ans.status, StatusCode::OK);
    assert!(ans.body.is_empty(), "the original answers an empty body");

    let one = get(&r, &format!("/api/v1/agents/{POD}")).await;
    assert_eq!(one.status, StatusCode::OK);
    let v = one.json();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "hostdate",
            "ips",
            "last_updated",
            "network_probes",
            "nodename",
            "nslookup",
            "podname",
            "report_interval",
            "uptime"
        ]
    );
    assert_eq!(
        v["hostdate"], "2026-11-21T10:11:12.123456789+02:00",
        "hostdate is kept verbatim"
    );
    assert_eq!(v["uptime"], 123456);
    assert_eq!(v["network_probes"][0]["HTTPCode"], 200);
    let last: jiff::Timestamp = v["last_updated"]
        .as_str()
        .unwrap()
        .parse()
        .expect("RFC 3339 last_updated");
    assert!(
        (jiff::Timestamp::now() - last).get_seconds().abs() < 60,
        "last_updated is the server's clock"
    );

    for uri in ["/api/v1/agents/", "/api/v1/agents"] {
        let all = get(&r, uri).await;
        assert_eq!(all.status, StatusCode::OK);
        assert_eq!(all.json()[POD]["podname"], POD, "{uri}");
    }
}

#[tokio::test(start_paused = true)]
async fn unknown_agent_is_404_with_the_original_text() {
    let r = router(app_expecting(&[]));
    let ans = get(&r, "/api/v1/agents/nobody").await;
    assert_eq!(ans.status, StatusCode::NOT_FOUND);
    assert_eq!(ans.text(), "There is no such entry in the agent cache\n");
    assert_eq!(ans.content_type(), Some("text/plain; charset=utf-8"));
}

#[tokio::test(start_paused = true)]
async fn ping_health_and_readiness() {
    let app = app_expecting(&[]);
    let r = router(app.clone());
    let ping = get(&r, "/api/v1/ping").await;
    assert_eq!((ping.status, ping.body.len()), (StatusCode::OK, 0));
    assert_eq!(get(&r, "/healthz").await.status, StatusCode::OK);
    assert_eq!(
        get(&r, "/readyz").await.status,
        StatusCode::OK,
        "without Kubernetes the view is synced at once"
    );
    app.start_shutdown();
    assert_eq!(
        get(&r, "/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&r, "/healthz").await.status,
        StatusCode::OK,
        "alive while draining"
    );
    assert_eq!(
        get(&r, "/no/such/route").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(start_paused = true)]
async fn connectivity_check_healthy_then_outdated_then_absent() {
    let app = app_expecting(&[POD, HOSTNET_POD]);
    let r = router(app);
    post(&r, POD, GO_REPORT).await;
    post(&r, HOSTNET_POD, GO_REPORT_HOSTNET).await;

    let ok = get(&r, "/api/v1/connectivity_check").await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        ok.text(),
        r#"{"Message":"All 2 pods successfully reported back to the server","Absent":[],"Outdated":[]}"#
    );

    // report_interval is 15 s: 30 s is still in the window, 31 s is not.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(
        get(&r, "/api/v1/connectivity_check").await.status,
        StatusCode::OK
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    post(&r, HOSTNET_POD, GO_REPORT_HOSTNET).await;
    let bad = get(&r, "/api/v1/connectivity_check").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.text(),
        r#"{"Message":"Connectivity check fails. Reason: there are absent or outdated pods; look up the payload","Absent":[],"Outdated":["netchecker-agent-x7k2p"]}"#
    );
}

#[tokio::test(start_paused = true)]
async fn expected_agent_that_never_reported_is_absent_in_v1_and_pending_in_metrics() {
    let app = app_expecting(&["netchecker-agent-zzz", POD, "netchecker-agent-aaa"]);
    let r = router(app.clone());
    post(&r, POD, GO_REPORT).await;
    let ans = get(&r, "/api/v1/connectivity_check").await;
    assert_eq!(ans.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        ans.json()["Absent"],
        json!(["netchecker-agent-aaa", "netchecker-agent-zzz"])
    );

    app.tick(tokio::time::Instant::now());
    let m = get(&r, "/metrics").await.text();
    assert_eq!(
        scrape::metric(&m, r#"netchecker_agents{state="pending"}"#),
        2.0
    );
    assert_eq!(
        scrape::metric(&m, r#"netchecker_agents{state="absent"}"#),
        0.0
    );
    assert_eq!(
        scrape::metric(&m, "netchecker_check_ok"),
        1.0,
        "pending agents page nobody"
    );

    tokio::time::advance(Duration::from_secs(31)).await;
    post(&r, POD, GO_REPORT).await;
    app.tick(tokio::time::Instant::now());
    let m = get(&r, "/metrics").await.text();
    assert_eq!(
        scrape::metric(&m, r#"netchecker_agents{state="absent"}"#),
        2.0
    );
    assert_eq!(scrape::metric(&m, r#"netchecker_agents{state="ok"}"#), 1.0);
    assert_eq!(scrape::metric(&m, "netchecker_check_ok"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn without_kubernetes_the_expected_set_is_reporters_plus_named_and_delete_forgets() {
    let app = app_expecting(&["named-only"]);
    let r = router(app);
    post(&r, POD, GO_REPORT).await;
    let ans = get(&r, "/api/v1/connectivity_check").await;
    assert_eq!(ans.json()["Absent"], json!(["named-only"]));

    // A name given with --expected-agents is never forgotten.
    let del = delete(&r, "named-only").await;
    assert_eq!(del.status, StatusCode::CONFLICT);
    assert!(del.text().contains("--expected-agents"), "{}", del.text());
    assert_eq!(
        get(&r, "/api/v1/connectivity_check").await.json()["Absent"],
        json!(["named-only"])
    );

    assert_eq!(delete(&r, POD).await.status, StatusCode::OK);
    assert_eq!(
        get(&r, &format!("/api/v1/agents/{POD}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(delete(&r, POD).await.status, StatusCode::NOT_FOUND);
    let m = get(&r, "/metrics").await.text();
    assert!(
        !m.contains("node-1-private_network"),
        "series of a forgotten agent are dropped"
    );
}

/// Every refused report leaves the stored state exactly as it was.
#[tokio::test(start_paused = true)]
async fn bad_input_is_refused_with_a_reason_and_costs_no_data() {
    let app = app_expecting(&[]);
    let r = router(app);
    post(&r, POD, GO_REPORT).await;
    let before = all_agents(&r).await;

    let cases: Vec<(&str, Body, StatusCode, &str, &str)> = vec![
        (
            POD,
            Body::from("{\"report_interval\": 15,"),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
            "invalid_json",
        ),
        (
            POD,
            Body::from("not json"),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
            "invalid_json",
        ),
        (
            POD,
            Body::from(r#"{"report_interval":"15"}"#),
            StatusCode::BAD_REQUEST,
            "invalid report",
            "invalid_report",
        ),
        (
            POD,
            Body::from(r#"{"report_interval":0,"podname":"x"}"#),
            StatusCode::BAD_REQUEST,
            "report_interval must be a positive",
            "invalid_report",
        ),
        (
            POD,
            Body::from(r#"{"report_interval":5,"hostdate":"yesterday"}"#),
            StatusCode::BAD_REQUEST,
            "hostdate is not an RFC 3339 time",
            "invalid_report",
        ),
        (
            "Not_A_Pod",
            Body::from(GO_REPORT),
            StatusCode::BAD_REQUEST,
            "invalid agent name",
            "invalid_name",
        ),
        (
            "a..b-",
            Body::from(GO_REPORT),
            StatusCode::BAD_REQUEST,
            "invalid agent name",
            "invalid_name",
        ),
        (
            POD,
            Body::from(vec![b' '; 256 * 1024 + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "exceeds 262144 bytes",
            "too_large",
        ),
    ];
    for (name, body, status, reason, label) in cases {
        let ans = post(&r, name, body).await;
        assert_eq!(ans.status, status, "{name}: {}", ans.text());
        assert!(
            ans.text().contains(reason),
            "{reason:?} not in {:?}",
            ans.text()
        );
        assert_eq!(
            all_agents(&r).await,
            before,
            "cache changed after a refused report ({reason})"
        );
        let m = get(&r, "/metrics").await.text();
        assert!(
            scrape::metric(
                &m,
                &format!("netchecker_reports_rejected_total{{reason=\"{label}\"}}")
            ) >= 1.0
        );
    }
    let m = get(&r, "/metrics").await.text();
    assert_eq!(scrape::metric(&m, "netchecker_reports_received_total"), 1.0);
}

#[tokio::test(start_paused = true)]
async fn a_full_cache_refuses_new_agents_while_known_ones_keep_updating() {
    let r = router(app_expecting(&[]));
    for name in ["a-1", "a-2", "a-3"] {
        assert_eq!(
            post(&r, name, fixture::go_report(name)).await.status,
            StatusCode::OK
        );
    }
    let before = all_agents(&r).await;
    let ans = post(&r, "a-4", fixture::go_report("a-4")).await;
    assert_eq!(ans.status, StatusCode::INSUFFICIENT_STORAGE);
    assert!(
        ans.text().contains("agent cache is full (3 agents)"),
        "{}",
        ans.text()
    );
    assert_eq!(all_agents(&r).await, before);

    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        post(&r, "a-2", fixture::go_report("a-2")).await.status,
        StatusCode::OK
    );
    let after = all_agents(&r).await;
    assert_ne!(after["a-2"]["last_updated"], before["a-2"]["last_updated"]);
    let m = get(&r, "/metrics").await.text();
    assert_eq!(
        scrape::metric(
            &m,
            r#"netchecker_reports_rejected_total{reason="cache_full"}"#
        ),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_upload_is_timed_out_and_stores_nothing() {
    let r = router(app_expecting(&[]));
    let stalled = Body::from_stream(futures::stream::pending::<Result<Vec<u8>, std::io::Error>>());
    let ans = post(&r, POD, stalled).await;
    assert_eq!(ans.status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(all_agents(&r).await, json!({}));
    let m = get(&r, "/metrics").await.text();
    assert_eq!(
        scrape::metric(&m, r#"netchecker_reports_rejected_total{reason="timeout"}"#),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn metrics_follow_reports_and_missed_windows() {
    let app = app_expecting(&[]);
    let r = router(app.clone());
    post(&r, POD, GO_REPORT).await;
    post(&r, HOSTNET_POD, GO_REPORT_HOSTNET).await;
    let m = get(&r, "/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(
        m.content_type()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = m.text();
    assert_eq!(
        scrape::metric(
            &m,
            r#"ncagent_report_count_total{agent="node-1-private_network"}"#
        ),
        1.0
    );
    assert_eq!(
        scrape::metric(
            &m,
            r#"ncagent_report_count_total{agent="node-1-host_network"}"#
        ),
        1.0
    );
    assert_eq!(
        scrape::metric(
            &m,
            r#"ncagent_error_count_total{agent="node-1-private_network"}"#
        ),
        0.0
    );
    assert_eq!(
        scrape::metric(
            &m,
            r#"ncagent_http_probe_code{agent="node-1-host_network",url="http://netchecker-service:8081/api/v1/ping"}"#
        ),
        200.0
    );

    // 15 s interval: the first missed window is counted past 30 s, then one per 15 s.
    post(&r, HOSTNET_POD, GO_REPORT_HOSTNET).await;
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(10)).await;
        post(&r, HOSTNET_POD, GO_REPORT_HOSTNET).await;
        app.tick(tokio::time::Instant::now());
    }
    let m = get(&r, "/metrics").await.text();
    assert_eq!(
        scrape::metric(
            &m,
            r#"ncagent_error_count_total{agent="node-1-private_network"}"#
        ),
        2.0,
        "50 s = windows at 31 s and 45 s"
    );
    assert_eq!(
        scrape::metric(
            &m,
            r#"ncagent_error_count_total{agent="node-1-host_network"}"#
        ),
        0.0
    );
    assert_eq!(
        scrape::metric(
            &m,
            r#"netchecker_agent_report_age_seconds{agent="node-1-private_network",pod="netchecker-agent-x7k2p"}"#
        ),
        50.0
    );
    assert_eq!(
        scrape::metric(&m, r#"netchecker_agents{state="outdated"}"#),
        1.0
    );
    assert_eq!(scrape::metric(&m, "netchecker_pod_view_synced"), 1.0);
}
