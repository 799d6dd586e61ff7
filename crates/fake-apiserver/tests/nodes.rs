//! Nodes through the real kube client, watcher and reflector: LIST with
//! selectors and pages, WATCH events, resourceVersions shared with pods,
//! 410 on expired versions, failure injection, and the control routes.

mod support;

use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use netchecker_fake_apiserver::{Failure, FakeApiServer, agent_pod, node};
use serde_json::json;
use support::{PATIENCE, client_for, eventually, send};

fn names(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| n.metadata.name.clone().unwrap())
        .collect()
}

fn ready(node: &Node) -> Option<String> {
    let conditions = node.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
    Some(ready.status.clone())
}

#[tokio::test]
async fn list_nodes_with_selectors_pages_and_a_shared_version() {
    let fake = FakeApiServer::start().await;
    fake.add_pod(agent_pod(
        "netchecker",
        "agent-a",
        "netchecker-agent",
        "node-a",
    ));
    let a = fake.add_node(node("node-a"));
    let pod_version = fake.pods()[0].metadata.resource_version.clone().unwrap();
    assert_eq!(
        a.metadata.resource_version,
        Some((pod_version.parse::<u64>().unwrap() + 1).to_string()),
        "pods and nodes take versions from one counter"
    );
    fake.add_node(node("node-b").unschedulable(true));
    fake.add_node(node("node-c").not_ready());
    let nodes = Api::<Node>::all(client_for(&fake).await);

    let all = nodes.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&all.items), ["node-a", "node-b", "node-c"]);
    assert_eq!(
        all.metadata.resource_version,
        Some(fake.resource_version().to_string())
    );
    assert_eq!(ready(&all.items[2]).as_deref(), Some("False"));
    assert!(all.items.iter().all(|n| n.metadata.namespace.is_none()));
    assert!(all.items.iter().all(|n| n.metadata.uid.is_some()));

    let schedulable = nodes
        .list(&ListParams::default().fields("spec.unschedulable=false"))
        .await
        .unwrap();
    assert_eq!(names(&schedulable.items), ["node-a", "node-c"]);
    let by_label = nodes
        .list(&ListParams::default().labels("kubernetes.io/hostname in (node-b,node-c)"))
        .await
        .unwrap();
    assert_eq!(names(&by_label.items), ["node-b", "node-c"]);
    let by_name = nodes
        .list(&ListParams::default().fields("metadata.name=node-b"))
        .await
        .unwrap();
    assert_eq!(names(&by_name.items), ["node-b"]);

    let first = nodes.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(names(&first.items), ["node-a", "node-b"]);
    let token = first.metadata.continue_.clone().unwrap();
    let rest = nodes
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(&rest.items), ["node-c"]);
    assert_eq!(
        rest.metadata.resource_version,
        first.metadata.resource_version
    );
    assert!(rest.metadata.continue_.is_none());

    assert_eq!(fake.node_list_requests(), 6);
    assert_eq!(fake.list_requests(), 0, "pod counters stay apart");
}

#[tokio::test]
async fn node_watch_sees_changes_terminating_and_deletion() {
    let fake = FakeApiServer::start().await;
    let nodes = Api::<Node>::all(client_for(&fake).await);
    let start = fake.resource_version().to_string();
    let mut events = nodes
        .watch(&WatchParams::default().timeout(2), &start)
        .await
        .unwrap()
        .boxed();
    let added = fake.add_node(node("node-a"));
    let not_ready = fake.add_node(node("node-a").not_ready());
    // A pod change in between is not a node event, but moves the version.
    fake.add_pod(agent_pod("ns", "p", "netchecker-agent", "node-a"));
    let terminating = fake.terminate_node("node-a").unwrap();
    let deleted = fake.delete_node("node-a").unwrap();
    assert!(fake.delete_node("node-a").is_none());

    let mut seen = Vec::new();
    while let Some(event) = events.try_next().await.unwrap() {
        seen.push(event);
    }
    let rv = |n: &Node| n.metadata.resource_version.clone().unwrap();
    match &seen[..] {
        [
            WatchEvent::Added(a),
            WatchEvent::Modified(m),
            WatchEvent::Modified(t),
            WatchEvent::Deleted(d),
            WatchEvent::Bookmark(b),
        ] => {
            assert_eq!(rv(a), rv(&added));
            assert_eq!(ready(m).as_deref(), Some("False"));
            assert_eq!(m.metadata.uid, added.metadata.uid, "replace keeps the uid");
            assert_eq!(rv(m), rv(&not_ready));
            assert!(t.metadata.deletion_timestamp.is_some());
            assert_eq!(rv(t), rv(&terminating));
            assert_eq!(rv(d), rv(&deleted));
            assert_eq!(b.metadata.resource_version, rv(&deleted));
            assert_eq!(b.types.kind, "Node");
        }
        other => panic!("unexpected events {other:?}"),
    }
    assert_eq!(fake.node_watch_requests(), 1);
    assert_eq!(fake.watch_requests(), 0);
}

