//! The background round, every `--check-interval`: drop expired reports,
//! evaluate once, and render that evaluation as the state gauges, the node
//! verdict series and the verdict-change events (logged by every replica;
//! sent to the webhooks, with the node conditions and Kubernetes Events,
//! by the leader only); then advance the missed-window counters and
//! report ages.

use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::app::{App, MeshView};
use crate::domain::AgentState;
use crate::evaluation::MeshPart;
use crate::mesh::judge::PairKind;
use crate::nodes;

/// Run a round every `every` until `shutdown`.
pub async fn run(app: App, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                // A round judges every agent and node (tens of milliseconds
                // with tens of thousands of agents): it runs on a blocking
                // thread, off the workers that serve reports and checks.
                let app = app.clone();
                let _ = tokio::task::spawn_blocking(move || app.tick(Instant::now())).await;
            }
            () = shutdown.cancelled() => break,
        }
    }
}

impl App {
    /// One round at `now`.
    pub fn tick(&self, now: Instant) {
        let inner = &self.0;
        let m = &inner.metrics;
        self.expire(now);
        self.judge_all(now);
        for missed in inner
            .cache
            .count_missed_windows(now, &inner.settings.policy)
        {
            tracing::debug!(agent = ?missed.agent, windows = missed.windows, "agent missed reporting windows");
            m.missed_windows(&missed.agent, missed.windows);
        }
        inner.cache.with_entries(|entries| {
            for (name, e) in entries {
                let age = now.saturating_duration_since(e.received).as_secs_f64();
                m.report_age(name, age);
            }
        });
        let view = inner.pods.health(now);
        if view.synced && view.stale {
            tracing::warn!(
                age_seconds = view.age_seconds.round(),
                "pod view is stale: the Kubernetes API has not answered; answering from the last known pods"
            );
        }
        self.publish_pod_view(now);
    }

    /// The mesh's gauges of a round (whose roster the next assignments
    /// and answers use); nodes that left lose their series.
    fn mesh_round(&self, mesh: &MeshPart<'_>) {
        let inner = &self.0;
        let roster = mesh.roster;
        let mut failing = [[0; PairKind::ALL.len()]; 2];
        for p in &mesh.judged.failing {
            failing[p.network.index()][p.kind as usize] += 1;
        }
        inner
            .metrics
            .mesh()
            .round(&failing, mesh.judged.members, |network, node| {
                roster.member(network, node).is_some()
            });
    }

    /// Drop the mesh pairs and agents that are no longer current.
    fn prune_mesh(&self) {
        let inner = &self.0;
        let unix = jiff::Timestamp::now().as_second();
        let kube = inner.pods.is_kube();
        // Decided before the mesh's locks are taken: never a cache or pod
        // lock under them.
        let gone: Vec<Box<str>> = inner
            .mesh
            .agent_names()
            .into_iter()
            .filter(|name| {
                if kube {
                    !inner.pods.is_watched(name)
                } else {
                    inner.cache.get_seen(name).is_none()
                }
            })
            .collect();
        inner.mesh.prune(unix, &gone);
    }

    /// Render one evaluation as the state gauges and node verdict series,
    /// and an event per change worth one. The reason is written only for a
    /// change; nothing per agent is copied.
    fn judge_all(&self, now: Instant) {
        let inner = &self.0;
        // Every replica judges and keeps its own series; only the leader
        // speaks (decided once per round; the writer checks again).
        let leader = inner.leadership.is_leader();
        let term = inner.leadership.term();
        let events = self.with_evaluation(now, MeshView::NewRound, |eval| {
            inner.metrics.agent_states(&eval.states, eval.healthy);
            self.note_unseen(eval.states[AgentState::Pending.index()]);
            if let Some(mesh) = &eval.mesh {
                self.mesh_round(mesh);
            }
            let mut round = inner.nodes.round();
            let mut events = Vec::new();
            for node in &eval.nodes {
                if let Some(old) = round.record(node.name, node.verdict) {
                    let time = jiff::Timestamp::now();
                    let (reason, agents) = (eval.reason(node), eval.agents_of(node));
                    events.push(nodes::event(
                        node.name,
                        old,
                        node.verdict,
                        reason,
                        agents,
                        time,
                    ));
                }
            }
            round.finish();
            if let (true, Some(writer)) = (leader, inner.node_writer.get()) {
                writer.sync(
                    term,
                    &eval.nodes,
                    |n| (n.name, n.verdict),
                    |n| eval.reason(n),
                );
            }
            events
        });
        if self.0.settings.mesh.enabled() {
            self.prune_mesh();
        }
        for event in events.into_iter().flatten() {
            tracing::info!(
                node = ?event.node,
                old = event.old_verdict.map_or("none", |v| v.as_str()),
                new = event.new_verdict.as_str(),
                reason = ?event.reason,
                "node verdict changed"
            );
            if !leader {
                inner.leadership.suppressed();
                continue;
            }
            if let Some(webhooks) = inner.webhooks.get() {
                webhooks.send(&event);
            }
            if let Some(writer) = inner.node_writer.get() {
                writer.event(&event);
            }
        }
    }
}
