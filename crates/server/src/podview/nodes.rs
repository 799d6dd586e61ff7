//! The cluster's nodes, as far as the mesh cares: whether each is Ready,
//! cordoned or being deleted. Fed by a node watch (`crate::watch`) while
//! the mesh is on; a node that is not fit leaves the mesh instead of
//! paging anyone.
//!
//! Without Kubernetes, or where RBAC does not let the server read nodes,
//! nothing is known and every node is taken as fit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::runtime::watcher;

use crate::mesh::roster::NodeGate;

/// What is kept of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeFacts {
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `spec.unschedulable` (cordoned, as by `kubectl drain`).
    pub unschedulable: bool,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

impl NodeFacts {
    pub fn of(node: &Node) -> Self {
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        NodeFacts {
            ready,
            unschedulable: node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false),
            deleting: node.metadata.deletion_timestamp.is_some(),
        }
    }

    pub fn gate(self) -> NodeGate {
        if self.deleting {
            NodeGate::Deleting
        } else if !self.ready {
            NodeGate::NotReady
        } else if self.unschedulable {
            NodeGate::Cordoned
        } else {
            NodeGate::Eligible
        }
    }
}

type Nodes = HashMap<Box<str>, NodeFacts>;

/// The watched nodes.
#[derive(Debug, Default)]
pub struct NodeIndex {
    live: RwLock<Nodes>,
    next: Mutex<Option<Nodes>>,
    /// A list has completed: a node not in it is gone.
    synced: AtomicBool,
}

impl NodeIndex {
    /// Whether `node` may take part in the mesh.
    pub fn gate(&self, node: &str) -> NodeGate {
        if !self.synced.load(Ordering::Acquire) {
            return NodeGate::Eligible;
        }
        self.live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(node)
            .map_or(NodeGate::Gone, |f| f.gate())
    }

    /// Whether the nodes are known (a node list has completed).
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Forget every node: the watch stopped for good, every node is taken
    /// as fit again.
    pub fn unknown(&self) {
        self.synced.store(false, Ordering::Release);
        self.live
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Apply one watcher event (a relist is swapped in whole).
    pub fn apply(&self, event: &watcher::Event<Node>) {
        let next = || self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let live = || self.live.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            watcher::Event::Init => *next() = Some(Nodes::new()),
            watcher::Event::InitApply(node) => {
                if let Some(nodes) = next().as_mut() {
                    nodes.insert(node.name_any().into(), NodeFacts::of(node));
                }
            }
            watcher::Event::InitDone => {
                if let Some(nodes) = next().take() {
                    *live() = nodes;
                    self.synced.store(true, Ordering::Release);
                }
            }
            watcher::Event::Apply(node) => {
                live().insert(node.name_any().into(), NodeFacts::of(node));
            }
            watcher::Event::Delete(node) => {
                live().remove(node.name_any().as_str());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus};

    fn node(name: &str, ready: &str, unschedulable: bool, deleting: bool) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        if deleting {
            n.metadata.deletion_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
            );
        }
        n.spec = Some(NodeSpec {
            unschedulable: Some(unschedulable),
            ..Default::default()
        });
        n.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: ready.into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        n
    }

    #[test]
    fn only_ready_schedulable_nodes_that_stay_are_fit() {
        let index = NodeIndex::default();
        assert_eq!(index.gate("any"), NodeGate::Eligible, "nothing known yet");
        index.apply(&watcher::Event::Init);
        for n in [
            node("ok", "True", false, false),
            node("not-ready", "False", false, false),
            node("unknown", "Unknown", false, false),
            node("cordoned", "True", true, false),
            node("deleting", "True", true, true),
        ] {
            index.apply(&watcher::Event::InitApply(n));
        }
        assert_eq!(
            index.gate("ok"),
            NodeGate::Eligible,
            "a relist in progress is not visible"
        );
        index.apply(&watcher::Event::InitDone);
        let gates: Vec<NodeGate> = ["ok", "not-ready", "unknown", "cordoned", "deleting", "gone"]
            .iter()
            .map(|n| index.gate(n))
            .collect();
        assert_eq!(
            gates,
            [
                NodeGate::Eligible,
                NodeGate::NotReady,
                NodeGate::NotReady,
                NodeGate::Cordoned,
                NodeGate::Deleting,
                NodeGate::Gone
            ]
        );
        index.apply(&watcher::Event::Apply(node(
            "cordoned", "True", false, false,
        )));
        assert_eq!(index.gate("cordoned"), NodeGate::Eligible, "uncordoned");
        index.apply(&watcher::Event::Delete(node("ok", "True", false, false)));
        assert_eq!(index.gate("ok"), NodeGate::Gone);
        index.unknown();
        assert_eq!(index.gate("ok"), NodeGate::Eligible);
    }
}
