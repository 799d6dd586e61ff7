//! What the server keeps of the mesh: each taking-part agent's port,
//! addresses and the peers it was last handed, the latest result of every
//! probed pair of nodes, and the roster of the current round.
//!
//! Bounded by what is assigned: a result is kept only for a peer the server
//! handed that very agent for that very round (at most [`MAX_PEERS`]), so an
//! agent can neither invent pairs nor speak for another node's; pairs not
//! probed lately are dropped by [`MeshStore::prune`].

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use netchecker_wire::IpFamily;
use netchecker_wire::mesh::{MAX_PEERS, MeshReport, MeshRound, Peer, PeerResult, ProbeOutcome};

use super::Network;
use super::roster::Roster;
use crate::limits::MAX_MESH_ERROR;

mod kept;

pub use kept::{NodeId, Pairs};

/// How the mesh runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshSettings {
    /// Peers each agent probes a round (`--mesh-peers`; 0 turns the mesh off).
    pub peers: usize,
    /// Length of a round (`--mesh-round`).
    pub round: Duration,
    /// A probe slower than this counts as a `slow` failure (`--mesh-slow`).
    pub slow: Duration,
    /// Longest one probe may take (`--mesh-timeout`).
    pub timeout: Duration,
}

impl Default for MeshSettings {
    fn default() -> Self {
        Self {
            peers: 0,
            round: Duration::from_secs(60),
            slow: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
        }
    }
}

impl MeshSettings {
    pub fn enabled(&self) -> bool {
        self.peers > 0
    }

    /// The round at wall-clock second `unix`.
    pub fn round_at(&self, unix: i64) -> u64 {
        let secs = self.round.as_secs().max(1);
        u64::try_from(unix).unwrap_or(0) / secs
    }

    /// How long a pair's last result counts: two rounds, or three of the
    /// prober's report intervals if those are longer (an agent probes once
    /// per report).
    pub fn fresh_for(&self, interval: Duration) -> Duration {
        (2 * self.round).max(3 * interval)
    }
}

/// How the last probe of a pair went, as the server judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairOutcome {
    Ok,
    /// The connect failed.
    Unreachable,
    /// Connected, but the padded exchange did not complete.
    Mtu,
    /// Answered, but not with the padding.
    BadAnswer,
    /// Completed, slower than the slow threshold.
    Slow,
}

impl PairOutcome {
    fn of(r: &PeerResult, slow: Duration) -> Self {
        match r.outcome {
            ProbeOutcome::Ok if r.total_us > slow.as_micros() as u64 => PairOutcome::Slow,
            ProbeOutcome::Ok => PairOutcome::Ok,
            ProbeOutcome::ConnectFailed => PairOutcome::Unreachable,
            ProbeOutcome::TransferFailed => PairOutcome::Mtu,
            ProbeOutcome::BadAnswer => PairOutcome::BadAnswer,
        }
    }

    pub fn failed(self) -> bool {
        self != PairOutcome::Ok
    }

    /// Whether the probe completed (and its round trip means something).
    pub fn completed(self) -> bool {
        matches!(self, PairOutcome::Ok | PairOutcome::Slow)
    }
}

/// The latest of one pair (from, to) on one network over one IP family
/// (a dual-stack pair is probed over each).
#[derive(Debug, Clone, PartialEq)]
pub struct PairState {
    pub family: IpFamily,
    pub outcome: PairOutcome,
    /// Failures in a row (0 after a success).
    pub failures: u32,
    /// When the current run of failures began.
    pub failing_since: Option<jiff::Timestamp>,
    /// The round the result was assigned in.
    pub round: u64,
    /// When the result arrived (wall clock, seconds), and until when it
    /// counts as recent.
    pub received: i64,
    pub fresh_until: i64,
    /// Round trip of the last completed probe, microseconds.
    pub rtt_us: u64,
    /// The agent's words for the last failure.
    pub error: Box<str>,
}

impl PairState {
    /// Whether the result still counts at wall-clock second `unix`.
    pub fn fresh(&self, unix: i64) -> bool {
        unix <= self.fresh_until
    }
}

/// The peers an agent was handed for a round: each node once per IP
/// family both it and the prober have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    pub round: u64,
    pub peers: Box<[(Box<str>, IpFamily)]>,
}

