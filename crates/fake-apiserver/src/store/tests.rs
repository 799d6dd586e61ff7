use super::*;
use crate::agent_pod;

#[test]
fn versions_increase_and_events_are_recorded() {
    let store = Store::new(10);
    let start = store.resource_version();
    let a = store.upsert(agent_pod("ns", "a", "agent", "n1")).unwrap();
    let a2 = store.upsert(agent_pod("ns", "a", "agent", "n2")).unwrap();
    let gone = store.delete("ns", "a").unwrap();
    assert_eq!(a.metadata.resource_version, Some((start + 1).to_string()));
    assert_eq!(a2.metadata.resource_version, Some((start + 2).to_string()));
    assert_eq!(
        gone.metadata.resource_version,
        Some((start + 3).to_string())
    );
    let kinds: Vec<_> = store
        .changes_since(start)
        .unwrap()
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(
        kinds,
        [ChangeKind::Added, ChangeKind::Modified, ChangeKind::Deleted]
    );
    assert_eq!(store.changes_since(start + 2).unwrap().len(), 1);
    assert!(store.snapshot().0.is_empty());
}

#[test]
fn replace_keeps_uid_and_creation_time() {
    let store = Store::default();
    let first = store.upsert(agent_pod("ns", "a", "agent", "n1")).unwrap();
    let mut replacement = agent_pod("ns", "a", "agent", "n2");
    replacement.metadata.uid = None;
    replacement.metadata.creation_timestamp = None;
    let second = store.upsert(replacement).unwrap();
    assert_eq!(first.metadata.uid, second.metadata.uid);
    assert_eq!(
        first.metadata.creation_timestamp,
        second.metadata.creation_timestamp
    );
}

#[test]
fn defaults_namespace_and_requires_name() {
    let store = Store::default();
    let mut pod = agent_pod("x", "a", "agent", "n1");
    pod.metadata.namespace = None;
    let stored = store.upsert(pod).unwrap();
    assert_eq!(stored.metadata.namespace.as_deref(), Some("default"));
    let mut nameless = agent_pod("x", "a", "agent", "n1");
    nameless.metadata.name = None;
    assert_eq!(store.upsert(nameless), Err(InvalidPod::MissingName));
}

#[test]
fn deleting_a_missing_pod_changes_nothing() {
    let store = Store::<Pod>::default();
    let rv = store.resource_version();
    assert!(store.delete("ns", "nope").is_none());
    assert_eq!(store.resource_version(), rv);
}

#[test]
fn bounded_history_reports_too_old() {
    let store = Store::new(2);
    let start = store.resource_version();
    for i in 0..5 {
        store
            .upsert(agent_pod("ns", &format!("p{i}"), "agent", "n"))
            .unwrap();
    }
    // Versions start+1..=start+5 happened; only the last two are kept.
    assert_eq!(
        store.changes_since(start + 1),
        Err(TooOld {
            requested: start + 1,
            oldest: start + 3
        })
    );
    assert_eq!(store.changes_since(start + 3).unwrap().len(), 2);
    store.compact();
    assert!(store.changes_since(start + 4).is_err());
    assert!(store.changes_since(start + 5).unwrap().is_empty());
}

#[test]
fn kinds_share_one_clock_and_keep_their_own_history() {
    use k8s_openapi::api::core::v1::Node;
    let clock = Arc::new(Clock::default());
    let pods: Store<Pod> = Store::with_clock(clock.clone(), 10);
    let nodes: Store<Node> = Store::with_clock(clock.clone(), 10);
    let start = clock.now();
    pods.upsert(agent_pod("ns", "a", "agent", "n1")).unwrap();
    let mut n = crate::node("n1").build();
    n.metadata.namespace = Some("ignored".to_owned());
    let n = nodes.upsert(n).unwrap();
    assert_eq!(n.metadata.resource_version, Some((start + 2).to_string()));
    assert_eq!(n.metadata.namespace, None, "nodes have no namespace");
    assert_eq!(pods.resource_version(), start + 2);
    assert_eq!(nodes.changes_since(start).unwrap().len(), 1);
    assert_eq!(pods.changes_since(start).unwrap().len(), 1);
    assert!(nodes.get("whatever", "n1").is_some());
    let gone = nodes.mark_deleting("", "n1", None).unwrap();
    assert!(gone.metadata.deletion_timestamp.is_some());
    let kinds: Vec<_> = nodes
        .changes_since(start)
        .unwrap()
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds, [ChangeKind::Added, ChangeKind::Modified]);
    assert!(nodes.mark_deleting("", "nope", None).is_none());
}

#[test]
fn marking_deleting_keeps_the_first_timestamp() {
    let store = Store::default();
    store.upsert(agent_pod("ns", "a", "agent", "n1")).unwrap();
    let first = store.mark_deleting("ns", "a", Some(30)).unwrap();
    let again = store.mark_deleting("ns", "a", Some(5)).unwrap();
    assert_eq!(
        first.metadata.deletion_timestamp,
        again.metadata.deletion_timestamp
    );
    assert_eq!(again.metadata.deletion_grace_period_seconds, Some(30));
    assert_eq!(first.metadata.uid, again.metadata.uid);
}
