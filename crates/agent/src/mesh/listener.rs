//! The probe endpoint: `POST /mesh/probe` answered `200` with as many zero
//! bytes as the request body held; anything else `404`.
//!
//! Every peer (and anyone else who reaches the port) can talk to it, so it
//! is bounded: a body of at most [`MAX_PROBE_PADDING`] bytes (`413` above,
//! at once when `Content-Length` says so), the request head within
//! [`Limits::header_timeout`], the body within [`Limits::body_timeout`], a
//! whole connection within [`Limits::connection_timeout`], one request per
//! connection, and at most [`Limits::max_connections`] connections at a
//! time (one more is closed as soon as it is accepted). The body is counted,
//! never kept, and the answer is a slice of one shared zero buffer.

use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use netchecker_wire::mesh::{MAX_PROBE_PADDING, MESH_PATH};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::zeros;

/// Largest read buffer of a connection, request head included (hyper's
/// minimum): a longer head is refused.
const MAX_BUFFER: usize = 8 * 1024;

/// The listener's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From the accept to the end of the request head.
    pub header_timeout: Duration,
    /// From the end of the head to the end of the body.
    pub body_timeout: Duration,
    /// A whole connection, the answer's transfer included.
    pub connection_timeout: Duration,
    /// Connections served at the same time.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(15),
            max_connections: 256,
        }
    }
}

/// What the listener did, counted.
#[derive(Debug, Default)]
pub struct Counts {
    /// Probes answered with the padding.
    pub answered: AtomicU64,
    /// Requests refused: another path or method (404), too large (413), a
    /// body that did not arrive in time (408) or broke off (400).
    pub refused: AtomicU64,
    /// Connections closed at once because `max_connections` were open.
    pub dropped: AtomicU64,
}

/// The bound probe sockets, ready to serve.
pub struct Listener {
    sockets: Vec<TcpListener>,
    limits: Limits,
    counts: Arc<Counts>,
}

impl Listener {
    /// Listen on `port` on every address: `[::]`, which takes IPv4 too on a
    /// dual-stack system, plus `0.0.0.0` where the system keeps the two
    /// apart; `0.0.0.0` alone where IPv6 is off. Port 0 picks a free port.
    pub async fn bind_port(port: u16) -> io::Result<Self> {
        let v6 = match TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).await {
            Ok(v6) => v6,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                ) =>
            {
                return Err(e);
            }
            // No IPv6 on this node.
            Err(_) => return Self::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).await,
        };
        let port = v6.local_addr()?.port();
        let mut sockets = vec![v6];
        // In use: by the dual-stack socket above, which takes IPv4 already.
        if let Ok(v4) = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await {
            sockets.push(v4);
        }
        Ok(Self::from_sockets(sockets))
    }

    /// Listen on `addr` only (tests and benchmarks use loopback).
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self::from_sockets(vec![TcpListener::bind(addr).await?]))
    }

    fn from_sockets(sockets: Vec<TcpListener>) -> Self {
        Self {
            sockets,
            limits: Limits::default(),
            counts: Arc::default(),
        }
    }

    /// The same listener with other bounds.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Where it listens.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.local_addrs().first().map_or(0, SocketAddr::port)
    }

    /// Its counts, shared: they keep counting while it serves.
    pub fn counts(&self) -> Arc<Counts> {
        self.counts.clone()
    }

    /// Answer probes until `shutdown` is cancelled; open connections are
    /// closed then.
    pub async fn serve(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.limits.max_connections));
        let loops = self
            .sockets
            .iter()
            .map(|socket| accept_loop(socket, self.limits, &self.counts, &slots));
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = futures::future::join_all(loops) => {}
        }
    }
}

async fn accept_loop(
    socket: &TcpListener,
    limits: Limits,
    counts: &Arc<Counts>,
    slots: &Arc<Semaphore>,
) {
    // Dropped with the loop: every connection of this socket ends with it.
    let mut connections = JoinSet::new();
    loop {
        let stream = match socket.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: let some close.
                tracing::debug!("mesh listener cannot accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        connections.spawn(connection(stream, limits, counts.clone(), slot));
    }
}

async fn connection(
    stream: TcpStream,
    limits: Limits,
    counts: Arc<Counts>,
    _slot: OwnedSemaphorePermit,
) {
    stream.set_nodelay(true).ok();
    let service = service_fn(move |request| answer(request, limits.body_timeout, counts.clone()));
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_BUFFER)
        .auto_date_header(false);
    let served = builder.serve_connection(TokioIo::new(stream), service);
    if let Ok(Err(e)) = timeout(limits.connection_timeout, served).await {
        tracing::trace!("mesh probe connection ended: {e}");
    }
}

/// The answer to one request.
async fn answer(
    request: Request<Incoming>,
    body_timeout: Duration,
    counts: Arc<Counts>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let answer = if request.method() != Method::POST || request.uri().path() != MESH_PATH {
        Err(StatusCode::NOT_FOUND)
    } else if request.body().size_hint().lower() > MAX_PROBE_PADDING as u64 {
        Err(StatusCode::PAYLOAD_TOO_LARGE)
    } else {
        match timeout(body_timeout, count_body(request.into_body())).await {
            Ok(result) => result,
            Err(_) => Err(StatusCode::REQUEST_TIMEOUT),
        }
    };
    let (status, body) = match answer {
        Ok(n) => {
            counts.answered.fetch_add(1, Ordering::Relaxed);
            (StatusCode::OK, zeros(n))
        }
        Err(status) => {
            counts.refused.fetch_add(1, Ordering::Relaxed);
            (status, Bytes::new())
        }
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    Ok(response)
}

/// The body's length, read to its end without keeping it.
async fn count_body(mut body: Incoming) -> Result<usize, StatusCode> {
    let mut n = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| StatusCode::BAD_REQUEST)?;
        if let Some(data) = frame.data_ref() {
            n += data.len();
            if n > MAX_PROBE_PADDING {
                return Err(StatusCode::PAYLOAD_TOO_LARGE);
            }
        }
    }
    Ok(n)
}
