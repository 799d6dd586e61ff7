//! Node verdicts over time: which node changed verdict since the last
//! evaluation, the `netchecker_node_verdict` series, and the change events
//! sent to webhooks.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use prometheus::{IntGaugeVec, Opts, Registry};
use serde::Serialize;

use crate::diagnosis::NodeVerdict;
use crate::metrics::register;
use crate::status::{NodeStatus, Status};

/// A node's verdict changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub node: String,
    /// `null` for a node first seen, `pending` after a restart.
    pub old_verdict: Option<NodeVerdict>,
    pub new_verdict: NodeVerdict,
    pub reason: String,
    pub agents: Vec<EventAgent>,
    pub time: jiff::Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventAgent {
    pub name: String,
    pub kind: crate::podview::AgentKind,
    pub state: &'static str,
    pub last_report_age_seconds: Option<f64>,
}

/// Whether a change from `old` to `new` is worth an event. Nothing is
/// sent for a node becoming pending, nor for one that turns out healthy
/// (or has no expected agent) when first seen or after a restart; a
/// problem found then is sent.
pub fn is_event(old: Option<NodeVerdict>, new: NodeVerdict) -> bool {
    use NodeVerdict::{Healthy, Pending, Unknown};
    match (old, new) {
        (_, Pending) => false,
        (None | Some(Pending), Healthy | Unknown) => false,
        (None, _) => true,
        (Some(old), new) => old != new,
    }
}

/// The last verdict of every node and the series that show it.
pub struct NodeTracker {
    last: Mutex<HashMap<String, NodeVerdict>>,
    node_verdict: IntGaugeVec,
    nodes: IntGaugeVec,
}

impl NodeTracker {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let node_verdict = register(
            registry,
            IntGaugeVec::new(
                Opts::new(
                    "netchecker_node_verdict",
                    "1 for the current verdict of each node (one series per node; see /api/v2/status for the reason)",
                ),
                &["node", "verdict"],
            )?,
        )?;
        let nodes = register(
            registry,
            IntGaugeVec::new(
                Opts::new("netchecker_nodes", "Nodes per verdict"),
                &["verdict"],
            )?,
        )?;
        for v in NodeVerdict::ALL {
            nodes.with_label_values(&[v.as_str()]).set(0);
        }
        Ok(Self {
            last: Mutex::new(HashMap::new()),
            node_verdict,
            nodes,
        })
    }

    /// Record the verdicts of `status`: update the series and return the
    /// events for the changes worth one. Nodes gone from the status lose
    /// their series and send nothing.
    pub fn update(&self, status: &Status) -> Vec<Event> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let mut events = Vec::new();
        let mut seen = HashMap::with_capacity(status.nodes.len());
        for node in &status.nodes {
            let old = last.get(&node.node).copied();
            if old != Some(node.verdict) {
                if let Some(old) = old {
                    let _ = self
                        .node_verdict
                        .remove_label_values(&[&node.node, old.as_str()]);
                }
                self.node_verdict
                    .with_label_values(&[&node.node, node.verdict.as_str()])
                    .set(1);
                if is_event(old, node.verdict) {
                    events.push(event(node, old, status.generated_at));
                }
            }
            seen.insert(node.node.clone(), node.verdict);
        }
        for (node, old) in last.iter() {
            if !seen.contains_key(node) {
                let _ = self.node_verdict.remove_label_values(&[node, old.as_str()]);
            }
        }
        *last = seen;
        for v in NodeVerdict::ALL {
            let n = status
                .summary
                .verdicts
                .get(v.as_str())
                .copied()
                .unwrap_or(0);
            self.nodes
                .with_label_values(&[v.as_str()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        events
    }
}

fn event(node: &NodeStatus, old: Option<NodeVerdict>, time: jiff::Timestamp) -> Event {
    Event {
        node: node.node.clone(),
        old_verdict: old,
        new_verdict: node.verdict,
        reason: node.reason.clone(),
        agents: node
            .agents
            .iter()
            .map(|a| EventAgent {
                name: a.name.clone(),
                kind: a.kind,
                state: a.state,
                last_report_age_seconds: a.last_report_age_seconds,
            })
            .collect(),
        time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NodeVerdict::*;

    #[test]
    fn which_changes_are_events() {
        let cases = [
            (None, Healthy, false),
            (None, Pending, false),
            (None, Unknown, false),
            (None, PodNetworkDown, true),
            (Some(Pending), Healthy, false),
            (Some(Pending), Pending, false),
            (Some(Pending), Unreachable, true),
            (Some(Healthy), Pending, false),
            (Some(Healthy), Healthy, false),
            (Some(Healthy), PodNetworkDown, true),
            (Some(PodNetworkDown), Unreachable, true),
            (Some(Unreachable), Healthy, true),
            (Some(Healthy), Unknown, true),
        ];
        for (old, new, want) in cases {
            assert_eq!(is_event(old, new), want, "{old:?} -> {new:?}");
        }
    }
}
