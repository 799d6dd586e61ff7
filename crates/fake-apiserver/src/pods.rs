//! Ready-made pods for tests: what a scheduled, running netchecker agent
//! pod looks like to the API.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::store::new_uid;

/// A running pod `namespace/name` labelled `app=<app_label>` on node
/// `node_name`, with a fresh UID and the current time as creation time.
pub fn agent_pod(namespace: &str, name: &str, app_label: &str, node_name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([("app".to_owned(), app_label.to_owned())])),
            uid: Some(new_uid()),
            creation_timestamp: Some(Time(Timestamp::now())),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node_name.to_owned()),
            containers: vec![Container {
                name: app_label.to_owned(),
                image: Some(format!("{app_label}:test")),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".to_owned()),
            ..PodStatus::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_pod_has_what_the_server_reads() {
        let pod = agent_pod("netchecker", "agent-1", "netchecker-agent", "node-a");
        let json = serde_json::to_value(&pod).unwrap();
        assert_eq!(json["apiVersion"], "v1");
        assert_eq!(json["kind"], "Pod");
        assert_eq!(json["metadata"]["labels"]["app"], "netchecker-agent");
        assert_eq!(json["metadata"]["namespace"], "netchecker");
        assert_eq!(json["spec"]["nodeName"], "node-a");
        assert_eq!(json["status"]["phase"], "Running");
        assert!(
            json["metadata"]["uid"]
                .as_str()
                .is_some_and(|u| u.len() == 36)
        );
        assert!(json["metadata"]["creationTimestamp"].is_string());
    }
}
