//! What the server judges, by name: the network an agent checks, an
//! agent's state and a node's verdict. Each serialises to the snake_case
//! name used in `/api/v2/status`, webhook events and metric labels.

use serde::{Deserialize, Serialize};

/// Which network an agent checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// On the pod network (the `netchecker-agent` DaemonSet).
    PodNetwork,
    /// With `hostNetwork: true` (`netchecker-agent-hostnet`).
    HostNetwork,
    /// Neither label nor spec tells.
    Unknown,
}

impl AgentKind {
    /// The pod label `app` of the host-network agents.
    pub const HOSTNET_APP: &str = "netchecker-agent-hostnet";
    /// The pod label `app` of the pod-network agents.
    pub const POD_APP: &str = "netchecker-agent";

    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::PodNetwork => "pod_network",
            AgentKind::HostNetwork => "host_network",
            AgentKind::Unknown => "unknown",
        }
    }

    /// The one rule that tells a host-network agent by its pod name alone,
    /// the original's: the name contains `hostnet` (its DaemonSet's pods
    /// are `netchecker-agent-hostnet-...`). Used wherever no pod spec is at
    /// hand: the `agent` metric label and agents without Kubernetes.
    pub fn from_name(name: &str) -> Self {
        if name.contains("hostnet") {
            AgentKind::HostNetwork
        } else {
            AgentKind::PodNetwork
        }
    }
}

/// State of one expected agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Reported within its window.
    Ok,
    /// No report, and the server's start-up grace is over.
    Absent,
    /// Reported, but longer ago than the window allows.
    Outdated,
    /// Not reported yet, but the server started too recently to tell.
    Pending,
}

impl AgentState {
    pub const ALL: [AgentState; 4] = [
        AgentState::Ok,
        AgentState::Absent,
        AgentState::Outdated,
        AgentState::Pending,
    ];

    /// Absent or outdated: what fails the check and pages someone
    /// (pending agents do not).
    pub fn is_failing(self) -> bool {
        matches!(self, AgentState::Absent | AgentState::Outdated)
    }

    /// The name in JSON and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Ok => "ok",
            AgentState::Absent => "absent",
            AgentState::Outdated => "outdated",
            AgentState::Pending => "pending",
        }
    }

    /// Position in [`AgentState::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The name shown for an agent that reports but is not expected (no
/// watched pod of that name): such agents are listed, never judged.
pub const UNEXPECTED: &str = "unexpected";

/// The state name of an agent in `/api/v2/status` and events: its state,
/// or [`UNEXPECTED`] for `None`.
pub fn state_name(state: Option<AgentState>) -> &'static str {
    state.map_or(UNEXPECTED, AgentState::as_str)
}

/// `Option<AgentState>` as its state name, `None` as `"unexpected"`.
pub(crate) mod state_or_unexpected {
    use super::{AgentState, UNEXPECTED, state_name};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(state: &Option<AgentState>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(state_name(*state))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AgentState>, D::Error> {
        let name = String::deserialize(d)?;
        if name == UNEXPECTED {
            return Ok(None);
        }
        AgentState::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .map(Some)
            .ok_or_else(|| {
                serde::de::Error::unknown_variant(
                    &name,
                    &["ok", "absent", "outdated", "pending", UNEXPECTED],
                )
            })
    }
}

/// The verdict on one node, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeVerdict {
    Healthy,
    Pending,
    PodNetworkDown,
    HostNetworkDown,
    Unreachable,
    AgentsLate,
    DnsFailure,
    ProbeFailures,
    /// The node's agents reach the server, but the node cannot reach most
    /// of its mesh peers.
    MeshOutboundDown,
    /// Most mesh peers cannot reach the node.
    MeshInboundDown,
    /// Probes between the node and some peers fail.
    MeshPartition,
    /// Padded transfers between the node and some peers fail while the
    /// connect succeeds: an MTU blackhole.
    MeshMtu,
    /// Probes between the node and some peers are slow.
    MeshSlow,
    /// The node's agents report over one IP family but no longer over the
    /// other, which they did before (dual-stack): the reason names the
    /// family and the network.
    FamilyDown,
    /// The node's agents report on time, but a share of their connections
    /// to the server goes unanswered at first (`--lossy-threshold`): its
    /// path loses packets.
    Lossy,
    Unknown,
}

