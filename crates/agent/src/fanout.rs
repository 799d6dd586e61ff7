//! One report to every server at once.
//!
//! The places of a round ([`crate::targets`]) each get the same body (the
//! padding included, `report_attempts` apart: each place's tells how the
//! previous report to that place went) in a request of their own, on their
//! own connection (raced when its SYN goes unanswered), with their own
//! report timeout and their own prompt retries ([`crate::retry`]), all
//! concurrently: a server that does not answer costs its own timeout and
//! never delays the others. Every attempt is counted by place
//! ([`crate::attempts`]). The round succeeds
//! when at least one place took the report; the places that did not are
//! named in one warning per round and counted per place.
//!
//! With the mesh on, the peers to probe are taken from one answer: the
//! first place in the round's order (sorted addresses, or the endpoints as
//! given) that took the report with a round in its answer, once every
//! place before it has answered or failed, so that every round follows the
//! same replica while all are up, and no slower place holds it up longer
//! than the report timeout (as a slow single server would). The mesh
//! results go to every place with the next report.
//!
//! With one endpoint and without `--report-to-all-addresses` there is one
//! place, the endpoint's name, and the round is what it always was.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use netchecker_wire::mesh::MeshRound;
use netchecker_wire::{AgentReport, AttemptCounts, HostDate};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::attempts::field;
use crate::mesh::parse_round;
use crate::report::MESH_MARGIN;
use crate::targets::{MAX_TARGETS, pick};
use crate::{Agent, Error, Phase, Result};

/// One place a report goes this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    /// The endpoint's `host:port` as given, or the address reported to:
    /// how logs and counts name the place.
    pub name: String,
    /// Index of its endpoint among the agent's report targets.
    pub endpoint: usize,
    /// The address to connect to; `None`: the endpoint's name, resolved
    /// when connecting, as ever.
    pub addr: Option<SocketAddr>,
}

/// A round's places in order, and the endpoints whose name did not resolve.
#[derive(Debug, Default)]
pub(crate) struct Places {
    pub list: Vec<Place>,
    pub unresolved: Vec<(String, Error)>,
}

/// How far one place's sending has come.
#[derive(Debug, Clone)]
enum Slot {
    /// The first attempt is under way.
    Pending,
    /// The first attempt failed; retries may follow.
    Failed,
    /// The report was taken; with the mesh on, the round in the answer.
    Taken(Option<MeshRound>),
}

/// What the concurrent sends share (never held across an await).
struct Shared {
    slots: Vec<Slot>,
    /// This end of each place's last connection.
    locals: Vec<Option<SocketAddr>>,
    finished: usize,
}

/// The answer the mesh goes by this round.
enum Choice {
    Round(MeshRound),
    /// Taken, but no answer named peers.
    NoRound,
    /// No place took the report.
    NotTaken,
}

