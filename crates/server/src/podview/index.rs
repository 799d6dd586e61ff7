//! The watched agent pods, by name: what the server judges of each pod and
//! nothing more, kept sorted so that listing the expected agents needs no
//! sort and a report's name is found in O(log n).
//!
//! The watch loop (`crate::watch`) feeds it watcher events the way kube-rs
//! feeds a reflector store: a relist (`Init` .. `InitApply` .. `InitDone`)
//! builds a new index beside the live one and swaps it in whole, so a
//! reader never sees half a relist.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::watcher;

use crate::domain::{AgentKind, ExpectedAgent};

/// What the server keeps of a watched agent pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedPod {
    pub namespace: Box<str>,
    pub uid: Box<str>,
    /// `spec.nodeName`; `None` while unscheduled.
    pub node: Option<Box<str>>,
    pub kind: AgentKind,
    /// `spec.serviceAccountName` (`default` when unset, as the API does).
    pub service_account: Box<str>,
    /// `status.podIPs` (or `status.podIP`).
    pub pod_ips: Box<[IpAddr]>,
    /// `status.hostIPs` (or `status.hostIP`).
    pub host_ips: Box<[IpAddr]>,
    /// `metadata.deletionTimestamp` is set: the pod is going away.
    pub terminating: bool,
}

/// A pod's network: `hostNetwork: true` or the host-network `app` label
/// makes it a host-network agent, the pod-network label a pod-network one.
pub fn kind_of(pod: &Pod) -> AgentKind {
    let host_network = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    match pod.labels().get("app").map(String::as_str) {
        _ if host_network => AgentKind::HostNetwork,
        Some(AgentKind::HOSTNET_APP) => AgentKind::HostNetwork,
        Some(AgentKind::POD_APP) => AgentKind::PodNetwork,
        _ => AgentKind::Unknown,
    }
}

fn ips<'a>(list: impl Iterator<Item = &'a str>) -> Box<[IpAddr]> {
    let mut out: Vec<IpAddr> = list.filter_map(|ip| ip.parse().ok()).collect();
    out.dedup();
    out.into_boxed_slice()
}

impl WatchedPod {
    /// The pod's name and what is kept of it (`None` without a name).
    pub fn of(pod: &Pod) -> Option<(Box<str>, WatchedPod)> {
        let name = pod.metadata.name.as_deref()?;
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let pod_ips = status.map(|s| {
            let listed = s.pod_ips.iter().flatten().map(|p| p.ip.as_str());
            ips(s.pod_ip.as_deref().into_iter().chain(listed))
        });
        let host_ips = status.map(|s| {
            let listed = s.host_ips.iter().flatten().map(|h| h.ip.as_str());
            ips(s.host_ip.as_deref().into_iter().chain(listed))
        });
        let watched = WatchedPod {
            namespace: pod.metadata.namespace.as_deref().unwrap_or("").into(),
            uid: pod.metadata.uid.as_deref().unwrap_or("").into(),
            node: spec.and_then(|s| s.node_name.as_deref()).map(Into::into),
            kind: kind_of(pod),
            service_account: spec
                .and_then(|s| s.service_account_name.as_deref())
                .unwrap_or("default")
                .into(),
            pod_ips: pod_ips.unwrap_or_default(),
            host_ips: host_ips.unwrap_or_default(),
            terminating: pod.metadata.deletion_timestamp.is_some(),
        };
        Some((name.into(), watched))
    }

    /// The pod as an expected agent named `name`.
    pub fn expected<'a>(&'a self, name: &'a str) -> ExpectedAgent<'a> {
        ExpectedAgent {
            name,
            namespace: Some(&self.namespace),
            node: self.node.as_deref(),
            kind: self.kind,
            terminating: self.terminating,
            addresses: match self.kind {
                AgentKind::HostNetwork => &self.host_ips,
                AgentKind::PodNetwork | AgentKind::Unknown => &self.pod_ips,
            },
        }
    }
}

type Pods = BTreeMap<Box<str>, WatchedPod>;

/// The index and the relist being built, if any.
#[derive(Debug, Default)]
pub struct PodIndex {
    live: RwLock<Pods>,
    /// A relist in progress: pods listed so far.
    next: std::sync::Mutex<Option<Pods>>,
}

