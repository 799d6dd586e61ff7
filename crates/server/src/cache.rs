//! The agent cache: pod name -> latest report, bounded in size.
//!
//! A `std::sync::RwLock` guards the map. It is never held across an `.await`
//! (every method here is synchronous and short), so the blocking lock is both
//! correct and cheaper than an async one; reads (checks, scrapes) share it.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use netchecker_wire::{AgentReport, StoredReport};
use tokio::time::Instant;

use crate::domain::{Policy, Reported, Seen};
use crate::verdict::{missed_windows, probe_ok};

mod details;
pub use details::Details;

/// One cached report and the bookkeeping around it.
///
/// The report itself is kept as its compact JSON (without the padding) and
/// parsed again only to be served: parsed, a report's maps and strings take
/// several times the room. What the server judges by is kept beside it.
#[derive(Debug, Clone)]
pub struct Entry {
    json: Box<[u8]>,
    /// Its DNS answers and probes as `GET /api/v2/status` writes them.
    status_details: Details,
    /// The agent's report interval.
    pub interval: Duration,
    pub nodename: Box<str>,
    /// The agent's `hostdate` minus `last_updated`, in seconds.
    pub skew_seconds: f64,
    /// When the server stored the report (its own wall clock).
    pub last_updated: jiff::Timestamp,
    /// Monotonic receive time: freshness never depends on wall-clock jumps.
    pub received: Instant,
    /// The `agent` metric label (`<node>-private_network` / `-host_network`).
    pub agent: String,
    /// Missed windows already added to `ncagent_error_count_total` since
    /// this report arrived.
    pub windows_counted: u64,
    /// Looked-up names that resolved to nothing.
    pub dns_failures: Box<[Box<str>]>,
    /// Who sent the report, as checked (`None` when not checked).
    pub auth: Option<netchecker_wire::AuthResult>,
    /// The URLs of the failing probes (empty for a healthy agent, so the
    /// rules read nothing behind a pointer for it).
    pub failing_probes: Box<[Box<str>]>,
    /// A probe failing here failed in the agent's previous report too;
    /// carried from report to report.
    pub probe_failure_repeated: bool,
    /// How its reports got through lately; carried from report to report
    /// (only for agents that tell, so others cost one pointer).
    pub path: Option<Box<crate::path::PathWindow>>,
    /// When a report of this agent last came over IPv4 and over IPv6
    /// (indexed by `IpFamily`), carried from report to report.
    pub families: [Option<Instant>; 2],
    /// Its probes that fail over one family only (empty off dual-stack).
    pub family_failures: Box<[crate::verdict::FamilyFailure]>,
}

/// The parts of a report that `/api/v2/status` shows in detail.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Detail {
    #[serde(default)]
    pub nslookup: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub network_probes: Vec<netchecker_wire::ProbeResult>,
}

impl Entry {
    /// Keep `report` of metric label `agent`, received at `received` and
    /// `last_updated`, from an agent on `node` (the watched pod's node;
    /// without one, the node the report names).
    pub fn new(
        report: &AgentReport,
        node: Option<&str>,
        agent: String,
        received: Instant,
        last_updated: jiff::Timestamp,
    ) -> Self {
        let json = serde_json::to_vec(report).unwrap_or_default();
        Entry {
            json: json.into_boxed_slice(),
            status_details: Details::of(report),
            interval: Duration::from_secs(report.report_interval),
            nodename: node.unwrap_or(&report.nodename).into(),
            skew_seconds: report
                .hostdate
                .timestamp()
                .duration_since(last_updated)
                .as_secs_f64(),
            last_updated,
            received,
            agent,
            windows_counted: 0,
            auth: None,
            dns_failures: report
                .nslookup
                .iter()
                .filter(|(_, addrs)| addrs.is_empty())
                .map(|(name, _)| name.as_str().into())
                .collect(),
            failing_probes: report
                .network_probes
                .iter()
                .filter(|p| !probe_ok(p))
                .map(|p| p.url.as_str().into())
                .collect(),
            probe_failure_repeated: false,
            path: None,
            families: [None; 2],
            family_failures: Box::new([]),
        }
    }

    pub fn seen(&self) -> Seen {
        Seen {
            received: self.received,
            interval: self.interval,
        }
    }

    /// The report as stored and served.
    pub fn stored(&self) -> StoredReport {
        let report = serde_json::from_slice(&self.json)
            .expect("a stored report is the server's own serialization");
        StoredReport {
            report,
            last_updated: self.last_updated,
        }
    }

    /// Append the report as stored and served (exactly the JSON of
    /// [`Entry::stored`]) to `out`, without parsing it: the kept JSON with
    /// `last_updated` spliced in before its closing brace.
    pub fn write_stored(&self, out: &mut Vec<u8>) {
        let json = &self.json[..];
        match json.last() {
            Some(b'}') if json.len() > 2 => {
                out.extend_from_slice(&json[..json.len() - 1]);
                out.extend_from_slice(b",\"last_updated\":");
                // A timestamp serialises to a quoted string; cannot fail.
                let _ = serde_json::to_writer(&mut *out, &self.last_updated);
                out.push(b'}');
            }
            _ => {
                let _ = serde_json::to_writer(&mut *out, &self.stored());
            }
        }
    }

    /// The stored report as JSON (the original's shape).
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// The report's DNS answers and probes as `GET /api/v2/status` writes
    /// them, without parsing the stored JSON.
    pub fn status_details(&self) -> &Details {
        &self.status_details
    }

