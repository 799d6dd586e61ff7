use std::time::Duration;

use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::json;

use super::*;
use crate::issuer::review::review;
use crate::state::AppState;
use crate::{PodBuilder, node};

fn cluster() -> AppState {
    let state = Shared::new("http://127.0.0.1:1".to_owned());
    state
        .nodes
        .upsert(node("node-a").uid("node-uid-a").build())
        .unwrap();
    state
        .pods
        .upsert(
            PodBuilder::new("netchecker", "agent-1", "netchecker-agent", "node-a")
                .uid("pod-uid-1")
                .build(),
        )
        .unwrap();
    state
}

fn verify_with_jwks(state: &Shared, token: &str) -> jsonwebtoken::errors::Result<Value> {
    let kid = decode_header(token)?.kid.unwrap();
    let jwks = state.issuer.jwks();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid published");
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["netchecker"]);
    validation.set_issuer(&[crate::DEFAULT_ISSUER]);
    Ok(decode::<Value>(token, &key, &validation)?.claims)
}

#[test]
fn a_token_looks_like_a_kubelet_projected_one() {
    let state = cluster();
    let minted = mint(&state, &TokenRequest::for_pod("netchecker", "agent-1")).unwrap();
    let header = decode_header(&minted.token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(
        header.typ, None,
        "the API server's header is only alg and kid"
    );
    assert_eq!(header.kid.as_deref(), Some(minted.kid.as_str()));
    assert_eq!(minted.kid, state.issuer.signing_key().kid);

    let c = verify_with_jwks(&state, &minted.token).unwrap();
    assert_eq!(c, minted.claims);
    assert_eq!(c["aud"], json!(["netchecker"]));
    assert_eq!(c["iss"], crate::DEFAULT_ISSUER);
    assert_eq!(
        c["sub"],
        "system:serviceaccount:netchecker:netchecker-agent"
    );
    let iat = c["iat"].as_u64().unwrap();
    assert_eq!(c["nbf"].as_u64(), Some(iat));
    assert_eq!(c["exp"].as_u64(), Some(iat + 365 * 24 * 3600));
    let k = &c["kubernetes.io"];
    assert_eq!(k["namespace"], "netchecker");
    assert_eq!(k["pod"], json!({"name": "agent-1", "uid": "pod-uid-1"}));
    assert_eq!(k["node"], json!({"name": "node-a", "uid": "node-uid-a"}));
    assert_eq!(k["serviceaccount"]["name"], "netchecker-agent");
    assert_eq!(k["serviceaccount"]["uid"].as_str().unwrap().len(), 36);
    assert_eq!(k["warnafter"].as_u64(), Some(iat + 3607));
    assert_eq!(c["jti"].as_str().unwrap().len(), 36);
    let again = mint(&state, &TokenRequest::for_pod("netchecker", "agent-1")).unwrap();
    assert_ne!(again.claims["jti"], c["jti"]);
    assert_eq!(
        again.claims["kubernetes.io"]["serviceaccount"]["uid"], k["serviceaccount"]["uid"],
        "one service account, one uid"
    );
}

#[test]
fn a_valid_token_passes_review() {
    let state = cluster();
    let minted = mint(&state, &TokenRequest::for_pod("netchecker", "agent-1")).unwrap();
    let user = review(&state, &minted.token, &["netchecker".to_owned()]).unwrap();
    assert_eq!(
        user.username,
        "system:serviceaccount:netchecker:netchecker-agent"
    );
    assert_eq!(
        user.uid,
        minted.claims["kubernetes.io"]["serviceaccount"]["uid"]
    );
    assert_eq!(
        user.groups,
        [
            "system:serviceaccounts",
            "system:serviceaccounts:netchecker",
            "system:authenticated"
        ]
    );
    let extra = |k: &str| user.extra[&format!("authentication.kubernetes.io/{k}")][0].clone();
    assert_eq!(extra("pod-name"), "agent-1");
    assert_eq!(extra("pod-uid"), "pod-uid-1");
    assert_eq!(extra("node-name"), "node-a");
    assert_eq!(extra("node-uid"), "node-uid-a");
    assert_eq!(
        extra("credential-id"),
        format!("JTI={}", minted.claims["jti"].as_str().unwrap())
    );
    assert_eq!(user.audiences, ["netchecker"]);
    // Of several requested audiences, the ones the token has.
    let user = review(
        &state,
        &minted.token,
        &["other".to_owned(), "netchecker".to_owned()],
    )
    .unwrap();
    assert_eq!(user.audiences, ["netchecker"]);
}

fn rejected(state: &Shared, request: &TokenRequest) -> String {
    let minted = mint(state, request).unwrap();
    review(state, &minted.token, &["netchecker".to_owned()]).unwrap_err()
}

#[test]
fn forgeries_and_stale_tokens_fail_review() {
    let state = cluster();
    let agent = || TokenRequest::for_pod("netchecker", "agent-1");
    let cases = [
        (agent().audience("kube-apiserver"), "audiences"),
        (agent().issuer("https://evil.test"), "issuer"),
        (agent().expired(), "expired"),
        (agent().foreign_key(), "verification error"),
        (
            agent().foreign_key().kid(&state.issuer.signing_key().kid),
            "verification error",
        ),
        (agent().pod_uid("stale"), "does not match"),
        (
            TokenRequest::for_pod("netchecker", "ghost").missing_pod(),
            "not found",
        ),
        (agent().claims(json!({"exp": 1})), "expired"),
        (agent().claims(json!({"kubernetes.io": null})), "claims"),
    ];
    for (request, expected) in cases {
        let error = rejected(&state, &request);
        assert!(error.starts_with("[invalid bearer token, "), "{error}");
        assert!(error.contains(expected), "{request:?}: {error}");
    }
    // No audiences in the review: the API server's own (its issuer).
    let minted = mint(&state, &agent().audience(crate::DEFAULT_ISSUER)).unwrap();
    assert!(review(&state, &minted.token, &[]).is_ok());
    assert!(
        review(&state, "not-a-jwt", &[])
            .unwrap_err()
            .contains("not a JWT")
    );
}

#[test]
fn review_follows_the_bound_pod() {
    let state = cluster();
    let token = mint(&state, &TokenRequest::for_pod("netchecker", "agent-1"))
        .unwrap()
        .token;
    let audiences = ["netchecker".to_owned()];
    // Terminating, within the grace the API server allows: still valid.
    state.pods.mark_deleting("netchecker", "agent-1", Some(30));
    assert!(review(&state, &token, &audiences).is_ok());
    // Deleted and recreated under the same name: a new uid.
    state.pods.delete("netchecker", "agent-1");
    assert!(
        review(&state, &token, &audiences)
            .unwrap_err()
            .contains("not found")
    );
    state
        .pods
        .upsert(PodBuilder::new("netchecker", "agent-1", "netchecker-agent", "node-a").build())
        .unwrap();
    assert!(
        review(&state, &token, &audiences)
            .unwrap_err()
            .contains("does not match")
    );
    // Terminating long ago: invalid.
    state.pods.modify("netchecker", "agent-1", |pod| {
        pod.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Timestamp::now() - jiff::SignedDuration::from_secs(120),
            ));
    });
    let fresh = mint(&state, &TokenRequest::for_pod("netchecker", "agent-1"))
        .unwrap()
        .token;
    assert!(
        review(&state, &fresh, &audiences)
            .unwrap_err()
            .contains("being deleted")
    );
}

