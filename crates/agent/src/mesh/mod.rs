//! The node-to-node mesh, the agent's side: answer peers' probes, probe the
//! peers the server names, carry the results in the next report.
//!
//! With `--mesh-port` the agent listens on that port ([`listener`]) and
//! answers `POST /mesh/probe` with as many zero bytes as the request
//! carried. Each report goes out with the `netchecker-mesh: 1` header and a
//! `mesh` field: the port, the addresses to announce and the results of the
//! previous round. The server answers with the round's peers
//! ([`netchecker_wire::mesh::MeshAnswer`]); the agent probes them
//! ([`prober`]), concurrently and each on a fresh connection, before the
//! next report is due, and keeps the results for it. An answer without
//! peers (an empty body: the original server, or ours with the mesh off)
//! only means no probes this round: nothing about the mesh ever fails a
//! round. The wire contract is `netchecker_wire::mesh`.

/// The probe endpoint and its bounds.
pub mod listener;
/// The rate-limited log line of rounds whose probes failed.
mod log;
/// Probing one peer, and a round's peers concurrently.
pub mod prober;
/// What the agent keeps between rounds.
mod state;

use std::sync::OnceLock;

use bytes::Bytes;
use netchecker_wire::mesh::MAX_PROBE_PADDING;

pub use listener::{Counts, Limits, Listener};
pub use prober::{CONCURRENCY, probe, probe_round};
pub use state::{Mesh, parse_round};

/// `n` zero bytes (at most [`MAX_PROBE_PADDING`]), sliced from one buffer
/// allocated once: neither a probe nor an answer allocates its padding.
pub fn zeros(n: usize) -> Bytes {
    static ZEROS: OnceLock<Bytes> = OnceLock::new();
    ZEROS
        .get_or_init(|| Bytes::from(vec![0u8; MAX_PROBE_PADDING]))
        .slice(..n.min(MAX_PROBE_PADDING))
}

#[cfg(test)]
mod tests;
