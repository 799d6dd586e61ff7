//! Open incidents across restarts and hand-overs, against the fake
//! Kubernetes API over real HTTP: the leader keeps them in a ConfigMap, a
//! recovery that happens while no replica speaks is still sent and closes
//! the incident, nothing is sent twice, and events a leader could not
//! deliver are sent by the next one with the same ids.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use netchecker_fake_apiserver::FakeApiServer;
use serde_json::{Value, json};

mod common;
mod fixture;
mod in_process;
mod replicas;
mod scrape;
use replicas::*;

const CONFIGMAP: &str = "netchecker-incidents";

/// The record the leader keeps.
fn record(api: &FakeApiServer) -> Option<Value> {
    let cm = api.config_map(NS, CONFIGMAP)?;
    serde_json::from_str(cm.data?.get("incidents.json")?).ok()
}

fn changes(bodies: &[Value]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| format!("{}->{}", b["old_verdict"], b["new_verdict"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_while_the_server_was_down_is_sent_after_its_restart() {
    let api = fake().await;
    let (url, bodies) = receiver().await;
    let hook = ["--webhook-url", url.as_str()];
    let a = replica(&api, "server-a", &hook).await;
    one_leader(&api, &[&a]).await;
    reporting(&[&a], true, 3).await;
    // The pod agent stops: pod network down, an incident opens.
    reporting(&[&a], false, 4).await;
    eventually("the problem is sent", Duration::from_secs(5), || async {
        bodies.lock().unwrap().len() == 1
    })
    .await;
    let opened = bodies.lock().unwrap()[0].clone();
    let id = opened["id"].as_str().unwrap().to_owned();
    assert_eq!(opened["incident"], id.as_str());
    a.stop().await;
    let stored = record(&api).expect("the record is written");
    assert_eq!(
        stored["open"]["node-1"],
        json!({"verdict": "pod_network_down", "incident": id})
    );
    assert_eq!(stored["unsent"], json!([]), "delivered before it stopped");

    // While no server runs, the pod network recovers. The restarted
    // server reads the record and sends the recovery, once.
    let b = replica(&api, "server-b", &hook).await;
    reporting(&[&b], true, 4).await;
    eventually("the recovery is sent", Duration::from_secs(5), || async {
        bodies.lock().unwrap().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = bodies.lock().unwrap().clone();
    assert_eq!(
        changes(&got),
        [
            r#""healthy"->"pod_network_down""#,
            r#""pod_network_down"->"healthy""#
        ]
    );
    assert_eq!(got[1]["incident"], id.as_str(), "it closes the incident");
    assert_ne!(got[1]["id"], got[0]["id"]);
    assert_eq!(b.metric("netchecker_incidents_open").await, 0.0);
    assert_eq!(
        b.metric(r#"netchecker_incident_store_total{operation="load",result="ok"}"#)
            .await,
        1.0
    );
    b.stop().await;
    assert_eq!(record(&api).unwrap()["open"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_sends_each_change_once() {
    let api = fake().await;
    let (url, bodies) = receiver().await;
    let hook = ["--webhook-url", url.as_str()];
    let a = replica(&api, "server-a", &hook).await;
    let b = replica(&api, "server-b", &hook).await;
    let leader = one_leader(&api, &[&a, &b]).await.id.clone();
    let (first, second) = if leader == a.id { (a, b) } else { (b, a) };
    reporting(&[&first, &second], true, 3).await;
    reporting(&[&first, &second], false, 4).await;
    eventually("the problem is sent", Duration::from_secs(5), || async {
        bodies.lock().unwrap().len() == 1
    })
    .await;
    // The leader stops while the problem lasts; the other takes over at
    // once (the lease is released) and stays silent about it.
    first.stop().await;
    one_leader(&api, &[&second]).await;
    reporting(&[&second], false, 3).await;
    assert_eq!(
        bodies.lock().unwrap().len(),
        1,
        "not sent again by the new leader"
    );
    // The recovery comes from the new leader, closing the same incident.
    reporting(&[&second], true, 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = bodies.lock().unwrap().clone();
    assert_eq!(
        changes(&got),
        [
            r#""healthy"->"pod_network_down""#,
            r#""pod_network_down"->"healthy""#
        ]
    );
    assert_eq!(got[1]["incident"], got[0]["id"]);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_a_leader_left_undelivered_are_sent_by_the_next_with_their_ids() {
    let api = fake().await;
    // What a leader killed before its webhook answered leaves behind.
    let unsent = json!({
        "node": "node-1", "old_verdict": "healthy", "new_verdict": "unreachable",
        "reason": "no agent on this node reports on time", "agents": [],
        "time": "2026-12-01T10:00:00Z",
        "id": "18f-4:node-1:unreachable", "incident": "18f-4:node-1:unreachable"
    });
    let stored = json!({
        "version": 1, "epoch": "18f", "seq": 4,
        "open": {"node-1": {"verdict": "unreachable", "incident": "18f-4:node-1:unreachable"}},
        "unsent": [unsent]
    });
    api.put_config_map(ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONFIGMAP.into()),
            namespace: Some(NS.into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "incidents.json".to_owned(),
            stored.to_string(),
        )])),
        ..ConfigMap::default()
    });
    let (url, bodies) = receiver().await;
    let a = replica(&api, "server-a", &["--webhook-url", &url]).await;
    one_leader(&api, &[&a]).await;
    // The node is fine by now: the undelivered event goes out as it was,
    // then the recovery, which closes that incident with the next id.
    reporting(&[&a], true, 3).await;
    eventually("both are sent", Duration::from_secs(5), || async {
        bodies.lock().unwrap().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = bodies.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], unsent, "sent again unchanged");
    assert_eq!(got[1]["old_verdict"], "unreachable");
    assert_eq!(got[1]["new_verdict"], "healthy");
    assert_eq!(got[1]["id"], "18f-5:node-1:healthy");
    assert_eq!(got[1]["incident"], "18f-4:node-1:unreachable");
    a.stop().await;
    let left = record(&api).unwrap();
    assert_eq!(
        (left["unsent"].clone(), left["seq"].clone()),
        (json!([]), json!(5))
    );
}
