//! What the probed pairs say: which pairs fail for sure, and for each node
//! whether its outbound path, its inbound path or a few pairs are broken.
//!
//! Rules (pure, on the kept pairs and the rings of the round):
//! - a pair is **failing** once it failed in two probes in a row;
//! - a node that fails to reach more than half of the peers it probed
//!   lately (at least two) has a broken **outbound** path (slow pairs do
//!   not count as failing to reach);
//! - a node that more than half of its recent probers (at least two) fail
//!   to reach has a broken **inbound** path;
//! - any other failing pair is a **partition** between its two nodes (an
//!   **MTU** problem when the connect succeeded but the padded transfer
//!   did not, **slow** when it completed over the slow threshold).
//!
//! A failing pair explained by one node's broken path counts against that
//! node alone, not against the peer it happened to probe. A node may have
//! both paths broken (one that sends nothing also answers no probe): each
//! explains its own pairs, and the node shows the outbound verdict.
//!
//! On a dual-stack mesh each pair is probed over each IP family, and the
//! rules hold per network and family (a *lane*): a node whose IPv6 is
//! broken fails to reach every peer over IPv6 and none over IPv4, and is
//! named with a broken outbound path over IPv6. Reasons name the family
//! where the network's mesh has both.

use std::collections::{BTreeMap, HashMap};

use netchecker_wire::IpFamily;

use super::Network;
use super::assign::{Ring, cover_rounds};
use super::pairs::{NodeId, PairOutcome, Pairs};

/// Failures in a row that confirm a failing pair.
pub const CONFIRM: u32 = 2;

/// Networks times IP families.
pub const LANES: usize = 4;

/// The lane of `network` over `family`.
pub fn lane(network: Network, family: IpFamily) -> usize {
    network.index() * 2 + family.index()
}

pub use netchecker_wire::PairKind;

/// What kind of failure a pair's last failed probe shows.
fn kind_of(outcome: PairOutcome) -> PairKind {
    match outcome {
        PairOutcome::Mtu => PairKind::Mtu,
        PairOutcome::Slow => PairKind::Slow,
        PairOutcome::Ok | PairOutcome::Unreachable | PairOutcome::BadAnswer => {
            PairKind::Unreachable
        }
    }
}

impl MeshVerdict {
    /// The name on the wire.
    pub fn wire(self) -> netchecker_wire::MeshVerdict {
        match self {
            MeshVerdict::OutboundDown => netchecker_wire::MeshVerdict::OutboundDown,
            MeshVerdict::InboundDown => netchecker_wire::MeshVerdict::InboundDown,
            MeshVerdict::Partition => netchecker_wire::MeshVerdict::Partition,
            MeshVerdict::Mtu => netchecker_wire::MeshVerdict::Mtu,
            MeshVerdict::Slow => netchecker_wire::MeshVerdict::Slow,
            MeshVerdict::Ok => netchecker_wire::MeshVerdict::Ok,
        }
    }
}

/// A node's mesh verdict, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MeshVerdict {
    OutboundDown,
    InboundDown,
    Partition,
    Mtu,
    Slow,
    Ok,
}

/// A confirmed failing pair.
#[derive(Debug, Clone, PartialEq)]
pub struct FailingPair<'a> {
    pub network: Network,
    pub family: IpFamily,
    pub from: &'a str,
    pub to: &'a str,
    pub kind: PairKind,
    pub since: Option<jiff::Timestamp>,
    pub failures: u32,
    /// The prober's words for the last failure.
    pub error: &'a str,
}

/// A node's recent probes on one network (or lane).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCounts {
    /// Peers it probed lately, and of those the ones failing (confirmed
    /// unreachable or MTU; a slow pair is not a broken path).
    pub probed: usize,
    pub failed: usize,
    /// Peers that probed it lately, and of those the ones failing.
    pub probed_by: usize,
    pub failed_by: usize,
}

/// Whether a node's outbound and inbound paths are broken on one lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paths {
    pub outbound: bool,
    pub inbound: bool,
}

