//! The real `netchecker-server` binary against a misbehaving Kubernetes
//! API (the in-repo fake, reached through `KUBECONFIG`): outages, dropped
//! watches, `410 Gone` on every watch, a stalled relist, and pod churn.
//! Checks keep answering from the last known pods, the log and metrics say
//! how old the view is, the watch recovers by itself, and nothing is left
//! behind for pods that are gone.
//!
//! `RELIABILITY_CHURN_PODS` sets the churn size (`hack/reliability.sh`).
//! Only loopback is used, and only the processes started here are killed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netchecker_fake_apiserver::{Failure, FakeApiServer, agent_pod};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

mod common;
mod fixture;
mod scrape;
use common::Server;

const GO_REPORT: &str = include_str!("../../wire/tests/fixtures/go-agent-report.json");
const NS: &str = "netchecker";
const POD: &str = "netchecker-agent-x7k2p";
const HOSTNET_POD: &str = "netchecker-agent-hostnet-q8w3z";

fn scale(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One HTTP/1.1 answer: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a new connection, read to the end.
async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Answer {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        // Not listening yet: status 0.
        return Answer {
            status: 0,
            headers: Vec::new(),
            body: String::new(),
        };
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line).await.unwrap();
    let status = status_line
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.unwrap() == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let mut body = String::new();
    let _ = r.read_to_string(&mut body).await;
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = fixture::dechunk(chunked, &body);
    Answer {
        status,
        headers,
        body,
    }
}

/// Start the fake API with the two agent pods and an unrelated pod, and
/// the server binary watching it.
async fn start(extra: &[&str]) -> (FakeApiServer, Server) {
    let api = FakeApiServer::start().await;
    api.add_pod(agent_pod(NS, POD, "netchecker-agent", "node-1"));
    api.add_pod(agent_pod(
        NS,
        HOSTNET_POD,
        "netchecker-agent-hostnet",
        "node-1",
    ));
    api.add_pod(agent_pod(NS, "some-web-server", "web", "node-1"));
    let server = Server::start(|cmd, addr, dir| {
        let kubeconfig = dir.join("kubeconfig");
        api.write_kubeconfig(&kubeconfig).unwrap();
        cmd.args(["--endpoint", &addr.to_string(), "--check-interval", "1"])
            .args(extra)
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "info");
    });
    server
        .eventually("readiness", || async {
            server.get("/readyz").await.status == 200
        })
        .await;
    (api, server)
}

impl Server {
    async fn get(&self, path: &str) -> Answer {
        request(self.addr, "GET", path, "").await
    }

    async fn report(&self, name: &str) {
        let a = request(
            self.addr,
            "POST",
            &format!("/api/v1/agents/{name}"),
            &fixture::go_report(name),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }

    async fn check(&self) -> Answer {
        self.get("/api/v1/connectivity_check").await
    }

    async fn metrics(&self) -> String {
        self.get("/metrics").await.body
    }

    async fn metric(&self, series: &str) -> f64 {
        scrape::metric(&self.metrics().await, series)
    }

    async fn agents(&self) -> Value {
        serde_json::from_str(&self.get("/api/v1/agents/").await.body).unwrap()
    }

    /// Poll `cond` every 50 ms for up to 20 s (a bound against a broken
    /// build, not a speed assertion).
    async fn eventually<F, Fut>(&self, what: &str, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if cond().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for: {what}\n{}", self.logs());
    }

    /// The check answers from the last known pods: both reported.
    async fn assert_check_answers_both(&self, when: &str) {
        let a = self.check().await;
        assert_eq!(a.status, 200, "{when}: {}", a.body);
        assert!(
            a.body.contains("All 2 pods successfully reported"),
            "{when}: {}",
            a.body
        );
    }
}

/// The check's `Netchecker-Pod-View` headers, where the server sends them,
/// agree with the view's state: `stale` with a positive age, `current`
/// with age 0.
fn assert_view_headers(a: &Answer, want: &str) {
    let Some(view) = a.header("netchecker-pod-view") else {
        return;
    };
    assert_eq!(view, want);
    let age: f64 = a
        .header("netchecker-pod-view-age")
        .expect("the age comes with the view header")
        .parse()
        .unwrap();
    if want == "current" {
        assert_eq!(age, 0.0);
    }
}

/// The API answers 500 for a while: checks keep answering from the last
/// known pods, the view's age grows in the metrics and the log says the
/// view is stale; the watch recovers by itself and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_logged_with_the_age_of_the_view_and_recovers_by_itself() {
    let (api, s) = start(&[]).await;
    s.report(POD).await;
    s.report(HOSTNET_POD).await;
    api.set_failure(Failure::Error(500));
    s.eventually("view stale", || async {
        s.metric("netchecker_pod_view_synced").await == 0.0
    })
    .await;
    let age1 = s.metric("netchecker_pod_view_age_seconds").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let age2 = s.metric("netchecker_pod_view_age_seconds").await;
    assert!(age2 > age1, "the view's age grows: {age1} then {age2}");
    s.assert_check_answers_both("during the outage").await;
    assert_eq!(
        s.get("/readyz").await.status,
        200,
        "a synced view stays ready"
    );
    assert!(
        s.logs().contains("view is stale"),
        "the log says the view is stale:\n{}",
        s.logs()
    );

