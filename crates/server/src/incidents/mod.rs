//! Open incidents that survive restarts and hand-overs: the leader's
//! record of what it announced ([`ledger`]), kept in memory and, with
//! leader election on Kubernetes, in a ConfigMap the leader owns
//! ([`store`]). A new leader reads the record before it announces
//! anything, so a node that recovered while no replica spoke still gets its
//! recovery event, and a change already announced is not announced again.
//! Every event carries an id (the same for the same change found again)
//! and the id of its incident.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use netchecker_wire::NodeEvent;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use tokio::sync::Notify;

use crate::metrics::register;
use crate::webhook::Receipt;

/// The record and its rules, pure.
pub mod ledger;
/// The record in a ConfigMap: read by a new leader, written after changes.
pub mod store;

use ledger::{Delivery, Ledger, Stored};

impl Delivery for Receipt {
    fn is_done(&self) -> bool {
        Receipt::is_done(self)
    }
}

/// The record of this replica, while it leads.
pub struct Incidents {
    state: Mutex<State>,
    /// A store is attached: a new term must read the record first.
    stored: AtomicBool,
    /// Wakes the store task: a record to read or to write.
    wake: Notify,
    open: IntGauge,
    store_ops: IntCounterVec,
}

struct State {
    /// The term the record belongs to.
    term: u64,
    /// The last round found this replica leading.
    leading: bool,
    /// `None` while a new leader reads the stored record.
    ledger: Option<Ledger<Receipt>>,
    /// Changed since last written.
    dirty: bool,
}

/// What the store task is asked to do.
pub(crate) enum Work {
    /// Read the stored record for this term.
    Load(u64),
    /// Write this record (of this term).
    Save(u64, Stored),
    Nothing,
}

impl Incidents {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let open = register(
            registry,
            IntGauge::new(
                "netchecker_incidents_open",
                "Nodes with an open incident: a problem announced by the leader and not yet recovered (0 on other replicas)",
            )?,
        )?;
        let store_ops = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "netchecker_incident_store_total",
                    "Reads and writes of the open incidents' ConfigMap by the leader, by operation (load, save) and result (ok, error)",
                ),
                &["operation", "result"],
            )?,
        )?;
        for op in ["load", "save"] {
            for result in ["ok", "error"] {
                store_ops.with_label_values(&[op, result]);
            }
        }
        Ok(Self {
            state: Mutex::new(State {
                term: 0,
                leading: false,
                ledger: None,
                dirty: false,
            }),
            stored: AtomicBool::new(false),
            wake: Notify::new(),
            open,
            store_ops,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// From now on a new term reads the stored record before announcing.
    pub(crate) fn attach_store(&self) {
        self.stored.store(true, Ordering::Release);
    }

    /// Run `f` on the record of `term`, if it is there: a new term without
    /// a store starts (or keeps) a record in memory; with one, it asks the
    /// store task to read the stored record, and nothing is announced
    /// until it is in. Whether the record changed is noted for the store.
    pub fn with_ledger<T>(
        &self,
        term: u64,
        f: impl FnOnce(&mut Ledger<Receipt>) -> (T, bool),
    ) -> Option<T> {
        let mut state = self.lock();
        state.leading = true;
        if state.term != term {
            state.term = term;
            if self.stored.load(Ordering::Acquire) {
                state.ledger = None;
                state.dirty = false;
                self.wake.notify_one();
            } else if state.ledger.is_none() {
                state.ledger = Some(Ledger::new(jiff::Timestamp::now().as_millisecond()));
            }
        }
        let ledger = state.ledger.as_mut()?;
        let (out, changed) = f(ledger);
        let open = ledger.open();
        if changed {
            state.dirty = true;
            self.wake.notify_one();
        }
        self.open.set(i64::try_from(open).unwrap_or(i64::MAX));
        Some(out)
    }

    /// This replica does not lead (any more): it announces nothing and
    /// writes nothing; a next term starts from the stored record again.
    pub fn follow(&self) {
        let mut state = self.lock();
        state.leading = false;
        state.dirty = false;
        self.open.set(0);
    }

    /// Hand the events not yet handed over to `send`; forget those
    /// delivered. Returns the events handed over.
    pub fn deliver(&self, term: u64, send: impl FnMut(&NodeEvent) -> Receipt) -> usize {
        self.with_ledger(term, |l| {
            let settled = l.settle();
            let n = l.hand_over(send);
            (n, settled)
        })
        .unwrap_or(0)
    }

    /// What the store task should do now.
    pub(crate) fn work(&self) -> Work {
        let mut state = self.lock();
        if !state.leading {
            return Work::Nothing;
        }
        match &state.ledger {
            None => Work::Load(state.term),
            Some(l) if state.dirty => {
                let stored = l.stored();
                state.dirty = false;
                Work::Save(state.term, stored)
            }
            _ => Work::Nothing,
        }
    }

    /// The stored record of `term` was read (`None`: there was none, or it
    /// could not be read: `adopt`).
    pub(crate) fn install(&self, term: u64, stored: Option<Stored>, adopt: bool) {
        let mut state = self.lock();
        if state.term != term || state.ledger.is_some() {
            return;
        }
        let now = jiff::Timestamp::now().as_millisecond();
        state.ledger = Some(match stored {
            Some(s) => Ledger::from_stored(s),
            None if adopt => Ledger::adopting(now),
            None => Ledger::new(now),
        });
        // Written back at once: the record is ours from now on.
        state.dirty = true;
        self.wake.notify_one();
    }

    /// A write of `term`'s record failed: write again later.
    pub(crate) fn unsaved(&self, term: u64) {
        let mut state = self.lock();
        if state.term == term && state.ledger.is_some() {
            state.dirty = true;
        }
    }

    /// Settle the deliveries now and have the record written, if this
    /// replica was leading at its last round (shutdown, once no round
    /// announces any more).
    pub(crate) fn settle_now(&self) {
        let mut state = self.lock();
        if !state.leading {
            return;
        }
        if let Some(l) = state.ledger.as_mut() {
            l.settle();
            state.dirty = true;
        }
    }

    pub(crate) fn count(&self, operation: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.store_ops.with_label_values(&[operation, result]).inc();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }
}
