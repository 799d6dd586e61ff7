//! The signing keys: test-only RSA keys committed as PEM fixtures (see
//! `keys/README.md` in this crate), each with its `kid`, its public JWK and
//! a key to verify with.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Value, json};

/// TEST-ONLY private keys of the fake issuer, in the order rotations use
/// them: the first signs from the start, [`crate::FakeApiServer::rotate_signing_key`]
/// switches to the next. Public in this repository: never trust them.
pub const ISSUER_KEY_PEMS: [&[u8]; 2] = [
    include_bytes!("../../keys/test-only-issuer-1.pem"),
    include_bytes!("../../keys/test-only-issuer-2.pem"),
];

/// A TEST-ONLY private key the issuer never publishes or trusts: tokens
/// signed with it are forgeries.
pub const FOREIGN_KEY_PEM: &[u8] = include_bytes!("../../keys/test-only-foreign.pem");

/// A PEM that is not a usable RSA private key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RSA private key in PEM form: {0}")]
pub struct KeyError(pub String);

/// One RSA signing key.
#[derive(Clone)]
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    /// Base64url (no padding) modulus and exponent.
    n: String,
    e: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Load a PKCS#1 or PKCS#8 RSA private key. Its `kid` is the RFC 7638
    /// thumbprint of the public key, the same kind of opaque, stable,
    /// base64url string the real API server derives from its key.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let encoding = EncodingKey::from_rsa_pem(pem).map_err(|e| KeyError(e.to_string()))?;
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)
            .map_err(|e| KeyError(e.to_string()))?;
        let (n, e) = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => (rsa.n.clone(), rsa.e.clone()),
            _ => return Err(KeyError("not an RSA key".to_owned())),
        };
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| KeyError(e.to_string()))?;
        let decoding =
            DecodingKey::from_rsa_components(&n, &e).map_err(|e| KeyError(e.to_string()))?;
        Ok(Self {
            kid,
            encoding,
            decoding,
            n,
            e,
        })
    }

    /// The public key as a JWKS entry, as the real API server serves it.
    pub(crate) fn jwk(&self) -> Value {
        json!({
            "use": "sig",
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "n": self.n,
            "e": self.e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_load_with_distinct_stable_kids() {
        let a = SigningKey::from_pem(ISSUER_KEY_PEMS[0]).unwrap();
        let b = SigningKey::from_pem(ISSUER_KEY_PEMS[1]).unwrap();
        let f = SigningKey::from_pem(FOREIGN_KEY_PEM).unwrap();
        assert_ne!(a.kid, b.kid);
        assert_ne!(a.kid, f.kid);
        assert_eq!(a.kid, SigningKey::from_pem(ISSUER_KEY_PEMS[0]).unwrap().kid);
        assert_eq!(a.kid.len(), 43, "base64url of a SHA-256");
        let jwk = a.jwk();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["e"], "AQAB");
        let n = jwk["n"].as_str().unwrap();
        assert_eq!(n.len(), 342, "2048-bit modulus, base64url without padding");
        assert!(!n.contains('=') && !n.contains('+') && !n.contains('/'));
    }

    #[test]
    fn rejects_what_is_not_an_rsa_key() {
        assert!(SigningKey::from_pem(b"nonsense").is_err());
    }
}
