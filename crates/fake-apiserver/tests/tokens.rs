//! The service-account issuer through real HTTP: discovery and JWKS fetched
//! as a verifier would fetch them, minted tokens verified with
//! `jsonwebtoken` against the served keys, key rotation, and the control
//! routes.

mod support;

use netchecker_fake_apiserver::{DEFAULT_ISSUER, FakeApiServer, TokenRequest};
use serde_json::{Value, json};
use support::issuer::{cluster, get_json, token_review, verify_offline};
use support::{PATIENCE, send};

#[tokio::test]
async fn discovery_and_jwks_are_served_as_the_api_server_serves_them() {
    let (fake, client) = cluster().await;
    let discovery = get_json(&client, "/.well-known/openid-configuration").await;
    assert_eq!(
        discovery,
        json!({
            "issuer": DEFAULT_ISSUER,
            "jwks_uri": format!("{}/openid/v1/jwks", fake.url()),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    );
    assert_eq!(fake.jwks_uri(), format!("{}/openid/v1/jwks", fake.url()));
    let jwks = get_json(&client, "/openid/v1/jwks").await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    let mut fields: Vec<_> = key.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], fake.signing_kid().as_str());
    assert_eq!(jwks, fake.jwks());

    // Raw headers, as a verifier sees them.
    let response = reqwest_like_get(&fake, "/openid/v1/jwks").await;
    assert!(
        response.contains("content-type: application/jwk-set+json"),
        "{response}"
    );
    assert!(
        response.contains("cache-control: public, max-age=3600"),
        "{response}"
    );

    assert_eq!(fake.discovery_requests(), 1);
    assert_eq!(fake.jwks_requests(), 2);
    assert_eq!(fake.total_requests(), 3);
    let counts = get_json(&client, "/fake/requests").await;
    assert_eq!(counts["discovery"], 1);
    assert_eq!(counts["jwks"], 2);
    assert!(
        counts.get("tokenReviews").is_none(),
        "zero counters stay out"
    );
}

/// A plain HTTP/1.1 GET over TCP, returning the head and body as text.
async fn reqwest_like_get(fake: &FakeApiServer, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(fake.addr()).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        fake.addr()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(PATIENCE, stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    response.to_ascii_lowercase()
}

#[tokio::test]
async fn minted_tokens_verify_against_the_served_jwks_and_forgeries_do_not() {
    let (fake, client) = cluster().await;
    let minted = fake
        .mint_token(&TokenRequest::for_pod("netchecker", "agent-1"))
        .unwrap();
    let claims = verify_offline(&client, &minted.token).await.unwrap();
    assert_eq!(claims, minted.claims);
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "agent-1");
    assert_eq!(
        claims["kubernetes.io"]["node"]["uid"],
        json!(fake.node("node-a").unwrap().metadata.uid)
    );

    let agent = || TokenRequest::for_pod("netchecker", "agent-1");
    for (request, expected) in [
        (agent().audience("other"), "InvalidAudience"),
        (agent().issuer("https://elsewhere.test"), "InvalidIssuer"),
        (agent().expired(), "ExpiredSignature"),
        (agent().foreign_key(), "unknown kid"),
        (
            agent().foreign_key().kid(&fake.signing_kid()),
            "InvalidSignature",
        ),
    ] {
        let token = fake.mint_token(&request).unwrap().token;
        let error = verify_offline(&client, &token).await.unwrap_err();
        assert!(
            error
                .replace(' ', "")
                .to_lowercase()
                .contains(&expected.replace(' ', "").to_lowercase()),
            "{request:?}: {error}"
        );
    }
}

