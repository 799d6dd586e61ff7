//! The running fake and the handle tests hold: it serves in a spawned task
//! and stops when the handle is dropped or [`FakeApiServer::shutdown`] runs.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::state::{AppState, Failure, Shared};

/// Leases, config maps, events, node conditions, one-shot faults.
mod ha;
/// Pods, nodes and the resourceVersion history.
mod objects;
/// The token issuer, its keys, and TokenReview counters.
mod tokens;

/// How long [`FakeApiServer::shutdown`] waits for open connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A fake Kubernetes API server listening on a local port.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kube::config::{KubeConfigOptions, Kubeconfig};
/// use netchecker_fake_apiserver::{Failure, FakeApiServer, agent_pod};
///
/// let fake = FakeApiServer::start().await;
/// fake.add_pod(agent_pod("netchecker", "agent-1", "netchecker-agent", "node-a"));
/// let kubeconfig = Kubeconfig::from_yaml(&fake.kubeconfig_yaml())?;
/// let config =
///     kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
/// let client = kube::Client::try_from(config)?;
/// // ... hand `client` to the code under test ...
/// fake.set_failure(Failure::Error(500));
/// # drop(client);
/// assert_eq!(fake.list_requests(), 0);
/// # Ok(())
/// # }
/// ```
pub struct FakeApiServer {
    addr: SocketAddr,
    state: AppState,
    task: Option<JoinHandle<()>>,
}

impl FakeApiServer {
    /// Serve on `127.0.0.1` at a free port.
    ///
    /// # Panics
    /// If no loopback port can be bound, which leaves a test nothing to do.
    pub async fn start() -> Self {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind a loopback port for the fake API server")
    }

    /// Serve on `addr` (port 0 picks a free port).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self::serve(TcpListener::bind(addr).await?))
    }

    /// Serve on an already bound listener.
    pub fn serve(listener: TcpListener) -> Self {
        let addr = listener
            .local_addr()
            .expect("a bound TCP listener has a local address");
        let state = Shared::new(format!("http://{addr}"));
        let app = crate::router(state.clone());
        let stop = state.shutdown.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(%err, "fake API server stopped");
            }
        });
        tracing::debug!(%addr, "fake API server listening");
        Self {
            addr,
            state,
            task: Some(task),
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the server URL for a kubeconfig.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig whose current context points at this server.
    pub fn kubeconfig_yaml(&self) -> String {
        crate::kubeconfig_yaml(&self.url())
    }

    /// Write [`Self::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Inject a failure into API requests (see [`Failure`]).
    pub fn set_failure(&self, failure: Failure) {
        tracing::debug!(?failure, "fake API server failure mode");
        self.state.set_failure(failure);
    }

    /// The failure mode in effect.
    pub fn failure(&self) -> Failure {
        self.state.failure()
    }

    /// Pod LIST requests received so far.
    pub fn list_requests(&self) -> u64 {
        self.state.counters.list()
    }

    /// Pod WATCH requests received so far.
    pub fn watch_requests(&self) -> u64 {
        self.state.counters.watch()
    }

    /// Node LIST requests received so far.
    pub fn node_list_requests(&self) -> u64 {
        self.state.counters.node_list()
    }

    /// Node WATCH requests received so far.
    pub fn node_watch_requests(&self) -> u64 {
        self.state.counters.node_watch()
    }

    /// All requests to the API surface so far (anything but `/fake/`).
    pub fn total_requests(&self) -> u64 {
        self.state.counters.total()
    }

    /// Stop serving: open watches end, held requests are answered 503, and
    /// this waits (a few seconds at most) for connections to finish.
    pub async fn shutdown(mut self) {
        self.state.shutdown.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            tracing::warn!("fake API server: connections still open; aborting");
            task.abort();
        }
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
    }
}
