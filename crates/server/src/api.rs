//! The HTTP API: the original's routes, unchanged on the wire, plus health
//! endpoints. Handlers are thin; the decisions live in [`crate::app`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use netchecker_wire::{CheckResponse, NO_SUCH_AGENT};
use tokio::time::Instant;
use tower_http::trace::TraceLayer;

use crate::app::{App, IngestError};
use crate::metrics::Rejection;

/// An error answer: a status and a plain-text reason, written like Go's
/// `http.Error` (text and a newline) as the original server did.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = format!("{}\n", self.message);
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        let status = match e {
            IngestError::InvalidName { .. }
            | IngestError::InvalidJson(_)
            | IngestError::InvalidReport(_) => StatusCode::BAD_REQUEST,
            IngestError::CacheFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Every route, with the body limit and request timeout of `app`'s settings.
pub fn router(app: App) -> Router {
    let limit = app.settings().max_report_bytes;
    let api = Router::new()
        .route(
            "/api/v1/agents/{name}",
            get(get_agent).post(post_agent).delete(delete_agent),
        )
        .route("/api/v1/agents/", get(list_agents))
        .route("/api/v1/agents", get(list_agents))
        .route("/api/v1/connectivity_check", get(connectivity_check))
        .route("/api/v1/ping", get(ping))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(app.clone(), timeout))
        .layer(TraceLayer::new_for_http());
    // Health routes sit outside the trace layer: probes every few seconds
    // would otherwise flood the log.
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(api)
        .fallback(not_found)
        .with_state(app)
}

/// Bound every request, body included, by the configured timeout, so slow
/// or stalled clients cannot hold a connection and a task forever.
async fn timeout(State(app): State<App>, req: Request, next: Next) -> Response {
    let is_report = req.method() == Method::POST;
    let limit = app.settings().request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            if is_report {
                app.metrics().report_rejected(Rejection::Timeout);
            }
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("request not completed within {limit:?}"),
            )
            .into_response()
        }
    }
}

async fn post_agent(
    State(app): State<App>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            app.metrics().report_rejected(Rejection::TooLarge);
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "report body exceeds {} bytes (--max-report-bytes)",
                    app.settings().max_report_bytes
                ),
            )
        } else {
            ApiError::new(
                rejection.status(),
                format!("cannot read report body: {rejection}"),
            )
        }
    })?;
    app.ingest(&name, &body, Instant::now()).map_err(|e| {
        tracing::warn!(agent = %name, error = %e, "report refused");
        ApiError::from(e)
    })?;
    Ok(StatusCode::OK)
}

async fn get_agent(State(app): State<App>, Path(name): Path<String>) -> Response {
    match app.report(&name) {
        Some(report) => axum::Json(report).into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, NO_SUCH_AGENT).into_response(),
    }
}

async fn delete_agent(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if app.pods().is_kube() {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "agents are forgotten when their pod is deleted from Kubernetes; DELETE is available only with --kube=false",
        ));
    }
    if app.forget(&name) {
        tracing::info!(agent = %name, "agent forgotten on request");
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, NO_SUCH_AGENT))
    }
}

async fn list_agents(State(app): State<App>) -> Response {
    axum::Json(app.cache().all()).into_response()
}

async fn connectivity_check(State(app): State<App>) -> Response {
    match app.check(Instant::now()) {
        Ok(answer) => {
            let status = if answer.is_healthy() {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            (status, axum::Json(answer)).into_response()
        }
        Err(e) => {
            let body = CheckResponse {
                message: e.to_string(),
                absent: Vec::new(),
                outdated: Vec::new(),
            };
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

async fn ping() -> StatusCode {
    StatusCode::OK
}

async fn metrics(State(app): State<App>) -> Response {
    app.publish_pod_view(Instant::now());
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        app.metrics().render(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<App>) -> Response {
    if app.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: pod view not synced yet, or shutting down",
        )
        .into_response()
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "404 page not found")
}