    let watches = api.watch_requests();
    api.set_failure(Failure::None);
    s.eventually("view current again", || async {
        s.metric("netchecker_pod_view_synced").await == 1.0
    })
    .await;
    assert_eq!(s.metric("netchecker_pod_view_age_seconds").await, 0.0);
    assert_view_headers(&s.check().await, "current");
    assert!(api.watch_requests() > watches, "the watch resumed");
    // A change made after the outage arrives: the resumed watch works.
    api.delete_pod(NS, POD);
    s.eventually("the deleted pod leaves the cache", || async {
        s.get(&format!("/api/v1/agents/{POD}")).await.status == 404
    })
    .await;
    assert!(
        s.logs().contains("Kubernetes API answers again"),
        "{}",
        s.logs()
    );
    let a = s.check().await;
    assert!(a.body.contains("All 1 pods"), "{}", a.body);
}

/// Watches dropped again and again resume without a relist and miss no
/// change; then every watch is answered `410 Gone`: the watcher relists
/// each time, checks keep answering, adds and deletes still arrive (through
/// the lists), and everything is current once watches work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_and_410_gone_lose_no_pod_change() {
    let (api, s) = start(&[]).await;
    s.report(POD).await;
    s.report(HOSTNET_POD).await;
    let lists = api.list_requests();
    for i in 0..10 {
        api.set_failure(Failure::CloseWatches);
        api.add_pod(agent_pod(
            NS,
            &format!("netchecker-agent-drop{i}"),
            "netchecker-agent",
            "node-2",
        ));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    s.eventually("every pod added between drops is seen", || async {
        s.check().await.body.contains(r#""Absent":["netchecker-agent-drop0","netchecker-agent-drop1","netchecker-agent-drop2","netchecker-agent-drop3","netchecker-agent-drop4","netchecker-agent-drop5","netchecker-agent-drop6","netchecker-agent-drop7","netchecker-agent-drop8","netchecker-agent-drop9"]"#)
    })
    .await;
    assert_eq!(
        api.list_requests(),
        lists,
        "closed watches resume, no relist"
    );
    for i in 0..10 {
        api.delete_pod(NS, &format!("netchecker-agent-drop{i}"));
    }
    s.eventually("deletes seen", || async { s.check().await.status == 200 })
        .await;

    api.set_failure(Failure::GoneOnWatch);
    s.eventually("relists", || async { api.list_requests() >= lists + 3 })
        .await;
    s.assert_check_answers_both("while every watch is gone")
        .await;
    api.add_pod(agent_pod(
        NS,
        "netchecker-agent-late",
        "netchecker-agent",
        "node-3",
    ));
    s.eventually(
        "a pod added while watches fail arrives with a relist",
        || async {
            s.check()
                .await
                .body
                .contains(r#""Absent":["netchecker-agent-late"]"#)
        },
    )
    .await;
    api.delete_pod(NS, POD);
    s.eventually(
        "a pod deleted while watches fail leaves the cache",
        || async { s.get(&format!("/api/v1/agents/{POD}")).await.status == 404 },
    )
    .await;
    let during = (
        s.metric("netchecker_pod_view_synced").await,
        s.metric("netchecker_pod_view_age_seconds").await,
    );

    api.set_failure(Failure::None);
    s.eventually("view current", || async {
        s.metric("netchecker_pod_view_synced").await == 1.0
    })
    .await;
    let settled = api.list_requests();
    api.delete_pod(NS, "netchecker-agent-late");
    s.eventually("watching again", || async {
        s.check().await.body.contains("All 1 pods")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(api.list_requests() <= settled + 1, "no more relists");
    println!(
        "410 on every watch: {} lists in all; view during it: synced {}, age {} s",
        api.list_requests(),
        during.0,
        during.1
    );
}

/// The relist after a dropped watch hangs: checks keep answering from the
/// last known pods, and the view must be reported stale with a growing age
/// (it is frozen); once the API answers, the pod deleted meanwhile leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_relist_is_reported_as_stale_and_recovers() {
    let (api, s) = start(&[]).await;
    s.report(POD).await;
    s.report(HOSTNET_POD).await;
    api.set_failure(Failure::HangList);
    let lists = api.list_requests();
    // Watches end first, then the pod goes and the history with it, all
    // before the watcher can reconnect: it cannot learn of the deletion
    // from a watch event, and resuming gets 410, so it must relist.
    api.close_watches();
    api.delete_pod(NS, POD);
    api.compact_history();
    s.eventually("the relist is held", || async {
        api.list_requests() > lists
    })
    .await;
    s.assert_check_answers_both("while the relist hangs").await;
    s.eventually("the view is reported stale", || async {
        s.metric("netchecker_pod_view_synced").await == 0.0
    })
    .await;
    assert!(s.metric("netchecker_pod_view_age_seconds").await > 0.0);

    api.set_failure(Failure::None);
    s.eventually("current again and the deleted pod gone", || async {
        s.get(&format!("/api/v1/agents/{POD}")).await.status == 404
            && s.metric("netchecker_pod_view_synced").await == 1.0
    })
    .await;
}

/// Hundreds of agent pods come and go, most of them reporting: once the
/// churn stops, no report and no metric series of a churned pod is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_churn_leaves_no_cache_entry_or_metric_series_behind() {
    let pods = scale("RELIABILITY_CHURN_PODS", 400);
    let (api, s) = start(&[]).await;
    s.report(POD).await;
    s.report(HOSTNET_POD).await;
    let t0 = Instant::now();
    let mut reported = 0;
    let window = 20;
    for i in 0..pods {
        let name = format!("netchecker-agent-churn{i:05}");
        api.add_pod(agent_pod(
            NS,
            &name,
            "netchecker-agent",
            &format!("churn-node-{i}"),
        ));
        if i % 4 != 3 {
            // Reports name their node, as agents do: the series carry it.
            let body = GO_REPORT.replacen("\"node-1\"", &format!("\"churn-node-{i}\""), 1);
            let body = fixture::as_agent(&body, &name);
            // The server takes reports only from pods its watch has seen:
            // a pod's first report may have to wait for the watch event.
            s.eventually("the new pod is watched", || async {
                let a = request(s.addr, "POST", &format!("/api/v1/agents/{name}"), &body).await;
                assert!(matches!(a.status, 200 | 404), "{}", a.body);
                a.status == 200
            })
            .await;
            reported += 1;
        }
        if i >= window {
            api.delete_pod(NS, &format!("netchecker-agent-churn{:05}", i - window));
        }
    }
    for i in pods.saturating_sub(window)..pods {
        api.delete_pod(NS, &format!("netchecker-agent-churn{i:05}"));
    }
    let churn_time = t0.elapsed();
    s.eventually("every churned report left the cache", || async {
        let a = s.agents().await;
        a.as_object().unwrap().keys().all(|k| !k.contains("churn"))
    })
    .await;
    let a = s.agents().await;
    let mut left: Vec<&String> = a.as_object().unwrap().keys().collect();
    left.sort();
    assert_eq!(left, [HOSTNET_POD, POD]);
    // Let a background check round run over the final state, then scrape.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let m = s.metrics().await;
    let leaked: Vec<&str> = m.lines().filter(|l| l.contains("churn")).collect();
    assert!(leaked.is_empty(), "series of churned pods: {leaked:#?}");
    s.assert_check_answers_both("after the churn").await;
    println!(
        "churn: {pods} pods added and deleted ({reported} reporting) in {:.2} s \
         ({:.0} pod changes/s); afterwards: 0 cache entries and 0 metric series of churned pods",
        churn_time.as_secs_f64(),
        (2 * pods) as f64 / churn_time.as_secs_f64()
    );
}
