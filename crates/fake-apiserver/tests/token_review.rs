//! TokenReview through kube's typed API, answered as the API server
//! answers it: who a token authenticates, why a forged or stale one does
//! not, bad requests, and injected failures.

mod support;

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::Api;
use kube::api::PostParams;
use netchecker_fake_apiserver::{DEFAULT_ISSUER, Failure, PodBuilder, TokenRequest};
use serde_json::json;
use support::issuer::{cluster, token_review};
use support::{PATIENCE, eventually, send};

#[tokio::test]
async fn token_review_authenticates_like_the_api_server() {
    let (fake, client) = cluster().await;
    let minted = fake
        .mint_token(&TokenRequest::for_pod("netchecker", "agent-1"))
        .unwrap();
    let review = token_review(&client, &minted.token, &["netchecker"]).await;
    assert_eq!(review.spec.token, minted.token);
    let status = review.status.unwrap();
    assert_eq!(status.authenticated, Some(true));
    assert_eq!(status.error, None);
    assert_eq!(status.audiences, Some(vec!["netchecker".to_owned()]));
    let user = status.user.unwrap();
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:netchecker:netchecker-agent")
    );
    assert_eq!(
        user.uid.as_deref(),
        minted.claims["kubernetes.io"]["serviceaccount"]["uid"].as_str()
    );
    assert_eq!(
        user.groups.unwrap(),
        [
            "system:serviceaccounts",
            "system:serviceaccounts:netchecker",
            "system:authenticated"
        ]
    );
    let extra = user.extra.unwrap();
    let pod_uid = fake
        .pod("netchecker", "agent-1")
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let node_uid = fake.node("node-a").unwrap().metadata.uid.unwrap();
    let jti = format!("JTI={}", minted.claims["jti"].as_str().unwrap());
    for (key, value) in [
        ("pod-name", "agent-1"),
        ("pod-uid", pod_uid.as_str()),
        ("node-name", "node-a"),
        ("node-uid", node_uid.as_str()),
        ("credential-id", jti.as_str()),
    ] {
        assert_eq!(
            extra[&format!("authentication.kubernetes.io/{key}")],
            [value.to_owned()],
            "{key}"
        );
    }
    assert_eq!(fake.token_review_requests(), 1);
}

#[tokio::test]
async fn token_review_rejects_forgeries_and_tokens_of_gone_pods() {
    let (fake, client) = cluster().await;
    fake.add_pod(PodBuilder::new(
        "netchecker",
        "agent-2",
        "netchecker-agent",
        "node-a",
    ));
    let agent = || TokenRequest::for_pod("netchecker", "agent-1");
    let to_delete = fake
        .mint_token(&TokenRequest::for_pod("netchecker", "agent-2"))
        .unwrap();
    let cases = [
        (
            fake.mint_token(&agent().foreign_key()).unwrap().token,
            "verification error",
        ),
        (
            fake.mint_token(&agent().expired()).unwrap().token,
            "expired",
        ),
        (
            fake.mint_token(&agent().audience("other")).unwrap().token,
            "audiences",
        ),
        (
            fake.mint_token(&agent().issuer("https://x.test"))
                .unwrap()
                .token,
            "issuer",
        ),
        (
            fake.mint_token(&agent().pod_uid("stale")).unwrap().token,
            "does not match",
        ),
        ("garbage".to_owned(), "not a JWT"),
    ];
    for (token, expected) in &cases {
        let status = token_review(&client, token, &["netchecker"])
            .await
            .status
            .unwrap();
        assert_ne!(status.authenticated, Some(true), "{expected}");
        let error = status.error.unwrap_or_default();
        assert!(error.contains(expected), "{expected}: {error}");
        assert_eq!(status.user.unwrap_or_default().username, None);
    }
    fake.delete_pod("netchecker", "agent-2");
    let status = token_review(&client, &to_delete.token, &["netchecker"])
        .await
        .status
        .unwrap();
    assert!(status.error.unwrap().contains("not found"));
    assert_eq!(fake.token_review_requests(), cases.len() as u64 + 1);

    // Without audiences, the API server's own audience (its issuer) applies.
    let for_api = fake
        .mint_token(&agent().audience(DEFAULT_ISSUER))
        .unwrap()
        .token;
    let status = token_review(&client, &for_api, &[]).await.status.unwrap();
    assert_eq!(status.authenticated, Some(true));
    assert_eq!(status.audiences, Some(vec![DEFAULT_ISSUER.to_owned()]));

    // Bad requests are answered as the API answers them.
    let path = "/apis/authentication.k8s.io/v1/tokenreviews";
    let empty =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {}});
    assert_eq!(send(&client, "POST", path, Some(empty)).await, Err(400));
    let wrong = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"token": "x"}});
    assert_eq!(send(&client, "POST", path, Some(wrong)).await, Err(400));
    assert_eq!(send(&client, "GET", path, None).await, Err(405));
}

#[tokio::test]
async fn failures_reach_token_review_discovery_and_jwks() {
    let (fake, client) = cluster().await;
    let token = fake
        .mint_token(&TokenRequest::for_pod("netchecker", "agent-1"))
        .unwrap()
        .token;
    fake.set_failure(Failure::Error(500));
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: token.clone(),
            audiences: None,
        },
        ..TokenReview::default()
    };
    match Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 500),
        other => panic!("expected a 500, got {other:?}"),
    }
    for path in ["/.well-known/openid-configuration", "/openid/v1/jwks"] {
        assert_eq!(send(&client, "GET", path, None).await, Err(500), "{path}");
    }
    // LIST- and WATCH-only modes leave them alone.
    for failure in [Failure::HangList, Failure::GoneOnWatch] {
        fake.set_failure(failure);
        let status = token_review(&client, &token, &["netchecker"]).await.status;
        assert_eq!(status.unwrap().authenticated, Some(true));
    }
    // A hang holds a review until it is cleared.
    fake.set_failure(Failure::Hang);
    let held = tokio::spawn({
        let client = client.clone();
        let token = token.clone();
        async move { token_review(&client, &token, &["netchecker"]).await }
    });
    eventually("the review arrives", || async {
        fake.token_review_requests() == 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!held.is_finished(), "a hanging API must not answer");
    fake.set_failure(Failure::None);
    let review = tokio::time::timeout(PATIENCE, held).await.unwrap().unwrap();
    assert_eq!(review.status.unwrap().authenticated, Some(true));
}
