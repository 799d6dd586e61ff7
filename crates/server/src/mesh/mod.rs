//! The node-to-node mesh: which nodes take part ([`roster`]), which agent
//! probes which ([`assign`]), what the server keeps of the results
//! ([`pairs`]), and what they say about the nodes ([`judge`], folded into
//! the one evaluation).
//!
//! `assign`, `roster` and `judge` are pure; `pairs` is the state.

pub mod assign;
pub mod judge;
pub mod pairs;
pub mod roster;

/// The network a pair of agents was probed on: pod-network agents probe
/// each other's pod IPs, host-network agents each other's node IPs.
pub use netchecker_wire::MeshNetwork as Network;
