//! netchecker server: collects agent reports, watches the agent pods and
//! answers the cluster connectivity check.
//!
//! `main.rs` only parses arguments and sets up logging; everything else is
//! here so that it can be tested in-process.
#![forbid(unsafe_code)]

// Layers, each calling only into the ones above it in this list (no
// module imports one that imports it back; `make lint` checks it):
//   domain                          the vocabulary, pure
//   verdict, limits, padding, path,
//   diagnosis, mesh, evaluation     the rules, pure (mesh also keeps its
//                                   pairs and roster)
//   cache, podview, secret, auth,
//   lograte                         the state
//   serve, metrics, nodes, status,
//   webhook, leader, conditions,
//   incidents                       what the state is rendered into
//                                   (leader: who speaks, the election on
//                                   the Lease; conditions: what the
//                                   leader writes to the nodes;
//                                   incidents: what it announced)
//                                   (serve: the accept loop metrics count)
//   app, ingest, round              the core that ties them together
//   api, watch, config              the edges: HTTP, Kubernetes, flags
// doc/architecture.md is the map.

/// HTTP routes and handlers.
pub mod api;
/// Shared application state and the answers.
pub mod app;
/// Reports that prove who sent them.
pub mod auth;
/// The agent cache.
pub mod cache;
/// Node conditions and Kubernetes Events, written by the leader.
pub mod conditions;
/// Command line and environment.
pub mod config;
/// Rules for one node: its verdict and the reason.
pub mod diagnosis;
/// The vocabulary: expected agents, report facts, policy.
pub mod domain;
/// The one evaluation every answer renders.
pub mod evaluation;
/// Open incidents kept across restarts and hand-overs.
pub mod incidents;
/// Reports coming in.
pub mod ingest;
/// One voice among several replicas: the Lease, who leads.
pub mod leader;
/// Bounds on what a report may carry; secrets cut from URLs.
pub mod limits;
/// A limit on repetitive log lines.
pub mod lograte;
/// The node-to-node mesh: assignment, kept pairs, their verdicts.
pub mod mesh;
/// Prometheus metrics.
pub mod metrics;
/// Node verdict changes over time: series and events.
pub mod nodes;
/// A fast path past the report padding.
pub mod padding;
/// How reports get through: loss and jitter over a sliding window.
pub mod path;
/// The expected agents: watched pods or a fixed list.
pub mod podview;
/// The background round.
pub mod round;
/// Secrets kept in files, re-read when they change.
pub mod secret;
/// Accept loop with timeouts and graceful drain.
pub mod serve;
/// The v2 status answer.
pub mod status;
/// Rules for one agent: freshness, missed windows, expiry, probes.
pub mod verdict;
/// The loop that drives the pod watch.
pub mod watch;
/// Delivery of events to webhooks.
pub mod webhook;

use std::time::Duration;

pub use api::router;
pub use app::{App, Settings};
pub use config::Config;
pub use domain::Policy;
pub use podview::PodView;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot configure the Kubernetes client (use --kube=false to run without Kubernetes): {0}"
    )]
    Kube(#[source] kube::Error),
    #[error(
        "cannot load the Kubernetes configuration (in-cluster or KUBECONFIG; use --kube=false to run without Kubernetes): {0}"
    )]
    KubeConfig(#[source] kube::config::InferConfigError),
    #[error("cannot set up webhooks: {0}")]
    Webhooks(String),
    #[error("{0}")]
    Config(String),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest wait for any read from the Kubernetes API.
const KUBE_READ_TIMEOUT: Duration = Duration::from_secs(300);

/// Pending connections the kernel may queue before the server accepts them
/// (capped by `net.core.somaxconn`). Every agent of a large cluster reports
/// at about the same moment after a server restart; the usual 128 would
/// drop SYNs and delay those reports by retransmits.
const LISTEN_BACKLOG: u32 = 4096;

/// Bind `address` (host:port, the first address it resolves to).
async fn listen(address: &str) -> std::io::Result<TcpListener> {
    let addr = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the address resolves to nothing",
            )
        })?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Run a server for `config` until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    if !config.ignored.is_empty() {
        tracing::warn!(
            flags = %config.ignored.join(", "),
            "flags of the original's etcd storage are accepted but ignored: reports are kept in memory"
        );
    }
    let address = config.listen_address();
    let listener = listen(&address).await.map_err(|source| Error::Listen {
        address: address.clone(),
        source,
    })?;
    let client = kube_client(&config).await?;
    let auth = report_auth(&config, client.clone())?;
    let (pods, watch) = match client {
        Some(client) => {
            let (view, watch) =
                PodView::watch(client, config.namespace.as_deref(), &config.agent_selector);
            (view, Some(watch))
        }
        None => (PodView::fixed(config.expected_agents.clone()), None),
    };
    run_with_auth(config, listener, pods, watch, auth, shutdown).await
}

