//! Conditional writes, as the API's create, update, patch and delete make
//! them: the stored object is read, checked and replaced under one lock,
//! so of two clients updating from the same resourceVersion exactly one
//! wins and the other gets a conflict (optimistic concurrency, on which
//! leader election through a Lease relies).

use crate::object::Object;

use super::{Key, Store};

/// Why a conditional write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// There is no such object (update, patch, delete).
    #[error("not found")]
    NotFound,
    /// An object of that name exists already (create).
    #[error("already exists")]
    AlreadyExists,
    /// A precondition does not hold: the resourceVersion (or UID) the
    /// client sent is not the stored one. The text says which, in the
    /// real API's words.
    #[error("{0}")]
    Conflict(String),
}

/// The text of a conflict on a stale resourceVersion.
pub const MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// What must hold of the stored object for a write to proceed: its
/// resourceVersion and UID, when given (empty strings count as not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub resource_version: Option<String>,
    pub uid: Option<String>,
}

impl Preconditions {
    /// The preconditions an update body carries: its
    /// `metadata.resourceVersion` and `metadata.uid`.
    pub fn of<T: Object>(object: &T) -> Self {
        let meta = object.metadata();
        Self {
            resource_version: meta.resource_version.clone(),
            uid: meta.uid.clone(),
        }
    }

    /// Whether the stored object satisfies them (`Conflict` if not).
    pub fn check<T: Object>(&self, stored: &T) -> Result<(), WriteError> {
        let meta = stored.metadata();
        if let Some(uid) = self.uid.as_deref().filter(|u| !u.is_empty())
            && meta.uid.as_deref() != Some(uid)
        {
            return Err(WriteError::Conflict(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta.uid.as_deref().unwrap_or("")
            )));
        }
        if let Some(rv) = self.resource_version.as_deref().filter(|v| !v.is_empty())
            && meta.resource_version.as_deref() != Some(rv)
        {
            return Err(WriteError::Conflict(MODIFIED.to_owned()));
        }
        Ok(())
    }
}

impl<T: Object> Store<T> {
    /// Read `namespace/name` (`None` when absent), let `change` turn it into
    /// the object to store or refuse, and store that, all under the lock.
    /// The stored object keeps the key it was read under, and the UID and
    /// creation timestamp of the object it replaces (a new UID and the
    /// current time when it is created). Returns the stored object and
    /// whether it was created; watchers see `ADDED` or `MODIFIED`. A write
    /// that would change nothing is skipped, as the real API skips it.
    pub fn write_with<E: From<WriteError>>(
        &self,
        namespace: &str,
        name: &str,
        change: impl FnOnce(Option<&T>) -> Result<T, E>,
    ) -> Result<(T, bool), E> {
        let key: Key = Self::key(namespace, name);
        let stored = {
            let mut inner = self.lock();
            let current = inner.objects.get(&key);
            let mut object = change(current)?;
            let meta = object.metadata_mut();
            meta.name = Some(key.1.clone());
            meta.namespace = T::NAMESPACED.then(|| key.0.clone());
            if let Some(current) = current {
                // As the real API: a write that changes nothing is not
                // made (no new resourceVersion, no watch event).
                let mut unchanged = object.clone();
                let same = unchanged.metadata_mut();
                same.uid.clone_from(&current.metadata().uid);
                same.creation_timestamp
                    .clone_from(&current.metadata().creation_timestamp);
                same.resource_version
                    .clone_from(&current.metadata().resource_version);
                if unchanged == *current {
                    return Ok((unchanged, false));
                }
            }
            let meta = object.metadata_mut();
            let created = match current.map(|c| c.metadata()) {
                Some(old) => {
                    meta.uid.clone_from(&old.uid);
                    meta.creation_timestamp.clone_from(&old.creation_timestamp);
                    false
                }
                None => {
                    meta.uid = None;
                    meta.creation_timestamp = None;
                    true
                }
            };
            (self.write_locked(&mut inner, key, object), created)
        };
        self.notify_changed();
        Ok(stored)
    }

    /// Create `object` in its namespace (`default` when none is set);
    /// `AlreadyExists` if the name is taken.
    pub fn create(&self, object: T) -> Result<T, WriteError> {
        let (namespace, name) = Self::key_for(&object);
        self.write_with(&namespace, &name, |current| match current {
            Some(_) => Err(WriteError::AlreadyExists),
            None => Ok(object),
        })
        .map(|(stored, _)| stored)
    }

