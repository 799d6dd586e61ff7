//! The server binary locked down: a shared report secret without
//! Kubernetes, a read token for the read and admin routes, a cap on
//! connections that sheds load, a write timeout for clients that ask and
//! never read, and log lines no client can forge.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
mod fixture;
use common::Server;

fn spawn(args: &[&str], files: &[(&str, &str)]) -> Server {
    Server::start(|cmd, addr, dir| {
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let args = args.iter().map(|a| a.replace("DIR", dir.to_str().unwrap()));
        cmd.args([
            "--kube=false",
            "--endpoint",
            &addr.to_string(),
            "--check-interval",
            "1",
        ])
        .args(args)
        .env("RUST_LOG", "info");
    })
}

/// One request on a fresh connection: status, head and body.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (status, head.to_owned(), fixture::dechunk(chunked, body))
}

fn wait_ready(s: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = s.child.try_wait() {
            panic!("server exited with {status}:\n{}", s.logs());
        }
        if TcpStream::connect(s.addr).is_ok()
            && request(s.addr, "GET", "/readyz", None, "").0 == 200
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not ready:\n{}", s.logs());
}

fn post(addr: SocketAddr, name: &str, token: Option<&str>) -> (u16, String) {
    let (code, _, body) = request(
        addr,
        "POST",
        &format!("/api/v1/agents/{name}"),
        token,
        &fixture::go_report(name),
    );
    (code, body)
}

/// Replace a secret file the way a mounted Secret changes: a new file
/// renamed over the old one.
fn rotate(dir: &Path, name: &str, text: &str) {
    let next = dir.join(format!("{name}.next"));
    std::fs::write(&next, text).unwrap();
    std::fs::rename(next, dir.join(name)).unwrap();
}

#[test]
fn without_kubernetes_a_shared_secret_authenticates_reports_and_rotates() {
    let mut s = spawn(
        &[
            "--report-auth",
            "enforce",
            "--report-token-file",
            "DIR/report-token",
        ],
        &[("report-token", "first-secret\n")],
    );
    wait_ready(&mut s);
    let a = s.addr;
    assert_eq!(post(a, "netchecker-agent-a", None).0, 401);
    assert_eq!(post(a, "netchecker-agent-a", Some("wrong")).0, 401);
    assert_eq!(post(a, "netchecker-agent-a", Some("first-secret")).0, 200);
    let dir = s.log.parent().unwrap().to_owned();
    rotate(&dir, "report-token", "second-secret");
    assert_eq!(post(a, "netchecker-agent-a", Some("first-secret")).0, 401);
    assert_eq!(post(a, "netchecker-agent-a", Some("second-secret")).0, 200);
    let logs = s.logs();
    assert!(
        !logs.contains("first-secret") && !logs.contains("second-secret"),
        "{logs}"
    );
}

#[test]
fn enforce_without_anything_to_verify_against_refuses_to_start() {
    let mut s = spawn(&["--report-auth", "enforce"], &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running:\n{}", s.logs());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    assert!(s.logs().contains("--report-token-file"), "{}", s.logs());
}

#[test]
fn the_read_token_guards_the_read_and_admin_routes_only() {
    let mut s = spawn(
        &["--read-token-file", "DIR/read-token"],
        &[("read-token", "r34d\n")],
    );
    wait_ready(&mut s);
    let a = s.addr;
    assert_eq!(
        post(a, "netchecker-agent-a", None).0,
        200,
        "reports stay open"
    );
    for (method, path) in [
        ("GET", "/api/v1/agents/"),
        ("GET", "/api/v1/agents"),
        ("GET", "/api/v1/agents/netchecker-agent-a"),
        ("GET", "/api/v2/status"),
        ("GET", "/metrics"),
        ("DELETE", "/api/v1/agents/netchecker-agent-a"),
    ] {
        let (code, head, body) = request(a, method, path, None, "");
        assert_eq!(code, 401, "{method} {path}: {body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{head}"
        );
        assert_eq!(
            request(a, method, path, Some("wrong"), "").0,
            401,
            "{method} {path}"
        );
    }
    for path in ["/api/v1/agents/", "/api/v2/status", "/metrics"] {
        let (code, _, body) = request(a, "GET", path, Some("r34d"), "");
        assert_eq!(code, 200, "{path}: {body}");
    }
    for path in [
        "/healthz",
        "/readyz",
        "/api/v1/ping",
        "/api/v1/connectivity_check",
        "/",
    ] {
        assert_eq!(
            request(a, "GET", path, None, "").0,
            200,
            "{path} stays open"
        );
    }
    assert_eq!(
        request(
            a,
            "DELETE",
            "/api/v1/agents/netchecker-agent-a",
            Some("r34d"),
            ""
        )
        .0,
        200
    );
    assert!(!s.logs().contains("r34d"));
}

#[test]
fn connections_beyond_the_cap_get_503_and_the_server_stays_up() {
    let mut s = spawn(&["--max-connections", "4", "--request-timeout", "30"], &[]);
    wait_ready(&mut s);
    let a = s.addr;
    // Four connections that send half a request and wait.
    let held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut c = TcpStream::connect(a).unwrap();
            c.write_all(b"GET /api/v1/ping HTTP/1.1\r\n").unwrap();
            c
        })
        .collect();
    // Once the four are accepted (a loaded machine may take a while), a
    // fifth is shed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (code, head, body) = loop {
        let answer = request(a, "GET", "/api/v1/ping", None, "");
        if answer.0 == 503 || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, 503, "{head}{body}");
    assert!(head.contains("Retry-After: 1"), "{head}");
    assert!(body.contains("--max-connections"), "{body}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while request(a, "GET", "/api/v1/ping", None, "").0 != 200 {
        assert!(Instant::now() < deadline, "never served again");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, _, metrics) = request(a, "GET", "/metrics", None, "");
    let shed: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("netchecker_connections_shed_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(shed >= 1.0, "{shed}");
}

