//! Timed HTTP probes, reported in the original's `network_probes` shape.
//!
//! Each probe is one GET on a new connection (its connect raced after
//! [`transport::race_delay`] when the SYN goes unanswered). The phases, in whole
//! milliseconds (truncated, as Go's `Duration / time.Millisecond`):
//!
//! - `DNSLookup`: resolving the host;
//! - `TCPConnection`: establishing the TCP connection;
//! - `Connect`: from the start until the connection is ready for HTTP, i.e.
//!   DNS + TCP + TLS (for https);
//! - `ServerProcessing`: from sending the request to the response head
//!   (time to first byte);
//! - `ContentTransfer`: reading the body;
//! - `Total`: from the start until the probe ended, successfully or not.
//!
//! A phase that was not completed counts 0; `ConnectionResult` is 1 once TCP
//! connected, `HTTPCode` 0 without a response. A probe never fails the
//! report: its failure *is* the result.
//!
//! A name that resolves to addresses of both IP families is probed over
//! each ([`probe_families`]): the `network_probes` entry says whether the
//! name answered over either (as a client trying each address would find),
//! the report's `family_probes` which family fails.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use netchecker_wire::{FamilyProbe, IpFamily, ProbeResult};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::transport::{self, Exchange, RequestSpec, Target};

/// Probe `target` within `timeout`: once when its host is an address or
/// resolves to one IP family, once per family (on the addresses of that
/// family, concurrently) when it resolves to both. Returns the
/// `network_probes` entry (the first family in the resolver's order that
/// answered, else the first family's failure) and, for a name of both
/// families, each family's own result. The lookup is made once and its
/// time counts in every result's `DNSLookup`.
pub async fn probe_families(
    target: &Target,
    timeout: Duration,
    tls: Option<&TlsConnector>,
) -> (ProbeResult, Vec<FamilyProbe>) {
    if target.host.parse::<IpAddr>().is_ok() {
        return (probe(target, timeout, tls).await, Vec::new());
    }
    let start = Instant::now();
    let addrs = match tokio::time::timeout(timeout, transport::resolve(&target.host, target.port))
        .await
    {
        Ok(Ok(addrs)) => addrs,
        Ok(Err(e)) => {
            tracing::debug!(url = %target, "probe failed: {e}");
            return (lookup_failed(&target.url, start), Vec::new());
        }
        Err(_) => {
            tracing::debug!(url = %target, "probe failed: DNS lookup timed out after {timeout:?}");
            return (lookup_failed(&target.url, start), Vec::new());
        }
    };
    probe_resolved(target, &addrs, start, timeout, tls).await
}

/// [`probe_families`] past the lookup that began at `start` and found
/// `addrs` (not empty), in the resolver's order.
pub async fn probe_resolved(
    target: &Target,
    addrs: &[SocketAddr],
    start: Instant,
    timeout: Duration,
    tls: Option<&TlsConnector>,
) -> (ProbeResult, Vec<FamilyProbe>) {
    let resolved = Instant::now();
    let left = timeout.saturating_sub(resolved - start);
    let of = |family| -> Vec<SocketAddr> {
        addrs
            .iter()
            .copied()
            .filter(|a| IpFamily::of(a.ip()) == family)
            .collect()
    };
    let (first, second) = {
        let first = IpFamily::of(addrs[0].ip());
        (first, first.other())
    };
    let (a, b) = (of(first), of(second));
    if b.is_empty() {
        let ex = probe_at(target, a, left, tls, start, resolved).await;
        return (result_of(&target.url, &ex), Vec::new());
    }
    let (address_a, address_b) = (a[0].ip(), b[0].ip());
    let (ex_a, ex_b) = tokio::join!(
        probe_at(target, a, left, tls, start, resolved),
        probe_at(target, b, left, tls, start, resolved)
    );
    let (ra, rb) = (result_of(&target.url, &ex_a), result_of(&target.url, &ex_b));
    let answered = |r: &ProbeResult| r.connection_result == 1 && (200..400).contains(&r.http_code);
    let entry = if !answered(&ra) && answered(&rb) {
        rb.clone()
    } else {
        ra.clone()
    };
    let mut families = vec![
        FamilyProbe {
            family: first,
            address: address_a.to_string(),
            probe: ra,
        },
        FamilyProbe {
            family: second,
            address: address_b.to_string(),
            probe: rb,
        },
    ];
    families.sort_by_key(|f| f.family);
    (entry, families)
}

/// One request to `addrs` (already resolved, at `resolved`, for a probe
/// that started at `start`), its phases counted from `start`.
async fn probe_at(
    target: &Target,
    addrs: Vec<SocketAddr>,
    left: Duration,
    tls: Option<&TlsConnector>,
    start: Instant,
    resolved: Instant,
) -> Exchange {
    let family = IpFamily::of(addrs[0].ip());
    let mut spec = raced_get(left, tls);
    spec.connect_to = addrs;
    let mut ex = transport::request(target, spec).await;
    log_outcome(target, &ex, Some(family));
    ex.start = start;
    ex.resolved = Some(resolved);
    ex
}

