//! The single-object routes of a served kind, as the real API answers
//! them: GET, create (`POST` to the collection, `201`) and `DELETE` (a
//! `Success` `Status`) here; replace (`PUT`) and `PATCH` in
//! [`crate::api::update`]; plus the `status` subresource (GET, PUT,
//! PATCH), whose writes change only `status`.
//!
//! Writes are conditional as in the real API: a `metadata.resourceVersion`
//! (or `metadata.uid`) in an update, a patch or a delete's `preconditions`
//! must be the stored one, or the answer is `409 Conflict` and nothing
//! changes; an update without one is unconditional. Every write takes the
//! next cluster-wide resourceVersion and reaches watchers.
//!
//! Every request is counted, passes the failure gate, and then may be
//! answered by a one-shot fault (see [`crate::faults`]) before anything is
//! read or written. `dryRun` is not supported: such requests are applied.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use k8s_openapi::Metadata;
use serde_json::{Value, json};

use crate::api::gate::{self, Kind};
use crate::api::view::{View, check_type, deleted, injected, not_found, refused};
use crate::faults::Verb;
use crate::ids::name_suffix;
use crate::object::Object;
use crate::state::{AppState, Counters, Served, Shared};
use crate::status::ApiError;
use crate::store::{Preconditions, WriteError};

/// The path parameters of a route: `namespace` and `name`, when present.
pub(crate) type Params = Path<HashMap<String, String>>;

/// Which part of an object a route reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Whole,
    /// The `status` subresource (counted as `nodeStatus`: only nodes serve
    /// it here).
    Status,
}

/// The object a request names.
pub(crate) struct Target {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) part: Part,
}

impl Target {
    pub(crate) fn of(params: &HashMap<String, String>, part: Part) -> Self {
        let get = |key: &str| params.get(key).cloned().unwrap_or_default();
        Self {
            namespace: get("namespace"),
            name: get("name"),
            part,
        }
    }
}

/// Why a conditional write did not happen.
pub(crate) enum Refusal {
    Write(WriteError),
    Api(ApiError),
}

impl From<WriteError> for Refusal {
    fn from(error: WriteError) -> Self {
        Self::Write(error)
    }
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl Refusal {
    pub(crate) fn answer<V: View>(self, name: &str) -> ApiError {
        match self {
            Self::Write(error) => refused::<V>(name, error),
            Self::Api(error) => error,
        }
    }
}

/// Count the request, pass the failure gate, use up a matching one-shot
/// fault: every request does this first.
pub(crate) async fn admit<V: View>(
    state: &Shared,
    part: Part,
    verb: Verb,
    name: Option<&str>,
) -> Result<(), Response> {
    let (counter, resource) = match part {
        Part::Whole => (
            V::Stored::counters(&state.counters).0,
            V::RESOURCE.to_owned(),
        ),
        Part::Status => (
            &state.counters.node_status,
            format!("{}/status", V::RESOURCE),
        ),
    };
    Counters::bump(counter);
    gate::pass(state, Kind::Other).await?;
    match state.faults.take(&resource, verb) {
        Some(status) => Err(injected::<V>(status, name).into_response()),
        None => Ok(()),
    }
}

pub(crate) fn parse_object(body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if value.is_object() => Ok(value),
        Ok(_) => Err(ApiError::new(400, "the body must be a JSON object")),
        Err(err) => Err(ApiError::new(400, format!("the body is not JSON: {err}"))),
    }
}

