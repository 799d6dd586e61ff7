//! A probe of one peer: a fresh TCP connection, timed, then one HTTP/1.1
//! `POST /mesh/probe` carrying the padding, answered with as many zeros.
//! The connect is raced like a report's ([`transport::connect_raced`]): a
//! SYN lost on a lossy path costs the race delay (`connect_us` counts from
//! the first SYN), not the probe, and the result says it was `raced`: the
//! server's figure of the node's loss toward its peers.
//!
//! How far it got is the outcome: `connect_failed` when the connect was
//! refused or did not complete in time; `transfer_failed` when connected
//! but the padded request and its answer did not complete in time or the
//! connection broke (what an MTU blackhole looks like: the handshake's
//! small packets pass, full-size ones vanish; so is the peer's `408`, its
//! listener having waited in vain for the padding); `bad_answer` when the peer
//! answered, but not `200` with the padding back (another service on the
//! port). The peer's body never reaches the result or a log line: only its
//! length and whether it was all zeros.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use netchecker_wire::mesh::{
    MAX_PEERS, MAX_PROBE_PADDING, MESH_PATH, MeshRound, Peer, PeerResult, ProbeOutcome,
};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};

use super::zeros;
use crate::transport;

/// Peers probed at the same time.
pub const CONCURRENCY: usize = 16;
/// Longest `error` text of a result, in bytes.
const MAX_ERROR: usize = 160;
const USER_AGENT: &str = concat!("netchecker-agent/", env!("CARGO_PKG_VERSION"));

/// Why a probe stopped short: its outcome and a few words.
type Failure = (ProbeOutcome, String);

/// Where `peer` is reached: its address must be an IP address (brackets
/// around an IPv6 one are accepted) and its port not 0.
pub fn peer_addr(peer: &Peer) -> Option<SocketAddr> {
    let host = peer.address.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    (peer.port != 0).then_some(SocketAddr::new(ip, peer.port))
}

/// Probe `peer` once with `padding` zeros (at most [`MAX_PROBE_PADDING`]),
/// the whole probe within `limit`. Never fails: a failure is the result.
pub async fn probe(peer: &Peer, padding: usize, limit: Duration) -> PeerResult {
    let padding = padding.min(MAX_PROBE_PADDING);
    let start = Instant::now();
    let deadline = start + limit;
    let mut result = PeerResult {
        node: peer.node.clone(),
        address: peer.address.clone(),
        padding: u32::try_from(padding).unwrap_or(u32::MAX),
        ..PeerResult::default()
    };
    let outcome = match peer_addr(peer) {
        None => Err((
            ProbeOutcome::ConnectFailed,
            format!(
                "{:?} port {} is no IP address and port",
                peer.address, peer.port
            ),
        )),
        Some(addr) => match timeout_at(
            deadline,
            transport::connect_raced(addr, transport::race_delay(limit)),
        )
        .await
        {
            Err(_) => Err((
                ProbeOutcome::ConnectFailed,
                format!("no connection within {limit:?}"),
            )),
            Ok(Err(e)) => Err((ProbeOutcome::ConnectFailed, format!("connect: {e}"))),
            Ok(Ok((stream, raced))) => {
                let connected = Instant::now();
                result.connect_us = micros(connected - start);
                result.raced = raced;
                // The request goes out at once rather than waiting for an ACK.
                stream.set_nodelay(true).ok();
                match timeout_at(deadline, exchange(stream, addr, padding)).await {
                    Err(_) => Err((
                        ProbeOutcome::TransferFailed,
                        format!("no complete answer within {limit:?}"),
                    )),
                    Ok(Err(failure)) => Err(failure),
                    Ok(Ok(())) => {
                        result.transfer_us = micros(connected.elapsed());
                        Ok(())
                    }
                }
            }
        },
    };
    result.total_us = micros(start.elapsed());
    if let Err((outcome, error)) = outcome {
        result.outcome = outcome;
        result.error = short(error);
    }
    result
}

