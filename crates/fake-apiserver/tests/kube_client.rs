//! The real kube client, watcher and reflector against the fake over real
//! HTTP, configured from the fake's kubeconfig.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::Store;
use kube::runtime::utils::Backoff;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Config};
use netchecker_fake_apiserver::{Failure, FakeApiServer, agent_pod};
use tokio::task::JoinHandle;

/// Bounded wait for something that happens asynchronously; the bound only
/// keeps a broken build from hanging, it is not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(20);

const AGENT_SELECTOR: &str = "app in (netchecker-agent,netchecker-agent-hostnet)";

async fn client_for(fake: &FakeApiServer) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&fake.kubeconfig_yaml()).expect("kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    Client::try_from(config).expect("client builds")
}

async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn names<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> BTreeSet<String> {
    pods.into_iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Retry a failed request after a short fixed pause, so tests of failure
/// and recovery do not wait out the default backoff.
struct QuickRetry;

impl Iterator for QuickRetry {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::from_millis(50))
    }
}

impl Backoff for QuickRetry {
    fn reset(&mut self) {}
}

/// A reflector over all pods matching `selector`, retrying quickly.
struct Reflector {
    store: Store<Pod>,
    task: JoinHandle<()>,
}

impl Reflector {
    async fn start(client: Client, config: watcher::Config) -> Self {
        let (store, writer) = reflector::store();
        let backoff = QuickRetry;
        let stream = reflector(writer, watcher(Api::<Pod>::all(client), config)).backoff(backoff);
        let task = tokio::spawn(stream.for_each(|_| async {}));
        tokio::time::timeout(PATIENCE, store.wait_until_ready())
            .await
            .expect("reflector syncs")
            .expect("writer alive");
        Self { store, task }
    }

    fn names(&self) -> BTreeSet<String> {
        names(self.store.state().iter().map(|p| p.as_ref()))
    }

    async fn wait_for(&self, expected: &[&str]) {
        let expected = set(expected);
        eventually(&format!("reflector holds {expected:?}"), || async {
            self.names() == expected
        })
        .await;
    }
}

impl Drop for Reflector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn seed(fake: &FakeApiServer) {
    fake.add_pod(agent_pod(
        "netchecker",
        "agent-a",
        "netchecker-agent",
        "node-a",
    ));
    fake.add_pod(agent_pod(
        "netchecker",
        "agent-hostnet-a",
        "netchecker-agent-hostnet",
        "node-a",
    ));
    fake.add_pod(agent_pod("other", "agent-b", "netchecker-agent", "node-b"));
    fake.add_pod(agent_pod(
        "netchecker",
        "server",
        "netchecker-server",
        "node-a",
    ));
}

#[tokio::test]
async fn list_filters_by_label_selector() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let pods = Api::<Pod>::all(client_for(&fake).await);

    let all = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        names(&all.items),
        set(&["agent-a", "agent-hostnet-a", "agent-b", "server"])
    );
    assert_eq!(
        all.metadata.resource_version,
        Some(fake.resource_version().to_string())
    );

    let cases: &[(&str, &[&str])] = &[
        (AGENT_SELECTOR, &["agent-a", "agent-hostnet-a", "agent-b"]),
        ("app=netchecker-server", &["server"]),
        ("app==netchecker-agent", &["agent-a", "agent-b"]),
        ("app!=netchecker-agent", &["agent-hostnet-a", "server"]),
        (
            "app notin (netchecker-agent,netchecker-server)",
            &["agent-hostnet-a"],
        ),
        ("app", &["agent-a", "agent-hostnet-a", "agent-b", "server"]),
        ("!app", &[]),
        ("app=netchecker-agent,!app", &[]),
    ];
    for (selector, expected) in cases {
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap();
        assert_eq!(names(&list.items), set(expected), "selector {selector:?}");
    }

    // A field selector narrows too; one on a field we do not index is ignored.
    let on_b = pods
        .list(&ListParams::default().fields("spec.nodeName=node-b"))
        .await
        .unwrap();
    assert_eq!(names(&on_b.items), set(&["agent-b"]));
    let ignored = pods
        .list(&ListParams::default().fields("spec.unknownField=x"))
        .await
        .unwrap();
    assert_eq!(ignored.items.len(), 4);

    let bad = pods
        .list(&ListParams::default().labels("app in (x"))
        .await
        .unwrap_err();
    match bad {
        kube::Error::Api(status) => assert_eq!(status.code, 400, "{status:?}"),
        other => panic!("expected an API status, got {other:?}"),
    }
}

