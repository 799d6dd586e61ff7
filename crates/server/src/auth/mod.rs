//! Reports that prove who sent them.
//!
//! With Kubernetes, an agent sends the projected ServiceAccount token the
//! kubelet mounts into its pod (`Authorization: Bearer ...`, audience
//! `--report-auth-audience`). The server verifies it offline against the
//! API server's service-account issuer ([`issuer`], [`token`]): signature,
//! issuer, audience and expiry, then that it is bound to the very pod the
//! report is for (its name, its uid, so a deleted pod's token dies with the
//! pod, its namespace, service account and node). Each token is verified
//! once and remembered until it expires (keyed by a keyed hash of the
//! token), so a report costs a hash and a lookup.
//!
//! Without Kubernetes, a shared secret (`--report-token-file`) plays the
//! token's part.
//!
//! `--report-auth` decides what a failure costs: `off` checks nothing,
//! `warn` accepts the report but counts and shows the failure, `enforce`
//! refuses it (401 without or with an invalid token, 403 with a valid
//! token for another pod).

pub mod issuer;
pub mod token;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

use netchecker_wire::AuthResult;
use subtle::ConstantTimeEq;

use crate::podview::{PodView, WatchedPod};
use crate::secret::SecretFile;
use issuer::{Issuer, KeyError, KubeIssuer};
use token::{Verified, check_binding, kid_of, verify};

/// What a failed check costs a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// Check nothing.
    Off,
    /// Check, count and show failures, accept the report anyway.
    #[default]
    Warn,
    /// Refuse a report that does not prove its sender.
    Enforce,
}

/// Longest bearer token looked at (projected tokens are about 1 KB).
pub const MAX_TOKEN: usize = 16 * 1024;

/// What was learned of a report's sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not checked: `--report-auth off`, or nothing to check against.
    Unchecked,
    Ok,
    /// No bearer token.
    Missing,
    /// A token that does not verify: why.
    Invalid(String),
    /// A valid token that does not speak for this agent: why.
    Forbidden(String),
}

impl Verdict {
    /// The result shown in `/api/v2/status` and counted in metrics.
    pub fn result(&self) -> Option<AuthResult> {
        match self {
            Verdict::Unchecked => None,
            Verdict::Ok => Some(AuthResult::Ok),
            Verdict::Missing => Some(AuthResult::Missing),
            Verdict::Invalid(_) => Some(AuthResult::Invalid),
            Verdict::Forbidden(_) => Some(AuthResult::Forbidden),
        }
    }
}

enum Source {
    /// Nothing to verify against.
    Nothing,
    /// A shared secret, re-read when its file changes.
    Shared(SecretFile),
    /// The cluster's service-account issuer.
    Issuer(Arc<Issuer<KubeIssuer>>),
}

/// Verified tokens by a keyed hash of the token, until they expire.
struct TokenCache {
    hasher: RandomState,
    verified: HashMap<u64, Verified>,
    cap: usize,
}

impl TokenCache {
    fn get(&self, hash: u64, now: i64) -> Option<&Verified> {
        self.verified.get(&hash).filter(|v| v.exp > now)
    }

    fn put(&mut self, hash: u64, verified: Verified, now: i64) {
        if self.verified.len() >= self.cap {
            self.verified.retain(|_, v| v.exp > now);
        }
        // Still full of live tokens: verify without remembering.
        if self.verified.len() < self.cap {
            self.verified.insert(hash, verified);
        }
    }
}

/// How reports are authenticated.
pub struct ReportAuth {
    pub mode: Mode,
    audience: String,
    source: Source,
    cache: Mutex<TokenCache>,
}

impl ReportAuth {
    fn with(mode: Mode, audience: &str, source: Source, cap: usize) -> Self {
        let source = if mode == Mode::Off {
            Source::Nothing
        } else {
            source
        };
        Self {
            mode,
            audience: audience.to_owned(),
            source,
            cache: Mutex::new(TokenCache {
                hasher: RandomState::new(),
                verified: HashMap::new(),
                cap: cap.max(1024),
            }),
        }
    }

    /// Nothing to check against (without Kubernetes and without a shared
    /// secret): every report is unchecked.
    pub fn nothing(mode: Mode) -> Self {
        Self::with(mode, "", Source::Nothing, 0)
    }

    /// A shared secret (`--report-token-file`).
    pub fn shared(mode: Mode, secret: SecretFile) -> Self {
        Self::with(mode, "", Source::Shared(secret), 0)
    }

    /// ServiceAccount tokens of audience `audience`, verified with the keys
    /// of the cluster's issuer; up to `cap` verified tokens remembered.
    pub fn issuer(mode: Mode, audience: &str, issuer: Arc<Issuer<KubeIssuer>>, cap: usize) -> Self {
        Self::with(mode, audience, Source::Issuer(issuer), cap)
    }

    /// Whether anything is checked at all.
    pub fn checks(&self) -> bool {
        !matches!(self.source, Source::Nothing)
    }

    /// The issuer, to keep its keys fresh (`None` without one).
    pub fn issuer_keys(&self) -> Option<Arc<Issuer<KubeIssuer>>> {
        match &self.source {
            Source::Issuer(i) => Some(i.clone()),
            _ => None,
        }
    }

