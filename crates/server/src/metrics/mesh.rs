//! The mesh's series: per node and network, probes sent and received by
//! result; one round-trip histogram per network; failing pairs by kind;
//! members per network. No series per pair: a cluster of N nodes has at
//! most 16·N probe series, whatever K.
//!
//! A node's series exist while it takes part and go when it leaves
//! ([`MeshSeries::members`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::register;
use crate::mesh::Network;
use crate::mesh::judge::PairKind;

/// Round trips in seconds: 100 µs to 10 s.
const RTT_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0, 10.0,
];

/// The (node, network) pairs that have probe series.
type Labelled = Arc<Mutex<HashSet<(Box<str>, Network)>>>;

#[derive(Clone)]
pub struct MeshSeries {
    probes: IntCounterVec,
    rtt: HistogramVec,
    failing: IntGaugeVec,
    members: IntGaugeVec,
    /// (node, network) pairs that have probe series.
    labelled: Labelled,
}

const DIRECTIONS: [&str; 2] = ["out", "in"];
const RESULTS: [&str; 2] = ["ok", "failed"];

impl MeshSeries {
    pub fn new(r: &Registry) -> prometheus::Result<Self> {
        let probes = register(
            r,
            IntCounterVec::new(
                Opts::new(
                    "netchecker_mesh_probes_total",
                    "Mesh probes by node and network: sent by the node (direction out) or aimed at it (in), by result (ok, failed; slow counts as failed)",
                ),
                &["node", "network", "direction", "result"],
            )?,
        )?;
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
            labelled: Arc::default(),
        })
    }

    /// `from` on `network` probed `to`: one result.
    pub fn probe(&self, network: Network, from: &str, to: &str, failed: bool, rtt_us: Option<u64>) {
        let net = network.as_str();
        let result = RESULTS[usize::from(failed)];
        self.probes
            .with_label_values(&[from, net, "out", result])
            .inc();
        self.probes
            .with_label_values(&[to, net, "in", result])
            .inc();
        if let Some(us) = rtt_us {
            self.rtt.with_label_values(&[net]).observe(us as f64 / 1e6);
        }
        let mut labelled = self.labelled.lock().unwrap_or_else(PoisonError::into_inner);
        for node in [from, to] {
            if !labelled.contains(&(node.into(), network)) {
                labelled.insert((node.into(), network));
            }
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
        let mut labelled = self.labelled.lock().unwrap_or_else(PoisonError::into_inner);
        labelled.retain(|(node, network)| {
            if is_member(*network, node) {
                return true;
            }
            for d in DIRECTIONS {
                for r in RESULTS {
                    let _ = self
                        .probes
                        .remove_label_values(&[node, network.as_str(), d, r]);
                }
            }
            false
        });
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
