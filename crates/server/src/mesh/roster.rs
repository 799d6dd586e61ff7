//! Who takes part in the mesh this round: per network, the nodes whose
//! agent serves the mesh, reports on time, is not going away, on a node
//! that is Ready, schedulable and not being deleted, at an address the
//! server knows. Everything else is left out with the reason, so a drain,
//! a scale-down or a rolling update pages nobody.
//!
//! Pure: the facts of the one evaluation, the announced mesh agents and
//! the node conditions in, the rings and the reasons out.

use std::collections::HashMap;
use std::net::IpAddr;

use netchecker_wire::IpFamily;

use crate::diagnosis::AgentFacts;
use crate::domain::AgentState;

use super::Network;
use super::assign::Ring;
use super::pairs::MeshAgent;

/// What the node's own conditions say about taking part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeGate {
    /// Ready, schedulable, not being deleted (or not known: without
    /// Kubernetes, or where the server may not read nodes).
    Eligible,
    NotReady,
    Cordoned,
    Deleting,
    /// The node watch has no such node.
    Gone,
}

/// Why an agent that serves the mesh is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeftOut {
    NotReporting,
    Terminating,
    NodeNotReady,
    NodeCordoned,
    NodeDeleting,
    NodeGone,
    NoAddress,
}

impl LeftOut {
    pub fn as_str(self) -> &'static str {
        match self {
            LeftOut::NotReporting => "not_reporting",
            LeftOut::Terminating => "terminating",
            LeftOut::NodeNotReady => "node_not_ready",
            LeftOut::NodeCordoned => "node_cordoned",
            LeftOut::NodeDeleting => "node_deleting",
            LeftOut::NodeGone => "node_gone",
            LeftOut::NoAddress => "no_address",
        }
    }
}

/// A node's place on one network's mesh, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    Member,
    LeftOut(LeftOut),
    /// Its agent does not serve the mesh.
    NoMesh,
}

/// Where a member answers probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its address of each IP family, by [`IpFamily::index`]: both on a
    /// dual-stack node, where its peers probe it over each.
    pub addresses: [Option<IpAddr>; 2],
    pub port: u16,
}

impl Member {
    /// A member answering on `addresses` (the first of each family counts).
    pub fn new(addresses: impl IntoIterator<Item = IpAddr>, port: u16) -> Self {
        let mut by_family = [None; 2];
        for a in addresses {
            by_family[IpFamily::of(a).index()].get_or_insert(a);
        }
        Self {
            addresses: by_family,
            port,
        }
    }

    /// Its address of `family`, if it has one.
    pub fn address(&self, family: IpFamily) -> Option<IpAddr> {
        self.addresses[family.index()]
    }
}

/// The members of both networks, and every node's place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    /// By [`Network::index`].
    pub rings: [Ring; 2],
    /// Node name to member, by [`Network::index`].
    pub members: [HashMap<Box<str>, Member>; 2],
    /// Every node with an agent, sorted by name, and its place on each
    /// network (`None` where it has no agent of that network).
    pub places: Vec<(Box<str>, [Option<Place>; 2])>,
}

impl Roster {
    pub fn ring(&self, network: Network) -> &Ring {
        &self.rings[network.index()]
    }

    pub fn member(&self, network: Network, node: &str) -> Option<&Member> {
        self.members[network.index()].get(node)
    }

    /// `node`'s places (`[None, None]` for a node with no agent).
    pub fn place(&self, node: &str) -> [Option<Place>; 2] {
        self.places
            .binary_search_by(|(n, _)| (**n).cmp(node))
            .map_or([None, None], |i| self.places[i].1)
    }
}

