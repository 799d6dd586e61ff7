use std::collections::BTreeMap;

use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

use super::*;

fn register<C: Collector + Clone + 'static>(r: &Registry, c: C) -> prometheus::Result<C> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

/// The compact series on a registry of their own, as the server has them.
struct Ours {
    registry: Registry,
    series: PerAgentSeries,
}

impl Ours {
    fn new() -> Self {
        let registry = Registry::new();
        let series = register(&registry, PerAgentSeries::new().unwrap()).unwrap();
        Self { registry, series }
    }

    fn render(&self) -> String {
        render(&self.registry)
    }
}

impl std::ops::Deref for Ours {
    type Target = PerAgentSeries;
    fn deref(&self) -> &PerAgentSeries {
        &self.series
    }
}

fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .unwrap();
    String::from_utf8(buf).unwrap()
}

/// One pod in the model: label, report order, last probes, age, skew.
type ModelPod = (String, u64, Vec<ProbeResult>, Option<f64>, Option<f64>);

/// What the series must say, kept the plain way: per label its counters
/// and pods, per pod its label, last probes, age and skew.
#[derive(Default)]
struct Model {
    labels: BTreeMap<String, (u64, u64)>,
    pods: BTreeMap<String, ModelPod>,
    seq: u64,
}

impl Model {
    fn report(&mut self, agent: &str, pod: &str, probes: &[ProbeResult], skew: f64) {
        self.seq += 1;
        if self.pods.get(pod).is_some_and(|p| p.0 != agent) {
            self.forget(pod);
        }
        let entry = self
            .pods
            .entry(pod.into())
            .or_insert_with(|| (agent.into(), 0, Vec::new(), None, None));
        entry.1 = self.seq;
        entry.2 = probes.to_vec();
        entry.4 = Some(skew);
        self.labels.entry(agent.into()).or_default().0 += 1;
    }

    fn forget(&mut self, pod: &str) {
        if let Some((agent, ..)) = self.pods.remove(pod)
            && !self.pods.values().any(|p| p.0 == agent)
        {
            self.labels.remove(&agent);
        }
    }

    /// The model as one `prometheus` vector child per series: the
    /// exposition the compact store must give line for line.
    fn render(&self) -> String {
        let registry = Registry::new();
        let inner = PerAgentSeries::new().unwrap();
        let i = &inner.0;
        let counter = |d: &Desc| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(&d.fq_name, &d.help), &["agent"]).unwrap(),
            )
            .unwrap()
        };
        let gauge = |d: &Desc, labels: &[&str]| {
            register(
                &registry,
                prometheus::GaugeVec::new(Opts::new(&d.fq_name, &d.help), labels).unwrap(),
            )
            .unwrap()
        };
        let (reports, errors) = (counter(&i.report_count), counter(&i.error_count));
        let probes: Vec<_> = i
            .probes
            .iter()
            .map(|d| gauge(d, &["agent", "url"]))
            .collect();
        let (ages, skews) = (
            gauge(&i.report_age, &["agent", "pod"]),
            gauge(&i.clock_skew, &["agent", "pod"]),
        );
        for (agent, (r, e)) in &self.labels {
            reports.with_label_values(&[agent]).inc_by(*r);
            errors.with_label_values(&[agent]).inc_by(*e);
        }
        // Pods in report order: where two share a label and a URL, the
        // later report's values stay.
        let mut by_seq: Vec<_> = self.pods.iter().collect();
        by_seq.sort_by_key(|(_, p)| p.1);
        for (pod, (agent, _, list, age, skew)) in by_seq {
            for p in list {
                for (g, v) in probes.iter().zip(probe_values(p)) {
                    g.with_label_values(&[agent, &p.url]).set(v as f64);
                }
            }
            if let Some(a) = age {
                ages.with_label_values(&[agent, pod]).set(*a);
            }
            if let Some(s) = skew {
                skews.with_label_values(&[agent, pod]).set(*s);
            }
        }
        render(&registry)
    }
}

fn probe(url: &str, code: i64, total: i64) -> ProbeResult {
    ProbeResult {
        url: url.into(),
        connection_result: 1,
        http_code: code,
        total,
        dns_lookup: 2,
        ..Default::default()
    }
}

