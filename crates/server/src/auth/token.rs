//! A projected ServiceAccount token, as the kubelet mounts it into an agent
//! pod: a JWT signed by the API server's service-account issuer, with the
//! pod it is bound to in its claims. Verified here offline with the issuer's
//! published keys (signature, issuer, audience, expiry); what the claims
//! must match is checked against the watched pod by [`check_binding`].

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::podview::WatchedPod;

/// The claims a pod-bound token carries about its pod.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Bound {
    pub namespace: String,
    pub pod: Option<Object>,
    pub serviceaccount: Object,
    pub node: Option<Object>,
}

/// A name and uid in the `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Object {
    pub name: String,
    #[serde(default)]
    pub uid: String,
}

#[derive(Deserialize)]
struct Claims {
    exp: i64,
    #[serde(rename = "kubernetes.io")]
    kubernetes: Bound,
}

/// A verified token: when it expires and what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Seconds since the epoch.
    pub exp: i64,
    pub bound: Bound,
}

/// One verification key of the issuer.
#[derive(Clone)]
pub struct Key {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// The issuer's keys by `kid`, from its JWKS document. Keys the server
/// cannot use (other algorithms, no `kid`) are skipped and counted.
pub fn keys_of(jwks: &str) -> Result<(HashMap<String, Key>, usize), String> {
    let set: JwkSet = serde_json::from_str(jwks).map_err(|e| format!("JWKS is not valid: {e}"))?;
    let mut keys = HashMap::new();
    let mut skipped = 0;
    for jwk in &set.keys {
        let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
            (AlgorithmParameters::RSA(_), _) => Algorithm::RS256,
            (AlgorithmParameters::EllipticCurve(ec), _) if ec.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            (AlgorithmParameters::EllipticCurve(ec), _) if ec.curve == EllipticCurve::P384 => {
                Algorithm::ES384
            }
            _ => {
                skipped += 1;
                continue;
            }
        };
        match (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) {
            (Some(kid), Ok(key)) => {
                keys.insert(kid.clone(), Key { alg, key });
            }
            _ => skipped += 1,
        }
    }
    Ok((keys, skipped))
}

/// The `kid` in a token's header, or why there is none.
pub fn kid_of(token: &str) -> Result<String, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
    header
        .kid
        .ok_or_else(|| "the token names no key (kid)".to_owned())
}

/// Verify `token` with `key`: signature, issuer, audience, expiry (and
/// not-before), with a minute of leeway for clocks.
pub fn verify(token: &str, key: &Key, issuer: &str, audience: &str) -> Result<Verified, String> {
    let mut v = Validation::new(key.alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.validate_nbf = true;
    v.required_spec_claims = ["exp", "iss", "aud"].map(String::from).into();
    let data = jsonwebtoken::decode::<Claims>(token, &key.key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::ExpiredSignature => "the token has expired".to_owned(),
            K::InvalidIssuer => format!("the token is not from this cluster's issuer {issuer:?}"),
            K::InvalidAudience => format!("the token is not for audience {audience:?}"),
            K::ImmatureSignature => "the token is not valid yet".to_owned(),
            K::InvalidSignature => "the token's signature does not verify".to_owned(),
            K::InvalidAlgorithm => "the token's algorithm does not match its key".to_owned(),
            K::MissingRequiredClaim(c) => format!("the token has no {c:?} claim"),
            other => format!("the token does not verify: {other:?}"),
        }
    })?;
    Ok(Verified {
        exp: data.claims.exp,
        bound: data.claims.kubernetes,
    })
}

