use super::*;
use crate::domain::agent_label;

fn put(
    c: &AgentCache,
    name: &str,
    report: AgentReport,
    t: Instant,
) -> Result<Option<Entry>, CacheFull> {
    let agent = agent_label(name, &report.nodename);
    c.insert(name, Entry::new(&report, None, agent, t, ts()))
}

fn report(node: &str, interval: u64) -> AgentReport {
    serde_json::from_value(serde_json::json!({"report_interval": interval, "nodename": node}))
        .unwrap()
}

fn ts() -> jiff::Timestamp {
    "2026-11-21T10:00:00Z".parse().unwrap()
}

#[test]
fn full_cache_refuses_new_names_but_updates_known_ones() {
    let c = AgentCache::new(2);
    let t = Instant::now();
    assert!(put(&c, "a", report("n1", 5), t).unwrap().is_none());
    assert!(put(&c, "b", report("n2", 5), t).unwrap().is_none());
    assert_eq!(
        put(&c, "c", report("n3", 5), t).unwrap_err(),
        CacheFull { max: 2 }
    );
    assert!(c.get("c").is_none());
    let prev = put(&c, "a", report("n1", 7), t).unwrap().unwrap();
    assert_eq!(prev.interval, Duration::from_secs(5));
    assert_eq!(c.get("a").unwrap().report.report_interval, 7);
    assert_eq!(c.all().len(), 2);
}

#[test]
fn a_stored_report_is_served_exactly_as_received() {
    let go: AgentReport = serde_json::from_str(include_str!(
        "../../../wire/tests/fixtures/go-agent-report.json"
    ))
    .unwrap();
    let e = Entry::new(
        &go,
        None,
        "node-1-private_network".into(),
        Instant::now(),
        ts(),
    );
    assert_eq!(e.stored().report, go);
    assert_eq!(e.stored().last_updated, ts());
    assert_eq!(e.interval, Duration::from_secs(go.report_interval));
    assert_eq!(&*e.nodename, go.nodename.as_str());
    let d = e.detail();
    assert_eq!(d.nslookup, go.nslookup);
    assert_eq!(d.network_probes, go.network_probes);
    assert!(e.dns_failures.is_empty());
    assert!(e.failing_probes.is_empty(), "the Go agent's ping succeeded");
    let from_pod = Entry::new(&go, Some("node-9"), "x".into(), Instant::now(), ts());
    assert_eq!(&*from_pod.nodename, "node-9", "the watched pod's node wins");
    assert_eq!(
        from_pod.stored().report.nodename,
        go.nodename,
        "served as sent"
    );
}

#[test]
fn reports_are_written_as_serde_writes_them_a_page_at_a_time() {
    let c = AgentCache::new(10);
    let t = Instant::now();
    let go: AgentReport = serde_json::from_str(include_str!(
        "../../../wire/tests/fixtures/go-agent-report.json"
    ))
    .unwrap();
    let hostnet: AgentReport = serde_json::from_str(include_str!(
        "../../../wire/tests/fixtures/go-agent-report-hostnet.json"
    ))
    .unwrap();
    for (name, r) in [("b", &go), ("a", &hostnet), ("c", &report("n", 5))] {
        c.insert(name, Entry::new(r, None, "x".into(), t, ts()))
            .unwrap();
    }
    let whole = serde_json::to_vec(&c.all()).unwrap();
    let mut paged = vec![b'{'];
    let mut after: Option<String> = None;
    let mut first = true;
    while let Some(last) = c.write_page(after.as_deref(), paged.len() + 1, first, &mut paged) {
        after = Some(last);
        first = false;
    }
    paged.push(b'}');
    assert_eq!(
        String::from_utf8(paged).unwrap(),
        String::from_utf8(whole).unwrap()
    );
    let mut one = Vec::new();
    c.with_entries(|m| m["b"].write_stored(&mut one));
    assert_eq!(one, serde_json::to_vec(&c.get("b").unwrap()).unwrap());
}

#[test]
fn labels_follow_the_original_naming() {
    let c = AgentCache::new(10);
    let t = Instant::now();
    put(&c, "netchecker-agent-hostnet-x", report("node-1", 5), t).unwrap();
    put(&c, "netchecker-agent-y", report("node-1", 5), t).unwrap();
    let mut labels: Vec<String> = c.with_entries(|m| m.values().map(|e| e.agent.clone()).collect());
    labels.sort();
    assert_eq!(labels, ["node-1-host_network", "node-1-private_network"]);
}

#[test]
fn missed_windows_are_counted_once_each_and_reset_by_a_new_report() {
    let c = AgentCache::new(10);
    let t0 = Instant::now();
    let p = Policy {
        outdated_factor: 2.0,
        startup_grace: Duration::ZERO,
        report_ttl: None,
        lossy_ratio: 0.05,
    };
    put(&c, "a", report("n", 10), t0).unwrap();
    assert!(
        c.count_missed_windows(t0 + Duration::from_secs(20), &p)
            .is_empty()
    );
    let m = c.count_missed_windows(t0 + Duration::from_secs(25), &p);
    assert_eq!(
        m,
        vec![Missed {
            agent: "n-private_network".into(),
            windows: 1
        }]
    );
    assert!(
        c.count_missed_windows(t0 + Duration::from_secs(29), &p)
            .is_empty()
    );
    let m = c.count_missed_windows(t0 + Duration::from_secs(51), &p);
    assert_eq!(m[0].windows, 3);
    put(&c, "a", report("n", 10), t0 + Duration::from_secs(52)).unwrap();
    assert!(
        c.count_missed_windows(t0 + Duration::from_secs(60), &p)
            .is_empty()
    );
    assert_eq!(
        c.count_missed_windows(t0 + Duration::from_secs(73), &p)[0].windows,
        1
    );
}

#[test]
fn remove_unless_returns_what_it_removed() {
    let c = AgentCache::new(10);
    let t = Instant::now();
    for n in ["a", "b", "c"] {
        put(&c, n, report("n", 5), t).unwrap();
    }
    let gone = c.remove_unless(|k, _| k != "b");
    assert_eq!(
        gone.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    let names: Vec<String> = c.all().into_keys().collect();
    assert_eq!(names, ["a", "c"]);
}
