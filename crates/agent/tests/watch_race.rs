//! A new pod's first report racing the server's watch, with the real
//! server watching the in-repo fake Kubernetes API: the server refuses the
//! report of a pod it has not seen (404, "no watched agent pod is named …"),
//! and the agent sends it again a second or two later instead of a whole
//! interval later, so the node is not shown absent meanwhile.

use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use netchecker_fake_apiserver::{FakeApiServer, agent_pod};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const NS: &str = "netchecker";
const POD: &str = "netchecker-agent-new42";

async fn status(http: &reqwest::Client, url: &str) -> u16 {
    http.get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_refused_before_the_watch_saw_the_pod_is_accepted_seconds_later() {
    let api = FakeApiServer::start().await;
    let kubeconfig = Kubeconfig::from_yaml(&api.kubeconfig_yaml()).unwrap();
    let kube = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(kube).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap().to_string();
    let config =
        netchecker_server::Config::try_parse_args(["netchecker-server", "--endpoint", &server])
            .unwrap();
    let (pods, watch) = netchecker_server::PodView::watch(client, None, &config.agent_selector);
    let shutdown = CancellationToken::new();
    let server_task = tokio::spawn(netchecker_server::run_on(
        config,
        listener,
        pods,
        Some(watch),
        shutdown.clone(),
    ));
    let http = reqwest::Client::new();
    let base = format!("http://{server}");
    for _ in 0..200 {
        if status(&http, &format!("{base}/readyz")).await == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The agent starts before the watch has its pod: a 60 s interval.
    let started = Instant::now();
    let agent_config = {
        let args = netchecker_agent::Args::try_parse_go([
            "netchecker-agent",
            "-serverendpoint",
            &server,
            "-reportinterval=60",
        ])
        .unwrap();
        netchecker_agent::Config::from_args(args, |k| match k {
            "MY_POD_NAME" => Some(POD.to_owned()),
            "MY_NODE_NAME" => Some("node-1".to_owned()),
            _ => None,
        })
        .unwrap()
    };
    let agent = tokio::spawn(netchecker_agent::run(agent_config, shutdown.clone()));
    // Refused at 0 s and at the retry after 1 s; then the pod shows up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stored = format!("{base}/api/v1/agents/{POD}");
    assert_eq!(status(&http, &stored).await, 404, "no report stored yet");
    api.add_pod(agent_pod(NS, POD, "netchecker-agent", "node-1"));

    // The retry after 2 more seconds gets through, long before 60 s.
    let deadline = started + Duration::from_secs(20);
    while status(&http, &stored).await != 200 {
        assert!(Instant::now() < deadline, "the report never got through");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "accepted after {took:?}");

    shutdown.cancel();
    let stats = agent.await.unwrap().unwrap();
    assert_eq!(
        (stats.rounds, stats.sent, stats.failed),
        (1, 1, 0),
        "{stats:?}"
    );
    assert!(stats.retries >= 2, "{stats:?}");
    server_task.await.unwrap().unwrap();
}
