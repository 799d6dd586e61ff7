//! Ready-made Leases for tests, and the two things a test does to a
//! leader's lease behind its back: hand it to another holder (steal) and
//! let it run out (expire).

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

/// The `leaseDurationSeconds` assumed when a lease does not give one
/// (client-go's and kube-rs's usual 15 s).
pub const DEFAULT_LEASE_SECONDS: i32 = 15;

/// Now, as the API stores a `MicroTime`: whole microseconds.
fn now() -> MicroTime {
    let now = Timestamp::now();
    MicroTime(Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now))
}

/// A lease `namespace/name` held by `holder`, acquired and renewed now,
/// for [`DEFAULT_LEASE_SECONDS`], with no transitions yet.
///
/// ```
/// use netchecker_fake_apiserver::lease;
///
/// let held = lease("netchecker", "netchecker-server", "server-0");
/// assert_eq!(held.spec.unwrap().holder_identity.as_deref(), Some("server-0"));
/// ```
pub fn lease(namespace: &str, name: &str, holder: &str) -> Lease {
    let now = now();
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(DEFAULT_LEASE_SECONDS),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        }),
    }
}

/// Hand the lease to `holder`, as a rival that acquired it would: holder,
/// acquire and renew time now, one more transition (when the holder
/// changes).
pub fn steal(lease: &mut Lease, holder: &str) {
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let now = now();
    if spec.holder_identity.as_deref() != Some(holder) {
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.holder_identity = Some(holder.to_owned());
    spec.acquire_time = Some(now.clone());
    spec.renew_time = Some(now);
}

/// Make the lease look abandoned: its renew time moves back by its
/// duration (default [`DEFAULT_LEASE_SECONDS`]) plus one second, so any
/// candidate may take it now. The holder is kept, as a crashed leader
/// leaves it.
pub fn expire(lease: &mut Lease) {
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let seconds = spec.lease_duration_seconds.unwrap_or(DEFAULT_LEASE_SECONDS);
    let past = now().0 - SignedDuration::from_secs(i64::from(seconds) + 1);
    spec.renew_time = Some(MicroTime(past));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_counts_a_transition_only_for_a_new_holder() {
        let mut l = lease("ns", "l", "a");
        steal(&mut l, "a");
        assert_eq!(l.spec.as_ref().unwrap().lease_transitions, Some(0));
        steal(&mut l, "b");
        let spec = l.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.lease_transitions, Some(1));
    }

    #[test]
    fn an_expired_lease_was_renewed_longer_ago_than_it_lasts() {
        let mut l = lease("ns", "l", "a");
        l.spec.as_mut().unwrap().lease_duration_seconds = Some(5);
        expire(&mut l);
        let spec = l.spec.unwrap();
        let age = Timestamp::now().duration_since(spec.renew_time.unwrap().0);
        assert!(age > SignedDuration::from_secs(5));
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    }
}
