//! How a stored kind appears on the wire, and the `Status` errors about
//! one object, in the real API's words.
//!
//! Most kinds are served as they are stored ([`Same`]); `events.k8s.io/v1`
//! Events are a view of the stored core v1 Events (see
//! [`crate::api::events`]), as in the real API, where both groups read and
//! write the same objects.

use std::marker::PhantomData;

use serde_json::{Value, json};

use crate::state::{Served, Shared};
use crate::status::{ApiError, details};
use crate::store::{MODIFIED, WriteError};

/// A kind as served on the single-object routes: how its wire form (the
/// JSON of `API_VERSION`/`KIND`) maps to the stored kind.
pub(crate) trait View: Send + Sync + 'static {
    /// The kind in the store.
    type Stored: Served;
    /// `apiVersion` of the wire form.
    const API_VERSION: &'static str;
    /// `kind` of the wire form.
    const KIND: &'static str;
    /// The API group (empty for core).
    const GROUP: &'static str;
    /// The plural resource name, as in URLs, RBAC and one-shot faults.
    const RESOURCE: &'static str;

    /// The wire form of a stored object.
    fn to_wire(stored: &Self::Stored) -> Value;

    /// The stored form of a wire object (`apiVersion` and `kind` already
    /// checked or filled in).
    fn from_wire(wire: Value) -> Result<Self::Stored, ApiError>;

    /// Called after an object was created through the API.
    fn created(_state: &Shared, _stored: &Self::Stored) {}
}

/// A kind served as it is stored.
pub(crate) struct Same<T>(PhantomData<fn() -> T>);

impl<T: Served> View for Same<T> {
    type Stored = T;
    const API_VERSION: &'static str = T::API_VERSION;
    const KIND: &'static str = T::KIND;
    const GROUP: &'static str = T::GROUP;
    const RESOURCE: &'static str = T::URL_PATH_SEGMENT;

    fn to_wire(stored: &T) -> Value {
        serde_json::to_value(stored).expect("stored objects serialize")
    }

    fn from_wire(wire: Value) -> Result<T, ApiError> {
        serde_json::from_value(wire).map_err(|err| {
            ApiError::new(400, format!("the body is not a valid {}: {err}", T::KIND))
        })
    }
}

/// `leases.coordination.k8s.io`, or `configmaps` for the core group.
pub(crate) fn qualified<V: View>() -> String {
    if V::GROUP.is_empty() {
        V::RESOURCE.to_owned()
    } else {
        format!("{}.{}", V::RESOURCE, V::GROUP)
    }
}

/// `404 NotFound` for `name`.
pub(crate) fn not_found<V: View>(name: &str) -> ApiError {
    ApiError::new(404, format!("{} \"{name}\" not found", qualified::<V>())).with_details(details(
        name,
        V::GROUP,
        V::RESOURCE,
    ))
}

/// The answer to a refused conditional write on `name`.
pub(crate) fn refused<V: View>(name: &str, error: WriteError) -> ApiError {
    let about = details(name, V::GROUP, V::RESOURCE);
    match error {
        WriteError::NotFound => not_found::<V>(name),
        WriteError::AlreadyExists => ApiError::new(
            409,
            format!("{} \"{name}\" already exists", qualified::<V>()),
        )
        .with_reason("AlreadyExists")
        .with_details(about),
        WriteError::Conflict(why) => ApiError::new(
            409,
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified::<V>()
            ),
        )
        .with_details(about),
    }
}

/// The answer of an injected one-shot fault: a `409` reads as a stale
/// update would, anything else as an injected failure.
pub(crate) fn injected<V: View>(status: u16, name: Option<&str>) -> ApiError {
    if status == 409 {
        return refused::<V>(
            name.unwrap_or(""),
            WriteError::Conflict(format!("{MODIFIED} (injected)")),
        );
    }
    ApiError::new(status, format!("injected failure on {}", qualified::<V>()))
}

/// The `Status` a successful delete answers for most kinds.
pub(crate) fn deleted<V: View>(name: &str, uid: Option<&str>) -> Value {
    let mut about = details(name, V::GROUP, V::RESOURCE);
    if let Some(uid) = uid {
        about["uid"] = json!(uid);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": about,
    })
}

/// An error when a request body's `apiVersion` or `kind` is another
/// kind's; with `required` (server-side apply), also when they are missing.
pub(crate) fn check_type<V: View>(body: &Value, required: bool) -> Result<(), ApiError> {
    let api_version = body.get("apiVersion").and_then(Value::as_str);
    let kind = body.get("kind").and_then(Value::as_str);
    let wrong = |given: Option<&str>, want: &str| match given {
        Some(given) => given != want,
        None => required,
    };
    if wrong(api_version, V::API_VERSION) || wrong(kind, V::KIND) {
        return Err(ApiError::new(
            400,
            format!(
                "invalid object type: {}, Kind={} (expected {}, Kind={})",
                api_version.unwrap_or("/"),
                kind.unwrap_or(""),
                V::API_VERSION,
                V::KIND
            ),
        ));
    }
    Ok(())
}
