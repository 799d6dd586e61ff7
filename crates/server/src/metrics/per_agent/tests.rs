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
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .unwrap();
        String::from_utf8(buf).unwrap()
    }
}

impl std::ops::Deref for Ours {
    type Target = PerAgentSeries;
    fn deref(&self) -> &PerAgentSeries {
        &self.series
    }
}

/// The per-agent series as one `prometheus` vector child per series,
/// the way they were kept before [`PerAgentSeries`]: the reference the
/// compact store must render identically.
struct VecSeries {
    registry: Registry,
    report_count: IntCounterVec,
    error_count: IntCounterVec,
    probes: Vec<prometheus::GaugeVec>,
    report_age: prometheus::GaugeVec,
    clock_skew: prometheus::GaugeVec,
}

impl VecSeries {
    fn new() -> Self {
        let registry = Registry::new();
        let inner = PerAgentSeries::new().unwrap();
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
        let i = &inner.0;
        Self {
            report_count: counter(&i.report_count),
            error_count: counter(&i.error_count),
            probes: i
                .probes
                .iter()
                .map(|d| gauge(d, &["agent", "url"]))
                .collect(),
            report_age: gauge(&i.report_age, &["agent", "pod"]),
            clock_skew: gauge(&i.clock_skew, &["agent", "pod"]),
            registry,
        }
    }

    fn report_accepted(&self, agent: &str, pod: &str, probes: &[ProbeResult], skew: f64) {
        self.report_count.with_label_values(&[agent]).inc();
        self.error_count.with_label_values(&[agent]);
        for probe in probes {
            for (gauge, value) in self.probes.iter().zip(probe_values(probe)) {
                gauge
                    .with_label_values(&[agent, probe.url.as_str()])
                    .set(value as f64);
            }
        }
        self.clock_skew.with_label_values(&[agent, pod]).set(skew);
    }

    fn missed_windows(&self, agent: &str, windows: u64) {
        self.error_count.with_label_values(&[agent]).inc_by(windows);
    }

    /// `urls`: every URL with series under `agent` (vectors cannot list them).
    fn forget(&self, agent: &str, pod: &str, urls: &[&str], shared: bool) {
        let _ = self.report_age.remove_label_values(&[agent, pod]);
        let _ = self.clock_skew.remove_label_values(&[agent, pod]);
        if shared {
            return;
        }
        let _ = self.report_count.remove_label_values(&[agent]);
        let _ = self.error_count.remove_label_values(&[agent]);
        self.forget_probes(agent, urls);
    }

    fn forget_probes(&self, agent: &str, urls: &[&str]) {
        for url in urls {
            for gauge in &self.probes {
                let _ = gauge.remove_label_values(&[agent, url]);
            }
        }
    }

    fn report_age(&self, agent: &str, pod: &str, seconds: f64) {
        self.report_age
            .with_label_values(&[agent, pod])
            .set(seconds);
    }

    fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .unwrap();
        String::from_utf8(buf).unwrap()
    }
}

/// The lines of `text` that belong to the per-agent families.
fn per_agent_lines(text: &str) -> Vec<&str> {
    let names: Vec<&str> = PROBE_GAUGES
        .iter()
        .map(|(n, _)| *n)
        .chain([
            "ncagent_report_count_total",
            "ncagent_error_count_total",
            "netchecker_agent_report_age_seconds",
            "netchecker_agent_clock_skew_seconds",
        ])
        .collect();
    text.lines()
        .filter(|l| {
            let name = l
                .strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l);
            names.iter().any(|n| {
                name.strip_prefix(n)
                    .is_some_and(|rest| rest.starts_with([' ', '{']))
            })
        })
        .collect()
}

