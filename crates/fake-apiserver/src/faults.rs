//! One-shot faults: "the next `times` requests of this verb on this
//! resource fail with this status", for tests of how the code under test
//! handles one failed lease renewal, one conflicting update, one lost
//! event. Unlike a [`crate::Failure`] mode, which every API request meets
//! until it is changed, a fault is used up by the requests it answers and
//! reaches only its resource and verb.
//!
//! Faults are checked after the failure mode (a request held by `Hang` or
//! answered by `Error` does not use one up) and before anything is read or
//! written, so a failed write changes nothing.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The resources faults can name, as RBAC names them. `events` covers
/// both the core v1 and the `events.k8s.io/v1` API.
pub const RESOURCES: &[&str] = &[
    "pods",
    "nodes",
    "nodes/status",
    "leases",
    "configmaps",
    "events",
];

/// An API verb, as RBAC names it (`update` is `PUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
}

impl Verb {
    /// The verb as RBAC spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
        }
    }
}

fn default_status() -> u16 {
    500
}

fn once() -> u32 {
    1
}

/// The next `times` requests of `verb` on `resource` answer `status` (a
/// `Status` body; `409` with reason `Conflict`, as a stale update gets).
/// On the control API: `{"resource":"leases","verb":"update","status":409,
/// "times":1}` (`status` defaults to 500, `times` to 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    pub resource: String,
    pub verb: Verb,
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default = "once")]
    pub times: u32,
}

impl Fault {
    /// The next request of `verb` on `resource` answers `status`.
    pub fn new(resource: &str, verb: Verb, status: u16) -> Self {
        Self {
            resource: resource.to_owned(),
            verb,
            status,
            times: 1,
        }
    }

    /// The next `times` requests fail, not only the next one.
    #[must_use]
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// Why this fault cannot be injected, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !RESOURCES.contains(&self.resource.as_str()) {
            return Err(format!(
                "resource must be one of {RESOURCES:?}, got {:?}",
                self.resource
            ));
        }
        if !(400..=599).contains(&self.status) {
            return Err(format!(
                "status must be within 400..=599, got {}",
                self.status
            ));
        }
        if self.times == 0 {
            return Err("times must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// The faults not used up yet, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Faults(Mutex<Vec<Fault>>);

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn add(&self, fault: Fault) {
        self.lock().push(fault);
    }

    /// Use up one request of the oldest fault matching `resource` and
    /// `verb`: the status to answer with, if any.
    pub(crate) fn take(&self, resource: &str, verb: Verb) -> Option<u16> {
        let mut faults = self.lock();
        let at = faults
            .iter()
            .position(|f| f.resource == resource && f.verb == verb)?;
        let fault = &mut faults[at];
        let status = fault.status;
        fault.times -= 1;
        if fault.times == 0 {
            faults.remove(at);
        }
        Some(status)
    }

    pub(crate) fn pending(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_used_up_in_order() {
        let faults = Faults::default();
        faults.add(Fault::new("leases", Verb::Update, 409).times(2));
        faults.add(Fault::new("leases", Verb::Update, 500));
        assert_eq!(faults.take("leases", Verb::Get), None);
        assert_eq!(faults.take("configmaps", Verb::Update), None);
        assert_eq!(faults.take("leases", Verb::Update), Some(409));
        assert_eq!(faults.take("leases", Verb::Update), Some(409));
        assert_eq!(faults.pending(), [Fault::new("leases", Verb::Update, 500)]);
        assert_eq!(faults.take("leases", Verb::Update), Some(500));
        assert_eq!(faults.take("leases", Verb::Update), None);
    }

    #[test]
    fn faults_on_the_wire() {
        let fault: Fault =
            serde_json::from_str(r#"{"resource":"nodes/status","verb":"patch"}"#).unwrap();
        assert_eq!(fault, Fault::new("nodes/status", Verb::Patch, 500));
        assert!(fault.validate().is_ok());
        assert!(Fault::new("secrets", Verb::Get, 500).validate().is_err());
        assert!(Fault::new("leases", Verb::Get, 200).validate().is_err());
        assert!(
            Fault::new("leases", Verb::Get, 500)
                .times(0)
                .validate()
                .is_err()
        );
        assert!(serde_json::from_str::<Fault>(r#"{"resource":"leases","verb":"steal"}"#).is_err());
    }
}
