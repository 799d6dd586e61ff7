//! The series with one value per agent or per pod: the original's
//! `ncagent_*` counters and probe gauges, report age and clock skew.
//!
//! They are kept here as a few hundred bytes per agent and turned into
//! metric families only when scraped, rather than as one `prometheus`
//! vector child per series: each child carries its own copy of the
//! metric's descriptor and label pairs (about 1 KB and a dozen
//! allocations), which with 10,000 agents and a dozen series each came to
//! over 100 MB. The names, types, help texts, labels and values are those
//! the vector children would give (a test holds them equal).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use netchecker_wire::ProbeResult;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};

/// The original's eight probe gauges, in `ProbeResult` field order.
const PROBE_GAUGES: [(&str, &str); 8] = [
    (
        "ncagent_http_probe_connection_result",
        "Connection result of the agent's HTTP probe (1 connected, 0 not)",
    ),
    (
        "ncagent_http_probe_code",
        "HTTP status code of the agent's HTTP probe (0 when no response)",
    ),
    (
        "ncagent_http_probe_total_time_ms",
        "Total time of the agent's HTTP probe in milliseconds",
    ),
    (
        "ncagent_http_probe_content_transfer_time_ms",
        "Content transfer time of the agent's HTTP probe in milliseconds",
    ),
    (
        "ncagent_http_probe_tcp_connection_time_ms",
        "TCP connection time of the agent's HTTP probe in milliseconds",
    ),
    (
        "ncagent_http_probe_dns_lookup_time_ms",
        "DNS lookup time of the agent's HTTP probe in milliseconds",
    ),
    (
        "ncagent_http_probe_connect_time_ms",
        "Connect time (including TLS) of the agent's HTTP probe in milliseconds",
    ),
    (
        "ncagent_http_probe_server_processing_time_ms",
        "Server processing time of the agent's HTTP probe in milliseconds",
    ),
];

fn probe_values(p: &ProbeResult) -> [i64; 8] {
    [
        p.connection_result,
        p.http_code,
        p.total,
        p.content_transfer,
        p.tcp_connection,
        p.dns_lookup,
        p.connect,
        p.server_processing,
    ]
}

/// Values of the series labelled by `agent` alone or by `agent` and `url`.
#[derive(Debug, Default)]
struct AgentValues {
    /// `ncagent_report_count_total`, once it exists.
    reports: Option<u64>,
    /// `ncagent_error_count_total`, once it exists.
    errors: Option<u64>,
    /// The eight probe gauges per probed URL, in `PROBE_GAUGES` order.
    probes: Vec<(Box<str>, [i64; 8])>,
}

/// Values of the series labelled by `agent` and `pod`.
#[derive(Debug, Default, Clone, Copy)]
struct PodValues {
    /// `netchecker_agent_report_age_seconds`, once set.
    age: Option<f64>,
    /// `netchecker_agent_clock_skew_seconds`, once set.
    skew: Option<f64>,
}

#[derive(Debug, Default)]
struct SeriesState {
    /// By `agent` label.
    agents: HashMap<Box<str>, AgentValues>,
    /// By pod, then by `agent` label (one label per pod but for the moment
    /// its node name changes).
    pods: HashMap<Box<str>, Vec<(Box<str>, PodValues)>>,
}

impl SeriesState {
    fn agent(&mut self, agent: &str) -> &mut AgentValues {
        if !self.agents.contains_key(agent) {
            self.agents.insert(agent.into(), AgentValues::default());
        }
        self.agents.get_mut(agent).expect("inserted above")
    }

    fn pod(&mut self, agent: &str, pod: &str) -> &mut PodValues {
        if !self.pods.contains_key(pod) {
            self.pods.insert(pod.into(), Vec::with_capacity(1));
        }
        let labels = self.pods.get_mut(pod).expect("inserted above");
        let i = match labels.iter().position(|(a, _)| &**a == agent) {
            Some(i) => i,
            None => {
                labels.push((agent.into(), PodValues::default()));
                labels.len() - 1
            }
        };
        &mut labels[i].1
    }

    fn remove_pod(&mut self, agent: &str, pod: &str) {
        if let Some(labels) = self.pods.get_mut(pod) {
            labels.retain(|(a, _)| &**a != agent);
            if labels.is_empty() {
                self.pods.remove(pod);
            }
        }
    }
}

/// The per-agent and per-pod series: same names, types, help, labels and
/// values as one `IntCounterVec`/`GaugeVec` child per series would give,
/// stored compactly and turned into metric families only when scraped.
#[derive(Clone)]
pub struct PerAgentSeries(Arc<PerAgentInner>);

struct PerAgentInner {
    report_count: Desc,
    error_count: Desc,
    probes: Vec<Desc>,
    report_age: Desc,
    clock_skew: Desc,
    state: Mutex<SeriesState>,
}

fn desc(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<Desc> {
    Desc::new(
        name.to_owned(),
        help.to_owned(),
        labels.iter().map(|l| (*l).to_owned()).collect(),
        HashMap::new(),
    )
}

fn label_pairs(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(name, value)| {
            let mut p = LabelPair::default();
            p.set_name((*name).to_owned());
            p.set_value((*value).to_owned());
            p
        })
        .collect()
}