#[test]
fn rotation_signs_with_the_new_key_and_keeps_the_old_valid() {
    let state = cluster();
    let old = mint(&state, &TokenRequest::for_pod("netchecker", "agent-1")).unwrap();
    let kid = state.issuer.rotate(false).unwrap();
    let new = mint(&state, &TokenRequest::for_pod("netchecker", "agent-1")).unwrap();
    assert_eq!(new.kid, kid);
    assert_ne!(old.kid, kid);
    // Not in the JWKS yet, but the API server knows its own key.
    assert!(verify_with_jwks(&state, &old.token).is_ok());
    assert!(review(&state, &new.token, &["netchecker".to_owned()]).is_ok());
    let by_old = mint(
        &state,
        &TokenRequest::for_pod("netchecker", "agent-1").signed_by(&old.kid),
    )
    .unwrap();
    assert_eq!(by_old.kid, old.kid);
    state.issuer.publish_all();
    assert!(verify_with_jwks(&state, &new.token).is_ok());
    state.issuer.retire(&old.kid).unwrap();
    assert!(
        review(&state, &old.token, &["netchecker".to_owned()])
            .unwrap_err()
            .contains("verification error")
    );
    assert_eq!(
        mint(
            &state,
            &TokenRequest::for_pod("netchecker", "agent-1").signed_by(&old.kid)
        ),
        Err(MintError::UnknownKey(old.kid.clone()))
    );
}

