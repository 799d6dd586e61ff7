//! Helpers shared by the newer integration tests: a kube client from the
//! fake's kubeconfig and a bounded wait.

#![allow(dead_code)]

pub mod issuer;

use std::future::Future;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use netchecker_fake_apiserver::FakeApiServer;

/// Bounded wait for something that happens asynchronously; the bound only
/// keeps a broken build from hanging, it is not a speed assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub async fn client_for(fake: &FakeApiServer) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&fake.kubeconfig_yaml()).expect("kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    Client::try_from(config).expect("client builds")
}

pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain HTTP request through the kube client (which adds the base URL):
/// the JSON body of a success, or the status code of a `Status` failure.
pub async fn send(
    client: &Client,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, u16> {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
        .unwrap();
    match client.request_text(request).await {
        Ok(text) if text.is_empty() => Ok(serde_json::Value::Null),
        Ok(text) => Ok(serde_json::from_str(&text).unwrap()),
        Err(kube::Error::Api(status)) => Err(status.code),
        Err(other) => panic!("{method} {path}: {other:?}"),
    }
}

/// The `(code, reason)` of the `Status` a kube request failed with.
///
/// # Panics
/// If the request succeeded or failed without a `Status`.
pub fn api_error<T: std::fmt::Debug>(result: kube::Result<T>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// An `Api` of a namespaced kind in `namespace` of the fake.
pub async fn namespaced<K>(fake: &FakeApiServer, namespace: &str) -> kube::Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    kube::Api::namespaced(client_for(fake).await, namespace)
}
