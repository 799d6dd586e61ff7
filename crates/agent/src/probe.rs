//! Timed HTTP probes, reported in the original's `network_probes` shape.
//!
//! Each probe is one GET on a new connection. The phases, in whole
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

use std::time::Duration;

use netchecker_wire::ProbeResult;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::transport::{self, Exchange, RequestSpec, Target};

/// Probe `target` once within `timeout`.
pub async fn probe(target: &Target, timeout: Duration, tls: Option<&TlsConnector>) -> ProbeResult {
    let ex = transport::request(target, RequestSpec::get(timeout, tls)).await;
    match &ex.outcome {
        Ok(()) => tracing::debug!(
            url = %target,
            status = ex.status.map(|s| s.as_u16()),
            "probe answered"
        ),
        Err(e) => tracing::debug!(url = %target, "probe failed: {e}"),
    }
    result_of(&target.url, &ex)
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