impl PodIndex {
    /// Read the live index (a relist in progress is not visible).
    pub fn read(&self) -> RwLockReadGuard<'_, Pods> {
        // Each write is one insert, remove or swap: poison is ignored.
        self.live.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Apply one watcher event.
    pub fn apply(&self, event: &watcher::Event<Pod>) {
        let next = || self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let live = || self.live.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            watcher::Event::Init => *next() = Some(Pods::new()),
            watcher::Event::InitApply(pod) => {
                if let (Some(pods), Some((name, watched))) = (next().as_mut(), WatchedPod::of(pod))
                {
                    pods.insert(name, watched);
                }
            }
            watcher::Event::InitDone => {
                if let Some(pods) = next().take() {
                    *live() = pods;
                }
            }
            watcher::Event::Apply(pod) => {
                if let Some((name, watched)) = WatchedPod::of(pod) {
                    live().insert(name, watched);
                }
            }
            watcher::Event::Delete(pod) => {
                let uid = pod.metadata.uid.as_deref().unwrap_or("");
                let mut live = live();
                // A pod of the same name in another namespace stays.
                if live
                    .get(pod.name_any().as_str())
                    .is_some_and(|w| *w.uid == *uid || uid.is_empty())
                {
                    live.remove(pod.name_any().as_str());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostIP, PodIP, PodSpec, PodStatus};

    fn pod(name: &str, uid: &str, app: Option<&str>, host_network: Option<bool>) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        pod.metadata.namespace = Some("netchecker".into());
        pod.metadata.uid = Some(uid.into());
        if let Some(app) = app {
            pod.metadata.labels = Some([("app".to_string(), app.to_string())].into());
        }
        pod.spec = Some(PodSpec {
            node_name: Some("node-1".into()),
            host_network,
            service_account_name: Some("netchecker-agent".into()),
            ..Default::default()
        });
        pod
    }

    #[test]
    fn agent_kind_comes_from_the_spec_then_the_app_label() {
        let cases = [
            (Some("netchecker-agent"), None, AgentKind::PodNetwork),
            (Some("netchecker-agent"), Some(false), AgentKind::PodNetwork),
            (
                Some("netchecker-agent-hostnet"),
                None,
                AgentKind::HostNetwork,
            ),
            (Some("netchecker-agent"), Some(true), AgentKind::HostNetwork),
            (Some("other"), Some(true), AgentKind::HostNetwork),
            (Some("other"), None, AgentKind::Unknown),
            (None, None, AgentKind::Unknown),
        ];
        for (app, host, want) in cases {
            assert_eq!(kind_of(&pod("p", "u", app, host)), want, "{app:?} {host:?}");
        }
    }

    #[test]
    fn a_watched_pod_keeps_what_is_judged() {
        let mut p = pod("netchecker-agent-x", "u-1", Some("netchecker-agent"), None);
        p.status = Some(PodStatus {
            pod_ip: Some("198.19.0.5".into()),
            pod_ips: Some(vec![
                PodIP {
                    ip: "198.19.0.5".into(),
                },
                PodIP {
                    ip: "2001:2::5".into(),
                },
            ]),
            host_ip: Some("198.18.0.1".into()),
            host_ips: Some(vec![HostIP {
                ip: "198.18.0.1".into(),
            }]),
            ..Default::default()
        });
        p.metadata.annotations = Some([("a".to_string(), "x".repeat(4096))].into());
        let (name, w) = WatchedPod::of(&p).unwrap();
        let want_pod_ips: [IpAddr; 2] =
            ["198.19.0.5".parse().unwrap(), "2001:2::5".parse().unwrap()];
        assert_eq!(&*name, "netchecker-agent-x");
        assert_eq!(
            w.expected(&name),
            ExpectedAgent {
                name: "netchecker-agent-x",
                namespace: Some("netchecker"),
                node: Some("node-1"),
                kind: AgentKind::PodNetwork,
                terminating: false,
                addresses: &want_pod_ips,
            }
        );
        assert_eq!((&*w.uid, &*w.service_account), ("u-1", "netchecker-agent"));
        let want: Vec<IpAddr> = vec!["198.19.0.5".parse().unwrap(), "2001:2::5".parse().unwrap()];
        assert_eq!(&*w.pod_ips, &want[..]);
        assert_eq!(&*w.host_ips, &["198.18.0.1".parse::<IpAddr>().unwrap()][..]);
        assert!(!w.terminating);
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::UNIX_EPOCH,
        ));
        p.spec.as_mut().unwrap().service_account_name = None;
        let (_, w) = WatchedPod::of(&p).unwrap();
        assert!(w.terminating);
        assert_eq!(&*w.service_account, "default");
    }

    #[test]
    fn relists_swap_in_whole_and_deletes_match_the_uid() {
        let index = PodIndex::default();
        let names = |i: &PodIndex| i.read().keys().map(|k| k.to_string()).collect::<Vec<_>>();
        index.apply(&watcher::Event::Apply(pod("b", "u-b", None, None)));
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(pod("a", "u-a", None, None)));
        index.apply(&watcher::Event::InitApply(pod("c", "u-c", None, None)));
        assert_eq!(names(&index), ["b"], "a relist in progress is not visible");
        index.apply(&watcher::Event::InitDone);
        assert_eq!(names(&index), ["a", "c"], "sorted by name");
        // A delete of an older pod of the same name leaves the new one.
        index.apply(&watcher::Event::Delete(pod("a", "u-old", None, None)));
        assert_eq!(names(&index), ["a", "c"]);
        index.apply(&watcher::Event::Delete(pod("a", "u-a", None, None)));
        assert_eq!(names(&index), ["c"]);
    }
}
