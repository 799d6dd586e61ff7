//! Replace (`PUT`) and `PATCH` of one object, and of its `status`
//! subresource (only `status` changes; spec and metadata in the body are
//! ignored). Both are conditional writes (see [`crate::api::item`]):
//! a stale `metadata.resourceVersion` in the body or the patch answers
//! `409 Conflict` and changes nothing. Patches: see [`crate::patch`];
//! server-side apply creates a missing object (`201`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::item::{
    Params, Part, Refusal, Target, admit, check_namespace, fill_type, parse_object, text_at,
};
use crate::api::view::{View, check_type};
use crate::faults::Verb;
use crate::patch::PatchType;
use crate::state::{AppState, Served, Shared};
use crate::status::ApiError;
use crate::store::{Preconditions, WriteError};

/// `PUT .../{name}`: replace.
pub(crate) async fn replace<V: View>(
    State(state): State<AppState>,
    Path(params): Params,
    body: Bytes,
) -> Response {
    replace_part::<V>(&state, Target::of(&params, Part::Whole), &body).await
}

/// `PUT .../{name}/status`: replace the status only.
pub(crate) async fn replace_status<V: View>(
    State(state): State<AppState>,
    Path(params): Params,
    body: Bytes,
) -> Response {
    replace_part::<V>(&state, Target::of(&params, Part::Status), &body).await
}

async fn replace_part<V: View>(state: &Shared, t: Target, body: &[u8]) -> Response {
    if let Err(response) = admit::<V>(state, t.part, Verb::Update, Some(&t.name)).await {
        return response;
    }
    match replace_in::<V>(state, &t, body) {
        Ok(stored) => Json(stored).into_response(),
        Err(error) => error.into_response(),
    }
}

fn replace_in<V: View>(state: &Shared, t: &Target, body: &[u8]) -> Result<Value, ApiError> {
    let mut wire = parse_object(body)?;
    check_type::<V>(&wire, false)?;
    fill_type::<V>(&mut wire);
    let given = text_at(&wire, "/metadata/name").unwrap_or_default();
    if given != t.name {
        return Err(ApiError::new(
            400,
            format!(
                "the name of the object ({given}) does not match the name on the URL ({})",
                t.name
            ),
        ));
    }
    check_namespace::<V>(&wire, &t.namespace)?;
    let preconditions = Preconditions {
        resource_version: text_at(&wire, "/metadata/resourceVersion"),
        uid: text_at(&wire, "/metadata/uid"),
    };
    let store = V::Stored::store(state);
    let (stored, _) = store
        .write_with(&t.namespace, &t.name, |current| {
            let current = current.ok_or(WriteError::NotFound)?;
            preconditions.check(current)?;
            let next = match t.part {
                Part::Whole => wire,
                Part::Status => {
                    let mut next = V::to_wire(current);
                    next["status"] = wire.get("status").cloned().unwrap_or(Value::Null);
                    next
                }
            };
            Ok::<_, Refusal>(V::from_wire(next)?)
        })
        .map_err(|refusal| refusal.answer::<V>(&t.name))?;
    Ok(V::to_wire(&stored))
}

/// `PATCH .../{name}`
pub(crate) async fn patch<V: View>(
    State(state): State<AppState>,
    Path(params): Params,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    patch_part::<V>(
        &state,
        Target::of(&params, Part::Whole),
        &query,
        &headers,
        &body,
    )
    .await
}

/// `PATCH .../{name}/status`: patch the status only.
pub(crate) async fn patch_status<V: View>(
    State(state): State<AppState>,
    Path(params): Params,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    patch_part::<V>(
        &state,
        Target::of(&params, Part::Status),
        &query,
        &headers,
        &body,
    )
    .await
}

async fn patch_part<V: View>(
    state: &Shared,
    t: Target,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Err(response) = admit::<V>(state, t.part, Verb::Patch, Some(&t.name)).await {
        return response;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match patch_in::<V>(state, &t, query, content_type, body) {
        Ok((stored, true)) => (StatusCode::CREATED, Json(stored)).into_response(),
        Ok((stored, false)) => Json(stored).into_response(),
        Err(error) => error.into_response(),
    }
}

fn patch_in<V: View>(
    state: &Shared,
    t: &Target,
    query: &[(String, String)],
    content_type: &str,
    body: &[u8],
) -> Result<(Value, bool), ApiError> {
    let kind = PatchType::from_content_type(content_type).ok_or_else(|| {
        ApiError::new(
            415,
            format!(
                "the body of the request was in an unknown format ({content_type:?}) - \
                 accepted media types include: application/merge-patch+json, \
                 application/strategic-merge-patch+json, application/apply-patch+yaml"
            ),
        )
    })?;
    let apply = kind == PatchType::Apply;
    if apply
        && !query
            .iter()
            .any(|(k, v)| k == "fieldManager" && !v.is_empty())
    {
        return Err(ApiError::new(
            400,
            "PATCH, application/apply-patch+yaml requires fieldManager",
        ));
    }
    let patch = parse_object(body).map_err(|error| match apply {
        true => ApiError::new(
            415,
            format!(
                "{}; this fake reads apply patches as JSON only",
                error.message
            ),
        ),
        false => error,
    })?;
    check_type::<V>(&patch, apply)?;
    let preconditions = Preconditions {
        resource_version: text_at(&patch, "/metadata/resourceVersion"),
        uid: text_at(&patch, "/metadata/uid"),
    };
    let store = V::Stored::store(state);
    let (stored, created) = store
        .write_with(&t.namespace, &t.name, |current| {
            let base = match current {
                Some(current) => {
                    preconditions.check(current)?;
                    V::to_wire(current)
                }
                None if apply && t.part == Part::Whole => json!({
                    "metadata": { "name": t.name, "namespace": t.namespace },
                }),
                None => return Err(WriteError::NotFound.into()),
            };
            let mut patched = base.clone();
            kind.apply(&mut patched, &patch);
            let mut next = match t.part {
                Part::Whole => patched,
                Part::Status => {
                    let mut next = base;
                    next["status"] = patched.get("status").cloned().unwrap_or(Value::Null);
                    next
                }
            };
            fill_type::<V>(&mut next);
            Ok::<_, Refusal>(V::from_wire(next)?)
        })
        .map_err(|refusal| refusal.answer::<V>(&t.name))?;
    if created {
        V::created(state, &stored);
    }
    Ok((V::to_wire(&stored), created))
}