/// Decide who takes part, from the evaluated `agents` (sorted by node, as
/// the evaluation lists them), the agents that announced a mesh port
/// (`mesh`), and the node conditions (`gate`).
pub fn roster<R>(
    agents: &[AgentFacts<'_, R>],
    mesh: &HashMap<Box<str>, MeshAgent>,
    gate: impl Fn(&str) -> NodeGate,
) -> Roster {
    debug_assert!(agents.windows(2).all(|w| w[0].node <= w[1].node));
    let mut places: Vec<(Box<str>, [Option<Place>; 2])> = Vec::new();
    let mut members: [HashMap<Box<str>, Member>; 2] = Default::default();
    for a in agents {
        let (Some(state), Some(network)) = (a.state, Network::of(a.kind)) else {
            continue;
        };
        if a.node.is_empty() {
            continue;
        }
        let announced = mesh.get(a.name).filter(|m| m.network == network);
        let place = match announced {
            None => Place::NoMesh,
            Some(m) => match place_of(a, state, m, &gate) {
                Ok(member) => {
                    // The first agent of a node stands for it.
                    members[network.index()]
                        .entry(a.node.into())
                        .or_insert(member);
                    Place::Member
                }
                Err(why) => Place::LeftOut(why),
            },
        };
        // Sorted by node: a node's agents are next to each other.
        if places.last().is_none_or(|(n, _)| **n != *a.node) {
            places.push((a.node.into(), [None, None]));
        }
        let slot = &mut places.last_mut().expect("pushed").1[network.index()];
        if slot.is_none_or(|old| place < old) {
            *slot = Some(place);
        }
    }
    let rings =
        [Network::Pod, Network::Host].map(|n| Ring::new(members[n.index()].keys().map(|k| &**k)));
    Roster {
        rings,
        members,
        places,
    }
}

/// Where an agent that takes part answers, or why it does not.
fn place_of<R>(
    a: &AgentFacts<'_, R>,
    state: AgentState,
    m: &MeshAgent,
    gate: &impl Fn(&str) -> NodeGate,
) -> Result<Member, LeftOut> {
    if state != AgentState::Ok {
        return Err(LeftOut::NotReporting);
    }
    if a.terminating {
        return Err(LeftOut::Terminating);
    }
    match gate(a.node) {
        NodeGate::Eligible => {}
        NodeGate::NotReady => return Err(LeftOut::NodeNotReady),
        NodeGate::Cordoned => return Err(LeftOut::NodeCordoned),
        NodeGate::Deleting => return Err(LeftOut::NodeDeleting),
        NodeGate::Gone => return Err(LeftOut::NodeGone),
    }
    // The watched pod's addresses when there are any (`status.podIPs` or
    // `status.hostIPs`: one of each family on a dual-stack node): an agent
    // cannot send its peers' probes elsewhere. Without Kubernetes, what it
    // announced.
    let member = if a.addresses.is_empty() {
        Member::new(m.addresses.iter().filter_map(|s| s.parse().ok()), m.port)
    } else {
        Member::new(a.addresses.iter().copied(), m.port)
    };
    if member.addresses.iter().all(Option::is_none) {
        return Err(LeftOut::NoAddress);
    }
    Ok(member)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AgentKind;

    fn facts<'a>(
        name: &'a str,
        node: &'a str,
        kind: AgentKind,
        state: AgentState,
        addresses: &'a [IpAddr],
    ) -> AgentFacts<'a, ()> {
        AgentFacts {
            name,
            namespace: Some("nc"),
            node,
            kind,
            state: Some(state),
            age: None,
            interval: None,
            dns_failures: Vec::new(),
            failing_probes: Vec::new(),
            probe_failure_repeated: false,
            terminating: false,
            path: None,
            family_late: None,
            family_probes_failing: Vec::new(),
            addresses,
            report: None,
        }
    }

    fn announced(node: &str, network: Network, addresses: &[&str]) -> MeshAgent {
        MeshAgent {
            node: node.into(),
            network,
            port: 8083,
            addresses: addresses.iter().map(|a| (*a).into()).collect(),
            assigned: None,
        }
    }

    #[test]
    fn members_report_on_time_on_good_nodes_at_known_addresses() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let a1 = [ip("198.18.1.1")];
        let a2 = [ip("198.18.2.1")];
        let h3 = [ip("198.18.3.1")];
        let a4 = [ip("198.18.4.1")];
        let mut agents = vec![
            facts("pod-1", "n1", AgentKind::PodNetwork, AgentState::Ok, &a1),
            facts(
                "pod-2",
                "n2",
                AgentKind::PodNetwork,
                AgentState::Outdated,
                &a2,
            ),
            facts("host-3", "n3", AgentKind::HostNetwork, AgentState::Ok, &h3),
            facts("pod-4", "n4", AgentKind::PodNetwork, AgentState::Ok, &a4),
            facts("pod-5", "n5", AgentKind::PodNetwork, AgentState::Ok, &[]),
            facts("pod-6", "n6", AgentKind::PodNetwork, AgentState::Ok, &a1),
            facts("pod-7", "n7", AgentKind::PodNetwork, AgentState::Ok, &a1),
            facts("old-8", "n8", AgentKind::PodNetwork, AgentState::Ok, &a1),
        ];
        agents[7].terminating = true;
        let mesh: HashMap<Box<str>, MeshAgent> = [
            ("pod-1", announced("n1", Network::Pod, &[])),
            ("pod-2", announced("n2", Network::Pod, &[])),
            ("host-3", announced("n3", Network::Host, &[])),
            ("pod-4", announced("n4", Network::Pod, &["10.9.9.9"])),
            (
                "pod-5",
                announced("n5", Network::Pod, &["not an address", "198.18.5.1"]),
            ),
            ("pod-6", announced("n6", Network::Pod, &[])),
            ("old-8", announced("n8", Network::Pod, &[])),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v))
        .collect();
        let gate = |node: &str| match node {
            "n6" => NodeGate::Cordoned,
            _ => NodeGate::Eligible,
        };
        let p = roster(&agents, &mesh, gate);
        let ring: Vec<&str> = {
            let mut v: Vec<&str> = p.ring(Network::Pod).nodes().collect();
            v.sort_unstable();
            v
        };
        assert_eq!(ring, ["n1", "n4", "n5"]);
        assert_eq!(p.ring(Network::Host).nodes().collect::<Vec<_>>(), ["n3"]);
        // The pod's address wins over what the agent announced.
        let v4 = |node: &str| {
            p.member(Network::Pod, node)
                .unwrap()
                .address(IpFamily::Ipv4)
        };
        assert_eq!(v4("n4"), Some(a4[0]));
        // Without a pod address, the first announced address that parses.
        assert_eq!(v4("n5"), Some(ip("198.18.5.1")));
        // Single-stack: no IPv6 address.
        let n1 = p.member(Network::Pod, "n1").unwrap();
        assert_eq!(n1.address(IpFamily::Ipv6), None);
        let place = |node: &str, n: Network| p.place(node)[n.index()];
        assert_eq!(
            place("n2", Network::Pod),
            Some(Place::LeftOut(LeftOut::NotReporting))
        );
        assert_eq!(
            place("n6", Network::Pod),
            Some(Place::LeftOut(LeftOut::NodeCordoned))
        );
        assert_eq!(place("n7", Network::Pod), Some(Place::NoMesh));
        assert_eq!(
            place("n8", Network::Pod),
            Some(Place::LeftOut(LeftOut::Terminating))
        );
        assert_eq!(place("n3", Network::Pod), None);
        assert_eq!(place("n3", Network::Host), Some(Place::Member));
    }

    #[test]
    fn a_dual_stack_member_answers_on_one_address_of_each_family() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let pod = [
            ip("2001:2::1:2"),
            ip("198.18.1.2"),
            ip("2001:2::1:3"),
            ip("198.18.1.3"),
        ];
        let agents = [
            facts("pod-1", "n1", AgentKind::PodNetwork, AgentState::Ok, &pod),
            facts("pod-2", "n2", AgentKind::PodNetwork, AgentState::Ok, &[]),
        ];
        let mesh = [
            ("pod-1".into(), announced("n1", Network::Pod, &[])),
            (
                "pod-2".into(),
                announced("n2", Network::Pod, &["2001:2::2:2", "198.18.2.2"]),
            ),
        ]
        .into_iter()
        .collect();
        let p = roster(&agents, &mesh, |_| NodeGate::Eligible);
        let n1 = p.member(Network::Pod, "n1").unwrap();
        assert_eq!(
            n1.addresses,
            [Some(ip("198.18.1.2")), Some(ip("2001:2::1:2"))],
            "the first of each family, IPv4 first"
        );
        let n2 = p.member(Network::Pod, "n2").unwrap();
        assert_eq!(
            n2.addresses,
            [Some(ip("198.18.2.2")), Some(ip("2001:2::2:2"))]
        );
    }

    #[test]
    fn an_agent_announcing_the_other_network_does_not_take_part() {
        let a = ["198.18.1.1".parse().unwrap()];
        let agents = [facts(
            "pod-1",
            "n1",
            AgentKind::PodNetwork,
            AgentState::Ok,
            &a,
        )];
        let mesh = [("pod-1".into(), announced("n1", Network::Host, &[]))]
            .into_iter()
            .collect();
        let p = roster(&agents, &mesh, |_| NodeGate::Eligible);
        assert!(p.rings.iter().all(Ring::is_empty));
        assert_eq!(p.place("n1")[0], Some(Place::NoMesh));
    }
}