#[tokio::test]
async fn list_pages_with_limit_and_continue() {
    let fake = FakeApiServer::start().await;
    for i in 0..7 {
        fake.add_pod(agent_pod(
            "netchecker",
            &format!("agent-{i}"),
            "netchecker-agent",
            "n",
        ));
    }
    let version = fake.resource_version().to_string();
    let pods = Api::<Pod>::all(client_for(&fake).await);
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(3);
    let mut pages = 0;
    loop {
        let page = pods.list(&params).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        assert_eq!(
            page.metadata.resource_version.as_deref(),
            Some(version.as_str())
        );
        seen.extend(page.items.iter().map(|p| p.metadata.name.clone().unwrap()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        (0..7).map(|i| format!("agent-{i}")).collect::<Vec<_>>()
    );
    let bad = pods
        .list(&ListParams::default().continue_token("nonsense"))
        .await
        .unwrap_err();
    assert!(matches!(bad, kube::Error::Api(s) if s.code == 400));
}

#[tokio::test]
async fn namespaced_api_sees_only_its_namespace() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    fake.add_pod(agent_pod(
        "default",
        "in-default",
        "netchecker-agent",
        "node-c",
    ));
    let client = client_for(&fake).await;

    let ns = Api::<Pod>::namespaced(client.clone(), "netchecker");
    let list = ns.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        names(&list.items),
        set(&["agent-a", "agent-hostnet-a", "server"])
    );
    let list = ns
        .list(&ListParams::default().labels("app=netchecker-agent"))
        .await
        .unwrap();
    assert_eq!(names(&list.items), set(&["agent-a"]));

    // The kubeconfig's context namespace is "default".
    let default = Api::<Pod>::default_namespaced(client.clone());
    let list = default.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&list.items), set(&["in-default"]));

    let empty = Api::<Pod>::namespaced(client, "nowhere");
    assert!(
        empty
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn reflector_syncs_adds_modifies_and_deletes() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let client = client_for(&fake).await;
    let reflector =
        Reflector::start(client, watcher::Config::default().labels(AGENT_SELECTOR)).await;
    assert_eq!(
        reflector.names(),
        set(&["agent-a", "agent-hostnet-a", "agent-b"])
    );

    fake.add_pod(agent_pod(
        "netchecker",
        "agent-c",
        "netchecker-agent",
        "node-c",
    ));
    reflector
        .wait_for(&["agent-a", "agent-hostnet-a", "agent-b", "agent-c"])
        .await;

    // A change the selector still matches arrives as a modification.
    fake.add_pod(agent_pod(
        "netchecker",
        "agent-c",
        "netchecker-agent",
        "node-d",
    ));
    eventually("agent-c moves to node-d", || async {
        reflector.store.state().iter().any(|p| {
            p.metadata.name.as_deref() == Some("agent-c")
                && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node-d")
        })
    })
    .await;

    assert!(fake.delete_pod("other", "agent-b").is_some());
    reflector
        .wait_for(&["agent-a", "agent-hostnet-a", "agent-c"])
        .await;

    // Relabelled out of the selector: the watch reports it as deleted.
    fake.add_pod(agent_pod(
        "netchecker",
        "agent-c",
        "something-else",
        "node-d",
    ));
    reflector.wait_for(&["agent-a", "agent-hostnet-a"]).await;

    // Pods outside the selector never show up.
    fake.add_pod(agent_pod("netchecker", "unrelated", "other-app", "node-a"));
    fake.add_pod(agent_pod(
        "netchecker",
        "agent-d",
        "netchecker-agent",
        "node-a",
    ));
    reflector
        .wait_for(&["agent-a", "agent-hostnet-a", "agent-d"])
        .await;

    assert_eq!(
        fake.list_requests(),
        1,
        "one initial list, then only watches"
    );
    assert!(fake.watch_requests() >= 1);
}

