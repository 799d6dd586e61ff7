//! Test support for the mesh: probe listeners on loopback, peers that
//! misbehave in one way each, raw HTTP exchanges, and the server's answer
//! naming peers.

use std::net::SocketAddr;
use std::time::Duration;

use netchecker_agent::mesh::{Limits, Listener};
use netchecker_wire::mesh::{MeshAnswer, MeshRound, Peer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Behaviour;

/// A probe listener of the agent on 127.0.0.1; stops when dropped.
pub struct MeshPeer {
    pub addr: SocketAddr,
    pub counts: std::sync::Arc<netchecker_agent::mesh::Counts>,
    stop: CancellationToken,
}

impl MeshPeer {
    pub async fn start() -> Self {
        Self::with_limits(Limits::default()).await
    }

    pub async fn with_limits(limits: Limits) -> Self {
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
            .with_limits(limits);
        let addr = listener.local_addrs()[0];
        let counts = listener.counts();
        let stop = CancellationToken::new();
        tokio::spawn(listener.serve(stop.clone()));
        Self { addr, counts, stop }
    }

    pub fn peer(&self, node: &str) -> Peer {
        peer(node, self.addr)
    }
}

impl Drop for MeshPeer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub fn peer(node: &str, addr: SocketAddr) -> Peer {
    Peer {
        node: node.to_owned(),
        address: addr.ip().to_string(),
        port: addr.port(),
    }
}

/// The server's answer to a report naming `peers` for round `round`.
pub fn mesh_answer(round: u64, timeout_ms: u64, peers: Vec<Peer>) -> Behaviour {
    let json = serde_json::to_string(&MeshAnswer {
        mesh: MeshRound {
            round,
            timeout_ms,
            peers,
        },
    })
    .unwrap();
    Behaviour {
        body: Box::leak(json.into_boxed_str()),
        ..Behaviour::default()
    }
}

/// What a scripted peer does once it has read a request.
#[derive(Debug, Clone)]
pub enum Script {
    /// Write these bytes and close.
    Answer(Vec<u8>),
    /// Write these bytes and keep the connection open, silent.
    AnswerAndHold(Vec<u8>),
    /// Read the request head only (never the body) and hold the connection.
    HoldAfterHead,
    /// Close at once after reading the head.
    CloseAfterHead,
}

/// A peer that reads a request head (and its body, unless told otherwise)
/// and then follows its script, on every connection; stops when dropped.
pub struct Scripted {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Scripted {
    pub async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                conns.spawn(follow(stream, script.clone()));
            }
        });
        Self { addr, task }
    }

    pub fn peer(&self, node: &str) -> Peer {
        peer(node, self.addr)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow(stream: TcpStream, script: Script) {
    let mut reader = BufReader::new(stream);
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        if line.trim_end().is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut stream = match script {
        Script::HoldAfterHead => {
            std::future::pending::<()>().await;
            return;
        }
        Script::CloseAfterHead => return,
        _ => {
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).await.is_err() {
                return;
            }
            reader.into_inner()
        }
    };
    match script {
        Script::Answer(bytes) => {
            let _ = stream.write_all(&bytes).await;
        }
        Script::AnswerAndHold(bytes) => {
            let _ = stream.write_all(&bytes).await;
            std::future::pending::<()>().await;
        }
        _ => unreachable!(),
    }
}

/// An HTTP answer with `body`, the given status and Content-Length.
pub fn http_answer(status: &str, content_length: usize, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {content_length}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// An answer as read off the wire.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub content_length: Option<usize>,
    pub body: Vec<u8>,
}

/// Write `request` on a new connection to `addr` and read until the peer
/// closes (at most `within`); `None` when it closed without an answer.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8], within: Duration) -> Option<RawAnswer> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The listener may answer (413) before taking the whole request.
    let _ = stream.write_all(request).await;
    let mut all = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut all))
        .await
        .expect("the listener closes the connection")
        .ok();
    parse_answer(&all)
}

/// An HTTP/1.1 answer with a Content-Length body, or `None` for none.
pub fn parse_answer(all: &[u8]) -> Option<RawAnswer> {
    let end = all.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&all[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let content_length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok());
    Some(RawAnswer {
        status,
        content_length,
        body: all[end + 4..].to_vec(),
    })
}

/// A probe request head for a body of `len` bytes.
pub fn probe_head(len: usize) -> Vec<u8> {
    format!("POST /mesh/probe HTTP/1.1\r\nHost: peer\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
        .into_bytes()
}
