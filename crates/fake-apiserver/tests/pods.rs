//! The richer agent pods through the real kube client: service account,
//! host network, pod and host IPs, and a pod that is terminating before it
//! is deleted (Rust API and control route).

mod support;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, WatchEvent, WatchParams};
use netchecker_fake_apiserver::{FakeApiServer, PodBuilder, agent_pod, default_host_ip, node};
use support::{client_for, send};

#[tokio::test]
async fn pods_carry_service_account_addresses_and_host_network() {
    let fake = FakeApiServer::start().await;
    fake.add_node(node("pods-it-node"));
    fake.add_pod(agent_pod(
        "netchecker",
        "agent",
        "netchecker-agent",
        "pods-it-node",
    ));
    fake.add_pod(agent_pod(
        "netchecker",
        "agent-hostnet",
        "netchecker-agent-hostnet",
        "pods-it-node",
    ));
    fake.add_pod(
        PodBuilder::new("netchecker", "dual", "netchecker-agent", "pods-it-node")
            .dual_stack()
            .service_account("custom"),
    );
    let pods = Api::<Pod>::namespaced(client_for(&fake).await, "netchecker");
    let list = pods.list(&ListParams::default()).await.unwrap();
    let host_ip = default_host_ip("pods-it-node").to_string();
    for pod in &list.items {
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.host_ip.as_deref(), Some(host_ip.as_str()));
        assert!(status.pod_ip.as_deref().unwrap().starts_with("198.1"));
        assert_eq!(
            status.pod_ips.as_ref().unwrap()[0].ip,
            status.pod_ip.clone().unwrap()
        );
    }
    let agent = &list.items[0];
    assert_eq!(agent.metadata.name.as_deref(), Some("agent"));
    assert_eq!(
        agent.spec.as_ref().unwrap().service_account_name.as_deref(),
        Some("netchecker-agent")
    );
    let dual = list.items[2].status.as_ref().unwrap();
    assert_eq!(dual.pod_ips.as_ref().unwrap().len(), 2);
    assert_eq!(dual.host_ips.as_ref().unwrap().len(), 2);
    assert!(dual.pod_ips.as_ref().unwrap()[1].ip.starts_with("2001:2::"));

    let hostnet = pods
        .list(&ListParams::default().fields("spec.hostNetwork=true"))
        .await
        .unwrap();
    assert_eq!(hostnet.items.len(), 1);
    let status = hostnet.items[0].status.as_ref().unwrap();
    assert_eq!(status.pod_ip, status.host_ip);
    let custom = pods
        .list(&ListParams::default().fields("spec.serviceAccountName=custom"))
        .await
        .unwrap();
    assert_eq!(custom.items[0].metadata.name.as_deref(), Some("dual"));
}

