//! ConfigMaps through the real kube client, as the leader writes the one
//! it owns: create, get, replace with the resourceVersion rule, racing
//! replacements, merge patches, list by label, delete with preconditions.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use netchecker_fake_apiserver::{FakeApiServer, Fault, Verb};
use serde_json::json;
use support::{api_error, namespaced};

const NS: &str = "netchecker";

fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(
                "app".to_owned(),
                "netchecker".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..ConfigMap::default()
    }
}

fn with_data(mut config_map: ConfigMap, key: &str, value: &str) -> ConfigMap {
    config_map
        .data
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_owned(), value.to_owned());
    config_map
}

fn data(config_map: &ConfigMap) -> Vec<(&str, &str)> {
    config_map
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test]
async fn create_replace_conflict_race_and_delete() {
    let fake = FakeApiServer::start().await;
    let a: Api<ConfigMap> = namespaced(&fake, NS).await;
    let b: Api<ConfigMap> = namespaced(&fake, NS).await;
    let pp = PostParams::default();

    let created = a
        .create(&pp, &config_map("state", &[("leader", "server-0")]))
        .await
        .unwrap();
    assert_eq!(created.metadata.namespace.as_deref(), Some(NS));
    assert_eq!(a.get("state").await.unwrap(), created);
    assert_eq!(
        api_error(a.create(&pp, &config_map("state", &[])).await),
        (409, "AlreadyExists".to_owned())
    );

    let replaced = a
        .replace("state", &pp, &with_data(created.clone(), "epoch", "1"))
        .await
        .unwrap();
    assert_eq!(data(&replaced), [("epoch", "1"), ("leader", "server-0")]);
    let stale = b
        .replace("state", &pp, &with_data(created.clone(), "epoch", "2"))
        .await;
    assert_eq!(api_error(stale), (409, "Conflict".to_owned()));
    assert_eq!(fake.config_map(NS, "state").unwrap(), replaced);

    for round in 0..10 {
        let seen = a.get("state").await.unwrap();
        let (for_a, for_b) = (
            with_data(seen.clone(), "leader", &format!("a{round}")),
            with_data(seen, "leader", &format!("b{round}")),
        );
        let (ra, rb) = tokio::join!(
            a.replace("state", &pp, &for_a),
            b.replace("state", &pp, &for_b)
        );
        assert!(ra.is_ok() != rb.is_ok(), "round {round}: {ra:?} {rb:?}");
        let winner = ra.or(rb).unwrap();
        assert_eq!(fake.config_map(NS, "state").unwrap(), winner);
    }

    let old = Preconditions {
        resource_version: replaced.metadata.resource_version.clone(),
        uid: None,
    };
    let refused = a
        .delete("state", &DeleteParams::default().preconditions(old))
        .await;
    assert_eq!(api_error(refused).0, 409);
    assert!(fake.config_map(NS, "state").is_some());
    a.delete("state", &DeleteParams::default()).await.unwrap();
    assert_eq!(fake.config_map(NS, "state"), None);
    assert_eq!(
        api_error(a.get("state").await),
        (404, "NotFound".to_owned())
    );
}

#[tokio::test]
async fn merge_patch_list_by_label_and_faults() {
    let fake = FakeApiServer::start().await;
    let maps: Api<ConfigMap> = namespaced(&fake, NS).await;
    let pp = PostParams::default();
    maps.create(&pp, &config_map("state", &[("a", "1"), ("b", "2")]))
        .await
        .unwrap();
    let mut unlabelled = config_map("other", &[]);
    unlabelled.metadata.labels = None;
    maps.create(&pp, &unlabelled).await.unwrap();

    let patch = Patch::Merge(json!({"data": {"a": null, "c": "3"}}));
    let patched = maps
        .patch("state", &PatchParams::default(), &patch)
        .await
        .unwrap();
    assert_eq!(data(&patched), [("b", "2"), ("c", "3")]);
    assert_eq!(fake.config_map(NS, "state").unwrap(), patched);

    let labelled = maps
        .list(&ListParams::default().labels("app=netchecker"))
        .await
        .unwrap();
    assert_eq!(labelled.items, std::slice::from_ref(&patched));
    assert_eq!(fake.config_maps().len(), 2);

    fake.fail_next(Fault::new("configmaps", Verb::Patch, 500).times(2));
    for _ in 0..2 {
        let failed = maps.patch("state", &PatchParams::default(), &patch).await;
        assert_eq!(api_error(failed).0, 500);
    }
    assert_eq!(fake.config_map(NS, "state").unwrap(), patched);
    maps.patch("state", &PatchParams::default(), &patch)
        .await
        .unwrap();
    assert_eq!(fake.config_map_requests(), 7);
}
