//! Ready-made nodes for tests: a schedulable, `Ready` node with an
//! `InternalIP` (the same address its pods get as `hostIP`), and the
//! states a node mesh cares about: NotReady, unknown, cordoned, deleting.

use std::collections::BTreeMap;
use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::ids::{default_host_ip, ipv6_twin};

/// A builder for node `name`: `Ready=True`, schedulable, with the default
/// host IP of that node name (see [`crate::default_host_ip`]) as its
/// `InternalIP`. Turn it into a [`Node`] with `build()` or `.into()`.
///
/// ```
/// use netchecker_fake_apiserver::node;
///
/// let cordoned = node("node-a").unschedulable(true).not_ready().build();
/// assert_eq!(cordoned.spec.unwrap().unschedulable, Some(true));
/// ```
pub fn node(name: &str) -> NodeBuilder {
    NodeBuilder {
        name: name.to_owned(),
        uid: None,
        ready: Some(true),
        unschedulable: false,
        internal_ips: None,
        dual_stack: false,
        terminating: false,
    }
}

/// See [`node`].
#[derive(Debug, Clone)]
#[must_use]
pub struct NodeBuilder {
    name: String,
    uid: Option<String>,
    /// `Ready` condition: `True`, `False`, or `Unknown` (`None`).
    ready: Option<bool>,
    unschedulable: bool,
    internal_ips: Option<Vec<IpAddr>>,
    dual_stack: bool,
    terminating: bool,
}

impl NodeBuilder {
    /// This `metadata.uid`; by default the store assigns one (and keeps it
    /// when the node is replaced).
    pub fn uid(mut self, uid: &str) -> Self {
        self.uid = Some(uid.to_owned());
        self
    }

    /// `Ready=False` (`KubeletNotReady`), as when the kubelet reports a
    /// problem.
    pub fn not_ready(mut self) -> Self {
        self.ready = Some(false);
        self
    }

    /// `Ready=Unknown` (`NodeStatusUnknown`), as when the kubelet stopped
    /// posting status.
    pub fn ready_unknown(mut self) -> Self {
        self.ready = None;
        self
    }

    /// `spec.unschedulable` (cordoned), with the taint the API adds for it.
    pub fn unschedulable(mut self, unschedulable: bool) -> Self {
        self.unschedulable = unschedulable;
        self
    }

    /// A single `InternalIP`.
    pub fn internal_ip(self, ip: IpAddr) -> Self {
        self.internal_ips([ip])
    }

    /// The `InternalIP` addresses, in order.
    pub fn internal_ips(mut self, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.internal_ips = Some(ips.into_iter().collect());
        self
    }

    /// Give the default `InternalIP` an IPv6 twin from 2001:2::/48, as
    /// [`crate::PodBuilder::dual_stack`] does for the node's pods.
    pub fn dual_stack(mut self) -> Self {
        self.dual_stack = true;
        self
    }

    /// A node being deleted: `metadata.deletionTimestamp` now.
    pub fn terminating(mut self) -> Self {
        self.terminating = true;
        self
    }

