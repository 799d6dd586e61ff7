//! Test support: a minimal HTTP/1.1 server on loopback that records every
//! request with the connection it came on, and helpers to build configs.
//!
//! The recorder keeps connections alive (it never closes one unless the
//! client asks), so a client that reused connections would show up as two
//! requests on one connection.

#![allow(dead_code)]

pub mod logs;
pub mod mesh;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netchecker_agent::{Args, Config};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

/// One request as the recorder saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Serial number of the connection (1, 2, ...).
    pub conn: u64,
    pub peer: SocketAddr,
    /// When the request head had been read.
    pub at: Instant,
    /// The same on tokio's clock, which tests can pause and advance.
    pub clock: tokio::time::Instant,
}

/// When each of `reports` arrived, in seconds of tokio's clock since `t0`.
pub fn seconds_since(t0: tokio::time::Instant, reports: &[Recorded]) -> Vec<f64> {
    reports
        .iter()
        .map(|r| r.clock.duration_since(t0).as_secs_f64())
        .collect()
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
}

/// How the recorder answers.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub status: u16,
    /// Pause between reading the request and writing the response head.
    pub head_delay: Duration,
    /// Pause between the response head and its body.
    pub body_delay: Duration,
    pub body: &'static str,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            status: 200,
            head_delay: Duration::ZERO,
            body_delay: Duration::ZERO,
            body: "",
        }
    }
}

/// Where reports go; [`Recorder::answer_reports`] applies to these only.
pub const REPORTS: &str = "/api/v1/agents/";

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Recorded>>,
    behaviour: Mutex<Behaviour>,
    /// Answers to the next reports, in turn, before `behaviour` again.
    report_answers: Mutex<VecDeque<Behaviour>>,
    connections: AtomicU64,
    changed: Notify,
}

/// The recording server; stops (listener and connections) when dropped.
pub struct Recorder {
    addr: SocketAddr,
    state: Arc<State>,
    tasks: JoinSet<()>,
}

impl Recorder {
    /// Listen on 127.0.0.1 on a free port.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Listen on `addr` (e.g. the port of a recorder that was stopped).
    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind the recorder");
        Self::serving(listener, None)
    }

    /// Listen on 127.0.0.1 on a free port with an accept queue of
    /// `backlog`, accepting only while `open` holds `true`. While it is
    /// `false` the kernel completes handshakes until the queue is full and
    /// then drops further SYNs unanswered (`tcp_abort_on_overflow` 0, the
    /// default): the client sends its SYN again only after TCP's 1 s
    /// initial retransmission timeout. Fill the queue with [`fill_queue`].
    pub fn start_gated(backlog: u32, open: watch::Receiver<bool>) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(backlog).expect("listen");
        Self::serving(listener, Some(open))
    }

    fn serving(listener: TcpListener, mut gate: Option<watch::Receiver<bool>>) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let mut tasks = JoinSet::new();
        let st = state.clone();
        tasks.spawn(async move {
            // Connection tasks live in this set: aborting the accept task
            // drops the set and with it every open connection.
            let mut conns = JoinSet::new();
            loop {
                let accepted = match &mut gate {
                    Some(open) => {
                        until(open, true).await;
                        tokio::select! {
                            accepted = listener.accept() => Some(accepted),
                            () = until(open, false) => None,
                        }
                    }
                    None => Some(listener.accept().await),
                };
                let Some(Ok((stream, peer))) = accepted else {
                    continue;
                };
                let id = st.connections.fetch_add(1, Ordering::SeqCst) + 1;
                conns.spawn(serve(stream, peer, id, st.clone()));
            }
        });
        Self { addr, state, tasks }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    /// Answer the next reports (not pings) with `answers`, one each in
    /// turn; later ones get the behaviour set with [`Recorder::set`].
    pub fn answer_reports(&self, answers: impl IntoIterator<Item = Behaviour>) {
        self.state.report_answers.lock().unwrap().extend(answers);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }

    /// Wait until at least `n` requests to `prefix` arrived; panic after `within`.
    pub async fn wait_for(&self, prefix: &str, n: usize, within: Duration) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.state.changed.notified();
            let got = self.requests_to(prefix);
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "only {} of {n} requests to {prefix} within {within:?}: {:#?}",
                    got.len(),
                    self.requests()
                );
            }
        }
    }

    /// Stop listening and close every connection; the port is then refused.
    pub fn stop(mut self) -> SocketAddr {
        self.tasks.abort_all();
        self.addr
    }
}

async fn serve(stream: TcpStream, peer: SocketAddr, conn: u64, state: Arc<State>) {
    let mut reader = BufReader::new(stream);
    loop {
        // A TLS ClientHello on this plain port: answer like an HTTP server
        // that got garbage, and close.
        if let Ok(buf) = reader.fill_buf().await
            && buf.first() == Some(&0x16)
        {
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                .await;
            return;
        }
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let Some(request_line) = head.first() else {
            return;
        };
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = head[1..]
            .iter()
            .filter_map(|h| h.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let close = headers
            .iter()
            .any(|(n, v)| n == "connection" && v.eq_ignore_ascii_case("close"));
        let scripted = if path.starts_with(REPORTS) {
            state.report_answers.lock().unwrap().pop_front()
        } else {
            None
        };
        let request = Recorded {
            method,
            path,
            headers,
            body,
            conn,
            peer,
            at: Instant::now(),
            clock: tokio::time::Instant::now(),
        };
        state.requests.lock().unwrap().push(request);
        state.changed.notify_waiters();

        let b = scripted.unwrap_or_else(|| state.behaviour.lock().unwrap().clone());
        tokio::time::sleep(b.head_delay).await;
        let head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n",
            b.status,
            b.body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        let stream = reader.get_mut();
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let _ = stream.flush().await;
        tokio::time::sleep(b.body_delay).await;
        if stream.write_all(b.body.as_bytes()).await.is_err() {
            return;
        }
        if close {
            return;
        }
    }
}

/// Wait until `open` holds `want` (forever once its sender is gone).
async fn until(open: &mut watch::Receiver<bool>, want: bool) {
    loop {
        let now = *open.borrow_and_update();
        if now == want {
            return;
        }
        if open.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Connect to `addr` (a listener that does not accept) until a connect is
/// not answered within 100 ms: its accept queue is then full, and further
/// SYNs to it go unanswered. Returns the connections that fill it (keep
/// them open); panics when the queue does not fill up.
pub async fn fill_queue(addr: SocketAddr) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(e)) => panic!("connect to {addr}: {e}"),
            // The unanswered connect is dropped here, its socket closed:
            // it sends no SYN again.
            Err(_) => return held,
        }
    }
    panic!(
        "the accept queue of {addr} did not fill up with {} connections",
        held.len()
    );
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub async fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A listener that accepts connections and never answers; stops when dropped.
pub struct Silent {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Silent {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        Self { addr, task }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A validated config from Go-style flags, with the given pod and node names.
pub fn config(args: &[&str], pod: &str, node: Option<&str>) -> Config {
    let args = Args::try_parse_go(std::iter::once("netchecker-agent").chain(args.iter().copied()))
        .expect("flags parse");
    Config::from_args(args, |k| match k {
        "MY_POD_NAME" => Some(pod.to_owned()),
        "MY_NODE_NAME" => node.map(str::to_owned),
        _ => None,
    })
    .expect("valid config")
}
