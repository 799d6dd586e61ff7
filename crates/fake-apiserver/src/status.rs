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

/// The `details` of a `Status` about one object, as the real API gives
/// them: its name, API group and resource (plural, as `kind`).
pub fn details(name: &str, group: &str, resource: &str) -> Value {
    json!({ "name": name, "group": group, "kind": resource })
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
    /// The `reason` when it is not the usual one for the code (a `409` is
    /// `Conflict` unless this says `AlreadyExists`).
    pub reason: Option<&'static str>,
    /// The `details` of the `Status` (see [`details`]).
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: None,
            details: None,
        }
    }

    /// The same error with this `reason`.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// The same error with these `details`.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = error_response(self.code, &self.message);
        if self.reason.is_none() && self.details.is_none() {
            return response;
        }
        let mut body = status_object(response.status().as_u16(), &self.message);
        if let Some(reason) = self.reason {
            body["reason"] = json!(reason);
        }
        if let Some(details) = self.details {
            body["details"] = details;
        }
        *response.body_mut() = axum::body::Body::from(body.to_string());
        response
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

    #[tokio::test]
    async fn reasons_and_details_reach_the_body() {
        let error = ApiError::new(409, "leases \"l\" already exists")
            .with_reason("AlreadyExists")
            .with_details(details("l", "coordination.k8s.io", "leases"));
        let response = error.into_response();
        assert_eq!(response.status(), 409);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["reason"], "AlreadyExists");
        assert_eq!(body["code"], 409);
        assert_eq!(body["details"]["kind"], "leases");
    }

    #[test]
    fn non_error_codes_become_500() {
        assert_eq!(error_response(200, "x").status(), 500);
        assert_eq!(error_response(1000, "x").status(), 500);
        assert_eq!(error_response(503, "x").status(), 503);
    }
}
