//! Prometheus metrics, on an explicit registry carried in the app state.
//!
//! The `ncagent_*` series keep the original server's names, types and label
//! values so existing alert rules and dashboards keep working; the
//! `netchecker_*` series are new. `doc/metrics.md` documents every one.
//!
//! The series with one value per agent or per pod (the `ncagent_*` ones,
//! report age, clock skew) are kept in [`PerAgentSeries`], a few hundred
//! bytes per agent rendered at scrape time, rather than as one
//! `prometheus` vector child per series: each child carries its own copy of
//! the metric's descriptor and label pairs (about 1 KB and a dozen
//! allocations), which with 10,000 agents and a dozen series each came to
//! over 100 MB.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use netchecker_wire::ProbeResult;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use prometheus::{
    Encoder, Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::verdict::AgentState;

/// The original's `agent` label: the node name and which network the agent
/// runs on, told apart by `hostnet` in the pod name.
pub fn agent_label(pod: &str, node: &str) -> String {
    let network = if pod.contains("hostnet") {
        "host_network"
    } else {
        "private_network"
    };
    format!("{node}-{network}")
}

/// Why a report was refused (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    InvalidJson,
    InvalidReport,
    TooLarge,
    InvalidName,
    CacheFull,
    Timeout,
}

impl Rejection {
    pub const ALL: [Rejection; 6] = [
        Rejection::InvalidJson,
        Rejection::InvalidReport,
        Rejection::TooLarge,
        Rejection::InvalidName,
        Rejection::CacheFull,
        Rejection::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::InvalidJson => "invalid_json",
            Rejection::InvalidReport => "invalid_report",
            Rejection::TooLarge => "too_large",
            Rejection::InvalidName => "invalid_name",
            Rejection::CacheFull => "cache_full",
            Rejection::Timeout => "timeout",
        }
    }
}

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
struct PerAgentSeries(Arc<PerAgentInner>);

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
    fn new() -> prometheus::Result<Self> {
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

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    per_agent: PerAgentSeries,
    agents: IntGaugeVec,
    check_ok: IntGauge,
    reports_received: IntCounter,
    reports_rejected: IntCounterVec,
    pod_view_synced: IntGauge,
    pod_view_age: Gauge,
}