enum Op<'a> {
    Report(&'a str, &'a str, Vec<ProbeResult>, f64),
    Missed(&'a str, u64),
    Age(&'a str, f64),
    Forget(&'a str),
}

#[test]
fn per_agent_series_render_as_prometheus_vectors_would() {
    let ours = Ours::new();
    let mut model = Model::default();
    let (a, b, c, d) = (
        "n1-private_network",
        "n2-private_network",
        "n3-host_network",
        "n4-host_network",
    );
    let steps = [
        Op::Report(a, "p1", vec![probe("u1", 200, 3), probe("u2", 0, 0)], 0.5),
        Op::Report(a, "p1", vec![probe("u1", 503, 7), probe("u2", 0, 0)], -1.25),
        // u2 is no longer probed: its series go with this report.
        Op::Report(a, "p1", vec![probe("u1", 503, 7)], -1.0),
        Op::Missed(a, 3),
        Op::Report(b, "pb", vec![], 0.0),
        Op::Missed(b, 1),
        Op::Age("p1", 4.5),
        // A replacement pod on the same node shares the agent label; its
        // later report's probe values are shown.
        Op::Report(a, "p2", vec![probe("u1", 200, 1)], 0.0),
        Op::Report(a, "p1", vec![probe("u1", 404, 9)], 0.0),
        Op::Report(a, "p2", vec![probe("u1", 200, 2)], 0.0),
        Op::Forget("p1"),
        Op::Report(c, "p3", vec![probe("u3", 200, 2)], 2.0),
        Op::Age("p3", 1.0),
        // The pod's node name changes: the old label's series go.
        Op::Report(d, "p3", vec![probe("u3", 200, 2)], 2.5),
        Op::Age("p3", 0.25),
    ];
    for (step, op) in steps.iter().enumerate() {
        match op {
            Op::Report(agent, pod, probes, skew) => {
                ours.report_accepted(agent, pod, probes, *skew);
                model.report(agent, pod, probes, *skew);
            }
            Op::Missed(agent, n) => {
                ours.missed_windows(agent, *n);
                model.labels.get_mut(*agent).unwrap().1 += n;
            }
            Op::Age(pod, s) => {
                ours.report_age(pod, *s);
                model.pods.get_mut(*pod).unwrap().3 = Some(*s);
            }
            Op::Forget(pod) => {
                ours.forget(pod);
                model.forget(pod);
            }
        }
        assert_eq!(ours.render(), model.render(), "after step {step}");
    }
    // Some series exist at the end, so the comparison compared values.
    let text = ours.render();
    for line in [
        "ncagent_http_probe_code{agent=\"n1-private_network\",url=\"u1\"} 200",
        "ncagent_http_probe_total_time_ms{agent=\"n1-private_network\",url=\"u1\"} 2",
        "ncagent_report_count_total{agent=\"n1-private_network\"} 6",
        "ncagent_error_count_total{agent=\"n2-private_network\"} 1",
        "netchecker_agent_report_age_seconds{agent=\"n4-host_network\",pod=\"p3\"} 0.25",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    assert!(!text.contains("url=\"u2\""));
    assert!(!text.contains("n3-host_network"));
    // Forgetting the last pod of a label removes the label's series.
    ours.forget("p2");
    assert!(!ours.render().contains("n1-private_network"));
}

#[test]
fn a_flood_of_changing_urls_under_a_second_name_stays_bounded() {
    // Two names for one node, each report with its own new URLs: the
    // series are the last report's of each pod, never an accumulation.
    let ours = Ours::new();
    let agent = "node-a-private_network";
    for round in 0..20 {
        for pod in ["netchecker-agent-real", "netchecker-agent-fake"] {
            let probes: Vec<_> = (0..16)
                .map(|i| probe(&format!("http://h/{pod}/{round}/{i}"), 200, 1))
                .collect();
            ours.report_accepted(agent, pod, &probes, 0.0);
        }
    }
    let text = ours.render();
    let probe_series = text
        .lines()
        .filter(|l| l.starts_with("ncagent_http_probe_"))
        .count();
    assert_eq!(probe_series, 2 * 16 * 8, "two pods, 16 URLs, 8 gauges");
    assert!(text.contains("url=\"http://h/netchecker-agent-fake/19/0\""));
    assert!(!text.contains("/18/"));
}
