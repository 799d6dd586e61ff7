//! The test handle's methods for pods, nodes and the watch history.

use k8s_openapi::api::core::v1::{Node, Pod};

use super::FakeApiServer;

/// The grace period `kubectl delete` gives a pod by default.
const POD_GRACE_SECONDS: i64 = 30;

impl FakeApiServer {
    /// Add a pod, or replace the pod with the same namespace and name:
    /// watchers see `ADDED` or `MODIFIED`. A missing namespace becomes
    /// `default`; UID and creation time are filled in when missing.
    /// Returns the stored pod with its new resourceVersion. Takes a [`Pod`]
    /// or a [`crate::PodBuilder`].
    ///
    /// # Panics
    /// If the pod has no `metadata.name`.
    pub fn add_pod(&self, pod: impl Into<Pod>) -> Pod {
        self.state
            .pods
            .upsert(pod.into())
            .expect("a pod added to the fake API server needs metadata.name")
    }

    /// Start deleting a pod, as the API does when a delete has to wait for
    /// the grace period: `metadata.deletionTimestamp` is set (30 s grace)
    /// and watchers see `MODIFIED`. [`Self::delete_pod`] removes it later.
    /// Returns the stored pod, or `None` (and no event) when there is no
    /// such pod.
    pub fn terminate_pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.state
            .pods
            .mark_deleting(namespace, name, Some(POD_GRACE_SECONDS))
    }

    /// Delete a pod: watchers see `DELETED`. Returns its final state, or
    /// `None` (and no event) when there is no such pod.
    pub fn delete_pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.state.pods.delete(namespace, name)
    }

    /// The stored pod `namespace/name`.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.state.pods.get(namespace, name)
    }

    /// The stored pods, ordered by namespace and name.
    pub fn pods(&self) -> Vec<Pod> {
        self.state.pods.snapshot().0
    }

    /// Add a node, or replace the node with the same name: watchers see
    /// `ADDED` or `MODIFIED`. Any namespace is dropped (nodes are
    /// cluster-scoped); UID and creation time are filled in when missing
    /// (kept from the stored node on replace). Takes a [`Node`] or a
    /// [`crate::NodeBuilder`] (`fake.add_node(node("a").not_ready())`).
    ///
    /// # Panics
    /// If the node has no `metadata.name`.
    pub fn add_node(&self, node: impl Into<Node>) -> Node {
        self.state
            .nodes
            .upsert(node.into())
            .expect("a node added to the fake API server needs metadata.name")
    }

    /// Start deleting a node: `metadata.deletionTimestamp` is set and
    /// watchers see `MODIFIED`. Returns the stored node, or `None`.
    pub fn terminate_node(&self, name: &str) -> Option<Node> {
        self.state.nodes.mark_deleting("", name, None)
    }

    /// Delete a node: watchers see `DELETED`. Returns its final state, or
    /// `None` (and no event) when there is no such node.
    pub fn delete_node(&self, name: &str) -> Option<Node> {
        self.state.nodes.delete("", name)
    }

    /// The stored node `name`.
    pub fn node(&self, name: &str) -> Option<Node> {
        self.state.nodes.get("", name)
    }

    /// The stored nodes, ordered by name.
    pub fn nodes(&self) -> Vec<Node> {
        self.state.nodes.snapshot().0
    }

    /// The current cluster-wide resourceVersion (pods and nodes share it).
    pub fn resource_version(&self) -> u64 {
        self.state.clock.now()
    }

    /// Forget the watch history of pods and nodes: watches resuming from
    /// any older version get a `410 Gone` error event, which makes a
    /// watcher relist.
    pub fn compact_history(&self) {
        self.state.compact();
    }

    /// End every open watch stream now without changing the failure mode
    /// (`Failure::CloseWatches` does the same but resets the mode).
    pub fn close_watches(&self) {
        self.state.close_all_watches();
    }
}
