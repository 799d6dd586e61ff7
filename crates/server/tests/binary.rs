//! The real `netchecker-server` binary: the original command line, the
//! Kubernetes config from `KUBECONFIG`, and a graceful drain on SIGTERM.
//! Only the processes these tests start are signalled, by PID.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use netchecker_fake_apiserver::{FakeApiServer, agent_pod};

mod common;
mod fixture;
use common::Server;

const GO_REPORT: &str = include_str!("../../wire/tests/fixtures/go-agent-report.json");

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Server {
    Server::start(|cmd, addr, _| {
        cmd.args(args.iter().map(|a| a.replace("ADDR", &addr.to_string())))
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
    })
}

impl Server {
    /// One HTTP/1.1 request on a fresh connection; returns (status, body).
    fn request(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect(self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let body = fixture::dechunk(chunked, body);
        Ok((status, body))
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, _)) = self.request("GET", "/readyz", "") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited with {status}:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server not ready:\n{}", self.logs());
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit in {within:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn the_original_command_line_runs_and_etcd_flags_are_ignored_with_a_warning() {
    let mut s = spawn(
        &[
            "-v",
            "5",
            "-logtostderr",
            "-kubeproxyinit=false",
            "-endpoint",
            "ADDR",
            "-etcd-endpoints",
            "http://etcd:2379",
            "-report-ttl",
            "300",
            "-check-interval",
            "1",
        ],
        &[],
    );
    s.wait_ready();
    assert_eq!(
        s.request("POST", "/api/v1/agents/netchecker-agent-x7k2p", GO_REPORT)
            .unwrap()
            .0,
        200
    );
    let (code, body) = s.request("GET", "/api/v1/connectivity_check", "").unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        r#"{"Message":"All 1 pods successfully reported back to the server","Absent":[],"Outdated":[]}"#
    );
    let logs = s.logs();
    assert!(
        logs.contains("etcd-endpoints") && logs.contains("ignored"),
        "{logs}"
    );
    // -report-ttl is the original's etcd TTL, honoured here, not ignored.
    let warning = logs.lines().find(|l| l.contains("ignored")).unwrap();
    assert!(!warning.contains("report-ttl"), "{warning}");
    assert!(logs.contains("running without Kubernetes"), "{logs}");
}

#[test]
fn sigterm_stops_accepting_finishes_in_flight_requests_and_exits_zero() {
    let mut s = spawn(
        &[
            "--kube=false",
            "--endpoint",
            "ADDR",
            "--shutdown-timeout",
            "10",
        ],
        &[],
    );
    s.wait_ready();
    // A report whose body is only half sent when the signal arrives.
    let mut inflight = TcpStream::connect(s.addr).unwrap();
    inflight
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (head, tail) = GO_REPORT.split_at(GO_REPORT.len() / 2);
    write!(
        inflight,
        "POST /api/v1/agents/netchecker-agent-x7k2p HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{head}",
        GO_REPORT.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.signal("-TERM");

    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(s.addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    inflight.write_all(tail.as_bytes()).unwrap();
    let mut answer = String::new();
    inflight.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "in-flight report not completed: {answer:?}"
    );
    let status = s.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "exit status {status}:\n{}", s.logs());
    assert!(s.logs().contains("shutting down"), "{}", s.logs());
}

#[test]
fn a_stuck_client_does_not_hold_shutdown_past_the_drain_timeout() {
    let mut s = spawn(
        &[
            "--kube=false",
            "--endpoint",
            "ADDR",
            "--shutdown-timeout",
            "1",
            "--request-timeout",
            "30",
        ],
        &[],
    );
    s.wait_ready();
    let mut stuck = TcpStream::connect(s.addr).unwrap();
    write!(
        stuck,
        "POST /api/v1/agents/a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    s.signal("-TERM");
    assert!(s.wait_exit(Duration::from_secs(5)).success());
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "drain bounded by --shutdown-timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_kubernetes_config_from_kubeconfig() {
    let api = FakeApiServer::start().await;
    api.add_pod(agent_pod(
        "nc",
        "netchecker-agent-a1",
        "netchecker-agent",
        "node-1",
    ));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap().to_owned();
    let (code, body) = tokio::task::spawn_blocking(move || {
        let mut s = spawn(&["-endpoint", "ADDR"], &[("KUBECONFIG", &kubeconfig)]);
        s.wait_ready();
        s.request("GET", "/api/v1/connectivity_check", "").unwrap()
    })
    .await
    .unwrap();
    assert_eq!(code, 400);
    assert!(
        body.contains(r#""Absent":["netchecker-agent-a1"]"#),
        "{body}"
    );
    assert!(api.list_requests() >= 1);
}

#[test]
fn without_any_kubernetes_config_it_fails_with_a_hint() {
    let mut s = spawn(
        &["--endpoint", "ADDR"],
        &[
            ("KUBECONFIG", "/nonexistent/kubeconfig"),
            ("HOME", "/nonexistent"),
        ],
    );
    let status = s.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    assert!(s.logs().contains("--kube=false"), "{}", s.logs());
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut s = spawn(&["--kube=false", "--endpoint", &addr], &[]);
    assert!(!s.wait_exit(Duration::from_secs(10)).success());
    assert!(
        s.logs().contains(&format!("cannot listen on {addr}")),
        "{}",
        s.logs()
    );
}
