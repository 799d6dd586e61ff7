//! The leader's record of what it announced, pure: the verdict last
//! announced per node, the open incidents, the id counter and the events
//! not yet delivered. Events come from comparing each node's verdict with
//! what was announced (not with the previous round), so a leader that
//! reads the record of the one before it announces what that one did not:
//! a recovery that happened across a restart or a hand-over is sent, and
//! what was sent already is not sent again.

use std::collections::{BTreeMap, HashMap, VecDeque};

use netchecker_wire::NodeEvent;
use serde::{Deserialize, Serialize};

use crate::domain::NodeVerdict;
use crate::nodes::is_event;

/// Events kept until every webhook has them (delivered or given up); the
/// oldest go first beyond this (they are still sent, only no longer
/// carried over to a next leader).
pub const MAX_OUTBOX: usize = 1024;

/// Whether `verdict` is a problem: it opens an incident or keeps it open.
pub fn is_problem(verdict: NodeVerdict) -> bool {
    !matches!(
        verdict,
        NodeVerdict::Healthy | NodeVerdict::Pending | NodeVerdict::Unknown
    )
}

/// Whether an event still waits for its deliveries.
pub trait Delivery {
    fn is_done(&self) -> bool;
}

/// One event to deliver, and its deliveries once handed over (`None`: not
/// handed over yet, e.g. inherited from the previous leader).
pub struct Outgoing<R> {
    pub event: NodeEvent,
    pub receipt: Option<R>,
}

struct Entry {
    verdict: NodeVerdict,
    /// The id of the event that opened the node's incident, while open.
    incident: Option<String>,
    round: u64,
}

/// The record, as a leader keeps it.
pub struct Ledger<R> {
    /// Begins every id: when this record was started (hex milliseconds),
    /// so that ids never repeat across records.
    epoch: String,
    /// Ids handed out.
    seq: u64,
    round: u64,
    nodes: HashMap<Box<str>, Entry>,
    outbox: VecDeque<Outgoing<R>>,
    /// Take the first round's verdicts as announced without sending
    /// anything (the record of the previous leader could not be read).
    adopt_first_round: bool,
}

/// The change a node's verdict makes to the record, to be announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The verdict last announced (`None`: nothing was).
    pub old: Option<NodeVerdict>,
    pub id: String,
    pub incident: Option<String>,
}

/// The record as stored: the open incidents, the id counter and the
/// undelivered events; a node not in `open` had nothing open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub version: u32,
    pub epoch: String,
    pub seq: u64,
    pub open: BTreeMap<String, OpenIncident>,
    #[serde(default)]
    pub unsent: Vec<NodeEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenIncident {
    pub verdict: NodeVerdict,
    pub incident: String,
}

/// The version of [`Stored`] this server writes and reads.
pub const STORED_VERSION: u32 = 1;

impl Stored {
    /// Keep the stored form within `max` bytes of JSON: the oldest unsent
    /// events go first, then open incidents from the end of the name
    /// order. Returns how many of each were left out.
    pub fn bounded(&mut self, max: usize) -> (usize, usize) {
        let size = |s: &Stored| serde_json::to_vec(s).map_or(usize::MAX, |v| v.len());
        let (mut events, mut open) = (0, 0);
        while size(self) > max {
            if !self.unsent.is_empty() {
                // Halving keeps this a few encodings even for a large excess.
                let n = (self.unsent.len() / 2).max(1);
                self.unsent.drain(..n);
                events += n;
            } else if let Some(last) = self.open.keys().next_back().cloned() {
                self.open.remove(&last);
                open += 1;
            } else {
                break;
            }
        }
        (events, open)
    }
}

impl<R: Delivery> Ledger<R> {
    /// A new record started at `unix_ms`.
    pub fn new(unix_ms: i64) -> Self {
        Self {
            epoch: format!("{unix_ms:x}"),
            seq: 0,
            round: 0,
            nodes: HashMap::new(),
            outbox: VecDeque::new(),
            adopt_first_round: false,
        }
    }

    /// A new record that takes the first round's verdicts as announced.
    pub fn adopting(unix_ms: i64) -> Self {
        Self {
            adopt_first_round: true,
            ..Self::new(unix_ms)
        }
    }