#[tokio::test]
async fn a_terminating_pod_is_modified_then_deleted() {
    let fake = FakeApiServer::start().await;
    let client = client_for(&fake).await;
    let pods = Api::<Pod>::all(client.clone());
    let added = fake.add_pod(agent_pod("netchecker", "a", "netchecker-agent", "n"));
    fake.add_pod(agent_pod("netchecker", "b", "netchecker-agent", "n"));
    let rv = fake.resource_version().to_string();
    let mut events = pods
        .watch(&WatchParams::default().timeout(2), &rv)
        .await
        .unwrap()
        .boxed();

    let terminating = fake.terminate_pod("netchecker", "a").unwrap();
    assert!(fake.terminate_pod("netchecker", "nope").is_none());
    assert_eq!(
        fake.pod("netchecker", "a")
            .unwrap()
            .metadata
            .deletion_timestamp,
        terminating.metadata.deletion_timestamp
    );
    fake.delete_pod("netchecker", "a").unwrap();
    // The same through the control route.
    let by_route = send(&client, "POST", "/fake/pods/netchecker/b/terminate", None)
        .await
        .unwrap();
    assert!(by_route["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(by_route["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(
        send(
            &client,
            "POST",
            "/fake/pods/netchecker/nope/terminate",
            None
        )
        .await,
        Err(404)
    );

    let mut seen = Vec::new();
    while let Some(event) = events.try_next().await.unwrap() {
        seen.push(event);
    }
    match &seen[..] {
        [
            WatchEvent::Modified(t),
            WatchEvent::Deleted(d),
            WatchEvent::Modified(b),
            WatchEvent::Bookmark(_),
        ] => {
            assert_eq!(t.metadata.uid, added.metadata.uid);
            assert!(t.metadata.deletion_timestamp.is_some());
            assert_eq!(t.metadata.deletion_grace_period_seconds, Some(30));
            assert_eq!(d.metadata.name.as_deref(), Some("a"));
            assert_eq!(b.metadata.name.as_deref(), Some("b"));
            assert!(b.metadata.deletion_timestamp.is_some());
        }
        other => panic!("unexpected events {other:?}"),
    }
}

#[tokio::test]
async fn builder_control_routes_make_what_the_builders_make() {
    let fake = FakeApiServer::start().await;
    let client = client_for(&fake).await;
    let pod = send(
        &client,
        "POST",
        "/fake/build/pod",
        Some(serde_json::json!({
            "namespace": "netchecker", "name": "agent-h", "app": "netchecker-agent-hostnet",
            "node": "pods-it-built", "dualStack": true, "serviceAccount": "sa-x",
            "terminating": true
        })),
    )
    .await
    .unwrap();
    assert_eq!(pod["spec"]["hostNetwork"], true);
    assert_eq!(pod["spec"]["serviceAccountName"], "sa-x");
    assert_eq!(pod["status"]["podIPs"].as_array().unwrap().len(), 2);
    assert!(pod["metadata"]["deletionTimestamp"].is_string());
    assert!(pod["metadata"]["resourceVersion"].is_string());
    let pod = send(
        &client,
        "POST",
        "/fake/build/pod",
        Some(serde_json::json!({
            "namespace": "netchecker", "name": "agent-p", "app": "netchecker-agent",
            "node": "n", "podIPs": ["198.19.50.1"], "hostIPs": ["198.18.50.1"],
            "uid": "u-1", "phase": "Pending", "hostNetwork": false
        })),
    )
    .await
    .unwrap();
    assert_eq!(pod["status"]["podIP"], "198.19.50.1");
    assert_eq!(pod["status"]["hostIP"], "198.18.50.1");
    assert_eq!(pod["metadata"]["uid"], "u-1");
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(fake.pods().len(), 2);

    let node = send(
        &client,
        "POST",
        "/fake/build/node",
        Some(serde_json::json!({"name": "pods-it-built", "ready": "false", "unschedulable": true})),
    )
    .await
    .unwrap();
    assert_eq!(node["status"]["conditions"][0]["status"], "False");
    assert_eq!(node["spec"]["unschedulable"], true);
    assert_eq!(
        node["status"]["addresses"][0]["address"],
        default_host_ip("pods-it-built").to_string()
    );
    let node = send(
        &client,
        "POST",
        "/fake/build/node",
        Some(serde_json::json!({"name": "n2", "ready": "unknown", "internalIPs": ["198.18.60.1"]})),
    )
    .await
    .unwrap();
    assert_eq!(node["status"]["conditions"][0]["status"], "Unknown");
    assert_eq!(node["status"]["addresses"][0]["address"], "198.18.60.1");
    assert_eq!(fake.nodes().len(), 2);
    for (path, body) in [
        ("/fake/build/pod", serde_json::json!({"name": "x"})),
        (
            "/fake/build/node",
            serde_json::json!({"name": "x", "ready": "maybe"}),
        ),
        (
            "/fake/build/node",
            serde_json::json!({"name": "x", "extra": 1}),
        ),
    ] {
        assert_eq!(
            send(&client, "POST", path, Some(body)).await,
            Err(400),
            "{path}"
        );
    }
    assert_eq!(
        send(
            &client,
            "POST",
            "/fake/build/node",
            Some(serde_json::json!({"name": ""}))
        )
        .await,
        Err(422)
    );
}
