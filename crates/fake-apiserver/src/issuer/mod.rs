//! The service-account token issuer: its URL, its signing keys (one signs,
//! all trusted ones verify, the published ones are served in the JWKS),
//! key rotation, and the discovery document and JWKS the real API server
//! serves at `/.well-known/openid-configuration` and `/openid/v1/jwks`.

/// The test-only RSA keys and their JWKs.
pub mod keys;
/// Minting pod-bound ServiceAccount tokens.
pub mod mint;
/// Verifying tokens as TokenReview does.
pub mod review;

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use keys::{ISSUER_KEY_PEMS, KeyError, SigningKey};

/// The issuer a cluster's API server uses unless configured otherwise.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The audience netchecker agents request their tokens for.
pub const DEFAULT_AUDIENCE: &str = "netchecker";

/// A signing key as the control API and [`crate::FakeApiServer::signing_keys`]
/// describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    pub kid: String,
    /// Served in the JWKS.
    pub published: bool,
    /// Signs new tokens (the newest key).
    pub signing: bool,
}

/// Why a key operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotateError {
    #[error("every built-in test key is in use; add one with add_signing_key")]
    NoMoreKeys,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("key {0:?} is already a signing key")]
    Duplicate(String),
    #[error("no signing key {0:?}")]
    UnknownKid(String),
    #[error("key {0:?} signs new tokens; rotate first")]
    StillSigning(String),
}

#[derive(Debug)]
struct Entry {
    key: SigningKey,
    published: bool,
}

#[derive(Debug)]
struct State {
    issuer: String,
    jwks_uri: Option<String>,
    /// Trusted keys, oldest first; the last one signs.
    keys: Vec<Entry>,
    /// Index of the next built-in key a rotation uses.
    next_builtin: usize,
}

/// The issuer's state, shared by handlers and the test handle.
#[derive(Debug)]
pub struct Issuer {
    state: Mutex<State>,
    /// `http://ADDR` of the fake, for the default `jwks_uri`.
    base_url: String,
}

