//! Which agents are expected: the watched agent pods, or (without
//! Kubernetes) the agents that have reported plus any named on the command
//! line.
//!
//! With Kubernetes, a kube-rs reflector keeps an in-memory copy of the agent
//! pods (one LIST, then a WATCH), so a connectivity check reads memory and
//! never calls the API. Watch errors back off and retry; meanwhile checks
//! keep answering from the last known pods and the view is marked stale.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app::App;

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

/// Health of the pod watch, written by the watch task, read by everyone.
#[derive(Default)]
struct WatchStatus {
    synced_once: AtomicBool,
    /// `Some` while the watch is failing.
    failing: Mutex<Option<Failing>>,
    last_ok: Mutex<Option<Instant>>,
    /// When the relist in progress started (`Event::Init` comes before the
    /// LIST request), `None` when no relist is running.
    relisting: Mutex<Option<Instant>>,
}

/// A relist running longer than this means the API is not answering it.
const RELIST_PATIENCE: Duration = Duration::from_secs(10);

/// Bookkeeping of a failing watch.
///
/// The watcher retries with a bounded exponential backoff (0.8 s doubling to
/// 30 s, with jitter), so while the API stays unreachable an error arrives
/// at least that often. A watch that re-establishes on a quiet cluster
/// yields no event at all; so once no error has arrived for clearly longer
/// than the retry schedule allows, the watch is taken to be current again.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Failing {
    /// When the API last answered (the view's age counts from here).
    since: Instant,
    last_error: Instant,
    /// Time between the last two errors, the current retry delay.
    gap: Option<Duration>,
}

impl Failing {
    const FIRST_RETRY: Duration = Duration::from_millis(800);
    const LONGEST_HOLD: Duration = Duration::from_secs(90);

    fn after_error(previous: Option<Failing>, last_ok: Instant, now: Instant) -> Failing {
        match previous {
            Some(f) => Failing {
                since: f.since,
                last_error: now,
                gap: Some(now.saturating_duration_since(f.last_error)),
            },
            None => Failing {
                since: last_ok,
                last_error: now,
                gap: None,
            },
        }
    }

    /// Still failing at `now`: the next retry is not overdue yet.
    fn is_stale(&self, now: Instant) -> bool {
        let retry = self.gap.unwrap_or(Self::FIRST_RETRY);
        let hold = (retry * 4 + Duration::from_secs(1)).min(Self::LONGEST_HOLD);
        now.saturating_duration_since(self.last_error) <= hold
    }
}

/// Which network an agent checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentKind {
    /// The agent runs on the pod network (the `netchecker-agent` DaemonSet).
    PodNetwork,
    /// The agent runs with `hostNetwork: true` (`netchecker-agent-hostnet`).
    HostNetwork,
    /// Neither label nor spec tells.
    Unknown,
}

impl AgentKind {
    /// The pod label `app` of the host-network agents.
    pub const HOSTNET_APP: &str = "netchecker-agent-hostnet";
    /// The pod label `app` of the pod-network agents.
    pub const POD_APP: &str = "netchecker-agent";

    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::PodNetwork => "pod_network",
            AgentKind::HostNetwork => "host_network",
            AgentKind::Unknown => "unknown",
        }
    }

    /// Without Kubernetes only the name tells: the host-network DaemonSet's
    /// pods are named `netchecker-agent-hostnet-...`.
    pub fn from_name(name: &str) -> Self {
        if name.contains("-hostnet") {
            AgentKind::HostNetwork
        } else {
            AgentKind::PodNetwork
        }
    }

    /// A pod's kind: `hostNetwork: true` or the host-network `app` label
    /// makes it a host-network agent, the pod-network label a pod-network one.
    pub fn of_pod(pod: &Pod) -> Self {
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        match pod.labels().get("app").map(String::as_str) {
            _ if host_network => AgentKind::HostNetwork,
            Some(Self::HOSTNET_APP) => AgentKind::HostNetwork,
            Some(Self::POD_APP) => AgentKind::PodNetwork,
            _ => AgentKind::Unknown,
        }
    }
}

/// An expected agent, borrowed from the pod view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodRef<'a> {
    pub name: &'a str,
    pub node: Option<&'a str>,
    pub kind: AgentKind,
}

/// An expected agent and what the pod view knows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedPod {
    pub name: String,
    /// `None` without Kubernetes.
    pub namespace: Option<String>,
    /// The node the pod is scheduled on (`None` without Kubernetes, or
    /// while unscheduled).
    pub node: Option<String>,
    pub kind: AgentKind,
}

