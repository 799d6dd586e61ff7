//! The Kubernetes API surface: pod LIST and WATCH, cluster-wide and per
//! namespace, with the query parameters kube-runtime's watcher sends, plus
//! `Status` answers for unknown paths and methods.
//!
//! LIST returns matching pods in pages of `limit` with a `continue` token, with
//! the store's current resourceVersion. WATCH (`watch=true`) streams
//! newline-delimited JSON events; see [`crate::watch`].

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use crate::selector::{FieldSelector, LabelSelector};
use crate::state::{AppState, Counters, Failure};
use crate::status::{ApiError, error_response};
use crate::watch::{WatchOptions, WatchStart};

/// The real API server's default when a watch gives no `timeoutSeconds`
/// (the low end of its randomised 30 to 60 minute window).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// Which pods a request selects.
#[derive(Debug, Clone, Default)]
pub struct PodFilter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl PodFilter {
    pub fn matches(&self, pod: &Pod) -> bool {
        let in_namespace = match &self.namespace {
            Some(ns) => pod.metadata.namespace.as_deref() == Some(ns.as_str()),
            None => true,
        };
        in_namespace && self.labels.matches_pod(pod) && self.fields.matches_pod(pod)
    }
}

/// The query parameters of a pod LIST or WATCH. Parsed from raw pairs so
/// unknown or repeated parameters never make a request fail (last wins).
#[derive(Debug, Default)]
struct PodQuery {
    watch: bool,
    label_selector: Option<String>,
    field_selector: Option<String>,
    resource_version: Option<String>,
    resource_version_match: Option<String>,
    timeout_seconds: Option<String>,
    allow_watch_bookmarks: bool,
    send_initial_events: Option<bool>,
    limit: Option<String>,
    continue_token: Option<String>,
}

fn truthy(value: &str) -> bool {
    matches!(value, "true" | "1" | "True" | "TRUE")
}

impl PodQuery {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut q = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "watch" => q.watch = truthy(&value),
                "labelSelector" => q.label_selector = Some(value),
                "fieldSelector" => q.field_selector = Some(value),
                "resourceVersion" => q.resource_version = Some(value),
                "resourceVersionMatch" => q.resource_version_match = Some(value),
                "timeoutSeconds" => q.timeout_seconds = Some(value),
                "allowWatchBookmarks" => q.allow_watch_bookmarks = truthy(&value),
                "sendInitialEvents" => q.send_initial_events = Some(truthy(&value)),
                "limit" => q.limit = Some(value),
                "continue" => q.continue_token = Some(value),
                // pretty, ...: ignored.
                _ => {}
            }
        }
        q
    }

    /// `resourceVersion` as a number; `None` when absent or empty.
    fn resource_version(&self) -> Result<Option<u64>, ApiError> {
        match self.resource_version.as_deref() {
            None | Some("") => Ok(None),
            Some(rv) => rv
                .parse()
                .map(Some)
                .map_err(|_| ApiError::new(400, format!("invalid resource version {rv:?}"))),
        }
    }

    fn watch_options(&self) -> Result<WatchOptions, ApiError> {
        let rv = self.resource_version()?;
        let send_initial_events = self.send_initial_events == Some(true);
        if send_initial_events && self.resource_version_match.as_deref() != Some("NotOlderThan") {
            return Err(ApiError::new(
                422,
                "sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan",
            ));
        }
        // Without an explicit choice, a watch from "no version" or "any
        // version" (0) starts with synthetic ADDED events for every pod,
        // as the real API does.
        let initial = self
            .send_initial_events
            .unwrap_or(matches!(rv, None | Some(0)));
        let start = if initial {
            WatchStart::InitialEvents {
                end_bookmark: send_initial_events,
            }
        } else {
            WatchStart::After(rv.unwrap_or(0))
        };
        let timeout = match self.timeout_seconds.as_deref().map(str::parse::<u64>) {
            None | Some(Ok(0)) => DEFAULT_WATCH_TIMEOUT,
            Some(Ok(secs)) => Duration::from_secs(secs),
            Some(Err(_)) => {
                return Err(ApiError::new(400, "timeoutSeconds must be a number"));
            }
        };
        Ok(WatchOptions {
            start,
            timeout,
            bookmarks: self.allow_watch_bookmarks,
        })
    }
}

/// `GET /api/v1/pods`
pub async fn all_pods(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    pods(state, None, params).await
}

