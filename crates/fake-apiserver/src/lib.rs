//! A fake Kubernetes API server for tests: a small axum app over real HTTP
//! that serves pod and node LIST and WATCH the way the real API does (label
//! and field selectors, resourceVersions, newline-delimited watch events,
//! bookmarks, `410 Gone` on expired versions), so the real kube-rs client
//! and kube-runtime's watcher and reflector can be tested against it
//! through an ordinary kubeconfig (`server: http://127.0.0.1:PORT`).
//! It is also a service-account token issuer: it serves OIDC discovery and
//! a JWKS, mints pod-bound tokens (and forgeries) with test-only keys,
//! rotates keys, and answers TokenReview (see [`issuer`]).
//! For tests of a highly available server it stores Leases, ConfigMaps and
//! Events and takes node status patches, with the real API's optimistic
//! concurrency (`409 Conflict` on a stale resourceVersion), and injects
//! one-shot faults into single requests (see [`faults`]).
//!
//! Tests add, change and delete pods and nodes, mint tokens, inject
//! failures and read request counters through [`FakeApiServer`]; harnesses
//! outside the process use the binary and its `/fake/` control routes (see
//! [`control`]).

#![forbid(unsafe_code)]

/// The Kubernetes API routes and `Status` answers for everything else.
pub mod api;
/// `/fake/` routes that drive the fake from outside the process.
pub mod control;
/// One-shot faults: the next requests of one verb on one resource fail.
pub mod faults;
/// UIDs and default addresses.
pub mod ids;
/// The service-account token issuer: keys, minting, review.
pub mod issuer;
/// Kubeconfig text that points a client at the fake.
pub mod kubeconfig;
/// Ready-made leases; stealing and expiring them.
pub mod leases;
/// Ready-made nodes for tests.
pub mod nodes;
/// What the store needs from a kind; pods, nodes, leases, config maps,
/// events.
pub mod object;
/// Merge, strategic merge and apply patches on JSON.
pub mod patch;
/// Ready-made pods for tests.
pub mod pods;
/// Label and field selector parsing and matching.
pub mod selector;
/// The running server and its test handle.
pub mod server;
/// State shared by handlers: store, failure mode, counters.
pub mod state;
/// Kubernetes `Status` error bodies.
pub mod status;
/// Objects of one kind, the shared resourceVersion clock, the history.
pub mod store;
/// Watch event streams.
pub mod watch;

use axum::Router;
use axum::routing::{delete, get, post, put};

pub use control::{FailureMode, FailureSpec, RequestCounts};
pub use faults::{Fault, Verb};
pub use ids::{default_host_ip, ipv6_twin};
pub use issuer::keys::{FOREIGN_KEY_PEM, ISSUER_KEY_PEMS};
pub use issuer::mint::{MintError, MintedToken, TokenRequest};
pub use issuer::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, KeyInfo, RotateError};
pub use kubeconfig::kubeconfig_yaml;
pub use leases::lease;
pub use nodes::{NodeBuilder, node};
pub use object::Object;
pub use pods::{DEFAULT_SERVICE_ACCOUNT, PodBuilder, agent_pod};
pub use server::FakeApiServer;
pub use state::{AppState, Failure};

/// The whole HTTP surface: the Kubernetes API routes, the `/fake/` control
/// routes, and `Status` 404/405 answers for anything else.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/pods", get(api::all_pods))
        .route(
            "/api/v1/namespaces/{namespace}/pods",
            get(api::namespaced_pods),
        )
        .route("/api/v1/nodes", get(api::nodes))
        .route(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            post(api::tokenreview::create),
        )
        .route(
            "/.well-known/openid-configuration",
            get(api::oidc::discovery),
        )
        .route("/openid/v1/jwks", get(api::oidc::jwks))
        .route("/fake/build/pod", post(control::builders::build_pod))
        .route("/fake/build/node", post(control::builders::build_node))
        .route("/fake/tokens", post(control::tokens::mint_token))
        .route(
            "/fake/issuer",
            get(control::tokens::get_issuer).put(control::tokens::put_issuer),
        )
        .route("/fake/keys/rotate", post(control::tokens::rotate_key))
        .route("/fake/keys/publish", post(control::tokens::publish_keys))
        .route("/fake/keys/{kid}", delete(control::tokens::retire_key))
        .route("/fake/pods", get(control::list_pods).post(control::put_pod))
        .route("/fake/pods/{namespace}/{name}", delete(control::delete_pod))
        .route(
            "/fake/pods/{namespace}/{name}/terminate",
            post(control::terminate_pod),
        )
        .route(
            "/fake/nodes",
            get(control::list_nodes).post(control::put_node),
        )
        .route("/fake/nodes/{name}", delete(control::delete_node))
        .route(
            "/fake/nodes/{name}/terminate",
            post(control::terminate_node),
        )
        .route(
            "/fake/failure",
            put(control::put_failure).get(control::get_failure),
        )
        .route("/fake/requests", get(control::requests))
        .route("/fake/compact", post(control::compact))
        .route("/fake/close-watches", post(control::close_watches))
        .merge(api::routes::routes())
        .merge(control::ha::routes())
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::count_requests,
        ))
        .with_state(state)
}