#[tokio::test]
async fn streaming_list_reflector_needs_no_list() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let client = client_for(&fake).await;
    let reflector = Reflector::start(
        client,
        watcher::Config::default()
            .labels(AGENT_SELECTOR)
            .streaming_lists(),
    )
    .await;
    assert_eq!(
        reflector.names(),
        set(&["agent-a", "agent-hostnet-a", "agent-b"])
    );
    fake.delete_pod("netchecker", "agent-a");
    reflector.wait_for(&["agent-hostnet-a", "agent-b"]).await;
    assert_eq!(fake.list_requests(), 0);
}

#[tokio::test]
async fn watch_stream_protocol() {
    let fake = FakeApiServer::start().await;
    let pods = Api::<Pod>::all(client_for(&fake).await);
    let start = fake.resource_version().to_string();
    let mut events = pods
        .watch(&WatchParams::default().timeout(2), &start)
        .await
        .unwrap()
        .boxed();

    let added = fake.add_pod(agent_pod("ns", "p", "netchecker-agent", "n1"));
    let modified = fake.add_pod(agent_pod("ns", "p", "netchecker-agent", "n2"));
    let deleted = fake.delete_pod("ns", "p").unwrap();

    let mut seen = Vec::new();
    while let Some(event) = events.try_next().await.unwrap() {
        seen.push(event);
    }
    // The stream ended by itself at timeoutSeconds, after a final bookmark.
    assert_eq!(seen.len(), 4, "{seen:?}");
    let rv = |pod: &Pod| pod.metadata.resource_version.clone().unwrap();
    match &seen[..] {
        [
            WatchEvent::Added(a),
            WatchEvent::Modified(m),
            WatchEvent::Deleted(d),
            WatchEvent::Bookmark(b),
        ] => {
            assert_eq!(rv(a), rv(&added));
            assert_eq!(rv(m), rv(&modified));
            assert_eq!(rv(d), rv(&deleted));
            assert_eq!(b.metadata.resource_version, rv(&deleted));
            assert_eq!(m.spec.as_ref().unwrap().node_name.as_deref(), Some("n2"));
        }
        other => panic!("unexpected events {other:?}"),
    }
}

#[tokio::test]
async fn watch_from_an_expired_version_gets_410() {
    let fake = FakeApiServer::start().await;
    let pods = Api::<Pod>::all(client_for(&fake).await);
    let old = fake.resource_version().to_string();
    fake.add_pod(agent_pod("ns", "p", "a", "n"));
    fake.compact_history();

    let mut events = pods
        .watch(&WatchParams::default().timeout(5), &old)
        .await
        .unwrap()
        .boxed();
    match events.try_next().await.unwrap() {
        Some(WatchEvent::Error(status)) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected a 410 error event, got {other:?}"),
    }
    assert!(events.try_next().await.unwrap().is_none(), "stream ends");

    // Resuming from the current version still works.
    let now = fake.resource_version().to_string();
    let mut events = pods
        .watch(&WatchParams::default().timeout(5), &now)
        .await
        .unwrap()
        .boxed();
    fake.add_pod(agent_pod("ns", "q", "a", "n"));
    assert!(matches!(
        events.try_next().await.unwrap(),
        Some(WatchEvent::Added(p)) if p.metadata.name.as_deref() == Some("q")
    ));
}

