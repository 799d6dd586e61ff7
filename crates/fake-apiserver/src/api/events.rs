//! Events through both APIs, as the real API serves them: the core v1
//! `Event` (`/api/v1/namespaces/{ns}/events`) and the `events.k8s.io/v1`
//! `Event` (`/apis/events.k8s.io/v1/namespaces/{ns}/events`, what
//! kube-runtime's `Recorder` writes) are two views of the same stored
//! objects. An event written through one API is read through the other
//! with its fields renamed (`regarding` is `involvedObject`, `note` is
//! `message`, `reportingController` is `reportingComponent`, and the
//! `deprecated...` fields are `source`, `firstTimestamp`, `lastTimestamp`,
//! `count`).
//!
//! The store keeps at most [`EVENT_LIMIT`](crate::api::events::EVENT_LIMIT) events: creating one more drops
//! the oldest (watchers see it `DELETED`), as the real API's event TTL
//! keeps the event count bounded.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use k8s_openapi::Metadata;
use k8s_openapi::api::core::v1::Event;
use serde_json::{Map, Value, json};

use crate::api::Filter;
use crate::api::gate::{self, Kind};
use crate::api::query::{ListQuery, Page};
use crate::api::view::{View, injected};
use crate::faults::Verb;
use crate::object::Object;
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::{AppState, Counters, Shared};
use crate::status::{ApiError, error_response};

/// How many events the fake keeps: the last 10,000 created (through
/// either API); older ones are dropped.
pub const EVENT_LIMIT: usize = 10_000;

/// `(core v1 name, events.k8s.io/v1 name)` of the fields that differ.
const RENAMED: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// Rename the fields from core v1 names to `events.k8s.io/v1` names, or
/// back.
fn rename(fields: &mut Map<String, Value>, to_v1: bool) {
    for &(core, v1) in RENAMED {
        let (old, new) = if to_v1 { (core, v1) } else { (v1, core) };
        if let Some(value) = fields.remove(old) {
            fields.insert(new.to_owned(), value);
        }
    }
}

/// The `events.k8s.io/v1` view of the stored core v1 Events.
pub(crate) struct EventsV1;

impl View for EventsV1 {
    type Stored = Event;
    const API_VERSION: &'static str = "events.k8s.io/v1";
    const KIND: &'static str = "Event";
    const GROUP: &'static str = "events.k8s.io";
    const RESOURCE: &'static str = "events";

    fn to_wire(stored: &Event) -> Value {
        let mut wire = serde_json::to_value(stored).expect("stored events serialize");
        if let Value::Object(fields) = &mut wire {
            rename(fields, true);
            fields.insert("apiVersion".to_owned(), json!(Self::API_VERSION));
        }
        wire
    }

    fn from_wire(mut wire: Value) -> Result<Event, ApiError> {
        if let Value::Object(fields) = &mut wire {
            rename(fields, false);
            fields.insert("apiVersion".to_owned(), json!("v1"));
            fields.entry("involvedObject").or_insert_with(|| json!({}));
        }
        serde_json::from_value(wire).map_err(|err| {
            ApiError::new(
                400,
                format!("the body is not a valid events.k8s.io/v1 Event: {err}"),
            )
        })
    }

    fn created(state: &Shared, stored: &Event) {
        remember(state, stored, EVENT_LIMIT);
    }
}

/// Core v1 Events, created through their own API, are bounded the same
/// way: a [`crate::api::view::Same`] with the bound.
pub(crate) struct CoreEvents;

impl View for CoreEvents {
    type Stored = Event;
    const API_VERSION: &'static str = "v1";
    const KIND: &'static str = "Event";
    const GROUP: &'static str = "";
    const RESOURCE: &'static str = "events";

    fn to_wire(stored: &Event) -> Value {
        crate::api::view::Same::<Event>::to_wire(stored)
    }

    fn from_wire(wire: Value) -> Result<Event, ApiError> {
        crate::api::view::Same::<Event>::from_wire(wire)
    }

    fn created(state: &Shared, stored: &Event) {
        remember(state, stored, EVENT_LIMIT);
    }
}

