//! Delivery of node verdict changes to webhooks.
//!
//! Each URL has its own queue and delivery task, so a slow or failing
//! receiver delays only its own events and never the evaluation loop or
//! report ingest: events are handed over with a non-blocking send, and a
//! full queue drops the event (counted and logged). A delivery is retried
//! with exponential backoff on connection errors, timeouts, 408, 429 and
//! 5xx answers, up to a number of attempts; other 4xx answers are final.

use std::sync::Arc;
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

/// The senders of every URL's queue.
pub struct Webhooks {
    queues: Vec<(String, mpsc::Sender<Bytes>)>,
    counters: Counters,
}

impl Webhooks {
    /// Start one delivery task per URL; they stop at `shutdown` (events
    /// still queued then are dropped, and logged).
    pub fn start(
        settings: WebhookSettings,
        registry: &Registry,
        shutdown: CancellationToken,
    ) -> Result<Self, String> {
        let counters = Counters::new(registry).map_err(|e| e.to_string())?;
        let client = client(settings.timeout)?;
        let settings = Arc::new(settings);
        let mut queues = Vec::new();
        for url in &settings.urls {
            let (tx, rx) = mpsc::channel(settings.queue.max(1));
            tokio::spawn(deliver(
                url.clone(),
                rx,
                client.clone(),
                settings.clone(),
                counters.clone(),
                shutdown.clone(),
            ));
            queues.push((redacted(url), tx));
        }
        Ok(Self { queues, counters })
    }

    /// Queue `event` for every URL without waiting.
    pub fn send(&self, event: &NodeEvent) {
        let body = match serde_json::to_vec(event) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode webhook event");
                return;
            }
        };
        for (url, queue) in &self.queues {
            if queue.try_send(body.clone()).is_err() {
                self.counters.inc("dropped");
                tracing::warn!(webhook = %url, node = ?event.node, "webhook queue full or closed; event dropped");
            }
        }
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
    mut queue: mpsc::Receiver<Bytes>,
    client: HttpClient,
    settings: Arc<WebhookSettings>,
    counters: Counters,
    shutdown: CancellationToken,
) {
    let shown = redacted(&url);
    loop {
        let body = tokio::select! {
            body = queue.recv() => match body { Some(b) => b, None => return },
            () = shutdown.cancelled() => break,
        };
        let mut backoff = settings.first_backoff;
        let mut tries = 1;
        loop {
            let (retry, why) = match attempt(&client, &url, &body, settings.timeout).await {
                Ok(status) if status.is_success() => {
                    counters.inc("delivered");
                    tracing::debug!(webhook = %shown, attempt = tries, "webhook event delivered");
                    break;
                }
                Ok(status) => (retryable(status), format!("answered {status}")),
                Err(why) => (true, why),
            };
            if !retry || tries >= settings.max_attempts {
                counters.inc("failed");
                tracing::warn!(webhook = %shown, attempts = tries, error = %why, "webhook event not delivered; giving up on it");
                break;
            }
            tracing::info!(webhook = %shown, attempt = tries, error = %why, retry_in = ?backoff, "webhook delivery failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.cancelled() => {
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