/// Probe the peers of `round` (at most [`MAX_PEERS`]), [`CONCURRENCY`] at a
/// time, each within the round's `timeout_ms` (`fallback` when 0) cut so
/// that it ends by `deadline`; a peer whose turn comes after `deadline`, or
/// whose address is no IP address, is left out. Results in the peers' order.
pub async fn probe_round(
    round: &MeshRound,
    padding: usize,
    fallback: Duration,
    deadline: Instant,
) -> Vec<PeerResult> {
    let timeout = match round.timeout_ms {
        0 => fallback,
        ms => Duration::from_millis(ms),
    };
    let mut peers = Vec::with_capacity(round.peers.len().min(MAX_PEERS));
    for peer in round.peers.iter().take(MAX_PEERS) {
        if peer_addr(peer).is_some() {
            peers.push(peer);
        } else {
            tracing::debug!(
                node = %peer.node,
                address = %peer.address,
                port = peer.port,
                "mesh peer skipped: no IP address and port"
            );
        }
    }
    let slots = Semaphore::new(CONCURRENCY);
    let probes = peers.into_iter().map(|peer| {
        let slots = &slots;
        async move {
            let _slot = slots.acquire().await.ok()?;
            // Taken when the probe's turn comes, not when the round began.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::debug!(node = %peer.node, "mesh peer skipped: the next report is due");
                return None;
            }
            Some(probe(peer, padding, timeout.min(left)).await)
        }
    });
    futures::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The HTTP exchange on a connected stream, driven here (no spawned task
/// outlives it).
async fn exchange(stream: TcpStream, addr: SocketAddr, padding: usize) -> Result<(), Failure> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failure)?;
    let request = Request::post(MESH_PATH)
        .header(header::HOST, addr.to_string())
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::CONNECTION, "close")
        .body(Full::new(zeros(padding)))
        .expect("a fixed path and valid headers");
    let talk = async {
        let answer = sender.send_request(request).await.map_err(failure)?;
        let status = answer.status();
        if status == StatusCode::REQUEST_TIMEOUT {
            // The peer's listener gave up waiting for the padding: it did
            // not arrive, which is a transfer that failed, not a bad peer.
            return Err((
                ProbeOutcome::TransferFailed,
                format!("the peer did not receive the padding in time ({status})"),
            ));
        }
        if status != StatusCode::OK {
            return Err(bad(format!("answered {status}")));
        }
        let mut body = answer.into_body();
        if let Some(len) = body.size_hint().exact()
            && len != padding as u64
        {
            return Err(bad(format!("answered {len} bytes for {padding}")));
        }
        let mut got = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(failure)?.into_data() else {
                continue;
            };
            got += data.len();
            if got > padding {
                return Err(bad(format!("answered more than {padding} bytes")));
            }
            if data.iter().any(|b| *b != 0) {
                return Err(bad("answered bytes that are not the padding".into()));
            }
        }
        if got != padding {
            return Err(bad(format!("answered {got} bytes for {padding}")));
        }
        Ok(())
    };
    let mut conn = std::pin::pin!(conn);
    let mut talk = std::pin::pin!(talk);
    tokio::select! {
        result = &mut talk => result,
        // The connection ended first (closed after the answer, or broken):
        // what it delivered is in the channels, so let the exchange finish.
        _ = &mut conn => talk.await,
    }
}

fn bad(error: String) -> Failure {
    (ProbeOutcome::BadAnswer, error)
}

/// An answer that is not HTTP is a bad answer; a connection that broke or
/// closed early is a failed transfer.
fn failure(e: hyper::Error) -> Failure {
    let outcome = if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        ProbeOutcome::BadAnswer
    } else {
        ProbeOutcome::TransferFailed
    };
    (outcome, crate::with_causes(&e))
}

/// At most [`MAX_ERROR`] bytes, cut at a character boundary.
fn short(mut text: String) -> String {
    if text.len() > MAX_ERROR {
        let mut cut = MAX_ERROR;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
