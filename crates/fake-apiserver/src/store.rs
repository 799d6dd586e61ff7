//! The pod store: current pods, one cluster-wide resourceVersion counter,
//! and a bounded history of changes from which watches resume.
//!
//! Every change bumps the resourceVersion by one and is appended to the
//! history, so the history holds every version after `compacted_through`.
//! A watch that asks to resume from an older version cannot be served and
//! gets `410 Gone`, exactly the signal on which real clients relist.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::sync::watch;

/// How many changes the store keeps for watch resumption by default.
pub const DEFAULT_HISTORY_LIMIT: usize = 1000;

/// What happened to a pod at one resourceVersion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One entry of the change history.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub resource_version: u64,
    pub kind: ChangeKind,
    /// The pod after the change; for a deletion, its last state stamped with
    /// the deletion's resourceVersion (as the real API sends it).
    pub object: Pod,
    /// The pod before the change (for modifications and deletions), so a
    /// filtered watch can tell when a pod enters or leaves its selector.
    pub previous: Option<Pod>,
}

/// A watch asked for a version older than the history reaches back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooOld {
    /// The version the client asked for.
    pub requested: u64,
    /// The oldest version from which this store can still resume.
    pub oldest: u64,
}

/// A pod that cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPod {
    #[error("metadata.name is required")]
    MissingName,
}

type Key = (String, String);

struct Inner {
    pods: BTreeMap<Key, Pod>,
    resource_version: u64,
    history: VecDeque<Change>,
    history_limit: usize,
    /// Highest version whose change was dropped from the history.
    compacted_through: u64,
}

/// Shared pod store. A `std` mutex is enough: it is never held across an
/// `.await`, and every critical section is a few map operations.
pub struct Store {
    inner: Mutex<Inner>,
    /// Carries the latest resourceVersion so watch streams wake up on change.
    notify: watch::Sender<u64>,
}

static UID_COUNTER: AtomicU64 = AtomicU64::new(1);

/// A fresh UID in the usual 8-4-4-4-12 form, unique within this process.
pub(crate) fn new_uid() -> String {
    let n = UID_COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = Timestamp::now().as_nanosecond() as u64;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (t >> 32) as u32,
        (t >> 16) as u16,
        (t & 0xfff) as u16,
        (n >> 48) & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

fn key_of(pod: &Pod) -> Result<Key, InvalidPod> {
    let name = pod
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or(InvalidPod::MissingName)?;
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    Ok((namespace, name))
}

impl Default for Store {
    fn default() -> Self {
        Self::new(DEFAULT_HISTORY_LIMIT)
    }
}

impl Store {
    /// An empty store keeping at most `history_limit` changes (at least one).
    pub fn new(history_limit: usize) -> Self {
        // Start above zero: "0" means "any version" to the API.
        let start = 1;
        Self {
            inner: Mutex::new(Inner {
                pods: BTreeMap::new(),
                resource_version: start,
                history: VecDeque::new(),
                history_limit: history_limit.max(1),
                compacted_through: start,
            }),
            notify: watch::channel(start).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters to a test fake, so recover from poisoning.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Add or replace a pod, as a create or update would. Fills in what the
    /// real API server fills in: namespace `default`, a UID and a creation
    /// timestamp (kept from the stored pod on replace), and the new
    /// resourceVersion. Returns the stored pod.
    pub fn upsert(&self, mut pod: Pod) -> Result<Pod, InvalidPod> {
        if pod.metadata.namespace.as_deref().unwrap_or("").is_empty() {
            pod.metadata.namespace = Some("default".to_owned());
        }
        let key = key_of(&pod)?;
        let stored = {
            let mut inner = self.lock();
            inner.resource_version += 1;
            let rv = inner.resource_version;
            let previous = inner.pods.get(&key).cloned();
            let meta = &mut pod.metadata;
            let old_meta = previous.as_ref().map(|p| &p.metadata);
            if meta.uid.is_none() {
                meta.uid = old_meta
                    .and_then(|m| m.uid.clone())
                    .or_else(|| Some(new_uid()));
            }
            if meta.creation_timestamp.is_none() {
                meta.creation_timestamp = old_meta
                    .and_then(|m| m.creation_timestamp.clone())
                    .or_else(|| Some(Time(Timestamp::now())));
            }
            meta.resource_version = Some(rv.to_string());
            inner.pods.insert(key, pod.clone());
            let kind = if previous.is_some() {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            };
            inner.record(Change {
                resource_version: rv,
                kind,
                object: pod.clone(),
                previous,
            });
            pod
        };
        self.notify_changed();
        Ok(stored)
    }

    /// Delete a pod; returns its final state, or `None` (and no event) when
    /// there was no such pod.
    pub fn delete(&self, namespace: &str, name: &str) -> Option<Pod> {
        let deleted = {
            let mut inner = self.lock();
            let previous = inner
                .pods
                .remove(&(namespace.to_owned(), name.to_owned()))?;
            inner.resource_version += 1;
            let rv = inner.resource_version;
            let mut object = previous.clone();
            object.metadata.resource_version = Some(rv.to_string());
            inner.record(Change {
                resource_version: rv,
                kind: ChangeKind::Deleted,
                object: object.clone(),
                previous: Some(previous),
            });
            object
        };
        self.notify_changed();
        Some(deleted)
    }

    /// All pods and the resourceVersion they were read at, in one consistent
    /// snapshot (namespace, then name order).
    pub fn snapshot(&self) -> (Vec<Pod>, u64) {
        let inner = self.lock();
        (
            inner.pods.values().cloned().collect(),
            inner.resource_version,
        )
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    /// Changes after version `since`, oldest first.
    pub fn changes_since(&self, since: u64) -> Result<Vec<Change>, TooOld> {
        let inner = self.lock();
        if since < inner.compacted_through {
            return Err(TooOld {
                requested: since,
                oldest: inner.compacted_through,
            });
        }
        Ok(inner
            .history
            .iter()
            .filter(|c| c.resource_version > since)
            .cloned()
            .collect())
    }

    /// Forget the whole history: from now on only watches from the current
    /// version (or newer) can resume, older ones get `410 Gone`.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.history.clear();
        inner.compacted_through = inner.resource_version;
    }

    /// A receiver that wakes up whenever the resourceVersion moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    fn notify_changed(&self) {
        let rv = self.resource_version();
        self.notify.send_replace(rv);
    }
}

impl Inner {
    fn record(&mut self, change: Change) {
        self.history.push_back(change);
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted_through = dropped.resource_version;
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
        let store = Store::default();
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
    fn uids_are_unique() {
        assert_ne!(new_uid(), new_uid());
    }
}