impl Issuer {
    /// The default issuer, signing with the first built-in test key.
    pub(crate) fn new(base_url: String) -> Self {
        let first = SigningKey::from_pem(ISSUER_KEY_PEMS[0]).expect("built-in test key loads");
        Self {
            state: Mutex::new(State {
                issuer: DEFAULT_ISSUER.to_owned(),
                jwks_uri: None,
                keys: vec![Entry {
                    key: first,
                    published: true,
                }],
                next_builtin: 1,
            }),
            base_url,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `iss` of minted tokens and of the discovery document.
    pub fn issuer(&self) -> String {
        self.lock().issuer.clone()
    }

    pub(crate) fn set_issuer(&self, issuer: &str) {
        self.lock().issuer = issuer.to_owned();
    }

    /// The `jwks_uri` of the discovery document: as set, else the JWKS
    /// route under `http://<host>` (the `Host` the client used, when given)
    /// or under the fake's own URL.
    pub fn jwks_uri(&self, host: Option<&str>) -> String {
        if let Some(uri) = &self.lock().jwks_uri {
            return uri.clone();
        }
        match host {
            Some(host) => format!("http://{host}/openid/v1/jwks"),
            None => format!("{}/openid/v1/jwks", self.base_url),
        }
    }

    pub(crate) fn set_jwks_uri(&self, uri: Option<&str>) {
        self.lock().jwks_uri = uri.map(str::to_owned);
    }

    /// The OpenID discovery document, as the real API server serves it.
    pub fn discovery(&self, host: Option<&str>) -> Value {
        json!({
            "issuer": self.issuer(),
            "jwks_uri": self.jwks_uri(host),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// The JWKS: the public halves of the published keys.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .lock()
            .keys
            .iter()
            .filter(|e| e.published)
            .map(|e| e.key.jwk())
            .collect();
        json!({ "keys": keys })
    }

    /// The key that signs new tokens.
    pub(crate) fn signing_key(&self) -> SigningKey {
        let state = self.lock();
        state
            .keys
            .last()
            .expect("the issuer always has a key")
            .key
            .clone()
    }

    /// A trusted key by `kid`.
    pub(crate) fn key(&self, kid: &str) -> Option<SigningKey> {
        let state = self.lock();
        let entry = state.keys.iter().find(|e| e.key.kid == kid)?;
        Some(entry.key.clone())
    }

    /// Every trusted key (TokenReview verifies with all of them, published
    /// or not, as the API server knows its own keys).
    pub(crate) fn trusted_keys(&self) -> Vec<SigningKey> {
        self.lock().keys.iter().map(|e| e.key.clone()).collect()
    }

    /// The keys, oldest first.
    pub fn keys(&self) -> Vec<KeyInfo> {
        let state = self.lock();
        let last = state.keys.len() - 1;
        state
            .keys
            .iter()
            .enumerate()
            .map(|(i, e)| KeyInfo {
                kid: e.key.kid.clone(),
                published: e.published,
                signing: i == last,
            })
            .collect()
    }

    /// Switch to the next built-in test key; it is served in the JWKS now
    /// or only after [`Self::publish_all`]. Returns its `kid`.
    pub(crate) fn rotate(&self, publish: bool) -> Result<String, RotateError> {
        let next = self.lock().next_builtin;
        let pem = ISSUER_KEY_PEMS.get(next).ok_or(RotateError::NoMoreKeys)?;
        let kid = self.add(pem, publish)?;
        self.lock().next_builtin = next + 1;
        Ok(kid)
    }

    /// Switch to a key given as PEM. Returns its `kid`.
    pub(crate) fn add(&self, pem: &[u8], publish: bool) -> Result<String, RotateError> {
        let key = SigningKey::from_pem(pem)?;
        let mut state = self.lock();
        if state.keys.iter().any(|e| e.key.kid == key.kid) {
            return Err(RotateError::Duplicate(key.kid));
        }
        let kid = key.kid.clone();
        state.keys.push(Entry {
            key,
            published: publish,
        });
        Ok(kid)
    }

    /// Serve every key in the JWKS.
    pub(crate) fn publish_all(&self) {
        for entry in &mut self.lock().keys {
            entry.published = true;
        }
    }

    /// Stop trusting a key: it leaves the JWKS and TokenReview rejects
    /// tokens it signed. The signing key cannot be retired.
    pub(crate) fn retire(&self, kid: &str) -> Result<(), RotateError> {
        let mut state = self.lock();
        let index = state
            .keys
            .iter()
            .position(|e| e.key.kid == kid)
            .ok_or_else(|| RotateError::UnknownKid(kid.to_owned()))?;
        if index == state.keys.len() - 1 {
            return Err(RotateError::StillSigning(kid.to_owned()));
        }
        state.keys.remove(index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kids(jwks: &Value) -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn discovery_points_at_the_jwks() {
        let issuer = Issuer::new("http://127.0.0.1:1".to_owned());
        let doc = issuer.discovery(None);
        assert_eq!(doc["issuer"], DEFAULT_ISSUER);
        assert_eq!(doc["jwks_uri"], "http://127.0.0.1:1/openid/v1/jwks");
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["RS256"])
        );
        assert_eq!(
            issuer.discovery(Some("198.18.0.1:6443"))["jwks_uri"],
            "http://198.18.0.1:6443/openid/v1/jwks"
        );
        issuer.set_jwks_uri(Some("https://example.test/keys"));
        issuer.set_issuer("https://issuer.test");
        let doc = issuer.discovery(Some("ignored"));
        assert_eq!(doc["jwks_uri"], "https://example.test/keys");
        assert_eq!(doc["issuer"], "https://issuer.test");
    }

    #[test]
    fn rotation_publishing_and_retirement() {
        let issuer = Issuer::new(String::new());
        let first = issuer.signing_key().kid;
        assert_eq!(kids(&issuer.jwks()), vec![first.clone()]);
        let second = issuer.rotate(false).unwrap();
        assert_eq!(issuer.signing_key().kid, second);
        assert_eq!(
            kids(&issuer.jwks()),
            vec![first.clone()],
            "not published yet"
        );
        assert_eq!(issuer.trusted_keys().len(), 2);
        issuer.publish_all();
        assert_eq!(kids(&issuer.jwks()), [first.clone(), second.clone()]);
        assert_eq!(issuer.rotate(true), Err(RotateError::NoMoreKeys));
        assert_eq!(
            issuer.retire(&second),
            Err(RotateError::StillSigning(second.clone()))
        );
        issuer.retire(&first).unwrap();
        assert_eq!(kids(&issuer.jwks()), vec![second.clone()]);
        assert!(issuer.key(&first).is_none());
        assert_eq!(
            issuer.retire("nope"),
            Err(RotateError::UnknownKid("nope".to_owned()))
        );
        let foreign = issuer.add(keys::FOREIGN_KEY_PEM, true).unwrap();
        assert!(matches!(
            issuer.add(keys::FOREIGN_KEY_PEM, true),
            Err(RotateError::Duplicate(k)) if k == foreign
        ));
        let infos = issuer.keys();
        assert_eq!(infos.len(), 2);
        assert!(infos[1].signing && infos[1].published && !infos[0].signing);
    }
}
