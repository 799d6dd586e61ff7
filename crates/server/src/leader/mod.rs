//! One voice among several replicas: whether this replica is the one that
//! sends webhook events, writes node conditions and records Kubernetes
//! Events. Every replica judges the cluster and keeps its own metrics;
//! only the holder of a `coordination.k8s.io/v1` Lease speaks.
//!
//! [`Leadership`] is the shared answer ("am I the leader, since which
//! term"); [`decide`] holds the election's rules, pure; [`lease`] runs the
//! election on the Kubernetes API. Without `--leader-election` (or without
//! Kubernetes) a replica is its own leader, as a single server always was.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus::{IntCounter, IntGauge, Registry};

use crate::metrics::register;

/// The election's rules: what to do with the Lease, when to step down.
pub mod decide;
/// The election on the Kubernetes API: get, create, renew, take over,
/// release the Lease.
pub mod lease;

/// Whether this replica leads; cheap to clone and to read on every round.
#[derive(Clone)]
pub struct Leadership(Arc<State>);

struct State {
    leader: AtomicBool,
    /// Bumped each time this replica becomes the leader, so what a new
    /// leader must do once (write every node's condition) is done once per
    /// term.
    term: AtomicU64,
    /// The holder last seen, for the log line of each change.
    holder: Mutex<Option<String>>,
    gauge: IntGauge,
    suppressed: IntCounter,
}

impl Leadership {
    /// A replica that leads from the start (no election): gauge 1.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let gauge = register(
            registry,
            IntGauge::new(
                "netchecker_leader",
                "1 while this replica is the one that sends webhook events, node conditions and Kubernetes Events (always 1 without --leader-election)",
            )?,
        )?;
        let suppressed = register(
            registry,
            IntCounter::new(
                "netchecker_events_suppressed_total",
                "Node verdict change events this replica judged but did not send because another replica leads",
            )?,
        )?;
        gauge.set(1);
        Ok(Self(Arc::new(State {
            leader: AtomicBool::new(true),
            term: AtomicU64::new(1),
            holder: Mutex::new(None),
            gauge,
            suppressed,
        })))
    }

    /// Whether this replica speaks now.
    pub fn is_leader(&self) -> bool {
        self.0.leader.load(Ordering::Acquire)
    }

    /// This replica's current term: changes each time it becomes leader.
    pub fn term(&self) -> u64 {
        self.0.term.load(Ordering::Acquire)
    }

    /// Count an event a follower did not send.
    pub fn suppressed(&self) {
        self.0.suppressed.inc();
    }

    /// Become a candidate: not the leader until an election says so.
    pub fn candidate(&self) {
        self.0.leader.store(false, Ordering::Release);
        self.0.gauge.set(0);
    }

    /// We hold the lease (`me`). Logged when it is news.
    pub fn lead(&self, me: &str) {
        if !self.0.leader.swap(true, Ordering::AcqRel) {
            self.0.term.fetch_add(1, Ordering::AcqRel);
            self.0.gauge.set(1);
            tracing::info!(holder = %me, "this replica is now the leader: it sends webhook events, node conditions and Kubernetes Events");
        }
        self.note_holder(Some(me));
    }

    /// We stop leading (`why`), and `holder` (if known) holds the lease.
    pub fn follow(&self, holder: Option<&str>, why: &str) {
        if self.0.leader.swap(false, Ordering::AcqRel) {
            self.0.gauge.set(0);
            tracing::warn!(holder = holder.unwrap_or("unknown"), reason = %why, "this replica stepped down: it no longer sends webhook events, node conditions or Kubernetes Events");
        }
        self.note_holder(holder);
    }

    /// Log each change of the holder seen.
    fn note_holder(&self, holder: Option<&str>) {
        let mut last = self.0.holder.lock().unwrap_or_else(PoisonError::into_inner);
        if holder.is_some() && last.as_deref() != holder {
            tracing::info!(
                holder = holder.unwrap_or(""),
                previous = last.as_deref().unwrap_or("none"),
                "the leader changed"
            );
            *last = holder.map(str::to_owned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_change_only_when_leadership_is_won() {
        let registry = Registry::new();
        let l = Leadership::new(&registry).unwrap();
        assert!(l.is_leader());
        let first = l.term();
        l.candidate();
        assert!(!l.is_leader());
        l.lead("a");
        let second = l.term();
        assert_ne!(first, second);
        l.lead("a");
        assert_eq!(l.term(), second, "a renewal is no new term");
        l.follow(Some("b"), "stolen");
        assert!(!l.is_leader());
        l.lead("a");
        assert_ne!(l.term(), second);
    }
}