/// Does a token bound to `bound` speak for the watched pod `pod` named
/// `name`? `Err` says why not: another pod's token, a deleted pod's (the
/// uid differs), another service account, namespace or node.
pub fn check_binding(bound: &Bound, name: &str, pod: &WatchedPod) -> Result<(), String> {
    let Some(p) = &bound.pod else {
        return Err("the token is bound to no pod (not a projected pod token)".to_owned());
    };
    if p.name != name {
        return Err(format!(
            "the token belongs to pod {:?}, not {name:?}",
            p.name
        ));
    }
    if bound.namespace != *pod.namespace {
        return Err(format!(
            "the token is from namespace {:?}, the pod runs in {:?}",
            bound.namespace, pod.namespace
        ));
    }
    if p.uid != *pod.uid {
        return Err(format!(
            "the token belongs to an earlier pod named {name:?} (uid {}), not the one watched now",
            p.uid
        ));
    }
    if bound.serviceaccount.name != *pod.service_account {
        return Err(format!(
            "the token is for service account {:?}, the pod runs as {:?}",
            bound.serviceaccount.name, pod.service_account
        ));
    }
    if let (Some(node), Some(pod_node)) = (&bound.node, &pod.node)
        && node.name != **pod_node
    {
        return Err(format!(
            "the token was issued on node {:?}, the pod runs on {pod_node:?}",
            node.name
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AgentKind;

    fn bound(pod: &str, uid: &str) -> Bound {
        Bound {
            namespace: "nc".into(),
            pod: Some(Object {
                name: pod.into(),
                uid: uid.into(),
            }),
            serviceaccount: Object {
                name: "netchecker-agent".into(),
                uid: "sa-1".into(),
            },
            node: Some(Object {
                name: "node-1".into(),
                uid: "n-1".into(),
            }),
        }
    }

    fn watched(uid: &str) -> WatchedPod {
        WatchedPod {
            namespace: "nc".into(),
            uid: uid.into(),
            node: Some("node-1".into()),
            kind: AgentKind::PodNetwork,
            service_account: "netchecker-agent".into(),
            pod_ips: Box::new([]),
            host_ips: Box::new([]),
            terminating: false,
        }
    }

    #[test]
    fn a_token_speaks_only_for_its_own_live_pod() {
        let pod = watched("u-1");
        assert_eq!(check_binding(&bound("a", "u-1"), "a", &pod), Ok(()));
        let cases = [
            (bound("b", "u-1"), "belongs to pod \"b\""),
            (bound("a", "u-0"), "earlier pod"),
            (
                Bound {
                    namespace: "other".into(),
                    ..bound("a", "u-1")
                },
                "namespace",
            ),
            (
                Bound {
                    serviceaccount: Object {
                        name: "default".into(),
                        uid: String::new(),
                    },
                    ..bound("a", "u-1")
                },
                "service account",
            ),
            (
                Bound {
                    node: Some(Object {
                        name: "node-2".into(),
                        uid: String::new(),
                    }),
                    ..bound("a", "u-1")
                },
                "node",
            ),
            (
                Bound {
                    pod: None,
                    ..bound("a", "u-1")
                },
                "bound to no pod",
            ),
        ];
        for (b, want) in cases {
            let err = check_binding(&b, "a", &pod).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
        // Older clusters put no node in the claims: nothing to compare.
        let no_node = Bound {
            node: None,
            ..bound("a", "u-1")
        };
        assert_eq!(check_binding(&no_node, "a", &pod), Ok(()));
    }

    #[test]
    fn keys_come_from_the_jwks_and_unusable_ones_are_skipped() {
        let jwks = r#"{"keys":[
            {"kty":"RSA","alg":"RS256","use":"sig","kid":"k1","n":"sXchLLdG8s5h8aYpmR0q5NsHCd6R6S4f5v2QUpO2gA0xJ1Kr0ZkCgX0kPpnWv1GCQgbrhD4O1-BzEsJ9c6g1Jrcp6WVGYc6uCKJQ1-EOzsJc5JSaOQGDKyhgWsn0FYQdRrL4SBaA6Zlxu_g6N8Ukjo9kS0jvfyJNm1cOEMSqEGfyHbYOZTLcETmdqPL5wrDEgs9fhJTHzkyWFN9uDgsxEFbmwBJzNN1E7fbcPbSB0zl0-KfV6Ld1dZTNNVo4Pb6hTsVhIXpTOB0QQ9iL8_ZFL2EzUAl8PfcUFNr3hnGtT2u77tqw-0bhdzVnhVpwk6S2aHT1kCflfHBlTXL2u4u4Ikw","e":"AQAB"},
            {"kty":"oct","kid":"k2","k":"c2VjcmV0"},
            {"kty":"RSA","n":"AQAB","e":"AQAB"}
        ]}"#;
        let (keys, skipped) = keys_of(jwks).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["k1"]);
        assert_eq!(keys["k1"].alg, Algorithm::RS256);
        assert_eq!(skipped, 2);
        assert!(keys_of("{").is_err());
        assert!(kid_of("not-a-jwt").unwrap_err().contains("not a JWT"));
    }
}
