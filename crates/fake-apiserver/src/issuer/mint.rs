//! Minting ServiceAccount tokens shaped exactly like the ones the kubelet
//! projects into a pod (bound to the pod, its node and its service
//! account), and the deliberately wrong tokens a forgery test needs.

use std::time::Duration;

use jiff::Timestamp;
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::DEFAULT_AUDIENCE;
use super::keys::{FOREIGN_KEY_PEM, SigningKey};
use crate::ids::{new_uid, stable_uid};
use crate::state::Shared;

/// `signed_by` value that picks the foreign key (never published or trusted).
pub const FOREIGN: &str = "foreign";

/// The lifetime the API server gives kubelet tokens when it extends them
/// (`--service-account-extend-token-expiration`, on by default): a year.
const EXTENDED_LIFETIME: u64 = 365 * 24 * 3600;

/// When the kubelet is warned to refresh (its requested 3607 s).
const WARN_AFTER: u64 = 3607;

/// What to mint: a token for a stored pod, with options that make it wrong
/// in one way. Also the body of `POST /fake/tokens` (camelCase fields,
/// all but `namespace` and `pod` optional).
///
/// ```
/// use std::time::Duration;
/// use netchecker_fake_apiserver::TokenRequest;
///
/// let forged = TokenRequest::for_pod("netchecker", "agent-1")
///     .audience("someone-else")
///     .lifetime(Duration::from_secs(600))
///     .foreign_key();
/// assert_eq!(forged.signed_by.as_deref(), Some("foreign"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[must_use]
pub struct TokenRequest {
    pub namespace: String,
    pub pod: String,
    /// `aud` (default `["netchecker"]`).
    #[serde(default = "default_audiences")]
    pub audiences: Vec<String>,
    /// `iss` instead of the fake's issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Issued two hours ago, expired one hour ago.
    #[serde(default)]
    pub expired: bool,
    /// `exp - iat` (default a year, as extended kubelet tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_seconds: Option<u64>,
    /// Sign with the trusted key with this `kid`, or with the foreign key
    /// (`"foreign"`); default: the current signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// The header's `kid` instead of the signing key's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The pod UID claimed instead of the stored pod's (a stale UID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// The service account claimed instead of the pod's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// The node claimed instead of the pod's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Mint even when the pod is not stored (a fresh UID, service account
    /// `netchecker-agent`, no node unless `node` is given).
    #[serde(default)]
    pub missing_pod: bool,
    /// A JSON merge patch (RFC 7386) applied to the claims last: a value
    /// replaces, `null` removes, objects merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Value>,
}

fn default_audiences() -> Vec<String> {
    vec![DEFAULT_AUDIENCE.to_owned()]
}

impl TokenRequest {
    /// A valid token for the stored pod `namespace/pod`, audience
    /// `netchecker`, signed by the current key.
    pub fn for_pod(namespace: &str, pod: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            audiences: default_audiences(),
            issuer: None,
            expired: false,
            lifetime_seconds: None,
            signed_by: None,
            kid: None,
            pod_uid: None,
            service_account: None,
            node: None,
            missing_pod: false,
            claims: None,
        }
    }

    /// One audience instead of `netchecker`.
    pub fn audience(self, audience: &str) -> Self {
        self.audiences([audience])
    }

    /// These audiences (`aud` is always an array).
    pub fn audiences<'a>(mut self, audiences: impl IntoIterator<Item = &'a str>) -> Self {
        self.audiences = audiences.into_iter().map(str::to_owned).collect();
        self
    }

    /// Another `iss`.
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_owned());
        self
    }

    /// Already expired (an hour ago, beyond any usual clock-skew leeway).
    pub fn expired(mut self) -> Self {
        self.expired = true;
        self
    }

    /// `exp - iat`.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime_seconds = Some(lifetime.as_secs());
        self
    }

    /// Signed by a key the issuer never publishes or trusts (header `kid`
    /// is that key's own, unless [`Self::kid`] says otherwise).
    pub fn foreign_key(mut self) -> Self {
        self.signed_by = Some(FOREIGN.to_owned());
        self
    }

    /// Signed by the trusted key `kid` (an older one, after a rotation).
    pub fn signed_by(mut self, kid: &str) -> Self {
        self.signed_by = Some(kid.to_owned());
        self
    }

    /// This header `kid`, whatever key signs.
    pub fn kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.to_owned());
        self
    }

    /// Claim this pod UID (a stale or made-up one).
    pub fn pod_uid(mut self, uid: &str) -> Self {
        self.pod_uid = Some(uid.to_owned());
        self
    }

    /// Claim this service account.
    pub fn service_account(mut self, name: &str) -> Self {
        self.service_account = Some(name.to_owned());
        self
    }

    /// Claim this node.
    pub fn node(mut self, name: &str) -> Self {
        self.node = Some(name.to_owned());
        self
    }

    /// Allow a pod that is not stored.
    pub fn missing_pod(mut self) -> Self {
        self.missing_pod = true;
        self
    }

    /// Merge this JSON into the claims last (RFC 7386 merge patch).
    pub fn claims(mut self, patch: Value) -> Self {
        self.claims = Some(patch);
        self
    }
}

