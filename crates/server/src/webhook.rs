//! Delivery of node verdict changes to webhooks.
//!
//! Each URL has its own queue and delivery task, so a slow or failing
//! receiver delays only its own events and never the evaluation loop or
//! report ingest: events are handed over with a non-blocking send, and a
//! full queue drops the event (counted and logged). A delivery is retried
//! with exponential backoff on connection errors, timeouts, 408, 429 and
//! 5xx answers, up to a number of attempts; other 4xx answers are final.
//!
//! Each event handed over comes with a [`Receipt`] that tells when every
//! URL is done with it (delivered, given up or dropped), so the leader
//! keeps it for a next leader until then. At shutdown the queues are
//! closed and drained ([`Webhooks::drain`]) before the lease goes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use netchecker_wire::NodeEvent;
use prometheus::{IntCounterVec, Opts, Registry};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::register;

/// How events are delivered.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub urls: Vec<Uri>,
    /// Longest one delivery attempt may take.
    pub timeout: Duration,
    /// Attempts per event, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles per attempt up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Events waiting per URL before new ones are dropped.
    pub queue: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            timeout: Duration::from_secs(10),
            max_attempts: 6,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            queue: 1024,
        }
    }
}

/// A webhook URL: absolute http or https with a host, no credentials.
pub fn validate_url(url: &str) -> Result<Uri, String> {
    let parsed: Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match parsed.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(format!(
                "{url:?}: scheme {other:?} is not supported (http or https)"
            ));
        }
        None => return Err(format!("{url:?} is not an absolute http or https URL")),
    }
    match parsed.authority() {
        Some(a) if a.as_str().contains('@') => Err(format!(
            "{url:?}: credentials in the URL are not supported; put a token in the path or query"
        )),
        Some(a) if !a.host().is_empty() => Ok(parsed),
        _ => Err(format!("{url:?} has no host")),
    }
}

/// The URL without path or query, which may hold secrets: what logs show.
fn redacted(url: &Uri) -> String {
    format!(
        "{}://{}",
        url.scheme_str().unwrap_or(""),
        url.authority().map_or("", |a| a.as_str())
    )
}

#[derive(Clone)]
struct Counters(IntCounterVec);

impl Counters {
    fn new(registry: &Registry) -> prometheus::Result<Self> {
        let c = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "netchecker_webhook_events_total",
                    "Node verdict change events by outcome: delivered, failed (gave up), dropped (queue full)",
                ),
                &["result"],
            )?,
        )?;
        for r in ["delivered", "failed", "dropped"] {
            c.with_label_values(&[r]);
        }
        Ok(Self(c))
    }

    fn inc(&self, result: &str) {
        self.0.with_label_values(&[result]).inc();
    }
}

/// How many URLs are not done with one event yet.
#[derive(Clone, Debug)]
pub struct Receipt(Arc<AtomicUsize>);

impl Receipt {
    fn new(urls: usize) -> Self {
        Self(Arc::new(AtomicUsize::new(urls)))
    }

    /// Nothing to deliver (no webhook is configured).
    pub fn done() -> Self {
        Self::new(0)
    }

    /// Every URL delivered the event, gave up on it or dropped it.
    pub fn is_done(&self) -> bool {
        self.0.load(Ordering::Acquire) == 0
    }

