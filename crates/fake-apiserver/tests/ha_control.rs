//! The `/fake/` control routes for leases, config maps, events, node
//! conditions and one-shot faults, as a harness outside the process uses
//! them.

mod support;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use netchecker_fake_apiserver::{FakeApiServer, lease, node};
use serde_json::json;
use support::{api_error, client_for, namespaced, send};

#[tokio::test]
async fn leases_are_read_stolen_expired_and_deleted() {
    let fake = FakeApiServer::start().await;
    let client = client_for(&fake).await;
    let stored = send(
        &client,
        "POST",
        "/fake/leases",
        Some(serde_json::to_value(lease("ns", "l", "server-0")).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(stored["spec"]["holderIdentity"], "server-0");
    let listed = send(&client, "GET", "/fake/leases", None).await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let stolen = send(
        &client,
        "POST",
        "/fake/leases/ns/l/steal",
        Some(json!({"holder": "rival"})),
    )
    .await
    .unwrap();
    assert_eq!(stolen["spec"]["holderIdentity"], "rival");
    assert_eq!(stolen["spec"]["leaseTransitions"], 1);
    let expired = send(&client, "POST", "/fake/leases/ns/l/expire", None)
        .await
        .unwrap();
    assert_ne!(expired["spec"]["renewTime"], stolen["spec"]["renewTime"]);
    let renewed = fake
        .lease("ns", "l")
        .unwrap()
        .spec
        .unwrap()
        .renew_time
        .unwrap()
        .0;
    let age = jiff::Timestamp::now().duration_since(renewed);
    assert!(age > jiff::SignedDuration::from_secs(15), "expired: {age}");
    assert_eq!(
        send(
            &client,
            "POST",
            "/fake/leases/ns/ghost/steal",
            Some(json!({"holder": "x"}))
        )
        .await,
        Err(404)
    );
    assert_eq!(
        send(&client, "POST", "/fake/leases/ns/l/steal", Some(json!({}))).await,
        Err(400)
    );
    send(&client, "DELETE", "/fake/leases/ns/l", None)
        .await
        .unwrap();
    assert!(fake.leases().is_empty());
    assert_eq!(
        fake.lease_requests(),
        0,
        "control routes are not API requests"
    );
}

#[tokio::test]
async fn faults_are_injected_listed_used_up_and_cleared() {
    let fake = FakeApiServer::start().await;
    let client = client_for(&fake).await;
    let leases: Api<Lease> = namespaced(&fake, "ns").await;
    let fault = json!({"resource": "leases", "verb": "create", "status": 409});
    let pending = send(&client, "POST", "/fake/faults", Some(fault))
        .await
        .unwrap();
    assert_eq!(
        pending,
        json!([{"resource": "leases", "verb": "create", "status": 409, "times": 1}])
    );
    let refused = leases
        .create(&PostParams::default(), &lease("ns", "l", "a"))
        .await;
    assert_eq!(api_error(refused), (409, "Conflict".to_owned()));
    assert!(fake.lease("ns", "l").is_none());
    assert_eq!(
        send(&client, "GET", "/fake/faults", None).await.unwrap(),
        json!([])
    );

    let twice = json!({"resource": "leases", "verb": "get", "times": 2});
    send(&client, "POST", "/fake/faults", Some(twice))
        .await
        .unwrap();
    send(&client, "DELETE", "/fake/faults", None).await.unwrap();
    assert!(fake.pending_faults().is_empty());
    let unknown = json!({"resource": "secrets", "verb": "get"});
    assert_eq!(
        send(&client, "POST", "/fake/faults", Some(unknown)).await,
        Err(400)
    );
    leases
        .create(&PostParams::default(), &lease("ns", "l", "a"))
        .await
        .unwrap();
}

#[tokio::test]
async fn config_maps_events_and_node_conditions() {
    let fake = FakeApiServer::start().await;
    let client = client_for(&fake).await;
    let map = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "state", "namespace": "ns"}, "data": {"a": "1"}});
    send(&client, "POST", "/fake/configmaps", Some(map))
        .await
        .unwrap();
    assert_eq!(
        fake.config_map("ns", "state").unwrap().data.unwrap()["a"],
        "1"
    );
    let listed = send(&client, "GET", "/fake/configmaps", None)
        .await
        .unwrap();
    assert_eq!(listed[0]["metadata"]["name"], "state");
    send(&client, "DELETE", "/fake/configmaps/ns/state", None)
        .await
        .unwrap();
    assert!(fake.config_maps().is_empty());

    let event = json!({"metadata": {"name": "e"}, "involvedObject": {"name": "x"},
        "message": "hello"});
    send(&client, "POST", "/api/v1/namespaces/ns/events", Some(event))
        .await
        .unwrap();
    let core = send(&client, "GET", "/fake/events", None).await.unwrap();
    assert_eq!(core[0]["message"], "hello");
    let v1 = send(&client, "GET", "/fake/events.k8s.io", None)
        .await
        .unwrap();
    assert_eq!(v1[0]["note"], "hello");
    assert_eq!(v1[0]["apiVersion"], "events.k8s.io/v1");

    fake.add_node(node("node-a"));
    let condition = json!({"type": "NetcheckerMesh", "status": "False"});
    let changed = send(
        &client,
        "POST",
        "/fake/nodes/node-a/conditions",
        Some(condition),
    )
    .await
    .unwrap();
    assert_eq!(changed["status"]["conditions"][1]["type"], "NetcheckerMesh");
    let read = send(&client, "GET", "/fake/nodes/node-a/conditions", None)
        .await
        .unwrap();
    assert_eq!(read.as_array().unwrap().len(), 2);
    assert_eq!(fake.node_conditions("node-a").unwrap()[1].status, "False");
    assert_eq!(
        send(&client, "GET", "/fake/nodes/ghost/conditions", None).await,
        Err(404)
    );
}