/// A minted token, with what went into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MintedToken {
    /// The compact JWS.
    pub token: String,
    /// The header's `kid`.
    pub kid: String,
    /// The claims, as signed.
    pub claims: Value,
}

/// Why a token could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    #[error("pods \"{pod}\" not found in \"{namespace}\" (use missing_pod to mint anyway)")]
    NoSuchPod { namespace: String, pod: String },
    #[error("no trusted signing key {0:?}")]
    UnknownKey(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Apply an RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let target = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Mint `request` with the fake's issuer, keys, pods and nodes.
pub(crate) fn mint(state: &Shared, request: &TokenRequest) -> Result<MintedToken, MintError> {
    let (ns, pod_name) = (&request.namespace, &request.pod);
    let (pod_uid, pod_sa, pod_node) = match state.pods.get(ns, pod_name) {
        Some(pod) => {
            let spec = pod.spec.unwrap_or_default();
            let sa = spec
                .service_account_name
                .unwrap_or_else(|| "default".to_owned());
            (pod.metadata.uid.unwrap_or_default(), sa, spec.node_name)
        }
        None if request.missing_pod => {
            let sa = crate::pods::DEFAULT_SERVICE_ACCOUNT.to_owned();
            (new_uid(), sa, None)
        }
        None => {
            return Err(MintError::NoSuchPod {
                namespace: ns.clone(),
                pod: pod_name.clone(),
            });
        }
    };
    let pod_uid = request.pod_uid.clone().unwrap_or(pod_uid);
    let sa = request.service_account.clone().unwrap_or(pod_sa);
    let node = request.node.clone().or(pod_node).map(|name| {
        let uid = state
            .nodes
            .get("", &name)
            .and_then(|n| n.metadata.uid)
            .unwrap_or_else(|| stable_uid("node", &name));
        json!({ "name": name, "uid": uid })
    });

    let key = match request.signed_by.as_deref() {
        None => state.issuer.signing_key(),
        Some(FOREIGN) => SigningKey::from_pem(FOREIGN_KEY_PEM).expect("built-in test key loads"),
        Some(kid) => state
            .issuer
            .key(kid)
            .ok_or_else(|| MintError::UnknownKey(kid.to_owned()))?,
    };

    let now = Timestamp::now().as_second().max(0) as u64;
    let (iat, lifetime) = if request.expired {
        (now - 7200, 3600)
    } else {
        (now, request.lifetime_seconds.unwrap_or(EXTENDED_LIFETIME))
    };
    let mut kubernetes = json!({
        "namespace": ns,
        "pod": { "name": pod_name, "uid": pod_uid },
        "serviceaccount": {
            "name": sa,
            "uid": stable_uid("serviceaccount", &format!("{ns}/{sa}")),
        },
        "warnafter": iat + lifetime.min(WARN_AFTER),
    });
    if let Some(node) = node {
        kubernetes["node"] = node;
    }
    let mut claims = json!({
        "aud": request.audiences,
        "exp": iat + lifetime,
        "iat": iat,
        "iss": request.issuer.clone().unwrap_or_else(|| state.issuer.issuer()),
        "jti": new_uid(),
        "kubernetes.io": kubernetes,
        "nbf": iat,
        "sub": format!("system:serviceaccount:{ns}:{sa}"),
    });
    if let Some(patch) = &request.claims {
        merge_patch(&mut claims, patch);
    }

    let mut header = Header::new(Algorithm::RS256);
    header.typ = None;
    let kid = request.kid.clone().unwrap_or(key.kid.clone());
    header.kid = Some(kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
        .map_err(|e| MintError::Sign(e.to_string()))?;
    Ok(MintedToken { token, kid, claims })
}

#[cfg(test)]
mod tests;
