//! One HTTP/1.1 request on one new connection, with every phase timed.
//!
//! Probes and reports share this path: resolve the host through the system
//! resolver (getaddrinfo, so `/etc/hosts` and the search domains of
//! `/etc/resolv.conf` apply as they do for any program in the pod), connect
//! over TCP, optionally run TLS, send the request with `Connection: close`,
//! read the response head and body, and drop the connection. Nothing is
//! pooled: a fresh connection each time is what makes a report exercise
//! Service NAT and conntrack, and it is what the original agent did.
//!
//! The phases are written into an [`Exchange`] as they complete, so a
//! request that fails or times out still tells how far it got.
//!
//! Reports and HTTP probes race their connect: when the SYN has not been
//! answered within [`RequestSpec::race_after`] ([`race_delay`]), a second
//! connection is started beside the first and whichever connects first
//! carries the request; the other is dropped. A lost SYN is only sent
//! again after TCP's 1 s initial retransmission timeout, longer than a
//! short interval's report or probe timeout; a second SYN sent early gets
//! through as often as the first would have. A probe's `TCPConnection`
//! still counts from the first SYN, so a lost one shows as time, not as
//! a failure. The mesh's probes race their connect too
//! ([`connect_raced`]).

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout_at};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

use crate::{Error, Result};

const USER_AGENT: &str = concat!("netchecker-agent/", env!("CARGO_PKG_VERSION"));

/// An http or https URL, split into what a connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given; probes report it verbatim in `URL`.
    pub url: String,
    pub tls: bool,
    /// Host name or address, without IPv6 brackets: what DNS and SNI get.
    pub host: String,
    pub port: u16,
    /// Value of the `Host` header.
    pub authority: String,
    /// Path and query, `/` when the URL has none.
    pub path: String,
}

impl Target {
    /// `http://{endpoint}{path}`: a URL on the server, from `host:port`.
    pub fn server(endpoint: &str, path: &str) -> Result<Self> {
        format!("http://{endpoint}{path}").parse()
    }
}

impl FromStr for Target {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(invalid(&format!("scheme {other:?} is not http or https"))),
            None => return Err(invalid("no scheme; expected http:// or https://")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        // The Host header never carries user information.
        let host_header = authority
            .as_str()
            .rsplit('@')
            .next()
            .unwrap_or(authority.as_str());
        let path = uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        Ok(Self {
            url: url.to_owned(),
            tls,
            host: host.to_owned(),
            port,
            authority: host_header.to_owned(),
            path: path.to_owned(),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// The phase an exchange was in; named in timeout errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Dns,
    TcpConnect,
    TlsHandshake,
    /// Request sent (or being sent), waiting for the response head.
    AwaitingResponse,
    /// Reading the response body.
    ReadingBody,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Dns => "DNS lookup",
            Phase::TcpConnect => "TCP connect",
            Phase::TlsHandshake => "TLS handshake",
            Phase::AwaitingResponse => "wait for the response",
            Phase::ReadingBody => "response body transfer",
        })
    }
}

/// What one request did: when each phase ended, and how it came out.
#[derive(Debug)]
pub struct Exchange {
    pub start: Instant,
    pub resolved: Option<Instant>,
    /// TCP connection established.
    pub connected: Option<Instant>,
    /// This end's address of the connection, once connected.
    pub local: Option<SocketAddr>,
    /// Connection ready for HTTP (after TLS for https).
    pub ready: Option<Instant>,
    /// Response head received.
    pub head: Option<Instant>,
    /// Response body read to the end.
    pub done: Option<Instant>,
    /// When the exchange ended, successfully or not.
    pub end: Instant,
    pub status: Option<StatusCode>,
    /// The first bytes of the body, up to the requested limit.
    pub body: Bytes,
    pub body_len: u64,
    pub outcome: Result<()>,
    /// The phase the exchange was in when it ended.
    pub phase: Phase,
    /// The TCP connections it started, and whether it raced them.
    pub connects: Connects,
}

/// The TCP connections of one exchange: how many were started (one per
/// address tried, per raced connection), whether more were raced beside an
/// unanswered first, and whether one of those won.
#[derive(Debug, Default)]
pub struct Connects {
    started: AtomicU32,
    raced: AtomicBool,
    race_won: AtomicBool,
}

impl Connects {
    /// TCP connections started.
    pub fn started(&self) -> u32 {
        self.started.load(Ordering::Relaxed)
    }

    /// Whether more connections were started beside the first.
    pub fn raced(&self) -> bool {
        self.raced.load(Ordering::Relaxed)
    }

    /// Whether a raced connection (not the first) connected first and
    /// carried the request.
    pub fn race_won(&self) -> bool {
        self.race_won.load(Ordering::Relaxed)
    }
}

