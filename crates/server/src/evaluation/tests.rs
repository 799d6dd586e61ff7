use super::*;
use crate::domain::Seen;

const SEC: Duration = Duration::from_secs(1);

/// A stored report as the rules see it.
#[derive(Debug, Clone)]
struct Report {
    seen: Seen,
    node: &'static str,
    dns_failures: Vec<&'static str>,
    failing_probes: Vec<&'static str>,
    probe_failure_repeated: bool,
    path: Option<crate::path::PathWindow>,
}

impl Reported for Report {
    fn seen(&self) -> Seen {
        self.seen
    }
    fn node(&self) -> &str {
        self.node
    }
    fn dns_failures(&self) -> impl Iterator<Item = &str> {
        self.dns_failures.iter().copied()
    }
    fn failing_probes(&self) -> impl Iterator<Item = &str> {
        self.failing_probes.iter().copied()
    }
    fn probe_failure_repeated(&self) -> bool {
        self.probe_failure_repeated
    }
    fn path(&self) -> Option<&crate::path::PathWindow> {
        self.path.as_ref()
    }
}

fn seen(received: Instant, interval_secs: u64) -> Report {
    Report {
        seen: Seen {
            received,
            interval: Duration::from_secs(interval_secs),
        },
        node: "n",
        dns_failures: Vec::new(),
        failing_probes: Vec::new(),
        probe_failure_repeated: false,
        path: None,
    }
}

