use std::collections::BTreeMap;
use std::time::Duration;

use netchecker_wire::{AgentKind, AgentReport};
use tokio::time::Instant;

use super::*;
use crate::domain::{ExpectedAgent, Policy};
use crate::evaluation::evaluate;

const SEC: Duration = Duration::from_secs(1);

fn entry(node: &str, received: Instant, nslookup: serde_json::Value, code: i64) -> Entry {
    let report: AgentReport = serde_json::from_value(serde_json::json!({
        "report_interval": 15,
        "nodename": node,
        "hostdate": "2026-11-21T10:00:01.5Z",
        "nslookup": nslookup,
        "network_probes": [{"URL": "http://s/ping", "ConnectionResult": 1, "HTTPCode": code, "Total": 3}],
    }))
    .unwrap();
    let wall: jiff::Timestamp = "2026-11-21T10:00:00Z".parse().unwrap();
    Entry::new(
        &report,
        None,
        format!("{node}-private_network"),
        received,
        wall,
    )
}

#[test]
fn renders_nodes_agents_details_and_summary_from_the_evaluation() {
    let t0 = Instant::now();
    let ok = serde_json::json!({"netchecker-service": ["10.0.0.1"]});
    let mut reports = BTreeMap::from([
        ("pod-a".to_string(), entry("node-1", t0, ok.clone(), 200)),
        (
            "hostnet-a".to_string(),
            entry("node-1", t0 + 40 * SEC, ok.clone(), 200),
        ),
        (
            "pod-b".to_string(),
            entry(
                "node-2",
                t0 + 40 * SEC,
                serde_json::json!({"netchecker-service": []}),
                200,
            ),
        ),
        ("stray".to_string(), entry("node-3", t0 + 40 * SEC, ok, 503)),
    ]);
    let expected = [
        ExpectedAgent {
            namespace: Some("nc"),
            node: Some("node-1"),
            ..ExpectedAgent::named("hostnet-a")
        },
        ExpectedAgent {
            namespace: Some("nc"),
            node: Some("node-1"),
            ..ExpectedAgent::named("pod-a")
        },
        ExpectedAgent {
            namespace: Some("nc"),
            node: Some("node-2"),
            ..ExpectedAgent::named("pod-b")
        },
    ];
    // pod-b tells how its reports went: 2 of 10 handshakes unanswered
    // in minute 4 since the start (the evaluation's).
    let mut window = crate::path::PathWindow::default();
    for i in 0..10 {
        let counts = netchecker_wire::AttemptCounts {
            attempts: 1,
            taken: true,
            raced: u32::from(i < 2),
            ..Default::default()
        };
        window.record(4, Some(&counts), [3 + i]);
    }
    reports.get_mut("pod-b").unwrap().path = Some(Box::new(window));
    let policy = Policy::default();
    let now = t0 + 41 * SEC;
    let eval = evaluate(&expected, &reports, now, t0 - 200 * SEC, &policy);
    let view = ViewFacts {
        source: PodViewSource::Kubernetes,
        health: ViewHealth {
            synced: true,
            stale: true,
            age_seconds: 12.345_6,
        },
    };
    let wall: jiff::Timestamp = "2026-11-21T10:00:41Z".parse().unwrap();
    let s = render(&eval, view, wall);
    let mut written = Vec::new();
    write(&eval, view, wall, &mut written);
    assert_eq!(
        written,
        serde_json::to_vec(&s).unwrap(),
        "one answer, two ways"
    );

    let pod_b = s.nodes.iter().find(|n| n.node == "node-2").unwrap();
    let path = pod_b.path.expect("pooled figures");
    assert_eq!((path.reports, path.attempts, path.unanswered), (10, 10, 2));
    assert_eq!(path.loss_ratio, 0.2);
    assert_eq!(path.probe_ms.unwrap().max, 12.0);
    assert_eq!(pod_b.agents[0].path, Some(path), "one agent: the same");
    assert!(s.nodes[0].path.is_none() && s.nodes[0].agents.iter().all(|a| a.path.is_none()));
    assert_eq!(s.generated_at, wall);
    let nodes: Vec<_> = s
        .nodes
        .iter()
        .map(|n| (n.node.as_str(), n.verdict))
        .collect();
    assert_eq!(
        nodes,
        [
            ("node-1", NodeVerdict::PodNetworkDown),
            ("node-2", NodeVerdict::DnsFailure),
            ("node-3", NodeVerdict::Unknown),
        ]
    );
    assert_eq!(
        s.nodes[0].reason,
        "host-network agent reports on time but pod-network agent pod-a is outdated \
         (last report 41 s ago, interval 15 s): check the pod network (CNI) on this node"
    );
    let a = &s.nodes[0].agents[1];
    assert_eq!(
        (a.name.as_str(), a.namespace.as_deref(), a.kind, a.state),
        (
            "pod-a",
            Some("nc"),
            AgentKind::PodNetwork,
            Some(AgentState::Outdated)
        )
    );
    assert_eq!(
        (a.last_report_age_seconds, a.report_interval_seconds),
        (Some(41.0), Some(15))
    );
    assert_eq!(a.clock_skew_seconds, Some(1.5));
    assert!(a.dns.as_ref().unwrap().ok);
    assert_eq!(a.probes.len(), 1);
    assert!(a.probes[0].ok && a.probes[0].http_code == 200 && a.probes[0].total_ms == 3);
    let b = &s.nodes[1].agents[0];
    assert!(!b.dns.as_ref().unwrap().ok);
    assert_eq!(
        b.dns.as_ref().unwrap().lookups["netchecker-service"],
        Vec::<String>::new()
    );
    let stray = &s.nodes[2].agents[0];
    assert_eq!((stray.state, stray.namespace.as_deref()), (None, None));
    assert!(!stray.probes[0].ok, "503 is a failing probe");

    let sum = &s.summary;
    assert!(!sum.healthy);
    assert_eq!((sum.nodes, sum.agents), (3, 4));
    assert_eq!(sum.verdicts.len(), NodeVerdict::ALL.len());
    assert_eq!(sum.verdicts["pod_network_down"], 1);
    assert_eq!(sum.verdicts["healthy"], 0);
    assert_eq!(
        sum.agent_states
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [
            ("absent", 0),
            ("ok", 2),
            ("outdated", 1),
            ("pending", 0),
            ("unexpected", 1)
        ]
    );
    assert!(!sum.in_startup_grace);
    assert_eq!(sum.pod_view.source, PodViewSource::Kubernetes);
    assert!(sum.pod_view.synced && sum.pod_view.stale);
    assert_eq!(sum.pod_view.age_seconds, 12.346);
}

