//! The API server's service-account issuer, as OIDC discovery publishes it:
//! `GET /.well-known/openid-configuration` gives the issuer and its
//! `jwks_uri`; the JWKS there gives the keys tokens are signed with. Both
//! are read through the Kubernetes API with the server's own credentials
//! (Kubernetes lets every service account read them), at start, every
//! [`REFRESH_EVERY`], and again when a token names a key not seen yet (a
//! rotation), at most once per [`REFETCH_AT_MOST`] so that forged `kid`s
//! cannot flood the API.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::token::{Key, keys_of};

/// Keys are refetched this often even when every token's key is known, so
/// a key the issuer retires stops being trusted.
pub const REFRESH_EVERY: Duration = Duration::from_secs(600);
/// A token with an unknown `kid` triggers a refetch at most this often.
pub const REFETCH_AT_MOST: Duration = Duration::from_secs(10);

/// Where the keys come from.
pub trait KeySource: Send + Sync + 'static {
    /// The discovery document and the JWKS document, as text.
    fn fetch(&self) -> impl std::future::Future<Output = Result<(String, String), String>> + Send;
}

/// The issuer's keys, fetched through the Kubernetes API.
pub struct KubeIssuer(pub kube::Client);

#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl KubeIssuer {
    async fn get(&self, path: &str) -> Result<String, String> {
        let request = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        self.0
            .request_text(request)
            .await
            .map_err(|e| format!("GET {path}: {e}"))
    }
}

impl KeySource for KubeIssuer {
    async fn fetch(&self) -> Result<(String, String), String> {
        let discovery = self.get("/.well-known/openid-configuration").await?;
        let doc: Discovery = serde_json::from_str(&discovery)
            .map_err(|e| format!("the OIDC discovery document is not valid: {e}"))?;
        // The API server serves its JWKS itself, whatever host jwks_uri
        // names for outside readers: take its path, ask the API server.
        let path = doc
            .jwks_uri
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.path_and_query().map(|p| p.as_str().to_owned()))
            .filter(|p| p.starts_with('/'))
            .unwrap_or_else(|| "/openid/v1/jwks".to_owned());
        let jwks = self.get(&path).await?;
        Ok((discovery, jwks))
    }
}

/// What was fetched last.
#[derive(Default)]
struct Known {
    issuer: Option<String>,
    keys: HashMap<String, Key>,
}

/// The issuer and its keys, refreshed on demand.
pub struct Issuer<S> {
    source: S,
    known: RwLock<Known>,
    /// When the last fetch for an unknown `kid` started; held while it
    /// runs, so reports naming the same new key wait for one fetch.
    last_on_demand: tokio::sync::Mutex<Option<Instant>>,
}

/// Why a token's key could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The issuer does not publish this `kid` (after a refetch, if one was
    /// allowed): a forged or foreign token.
    Unknown(String),
    /// The keys could not be fetched at all.
    Unavailable(String),
}

impl<S: KeySource> Issuer<S> {
    pub fn new(source: S) -> Self {
        Self {
            source,
            known: RwLock::new(Known::default()),
            last_on_demand: tokio::sync::Mutex::new(None),
        }
    }

    fn lookup(&self, kid: &str) -> Option<(Key, String)> {
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        Some((known.keys.get(kid)?.clone(), known.issuer.clone()?))
    }

    /// The key named `kid` and the issuer tokens must name, fetching the
    /// keys again if `kid` is unknown and no such fetch ran within
    /// [`REFETCH_AT_MOST`].
    pub async fn key(&self, kid: &str) -> Result<(Key, String), KeyError> {
        if let Some(found) = self.lookup(kid) {
            return Ok(found);
        }
        let mut last = self.last_on_demand.lock().await;
        // Fetched meanwhile for another report naming the same key.
        if let Some(found) = self.lookup(kid) {
            return Ok(found);
        }
        let now = Instant::now();
        if last.is_none_or(|t| now.saturating_duration_since(t) >= REFETCH_AT_MOST) {
            *last = Some(now);
            self.fetch().await?;
        }
        drop(last);
        self.lookup(kid)
            .ok_or_else(|| KeyError::Unknown(format!("the issuer publishes no key {kid:?}")))
    }

    /// Fetch the issuer and its keys now.
    pub async fn fetch(&self) -> Result<(), KeyError> {
        let (discovery, jwks) = self.source.fetch().await.map_err(KeyError::Unavailable)?;
        let doc: Discovery = serde_json::from_str(&discovery).map_err(|e| {
            KeyError::Unavailable(format!("the OIDC discovery document is not valid: {e}"))
        })?;
        let (keys, skipped) = keys_of(&jwks).map_err(KeyError::Unavailable)?;
        tracing::info!(issuer = %doc.issuer, keys = keys.len(), skipped, "service-account issuer keys fetched");
        *self.known.write().unwrap_or_else(PoisonError::into_inner) = Known {
            issuer: Some(doc.issuer),
            keys,
        };
        Ok(())
    }

    /// Keep the keys fresh until `shutdown`.
    pub async fn keep_fresh(&self, shutdown: tokio_util::sync::CancellationToken) {
        let mut every = tokio::time::interval(REFRESH_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {
                    if let Err(e) = self.fetch().await {
                        tracing::warn!(error = ?e, "cannot fetch the service-account issuer's keys; tokens signed with unknown keys are refused meanwhile");
                    }
                }
                () = shutdown.cancelled() => return,
            }
        }
    }
}
