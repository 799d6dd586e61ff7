//! The object store: current objects of one kind, a resourceVersion clock
//! shared by every kind (one cluster-wide counter, as etcd's revision), and
//! a bounded history of changes from which watches resume.
//!
//! Every change takes the next resourceVersion from the shared clock and is
//! appended to its kind's history, so the history holds every change of the
//! kind after `compacted_through`. A watch that asks to resume from an
//! older version cannot be served and gets `410 Gone`, exactly the signal on
//! which real clients relist.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::sync::watch;

pub(crate) use crate::ids::new_uid;
use crate::object::Object;

/// How many changes the store keeps for watch resumption by default.
pub const DEFAULT_HISTORY_LIMIT: usize = 1000;

/// The cluster-wide resourceVersion counter that stores of every kind share.
#[derive(Debug)]
pub struct Clock(AtomicU64);

impl Default for Clock {
    fn default() -> Self {
        // Start above zero: "0" means "any version" to the API.
        Self(AtomicU64::new(1))
    }
}

impl Clock {
    /// The latest resourceVersion handed out.
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn tick(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// What happened to an object at one resourceVersion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One entry of the change history.
#[derive(Debug, Clone, PartialEq)]
pub struct Change<T = Pod> {
    pub resource_version: u64,
    pub kind: ChangeKind,
    /// The object after the change; for a deletion, its last state stamped
    /// with the deletion's resourceVersion (as the real API sends it).
    pub object: T,
    /// The object before the change (for modifications and deletions), so a
    /// filtered watch can tell when it enters or leaves its selector.
    pub previous: Option<T>,
}

/// A watch asked for a version older than the history reaches back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooOld {
    /// The version the client asked for.
    pub requested: u64,
    /// The oldest version from which this store can still resume.
    pub oldest: u64,
}

/// An object that cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPod {
    #[error("metadata.name is required")]
    MissingName,
}

/// `(namespace, name)`; the namespace is empty for cluster-scoped kinds.
type Key = (String, String);

struct Inner<T> {
    objects: BTreeMap<Key, T>,
    history: VecDeque<Change<T>>,
    history_limit: usize,
    /// Highest version whose change was dropped from the history.
    compacted_through: u64,
}

/// Shared store of one kind. A `std` mutex is enough: it is never held
/// across an `.await`, and every critical section is a few map operations.
/// Versions are taken from the clock under this mutex, so this kind's
/// history is in version order and a snapshot's version covers every change
/// of the kind it contains.
pub struct Store<T = Pod> {
    inner: Mutex<Inner<T>>,
    clock: Arc<Clock>,
    /// Carries the latest resourceVersion so watch streams wake up on change.
    notify: watch::Sender<u64>,
}

/// Fill in the namespace as the API does (`default` for namespaced kinds
/// without one, none for cluster-scoped kinds) and return the key.
fn normalize<T: Object>(object: &mut T) -> Result<Key, InvalidPod> {
    let meta = object.metadata_mut();
    if !T::NAMESPACED {
        meta.namespace = None;
    } else if meta.namespace.as_deref().unwrap_or("").is_empty() {
        meta.namespace = Some("default".to_owned());
    }
    key_of(object)
}

fn key_of<T: Object>(object: &T) -> Result<Key, InvalidPod> {
    let meta = object.metadata();
    let name = meta
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or(InvalidPod::MissingName)?;
    let namespace = meta.namespace.clone().unwrap_or_default();
    Ok((namespace, name))
}

impl<T: Object> Default for Store<T> {
    fn default() -> Self {
        Self::new(DEFAULT_HISTORY_LIMIT)
    }
}

impl<T: Object> Store<T> {
    /// An empty store with a clock of its own, keeping at most
    /// `history_limit` changes (at least one).
    pub fn new(history_limit: usize) -> Self {
        Self::with_clock(Arc::default(), history_limit)
    }

