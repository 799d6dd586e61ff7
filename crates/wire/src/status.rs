//! The `GET /api/v2/status` answer: every agent with what is known of it,
//! grouped by node with the node's verdict and reason, and a cluster
//! summary. The server renders it; clients and tests read it with these
//! same types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::judged::{AgentKind, AgentState, NodeVerdict, state_or_unexpected};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub generated_at: jiff::Timestamp,
    pub summary: Summary,
    /// Sorted by node name.
    pub nodes: Vec<NodeStatus>,
    /// The node-to-node mesh (absent from servers that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<MeshStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// No expected agent absent or outdated (pending ones do not count).
    pub healthy: bool,
    pub nodes: usize,
    /// Every agent listed, unexpected reporters included.
    pub agents: usize,
    /// Nodes per verdict name; every verdict is present.
    pub verdicts: BTreeMap<String, usize>,
    /// Agents per state name (and `unexpected`); every state is present.
    pub agent_states: BTreeMap<String, usize>,
    pub in_startup_grace: bool,
    pub pod_view: PodViewStatus,
    /// Agents whose last report did not prove its sender (a result other
    /// than `ok`; 0 when reports are not checked).
    #[serde(default)]
    pub unauthenticated: usize,
}

/// Where the expected agents come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PodViewSource {
    /// Watched agent pods.
    Kubernetes,
    /// Without Kubernetes: reporters plus `--expected-agents`.
    Static,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodViewStatus {
    pub source: PodViewSource,
    pub synced: bool,
    pub stale: bool,
    /// Seconds since the API last answered, while stale; else 0.
    pub age_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node: String,
    pub verdict: NodeVerdict,
    /// One line an operator can act on.
    pub reason: String,
    /// Sorted by name.
    pub agents: Vec<AgentStatus>,
    /// How its agents' reports got through over the last minutes, pooled
    /// (absent when none of them tells: agents before `report_attempts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathFigures>,
}

/// How reports got through to the server over a sliding window, from the
/// agents' `report_attempts` and their probes of the server.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PathFigures {
    /// The window the figures cover.
    pub window_seconds: u64,
    /// Reports that told how their previous report went.
    pub reports: u32,
    /// Requests those reports took (first attempts and retries).
    pub attempts: u32,
    /// Requests whose first connection was not answered within the
    /// agent's race delay (a lost SYN or SYN-ACK).
    pub unanswered: u32,
    /// Requests that failed (timed out, refused, broken, not 2xx).
    pub failed: u32,
    /// `unanswered / attempts`, to 3 decimals: the round trip's packet
    /// loss as a share of connection handshakes.
    pub loss_ratio: f64,
    /// The agents' HTTP probes of the server over the window: total time.
    pub probe_ms: Option<Spread>,
    /// The agents' mesh probes of their peers over the same window;
    /// absent when they made none that connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<MeshPathFigures>,
}

/// How the agents' mesh probes of their peers went over the window: a
/// figure, not a verdict (a handshake lost between two nodes may be
/// either's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeshPathFigures {
    /// Probes whose connect succeeded.
    pub probes: u32,
    /// Of those, the ones whose first SYN was not answered within the
    /// agent's race delay (a lost SYN or SYN-ACK).
    pub unanswered: u32,
    /// `unanswered / probes`, to 3 decimals.
    pub loss_ratio: f64,
    /// The padded request and answer of the probes that completed, in
    /// milliseconds (from the connect to the whole answer read).
    pub rtt_ms: Option<Spread>,
}