pub(crate) fn text_at(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Set `apiVersion` and `kind` (checked before, or to be filled in) and
/// make sure there is a `metadata` map.
pub(crate) fn fill_type<V: View>(wire: &mut Value) {
    wire["apiVersion"] = json!(V::API_VERSION);
    wire["kind"] = json!(V::KIND);
    if !wire.get("metadata").is_some_and(Value::is_object) {
        wire["metadata"] = json!({});
    }
}

pub(crate) fn check_namespace<V: View>(wire: &Value, namespace: &str) -> Result<(), ApiError> {
    match text_at(wire, "/metadata/namespace") {
        Some(given) if V::Stored::NAMESPACED && given != namespace => Err(ApiError::new(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

/// `GET .../{name}`
pub(crate) async fn get<V: View>(State(state): State<AppState>, Path(params): Params) -> Response {
    read::<V>(&state, Target::of(&params, Part::Whole)).await
}

/// `GET .../{name}/status`
pub(crate) async fn get_status<V: View>(
    State(state): State<AppState>,
    Path(params): Params,
) -> Response {
    read::<V>(&state, Target::of(&params, Part::Status)).await
}

async fn read<V: View>(state: &Shared, t: Target) -> Response {
    if let Err(response) = admit::<V>(state, t.part, Verb::Get, Some(&t.name)).await {
        return response;
    }
    match V::Stored::store(state).get(&t.namespace, &t.name) {
        Some(object) => Json(V::to_wire(&object)).into_response(),
        None => not_found::<V>(&t.name).into_response(),
    }
}

/// `POST` to the collection: create; `201 Created`.
pub(crate) async fn create<V: View>(
    State(state): State<AppState>,
    Path(params): Params,
    body: Bytes,
) -> Response {
    let namespace = params.get("namespace").cloned().unwrap_or_default();
    if let Err(response) = admit::<V>(&state, Part::Whole, Verb::Create, None).await {
        return response;
    }
    match create_in::<V>(&state, &namespace, &body) {
        Ok(created) => (StatusCode::CREATED, Json(created)).into_response(),
        Err(error) => error.into_response(),
    }
}

fn create_in<V: View>(state: &Shared, namespace: &str, body: &[u8]) -> Result<Value, ApiError> {
    let mut wire = parse_object(body)?;
    check_type::<V>(&wire, false)?;
    fill_type::<V>(&mut wire);
    check_namespace::<V>(&wire, namespace)?;
    if text_at(&wire, "/metadata/resourceVersion").is_some() {
        // What the real API's storage layer answers, as an internal error.
        return Err(ApiError::new(
            500,
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let name = match (
        text_at(&wire, "/metadata/name"),
        text_at(&wire, "/metadata/generateName"),
    ) {
        (Some(name), _) => name,
        (None, Some(prefix)) => format!("{prefix}{}", name_suffix()),
        (None, None) => {
            return Err(ApiError::new(
                422,
                "metadata.name: Required value: name or generateName is required",
            ));
        }
    };
    wire["metadata"]["name"] = json!(name);
    if V::Stored::NAMESPACED {
        wire["metadata"]["namespace"] = json!(namespace);
    }
    let object = V::from_wire(wire)?;
    let stored = V::Stored::store(state)
        .create(object)
        .map_err(|error| refused::<V>(&name, error))?;
    V::created(state, &stored);
    Ok(V::to_wire(&stored))
}

/// `DELETE .../{name}`: a `Success` `Status` naming the deleted object;
/// `preconditions` in the body's DeleteOptions are checked.
pub(crate) async fn delete<V: View>(
    State(state): State<AppState>,
    Path(params): Params,
    body: Bytes,
) -> Response {
    let t = Target::of(&params, Part::Whole);
    if let Err(response) = admit::<V>(&state, t.part, Verb::Delete, Some(&t.name)).await {
        return response;
    }
    let options = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match parse_object(&body) {
            Ok(options) => options,
            Err(error) => return error.into_response(),
        }
    };
    let preconditions = Preconditions {
        resource_version: text_at(&options, "/preconditions/resourceVersion"),
        uid: text_at(&options, "/preconditions/uid"),
    };
    match V::Stored::store(&state).delete_checked(&t.namespace, &t.name, &preconditions) {
        Ok(gone) => Json(deleted::<V>(&t.name, gone.metadata().uid.as_deref())).into_response(),
        Err(error) => refused::<V>(&t.name, error).into_response(),
    }
}
