//! What the agent keeps between rounds: the results for the next report,
//! the local address to announce, the counts and the log state.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use netchecker_wire::mesh::{
    MAX_PROBE_PADDING, MAX_RESULTS, MeshAnswer, MeshReport, MeshRound, PeerResult, ProbeOutcome,
};
use tokio::time::Instant;

use super::log::FailureLog;
use super::prober::probe_round;
use crate::config::MeshConfig;

/// The mesh as one agent takes part in it.
#[derive(Debug)]
pub struct Mesh {
    port: u16,
    /// Configured addresses to announce (`--mesh-address`, `MY_POD_IP`).
    announced: Vec<String>,
    /// Zeros per probe: the report's padding, capped.
    padding: usize,
    /// Limit of a probe when the server gives none.
    fallback_timeout: Duration,
    state: Mutex<State>,
    probes: AtomicU64,
    failed: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// This end of the last connection to the server: announced when no
    /// address is configured.
    local: Option<String>,
    /// The last round's number and results, for the next report only.
    pending: Option<(u64, Vec<PeerResult>)>,
    /// Whether the last answer named peers (`None` before the first).
    peers_given: Option<bool>,
    log: FailureLog,
}

impl Mesh {
    /// The mesh of an agent whose reports carry `padding` zeros and whose
    /// probes take at most `fallback_timeout` when the server names no limit.
    pub fn new(config: &MeshConfig, padding: usize, fallback_timeout: Duration) -> Self {
        Self {
            port: config.port,
            announced: config.addresses.iter().map(ToString::to_string).collect(),
            padding: padding.min(MAX_PROBE_PADDING),
            fallback_timeout,
            state: Mutex::default(),
            probes: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Zeros each probe carries: the report's padding, capped.
    pub fn padding(&self) -> usize {
        self.padding
    }

    /// Probes sent so far.
    pub fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    /// Probes whose outcome was not `ok`.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The `mesh` field of the next report: the last round's results, taken
    /// (a report that does not get through loses them: the next one carries
    /// the round after); round 0 and none before the first round.
    pub fn report(&self) -> MeshReport {
        let mut state = self.state();
        let (round, results) = state.pending.take().unwrap_or_default();
        let addresses = if self.announced.is_empty() {
            state.local.iter().cloned().collect()
        } else {
            self.announced.clone()
        };
        MeshReport {
            port: self.port,
            addresses,
            round,
            results,
        }
    }

    /// This end of a connection to the server, announced from the next
    /// report on when no address is configured.
    pub fn connected_from(&self, local: SocketAddr) {
        let ip = local.ip().to_canonical().to_string();
        let mut state = self.state();
        if state.local.as_deref() != Some(ip.as_str()) {
            state.local = Some(ip);
        }
    }

    /// The round in the server's answer to a report, if the answer is one:
    /// an empty body or anything but a [`MeshAnswer`] means no peers this
    /// round (an older server, or one with the mesh off), logged once.
    pub fn round_of(&self, answer: &[u8]) -> Option<MeshRound> {
        let round = parse_round(answer);
        self.peers_given(round.is_some());
        round
    }

    /// Whether the answer taken this round named peers; a change is logged.
    pub fn peers_given(&self, given: bool) {
        let before = self.state().peers_given.replace(given);
        if before != Some(given) {
            if given {
                tracing::info!("the server hands out mesh peers");
            } else {
                tracing::info!(
                    "the server hands out no mesh peers (an older server, or the mesh off \
                     there): reporting as usual, asking again with every report"
                );
            }
        }
    }

    /// Probe the round's peers, ending by `deadline`; keep the results for
    /// the next report, count them, and log the failures.
    pub async fn probe(&self, round: MeshRound, deadline: Instant) {
        let mut results = probe_round(&round, self.padding, self.fallback_timeout, deadline).await;
        results.truncate(MAX_RESULTS);
        let failed = results
            .iter()
            .filter(|r| r.outcome != ProbeOutcome::Ok)
            .count();
        self.probes
            .fetch_add(results.len() as u64, Ordering::Relaxed);
        self.failed.fetch_add(failed as u64, Ordering::Relaxed);
        for r in &results {
            tracing::debug!(
                round = round.round,
                node = %r.node,
                address = %r.address,
                outcome = super::log::outcome_name(r.outcome),
                connect_us = r.connect_us,
                total_us = r.total_us,
                error = %r.error,
                "mesh probe"
            );
        }
        let mut state = self.state();
        state.log.round(Instant::now(), round.round, &results);
        state.pending = Some((round.round, results));
    }
}

/// The round in an answer to a report, if it is one (no state, no log but
/// at debug level).
pub fn parse_round(answer: &[u8]) -> Option<MeshRound> {
    if answer.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match serde_json::from_slice::<MeshAnswer>(answer) {
        Ok(answer) => Some(answer.mesh),
        Err(e) => {
            tracing::debug!("the server's answer is no mesh round: {e}");
            None
        }
    }
}