    /// An empty store taking versions from a shared `clock`.
    pub fn with_clock(clock: Arc<Clock>, history_limit: usize) -> Self {
        let start = clock.now();
        Self {
            inner: Mutex::new(Inner {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                history_limit: history_limit.max(1),
                compacted_through: start,
            }),
            notify: watch::channel(start).0,
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters to a test fake, so recover from poisoning.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Add or replace an object, as a create or update would. Fills in what
    /// the real API server fills in: namespace `default` for namespaced
    /// kinds (none for cluster-scoped ones), a UID and a creation timestamp
    /// (kept from the stored object on replace), and the new
    /// resourceVersion. Returns the stored object.
    pub fn upsert(&self, mut object: T) -> Result<T, InvalidPod> {
        let key = normalize(&mut object)?;
        let stored = {
            let mut inner = self.lock();
            self.write_locked(&mut inner, key, object)
        };
        self.notify_changed();
        Ok(stored)
    }

    /// Store `object` under `key` with the lock held: fill in the UID and
    /// creation timestamp (kept from the stored object, else new), take
    /// the next resourceVersion and record the change.
    fn write_locked(&self, inner: &mut Inner<T>, key: Key, mut object: T) -> T {
        let rv = self.clock.tick();
        let previous = inner.objects.get(&key).cloned();
        let meta = object.metadata_mut();
        let old_meta = previous.as_ref().map(|p| p.metadata());
        if meta.uid.is_none() {
            meta.uid = old_meta
                .and_then(|m| m.uid.clone())
                .or_else(|| Some(new_uid()));
        }
        if meta.creation_timestamp.is_none() {
            meta.creation_timestamp = old_meta
                .and_then(|m| m.creation_timestamp.clone())
                .or_else(|| Some(Time(whole_seconds(Timestamp::now()))));
        }
        meta.resource_version = Some(rv.to_string());
        inner.objects.insert(key, object.clone());
        let kind = if previous.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        inner.record(Change {
            resource_version: rv,
            kind,
            object: object.clone(),
            previous,
        });
        object
    }

    /// Change a stored object in place (watchers see `MODIFIED`); returns
    /// the stored result, or `None` (and no event) when there is no such
    /// object. `namespace` is ignored for cluster-scoped kinds.
    pub fn modify(&self, namespace: &str, name: &str, change: impl FnOnce(&mut T)) -> Option<T> {
        let mut object = self.get(namespace, name)?;
        change(&mut object);
        let meta = object.metadata_mut();
        meta.name = Some(name.to_owned());
        self.upsert(object).ok()
    }

    /// Mark an object as being deleted, as the API does while finalizers or
    /// a grace period hold it: `metadata.deletionTimestamp` is set to now
    /// (kept if already set) and watchers see `MODIFIED`.
    pub fn mark_deleting(
        &self,
        namespace: &str,
        name: &str,
        grace_seconds: Option<i64>,
    ) -> Option<T> {
        self.modify(namespace, name, |object| {
            let meta = object.metadata_mut();
            if meta.deletion_timestamp.is_none() {
                meta.deletion_timestamp = Some(Time(Timestamp::now()));
                meta.deletion_grace_period_seconds = grace_seconds;
            }
        })
    }

    /// Delete an object; returns its final state, or `None` (and no event)
    /// when there was no such object.
    pub fn delete(&self, namespace: &str, name: &str) -> Option<T> {
        let deleted = {
            let mut inner = self.lock();
            let previous = inner.objects.remove(&Self::key(namespace, name))?;
            let rv = self.clock.tick();
            let mut object = previous.clone();
            object.metadata_mut().resource_version = Some(rv.to_string());
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

    /// The stored object `namespace/name` (`name` for cluster-scoped kinds).
    pub fn get(&self, namespace: &str, name: &str) -> Option<T> {
        self.lock()
            .objects
            .get(&Self::key(namespace, name))
            .cloned()
    }

    fn key(namespace: &str, name: &str) -> Key {
        let namespace = if T::NAMESPACED { namespace } else { "" };
        (namespace.to_owned(), name.to_owned())
    }

    /// All objects and the resourceVersion they were read at, in one
    /// consistent snapshot (namespace, then name order).
    pub fn snapshot(&self) -> (Vec<T>, u64) {
        let inner = self.lock();
        (inner.objects.values().cloned().collect(), self.clock.now())
    }

    /// How many objects are stored.
    pub fn len(&self) -> usize {
        self.lock().objects.len()
    }

    /// Whether no object is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current (latest) cluster-wide resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.clock.now()
    }

    /// Changes after version `since`, oldest first.
    pub fn changes_since(&self, since: u64) -> Result<Vec<Change<T>>, TooOld> {
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
        inner.compacted_through = self.clock.now();
    }

    /// A receiver that wakes up whenever an object of this kind changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    fn notify_changed(&self) {
        self.notify.send_replace(self.clock.now());
    }
}

/// A time as the API stores a `Time`: whole seconds, so what a client
/// reads back equals what the store holds.
fn whole_seconds(time: Timestamp) -> Timestamp {
    Timestamp::from_second(time.as_second()).unwrap_or(time)
}

impl<T> Inner<T> {
    fn record(&mut self, change: Change<T>) {
        self.history.push_back(change);
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted_through = dropped.resource_version;
            }
        }
    }
}

#[cfg(test)]
mod tests;
/// Conditional writes: create, replace and patch with preconditions.
mod write;
pub use write::{MODIFIED, Preconditions, WriteError};
