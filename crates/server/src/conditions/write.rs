//! The task that writes node conditions (a strategic merge patch of
//! `nodes/{name}/status`) and Events (`events.k8s.io/v1`, through
//! kube-runtime's `Recorder`, regarding the Node), one at a time, with
//! retries and backoff. It writes only while this replica leads: a job
//! found after leadership moved is dropped (the new leader writes its
//! own). Failures are counted and logged at most a few times a minute.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, ObjectReference};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{CONDITION_TYPE, Counters, Job, Sent, Wanted, WriterSettings, forget};
use crate::domain::NodeVerdict;
use crate::leader::Leadership;
use crate::lograte::LogRate;

/// The `reportingController` of the Events.
pub const CONTROLLER: &str = "netchecker-server";

/// The strategic merge patch that sets the condition: `conditions` merge
/// by `type`, so the node's other conditions stay. `lastTransitionTime`
/// only when the status changes (`transition`), else the stored one stays.
pub fn condition_patch(wanted: &Wanted, message: &str, now: Timestamp, transition: bool) -> Value {
    let now = now.to_string();
    let mut condition = json!({
        "type": CONDITION_TYPE,
        "status": wanted.status(),
        "reason": wanted.reason,
        "message": message,
        "lastHeartbeatTime": now,
    });
    if transition {
        condition["lastTransitionTime"] = json!(now);
    }
    json!({ "status": { "conditions": [condition] } })
}

/// Write the jobs of `queue` until `shutdown`.
pub(crate) async fn run(
    client: Client,
    mut queue: mpsc::Receiver<Job>,
    leadership: Leadership,
    shared: (Arc<Mutex<Sent>>, Counters),
    settings: WriterSettings,
    shutdown: CancellationToken,
) {
    let (sent, counters) = shared;
    let nodes: Api<Node> = Api::all(client.clone());
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: CONTROLLER.to_owned(),
            instance: Some(settings.identity.clone()).filter(|i| !i.is_empty()),
        },
    );
    let log = LogRate::new(5, Duration::from_secs(60));
    loop {
        let job = tokio::select! {
            job = queue.recv() => match job { Some(job) => job, None => return },
            () = shutdown.cancelled() => return,
        };
        let mut backoff = settings.first_backoff;
        let mut tries = 1;
        loop {
            if !leadership.is_leader() {
                counters.inc(&job, "dropped");
                if let Job::Condition { node, .. } = &job {
                    forget(&sent, node);
                }
                break;
            }
            let result = match &job {
                Job::Condition {
                    node,
                    wanted,
                    message,
                } => set_condition(&nodes, node, wanted, message).await,
                Job::Event {
                    node,
                    verdict,
                    note,
                } => record(&recorder, node, *verdict, note).await,
            };
            let error = match result {
                Ok(()) => {
                    counters.inc(&job, "written");
                    break;
                }
                Err(e) => e,
            };
            let missing = matches!(&error, kube::Error::Api(s) if s.code == 404);
            if missing || !retryable(&error) || tries >= settings.max_attempts {
                counters.inc(&job, "failed");
                if let Some(suppressed) = log.allow(Instant::now()) {
                    let hint = match &error {
                        kube::Error::Api(s) if s.code == 403 => {
                            " (RBAC: --node-conditions needs get and patch on nodes/status, create and patch on events.k8s.io events)"
                        }
                        _ => "",
                    };
                    tracing::warn!(%error, attempts = tries, suppressed, job = ?job, "cannot write to the node; giving up on this write{hint}");
                }
                // A node without a Node object is not tried again until its
                // verdict changes; any other failure at the next round.
                if let (Job::Condition { node, .. }, false) = (&job, missing) {
                    forget(&sent, node);
                }
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(settings.max_backoff);
            tries += 1;
        }
    }
}

/// Set the condition on `node`: read its status first, so that
/// `lastTransitionTime` changes only with the status.
async fn set_condition(
    nodes: &Api<Node>,
    node: &str,
    wanted: &Wanted,
    message: &str,
) -> kube::Result<()> {
    let current = nodes.get_status(node).await?;
    let status = current
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == CONDITION_TYPE)
        .map(|c| c.status);
    let transition = status.as_deref() != Some(wanted.status());
    let patch = condition_patch(wanted, message, Timestamp::now(), transition);
    nodes
        .patch_status(node, &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    Ok(())
}

/// Record the Event of `node`'s change to `verdict`.
async fn record(
    recorder: &Recorder,
    node: &str,
    verdict: NodeVerdict,
    note: &str,
) -> kube::Result<()> {
    let event = Event {
        type_: if verdict == NodeVerdict::Healthy {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: super::camel(verdict),
        note: Some(note.to_owned()),
        action: "NetworkCheck".to_owned(),
        secondary: None,
    };
    let regarding = ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Node".to_owned()),
        name: Some(node.to_owned()),
        ..ObjectReference::default()
    };
    recorder.publish(&event, &regarding).await
}

/// Whether a failed write may succeed later: no answer, a conflict, or
/// the API's 429 and 5xx.
fn retryable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(s) => s.code == 409 || s.code == 429 || s.code >= 500,
        _ => true,
    }
}