/// The request to make.
#[derive(Clone)]
pub struct RequestSpec<'a> {
    pub method: Method,
    pub content_type: Option<&'static str>,
    pub body: Bytes,
    /// How many body bytes of the answer to keep (the rest is counted).
    pub keep_body: usize,
    pub timeout: Duration,
    pub tls: Option<&'a TlsConnector>,
    /// One more header (the mesh's), sent before `Authorization`.
    pub extra_header: Option<(HeaderName, HeaderValue)>,
    /// `Authorization` header, sent last; none at all when `None`, so that
    /// such a request is byte for byte what it was before tokens existed.
    pub authorization: Option<HeaderValue>,
    /// Connect to these addresses, in order, instead of resolving the host
    /// (which still names the `Host` header, SNI and errors): one replica
    /// of a name, or the addresses of one IP family; empty: resolve.
    pub connect_to: Vec<SocketAddr>,
    /// Start another connection each time none has connected for this
    /// long ([`RACED_CONNECTIONS`] at most), and go on with whichever
    /// connects first; `None`: one connection only.
    pub race_after: Option<Duration>,
}

impl<'a> RequestSpec<'a> {
    /// A GET whose answer is only counted.
    pub fn get(timeout: Duration, tls: Option<&'a TlsConnector>) -> Self {
        Self {
            method: Method::GET,
            content_type: None,
            body: Bytes::new(),
            keep_body: 0,
            timeout,
            tls,
            extra_header: None,
            authorization: None,
            connect_to: Vec::new(),
            race_after: None,
        }
    }
}

/// Perform one request on a new connection, within `spec.timeout` in all.
pub async fn request(target: &Target, spec: RequestSpec<'_>) -> Exchange {
    let start = Instant::now();
    let mut ex = Exchange {
        start,
        resolved: None,
        connected: None,
        local: None,
        ready: None,
        head: None,
        done: None,
        end: start,
        status: None,
        body: Bytes::new(),
        body_len: 0,
        outcome: Ok(()),
        phase: Phase::Dns,
        connects: Connects::default(),
    };
    let deadline = start + spec.timeout;
    let outcome = timeout_at(deadline, run(target, &spec, &mut ex)).await;
    ex.outcome = match outcome {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout {
            phase: ex.phase,
            after: spec.timeout,
        }),
    };
    ex.end = Instant::now();
    ex
}

async fn run(target: &Target, spec: &RequestSpec<'_>, ex: &mut Exchange) -> Result<()> {
    ex.phase = Phase::Dns;
    let resolved;
    let addrs = if spec.connect_to.is_empty() {
        resolved = resolve(&target.host, target.port).await?;
        &resolved[..]
    } else {
        &spec.connect_to[..]
    };
    ex.resolved = Some(Instant::now());

    ex.phase = Phase::TcpConnect;
    let tcp = match spec.race_after {
        Some(after) => race(&target.host, addrs, after, &ex.connects).await?,
        None => connect(&target.host, addrs, &ex.connects).await?,
    };
    ex.connected = Some(Instant::now());
    ex.local = tcp.local_addr().ok();
    // Small requests go out at once rather than waiting for an ACK.
    tcp.set_nodelay(true).ok();

    let req = build_request(target, spec);
    if target.tls {
        ex.phase = Phase::TlsHandshake;
        let connector = spec.tls.ok_or_else(|| Error::Tls {
            host: target.host.clone(),
            source: std::io::Error::other("no TLS configuration"),
        })?;
        let name = rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(|e| {
            Error::Tls {
                host: target.host.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
            }
        })?;
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|source| Error::Tls {
                host: target.host.clone(),
                source,
            })?;
        ex.ready = Some(Instant::now());
        exchange(stream, req, target, spec.keep_body, ex).await
    } else {
        ex.ready = ex.connected;
        exchange(tcp, req, target, spec.keep_body, ex).await
    }
}

/// Resolve through the system resolver; an IP literal is returned as is.
pub async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| Error::Dns {
            host: host.to_owned(),
            source,
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Error::NoAddresses {
            host: host.to_owned(),
        });
    }
    Ok(addrs)
}

/// How long a TCP connect may go unanswered before a second connection is
/// started beside it (at most a quarter of the request's time limit): well
/// above a cluster's round trip, well below TCP's 1 s wait before it sends
/// a lost SYN again.
pub const RACE_AFTER: Duration = Duration::from_millis(200);

/// The race delay of a request limited to `limit`: [`RACE_AFTER`], or a
/// quarter of the limit when that is shorter.
pub fn race_delay(limit: Duration) -> Duration {
    RACE_AFTER.min(limit / 4)
}

/// Connections one attempt may race at most: the first and up to three
/// more, `after` apart. At 20% loss both SYNs of a two-way race are lost in
/// one attempt of 25; all four, in one of 625.
pub const RACED_CONNECTIONS: usize = 4;

