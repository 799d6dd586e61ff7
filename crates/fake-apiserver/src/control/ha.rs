//! Control routes for what a highly available server writes, for
//! harnesses outside the process:
//!
//! - `GET /fake/leases`, `POST /fake/leases` (body a Lease; add or replace
//!   unconditionally), `DELETE /fake/leases/{namespace}/{name}`
//! - `POST /fake/leases/{namespace}/{name}/steal`: body `{"holder":"x"}`;
//!   hand the lease to `x` (see [`crate::leases::steal`])
//! - `POST /fake/leases/{namespace}/{name}/expire`: move its renew time
//!   back past its duration (see [`crate::leases::expire`])
//! - `GET /fake/configmaps`, `POST /fake/configmaps`,
//!   `DELETE /fake/configmaps/{namespace}/{name}`
//! - `GET /fake/events`: the stored events as core v1 Events;
//!   `GET /fake/events.k8s.io`: as `events.k8s.io/v1` Events
//! - `GET /fake/nodes/{name}/conditions`; `POST /fake/nodes/{name}/conditions`:
//!   body a NodeCondition, set by its type (watchers see `MODIFIED`)
//! - `GET /fake/faults`, `POST /fake/faults` (body a [`crate::Fault`]),
//!   `DELETE /fake/faults`

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, NodeCondition};
use serde::Deserialize;

use crate::api::events::EventsV1;
use crate::api::view::View;
use crate::control::objects;
use crate::faults::Fault;
use crate::leases;
use crate::nodes::set_condition;
use crate::state::AppState;
use crate::status::error_response;

/// The routes of this module.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/fake/leases",
            get(|State(s): State<AppState>| async move { objects::list::<Lease>(&s) })
                .post(|State(s): State<AppState>, body: Bytes| async move {
                    objects::put::<Lease>(&s, &body)
                }),
        )
        .route("/fake/leases/{namespace}/{name}", delete(delete_lease))
        .route("/fake/leases/{namespace}/{name}/steal", post(steal_lease))
        .route("/fake/leases/{namespace}/{name}/expire", post(expire_lease))
        .route(
            "/fake/configmaps",
            get(|State(s): State<AppState>| async move { objects::list::<ConfigMap>(&s) })
                .post(|State(s): State<AppState>, body: Bytes| async move {
                    objects::put::<ConfigMap>(&s, &body)
                }),
        )
        .route(
            "/fake/configmaps/{namespace}/{name}",
            delete(delete_config_map),
        )
        .route("/fake/events", get(events))
        .route("/fake/events.k8s.io", get(events_v1))
        .route(
            "/fake/nodes/{name}/conditions",
            get(node_conditions).post(set_node_condition),
        )
        .route(
            "/fake/faults",
            get(faults).post(add_fault).delete(clear_faults),
        )
}

async fn delete_lease(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    objects::delete::<Lease>(&state, &namespace, &name)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Steal {
    holder: String,
}

async fn steal_lease(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let steal: Steal = match serde_json::from_slice(&body) {
        Ok(steal) => steal,
        Err(err) => return error_response(400, &format!("expected {{\"holder\":\"...\"}}: {err}")),
    };
    match state.leases.modify(&namespace, &name, |lease| {
        leases::steal(lease, &steal.holder)
    }) {
        Some(lease) => Json(lease).into_response(),
        None => objects::not_found::<Lease>(&namespace, &name),
    }
}

async fn expire_lease(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    match state.leases.modify(&namespace, &name, leases::expire) {
        Some(lease) => Json(lease).into_response(),
        None => objects::not_found::<Lease>(&namespace, &name),
    }
}

async fn delete_config_map(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    objects::delete::<ConfigMap>(&state, &namespace, &name)
}

async fn events(State(state): State<AppState>) -> Response {
    Json(state.events.snapshot().0).into_response()
}

async fn events_v1(State(state): State<AppState>) -> Response {
    let events: Vec<_> = state
        .events
        .snapshot()
        .0
        .iter()
        .map(EventsV1::to_wire)
        .collect();
    Json(events).into_response()
}

async fn node_conditions(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state.nodes.get("", &name) {
        Some(node) => {
            Json(node.status.and_then(|s| s.conditions).unwrap_or_default()).into_response()
        }
        None => objects::not_found::<Node>("", &name),
    }
}

async fn set_node_condition(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let condition: NodeCondition = match serde_json::from_slice(&body) {
        Ok(condition) => condition,
        Err(err) => return error_response(400, &format!("body is not a NodeCondition: {err}")),
    };
    match state
        .nodes
        .modify("", &name, |node| set_condition(node, condition))
    {
        Some(node) => Json(node).into_response(),
        None => objects::not_found::<Node>("", &name),
    }
}

async fn faults(State(state): State<AppState>) -> Response {
    Json(state.faults.pending()).into_response()
}

async fn add_fault(State(state): State<AppState>, body: Bytes) -> Response {
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(fault) => fault,
        Err(err) => {
            return error_response(
                400,
                &format!(
                    "expected {{\"resource\":\"leases\",\"verb\":\"update\",\"status\":409,\"times\":1}}: {err}"
                ),
            );
        }
    };
    if let Err(why) = fault.validate() {
        return error_response(400, &why);
    }
    state.faults.add(fault);
    Json(state.faults.pending()).into_response()
}

async fn clear_faults(State(state): State<AppState>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}
