//! The Kubernetes API surface: pod and node LIST and WATCH (see
//! [`collection`](crate::api::collection)), the service-account issuer's discovery document and
//! keys (see [`oidc`](crate::api::oidc)), TokenReview (see [`tokenreview`](crate::api::tokenreview)), plus `Status`
//! answers for unknown paths and methods, and the failure gate every API
//! request passes (see [`gate`](crate::api::gate)). For a highly available
//! server: Leases, ConfigMaps, Events and node status writes (see
//! [`routes`](crate::api::routes), [`item`](crate::api::item) and
//! [`events`](crate::api::events)).

/// LIST and WATCH of any stored kind.
pub mod collection;
/// Events through the core v1 and the `events.k8s.io/v1` API.
pub mod events;
/// The failure modes applied to API requests.
pub mod gate;
/// GET, create, replace, PATCH and DELETE of one object.
pub mod item;
/// `/.well-known/openid-configuration` and `/openid/v1/jwks`.
pub mod oidc;
/// The query parameters of LIST and WATCH.
pub(crate) mod query;
/// The routes of Leases, ConfigMaps, Events and node status.
pub mod routes;
/// `POST /apis/authentication.k8s.io/v1/tokenreviews`.
pub mod tokenreview;
/// Replace and PATCH of one object.
pub mod update;
/// How a stored kind appears on the wire; errors about one object.
pub(crate) mod view;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::object::Object;
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::{AppState, Counters};
use crate::status::error_response;

/// Which objects a request selects.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only objects in this namespace (for a namespaced LIST or WATCH).
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

/// The filter of a pod request (the name from before nodes were served).
pub type PodFilter = Filter;

impl Filter {
    /// Whether the object is in the namespace and matches both selectors.
    pub fn matches<T: Object>(&self, object: &T) -> bool {
        let in_namespace = match &self.namespace {
            Some(ns) => object.metadata().namespace.as_deref() == Some(ns.as_str()),
            None => true,
        };
        in_namespace && self.labels.matches_object(object) && self.fields.matches(object)
    }
}

/// `GET /api/v1/pods`
pub async fn all_pods(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    collection::serve::<Pod>(state, None, params).await
}

/// `GET /api/v1/namespaces/{namespace}/pods`
pub async fn namespaced_pods(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    collection::serve::<Pod>(state, Some(namespace), params).await
}

/// `GET /api/v1/nodes`
pub async fn nodes(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    collection::serve::<Node>(state, None, params).await
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
