//! WATCH streams of any stored kind: newline-delimited JSON events, one per
//! line, `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}`.
//!
//! A watch either starts with synthetic `ADDED` events for the current objects
//! (no resourceVersion, `0`, or `sendInitialEvents=true`, the last one ended
//! by a bookmark annotated `k8s.io/initial-events-end`), or resumes after a
//! given resourceVersion from the store's history; a version the history no
//! longer reaches yields one `ERROR` event with a `410 Expired` status.
//! Changes are filtered as the real API does: an object that starts matching
//! the selector arrives as `ADDED`, one that stops matching as `DELETED`.
//! The stream ends at `timeoutSeconds` (after a bookmark when bookmarks are
//! allowed), when watches are closed by failure injection, or on shutdown.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::api::Filter;
use crate::object::Object;
use crate::state::{AppState, Served};
use crate::status::status_object;
use crate::store::{Change, ChangeKind, TooOld};

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// Send the current objects as `ADDED` first; with `end_bookmark`, follow
    /// them with the `k8s.io/initial-events-end` bookmark (streaming list).
    InitialEvents { end_bookmark: bool },
    /// Send only changes after this resourceVersion.
    After(u64),
}

/// Everything a watch request asked for, already validated.
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    pub start: WatchStart,
    pub timeout: Duration,
    pub bookmarks: bool,
}

type Sender = mpsc::Sender<Result<Bytes, Infallible>>;

/// Start a watch and return its streaming response.
pub(crate) fn respond<T: Served>(
    state: AppState,
    filter: Filter,
    options: WatchOptions,
    close: watch::Receiver<u64>,
) -> Response {
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(run::<T>(state, filter, options, close, tx));
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// A watch answered at once with one `ERROR` event carrying `410 Gone`.
pub fn gone() -> Response {
    let event = line(
        "ERROR",
        &status_object(410, "too old resource version (injected)"),
    );
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(event),
    )
        .into_response()
}

fn line(kind: &str, object: &impl Serialize) -> Bytes {
    let mut bytes = serde_json::to_vec(&json!({ "type": kind, "object": object }))
        .expect("objects and statuses always serialize");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn bookmark<T: Object>(resource_version: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({ "resourceVersion": resource_version.to_string() });
    if initial_events_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    line(
        "BOOKMARK",
        &json!({ "kind": T::KIND, "apiVersion": T::API_VERSION, "metadata": metadata }),
    )
}

/// The event a filtered watch sees for a change, if any.
fn event_for<'a, T: Object>(
    change: &'a Change<T>,
    filter: &Filter,
) -> Option<(&'static str, &'a T)> {
    let now = filter.matches(&change.object);
    let before = change.previous.as_ref().is_some_and(|p| filter.matches(p));
    let kind = match (change.kind, before, now) {
        (ChangeKind::Added, _, true) => "ADDED",
        (ChangeKind::Modified, true, true) => "MODIFIED",
        (ChangeKind::Modified, false, true) => "ADDED",
        (ChangeKind::Modified, true, false) => "DELETED",
        (ChangeKind::Deleted, true, _) => "DELETED",
        _ => return None,
    };
    Some((kind, &change.object))
}

async fn run<T: Served>(
    state: AppState,
    filter: Filter,
    options: WatchOptions,
    mut close: watch::Receiver<u64>,
    tx: Sender,
) {
    let deadline = Instant::now() + options.timeout;
    let store = T::store(&state);
    let mut versions = store.subscribe();
    let mut last = match options.start {
        WatchStart::After(rv) => rv,
        WatchStart::InitialEvents { end_bookmark } => {
            let (objects, rv) = store.snapshot();
            if close.has_changed().unwrap_or(true) {
                return;
            }
            for object in objects.iter().filter(|o| filter.matches(*o)) {
                if tx.send(Ok(line("ADDED", object))).await.is_err() {
                    return;
                }
            }
            if end_bookmark
                && options.bookmarks
                && tx.send(Ok(bookmark::<T>(rv, true))).await.is_err()
            {
                return;
            }
            rv
        }
    };
    loop {
        versions.borrow_and_update();
        let changes = store.changes_since(last);
        // A failure mode set before these changes were made must keep them
        // from this stream: it was closed first.
        if close.has_changed().unwrap_or(true) {
            return;
        }
        match changes {
            Err(TooOld { requested, oldest }) => {
                let message = format!("too old resource version: {requested} ({oldest})");
                let _ = tx
                    .send(Ok(line("ERROR", &status_object(410, &message))))
                    .await;
                return;
            }
            Ok(changes) => {
                for change in &changes {
                    last = change.resource_version;
                    if let Some((kind, object)) = event_for(change, &filter)
                        && tx.send(Ok(line(kind, object))).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
        tokio::select! {
            biased;
            _ = close.changed() => return,
            () = state.shutdown.cancelled() => return,
            changed = versions.changed() => if changed.is_err() { return },
            () = tx.closed() => return,
            () = tokio::time::sleep_until(deadline) => {
                // Like the real API: a last bookmark before the timeout lets
                // the client resume from the newest version it has seen.
                if options.bookmarks {
                    let _ = tx.send(Ok(bookmark::<T>(last, false))).await;
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent_pod;
    use crate::selector::LabelSelector;
    use k8s_openapi::api::core::v1::{Node, Pod};

    fn change(kind: ChangeKind, previous_app: Option<&str>, app: &str) -> Change {
        Change {
            resource_version: 7,
            kind,
            object: agent_pod("ns", "p", app, "n"),
            previous: previous_app.map(|a| agent_pod("ns", "p", a, "n")),
        }
    }

    fn agents_only() -> Filter {
        Filter {
            labels: LabelSelector::parse("app=agent").unwrap(),
            ..Filter::default()
        }
    }

    #[test]
    fn selector_transitions_become_added_and_deleted() {
        let f = agents_only();
        let kind = |c: &Change<Pod>| event_for(c, &f).map(|(k, _)| k);
        assert_eq!(
            kind(&change(ChangeKind::Added, None, "agent")),
            Some("ADDED")
        );
        assert_eq!(kind(&change(ChangeKind::Added, None, "other")), None);
        assert_eq!(
            kind(&change(ChangeKind::Modified, Some("agent"), "agent")),
            Some("MODIFIED")
        );
        assert_eq!(
            kind(&change(ChangeKind::Modified, Some("other"), "agent")),
            Some("ADDED")
        );
        assert_eq!(
            kind(&change(ChangeKind::Modified, Some("agent"), "other")),
            Some("DELETED")
        );
        assert_eq!(kind(&change(ChangeKind::Modified, Some("x"), "y")), None);
        assert_eq!(
            kind(&change(ChangeKind::Deleted, Some("agent"), "agent")),
            Some("DELETED")
        );
        assert_eq!(kind(&change(ChangeKind::Deleted, Some("x"), "x")), None);
    }

    #[test]
    fn bookmarks_carry_version_and_annotation() {
        let end: serde_json::Value = serde_json::from_slice(&bookmark::<Pod>(42, true)).unwrap();
        assert_eq!(end["type"], "BOOKMARK");
        assert_eq!(end["object"]["metadata"]["resourceVersion"], "42");
        assert_eq!(
            end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
        let plain: serde_json::Value =
            serde_json::from_slice(&bookmark::<Node>(43, false)).unwrap();
        assert!(plain["object"]["metadata"].get("annotations").is_none());
        assert!(bookmark::<Pod>(1, false).ends_with(b"\n"));
        assert_eq!(end["object"]["kind"], "Pod");
        assert_eq!(plain["object"]["kind"], "Node");
    }
}
