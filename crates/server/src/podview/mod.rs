//! Which agents are expected: the watched agent pods, or (without
//! Kubernetes) the agents that have reported plus any named on the command
//! line. One listing, [`PodView::expected`], serves every answer.
//!
//! With Kubernetes, an index of the watched agent pods ([`index`]) keeps what
//! is judged of each in memory, so a connectivity check reads memory and
//! never calls the API. The watch loop that fills it lives at the edge
//! (`crate::watch`); what it learns about the API's health is kept in
//! [`health`].

pub mod health;
pub mod index;
pub mod nodes;

use std::collections::BTreeSet;
use std::sync::{PoisonError, RwLock};

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::time::Instant;

use crate::domain::{AgentKind, ExpectedAgent};
pub use health::{ViewHealth, WatchStatus};
pub use index::{PodIndex, WatchedPod, kind_of};

/// Whether a name may report, by the pod view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// A watched pod, on this node (`None` while unscheduled), of this kind.
    Pod(Option<Box<str>>, AgentKind),
    /// The view has synced and has no pod of that name.
    NotWatched,
    /// No view to ask: without Kubernetes, or before the first sync.
    NoView,
}

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
    pods: PodIndex,
    status: WatchStatus,
}

/// The pieces of a pod watch, consumed by the watch loop (`crate::watch`).
pub struct PodWatch {
    pub api: Api<Pod>,
    pub config: watcher::Config,
    /// The label selector, for LISTs outside the watcher.
    pub selector: String,
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
        let view = PodView::Kube(KubeView {
            pods: PodIndex::default(),
            status: WatchStatus::default(),
        });
        let config = watcher::Config::default().labels(selector);
        (
            view,
            PodWatch {
                api,
                config,
                selector: selector.to_owned(),
            },
        )
    }

    /// Call `f` with the expected agents, borrowed, sorted by name without
    /// repeats (take the cache's lock first, if both are needed), given the names of the agents that have `reported` (without
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
                // The index is sorted by name and has each name once.
                let pods = k.pods.read();
                let agents: Vec<ExpectedAgent> =
                    pods.iter().map(|(name, pod)| pod.expected(name)).collect();
                Some(f(&agents))
            }
        }
    }

    /// Whether this view follows Kubernetes.
    pub fn is_kube(&self) -> bool {
        matches!(self, PodView::Kube(_))
    }

    /// Whether `name` was given with `--expected-agents` (without Kubernetes).
    pub fn is_named(&self, name: &str) -> bool {
        match self {
            PodView::Static(named) => named
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(name),
            PodView::Kube(_) => false,
        }
    }

    pub fn health(&self, now: Instant) -> ViewHealth {
        match self {
            PodView::Static(_) => ViewHealth::ALWAYS_CURRENT,
            PodView::Kube(k) => k.status.health(now),
        }
    }

    /// Whether `name` may report and, if it is a watched pod, its node and
    /// kind.
    pub fn watched_pod(&self, name: &str) -> Watched {
        match self {
            PodView::Kube(k) if k.status.synced() => match k.pods.read().get(name) {
                Some(pod) => Watched::Pod(pod.node.clone(), pod.kind),
                None => Watched::NotWatched,
            },
            PodView::Kube(_) | PodView::Static(_) => Watched::NoView,
        }
    }

    /// Call `f` with the watched pod named `name` (`None` without
    /// Kubernetes, before the first sync, or when no pod has that name).
    pub fn with_watched_pod<R>(&self, name: &str, f: impl FnOnce(Option<&WatchedPod>) -> R) -> R {
        match self {
            PodView::Kube(k) if k.status.synced() => f(k.pods.read().get(name)),
            PodView::Kube(_) | PodView::Static(_) => f(None),
        }
    }

    /// Whether `name` is a watched pod (always true without Kubernetes,
    /// where every reporter is expected).
    pub fn is_watched(&self, name: &str) -> bool {
        match self {
            PodView::Static(_) => true,
            PodView::Kube(k) => k.pods.read().contains_key(name),
        }
    }

    /// The watched pods (`None` without Kubernetes).
    pub fn watched(&self) -> Option<&PodIndex> {
        match self {
            PodView::Static(_) => None,
            PodView::Kube(k) => Some(&k.pods),
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
    use crate::domain::AgentKind;

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