#[test]
fn per_agent_series_render_as_prometheus_vectors_would() {
    let probe = |url: &str, code: i64, total: i64| ProbeResult {
        url: url.into(),
        connection_result: 1,
        http_code: code,
        total,
        dns_lookup: 2,
        ..Default::default()
    };
    let ours = Ours::new();
    let reference = VecSeries::new();
    let (a, b, c, d) = (
        "n1-private_network",
        "n2-private_network",
        "n3-host_network",
        "n4-host_network",
    );
    let steps = [
        Op::Report(a, "p1", vec![probe("u1", 200, 3), probe("u2", 0, 0)], 0.5),
        Op::Report(a, "p1", vec![probe("u1", 503, 7), probe("u2", 0, 0)], -1.25),
        // u2 is no longer probed: its series go.
        Op::Report(a, "p1", vec![probe("u1", 503, 7)], -1.0),
        Op::ForgetProbes(a, vec!["u2"]),
        Op::Missed(a, 3),
        Op::Missed(b, 1),
        Op::Age(a, "p1", 4.5),
        // A replacement pod on the same node shares the agent label.
        Op::Report(a, "p2", vec![probe("u1", 200, 1)], 0.0),
        Op::Forget(a, "p1", vec!["u1"], true),
        Op::Report(c, "p3", vec![probe("u3", 200, 2)], 2.0),
        Op::Age(c, "p3", 1.0),
        // The pod's node name changes: the old label's series go.
        Op::Report(d, "p3", vec![probe("u3", 200, 2)], 2.5),
        Op::Forget(c, "p3", vec!["u3"], false),
        Op::Age(d, "p3", 0.25),
    ];
    let check = |step: usize| {
        let (x, y) = (ours.render(), reference.render());
        assert_eq!(
            per_agent_lines(&x),
            per_agent_lines(&y),
            "after step {step}"
        );
    };
    for (step, op) in steps.iter().enumerate() {
        op.apply(&ours, &reference);
        check(step);
    }
    // Some series exist at the end, so the comparison compared values.
    let text = ours.render();
    assert!(text.contains("ncagent_http_probe_code{agent=\"n1-private_network\",url=\"u1\"} 200"));
    assert!(!text.contains("url=\"u2\""));
    assert!(text.contains("ncagent_error_count_total{agent=\"n2-private_network\"} 1"));
    assert!(text.contains(
        "netchecker_agent_report_age_seconds{agent=\"n4-host_network\",pod=\"p3\"} 0.25"
    ));
    assert!(!text.contains("n3-host_network"));
    // Forgetting the last pod of a label removes the label's series.
    ours.forget(a, "p2", false);
    reference.forget(a, "p2", &["u1"], false);
    check(steps.len());
    assert!(
        !ours
            .render()
            .contains("ncagent_report_count_total{agent=\"n1-private_network\"}")
    );
}

enum Op<'a> {
    Report(&'a str, &'a str, Vec<ProbeResult>, f64),
    Missed(&'a str, u64),
    Age(&'a str, &'a str, f64),
    /// Agent, pod, the agent's URLs (for the reference), shared label.
    Forget(&'a str, &'a str, Vec<&'a str>, bool),
    ForgetProbes(&'a str, Vec<&'a str>),
}

impl Op<'_> {
    fn apply(&self, ours: &Ours, reference: &VecSeries) {
        match self {
            Op::Report(agent, pod, probes, skew) => {
                ours.report_accepted(agent, pod, probes, *skew);
                reference.report_accepted(agent, pod, probes, *skew);
            }
            Op::Missed(agent, n) => {
                ours.missed_windows(agent, *n);
                reference.missed_windows(agent, *n);
            }
            Op::Age(agent, pod, s) => {
                ours.report_age(agent, pod, *s);
                reference.report_age(agent, pod, *s);
            }
            Op::Forget(agent, pod, urls, shared) => {
                ours.forget(agent, pod, *shared);
                reference.forget(agent, pod, urls, *shared);
            }
            Op::ForgetProbes(agent, urls) => {
                ours.forget_probes(agent, urls);
                reference.forget_probes(agent, urls);
            }
        }
    }
}
