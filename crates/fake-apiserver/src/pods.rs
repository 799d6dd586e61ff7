//! Ready-made pods for tests: what a scheduled, running netchecker agent
//! pod looks like to the API, with its service account, addresses and
//! host-network setting.

use std::collections::BTreeMap;
use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, HostIP, Pod, PodIP, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::ids::{default_host_ip, ipv6_twin, new_uid, next_pod_ip};

/// The service account agent pods run as unless told otherwise.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "netchecker-agent";

/// A running pod `namespace/name` labelled `app=<app_label>` on node
/// `node_name`, with a fresh UID and the current time as creation time,
/// and the defaults of [`PodBuilder`] (service account `netchecker-agent`,
/// addresses from 198.18.0.0/15, host network for a `-hostnet` app label).
pub fn agent_pod(namespace: &str, name: &str, app_label: &str, node_name: &str) -> Pod {
    PodBuilder::new(namespace, name, app_label, node_name).build()
}

/// Builds an agent pod like [`agent_pod`], with what a test wants changed.
///
/// ```
/// use netchecker_fake_apiserver::PodBuilder;
///
/// let pod = PodBuilder::new("netchecker", "agent-1", "netchecker-agent", "node-a")
///     .pod_ip("198.19.7.7".parse().unwrap())
///     .dual_stack()
///     .build();
/// assert_eq!(pod.status.unwrap().pod_ips.unwrap().len(), 1, "explicit addresses are kept");
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct PodBuilder {
    namespace: String,
    name: String,
    app_label: String,
    node_name: String,
    uid: Option<String>,
    service_account: String,
    host_network: bool,
    pod_ips: Option<Vec<IpAddr>>,
    host_ips: Option<Vec<IpAddr>>,
    dual_stack: bool,
    phase: String,
    terminating: bool,
}

impl PodBuilder {
    /// An agent pod as [`agent_pod`] makes it. An `app_label` ending in
    /// `-hostnet` makes a host-network pod (`spec.hostNetwork: true`, pod
    /// IPs equal to the host IPs), as the hostnet agent DaemonSet runs.
    pub fn new(namespace: &str, name: &str, app_label: &str, node_name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            app_label: app_label.to_owned(),
            node_name: node_name.to_owned(),
            uid: None,
            service_account: DEFAULT_SERVICE_ACCOUNT.to_owned(),
            host_network: app_label.ends_with("-hostnet"),
            pod_ips: None,
            host_ips: None,
            dual_stack: false,
            phase: "Running".to_owned(),
            terminating: false,
        }
    }

    /// This `metadata.uid` instead of a fresh one.
    pub fn uid(mut self, uid: &str) -> Self {
        self.uid = Some(uid.to_owned());
        self
    }

    /// `spec.serviceAccountName` (default `netchecker-agent`).
    pub fn service_account(mut self, name: &str) -> Self {
        self.service_account = name.to_owned();
        self
    }

    /// `spec.hostNetwork` (default: whether the app label ends in `-hostnet`).
    pub fn host_network(mut self, host_network: bool) -> Self {
        self.host_network = host_network;
        self
    }

    /// A single pod IP (`status.podIP` and `status.podIPs`).
    pub fn pod_ip(self, ip: IpAddr) -> Self {
        self.pod_ips([ip])
    }

    /// The pod IPs, primary first (`status.podIP` is the first); empty
    /// leaves the pod without addresses, as before it is started.
    pub fn pod_ips(mut self, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.pod_ips = Some(ips.into_iter().collect());
        self
    }

    /// A single host IP (`status.hostIP` and `status.hostIPs`).
    pub fn host_ip(self, ip: IpAddr) -> Self {
        self.host_ips([ip])
    }

    /// The host IPs, primary first.
    pub fn host_ips(mut self, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.host_ips = Some(ips.into_iter().collect());
        self
    }

    /// Give the default addresses an IPv6 twin from 2001:2::/48 (IPv4
    /// first); addresses set explicitly are kept as given.
    pub fn dual_stack(mut self) -> Self {
        self.dual_stack = true;
        self
    }

    /// `status.phase` (default `Running`).
    pub fn phase(mut self, phase: &str) -> Self {
        self.phase = phase.to_owned();
        self
    }

    /// A pod being deleted: `metadata.deletionTimestamp` now, with the
    /// default 30 s grace period.
    pub fn terminating(mut self) -> Self {
        self.terminating = true;
        self
    }

    /// The pod.
    pub fn build(self) -> Pod {
        let with_twin = |v4: std::net::Ipv4Addr| {
            let mut ips = vec![IpAddr::V4(v4)];
            if self.dual_stack {
                ips.push(IpAddr::V6(ipv6_twin(v4)));
            }
            ips
        };
        let host_ips = self
            .host_ips
            .clone()
            .unwrap_or_else(|| with_twin(default_host_ip(&self.node_name)));
        let pod_ips = match &self.pod_ips {
            Some(ips) => ips.clone(),
            None if self.host_network => host_ips.clone(),
            None => with_twin(next_pod_ip()),
        };
        let strings = |ips: &[IpAddr]| ips.iter().map(IpAddr::to_string).collect::<Vec<_>>();
        let (pod_ips, host_ips) = (strings(&pod_ips), strings(&host_ips));
        Pod {
            metadata: ObjectMeta {
                name: Some(self.name),
                namespace: Some(self.namespace),
                labels: Some(BTreeMap::from([("app".to_owned(), self.app_label.clone())])),
                uid: Some(self.uid.unwrap_or_else(new_uid)),
                creation_timestamp: Some(Time(Timestamp::now())),
                deletion_timestamp: self.terminating.then(|| Time(Timestamp::now())),
                deletion_grace_period_seconds: self.terminating.then_some(30),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some(self.node_name),
                service_account_name: Some(self.service_account),
                host_network: self.host_network.then_some(true),
                containers: vec![Container {
                    name: self.app_label.clone(),
                    image: Some(format!("{}:test", self.app_label)),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(self.phase),
                pod_ip: pod_ips.first().cloned(),
                pod_ips: (!pod_ips.is_empty())
                    .then(|| pod_ips.into_iter().map(|ip| PodIP { ip }).collect()),
                host_ip: host_ips.first().cloned(),
                host_ips: (!host_ips.is_empty())
                    .then(|| host_ips.into_iter().map(|ip| HostIP { ip }).collect()),
                ..PodStatus::default()
            }),
        }
    }
}

impl From<PodBuilder> for Pod {
    fn from(builder: PodBuilder) -> Self {
        builder.build()
    }
}

#[cfg(test)]
mod tests;