#[tokio::test]
async fn rotation_publishes_the_new_kid_when_told() {
    let (fake, client) = cluster().await;
    let old_kid = fake.signing_kid();
    let new_kid = fake.rotate_signing_key(false).unwrap();
    assert_ne!(new_kid, old_kid);
    let token = fake
        .mint_token(&TokenRequest::for_pod("netchecker", "agent-1"))
        .unwrap();
    assert_eq!(token.kid, new_kid);
    let jwks_before = fake.jwks_requests();
    assert_eq!(
        verify_offline(&client, &token.token).await.unwrap_err(),
        format!("unknown kid {new_kid}")
    );
    // TokenReview already accepts it: the API server knows its own key.
    let review = token_review(&client, &token.token, &["netchecker"]).await;
    assert_eq!(review.status.unwrap().authenticated, Some(true));

    fake.publish_signing_keys();
    assert!(verify_offline(&client, &token.token).await.is_ok());
    assert_eq!(
        fake.jwks_requests(),
        jwks_before + 2,
        "a refetch is counted"
    );
    let kids: Vec<_> = fake.signing_keys().into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, [old_kid.clone(), new_kid.clone()]);

    // Older tokens stay valid until their key is retired.
    let old = fake
        .mint_token(&TokenRequest::for_pod("netchecker", "agent-1").signed_by(&old_kid))
        .unwrap();
    assert!(verify_offline(&client, &old.token).await.is_ok());
    fake.retire_signing_key(&old_kid).unwrap();
    assert!(verify_offline(&client, &old.token).await.is_err());
    assert!(
        fake.rotate_signing_key(true).is_err(),
        "no third built-in key"
    );
}

#[tokio::test]
async fn issuer_control_routes() {
    let (fake, client) = cluster().await;
    let minted = send(
        &client,
        "POST",
        "/fake/tokens",
        Some(json!({"namespace": "netchecker", "pod": "agent-1", "audiences": ["netchecker"]})),
    )
    .await
    .unwrap();
    let token = minted["token"].as_str().unwrap();
    assert_eq!(minted["kid"], fake.signing_kid().as_str());
    assert_eq!(minted["claims"]["kubernetes.io"]["pod"]["name"], "agent-1");
    assert!(verify_offline(&client, token).await.is_ok());
    assert_eq!(
        send(
            &client,
            "POST",
            "/fake/tokens",
            Some(json!({"namespace": "x", "pod": "y"}))
        )
        .await,
        Err(404)
    );
    assert_eq!(
        send(&client, "POST", "/fake/tokens", Some(json!({"pod": "y"}))).await,
        Err(400)
    );
    let forged = send(
        &client,
        "POST",
        "/fake/tokens",
        Some(json!({"namespace": "netchecker", "pod": "agent-1", "signedBy": "foreign"})),
    )
    .await
    .unwrap();
    assert!(
        verify_offline(&client, forged["token"].as_str().unwrap())
            .await
            .is_err()
    );

    let rotated = send(
        &client,
        "POST",
        "/fake/keys/rotate",
        Some(json!({"publish": false})),
    )
    .await
    .unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let info = get_json(&client, "/fake/issuer").await;
    assert_eq!(
        info["keys"][1],
        json!({"kid": new_kid, "published": false, "signing": true})
    );
    assert_eq!(info["issuer"], DEFAULT_ISSUER);
    assert_eq!(
        send(&client, "POST", "/fake/keys/publish", None).await,
        Ok(Value::Null)
    );
    assert_eq!(fake.jwks()["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        send(&client, "POST", "/fake/keys/rotate", None).await,
        Err(409)
    );
    assert_eq!(
        send(&client, "DELETE", &format!("/fake/keys/{new_kid}"), None).await,
        Err(409),
        "the signing key stays"
    );
    let old_kid = info["keys"][0]["kid"].as_str().unwrap();
    assert_eq!(
        send(&client, "DELETE", &format!("/fake/keys/{old_kid}"), None).await,
        Ok(Value::Null)
    );
    assert_eq!(
        send(&client, "DELETE", "/fake/keys/nope", None).await,
        Err(404)
    );

    let changed = send(
        &client,
        "PUT",
        "/fake/issuer",
        Some(json!({"issuer": "https://issuer.test", "jwksUri": "https://issuer.test/jwks"})),
    )
    .await
    .unwrap();
    assert_eq!(changed["issuer"], "https://issuer.test");
    assert_eq!(fake.issuer(), "https://issuer.test");
    let discovery = get_json(&client, "/.well-known/openid-configuration").await;
    assert_eq!(discovery["jwks_uri"], "https://issuer.test/jwks");
    send(
        &client,
        "PUT",
        "/fake/issuer",
        Some(json!({"jwksUri": null})),
    )
    .await
    .unwrap();
    assert_eq!(fake.jwks_uri(), format!("{}/openid/v1/jwks", fake.url()));
    assert_eq!(
        send(&client, "PUT", "/fake/issuer", Some(json!({"nope": 1}))).await,
        Err(400)
    );
    // A token minted for the old issuer no longer passes review.
    let status = token_review(&client, token, &["netchecker"])
        .await
        .status
        .unwrap();
    assert!(status.error.unwrap().contains("issuer"));
}
