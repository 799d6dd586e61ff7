//! The load generator's HTTP/1.1 client: hyper's connection API directly,
//! so that the client's own cost per request stays small and the same for
//! every server measured.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

/// One request over a new connection that closes afterwards; the status and
/// the body.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, Bytes)> {
    let io = TokioIo::new(TcpStream::connect(addr).await?);
    let (mut sender, conn) = http1::handshake::<_, Empty<Bytes>>(io).await?;
    let driver = tokio::spawn(conn);
    let req = Request::get(path)
        .header(header::HOST, addr.to_string())
        .header(header::CONNECTION, "close")
        .body(Empty::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    let _ = driver.await;
    Ok((status, body))
}

/// How reports reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each worker keeps one connection open and sends report after report.
    KeepAlive,
    /// Each report on a new connection, `Connection: close`, as agents do.
    NewConnection,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::KeepAlive => "keep-alive",
            Mode::NewConnection => "new connection per report",
        }
    }
}

/// What one load run measured.
pub struct LoadResult {
    pub sent: u64,
    pub failed: u64,
    pub elapsed: Duration,
    /// Latency of each successful report in microseconds.
    pub latency: Histogram<u64>,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64()
    }
}

/// The reports to send: agent names and padded bodies, prebuilt, and each
/// agent's bearer token when the server wants one (else empty).
pub struct Reports {
    pub paths: Vec<String>,
    pub bodies: Vec<Bytes>,
    pub tokens: Vec<http::HeaderValue>,
    /// Send the mesh header (`netchecker-mesh: 1`), as mesh agents do.
    pub mesh: bool,
}

fn post(addr: SocketAddr, reports: &Reports, i: usize, close: bool) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(reports.paths[i].as_str())
        .header(header::HOST, addr.to_string())
        .header(header::USER_AGENT, "netchecker-bench")
        .header(header::CONTENT_TYPE, "application/json");
    if close {
        b = b.header(header::CONNECTION, "close");
    }
    if let Some(token) = reports.tokens.get(i) {
        b = b.header(header::AUTHORIZATION, token.clone());
    }
    if reports.mesh {
        b = b.header(
            netchecker_wire::mesh::MESH_HEADER,
            netchecker_wire::mesh::MESH_VERSION,
        );
    }
    b.body(Full::new(reports.bodies[i].clone()))
        .expect("static request parts are valid")
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

struct Shared {
    reports: Arc<Reports>,
    next: AtomicU64,
    stop: AtomicBool,
    failed: AtomicU64,
}

impl Shared {
    /// The next agent in rotation, or `None` once `limit` reports were
    /// handed out or the run is over.
    fn next(&self, limit: Option<u64>) -> Option<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        if limit.is_some_and(|l| n >= l) {
            return None;
        }
        Some((n % self.reports.paths.len() as u64) as usize)
    }
}

async fn keep_alive_sender(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Connect from loopback source address `127.0.0.<2 + source % 250>`: the
/// closing side keeps each connection in TIME_WAIT for a minute, and one
/// source address alone would run out of ports for a new connection per
/// report within a few runs.
async fn connect_from(addr: SocketAddr, source: usize) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    let ip = Ipv4Addr::new(127, 0, 0, 2 + (source % 250) as u8);
    socket.bind(SocketAddr::from((ip, 0)))?;
    Ok(socket.connect(addr).await?)
}

async fn one_new_connection(
    addr: SocketAddr,
    source: usize,
    req: Request<Full<Bytes>>,
) -> anyhow::Result<()> {
    let stream = connect_from(addr, source).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let resp = sender.send_request(req).await?;
    let ok = resp.status().is_success();
    resp.into_body().collect().await?;
    driver.await??;
    if !ok {
        bail!("report refused");
    }
    Ok(())
}

async fn worker(
    shared: Arc<Shared>,
    addr: SocketAddr,
    mode: Mode,
    limit: Option<u64>,
) -> anyhow::Result<Histogram<u64>> {
    let mut hist = histogram();
    let mut sender = match mode {
        Mode::KeepAlive => Some(keep_alive_sender(addr).await?),
        Mode::NewConnection => None,
    };
    while let Some(i) = shared.next(limit) {
        let start = Instant::now();
        let ok = match sender.as_mut() {
            Some(s) => {
                s.ready().await.context("keep-alive connection lost")?;
                let resp = s
                    .send_request(post(addr, &shared.reports, i, false))
                    .await?;
                let ok = resp.status().is_success();
                resp.into_body().collect().await?;
                ok
            }
            None => one_new_connection(addr, i, post(addr, &shared.reports, i, true))
                .await
                .is_ok(),
        };
        if ok {
            let us = start.elapsed().as_micros().max(1) as u64;
            hist.saturating_record(us);
        } else {
            shared.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(hist)
}

/// Send reports to `addr` from `connections` workers, rotating over every
/// agent, for `duration` (or until `limit` reports were sent).
pub async fn run(
    addr: SocketAddr,
    reports: Arc<Reports>,
    mode: Mode,
    connections: usize,
    duration: Duration,
    limit: Option<u64>,
) -> anyhow::Result<LoadResult> {
    let shared = Arc::new(Shared {
        reports,
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        failed: AtomicU64::new(0),
    });
    let start = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(worker(shared.clone(), addr, mode, limit)))
        .collect();
    let timer = {
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            shared.stop.store(true, Ordering::Relaxed);
        })
    };
    let mut latency = histogram();
    for w in workers {
        latency.add(w.await??)?;
    }
    let elapsed = start.elapsed();
    timer.abort();
    Ok(LoadResult {
        sent: latency.len(),
        failed: shared.failed.load(Ordering::Relaxed),
        elapsed,
        latency,
    })
}

/// POST every report once, over `connections` keep-alive connections;
/// the status and body of each answer, in order.
pub async fn post_each(
    addr: SocketAddr,
    reports: Arc<Reports>,
    connections: usize,
) -> anyhow::Result<Vec<(u16, Bytes)>> {
    let n = reports.paths.len();
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..connections.min(n).max(1))
        .map(|_| {
            let (reports, next) = (reports.clone(), next.clone());
            tokio::spawn(async move {
                let mut sender = keep_alive_sender(addr).await?;
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= reports.paths.len() {
                        return anyhow::Ok(out);
                    }
                    sender.ready().await?;
                    let resp = sender.send_request(post(addr, &reports, i, false)).await?;
                    let status = resp.status().as_u16();
                    let body = resp.into_body().collect().await?.to_bytes();
                    out.push((i, status, body));
                }
            })
        })
        .collect();
    let mut all = vec![(0, Bytes::new()); n];
    for w in workers {
        for (i, status, body) in w.await?? {
            all[i] = (status, body);
        }
    }
    Ok(all)
}

/// `n` sequential `GET path` on one keep-alive connection: the latency of
/// each (µs) and the last answer's status and body.
pub async fn timed_gets(
    addr: SocketAddr,
    path: &str,
    n: usize,
) -> anyhow::Result<(Histogram<u64>, u16, Bytes)> {
    let mut sender = keep_alive_sender(addr).await?;
    let mut hist = histogram();
    let mut last = (0, Bytes::new());
    for _ in 0..n {
        let req = Request::get(path)
            .header(header::HOST, addr.to_string())
            .body(Full::new(Bytes::new()))?;
        let start = Instant::now();
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        hist.saturating_record(start.elapsed().as_micros().max(1) as u64);
        last = (status, body);
    }
    Ok((hist, last.0, last.1))
}