#[tokio::test]
async fn node_reflector_streams_lists_and_relists_after_410() {
    let fake = FakeApiServer::start().await;
    fake.add_node(node("node-a"));
    fake.add_node(node("node-b"));
    let client = client_for(&fake).await;
    let current = |store: &reflector::Store<Node>| {
        store
            .state()
            .iter()
            .map(|n| n.metadata.name.clone().unwrap())
            .collect::<BTreeSet<_>>()
    };

    // A streaming list: no LIST at all.
    let (streamed, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(
            Api::<Node>::all(client.clone()),
            watcher::Config::default().streaming_lists(),
        ),
    );
    let streaming = tokio::spawn(stream.for_each(|_| async {}));
    tokio::time::timeout(PATIENCE, streamed.wait_until_ready())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current(&streamed).len(), 2);
    assert_eq!(fake.node_list_requests(), 0);
    streaming.abort();

    // A list-then-watch reflector, which falls behind while the API fails
    // and finds the history compacted when it comes back.
    let (store, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(Api::<Node>::all(client), watcher::Config::default()),
    )
    .default_backoff();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    tokio::time::timeout(PATIENCE, store.wait_until_ready())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fake.node_list_requests(), 1);
    fake.set_failure(Failure::Error(500));
    assert!(
        Api::<Node>::all(client_for(&fake).await)
            .list(&ListParams::default())
            .await
            .is_err()
    );
    fake.add_node(node("node-c"));
    fake.compact_history();
    fake.set_failure(Failure::None);
    eventually("the reflector relists and sees node-c", || async {
        current(&store).contains("node-c")
    })
    .await;
    fake.delete_node("node-a");
    eventually("node-a leaves", || async {
        !current(&store).contains("node-a")
    })
    .await;
    assert!(fake.node_list_requests() >= 3, "the 410 forced a relist");
    task.abort();
}

#[tokio::test]
async fn node_watch_from_an_expired_version_gets_410() {
    let fake = FakeApiServer::start().await;
    let nodes = Api::<Node>::all(client_for(&fake).await);
    let old = fake.resource_version().to_string();
    fake.add_node(node("node-a"));
    fake.compact_history();
    let mut events = nodes
        .watch(&WatchParams::default().timeout(5), &old)
        .await
        .unwrap()
        .boxed();
    match events.try_next().await.unwrap() {
        Some(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 error event, got {other:?}"),
    }
}

#[tokio::test]
async fn node_control_routes() {
    let fake = FakeApiServer::start().await;
    let client = client_for(&fake).await;
    let body = serde_json::to_value(node("node-x").build()).unwrap();
    let stored = send(&client, "POST", "/fake/nodes", Some(body))
        .await
        .unwrap();
    assert_eq!(stored["metadata"]["name"], "node-x");
    assert!(stored["metadata"]["resourceVersion"].is_string());
    let listed = send(&client, "GET", "/fake/nodes", None).await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let terminating = send(&client, "POST", "/fake/nodes/node-x/terminate", None)
        .await
        .unwrap();
    assert!(terminating["metadata"]["deletionTimestamp"].is_string());
    send(&client, "DELETE", "/fake/nodes/node-x", None)
        .await
        .unwrap();
    assert!(fake.nodes().is_empty());
    assert_eq!(
        send(&client, "DELETE", "/fake/nodes/node-x", None).await,
        Err(404)
    );
    assert_eq!(
        send(&client, "POST", "/fake/nodes/node-x/terminate", None).await,
        Err(404)
    );
    assert_eq!(
        send(
            &client,
            "POST",
            "/fake/nodes",
            Some(json!({"metadata": {}}))
        )
        .await,
        Err(422)
    );
    assert_eq!(
        send(&client, "POST", "/fake/nodes", Some(json!([1]))).await,
        Err(400)
    );
    // Control routes are not API requests.
    assert_eq!(fake.total_requests(), 0);
}
