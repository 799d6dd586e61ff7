//! The runner on paused time, against an in-memory Lease endpoint: the
//! exact moment a leader that cannot renew steps down, and the release
//! at shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use prometheus::Registry;

use super::*;

/// One Lease, answering GET, POST and PUT as the API does (no version
/// checks: one candidate), or 500 to everything while `down`.
#[derive(Clone, Default)]
struct Endpoint {
    lease: Arc<Mutex<Option<serde_json::Value>>>,
    down: Arc<AtomicBool>,
}

impl Endpoint {
    async fn answer(self, req: Request<kube::client::Body>) -> Response<Full<Bytes>> {
        let reply = |code: StatusCode, body: serde_json::Value| {
            Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap()
        };
        let status = |code: u16| {
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "test", "code": code,
                "reason": if code == 404 { "NotFound" } else { "InternalError" }})
        };
        if self.down.load(Ordering::SeqCst) {
            return reply(StatusCode::INTERNAL_SERVER_ERROR, status(500));
        }
        let method = req.method().clone();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let mut lease = self.lease.lock().unwrap();
        match method.as_str() {
            "GET" => match lease.clone() {
                Some(l) => reply(StatusCode::OK, l),
                None => reply(StatusCode::NOT_FOUND, status(404)),
            },
            _ => {
                let mut written: serde_json::Value = serde_json::from_slice(&body).unwrap();
                written["metadata"]["resourceVersion"] = "1".into();
                *lease = Some(written.clone());
                reply(StatusCode::OK, written)
            }
        }
    }

    fn holder(&self) -> Option<String> {
        let lease = self.lease.lock().unwrap().clone()?;
        lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
    }
}

fn election(endpoint: &Endpoint) -> Election {
    let endpoint = endpoint.clone();
    let service = tower::service_fn(move |req| {
        let endpoint = endpoint.clone();
        async move { Ok::<_, std::convert::Infallible>(endpoint.answer(req).await) }
    });
    let client = kube::Client::new(service, "netchecker");
    Election {
        api: Api::namespaced(client, "netchecker"),
        name: "netchecker-server".to_owned(),
        identity: "server-0".to_owned(),
        timings: Timings::default(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_leader_steps_down_exactly_at_the_renew_deadline_and_releases_at_shutdown() {
    let endpoint = Endpoint::default();
    let leadership = Leadership::new(&Registry::new()).unwrap();
    let shutdown = CancellationToken::new();
    let release = CancellationToken::new();
    let task = tokio::spawn(run(
        election(&endpoint),
        leadership.clone(),
        shutdown.clone(),
        release.clone(),
    ));
    // Created at the first attempt.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(leadership.is_leader());
    assert_eq!(endpoint.holder().as_deref(), Some("server-0"));
    // Renewed every 2 s; the API goes away right after a renewal at 4 s.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let cut = Instant::now();
    endpoint.down.store(true, Ordering::SeqCst);
    // Attempts at 6 s and 8 s fail; the deadline (10 s after the renewal
    // at 4 s) is met by the attempt at 14 s: still the leader at 13.9 s.
    tokio::time::sleep(Duration::from_millis(9800)).await;
    assert!(leadership.is_leader(), "stepped down before the deadline");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!leadership.is_leader(), "still leading past the deadline");
    assert!(cut.elapsed() < Timings::default().lease_duration);
    // Back: our own lease is renewed; at shutdown it is released.
    endpoint.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(leadership.is_leader());
    shutdown.cancel();
    // Stepped down at once, but the lease is held until the last events
    // are out and the open incidents written.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(!leadership.is_leader());
    assert_eq!(
        endpoint.holder().as_deref(),
        Some("server-0"),
        "held until released"
    );
    release.cancel();
    task.await.unwrap();
    assert_eq!(endpoint.holder(), None, "released");
}
