//! Issuer helpers: a seeded cluster, verification as an offline verifier
//! does it, and TokenReview through kube's typed API.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::PostParams;
use kube::{Api, Client};
use netchecker_fake_apiserver::{FakeApiServer, agent_pod, node};
use serde_json::Value;

use super::{client_for, send};

pub async fn get_json(client: &Client, path: &str) -> Value {
    send(client, "GET", path, None).await.unwrap()
}

/// Verify as a server doing offline checks would: discovery, then the JWKS
/// it names, then the key with the token's `kid`.
pub async fn verify_offline(client: &Client, token: &str) -> Result<Value, String> {
    let discovery = get_json(client, "/.well-known/openid-configuration").await;
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    let path = jwks_uri.split_once("://").unwrap().1;
    let path = &path[path.find('/').unwrap()..];
    let jwks = get_json(client, path).await;
    let kid = decode_header(token).unwrap().kid.unwrap();
    let Some(jwk) = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
    else {
        return Err(format!("unknown kid {kid}"));
    };
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["netchecker"]);
    validation.set_issuer(&[discovery["issuer"].as_str().unwrap()]);
    decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

pub async fn token_review(client: &Client, token: &str, audiences: &[&str]) -> TokenReview {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: token.to_owned(),
            audiences: Some(audiences.iter().map(|a| (*a).to_owned()).collect()),
        },
        ..TokenReview::default()
    };
    Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("a TokenReview is created")
}

pub async fn cluster() -> (FakeApiServer, Client) {
    let fake = FakeApiServer::start().await;
    fake.add_node(node("node-a"));
    fake.add_pod(agent_pod(
        "netchecker",
        "agent-1",
        "netchecker-agent",
        "node-a",
    ));
    let client = client_for(&fake).await;
    (fake, client)
}