    /// The node.
    pub fn build(self) -> Node {
        // Whole seconds, as the API stores a `Time`: a node read back
        // through the API equals the one built.
        let now = Timestamp::now();
        let now = Time(Timestamp::from_second(now.as_second()).unwrap_or(now));
        let internal_ips = self.internal_ips.unwrap_or_else(|| {
            let v4 = default_host_ip(&self.name);
            let mut ips = vec![IpAddr::V4(v4)];
            if self.dual_stack {
                ips.push(IpAddr::V6(ipv6_twin(v4)));
            }
            ips
        });
        let mut addresses: Vec<NodeAddress> = internal_ips
            .iter()
            .map(|ip| NodeAddress {
                type_: "InternalIP".to_owned(),
                address: ip.to_string(),
            })
            .collect();
        addresses.push(NodeAddress {
            type_: "Hostname".to_owned(),
            address: self.name.clone(),
        });
        let (status, reason, message) = match self.ready {
            Some(true) => ("True", "KubeletReady", "kubelet is posting ready status"),
            Some(false) => ("False", "KubeletNotReady", "container runtime is down"),
            None => (
                "Unknown",
                "NodeStatusUnknown",
                "Kubelet stopped posting node status.",
            ),
        };
        let ready = NodeCondition {
            type_: "Ready".to_owned(),
            status: status.to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(now.clone()),
        };
        let taints = self.unschedulable.then(|| {
            vec![Taint {
                key: "node.kubernetes.io/unschedulable".to_owned(),
                effect: "NoSchedule".to_owned(),
                time_added: Some(now.clone()),
                value: None,
            }]
        });
        Node {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                uid: self.uid,
                labels: Some(BTreeMap::from([
                    ("kubernetes.io/hostname".to_owned(), self.name.clone()),
                    ("kubernetes.io/os".to_owned(), "linux".to_owned()),
                ])),
                deletion_timestamp: self.terminating.then(|| now.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                unschedulable: self.unschedulable.then_some(true),
                taints,
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                addresses: Some(addresses),
                conditions: Some(vec![ready]),
                ..NodeStatus::default()
            }),
        }
    }
}

/// Set the condition of its type in the node's status, or append it if
/// the node has none of that type: what a strategic merge patch of
/// `status.conditions` does with one condition.
pub fn set_condition(node: &mut Node, condition: NodeCondition) {
    let status = node.status.get_or_insert_with(NodeStatus::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(present) => *present = condition,
        None => conditions.push(condition),
    }
}

impl From<NodeBuilder> for Node {
    fn from(builder: NodeBuilder) -> Self {
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready_status(node: &Node) -> String {
        let conditions = node.status.as_ref().unwrap().conditions.as_ref().unwrap();
        let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        ready.status.clone()
    }

    #[test]
    fn a_default_node_is_ready_and_schedulable() {
        let n = node("nodes-test-a").build();
        let json = serde_json::to_value(&n).unwrap();
        assert_eq!(json["kind"], "Node");
        assert_eq!(json["apiVersion"], "v1");
        assert_eq!(json["metadata"]["name"], "nodes-test-a");
        assert!(json["metadata"].get("namespace").is_none());
        assert_eq!(ready_status(&n), "True");
        assert!(json["spec"].get("unschedulable").is_none());
        let address = &json["status"]["addresses"][0];
        assert_eq!(address["type"], "InternalIP");
        assert_eq!(
            address["address"],
            default_host_ip("nodes-test-a").to_string()
        );
        assert_eq!(json["status"]["addresses"][1]["type"], "Hostname");
        assert!(json["metadata"].get("deletionTimestamp").is_none());
    }

    #[test]
    fn node_states() {
        assert_eq!(ready_status(&node("x").not_ready().build()), "False");
        assert_eq!(ready_status(&node("x").ready_unknown().build()), "Unknown");
        let cordoned = node("x").unschedulable(true).build();
        let spec = cordoned.spec.unwrap();
        assert_eq!(spec.unschedulable, Some(true));
        assert_eq!(
            spec.taints.unwrap()[0].key,
            "node.kubernetes.io/unschedulable"
        );
        let going: Node = node("x").terminating().uid("u-1").into();
        assert!(going.metadata.deletion_timestamp.is_some());
        assert_eq!(going.metadata.uid.as_deref(), Some("u-1"));
    }

    #[test]
    fn addresses() {
        let v6: IpAddr = "2001:2::1".parse().unwrap();
        let n = node("x")
            .internal_ips(["198.18.9.9".parse().unwrap(), v6])
            .build();
        let addresses = n.status.unwrap().addresses.unwrap();
        let internal: Vec<_> = addresses
            .iter()
            .filter(|a| a.type_ == "InternalIP")
            .map(|a| a.address.as_str())
            .collect();
        assert_eq!(internal, ["198.18.9.9", "2001:2::1"]);
        let dual = node("nodes-test-b").dual_stack().build();
        let addresses = dual.status.unwrap().addresses.unwrap();
        assert_eq!(
            addresses[1].address,
            ipv6_twin(default_host_ip("nodes-test-b")).to_string()
        );
    }
}
