//! The application core shared by the HTTP handlers and the background
//! tasks: the agent cache, the pod view, the metrics and the policy.
//!
//! Handlers stay thin: everything they decide is a method here, so the rules
//! (what is accepted, what is forgotten, what a check answers) are testable
//! without HTTP.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use netchecker_wire::{AgentReport, CheckResponse, StoredReport};
use tokio::time::Instant;

use crate::cache::{AgentCache, CacheFull, Entry};
use crate::diagnosis::{NodeJudgement, node_verdict, reason};
use crate::lograte::LogRate;
use crate::metrics::{Metrics, Rejection};
use crate::nodes::{self, NodeTracker};
use crate::podview::PodView;
use crate::status::{self, Status, Tally};
use crate::verdict::{Policy, Verdict, is_expired, judge, state_of};
use crate::webhook::Webhooks;

/// Limits and policy of a server instance.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: Policy,
    /// Largest accepted report body in bytes.
    pub max_report_bytes: usize,
    /// Most agents the cache holds; reports from further new names are refused.
    pub max_agents: usize,
    /// Longest a request (including its body) may take.
    pub request_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            max_report_bytes: 256 * 1024,
            max_agents: 50_000,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a report was not stored. The cache is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid agent name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
    #[error("invalid JSON in report: {0}")]
    InvalidJson(#[source] serde_json::Error),
    #[error("invalid report: {0}")]
    InvalidReport(String),
    #[error(
        "agent cache is full ({max} agents); refusing new agent {name:?} (known agents keep updating)"
    )]
    CacheFull { name: String, max: usize },
}

