//! Control routes under `/fake/`, for harnesses that drive the fake from
//! outside the process (the binary in end-to-end scenarios):
//!
//! - `GET /fake/pods`: the stored pods as a JSON array
//! - `POST /fake/pods`: body a Pod; add or replace it
//! - `DELETE /fake/pods/{namespace}/{name}`
//! - `PUT /fake/failure`: body
//!   `{"mode":"none|error|hang|close|hang-list|gone","status":503}`
//!   (`status` only for `error`, default 503); `GET /fake/failure`
//! - `POST /fake/close-watches`: end every open watch, keeping the mode
//! - `GET /fake/requests`: `{"list":N,"watch":N,"total":N}`
//! - `POST /fake/compact`: forget the watch history (resuming watches get 410)
//!
//! These requests are not counted in the API request counters.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

use crate::state::{AppState, Failure};
use crate::status::error_response;

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
        };
        Self { mode, status }
    }
}

pub async fn list_pods(State(state): State<AppState>) -> Response {
    Json(state.store.snapshot().0).into_response()
}

pub async fn put_pod(State(state): State<AppState>, body: Bytes) -> Response {
    let pod: Pod = match serde_json::from_slice(&body) {
        Ok(pod) => pod,
        Err(err) => return error_response(400, &format!("body is not a Pod: {err}")),
    };
    match state.store.upsert(pod) {
        Ok(stored) => Json(stored).into_response(),
        Err(err) => error_response(422, &err.to_string()),
    }
}

pub async fn delete_pod(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    match state.store.delete(&namespace, &name) {
        Some(pod) => Json(pod).into_response(),
        None => error_response(
            404,
            &format!("pods \"{name}\" not found in \"{namespace}\""),
        ),
    }
}

pub async fn put_failure(State(state): State<AppState>, body: Bytes) -> Response {
    let spec: FailureSpec = match serde_json::from_slice(&body) {
        Ok(spec) => spec,
        Err(err) => {
            return error_response(
                400,
                &format!(
                    "expected {{\"mode\":\"none|error|hang|close|hang-list|gone\",\"status\":N}}: {err}"
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

/// Request counts, as `{"list":N,"watch":N,"total":N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    pub list: u64,
    pub watch: u64,
    pub total: u64,
}

pub async fn requests(State(state): State<AppState>) -> Response {
    let c = &state.counters;
    Json(RequestCounts {
        list: c.list(),
        watch: c.watch(),
        total: c.total(),
    })
    .into_response()
}

pub async fn close_watches(State(state): State<AppState>) -> StatusCode {
    state.close_all_watches();
    StatusCode::NO_CONTENT
}

pub async fn compact(State(state): State<AppState>) -> StatusCode {
    state.store.compact();
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
        assert!(spec(r#"{"mode":"error","status":200}"#).is_err());
        assert!(spec(r#"{"mode":"hang","status":503}"#).is_err());
        assert!(spec(r#"{"mode":"explode"}"#).is_err());
        assert!(spec(r#"{"mode":"none","extra":1}"#).is_err());
    }
}