/// An agent that announced a mesh port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshAgent {
    pub node: Box<str>,
    pub network: Network,
    pub port: u16,
    /// Announced addresses (used without Kubernetes).
    pub addresses: Box<[Box<str>]>,
    /// What it was last handed.
    pub assigned: Option<Assigned>,
}

/// Everything kept of the mesh.
#[derive(Default)]
pub struct MeshStore {
    pairs: RwLock<Pairs>,
    agents: RwLock<HashMap<Box<str>, MeshAgent>>,
    roster: RwLock<Arc<Roster>>,
}

/// One result recorded, for the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub peer: Box<str>,
    pub failed: bool,
    /// Round trip in µs, when the probe completed.
    pub rtt_us: Option<u64>,
}

/// What one report said about the mesh, as received.
pub struct Received<'a> {
    /// The agent (pod) name.
    pub name: &'a str,
    pub node: &'a str,
    pub network: Network,
    pub report: &'a MeshReport,
    /// The agent's report interval.
    pub interval: Duration,
}

impl MeshStore {
    /// The roster of the current round.
    pub fn roster(&self) -> Arc<Roster> {
        self.roster
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set_roster(&self, roster: Arc<Roster>) {
        *self.roster.write().unwrap_or_else(PoisonError::into_inner) = roster;
    }

    /// Take in the mesh part of a report: remember where the agent answers
    /// probes, and keep each result for a peer it was handed for that
    /// round, over the family it was handed (the family of the result's
    /// address; others are dropped). Returns what was kept.
    pub fn record(
        &self,
        r: &Received<'_>,
        settings: &MeshSettings,
        now: jiff::Timestamp,
    ) -> Vec<Recorded> {
        let report = r.report;
        let assigned = {
            let mut agents = self.agents.write().unwrap_or_else(PoisonError::into_inner);
            let previous = agents.remove(r.name);
            // A new node or network (a replaced pod of the same name) starts
            // afresh: its old assignment is not this agent's.
            let assigned = previous
                .filter(|p| *p.node == *r.node && p.network == r.network)
                .and_then(|p| p.assigned);
            agents.insert(
                r.name.into(),
                MeshAgent {
                    node: r.node.into(),
                    network: r.network,
                    port: report.port,
                    addresses: report.addresses.iter().map(|a| a.as_str().into()).collect(),
                    assigned: None,
                },
            );
            assigned
        };
        let Some(assigned) = assigned.filter(|a| a.round == report.round) else {
            return Vec::new();
        };
        let unix = now.as_second();
        let fresh_until = unix.saturating_add(settings.fresh_for(r.interval).as_secs() as i64);
        let mut taken = vec![false; assigned.peers.len()];
        let mut recorded = Vec::new();
        let mut pairs = self.pairs.write().unwrap_or_else(PoisonError::into_inner);
        for result in &report.results {
            // Only a peer handed out for this round, over the family it was
            // handed, and once.
            let Ok(address) = result.address.parse() else {
                continue;
            };
            let family = IpFamily::of(address);
            let Some(i) = assigned
                .peers
                .iter()
                .position(|(p, f)| **p == *result.node && *f == family)
            else {
                continue;
            };
            if std::mem::replace(&mut taken[i], true) {
                continue;
            }
            let outcome = PairOutcome::of(result, settings.slow);
            let peer = &assigned.peers[i].0;
            let state = pairs.entry(r.network, r.node, peer, family, || PairState {
                family,
                outcome,
                failures: 0,
                failing_since: None,
                round: report.round,
                received: unix,
                fresh_until,
                rtt_us: 0,
                error: "".into(),
            });
            state.round = report.round;
            state.received = unix;
            state.fresh_until = fresh_until;
            state.outcome = outcome;
            if outcome.failed() {
                state.failures = state.failures.saturating_add(1);
                state.failing_since.get_or_insert(now);
                state.error = truncate(&result.error, MAX_MESH_ERROR).into();
            } else {
                state.failures = 0;
                state.failing_since = None;
                state.error = "".into();
            }
            let rtt_us = outcome.completed().then_some(result.total_us);
            if let Some(rtt) = rtt_us {
                state.rtt_us = rtt;
            }
            recorded.push(Recorded {
                peer: peer.clone(),
                failed: outcome.failed(),
                rtt_us,
            });
        }
        recorded
    }

    /// The peers agent `name` on `node` probes in `round`: its assignment on
    /// the roster, then the peers it failed to reach last time (re-probed
    /// every round until they recover), at most [`MAX_PEERS`]. A peer is
    /// handed once per IP family both nodes have on the network (first
    /// IPv4, then IPv6), so a dual-stack mesh probes each pair over each.
    /// Remembered, so the results it reports next can be checked against
    /// it.
    pub fn assign(
        &self,
        name: &str,
        node: &str,
        network: Network,
        round: u64,
        settings: &MeshSettings,
    ) -> MeshRound {
        let roster = self.roster();
        let me = roster.member(network, node);
        // The families both nodes answer on (all of the peer's when this
        // node is on no ring yet: it is handed nothing then anyway).
        let common = |peer: &str| -> Vec<IpFamily> {
            let Some(peer) = roster.member(network, peer) else {
                return Vec::new();
            };
            IpFamily::ALL
                .into_iter()
                .filter(|f| peer.address(*f).is_some())
                .filter(|f| me.is_none_or(|m| m.address(*f).is_some()))
                .collect()
        };
        let mut names: Vec<(Box<str>, IpFamily)> = roster
            .ring(network)
            .peers(node, round, settings.peers)
            .into_iter()
            .flat_map(|peer| common(peer).into_iter().map(move |f| (peer.into(), f)))
            .collect();
        if me.is_some() {
            let pairs = self.pairs.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(id) = pairs.id(node) {
                let mut failing: Vec<(&str, IpFamily)> = pairs
                    .targets(network, id)
                    .iter()
                    .filter(|(_, s)| s.failures > 0)
                    .map(|(to, s)| (pairs.name(*to), s.family))
                    .filter(|(to, f)| common(to).contains(f))
                    .collect();
                failing.sort_unstable();
                for (to, f) in failing {
                    if !names.iter().any(|(n, nf)| **n == *to && *nf == f) {
                        names.push((to.into(), f));
                    }
                }
            }
        }
        names.truncate(MAX_PEERS);
        let peers = names
            .iter()
            .filter_map(|(n, f)| {
                let m = roster.member(network, n)?;
                Some(Peer {
                    node: n.to_string(),
                    address: m.address(*f)?.to_string(),
                    port: m.port,
                })
            })
            .collect();
        if let Some(agent) = self
            .agents
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(name)
        {
            agent.assigned = Some(Assigned {
                round,
                peers: names.into_boxed_slice(),
            });
        }
        MeshRound {
            round,
            timeout_ms: settings.timeout.as_millis() as u64,
            peers,
        }
    }

    /// Forget agent `name` (its pod went): it no longer answers probes.
    pub fn forget_agent(&self, name: &str) {
        self.agents
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// Call `f` with every agent that announced a mesh port, by name.
    pub fn with_agents<R>(&self, f: impl FnOnce(&HashMap<Box<str>, MeshAgent>) -> R) -> R {
        f(&self.agents.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Call `f` with every pair kept.
    pub fn with_pairs<R>(&self, f: impl FnOnce(&Pairs) -> R) -> R {
        f(&self.pairs.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Drop what is no longer current at wall-clock second `unix`: pairs
    /// whose nodes left the roster or whose result is stale, and the
    /// agents `gone`.
    pub fn prune(&self, unix: i64, gone: &[Box<str>]) {
        let roster = self.roster();
        self.pairs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(
                |network, node| roster.member(network, node).is_some(),
                |s| s.fresh(unix),
            );
        let mut agents = self.agents.write().unwrap_or_else(PoisonError::into_inner);
        for name in gone {
            agents.remove(name);
        }
    }

    /// The names of the agents that announced a mesh port.
    pub fn agent_names(&self) -> Vec<Box<str>> {
        self.with_agents(|a| a.keys().cloned().collect())
    }

    /// Pairs kept (for the benchmarks and tests).
    pub fn pair_count(&self) -> usize {
        self.with_pairs(Pairs::len)
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