impl Shared {
    /// The answer to take, once it can be told; `None`: wait.
    fn choice(&self) -> Option<Choice> {
        for slot in &self.slots {
            match slot {
                Slot::Pending => return None,
                Slot::Taken(Some(round)) => return Some(Choice::Round(round.clone())),
                Slot::Taken(None) | Slot::Failed => {}
            }
        }
        if self.finished < self.slots.len() {
            return None;
        }
        let taken = self.slots.iter().any(|s| matches!(s, Slot::Taken(_)));
        Some(if taken {
            Choice::NoRound
        } else {
            Choice::NotTaken
        })
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Agent {
    /// This round's places: each endpoint's name, or with
    /// `--report-to-all-addresses` every address the names resolve to
    /// (each lookup bounded by the probe timeout), deduplicated, sorted and
    /// at most [`MAX_TARGETS`]; the rest are logged as ignored.
    pub(crate) async fn places(&self) -> Places {
        let endpoints = &self.config.server_endpoints;
        if !self.config.report_to_all_addresses {
            let list = (endpoints.iter().enumerate())
                .map(|(endpoint, name)| Place {
                    name: name.clone(),
                    endpoint,
                    addr: None,
                })
                .collect();
            return Places {
                list,
                unresolved: Vec::new(),
            };
        }
        let limit = self.config.probe_timeout;
        let lookups = futures::future::join_all(self.report_targets.iter().map(|t| {
            let lookup = (self.resolver)(t.host.clone(), t.port);
            tokio::time::timeout(limit, lookup)
        }))
        .await;
        let mut resolved = Vec::new();
        let mut unresolved = Vec::new();
        for (endpoint, lookup) in lookups.into_iter().enumerate() {
            let host = &self.report_targets[endpoint].host;
            match lookup {
                Ok(Ok(addrs)) if !addrs.is_empty() => {
                    resolved.extend(addrs.into_iter().map(|a| (endpoint, a)));
                }
                Ok(Ok(_)) => {
                    let error = Error::NoAddresses { host: host.clone() };
                    unresolved.push((endpoints[endpoint].clone(), error));
                }
                Ok(Err(error)) => unresolved.push((endpoints[endpoint].clone(), error)),
                Err(_) => {
                    let error = Error::Timeout {
                        phase: Phase::Dns,
                        after: limit,
                    };
                    unresolved.push((endpoints[endpoint].clone(), error));
                }
            }
        }
        let (picked, ignored) = pick(resolved);
        if !ignored.is_empty() {
            tracing::warn!(
                kept = MAX_TARGETS,
                ignored = ignored.len(),
                "the server names resolve to more than {MAX_TARGETS} addresses; reporting to \
                 the lowest {MAX_TARGETS} only, ignoring {}",
                joined(ignored.iter())
            );
        }
        let list = picked
            .into_iter()
            .map(|(endpoint, addr)| Place {
                name: addr.to_string(),
                endpoint,
                addr: Some(addr),
            })
            .collect();
        Places { list, unresolved }
    }

    /// Send `report` to every place at once, each retried on its own until
    /// `due`; with the mesh on, probe the peers of one answer meanwhile.
    /// Fails only when no place took the report.
    pub(crate) async fn deliver(
        &self,
        report: &AgentReport,
        places: Places,
        due: Instant,
    ) -> Result<()> {
        let Places { list, unresolved } = places;
        let previous = self.ledger.new_round();
        let mut failed = Vec::new();
        let mut taken = 0;
        if !list.is_empty() {
            let shared = Mutex::new(Shared {
                slots: vec![Slot::Pending; list.len()],
                locals: vec![None; list.len()],
                finished: 0,
            });
            let changed = Notify::new();
            let sends = futures::future::join_all(list.iter().enumerate().map(|(i, place)| {
                let previous = previous.get(&place.name).copied();
                self.send_one(i, place, report, previous, due, &shared, &changed)
            }));
            let mesh = self.mesh_of_round(&shared, &changed, due);
            let (outcomes, ()) = tokio::join!(sends, mesh);
            if let Some(mesh) = &self.mesh
                && let Some(local) = lock(&shared).locals.iter().flatten().next()
            {
                mesh.connected_from(*local);
            }
            for (place, outcome) in list.iter().zip(outcomes) {
                self.tally.record(&place.name, outcome.is_ok());
                match outcome {
                    Ok(()) => taken += 1,
                    Err(e) => failed.push((place.name.clone(), e)),
                }
            }
            let round = self.ledger.round_sum();
            tracing::debug!(
                attempts = round.attempts,
                connects = round.connects,
                raced = round.raced,
                race_won = round.race_won,
                failed = round.failed,
                taken_after_retry = round.taken_after_retry,
                "report attempts of the round"
            );
        }
        for (name, error) in unresolved {
            self.tally.record(&name, false);
            failed.push((name, error));
        }
        if taken == 0 {
            return Err(match failed.len() {
                1 => failed.pop().expect("one failure").1,
                _ => Error::NotTaken(joined(failed.iter().map(|(n, e)| format!("{n}: {e}")))),
            });
        }
        if !failed.is_empty() {
            tracing::warn!(
                taken,
                failed = failed.len(),
                "report not taken by every server: {}",
                joined(failed.iter().map(|(n, e)| format!("{n}: {e}")))
            );
        }
        Ok(())
    }

    /// Send the report to one place, and again while it answers that it
    /// does not watch this pod yet or an attempt runs out of time; every
    /// attempt is counted, and its outcome goes to `shared` for the mesh.
    /// `previous`: how the last round's report to this place went.
    #[allow(clippy::too_many_arguments)]
    async fn send_one(
        &self,
        i: usize,
        place: &Place,
        report: &AgentReport,
        previous: Option<AttemptCounts>,
        due: Instant,
        shared: &Mutex<Shared>,
        changed: &Notify,
    ) -> Result<()> {
        let target = &self.report_targets[place.endpoint];
        let mut n = 0u32;
        let attempt = |limit| {
            n += 1;
            let attempt = n;
            let attempts = field(attempt, previous);
            let body = if attempt == 1 {
                self.encode_with(report, attempts.as_ref())
            } else {
                // The same report, but `hostdate` is the time of sending:
                // the server reports the difference to its clock as skew.
                let mut again = report.clone();
                again.hostdate = HostDate::from_timestamp(jiff::Timestamp::now());
                self.encode_with(&again, attempts.as_ref())
            };
            async move {
                let (outcome, local) = match body {
                    Ok(body) => {
                        let sent = self.send_to(target, place.addr, body, limit).await;
                        let taken = sent.outcome.is_ok();
                        self.ledger
                            .record(&place.name, attempt, &sent.connects, taken);
                        (sent.outcome, sent.local)
                    }
                    Err(e) => (Err(e), None),
                };
                let mut s = lock(shared);
                if local.is_some() {
                    s.locals[i] = local;
                }
                match &outcome {
                    Ok(answer) => {
                        let round = self.mesh.as_ref().and_then(|_| parse_round(answer));
                        s.slots[i] = Slot::Taken(round);
                    }
                    Err(_) if matches!(s.slots[i], Slot::Pending) => s.slots[i] = Slot::Failed,
                    Err(_) => {}
                }
                drop(s);
                changed.notify_waiters();
                outcome.map(drop)
            }
        };
        let outcome = self
            .retries
            .run(due, self.config.report_timeout, attempt)
            .await;
        lock(shared).finished += 1;
        changed.notify_waiters();
        outcome
    }

    /// With the mesh on: wait for the answer to go by, then probe its peers
    /// until shortly before `due`.
    async fn mesh_of_round(&self, shared: &Mutex<Shared>, changed: &Notify, due: Instant) {
        let Some(mesh) = &self.mesh else { return };
        let choice = loop {
            let notified = changed.notified();
            if let Some(choice) = lock(shared).choice() {
                break choice;
            }
            notified.await;
        };
        match choice {
            Choice::Round(round) => {
                mesh.peers_given(true);
                mesh.probe(round, due - MESH_MARGIN).await;
            }
            Choice::NoRound => mesh.peers_given(false),
            Choice::NotTaken => {}
        }
    }
}

/// Items joined with `; `.
fn joined<T: ToString>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join("; ")
}
