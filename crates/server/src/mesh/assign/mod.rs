//! Who probes whom: a deterministic, rotating assignment over a ring of
//! nodes.
//!
//! The nodes taking part (per network: pod or host) are ordered by a hash
//! of their name, a ring that does not depend on when each node joined. In
//! round `r` every node probes its ring successor (offset 1) and the nodes
//! K-1 further offsets ahead; those offsets rotate with the round through
//! every offset from 2 to N-1:
//!
//! ```text
//! offsets(r) = {1} ∪ { 2 + ((r·(K-1) + m) mod (N-2)) : m = 0 .. K-2 }
//! ```
//!
//! Every offset is a rotation of the ring, so every node probes exactly K
//! peers and is probed by exactly K; and since each ordered pair (a, b) is
//! one offset apart, every pair is probed at least once every
//! `ceil((N-2)/(K-1))` rounds ([`cover_rounds`]). With K >= N-1 every
//! node probes every other node every round. The cost is N·K probes a
//! round, whatever the size of the cluster.

/// A stable 64-bit hash of a node name (FNV-1a): the same on every server
/// and every version, unlike the standard library's hasher.
pub fn name_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The nodes of one network in ring order (with their hashes, so finding
/// a node is a binary search without hashing anything but it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ring {
    nodes: Vec<(u64, Box<str>)>,
}

impl Ring {
    /// The ring of `nodes` (any order, repeats ignored).
    pub fn new<'a>(nodes: impl IntoIterator<Item = &'a str>) -> Self {
        let mut nodes: Vec<(u64, Box<str>)> = nodes
            .into_iter()
            .map(|n| (name_hash(n), n.into()))
            .collect();
        nodes.sort_unstable();
        nodes.dedup_by(|a, b| a.1 == b.1);
        Self { nodes }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|(_, n)| &**n)
    }

    /// Where `node` is on the ring.
    pub fn position(&self, node: &str) -> Option<usize> {
        let h = name_hash(node);
        let start = self.nodes.partition_point(|(nh, _)| *nh < h);
        self.nodes[start..]
            .iter()
            .take_while(|(nh, _)| *nh == h)
            .position(|(_, n)| &**n == node)
            .map(|p| start + p)
    }

    /// The peers `node` probes in `round` with `k` peers a round, in offset
    /// order (successor first). Empty for a node not on the ring.
    pub fn peers(&self, node: &str, round: u64, k: usize) -> Vec<&str> {
        let Some(i) = self.position(node) else {
            return Vec::new();
        };
        let n = self.nodes.len();
        offsets(n, k, round)
            .into_iter()
            .map(|d| &*self.nodes[(i + d) % n].1)
            .collect()
    }
}

/// The offsets of round `round` on a ring of `n` nodes with `k` peers a
/// round: distinct, in 1..n, the successor (1) first; all of them when
/// `k >= n - 1`.
pub fn offsets(n: usize, k: usize, round: u64) -> Vec<usize> {
    if n < 2 || k == 0 {
        return Vec::new();
    }
    if k >= n - 1 {
        return (1..n).collect();
    }
    let span = (n - 2) as u64;
    let step = (k - 1) as u64;
    let first = (round % span) * step % span;
    let mut out = Vec::with_capacity(k);
    out.push(1);
    out.extend((0..step).map(|m| 2 + ((first + m) % span) as usize));
    out
}

/// Rounds within which every ordered pair of a ring of `n` nodes is probed
/// at least once with `k` peers a round: `ceil((n-2)/(k-1))`, 1 when every
/// node probes every other; `None` with `k = 1` on more than two nodes
/// (successors only: most pairs are never probed).
pub fn cover_rounds(n: usize, k: usize) -> Option<u64> {
    if n < 2 || k == 0 {
        return None;
    }
    if k >= n - 1 {
        return Some(1);
    }
    if k == 1 {
        return None;
    }
    Some(((n - 2) as u64).div_ceil((k - 1) as u64))
}

#[cfg(test)]
mod tests;
