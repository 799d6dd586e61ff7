//! State shared by the HTTP handlers and the test handle: the stores of
//! every kind (pods, nodes, leases, config maps, events) on one
//! resourceVersion clock, the injected failure mode and one-shot faults,
//! request counters and the shutdown signal.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod};

use crate::faults::Faults;
use crate::issuer::Issuer;
use crate::object::Object;
use crate::store::{Clock, DEFAULT_HISTORY_LIMIT, Store};

/// A failure the fake API injects into API requests: pod and node LIST and
/// WATCH, and (all but the LIST- and WATCH-only modes) discovery, the JWKS
/// and TokenReview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Failure {
    /// Serve normally.
    #[default]
    None,
    /// Answer every API request with this HTTP status and a Kubernetes
    /// `Status` body. Open watch streams are closed, as when a real API
    /// server goes away, so watching clients notice. A status outside
    /// 400..=599 is served as 500.
    Error(u16),
    /// Hold every new request unanswered for as long as this mode is set
    /// (the request proceeds once the mode changes). Open watch streams are
    /// closed, so watching clients reconnect into the hang.
    Hang,
    /// Close every open watch stream now, once; the mode then stays `None`.
    CloseWatches,
    /// Hold every new LIST unanswered while this mode is set; WATCH is
    /// served. Open watches stay open: pair it with
    /// [`crate::FakeApiServer::compact_history`] and
    /// [`crate::FakeApiServer::close_watches`] to make a watcher relist into
    /// the stall.
    HangList,
    /// Answer every new WATCH with one `ERROR` event carrying a `410 Gone`
    /// (`Expired`) status, then end it, as a real API server does when its
    /// watch cache no longer reaches the requested version; LIST is served.
    /// Open watch streams are closed, so watching clients reconnect into it.
    GoneOnWatch,
    /// Answer every new WATCH with `403 Forbidden`, as the real API does for
    /// a service account whose RBAC grants `list` but not `watch` (the
    /// original netchecker's ClusterRole in kubespray); LIST is served. Open
    /// watch streams are closed, so watching clients reconnect into it.
    ForbidWatch,
}

/// Request counters, readable while the server runs.
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) list: AtomicU64,
    pub(crate) watch: AtomicU64,
    pub(crate) node_list: AtomicU64,
    pub(crate) node_watch: AtomicU64,
    pub(crate) token_reviews: AtomicU64,
    pub(crate) discovery: AtomicU64,
    pub(crate) jwks: AtomicU64,
    pub(crate) leases: AtomicU64,
    pub(crate) config_maps: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) node_status: AtomicU64,
    pub(crate) total: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Pod LIST requests received (also those answered with a failure).
    pub fn list(&self) -> u64 {
        self.list.load(Ordering::Relaxed)
    }

    /// Pod WATCH requests received (also those answered with a failure).
    pub fn watch(&self) -> u64 {
        self.watch.load(Ordering::Relaxed)
    }

    /// Node LIST requests received (also those answered with a failure).
    pub fn node_list(&self) -> u64 {
        self.node_list.load(Ordering::Relaxed)
    }

    /// Node WATCH requests received (also those answered with a failure).
    pub fn node_watch(&self) -> u64 {
        self.node_watch.load(Ordering::Relaxed)
    }

    /// TokenReview creations received (also those answered with a failure).
    pub fn token_reviews(&self) -> u64 {
        self.token_reviews.load(Ordering::Relaxed)
    }

    /// `GET /.well-known/openid-configuration` requests received.
    pub fn discovery(&self) -> u64 {
        self.discovery.load(Ordering::Relaxed)
    }

    /// `GET /openid/v1/jwks` requests received.
    pub fn jwks(&self) -> u64 {
        self.jwks.load(Ordering::Relaxed)
    }

    /// Lease requests received (every verb, also those answered with a
    /// failure).
    pub fn leases(&self) -> u64 {
        self.leases.load(Ordering::Relaxed)
    }

    /// ConfigMap requests received (every verb).
    pub fn config_maps(&self) -> u64 {
        self.config_maps.load(Ordering::Relaxed)
    }

    /// Event requests received (every verb, both APIs).
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Requests to `/api/v1/nodes/{name}/status` received.
    pub fn node_status(&self) -> u64 {
        self.node_status.load(Ordering::Relaxed)
    }

    /// Every request to the Kubernetes API surface (anything outside
    /// `/fake/`), including unknown paths.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// Everything a handler needs, behind one `Arc`.
