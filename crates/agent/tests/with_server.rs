//! The agent against the real netchecker server, both in this process on
//! loopback, the server without Kubernetes: reports are accepted, stored,
//! served back, counted in the connectivity check and turned into metrics.

mod common;

use std::time::Duration;

use common::config;
use netchecker_agent::transport::{RequestSpec, request};
use netchecker_agent::{Stats, Target};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// GET `path` from the server: status and body.
async fn get(server: &str, path: &str) -> (u16, String) {
    let target: Target = format!("http://{server}{path}").parse().unwrap();
    let mut spec = RequestSpec::get(Duration::from_secs(5), None);
    spec.keep_body = 1 << 20;
    let ex = request(&target, spec).await;
    ex.outcome.unwrap_or_else(|e| panic!("GET {path}: {e}"));
    (
        ex.status.unwrap().as_u16(),
        String::from_utf8(ex.body.to_vec()).unwrap(),
    )
}

/// Poll until `GET path` answers 200, or panic after `within`.
async fn wait_for_200(server: &str, path: &str, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (status, body) = get(server, path).await;
        if status == 200 {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "GET {path} still {status} after {within:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn reports_are_accepted_stored_and_checked_by_the_real_server() {
    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap().to_string();
    let server_config = netchecker_server::Config::try_parse_args([
        "netchecker-server",
        "--kube=false",
        "--endpoint",
        &server,
    ])
    .unwrap();
    let server_task = tokio::spawn(netchecker_server::run_on(
        server_config,
        listener,
        netchecker_server::PodView::fixed(Vec::<String>::new()),
        None,
        shutdown.clone(),
    ));

    let pod = "netchecker-agent-x7k2p";
    let hostnet = "netchecker-agent-hostnet-q8w3z";
    let probe = format!("-probeurls=http://{server}/healthz");
    let agents: Vec<tokio::task::JoinHandle<netchecker_agent::Result<Stats>>> = [pod, hostnet]
        .into_iter()
        .map(|name| {
            let cfg = config(
                &["-serverendpoint", &server, "-reportinterval=1", &probe],
                name,
                Some("node-1"),
            );
            tokio::spawn(netchecker_agent::run(cfg, shutdown.clone()))
        })
        .collect();

    // Both reports are stored and served back, without the padding.
    let stored: Value = serde_json::from_str(
        &wait_for_200(
            &server,
            &format!("/api/v1/agents/{pod}"),
            Duration::from_secs(10),
        )
        .await,
    )
    .unwrap();
    wait_for_200(
        &server,
        &format!("/api/v1/agents/{hostnet}"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(stored["podname"], pod);
    assert_eq!(stored["nodename"], "node-1");
    assert_eq!(stored["report_interval"], 1);
    assert!(stored.get("zero_extender").is_none());
    assert!(stored["last_updated"].is_string());
    assert!(
        stored["ips"]["lo"]
            .as_array()
            .unwrap()
            .contains(&Value::from("127.0.0.1/8"))
    );
    let probes = stored["network_probes"].as_array().unwrap();
    assert_eq!(probes[0]["URL"], format!("http://{server}/api/v1/ping"));
    assert_eq!(probes[0]["HTTPCode"], 200);
    assert_eq!(probes[1]["URL"], format!("http://{server}/healthz"));
    assert_eq!(probes[1]["HTTPCode"], 200);

    // Let a few more rounds go through: all accepted.
    tokio::time::sleep(Duration::from_millis(2200)).await;

    let (status, body) = get(&server, "/api/v1/connectivity_check").await;
    assert_eq!(status, 200, "{body}");
    let check: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        check["Message"],
        "All 2 pods successfully reported back to the server"
    );

    let (_, metrics) = get(&server, "/metrics").await;
    let ping_code = format!(
        "ncagent_http_probe_code{{agent=\"node-1-host_network\",url=\"http://{server}/api/v1/ping\"}} 200"
    );
    assert!(
        metrics.contains(&ping_code),
        "{ping_code} not in:\n{metrics}"
    );
    assert!(
        metrics.contains("ncagent_report_count_total{agent=\"node-1-private_network\"}"),
        "{metrics}"
    );

    shutdown.cancel();
    for agent in agents {
        let stats = agent.await.unwrap().unwrap();
        assert!(stats.sent >= 3, "{stats:?}");
        assert_eq!(stats.failed, 0, "{stats:?}");
    }
    server_task.await.unwrap().unwrap();
}
