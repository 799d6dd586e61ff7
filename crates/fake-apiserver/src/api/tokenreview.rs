//! `POST /apis/authentication.k8s.io/v1/tokenreviews`, answered as the
//! real API answers it: `201 Created` with the review echoed back and a
//! status saying who the token authenticates, or why it does not.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::gate::{self, Kind};
use crate::issuer::review::review;
use crate::state::{AppState, Counters};
use crate::status::error_response;

const API_VERSION: &str = "authentication.k8s.io/v1";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    spec: Spec,
}

#[derive(Debug, Default, Deserialize)]
struct Spec {
    #[serde(default)]
    token: String,
    #[serde(default)]
    audiences: Vec<String>,
}

/// `POST /apis/authentication.k8s.io/v1/tokenreviews`
pub async fn create(State(state): State<AppState>, body: Bytes) -> Response {
    Counters::bump(&state.counters.token_reviews);
    if let Err(response) = gate::pass(&state, Kind::Other).await {
        return response;
    }
    let request: Body = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => return error_response(400, &format!("body is not a TokenReview: {err}")),
    };
    if request.kind.as_deref().is_some_and(|k| k != "TokenReview")
        || request
            .api_version
            .as_deref()
            .is_some_and(|v| v != API_VERSION)
    {
        return error_response(
            400,
            &format!("the body must be a TokenReview of {API_VERSION}"),
        );
    }
    if request.spec.token.is_empty() {
        return error_response(400, "token is required for TokenReview in authentication");
    }

    let status = match review(&state, &request.spec.token, &request.spec.audiences) {
        Ok(user) => json!({
            "authenticated": true,
            "user": {
                "username": user.username,
                "uid": user.uid,
                "groups": user.groups,
                "extra": user.extra,
            },
            "audiences": user.audiences,
        }),
        // As the real API: `authenticated` is omitted when false.
        Err(error) => json!({ "user": {}, "error": error }),
    };
    let mut spec = json!({ "token": request.spec.token });
    if !request.spec.audiences.is_empty() {
        spec["audiences"] = json!(request.spec.audiences);
    }
    let answer: Value = json!({
        "kind": "TokenReview",
        "apiVersion": API_VERSION,
        "metadata": { "creationTimestamp": null },
        "spec": spec,
        "status": status,
    });
    (StatusCode::CREATED, Json(answer)).into_response()
}