impl IngestError {
    pub fn rejection(&self) -> Rejection {
        match self {
            IngestError::InvalidName { .. } => Rejection::InvalidName,
            IngestError::InvalidJson(_) => Rejection::InvalidJson,
            IngestError::InvalidReport(_) => Rejection::InvalidReport,
            IngestError::CacheFull { .. } => Rejection::CacheFull,
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
#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    settings: Settings,
    cache: AgentCache,
    pods: PodView,
    metrics: Metrics,
    nodes: NodeTracker,
    webhooks: OnceLock<Webhooks>,
    refusal_log: LogRate,
    started: Instant,
    shutting_down: AtomicBool,
}

impl App {
    pub fn new(settings: Settings, pods: PodView) -> prometheus::Result<Self> {
        let metrics = Metrics::new()?;
        let nodes = NodeTracker::new(metrics.registry())?;
        let app = App(Arc::new(Inner {
            cache: AgentCache::new(settings.max_agents),
            settings,
            pods,
            metrics,
            nodes,
            webhooks: OnceLock::new(),
            refusal_log: LogRate::new(10, Duration::from_secs(1)),
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
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

    pub fn cache(&self) -> &AgentCache {
        &self.0.cache
    }

    /// When this server started (monotonic clock).
    pub fn started(&self) -> Instant {
        self.0.started
    }

    /// Parse, validate and store a report for agent `name` received at `now`.
    pub fn ingest(&self, name: &str, body: &[u8], now: Instant) -> Result<(), IngestError> {
        let result = self.try_ingest(name, body, now);
        if let Err(e) = &result {
            self.0.metrics.report_rejected(e.rejection());
            // Every refusal is counted; only a few per second are logged.
            if let Some(suppressed) = self.0.refusal_log.allow(now) {
                tracing::warn!(agent = %name, error = %e, suppressed, "report refused");
            }
        }
        result
    }

    fn try_ingest(&self, name: &str, body: &[u8], now: Instant) -> Result<(), IngestError> {
        validate_pod_name(name).map_err(|why| IngestError::InvalidName {
            name: name.to_owned(),
            why,
        })?;
        let fast = crate::padding::without_padding(body)
            .and_then(|cut| serde_json::from_slice::<AgentReport>(&cut).ok());
        let report = match fast {
            Some(report) => report,
            None => Self::parse(body)?,
        };
        if report.report_interval == 0 {
            return Err(IngestError::InvalidReport(
                "report_interval must be a positive number of seconds".into(),
            ));
        }
        let agent = crate::metrics::agent_label(name, &report.nodename);
        let entry = Entry::new(&report, agent.clone(), now, jiff::Timestamp::now());
        let skew = entry.skew_seconds;
        match self.0.cache.insert(name, entry) {
            Ok(previous) => {
                let probes = &report.network_probes;
                match previous {
                    // The pod's node name changed: its old label's series go.
                    Some(prev) if prev.agent != agent => self.forget_series(name, &prev),
                    // Probe URLs the agent no longer reports lose their
                    // series, unless another pod shares the label (rare, so
                    // the cache is searched only when URLs changed).
                    Some(prev) => {
                        let dropped: Vec<&str> = prev
                            .probes
                            .iter()
                            .map(|(old, _)| &**old)
                            .filter(|old| probes.iter().all(|new| new.url != *old))
                            .collect();
                        if !dropped.is_empty() && !self.0.cache.has_agent_label(&agent, name) {
                            self.0.metrics.forget_probes(&agent, &dropped);
                        }
                    }
                    None => {}
                }
                self.0.metrics.report_accepted(&agent, name, probes, skew);
                tracing::debug!(agent = name, "report stored");
                Ok(())
            }
            Err(CacheFull { max }) => Err(IngestError::CacheFull {
                name: name.to_owned(),
                max,
            }),
        }
    }

    /// Parse a whole body; the error says whether it is not JSON at all or
    /// JSON of the wrong shape.
    fn parse(body: &[u8]) -> Result<AgentReport, IngestError> {
        serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                IngestError::InvalidReport(e.to_string())
            } else {
                IngestError::InvalidJson(e)
            }
        })
    }

    pub fn report(&self, name: &str) -> Option<StoredReport> {
        self.0.cache.get(name)
    }

    /// Forget agent `name`: its report, its metric series and (without
    /// Kubernetes) its command-line expectation. True if anything was known.
    pub fn forget(&self, name: &str) -> bool {
        let named = self.0.pods.forget_named(name);
        match self.0.cache.remove(name) {
            Some(entry) => {
                self.forget_series(name, &entry);
                true
            }
            None => named,
        }
    }

    /// Drop cached reports for which `keep(name, received)` is false.
    pub fn prune(&self, mut keep: impl FnMut(&str, Instant) -> bool) {
        for (name, entry) in self.0.cache.remove_unless(|n, e| keep(n, e.received)) {
            tracing::info!(pod = %name, "agent pod no longer exists; its report left the cache");
            self.forget_series(&name, &entry);
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
            tracing::info!(agent = %name, age_seconds = now.saturating_duration_since(entry.received).as_secs(), "report older than the report TTL dropped");
            self.forget_series(&name, &entry);
        }
    }

    fn forget_series(&self, name: &str, entry: &Entry) {
        let shared = self.0.cache.has_agent_label(&entry.agent, name);
        self.0.metrics.forget(&entry.agent, name, shared);
    }

    /// Judge every expected agent at `now`, under the cache's read lock
    /// and without copying the cache.
    pub fn verdict(&self, now: Instant) -> Result<Verdict, NotSynced> {
        let policy = &self.0.settings.policy;
        self.0.cache.with_entries(|entries| {
            let reported = entries.keys().map(String::as_str);
            self.0
                .pods
                .with_expected(reported, |expected| {
                    judge(
                        expected,
                        |name| entries.get(name).map(Entry::seen),
                        now,
                        self.0.started,
                        policy,
                    )
                })
                .ok_or(NotSynced)
        })
    }

    /// The v2 diagnosis at `now`: every agent, every node's verdict.
    pub fn status(&self, now: Instant) -> Result<Status, NotSynced> {
        let policy = &self.0.settings.policy;
        let view = self.0.pods.health(now);
        let in_grace = now.saturating_duration_since(self.0.started) <= policy.startup_grace;
        self.0.cache.with_entries(|entries| {
            let pods = self
                .0
                .pods
                .expected_pods(entries.keys().map(String::as_str))
                .ok_or(NotSynced)?;
            let expected = pods
                .into_iter()
                .map(|pod| {
                    let seen = entries.get(&pod.name).map(Entry::seen);
                    let state = state_of(seen, now, in_grace, policy);
                    (pod, state)
                })
                .collect();
            Ok(status::build(status::Inputs {
                expected,
                entries,
                kube: self.0.pods.is_kube(),
                view,
                in_grace,
                now,
                wall: jiff::Timestamp::now(),
            }))
        })
    }

    /// Deliver node verdict changes to these webhooks from now on.
    pub fn attach_webhooks(&self, webhooks: Webhooks) {
        if self.0.webhooks.set(webhooks).is_err() {
            tracing::warn!("webhooks already attached; ignoring a second set");
        }
    }

    /// One evaluation of every expected agent and every node: the state
    /// gauges, the node verdict series, and an event per change worth one
    /// (logged, and sent to the webhooks). Works on borrowed data under the
    /// cache's read lock: nothing per agent is copied.
    fn judge_all(&self, now: Instant) {
        let policy = &self.0.settings.policy;
        let in_grace = now.saturating_duration_since(self.0.started) <= policy.startup_grace;
        let kube = self.0.pods.is_kube();
        let events = self.0.cache.with_entries(|entries| {
            self.0
                .pods
                .with_expected_refs(entries.keys().map(String::as_str), |pods| {
                    let tally = Tally::new(pods, entries, kube, now, in_grace, policy);
                    self.0.metrics.agent_states(&tally.states, tally.healthy);
                    let mut round = self.0.nodes.round();
                    let mut events = Vec::new();
                    for (node, agents) in tally.nodes() {
                        // The reason is written only for a change.
                        let verdict = node_verdict(agents);
                        if let Some(old) = round.record(node, verdict) {
                            let judgement = NodeJudgement {
                                verdict,
                                reason: reason(verdict, agents),
                            };
                            let time = jiff::Timestamp::now();
                            events.push(nodes::event(node, old, judgement, agents, time));
                        }
                    }
                    round.finish();
                    events
                })
        });
        for event in events.into_iter().flatten() {
            tracing::info!(
                node = %event.node,
                old = event.old_verdict.map_or("none", |v| v.as_str()),
                new = event.new_verdict.as_str(),
                reason = %event.reason,
                "node verdict changed"
            );
            if let Some(webhooks) = self.0.webhooks.get() {
                webhooks.send(&event);
            }
        }
    }

    /// The v1 connectivity-check answer at `now`.
    pub fn check(&self, now: Instant) -> Result<CheckResponse, NotSynced> {
        self.verdict(now).map(|v| v.response())
    }

    /// One round of the background loop: publish states, report ages and
    /// missed windows.
    pub fn tick(&self, now: Instant) {
        let m = &self.0.metrics;
        self.expire(now);
        self.judge_all(now);
        for missed in self
            .0
            .cache
            .count_missed_windows(now, &self.0.settings.policy)
        {
            tracing::debug!(agent = %missed.agent, windows = missed.windows, "agent missed reporting windows");
            m.missed_windows(&missed.agent, missed.windows);
        }
        self.0.cache.with_entries(|entries| {
            for (name, e) in entries {
                let age = now.saturating_duration_since(e.received).as_secs_f64();
                m.report_age(&e.agent, name, age);
            }
        });
        let view = self.0.pods.health(now);
        if view.synced && view.stale {
            tracing::warn!(
                age_seconds = view.age_seconds.round(),
                "pod view is stale: the Kubernetes API has not answered; answering from the last known pods"
            );
        }
        self.publish_pod_view(now);
    }

    pub fn publish_pod_view(&self, now: Instant) {
        let h = self.0.pods.health(now);
        self.0.metrics.pod_view(h.synced && !h.stale, h.age_seconds);
    }

    /// Ready once the pod view has synced, until shutdown starts.
    pub fn is_ready(&self) -> bool {
        !self.0.shutting_down.load(Ordering::Acquire) && self.0.pods.health(Instant::now()).synced
    }

    pub fn start_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::Release);
    }
}

/// A pod name is a DNS subdomain (RFC 1123): at most 253 characters of
/// lowercase letters, digits, `-` and `.`, starting and ending alphanumeric.
pub fn validate_pod_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > 253 {
        return Err("must be at most 253 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err("must consist of lowercase letters, digits, '-' and '.'");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(name.as_bytes()[0]) || !alnum(name.as_bytes()[name.len() - 1]) {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_names() {
        for ok in [
            "a",
            "netchecker-agent-x7k2p",
            "netchecker-agent-hostnet-q8w3z",
            "a.b-1",
            &"a".repeat(253),
        ] {
            assert_eq!(validate_pod_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "A",
            "-a",
            "a-",
            "a_b",
            "a/b",
            "a b",
            ".a",
            "ä",
            &"a".repeat(254),
        ] {
            assert!(validate_pod_name(bad).is_err(), "{bad}");
        }
    }
}
