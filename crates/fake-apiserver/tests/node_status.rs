//! Node status writes through the real kube client, as a server that
//! reports a node condition makes them: strategic merge patches and
//! applies merge `status.conditions` by type and touch nothing else, merge
//! patches replace the list, every write bumps the resourceVersion and
//! reaches node watchers as `MODIFIED`.

mod support;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use kube::Api;
use kube::api::{Patch, PatchParams, WatchEvent, WatchParams};
use netchecker_fake_apiserver::{FakeApiServer, Fault, Verb, node};
use serde_json::json;
use support::{PATIENCE, api_error, client_for};

fn conditions(node: &Node) -> Vec<(String, String)> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| (c.type_.clone(), c.status.clone()))
        .collect()
}

fn condition<'a>(node: &'a Node, type_: &str) -> &'a NodeCondition {
    let all = node.status.as_ref().unwrap().conditions.as_ref().unwrap();
    all.iter().find(|c| c.type_ == type_).unwrap()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(t, s)| ((*t).to_owned(), (*s).to_owned()))
        .collect()
}

fn mesh(status: &str, reason: &str) -> serde_json::Value {
    json!({"status": {"conditions": [
        {"type": "NetcheckerMesh", "status": status, "reason": reason, "message": "from the mesh"},
    ]}})
}

#[tokio::test]
async fn conditions_merge_by_type_and_watchers_see_each_write() {
    let fake = FakeApiServer::start().await;
    let before = fake.add_node(node("node-a").unschedulable(true));
    let nodes = Api::<Node>::all(client_for(&fake).await);
    let params = WatchParams::default().timeout(30);
    let mut watch = nodes
        .watch(&params, &fake.resource_version().to_string())
        .await
        .unwrap()
        .boxed();
    let pp = PatchParams::default();

    // A new type is appended.
    let added = nodes
        .patch_status("node-a", &pp, &Patch::Strategic(mesh("True", "Reachable")))
        .await
        .unwrap();
    assert_eq!(
        conditions(&added),
        pairs(&[("Ready", "True"), ("NetcheckerMesh", "True")])
    );

    // The same type again is merged into it, field by field.
    let patch = json!({"status": {"conditions": [
        {"type": "NetcheckerMesh", "status": "False", "reason": "Unreachable"},
    ]}});
    let updated = nodes
        .patch_status("node-a", &pp, &Patch::Strategic(patch))
        .await
        .unwrap();
    assert_eq!(
        conditions(&updated),
        pairs(&[("Ready", "True"), ("NetcheckerMesh", "False")])
    );
    let mesh_condition = condition(&updated, "NetcheckerMesh");
    assert_eq!(mesh_condition.reason.as_deref(), Some("Unreachable"));
    assert_eq!(
        mesh_condition.message.as_deref(),
        Some("from the mesh"),
        "fields the patch leaves out are kept"
    );
    assert_eq!(condition(&updated, "Ready"), condition(&before, "Ready"));

    // Another type through server-side apply; spec and metadata changes in
    // a status write are ignored.
    let apply = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-a", "labels": {"sneaky": "yes"}},
        "spec": {"unschedulable": false},
        "status": {"conditions": [{"type": "NetcheckerDns", "status": "True"}]},
    });
    let applied = nodes
        .patch_status(
            "node-a",
            &PatchParams::apply("netchecker-server"),
            &Patch::Apply(apply),
        )
        .await
        .unwrap();
    assert_eq!(
        conditions(&applied),
        pairs(&[
            ("Ready", "True"),
            ("NetcheckerMesh", "False"),
            ("NetcheckerDns", "True")
        ])
    );
    assert_eq!(applied.spec, before.spec, "spec untouched");
    assert_eq!(applied.metadata.labels, before.metadata.labels);
    assert_eq!(applied.metadata.uid, before.metadata.uid);
    assert_eq!(
        applied.status.as_ref().unwrap().addresses,
        before.status.as_ref().unwrap().addresses
    );
    assert_eq!(fake.node("node-a").unwrap(), applied);
    let stored = fake.node_conditions("node-a").unwrap();
    assert_eq!(stored.len(), 3);

    let mut versions = Vec::new();
    for written in [&added, &updated, &applied] {
        let event = tokio::time::timeout(PATIENCE, watch.try_next())
            .await
            .expect("a watch event")
            .unwrap()
            .unwrap();
        let WatchEvent::Modified(seen) = event else {
            panic!("expected MODIFIED, got {event:?}");
        };
        assert_eq!(&seen, written);
        versions.push(
            seen.metadata
                .resource_version
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
    }
    assert!(versions.is_sorted() && versions[0] < versions[2]);
    assert_eq!(fake.node_status_requests(), 3);
}

#[tokio::test]
async fn merge_patches_replace_the_list_and_errors() {
    let fake = FakeApiServer::start().await;
    let before = fake.add_node(node("node-a"));
    let nodes = Api::<Node>::all(client_for(&fake).await);
    let pp = PatchParams::default();

    let merged = nodes
        .patch_status("node-a", &pp, &Patch::Merge(mesh("True", "Reachable")))
        .await
        .unwrap();
    assert_eq!(conditions(&merged), pairs(&[("NetcheckerMesh", "True")]));
    assert_eq!(merged.metadata.labels, before.metadata.labels);

    let stale = json!({
        "metadata": {"resourceVersion": before.metadata.resource_version},
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    });
    let refused = nodes
        .patch_status("node-a", &pp, &Patch::Strategic(stale))
        .await;
    assert_eq!(api_error(refused), (409, "Conflict".to_owned()));
    assert_eq!(fake.node("node-a").unwrap(), merged);

    let missing = nodes
        .patch_status("ghost", &pp, &Patch::Strategic(mesh("True", "x")))
        .await;
    assert_eq!(api_error(missing), (404, "NotFound".to_owned()));

    fake.fail_next(Fault::new("nodes/status", Verb::Patch, 500));
    let failed = nodes
        .patch_status("node-a", &pp, &Patch::Strategic(mesh("False", "x")))
        .await;
    assert_eq!(api_error(failed).0, 500);
    assert_eq!(fake.node("node-a").unwrap(), merged);
    assert_eq!(nodes.get_status("node-a").await.unwrap(), merged);
}
