//! The server against the in-repo fake Kubernetes API over real HTTP: the
//! real kube-rs client reaches it through a kubeconfig, and the server is
//! reached over real loopback HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use netchecker_fake_apiserver::{Failure, FakeApiServer, agent_pod};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

mod fixture;
mod in_process;
mod scrape;
use in_process::InProcess;

const NS: &str = "netchecker";
const POD: &str = "netchecker-agent-x7k2p";
const HOSTNET_POD: &str = "netchecker-agent-hostnet-q8w3z";

struct Harness {
    api: FakeApiServer,
    addr: SocketAddr,
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Start the fake API with the two agent pods and an unrelated pod, and a
/// server watching it with `extra` flags.
async fn start(extra: &[&str], failure: Failure) -> Harness {
    let api = FakeApiServer::start().await;
    api.add_pod(agent_pod(NS, POD, "netchecker-agent", "node-1"));
    api.add_pod(agent_pod(
        NS,
        HOSTNET_POD,
        "netchecker-agent-hostnet",
        "node-1",
    ));
    api.add_pod(agent_pod(NS, "some-web-server", "web", "node-1"));
    api.set_failure(failure);
    let argv = ["netchecker-server", "--check-interval", "1"]
        .iter()
        .chain(extra);
    let InProcess {
        addr,
        shutdown,
        task,
    } = in_process::serve(&api, argv).await;
    Harness {
        api,
        addr,
        http: reqwest::Client::new(),
        shutdown,
        task,
    }
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn report(&self, name: &str) {
        let r = self
            .http
            .post(self.url(&format!("/api/v1/agents/{name}")))
            .body(fixture::go_report(name))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    async fn check(&self) -> (u16, String) {
        self.get("/api/v1/connectivity_check").await
    }

    async fn metric(&self, series: &str) -> f64 {
        scrape::metric(&self.get("/metrics").await.1, series)
    }

    /// Poll `cond` every 50 ms for up to 20 s.
    async fn eventually<F, Fut>(&self, what: &str, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        for _ in 0..400 {
            if cond().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for: {what}");
    }

    async fn synced(&self) {
        self.eventually("readiness", || async { self.get("/readyz").await.0 == 200 })
            .await;
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

#[tokio::test]
async fn answers_match_the_original_for_absent_and_healthy() {
    let h = start(&[], Failure::None).await;
    h.synced().await;
    assert_eq!(
        h.check().await,
        (
            400,
            r#"{"Message":"Connectivity check fails. Reason: there are absent or outdated pods; look up the payload","Absent":["netchecker-agent-hostnet-q8w3z","netchecker-agent-x7k2p"],"Outdated":[]}"#
                .to_owned()
        )
    );
    h.report(POD).await;
    h.report(HOSTNET_POD).await;
    // A name that is no watched pod gets no slot (and no series).
    let r = h
        .http
        .post(h.url("/api/v1/agents/not-a-watched-pod"))
        .body(fixture::go_report("not-a-watched-pod"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("no watched agent pod"));
    assert_eq!(h.get("/api/v1/agents/not-a-watched-pod").await.0, 404);
    assert_eq!(
        h.check().await,
        (200, r#"{"Message":"All 2 pods successfully reported back to the server","Absent":[],"Outdated":[]}"#.to_owned())
    );
    h.stop().await;
}

#[tokio::test]
async fn checks_make_no_api_requests() {
    let h = start(&[], Failure::None).await;
    h.synced().await;
    h.report(POD).await;
    let before = h.api.total_requests();
    for _ in 0..25 {
        assert_eq!(h.check().await.0, 400);
        h.get("/api/v1/agents/").await;
    }
    assert_eq!(
        h.api.total_requests(),
        before,
        "a connectivity check must read the watched view only"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_deleted_pod_leaves_the_cache_and_a_new_pod_is_absent() {
    let h = start(&[], Failure::None).await;
    h.synced().await;
    h.report(POD).await;
    h.report(HOSTNET_POD).await;
    assert_eq!(h.check().await.0, 200);
    h.api.delete_pod(NS, POD).expect("pod existed");
    h.eventually("report dropped", || async {
        h.get(&format!("/api/v1/agents/{POD}")).await.0 == 404
    })
    .await;
    assert_eq!(
        h.check().await.1,
        r#"{"Message":"All 1 pods successfully reported back to the server","Absent":[],"Outdated":[]}"#
    );
    h.api.add_pod(agent_pod(
        NS,
        "netchecker-agent-new01",
        "netchecker-agent",
        "node-2",
    ));
    h.eventually("new pod absent", || async {
        let (code, body) = h.check().await;
        code == 400 && body.contains(r#""Absent":["netchecker-agent-new01"]"#)
    })
    .await;
    h.stop().await;
}

/// kubespray's ClusterRole for the original grants `list` on pods but not
/// `watch`: the server lists them every --check-interval instead.
#[tokio::test]
async fn rbac_without_watch_falls_back_to_listing_the_pods() {
    let h = start(&[], Failure::ForbidWatch).await;
    h.synced().await;
    h.report(POD).await;
    h.report(HOSTNET_POD).await;
    assert_eq!(h.check().await.0, 200);
    h.api.delete_pod(NS, POD).expect("pod existed");
    h.eventually("report of the deleted pod dropped", || async {
        h.get(&format!("/api/v1/agents/{POD}")).await.0 == 404
    })
    .await;
    h.api.add_pod(agent_pod(
        NS,
        "netchecker-agent-new01",
        "netchecker-agent",
        "node-2",
    ));
    h.eventually("new pod absent", || async {
        let (code, body) = h.check().await;
        code == 400 && body.contains(r#""Absent":["netchecker-agent-new01"]"#)
    })
    .await;
    assert!(h.api.list_requests() >= 3, "listed again and again");
    assert_eq!(
        h.api.watch_requests(),
        1,
        "no further watch attempts once forbidden"
    );
    assert_eq!(h.get("/api/v2/status").await.0, 200);
    assert_eq!(h.metric("netchecker_pod_view_synced").await, 1.0);
    h.stop().await;
}

#[tokio::test]
async fn an_api_outage_leaves_checks_answering_and_marks_the_view_stale() {
    let h = start(&[], Failure::None).await;
    h.synced().await;
    h.report(POD).await;
    h.report(HOSTNET_POD).await;
    assert_eq!(h.metric("netchecker_pod_view_synced").await, 1.0);

    h.api.set_failure(Failure::Error(500));
    h.eventually("view marked stale", || async {
        h.metric("netchecker_pod_view_synced").await == 0.0
    })
    .await;
    let (code, body) = h.check().await;
    assert_eq!(
        (code, body.contains("All 2 pods")),
        (200, true),
        "answers from the last known pods: {body}"
    );
    assert_eq!(
        h.get("/readyz").await.0,
        200,
        "a synced view stays ready during an outage"
    );

    h.api.set_failure(Failure::None);
    h.eventually("view current again", || async {
        h.metric("netchecker_pod_view_synced").await == 1.0
    })
    .await;
    assert_eq!(h.metric("netchecker_pod_view_age_seconds").await, 0.0);
    h.stop().await;
}

#[tokio::test]
async fn a_pod_deleted_during_an_outage_is_pruned_after_the_relist() {
    let h = start(&[], Failure::None).await;
    h.synced().await;
    h.report(POD).await;
    h.report(HOSTNET_POD).await;
    h.api.set_failure(Failure::Error(500));
    h.eventually("view stale", || async {
        h.metric("netchecker_pod_view_synced").await == 0.0
    })
    .await;
    h.api.delete_pod(NS, POD);
    h.api.compact_history();
    h.api.set_failure(Failure::None);
    h.eventually("report pruned", || async {
        h.get(&format!("/api/v1/agents/{POD}")).await.0 == 404
    })
    .await;
    assert_eq!(
        h.get(&format!("/api/v1/agents/{HOSTNET_POD}")).await.0,
        200,
        "live pods keep their reports"
    );
    h.stop().await;
}

#[tokio::test]
async fn readiness_and_the_check_wait_for_the_first_sync() {
    let h = start(&[], Failure::Error(500)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.get("/readyz").await.0, 503);
    let (code, body) = h.check().await;
    assert_eq!(code, 503);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["Message"].as_str().unwrap().contains("not synced"),
        "{body}"
    );
    assert_eq!(h.get("/healthz").await.0, 200, "alive while not ready");
    h.api.set_failure(Failure::None);
    h.synced().await;
    assert_eq!(h.check().await.0, 400, "both pods absent, now answerable");
    h.stop().await;
}

#[tokio::test]
async fn namespace_and_selector_restrict_the_expected_pods() {
    let h = start(&["--namespace", "elsewhere"], Failure::None).await;
    h.api.add_pod(agent_pod(
        "elsewhere",
        "netchecker-agent-e1",
        "netchecker-agent",
        "node-9",
    ));
    h.synced().await;
    h.eventually("only the namespace's pod", || async {
        h.check()
            .await
            .1
            .contains(r#""Absent":["netchecker-agent-e1"]"#)
    })
    .await;
    h.stop().await;

    let h = start(&["--agent-selector", "app=web"], Failure::None).await;
    h.synced().await;
    assert!(
        h.check()
            .await
            .1
            .contains(r#""Absent":["some-web-server"]"#)
    );
    h.stop().await;
}
