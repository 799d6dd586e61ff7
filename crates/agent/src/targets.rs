//! Where a report goes: the endpoints of `--serverendpoint` (a `,`-separated
//! list), and with `--report-to-all-addresses` every address that each
//! endpoint's name resolves to this round, so that every replica of a
//! server behind a headless Service gets every report.
//!
//! The fan-out is bounded: at most [`MAX_TARGETS`] places per round, picked
//! in a stable order (sorted addresses), so that a hostile or broken DNS
//! answer cannot make the agent open hundreds of connections, and so that
//! the same replicas are chosen every round. The counts of each place are
//! kept for [`crate::Stats`], bounded too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;

use crate::Result;

/// Most places one report goes to in one round: endpoints on the command
/// line, or resolved addresses with `--report-to-all-addresses`.
pub const MAX_TARGETS: usize = 16;

/// Most places whose counts are kept; beyond it the one not seen for the
/// longest is forgotten (replicas come and go with their pod addresses).
pub const MAX_COUNTED: usize = 64;

/// Resolves `(host, port)` to socket addresses: the system resolver in the
/// binary ([`system_resolver`]), a fixed list in tests.
pub type Resolver =
    Arc<dyn Fn(String, u16) -> BoxFuture<'static, Result<Vec<SocketAddr>>> + Send + Sync>;

/// getaddrinfo, as for every other name the agent resolves.
pub fn system_resolver() -> Resolver {
    Arc::new(|host, port| Box::pin(async move { crate::transport::resolve(&host, port).await }))
}

/// Split `--serverendpoint` on `,`: trimmed, blanks and repeats dropped,
/// in the order given. A single endpoint is a list of one.
pub fn split_endpoints(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if !out.iter().any(|o| o == e) {
            out.push(e.to_owned());
        }
    }
    out
}

/// The addresses to report to, from `(endpoint index, address)` pairs in
/// the resolvers' order: IPv4-mapped IPv6 addresses taken as IPv4,
/// duplicates dropped (the first endpoint that named one keeps it), sorted,
/// and at most [`MAX_TARGETS`]. Returns them and the ones left out.
pub fn pick(
    resolved: impl IntoIterator<Item = (usize, SocketAddr)>,
) -> (Vec<(usize, SocketAddr)>, Vec<SocketAddr>) {
    let mut unique: BTreeMap<SocketAddr, usize> = BTreeMap::new();
    for (endpoint, addr) in resolved {
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        unique.entry(addr).or_insert(endpoint);
    }
    let mut all: Vec<(usize, SocketAddr)> = unique.into_iter().map(|(a, e)| (e, a)).collect();
    let ignored = all
        .split_off(all.len().min(MAX_TARGETS))
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    (all, ignored)
}

/// Reports one place took and did not take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetCounts {
    /// Rounds whose report this place accepted (after retries, if any).
    pub sent: u64,
    /// Rounds whose report it did not (unreachable, timeout, refusal, or
    /// its name did not resolve).
    pub failed: u64,
}

/// The counts of every place reported to, keyed by `host:port` as given
/// (one connection to the name) or by the address; at most [`MAX_COUNTED`].
#[derive(Debug, Default)]
pub struct Tally(Mutex<TallyInner>);

#[derive(Debug, Default)]
struct TallyInner {
    /// Counts and the sequence number of the last outcome.
    places: BTreeMap<String, (TargetCounts, u64)>,
    seq: u64,
}

impl Tally {
    /// Count one round's outcome at `place`.
    pub fn record(&self, place: &str, accepted: bool) {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        inner.seq += 1;
        let seq = inner.seq;
        if !inner.places.contains_key(place)
            && inner.places.len() >= MAX_COUNTED
            && let Some(oldest) = inner
                .places
                .iter()
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(k, _)| k.clone())
        {
            inner.places.remove(&oldest);
        }
        let (counts, seen) = inner.places.entry(place.to_owned()).or_default();
        *seen = seq;
        if accepted {
            counts.sent += 1;
        } else {
            counts.failed += 1;
        }
    }

    /// The counts so far, by place.
    pub fn counts(&self) -> BTreeMap<String, TargetCounts> {
        let inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .places
            .iter()
            .map(|(k, (c, _))| (k.clone(), *c))
            .collect()
    }
}

/// `place sent N failed M, …` for the summary log line.
pub fn summary(counts: &BTreeMap<String, TargetCounts>) -> String {
    counts
        .iter()
        .map(|(place, c)| format!("{place} sent {} failed {}", c.sent, c.failed))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
