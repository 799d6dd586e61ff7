//! Control routes under `/fake/`, for harnesses that drive the fake from
//! outside the process (the binary in end-to-end scenarios):
//!
//! - `GET /fake/pods`: the stored pods as a JSON array
//! - `POST /fake/pods`: body a Pod; add or replace it
//! - `POST /fake/pods/{namespace}/{name}/terminate`: set its
//!   `deletionTimestamp` (watchers see `MODIFIED`)
//! - `DELETE /fake/pods/{namespace}/{name}`
//! - `POST /fake/build/pod`, `POST /fake/build/node`: build an agent pod or a
//!   node as [`crate::PodBuilder`] and [`crate::node`] do, and add it
//! - `GET /fake/nodes`, `POST /fake/nodes`, `POST /fake/nodes/{name}/terminate`,
//!   `DELETE /fake/nodes/{name}`: the same for nodes
//! - `PUT /fake/failure`: body
//!   `{"mode":"none|error|hang|close|hang-list|gone|forbid-watch","status":503}`
//!   (`status` only for `error`, default 503); `GET /fake/failure`
//! - `POST /fake/close-watches`: end every open watch, keeping the mode
//! - `GET /fake/requests`: `{"list":N,"watch":N,"total":N}` plus, once they
//!   are non-zero, `nodeList`, `nodeWatch`, `tokenReviews`, `discovery`, `jwks`
//! - `POST /fake/compact`: forget the watch history (resuming watches get 410)
//! - `POST /fake/tokens`: body a [`crate::TokenRequest`]; mint a token
//! - `GET /fake/issuer`, `PUT /fake/issuer` (`{"issuer":..,"jwksUri":..}`)
//! - `POST /fake/keys/rotate` (`{"publish":false}` to publish later),
//!   `POST /fake/keys/publish`, `DELETE /fake/keys/{kid}`
//! - leases, config maps, events, node conditions and one-shot faults:
//!   see [`ha`](crate::control::ha)
//!
//! These requests are not counted in the API request counters.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::state::{AppState, Failure};
use crate::status::error_response;

/// Pods and nodes from builder inputs.
pub mod builders;
/// Leases, config maps, events, node conditions and one-shot faults.
pub mod ha;
/// Pods and nodes.
pub mod objects;
/// The token issuer.
pub mod tokens;
pub use objects::*;

/// The JSON form of a [`Failure`] on the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureSpec {
    pub mode: FailureMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// The `mode` field of [`FailureSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureMode {
    None,
    Error,
    Hang,
    Close,
    /// LIST hangs, WATCH is served.
    HangList,
    /// WATCH answers `410 Gone`, LIST is served.
    Gone,
    /// WATCH answers `403 Forbidden`, LIST is served.
    ForbidWatch,
}

impl FailureSpec {
    /// The failure this spec asks for, or why it is invalid.
    pub fn to_failure(self) -> Result<Failure, String> {
        match (self.mode, self.status) {
            (FailureMode::Error, status) => {
                let status = status.unwrap_or(503);
                if (400..=599).contains(&status) {
                    Ok(Failure::Error(status))
                } else {
                    Err(format!("status must be within 400..=599, got {status}"))
                }
            }
            (_, Some(_)) => Err("status is only valid with mode \"error\"".to_owned()),
            (FailureMode::None, None) => Ok(Failure::None),
            (FailureMode::Hang, None) => Ok(Failure::Hang),
            (FailureMode::Close, None) => Ok(Failure::CloseWatches),
            (FailureMode::HangList, None) => Ok(Failure::HangList),
            (FailureMode::Gone, None) => Ok(Failure::GoneOnWatch),
            (FailureMode::ForbidWatch, None) => Ok(Failure::ForbidWatch),
        }
    }

    fn from_failure(failure: Failure) -> Self {
        let (mode, status) = match failure {
            Failure::None => (FailureMode::None, None),
            Failure::Error(code) => (FailureMode::Error, Some(code)),
            Failure::Hang => (FailureMode::Hang, None),
            Failure::CloseWatches => (FailureMode::Close, None),
            Failure::HangList => (FailureMode::HangList, None),
            Failure::GoneOnWatch => (FailureMode::Gone, None),
            Failure::ForbidWatch => (FailureMode::ForbidWatch, None),
        };
        Self { mode, status }
    }
}