/// How reports are authenticated, by `--report-auth` and what there is to
/// verify against: `--report-token-file` when given, else the cluster's
/// service-account issuer through `client`.
pub fn report_auth(config: &Config, client: Option<kube::Client>) -> Result<auth::ReportAuth> {
    use auth::{Mode, ReportAuth};
    let mode = config.report_auth;
    if mode == Mode::Off {
        tracing::info!("reports are not authenticated (--report-auth off)");
        return Ok(ReportAuth::nothing(mode));
    }
    if let Some(path) = &config.report_token_file {
        let secret = secret::SecretFile::open(path)
            .map_err(|e| Error::Config(format!("cannot read --report-token-file {path:?}: {e}")))?;
        tracing::info!(
            ?mode,
            "reports are authenticated with the shared secret of --report-token-file"
        );
        return Ok(ReportAuth::shared(mode, secret));
    }
    match client {
        Some(client) => {
            let issuer = std::sync::Arc::new(auth::issuer::Issuer::new(auth::issuer::KubeIssuer(client)));
            let cap = usize::try_from(config.max_agents).unwrap_or(usize::MAX).saturating_mul(4);
            tracing::info!(?mode, audience = %config.report_auth_audience, "reports are authenticated with ServiceAccount tokens");
            Ok(ReportAuth::issuer(mode, &config.report_auth_audience, issuer, cap))
        }
        None if mode == Mode::Enforce => Err(Error::Config(
            "--report-auth enforce needs something to verify tokens against: Kubernetes (ServiceAccount tokens) or --report-token-file".to_owned(),
        )),
        None => {
            tracing::warn!("reports are not authenticated: no Kubernetes and no --report-token-file (--report-auth warn has nothing to check against)");
            Ok(ReportAuth::nothing(mode))
        }
    }
}

/// The Kubernetes client, or `None` to run without Kubernetes: with
/// `--kube=false`, or when no configuration is there at all (not in a
/// cluster, no KUBECONFIG, no `~/.kube/config`). A configuration that is
/// there but unusable is an error, never a silent fallback.
async fn kube_client(config: &Config) -> Result<Option<kube::Client>> {
    if !config.kube {
        tracing::info!(expected = ?config.expected_agents, "running without Kubernetes (--kube=false)");
        return Ok(None);
    }
    let mut kube_config = match kube::Config::infer().await {
        Ok(c) => c,
        Err(e) if !kube_config_present() => {
            tracing::info!(
                expected = ?config.expected_agents,
                "no Kubernetes configuration found (not in a cluster, no KUBECONFIG, no ~/.kube/config): running without Kubernetes; the expected agents are those that report plus --expected-agents"
            );
            tracing::debug!(error = %e, "Kubernetes configuration lookup");
            return Ok(None);
        }
        Err(e) => return Err(Error::KubeConfig(e)),
    };
    // Without a read timeout a LIST the API never answers hangs the
    // watch forever; watches themselves end within 290 s by request.
    kube_config.read_timeout = Some(KUBE_READ_TIMEOUT);
    kube::Client::try_from(kube_config)
        .map(Some)
        .map_err(Error::Kube)
}