/// The mesh part of the evaluation.
#[derive(Debug, Clone, Default)]
pub struct MeshEvaluation<'a> {
    pub round: u64,
    pub peers: usize,
    /// Nodes on each ring, by [`Network::index`].
    pub members: [usize; 2],
    /// Rounds to cover every pair, by network.
    pub cover_rounds: [Option<u64>; 2],
    /// Sorted by network, from, to.
    pub failing: Vec<FailingPair<'a>>,
    /// Every node on a ring, its counts by network (both families).
    pub nodes: HashMap<&'a str, [NodeCounts; 2]>,
    /// The counts by lane of the nodes with a verdict.
    pub lanes: HashMap<&'a str, [NodeCounts; LANES]>,
    /// The node's verdict and the lanes where it holds.
    pub verdicts: BTreeMap<&'a str, (MeshVerdict, [bool; LANES])>,
    /// The nodes with a broken path, by lane.
    pub broken: BTreeMap<&'a str, [Paths; LANES]>,
    /// Whether results of both families were judged on each network.
    pub dual: [bool; 2],
}

impl MeshEvaluation<'_> {
    /// A node's mesh verdict (`Ok` for a node with no problem or no mesh).
    pub fn verdict(&self, node: &str) -> MeshVerdict {
        self.verdicts.get(node).map_or(MeshVerdict::Ok, |v| v.0)
    }

    /// "the pod network", or "the pod network over IPv6" where the
    /// network's mesh has both families.
    fn lane_name(&self, network: Network, family: IpFamily) -> String {
        if self.dual[network.index()] {
            format!("the {} network over {}", network.as_str(), family.name())
        } else {
            format!("the {} network", network.as_str())
        }
    }

    /// The lanes marked in `lanes`, in words ("the pod network and the
    /// host network over IPv6").
    fn lanes_name(&self, lanes: [bool; LANES]) -> String {
        let mut parts = Vec::new();
        for network in Network::ALL {
            let fams = IpFamily::ALL.map(|f| lanes[lane(network, f)]);
            match fams {
                [false, false] => {}
                [true, true] => parts.push(format!("the {} network", network.as_str())),
                [v4, _] => {
                    let family = if v4 { IpFamily::Ipv4 } else { IpFamily::Ipv6 };
                    parts.push(self.lane_name(network, family));
                }
            }
        }
        parts.join(" and ")
    }

    /// The one-line reason for a failing pair.
    pub fn pair_reason(&self, p: &FailingPair<'_>) -> String {
        let net = self.lane_name(p.network, p.family);
        let (from, to) = (p.from, p.to);
        let paths = |node: &str| {
            self.broken
                .get(node)
                .map(|b| b[lane(p.network, p.family)])
                .unwrap_or_default()
        };
        let runs = match p.failures {
            1 => "1 probe".to_owned(),
            n => format!("{n} probes in a row"),
        };
        if paths(from).outbound {
            return format!(
                "{from} cannot reach most of its peers on {net}, {to} among them: {from}'s outbound path is broken"
            );
        }
        if paths(to).inbound {
            return format!(
                "most peers cannot reach {to} on {net}, {from} among them: {to}'s inbound path is broken"
            );
        }
        match p.kind {
            PairKind::Unreachable => format!(
                "{from} cannot reach {to} on {net} ({runs} failed) while both reach the server: the path between these two nodes is blocked"
            ),
            PairKind::Mtu => format!(
                "{from} connects to {to} on {net} but the padded transfer fails ({runs}): an MTU blackhole on the path between them"
            ),
            PairKind::Slow => {
                format!("probes from {from} to {to} on {net} are slow ({runs})")
            }
        }
    }

    /// The one-line reason for `node`'s mesh verdict.
    pub fn reason(&self, node: &str) -> String {
        let Some((verdict, nets)) = self.verdicts.get(node) else {
            return "every peer probed on the mesh answered".to_owned();
        };
        let networks = self.lanes_name(*nets);
        let counts = self.lanes.get(node).copied().unwrap_or_default();
        let sum = |f: fn(&NodeCounts) -> usize| {
            (0..LANES)
                .filter(|l| nets[*l])
                .map(|l| f(&counts[l]))
                .sum::<usize>()
        };
        let others = |outgoing: bool| {
            let mut v: Vec<&str> = self
                .failing
                .iter()
                .filter(|p| nets[lane(p.network, p.family)])
                .filter_map(|p| match (outgoing, p.from == node, p.to == node) {
                    (true, true, _) => Some(p.to),
                    (false, _, true) => Some(p.from),
                    _ => None,
                })
                .collect();
            v.sort_unstable();
            v.dedup();
            v.join(", ")
        };
        let peers_of = || {
            let mut v: Vec<&str> = self
                .failing
                .iter()
                .filter(|p| nets[lane(p.network, p.family)])
                .filter_map(|p| {
                    if p.from == node {
                        Some(p.to)
                    } else if p.to == node {
                        Some(p.from)
                    } else {
                        None
                    }
                })
                .collect();
            v.sort_unstable();
            v.dedup();
            v.join(", ")
        };
        match verdict {
            MeshVerdict::OutboundDown => {
                let inbound_too = self
                    .broken
                    .get(node)
                    .is_some_and(|b| (0..LANES).any(|l| nets[l] && b[l].inbound));
                let inbound = if inbound_too {
                    format!(
                        ", and {} of the {} peers that probed it cannot reach it",
                        sum(|c| c.failed_by),
                        sum(|c| c.probed_by)
                    )
                } else {
                    String::new()
                };
                format!(
                    "cannot reach {} of the {} peers it probed on {networks} ({}){inbound}: this node's outbound path is broken",
                    sum(|c| c.failed),
                    sum(|c| c.probed),
                    others(true)
                )
            }
            MeshVerdict::InboundDown => format!(
                "{} of the {} peers that probed it cannot reach it on {networks} ({}): this node's inbound path is broken",
                sum(|c| c.failed_by),
                sum(|c| c.probed_by),
                others(false)
            ),
            MeshVerdict::Partition => format!(
                "partitioned from {} on {networks}: probes between them fail while both reach the server",
                peers_of()
            ),
            MeshVerdict::Mtu => format!(
                "padded transfers with {} fail on {networks} while the connect succeeds: an MTU blackhole on that path",
                peers_of()
            ),
            MeshVerdict::Slow => format!("probes with {} on {networks} are slow", peers_of()),
            MeshVerdict::Ok => "every peer probed on the mesh answered".to_owned(),
        }
    }
}

