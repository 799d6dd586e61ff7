//! A server in the test process, watching the fake Kubernetes API, on a
//! loopback port: parse the flags, connect through the fake's kubeconfig,
//! start the pod watch and serve until shut down. Shared by the test files
//! that run the Kubernetes side in-process.
#![allow(dead_code)]

use std::net::SocketAddr;

use kube::config::{KubeConfigOptions, Kubeconfig};
use netchecker_fake_apiserver::FakeApiServer;
use netchecker_server::{Config, PodView, run_on};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A server serving on `addr` until `shutdown`; `task` ends with it.
pub struct InProcess {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<()>,
}

/// A client of `api`, through its kubeconfig.
pub async fn kube_client(api: &FakeApiServer) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(&api.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// Start a server with `argv` (the program name first) against `api`.
pub async fn serve<I, T>(api: &FakeApiServer, argv: I) -> InProcess
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString>,
{
    let config = Config::try_parse_args(argv).unwrap();
    let (pods, watch) = PodView::watch(
        kube_client(api).await,
        config.namespace.as_deref(),
        &config.agent_selector,
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            run_on(config, listener, pods, Some(watch), shutdown)
                .await
                .unwrap()
        }
    });
    InProcess {
        addr,
        shutdown,
        task,
    }
}