    /// The record a previous leader stored; its undelivered events are
    /// to be sent again (same ids).
    pub fn from_stored(stored: Stored) -> Self {
        let nodes = stored
            .open
            .into_iter()
            .map(|(node, o)| {
                let entry = Entry {
                    verdict: o.verdict,
                    incident: Some(o.incident),
                    round: 0,
                };
                (node.into_boxed_str(), entry)
            })
            .collect();
        let outbox = stored
            .unsent
            .into_iter()
            .map(|event| Outgoing {
                event,
                receipt: None,
            })
            .collect();
        Self {
            epoch: stored.epoch,
            seq: stored.seq,
            round: 0,
            nodes,
            outbox,
            adopt_first_round: false,
        }
    }

    /// What to store: only what a next leader needs.
    pub fn stored(&self) -> Stored {
        Stored {
            version: STORED_VERSION,
            epoch: self.epoch.clone(),
            seq: self.seq,
            open: self
                .nodes
                .iter()
                .filter_map(|(node, e)| {
                    let incident = e.incident.clone().filter(|_| is_problem(e.verdict))?;
                    Some((
                        node.to_string(),
                        OpenIncident {
                            verdict: e.verdict,
                            incident,
                        },
                    ))
                })
                .collect(),
            unsent: self.outbox.iter().map(|o| o.event.clone()).collect(),
        }
    }

    /// Open incidents.
    pub fn open(&self) -> usize {
        self.nodes
            .values()
            .filter(|e| e.incident.is_some() && is_problem(e.verdict))
            .count()
    }

    /// Start recording one evaluation: [`Announce::record`] every node,
    /// then [`Announce::finish`].
    pub fn begin(&mut self) -> Announce<'_, R> {
        self.round += 1;
        Announce {
            ledger: self,
            changed: false,
        }
    }

    /// Keep `event` until it is delivered everywhere.
    pub fn queue(&mut self, event: NodeEvent) {
        if self.outbox.len() >= MAX_OUTBOX {
            self.outbox.pop_front();
        }
        self.outbox.push_back(Outgoing {
            event,
            receipt: None,
        });
    }

    /// Hand every event not handed over yet to `send`, which returns its
    /// deliveries.
    pub fn hand_over(&mut self, mut send: impl FnMut(&NodeEvent) -> R) -> usize {
        let mut n = 0;
        for o in self.outbox.iter_mut().filter(|o| o.receipt.is_none()) {
            o.receipt = Some(send(&o.event));
            n += 1;
        }
        n
    }

    /// Forget the events whose deliveries are over. Whether any were.
    pub fn settle(&mut self) -> bool {
        let before = self.outbox.len();
        self.outbox
            .retain(|o| !o.receipt.as_ref().is_some_and(Delivery::is_done));
        self.outbox.len() != before
    }

    /// Events kept (handed over or not).
    pub fn outbox(&self) -> usize {
        self.outbox.len()
    }
}

/// One evaluation's changes to the record.
pub struct Announce<'l, R> {
    ledger: &'l mut Ledger<R>,
    changed: bool,
}