/// One TCP connection to `addr`, raced after `after` like a report's (the
/// mesh's probes), and whether it was raced (the first SYN went unanswered
/// for `after`); the I/O error of the earliest started one when none
/// connects.
pub async fn connect_raced(
    addr: SocketAddr,
    after: Duration,
) -> std::io::Result<(TcpStream, bool)> {
    let counts = Connects::default();
    match race("", &[addr], after, &counts).await {
        Ok(stream) => Ok((stream, counts.raced())),
        Err(Error::Connect { source, .. }) => Err(source),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// [`connect`], and each time none has connected for another `after`, one
/// more [`connect`] beside the others, [`RACED_CONNECTIONS`] in all: the
/// first to connect wins, the others are dropped (their sockets closed).
/// A connect that fails (refused: something answered) starts no more; when
/// every started one has failed, the earliest started one's error is
/// returned, so a first that fails before `after` is not raced.
async fn race(
    host: &str,
    addrs: &[SocketAddr],
    after: Duration,
    counts: &Connects,
) -> Result<TcpStream> {
    let start = |index: usize| async move { (index, connect(host, addrs, counts).await) };
    let mut pending = FuturesUnordered::new();
    pending.push(start(0));
    let mut started = 1;
    let mut next = Instant::now() + after;
    let mut failed: Option<(usize, Error)> = None;
    loop {
        let more = started < RACED_CONNECTIONS && failed.is_none();
        tokio::select! {
            biased;
            Some((index, result)) = pending.next() => match result {
                Ok(stream) => {
                    if index > 0 {
                        counts.race_won.store(true, Ordering::Relaxed);
                    }
                    return Ok(stream);
                }
                Err(e) => {
                    if failed.as_ref().is_none_or(|(first, _)| index < *first) {
                        failed = Some((index, e));
                    }
                    if pending.is_empty() {
                        let (_, e) = failed.expect("an error was just kept");
                        return Err(e);
                    }
                }
            },
            () = sleep_until(next), if more => {
                counts.raced.store(true, Ordering::Relaxed);
                pending.push(start(started));
                started += 1;
                next += after;
            }
        }
    }
}

/// Try the addresses in the resolver's order; the first that answers wins.
async fn connect(host: &str, addrs: &[SocketAddr], counts: &Connects) -> Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        counts.started.fetch_add(1, Ordering::Relaxed);
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Connect {
        host: host.to_owned(),
        addrs: addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        source: last.unwrap_or_else(|| std::io::Error::other("no address to connect to")),
    })
}

fn build_request(target: &Target, spec: &RequestSpec<'_>) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(spec.method.clone())
        .uri(target.path.as_str())
        .header(header::HOST, target.authority.as_str())
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::CONNECTION, "close");
    if let Some(ct) = spec.content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    if let Some((name, value)) = &spec.extra_header {
        builder = builder.header(name, value);
    }
    if let Some(value) = &spec.authorization {
        builder = builder.header(header::AUTHORIZATION, value.clone());
    }
    builder
        .body(Full::new(spec.body.clone()))
        .expect("path and headers were validated when the target was parsed")
}

/// Send `req` over `io` and read the answer, driving the connection here
/// (no spawned task outlives the exchange).
async fn exchange<T>(
    io: T,
    req: Request<Full<Bytes>>,
    target: &Target,
    keep_body: usize,
    ex: &mut Exchange,
) -> Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http_err = |source| Error::Http {
        authority: target.authority.clone(),
        source,
    };
    ex.phase = Phase::AwaitingResponse;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(http_err)?;
    let mut conn = std::pin::pin!(conn);

    let talk = async {
        let resp = sender.send_request(req).await.map_err(http_err)?;
        ex.head = Some(Instant::now());
        ex.status = Some(resp.status());
        ex.phase = Phase::ReadingBody;
        let mut body = resp.into_body();
        let mut kept = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(http_err)?;
            if let Ok(data) = frame.into_data() {
                ex.body_len += data.len() as u64;
                let room = keep_body.saturating_sub(kept.len());
                kept.extend_from_slice(&data[..room.min(data.len())]);
            }
        }
        ex.done = Some(Instant::now());
        ex.body = kept.freeze();
        Ok(())
    };
    let mut talk = std::pin::pin!(talk);
    tokio::select! {
        result = &mut talk => result,
        // The connection ended first (closed after the answer, or broken):
        // what it delivered is in the channels, so let the exchange finish.
        _ = &mut conn => talk.await,
    }
}

/// A TLS client configuration with the Mozilla roots (webpki-roots) and the
/// ring provider; HTTP/1.1 only.
pub fn tls_connector() -> Result<TlsConnector> {
    let roots: rustls::RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Config(format!("TLS set-up failed: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests;