/// Whether any source of a Kubernetes configuration is there: the
/// in-cluster environment, `KUBECONFIG`, or `~/.kube/config`.
fn kube_config_present() -> bool {
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    set("KUBERNETES_SERVICE_HOST")
        || set("KUBECONFIG")
        || std::env::var_os("HOME")
            .is_some_and(|home| std::path::Path::new(&home).join(".kube/config").exists())
}

/// Run with an already bound listener and pod view (tests use this with
/// port 0 and a fake API server); reports are authenticated with
/// `--report-token-file` if given, else not at all.
pub async fn run_on(
    config: Config,
    listener: TcpListener,
    pods: PodView,
    watch: Option<podview::PodWatch>,
    shutdown: CancellationToken,
) -> Result<()> {
    let auth = report_auth(&config, None)?;
    run_with_auth(config, listener, pods, watch, auth, shutdown).await
}

/// Run with an already bound listener, pod view and report authentication.
pub async fn run_with_auth(
    config: Config,
    listener: TcpListener,
    pods: PodView,
    watch: Option<podview::PodWatch>,
    auth: auth::ReportAuth,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut settings = config.settings();
    if let Some(path) = &config.read_token_file {
        settings.read_token =
            Some(secret::SecretFile::open(path).map_err(|e| {
                Error::Config(format!("cannot read --read-token-file {path:?}: {e}"))
            })?);
    }
    let kube = pods.is_kube();
    let issuer = auth.issuer_keys();
    let app = App::with_auth(settings.clone(), pods, auth)?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, kube, selector = %config.agent_selector, "netchecker server listening");
    }
    let tasks = CancellationToken::new();
    if let Some(issuer) = issuer {
        let tasks = tasks.clone();
        tokio::spawn(async move { issuer.keep_fresh(tasks).await });
    }
    let webhooks = config.webhook_settings();
    if !webhooks.urls.is_empty() {
        let urls = webhooks.urls.len();
        let w = webhook::Webhooks::start(webhooks, app.metrics().registry(), tasks.clone())
            .map_err(Error::Webhooks)?;
        app.attach_webhooks(w);
        tracing::info!(urls, "node verdict changes go to webhooks");
    }
    let client = watch.as_ref().map(|w| w.api.clone().into_client());
    let voice = speak(&config, client.as_ref(), &app, &tasks)?;
    if let Some(watch) = watch {
        let poll_every = Duration::from_secs(config.check_interval);
        if settings.mesh.enabled() {
            let nodes = kube::Api::all(watch.api.clone().into_client());
            tokio::spawn(watch::run_nodes(app.clone(), nodes, tasks.clone()));
        }
        tokio::spawn(watch::run(app.clone(), watch, poll_every, tasks.clone()));
    }
    let checks = tokio::spawn(round::run(
        app.clone(),
        Duration::from_secs(config.check_interval),
        tasks.clone(),
    ));
    // At shutdown: no more announcing, step down, deliver what is queued,
    // write the open incidents, and only then let the lease go.
    let draining = {
        let app = app.clone();
        let shutdown = shutdown.clone();
        let within = Duration::from_secs(config.shutdown_timeout);
        async move {
            shutdown.cancelled().await;
            voice.fall_silent(&app, within).await;
        }
    };
    let limits = serve::Limits {
        header_timeout: settings.request_timeout,
        write_timeout: Duration::from_secs(config.write_timeout),
        max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
    };
    let serving = serve::serve(
        listener,
        router(app.clone()),
        limits,
        app.metrics().connections().clone(),
        shutdown,
        Duration::from_secs(config.shutdown_timeout),
    );
    tokio::join!(draining, serving);
    tasks.cancel();
    let _ = checks.await;
    Ok(())
}

