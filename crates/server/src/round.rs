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
use crate::evaluation::{MeshPart, path_of};
use crate::mesh::judge::PairKind;
use crate::nodes;
use crate::webhook::Receipt;

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
    /// a log line per change, and, on the leader, the events announced
    /// against its record of open incidents. The reason is written only
    /// for a change; nothing per agent is copied.
    fn judge_all(&self, now: Instant) {
        let inner = &self.0;
        // Every replica judges and keeps its own series; only the leader
        // speaks (decided once per round; the writer checks again). From
        // shutdown on nobody announces: the record stays as it was left.
        let announcing = inner
            .announcing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let silent = self.is_shutting_down();
        let leader = inner.leadership.is_leader() && !silent;
        let term = inner.leadership.term();
        let judged = self.with_evaluation(now, MeshView::NewRound, |eval| {
            inner.metrics.agent_states(&eval.states, eval.healthy);
            self.note_unseen(eval.states[AgentState::Pending.index()]);
            if let Some(mesh) = &eval.mesh {
                self.mesh_round(mesh);
            }
            let mut round = inner.nodes.round();
            let mut changed = Vec::new();
            for node in &eval.nodes {
                if let Some(old) = round.record(node.name, node.verdict) {
                    changed.push((node.name.to_owned(), old, node.verdict, eval.reason(node)));
                }
                let path = path_of(eval.agents_of(node), eval.minute);
                if path.reports > 0 || path.attempts > 0 {
                    round.record_path(node.name, path.figures().as_ref());
                }
            }
            round.finish();
            let announced = if leader {
                inner.incidents.with_ledger(term, |ledger| {
                    let mut a = ledger.begin();
                    let mut events = Vec::new();
                    for node in &eval.nodes {
                        if let Some(change) = a.record(node.name, node.verdict) {
                            let mut event = nodes::event(
                                node.name,
                                change.old,
                                node.verdict,
                                eval.reason(node),
                                eval.agents_of(node),
                                jiff::Timestamp::now(),
                            );
                            event.id = Some(change.id);
                            event.incident = change.incident;
                            events.push(event);
                        }
                    }
                    let changed = a.finish() || !events.is_empty();
                    for event in &events {
                        ledger.queue(event.clone());
                    }
                    (events, changed)
                })
            } else {
                if !silent {
                    inner.incidents.follow();
                }
                None
            };
            if let (true, Some(writer)) = (leader, inner.node_writer.get()) {
                writer.sync(
                    term,
                    &eval.nodes,
                    |n| (n.name, n.verdict),
                    |n| eval.reason(n),
                );
            }
            (changed, announced)
        });
        if self.0.settings.mesh.enabled() {
            self.prune_mesh();
        }
        let Some((changed, announced)) = judged else {
            return;
        };
        for (node, old, new, reason) in changed {
            tracing::info!(
                node = ?node,
                old = old.map_or("none", |v| v.as_str()),
                new = new.as_str(),
                reason = ?reason,
                "node verdict changed"
            );
            if !leader && !silent {
                inner.leadership.suppressed();
            }
        }
        if !leader {
            return;
        }
        for event in announced.iter().flatten() {
            tracing::info!(
                node = ?event.node,
                id = event.id.as_deref().unwrap_or(""),
                incident = event.incident.as_deref().unwrap_or(""),
                "node verdict change announced"
            );
            if let Some(writer) = inner.node_writer.get() {
                writer.event(event);
            }
        }
        // The new events and any inherited from the previous leader.
        let webhooks = inner.webhooks.get();
        inner.incidents.deliver(term, |event| {
            webhooks.map_or_else(Receipt::done, |w| w.send(event))
        });
        drop(announcing);
    }
}
