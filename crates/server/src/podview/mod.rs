//! Which agents are expected: the watched agent pods, or (without
//! Kubernetes) the agents that have reported plus any named on the command
//! line. One listing, [`PodView::expected`], serves every answer.
//!
//! With Kubernetes, a kube-rs reflector store keeps an in-memory copy of the
//! agent pods, so a connectivity check reads memory and never calls the API.
//! The watch loop that fills the store lives at the edge (`crate::watch`);
//! what it learns about the API's health is kept in [`health`].

pub mod health;

use std::collections::{BTreeSet, HashSet};
use std::sync::{PoisonError, RwLock};

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio::time::Instant;

use crate::domain::{AgentKind, ExpectedAgent};
pub use health::{ViewHealth, WatchStatus};

/// The default agent selector: both agent DaemonSets of the original.
pub const DEFAULT_AGENT_SELECTOR: &str = "app in (netchecker-agent,netchecker-agent-hostnet)";

/// The source of expected agents.
pub enum PodView {
    /// No Kubernetes: agents named on the command line (forgettable with
    /// `DELETE`), plus every agent that has reported.
    Static(RwLock<BTreeSet<String>>),
    /// Agent pods watched through the Kubernetes API.
    Kube(KubeView),
}

pub struct KubeView {
    store: Store<Pod>,
    status: WatchStatus,
}

/// The pieces of a pod watch, consumed by the watch loop (`crate::watch`).
pub struct PodWatch {
    pub api: Api<Pod>,
    pub config: watcher::Config,
    /// The label selector, for LISTs outside the watcher.
    pub selector: String,
    pub writer: reflector::store::Writer<Pod>,
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

/// A watched pod as an expected agent (`None` for a pod without a name).
pub(crate) fn expected_of(pod: &Pod) -> Option<ExpectedAgent<'_>> {
    Some(ExpectedAgent {
        name: pod.metadata.name.as_deref()?,
        namespace: pod.metadata.namespace.as_deref(),
        node: pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        kind: kind_of(pod),
    })
}

impl PodView {
    /// A view without Kubernetes, expecting `named` agents up front.
    pub fn fixed(named: impl IntoIterator<Item = String>) -> Self {
        PodView::Static(RwLock::new(named.into_iter().collect()))
    }

    /// A view of the pods matching `selector`, in `namespace` or in all
    /// namespaces. Returns the view and the watch the caller must run
    /// (`crate::watch::run`).
    pub fn watch(client: Client, namespace: Option<&str>, selector: &str) -> (Self, PodWatch) {
        let api: Api<Pod> = match namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        let (store, writer) = reflector::store();
        let view = PodView::Kube(KubeView {
            store,
            status: WatchStatus::default(),
        });
        let config = watcher::Config::default().labels(selector);
        (
            view,
            PodWatch {
                api,
                config,
                selector: selector.to_owned(),
                writer,
            },
        )
    }

    /// Call `f` with the expected agents, borrowed, sorted by name without
    /// repeats, given the names of the agents that have `reported` (without
    /// Kubernetes every reporter is expected). `None` while the Kubernetes
    /// view has never synced: nothing can be judged yet.
    pub fn expected<'r, R>(
        &self,
        reported: impl Iterator<Item = &'r str>,
        f: impl FnOnce(&[ExpectedAgent<'_>]) -> R,
    ) -> Option<R> {
        fn sorted<'p>(mut agents: Vec<ExpectedAgent<'p>>) -> Vec<ExpectedAgent<'p>> {
            agents.sort_unstable_by(|a, b| a.name.cmp(b.name));
            agents.dedup_by(|a, b| a.name == b.name);
            agents
        }
        match self {
            PodView::Static(named) => {
                let named = named.read().unwrap_or_else(PoisonError::into_inner);
                let mut agents: Vec<ExpectedAgent> =
                    named.iter().map(|n| ExpectedAgent::named(n)).collect();
                for name in reported {
                    agents.push(ExpectedAgent::named(name));
                }
                Some(f(&sorted(agents)))
            }
            PodView::Kube(k) => {
                if !k.status.synced() {
                    return None;
                }
                let pods = k.store.state();
                let agents = pods.iter().filter_map(|p| expected_of(p)).collect();
                Some(f(&sorted(agents)))
            }
        }
    }

    /// Whether this view follows Kubernetes.
    pub fn is_kube(&self) -> bool {
        matches!(self, PodView::Kube(_))
    }

    /// Forget a name given on the command line (no-Kubernetes mode).
    pub fn forget_named(&self, name: &str) -> bool {
        match self {
            PodView::Static(named) => named
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(name),
            PodView::Kube(_) => false,
        }
    }

    pub fn health(&self, now: Instant) -> ViewHealth {
        match self {
            PodView::Static(_) => ViewHealth::ALWAYS_CURRENT,
            PodView::Kube(k) => k.status.health(now),
        }
    }

    /// Names of the pods currently in the watched view (`None` without Kubernetes).
    pub fn live_names(&self) -> Option<HashSet<String>> {
        match self {
            PodView::Static(_) => None,
            PodView::Kube(k) => Some(k.store.state().iter().map(|p| p.name_any()).collect()),
        }
    }

    /// The watch's health bookkeeping (`None` without Kubernetes).
    pub fn watch_status(&self) -> Option<&WatchStatus> {
        match self {
            PodView::Kube(k) => Some(&k.status),
            PodView::Static(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, app: Option<&str>, host_network: Option<bool>) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        pod.metadata.namespace = Some("netchecker".into());
        if let Some(app) = app {
            pod.metadata.labels = Some([("app".to_string(), app.to_string())].into());
        }
        pod.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            node_name: Some("node-1".into()),
            host_network,
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
            assert_eq!(kind_of(&pod("p", app, host)), want, "{app:?} {host:?}");
        }
        let p = pod("netchecker-agent-x", Some("netchecker-agent"), None);
        assert_eq!(
            expected_of(&p),
            Some(ExpectedAgent {
                name: "netchecker-agent-x",
                namespace: Some("netchecker"),
                node: Some("node-1"),
                kind: AgentKind::PodNetwork,
            })
        );
        assert_eq!(
            AgentKind::from_name("netchecker-agent-hostnet-q8w3z"),
            AgentKind::HostNetwork
        );
        assert_eq!(
            AgentKind::from_name("netchecker-agent-x7k2p"),
            AgentKind::PodNetwork
        );
    }

    #[test]
    fn static_view_lists_reporters_and_named_agents_once_each() {
        let view = PodView::fixed(["b".to_string(), "netchecker-agent-hostnet-a".to_string()]);
        let names = view
            .expected(["c", "b"].into_iter(), |pods| {
                assert!(
                    pods.iter()
                        .all(|p| p.namespace.is_none() && p.node.is_none())
                );
                pods.iter()
                    .map(|p| (p.name.to_owned(), p.kind))
                    .collect::<Vec<_>>()
            })
            .unwrap();
        let names: Vec<_> = names.iter().map(|(n, k)| (n.as_str(), *k)).collect();
        assert_eq!(
            names,
            [
                ("b", AgentKind::PodNetwork),
                ("c", AgentKind::PodNetwork),
                ("netchecker-agent-hostnet-a", AgentKind::HostNetwork)
            ]
        );
    }
}
