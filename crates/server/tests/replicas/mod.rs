//! Server replicas against one fake Kubernetes API over real HTTP, for
//! the test files on leader election and open incidents: replicas in the
//! test process or as processes, a webhook receiver, agents reporting.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use netchecker_fake_apiserver::{FakeApiServer, agent_pod, node};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::in_process::{self, InProcess};
use crate::{common, fixture, scrape};

pub const NS: &str = "netchecker";
pub const LEASE: &str = "netchecker-server";
pub const POD: &str = "netchecker-agent-x7k2p";
pub const HOSTNET_POD: &str = "netchecker-agent-hostnet-q8w3z";
pub const TIMINGS: [&str; 6] = [
    "--lease-duration",
    "3",
    "--lease-renew-deadline",
    "2",
    "--lease-retry-period",
    "1",
];

pub async fn fake() -> FakeApiServer {
    let api = FakeApiServer::start().await;
    api.add_pod(agent_pod(NS, POD, "netchecker-agent", "node-1"));
    api.add_pod(agent_pod(
        NS,
        HOSTNET_POD,
        "netchecker-agent-hostnet",
        "node-1",
    ));
    api.add_node(node("node-1"));
    api
}

pub struct Replica {
    pub id: String,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

/// A server replica named `id` against `api`, electing with the short
/// timings, with `extra` flags.
pub async fn replica(api: &FakeApiServer, id: &str, extra: &[&str]) -> Replica {
    let mut argv = vec![
        "netchecker-server",
        "--check-interval",
        "1",
        "--leader-election",
        "--leader-election-namespace",
        NS,
        "--leader-election-identity",
        id,
    ];
    argv.extend(TIMINGS);
    argv.extend(extra);
    let InProcess {
        addr,
        shutdown,
        task,
    } = in_process::serve(api, argv).await;
    Replica {
        id: id.to_owned(),
        addr,
        shutdown,
        task,
    }
}

impl Replica {
    pub async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        scrape::metric(&text, series)
    }

    pub async fn leads(&self) -> bool {
        self.metric("netchecker_leader").await == 1.0
    }

    pub async fn report(&self, name: &str) {
        // A 1 s interval: an agent that stops is outdated after 2 s.
        let body =
            fixture::go_report(name).replace("\"report_interval\":15", "\"report_interval\":1");
        let r = reqwest::Client::new()
            .post(format!("http://{}/api/v1/agents/{name}", self.addr))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

/// Poll `cond` every 50 ms for up to `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn holder(api: &FakeApiServer) -> Option<String> {
    api.lease(NS, LEASE)?.spec?.holder_identity
}

pub fn transitions(api: &FakeApiServer) -> i32 {
    api.lease(NS, LEASE)
        .and_then(|l| l.spec?.lease_transitions)
        .unwrap_or(-1)
}

/// The replicas that say they lead.
pub async fn leaders<'r>(replicas: &[&'r Replica]) -> Vec<&'r Replica> {
    let mut out = Vec::new();
    for r in replicas {
        if r.leads().await {
            out.push(*r);
        }
    }
    out
}

/// Wait until exactly one replica leads and holds the lease; return it.
pub async fn one_leader<'r>(api: &FakeApiServer, replicas: &[&'r Replica]) -> &'r Replica {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let l = leaders(replicas).await;
        if l.len() == 1 && holder(api).as_deref() == Some(l[0].id.as_str()) {
            return l[0];
        }
        assert!(
            Instant::now() < deadline,
            "no single leader: {} lead",
            l.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A webhook receiver on loopback that records what it gets.
pub async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    async fn receive(State(b): State<Arc<Mutex<Vec<Value>>>>, body: String) {
        b.lock().unwrap().push(serde_json::from_str(&body).unwrap());
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(bodies.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, bodies)
}

/// Report both agents to every replica for `secs` (only the host agent
/// when `pod` is false).
pub async fn reporting(replicas: &[&Replica], pod: bool, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        for r in replicas {
            if pod {
                r.report(POD).await;
            }
            r.report(HOSTNET_POD).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A replica as a process of its own, reaching the fake through a
/// kubeconfig.
pub fn process(api: &FakeApiServer, id: &str) -> common::Server {
    let kubeconfig = api.kubeconfig_yaml();
    common::Server::start(|cmd, addr, dir| {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, kubeconfig).unwrap();
        cmd.env("KUBECONFIG", &path)
            .env("POD_NAME", id)
            .env("POD_NAMESPACE", NS)
            .env("RUST_LOG", "info")
            .args(["--endpoint", &addr.to_string(), "--leader-election"])
            .args(TIMINGS);
    })
}

pub async fn process_leads(s: &common::Server) -> Option<bool> {
    let text = reqwest::get(format!("http://{}/metrics", s.addr))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(text.lines().any(|l| l == "netchecker_leader 1"))
}
