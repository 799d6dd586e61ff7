//! The Kubernetes edge: the loop that drives the pod watch. It keeps the
//! pod view's reflector store current, tells the pod view how the API
//! answers, and tells the app which reports to drop when pods go. Where
//! RBAC allows listing the pods but not watching them, it lists them
//! periodically instead.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::podview::{PodWatch, WatchStatus};

/// Strip a watched pod down to what the server reads (name, namespace,
/// labels, node, host network), so the store holds a few hundred bytes per
/// pod instead of its whole spec, status and managed fields.
fn keep_what_is_judged(pod: &mut Pod) {
    let m = &mut pod.metadata;
    m.annotations = None;
    m.managed_fields = None;
    m.owner_references = None;
    m.finalizers = None;
    if let Some(labels) = &mut m.labels {
        labels.retain(|k, _| k == "app");
    }
    pod.spec = pod
        .spec
        .take()
        .map(|spec| k8s_openapi::api::core::v1::PodSpec {
            node_name: spec.node_name,
            host_network: spec.host_network,
            ..Default::default()
        });
    pod.status = None;
}

/// Pods per page of a polling LIST (the watcher's own page size).
const PAGE: u32 = 500;

type Writer = reflector::store::Writer<Pod>;

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
        mut writer,
    } = watch;
    let Some(status) = app.pods().watch_status() else {
        return;
    };
    let mut view = View {
        app: &app,
        status,
        relist_started: Instant::now(),
    };
    let stream = watcher(api.clone(), config)
        .default_backoff()
        .modify(keep_what_is_judged);
    let mut stream = std::pin::pin!(stream.take_until(shutdown.clone().cancelled_owned()));
    while let Some(item) = stream.next().await {
        let now = Instant::now();
        match item {
            Ok(event) => {
                writer.apply_watcher_event(&event);
                view.event(&event, now);
            }
            Err(error) if is_forbidden(&error) => {
                tracing::warn!(
                    %error,
                    every_seconds = poll_every.as_secs_f64(),
                    "RBAC allows listing the agent pods but not watching them: listing them periodically instead; grant `watch` on pods to the server's service account to see changes at once"
                );
                poll(
                    &mut view,
                    &api,
                    &selector,
                    &mut writer,
                    poll_every,
                    &shutdown,
                )
                .await;
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
                if let Some(live) = self.app.pods().live_names() {
                    if first_sync {
                        tracing::info!(pods = live.len(), "pod view synced");
                    }
                    let relist_started = self.relist_started;
                    self.app
                        .prune(|name, received| received >= relist_started || live.contains(name));
                }
            }
            watcher::Event::Delete(pod) => {
                let name = pod.name_any();
                if self.app.forget(&name) {
                    tracing::info!(pod = %name, "agent pod deleted; its report left the cache");
                }
            }
            watcher::Event::Init | watcher::Event::Apply(_) | watcher::Event::InitApply(_) => {}
        }
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
    writer: &mut Writer,
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
                    writer.apply_watcher_event(&event);
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

/// Every pod matching `selector`, page by page, stripped to what is judged.
async fn list_all(api: &Api<Pod>, selector: &str) -> kube::Result<Vec<Pod>> {
    let mut pods = Vec::new();
    let mut params = ListParams::default().labels(selector).limit(PAGE);
    loop {
        let page = api.list(&params).await?;
        pods.extend(page.items.into_iter().map(|mut pod| {
            keep_what_is_judged(&mut pod);
            pod
        }));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(pods),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AgentKind;
    use crate::podview::{expected_of, kind_of};

    #[test]
    fn a_stored_pod_keeps_only_what_is_judged() {
        let mut full = Pod::default();
        full.metadata.name = Some("netchecker-agent-x".into());
        full.metadata.namespace = Some("netchecker".into());
        full.metadata.labels = Some([("app".to_string(), "netchecker-agent".to_string())].into());
        full.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            node_name: Some("node-1".into()),
            host_network: Some(true),
            ..Default::default()
        });
        full.metadata.annotations = Some([("a".to_string(), "x".repeat(4096))].into());
        full.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("pod-template-hash".into(), "abc".into());
        full.spec.as_mut().unwrap().containers = vec![Default::default(); 3];
        full.status = Some(Default::default());
        let owned = |p: &Pod| {
            expected_of(p).map(|e| {
                let owned = |s: Option<&str>| s.map(str::to_owned);
                (e.name.to_owned(), owned(e.namespace), owned(e.node), e.kind)
            })
        };
        let before = owned(&full);
        let mut slim = full.clone();
        keep_what_is_judged(&mut slim);
        assert_eq!(owned(&slim), before, "same expected pod");
        assert_eq!(kind_of(&slim), AgentKind::HostNetwork);
        assert!(slim.metadata.annotations.is_none() && slim.status.is_none());
        assert!(slim.spec.as_ref().unwrap().containers.is_empty());
        assert_eq!(slim.metadata.labels.as_ref().unwrap().len(), 1);
        let size = |p: &Pod| serde_json::to_string(p).unwrap().len();
        assert!(
            size(&slim) < 300,
            "{}",
            serde_json::to_string(&slim).unwrap()
        );
        assert!(size(&full) > 4096);
    }
}
