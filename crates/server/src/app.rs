//! The application core shared by the HTTP handlers and the background
//! tasks: the agent cache, the pod view, the metrics and the policy, and
//! the answers rendered from one evaluation of them.
//!
//! Handlers stay thin: everything they decide is a method of [`App`], so
//! what is accepted, forgotten and answered is testable without HTTP. The
//! methods are grouped by concern: reports coming in ([`crate::ingest`]),
//! the background round ([`crate::round`]), and here the answers and the
//! forgetting of agents.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use netchecker_wire::{CheckResponse, PodViewSource, Status, StoredReport};
use tokio::time::Instant;

use crate::auth::ReportAuth;
use crate::cache::{AgentCache, Entry};
use crate::conditions::NodeWriter;
use crate::domain::Policy;
use crate::evaluation::{Evaluation, MeshPart, evaluate};
use crate::incidents::Incidents;
use crate::leader::Leadership;
use crate::lograte::LogRate;
use crate::mesh::judge::judge;
use crate::mesh::pairs::{MeshSettings, MeshStore};
use crate::mesh::roster::roster;
use crate::metrics::Metrics;
use crate::nodes::NodeTracker;
use crate::podview::PodView;
use crate::podview::nodes::NodeIndex;
use crate::secret::SecretFile;
use crate::status::{self, ViewFacts};
use crate::verdict::is_expired;
use crate::webhook::Webhooks;

/// Limits and policy of a server instance.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: Policy,
    /// Ready only once warm ([`App::is_warm`]; `--ready-when-warm`).
    pub ready_when_warm: bool,
    /// Largest accepted report body in bytes.
    pub max_report_bytes: usize,
    /// Most agents the cache holds; reports from further new names are refused.
    pub max_agents: usize,
    /// Longest a request (including its body) may take.
    pub request_timeout: Duration,
    /// The bearer token the read and admin routes require, if any.
    pub read_token: Option<SecretFile>,
    /// The node-to-node mesh.
    pub mesh: MeshSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            ready_when_warm: false,
            max_report_bytes: 64 * 1024,
            max_agents: 50_000,
            request_timeout: Duration::from_secs(10),
            read_token: None,
            mesh: MeshSettings::default(),
        }
    }
}

/// The connectivity check could not be answered.
#[derive(Debug, thiserror::Error)]
#[error(
    "the list of agent pods is not available yet: the pod view has not synced with the Kubernetes API"
)]
pub struct NotSynced;

/// Cheaply clonable handle on the server's state.
/// [`Inner::unseen`] before the first round.
const NO_ROUND_YET: usize = usize::MAX;

/// What of the mesh an evaluation judges ([`App::with_evaluation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeshView {
    /// Nothing (the v1 check).
    Skip,
    /// The kept pairs on a roster decided from this very evaluation (the
    /// v2 answers: an agent deleted since the last round is already out).
    Fresh,
    /// The same, and that roster becomes the round's: the next assignments
    /// use it (the background round).
    NewRound,
}

#[derive(Clone)]
pub struct App(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) settings: Settings,
    pub(crate) cache: AgentCache,
    pub(crate) pods: PodView,
    pub(crate) metrics: Metrics,
    pub(crate) nodes: NodeTracker,
    pub(crate) webhooks: OnceLock<Webhooks>,
    /// Whether this replica speaks (sends events, writes to nodes).
    pub(crate) leadership: Leadership,
    /// Node conditions and Events (`--node-conditions`).
    pub(crate) node_writer: OnceLock<NodeWriter>,
    /// What the leader announced: open incidents, undelivered events.
    pub(crate) incidents: Arc<Incidents>,
    /// Held while a round announces: shutdown waits for it, and rounds
    /// after it announce nothing.
    pub(crate) announcing: std::sync::Mutex<()>,
    pub(crate) refusal_log: LogRate,
    pub(crate) auth: ReportAuth,
    pub(crate) mesh: MeshStore,
    /// The nodes' conditions, while the mesh watches them.
    pub(crate) node_index: NodeIndex,
    /// One `/api/v2/status` answer at a time (built and sent): its size
    /// grows with the agents, so concurrent ones must not multiply it.
    pub(crate) status_permit: Arc<tokio::sync::Semaphore>,
    pub(crate) started: Instant,
    shutting_down: AtomicBool,
    /// A round found every expected agent reported (latched).
    pub(crate) warm: AtomicBool,
    /// Expected agents that had not reported yet at the last round
    /// ([`NO_ROUND_YET`] before the first).
    pub(crate) unseen: AtomicUsize,
}