/// A connection that takes at most a few KiB at a time: what a client that
/// stops reading looks like to the server once the buffers are full.
fn tiny_reader(addr: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap().into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    })
}

#[test]
fn a_client_that_asks_and_never_reads_is_cut_off_at_the_write_timeout() {
    let mut s = spawn(&["--write-timeout", "1"], &[]);
    wait_ready(&mut s);
    let a = s.addr;
    // 300 agents with 1,500 interface addresses each: an agent list of
    // about 10 MB, more than any socket buffer holds.
    let ips: Vec<String> = (0..1500).map(|i| format!("2001:2::{i:x}:1/128")).collect();
    for i in 0..300 {
        let name = format!("netchecker-agent-{i:05}");
        let mut r: serde_json::Value = serde_json::from_str(&fixture::go_report(&name)).unwrap();
        r["ips"] = serde_json::json!({ "eth0": ips });
        let (code, _, body) = request(
            a,
            "POST",
            &format!("/api/v1/agents/{name}"),
            None,
            &r.to_string(),
        );
        assert_eq!(code, 200, "{body}");
    }
    let rss_before = s.memory_kib().0;
    let stalled: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut c = tiny_reader(a);
            c.write_all(b"GET /api/v1/agents/ HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_secs(4));
    let rss_stalled = s.memory_kib().0;
    // Each was closed: reading what the server managed to send ends, well
    // short of the whole list.
    for mut c in stalled {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut sink = Vec::new();
        let read = c.read_to_end(&mut sink);
        assert!(
            read.is_ok()
                || read.as_ref().unwrap_err().kind() == std::io::ErrorKind::ConnectionReset,
            "still open after the write timeout: {read:?}"
        );
        assert!(
            sink.len() < 9_000_000,
            "the whole list went out: {}",
            sink.len()
        );
    }
    assert!(
        rss_stalled < rss_before + 16 * 1024,
        "four stalled readers held memory: {rss_before} -> {rss_stalled} KiB"
    );
    assert_eq!(request(a, "GET", "/api/v1/ping", None, "").0, 200);
}

#[test]
fn no_client_can_forge_a_log_line() {
    let mut s = spawn(&[], &[]);
    wait_ready(&mut s);
    let forged = "node-a%0a2026-01-01T00:00:00Z%20INFO%20node%20verdict%20changed%20node=node-a%20new=healthy";
    let (code, _, _) = request(
        s.addr,
        "POST",
        &format!("/api/v1/agents/{forged}"),
        None,
        "{}",
    );
    assert_eq!(code, 400);
    std::thread::sleep(Duration::from_millis(200));
    let logs = s.logs();
    assert!(logs.contains("report refused"), "{logs}");
    assert!(
        !logs.lines().any(|l| l.starts_with("2026-01-01")),
        "a forged line:\n{logs}"
    );
    assert!(logs.contains("\\n2026-01-01"), "escaped in place:\n{logs}");
}