#[tokio::test]
async fn injected_errors_fail_requests_and_recovery_resyncs() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let client = client_for(&fake).await;
    let reflector = Reflector::start(
        client.clone(),
        watcher::Config::default().labels(AGENT_SELECTOR),
    )
    .await;
    let pods = Api::<Pod>::all(client);

    // 500 is not retried inside the kube client, so the failure shows at once.
    fake.set_failure(Failure::Error(500));
    assert_eq!(fake.failure(), Failure::Error(500));
    match pods.list(&ListParams::default()).await.unwrap_err() {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 500);
            assert_eq!(status.reason, "InternalError");
        }
        other => panic!("expected an API status, got {other:?}"),
    }
    let watch_err = pods
        .watch(
            &WatchParams::default(),
            &fake.resource_version().to_string(),
        )
        .await
        .err()
        .expect("a watch fails too");
    assert!(
        matches!(watch_err, kube::Error::Api(ref s) if s.code == 500),
        "{watch_err:?}"
    );

    // The open watch was closed; the watcher's retries now fail.
    let watches = fake.watch_requests();
    fake.add_pod(agent_pod(
        "netchecker",
        "agent-new",
        "netchecker-agent",
        "node-x",
    ));
    eventually("watcher retries", || async {
        fake.watch_requests() >= watches + 2
    })
    .await;
    assert!(!reflector.names().contains("agent-new"));

    fake.set_failure(Failure::None);
    reflector
        .wait_for(&["agent-a", "agent-hostnet-a", "agent-b", "agent-new"])
        .await;
    assert_eq!(
        fake.list_requests(),
        2,
        "one initial list and the failed one"
    );
}

#[tokio::test]
async fn the_kube_client_retries_503_by_itself() {
    // kube's default client retries 429/503/504 with backoff before it
    // reports an error; a test that injects 503 sees that.
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let pods = Api::<Pod>::all(client_for(&fake).await);
    fake.set_failure(Failure::Error(503));
    let call = tokio::spawn(async move { pods.list(&ListParams::default()).await });
    eventually("the client retries", || async { fake.list_requests() >= 3 }).await;
    fake.set_failure(Failure::None);
    let list = tokio::time::timeout(PATIENCE, call)
        .await
        .expect("a retry succeeds")
        .unwrap()
        .unwrap();
    assert_eq!(list.items.len(), 4);
}

#[tokio::test]
async fn expired_history_makes_the_watcher_relist() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let client = client_for(&fake).await;
    let reflector =
        Reflector::start(client, watcher::Config::default().labels(AGENT_SELECTOR)).await;
    assert_eq!(fake.list_requests(), 1);

    // While the API is down the watcher falls behind; the history that
    // would let it resume is then compacted away.
    fake.set_failure(Failure::Error(500));
    fake.add_pod(agent_pod(
        "netchecker",
        "agent-late",
        "netchecker-agent",
        "node-x",
    ));
    fake.compact_history();
    fake.set_failure(Failure::None);

    reflector
        .wait_for(&["agent-a", "agent-hostnet-a", "agent-b", "agent-late"])
        .await;
    assert_eq!(fake.list_requests(), 2, "the 410 forced exactly one relist");
}

#[tokio::test]
async fn closed_watches_resume_without_relisting() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let client = client_for(&fake).await;
    let reflector =
        Reflector::start(client, watcher::Config::default().labels(AGENT_SELECTOR)).await;
    eventually("watch open", || async { fake.watch_requests() >= 1 }).await;
    let watches = fake.watch_requests();

    fake.set_failure(Failure::CloseWatches);
    assert_eq!(fake.failure(), Failure::None, "closing is a one-off action");
    eventually("watcher reconnects", || async {
        fake.watch_requests() > watches
    })
    .await;

    fake.add_pod(agent_pod(
        "netchecker",
        "agent-z",
        "netchecker-agent",
        "node-z",
    ));
    reflector
        .wait_for(&["agent-a", "agent-hostnet-a", "agent-b", "agent-z"])
        .await;
    assert_eq!(fake.list_requests(), 1);
}

#[tokio::test]
async fn hang_holds_requests_until_cleared() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let pods = Api::<Pod>::all(client_for(&fake).await);

    fake.set_failure(Failure::Hang);
    let held = tokio::spawn({
        let pods = pods.clone();
        async move { pods.list(&ListParams::default()).await }
    });
    eventually("request arrives", || async { fake.list_requests() == 1 }).await;
    // Still unanswered after it arrived (a long wait would prove nothing more).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!held.is_finished(), "a hanging API must not answer");

    fake.set_failure(Failure::None);
    let list = tokio::time::timeout(PATIENCE, held)
        .await
        .expect("answered once the hang ends")
        .unwrap()
        .unwrap();
    assert_eq!(list.items.len(), 4);
}