/// Judge the kept `pairs` at wall-clock second `unix` (in `round`) on these
/// `rings` with `peers` a round. Only fresh results of pairs whose nodes
/// are both on the ring count.
///
/// Nodes are counted in vectors, and the kept pairs name their nodes by
/// number ([`Pairs`]): only the ring's nodes are looked up by name, once
/// each, never the 80,000 pairs of 5,000 nodes.
pub fn judge<'a>(
    pairs: &'a Pairs,
    rings: &[&'a Ring; 2],
    unix: i64,
    round: u64,
    peers: usize,
) -> MeshEvaluation<'a> {
    // Numbered in ring order (sorting 10,000 names cost more than the
    // rest); `on`: whether each node is on each network's ring; `local`:
    // the number each node of the kept pairs has here (`NONE`: on no ring).
    const NONE: usize = usize::MAX;
    let mut names: Vec<&'a str> = Vec::with_capacity(rings[0].len().max(rings[1].len()));
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(names.capacity());
    let mut on: Vec<[bool; 2]> = Vec::with_capacity(names.capacity());
    let mut local = vec![NONE; pairs.id_bound()];
    for (net, ring) in rings.iter().enumerate() {
        for node in ring.nodes() {
            let i = *index.entry(node).or_insert_with(|| {
                names.push(node);
                on.push([false; 2]);
                if let Some(id) = pairs.id(node) {
                    local[id as usize] = names.len() - 1;
                }
                names.len() - 1
            });
            on[i][net] = true;
        }
    }
    let on_ring =
        |id: NodeId, net: usize| Some(local[id as usize]).filter(|&n| n != NONE && on[n][net]);
    let mut counts = vec![[NodeCounts::default(); LANES]; names.len()];
    let mut seen = [false; LANES];
    // Confirmed failing pairs with the numbers of their two nodes.
    let mut failing: Vec<(FailingPair<'a>, usize, usize)> = Vec::new();
    for (network, from, probed) in pairs.probers() {
        let i = network.index();
        let Some(f) = on_ring(from, i) else {
            continue;
        };
        for (to, s) in probed {
            if *to == from || !s.fresh(unix) {
                continue;
            }
            let Some(t) = on_ring(*to, i) else {
                continue;
            };
            let l = lane(network, s.family);
            seen[l] = true;
            let confirmed = s.failures >= CONFIRM;
            // A slow pair still connects: it says nothing of a broken path.
            let down = confirmed && s.outcome != PairOutcome::Slow;
            counts[f][l].probed += 1;
            counts[f][l].failed += usize::from(down);
            counts[t][l].probed_by += 1;
            counts[t][l].failed_by += usize::from(down);
            if confirmed {
                let pair = FailingPair {
                    network,
                    family: s.family,
                    from: names[f],
                    to: names[t],
                    kind: kind_of(s.outcome),
                    since: s.failing_since,
                    failures: s.failures,
                    error: &s.error,
                };
                failing.push((pair, f, t));
            }
        }
    }
    failing.sort_by(|(a, ..), (b, ..)| {
        (a.network, a.from, a.to, a.family).cmp(&(b.network, b.from, b.to, b.family))
    });
    let mostly = |failed: usize, of: usize| of >= 2 && failed * 2 > of;
    // Each node's broken paths by network: both may hold at once (a node
    // that can send nothing also answers no probe), and each explains its
    // own pairs, whichever verdict is shown.
    let broken: Vec<[Paths; LANES]> = counts
        .iter()
        .map(|c| {
            c.map(|c| Paths {
                outbound: mostly(c.failed, c.probed),
                inbound: mostly(c.failed_by, c.probed_by),
            })
        })
        .collect();
    let mut verdicts: Vec<Option<(MeshVerdict, [bool; LANES])>> = vec![None; names.len()];
    for (node, paths) in broken.iter().enumerate() {
        for (l, p) in paths.iter().enumerate() {
            if p.outbound {
                mark(&mut verdicts[node], MeshVerdict::OutboundDown, l);
            } else if p.inbound {
                mark(&mut verdicts[node], MeshVerdict::InboundDown, l);
            }
        }
    }
    let mut pair_marks = Vec::new();
    for (p, f, t) in &failing {
        // Explained by one node's broken path: that node only.
        let i = lane(p.network, p.family);
        if broken[*f][i].outbound || broken[*t][i].inbound {
            continue;
        }
        let verdict = match p.kind {
            PairKind::Unreachable => MeshVerdict::Partition,
            PairKind::Mtu => MeshVerdict::Mtu,
            PairKind::Slow => MeshVerdict::Slow,
        };
        pair_marks.push((*f, verdict, i));
        pair_marks.push((*t, verdict, i));
    }
    for (node, verdict, l) in pair_marks {
        mark(&mut verdicts[node], verdict, l);
    }
    let by_network = |c: &[NodeCounts; LANES]| {
        Network::ALL.map(|n| {
            let [v4, v6] = IpFamily::ALL.map(|f| c[lane(n, f)]);
            NodeCounts {
                probed: v4.probed + v6.probed,
                failed: v4.failed + v6.failed,
                probed_by: v4.probed_by + v6.probed_by,
                failed_by: v4.failed_by + v6.failed_by,
            }
        })
    };
    MeshEvaluation {
        round,
        peers,
        members: [rings[0].len(), rings[1].len()],
        cover_rounds: [
            cover_rounds(rings[0].len(), peers),
            cover_rounds(rings[1].len(), peers),
        ],
        failing: failing.into_iter().map(|(p, ..)| p).collect(),
        nodes: names
            .iter()
            .copied()
            .zip(counts.iter().map(by_network))
            .collect(),
        lanes: names
            .iter()
            .zip(&counts)
            .zip(&verdicts)
            .filter(|(_, v)| v.is_some())
            .map(|((n, c), _)| (*n, *c))
            .collect(),
        dual: Network::ALL.map(|n| IpFamily::ALL.iter().all(|f| seen[lane(n, *f)])),
        broken: names
            .iter()
            .zip(broken)
            .filter(|(_, b)| b.iter().any(|p| p.outbound || p.inbound))
            .map(|(n, b)| (*n, b))
            .collect(),
        verdicts: names
            .iter()
            .zip(verdicts)
            .filter_map(|(n, v)| Some((*n, v?)))
            .collect(),
    }
}

/// Note `verdict` on `lane` in a node's slot, keeping the most severe.
fn mark(slot: &mut Option<(MeshVerdict, [bool; LANES])>, verdict: MeshVerdict, lane: usize) {
    let v = slot.get_or_insert((verdict, [false; LANES]));
    if verdict < v.0 {
        *v = (verdict, [false; LANES]);
    }
    if verdict == v.0 {
        v.1[lane] = true;
    }
}

#[cfg(test)]
mod tests;
