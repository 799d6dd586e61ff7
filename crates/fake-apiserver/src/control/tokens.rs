//! Control routes for the token issuer: mint tokens, rotate, publish and
//! retire keys, and read or change the issuer URL.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::issuer::mint::{MintError, TokenRequest, mint};
use crate::issuer::{KeyInfo, RotateError};
use crate::state::AppState;
use crate::status::error_response;

/// `POST /fake/tokens`: body a [`TokenRequest`]; answers a
/// [`crate::MintedToken`] (`{"token","kid","claims"}`).
pub async fn mint_token(State(state): State<AppState>, body: Bytes) -> Response {
    let request: TokenRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return error_response(
                400,
                &format!("expected {{\"namespace\":..,\"pod\":..,...}}: {err}"),
            );
        }
    };
    match mint(&state, &request) {
        Ok(minted) => Json(minted).into_response(),
        Err(err @ MintError::NoSuchPod { .. }) => error_response(404, &err.to_string()),
        Err(err @ MintError::UnknownKey(_)) => error_response(400, &err.to_string()),
        Err(err) => error_response(500, &err.to_string()),
    }
}

/// The issuer as the control API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuerInfo {
    pub issuer: String,
    pub jwks_uri: String,
    pub keys: Vec<KeyInfo>,
}

fn issuer_info(state: &AppState) -> IssuerInfo {
    IssuerInfo {
        issuer: state.issuer.issuer(),
        jwks_uri: state.issuer.jwks_uri(None),
        keys: state.issuer.keys(),
    }
}

/// `GET /fake/issuer`
pub async fn get_issuer(State(state): State<AppState>) -> Response {
    Json(issuer_info(&state)).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IssuerChange {
    issuer: Option<String>,
    /// A string sets it; `null` derives it from the client's address again.
    #[serde(default, with = "serde_with_null")]
    jwks_uri: Option<Option<String>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod serde_with_null {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// `PUT /fake/issuer`: `{"issuer":"https://...","jwksUri":"https://..."|null}`
/// (either field optional).
pub async fn put_issuer(State(state): State<AppState>, body: Bytes) -> Response {
    let change: IssuerChange = match serde_json::from_slice(&body) {
        Ok(change) => change,
        Err(err) => {
            return error_response(
                400,
                &format!("expected {{\"issuer\":..,\"jwksUri\":..}}: {err}"),
            );
        }
    };
    if let Some(issuer) = &change.issuer {
        state.issuer.set_issuer(issuer);
    }
    if let Some(uri) = &change.jwks_uri {
        state.issuer.set_jwks_uri(uri.as_deref());
    }
    Json(issuer_info(&state)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    #[serde(default = "yes")]
    publish: bool,
}

fn yes() -> bool {
    true
}

fn rotate_error(err: &RotateError) -> Response {
    let code = match err {
        RotateError::UnknownKid(_) => 404,
        RotateError::Key(_) => 400,
        RotateError::NoMoreKeys | RotateError::Duplicate(_) | RotateError::StillSigning(_) => 409,
    };
    error_response(code, &err.to_string())
}

/// `POST /fake/keys/rotate`: body `{"publish":false}` or empty (publish at
/// once); answers `{"kid":...}`.
pub async fn rotate_key(State(state): State<AppState>, body: Bytes) -> Response {
    let rotate = if body.is_empty() {
        Rotate { publish: true }
    } else {
        match serde_json::from_slice(&body) {
            Ok(rotate) => rotate,
            Err(err) => {
                return error_response(400, &format!("expected {{\"publish\":bool}}: {err}"));
            }
        }
    };
    match state.issuer.rotate(rotate.publish) {
        Ok(kid) => Json(serde_json::json!({ "kid": kid })).into_response(),
        Err(err) => rotate_error(&err),
    }
}

/// `POST /fake/keys/publish`: serve every key in the JWKS.
pub async fn publish_keys(State(state): State<AppState>) -> StatusCode {
    state.issuer.publish_all();
    StatusCode::NO_CONTENT
}

/// `DELETE /fake/keys/{kid}`: stop trusting and publishing an older key.
pub async fn retire_key(State(state): State<AppState>, Path(kid): Path<String>) -> Response {
    match state.issuer.retire(&kid) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => rotate_error(&err),
    }
}
