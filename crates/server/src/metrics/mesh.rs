//! The mesh's series: per node and network, probes sent and received by
//! result; one round-trip histogram per network; failing pairs by kind;
//! members per network. No series per pair: a cluster of N nodes has at
//! most 8·N probe series (4 per network it takes part in), whatever K.
//!
//! A node's series exist while it takes part and go when it leaves
//! ([`MeshSeries::members`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{MetricFamily, MetricType};
use prometheus::{HistogramOpts, HistogramVec, IntGaugeVec, Opts, Registry};

use super::families::{counter_metric, desc, family, label_pairs};
use super::register;
use crate::mesh::Network;
use crate::mesh::judge::PairKind;

/// Round trips in seconds: 100 µs to 10 s.
const RTT_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0, 10.0,
];

const DIRECTIONS: [&str; 2] = ["out", "in"];
const RESULTS: [&str; 2] = ["ok", "failed"];

/// One node's probe counts on one network, by direction then result.
type Counts = [[u64; 2]; 2];

/// The probe counters, kept as a few words per node and network and turned
/// into `netchecker_mesh_probes_total` only when scraped: as `prometheus`
/// vector children (about 1 KB and a dozen allocations each) the 8 series
/// of each of 5,000 nodes took tens of megabytes, and every probe result
/// hashed four label values twice.
#[derive(Clone)]
struct ProbeCounters(Arc<ProbeCountersInner>);

struct ProbeCountersInner {
    desc: Desc,
    /// By network index, then node.
    nodes: Mutex<[HashMap<Box<str>, Counts>; 2]>,
}

impl ProbeCounters {
    fn new() -> prometheus::Result<Self> {
        Ok(Self(Arc::new(ProbeCountersInner {
            desc: desc(
                "netchecker_mesh_probes_total",
                "Mesh probes by node and network: sent by the node (direction out) or aimed at it (in), by result (ok, failed; slow counts as failed)",
                &["direction", "network", "node", "result"],
            )?,
            nodes: Mutex::default(),
        })))
    }

    fn nodes(&self) -> MutexGuard<'_, [HashMap<Box<str>, Counts>; 2]> {
        // Each update is one addition: a panic cannot leave it half done.
        self.0.nodes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Add one to `node`'s count, making its entry on first use only.
fn bump(map: &mut HashMap<Box<str>, Counts>, node: &str, direction: usize, result: usize) {
    if let Some(c) = map.get_mut(node) {
        c[direction][result] += 1;
    } else {
        let mut c = Counts::default();
        c[direction][result] = 1;
        map.insert(node.into(), c);
    }
}

impl Collector for ProbeCounters {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.0.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let nodes = self.nodes();
        let mut metrics = Vec::with_capacity(nodes.iter().map(|m| m.len() * 4).sum());
        for network in Network::ALL {
            for (node, counts) in &nodes[network.index()] {
                for (d, direction) in DIRECTIONS.iter().enumerate() {
                    for (r, result) in RESULTS.iter().enumerate() {
                        metrics.push(counter_metric(
                            label_pairs(&[
                                ("direction", direction),
                                ("network", network.as_str()),
                                ("node", node),
                                ("result", result),
                            ]),
                            counts[d][r],
                        ));
                    }
                }
            }
        }
        drop(nodes);
        vec![family(&self.0.desc, MetricType::COUNTER, metrics)]
    }
}

#[derive(Clone)]
pub struct MeshSeries {
    probes: ProbeCounters,
    rtt: HistogramVec,
    failing: IntGaugeVec,
    members: IntGaugeVec,
}

impl MeshSeries {
    pub fn new(r: &Registry) -> prometheus::Result<Self> {
        let probes = register(r, ProbeCounters::new()?)?;
        let rtt = register(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "netchecker_mesh_rtt_seconds",
                    "Round trip of completed mesh probes (connect, padded request and answer), by network",
                )
                .buckets(RTT_BUCKETS.to_vec()),
                &["network"],
            )?,
        )?;
        let failing = register(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "netchecker_mesh_failing_pairs",
                    "Pairs of nodes confirmed failing (two failed probes in a row), by network and kind (unreachable, mtu, slow)",
                ),
                &["network", "kind"],
            )?,
        )?;
        let members = register(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "netchecker_mesh_members",
                    "Nodes taking part in the mesh this round, by network",
                ),
                &["network"],
            )?,
        )?;
        for n in Network::ALL {
            rtt.with_label_values(&[n.as_str()]);
            members.with_label_values(&[n.as_str()]).set(0);
            for k in PairKind::ALL {
                failing.with_label_values(&[n.as_str(), k.as_str()]).set(0);
            }
        }
        Ok(Self {
            probes,
            rtt,
            failing,
            members,
        })
    }

    /// `from` on `network` probed `to`: one result.
    pub fn probe(&self, network: Network, from: &str, to: &str, failed: bool, rtt_us: Option<u64>) {
        let result = usize::from(failed);
        {
            let mut nodes = self.probes.nodes();
            let map = &mut nodes[network.index()];
            bump(map, from, 0, result);
            bump(map, to, 1, result);
        }
        if let Some(us) = rtt_us {
            self.rtt
                .with_label_values(&[network.as_str()])
                .observe(us as f64 / 1e6);
        }
    }

    /// The round's figures: failing pairs per (network, kind), members per
    /// network; the probe series of nodes no longer taking part go.
    pub fn round(
        &self,
        failing: &[[usize; PairKind::ALL.len()]; 2],
        members: [usize; 2],
        is_member: impl Fn(Network, &str) -> bool,
    ) {
        for n in Network::ALL {
            for (k, kind) in PairKind::ALL.iter().enumerate() {
                self.failing
                    .with_label_values(&[n.as_str(), kind.as_str()])
                    .set(i64::try_from(failing[n.index()][k]).unwrap_or(i64::MAX));
            }
            self.members
                .with_label_values(&[n.as_str()])
                .set(i64::try_from(members[n.index()]).unwrap_or(i64::MAX));
        }
        let mut nodes = self.probes.nodes();
        for n in Network::ALL {
            nodes[n.index()].retain(|node, _| is_member(n, node));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_series_are_per_node_and_go_with_the_node() {
        let r = Registry::new();
        let m = MeshSeries::new(&r).unwrap();
        m.probe(Network::Pod, "n1", "n2", false, Some(1500));
        m.probe(Network::Pod, "n1", "n3", true, None);
        let mut failing = [[0; 3]; 2];
        failing[0][1] = 1;
        m.round(&failing, [3, 0], |_, n| n != "n3");
        let text = {
            let mut buf = Vec::new();
            prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &r.gather(), &mut buf)
                .unwrap();
            String::from_utf8(buf).unwrap()
        };
        for needle in [
            r#"netchecker_mesh_probes_total{direction="out",network="pod",node="n1",result="ok"} 1"#,
            r#"netchecker_mesh_probes_total{direction="out",network="pod",node="n1",result="failed"} 1"#,
            r#"netchecker_mesh_probes_total{direction="in",network="pod",node="n2",result="ok"} 1"#,
            r#"netchecker_mesh_rtt_seconds_bucket{network="pod",le="0.0025"} 1"#,
            r#"netchecker_mesh_rtt_seconds_count{network="host"} 0"#,
            r#"netchecker_mesh_failing_pairs{kind="mtu",network="pod"} 1"#,
            r#"netchecker_mesh_failing_pairs{kind="unreachable",network="host"} 0"#,
            r#"netchecker_mesh_members{network="pod"} 3"#,
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        assert!(
            !text.contains(r#"node="n3""#),
            "a node that left keeps no series"
        );
    }
}
