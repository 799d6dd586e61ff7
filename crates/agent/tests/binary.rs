//! The `netchecker-agent` binary: environment, Go-style flags, logs, and
//! prompt exit on SIGTERM. Every child is killed on drop, also on failure.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Recorder, Silent};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

const BIN: &str = env!("CARGO_BIN_EXE_netchecker-agent");

/// The agent binary with a clean environment (no NETCHECKER_*, no RUST_LOG).
fn agent() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Send SIGTERM to `child` (by its PID) and wait at most `within` for it to exit.
async fn stop(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let pid = child.id().expect("child still running");
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM {pid}");
    tokio::time::timeout(within, child.wait())
        .await
        .unwrap_or_else(|_| panic!("no exit within {within:?} of SIGTERM"))
        .unwrap()
}

type LogLines = Lines<BufReader<ChildStderr>>;

fn log_lines(child: &mut Child) -> LogLines {
    BufReader::new(child.stderr.take().expect("stderr is piped")).lines()
}

/// Read stderr lines until one satisfies `pred`; returns all lines read.
async fn read_until(
    lines: &mut LogLines,
    within: Duration,
    pred: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(within, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let hit = pred(&line);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "no matching log line in: {seen:#?}"
    );
    seen
}

#[tokio::test]
async fn without_my_pod_name_it_exits_non_zero_naming_the_variable() {
    let out = agent()
        .env("MY_NODE_NAME", "node-1")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MY_POD_NAME"), "{stderr}");
}

#[tokio::test]
async fn bad_flags_exit_non_zero() {
    let out = agent()
        .env("MY_POD_NAME", "p")
        .arg("-reportinterval=soon")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("reportinterval"), "{stderr}");
}

