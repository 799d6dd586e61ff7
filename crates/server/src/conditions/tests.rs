use super::write::condition_patch;
use super::*;
use NodeVerdict::*;

#[test]
fn verdicts_read_as_condition_reasons() {
    assert_eq!(camel(PodNetworkDown), "PodNetworkDown");
    assert_eq!(camel(MeshMtu), "MeshMtu");
    assert_eq!(camel(Unreachable), "Unreachable");
    assert_eq!(wanted(Pending), None);
    assert_eq!(wanted(Unknown), None);
    let ok = wanted(Healthy).unwrap();
    assert_eq!(
        (ok.problem, ok.status(), ok.reason.as_str()),
        (false, "False", "NetworkOk")
    );
    let down = wanted(DnsFailure).unwrap();
    assert_eq!(
        (down.problem, down.status(), down.reason.as_str()),
        (true, "True", "DnsFailure")
    );
}

#[test]
fn messages_are_cut_on_a_character_boundary() {
    assert_eq!(bounded("short", 10), "short");
    let long = "é".repeat(1000);
    let cut = bounded(&long, MAX_MESSAGE);
    assert!(cut.len() <= MAX_MESSAGE, "{}", cut.len());
    assert!(cut.ends_with('…'));
    assert!(cut.len() > MAX_MESSAGE - 8);
}

#[test]
fn the_patch_keeps_the_transition_time_unless_the_status_changes() {
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let w = wanted(PodNetworkDown).unwrap();
    let p = condition_patch(&w, "pod agent absent", now, true);
    let c = &p["status"]["conditions"][0];
    assert_eq!(c["type"], CONDITION_TYPE);
    assert_eq!(c["status"], "True");
    assert_eq!(c["reason"], "PodNetworkDown");
    assert_eq!(c["message"], "pod agent absent");
    assert_eq!(c["lastHeartbeatTime"], "2027-01-15T08:00:00Z");
    assert_eq!(c["lastTransitionTime"], "2027-01-15T08:00:00Z");
    let p = condition_patch(&w, "pod agent absent", now, false);
    assert!(
        p["status"]["conditions"][0]
            .get("lastTransitionTime")
            .is_none()
    );
}

type N = (&'static str, NodeVerdict);

fn key(n: &N) -> (&str, NodeVerdict) {
    (n.0, n.1)
}

/// The queued conditions as `node:reason`.
fn drain(rx: &mut mpsc::Receiver<Job>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(job) = rx.try_recv() {
        if let Job::Condition { node, wanted, .. } = job {
            out.push(format!("{node}:{}", wanted.reason));
        }
    }
    out
}

#[test]
fn only_changes_are_queued_and_a_new_term_writes_every_node_again() {
    let registry = Registry::new();
    let (writer, mut rx) = NodeWriter::new(&registry, 16).unwrap();
    let reason = |n: &N| format!("why {}", n.0);
    let nodes = [
        ("a", Healthy),
        ("b", PodNetworkDown),
        ("c", Pending),
        ("", Unreachable),
    ];
    writer.sync(1, &nodes, key, reason);
    assert_eq!(drain(&mut rx), ["a:NetworkOk", "b:PodNetworkDown"]);
    writer.sync(1, &nodes, key, reason);
    assert!(drain(&mut rx).is_empty(), "nothing changed");
    // b recovers through pending: pending leaves it, healthy clears it.
    writer.sync(1, &[("a", Healthy), ("b", Pending)], key, reason);
    assert!(drain(&mut rx).is_empty());
    writer.sync(1, &[("a", Healthy), ("b", Healthy)], key, reason);
    assert_eq!(drain(&mut rx), ["b:NetworkOk"]);
    // A new term (leadership lost and won again): every node once more.
    writer.sync(2, &[("a", Healthy), ("b", Healthy)], key, reason);
    assert_eq!(drain(&mut rx).len(), 2);
    // A write that failed is forgotten and queued again.
    let (sent, _) = writer.shared();
    forget(&sent, "a");
    writer.sync(2, &[("a", Healthy), ("b", Healthy)], key, reason);
    assert_eq!(drain(&mut rx), ["a:NetworkOk"]);
}

#[test]
fn a_full_queue_drops_and_a_later_round_queues_again() {
    let registry = Registry::new();
    let (writer, mut rx) = NodeWriter::new(&registry, 1).unwrap();
    let nodes = [("a", Unreachable), ("b", Unreachable)];
    writer.sync(1, &nodes, key, |_| String::new());
    assert_eq!(drain(&mut rx).len(), 1);
    writer.sync(1, &nodes, key, |_| String::new());
    assert_eq!(drain(&mut rx), ["b:Unreachable"]);
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    assert!(
        text.contains(r#"netchecker_node_writes_total{kind="condition",result="dropped"} 1"#),
        "{text}"
    );
}