/// Note a created event and drop the oldest while more than `limit` are
/// stored.
pub(crate) fn remember(state: &Shared, event: &Event, limit: usize) {
    let meta = event.metadata();
    let key = (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    );
    let mut order = state
        .event_order
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    order.push_back(key);
    while state.events.len() > limit {
        let Some((namespace, name)) = order.pop_front() else {
            break;
        };
        state.events.delete(&namespace, &name);
    }
}

/// `GET /apis/events.k8s.io/v1/events` and
/// `GET /apis/events.k8s.io/v1/namespaces/{namespace}/events`: LIST in
/// pages with label and field selectors (`regarding.*` and
/// `reportingController` map to the core fields). WATCH is served on the
/// core v1 route only; here it answers `405`.
pub(crate) async fn list_v1_all(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    list_v1(state, None, params).await
}

/// See [`list_v1_all`].
pub(crate) async fn list_v1_in(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    list_v1(state, Some(namespace), params).await
}

async fn list_v1(
    state: AppState,
    namespace: Option<String>,
    params: Vec<(String, String)>,
) -> Response {
    Counters::bump(&state.counters.events);
    let query = ListQuery::from_pairs(params);
    let verb = if query.watch { Verb::Watch } else { Verb::List };
    if let Err(response) =
        gate::pass(&state, if query.watch { Kind::Watch } else { Kind::List }).await
    {
        return response;
    }
    if let Some(status) = state.faults.take("events", verb) {
        return injected::<EventsV1>(status, None).into_response();
    }
    if query.watch {
        return error_response(
            405,
            "the fake serves WATCH of events on /api/v1 only, not on events.k8s.io/v1",
        );
    }
    let labels = match LabelSelector::parse(query.label_selector.as_deref().unwrap_or("")) {
        Ok(labels) => labels,
        Err(err) => return error_response(400, &err.to_string()),
    };
    let fields = query
        .field_selector
        .as_deref()
        .unwrap_or("")
        .replace("regarding.", "involvedObject.")
        .replace("reportingController", "reportingComponent");
    let filter = Filter {
        namespace,
        labels,
        fields: FieldSelector::parse_for(&fields, Event::FIELDS),
    };
    let page = match Page::of(&query) {
        Ok(page) => page,
        Err(err) => return err.into_response(),
    };
    let (events, current) = state.events.snapshot();
    let version = page.resource_version.unwrap_or(current);
    let mut items: Vec<Value> = events
        .iter()
        .filter(|e| filter.matches(*e))
        .skip(page.offset)
        .map(EventsV1::to_wire)
        .collect();
    let mut metadata = json!({ "resourceVersion": version.to_string() });
    if let Some(limit) = page.limit
        && items.len() > limit
    {
        items.truncate(limit);
        metadata["continue"] = json!(format!("{version}:{}", page.offset + limit));
    }
    Json(json!({
        "apiVersion": EventsV1::API_VERSION,
        "kind": "EventList",
        "metadata": metadata,
        "items": items,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_views_rename_fields_both_ways() {
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns"},
            "regarding": {"kind": "Node", "name": "n1"},
            "note": "lost the lease", "reason": "LeaderElection",
            "reportingController": "netchecker", "reportingInstance": "server-0",
            "action": "Acquire", "type": "Normal",
            "series": {"count": 2, "lastObservedTime": "2025-01-01T00:00:00.000000Z"},
        });
        let core = EventsV1::from_wire(v1.clone()).unwrap();
        assert_eq!(core.involved_object.name.as_deref(), Some("n1"));
        assert_eq!(core.message.as_deref(), Some("lost the lease"));
        assert_eq!(core.reporting_component.as_deref(), Some("netchecker"));
        assert_eq!(core.series.as_ref().unwrap().count, Some(2));
        assert_eq!(EventsV1::to_wire(&core), v1);
    }

    #[test]
    fn only_the_newest_events_are_kept() {
        let state = Shared::new("http://127.0.0.1:1".to_owned());
        for i in 0..5 {
            let event = Event {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some(format!("e{i}")),
                    namespace: Some("ns".to_owned()),
                    ..Default::default()
                },
                ..Event::default()
            };
            let stored = state.events.create(event).unwrap();
            remember(&state, &stored, 3);
        }
        let names: Vec<_> = state
            .events
            .snapshot()
            .0
            .into_iter()
            .map(|e| e.metadata.name.unwrap())
            .collect();
        assert_eq!(names, ["e2", "e3", "e4"]);
    }
}