/// A spread of times in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub samples: u32,
    pub mean: f64,
    /// Standard deviation: the jitter.
    pub stddev: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub name: String,
    pub namespace: Option<String>,
    pub node: String,
    pub kind: AgentKind,
    /// The agent's state; `None` (`"unexpected"`) for a reporter that is
    /// not among the expected agents.
    #[serde(with = "state_or_unexpected")]
    pub state: Option<AgentState>,
    pub last_report_age_seconds: Option<f64>,
    pub report_interval_seconds: Option<u64>,
    pub clock_skew_seconds: Option<f64>,
    pub dns: Option<Dns>,
    pub probes: Vec<Probe>,
    /// Who sent its last report, as checked (`null` when not checked).
    #[serde(default)]
    pub auth: Option<AuthResult>,
    /// How its reports got through over the last minutes (absent for
    /// agents that do not tell: before `report_attempts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathFigures>,
    /// Age of its last report over each IP family, once reports came over
    /// both (absent for an agent seen over one family only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub families: Option<FamilyAges>,
}

/// Seconds since the last report over each IP family.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FamilyAges {
    pub ipv4: Option<f64>,
    pub ipv6: Option<f64>,
}

/// What the server learned of who sent an agent's last report, when it
/// checks (`--report-auth warn` or `enforce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthResult {
    /// A valid token (or shared secret) for this very agent.
    Ok,
    /// No token.
    Missing,
    /// A token that does not verify.
    Invalid,
    /// A valid token for another pod.
    Forbidden,
}

impl AuthResult {
    pub const ALL: [AuthResult; 4] = [
        AuthResult::Ok,
        AuthResult::Missing,
        AuthResult::Invalid,
        AuthResult::Forbidden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::Ok => "ok",
            AuthResult::Missing => "missing",
            AuthResult::Invalid => "invalid",
            AuthResult::Forbidden => "forbidden",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    /// False when a looked-up name resolved to nothing.
    pub ok: bool,
    pub lookups: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub url: String,
    /// Connected, and the answer was 2xx or 3xx.
    pub ok: bool,
    pub connection_result: i64,
    pub http_code: i64,
    pub total_ms: i64,
}

/// The node-to-node mesh: who probes whom, what fails, per node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshStatus {
    /// `--mesh-peers` is above 0.
    pub enabled: bool,
    /// K: the peers each node probes (and is probed by) per round.
    pub peers: usize,
    /// The current round number.
    pub round: u64,
    /// Length of a round (`--mesh-round`).
    pub round_seconds: u64,
    /// Per network: the nodes taking part, and how long until every ordered
    /// pair has been probed.
    pub networks: Vec<MeshNetworkStatus>,
    /// Confirmed failing pairs (failed twice in a row), sorted by network,
    /// from, to.
    pub failing_pairs: Vec<MeshFailingPair>,
    /// Every node with an agent, sorted by name.
    pub nodes: Vec<MeshNode>,
    /// The last results of every pair, while at most
    /// [`MeshMatrix::MAX_NODES`] nodes take part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<MeshMatrix>,
}

/// One of the two meshes: pod-network agents probe each other's pod IPs,
/// host-network agents each other's node IPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeshNetwork {
    Pod,
    Host,
}

impl MeshNetwork {
    pub const ALL: [MeshNetwork; 2] = [MeshNetwork::Pod, MeshNetwork::Host];

    /// The name in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            MeshNetwork::Pod => "pod",
            MeshNetwork::Host => "host",
        }
    }

    /// Position in [`MeshNetwork::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The mesh an agent of `kind` takes part in (none for an agent whose
    /// network is not known).
    pub fn of(kind: AgentKind) -> Option<MeshNetwork> {
        match kind {
            AgentKind::PodNetwork => Some(MeshNetwork::Pod),
            AgentKind::HostNetwork => Some(MeshNetwork::Host),
            AgentKind::Unknown => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshNetworkStatus {
    pub network: MeshNetwork,
    /// Nodes taking part this round.
    pub members: usize,
    /// Rounds within which every ordered pair is probed at least once
    /// (`null` when fewer than two nodes take part, or with K = 1 on more
    /// than two nodes).
    pub cover_rounds: Option<u64>,
    /// The same in seconds.
    pub cover_seconds: Option<u64>,
}

/// What a failing pair shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairKind {
    /// The probe could not connect (or got no valid answer).
    Unreachable,
    /// Connected, but the padded exchange did not complete.
    Mtu,
    /// Completed, slower than `--mesh-slow`.
    Slow,
}

impl PairKind {
    pub const ALL: [PairKind; 3] = [PairKind::Unreachable, PairKind::Mtu, PairKind::Slow];

    pub fn as_str(self) -> &'static str {
        match self {
            PairKind::Unreachable => "unreachable",
            PairKind::Mtu => "mtu",
            PairKind::Slow => "slow",
        }
    }
}

