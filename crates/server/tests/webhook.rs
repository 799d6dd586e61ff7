//! Node verdict changes delivered to webhook receivers over real HTTP on
//! loopback. The evaluation is driven with explicit instants (no sleeping
//! for verdicts); only deliveries take real (short) time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use netchecker_server::Policy;
use netchecker_server::app::Settings;
use netchecker_server::webhook::{WebhookSettings, Webhooks};
use netchecker_server::{App, PodView};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod scrape;

const GO_REPORT: &str = include_str!("../../wire/tests/fixtures/go-agent-report.json");
const POD: &str = "netchecker-agent-a";
const HOST: &str = "netchecker-agent-hostnet-a";

/// A receiver that answers each request with the next status of `script`
/// (then 200), or never answers when told to hang, and records bodies.
#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<Value>>>,
    script: Arc<Mutex<Vec<StatusCode>>>,
    hang: bool,
    /// Answer each request only after this long.
    delay: Duration,
}

async fn receive(State(rx): State<Receiver>, body: String) -> StatusCode {
    rx.bodies
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap());
    if rx.hang {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(rx.delay).await;
    let mut script = rx.script.lock().unwrap();
    if script.is_empty() {
        StatusCode::OK
    } else {
        script.remove(0)
    }
}

/// Serve `rx` on a loopback port; returns its URL.
async fn serve(rx: Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/hook", post(receive)).with_state(rx);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

fn app(urls: &[String], queue: usize, shutdown: &CancellationToken) -> App {
    let settings = Settings {
        policy: Policy {
            outdated_factor: 2.0,
            startup_grace: Duration::from_secs(30),
            report_ttl: None,
            lossy_ratio: 0.05,
        },
        ..Settings::default()
    };
    let app = App::new(settings, PodView::fixed([POD.to_string()])).unwrap();
    let hooks = WebhookSettings {
        urls: urls.iter().map(|u| u.parse().unwrap()).collect(),
        timeout: Duration::from_secs(5),
        max_attempts: 3,
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        queue,
    };
    app.attach_webhooks(
        Webhooks::start(hooks, app.metrics().registry(), shutdown.clone()).unwrap(),
    );
    app
}

fn report(node: &str) -> Vec<u8> {
    let mut r: Value = serde_json::from_str(GO_REPORT).unwrap();
    // Every agent of these tests sends the same body: none names its pod,
    // as agents older than the podname field did.
    r["podname"] = json!("");
    r["nodename"] = json!(node);
    r["report_interval"] = json!(10);
    r.to_string().into_bytes()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn metric(app: &App, series: &str) -> f64 {
    scrape::metric(&app.metrics().render(), series)
}

#[tokio::test]
async fn exactly_one_event_per_verdict_change() {
    let rx = Receiver::default();
    let url = serve(rx.clone()).await;
    let shutdown = CancellationToken::new();
    let app = app(&[url], 16, &shutdown);
    let t0 = app.started();
    let at = |s: u64| t0 + Duration::from_secs(s);

    // Restart: the expected pod agent is pending; nothing is sent.
    app.tick(at(1));
    // Both agents report: healthy when first seen, nothing is sent.
    app.ingest(POD, &report("n1"), at(2)).unwrap();
    app.ingest(HOST, &report("n1"), at(2)).unwrap();
    app.tick(at(3));
    app.tick(at(4));
    // The pod agent stops; the host agent goes on: pod network down.
    app.ingest(HOST, &report("n1"), at(20)).unwrap();
    app.tick(at(25));
    app.tick(at(26));
    app.tick(at(27));
    // Then the host agent stops too: unreachable.
    app.tick(at(45));
    app.tick(at(46));
    // Both come back: healthy.
    app.ingest(POD, &report("n1"), at(50)).unwrap();
    app.ingest(HOST, &report("n1"), at(50)).unwrap();
    app.tick(at(51));
    app.tick(at(52));

    wait_for("3 events", || rx.bodies.lock().unwrap().len() >= 3).await;
    // Give a wrongly sent fourth event time to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bodies = rx.bodies.lock().unwrap().clone();
    let changes: Vec<(Value, Value)> = bodies
        .iter()
        .map(|b| (b["old_verdict"].clone(), b["new_verdict"].clone()))
        .collect();
    assert_eq!(
        changes,
        [
            (json!("healthy"), json!("pod_network_down")),
            (json!("pod_network_down"), json!("unreachable")),
            (json!("unreachable"), json!("healthy")),
        ]
    );
    // One incident, opened by the first change and closed by the last;
    // every change has its own id.
    let ids: Vec<&str> = bodies.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    for b in &bodies {
        assert_eq!(b["incident"], ids[0], "{b}");
    }
    let first = &bodies[0];
    assert_eq!(first["node"], "n1");
    assert!(
        first["reason"]
            .as_str()
            .unwrap()
            .contains("pod-network agent netchecker-agent-a is outdated"),
        "{first}"
    );
    assert_eq!(
        first["agents"],
        json!([
            {"name": POD, "kind": "pod_network", "state": "outdated", "last_report_age_seconds": 23.0},
            {"name": HOST, "kind": "host_network", "state": "ok", "last_report_age_seconds": 5.0}
        ]),
        "sorted by name"
    );
    let time: jiff::Timestamp = first["time"].as_str().unwrap().parse().unwrap();
    assert!((jiff::Timestamp::now() - time).get_seconds().abs() < 60);
    assert_eq!(
        metric(
            &app,
            r#"netchecker_webhook_events_total{result="delivered"}"#
        ),
        3.0
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_problem_found_right_after_a_start_opens_an_incident() {
    let rx = Receiver::default();
    let url = serve(rx.clone()).await;
    let shutdown = CancellationToken::new();
    let app = app(&[url], 16, &shutdown);
    let t0 = app.started();
    app.tick(t0 + Duration::from_secs(1));
    // The grace ends with the pod agent never having reported.
    app.tick(t0 + Duration::from_secs(31));
    app.tick(t0 + Duration::from_secs(32));
    wait_for("1 event", || !rx.bodies.lock().unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bodies = rx.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    // Nothing was announced before: no old verdict (pending is no news).
    assert_eq!(bodies[0]["old_verdict"], serde_json::Value::Null);
    assert_eq!(bodies[0]["new_verdict"], "unreachable");
    let id = bodies[0]["id"].as_str().expect("an id");
    let node = bodies[0]["node"].as_str().unwrap();
    assert!(id.ends_with(&format!(":{node}:unreachable")), "{id}");
    assert_eq!(bodies[0]["incident"], id, "it opens the incident");
    shutdown.cancel();
}

#[tokio::test]
async fn failed_deliveries_are_retried_then_given_up_and_4xx_is_final() {
    // 503 twice, then 200: delivered on the third attempt.
    let flaky = Receiver {
        script: Arc::new(Mutex::new(vec![
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
        ])),
        ..Receiver::default()
    };
    // 404: not retried.
    let gone = Receiver {
        script: Arc::new(Mutex::new(vec![StatusCode::NOT_FOUND])),
        ..Receiver::default()
    };
    // A port nobody listens on: every attempt fails, then it gives up.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let urls = [
        serve(flaky.clone()).await,
        serve(gone.clone()).await,
        closed,
    ];
    let shutdown = CancellationToken::new();
    let app = app(&urls, 16, &shutdown);
    let t0 = app.started();
    app.ingest(POD, &report("n1"), t0).unwrap();
    app.tick(t0 + Duration::from_secs(1));
    app.tick(t0 + Duration::from_secs(25)); // healthy -> unreachable

    wait_for("delivered + 2 failed", || {
        metric(
            &app,
            r#"netchecker_webhook_events_total{result="delivered"}"#,
        ) == 1.0
            && metric(&app, r#"netchecker_webhook_events_total{result="failed"}"#) == 2.0
    })
    .await;
    assert_eq!(
        flaky.bodies.lock().unwrap().len(),
        3,
        "two retries, then success"
    );
    assert_eq!(gone.bodies.lock().unwrap().len(), 1, "a 404 is not retried");
    shutdown.cancel();
}

#[tokio::test]
async fn a_stuck_receiver_never_blocks_evaluation_and_overflow_is_dropped() {
    let stuck = Receiver {
        hang: true,
        ..Receiver::default()
    };
    let url = serve(stuck.clone()).await;
    let shutdown = CancellationToken::new();
    // One event in flight, one queued; the rest are dropped.
    let app = app(&[url], 1, &shutdown);
    let t0 = app.started();
    app.ingest(POD, &report("n1"), t0).unwrap();
    app.tick(t0 + Duration::from_secs(1)); // healthy, first seen
    app.tick(t0 + Duration::from_secs(25)); // unreachable: event 1 (in flight)
    wait_for("the first delivery to hang", || {
        stuck.bodies.lock().unwrap().len() == 1
    })
    .await;
    for round in 0..3u64 {
        // healthy again, then unreachable again: two events per round.
        let base = 100 + round * 100;
        app.ingest(POD, &report("n1"), t0 + Duration::from_secs(base))
            .unwrap();
        app.tick(t0 + Duration::from_secs(base + 1));
        app.tick(t0 + Duration::from_secs(base + 25));
    }
    // Handing events over never waits: what does not fit is dropped.
    assert_eq!(
        metric(&app, r#"netchecker_webhook_events_total{result="dropped"}"#),
        5.0
    );
    // Ingest still works while the receiver hangs.
    app.ingest(HOST, &report("n1"), Instant::now()).unwrap();
    shutdown.cancel();
}

/// Three changes, one after the other (healthy, pod network down,
/// unreachable, healthy again), judged at explicit instants.
fn three_changes(app: &App) {
    let t0 = app.started();
    let at = |s: u64| t0 + Duration::from_secs(s);
    app.ingest(POD, &report("n1"), at(1)).unwrap();
    app.ingest(HOST, &report("n1"), at(1)).unwrap();
    app.tick(at(2));
    app.ingest(HOST, &report("n1"), at(20)).unwrap();
    app.tick(at(25));
    app.tick(at(45));
    app.ingest(POD, &report("n1"), at(50)).unwrap();
    app.ingest(HOST, &report("n1"), at(50)).unwrap();
    app.tick(at(51));
}

#[tokio::test]
async fn events_queued_at_shutdown_are_delivered_before_it_ends() {
    let rx = Receiver {
        delay: Duration::from_millis(300),
        ..Receiver::default()
    };
    let url = serve(rx.clone()).await;
    let shutdown = CancellationToken::new();
    let app = app(&[url], 16, &shutdown);
    three_changes(&app);
    // Shutdown begins at once: the receiver has at most the first event.
    assert!(rx.bodies.lock().unwrap().len() <= 1);
    let started = std::time::Instant::now();
    app.fall_silent(Duration::from_secs(10)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "waited for the receiver"
    );
    let got: Vec<Value> = rx
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["new_verdict"].clone())
        .collect();
    assert_eq!(
        got,
        [
            json!("pod_network_down"),
            json!("unreachable"),
            json!("healthy")
        ]
    );
    assert_eq!(
        metric(
            &app,
            r#"netchecker_webhook_events_total{result="delivered"}"#
        ),
        3.0
    );
    // Silent from then on: a later change is not announced.
    let t0 = app.started();
    app.tick(t0 + Duration::from_secs(90));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.bodies.lock().unwrap().len(), 3);
    shutdown.cancel();
}

#[tokio::test]
async fn a_receiver_that_never_answers_delays_shutdown_only_by_the_bound() {
    let rx = Receiver {
        hang: true,
        ..Receiver::default()
    };
    let url = serve(rx.clone()).await;
    let shutdown = CancellationToken::new();
    let app = app(&[url], 16, &shutdown);
    three_changes(&app);
    let started = std::time::Instant::now();
    app.fall_silent(Duration::from_millis(400)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    shutdown.cancel();
}