#[test]
fn an_agent_without_a_report_shows_no_details() {
    let t0 = Instant::now();
    let reports: BTreeMap<String, Entry> = BTreeMap::new();
    let expected = [ExpectedAgent::named("netchecker-agent-hostnet-x")];
    let eval = evaluate(&expected, &reports, t0, t0, &Policy::default());
    let view = ViewFacts {
        source: PodViewSource::Static,
        health: ViewHealth::ALWAYS_CURRENT,
    };
    let s = render(&eval, view, jiff::Timestamp::UNIX_EPOCH);
    assert_eq!(s.nodes.len(), 1);
    let n = &s.nodes[0];
    assert_eq!((n.node.as_str(), n.verdict), ("", NodeVerdict::Pending));
    let a = &n.agents[0];
    assert_eq!(
        (a.kind, a.state),
        (AgentKind::HostNetwork, Some(AgentState::Pending))
    );
    assert!(a.dns.is_none() && a.probes.is_empty() && a.last_report_age_seconds.is_none());
    assert!(a.clock_skew_seconds.is_none() && a.report_interval_seconds.is_none());
    assert!(s.summary.healthy && s.summary.in_startup_grace);
    assert_eq!(s.summary.pod_view.source, PodViewSource::Static);
}

#[test]
fn written_and_rendered_answers_agree_for_escaped_and_missing_details() {
    let t0 = Instant::now();
    // A looked-up name with a quote and a newline is escaped in the stored
    // JSON: that agent is written from the owned rendering, the others are
    // borrowed; the bytes are the same either way.
    let odd = serde_json::json!({"we\"ird\nname": ["10.0.0.1"], "ok": []});
    let plain = serde_json::json!({"netchecker-service": ["10.0.0.1"]});
    let mut pod_b = entry("node-1", t0, plain, 302);
    // Checked credentials and reports over both families: the optional
    // parts are written too.
    pod_b.auth = Some(AuthResult::Missing);
    pod_b.families = [Some(t0), Some(t0 + SEC / 2)];
    let reports = BTreeMap::from([
        ("pod-a".to_string(), entry("node-1", t0, odd, 200)),
        ("pod-b".to_string(), pod_b),
    ]);
    let expected = [
        ExpectedAgent::named("pod-a"),
        ExpectedAgent::named("pod-b"),
        ExpectedAgent::named("pod-c"),
    ];
    let eval = evaluate(&expected, &reports, t0 + SEC, t0, &Policy::default());
    let view = ViewFacts {
        source: PodViewSource::Static,
        health: ViewHealth::ALWAYS_CURRENT,
    };
    let wall = jiff::Timestamp::UNIX_EPOCH;
    let s = render(&eval, view, wall);
    let mut written = Vec::new();
    write(&eval, view, wall, &mut written);
    assert_eq!(
        String::from_utf8(written).unwrap(),
        serde_json::to_string(&s).unwrap()
    );
    let agent = |name: &str| {
        s.nodes
            .iter()
            .flat_map(|n| &n.agents)
            .find(|a| a.name == name)
            .unwrap()
    };
    let odd = agent("pod-a").dns.as_ref().unwrap();
    assert!(odd.lookups.contains_key("we\"ird\nname") && !odd.ok);
    assert!(agent("pod-b").probes[0].ok, "302 is a success");
    assert_eq!(agent("pod-b").auth, Some(AuthResult::Missing));
    assert!(agent("pod-b").families.is_some());
    assert!(agent("pod-c").dns.is_none(), "pod-c never reported");
}