impl<R> Announce<'_, R> {
    /// Record `node` at `verdict`: the change to announce, if it is one
    /// ([`is_event`] against the verdict last announced). A pending node
    /// keeps what was announced: pending is no news, and what follows it
    /// is compared with what came before.
    pub fn record(&mut self, node: &str, verdict: NodeVerdict) -> Option<Change> {
        let ledger = &mut *self.ledger;
        let round = ledger.round;
        let entry = match ledger.nodes.get_mut(node) {
            Some(e) => e,
            None => ledger.nodes.entry(node.into()).or_insert(Entry {
                verdict: NodeVerdict::Pending,
                incident: None,
                round,
            }),
        };
        entry.round = round;
        let old = (entry.verdict != NodeVerdict::Pending).then_some(entry.verdict);
        if verdict == NodeVerdict::Pending || old == Some(verdict) {
            return None;
        }
        entry.verdict = verdict;
        self.changed = true;
        if ledger.adopt_first_round || !is_event(old, verdict) {
            entry.incident = entry.incident.take().filter(|_| is_problem(verdict));
            return None;
        }
        ledger.seq += 1;
        let id = format!(
            "{}-{}:{node}:{}",
            ledger.epoch,
            ledger.seq,
            verdict.as_str()
        );
        let incident = if is_problem(verdict) {
            Some(entry.incident.get_or_insert_with(|| id.clone()).clone())
        } else {
            entry.incident.take()
        };
        Some(Change { old, id, incident })
    }

    /// Nodes not recorded in this evaluation are gone, with their
    /// incidents (silently, as their series). Whether the record changed.
    pub fn finish(self) -> bool {
        let ledger = self.ledger;
        let round = ledger.round;
        let before = ledger.nodes.len();
        ledger.nodes.retain(|_, e| e.round == round);
        ledger.adopt_first_round = false;
        self.changed || ledger.nodes.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NodeVerdict::*;

    #[derive(Clone, Default)]
    struct Done(std::rc::Rc<std::cell::Cell<bool>>);
    impl Delivery for Done {
        fn is_done(&self) -> bool {
            self.0.get()
        }
    }

    fn round(ledger: &mut Ledger<Done>, nodes: &[(&str, NodeVerdict)]) -> Vec<(String, Change)> {
        let mut a = ledger.begin();
        let changes = nodes
            .iter()
            .filter_map(|(n, v)| a.record(n, *v).map(|c| ((*n).to_owned(), c)))
            .collect();
        a.finish();
        changes
    }

    fn event(node: &str, c: &Change, new: NodeVerdict) -> NodeEvent {
        NodeEvent {
            node: node.into(),
            old_verdict: c.old,
            new_verdict: new,
            reason: String::new(),
            agents: Vec::new(),
            time: jiff::Timestamp::UNIX_EPOCH,
            id: Some(c.id.clone()),
            incident: c.incident.clone(),
        }
    }

    #[test]
    fn an_incident_opens_changes_and_closes_under_one_id() {
        let mut l = Ledger::<Done>::new(0x1000);
        assert!(round(&mut l, &[("a", Pending), ("b", Pending)]).is_empty());
        assert!(round(&mut l, &[("a", Healthy), ("b", Unknown)]).is_empty());
        let c = round(&mut l, &[("a", PodNetworkDown), ("b", Unknown)]);
        assert_eq!(c.len(), 1);
        let opened = &c[0].1;
        assert_eq!(opened.old, Some(Healthy));
        assert_eq!(opened.id, "1000-1:a:pod_network_down");
        assert_eq!(opened.incident.as_deref(), Some(opened.id.as_str()));
        assert_eq!(l.open(), 1);
        let c = round(&mut l, &[("a", Unreachable), ("b", Unknown)]);
        assert_eq!(c[0].1.id, "1000-2:a:unreachable");
        assert_eq!(c[0].1.incident, opened.incident, "the same incident");
        // Pending in between is no news: the recovery is against unreachable.
        assert!(round(&mut l, &[("a", Pending), ("b", Unknown)]).is_empty());
        let c = round(&mut l, &[("a", Healthy), ("b", Unknown)]);
        assert_eq!(c[0].1.old, Some(Unreachable));
        assert_eq!(c[0].1.incident, opened.incident, "the recovery closes it");
        assert_eq!(l.open(), 0);
        let c = round(&mut l, &[("a", DnsFailure), ("b", Unknown)]);
        assert_eq!(
            c[0].1.incident.as_deref(),
            Some("1000-4:a:dns_failure"),
            "a new incident"
        );
    }

    #[test]
    fn a_problem_first_seen_is_sent_and_a_node_that_leaves_goes_silently() {
        let mut l = Ledger::<Done>::new(1);
        let c = round(&mut l, &[("a", Unreachable), ("b", Healthy)]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].1.old, None);
        assert!(round(&mut l, &[("b", Healthy)]).is_empty());
        assert_eq!(l.open(), 0);
        // Back later: first seen again.
        let c = round(&mut l, &[("a", Unreachable), ("b", Healthy)]);
        assert_eq!(c[0].1.old, None);
    }

    #[test]
    fn a_next_leader_sends_the_recovery_and_nothing_twice() {
        let mut first = Ledger::<Done>::new(7);
        round(&mut first, &[("a", Healthy), ("b", Healthy)]);
        let opened = round(&mut first, &[("a", Unreachable), ("b", Healthy)]);
        let stored = first.stored();
        assert_eq!(stored.open.len(), 1);
        let json = serde_json::to_string(&stored).unwrap();
        let stored: Stored = serde_json::from_str(&json).unwrap();

        // Still broken when the next leader reads the record: nothing new.
        let mut next = Ledger::<Done>::from_stored(stored.clone());
        assert!(round(&mut next, &[("a", Pending), ("b", Pending)]).is_empty());
        assert!(round(&mut next, &[("a", Unreachable), ("b", Healthy)]).is_empty());
        // It recovers under the next leader: the recovery closes the
        // incident the first one opened.
        let c = round(&mut next, &[("a", Healthy), ("b", Healthy)]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].1.old, Some(Unreachable));
        assert_eq!(c[0].1.incident, opened[0].1.incident);
        assert_eq!(c[0].1.id, "7-2:a:healthy", "the counter carried over");

        // A leader that sent a change and died before storing it: the next
        // one, from the same record, finds the same change with the same id.
        let mut crashed = Ledger::<Done>::from_stored(stored.clone());
        let sent = round(&mut crashed, &[("a", Healthy), ("b", Unreachable)]);
        let mut again = Ledger::<Done>::from_stored(stored);
        let resent = round(&mut again, &[("a", Healthy), ("b", Unreachable)]);
        assert_eq!(sent, resent);
    }

    #[test]
    fn unsent_events_are_carried_over_and_forgotten_once_delivered() {
        let mut l = Ledger::<Done>::new(1);
        let c = round(&mut l, &[("a", Unreachable)]);
        l.queue(event("a", &c[0].1, Unreachable));
        let stored = l.stored();
        assert_eq!(stored.unsent.len(), 1);
        let mut next = Ledger::<Done>::from_stored(stored);
        let done = Done::default();
        let mut handed = Vec::new();
        assert_eq!(
            next.hand_over(|e| {
                handed.push(e.id.clone());
                done.clone()
            }),
            1
        );
        assert_eq!(handed, [c[0].1.id.clone().into()]);
        assert_eq!(next.hand_over(|_| unreachable!("handed over once")), 0);
        assert!(!next.settle());
        done.0.set(true);
        assert!(next.settle());
        assert_eq!(next.outbox(), 0);
        assert!(next.stored().unsent.is_empty());
    }

    #[test]
    fn a_leader_without_the_record_adopts_what_it_finds() {
        let mut l = Ledger::<Done>::adopting(1);
        assert!(round(&mut l, &[("a", Unreachable), ("b", Healthy)]).is_empty());
        assert_eq!(l.open(), 0, "adopted, not announced: no incident id");
        let c = round(&mut l, &[("a", Healthy), ("b", Healthy)]);
        assert_eq!(
            (c[0].1.old, c[0].1.incident.clone()),
            (Some(Unreachable), None)
        );
    }

    #[test]
    fn the_outbox_and_the_stored_form_are_bounded() {
        let mut l = Ledger::<Done>::new(1);
        let c = round(&mut l, &[("a", Unreachable)]);
        for _ in 0..MAX_OUTBOX + 10 {
            l.queue(event("a", &c[0].1, Unreachable));
        }
        assert_eq!(l.outbox(), MAX_OUTBOX);
        let mut stored = l.stored();
        for i in 0..2000 {
            stored.open.insert(
                format!("node-{i:05}"),
                OpenIncident {
                    verdict: Unreachable,
                    incident: format!("1-{i}:node-{i:05}:unreachable"),
                },
            );
        }
        let (events, open) = stored.bounded(50_000);
        assert_eq!(events, MAX_OUTBOX);
        assert!(open > 0 && stored.open.contains_key("a"), "{open}");
        assert!(serde_json::to_vec(&stored).unwrap().len() <= 50_000);
    }
}