/// The tasks behind this replica's voice, stopped in order at shutdown.
struct Voice {
    /// The election: steps down when `stop_election` is cancelled, and
    /// releases the lease once `release` is.
    election: Option<tokio::task::JoinHandle<()>>,
    stop_election: CancellationToken,
    release: CancellationToken,
    /// The open incidents' store: writes a last time when `stop_store` is
    /// cancelled.
    store: Option<tokio::task::JoinHandle<()>>,
    stop_store: CancellationToken,
}

impl Voice {
    /// Announce nothing more, step down, deliver the queued events (for up
    /// to `within`), write the open incidents, then release the lease: the
    /// next leader starts from what this one really sent.
    async fn fall_silent(self, app: &App, within: Duration) {
        app.start_shutdown();
        self.stop_election.cancel();
        app.fall_silent(within).await;
        self.stop_store.cancel();
        if let Some(store) = self.store {
            let _ = tokio::time::timeout(within.max(Duration::from_secs(5)), store).await;
        }
        self.release.cancel();
        if let Some(election) = self.election {
            // The release is bounded.
            let _ = election.await;
        }
    }
}

/// Who speaks, and how: with `--leader-election` and Kubernetes, start the
/// election and the store of open incidents; otherwise this replica is its
/// own leader and keeps its incidents in memory. With `--node-conditions`
/// and Kubernetes, start the task that writes node conditions and Events.
fn speak(
    config: &Config,
    client: Option<&kube::Client>,
    app: &App,
    tasks: &CancellationToken,
) -> Result<Voice> {
    let identity = config.leader_identity();
    let mut voice = Voice {
        election: None,
        stop_election: CancellationToken::new(),
        release: CancellationToken::new(),
        store: None,
        stop_store: CancellationToken::new(),
    };
    match (config.leader_election, client) {
        (true, Some(client)) => {
            let namespace = config.leader_namespace(client.default_namespace());
            let election = leader::lease::Election {
                api: kube::Api::namespaced(client.clone(), &namespace),
                name: config.leader_election_lease.clone(),
                identity: identity.clone(),
                timings: config.election_timings(),
            };
            tracing::info!(%namespace, lease = %election.name, %identity, "leader election on: only the holder of the lease sends webhook events, node conditions and Kubernetes Events");
            let leadership = app.leadership().clone();
            // Silent from the first round on, until elected.
            leadership.candidate();
            if !config.incidents_configmap.is_empty() {
                let store = incidents::store::Store {
                    api: kube::Api::namespaced(client.clone(), &namespace),
                    name: config.incidents_configmap.clone(),
                };
                tracing::info!(%namespace, configmap = %store.name, "open incidents are kept in a ConfigMap for the next leader");
                app.incidents().attach_store();
                voice.store = Some(tokio::spawn(incidents::store::run(
                    store,
                    app.incidents().clone(),
                    voice.stop_store.clone(),
                )));
            }
            voice.election = Some(tokio::spawn(leader::lease::run(
                election,
                leadership,
                voice.stop_election.clone(),
                voice.release.clone(),
            )));
        }
        (true, None) => {
            tracing::info!(
                "--leader-election needs Kubernetes: without it this server is its own leader"
            );
        }
        (false, _) => {}
    }
    if config.node_conditions {
        match client {
            Some(client) => {
                let settings = conditions::WriterSettings {
                    identity,
                    ..conditions::WriterSettings::default()
                };
                let (writer, queue) =
                    conditions::NodeWriter::new(app.metrics().registry(), settings.queue)?;
                tokio::spawn(conditions::write::run(
                    client.clone(),
                    queue,
                    app.leadership().clone(),
                    writer.shared(),
                    settings,
                    tasks.clone(),
                ));
                app.attach_node_writer(writer);
                tracing::info!(
                    "node conditions on: the leader sets NetcheckerNetworkProblem on the nodes and records an Event on each verdict change"
                );
            }
            None => tracing::warn!(
                "--node-conditions needs Kubernetes: no node conditions or Events are written"
            ),
        }
    }
    Ok(voice)
}