#[test]
fn minting_options() {
    let state = cluster();
    assert!(matches!(
        mint(&state, &TokenRequest::for_pod("netchecker", "ghost")),
        Err(MintError::NoSuchPod { .. })
    ));
    let ghost = mint(
        &state,
        &TokenRequest::for_pod("netchecker", "ghost").missing_pod(),
    )
    .unwrap();
    assert!(ghost.claims["kubernetes.io"].get("node").is_none());
    let c = mint(
        &state,
        &TokenRequest::for_pod("netchecker", "agent-1")
            .audiences(["a", "b"])
            .lifetime(Duration::from_secs(600))
            .service_account("other")
            .node("node-unstored")
            .claims(json!({"extra": {"x": 1}, "nbf": null})),
    )
    .unwrap()
    .claims;
    assert_eq!(c["aud"], json!(["a", "b"]));
    let iat = c["iat"].as_u64().unwrap();
    assert_eq!(c["exp"].as_u64(), Some(iat + 600));
    assert_eq!(c["kubernetes.io"]["warnafter"].as_u64(), Some(iat + 600));
    assert_eq!(c["sub"], "system:serviceaccount:netchecker:other");
    assert_eq!(c["kubernetes.io"]["node"]["name"], "node-unstored");
    assert_eq!(c["extra"], json!({"x": 1}));
    assert!(c.get("nbf").is_none());
    let expired = mint(
        &state,
        &TokenRequest::for_pod("netchecker", "agent-1").expired(),
    )
    .unwrap()
    .claims;
    let now = Timestamp::now().as_second() as u64;
    assert!(expired["exp"].as_u64().unwrap() + 3000 < now);
}

#[test]
fn token_requests_have_a_json_form() {
    let request: TokenRequest =
        serde_json::from_value(json!({"namespace": "ns", "pod": "p"})).unwrap();
    assert_eq!(request, TokenRequest::for_pod("ns", "p"));
    let full: TokenRequest = serde_json::from_value(json!({
        "namespace": "ns", "pod": "p", "audiences": ["x"], "issuer": "i", "expired": true,
        "lifetimeSeconds": 5, "signedBy": "foreign", "kid": "k", "podUid": "u",
        "serviceAccount": "s", "node": "n", "missingPod": true, "claims": {"a": 1}
    }))
    .unwrap();
    assert_eq!(
        full,
        TokenRequest::for_pod("ns", "p")
            .audience("x")
            .issuer("i")
            .expired()
            .lifetime(Duration::from_secs(5))
            .foreign_key()
            .kid("k")
            .pod_uid("u")
            .service_account("s")
            .node("n")
            .missing_pod()
            .claims(json!({"a": 1}))
    );
    assert!(
        serde_json::from_value::<TokenRequest>(json!({"namespace": "ns", "pod": "p", "x": 1}))
            .is_err()
    );
}

#[test]
fn merge_patch_follows_rfc_7386() {
    let mut v = json!({"a": {"b": 1, "c": 2}, "d": 3});
    merge_patch(
        &mut v,
        &json!({"a": {"b": null, "e": 4}, "d": [1], "f": "g"}),
    );
    assert_eq!(v, json!({"a": {"c": 2, "e": 4}, "d": [1], "f": "g"}));
    merge_patch(&mut v, &json!("replaced"));
    assert_eq!(v, json!("replaced"));
}