/// The result of a probe whose lookup failed or ran out of time: only
/// its total, as [`probe`] reports it.
fn lookup_failed(url: &str, start: Instant) -> ProbeResult {
    ProbeResult {
        url: url.to_owned(),
        total: ms(start, Some(Instant::now())),
        ..ProbeResult::default()
    }
}

fn log_outcome(target: &Target, ex: &Exchange, family: Option<IpFamily>) {
    let family = family.map(IpFamily::name);
    match &ex.outcome {
        Ok(()) => tracing::debug!(
            url = %target,
            family,
            status = ex.status.map(|s| s.as_u16()),
            "probe answered"
        ),
        Err(e) => tracing::debug!(url = %target, family, "probe failed: {e}"),
    }
}

/// Probe `target` once within `timeout`.
pub async fn probe(target: &Target, timeout: Duration, tls: Option<&TlsConnector>) -> ProbeResult {
    let ex = transport::request(target, raced_get(timeout, tls)).await;
    log_outcome(target, &ex, None);
    result_of(&target.url, &ex)
}

/// A probe's GET within `timeout`, its connect raced like a report's: on a
/// path that loses packets but is up, a lost SYN costs the probe
/// [`transport::race_delay`] rather than the whole probe (TCP would send it
/// again only after 1 s), so the node reads `lossy`, not `probe_failures`
/// every few rounds.
fn raced_get(timeout: Duration, tls: Option<&TlsConnector>) -> RequestSpec<'_> {
    let mut spec = RequestSpec::get(timeout, tls);
    spec.race_after = Some(transport::race_delay(timeout));
    spec
}

/// The wire result of an exchange.
pub fn result_of(url: &str, ex: &Exchange) -> ProbeResult {
    ProbeResult {
        url: url.to_owned(),
        connection_result: i64::from(ex.connected.is_some()),
        http_code: ex.status.map_or(0, |s| i64::from(s.as_u16())),
        total: ms(ex.start, Some(ex.end)),
        content_transfer: span(ex.head, ex.done),
        tcp_connection: span(ex.resolved, ex.connected),
        dns_lookup: ms(ex.start, ex.resolved),
        connect: ms(ex.start, ex.ready),
        server_processing: span(ex.ready, ex.head),
    }
}

fn span(from: Option<Instant>, to: Option<Instant>) -> i64 {
    from.map_or(0, |from| ms(from, to))
}

fn ms(from: Instant, to: Option<Instant>) -> i64 {
    to.map_or(0, |to| {
        i64::try_from(to.saturating_duration_since(from).as_millis()).unwrap_or(i64::MAX)
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::Error;

    fn exchange(
        start: Instant,
        marks: [Option<u64>; 5],
        end: u64,
        status: Option<u16>,
    ) -> Exchange {
        let at = |m: Option<u64>| m.map(|ms| start + Duration::from_millis(ms));
        Exchange {
            start,
            resolved: at(marks[0]),
            connected: at(marks[1]),
            local: None,
            ready: at(marks[2]),
            head: at(marks[3]),
            done: at(marks[4]),
            end: start + Duration::from_millis(end),
            status: status.map(|s| http::StatusCode::from_u16(s).unwrap()),
            body: Bytes::new(),
            body_len: 0,
            outcome: Ok(()),
            phase: crate::Phase::ReadingBody,
            connects: Default::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn phases_of_a_complete_https_probe() {
        let t0 = Instant::now();
        let ex = exchange(
            t0,
            [Some(3), Some(10), Some(25), Some(240), Some(250)],
            251,
            Some(200),
        );
        let r = result_of("https://x/", &ex);
        assert_eq!((r.connection_result, r.http_code), (1, 200));
        assert_eq!(
            (
                r.dns_lookup,
                r.tcp_connection,
                r.connect,
                r.server_processing,
                r.content_transfer,
                r.total
            ),
            (3, 7, 25, 215, 10, 251)
        );
        assert_eq!(r.url, "https://x/");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_probe_reports_the_phases_it_reached() {
        let t0 = Instant::now();
        let mut ex = exchange(t0, [Some(2), None, None, None, None], 4, None);
        ex.outcome = Err(Error::Config("refused".into()));
        let r = result_of("http://x/", &ex);
        assert_eq!((r.connection_result, r.http_code), (0, 0));
        assert_eq!(
            (
                r.dns_lookup,
                r.tcp_connection,
                r.connect,
                r.server_processing,
                r.content_transfer,
                r.total
            ),
            (2, 0, 0, 0, 0, 4)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_timed_out_probe_after_connecting() {
        let t0 = Instant::now();
        let ex = exchange(t0, [Some(1), Some(2), Some(2), None, None], 1000, None);
        let r = result_of("http://x/", &ex);
        assert_eq!(
            (
                r.connection_result,
                r.http_code,
                r.connect,
                r.server_processing,
                r.total
            ),
            (1, 0, 2, 0, 1000)
        );
    }
}