impl App {
    /// An app that checks no report's credentials (see [`App::with_auth`]).
    pub fn new(settings: Settings, pods: PodView) -> prometheus::Result<Self> {
        Self::with_auth(settings, pods, ReportAuth::nothing(Default::default()))
    }

    /// An app that authenticates reports with `auth`.
    pub fn with_auth(
        settings: Settings,
        pods: PodView,
        auth: ReportAuth,
    ) -> prometheus::Result<Self> {
        let metrics = Metrics::new()?;
        let nodes = NodeTracker::new(metrics.registry())?;
        let leadership = Leadership::new(metrics.registry())?;
        let incidents = Arc::new(Incidents::new(metrics.registry())?);
        let app = App(Arc::new(Inner {
            cache: AgentCache::new(settings.max_agents),
            settings,
            pods,
            metrics,
            nodes,
            webhooks: OnceLock::new(),
            leadership,
            node_writer: OnceLock::new(),
            incidents,
            announcing: std::sync::Mutex::new(()),
            refusal_log: LogRate::new(10, Duration::from_secs(1)),
            auth,
            mesh: MeshStore::default(),
            node_index: NodeIndex::default(),
            status_permit: Arc::new(tokio::sync::Semaphore::new(1)),
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
            warm: AtomicBool::new(false),
            unseen: AtomicUsize::new(NO_ROUND_YET),
        }));
        app.publish_pod_view(app.started());
        Ok(app)
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn pods(&self) -> &PodView {
        &self.0.pods
    }

    /// The rate limit shared by every log line a client can cause.
    pub fn refusal_log(&self) -> &LogRate {
        &self.0.refusal_log
    }

    pub fn auth(&self) -> &ReportAuth {
        &self.0.auth
    }

    pub fn cache(&self) -> &AgentCache {
        &self.0.cache
    }

    /// What is kept of the mesh.
    pub fn mesh(&self) -> &MeshStore {
        &self.0.mesh
    }

    /// The nodes' conditions (fed by the node watch).
    pub fn node_index(&self) -> &NodeIndex {
        &self.0.node_index
    }

    /// When this server started (monotonic clock).
    pub fn started(&self) -> Instant {
        self.0.started
    }

    /// The minute of `now` since the server started: what the path
    /// windows are kept in ([`crate::path`]).
    pub fn minute(&self, now: Instant) -> u64 {
        crate::path::minute(now, self.0.started)
    }

    /// Evaluate every agent and node at `now` and hand the result to `f`,
    /// under the cache's read lock and without copying the cache. `None`
    /// while the pod view has not synced. The mesh is judged too when it
    /// is on and `mesh` asks for it (the v1 check does not need it).
    pub fn with_evaluation<R>(
        &self,
        now: Instant,
        mesh: MeshView,
        f: impl FnOnce(&Evaluation<'_, Entry>) -> R,
    ) -> Option<R> {
        let inner = &self.0;
        inner.cache.with_entries(|entries| {
            let reported = entries.keys().map(String::as_str);
            inner.pods.expected(reported, |expected| {
                let eval = evaluate(
                    expected,
                    entries,
                    now,
                    inner.started,
                    &inner.settings.policy,
                );
                let settings = &inner.settings.mesh;
                if !settings.enabled() {
                    return f(&eval);
                }
                // Locks in the one order: cache, pods, mesh agents, pairs.
                if mesh == MeshView::Skip {
                    return f(&eval);
                }
                let gate = |n: &str| inner.node_index.gate(n);
                let roster = inner
                    .mesh
                    .with_agents(|agents| Arc::new(roster(&eval.agents, agents, gate)));
                if mesh == MeshView::NewRound {
                    inner.mesh.set_roster(Arc::clone(&roster));
                }
                inner.mesh.with_pairs(|pairs| {
                    let unix = jiff::Timestamp::now().as_second();
                    let round = settings.round_at(unix);
                    let rings = [&roster.rings[0], &roster.rings[1]];
                    let judged = judge(pairs, &rings, unix, round, settings.peers);
                    f(&eval.with_mesh(MeshPart {
                        judged,
                        roster: &roster,
                        pairs,
                        unix,
                        round_seconds: settings.round.as_secs(),
                    }))
                })
            })
        })
    }

    /// The v1 connectivity-check answer at `now`.
    pub fn check(&self, now: Instant) -> Result<CheckResponse, NotSynced> {
        self.with_evaluation(now, MeshView::Skip, |eval| eval.check_response())
            .ok_or(NotSynced)
    }

    /// The v2 diagnosis at `now`: every agent, every node's verdict.
    pub fn status(&self, now: Instant) -> Result<Status, NotSynced> {
        let view = self.view_facts(now);
        let wall = jiff::Timestamp::now();
        self.with_evaluation(now, MeshView::Fresh, |eval| {
            status::render(eval, view, wall)
        })
        .ok_or(NotSynced)
    }

    /// Wait (at most `within`) for the right to build and send a v2 answer.
    pub async fn status_permit(
        &self,
        within: Duration,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let permit = self.0.status_permit.clone().acquire_owned();
        tokio::time::timeout(within, permit).await.ok()?.ok()
    }

    /// The v2 diagnosis at `now` as JSON, written straight from the
    /// evaluation ([`status::write`]).
    pub fn status_json(&self, now: Instant) -> Result<Vec<u8>, NotSynced> {
        let view = self.view_facts(now);
        let wall = jiff::Timestamp::now();
        self.with_evaluation(now, MeshView::Fresh, |eval| {
            let mut out = Vec::with_capacity(256 + eval.agents.len() * 512);
            status::write(eval, view, wall, &mut out);
            out
        })
        .ok_or(NotSynced)
    }

    fn view_facts(&self, now: Instant) -> ViewFacts {
        ViewFacts {
            source: if self.0.pods.is_kube() {
                PodViewSource::Kubernetes
            } else {
                PodViewSource::Static
            },
            health: self.0.pods.health(now),
        }
    }

    pub fn report(&self, name: &str) -> Option<StoredReport> {
        self.0.cache.get(name)
    }

    /// Forget agent `name`: its report and its metric series. True if it
    /// was known. (A name from `--expected-agents` stays expected.)
    pub fn forget(&self, name: &str) -> bool {
        self.0.mesh.forget_agent(name);
        match self.0.cache.remove(name) {
            Some(_) => {
                self.forget_series(name);
                true
            }
            None => false,
        }
    }

    /// Drop cached reports for which `keep(name, received)` is false.
    pub fn prune(&self, mut keep: impl FnMut(&str, Instant) -> bool) {
        for (name, _) in self.0.cache.remove_unless(|n, e| keep(n, e.received)) {
            tracing::info!(pod = ?name, "agent pod no longer exists; its report left the cache");
            self.forget_series(&name);
        }
    }

    /// Drop the reports that are past their TTL at `now` ([`is_expired`]):
    /// without Kubernetes an agent that went away then leaves the check, as
    /// with the original's etcd TTL. A name from `--expected-agents` stays
    /// expected and turns absent.
    pub fn expire(&self, now: Instant) {
        let policy = &self.0.settings.policy;
        let kube = self.0.pods.is_kube();
        for (name, entry) in self
            .0
            .cache
            .remove_unless(|_, e| !is_expired(&e.seen(), now, policy, kube))
        {
            let age = now.saturating_duration_since(entry.received).as_secs();
            tracing::info!(agent = ?name, age_seconds = age, "report older than the report TTL dropped");
            self.forget_series(&name);
        }
        // Reports taken before the pod view first synced, under names that
        // turned out to be no watched pod, leave: no name outside the pods
        // keeps a cache slot or a series.
        let pods = &self.0.pods;
        if pods.watch_status().is_some_and(|w| w.synced()) {
            for (name, _) in self.0.cache.remove_unless(|n, _| pods.is_watched(n)) {
                tracing::info!(agent = ?name, "report of a name that is no watched pod dropped");
                self.forget_series(&name);
            }
        }
    }

    pub(crate) fn forget_series(&self, name: &str) {
        self.0.metrics.forget(name);
    }

    /// Deliver node verdict changes to these webhooks from now on.
    pub fn attach_webhooks(&self, webhooks: Webhooks) {
        if self.0.webhooks.set(webhooks).is_err() {
            tracing::warn!("webhooks already attached; ignoring a second set");
        }
    }

    /// Whether this replica leads (always, without an election).
    pub fn leadership(&self) -> &Leadership {
        &self.0.leadership
    }

    /// Write node conditions and Events through `writer` from now on
    /// (while leading).
    pub fn attach_node_writer(&self, writer: NodeWriter) {
        if self.0.node_writer.set(writer).is_err() {
            tracing::warn!("node writer already attached; ignoring a second one");
        }
    }

    pub fn publish_pod_view(&self, now: Instant) {
        let h = self.0.pods.health(now);
        self.0.metrics.pod_view(h.synced && !h.stale, h.age_seconds);
    }

    /// Ready once the pod view has synced, until shutdown starts.
    pub fn is_ready(&self) -> bool {
        self.not_ready(Instant::now()).is_none()
    }

    /// Why the server is not ready at `now` (`/readyz`), or `None`.
    pub fn not_ready(&self, now: Instant) -> Option<String> {
        let inner = &self.0;
        if inner.shutting_down.load(Ordering::Acquire) {
            return Some("shutting down".to_owned());
        }
        if !inner.pods.health(now).synced {
            return Some("the pod view has not synced yet".to_owned());
        }
        if inner.settings.ready_when_warm && !self.is_warm(now) {
            let grace = inner.settings.policy.startup_grace;
            let left = grace.saturating_sub(now.saturating_duration_since(inner.started));
            let unseen = match inner.unseen.load(Ordering::Relaxed) {
                NO_ROUND_YET => "the first evaluation has not run yet".to_owned(),
                n => format!("{n} expected agents have not reported yet"),
            };
            return Some(format!(
                "warming up: {unseen}; ready once every expected agent has reported, or in {} s at most",
                left.as_secs_f64().ceil()
            ));
        }
        None
    }

    /// Warm at `now`: a round found every expected agent reported, or the
    /// start-up grace (one reporting window) is over. A cold server would
    /// answer checks with agents it has simply not heard from yet.
    pub fn is_warm(&self, now: Instant) -> bool {
        let inner = &self.0;
        inner.warm.load(Ordering::Acquire) || !inner.settings.policy.in_grace(now, inner.started)
    }

    /// Note what a round saw: `unseen` expected agents not reported yet.
    pub(crate) fn note_unseen(&self, unseen: usize) {
        self.0.unseen.store(unseen, Ordering::Relaxed);
        if unseen == 0 {
            self.0.warm.store(true, Ordering::Release);
        }
    }

    pub fn start_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::Release);
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::Acquire)
    }

    /// The leader's record of what it announced.
    pub fn incidents(&self) -> &Arc<Incidents> {
        &self.0.incidents
    }

    /// Stop speaking for shutdown: no round announces anything from now
    /// on; the webhooks deliver what they hold (for up to `within`); the
    /// record notes what was delivered, for the store to write last.
    pub async fn fall_silent(&self, within: Duration) {
        self.start_shutdown();
        // A round announcing now finishes first; later ones see the flag.
        drop(
            self.0
                .announcing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if let Some(webhooks) = self.0.webhooks.get()
            && !webhooks.drain(within).await
        {
            tracing::warn!(
                within = ?within,
                "webhook events still undelivered at shutdown; the next leader sends them (same ids)"
            );
        }
        self.0.incidents.settle_now();
    }
}
