//! The HTTP API: the original's routes, unchanged on the wire, plus health
//! endpoints. Handlers are thin; the decisions live in [`crate::app`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use netchecker_wire::{CheckResponse, NO_SUCH_AGENT};
use tokio::time::Instant;
use tower_http::trace::TraceLayer;

use crate::app::App;
use crate::ingest::IngestError;
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
            IngestError::UnknownAgent { .. } => StatusCode::NOT_FOUND,
        };
        ApiError::new(status, e.to_string())
    }
}

/// A route: its path (axum syntax, the same as OpenAPI's) and methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    pub path: &'static str,
    pub methods: &'static [&'static str],
}

const fn route(path: &'static str, methods: &'static [&'static str]) -> RouteSpec {
    RouteSpec { path, methods }
}

/// Every route the server answers. The router is built from this table,
/// and a test holds `doc/openapi.json` to it.
pub const ROUTES: &[RouteSpec] = &[
    route("/", &["GET"]),
    route("/api/v1/agents/{pod}", &["GET", "POST", "DELETE"]),
    route("/api/v1/agents/", &["GET"]),
    route("/api/v1/agents", &["GET"]),
    route("/api/v1/connectivity_check", &["GET"]),
    route("/api/v1/ping", &["GET"]),
    route("/api/v2/status", &["GET"]),
    route("/openapi.json", &["GET"]),
    route("/metrics", &["GET"]),
    route("/healthz", &["GET"]),
    route("/readyz", &["GET"]),
];

/// Routes polled by probes: kept out of the request log.
const QUIET: &[&str] = &["/healthz", "/readyz"];

/// The handlers of a route of [`ROUTES`].
fn handlers(path: &str) -> MethodRouter<App> {
    match path {
        "/" => get(status_page),
        "/api/v1/agents/{pod}" => get(get_agent).post(post_agent).delete(delete_agent),
        "/api/v1/agents/" | "/api/v1/agents" => get(list_agents),
        "/api/v1/connectivity_check" => get(connectivity_check),
        "/api/v1/ping" => get(ping),
        "/api/v2/status" => get(status),
        "/openapi.json" => get(openapi),
        "/metrics" => get(metrics),
        "/healthz" => get(healthz),
        "/readyz" => get(readyz),
        other => unreachable!("route {other} has no handlers"),
    }
}

/// Every route, with the body limit and request timeout of `app`'s settings.
pub fn router(app: App) -> Router {
    let limit = app.settings().max_report_bytes;
    let (quiet, logged): (Vec<&RouteSpec>, Vec<&RouteSpec>) =
        ROUTES.iter().partition(|r| QUIET.contains(&r.path));
    let api = logged
        .into_iter()
        .fold(Router::new(), |r, spec| {
            r.route(spec.path, handlers(spec.path))
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(app.clone(), timeout))
        .layer(TraceLayer::new_for_http());
    // Health routes sit outside the trace layer: probes every few seconds
    // would otherwise flood the log.
    quiet
        .into_iter()
        .fold(Router::new(), |r, spec| {
            r.route(spec.path, handlers(spec.path))
        })
        .merge(api)
        .fallback(not_found)
        .with_state(app)
}

/// Bound every request, body included, by the configured timeout, so slow
/// or stalled clients cannot hold a connection and a task forever.
async fn timeout(State(app): State<App>, req: Request, next: Next) -> Response {
    let is_report = req.method() == Method::POST;
    if is_report
        && declared_length(&req).is_some_and(|n| n > app.settings().max_report_bytes as u64)
    {
        // Refused before waiting for a body that may never come.
        app.metrics().report_rejected(Rejection::TooLarge);
        return too_large(&app).into_response();
    }
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

/// The request's `Content-Length`, when it has a valid one.
fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn too_large(app: &App) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "report body exceeds {} bytes (--max-report-bytes)",
            app.settings().max_report_bytes
        ),
    )
}

async fn post_agent(
    State(app): State<App>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            app.metrics().report_rejected(Rejection::TooLarge);
            too_large(&app)
        } else {
            ApiError::new(
                rejection.status(),
                format!("cannot read report body: {rejection}"),
            )
        }
    })?;
    app.ingest(&name, &body, Instant::now())
        .map_err(ApiError::from)?;
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

/// Headers that tell how current the pod view behind an answer is,
/// without changing the v1 body: `Netchecker-Pod-View` is `current`,
/// `stale` (answering from the last known pods) or `not-synced`, and
/// `Netchecker-Pod-View-Age` the seconds since the API last answered.
fn pod_view_headers(app: &App, now: Instant) -> [(&'static str, String); 2] {
    let h = app.pods().health(now);
    let state = match (h.synced, h.stale) {
        (false, _) => "not-synced",
        (true, true) => "stale",
        (true, false) => "current",
    };
    [
        ("netchecker-pod-view", state.to_owned()),
        ("netchecker-pod-view-age", format!("{:.0}", h.age_seconds)),
    ]
}

async fn connectivity_check(State(app): State<App>) -> Response {
    let now = Instant::now();
    let headers = pod_view_headers(&app, now);
    match app.check(now) {
        Ok(answer) => {
            let status = if answer.is_healthy() {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            (status, headers, axum::Json(answer)).into_response()
        }
        Err(e) => {
            let body = CheckResponse {
                message: e.to_string(),
                absent: Vec::new(),
                outdated: Vec::new(),
            };
            (StatusCode::SERVICE_UNAVAILABLE, headers, axum::Json(body)).into_response()
        }
    }
}

async fn status(State(app): State<App>) -> Response {
    let now = Instant::now();
    let headers = pod_view_headers(&app, now);
    match app.status(now) {
        Ok(status) => (headers, axum::Json(status)).into_response(),
        Err(e) => (
            headers,
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        )
            .into_response(),
    }
}

/// The status page: one self-contained HTML file over `/api/v2/status`.
const STATUS_PAGE: &str = include_str!("../assets/status.html");

/// Only the page's own inline script and style may run, and it may only
/// fetch from this server.
const STATUS_PAGE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn status_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, STATUS_PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STATUS_PAGE,
    )
        .into_response()
}

/// The OpenAPI description of every route in [`ROUTES`].
pub const OPENAPI: &str = include_str!("../../../doc/openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
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
