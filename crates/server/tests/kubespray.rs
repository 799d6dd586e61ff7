//! The server binary under kubespray's exact command line
//! (`-v=5 -logtostderr -kubeproxyinit=false -endpoint=... -etcd-endpoints=...`):
//! with a Kubernetes configuration it watches the agent pods as the original
//! did, so a pod that never reports is Absent and a replaced pod clears
//! without any DELETE; without one it runs on its own and honours the
//! original's `-report-ttl`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use netchecker_fake_apiserver::{FakeApiServer, agent_pod};

mod common;
mod fixture;
use common::Server;

const GO_REPORT: &str = include_str!("../../wire/tests/fixtures/go-agent-report.json");
const NS: &str = "kube-system";

/// kubespray's server arguments, listening on `ADDR`.
const KUBESPRAY: [&str; 5] = [
    "-v=5",
    "-logtostderr",
    "-kubeproxyinit=false",
    "-endpoint=ADDR",
    "-etcd-endpoints=http://127.0.0.1:2379",
];

fn spawn(extra: &[&str], env: &[(&str, &str)]) -> Server {
    Server::start(|cmd, addr, _| {
        let args = KUBESPRAY.iter().chain(extra);
        cmd.args(args.map(|a| a.replace("ADDR", &addr.to_string())))
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
    })
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn request(s: &Server, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (status, fixture::dechunk(chunked, body))
}

/// Poll `cond` every 50 ms until it holds, or panic with the log after `within`.
fn eventually(s: &mut Server, what: &str, within: Duration, mut cond: impl FnMut(&Server) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = s.child.try_wait() {
            panic!("server exited with {status}:\n{}", s.logs());
        }
        if TcpStream::connect(s.addr).is_ok() && cond(s) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}\n{}",
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn report_of(pod: &str, node: &str, interval: u64) -> String {
    let mut r: serde_json::Value = serde_json::from_str(GO_REPORT).unwrap();
    r["podname"] = pod.into();
    r["nodename"] = node.into();
    r["report_interval"] = interval.into();
    r.to_string()
}

fn post(s: &Server, pod: &str, node: &str, interval: u64) {
    let path = format!("/api/v1/agents/{pod}");
    let (code, body) = request(s, "POST", &path, &report_of(pod, node, interval));
    assert_eq!(code, 200, "{body}");
}

fn check(s: &Server) -> (u16, serde_json::Value) {
    let (code, body) = request(s, "GET", "/api/v1/connectivity_check", "");
    (code, serde_json::from_str(&body).unwrap_or_default())
}

fn agents(s: &Server) -> Vec<String> {
    let (_, body) = request(s, "GET", "/api/v1/agents/", "");
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&body).unwrap();
    map.keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_kubeconfig_kubesprays_flags_watch_the_agent_pods() {
    let api = FakeApiServer::start().await;
    let pod = "netchecker-agent-abcde";
    let old = "netchecker-agent-hostnet-pqrst";
    let never = "netchecker-agent-hostnet-never";
    api.add_pod(agent_pod(NS, pod, "netchecker-agent", "node-1"));
    api.add_pod(agent_pod(NS, old, "netchecker-agent-hostnet", "node-1"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap().to_owned();

    let api = std::sync::Arc::new(api);
    let fake = api.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = spawn(&["-check-interval=1"], &[("KUBECONFIG", &kubeconfig)]);
        eventually(&mut s, "ready", Duration::from_secs(20), |s| {
            request(s, "GET", "/readyz", "").0 == 200
        });
        assert!(fake.list_requests() >= 1, "the pods were listed");
        assert!(
            !s.logs().contains("running without Kubernetes"),
            "{}",
            s.logs()
        );

        post(&s, pod, "node-1", 10);
        post(&s, old, "node-1", 10);
        let (code, body) = check(&s);
        assert_eq!(code, 200, "{body}");
        assert_eq!(
            body["Message"],
            "All 2 pods successfully reported back to the server"
        );

        // A pod that never reports is Absent, as the original answered.
        fake.add_pod(agent_pod(NS, never, "netchecker-agent-hostnet", "node-2"));
        eventually(
            &mut s,
            "the new pod is Absent",
            Duration::from_secs(20),
            |s| check(s).1["Absent"] == serde_json::json!([never]),
        );
        fake.delete_pod(NS, never).unwrap();

        // A DaemonSet rollout replaces pqrst with zzzzz: the old report
        // leaves with its pod and the check returns to 200, no DELETE.
        fake.delete_pod(NS, old).unwrap();
        let new = "netchecker-agent-hostnet-zzzzz";
        fake.add_pod(agent_pod(NS, new, "netchecker-agent-hostnet", "node-1"));
        eventually(&mut s, "the old pod left", Duration::from_secs(20), |s| {
            !agents(s).contains(&old.to_owned())
        });
        post(&s, new, "node-1", 10);
        let (code, body) = check(&s);
        assert_eq!(code, 200, "{body}");
        assert_eq!(agents(&s), [pod, new]);
        let logs = s.logs();
        assert_eq!(
            logs.matches("accepted but ignored").count(),
            1,
            "one warning for the etcd flags: {logs}"
        );
        assert!(logs.contains("etcd-endpoints"), "{logs}");
    })
    .await
    .unwrap();
}

#[test]
fn without_any_kubernetes_config_kubesprays_flags_run_alone_and_honour_report_ttl() {
    // A 1 s report interval is outdated after 2 s; -report-ttl=3 then drops
    // it, so an agent that went away leaves the check. A name from
    // --expected-agents stays expected and turns Absent instead.
    let mut s = spawn(
        &[
            "-check-interval=1",
            "-report-ttl=3",
            "--expected-agents=netchecker-agent-named",
        ],
        &[],
    );
    eventually(&mut s, "ready", Duration::from_secs(20), |s| {
        request(s, "GET", "/readyz", "").0 == 200
    });
    post(&s, "netchecker-agent-gone", "node-1", 1);
    post(&s, "netchecker-agent-named", "node-2", 1);
    assert_eq!(check(&s).0, 200);
    eventually(&mut s, "both outdated", Duration::from_secs(10), |s| {
        check(s).1["Outdated"]
            == serde_json::json!(["netchecker-agent-gone", "netchecker-agent-named"])
    });
    eventually(
        &mut s,
        "both reports dropped",
        Duration::from_secs(10),
        |s| agents(s).is_empty(),
    );
    let (code, body) = check(&s);
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["Absent"],
        serde_json::json!(["netchecker-agent-named"])
    );
    assert_eq!(body["Outdated"], serde_json::json!([]));
    let logs = s.logs();
    assert_eq!(
        logs.matches("running without Kubernetes").count(),
        1,
        "said once: {logs}"
    );
    assert!(
        logs.contains("report older than the report TTL dropped"),
        "{logs}"
    );
}