/// A confirmed failing pair: `from`'s agent cannot probe `to`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshFailingPair {
    pub from: String,
    pub to: String,
    pub network: MeshNetwork,
    /// The IP family probed (a dual-stack pair is probed over each, and
    /// fails over one or both); absent from servers before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<crate::IpFamily>,
    pub kind: PairKind,
    /// When its current run of failures began.
    pub since: Option<jiff::Timestamp>,
    /// Failed probes in a row.
    pub failures: u32,
    /// One line an operator can act on.
    pub reason: String,
    /// The prober's words for the last failure.
    pub error: String,
}

/// A node's mesh verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeshVerdict {
    /// Every pair it took part in answered (or is not confirmed failing).
    Ok,
    /// It fails to reach most of the peers it probes.
    OutboundDown,
    /// Most of the peers probing it fail to reach it.
    InboundDown,
    /// Probes between it and some peers fail both ways or one way, while
    /// both reach the server.
    Partition,
    /// Padded transfers with some peers fail while the connect succeeds.
    Mtu,
    /// Probes with some peers complete, slowly.
    Slow,
    /// None of its agents takes part in the mesh.
    NoMesh,
}

impl MeshVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            MeshVerdict::Ok => "ok",
            MeshVerdict::OutboundDown => "outbound_down",
            MeshVerdict::InboundDown => "inbound_down",
            MeshVerdict::Partition => "partition",
            MeshVerdict::Mtu => "mtu",
            MeshVerdict::Slow => "slow",
            MeshVerdict::NoMesh => "no_mesh",
        }
    }
}

/// One node on the mesh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshNode {
    pub node: String,
    pub verdict: MeshVerdict,
    /// Pod network first, then host network.
    pub networks: Vec<MeshNodeNetwork>,
}

/// Whether a node's agent of one network takes part this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Membership {
    /// It probes and is probed.
    Member,
    /// No agent of that network on the node serves the mesh (the
    /// original's agent, or `--mesh-port 0`).
    NoMesh,
    /// Left out this round; `left_out` says why.
    LeftOut,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshNodeNetwork {
    pub network: MeshNetwork,
    pub membership: Membership,
    /// Why a node is left out: `not_reporting`, `terminating`,
    /// `node_not_ready`, `node_cordoned`, `node_deleting`, `node_gone`,
    /// `no_address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_out: Option<String>,
    /// Peers it probed lately, and of those the pairs confirmed failing.
    pub probed: usize,
    pub failed: usize,
    /// Peers that probed it lately, and of those the pairs confirmed failing.
    pub probed_by: usize,
    pub failed_by: usize,
}

/// The last result of every pair, as rows of one character per cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshMatrix {
    /// Row and column order: every member of either network, sorted.
    pub nodes: Vec<String>,
    /// Pod network: `nodes.len()` rows (from) of `nodes.len()` characters
    /// (to). `.` not probed lately, `o` ok, `u` unreachable, `m` MTU,
    /// `s` slow, `x` failing once (not confirmed), `-` itself.
    pub pod: Vec<String>,
    /// Host network, the same way.
    pub host: Vec<String>,
}

