//! What the leader writes into Kubernetes about the nodes it judges
//! (`--node-conditions`): a `NetcheckerNetworkProblem` condition on each
//! node, and an Event on each node verdict change.
//!
//! The round decides, never waits: [`NodeWriter::sync`] compares each
//! node's wanted condition with the last one handed over and queues the
//! differences on a bounded queue; a task of its own ([`write`]) writes
//! them with retries and backoff. A write that fails for good, or does not
//! fit in the queue, is forgotten as sent, so a later round queues it
//! again. A new term of leadership forgets everything sent, so a new
//! leader writes every node's condition once and converges.
//!
//! Which verdicts set what:
//! - a problem verdict (`pod_network_down`, `unreachable`, `mesh_mtu`,
//!   ...): `status: "True"`, `reason` the verdict in CamelCase
//!   (`PodNetworkDown`), `message` the one-line reason (at most
//!   [`MAX_MESSAGE`] bytes);
//! - `healthy`: `status: "False"`, reason `NetworkOk`;
//! - `pending` and `unknown`: the condition is left as it is (the server
//!   does not know more than before); so is the condition of a node that
//!   left the evaluation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use netchecker_wire::NodeEvent;
use prometheus::{IntCounterVec, Opts, Registry};
use tokio::sync::mpsc;

use crate::domain::NodeVerdict;
use crate::metrics::register;

/// The task that writes conditions and Events.
pub mod write;

/// The condition's type on the Node.
pub const CONDITION_TYPE: &str = "NetcheckerNetworkProblem";

/// The longest condition message or Event note, in bytes (an Event note
/// may hold 1 kB).
pub const MAX_MESSAGE: usize = 1024;

/// The condition a verdict wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Whether the node has a network problem (`status: "True"`).
    pub problem: bool,
    /// `NetworkOk`, or the verdict in CamelCase.
    pub reason: String,
}

impl Wanted {
    /// The condition's `status`.
    pub fn status(&self) -> &'static str {
        if self.problem { "True" } else { "False" }
    }
}

/// The condition `verdict` wants; `None`: leave it as it is.
pub fn wanted(verdict: NodeVerdict) -> Option<Wanted> {
    match verdict {
        NodeVerdict::Pending | NodeVerdict::Unknown => None,
        NodeVerdict::Healthy => Some(Wanted {
            problem: false,
            reason: "NetworkOk".to_owned(),
        }),
        problem => Some(Wanted {
            problem: true,
            reason: camel(problem),
        }),
    }
}

/// A verdict in CamelCase: `pod_network_down` -> `PodNetworkDown`.
pub fn camel(verdict: NodeVerdict) -> String {
    verdict
        .as_str()
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// `text` cut to at most `max` bytes on a character boundary, marked with
/// an ellipsis when cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// One write for the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    Condition {
        node: String,
        wanted: Wanted,
        message: String,
    },
    Event {
        node: String,
        verdict: NodeVerdict,
        note: String,
    },
}

/// How writes are queued and retried.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// Writes waiting before new ones are dropped (and queued again by a
    /// later round).
    pub queue: usize,
    /// Attempts per write, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Who records the Events (`reportingInstance`).
    pub identity: String,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self {
            queue: 1024,
            max_attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            identity: String::new(),
        }
    }
}

/// What was handed over, per node, in which term of leadership.
#[derive(Default)]
pub(crate) struct Sent {
    term: u64,
    nodes: HashMap<String, Wanted>,
}

/// The leader's side of the queue: what the round calls.
pub struct NodeWriter {
    queue: mpsc::Sender<Job>,
    sent: Arc<Mutex<Sent>>,
    counters: Counters,
}

/// `netchecker_node_writes_total{kind, result}`.
#[derive(Clone)]
pub(crate) struct Counters(IntCounterVec);

impl Counters {
    fn new(registry: &Registry) -> prometheus::Result<Self> {
        let c = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "netchecker_node_writes_total",
                    "Node conditions and Kubernetes Events the leader wrote, by kind (condition, event) and result: written, failed (gave up), dropped (queue full, or leadership lost before writing)",
                ),
                &["kind", "result"],
            )?,
        )?;
        for kind in ["condition", "event"] {
            for result in ["written", "failed", "dropped"] {
                c.with_label_values(&[kind, result]);
            }
        }
        Ok(Self(c))
    }

    pub(crate) fn inc(&self, job: &Job, result: &str) {
        let kind = match job {
            Job::Condition { .. } => "condition",
            Job::Event { .. } => "event",
        };
        self.0.with_label_values(&[kind, result]).inc();
    }
}

impl NodeWriter {
    /// The round's side, and the receiving end for the task.
    pub fn new(
        registry: &Registry,
        queue: usize,
    ) -> prometheus::Result<(Self, mpsc::Receiver<Job>)> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let writer = Self {
            queue: tx,
            sent: Arc::default(),
            counters: Counters::new(registry)?,
        };
        Ok((writer, rx))
    }

    /// Queue the condition of every node (`name`, `verdict`) whose wanted
    /// condition differs from the one last handed over in `term`; the
    /// message (`reason`) is written only for those.
    pub fn sync<N>(
        &self,
        term: u64,
        nodes: &[N],
        key: impl Fn(&N) -> (&str, NodeVerdict),
        reason: impl Fn(&N) -> String,
    ) {
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        if sent.term != term {
            sent.term = term;
            sent.nodes.clear();
        }
        for node in nodes {
            let (name, verdict) = key(node);
            let Some(wanted) = wanted(verdict) else {
                continue;
            };
            if name.is_empty() || sent.nodes.get(name) == Some(&wanted) {
                continue;
            }
            let job = Job::Condition {
                node: name.to_owned(),
                wanted: wanted.clone(),
                message: bounded(&reason(node), MAX_MESSAGE),
            };
            if self.queue.try_send(job.clone()).is_ok() {
                sent.nodes.insert(name.to_owned(), wanted);
            } else {
                // Not noted as sent: the next round queues it again.
                self.counters.inc(&job, "dropped");
            }
        }
    }

    /// Queue the Event of a node verdict change.
    pub fn event(&self, event: &NodeEvent) {
        let job = Job::Event {
            node: event.node.clone(),
            verdict: event.new_verdict,
            note: bounded(&event.reason, MAX_MESSAGE),
        };
        if self.queue.try_send(job.clone()).is_err() {
            self.counters.inc(&job, "dropped");
            tracing::debug!(node = ?event.node, "node writes queue full; Kubernetes Event dropped");
        }
    }

    /// What the task needs to forget a write that failed and count.
    pub(crate) fn shared(&self) -> (Arc<Mutex<Sent>>, Counters) {
        (self.sent.clone(), self.counters.clone())
    }
}

/// Forget that `node`'s condition was handed over (it was not written):
/// the next round queues it again.
pub(crate) fn forget(sent: &Mutex<Sent>, node: &str) {
    sent.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .nodes
        .remove(node);
}

#[cfg(test)]
mod tests;
