//! The routes of the kinds a highly available server writes: Leases
//! (`coordination.k8s.io/v1`), ConfigMaps, Events (core v1 and
//! `events.k8s.io/v1`) and the node `status` subresource.
//!
//! Each namespaced kind has the collection route (`GET`: LIST, or WATCH
//! with `watch=true`; `POST`: create) in a namespace, the object route
//! (`GET`, `PUT`, `PATCH`, `DELETE`), and the cluster-wide LIST.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node};

use crate::api::collection;
use crate::api::events::{CoreEvents, EventsV1, list_v1_all, list_v1_in};
use crate::api::view::{Same, View};
use crate::api::{item, update};
use crate::state::{AppState, Served};

async fn list_all<T: Served>(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    collection::serve::<T>(state, None, params).await
}

async fn list_in<T: Served>(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    collection::serve::<T>(state, Some(namespace), params).await
}

/// `GET`, `PUT`, `PATCH`, `DELETE` of one object.
fn object<V: View>() -> MethodRouter<AppState> {
    get(item::get::<V>)
        .put(update::replace::<V>)
        .patch(update::patch::<V>)
        .delete(item::delete::<V>)
}

/// The collection (LIST, WATCH, create) and object routes of a namespaced
/// kind under `prefix` (`/api/v1` or `/apis/GROUP/VERSION`).
fn namespaced<V: View>(
    router: Router<AppState>,
    prefix: &str,
    list: MethodRouter<AppState>,
) -> Router<AppState> {
    let resource = V::RESOURCE;
    router
        .route(
            &format!("{prefix}/namespaces/{{namespace}}/{resource}"),
            list.post(item::create::<V>),
        )
        .route(
            &format!("{prefix}/namespaces/{{namespace}}/{resource}/{{name}}"),
            object::<V>(),
        )
}

/// The routes of this module.
pub(crate) fn routes() -> Router<AppState> {
    let router = Router::new()
        .route(
            "/apis/coordination.k8s.io/v1/leases",
            get(list_all::<Lease>),
        )
        .route("/api/v1/configmaps", get(list_all::<ConfigMap>))
        .route("/api/v1/events", get(list_all::<Event>))
        .route("/apis/events.k8s.io/v1/events", get(list_v1_all))
        .route(
            "/api/v1/nodes/{name}/status",
            get(item::get_status::<Same<Node>>)
                .put(update::replace_status::<Same<Node>>)
                .patch(update::patch_status::<Same<Node>>),
        );
    let router = namespaced::<Same<Lease>>(
        router,
        "/apis/coordination.k8s.io/v1",
        get(list_in::<Lease>),
    );
    let router = namespaced::<Same<ConfigMap>>(router, "/api/v1", get(list_in::<ConfigMap>));
    let router = namespaced::<CoreEvents>(router, "/api/v1", get(list_in::<Event>));
    namespaced::<EventsV1>(router, "/apis/events.k8s.io/v1", get(list_v1_in))
}
