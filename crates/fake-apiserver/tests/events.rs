//! Events through the real kube client: the core v1 and the
//! `events.k8s.io/v1` API read and write the same events, and
//! kube-runtime's `Recorder` (create, then patch the series count) works.

mod support;

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event as Published, EventType, Recorder, Reporter};
use kube::{Api, Resource};
use netchecker_fake_apiserver::{FakeApiServer, Fault, Verb, node};
use serde_json::json;
use support::{api_error, client_for, namespaced};

const NS: &str = "netchecker";

fn regarding(name: &str) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".to_owned()),
        namespace: Some(NS.to_owned()),
        name: Some(name.to_owned()),
        ..ObjectReference::default()
    }
}

#[tokio::test]
async fn both_apis_create_and_list_the_same_events() {
    let fake = FakeApiServer::start().await;
    let core: Api<Event> = namespaced(&fake, NS).await;
    let v1: Api<EventV1> = namespaced(&fake, NS).await;
    let pp = PostParams::default();

    let old_style = Event {
        metadata: ObjectMeta {
            name: Some("old-style".to_owned()),
            ..ObjectMeta::default()
        },
        involved_object: regarding("server-0"),
        reason: Some("Started".to_owned()),
        message: Some("core v1".to_owned()),
        type_: Some("Normal".to_owned()),
        ..Event::default()
    };
    let created = core.create(&pp, &old_style).await.unwrap();
    assert_eq!(created.message.as_deref(), Some("core v1"));

    let new_style = EventV1 {
        metadata: ObjectMeta {
            generate_name: Some("new-style-".to_owned()),
            ..ObjectMeta::default()
        },
        regarding: Some(regarding("server-1")),
        note: Some("events.k8s.io".to_owned()),
        reason: Some("BecameLeader".to_owned()),
        action: Some("Acquire".to_owned()),
        reporting_controller: Some("netchecker-server".to_owned()),
        reporting_instance: Some("server-1".to_owned()),
        event_time: Some(MicroTime(jiff::Timestamp::now())),
        type_: Some("Normal".to_owned()),
        ..EventV1::default()
    };
    let created_v1 = v1.create(&pp, &new_style).await.unwrap();
    let generated = created_v1.metadata.name.clone().unwrap();
    assert!(generated.starts_with("new-style-") && generated.len() == 15);

    let through_core = core.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(through_core.len(), 2);
    let converted = through_core
        .iter()
        .find(|e| e.reason.as_deref() == Some("BecameLeader"))
        .unwrap();
    assert_eq!(converted.message.as_deref(), Some("events.k8s.io"));
    assert_eq!(converted.involved_object.name.as_deref(), Some("server-1"));
    assert_eq!(
        converted.reporting_component.as_deref(),
        Some("netchecker-server")
    );

    let through_v1 = v1.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(through_v1.len(), 2);
    let old = through_v1
        .iter()
        .find(|e| e.reason.as_deref() == Some("Started"))
        .unwrap();
    assert_eq!(old.note.as_deref(), Some("core v1"));
    assert_eq!(
        old.regarding.as_ref().unwrap().name.as_deref(),
        Some("server-0")
    );
    let selected = v1
        .list(&ListParams::default().fields("regarding.name=server-1"))
        .await
        .unwrap();
    assert_eq!(selected.items, std::slice::from_ref(&created_v1));
    let elsewhere: Api<EventV1> = namespaced(&fake, "other").await;
    assert!(
        elsewhere
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    assert_eq!(fake.events().len(), 2);
    assert_eq!(fake.events_v1().len(), 2);
    assert!(fake.events_v1().contains(&created_v1));

    let patch = Patch::Merge(json!({"note": "patched"}));
    let patched = v1
        .patch(&generated, &PatchParams::default(), &patch)
        .await
        .unwrap();
    assert_eq!(patched.note.as_deref(), Some("patched"));
    assert_eq!(
        core.get(&generated).await.unwrap().message.as_deref(),
        Some("patched")
    );
    let missing = v1.patch("ghost", &PatchParams::default(), &patch).await;
    assert_eq!(api_error(missing).0, 404);

    fake.fail_next(Fault::new("events", Verb::Create, 500));
    assert_eq!(api_error(core.create(&pp, &old_style).await).0, 500);
    assert_eq!(fake.events().len(), 2);
}

#[tokio::test]
async fn the_recorder_creates_then_patches_a_series() {
    let fake = FakeApiServer::start().await;
    let stored_node = fake.add_node(node("node-a"));
    let reporter = Reporter {
        controller: "netchecker-server".to_owned(),
        instance: Some("server-0".to_owned()),
    };
    let recorder = Recorder::new(client_for(&fake).await, reporter);
    let reference = stored_node.object_ref(&());
    let lost = Published {
        type_: EventType::Warning,
        reason: "MeshUnreachable".to_owned(),
        note: Some("node-a cannot reach node-b".to_owned()),
        action: "Probe".to_owned(),
        secondary: None,
    };

    recorder.publish(&lost, &reference).await.unwrap();
    let first = fake.events_v1();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].series, None);
    assert_eq!(first[0].metadata.namespace.as_deref(), Some("default"));

    recorder.publish(&lost, &reference).await.unwrap();
    recorder.publish(&lost, &reference).await.unwrap();
    let series = fake.events_v1();
    assert_eq!(series.len(), 1, "repeats patch the first event");
    assert_eq!(series[0].series.as_ref().unwrap().count, 3);
    assert_eq!(series[0].metadata.uid, first[0].metadata.uid);
    assert_eq!(series[0].note, first[0].note);
    assert_eq!(
        fake.events()[0].involved_object.name.as_deref(),
        Some("node-a")
    );

    let other = Published {
        reason: "MeshReachable".to_owned(),
        type_: EventType::Normal,
        ..lost
    };
    recorder.publish(&other, &reference).await.unwrap();
    assert_eq!(fake.events().len(), 2);
    assert_eq!(fake.event_requests(), 4);
}