fn family(d: &Desc, kind: MetricType, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(d.fq_name.clone());
    f.set_help(d.help.clone());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

fn counter_metric(labels: Vec<LabelPair>, value: u64) -> proto::Metric {
    let mut c = proto::Counter::default();
    c.set_value(value as f64);
    let mut m = proto::Metric::from_label(labels);
    m.set_counter(c);
    m
}

fn gauge_metric(labels: Vec<LabelPair>, value: f64) -> proto::Metric {
    let mut g = proto::Gauge::default();
    g.set_value(value);
    let mut m = proto::Metric::from_label(labels);
    m.set_gauge(g);
    m
}

impl PerAgentSeries {
    pub fn new() -> prometheus::Result<Self> {
        Ok(Self(Arc::new(PerAgentInner {
            report_count: desc(
                "ncagent_report_count_total",
                "Total number of reports received from the agent",
                &["agent"],
            )?,
            error_count: desc(
                "ncagent_error_count_total",
                "Reporting windows the agent missed: one once its report is older than the outdated window, then one per further interval",
                &["agent"],
            )?,
            probes: PROBE_GAUGES
                .iter()
                .map(|(name, help)| desc(name, help, &["agent", "url"]))
                .collect::<prometheus::Result<_>>()?,
            report_age: desc(
                "netchecker_agent_report_age_seconds",
                "Seconds since the agent's last report was received",
                &["agent", "pod"],
            )?,
            clock_skew: desc(
                "netchecker_agent_clock_skew_seconds",
                "The agent's hostdate minus the server's clock when its last report arrived",
                &["agent", "pod"],
            )?,
            state: Mutex::new(SeriesState::default()),
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SeriesState> {
        // Every update is a few field writes: a panic cannot leave the
        // state half-changed, so poison is ignored.
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A report from `pod` (metric label `agent`) was stored.
    pub fn report_accepted(
        &self,
        agent: &str,
        pod: &str,
        probes: &[ProbeResult],
        skew_seconds: f64,
    ) {
        let mut state = self.state();
        let a = state.agent(agent);
        *a.reports.get_or_insert(0) += 1;
        // Make the error counter visible at 0 from the first report on.
        a.errors.get_or_insert(0);
        for probe in probes {
            let values = probe_values(probe);
            match a.probes.iter_mut().find(|(url, _)| **url == *probe.url) {
                Some((_, v)) => *v = values,
                None => {
                    // Exactly the room needed: one entry per agent and URL.
                    a.probes.reserve_exact(1);
                    a.probes.push((probe.url.as_str().into(), values));
                }
            }
        }
        state.pod(agent, pod).skew = Some(skew_seconds);
    }

    pub fn missed_windows(&self, agent: &str, windows: u64) {
        *self.state().agent(agent).errors.get_or_insert(0) += windows;
    }

    /// Forget the series of a pod that is gone. The `agent`-labelled series
    /// are dropped only when no other cached pod shares the label (a
    /// DaemonSet's replacement pod on the same node keeps them).
    pub fn forget(&self, agent: &str, pod: &str, label_still_used: bool) {
        let mut state = self.state();
        state.remove_pod(agent, pod);
        if label_still_used {
            return;
        }
        // No pod carries the label any more: every series of it goes,
        // whichever report last named each probe URL.
        state.agents.remove(agent);
    }

    /// Drop the probe series of `agent` for these URLs.
    pub fn forget_probes(&self, agent: &str, urls: &[&str]) {
        let mut state = self.state();
        if let Some(a) = state.agents.get_mut(agent) {
            a.probes.retain(|(url, _)| !urls.contains(&&**url));
        }
    }

    pub fn report_age(&self, agent: &str, pod: &str, seconds: f64) {
        self.state().pod(agent, pod).age = Some(seconds);
    }
}

impl Collector for PerAgentSeries {
    fn desc(&self) -> Vec<&Desc> {
        let i = &self.0;
        let mut d = vec![
            &i.report_count,
            &i.error_count,
            &i.report_age,
            &i.clock_skew,
        ];
        d.extend(i.probes.iter());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let i = &self.0;
        let state = self.state();
        let mut reports = Vec::new();
        let mut errors = Vec::new();
        let mut probes: Vec<Vec<proto::Metric>> = vec![Vec::new(); i.probes.len()];
        for (agent, v) in &state.agents {
            if let Some(n) = v.reports {
                reports.push(counter_metric(label_pairs(&[("agent", agent)]), n));
            }
            if let Some(n) = v.errors {
                errors.push(counter_metric(label_pairs(&[("agent", agent)]), n));
            }
            for (url, values) in &v.probes {
                for (out, value) in probes.iter_mut().zip(values) {
                    out.push(gauge_metric(
                        label_pairs(&[("agent", agent), ("url", url)]),
                        *value as f64,
                    ));
                }
            }
        }
        let mut ages = Vec::new();
        let mut skews = Vec::new();
        for (pod, labels) in &state.pods {
            for (agent, v) in labels {
                let labels = || label_pairs(&[("agent", agent), ("pod", pod)]);
                if let Some(age) = v.age {
                    ages.push(gauge_metric(labels(), age));
                }
                if let Some(skew) = v.skew {
                    skews.push(gauge_metric(labels(), skew));
                }
            }
        }
        drop(state);
        let mut out = vec![
            family(&i.report_count, MetricType::COUNTER, reports),
            family(&i.error_count, MetricType::COUNTER, errors),
            family(&i.report_age, MetricType::GAUGE, ages),
            family(&i.clock_skew, MetricType::GAUGE, skews),
        ];
        out.extend(
            i.probes
                .iter()
                .zip(probes)
                .map(|(d, m)| family(d, MetricType::GAUGE, m)),
        );
        out
    }
}

#[cfg(test)]
mod tests;