    fn finish_one(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

type Queued = (Bytes, Receipt);

/// The senders of every URL's queue.
pub struct Webhooks {
    /// Emptied at shutdown: the tasks deliver what is queued, then end.
    queues: Mutex<Vec<(String, mpsc::Sender<Queued>)>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    counters: Counters,
}

impl Webhooks {
    /// Start one delivery task per URL. They end once [`Webhooks::drain`]
    /// has closed their queues and they delivered what was queued, or at
    /// `shutdown` (events still queued then stay undelivered, and logged).
    pub fn start(
        settings: WebhookSettings,
        registry: &Registry,
        shutdown: CancellationToken,
    ) -> Result<Self, String> {
        let counters = Counters::new(registry).map_err(|e| e.to_string())?;
        let client = client(settings.timeout)?;
        let settings = Arc::new(settings);
        let mut queues = Vec::new();
        let mut tasks = Vec::new();
        for url in &settings.urls {
            let (tx, rx) = mpsc::channel(settings.queue.max(1));
            tasks.push(tokio::spawn(deliver(
                url.clone(),
                rx,
                client.clone(),
                settings.clone(),
                counters.clone(),
                shutdown.clone(),
            )));
            queues.push((redacted(url), tx));
        }
        Ok(Self {
            queues: Mutex::new(queues),
            tasks: Mutex::new(tasks),
            counters,
        })
    }

    /// Queue `event` for every URL without waiting. The receipt is done
    /// once every URL is done with it; an event that finds the queues
    /// closed (shutdown) is never done: it is kept for the next leader.
    pub fn send(&self, event: &NodeEvent) -> Receipt {
        let queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        if queues.is_empty() {
            // Drained for shutdown: kept for the next leader.
            return Receipt::new(1);
        }
        let receipt = Receipt::new(queues.len());
        let body = match serde_json::to_vec(event) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode webhook event");
                return Receipt::done();
            }
        };
        for (url, queue) in queues.iter() {
            match queue.try_send((body.clone(), receipt.clone())) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    receipt.finish_one();
                    self.counters.inc("dropped");
                    tracing::warn!(webhook = %url, node = ?event.node, "webhook queue full; event dropped");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::info!(webhook = %url, node = ?event.node, "webhook queue closed (shutting down); the event is left to the next leader");
                }
            }
        }
        receipt
    }

    /// Close the queues and wait up to `within` for what they hold to be
    /// delivered (or given up). Whether every queue was emptied.
    pub async fn drain(&self, within: Duration) -> bool {
        self.queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let all = futures::future::join_all(tasks);
        tokio::time::timeout(within, all).await.is_ok()
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

fn client(timeout: Duration) -> Result<HttpClient, String> {
    let roots: rustls::RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS set-up failed: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// One delivery attempt: the answer's status, or why there was none.
async fn attempt(
    client: &HttpClient,
    url: &Uri,
    body: &Bytes,
    timeout: Duration,
) -> Result<StatusCode, String> {
    let request = Request::post(url.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            concat!("netchecker-server/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(body.clone()))
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, client.request(request)).await {
        Ok(Ok(response)) => Ok(response.status()),
        Ok(Err(e)) => Err(format!("{e}: {}", source_chain(&e))),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}

/// Whether an answer is worth another attempt.
fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

async fn deliver(
    url: Uri,
    mut queue: mpsc::Receiver<Queued>,
    client: HttpClient,
    settings: Arc<WebhookSettings>,
    counters: Counters,
    shutdown: CancellationToken,
) {
    let shown = redacted(&url);
    loop {
        let (body, receipt) = tokio::select! {
            body = queue.recv() => match body { Some(b) => b, None => return },
            () = shutdown.cancelled() => break,
        };
        let mut backoff = settings.first_backoff;
        let mut tries = 1;
        loop {
            let (retry, why) = match attempt(&client, &url, &body, settings.timeout).await {
                Ok(status) if status.is_success() => {
                    counters.inc("delivered");
                    receipt.finish_one();
                    tracing::debug!(webhook = %shown, attempt = tries, "webhook event delivered");
                    break;
                }
                Ok(status) => (retryable(status), format!("answered {status}")),
                Err(why) => (true, why),
            };
            if !retry || tries >= settings.max_attempts {
                counters.inc("failed");
                receipt.finish_one();
                tracing::warn!(webhook = %shown, attempts = tries, error = %why, "webhook event not delivered; giving up on it");
                break;
            }
            tracing::info!(webhook = %shown, attempt = tries, error = %why, retry_in = ?backoff, "webhook delivery failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.cancelled() => {
                    // Not given up: left undelivered for the next leader.
                    counters.inc("failed");
                    break;
                }
            }
            backoff = (backoff * 2).min(settings.max_backoff);
            tries += 1;
        }
        if shutdown.is_cancelled() {
            break;
        }
    }
    let left = queue.len();
    if left > 0 {
        tracing::warn!(webhook = %shown, events = left, "shutting down with webhook events not delivered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_logged_without_secrets() {
        assert!(validate_url("https://hooks.example.com/services/T0/B0/secret").is_ok());
        assert!(validate_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(
            validate_url("ftp://example.com/")
                .unwrap_err()
                .contains("scheme")
        );
        assert!(validate_url("not a url").unwrap_err().contains("not a URL"));
        assert!(validate_url("/relative").unwrap_err().contains("absolute"));
        assert!(
            validate_url("https://user:pw@example.com/")
                .unwrap_err()
                .contains("credentials")
        );
        let u = validate_url("https://hooks.example.com:8443/T0/secret?token=x").unwrap();
        assert_eq!(redacted(&u), "https://hooks.example.com:8443");
    }

    #[test]
    fn retries_only_what_may_succeed_later() {
        use StatusCode as S;
        for s in [
            S::INTERNAL_SERVER_ERROR,
            S::BAD_GATEWAY,
            S::SERVICE_UNAVAILABLE,
            S::REQUEST_TIMEOUT,
            S::TOO_MANY_REQUESTS,
        ] {
            assert!(retryable(s), "{s}");
        }
        for s in [S::BAD_REQUEST, S::UNAUTHORIZED, S::FORBIDDEN, S::NOT_FOUND] {
            assert!(!retryable(s), "{s}");
        }
    }
}