impl ExpectedPod {
    fn from_pod(pod: &Pod) -> Option<Self> {
        Some(ExpectedPod {
            name: pod.metadata.name.clone()?,
            namespace: pod.metadata.namespace.clone(),
            node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            kind: AgentKind::of_pod(pod),
        })
    }
}

/// How current the pod view is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewHealth {
    /// The view has completed its first full list.
    pub synced: bool,
    /// The watch is currently failing (answers come from the last known pods).
    pub stale: bool,
    /// Seconds since the API last answered, while stale; else 0.
    pub age_seconds: f64,
}

impl PodView {
    /// A view without Kubernetes, expecting `named` agents up front.
    pub fn fixed(named: impl IntoIterator<Item = String>) -> Self {
        PodView::Static(RwLock::new(named.into_iter().collect()))
    }

    /// A view of the pods matching `selector`, in `namespace` or in all
    /// namespaces. Returns the view and the watch loop the caller must run
    /// (see [`run_watch`]).
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
                writer,
            },
        )
    }

    /// Call `f` with the expected agent names (borrowed, unsorted, maybe
    /// repeated), given the names of the agents that have `reported`.
    /// `None` while the Kubernetes view has never synced: the check cannot
    /// be answered yet.
    pub fn with_expected<'r, R>(
        &self,
        reported: impl Iterator<Item = &'r str>,
        f: impl FnOnce(&mut dyn Iterator<Item = &str>) -> R,
    ) -> Option<R> {
        match self {
            PodView::Static(named) => {
                let named = named.read().unwrap_or_else(PoisonError::into_inner);
                let mut names: Vec<&str> = reported.collect();
                names.extend(named.iter().map(String::as_str));
                Some(f(&mut names.into_iter()))
            }
            PodView::Kube(k) => {
                if !k.status.synced_once.load(Ordering::Acquire) {
                    return None;
                }
                let pods = k.store.state();
                Some(f(&mut pods
                    .iter()
                    .filter_map(|p| p.metadata.name.as_deref())))
            }
        }
    }

    /// The expected agents with what the view knows of each (namespace,
    /// node, network kind), sorted by name and without repeats, given the
    /// names of the agents that have `reported`. `None` while the
    /// Kubernetes view has never synced.
    pub fn expected_pods<'r>(
        &self,
        reported: impl Iterator<Item = &'r str>,
    ) -> Option<Vec<ExpectedPod>> {
        let mut pods = match self {
            PodView::Static(named) => {
                let named = named.read().unwrap_or_else(PoisonError::into_inner);
                let mut names: BTreeSet<String> = reported.map(str::to_owned).collect();
                names.extend(named.iter().cloned());
                names
                    .into_iter()
                    .map(|name| ExpectedPod {
                        kind: AgentKind::from_name(&name),
                        name,
                        namespace: None,
                        node: None,
                    })
                    .collect()
            }
            PodView::Kube(k) => {
                if !k.status.synced_once.load(Ordering::Acquire) {
                    return None;
                }
                k.store
                    .state()
                    .iter()
                    .filter_map(|p| ExpectedPod::from_pod(p))
                    .collect::<Vec<_>>()
            }
        };
        pods.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        pods.dedup_by(|a, b| a.name == b.name);
        Some(pods)
    }

    /// Call `f` with the expected agents, borrowed, sorted by name without
    /// repeats, given the names of the agents that have `reported`. `None`
    /// while the Kubernetes view has never synced. Unlike
    /// [`PodView::expected_pods`] nothing per pod is copied.
    pub fn with_expected_refs<'r, R>(
        &self,
        reported: impl Iterator<Item = &'r str>,
        f: impl FnOnce(&[PodRef<'_>]) -> R,
    ) -> Option<R> {
        fn sorted<'p>(mut refs: Vec<PodRef<'p>>) -> Vec<PodRef<'p>> {
            refs.sort_unstable_by(|a, b| a.name.cmp(b.name));
            refs.dedup_by(|a, b| a.name == b.name);
            refs
        }
        match self {
            PodView::Static(named) => {
                let named = named.read().unwrap_or_else(PoisonError::into_inner);
                fn by_name(name: &str) -> PodRef<'_> {
                    PodRef {
                        name,
                        node: None,
                        kind: AgentKind::from_name(name),
                    }
                }
                let mut refs: Vec<PodRef<'_>> = named.iter().map(|n| by_name(n)).collect();
                for name in reported {
                    refs.push(by_name(name));
                }
                Some(f(&sorted(refs)))
            }
            PodView::Kube(k) => {
                if !k.status.synced_once.load(Ordering::Acquire) {
                    return None;
                }
                let pods = k.store.state();
                let refs = pods
                    .iter()
                    .filter_map(|p| {
                        Some(PodRef {
                            name: p.metadata.name.as_deref()?,
                            node: p.spec.as_ref().and_then(|s| s.node_name.as_deref()),
                            kind: AgentKind::of_pod(p),
                        })
                    })
                    .collect();
                Some(f(&sorted(refs)))
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
            PodView::Static(_) => ViewHealth {
                synced: true,
                stale: false,
                age_seconds: 0.0,
            },
            PodView::Kube(k) => {
                let synced = k.status.synced_once.load(Ordering::Acquire);
                let relisting = *k
                    .status
                    .relisting
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if let Some(since) = relisting
                    && synced
                    && now.saturating_duration_since(since) > RELIST_PATIENCE
                {
                    // The view is frozen at what it held when the relist began.
                    return ViewHealth {
                        synced,
                        stale: true,
                        age_seconds: now.saturating_duration_since(since).as_secs_f64(),
                    };
                }
                let failing = *k
                    .status
                    .failing
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                match failing {
                    // A failure followed by a relist still running is not
                    // over, however long ago the last error came.
                    Some(f) if f.is_stale(now) || relisting.is_some() => ViewHealth {
                        synced,
                        stale: true,
                        age_seconds: now.saturating_duration_since(f.since).as_secs_f64(),
                    },
                    _ => ViewHealth {
                        synced,
                        stale: false,
                        age_seconds: 0.0,
                    },
                }
            }
        }
    }

    /// Names of the pods currently in the watched view (`None` without Kubernetes).
    fn live_names(&self) -> Option<HashSet<String>> {
        match self {
            PodView::Static(_) => None,
            PodView::Kube(k) => Some(k.store.state().iter().map(|p| p.name_any()).collect()),
        }
    }

    fn kube_status(&self) -> Option<&WatchStatus> {
        match self {
            PodView::Kube(k) => Some(&k.status),
            PodView::Static(_) => None,
        }
    }
}