fn policy() -> Policy {
    Policy {
        outdated_factor: 2.0,
        startup_grace: 30 * SEC,
        report_ttl: None,
        lossy_ratio: 0.05,
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The v1 view of an evaluation: expected agents by name with their
/// state, the answer, and the summary's figures.
struct Verdict {
    agents: Vec<(String, AgentState)>,
    answer: CheckResponse,
    healthy: bool,
    states: [usize; 4],
}

impl Verdict {
    fn response(&self) -> CheckResponse {
        self.answer.clone()
    }
    fn is_ok(&self) -> bool {
        self.healthy
    }
    fn count(&self, state: AgentState) -> usize {
        self.states[state.index()]
    }
}

/// Evaluate `expected` (any order, repeats allowed, as a caller might
/// have them before the pod view sorts them) over `map`.
fn judge<'a>(
    expected: impl IntoIterator<Item = &'a str>,
    map: &BTreeMap<String, Report>,
    now: Instant,
    started: Instant,
    policy: &Policy,
) -> Verdict {
    let mut pods: Vec<ExpectedAgent> = expected.into_iter().map(ExpectedAgent::named).collect();
    pods.sort_unstable_by(|a, b| a.name.cmp(b.name));
    pods.dedup_by(|a, b| a.name == b.name);
    let e = evaluate(&pods, map, now, started, policy);
    let mut agents: Vec<(String, AgentState)> = e
        .agents
        .iter()
        .filter_map(|a| Some((a.name.to_owned(), a.state?)))
        .collect();
    agents.sort();
    Verdict {
        agents,
        answer: e.check_response(),
        healthy: e.healthy,
        states: e.states,
    }
}

fn lookup(map: &BTreeMap<String, Report>) -> &BTreeMap<String, Report> {
    map
}

#[test]
fn fresh_agents_are_ok_and_answer_is_healthy() {
    let t0 = Instant::now();
    let map = BTreeMap::from([("a".into(), seen(t0, 15)), ("b".into(), seen(t0, 15))]);
    let v = judge(["b", "a"], lookup(&map), t0 + 10 * SEC, t0, &policy());
    assert_eq!(
        v.agents,
        vec![("a".into(), AgentState::Ok), ("b".into(), AgentState::Ok)]
    );
    let r = v.response();
    assert_eq!(
        r.message,
        "All 2 pods successfully reported back to the server"
    );
    assert!(r.absent.is_empty() && r.outdated.is_empty());
    assert!(v.is_ok());
}

#[test]
fn each_agent_is_judged_by_its_own_interval() {
    let t0 = Instant::now();
    let map = BTreeMap::from([("fast".into(), seen(t0, 5)), ("slow".into(), seen(t0, 60))]);
    let v = judge(["fast", "slow"], lookup(&map), t0 + 11 * SEC, t0, &policy());
    assert_eq!(v.response().outdated, names(&["fast"]));
    assert!(v.response().absent.is_empty());
}

#[test]
fn missing_agent_is_pending_in_grace_then_absent_but_v1_says_absent_in_both() {
    let t0 = Instant::now();
    let map = BTreeMap::new();
    let during = judge(["x"], lookup(&map), t0 + 30 * SEC, t0, &policy());
    assert_eq!(during.agents, vec![("x".into(), AgentState::Pending)]);
    assert!(during.is_ok(), "pending must not fail metrics");
    assert_eq!(during.response().absent, names(&["x"]), "v1 stays literal");
    assert!(!during.response().is_healthy());
    let after = judge(["x"], lookup(&map), t0 + 31 * SEC, t0, &policy());
    assert_eq!(after.agents, vec![("x".into(), AgentState::Absent)]);
    assert!(!after.is_ok());
}

#[test]
fn reported_agents_are_judged_normally_during_grace() {
    let t0 = Instant::now();
    let map = BTreeMap::from([("a".into(), seen(t0, 1))]);
    let v = judge(["a"], lookup(&map), t0 + 5 * SEC, t0, &policy());
    assert_eq!(v.agents, vec![("a".into(), AgentState::Outdated)]);
}

#[test]
fn lists_are_sorted_deduplicated_and_message_is_exact() {
    let t0 = Instant::now();
    let map = BTreeMap::from([
        ("z-old".into(), seen(t0, 1)),
        ("a-old".into(), seen(t0, 1)),
        ("m-ok".into(), seen(t0 + 99 * SEC, 60)),
    ]);
    let v = judge(
        ["z-old", "y-none", "m-ok", "a-old", "b-none", "y-none"],
        lookup(&map),
        t0 + 100 * SEC,
        t0,
        &policy(),
    );
    let r = v.response();
    assert_eq!(r.absent, names(&["b-none", "y-none"]));
    assert_eq!(r.outdated, names(&["a-old", "z-old"]));
    assert_eq!(
        r.message,
        "Connectivity check fails. Reason: there are absent or outdated pods; look up the payload"
    );
    assert_eq!(v.agents.len(), 5);
    assert_eq!(
        (
            v.count(AgentState::Ok),
            v.count(AgentState::Absent),
            v.count(AgentState::Outdated)
        ),
        (1, 2, 2)
    );
}

#[test]
fn reports_of_unexpected_agents_are_ignored() {
    let t0 = Instant::now();
    let map = BTreeMap::from([("gone".into(), seen(t0, 1))]);
    let v = judge(["here"], lookup(&map), t0 + 100 * SEC, t0, &policy());
    assert_eq!(v.response().absent, names(&["here"]));
    assert!(v.response().outdated.is_empty());
}

#[test]
fn no_expected_agents_is_healthy_like_the_original() {
    let t0 = Instant::now();
    let v = judge([], lookup(&BTreeMap::new()), t0, t0, &policy());
    assert_eq!(
        v.response().message,
        "All 0 pods successfully reported back to the server"
    );
}

#[test]
fn nodes_group_agents_and_count_verdicts_and_states() {
    let t0 = Instant::now();
    let on = |node: &'static str| {
        let mut r = seen(t0, 15);
        r.node = node;
        r
    };
    let (a, b, c) = (on("node-1"), on("node-1"), on("node-2"));
    let mut stray = seen(t0, 15);
    stray.node = "node-3";
    stray.dns_failures = vec!["netchecker-service"];
    let map = BTreeMap::from([
        ("netchecker-agent-a".to_string(), a),
        ("netchecker-agent-hostnet-a".to_string(), b),
        ("netchecker-agent-c".to_string(), c),
        ("stray".to_string(), stray),
    ]);
    let pods = [
        ExpectedAgent {
            node: Some("node-1"),
            namespace: Some("nc"),
            ..ExpectedAgent::named("netchecker-agent-a")
        },
        ExpectedAgent {
            node: Some("node-2"),
            ..ExpectedAgent::named("netchecker-agent-b")
        },
        ExpectedAgent {
            node: Some("node-2"),
            ..ExpectedAgent::named("netchecker-agent-c")
        },
        ExpectedAgent {
            node: Some("node-1"),
            ..ExpectedAgent::named("netchecker-agent-hostnet-a")
        },
    ];
    // 31 s after start: grace over, every report 5 s old.
    let e = evaluate(&pods, &map, t0 + 5 * SEC, t0 - 26 * SEC, &policy());
    assert!(!e.in_grace);
    let rows: Vec<_> = e.agents.iter().map(|a| (a.node, a.name, a.state)).collect();
    assert_eq!(
        rows,
        [
            ("node-1", "netchecker-agent-a", Some(AgentState::Ok)),
            ("node-1", "netchecker-agent-hostnet-a", Some(AgentState::Ok)),
            ("node-2", "netchecker-agent-b", Some(AgentState::Absent)),
            ("node-2", "netchecker-agent-c", Some(AgentState::Ok)),
            ("node-3", "stray", None),
        ]
    );
    assert_eq!(e.agents[0].namespace, Some("nc"));
    assert!(e.agents[2].report.is_none() && e.agents[4].report.is_some());
    let nodes: Vec<_> = e.nodes.iter().map(|n| (n.name, n.verdict)).collect();
    assert_eq!(
        nodes,
        [
            ("node-1", NodeVerdict::Healthy),
            ("node-2", NodeVerdict::AgentsLate),
            ("node-3", NodeVerdict::Unknown),
        ]
    );
    assert_eq!(e.agents_of(&e.nodes[1]).len(), 2);
    assert_eq!(
        e.reason(&e.nodes[1]),
        "pod-network agent netchecker-agent-b is absent (no report since the server started)"
    );
    assert_eq!((e.expected(), e.unexpected, e.healthy), (4, 1, false));
    assert_eq!(e.states, [3, 1, 0, 0]);
    assert_eq!(e.verdicts[NodeVerdict::Healthy.index()], 1);
    assert_eq!(e.verdicts.iter().sum::<usize>(), 3);
    assert_eq!(e.check_response().absent, names(&["netchecker-agent-b"]));
}

