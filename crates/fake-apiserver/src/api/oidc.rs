//! The service-account issuer's OpenID discovery document and JWKS, served
//! as the real API server serves them (unauthenticated, cacheable).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::api::gate::{self, Kind};
use crate::state::{AppState, Counters};

const CACHE_CONTROL: &str = "public, max-age=3600";

/// `GET /.well-known/openid-configuration`
pub async fn discovery(State(state): State<AppState>, headers: HeaderMap) -> Response {
    Counters::bump(&state.counters.discovery);
    if let Err(response) = gate::pass(&state, Kind::Other).await {
        return response;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    (
        [(header::CACHE_CONTROL, CACHE_CONTROL)],
        Json(state.issuer.discovery(host)),
    )
        .into_response()
}

/// `GET /openid/v1/jwks`
pub async fn jwks(State(state): State<AppState>) -> Response {
    Counters::bump(&state.counters.jwks);
    if let Err(response) = gate::pass(&state, Kind::Other).await {
        return response;
    }
    let body = serde_json::to_vec(&state.issuer.jwks()).expect("a JWKS serializes");
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, CACHE_CONTROL),
        ],
        body,
    )
        .into_response()
}