pub struct Shared {
    /// The cluster-wide resourceVersion counter both stores share.
    pub(crate) clock: Arc<Clock>,
    pub(crate) pods: Store<Pod>,
    pub(crate) nodes: Store<Node>,
    pub(crate) leases: Store<Lease>,
    pub(crate) config_maps: Store<ConfigMap>,
    /// Events of both APIs, stored as core v1 Events (as the real API
    /// stores them); see [`crate::api::events`].
    pub(crate) events: Store<Event>,
    /// The keys of stored events, oldest first, to drop the oldest when
    /// there are too many.
    pub(crate) event_order: Mutex<VecDeque<(String, String)>>,
    /// One-shot faults not used up yet.
    pub(crate) faults: Faults,
    /// The service-account token issuer: URL and keys.
    pub(crate) issuer: Issuer,
    pub(crate) counters: Counters,
    /// The current failure mode (never `CloseWatches`: that is an action).
    failure: watch::Sender<Failure>,
    /// Bumped to close every open watch stream.
    close_watches: watch::Sender<u64>,
    pub(crate) shutdown: CancellationToken,
}

/// Cheap handle to the shared state, used as axum state.
pub type AppState = Arc<Shared>;

impl Shared {
    /// Fresh state for a fake reached at `base_url` (`http://ADDR`).
    pub(crate) fn new(base_url: String) -> AppState {
        let clock = Arc::new(Clock::default());
        Arc::new(Self {
            pods: Store::with_clock(clock.clone(), DEFAULT_HISTORY_LIMIT),
            nodes: Store::with_clock(clock.clone(), DEFAULT_HISTORY_LIMIT),
            leases: Store::with_clock(clock.clone(), DEFAULT_HISTORY_LIMIT),
            config_maps: Store::with_clock(clock.clone(), DEFAULT_HISTORY_LIMIT),
            events: Store::with_clock(clock.clone(), DEFAULT_HISTORY_LIMIT),
            event_order: Mutex::default(),
            faults: Faults::default(),
            clock,
            issuer: Issuer::new(base_url),
            counters: Counters::default(),
            failure: watch::channel(Failure::None).0,
            close_watches: watch::channel(0).0,
            shutdown: CancellationToken::new(),
        })
    }

    /// The failure mode requests are served with now.
    pub(crate) fn failure(&self) -> Failure {
        *self.failure.borrow()
    }

    pub(crate) fn set_failure(&self, failure: Failure) {
        let mode = match failure {
            Failure::CloseWatches => Failure::None,
            other => other,
        };
        self.failure.send_replace(mode);
        let closes = !matches!(mode, Failure::None | Failure::HangList);
        if closes || failure == Failure::CloseWatches {
            self.close_all_watches();
        }
    }

    /// Forget the watch history of every kind.
    pub(crate) fn compact(&self) {
        self.pods.compact();
        self.nodes.compact();
        self.leases.compact();
        self.config_maps.compact();
        self.events.compact();
    }

    /// End every open watch stream, leaving the failure mode as it is.
    pub(crate) fn close_all_watches(&self) {
        self.close_watches
            .send_modify(|generation| *generation += 1);
    }

    /// A receiver that changes whenever open watches must close.
    pub(crate) fn close_signal(&self) -> watch::Receiver<u64> {
        self.close_watches.subscribe()
    }

    /// Wait while the failure mode is `Hang` (or `HangList` for a LIST).
    /// Returns `None` if the server shuts down meanwhile.
    pub(crate) async fn wait_unless_hanging(&self, list: bool) -> Option<()> {
        let mut rx = self.failure.subscribe();
        let holds = move |f: &Failure| *f == Failure::Hang || (list && *f == Failure::HangList);
        tokio::select! {
            mode = rx.wait_for(|f| !holds(f)) => mode.ok().map(|_| ()),
            () = self.shutdown.cancelled() => None,
        }
    }
}

/// A kind the API routes serve: where its store and its counters are.
pub(crate) trait Served: Object {
    fn store(state: &Shared) -> &Store<Self>;
    /// The LIST and WATCH counters of this kind.
    fn counters(counters: &Counters) -> (&AtomicU64, &AtomicU64);
}

/// Kinds with one counter for every request on them.
macro_rules! served_with_one_counter {
    ($($kind:ty => $store:ident, $counter:ident;)*) => {$(
        impl Served for $kind {
            fn store(state: &Shared) -> &Store<Self> {
                &state.$store
            }

            fn counters(counters: &Counters) -> (&AtomicU64, &AtomicU64) {
                (&counters.$counter, &counters.$counter)
            }
        }
    )*};
}

served_with_one_counter! {
    Lease => leases, leases;
    ConfigMap => config_maps, config_maps;
    Event => events, events;
}

impl Served for Pod {
    fn store(state: &Shared) -> &Store<Self> {
        &state.pods
    }

    fn counters(counters: &Counters) -> (&AtomicU64, &AtomicU64) {
        (&counters.list, &counters.watch)
    }
}

impl Served for Node {
    fn store(state: &Shared) -> &Store<Self> {
        &state.nodes
    }

    fn counters(counters: &Counters) -> (&AtomicU64, &AtomicU64) {
        (&counters.node_list, &counters.node_watch)
    }
}