#[tokio::test]
async fn hang_list_holds_lists_and_serves_watches() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let pods = Api::<Pod>::all(client_for(&fake).await);

    fake.set_failure(Failure::HangList);
    let held = tokio::spawn({
        let pods = pods.clone();
        async move { pods.list(&ListParams::default()).await }
    });
    eventually("list arrives", || async { fake.list_requests() == 1 }).await;
    // A watch is served meanwhile and sees a change.
    let rv = fake.resource_version().to_string();
    let mut events = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("a watch is served while lists hang")
        .boxed();
    fake.add_pod(agent_pod("netchecker", "agent-w", "netchecker-agent", "n"));
    let event = tokio::time::timeout(PATIENCE, events.try_next())
        .await
        .expect("an event arrives")
        .unwrap()
        .unwrap();
    assert!(
        matches!(event, WatchEvent::Added(ref p) if p.metadata.name.as_deref() == Some("agent-w"))
    );
    assert!(!held.is_finished(), "the list is still held");

    fake.set_failure(Failure::None);
    let list = tokio::time::timeout(PATIENCE, held)
        .await
        .expect("answered once the hang ends")
        .unwrap()
        .unwrap();
    assert_eq!(list.items.len(), 5);
}

#[tokio::test]
async fn close_watches_ends_open_watches_and_keeps_the_mode() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let pods = Api::<Pod>::all(client_for(&fake).await);
    fake.set_failure(Failure::HangList);
    let rv = fake.resource_version().to_string();
    let mut events = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    fake.close_watches();
    let end = tokio::time::timeout(PATIENCE, events.try_next())
        .await
        .expect("the stream ends");
    assert!(matches!(end, Ok(None)), "{end:?}");
    assert_eq!(fake.failure(), Failure::HangList);
}

#[tokio::test]
async fn gone_on_watch_answers_410_and_the_watcher_relists_each_time() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let client = client_for(&fake).await;
    let pods = Api::<Pod>::all(client.clone());
    let reflector =
        Reflector::start(client, watcher::Config::default().labels(AGENT_SELECTOR)).await;
    eventually("watch open", || async { fake.watch_requests() >= 1 }).await;
    assert_eq!(fake.list_requests(), 1);

    fake.set_failure(Failure::GoneOnWatch);
    let rv = fake.resource_version().to_string();
    let mut events = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match events.try_next().await.unwrap() {
        Some(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 error event, got {other:?}"),
    }
    assert!(
        events.try_next().await.unwrap().is_none(),
        "the watch ends after the error"
    );

    // The open watch was closed; every new one is gone, so the watcher
    // keeps relisting, and lists still bring changes in.
    eventually("watcher relists", || async { fake.list_requests() >= 3 }).await;
    fake.add_pod(agent_pod(
        "netchecker",
        "agent-r",
        "netchecker-agent",
        "node-r",
    ));
    reflector
        .wait_for(&["agent-a", "agent-hostnet-a", "agent-b", "agent-r"])
        .await;

    fake.set_failure(Failure::None);
    let lists = fake.list_requests();
    fake.add_pod(agent_pod(
        "netchecker",
        "agent-s",
        "netchecker-agent",
        "node-s",
    ));
    reflector
        .wait_for(&[
            "agent-a",
            "agent-hostnet-a",
            "agent-b",
            "agent-r",
            "agent-s",
        ])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        fake.list_requests() <= lists + 1,
        "watching again, no more relists"
    );
}

