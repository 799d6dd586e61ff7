//! The node-to-node mesh through the server's HTTP API, with pods and
//! nodes from the fake Kubernetes API: agents that ask get their peers at
//! the watched pods' addresses in the answer to their report, their probe
//! results become failing pairs and node verdicts in `/api/v2/status`, and
//! what the original agent sends is answered as before.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use netchecker_fake_apiserver::{FakeApiServer, PodBuilder, node};
use netchecker_wire::mesh::{MESH_HEADER, MeshAnswer, MeshRound};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod fixture;
mod in_process;
use in_process::InProcess;

const NS: &str = "netchecker";

struct Harness {
    api: FakeApiServer,
    addr: SocketAddr,
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn agent(node: &str) -> String {
    format!("netchecker-agent-{node}")
}

/// Nodes n1..n5 (n4 cordoned), a pod-network agent on each, and a server
/// with `extra` flags.
async fn start(extra: &[&str]) -> Harness {
    let api = FakeApiServer::start().await;
    for n in ["n1", "n2", "n3", "n4", "n5"] {
        api.add_node(node(n).unschedulable(n == "n4"));
        api.add_pod(PodBuilder::new(NS, &agent(n), "netchecker-agent", n).build());
    }
    let argv = [
        "netchecker-server",
        "--check-interval",
        "1",
        "--mesh-round",
        "1",
    ]
    .iter()
    .chain(extra);
    let InProcess {
        addr,
        shutdown,
        task,
    } = in_process::serve(&api, argv).await;
    let h = Harness {
        api,
        addr,
        http: reqwest::Client::new(),
        shutdown,
        task,
    };
    for _ in 0..400 {
        if h.get("/readyz").await.0 == 200 {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server never ready");
}

/// A mesh result: `outcome` for `peer`.
fn result(peer: &str, outcome: &str) -> Value {
    json!({"node": peer, "address": "198.18.0.1", "outcome": outcome, "connect_us": 80,
           "transfer_us": 120, "total_us": 200, "padding": 1500,
           "error": if outcome == "ok" { "" } else { "connection refused" }})
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn status(&self) -> Value {
        serde_json::from_str(&self.get("/api/v2/status").await.1).unwrap()
    }

    /// Agent of `node` reports (with the mesh header, announcing a made-up
    /// address the server must not use) the `results` of `round`; returns
    /// the answer's peers.
    async fn exchange(&self, node: &str, round: u64, results: Vec<Value>) -> MeshRound {
        let name = agent(node);
        let mut report: Value = serde_json::from_str(&fixture::go_report(&name)).unwrap();
        report["nodename"] = json!(node);
        report["report_interval"] = json!(1);
        report["mesh"] = json!({"port": 8083, "addresses": ["198.18.99.99"], "round": round,
                                "results": results});
        let r = self
            .http
            .post(self.url(&format!("/api/v1/agents/{name}")))
            .header(MESH_HEADER, "1")
            .body(report.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
        serde_json::from_str::<MeshAnswer>(&r.text().await.unwrap())
            .unwrap()
            .mesh
    }

    /// Every node's agent reports once with `results(from, peer)` for the
    /// peers it was handed last; returns the new hand-outs by node.
    async fn round(
        &self,
        nodes: &[&str],
        last: &[MeshRound],
        outcome: impl Fn(&str, &str) -> &'static str,
    ) -> Vec<MeshRound> {
        let mut next = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let (round, results) = match last.get(i) {
                Some(r) => (
                    r.round,
                    r.peers
                        .iter()
                        .map(|p| result(&p.node, outcome(n, &p.node)))
                        .collect(),
                ),
                None => (0, Vec::new()),
            };
            next.push(self.exchange(n, round, results).await);
        }
        next
    }

    /// Every node's agent reports until the round has built the roster
    /// (every second; until then, no peers) and n1..n3 each got their two
    /// peers; returns the hand-outs by node.
    async fn bootstrap(&self) -> Vec<MeshRound> {
        let mut last = self.round(&MESH, &[], |_, _| "ok").await;
        for _ in 0..100 {
            if last.iter().take(3).all(|r| r.peers.len() == 2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            last = self.round(&MESH, &last, |_, _| "ok").await;
        }
        last
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

/// n1 and n2 cannot reach each other; every other probe succeeds.
fn cut_n1_n2(a: &str, b: &str) -> &'static str {
    if (a, b) == ("n1", "n2") || (a, b) == ("n2", "n1") {
        "connect_failed"
    } else {
        "ok"
    }
}

fn peers(r: &MeshRound) -> BTreeSet<&str> {
    r.peers.iter().map(|p| p.node.as_str()).collect()
}

fn pairs(status: &Value) -> Vec<(String, String, String, String)> {
    status["mesh"]["failing_pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_owned();
            (s("from"), s("to"), s("network"), s("kind"))
        })
        .collect()
}

fn verdict(status: &Value, node: &str) -> String {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == node)
        .map(|n| n["verdict"].as_str().unwrap().to_owned())
        .unwrap()
}

const MESH: [&str; 4] = ["n1", "n2", "n3", "n4"];

#[tokio::test]
async fn peers_come_from_the_pods_and_a_partition_is_named_then_clears() {
    let h = start(&[]).await;
    // n5's agent is the original's: no header, no mesh field, the original
    // answer (200, empty body).
    let name = agent("n5");
    let r = h
        .http
        .post(h.url(&format!("/api/v1/agents/{name}")))
        .body(fixture::go_report(&name))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "");

    let mut last = h.bootstrap().await;
    assert_eq!(
        peers(&last[0]),
        BTreeSet::from(["n2", "n3"]),
        "the cordoned n4 and the original's n5 are left out"
    );
    assert!(last[3].peers.is_empty(), "a cordoned node probes nobody");
    let n2 = h.api.pod(NS, &agent("n2")).unwrap();
    let n2_ip = n2.status.unwrap().pod_ip.unwrap();
    let handed = last[0].peers.iter().find(|p| p.node == "n2").unwrap();
    assert_eq!(
        (handed.address.as_str(), handed.port),
        (n2_ip.as_str(), 8083),
        "the pod's IP, not what the agent announced"
    );
    assert_eq!(last[0].timeout_ms, 2000);

    // n1 and n2 cannot reach each other; twice in a row confirms it.
    last = h.round(&MESH, &last, cut_n1_n2).await;
    let s = h.status().await;
    assert!(
        pairs(&s).is_empty(),
        "one failure is not confirmed: {:?}",
        pairs(&s)
    );
    last = h.round(&MESH, &last, cut_n1_n2).await;
    let s = h.status().await;
    assert_eq!(
        pairs(&s),
        [
            ("n1".into(), "n2".into(), "pod".into(), "unreachable".into()),
            ("n2".into(), "n1".into(), "pod".into(), "unreachable".into())
        ]
    );
    let first = &s["mesh"]["failing_pairs"][0];
    assert!(first["since"].as_str().unwrap().ends_with('Z'));
    assert_eq!(first["failures"], 2);
    assert_eq!(first["error"], "connection refused");
    assert!(
        first["reason"]
            .as_str()
            .unwrap()
            .contains("n1 cannot reach n2 on the pod network"),
        "{first}"
    );
    assert_eq!(verdict(&s, "n1"), "mesh_partition");
    assert_eq!(verdict(&s, "n2"), "mesh_partition");
    assert_eq!(verdict(&s, "n3"), "healthy");
    let reason = s["nodes"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("partitioned from n2"), "{reason}");
    // The v1 check judges agent-to-server reports, and they are fine.
    assert_eq!(h.get("/api/v1/connectivity_check").await.0, 200);

    let mesh = &s["mesh"];
    assert_eq!(
        (mesh["enabled"].as_bool(), mesh["peers"].as_u64()),
        (Some(true), Some(8))
    );
    assert_eq!(mesh["round_seconds"], 1);
    assert_eq!(
        mesh["networks"][0],
        json!({"network": "pod", "members": 3, "cover_rounds": 1, "cover_seconds": 1})
    );
    let node = |n: &str| {
        mesh["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["node"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(node("n4")["networks"][0]["membership"], "left_out");
    assert_eq!(node("n4")["networks"][0]["left_out"], "node_cordoned");
    assert_eq!(node("n5")["verdict"], "no_mesh");
    assert_eq!(node("n1")["verdict"], "partition");
    assert_eq!(node("n1")["networks"][0]["probed"], 2);
    assert_eq!(node("n1")["networks"][0]["failed"], 1);
    let matrix = &mesh["matrix"];
    assert_eq!(matrix["nodes"], json!(["n1", "n2", "n3"]));
    assert_eq!(matrix["pod"], json!(["-uo", "u-o", "oo-"]));

    // The gauges are set by the round, every second.
    let mut metrics = String::new();
    for _ in 0..60 {
        metrics = h.get("/metrics").await.1;
        if metrics.contains(r#"netchecker_mesh_failing_pairs{kind="unreachable",network="pod"} 2"#)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for needle in [
        r#"netchecker_mesh_failing_pairs{kind="unreachable",network="pod"} 2"#,
        r#"netchecker_mesh_members{network="pod"} 3"#,
        r#"netchecker_node_verdict"#,
    ] {
        assert!(metrics.contains(needle), "missing {needle}");
    }
    assert!(metrics.contains(
        r#"netchecker_mesh_probes_total{direction="out",network="pod",node="n1",result="failed"}"#
    ));

    // Healed: one success clears the pair.
    last = h.round(&MESH, &last, |_, _| "ok").await;
    let s = h.status().await;
    assert!(pairs(&s).is_empty(), "{:?}", pairs(&s));
    assert_eq!(verdict(&s, "n1"), "healthy");

    // A result for a peer not handed out is dropped: an agent cannot make
    // up pairs, nor speak for other nodes.
    let forged = vec![
        result("n5", "connect_failed"),
        result("n9", "connect_failed"),
    ];
    for _ in 0..2 {
        h.exchange("n3", last[2].round, forged.clone()).await;
    }
    assert!(pairs(&h.status().await).is_empty());
    let _ = last;
    h.stop().await;
}

#[tokio::test]
async fn a_deleted_agent_leaves_the_mesh_and_no_pair_with_it_fails() {
    let h = start(&[]).await;
    let last = h.bootstrap().await;
    h.api.delete_pod(NS, &agent("n3")).unwrap();
    // Peers keep failing to reach the agent that is gone...
    let gone = |_: &str, to: &str| if to == "n3" { "connect_failed" } else { "ok" };
    let nodes = ["n1", "n2"];
    let mut hand: Vec<MeshRound> = last[..2].to_vec();
    for _ in 0..60 {
        hand = h.round(&nodes, &hand, gone).await;
        let s = h.status().await;
        assert!(
            pairs(&s).iter().all(|p| p.0 != "n3" && p.1 != "n3"),
            "a pair with a deleted agent failed: {:?}",
            pairs(&s)
        );
        if hand.iter().all(|r| !peers(r).contains("n3")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...and soon n3 is handed to nobody.
    assert_eq!(peers(&hand[0]), BTreeSet::from(["n2"]));
    assert_eq!(peers(&hand[1]), BTreeSet::from(["n1"]));
    h.stop().await;
}

#[tokio::test]
async fn with_the_mesh_off_an_agent_that_asks_gets_the_original_answer() {
    let h = start(&["--mesh-peers", "0"]).await;
    let name = agent("n1");
    let mut report: Value = serde_json::from_str(&fixture::go_report(&name)).unwrap();
    report["mesh"] = json!({"port": 8083, "round": 0, "results": []});
    let r = h
        .http
        .post(h.url(&format!("/api/v1/agents/{name}")))
        .header(MESH_HEADER, "1")
        .body(report.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        "",
        "nothing to probe: the agent does no mesh"
    );
    let s = h.status().await;
    assert_eq!(s["mesh"]["enabled"], false);
    assert!(s["mesh"]["failing_pairs"].as_array().unwrap().is_empty());
    // Stored as the original's report: the mesh part is not served back.
    let (_, stored) = h.get(&format!("/api/v1/agents/{name}")).await;
    assert!(!stored.contains("mesh"), "{stored}");
    h.stop().await;
}

#[tokio::test]
async fn a_bad_mesh_part_is_refused_with_a_reason_and_nothing_is_stored() {
    let h = start(&[]).await;
    let name = agent("n1");
    let mut report: Value = serde_json::from_str(&fixture::go_report(&name)).unwrap();
    report["mesh"] =
        json!({"port": 8083, "addresses": ["evil.example"], "round": 0, "results": []});
    let r = h
        .http
        .post(h.url(&format!("/api/v1/agents/{name}")))
        .header(MESH_HEADER, "1")
        .body(report.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not an IP address"));
    assert_eq!(h.get(&format!("/api/v1/agents/{name}")).await.0, 404);
    h.stop().await;
}

/// Serve a webhook receiver on loopback that keeps every event it gets;
/// returns its URL and the events.
async fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::routing::post;
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = events.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: String| {
            let keep = keep.clone();
            async move {
                keep.lock()
                    .unwrap()
                    .push(serde_json::from_str::<Value>(&body).unwrap());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), events)
}

#[tokio::test]
async fn a_mesh_verdict_change_is_sent_to_the_webhooks() {
    let (url, events) = webhook_receiver().await;
    let h = start(&["--webhook-url", &url]).await;
    let mut last = h.bootstrap().await;
    for _ in 0..2 {
        last = h.round(&MESH, &last, cut_n1_n2).await;
    }
    assert_eq!(verdict(&h.status().await, "n1"), "mesh_partition");
    // The background round (every second) judges the change and sends it.
    let sent = |node: &str, old: &str, new: &str| {
        events
            .lock()
            .unwrap()
            .iter()
            .find(|e| e["node"] == node && e["old_verdict"] == old && e["new_verdict"] == new)
            .cloned()
    };
    let event = async |node: &str, old: &str, new: &str| {
        for _ in 0..100 {
            if let Some(e) = sent(node, old, new) {
                return Some(e);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    };
    let partition = event("n1", "healthy", "mesh_partition")
        .await
        .expect("an event for n1's mesh partition");
    let reason = partition["reason"].as_str().unwrap();
    assert!(reason.contains("partitioned from n2"), "{reason}");
    let outside = events
        .lock()
        .unwrap()
        .iter()
        .any(|e| e["node"] == "n3" && e["new_verdict"] == "mesh_partition");
    assert!(!outside, "a node outside the pair has no event");

    // Healed: the change back is sent too.
    h.round(&MESH, &last, |_, _| "ok").await;
    assert!(
        event("n1", "mesh_partition", "healthy").await.is_some(),
        "no event for n1's recovery"
    );
    h.stop().await;
}