impl MeshMatrix {
    /// Largest mesh shown as a matrix; larger ones list failing pairs only.
    pub const MAX_NODES: usize = 300;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer as the server writes it.
    const ANSWER: &str = r#"{"generated_at":"2026-11-21T10:00:00Z","summary":{"healthy":false,"nodes":1,"agents":3,"verdicts":{"agents_late":0,"dns_failure":0,"healthy":0,"host_network_down":0,"mesh_inbound_down":0,"mesh_mtu":0,"mesh_outbound_down":0,"mesh_partition":0,"mesh_slow":0,"pending":0,"pod_network_down":1,"probe_failures":0,"unknown":0,"unreachable":0},"agent_states":{"absent":0,"ok":1,"outdated":1,"pending":0,"unexpected":1},"in_startup_grace":false,"pod_view":{"source":"kubernetes","synced":true,"stale":false,"age_seconds":0.0},"unauthenticated":1},"nodes":[{"node":"node-1","verdict":"pod_network_down","reason":"host-network agent reports on time but pod-network agent a is outdated (last report 47 s ago, interval 15 s): check the pod network (CNI) on this node","agents":[{"name":"a","namespace":"nc","node":"node-1","kind":"pod_network","state":"outdated","last_report_age_seconds":47.25,"report_interval_seconds":15,"clock_skew_seconds":-0.5,"dns":{"ok":true,"lookups":{"netchecker-service":["10.233.0.10"]}},"probes":[{"url":"http://s/ping","ok":true,"connection_result":1,"http_code":200,"total_ms":3}],"auth":"ok"},{"name":"b-hostnet","namespace":"nc","node":"node-1","kind":"host_network","state":"ok","last_report_age_seconds":1.0,"report_interval_seconds":15,"clock_skew_seconds":0.0,"dns":null,"probes":[],"auth":"missing"},{"name":"stray","namespace":null,"node":"node-1","kind":"unknown","state":"unexpected","last_report_age_seconds":null,"report_interval_seconds":null,"clock_skew_seconds":null,"dns":null,"probes":[],"auth":null}]}],"mesh":{"enabled":true,"peers":8,"round":29653920,"round_seconds":60,"networks":[{"network":"pod","members":2,"cover_rounds":1,"cover_seconds":60},{"network":"host","members":0,"cover_rounds":null,"cover_seconds":null}],"failing_pairs":[{"from":"node-1","to":"node-2","network":"pod","kind":"mtu","since":"2026-11-21T09:58:00Z","failures":3,"reason":"padded transfers fail","error":"no answer within 2 s"}],"nodes":[{"node":"node-1","verdict":"mtu","networks":[{"network":"pod","membership":"member","probed":1,"failed":1,"probed_by":1,"failed_by":0},{"network":"host","membership":"left_out","left_out":"node_cordoned","probed":0,"failed":0,"probed_by":0,"failed_by":0}]}],"matrix":{"nodes":["node-1","node-2"],"pod":["-m","o-"],"host":["-.",".-"]}}}"#;

    #[test]
    fn an_answer_round_trips_byte_for_byte() {
        let status: Status = serde_json::from_str(ANSWER).unwrap();
        assert_eq!(status.nodes[0].verdict, NodeVerdict::PodNetworkDown);
        assert_eq!(status.nodes[0].agents[0].state, Some(AgentState::Outdated));
        assert_eq!(status.nodes[0].agents[2].state, None);
        assert_eq!(status.summary.pod_view.source, PodViewSource::Kubernetes);
        assert_eq!(status.nodes[0].agents[1].auth, Some(AuthResult::Missing));
        assert_eq!(status.summary.unauthenticated, 1);
        let mesh = status.mesh.as_ref().unwrap();
        assert_eq!(mesh.failing_pairs[0].kind, PairKind::Mtu);
        assert_eq!(mesh.nodes[0].networks[1].membership, Membership::LeftOut);
        assert_eq!(serde_json::to_string(&status).unwrap(), ANSWER);
        // An answer from a server without the mesh still reads.
        let cut = ANSWER.find(r#","mesh":"#).unwrap();
        let old: Status = serde_json::from_str(&format!("{}}}", &ANSWER[..cut])).unwrap();
        assert!(old.mesh.is_none());
    }
}
