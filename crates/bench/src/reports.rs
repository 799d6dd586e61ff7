//! The reports the load generator sends: the Go agent's fixture, renamed
//! per agent and padded with the original's 1500 zeros through the wire
//! crate's `OutgoingReport`, so each body is shaped exactly as a Go agent's.

use bytes::Bytes;
use netchecker_wire::{AgentReport, OutgoingReport};

use crate::http::Reports;

const GO_REPORT: &str = include_str!("../../wire/tests/fixtures/go-agent-report.json");

/// The original agent's default `zeroextenderlength`.
pub const PADDING: usize = 1500;

/// Pod name of agent `i`.
pub fn pod_name(i: usize) -> String {
    format!("netchecker-agent-{i:05}")
}

/// Node name of agent `i`: one agent per node, as a DaemonSet runs them,
/// so every agent has its own metric label.
pub fn node_name(i: usize) -> String {
    format!("node-{i:05}")
}

/// `agents` prebuilt reports, one per agent name.
pub fn build(agents: usize) -> anyhow::Result<Reports> {
    let template: AgentReport = serde_json::from_str(GO_REPORT)?;
    let mut paths = Vec::with_capacity(agents);
    let mut bodies = Vec::with_capacity(agents);
    for i in 0..agents {
        let mut r = template.clone();
        r.podname = pod_name(i);
        r.nodename = node_name(i);
        paths.push(format!("{}/{}", netchecker_wire::AGENTS_PATH, r.podname));
        bodies.push(Bytes::from(serde_json::to_vec(&OutgoingReport::new(
            &r, PADDING,
        ))?));
    }
    Ok(Reports {
        paths,
        bodies,
        tokens: Vec::new(),
        mesh: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_go_agents_shape_and_size() {
        let r = build(3).unwrap();
        assert_eq!(r.paths[2], "/api/v1/agents/netchecker-agent-00002");
        let go: serde_json::Value = serde_json::from_str(GO_REPORT).unwrap();
        let ours: serde_json::Value = serde_json::from_slice(&r.bodies[2]).unwrap();
        assert_eq!(ours["podname"], "netchecker-agent-00002");
        assert_eq!(ours["nodename"], "node-00002");
        assert_eq!(ours["zero_extender"], go["zero_extender"]);
        assert_eq!(ours["network_probes"], go["network_probes"]);
        assert_eq!(ours["ips"], go["ips"]);
        // Same size as the fixture give or take the longer names.
        let delta = r.bodies[2].len() as i64 - GO_REPORT.trim_end().len() as i64;
        assert!(delta.abs() < 16, "body is {} bytes", r.bodies[2].len());
    }
}
