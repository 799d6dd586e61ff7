//! kubespray's test playbook, as a test: the server started with kubespray's
//! exact flags watching the agent pods (here of the in-repo fake API), two
//! real agent binaries per node started with kubespray's exact agent flags;
//! then what the playbook asserted: `/api/v1/agents/` holds 2 x nodes
//! entries, the check answers 200, nothing is Absent, nothing is Outdated.
//! A DaemonSet rollout (one pod replaced) keeps it so without any DELETE.

use std::process::Stdio;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use netchecker_fake_apiserver::{FakeApiServer, agent_pod};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_netchecker-agent");
const NS: &str = "kube-system";
const NODES: [&str; 2] = ["node-1", "node-2"];

/// kubespray's agent command line, reporting to `server`.
fn agent(server: &str, pod: &str, node: &str) -> Child {
    Command::new(BIN)
        .args([
            "-v=5",
            "-alsologtostderr=true",
            &format!("-serverendpoint={server}"),
            "-reportinterval=10",
        ])
        .env_clear()
        .env("MY_POD_NAME", pod)
        .env("MY_NODE_NAME", node)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn get(http: &reqwest::Client, server: &str, path: &str) -> (u16, Value) {
    let r = http
        .get(format!("http://{server}{path}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap_or_default(),
    )
}

/// Poll `/api/v1/agents/` until it holds exactly `names`, as the playbook polled.
async fn wait_for_agents(http: &reqwest::Client, server: &str, names: &[String]) {
    let mut want = names.to_vec();
    want.sort();
    for _ in 0..400 {
        let (_, body) = get(http, server, "/api/v1/agents/").await;
        let have: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
        if have == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the agent list never held {want:?}");
}

async fn assert_playbook_passes(http: &reqwest::Client, server: &str) {
    let (code, check) = get(http, server, "/api/v1/connectivity_check").await;
    assert_eq!(code, 200, "{check}");
    assert_eq!(check["Absent"], Value::Array(vec![]), "not Absent");
    assert_eq!(check["Outdated"], Value::Array(vec![]), "not Outdated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubesprays_playbook_passes_against_kubesprays_flags() {
    let api = FakeApiServer::start().await;
    let mut names = Vec::new();
    let mut nodes = Vec::new();
    for node in NODES {
        for (app, pod) in [
            ("netchecker-agent", format!("netchecker-agent-{node}")),
            (
                "netchecker-agent-hostnet",
                format!("netchecker-agent-hostnet-{node}"),
            ),
        ] {
            api.add_pod(agent_pod(NS, &pod, app, node));
            names.push(pod);
            nodes.push(node);
        }
    }
    let kubeconfig = Kubeconfig::from_yaml(&api.kubeconfig_yaml()).unwrap();
    let kube = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(kube).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap().to_string();
    let config = netchecker_server::Config::try_parse_args([
        "netchecker-server",
        "-v=5",
        "-logtostderr",
        "-kubeproxyinit=false",
        &format!("-endpoint={server}"),
        "-etcd-endpoints=http://127.0.0.1:2379",
    ])
    .unwrap();
    assert!(config.kube, "kubespray's flags keep the pod watch");
    let (pods, watch) = netchecker_server::PodView::watch(client, None, &config.agent_selector);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(netchecker_server::run_on(
        config,
        listener,
        pods,
        Some(watch),
        shutdown.clone(),
    ));

    let mut agents: Vec<Child> = names
        .iter()
        .zip(&nodes)
        .map(|(pod, node)| agent(&server, pod, node))
        .collect();
    let http = reqwest::Client::new();
    wait_for_agents(&http, &server, &names).await;
    assert_eq!(names.len(), 2 * NODES.len());
    assert_playbook_passes(&http, &server).await;

    // A rollout replaces node-2's host-network agent.
    let old = names.pop().unwrap();
    let mut old_agent = agents.pop().unwrap();
    old_agent.kill().await.unwrap();
    api.delete_pod(NS, &old).unwrap();
    let new = "netchecker-agent-hostnet-node-2-zzzzz".to_owned();
    api.add_pod(agent_pod(NS, &new, "netchecker-agent-hostnet", "node-2"));
    agents.push(agent(&server, &new, "node-2"));
    names.push(new);
    wait_for_agents(&http, &server, &names).await;
    assert_playbook_passes(&http, &server).await;

    shutdown.cancel();
    task.await.unwrap().unwrap();
}
