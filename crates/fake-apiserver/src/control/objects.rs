//! Control routes for stored objects: list, add or replace, start
//! deleting (`terminate`), and delete pods and nodes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::object::Object;
use crate::state::{AppState, Served};
use crate::status::error_response;

pub(crate) fn not_found<T: Object>(namespace: &str, name: &str) -> Response {
    let message = if T::NAMESPACED {
        format!("{} \"{name}\" not found in \"{namespace}\"", T::PLURAL)
    } else {
        format!("{} \"{name}\" not found", T::PLURAL)
    };
    error_response(404, &message)
}

pub(crate) fn list<T: Served>(state: &AppState) -> Response {
    Json(T::store(state).snapshot().0).into_response()
}

pub(crate) fn put<T: Served>(state: &AppState, body: &Bytes) -> Response {
    let object: T = match serde_json::from_slice(body) {
        Ok(object) => object,
        Err(err) => return error_response(400, &format!("body is not a {}: {err}", T::KIND)),
    };
    match T::store(state).upsert(object) {
        Ok(stored) => Json(stored).into_response(),
        Err(err) => error_response(422, &err.to_string()),
    }
}

fn terminate<T: Served>(
    state: &AppState,
    namespace: &str,
    name: &str,
    grace: Option<i64>,
) -> Response {
    match T::store(state).mark_deleting(namespace, name, grace) {
        Some(object) => Json(object).into_response(),
        None => not_found::<T>(namespace, name),
    }
}

pub(crate) fn delete<T: Served>(state: &AppState, namespace: &str, name: &str) -> Response {
    match T::store(state).delete(namespace, name) {
        Some(object) => Json(object).into_response(),
        None => not_found::<T>(namespace, name),
    }
}

/// `GET /fake/pods`
pub async fn list_pods(State(state): State<AppState>) -> Response {
    list::<Pod>(&state)
}

/// `POST /fake/pods`
pub async fn put_pod(State(state): State<AppState>, body: Bytes) -> Response {
    put::<Pod>(&state, &body)
}

/// `POST /fake/pods/{namespace}/{name}/terminate`
pub async fn terminate_pod(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    terminate::<Pod>(&state, &namespace, &name, Some(30))
}

/// `DELETE /fake/pods/{namespace}/{name}`
pub async fn delete_pod(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    delete::<Pod>(&state, &namespace, &name)
}

/// `GET /fake/nodes`
pub async fn list_nodes(State(state): State<AppState>) -> Response {
    list::<Node>(&state)
}

/// `POST /fake/nodes`
pub async fn put_node(State(state): State<AppState>, body: Bytes) -> Response {
    put::<Node>(&state, &body)
}

/// `POST /fake/nodes/{name}/terminate`
pub async fn terminate_node(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    terminate::<Node>(&state, "", &name, None)
}

/// `DELETE /fake/nodes/{name}`
pub async fn delete_node(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    delete::<Node>(&state, "", &name)
}