    /// Replace the stored object of the same name with `object`, as an
    /// update (`PUT`) does: `NotFound` if there is none, `Conflict` if
    /// `object` carries a resourceVersion or UID that is not the stored
    /// one. Without a resourceVersion the update is unconditional.
    pub fn replace(&self, object: T) -> Result<T, WriteError> {
        let (namespace, name) = Self::key_for(&object);
        self.write_with(&namespace, &name, |current| {
            let current = current.ok_or(WriteError::NotFound)?;
            Preconditions::of(&object).check(current)?;
            Ok(object)
        })
        .map(|(stored, _)| stored)
    }

    /// Delete `namespace/name` if `preconditions` hold; returns its final
    /// state (watchers see `DELETED`).
    pub fn delete_checked(
        &self,
        namespace: &str,
        name: &str,
        preconditions: &Preconditions,
    ) -> Result<T, WriteError> {
        {
            let inner = self.lock();
            let current = inner
                .objects
                .get(&Self::key(namespace, name))
                .ok_or(WriteError::NotFound)?;
            preconditions.check(current)?;
            // The check and the removal take the lock separately; between
            // them only another delete can remove the object, which then
            // answers `NotFound` just as a later delete would.
        }
        self.delete(namespace, name).ok_or(WriteError::NotFound)
    }

    /// The key an object would be stored under (namespace defaulted).
    fn key_for(object: &T) -> (String, String) {
        let meta = object.metadata();
        let namespace = match meta.namespace.as_deref() {
            _ if !T::NAMESPACED => "",
            None | Some("") => "default",
            Some(ns) => ns,
        };
        (namespace.to_owned(), meta.name.clone().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn config_map(name: &str, rv: Option<&str>, value: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("ns".to_owned()),
                resource_version: rv.map(str::to_owned),
                ..ObjectMeta::default()
            },
            data: Some([("k".to_owned(), value.to_owned())].into()),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn create_then_replace_from_the_stored_version_only() {
        let store = Store::<ConfigMap>::default();
        let created = store.create(config_map("c", None, "1")).unwrap();
        assert_eq!(
            store.create(config_map("c", None, "x")),
            Err(WriteError::AlreadyExists)
        );
        let rv = created.metadata.resource_version.clone();
        let replaced = store.replace(config_map("c", rv.as_deref(), "2")).unwrap();
        assert_eq!(replaced.metadata.uid, created.metadata.uid);
        assert_ne!(replaced.metadata.resource_version, rv);
        assert_eq!(
            store.replace(config_map("c", rv.as_deref(), "3")),
            Err(WriteError::Conflict(MODIFIED.to_owned()))
        );
        assert_eq!(store.get("ns", "c").unwrap(), replaced);
        assert!(store.replace(config_map("c", None, "4")).is_ok());
        let same = store.get("ns", "c").unwrap();
        assert_eq!(store.replace(same.clone()), Ok(same.clone()));
        assert_eq!(
            store.get("ns", "c").unwrap(),
            same,
            "no-op writes are skipped"
        );
        assert_eq!(
            store.replace(config_map("ghost", None, "4")),
            Err(WriteError::NotFound)
        );
    }

    #[test]
    fn deletes_check_preconditions() {
        let store = Store::<ConfigMap>::default();
        let created = store.create(config_map("c", None, "1")).unwrap();
        let stale = Preconditions {
            resource_version: Some("1".to_owned()),
            uid: None,
        };
        assert!(matches!(
            store.delete_checked("ns", "c", &stale),
            Err(WriteError::Conflict(_))
        ));
        let wrong_uid = Preconditions {
            resource_version: None,
            uid: Some("other".to_owned()),
        };
        assert!(matches!(
            store.delete_checked("ns", "c", &wrong_uid),
            Err(WriteError::Conflict(_))
        ));
        let current = Preconditions::of(&created);
        assert!(store.delete_checked("ns", "c", &current).is_ok());
        assert_eq!(
            store.delete_checked("ns", "c", &current),
            Err(WriteError::NotFound)
        );
    }
}
