//! LIST and WATCH of one stored kind, cluster-wide or in one namespace.
//!
//! LIST returns matching objects in pages of `limit` with a `continue`
//! token, with the cluster's current resourceVersion. WATCH (`watch=true`)
//! streams newline-delimited JSON events; see [`crate::watch`].

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::Filter;
use crate::api::gate::{self, Kind};
use crate::api::query::{ListQuery, Page};
use crate::faults::Verb;
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::{AppState, Counters, Served};
use crate::status::error_response;

/// Answer a LIST or WATCH of `T` (in `namespace`, if given).
pub(crate) async fn serve<T: Served>(
    state: AppState,
    namespace: Option<String>,
    params: Vec<(String, String)>,
) -> Response {
    let query = ListQuery::from_pairs(params);
    let (list_counter, watch_counter) = T::counters(&state.counters);
    Counters::bump(if query.watch {
        watch_counter
    } else {
        list_counter
    });
    let kind = if query.watch { Kind::Watch } else { Kind::List };
    let close = match gate::pass(&state, kind).await {
        Ok(close) => close,
        Err(response) => return response,
    };
    let verb = if query.watch { Verb::Watch } else { Verb::List };
    if let Some(status) = state.faults.take(T::URL_PATH_SEGMENT, verb) {
        return error_response(status, &format!("injected failure on {}", T::PLURAL));
    }

    let labels = match LabelSelector::parse(query.label_selector.as_deref().unwrap_or("")) {
        Ok(labels) => labels,
        Err(err) => return error_response(400, &err.to_string()),
    };
    let fields = FieldSelector::parse_for(query.field_selector.as_deref().unwrap_or(""), T::FIELDS);
    let filter = Filter {
        namespace,
        labels,
        fields,
    };

    if query.watch {
        match query.watch_options() {
            Ok(options) => crate::watch::respond::<T>(state, filter, options, close),
            Err(err) => err.into_response(),
        }
    } else {
        if let Err(err) = query.resource_version() {
            return err.into_response();
        }
        match Page::of(&query) {
            Ok(page) => list::<T>(&state, &filter, page),
            Err(err) => err.into_response(),
        }
    }
}

fn list<T: Served>(state: &AppState, filter: &Filter, page: Page) -> Response {
    let (objects, current) = T::store(state).snapshot();
    let resource_version = page.resource_version.unwrap_or(current);
    let matching = objects.into_iter().filter(|o| filter.matches(o));
    let mut items: Vec<T> = matching.skip(page.offset).collect();
    let mut metadata = json!({ "resourceVersion": resource_version.to_string() });
    if let Some(limit) = page.limit
        && items.len() > limit
    {
        items.truncate(limit);
        metadata["continue"] = json!(format!("{resource_version}:{}", page.offset + limit));
    }
    Json(json!({
        "apiVersion": T::API_VERSION,
        "kind": T::LIST_KIND,
        "metadata": metadata,
        "items": items,
    }))
    .into_response()
}
