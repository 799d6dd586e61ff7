//! The node-to-node mesh on the wire.
//!
//! An agent that serves the mesh asks for peers with the request header
//! [`MESH_HEADER`] on its report POST and says in its report ([`MeshReport`])
//! on which port it answers probes and how its last probes went. The server
//! then answers the POST with a [`MeshAnswer`] body: the peers to probe
//! before the next report. Without the header the server answers as the
//! original did (200, empty body), and the original server ignores both the
//! header and the report's `mesh` field, so either side talks to the
//! original unchanged.
//!
//! A probe is one HTTP/1.1 exchange on a fresh connection to the peer's
//! [`MESH_PATH`]: the request body is the prober's padding, the answer body
//! the same number of zero bytes back (at most [`MAX_PROBE_PADDING`]), so a
//! path MTU blackhole breaks the transfer even though the TCP connect
//! succeeds.

use serde::{Deserialize, Serialize};

/// Request header of a report whose agent takes part in the mesh; its
/// value is the mesh protocol version.
pub const MESH_HEADER: &str = "netchecker-mesh";
/// The protocol version this crate speaks.
pub const MESH_VERSION: &str = "1";
/// Where an agent answers mesh probes.
pub const MESH_PATH: &str = "/mesh/probe";
/// Largest padding a probe may carry, either way.
pub const MAX_PROBE_PADDING: usize = 64 * 1024;
/// Most peers the server hands out per round: K nodes, each once per IP
/// family both nodes have (twice on a dual-stack mesh), plus pairs
/// re-probed.
pub const MAX_PEERS: usize = 128;
/// Most probe results a report may carry.
pub const MAX_RESULTS: usize = MAX_PEERS;

/// The mesh part of an agent's report (the `mesh` field; absent when the
/// agent does not serve the mesh).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshReport {
    /// Where the agent answers probes.
    pub port: u16,
    /// The addresses peers may reach it on, when the server cannot know
    /// them (without Kubernetes): from `MY_POD_IP`, `--mesh-address`, or
    /// the local address of the connection to the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// The round the results belong to (as the server numbered it).
    #[serde(default)]
    pub round: u64,
    /// One result per peer probed in that round.
    #[serde(default)]
    pub results: Vec<PeerResult>,
}

/// What one probe of one peer found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerResult {
    /// The peer's node, as the server named it.
    pub node: String,
    /// The address probed.
    pub address: String,
    /// How far the probe got.
    pub outcome: ProbeOutcome,
    /// TCP connect, in microseconds (0 when it did not connect).
    #[serde(default)]
    pub connect_us: u64,
    /// From the connect to the whole answer read, in microseconds (0 when
    /// it did not complete).
    #[serde(default)]
    pub transfer_us: u64,
    /// The whole probe, in microseconds.
    #[serde(default)]
    pub total_us: u64,
    /// Padding sent and expected back, in bytes.
    #[serde(default)]
    pub padding: u32,
    /// The first connection's SYN went unanswered within the race delay,
    /// so more were started beside it (a lost SYN or SYN-ACK); left out
    /// when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub raced: bool,
    /// Why it failed, in a few words (empty when it did not).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_false(b: &bool) -> bool {
    !*b
}

/// How far a probe got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// Connected, sent the padding, read the same back.
    #[default]
    Ok,
    /// The TCP connect failed (refused, unreachable, timed out).
    ConnectFailed,
    /// Connected, but the padded request and answer did not complete: what
    /// an MTU blackhole on the path looks like.
    TransferFailed,
    /// The peer answered, but not with the padding (another service on
    /// the port, an old agent).
    BadAnswer,
}

/// The server's answer to a report POST carrying [`MESH_HEADER`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshAnswer {
    pub mesh: MeshRound,
}

/// The peers to probe before the next report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshRound {
    /// The round these peers belong to; the agent reports it back with the
    /// results.
    pub round: u64,
    /// Longest one probe may take, in milliseconds.
    pub timeout_ms: u64,
    pub peers: Vec<Peer>,
}

/// One peer to probe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub node: String,
    pub address: String,
    pub port: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mesh_json_is_plain_and_round_trips() {
        let report = MeshReport {
            port: 8083,
            addresses: vec!["198.18.1.2".into()],
            round: 7,
            results: vec![PeerResult {
                node: "node-2".into(),
                address: "198.18.2.2".into(),
                outcome: ProbeOutcome::TransferFailed,
                connect_us: 310,
                transfer_us: 0,
                total_us: 2_000_000,
                padding: 1500,
                raced: false,
                error: "no answer within 2 s".into(),
            }],
        };
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(
            json,
            r#"{"port":8083,"addresses":["198.18.1.2"],"round":7,"results":[{"node":"node-2","address":"198.18.2.2","outcome":"transfer_failed","connect_us":310,"transfer_us":0,"total_us":2000000,"padding":1500,"error":"no answer within 2 s"}]}"#
        );
        assert_eq!(serde_json::from_str::<MeshReport>(&json).unwrap(), report);
        // A raced connect says so; a result without the key was not raced.
        let mut raced = report.clone();
        raced.results[0].raced = true;
        let json = serde_json::to_string(&raced).unwrap();
        assert!(json.contains(r#""padding":1500,"raced":true,"#), "{json}");
        assert_eq!(serde_json::from_str::<MeshReport>(&json).unwrap(), raced);
        let answer = MeshAnswer {
            mesh: MeshRound {
                round: 8,
                timeout_ms: 2000,
                peers: vec![Peer {
                    node: "node-3".into(),
                    address: "198.18.3.2".into(),
                    port: 8083,
                }],
            },
        };
        let json = serde_json::to_string(&answer).unwrap();
        assert_eq!(
            json,
            r#"{"mesh":{"round":8,"timeout_ms":2000,"peers":[{"node":"node-3","address":"198.18.3.2","port":8083}]}}"#
        );
        assert_eq!(serde_json::from_str::<MeshAnswer>(&json).unwrap(), answer);
        // Only the port is required of a report's mesh field.
        let min: MeshReport = serde_json::from_str(r#"{"port":1}"#).unwrap();
        assert_eq!((min.round, min.results.len()), (0, 0));
    }
}
