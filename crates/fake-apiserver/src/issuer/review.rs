//! Verifying a token the way the API server does for a TokenReview: the
//! issuer, the signature (against every key it trusts), the validity
//! window, the audiences, and the object the token is bound to (the pod
//! must still exist with the claimed UID).

use std::collections::BTreeMap;

use jiff::Timestamp;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use crate::state::Shared;

/// How long after its deletion timestamp a terminating pod's tokens stay
/// valid (the API server allows the same grace).
const DELETION_GRACE: i64 = 60;

/// Who a valid token authenticates, as TokenReview reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewed {
    pub username: String,
    /// The service account's UID.
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
    /// The requested audiences the token is valid for.
    pub audiences: Vec<String>,
}

fn invalid(reason: impl std::fmt::Display) -> String {
    format!("[invalid bearer token, {reason}]")
}

/// The verified claims of `token`, or the `status.error` to report.
fn verified_claims(state: &Shared, token: &str) -> Result<Value, String> {
    let unverified: Value = jsonwebtoken::dangerous::insecure_decode_claims(token)
        .map_err(|e| invalid(format!("token is not a JWT: {e}")))?;
    let issuer = state.issuer.issuer();
    if unverified.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
        return Err(invalid(format!(
            "token issuer {} is not {issuer:?}",
            unverified.get("iss").unwrap_or(&Value::Null)
        )));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false; // checked below, against the review's audiences
    validation.validate_nbf = true;
    for key in state.issuer.trusted_keys() {
        match jsonwebtoken::decode::<Value>(token, &key.decoding, &validation) {
            Ok(data) => return Ok(data.claims),
            Err(err) => match err.kind() {
                ErrorKind::InvalidSignature => continue,
                ErrorKind::ExpiredSignature => {
                    return Err(invalid("service account token has expired"));
                }
                ErrorKind::ImmatureSignature => {
                    return Err(invalid("service account token is not valid yet"));
                }
                _ => return Err(invalid(err)),
            },
        }
    }
    Err(invalid("crypto/rsa: verification error"))
}

fn string_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Review `token` for `audiences` (empty: the API server's own audience,
/// its issuer URL).
pub(crate) fn review(
    state: &Shared,
    token: &str,
    audiences: &[String],
) -> Result<Reviewed, String> {
    let claims = verified_claims(state, token)?;

    let targets = if audiences.is_empty() {
        vec![state.issuer.issuer()]
    } else {
        audiences.to_vec()
    };
    let token_audiences: Vec<String> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let matched: Vec<String> = targets
        .iter()
        .filter(|t| token_audiences.contains(t))
        .cloned()
        .collect();
    if matched.is_empty() {
        return Err(invalid(format!(
            "token audiences {token_audiences:?} is invalid for the target audiences {targets:?}"
        )));
    }

    let namespace = string_at(&claims, "/kubernetes.io/namespace");
    let sa_name = string_at(&claims, "/kubernetes.io/serviceaccount/name");
    let sa_uid = string_at(&claims, "/kubernetes.io/serviceaccount/uid");
    let (Some(namespace), Some(sa_name), Some(sa_uid)) = (namespace, sa_name, sa_uid) else {
        return Err(invalid(
            "token lacks the kubernetes.io service account claims",
        ));
    };

    let mut extra = BTreeMap::new();
    if let Some(pod_name) = string_at(&claims, "/kubernetes.io/pod/name") {
        let claimed = string_at(&claims, "/kubernetes.io/pod/uid").unwrap_or("");
        let Some(pod) = state.pods.get(namespace, pod_name) else {
            return Err(invalid(format!(
                "Token has been invalidated (pods \"{pod_name}\" not found)"
            )));
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if uid != claimed {
            return Err(invalid(format!(
                "Token has been invalidated (pod UID ({uid}) does not match claim ({claimed}))"
            )));
        }
        if let Some(deleted) = &pod.metadata.deletion_timestamp
            && deleted.0.as_second() + DELETION_GRACE < Timestamp::now().as_second()
        {
            return Err(invalid(format!(
                "Token has been invalidated (pod \"{pod_name}\" is being deleted)"
            )));
        }
        extra.insert("authentication.kubernetes.io/pod-name", pod_name.to_owned());
        extra.insert("authentication.kubernetes.io/pod-uid", claimed.to_owned());
    }
    if let Some(node) = string_at(&claims, "/kubernetes.io/node/name") {
        let uid = string_at(&claims, "/kubernetes.io/node/uid").unwrap_or("");
        extra.insert("authentication.kubernetes.io/node-name", node.to_owned());
        extra.insert("authentication.kubernetes.io/node-uid", uid.to_owned());
    }
    if let Some(jti) = claims.get("jti").and_then(Value::as_str) {
        extra.insert(
            "authentication.kubernetes.io/credential-id",
            format!("JTI={jti}"),
        );
    }

    Ok(Reviewed {
        username: format!("system:serviceaccount:{namespace}:{sa_name}"),
        uid: sa_uid.to_owned(),
        groups: vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".to_owned(),
        ],
        extra: extra
            .into_iter()
            .map(|(k, v)| (k.to_owned(), vec![v]))
            .collect(),
        audiences: matched,
    })
}