    /// What the `Authorization` header `header` proves about agent `name`.
    pub async fn check(&self, name: &str, header: Option<&[u8]>, pods: &PodView) -> Verdict {
        let secret_or_issuer = match &self.source {
            Source::Nothing => return Verdict::Unchecked,
            other => other,
        };
        let Some(token) = header.and_then(bearer) else {
            return Verdict::Missing;
        };
        match secret_or_issuer {
            Source::Shared(secret) => {
                if same_secret(token, &secret.current()) {
                    Verdict::Ok
                } else {
                    Verdict::Invalid("the token is not the one in --report-token-file".to_owned())
                }
            }
            Source::Issuer(issuer) => self.check_token(name, token, issuer, pods).await,
            Source::Nothing => Verdict::Unchecked,
        }
    }

    async fn check_token(
        &self,
        name: &str,
        token: &str,
        issuer: &Issuer<KubeIssuer>,
        pods: &PodView,
    ) -> Verdict {
        let now = jiff::Timestamp::now().as_second();
        let hash = {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            cache.hasher.hash_one(token)
        };
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hash, now)
            .cloned();
        let verified = match cached {
            Some(v) => v,
            None => {
                let key = match kid_of(token) {
                    Ok(kid) => issuer.key(&kid).await,
                    Err(why) => return Verdict::Invalid(why),
                };
                let (key, iss) = match key {
                    Ok(found) => found,
                    Err(KeyError::Unknown(why) | KeyError::Unavailable(why)) => {
                        return Verdict::Invalid(why);
                    }
                };
                match verify(token, &key, &iss, &self.audience) {
                    Ok(v) => {
                        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                        cache.put(hash, v.clone(), now);
                        v
                    }
                    Err(why) => return Verdict::Invalid(why),
                }
            }
        };
        let binding = pods.with_watched_pod(name, |pod: Option<&WatchedPod>| match pod {
            Some(pod) => check_binding(&verified.bound, name, pod),
            // No pod to compare with (the view has not synced, or the name
            // is no pod, which ingest refuses anyway): the name must match.
            None => match &verified.bound.pod {
                Some(p) if p.name == name => Ok(()),
                Some(p) => Err(format!(
                    "the token belongs to pod {:?}, not {name:?}",
                    p.name
                )),
                None => Err("the token is bound to no pod".to_owned()),
            },
        });
        match binding {
            Ok(()) => Verdict::Ok,
            Err(why) => Verdict::Forbidden(why),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(header: &[u8]) -> Option<&str> {
    if header.len() > MAX_TOKEN + 7 {
        return None;
    }
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compare a presented secret with the expected one in constant time.
pub fn same_secret(presented: &str, expected: &[u8]) -> bool {
    bool::from(presented.as_bytes().ct_eq(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(bearer(b"Bearer abc.def"), Some("abc.def"));
        assert_eq!(bearer(b"bearer   abc "), Some("abc"));
        assert_eq!(bearer(b"Basic dXNlcg=="), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(&[0xff, 0xfe]), None);
        let huge = format!("Bearer {}", "a".repeat(MAX_TOKEN + 1));
        assert_eq!(bearer(huge.as_bytes()), None);
    }

    fn secret(dir: &tempfile::TempDir, text: &str) -> SecretFile {
        let path = dir.path().join("secret");
        std::fs::write(&path, text).unwrap();
        SecretFile::open(&path).unwrap()
    }

    #[tokio::test]
    async fn a_shared_secret_is_compared_whole() {
        let dir = tempfile::tempdir().unwrap();
        let auth = ReportAuth::shared(Mode::Enforce, secret(&dir, "s3cret\n"));
        let pods = PodView::fixed(Vec::new());
        assert_eq!(
            auth.check("a", Some(b"Bearer s3cret"), &pods).await,
            Verdict::Ok
        );
        assert_eq!(auth.check("a", None, &pods).await, Verdict::Missing);
        for wrong in [&b"Bearer s3cre"[..], b"Bearer s3cret2", b"Bearer S3CRET"] {
            let v = auth.check("a", Some(wrong), &pods).await;
            assert!(matches!(v, Verdict::Invalid(_)), "{v:?}");
        }
        let off = ReportAuth::shared(Mode::Off, secret(&dir, "s3cret"));
        assert_eq!(off.check("a", None, &pods).await, Verdict::Unchecked);
        assert!(!off.checks());
        assert_eq!(
            ReportAuth::nothing(Mode::Warn)
                .check("a", None, &pods)
                .await,
            Verdict::Unchecked
        );
    }

    #[test]
    fn the_cache_forgets_expired_tokens_when_full() {
        let mut c = TokenCache {
            hasher: RandomState::new(),
            verified: HashMap::new(),
            cap: 2,
        };
        let v = |exp| Verified {
            exp,
            bound: token::Bound {
                namespace: String::new(),
                pod: None,
                serviceaccount: token::Object {
                    name: String::new(),
                    uid: String::new(),
                },
                node: None,
            },
        };
        c.put(1, v(100), 50);
        c.put(2, v(60), 50);
        c.put(3, v(100), 50);
        assert_eq!(c.verified.len(), 2, "full of live tokens: not remembered");
        assert!(c.get(3, 50).is_none());
        c.put(3, v(100), 70);
        assert!(c.get(2, 70).is_none(), "expired");
        assert!(c.get(3, 70).is_some(), "room made by the expired one");
        assert!(c.get(1, 100).is_none(), "expired at exp");
    }
}
