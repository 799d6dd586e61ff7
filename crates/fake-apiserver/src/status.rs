//! Kubernetes `Status` objects: the JSON body of every error the API
//! returns, and the `object` of a watch `ERROR` event.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The `reason` the real API server gives for a status code.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        400..=499 => "BadRequest",
        _ => "InternalError",
    }
}

/// A failure `Status` object.
pub fn status_object(code: u16, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason_for(code),
        "code": code,
    })
}

/// An HTTP error response carrying a `Status` body. Codes that are not
/// errors (outside 400..=599) are answered as 500.
pub fn error_response(code: u16, message: &str) -> Response {
    let code = if (400..=599).contains(&code) {
        code
    } else {
        500
    };
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(status_object(code, message))).into_response()
}

/// An API error as a value: handlers return it and it answers with a
/// `Status` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.code, &self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_has_the_kubernetes_shape() {
        let s = status_object(410, "too old resource version: 1 (5)");
        assert_eq!(s["kind"], "Status");
        assert_eq!(s["code"], 410);
        assert_eq!(s["reason"], "Expired");
        assert_eq!(s["status"], "Failure");
    }

    #[test]
    fn non_error_codes_become_500() {
        assert_eq!(error_response(200, "x").status(), 500);
        assert_eq!(error_response(1000, "x").status(), 500);
        assert_eq!(error_response(503, "x").status(), 503);
    }
}