impl NodeVerdict {
    pub const ALL: [NodeVerdict; 16] = [
        NodeVerdict::Healthy,
        NodeVerdict::Pending,
        NodeVerdict::PodNetworkDown,
        NodeVerdict::HostNetworkDown,
        NodeVerdict::Unreachable,
        NodeVerdict::AgentsLate,
        NodeVerdict::DnsFailure,
        NodeVerdict::ProbeFailures,
        NodeVerdict::MeshOutboundDown,
        NodeVerdict::MeshInboundDown,
        NodeVerdict::MeshPartition,
        NodeVerdict::MeshMtu,
        NodeVerdict::MeshSlow,
        NodeVerdict::FamilyDown,
        NodeVerdict::Lossy,
        NodeVerdict::Unknown,
    ];

    /// The name used in JSON, metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeVerdict::Healthy => "healthy",
            NodeVerdict::Pending => "pending",
            NodeVerdict::PodNetworkDown => "pod_network_down",
            NodeVerdict::HostNetworkDown => "host_network_down",
            NodeVerdict::Unreachable => "unreachable",
            NodeVerdict::AgentsLate => "agents_late",
            NodeVerdict::DnsFailure => "dns_failure",
            NodeVerdict::ProbeFailures => "probe_failures",
            NodeVerdict::MeshOutboundDown => "mesh_outbound_down",
            NodeVerdict::MeshInboundDown => "mesh_inbound_down",
            NodeVerdict::MeshPartition => "mesh_partition",
            NodeVerdict::MeshMtu => "mesh_mtu",
            NodeVerdict::MeshSlow => "mesh_slow",
            NodeVerdict::FamilyDown => "family_down",
            NodeVerdict::Lossy => "lossy",
            NodeVerdict::Unknown => "unknown",
        }
    }

    /// Position in [`NodeVerdict::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// An IP family, as the server saw a report arrive (an IPv4-mapped IPv6
/// peer is IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    Ipv4,
    Ipv6,
}

impl IpFamily {
    pub const ALL: [IpFamily; 2] = [IpFamily::Ipv4, IpFamily::Ipv6];

    /// The family of a peer address.
    pub fn of(ip: std::net::IpAddr) -> Self {
        match ip {
            std::net::IpAddr::V4(_) => IpFamily::Ipv4,
            std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => IpFamily::Ipv4,
            std::net::IpAddr::V6(_) => IpFamily::Ipv6,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// "IPv4" or "IPv6", as reasons write it.
    pub fn name(self) -> &'static str {
        match self {
            IpFamily::Ipv4 => "IPv4",
            IpFamily::Ipv6 => "IPv6",
        }
    }

    pub fn other(self) -> Self {
        match self {
            IpFamily::Ipv4 => IpFamily::Ipv6,
            IpFamily::Ipv6 => IpFamily::Ipv4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_json_are_the_as_str_names() {
        for v in NodeVerdict::ALL {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
            assert_eq!(
                serde_json::from_value::<NodeVerdict>(v.as_str().into()).unwrap(),
                v
            );
            assert_eq!(NodeVerdict::ALL[v.index()], v);
        }
        for s in AgentState::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(AgentState::ALL[s.index()], s);
        }
        for k in [
            AgentKind::PodNetwork,
            AgentKind::HostNetwork,
            AgentKind::Unknown,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        let names: std::collections::HashSet<_> =
            NodeVerdict::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(names.len(), NodeVerdict::ALL.len());
    }

    #[test]
    fn the_host_network_name_rule_is_the_originals() {
        assert_eq!(
            AgentKind::from_name("netchecker-agent-hostnet-q8w3z"),
            AgentKind::HostNetwork
        );
        assert_eq!(
            AgentKind::from_name("netchecker-agent-x7k2p"),
            AgentKind::PodNetwork
        );
        assert_eq!(
            AgentKind::from_name("hostnet-agent"),
            AgentKind::HostNetwork
        );
    }

    #[test]
    fn unexpected_is_a_state_name_only() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct S {
            #[serde(with = "state_or_unexpected")]
            state: Option<AgentState>,
        }
        for state in AgentState::ALL.map(Some).into_iter().chain([None]) {
            let json = serde_json::to_string(&S { state }).unwrap();
            assert_eq!(json, format!(r#"{{"state":"{}"}}"#, state_name(state)));
            assert_eq!(serde_json::from_str::<S>(&json).unwrap(), S { state });
        }
        assert!(serde_json::from_str::<S>(r#"{"state":"fine"}"#).is_err());
    }
}