#[tokio::test]
async fn go_flags_of_the_original_manifest_report_and_stop_on_sigterm() {
    let rec = Recorder::start().await;
    let mut child = agent()
        .env("MY_POD_NAME", "netchecker-agent-hostnet-q8w3z")
        .env("MY_NODE_NAME", "node-7")
        .args([
            "-v=5",
            "-alsologtostderr=true",
            &format!("-serverendpoint={}", rec.addr()),
            "-reportinterval=1",
            "-zeroextenderlength",
            "12",
            &format!("-probeurls=http://{0}/a;http://{0}/b", rec.addr()),
        ])
        .spawn()
        .unwrap();
    let reports = rec
        .wait_for("/api/v1/agents/", 2, Duration::from_secs(10))
        .await;
    let r = reports[0].json();
    assert_eq!(
        reports[0].path,
        "/api/v1/agents/netchecker-agent-hostnet-q8w3z"
    );
    assert_eq!(r["nodename"], "node-7");
    assert_eq!(r["report_interval"], 1);
    assert_eq!(r["zero_extender"].as_array().unwrap().len(), 12);
    assert_eq!(r["network_probes"].as_array().unwrap().len(), 3);

    let status = stop(&mut child, Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn environment_fallbacks() {
    let rec = Recorder::start().await;
    let mut child = agent()
        .env("MY_POD_NAME", "agent-env")
        .env("NETCHECKER_SERVER_ENDPOINT", rec.addr().to_string())
        .env("NETCHECKER_REPORT_INTERVAL", "1")
        .env("NETCHECKER_ZERO_EXTENDER_LENGTH", "3")
        .env("NETCHECKER_PROBE_URLS", format!("http://{}/x", rec.addr()))
        .spawn()
        .unwrap();
    let reports = rec
        .wait_for("/api/v1/agents/agent-env", 1, Duration::from_secs(10))
        .await;
    let r = reports[0].json();
    assert_eq!(r["report_interval"], 1);
    assert_eq!(r["zero_extender"], serde_json::json!([0, 0, 0]));
    assert_eq!(
        r["network_probes"][1]["URL"],
        format!("http://{}/x", rec.addr())
    );
    stop(&mut child, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn report_to_all_addresses_from_the_environment_reports_to_each_address() {
    // `localhost` resolves through /etc/hosts: no query leaves the machine.
    let rec = Recorder::start().await;
    let port = rec.addr().port();
    let endpoint = format!("localhost:{port}");
    let mut child = agent()
        .env("MY_POD_NAME", "agent-all")
        .env("NETCHECKER_SERVER_ENDPOINT", &endpoint)
        .env("NETCHECKER_REPORT_TO_ALL_ADDRESSES", "true")
        .arg("-reportinterval=1")
        .spawn()
        .unwrap();
    let reports = rec
        .wait_for("/api/v1/agents/agent-all", 2, Duration::from_secs(10))
        .await;
    assert_eq!(reports[0].header("host"), Some(endpoint.as_str()));
    let mut lines = log_lines(&mut child);
    stop(&mut child, Duration::from_secs(5)).await;
    let mut all = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        all.push(line);
    }
    let started = all.iter().find(|l| l.contains("agent started")).unwrap();
    assert!(started.contains("all_addresses=true"), "{started}");
    // Counted by the address reported to, not by the name.
    let stopped = all.iter().find(|l| l.contains("agent stopped")).unwrap();
    assert!(
        stopped.contains(&format!("targets=127.0.0.1:{port} sent ")),
        "{stopped}"
    );
    assert!(!stopped.contains("localhost"), "{stopped}");
}

#[tokio::test]
async fn an_unresolvable_server_is_logged_as_dns_and_the_agent_keeps_going() {
    // An empty label: glibc refuses it before sending any query.
    let mut child = agent()
        .env("MY_POD_NAME", "agent-dns")
        .args([
            "-serverendpoint=no-such-host..invalid:8081",
            "-reportinterval=1",
            "--log-format=json",
        ])
        .spawn()
        .unwrap();
    let is_dns_error = |line: &str| {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        v["level"] == "ERROR" && v["message"].as_str().unwrap_or_default().contains("DNS")
    };
    let mut lines = log_lines(&mut child);
    read_until(&mut lines, Duration::from_secs(5), is_dns_error).await;
    // Still failing, still running: the second round fails the same way.
    read_until(&mut lines, Duration::from_secs(5), is_dns_error).await;
    assert!(child.try_wait().unwrap().is_none(), "the agent exited");
    let status = stop(&mut child, Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn sigterm_in_the_middle_of_a_round_exits_at_once() {
    // The server accepts and never answers: with a 20 s interval the round
    // would wait 8 s for the probes and then 10 s for the report.
    let silent = Silent::start().await;
    let mut child = agent()
        .env("MY_POD_NAME", "agent-term")
        .args([
            "-serverendpoint",
            &silent.addr.to_string(),
            "-reportinterval=20",
        ])
        .spawn()
        .unwrap();
    let mut lines = log_lines(&mut child);
    read_until(&mut lines, Duration::from_secs(5), |l| {
        l.contains("agent started")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    // Long before the round's own timeouts would end it.
    let status = stop(&mut child, Duration::from_secs(4)).await;
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// Wait until the last report satisfies `pred`; panic after `within`.
async fn wait_for_report(
    rec: &Recorder,
    within: Duration,
    pred: impl Fn(&common::Recorded) -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if rec.requests_to("/api/v1/agents/").last().is_some_and(&pred) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:#?}",
            rec.requests()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_token_file_is_sent_followed_and_never_logged_even_at_trace_level() {
    const FIRST: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmaXJzdCJ9.Zmlyc3Qtc2lnbmF0dXJl";
    const SECOND: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWNvbmQifQ.c2Vjb25kLXNpZ25hdHVyZQ";
    let rec = Recorder::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{FIRST}\n")).unwrap();
    let mut child = agent()
        .env("MY_POD_NAME", "agent-token")
        .env("NETCHECKER_TOKEN_FILE", &path)
        .env("RUST_LOG", "trace")
        .args([
            "-serverendpoint",
            &rec.addr().to_string(),
            "-reportinterval=1",
        ])
        .spawn()
        .unwrap();
    let mut lines = log_lines(&mut child);
    let log = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push(line);
        }
        all
    });
    let bearer = |token: &'static str| {
        move |r: &common::Recorded| r.header("authorization") == Some(&format!("Bearer {token}"))
    };
    wait_for_report(&rec, Duration::from_secs(5), bearer(FIRST)).await;
    // Rotated the way the kubelet does it: a new file renamed over the path.
    std::fs::write(dir.path().join("token.new"), SECOND).unwrap();
    std::fs::rename(dir.path().join("token.new"), &path).unwrap();
    wait_for_report(&rec, Duration::from_secs(5), bearer(SECOND)).await;
    std::fs::remove_file(&path).unwrap();
    wait_for_report(&rec, Duration::from_secs(5), |r| {
        r.header("authorization").is_none()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = stop(&mut child, Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");

    let log = log.await.unwrap().join("\n");
    // RUST_LOG=trace enables every event of every crate.
    assert!(
        log.contains("DEBUG") && log.contains("agent stopped"),
        "{log}"
    );
    for secret in [
        FIRST,
        SECOND,
        "Zmlyc3Qtc2lnbmF0dXJl",
        "c2Vjb25kLXNpZ25hdHVyZQ",
    ] {
        assert!(!log.contains(secret), "{secret} logged:\n{log}");
    }
    // The missing file was warned about once, though several reports went without.
    let warnings = log.matches("cannot use the token file").count();
    assert_eq!(warnings, 1, "{log}");
    assert!(rec.requests_to("/api/v1/agents/").len() >= 4);
    assert!(
        rec.requests_to("/api/v1/ping")
            .iter()
            .all(|p| p.header("authorization").is_none())
    );
}

#[tokio::test]
async fn a_mesh_port_that_cannot_be_bound_stops_it_before_any_report() {
    let rec = Recorder::start().await;
    let taken = tokio::net::TcpListener::bind("[::]:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        agent()
            .env("MY_POD_NAME", "netchecker-agent-mesh")
            .env("NETCHECKER_MESH_PORT", port.to_string())
            .args([
                &format!("-serverendpoint={}", rec.addr()),
                "-reportinterval=1",
            ])
            .output(),
    )
    .await
    .expect("exits at once")
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot listen for mesh probes on port {port} (--mesh-port)"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("Address already in use"), "{stderr}");
    assert!(rec.requests().is_empty(), "{:?}", rec.requests());
}
