//! Prometheus metrics, on an explicit registry carried in the app state.
//!
//! The `ncagent_*` series keep the original server's names, types and label
//! values so existing alert rules and dashboards keep working; the
//! `netchecker_*` series are new. `doc/metrics.md` documents every one.
//!
//! The series with one value per agent or per pod live in their own
//! module, [`per_agent`], kept compactly and rendered at scrape time.

mod families;
pub mod mesh;
pub mod per_agent;

use netchecker_wire::ProbeResult;
use prometheus::{
    Encoder, Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::domain::AgentState;
pub use per_agent::PerAgentSeries;

/// Why a report was refused (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    InvalidJson,
    InvalidReport,
    TooLarge,
    InvalidName,
    CacheFull,
    Timeout,
    UnknownAgent,
    Unauthenticated,
    Forbidden,
}

impl Rejection {
    pub const ALL: [Rejection; 9] = [
        Rejection::InvalidJson,
        Rejection::InvalidReport,
        Rejection::TooLarge,
        Rejection::InvalidName,
        Rejection::CacheFull,
        Rejection::Timeout,
        Rejection::UnknownAgent,
        Rejection::Unauthenticated,
        Rejection::Forbidden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::InvalidJson => "invalid_json",
            Rejection::InvalidReport => "invalid_report",
            Rejection::TooLarge => "too_large",
            Rejection::InvalidName => "invalid_name",
            Rejection::CacheFull => "cache_full",
            Rejection::Timeout => "timeout",
            Rejection::UnknownAgent => "unknown_agent",
            Rejection::Unauthenticated => "unauthenticated",
            Rejection::Forbidden => "forbidden",
        }
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
    report_auth: IntCounterVec,
    pod_view_synced: IntGauge,
    pod_view_age: Gauge,
    connections: crate::serve::ConnectionSeries,
    mesh: mesh::MeshSeries,
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
        let report_auth = register(
            r,
            IntCounterVec::new(
                Opts::new(
                    "netchecker_report_auth_total",
                    "Reports by what their credentials proved (ok, missing, invalid, forbidden); counted with --report-auth warn or enforce",
                ),
                &["result"],
            )?,
        )?;
        for result in netchecker_wire::AuthResult::ALL {
            report_auth.with_label_values(&[result.as_str()]);
        }
        let connections = crate::serve::ConnectionSeries {
            open: register(
                r,
                IntGauge::new("netchecker_connections", "HTTP connections open now")?,
            )?,
            shed: register(
                r,
                IntCounter::new(
                    "netchecker_connections_shed_total",
                    "Connections answered 503 and closed because --max-connections were open",
                )?,
            )?,
        };
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
        let mesh = mesh::MeshSeries::new(r)?;
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
            report_auth,
            pod_view_synced,
            pod_view_age,
            connections,
            mesh,
        })
    }

    /// The mesh's series.
    pub fn mesh(&self) -> &mesh::MeshSeries {
        &self.mesh
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
        self.per_agent
            .report_accepted(agent, pod, probes, skew_seconds);
    }

    /// The connection series, for the accept loop.
    pub fn connections(&self) -> &crate::serve::ConnectionSeries {
        &self.connections
    }

    /// A report's credentials were checked with this result.
    pub fn report_auth(&self, result: netchecker_wire::AuthResult) {
        self.report_auth.with_label_values(&[result.as_str()]).inc();
    }

    pub fn report_rejected(&self, reason: Rejection) {
        self.reports_rejected
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    pub fn missed_windows(&self, agent: &str, windows: u64) {
        self.per_agent.missed_windows(agent, windows);
    }

    /// Forget the series of a pod that is gone (see [`PerAgentSeries::forget`]).
    pub fn forget(&self, pod: &str) {
        self.per_agent.forget(pod);
    }

    pub fn report_age(&self, pod: &str, seconds: f64) {
        self.per_agent.report_age(pod, seconds);
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
        m.report_accepted("n-private_network", "new", &[], 0.0);
        m.forget("old");
        let text = m.render();
        assert!(text.contains("ncagent_report_count_total{agent=\"n-private_network\"} 2"));
        assert!(!text.contains("pod=\"old\""));
        m.forget("new");
        let text = m.render();
        assert!(!text.contains("agent=\"n-private_network\""), "{text}");
    }
}
