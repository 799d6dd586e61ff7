//! The kept pairs, with the nodes numbered: each prober's results are a
//! short vector of (target number, state), so judging 80,000 pairs walks
//! vectors and indexes arrays instead of hashing and comparing two names
//! per pair (at 5,000 nodes that lookup was most of a status answer).
//!
//! Numbers are handed out as nodes first appear in a kept result and
//! taken back by [`Pairs::retain`] once no kept pair names the node, so
//! the table never holds more nodes than the kept pairs do.

use std::collections::HashMap;

use netchecker_wire::IpFamily;

use super::super::Network;
use super::PairState;

/// A node's number in [`Pairs`].
pub type NodeId = u32;

/// Every kept result, by network, prober and target.
#[derive(Debug, Default)]
pub struct Pairs {
    ids: HashMap<Box<str>, NodeId>,
    /// By number; `None` for a number free for reuse.
    names: Vec<Option<Box<str>>>,
    free: Vec<NodeId>,
    /// One prober's results on one network: (target, state), in the order
    /// they were first kept; a dual-stack pair has one per IP family
    /// ([`PairState::family`]).
    probers: HashMap<(Network, NodeId), Vec<(NodeId, PairState)>>,
}

impl Pairs {
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of `node`, if a kept pair names it.
    pub fn id(&self, node: &str) -> Option<NodeId> {
        self.ids.get(node).copied()
    }

    /// The name of node `id` (`""` for a number not in use).
    pub fn name(&self, id: NodeId) -> &str {
        self.names
            .get(id as usize)
            .and_then(Option::as_deref)
            .unwrap_or("")
    }

    /// One past the highest number in use: arrays indexed by [`NodeId`]
    /// need this many slots.
    pub fn id_bound(&self) -> usize {
        self.names.len()
    }

