//! What the store and the LIST/WATCH routes need from a resource kind, and
//! its implementations for the kinds the fake serves: pods (namespaced),
//! nodes (cluster-scoped), and the namespaced Leases, ConfigMaps and
//! (core v1) Events.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ListableResource, Metadata};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A Kubernetes object kind the fake stores and serves.
pub trait Object:
    Clone
    + std::fmt::Debug
    + PartialEq
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
    + Metadata<Ty = ObjectMeta>
    + ListableResource
{
    /// Whether objects live in a namespace (pods) or in the cluster (nodes).
    const NAMESPACED: bool;
    /// The plural resource name, as in `pods "x" not found`.
    const PLURAL: &'static str;
    /// The fields the real API accepts in a `fieldSelector` for this kind.
    const FIELDS: &'static [&'static str];

    /// The value of a selectable field, as the selector compares it.
    fn field(&self, name: &str) -> Option<String>;
}

fn meta_field(meta: &ObjectMeta, name: &str) -> Option<String> {
    match name {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => Some(meta.namespace.clone().unwrap_or_default()),
        _ => None,
    }
}

impl Object for Pod {
    const NAMESPACED: bool = true;
    const PLURAL: &'static str = "pods";
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ];

    fn field(&self, name: &str) -> Option<String> {
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        match name {
            "spec.nodeName" => spec?.node_name.clone(),
            "spec.restartPolicy" => spec?.restart_policy.clone(),
            "spec.schedulerName" => spec?.scheduler_name.clone(),
            "spec.serviceAccountName" => spec?.service_account_name.clone(),
            "spec.hostNetwork" => Some(spec?.host_network.unwrap_or(false).to_string()),
            "status.phase" => status?.phase.clone(),
            "status.podIP" => status?.pod_ip.clone(),
            "status.nominatedNodeName" => status?.nominated_node_name.clone(),
            other => meta_field(&self.metadata, other),
        }
    }
}

impl Object for Node {
    const NAMESPACED: bool = false;
    const PLURAL: &'static str = "nodes";
    const FIELDS: &'static [&'static str] =
        &["metadata.name", "metadata.namespace", "spec.unschedulable"];

    fn field(&self, name: &str) -> Option<String> {
        match name {
            "spec.unschedulable" => Some(
                self.spec
                    .as_ref()
                    .and_then(|s| s.unschedulable)
                    .unwrap_or(false)
                    .to_string(),
            ),
            other => meta_field(&self.metadata, other),
        }
    }
}

impl Object for Lease {
    const NAMESPACED: bool = true;
    const PLURAL: &'static str = "leases";
    const FIELDS: &'static [&'static str] = &["metadata.name", "metadata.namespace"];

    fn field(&self, name: &str) -> Option<String> {
        meta_field(&self.metadata, name)
    }
}

impl Object for ConfigMap {
    const NAMESPACED: bool = true;
    const PLURAL: &'static str = "configmaps";
    const FIELDS: &'static [&'static str] = &["metadata.name", "metadata.namespace"];

    fn field(&self, name: &str) -> Option<String> {
        meta_field(&self.metadata, name)
    }
}

fn reference_field(reference: &ObjectReference, name: &str) -> Option<String> {
    match name {
        "kind" => reference.kind.clone(),
        "namespace" => reference.namespace.clone(),
        "name" => reference.name.clone(),
        "uid" => reference.uid.clone(),
        "apiVersion" => reference.api_version.clone(),
        "resourceVersion" => reference.resource_version.clone(),
        "fieldPath" => reference.field_path.clone(),
        _ => None,
    }
}

impl Object for Event {
    const NAMESPACED: bool = true;
    const PLURAL: &'static str = "events";
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.namespace",
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];

    fn field(&self, name: &str) -> Option<String> {
        match name {
            "reason" => self.reason.clone(),
            "reportingComponent" => self.reporting_component.clone(),
            "source" => self.source.as_ref()?.component.clone(),
            "type" => self.type_.clone(),
            other => match other.strip_prefix("involvedObject.") {
                Some(field) => reference_field(&self.involved_object, field),
                None => meta_field(&self.metadata, other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::Resource;

    #[test]
    fn kinds_name_themselves_as_the_api_does() {
        assert_eq!((Pod::KIND, Pod::LIST_KIND), ("Pod", "PodList"));
        assert_eq!((Node::KIND, Node::LIST_KIND), ("Node", "NodeList"));
        assert_eq!(Node::API_VERSION, "v1");
    }

    #[test]
    fn node_fields() {
        let node = crate::node("n1").build();
        assert_eq!(node.field("metadata.name").as_deref(), Some("n1"));
        assert_eq!(node.field("metadata.namespace").as_deref(), Some(""));
        assert_eq!(node.field("spec.unschedulable").as_deref(), Some("false"));
        assert_eq!(node.field("spec.nodeName"), None);
    }
}