#[test]
fn a_mesh_verdict_replaces_only_verdicts_that_explain_less() {
    use crate::evaluation::fold;
    use crate::mesh::judge::MeshVerdict as M;
    use NodeVerdict as V;
    // Healthy takes any mesh verdict; DNS and probe failures all but slow.
    assert_eq!(fold(V::Healthy, M::Slow), V::MeshSlow);
    assert_eq!(fold(V::Healthy, M::Partition), V::MeshPartition);
    assert_eq!(fold(V::DnsFailure, M::Mtu), V::MeshMtu);
    assert_eq!(fold(V::ProbeFailures, M::OutboundDown), V::MeshOutboundDown);
    assert_eq!(fold(V::DnsFailure, M::Slow), V::DnsFailure);
    assert_eq!(fold(V::Lossy, M::Partition), V::MeshPartition);
    assert_eq!(fold(V::Lossy, M::Slow), V::Lossy);
    // The node's own path to the server explains more.
    for base in [
        V::Unreachable,
        V::PodNetworkDown,
        V::HostNetworkDown,
        V::AgentsLate,
        V::Pending,
        V::Unknown,
    ] {
        assert_eq!(fold(base, M::InboundDown), base);
    }
    assert_eq!(fold(V::Healthy, M::Ok), V::Healthy);
}

/// An agent's window at minute 3 since the start: 50 requests, `lost` of
/// them raced (their first SYN unanswered), each probe 4 ms.
fn window_losing(lost: u32) -> crate::path::PathWindow {
    let mut w = crate::path::PathWindow::default();
    for i in 0..50 {
        let counts = netchecker_wire::AttemptCounts {
            attempts: 1,
            taken: true,
            raced: u32::from(i < lost),
            ..Default::default()
        };
        w.record(3, Some(&counts), [4]);
    }
    w
}

