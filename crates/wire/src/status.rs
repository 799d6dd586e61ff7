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

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer as the server writes it.
    const ANSWER: &str = r#"{"generated_at":"2026-11-21T10:00:00Z","summary":{"healthy":false,"nodes":1,"agents":3,"verdicts":{"agents_late":0,"dns_failure":0,"healthy":0,"host_network_down":0,"pending":0,"pod_network_down":1,"probe_failures":0,"unknown":0,"unreachable":0},"agent_states":{"absent":0,"ok":1,"outdated":1,"pending":0,"unexpected":1},"in_startup_grace":false,"pod_view":{"source":"kubernetes","synced":true,"stale":false,"age_seconds":0.0},"unauthenticated":1},"nodes":[{"node":"node-1","verdict":"pod_network_down","reason":"host-network agent reports on time but pod-network agent a is outdated (last report 47 s ago, interval 15 s): check the pod network (CNI) on this node","agents":[{"name":"a","namespace":"nc","node":"node-1","kind":"pod_network","state":"outdated","last_report_age_seconds":47.25,"report_interval_seconds":15,"clock_skew_seconds":-0.5,"dns":{"ok":true,"lookups":{"netchecker-service":["10.233.0.10"]}},"probes":[{"url":"http://s/ping","ok":true,"connection_result":1,"http_code":200,"total_ms":3}],"auth":"ok"},{"name":"b-hostnet","namespace":"nc","node":"node-1","kind":"host_network","state":"ok","last_report_age_seconds":1.0,"report_interval_seconds":15,"clock_skew_seconds":0.0,"dns":null,"probes":[],"auth":"missing"},{"name":"stray","namespace":null,"node":"node-1","kind":"unknown","state":"unexpected","last_report_age_seconds":null,"report_interval_seconds":null,"clock_skew_seconds":null,"dns":null,"probes":[],"auth":null}]}]}"#;

    #[test]
    fn an_answer_round_trips_byte_for_byte() {
        let status: Status = serde_json::from_str(ANSWER).unwrap();
        assert_eq!(status.nodes[0].verdict, NodeVerdict::PodNetworkDown);
        assert_eq!(status.nodes[0].agents[0].state, Some(AgentState::Outdated));
        assert_eq!(status.nodes[0].agents[2].state, None);
        assert_eq!(status.summary.pod_view.source, PodViewSource::Kubernetes);
        assert_eq!(status.nodes[0].agents[1].auth, Some(AuthResult::Missing));
        assert_eq!(status.summary.unauthenticated, 1);
        assert_eq!(serde_json::to_string(&status).unwrap(), ANSWER);
    }
}