/// `GET /api/v1/namespaces/{namespace}/pods`
pub async fn namespaced_pods(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    pods(state, Some(namespace), params).await
}

async fn pods(
    state: AppState,
    namespace: Option<String>,
    params: Vec<(String, String)>,
) -> Response {
    let query = PodQuery::from_pairs(params);
    Counters::bump(if query.watch {
        &state.counters.watch
    } else {
        &state.counters.list
    });
    // Decide on the failure mode after marking closes as seen: a mode set
    // later bumps the close signal and so still ends a watch opened here.
    let mut close = state.close_signal();
    loop {
        close.borrow_and_update();
        match state.failure() {
            Failure::Hang => {
                if state.wait_unless_hanging(!query.watch).await.is_none() {
                    return error_response(503, "the server is shutting down");
                }
            }
            Failure::HangList if !query.watch => {
                if state.wait_unless_hanging(true).await.is_none() {
                    return error_response(503, "the server is shutting down");
                }
            }
            Failure::GoneOnWatch if query.watch => return crate::watch::gone(),
            Failure::Error(code) => return error_response(code, "injected failure"),
            Failure::None | Failure::CloseWatches | Failure::HangList | Failure::GoneOnWatch => {
                break;
            }
        }
    }

    let labels = match LabelSelector::parse(query.label_selector.as_deref().unwrap_or("")) {
        Ok(labels) => labels,
        Err(err) => return error_response(400, &err.to_string()),
    };
    let fields = FieldSelector::parse_lenient(query.field_selector.as_deref().unwrap_or(""));
    let filter = PodFilter {
        namespace,
        labels,
        fields,
    };

    if query.watch {
        match query.watch_options() {
            Ok(options) => crate::watch::respond(state, filter, options, close),
            Err(err) => err.into_response(),
        }
    } else {
        if let Err(err) = query.resource_version() {
            return err.into_response();
        }
        match Page::of(&query) {
            Ok(page) => list(&state, &filter, page),
            Err(err) => err.into_response(),
        }
    }
}

/// Which part of a LIST to answer: as the real API, `limit` pods per page
/// and a `continue` token for the rest (here `<resourceVersion>:<offset>`:
/// the pages after the first keep the first page's version).
#[derive(Debug, Clone, Copy, Default)]
struct Page {
    limit: Option<usize>,
    offset: usize,
    resource_version: Option<u64>,
}

impl Page {
    fn of(query: &PodQuery) -> Result<Self, ApiError> {
        let limit = match query.limit.as_deref() {
            None | Some("") | Some("0") => None,
            Some(n) => Some(
                n.parse::<usize>()
                    .map_err(|_| ApiError::new(400, format!("invalid limit {n:?}")))?,
            ),
        };
        let (resource_version, offset) = match query.continue_token.as_deref() {
            None | Some("") => (None, 0),
            Some(token) => {
                let parsed = token
                    .split_once(':')
                    .and_then(|(rv, off)| Some((rv.parse().ok()?, off.parse().ok()?)));
                match parsed {
                    Some((rv, off)) => (Some(rv), off),
                    None => {
                        return Err(ApiError::new(
                            400,
                            format!("invalid continue token {token:?}"),
                        ));
                    }
                }
            }
        };
        Ok(Self {
            limit,
            offset,
            resource_version,
        })
    }
}

fn list(state: &AppState, filter: &PodFilter, page: Page) -> Response {
    let (pods, current) = state.store.snapshot();
    let resource_version = page.resource_version.unwrap_or(current);
    let matching = pods.into_iter().filter(|p| filter.matches(p));
    let mut items: Vec<Pod> = matching.skip(page.offset).collect();
    let mut metadata = json!({ "resourceVersion": resource_version.to_string() });
    if let Some(limit) = page.limit
        && items.len() > limit
    {
        items.truncate(limit);
        metadata["continue"] = json!(format!("{resource_version}:{}", page.offset + limit));
    }
    Json(json!({
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": metadata,
        "items": items,
    }))
    .into_response()
}

/// Any path this server does not serve.
pub async fn not_found() -> Response {
    error_response(404, "the server could not find the requested resource")
}

/// A known path with a method it does not serve.
pub async fn method_not_allowed() -> Response {
    error_response(
        405,
        "the server does not allow this method on the requested resource",
    )
}

/// Counts every request to the API surface; control routes are not counted,
/// so tests can tell requests of the code under test from their own.
pub async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !request.uri().path().starts_with("/fake/") {
        Counters::bump(&state.counters.total);
    }
    next.run(request).await
}