#[tokio::test]
async fn counters_count_api_requests_only() {
    let fake = FakeApiServer::start().await;
    let client = client_for(&fake).await;
    assert_eq!(
        fake.total_requests(),
        0,
        "building a client makes no request"
    );

    let pods = Api::<Pod>::all(client.clone());
    pods.list(&ListParams::default()).await.unwrap();
    pods.list(&ListParams::default()).await.unwrap();
    let rv = fake.resource_version().to_string();
    drop(
        pods.watch(&WatchParams::default().timeout(1), &rv)
            .await
            .unwrap(),
    );

    // An unknown path is answered with a 404 Status and counted in total.
    let request = http::Request::get("/api/v1/services")
        .body(Vec::new())
        .unwrap();
    match client.request_text(request).await.unwrap_err() {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 404);
            assert_eq!(status.reason, "NotFound");
        }
        other => panic!("expected an API status, got {other:?}"),
    }
    // A known path with a method it does not serve gets a 405 Status.
    let request = http::Request::post("/api/v1/pods")
        .body(b"{}".to_vec())
        .unwrap();
    match client.request_text(request).await.unwrap_err() {
        kube::Error::Api(status) => assert_eq!(status.code, 405),
        other => panic!("expected an API status, got {other:?}"),
    }
    // Control routes are not counted.
    let request = http::Request::get("/fake/requests")
        .body(Vec::new())
        .unwrap();
    let counts: serde_json::Value =
        serde_json::from_str(&client.request_text(request).await.unwrap()).unwrap();

    assert_eq!(fake.list_requests(), 2);
    assert_eq!(fake.watch_requests(), 1);
    assert_eq!(fake.total_requests(), 5);
    assert_eq!(
        counts,
        serde_json::json!({ "list": 2, "watch": 1, "total": 5 })
    );
}

#[tokio::test]
async fn shutdown_ends_open_watches() {
    let fake = FakeApiServer::start().await;
    let pods = Api::<Pod>::all(client_for(&fake).await);
    let rv = fake.resource_version().to_string();
    let mut events = pods
        .watch(&WatchParams::default().timeout(300), &rv)
        .await
        .unwrap()
        .boxed();
    tokio::time::timeout(PATIENCE, fake.shutdown())
        .await
        .expect("shutdown finishes");
    let end = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the stream ends");
    assert!(end.is_none(), "{end:?}");
}

#[tokio::test]
async fn watch_from_any_version_starts_with_the_current_pods() {
    let fake = FakeApiServer::start().await;
    seed(&fake);
    let pods = Api::<Pod>::namespaced(client_for(&fake).await, "netchecker");
    let mut events = pods
        .watch(
            &WatchParams::default().labels(AGENT_SELECTOR).timeout(5),
            "0",
        )
        .await
        .unwrap()
        .boxed();
    let mut initial = BTreeSet::new();
    for _ in 0..2 {
        match events.try_next().await.unwrap() {
            Some(WatchEvent::Added(pod)) => {
                initial.insert(pod.metadata.name.unwrap());
            }
            other => panic!("expected a synthetic ADDED, got {other:?}"),
        }
    }
    assert_eq!(initial, set(&["agent-a", "agent-hostnet-a"]));
    fake.add_pod(agent_pod("other", "elsewhere", "netchecker-agent", "n"));
    fake.add_pod(agent_pod("netchecker", "agent-x", "netchecker-agent", "n"));
    assert!(matches!(
        events.try_next().await.unwrap(),
        Some(WatchEvent::Added(p)) if p.metadata.name.as_deref() == Some("agent-x")
    ));
}

#[tokio::test]
async fn rejects_what_the_real_api_rejects() {
    let fake = FakeApiServer::start().await;
    let client = client_for(&fake).await;
    for (path, code) in [
        // Streaming lists need resourceVersionMatch=NotOlderThan.
        ("/api/v1/pods?watch=true&sendInitialEvents=true", 422),
        ("/api/v1/pods?resourceVersion=abc", 400),
        ("/api/v1/pods?watch=true&resourceVersion=abc", 400),
        ("/api/v1/pods?watch=true&timeoutSeconds=soon", 400),
        ("/api/v1/namespaces/x/pods?labelSelector=a%20in%20()", 400),
    ] {
        let request = http::Request::get(path).body(Vec::new()).unwrap();
        match client.request_text(request).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, code, "{path}"),
            other => panic!("{path}: expected status {code}, got {other:?}"),
        }
    }
    // Parameters the fake does not need are accepted.
    let request =
        http::Request::get("/api/v1/pods?limit=1&continue=&pretty=true&fieldSelector=x%3Dy")
            .body(Vec::new())
            .unwrap();
    let list: serde_json::Value =
        serde_json::from_str(&client.request_text(request).await.unwrap()).unwrap();
    assert_eq!(list["kind"], "PodList");
    assert_eq!(list["apiVersion"], "v1");
}