impl Metrics {
    /// Register every series on a new registry.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let r = &registry;
        let per_agent = register(r, PerAgentSeries::new()?)?;
        let agents = register(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "netchecker_agents",
                    "Expected agents per state (ok, absent, outdated, pending since restart)",
                ),
                &["state"],
            )?,
        )?;
        let check_ok = register(
            r,
            IntGauge::new(
                "netchecker_check_ok",
                "1 when no expected agent is absent or outdated (agents pending since restart do not count), else 0",
            )?,
        )?;
        let reports_received = register(
            r,
            IntCounter::new(
                "netchecker_reports_received_total",
                "Agent reports accepted and stored",
            )?,
        )?;
        let reports_rejected = register(
            r,
            IntCounterVec::new(
                Opts::new(
                    "netchecker_reports_rejected_total",
                    "Agent reports refused, by reason",
                ),
                &["reason"],
            )?,
        )?;
        let pod_view_synced = register(
            r,
            IntGauge::new(
                "netchecker_pod_view_synced",
                "1 when the view of agent pods is synced with the Kubernetes API and the watch is healthy (always 1 without Kubernetes)",
            )?,
        )?;
        let pod_view_age = register(
            r,
            Gauge::new(
                "netchecker_pod_view_age_seconds",
                "0 while the pod watch is healthy; otherwise seconds since the Kubernetes API last answered it",
            )?,
        )?;
        let build_info = register(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "netchecker_build_info",
                    "Build information of the running server",
                ),
                &["version"],
            )?,
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for state in AgentState::ALL {
            agents.with_label_values(&[state.as_str()]).set(0);
        }
        for reason in Rejection::ALL {
            reports_rejected.with_label_values(&[reason.as_str()]);
        }
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            per_agent,
            agents,
            check_ok,
            reports_received,
            reports_rejected,
            pod_view_synced,
            pod_view_age,
        })
    }

    /// Prometheus text exposition of every series.
    /// The registry, for series kept by other modules (node verdicts, webhooks).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// A report from `pod` (metric label `agent`) was stored.
    pub fn report_accepted(
        &self,
        agent: &str,
        pod: &str,
        probes: &[ProbeResult],
        skew_seconds: f64,
    ) {
        self.reports_received.inc();
        let mut state = self.per_agent.state();
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

    pub fn report_rejected(&self, reason: Rejection) {
        self.reports_rejected
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    pub fn missed_windows(&self, agent: &str, windows: u64) {
        *self.per_agent.state().agent(agent).errors.get_or_insert(0) += windows;
    }

    /// Forget the series of a pod that is gone. The `agent`-labelled series
    /// are dropped only when no other cached pod shares the label (a
    /// DaemonSet's replacement pod on the same node keeps them).
    pub fn forget(&self, agent: &str, pod: &str, label_still_used: bool) {
        let mut state = self.per_agent.state();
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
        let mut state = self.per_agent.state();
        if let Some(a) = state.agents.get_mut(agent) {
            a.probes.retain(|(url, _)| !urls.contains(&&**url));
        }
    }

    pub fn report_age(&self, agent: &str, pod: &str, seconds: f64) {
        self.per_agent.state().pod(agent, pod).age = Some(seconds);
    }

    /// Publish the states of a verdict.
    /// Expected agents per state (indexed like [`AgentState::ALL`]) and
    /// whether none is absent or outdated.
    pub fn agent_states(&self, counts: &[usize; AgentState::ALL.len()], ok: bool) {
        for (state, n) in AgentState::ALL.iter().zip(counts) {
            self.agents
                .with_label_values(&[state.as_str()])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        self.check_ok.set(i64::from(ok));
    }

    pub fn pod_view(&self, synced: bool, age_seconds: f64) {
        self.pod_view_synced.set(i64::from(synced));
        self.pod_view_age.set(age_seconds);
    }
}

pub(crate) fn register<C: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: C,
) -> prometheus::Result<C> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_label_values_match_the_original() {
        assert_eq!(
            agent_label("netchecker-agent-hostnet-abcde", "node-1"),
            "node-1-host_network"
        );
        assert_eq!(
            agent_label("netchecker-agent-x7k2p", "node-1"),
            "node-1-private_network"
        );
    }

    #[test]
    fn original_series_have_original_names_types_and_labels() {
        let m = Metrics::new().unwrap();
        let probe = ProbeResult {
            url: "http://s:8081/api/v1/ping".into(),
            connection_result: 1,
            http_code: 200,
            total: 3,
            ..Default::default()
        };
        m.report_accepted(
            "node-1-private_network",
            "netchecker-agent-x",
            &[probe],
            0.5,
        );
        m.missed_windows("node-1-private_network", 2);
        let text = m.render();
        for needle in [
            "# TYPE ncagent_report_count_total counter",
            "ncagent_report_count_total{agent=\"node-1-private_network\"} 1",
            "# TYPE ncagent_error_count_total counter",
            "ncagent_error_count_total{agent=\"node-1-private_network\"} 2",
            "# TYPE ncagent_http_probe_code gauge",
            "ncagent_http_probe_code{agent=\"node-1-private_network\",url=\"http://s:8081/api/v1/ping\"} 200",
            "ncagent_http_probe_connection_result{agent=\"node-1-private_network\",url=\"http://s:8081/api/v1/ping\"} 1",
            "ncagent_http_probe_total_time_ms{agent=\"node-1-private_network\",url=\"http://s:8081/api/v1/ping\"} 3",
            "ncagent_http_probe_server_processing_time_ms{",
            "ncagent_http_probe_dns_lookup_time_ms{",
            "ncagent_http_probe_tcp_connection_time_ms{",
            "ncagent_http_probe_connect_time_ms{",
            "ncagent_http_probe_content_transfer_time_ms{",
            "netchecker_reports_received_total 1",
            "netchecker_reports_rejected_total{reason=\"too_large\"} 0",
            "netchecker_agents{state=\"pending\"} 0",
            "netchecker_agent_clock_skew_seconds{agent=\"node-1-private_network\",pod=\"netchecker-agent-x\"} 0.5",
            "netchecker_build_info{version=",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        #[cfg(target_os = "linux")]
        assert!(text.contains("process_resident_memory_bytes"));
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
        let ours = Metrics::new().unwrap();
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
        assert!(
            text.contains("ncagent_http_probe_code{agent=\"n1-private_network\",url=\"u1\"} 200")
        );
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
        fn apply(&self, ours: &Metrics, reference: &VecSeries) {
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

    #[test]
    fn forget_keeps_series_shared_with_a_replacement_pod() {
        let m = Metrics::new().unwrap();
        let probe = ProbeResult {
            url: "u".into(),
            ..Default::default()
        };
        m.report_accepted(
            "n-private_network",
            "old",
            std::slice::from_ref(&probe),
            0.0,
        );
        m.forget("n-private_network", "old", true);
        let text = m.render();
        assert!(text.contains("ncagent_report_count_total{agent=\"n-private_network\"} 1"));
        assert!(!text.contains("pod=\"old\""));
        m.forget("n-private_network", "old", false);
        let text = m.render();
        assert!(!text.contains("agent=\"n-private_network\""), "{text}");
    }
}