pub async fn put_failure(State(state): State<AppState>, body: Bytes) -> Response {
    let spec: FailureSpec = match serde_json::from_slice(&body) {
        Ok(spec) => spec,
        Err(err) => {
            return error_response(
                400,
                &format!(
                    "expected {{\"mode\":\"none|error|hang|close|hang-list|gone|forbid-watch\",\"status\":N}}: {err}"
                ),
            );
        }
    };
    match spec.to_failure() {
        Ok(failure) => {
            state.set_failure(failure);
            Json(FailureSpec::from_failure(state.failure())).into_response()
        }
        Err(message) => error_response(400, &message),
    }
}

pub async fn get_failure(State(state): State<AppState>) -> Response {
    Json(FailureSpec::from_failure(state.failure())).into_response()
}

/// Request counts, as `{"list":N,"watch":N,"nodeList":N,"nodeWatch":N,
/// "tokenReviews":N,"discovery":N,"jwks":N,"leases":N,"configMaps":N,
/// "events":N,"nodeStatus":N,"total":N}`. `list` and `watch` count pod
/// requests; `leases`, `configMaps`, `events` and `nodeStatus` count every
/// verb. The other per-route counters are left out while they are 0, so
/// the body stays `{"list":N,"watch":N,"total":N}` for clients that use
/// only pods; a missing field reads as 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestCounts {
    pub list: u64,
    pub watch: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub node_list: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub node_watch: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub token_reviews: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub discovery: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub jwks: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub leases: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub config_maps: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub events: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub node_status: u64,
    pub total: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RequestCounts {
    pub(crate) fn of(c: &crate::state::Counters) -> Self {
        Self {
            list: c.list(),
            watch: c.watch(),
            node_list: c.node_list(),
            node_watch: c.node_watch(),
            token_reviews: c.token_reviews(),
            discovery: c.discovery(),
            jwks: c.jwks(),
            leases: c.leases(),
            config_maps: c.config_maps(),
            events: c.events(),
            node_status: c.node_status(),
            total: c.total(),
        }
    }
}

pub async fn requests(State(state): State<AppState>) -> Response {
    Json(RequestCounts::of(&state.counters)).into_response()
}

pub async fn close_watches(State(state): State<AppState>) -> StatusCode {
    state.close_all_watches();
    StatusCode::NO_CONTENT
}

pub async fn compact(State(state): State<AppState>) -> StatusCode {
    state.compact();
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<Failure, String> {
        serde_json::from_str::<FailureSpec>(json)
            .map_err(|e| e.to_string())?
            .to_failure()
    }

    #[test]
    fn request_counts_show_per_route_counters_once_used() {
        let pods_only = RequestCounts {
            list: 2,
            total: 2,
            ..RequestCounts::default()
        };
        assert_eq!(
            serde_json::to_value(pods_only).unwrap(),
            serde_json::json!({"list": 2, "watch": 0, "total": 2})
        );
        let all = RequestCounts {
            node_list: 1,
            node_watch: 2,
            token_reviews: 3,
            discovery: 4,
            jwks: 5,
            ..pods_only
        };
        let json = serde_json::to_value(all).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"list": 2, "watch": 0, "nodeList": 1, "nodeWatch": 2,
                "tokenReviews": 3, "discovery": 4, "jwks": 5, "total": 2})
        );
        assert_eq!(serde_json::from_value::<RequestCounts>(json).unwrap(), all);
        let old: RequestCounts = serde_json::from_str(r#"{"list":1,"watch":1,"total":2}"#).unwrap();
        assert_eq!(old.token_reviews, 0);
    }

    #[test]
    fn failure_specs() {
        assert_eq!(spec(r#"{"mode":"none"}"#), Ok(Failure::None));
        assert_eq!(spec(r#"{"mode":"error"}"#), Ok(Failure::Error(503)));
        assert_eq!(
            spec(r#"{"mode":"error","status":500}"#),
            Ok(Failure::Error(500))
        );
        assert_eq!(spec(r#"{"mode":"hang"}"#), Ok(Failure::Hang));
        assert_eq!(spec(r#"{"mode":"close"}"#), Ok(Failure::CloseWatches));
        assert_eq!(spec(r#"{"mode":"hang-list"}"#), Ok(Failure::HangList));
        assert_eq!(spec(r#"{"mode":"gone"}"#), Ok(Failure::GoneOnWatch));
        assert!(spec(r#"{"mode":"gone","status":410}"#).is_err());
        assert_eq!(spec(r#"{"mode":"forbid-watch"}"#), Ok(Failure::ForbidWatch));
        assert!(spec(r#"{"mode":"error","status":200}"#).is_err());
        assert!(spec(r#"{"mode":"hang","status":503}"#).is_err());
        assert!(spec(r#"{"mode":"explode"}"#).is_err());
        assert!(spec(r#"{"mode":"none","extra":1}"#).is_err());
    }
}
