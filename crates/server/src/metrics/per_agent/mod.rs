//! The series with one value per agent or per pod: the original's
//! `ncagent_*` counters and probe gauges, report age and clock skew.
//!
//! They are keyed by pod, one entry per stored report, with a pod's probe
//! gauges replaced whole by each report: no client can grow them past the
//! cache's bound times the report's bound on probes. They are kept here as
//! a few hundred bytes per agent and turned into metric families only when
//! scraped, rather than as one `prometheus`
//! vector child per series: each child carries its own copy of the
//! metric's descriptor and label pairs (about 1 KB and a dozen
//! allocations), which with 10,000 agents and a dozen series each came to
//! over 100 MB. The names, types, help texts, labels and values are those
//! the vector children would give (a test holds them equal).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use netchecker_wire::ProbeResult;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

use super::families::{counter_metric, desc, family, gauge_metric, label_pairs};

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

/// The counters of one `agent` label (a node and a network), shared by the
/// pods that carry it (during a rollout, the old pod and the new one).
#[derive(Debug, Default)]
struct LabelValues {
    /// `ncagent_report_count_total`.
    reports: u64,
    /// `ncagent_error_count_total`.
    errors: u64,
    /// Pods carrying the label; the label's series go with the last one.
    pods: u32,
}

/// The series of one pod: its probe gauges, report age and clock skew.
#[derive(Debug)]
struct PodSeries {
    label: Box<str>,
    /// When its last report came, in report order over every pod: where two
    /// pods of one label probe the same URL, the later report is shown.
    seq: u64,
    /// The eight probe gauges per URL of its last report, in
    /// `PROBE_GAUGES` order; replaced whole by each report, so a URL the
    /// agent stops probing goes at once, and never more than the report's
    /// bound on probes.
    probes: Box<[(Box<str>, [i64; 8])]>,
    age: Option<f64>,
    skew: Option<f64>,
}

/// Keyed by pod (one per stored report, so as bounded as the cache) and by
/// label, both in hash maps: every update is O(1) with no search.
#[derive(Debug, Default)]
struct SeriesState {
    labels: HashMap<Box<str>, LabelValues>,
    pods: HashMap<Box<str>, PodSeries>,
    seq: u64,
}

impl SeriesState {
    /// Detach `pod` from its label; the label goes with its last pod.
    fn remove_pod(&mut self, pod: &str) -> Option<PodSeries> {
        let series = self.pods.remove(pod)?;
        if let Some(l) = self.labels.get_mut(&*series.label) {
            l.pods = l.pods.saturating_sub(1);
            if l.pods == 0 {
                self.labels.remove(&*series.label);
            }
        }
        Some(series)
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

    /// A report from `pod` under metric label `agent` was stored, with
    /// these probes (at most the report's bound on probes).
    pub fn report_accepted(
        &self,
        agent: &str,
        pod: &str,
        probes: &[ProbeResult],
        skew_seconds: f64,
    ) {
        let mut state = self.state();
        state.seq += 1;
        let seq = state.seq;
        let probes = probes
            .iter()
            .map(|p| (p.url.as_str().into(), probe_values(p)))
            .collect();
        let moved = state
            .pods
            .get(pod)
            .is_some_and(|series| &*series.label != agent);
        if moved {
            // The pod's node name changed: its old label's series go.
            state.remove_pod(pod);
        }
        if let Some(series) = state.pods.get_mut(pod) {
            series.seq = seq;
            series.probes = probes;
            series.skew = Some(skew_seconds);
        } else {
            state.pods.insert(
                pod.into(),
                PodSeries {
                    label: agent.into(),
                    seq,
                    probes,
                    age: None,
                    skew: Some(skew_seconds),
                },
            );
            state.labels.entry(agent.into()).or_default().pods += 1;
        }
        if let Some(l) = state.labels.get_mut(agent) {
            l.reports += 1;
        }
    }

    pub fn missed_windows(&self, agent: &str, windows: u64) {
        if let Some(l) = self.state().labels.get_mut(agent) {
            l.errors += windows;
        }
    }

    /// Forget the series of a pod that is gone. The `agent`-labelled
    /// counters stay while another pod carries the label (a DaemonSet's
    /// replacement pod on the same node keeps them counting).
    pub fn forget(&self, pod: &str) {
        self.state().remove_pod(pod);
    }

    pub fn report_age(&self, pod: &str, seconds: f64) {
        if let Some(series) = self.state().pods.get_mut(pod) {
            series.age = Some(seconds);
        }
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
        let mut reports = Vec::with_capacity(state.labels.len());
        let mut errors = Vec::with_capacity(state.labels.len());
        for (agent, v) in &state.labels {
            reports.push(counter_metric(label_pairs(&[("agent", agent)]), v.reports));
            errors.push(counter_metric(label_pairs(&[("agent", agent)]), v.errors));
        }
        // One series per label and URL: the latest report's values.
        let mut latest: HashMap<(&str, &str), (u64, &[i64; 8])> = HashMap::new();
        let mut ages = Vec::new();
        let mut skews = Vec::new();
        for (pod, series) in &state.pods {
            let agent = &*series.label;
            for (url, values) in &*series.probes {
                let slot = latest.entry((agent, url)).or_insert((series.seq, values));
                if series.seq > slot.0 {
                    *slot = (series.seq, values);
                }
            }
            let labels = || label_pairs(&[("agent", agent), ("pod", pod)]);
            if let Some(age) = series.age {
                ages.push(gauge_metric(labels(), age));
            }
            if let Some(skew) = series.skew {
                skews.push(gauge_metric(labels(), skew));
            }
        }
        let mut probes: Vec<Vec<proto::Metric>> =
            vec![Vec::with_capacity(latest.len()); i.probes.len()];
        for ((agent, url), (_, values)) in latest {
            for (out, value) in probes.iter_mut().zip(values) {
                out.push(gauge_metric(
                    label_pairs(&[("agent", agent), ("url", url)]),
                    *value as f64,
                ));
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