    /// The report's DNS answers and probes, parsed from the stored JSON.
    pub fn detail(&self) -> Detail {
        serde_json::from_slice(&self.json).unwrap_or_default()
    }
}

impl Reported for Entry {
    fn seen(&self) -> Seen {
        Entry::seen(self)
    }

    fn node(&self) -> &str {
        &self.nodename
    }

    fn dns_failures(&self) -> impl Iterator<Item = &str> {
        self.dns_failures.iter().map(|n| &**n)
    }

    fn failing_probes(&self) -> impl Iterator<Item = &str> {
        self.failing_probes.iter().map(|u| &**u)
    }

    fn probe_failure_repeated(&self) -> bool {
        self.probe_failure_repeated
    }

    fn path(&self) -> Option<&crate::path::PathWindow> {
        self.path.as_deref()
    }

    fn families(&self) -> [Option<Instant>; 2] {
        self.families
    }

    fn family_failures(&self) -> &[crate::verdict::FamilyFailure] {
        &self.family_failures
    }
}

/// The cache refused a new agent because it already holds `max` agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheFull {
    pub max: usize,
}

/// Missed windows newly found for one agent by [`AgentCache::count_missed_windows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    pub agent: String,
    pub windows: u64,
}

#[derive(Debug)]
pub struct AgentCache {
    /// Sorted by name, so an evaluation walks it beside the sorted expected
    /// agents in one pass (a merge join) without hashing every name.
    entries: RwLock<BTreeMap<String, Entry>>,
    max_agents: usize,
}

impl AgentCache {
    pub fn new(max_agents: usize) -> Self {
        Self {
            entries: RwLock::new(BTreeMap::new()),
            max_agents,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map half-updated
        // (every write is a single insert or remove), so poison is ignored.
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Store `entry` as the latest of agent `name`. A known agent is always
    /// updated; a new one is refused when the cache is full.
    pub fn insert(&self, name: &str, entry: Entry) -> Result<Option<Entry>, CacheFull> {
        self.insert_carrying(name, entry, |_, _| {})
    }

    /// [`AgentCache::insert`], letting `carry` move what outlives one
    /// report (the path window) from the entry it replaces, under the one
    /// write lock.
    pub fn insert_carrying(
        &self,
        name: &str,
        mut entry: Entry,
        carry: impl FnOnce(Option<&mut Entry>, &mut Entry),
    ) -> Result<Option<Entry>, CacheFull> {
        let mut map = self.write();
        if !map.contains_key(name) && map.len() >= self.max_agents {
            return Err(CacheFull {
                max: self.max_agents,
            });
        }
        carry(map.get_mut(name), &mut entry);
        Ok(map.insert(name.to_owned(), entry))
    }

    /// When agent `name` last reported, if it has.
    pub fn get_seen(&self, name: &str) -> Option<crate::domain::Seen> {
        self.read().get(name).map(Entry::seen)
    }

    pub fn get(&self, name: &str) -> Option<StoredReport> {
        self.read().get(name).map(Entry::stored)
    }

    /// Every stored report, sorted by pod name.
    pub fn all(&self) -> BTreeMap<String, StoredReport> {
        self.read()
            .iter()
            .map(|(k, e)| (k.clone(), e.stored()))
            .collect()
    }

    /// Append stored reports after the name `after` (from the first without
    /// one) to `out` as `"name":{report}` members, each after a comma unless
    /// it is the very first of the answer (`first`), until `out` holds
    /// `max_bytes` or more. Returns the last name written, `None` when there
    /// was none left. A long list is written a slice at a time, each under a
    /// short read lock, so an answer never holds a copy of the whole cache.
    pub fn write_page(
        &self,
        after: Option<&str>,
        max_bytes: usize,
        mut first: bool,
        out: &mut Vec<u8>,
    ) -> Option<String> {
        use std::ops::Bound;
        let map = self.read();
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut last = None;
        for (name, entry) in map.range::<str, _>((from, Bound::Unbounded)) {
            if out.len() >= max_bytes {
                break;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            let _ = serde_json::to_writer(&mut *out, name);
            out.push(b':');
            entry.write_stored(out);
            last = Some(name);
        }
        last.cloned()
    }

    pub fn remove(&self, name: &str) -> Option<Entry> {
        self.write().remove(name)
    }

    /// Remove every entry for which `keep` is false; returns the removed ones.
    pub fn remove_unless(
        &self,
        mut keep: impl FnMut(&str, &Entry) -> bool,
    ) -> Vec<(String, Entry)> {
        let mut map = self.write();
        let gone: Vec<String> = map
            .iter()
            .filter(|(k, e)| !keep(k, e))
            .map(|(k, _)| k.clone())
            .collect();
        gone.into_iter()
            .filter_map(|k| map.remove_entry(&k))
            .collect()
    }

    /// Run `f` over the entries under the read lock (never across an await).
    pub fn with_entries<R>(&self, f: impl FnOnce(&BTreeMap<String, Entry>) -> R) -> R {
        f(&self.read())
    }

    /// Advance the missed-window bookkeeping to `now` and return what is new
    /// since the last call, so the error counter moves once per window.
    pub fn count_missed_windows(&self, now: Instant, policy: &Policy) -> Vec<Missed> {
        let mut map = self.write();
        let mut out = Vec::new();
        for e in map.values_mut() {
            let missed = missed_windows(&e.seen(), now, policy);
            if missed > e.windows_counted {
                out.push(Missed {
                    agent: e.agent.clone(),
                    windows: missed - e.windows_counted,
                });
                e.windows_counted = missed;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
