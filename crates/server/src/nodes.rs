//! Node verdicts over time: which node changed verdict since the last
//! evaluation, the `netchecker_node_verdict` and `netchecker_nodes` series,
//! and the change events (`netchecker_wire::NodeEvent`) sent to webhooks.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use netchecker_wire::{EventAgent, NodeEvent, PathFigures};
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};

use crate::diagnosis::AgentFacts;
use crate::domain::NodeVerdict;
use crate::evaluation::round_ms;
use crate::metrics::register;

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
    last: Mutex<Tracked>,
    node_verdict: IntGaugeVec,
    nodes: IntGaugeVec,
    loss: GaugeVec,
    jitter: GaugeVec,
    mesh_loss: GaugeVec,
}

#[derive(Default)]
struct Tracked {
    round: u64,
    /// Node -> its verdict and the round that last saw it.
    nodes: HashMap<String, (NodeVerdict, u64)>,
    /// Nodes with path series (loss ratio, jitter).
    with_path: HashMap<String, u64>,
}

/// One evaluation of every node: [`Round::record`] each, then
/// [`Round::finish`].
pub struct Round<'t> {
    tracker: &'t NodeTracker,
    tracked: MutexGuard<'t, Tracked>,
    counts: [i64; NodeVerdict::ALL.len()],
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
        let loss = register(
            registry,
            GaugeVec::new(
                Opts::new(
                    "netchecker_node_loss_ratio",
                    "Share of the node's agents' report connections to the server whose handshake went unanswered at first, over the last 5 minutes (nodes whose agents tell; see /api/v2/status)",
                ),
                &["node"],
            )?,
        )?;
        let jitter = register(
            registry,
            GaugeVec::new(
                Opts::new(
                    "netchecker_node_probe_jitter_seconds",
                    "Standard deviation of the node's agents' HTTP probe times to the server over the last 5 minutes",
                ),
                &["node"],
            )?,
        )?;
        let mesh_loss = register(
            registry,
            GaugeVec::new(
                Opts::new(
                    "netchecker_node_mesh_loss_ratio",
                    "Share of the node's agents' mesh probes of their peers that connected after their first SYN went unanswered, over the last 5 minutes (a figure: a handshake lost between two nodes may be either's)",
                ),
                &["node"],
            )?,
        )?;
        Ok(Self {
            last: Mutex::new(Tracked::default()),
            node_verdict,
            nodes,
            loss,
            jitter,
            mesh_loss,
        })
    }

    /// Start recording the verdicts of one evaluation.
    pub fn round(&self) -> Round<'_> {
        let mut tracked = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        tracked.round += 1;
        Round {
            tracker: self,
            tracked,
            counts: [0; NodeVerdict::ALL.len()],
        }
    }
}

impl Round<'_> {
    /// Record `node`'s verdict and update its series. Returns `Some(old)`
    /// when the change deserves an event ([`is_event`]).
    pub fn record(&mut self, node: &str, verdict: NodeVerdict) -> Option<Option<NodeVerdict>> {
        if let Some(i) = NodeVerdict::ALL.iter().position(|v| *v == verdict) {
            self.counts[i] += 1;
        }
        let round = self.tracked.round;
        let old = match self.tracked.nodes.get_mut(node) {
            Some((last, seen)) => {
                *seen = round;
                Some(std::mem::replace(last, verdict))
            }
            None => {
                self.tracked.nodes.insert(node.to_owned(), (verdict, round));
                None
            }
        };
        if old == Some(verdict) {
            return None;
        }
        let series = &self.tracker.node_verdict;
        if let Some(old) = old {
            let _ = series.remove_label_values(&[node, old.as_str()]);
        }
        series.with_label_values(&[node, verdict.as_str()]).set(1);
        is_event(old, verdict).then_some(old)
    }

    /// Set `node`'s path series from its figures (none: no series).
    pub fn record_path(&mut self, node: &str, figures: Option<&PathFigures>) {
        let t = self.tracker;
        match figures {
            Some(f) if f.attempts > 0 || f.probe_ms.is_some() || f.mesh.is_some() => {
                t.loss.with_label_values(&[node]).set(f.loss_ratio);
                set_or_remove(&t.jitter, node, f.probe_ms.map(|s| s.stddev / 1000.0));
                set_or_remove(&t.mesh_loss, node, f.mesh.map(|m| m.loss_ratio));
                let round = self.tracked.round;
                match self.tracked.with_path.get_mut(node) {
                    Some(seen) => *seen = round,
                    None => {
                        self.tracked.with_path.insert(node.to_owned(), round);
                    }
                }
            }
            _ => {}
        }
    }

    /// Nodes not recorded in this round are gone: their series go, silently.
    pub fn finish(mut self) {
        let round = self.tracked.round;
        let t = self.tracker;
        self.tracked.with_path.retain(|node, seen| {
            let keep = *seen == round;
            if !keep {
                for series in [&t.loss, &t.jitter, &t.mesh_loss] {
                    let _ = series.remove_label_values(&[node]);
                }
            }
            keep
        });
        let series = &self.tracker.node_verdict;
        self.tracked.nodes.retain(|node, (verdict, seen)| {
            let keep = *seen == round;
            if !keep {
                let _ = series.remove_label_values(&[node, verdict.as_str()]);
            }
            keep
        });
        for (v, n) in NodeVerdict::ALL.iter().zip(self.counts) {
            self.tracker.nodes.with_label_values(&[v.as_str()]).set(n);
        }
    }
}

/// `node`'s series of `gauge` set to `value`, or gone without one.
fn set_or_remove(gauge: &GaugeVec, node: &str, value: Option<f64>) {
    match value {
        Some(v) => gauge.with_label_values(&[node]).set(v),
        None => {
            let _ = gauge.remove_label_values(&[node]);
        }
    }
}

/// The event for `node`'s change from `old` to `verdict` with `reason`.
pub fn event<R>(
    node: &str,
    old: Option<NodeVerdict>,
    verdict: NodeVerdict,
    reason: String,
    agents: &[AgentFacts<R>],
    time: jiff::Timestamp,
) -> NodeEvent {
    NodeEvent {
        node: node.to_owned(),
        old_verdict: old,
        new_verdict: verdict,
        reason,
        agents: agents
            .iter()
            .map(|a| EventAgent {
                name: a.name.to_owned(),
                kind: a.kind,
                state: a.state,
                last_report_age_seconds: a.age.map(round_ms),
            })
            .collect(),
        time,
        id: None,
        incident: None,
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
