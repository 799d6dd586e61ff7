//! Reports that prove who sent them, over real HTTP against the in-repo
//! fake Kubernetes API, which publishes its service-account issuer (OIDC
//! discovery and a JWKS) and mints real RS256 pod-bound tokens.
//!
//! The forgery matrix: every way a report can fail to prove its sender is
//! answered 401 (no or invalid token) or 403 (a valid token for another
//! pod), the stored reports stay exactly as they were, and each refusal is
//! counted by reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use netchecker_fake_apiserver::{FakeApiServer, PodBuilder, TokenRequest};
use netchecker_server::auth::issuer::{Issuer, KubeIssuer};
use netchecker_server::auth::{Mode, ReportAuth};
use netchecker_server::{Config, PodView, run_with_auth};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod fixture;
mod scrape;

const NS: &str = "netchecker";
const POD: &str = "netchecker-agent-a1";
const OTHER: &str = "netchecker-agent-b2";

struct Harness {
    api: FakeApiServer,
    addr: SocketAddr,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

async fn start(mode: Mode) -> Harness {
    let api = FakeApiServer::start().await;
    api.add_pod(PodBuilder::new(NS, POD, "netchecker-agent", "node-1"));
    api.add_pod(PodBuilder::new(NS, OTHER, "netchecker-agent", "node-2"));
    let kubeconfig = Kubeconfig::from_yaml(&api.kubeconfig_yaml()).unwrap();
    let kube = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(kube).unwrap();
    let config = Config::try_parse_args(["netchecker-server", "--check-interval", "1"]).unwrap();
    let (pods, watch) = PodView::watch(client.clone(), None, &config.agent_selector);
    let issuer = Arc::new(Issuer::new(KubeIssuer(client)));
    let auth = ReportAuth::issuer(mode, "netchecker", issuer, 1000);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            run_with_auth(config, listener, pods, Some(watch), auth, shutdown)
                .await
                .unwrap()
        }
    });
    let h = Harness {
        api,
        addr,
        http: reqwest::Client::new(),
        shutdown,
    };
    for _ in 0..400 {
        if h.get("/readyz").await.0 == 200 {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server not ready");
}

impl Harness {
    async fn get(&self, path: &str) -> (u16, String) {
        match self
            .http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
        {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap()),
            Err(_) => (0, String::new()),
        }
    }

    /// POST a report for `name` with `token` as bearer: status, body and
    /// the `WWW-Authenticate` header.
    async fn report(&self, name: &str, token: Option<&str>) -> (u16, String, Option<String>) {
        let mut req = self
            .http
            .post(format!("http://{}/api/v1/agents/{name}", self.addr))
            .body(fixture::go_report(name));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let www = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), r.text().await.unwrap(), www)
    }

    fn mint(&self, req: TokenRequest) -> String {
        self.api.mint_token(&req).unwrap().token
    }

    async fn agents(&self) -> Value {
        serde_json::from_str(&self.get("/api/v1/agents/").await.1).unwrap()
    }

    async fn metric(&self, series: &str) -> f64 {
        scrape::metric(&self.get("/metrics").await.1, series)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forgery_matrix_is_refused_and_changes_nothing() {
    let h = start(Mode::Enforce).await;
    let own = h.mint(TokenRequest::for_pod(NS, POD));
    let (code, body, _) = h.report(POD, Some(&own)).await;
    assert_eq!(code, 200, "{body}");
    let stored = h.agents().await;
    assert_eq!(stored.as_object().unwrap().len(), 1);

    let other_pods = h.mint(TokenRequest::for_pod(NS, OTHER));
    // Each forgery: the token, the status, a phrase of the reason.
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("no token", None, 401, "no bearer token"),
        ("not a JWT", Some("not.a.jwt".to_owned()), 401, "not a JWT"),
        (
            "signed by a key the issuer never published",
            Some(h.mint(TokenRequest::for_pod(NS, POD).foreign_key())),
            401,
            "publishes no key",
        ),
        (
            "another issuer",
            Some(h.mint(TokenRequest::for_pod(NS, POD).issuer("https://evil.example"))),
            401,
            "not from this cluster's issuer",
        ),
        (
            "another audience",
            Some(h.mint(TokenRequest::for_pod(NS, POD).audience("vault"))),
            401,
            "not for audience",
        ),
        (
            "expired",
            Some(h.mint(TokenRequest::for_pod(NS, POD).expired())),
            401,
            "expired",
        ),
        (
            "a valid token of another pod",
            Some(other_pods.clone()),
            403,
            "belongs to pod",
        ),
        (
            "a token naming this pod with another service account",
            Some(h.mint(TokenRequest::for_pod(NS, POD).service_account("default"))),
            403,
            "service account",
        ),
        (
            "a token of an earlier pod of the same name",
            Some(h.mint(TokenRequest::for_pod(NS, POD).pod_uid("a-deleted-pod-uid"))),
            403,
            "earlier pod",
        ),
    ];
    for (what, token, want, phrase) in &cases {
        let (code, body, www) = h.report(POD, token.as_deref()).await;
        assert_eq!(code, *want, "{what}: {body}");
        assert!(body.contains(phrase), "{what}: {body:?} lacks {phrase:?}");
        if *want == 401 {
            assert_eq!(
                www.as_deref(),
                Some("Bearer realm=\"netchecker\""),
                "{what}"
            );
        }
        assert_eq!(h.agents().await, stored, "{what} changed the store");
    }
    // A made-up name gets no slot, whatever token it brings.
    let (code, _, _) = h.report("netchecker-agent-madeup", Some(&other_pods)).await;
    assert_eq!(code, 404);
    assert_eq!(h.agents().await, stored);

    let rejected =
        |reason: &str| format!("netchecker_reports_rejected_total{{reason=\"{reason}\"}}");
    assert_eq!(h.metric(&rejected("unauthenticated")).await, 6.0);
    assert_eq!(h.metric(&rejected("forbidden")).await, 3.0);
    assert_eq!(h.metric(&rejected("unknown_agent")).await, 1.0);
    let auth = |result: &str| format!("netchecker_report_auth_total{{result=\"{result}\"}}");
    assert_eq!(h.metric(&auth("ok")).await, 1.0);
    assert_eq!(h.metric(&auth("missing")).await, 1.0);
    assert_eq!(h.metric(&auth("invalid")).await, 5.0);
    assert_eq!(h.metric(&auth("forbidden")).await, 3.0);
    h.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_verified_once_keys_refetched_on_rotation_and_a_deleted_pods_token_dies() {
    let h = start(Mode::Enforce).await;
    let own = h.mint(TokenRequest::for_pod(NS, POD));
    assert_eq!(h.report(POD, Some(&own)).await.0, 200);
    let fetched = h.api.jwks_requests();
    for _ in 0..20 {
        assert_eq!(h.report(POD, Some(&own)).await.0, 200);
    }
    assert_eq!(
        h.api.jwks_requests(),
        fetched,
        "a known token costs no fetch"
    );

    // The issuer rotates to a new key: the first token naming it makes the
    // server fetch the keys once more.
    h.api.rotate_signing_key(true).unwrap();
    let rotated = h.mint(TokenRequest::for_pod(NS, POD));
    let (code, body, _) = h.report(POD, Some(&rotated)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(h.api.jwks_requests(), fetched + 1);
    // Unknown keys cannot make it fetch again and again.
    for _ in 0..5 {
        let forged = h.mint(TokenRequest::for_pod(NS, POD).foreign_key());
        assert_eq!(h.report(POD, Some(&forged)).await.0, 401);
    }
    assert_eq!(
        h.api.jwks_requests(),
        fetched + 1,
        "refetches are rate-limited"
    );

    // The pod is replaced under the same name: the old pod's token, still
    // unexpired and cached, no longer speaks for it.
    h.api.delete_pod(NS, POD).unwrap();
    h.api
        .add_pod(PodBuilder::new(NS, POD, "netchecker-agent", "node-1").uid("new-uid"));
    let mut refused = false;
    for _ in 0..200 {
        let (code, body, _) = h.report(POD, Some(&rotated)).await;
        if code == 403 {
            assert!(body.contains("earlier pod"), "{body}");
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "the deleted pod's token must die with the pod");
    let fresh = h.mint(TokenRequest::for_pod(NS, POD));
    assert_eq!(h.report(POD, Some(&fresh)).await.0, 200);
    h.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warn_accepts_but_counts_and_shows_who_did_not_prove_itself() {
    let h = start(Mode::Warn).await;
    assert_eq!(h.report(POD, None).await.0, 200);
    let token = h.mint(TokenRequest::for_pod(NS, OTHER));
    assert_eq!(h.report(OTHER, Some(&token)).await.0, 200);
    let (_, status) = h.get("/api/v2/status").await;
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["summary"]["unauthenticated"], 1);
    let auth_of = |name: &str| {
        status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|n| n["agents"].as_array().unwrap())
            .find(|a| a["name"] == name)
            .unwrap()["auth"]
            .clone()
    };
    assert_eq!(auth_of(POD), "missing");
    assert_eq!(auth_of(OTHER), "ok");
    assert_eq!(
        h.metric("netchecker_report_auth_total{result=\"missing\"}")
            .await,
        1.0
    );
    h.shutdown.cancel();
}
