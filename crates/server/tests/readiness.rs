//! `--ready-when-warm`: a replica is ready only once it knows the cluster
//! (every expected agent reported, or the start-up grace is over), so a
//! restarted one answers no check with agents it has not heard from yet.
//! In-process with paused time.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use netchecker_server::Policy;
use netchecker_server::app::Settings;
use netchecker_server::{App, PodView, router};
use tokio::time::Instant;

mod fixture;
mod oneshot;
use oneshot::call;

const AGENTS: [&str; 2] = ["netchecker-agent-a", "netchecker-agent-hostnet-a"];

fn server(ready_when_warm: bool) -> (App, Router) {
    let settings = Settings {
        policy: Policy {
            startup_grace: Duration::from_secs(60),
            ..Policy::default()
        },
        ready_when_warm,
        ..Settings::default()
    };
    let app = App::new(settings, PodView::fixed(AGENTS.map(String::from))).unwrap();
    (app.clone(), router(app))
}

async fn readyz(r: &Router) -> (StatusCode, String) {
    let a = call(r, "GET", "/readyz", "").await;
    (a.status, a.text())
}

async fn report(r: &Router, pod: &str) {
    let body = fixture::go_report(pod);
    let a = call(r, "POST", &format!("/api/v1/agents/{pod}"), body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
}

#[tokio::test(start_paused = true)]
async fn a_warm_server_is_ready_once_every_expected_agent_reported() {
    let (app, r) = server(true);
    let (code, why) = readyz(&r).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        why.contains("the first evaluation has not run yet"),
        "{why}"
    );
    assert!(
        app.check(Instant::now()).is_ok(),
        "checks still answer when asked"
    );

    report(&r, AGENTS[0]).await;
    app.tick(Instant::now());
    let (code, why) = readyz(&r).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        why.contains("warming up: 1 expected agents have not reported yet")
            && why.contains("in 60 s at most"),
        "{why}"
    );

    report(&r, AGENTS[1]).await;
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        readyz(&r).await.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "until a round saw it"
    );
    app.tick(Instant::now());
    assert_eq!(readyz(&r).await, (StatusCode::OK, "ready\n".to_owned()));
    assert!(app.is_warm(Instant::now()));
}

#[tokio::test(start_paused = true)]
async fn a_warm_server_is_ready_when_the_grace_ends_even_if_agents_are_missing() {
    let (app, r) = server(true);
    report(&r, AGENTS[0]).await;
    app.tick(Instant::now());
    tokio::time::advance(Duration::from_secs(59)).await;
    let (code, why) = readyz(&r).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(why.contains("in 1 s at most"), "{why}");
    tokio::time::advance(Duration::from_millis(1001)).await;
    assert_eq!(readyz(&r).await.0, StatusCode::OK, "one window is enough");
    // Once warm, an agent going away does not make the server cold again.
    app.tick(Instant::now());
    assert!(app.is_warm(Instant::now()));
}

#[tokio::test(start_paused = true)]
async fn without_the_flag_a_synced_server_is_ready_at_once() {
    let (_app, r) = server(false);
    assert_eq!(readyz(&r).await, (StatusCode::OK, "ready\n".to_owned()));
}
