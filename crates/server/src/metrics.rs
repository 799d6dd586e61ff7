//! Prometheus metrics, on an explicit registry carried in the app state.
//!
//! The `ncagent_*` series keep the original server's names, types and label
//! values so existing alert rules and dashboards keep working; the
//! `netchecker_*` series are new. `doc/metrics.md` documents every one.

use netchecker_wire::ProbeResult;
use prometheus::{
    Encoder, Gauge, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::verdict::{AgentState, Verdict};

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

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    report_count: IntCounterVec,
    error_count: IntCounterVec,
    probes: Vec<GaugeVec>,
    agents: IntGaugeVec,
    check_ok: IntGauge,
    report_age: GaugeVec,
    clock_skew: GaugeVec,
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
        let report_count = register(
            r,
            IntCounterVec::new(
                Opts::new(
                    "ncagent_report_count_total",
                    "Total number of reports received from the agent",
                ),
                &["agent"],
            )?,
        )?;
        let error_count = register(
            r,
            IntCounterVec::new(
                Opts::new(
                    "ncagent_error_count_total",
                    "Reporting windows the agent missed: one once its report is older than the outdated window, then one per further interval",
                ),
                &["agent"],
            )?,
        )?;
        let probes = PROBE_GAUGES
            .iter()
            .map(|(name, help)| {
                register(
                    r,
                    GaugeVec::new(Opts::new(*name, *help), &["agent", "url"])?,
                )
            })
            .collect::<prometheus::Result<Vec<_>>>()?;
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
        let report_age = register(
            r,
            GaugeVec::new(
                Opts::new(
                    "netchecker_agent_report_age_seconds",
                    "Seconds since the agent's last report was received",
                ),
                &["agent", "pod"],
            )?,
        )?;
        let clock_skew = register(
            r,
            GaugeVec::new(
                Opts::new(
                    "netchecker_agent_clock_skew_seconds",
                    "The agent's hostdate minus the server's clock when its last report arrived",
                ),
                &["agent", "pod"],
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
            report_count,
            error_count,
            probes,
            agents,
            check_ok,
            report_age,
            clock_skew,
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
        self.report_count.with_label_values(&[agent]).inc();
        // Make the error counter visible at 0 from the first report on.
        self.error_count.with_label_values(&[agent]);
        for probe in probes {
            for (gauge, value) in self.probes.iter().zip(probe_values(probe)) {
                gauge
                    .with_label_values(&[agent, probe.url.as_str()])
                    .set(value as f64);
            }
        }
        self.clock_skew
            .with_label_values(&[agent, pod])
            .set(skew_seconds);
    }

    pub fn report_rejected(&self, reason: Rejection) {
        self.reports_rejected
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    pub fn missed_windows(&self, agent: &str, windows: u64) {
        self.error_count.with_label_values(&[agent]).inc_by(windows);
    }

    /// Forget the series of a pod that is gone. The `agent`-labelled series
    /// are dropped only when no other cached pod shares the label (a
    /// DaemonSet's replacement pod on the same node keeps them).
    pub fn forget(&self, agent: &str, pod: &str, probes: &[ProbeResult], label_still_used: bool) {
        let _ = self.report_age.remove_label_values(&[agent, pod]);
        let _ = self.clock_skew.remove_label_values(&[agent, pod]);
        if label_still_used {
            return;
        }
        let _ = self.report_count.remove_label_values(&[agent]);
        let _ = self.error_count.remove_label_values(&[agent]);
        for probe in probes {
            for gauge in &self.probes {
                let _ = gauge.remove_label_values(&[agent, probe.url.as_str()]);
            }
        }
    }

    pub fn report_age(&self, agent: &str, pod: &str, seconds: f64) {
        self.report_age
            .with_label_values(&[agent, pod])
            .set(seconds);
    }

    /// Publish the states of a verdict.
    pub fn verdict(&self, verdict: &Verdict) {
        for state in AgentState::ALL {
            self.agents
                .with_label_values(&[state.as_str()])
                .set(verdict.count(state) as i64);
        }
        self.check_ok.set(i64::from(verdict.is_ok()));
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
        m.forget(
            "n-private_network",
            "old",
            std::slice::from_ref(&probe),
            true,
        );
        let text = m.render();
        assert!(text.contains("ncagent_report_count_total{agent=\"n-private_network\"} 1"));
        assert!(!text.contains("pod=\"old\""));
        m.forget(
            "n-private_network",
            "old",
            std::slice::from_ref(&probe),
            false,
        );
        let text = m.render();
        assert!(!text.contains("agent=\"n-private_network\""), "{text}");
    }
}
