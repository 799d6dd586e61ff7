//! The Kubernetes edge: the loop that drives the pod watch. It keeps the
//! pod view's reflector store current, tells the pod view how the API
//! answers, and tells the app which reports to drop when pods go.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::podview::PodWatch;

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

/// Drive the pod watch until `shutdown`: keep the reflector store current,
/// drop the reports of deleted pods, and track whether the view is stale.
pub async fn run(app: App, watch: PodWatch, shutdown: CancellationToken) {
    let PodWatch {
        api,
        config,
        writer,
    } = watch;
    let stream = watcher(api, config)
        .default_backoff()
        .modify(keep_what_is_judged)
        .reflect(writer);
    let mut stream = std::pin::pin!(stream.take_until(shutdown.cancelled_owned()));
    let Some(status) = app.pods().watch_status() else {
        return;
    };
    // Reports received before a relist started may belong to pods deleted
    // while the watch was down: those are pruned once the relist is done.
    let mut relist_started = Instant::now();
    while let Some(item) = stream.next().await {
        let now = Instant::now();
        match item {
            Ok(watcher::Event::Init) => {
                // Emitted before the LIST request is sent: no answer yet.
                relist_started = now;
                status.relist_started(now);
            }
            Ok(event) => {
                if status.answered(now) {
                    tracing::info!("Kubernetes API answers again; pod view is current");
                }
                match event {
                    watcher::Event::Init => {}
                    watcher::Event::InitDone => {
                        let first_sync = status.relist_done();
                        if let Some(live) = app.pods().live_names() {
                            if first_sync {
                                tracing::info!(pods = live.len(), "pod view synced");
                            }
                            app.prune(|name, received| {
                                received >= relist_started || live.contains(name)
                            });
                        }
                    }
                    watcher::Event::Delete(pod) => {
                        let name = pod.name_any();
                        if app.forget(&name) {
                            tracing::info!(pod = %name, "agent pod deleted; its report left the cache");
                        }
                    }
                    watcher::Event::Apply(_) | watcher::Event::InitApply(_) => {}
                }
            }
            Err(error) => {
                status.failed(now, app.started());
                tracing::warn!(%error, "pod watch failed; answering from the last known pods (view is stale), retrying with backoff");
            }
        }
        app.publish_pod_view(now);
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