#[test]
fn a_node_whose_handshakes_go_unanswered_is_lossy_with_the_figure_as_reason() {
    let t0 = Instant::now();
    let now = t0 + 200 * SEC;
    let with = |node, lost| Report {
        node,
        path: Some(window_losing(lost)),
        ..seen(now - SEC, 15)
    };
    let reports = BTreeMap::from([
        ("netchecker-agent-a".to_string(), with("a", 10)),
        ("netchecker-agent-hostnet-a".to_string(), with("a", 0)),
        ("netchecker-agent-b".to_string(), with("b", 2)),
        ("netchecker-agent-hostnet-b".to_string(), with("b", 0)),
    ]);
    // Sorted by name, as the pod view lists them.
    let expected = [
        ExpectedAgent {
            node: Some("a"),
            ..ExpectedAgent::named("netchecker-agent-a")
        },
        ExpectedAgent {
            node: Some("b"),
            ..ExpectedAgent::named("netchecker-agent-b")
        },
        ExpectedAgent {
            node: Some("a"),
            ..ExpectedAgent::named("netchecker-agent-hostnet-a")
        },
        ExpectedAgent {
            node: Some("b"),
            ..ExpectedAgent::named("netchecker-agent-hostnet-b")
        },
    ];
    let e = evaluate(&expected, &reports, now, t0, &policy());
    // a: 10 of 100 (10%); b: 2 of 100 (2%, under the 5% threshold).
    let verdicts: Vec<_> = e.nodes.iter().map(|n| (n.name, n.verdict)).collect();
    assert_eq!(
        verdicts,
        [("a", NodeVerdict::Lossy), ("b", NodeVerdict::Healthy)]
    );
    assert!(e.healthy, "lossy is not the v1 check's business");
    assert_eq!(
        e.reason(&e.nodes[0]),
        "10% of report connections to the server went unanswered at first (10 of 100 in the last 5 minutes, 0 failed); probes of the server take 4.0 ms ± 0.0 ms: the node's path loses packets; reports still get through"
    );
    // Threshold 0: never lossy. Worse problems win over lossy.
    let off = Policy {
        lossy_ratio: 0.0,
        ..policy()
    };
    let e = evaluate(&expected, &reports, now, t0, &off);
    assert_eq!(e.nodes[0].verdict, NodeVerdict::Healthy);
    let mut late = reports.clone();
    late.get_mut("netchecker-agent-a").unwrap().seen.received = t0;
    let e = evaluate(&expected, &late, now, t0, &policy());
    assert_eq!(e.nodes[0].verdict, NodeVerdict::PodNetworkDown);
    // Six minutes later the window is empty: healthy again.
    let e = evaluate(
        &expected,
        &reports,
        now + 360 * SEC,
        t0,
        &Policy {
            outdated_factor: 100.0,
            ..policy()
        },
    );
    assert_eq!(e.nodes[0].verdict, NodeVerdict::Healthy);
}

/// On a lossy node a probe that failed once is the loss's doing: the node
/// stays `lossy` (the reason names the probe); failed in two consecutive
/// reports, it is named. Off a lossy path one failure is named at once,
/// as before.
#[test]
fn on_a_lossy_node_a_probe_is_named_when_it_fails_twice() {
    let t0 = Instant::now();
    let now = t0 + 200 * SEC;
    let url = "http://netchecker-service:8081/api/v1/ping";
    let report = |lost, failing: bool, repeated| Report {
        node: "a",
        path: Some(window_losing(lost)),
        failing_probes: if failing { vec![url] } else { Vec::new() },
        probe_failure_repeated: repeated,
        ..seen(now - SEC, 15)
    };
    let expected = [ExpectedAgent {
        node: Some("a"),
        ..ExpectedAgent::named("netchecker-agent-a")
    }];
    let judge = |r: Report| {
        let reports = BTreeMap::from([("netchecker-agent-a".to_string(), r)]);
        let e = evaluate(&expected, &reports, now, t0, &policy());
        (e.nodes[0].verdict, e.reason(&e.nodes[0]))
    };

    // 10 of 50 handshakes lost: lossy; the one-off failure only in the reason.
    let (verdict, reason) = judge(report(10, true, false));
    assert_eq!(verdict, NodeVerdict::Lossy);
    assert!(
        reason.ends_with(&format!(
            "; failed once, named if it fails again: {url} from netchecker-agent-a"
        )),
        "{reason}"
    );
    assert_eq!(judge(report(10, false, false)).0, NodeVerdict::Lossy);
    // The same probe failed in the previous report too: named.
    assert_eq!(judge(report(10, true, true)).0, NodeVerdict::ProbeFailures);
    // No loss: a single failure is named, as always.
    assert_eq!(judge(report(0, true, false)).0, NodeVerdict::ProbeFailures);
}
