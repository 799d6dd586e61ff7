//! The Kubernetes edge: the loop that drives the pod watch. It keeps the
//! pod view's reflector store current, tells the pod view how the API
//! answers, and tells the app which reports to drop when pods go. Where
//! RBAC allows listing the pods but not watching them, it lists them
//! periodically instead.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::podview::{PodIndex, PodWatch, WatchStatus};

/// Pods per page of a polling LIST (the watcher's own page size).
const PAGE: u32 = 500;

/// Drive the pod watch until `shutdown`: keep the reflector store current,
/// drop the reports of deleted pods, and track whether the view is stale.
/// When RBAC grants `list` but not `watch` on pods (the original's
/// ClusterRole did), fall back to a paged LIST every `poll_every` (the
/// server's `--check-interval`).
pub async fn run(app: App, watch: PodWatch, poll_every: Duration, shutdown: CancellationToken) {
    let PodWatch {
        api,
        config,
        selector,
    } = watch;
    let (Some(status), Some(index)) = (app.pods().watch_status(), app.pods().watched()) else {
        return;
    };
    let mut view = View {
        app: &app,
        status,
        relist_started: Instant::now(),
    };
    let stream = watcher(api.clone(), config).default_backoff();
    let mut stream = std::pin::pin!(stream.take_until(shutdown.clone().cancelled_owned()));
    while let Some(item) = stream.next().await {
        let now = Instant::now();
        match item {
            Ok(event) => {
                index.apply(&event);
                view.event(&event, now);
            }
            Err(error) if is_forbidden(&error) => {
                tracing::warn!(
                    %error,
                    every_seconds = poll_every.as_secs_f64(),
                    "RBAC allows listing the agent pods but not watching them: listing them periodically instead; grant `watch` on pods to the server's service account to see changes at once"
                );
                poll(&mut view, &api, &selector, index, poll_every, &shutdown).await;
                return;
            }
            Err(error) => {
                view.status.failed(now, app.started());
                tracing::warn!(%error, "pod watch failed; answering from the last known pods (view is stale), retrying with backoff");
            }
        }
        app.publish_pod_view(now);
    }
}

/// The watch (or poll) as the pod view and the app see it.
struct View<'a> {
    app: &'a App,
    status: &'a WatchStatus,
    /// Reports received before a relist started may belong to pods deleted
    /// while the watch was down: those are pruned once the relist is done.
    relist_started: Instant,
}

impl View<'_> {
    fn event(&mut self, event: &watcher::Event<Pod>, now: Instant) {
        let status = self.status;
        if let watcher::Event::Init = event {
            // Emitted before the LIST request is sent: no answer yet.
            self.relist_started = now;
            status.relist_started(now);
            return;
        }
        if status.answered(now) {
            tracing::info!("Kubernetes API answers again; pod view is current");
        }
        match event {
            watcher::Event::InitDone => {
                let first_sync = status.relist_done();
                if first_sync && let Some(index) = self.app.pods().watched() {
                    tracing::info!(pods = index.read().len(), "pod view synced");
                }
                // Locks in the one order (cache, then pods): the index is
                // read per name, under the cache's lock.
                let relist_started = self.relist_started;
                let pods = self.app.pods();
                self.app
                    .prune(|name, received| received >= relist_started || pods.is_watched(name));
            }
            watcher::Event::Delete(pod) => {
                let name = pod.name_any();
                if self.app.forget(&name) {
                    tracing::info!(pod = ?name, "agent pod deleted; its report left the cache");
                }
            }
            watcher::Event::Init | watcher::Event::Apply(_) | watcher::Event::InitApply(_) => {}
        }
    }
}

/// Watch the nodes for the mesh until `shutdown`: a node that is NotReady,
/// cordoned or being deleted leaves the mesh. Where RBAC does not let the
/// server read nodes, say so once and take every node as fit.
pub async fn run_nodes(app: App, api: Api<Node>, shutdown: CancellationToken) {
    let index = app.node_index();
    // Only what the gate needs changes a node's facts; the rest of a
    // node's status (heartbeats) still arrives, and is cheap to drop.
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream.take_until(shutdown.cancelled_owned()));
    let mut failing = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("node watch answers again");
                }
                if matches!(event, watcher::Event::InitDone) && !index.synced() {
                    tracing::info!(
                        "node view synced: NotReady, cordoned and deleting nodes leave the mesh"
                    );
                }
                index.apply(&event);
            }
            Err(error) if is_forbidden_list(&error) => {
                tracing::warn!(
                    %error,
                    "RBAC does not let the server read nodes: the mesh cannot leave out NotReady or cordoned nodes; grant get, list and watch on nodes (the chart does when the mesh is on)"
                );
                index.unknown();
                return;
            }
            Err(error) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(%error, "node watch failed; keeping the last known nodes, retrying with backoff");
                }
            }
        }
    }
}

/// The API refused to list or watch: RBAC without the verbs.
fn is_forbidden_list(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status)) => status.code == 403,
        _ => false,
    }
}

/// The API refused to watch: RBAC without the `watch` verb.
fn is_forbidden(error: &watcher::Error) -> bool {
    matches!(
        error,
        watcher::Error::WatchStartFailed(kube::Error::Api(status)) if status.code == 403
    )
}

/// List the pods every `every` and apply each list as a relist.
async fn poll(
    view: &mut View<'_>,
    api: &Api<Pod>,
    selector: &str,
    index: &PodIndex,
    every: Duration,
    shutdown: &CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let started = Instant::now();
        match list_all(api, selector).await {
            Ok(pods) => {
                for event in std::iter::once(watcher::Event::Init)
                    .chain(pods.into_iter().map(watcher::Event::InitApply))
                    .chain([watcher::Event::InitDone])
                {
                    index.apply(&event);
                    view.event(&event, started);
                }
            }
            Err(error) => {
                view.status.failed(Instant::now(), view.app.started());
                tracing::warn!(%error, "listing the agent pods failed; answering from the last known pods (view is stale)");
            }
        }
        view.app.publish_pod_view(Instant::now());
    }
}

/// Every pod matching `selector`, page by page.
async fn list_all(api: &Api<Pod>, selector: &str) -> kube::Result<Vec<Pod>> {
    let mut pods = Vec::new();
    let mut params = ListParams::default().labels(selector).limit(PAGE);
    loop {
        let page = api.list(&params).await?;
        pods.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(pods),
        }
    }
}
