//! The HTTP API: the original's routes, unchanged on the wire, plus health
//! endpoints. Handlers are thin; the decisions live in [`crate::app`].

use std::net::SocketAddr;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use netchecker_wire::mesh::{MESH_HEADER, MESH_VERSION};
use netchecker_wire::{CheckResponse, IpFamily, NO_SUCH_AGENT};
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
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: say which scheme is wanted.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"netchecker\""),
            );
        }
        response
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
            IngestError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            IngestError::Forbidden(_) => StatusCode::FORBIDDEN,
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
        .layer(TraceLayer::new_for_http().on_failure(RatedFailureLog(app.clone())));
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

/// Failed answers (5xx) are logged through the same rate limit as refused
/// reports: a flood of failing requests cannot become a flood of lines.
#[derive(Clone)]
struct RatedFailureLog(App);

impl tower_http::trace::OnFailure<tower_http::classify::ServerErrorsFailureClass>
    for RatedFailureLog
{
    fn on_failure(
        &mut self,
        class: tower_http::classify::ServerErrorsFailureClass,
        latency: std::time::Duration,
        _span: &tracing::Span,
    ) {
        if let Some(suppressed) = self.0.refusal_log().allow(Instant::now()) {
            tracing::error!(classification = %class, latency_ms = latency.as_millis(), suppressed, "request failed");
        }
    }
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
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
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
    let credentials = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let verdict = app.authenticate(&name, credentials).await;
    // Our agents ask for mesh peers with a header; the original's do not,
    // and get the original's empty 200.
    let wants_mesh = headers
        .get(MESH_HEADER)
        .is_some_and(|v| v.as_bytes() == MESH_VERSION.as_bytes());
    // The family the report came over (none in-process without a socket).
    let family = peer.map(|Extension(ConnectInfo(addr))| IpFamily::of(addr.ip()));
    let answer = app
        .ingest_report_over(&name, verdict, &body, Instant::now(), wants_mesh, family)
        .map_err(ApiError::from)?;
    Ok(match answer {
        Some(mesh) => axum::Json(mesh).into_response(),
        None => StatusCode::OK.into_response(),
    })
}

/// With `--read-token-file`, the read and admin routes want its token as
/// `Authorization: Bearer ...`.
fn authorize_read(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &app.settings().read_token else {
        return Ok(());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| crate::auth::bearer(v.as_bytes()));
    match presented {
        Some(token) if crate::auth::same_secret(token, &expected.current()) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the bearer token is not the read token (--read-token-file)",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this route needs the read token (--read-token-file) as Authorization: Bearer",
        )),
    }
}

async fn get_agent(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorize_read(&app, &headers) {
        return e.into_response();
    }
    let mut body = Vec::new();
    let found = app
        .cache()
        .with_entries(|m| m.get(&name).map(|e| e.write_stored(&mut body)));
    match found {
        Some(()) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, NO_SUCH_AGENT).into_response(),
    }
}

async fn delete_agent(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authorize_read(&app, &headers)?;
    if app.pods().is_kube() {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "agents are forgotten when their pod is deleted from Kubernetes; DELETE is available only with --kube=false",
        ));
    }
    if app.pods().is_named(&name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this agent is named by --expected-agents and is never forgotten; restart the server without it",
        ));
    }
    if app.forget(&name) {
        tracing::info!(agent = ?name, "agent forgotten on request");
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, NO_SUCH_AGENT))
    }
}

/// Bytes per chunk of the agent list (one stored report more at most): what
/// one connection holds while its client reads.
const LIST_PAGE: usize = 32 * 1024;

/// Every stored report, written a page at a time as the client reads: the
/// answer is never held whole (see [`crate::cache::AgentCache::write_page`]).
async fn list_agents(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize_read(&app, &headers) {
        return e.into_response();
    }
    enum Cursor {
        Start,
        After(String),
        Done,
    }
    let pages = futures::stream::unfold(Cursor::Start, move |cursor| {
        let app = app.clone();
        async move {
            let (after, first) = match &cursor {
                Cursor::Start => (None, true),
                Cursor::After(name) => (Some(name.as_str()), false),
                Cursor::Done => return None,
            };
            let mut chunk = Vec::with_capacity(LIST_PAGE + 4096);
            if first {
                chunk.push(b'{');
            }
            let next = match app.cache().write_page(after, LIST_PAGE, first, &mut chunk) {
                Some(last) => Cursor::After(last),
                None => {
                    chunk.push(b'}');
                    Cursor::Done
                }
            };
            Some((Ok::<_, std::convert::Infallible>(Bytes::from(chunk)), next))
        }
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(pages),
    )
        .into_response()
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

async fn status(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize_read(&app, &headers) {
        return e.into_response();
    }
    // One answer at a time, held until it is sent: its size grows with the
    // agents, so a crowd of readers must not multiply it.
    let Some(permit) = app.status_permit(Duration::from_secs(5)).await else {
        return (
            [(header::RETRY_AFTER, "1")],
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "another status answer is being sent; retry",
            ),
        )
            .into_response();
    };
    let now = Instant::now();
    let view = pod_view_headers(&app, now);
    // Judging every agent is work for a blocking thread, not the workers
    // that serve reports and checks.
    let answer = tokio::task::spawn_blocking(move || app.status_json(now)).await;
    match answer {
        Ok(Ok(body)) => {
            let chunk = futures::stream::once(async move {
                Ok::<_, std::convert::Infallible>(Bytes::from(body))
            });
            // The permit goes when the body is dropped: sent, or the
            // client gone.
            let release = futures::stream::poll_fn(move |_| {
                let _held = &permit;
                std::task::Poll::Ready(None)
            });
            let body = axum::body::Body::from_stream(futures::StreamExt::chain(chunk, release));
            (view, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Ok(Err(e)) => (
            view,
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        )
            .into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "status evaluation failed",
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

async fn metrics(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize_read(&app, &headers) {
        return e.into_response();
    }
    app.publish_pod_view(Instant::now());
    match tokio::task::spawn_blocking(move || app.metrics().render()).await {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics rendering failed",
        )
        .into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<App>) -> Response {
    match app.not_ready(Instant::now()) {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}"))
            .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "404 page not found")
}