    /// The number of `node`, handed out if it has none.
    fn intern(&mut self, node: &str) -> NodeId {
        if let Some(id) = self.ids.get(node) {
            return *id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.names[id as usize] = Some(node.into());
                id
            }
            None => {
                self.names.push(Some(node.into()));
                NodeId::try_from(self.names.len() - 1).expect("fewer than 2^32 nodes")
            }
        };
        self.ids.insert(node.into(), id);
        id
    }

    /// The result of `from` probing `to` on `network` over `family`.
    pub fn get(
        &self,
        network: Network,
        from: &str,
        to: &str,
        family: IpFamily,
    ) -> Option<&PairState> {
        let (from, to) = (self.id(from)?, self.id(to)?);
        self.targets(network, from)
            .iter()
            .find(|(t, s)| *t == to && s.family == family)
            .map(|(_, s)| s)
    }

    /// Every result prober `from` has on `network`.
    pub fn targets(&self, network: Network, from: NodeId) -> &[(NodeId, PairState)] {
        self.probers
            .get(&(network, from))
            .map_or(&[], Vec::as_slice)
    }

    /// Every prober with its results.
    pub fn probers(&self) -> impl Iterator<Item = (Network, NodeId, &[(NodeId, PairState)])> {
        self.probers
            .iter()
            .map(|((network, from), targets)| (*network, *from, targets.as_slice()))
    }

    /// The state of `from` probing `to` on `network` over `family`, made
    /// with `new` if none is kept.
    pub fn entry(
        &mut self,
        network: Network,
        from: &str,
        to: &str,
        family: IpFamily,
        new: impl FnOnce() -> PairState,
    ) -> &mut PairState {
        let (from, to) = (self.intern(from), self.intern(to));
        let targets = self.probers.entry((network, from)).or_default();
        let at = match targets
            .iter()
            .position(|(t, s)| *t == to && s.family == family)
        {
            Some(at) => at,
            None => {
                targets.push((to, PairState { family, ..new() }));
                targets.len() - 1
            }
        };
        &mut targets[at].1
    }

    /// Keep (or replace) the state of `from` probing `to` on `network` over
    /// the state's family.
    pub fn insert(&mut self, network: Network, from: &str, to: &str, state: PairState) {
        let family = state.family;
        let mut state = Some(state);
        let slot = self.entry(network, from, to, family, || {
            state.take().expect("taken once")
        });
        if let Some(state) = state {
            *slot = state;
        }
    }

    /// Keep only the results whose two nodes are `member`s of the result's
    /// network and that are still `fresh`, and free the numbers of nodes no
    /// kept pair names any more. Each node is asked about once per network,
    /// not once per pair.
    pub fn retain(
        &mut self,
        member: impl Fn(Network, &str) -> bool,
        fresh: impl Fn(&PairState) -> bool,
    ) {
        let on: Vec<[bool; 2]> = self
            .names
            .iter()
            .map(|n| match n {
                Some(n) => Network::ALL.map(|net| member(net, n)),
                None => [false; 2],
            })
            .collect();
        let mut used = vec![false; self.names.len()];
        self.probers.retain(|(network, from), targets| {
            let i = network.index();
            if !on[*from as usize][i] {
                return false;
            }
            targets.retain(|(to, s)| on[*to as usize][i] && fresh(s));
            for (to, _) in targets.iter() {
                used[*to as usize] = true;
            }
            if targets.is_empty() {
                return false;
            }
            used[*from as usize] = true;
            true
        });
        for (id, used) in used.into_iter().enumerate() {
            if used {
                continue;
            }
            if let Some(node) = self.names[id].take() {
                self.ids.remove(&node);
                self.free.push(NodeId::try_from(id).expect("numbers fit"));
            }
        }
    }

    /// Results kept.
    pub fn len(&self) -> usize {
        self.probers.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.probers.is_empty()
    }

    /// Nodes numbered (for the tests: the table shrinks with the pairs).
    pub fn nodes(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::pairs::PairOutcome;

    fn ok() -> PairState {
        PairState {
            outcome: PairOutcome::Ok,
            failures: 0,
            failing_since: None,
            round: 1,
            received: 10,
            fresh_until: 30,
            rtt_us: 5,
            error: "".into(),
            family: IpFamily::Ipv4,
        }
    }

    #[test]
    fn pairs_are_kept_by_network_prober_and_target() {
        let mut p = Pairs::new();
        p.insert(Network::Pod, "a", "b", ok());
        p.insert(Network::Host, "a", "b", PairState { rtt_us: 9, ..ok() });
        p.insert(Network::Pod, "b", "a", ok());
        p.entry(Network::Pod, "a", "b", IpFamily::Ipv4, ok).failures = 3;
        p.insert(
            Network::Pod,
            "a",
            "b",
            PairState {
                family: IpFamily::Ipv6,
                failures: 1,
                ..ok()
            },
        );
        // Over IPv4 and IPv6: two results of one pair.
        assert_eq!(p.len(), 4);
        assert_eq!(p.nodes(), 2);
        let get = |net, from, to, family| p.get(net, from, to, family).map(|s| s.failures);
        assert_eq!(get(Network::Pod, "a", "b", IpFamily::Ipv4), Some(3));
        assert_eq!(get(Network::Pod, "a", "b", IpFamily::Ipv6), Some(1));
        assert_eq!(
            p.get(Network::Host, "a", "b", IpFamily::Ipv4)
                .map(|s| s.rtt_us),
            Some(9)
        );
        assert!(get(Network::Host, "a", "b", IpFamily::Ipv6).is_none());
        assert!(get(Network::Host, "b", "a", IpFamily::Ipv4).is_none());
        assert!(get(Network::Pod, "a", "zz", IpFamily::Ipv4).is_none());
        let a = p.id("a").unwrap();
        assert_eq!(p.name(a), "a");
        assert_eq!(p.targets(Network::Pod, a).len(), 2);
    }

    #[test]
    fn numbers_of_nodes_no_pair_names_are_freed_and_reused() {
        let mut p = Pairs::new();
        p.insert(Network::Pod, "a", "b", ok());
        p.insert(Network::Pod, "a", "c", ok());
        p.insert(Network::Pod, "d", "a", ok());
        p.insert(Network::Host, "a", "b", ok());
        assert_eq!((p.nodes(), p.len()), (4, 4));
        // d is no member; nobody is on the host network.
        p.retain(|net, n| net == Network::Pod && n != "d", |_| true);
        assert_eq!(p.len(), 2, "a-b and a-c on the pod network");
        assert!(p.get(Network::Host, "a", "b", IpFamily::Ipv4).is_none());
        assert_eq!((p.nodes(), p.id("d")), (3, None));
        // A result that is no longer fresh goes.
        p.entry(Network::Pod, "a", "c", IpFamily::Ipv4, ok)
            .fresh_until = 0;
        p.retain(|_, _| true, |s| s.fresh_until > 0);
        assert_eq!(p.len(), 1);
        assert_eq!((p.nodes(), p.id("c"), p.id("d")), (2, None, None));
        assert_eq!(p.name(3), "");
        // Freed numbers come back before the table grows.
        p.insert(Network::Pod, "e", "f", ok());
        assert_eq!(p.id_bound(), 4);
        assert_eq!(p.nodes(), 4);
        assert!(p.get(Network::Pod, "e", "f", IpFamily::Ipv4).is_some());
        assert!(p.get(Network::Pod, "a", "b", IpFamily::Ipv4).is_some());
    }
}
