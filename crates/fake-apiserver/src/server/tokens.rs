//! The test handle's methods for the service-account token issuer: its
//! URL, minting, key rotation, and the counters of its routes.

use crate::issuer::mint::{MintError, MintedToken, TokenRequest, mint};
use crate::issuer::{KeyInfo, RotateError};

use super::FakeApiServer;

impl FakeApiServer {
    /// The issuer URL (`iss` of minted tokens and of the discovery
    /// document); default `https://kubernetes.default.svc.cluster.local`.
    pub fn issuer(&self) -> String {
        self.state.issuer.issuer()
    }

    /// Change the issuer URL: tokens minted before no longer pass review.
    pub fn set_issuer(&self, issuer: &str) {
        self.state.issuer.set_issuer(issuer);
    }

    /// The `jwks_uri` the discovery document gives a client that reaches
    /// the fake at [`Self::url`]: `<url>/openid/v1/jwks` unless set.
    pub fn jwks_uri(&self) -> String {
        self.state.issuer.jwks_uri(Some(&self.addr.to_string()))
    }

    /// Make the discovery document name this `jwks_uri` (`None`: derive it
    /// from the address the client used again).
    pub fn set_jwks_uri(&self, uri: Option<&str>) {
        self.state.issuer.set_jwks_uri(uri);
    }

    /// The JWKS as served at `/openid/v1/jwks`.
    pub fn jwks(&self) -> serde_json::Value {
        self.state.issuer.jwks()
    }

    /// Mint a token shaped like a kubelet-projected, pod-bound
    /// ServiceAccount token for a stored pod (see [`TokenRequest`] for the
    /// deliberately wrong variants).
    pub fn mint_token(&self, request: &TokenRequest) -> Result<MintedToken, MintError> {
        mint(&self.state, request)
    }

    /// The `kid` of the key that signs new tokens.
    pub fn signing_kid(&self) -> String {
        self.state.issuer.signing_key().kid
    }

    /// The issuer's keys, oldest first.
    pub fn signing_keys(&self) -> Vec<KeyInfo> {
        self.state.issuer.keys()
    }

    /// Rotate to the next built-in test key (new `kid`): new tokens are
    /// signed with it and TokenReview accepts it at once; the JWKS serves
    /// it now (`publish`) or only after [`Self::publish_signing_keys`].
    /// Older keys stay trusted and published. Returns the new `kid`.
    pub fn rotate_signing_key(&self, publish: bool) -> Result<String, RotateError> {
        self.state.issuer.rotate(publish)
    }

    /// Rotate to a key of the test's own (an RSA private key in PEM).
    pub fn add_signing_key(&self, pem: &[u8], publish: bool) -> Result<String, RotateError> {
        self.state.issuer.add(pem, publish)
    }

    /// Serve every key in the JWKS.
    pub fn publish_signing_keys(&self) {
        self.state.issuer.publish_all();
    }

    /// Stop trusting an older key: it leaves the JWKS and TokenReview
    /// rejects what it signed.
    pub fn retire_signing_key(&self, kid: &str) -> Result<(), RotateError> {
        self.state.issuer.retire(kid)
    }

    /// TokenReview creations received so far.
    pub fn token_review_requests(&self) -> u64 {
        self.state.counters.token_reviews()
    }

    /// Discovery document requests received so far.
    pub fn discovery_requests(&self) -> u64 {
        self.state.counters.discovery()
    }

    /// JWKS requests received so far.
    pub fn jwks_requests(&self) -> u64 {
        self.state.counters.jwks()
    }

    /// Every request counter at once.
    pub fn request_counts(&self) -> crate::RequestCounts {
        crate::RequestCounts::of(&self.state.counters)
    }
}
