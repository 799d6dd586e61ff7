//! The `netchecker-fake-apiserver` binary as an end-to-end harness uses it:
//! preloaded pods, a written kubeconfig, the `/fake/` control routes, and a
//! clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use netchecker_fake_apiserver::agent_pod;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_netchecker-fake-apiserver");
const PATIENCE: Duration = Duration::from_secs(20);

/// The child process, killed (by its PID) if a test fails before it exits.
struct Running {
    child: Child,
    addr: String,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the fake API server binary");
        let stdout = child.stdout.take().unwrap();
        let mut running = Self {
            child,
            addr: String::new(),
        };
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        running.addr = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        running
    }

    fn wait_timeout(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the process did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn client_from_file(path: &std::path::Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("kubeconfig file parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

async fn send(
    client: &Client,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, u16> {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
        .unwrap();
    match client.request_text(request).await {
        Ok(text) if text.is_empty() => Ok(Value::Null),
        Ok(text) => Ok(serde_json::from_str(&text).unwrap()),
        Err(kube::Error::Api(status)) => Err(status.code),
        Err(other) => panic!("{method} {path}: {other:?}"),
    }
}

async fn pod_names(pods: &Api<Pod>) -> Vec<String> {
    let list = pods.list(&ListParams::default()).await.unwrap();
    list.items
        .into_iter()
        .map(|p| p.metadata.name.unwrap())
        .collect()
}

#[tokio::test]
async fn binary_serves_preloaded_pods_and_control_routes() {
    let dir = tempfile::tempdir().unwrap();
    let pods_file = dir.path().join("pods.json");
    let kubeconfig = dir.path().join("kubeconfig");
    let preload = vec![
        agent_pod("netchecker", "agent-a", "netchecker-agent", "node-a"),
        agent_pod("netchecker", "agent-b", "netchecker-agent", "node-b"),
    ];
    std::fs::write(&pods_file, serde_json::to_vec(&preload).unwrap()).unwrap();

    let mut server = Running::start(&[
        "--listen",
        "127.0.0.1:0",
        "--kubeconfig-out",
        kubeconfig.to_str().unwrap(),
        "--pods",
        pods_file.to_str().unwrap(),
    ]);
    assert!(server.addr.starts_with("127.0.0.1:"), "{}", server.addr);
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        text.contains(&format!("server: http://{}", server.addr)),
        "{text}"
    );

    let client = client_from_file(&kubeconfig).await;
    let pods = Api::<Pod>::all(client.clone());
    assert_eq!(pod_names(&pods).await, ["agent-a", "agent-b"]);

    // Add, then delete, through the control routes.
    let new_pod =
        serde_json::to_value(agent_pod("other", "agent-c", "netchecker-agent", "node-c")).unwrap();
    let stored = send(&client, "POST", "/fake/pods", Some(new_pod))
        .await
        .unwrap();
    assert!(stored["metadata"]["resourceVersion"].is_string());
    assert_eq!(pod_names(&pods).await, ["agent-a", "agent-b", "agent-c"]);
    send(&client, "DELETE", "/fake/pods/netchecker/agent-a", None)
        .await
        .unwrap();
    assert_eq!(pod_names(&pods).await, ["agent-b", "agent-c"]);
    assert_eq!(
        send(&client, "DELETE", "/fake/pods/netchecker/agent-a", None).await,
        Err(404)
    );
    assert_eq!(
        send(&client, "POST", "/fake/pods", Some(json!({"metadata": {}}))).await,
        Err(422),
        "a pod without a name is refused"
    );

    // Failure injection.
    let set = send(
        &client,
        "PUT",
        "/fake/failure",
        Some(json!({"mode": "error", "status": 500})),
    )
    .await
    .unwrap();
    assert_eq!(set, json!({"mode": "error", "status": 500}));
    match pods.list(&ListParams::default()).await.unwrap_err() {
        kube::Error::Api(status) => assert_eq!(status.code, 500),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        send(
            &client,
            "PUT",
            "/fake/failure",
            Some(json!({"mode": "sometimes"}))
        )
        .await,
        Err(400)
    );
    for mode in ["hang-list", "gone"] {
        assert_eq!(
            send(&client, "PUT", "/fake/failure", Some(json!({"mode": mode}))).await,
            Ok(json!({"mode": mode}))
        );
    }
    // `gone` leaves LIST alone.
    assert_eq!(pod_names(&pods).await, ["agent-b", "agent-c"]);
    assert_eq!(
        send(&client, "POST", "/fake/close-watches", None).await,
        Ok(Value::Null)
    );
    assert_eq!(
        send(&client, "GET", "/fake/failure", None).await,
        Ok(json!({"mode": "gone"})),
        "closing watches keeps the mode"
    );
    send(
        &client,
        "PUT",
        "/fake/failure",
        Some(json!({"mode": "none"})),
    )
    .await
    .unwrap();
    assert_eq!(pod_names(&pods).await, ["agent-b", "agent-c"]);

    // Counters: six pod LISTs so far, no watches; control calls not counted.
    let counts = send(&client, "GET", "/fake/requests", None).await.unwrap();
    assert_eq!(counts, json!({"list": 6, "watch": 0, "total": 6}));

    // SIGTERM (to this PID only) stops it cleanly.
    let pid = server.child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let status = server.wait_timeout();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn binary_rejects_a_bad_pods_file() {
    let dir = tempfile::tempdir().unwrap();
    let pods_file = dir.path().join("pods.json");
    std::fs::write(&pods_file, br#"{"not": "an array"}"#).unwrap();
    let output = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--pods",
            pods_file.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "it never started listening");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a JSON array of Pods"), "{stderr}");
}

#[tokio::test]
async fn binary_serves_nodes_tokens_and_token_reviews() {
    use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
    use k8s_openapi::api::core::v1::Node;
    use kube::api::PostParams;
    use netchecker_fake_apiserver::node;

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let pods_file = dir.path().join("pods.json");
    let nodes_file = dir.path().join("nodes.json");
    let pods = vec![agent_pod(
        "netchecker",
        "agent-a",
        "netchecker-agent",
        "node-a",
    )];
    std::fs::write(&pods_file, serde_json::to_vec(&pods).unwrap()).unwrap();
    let nodes = vec![node("node-a").build(), node("node-b").not_ready().build()];
    std::fs::write(&nodes_file, serde_json::to_vec(&nodes).unwrap()).unwrap();
    let _server = Running::start(&[
        "--listen",
        "127.0.0.1:0",
        "--kubeconfig-out",
        kubeconfig.to_str().unwrap(),
        "--pods",
        pods_file.to_str().unwrap(),
        "--nodes",
        nodes_file.to_str().unwrap(),
        "--issuer",
        "https://issuer.e2e.test",
    ]);
    let client = client_from_file(&kubeconfig).await;

    let listed = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let names: Vec<_> = listed
        .items
        .iter()
        .map(|n| n.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["node-a", "node-b"]);
    send(
        &client,
        "POST",
        "/fake/pods/netchecker/agent-a/terminate",
        None,
    )
    .await
    .unwrap();

    let discovery = send(&client, "GET", "/.well-known/openid-configuration", None)
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], "https://issuer.e2e.test");
    let minted = send(
        &client,
        "POST",
        "/fake/tokens",
        Some(json!({"namespace": "netchecker", "pod": "agent-a"})),
    )
    .await
    .unwrap();
    assert_eq!(minted["claims"]["iss"], "https://issuer.e2e.test");
    assert_eq!(minted["claims"]["kubernetes.io"]["node"]["name"], "node-a");
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: minted["token"].as_str().unwrap().to_owned(),
            audiences: Some(vec!["netchecker".to_owned()]),
        },
        ..TokenReview::default()
    };
    let reviewed = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    assert_eq!(reviewed.status.unwrap().authenticated, Some(true));

    let counts = send(&client, "GET", "/fake/requests", None).await.unwrap();
    assert_eq!(
        counts,
        json!({"list": 0, "watch": 0, "nodeList": 1, "tokenReviews": 1, "discovery": 1, "total": 3})
    );
}

#[test]
fn binary_rejects_a_bad_nodes_file() {
    let dir = tempfile::tempdir().unwrap();
    let nodes_file = dir.path().join("nodes.json");
    std::fs::write(&nodes_file, br#"[{"metadata": {}}]"#).unwrap();
    let output = Command::new(BIN)
        .args(["--nodes", nodes_file.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs metadata.name"), "{stderr}");
}