/// The pieces of a pod watch, consumed by [`run_watch`].
pub struct PodWatch {
    api: Api<Pod>,
    config: watcher::Config,
    writer: reflector::store::Writer<Pod>,
}

/// Strip a watched pod down to what the server reads (name, namespace,
/// labels, node, host network), so the store holds a few hundred bytes per
/// pod instead of its whole spec, status and managed fields.
fn keep_what_is_judged(pod: &mut Pod) {
    let m = &mut pod.metadata;
    m.annotations = None;
    m.managed_fields = None;
    m.owner_references = None;
    m.finalizers = None;
    if let Some(labels) = &mut m.labels {
        labels.retain(|k, _| k == "app");
    }
    pod.spec = pod
        .spec
        .take()
        .map(|spec| k8s_openapi::api::core::v1::PodSpec {
            node_name: spec.node_name,
            host_network: spec.host_network,
            ..Default::default()
        });
    pod.status = None;
}

/// Drive the pod watch until `shutdown`: keep the reflector store current,
/// drop the reports of deleted pods, and track whether the view is stale.
pub async fn run_watch(app: App, watch: PodWatch, shutdown: CancellationToken) {
    let PodWatch {
        api,
        config,
        writer,
    } = watch;
    let stream = watcher(api, config)
        .default_backoff()
        .modify(keep_what_is_judged)
        .reflect(writer);
    let mut stream = std::pin::pin!(stream.take_until(shutdown.cancelled_owned()));
    let Some(status) = app.pods().kube_status() else {
        return;
    };
    // Reports received before a relist started may belong to pods deleted
    // while the watch was down: those are pruned once the relist is done.
    let mut relist_started = Instant::now();
    while let Some(item) = stream.next().await {
        let now = Instant::now();
        match item {
            Ok(watcher::Event::Init) => {
                // Emitted before the LIST request is sent: no answer yet.
                relist_started = now;
                *status
                    .relisting
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(now);
            }
            Ok(event) => {
                let was_failing = status
                    .failing
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                *status
                    .last_ok
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(now);
                if was_failing.is_some() {
                    tracing::info!("Kubernetes API answers again; pod view is current");
                }
                match event {
                    watcher::Event::Init => {}
                    watcher::Event::InitDone => {
                        *status
                            .relisting
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = None;
                        let first_sync = !status.synced_once.swap(true, Ordering::AcqRel);
                        if let Some(live) = app.pods().live_names() {
                            if first_sync {
                                tracing::info!(pods = live.len(), "pod view synced");
                            }
                            app.prune(|name, received| {
                                received >= relist_started || live.contains(name)
                            });
                        }
                    }
                    watcher::Event::Delete(pod) => {
                        let name = pod.name_any();
                        if app.forget(&name) {
                            tracing::info!(pod = %name, "agent pod deleted; its report left the cache");
                        }
                    }
                    watcher::Event::Apply(_) | watcher::Event::InitApply(_) => {}
                }
            }
            Err(error) => {
                let last_ok = status
                    .last_ok
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .unwrap_or(app.started());
                let mut failing = status
                    .failing
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                *failing = Some(Failing::after_error(*failing, last_ok, now));
                drop(failing);
                tracing::warn!(%error, "pod watch failed; answering from the last known pods (view is stale), retrying with backoff");
            }
        }
        app.publish_pod_view(now);
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
            assert_eq!(
                AgentKind::of_pod(&pod("p", app, host)),
                want,
                "{app:?} {host:?}"
            );
        }
        let p = ExpectedPod::from_pod(&pod("netchecker-agent-x", Some("netchecker-agent"), None));
        assert_eq!(
            p,
            Some(ExpectedPod {
                name: "netchecker-agent-x".into(),
                namespace: Some("netchecker".into()),
                node: Some("node-1".into()),
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
    fn a_stored_pod_keeps_only_what_is_judged() {
        let mut full = pod("netchecker-agent-x", Some("netchecker-agent"), Some(true));
        full.metadata.annotations = Some([("a".to_string(), "x".repeat(4096))].into());
        full.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("pod-template-hash".into(), "abc".into());
        full.spec.as_mut().unwrap().containers = vec![Default::default(); 3];
        full.status = Some(Default::default());
        let before = ExpectedPod::from_pod(&full);
        let mut slim = full.clone();
        keep_what_is_judged(&mut slim);
        assert_eq!(ExpectedPod::from_pod(&slim), before, "same expected pod");
        assert_eq!(AgentKind::of_pod(&slim), AgentKind::HostNetwork);
        assert!(slim.metadata.annotations.is_none() && slim.status.is_none());
        assert!(slim.spec.as_ref().unwrap().containers.is_empty());
        assert_eq!(slim.metadata.labels.as_ref().unwrap().len(), 1);
        let size = |p: &Pod| serde_json::to_string(p).unwrap().len();
        assert!(
            size(&slim) < 300,
            "{}",
            serde_json::to_string(&slim).unwrap()
        );
        assert!(size(&full) > 4096);
    }

    #[test]
    fn static_view_lists_reporters_and_named_agents_once_each() {
        let view = PodView::fixed(["b".to_string(), "netchecker-agent-hostnet-a".to_string()]);
        let pods = view.expected_pods(["c", "b"].into_iter()).unwrap();
        let names: Vec<_> = pods.iter().map(|p| (p.name.as_str(), p.kind)).collect();
        assert_eq!(
            names,
            [
                ("b", AgentKind::PodNetwork),
                ("c", AgentKind::PodNetwork),
                ("netchecker-agent-hostnet-a", AgentKind::HostNetwork)
            ]
        );
        assert!(
            pods.iter()
                .all(|p| p.namespace.is_none() && p.node.is_none())
        );
    }

    #[test]
    fn a_failing_watch_is_stale_until_its_next_retry_is_clearly_overdue() {
        let t0 = Instant::now();
        let s = |secs: f64| t0 + Duration::from_secs_f64(secs);
        let first = Failing::after_error(None, t0, s(10.0));
        assert_eq!(first.since, t0, "age counts from the last answer");
        assert!(
            first.is_stale(s(14.2)),
            "first retry comes after about 0.8 s"
        );
        assert!(!first.is_stale(s(14.3)));

        let second = Failing::after_error(Some(first), t0, s(12.0));
        assert_eq!(
            (second.since, second.gap),
            (t0, Some(Duration::from_secs(2)))
        );
        assert!(second.is_stale(s(21.0)));
        assert!(!second.is_stale(s(21.1)));

        let long = Failing::after_error(Some(second), t0, s(100.0));
        assert!(
            long.is_stale(s(190.0)),
            "retries every 30 s or so are still an outage"
        );
        assert!(!long.is_stale(s(190.1)), "hold is capped");
    }
}
