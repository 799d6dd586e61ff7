//! The record in a ConfigMap the leader owns (`--incidents-configmap`, in
//! the election's namespace, key `incidents.json`): read by each new
//! leader before it announces anything, written after each change and at
//! shutdown. Only a leader reads or writes it; a write that fails is tried
//! again a second later, and a record that cannot be read after a few
//! tries is given up on (the new leader then takes the verdicts it finds
//! as announced, and says so in its log).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio_util::sync::CancellationToken;

use super::ledger::{STORED_VERSION, Stored};
use super::{Incidents, Work};

/// The ConfigMap key that holds the record.
pub const KEY: &str = "incidents.json";
/// Largest record written (a ConfigMap holds at most 1 MiB).
pub const MAX_STORED: usize = 900 * 1024;
/// Reads of the record before a new leader goes on without it.
const LOAD_ATTEMPTS: u32 = 3;
/// Wait before trying a failed read or write again.
const RETRY: Duration = Duration::from_secs(1);
/// Longest the last write at shutdown may take.
const FINAL_WRITE: Duration = Duration::from_secs(5);

/// Where the record is kept.
pub struct Store {
    pub api: Api<ConfigMap>,
    pub name: String,
}

/// Why a stored record was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error("the record in key {KEY} is not readable: {0}")]
    Unreadable(String),
}

impl Store {
    /// The stored record; `None` when there is none yet.
    pub async fn load(&self) -> Result<Option<Stored>, LoadError> {
        let Some(cm) = self.api.get_opt(&self.name).await? else {
            return Ok(None);
        };
        let Some(text) = cm.data.as_ref().and_then(|d| d.get(KEY)) else {
            return Ok(None);
        };
        let stored: Stored =
            serde_json::from_str(text).map_err(|e| LoadError::Unreadable(e.to_string()))?;
        if stored.version != STORED_VERSION {
            return Err(LoadError::Unreadable(format!(
                "version {} (this server reads {STORED_VERSION})",
                stored.version
            )));
        }
        Ok(Some(stored))
    }

    /// Write `stored` (at most [`MAX_STORED`] bytes), creating the
    /// ConfigMap if needed. Only the leader writes, so a conflict is a
    /// previous leader's late write: read again and overwrite it.
    pub async fn save(&self, mut stored: Stored) -> kube::Result<()> {
        let (events, open) = stored.bounded(MAX_STORED);
        if events + open > 0 {
            tracing::warn!(
                unsent_events = events,
                open_incidents = open,
                limit_bytes = MAX_STORED,
                "the open incidents' record is too large: some are kept in memory only"
            );
        }
        let text = serde_json::to_string(&stored).unwrap_or_default();
        let params = PostParams::default();
        let mut tries = 0;
        loop {
            tries += 1;
            let result = match self.api.get_opt(&self.name).await? {
                None => {
                    let cm = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(self.name.clone()),
                            labels: Some(BTreeMap::from([(
                                "app.kubernetes.io/component".to_owned(),
                                "netchecker-incidents".to_owned(),
                            )])),
                            ..ObjectMeta::default()
                        },
                        data: Some(BTreeMap::from([(KEY.to_owned(), text.clone())])),
                        ..ConfigMap::default()
                    };
                    self.api.create(&params, &cm).await.map(drop)
                }
                Some(mut cm) => {
                    cm.data
                        .get_or_insert_with(BTreeMap::new)
                        .insert(KEY.to_owned(), text.clone());
                    self.api.replace(&self.name, &params, &cm).await.map(drop)
                }
            };
            match result {
                Err(kube::Error::Api(status)) if status.code == 409 && tries < 3 => {}
                other => return other,
            }
        }
    }
}

/// Read and write the record for `incidents` until `stop`; then write it
/// a last time if it changed.
pub async fn run(store: Store, incidents: Arc<Incidents>, stop: CancellationToken) {
    let mut load_failures = 0u32;
    let mut save_failures = 0u64;
    loop {
        let failed = match incidents.work() {
            Work::Load(term) => match store.load().await {
                Ok(stored) => {
                    incidents.count("load", true);
                    load_failures = 0;
                    tracing::info!(
                        configmap = %store.name,
                        open = stored.as_ref().map_or(0, |s| s.open.len()),
                        unsent = stored.as_ref().map_or(0, |s| s.unsent.len()),
                        "read the open incidents of the previous leader"
                    );
                    incidents.install(term, stored, false);
                    false
                }
                Err(e) => {
                    incidents.count("load", false);
                    load_failures += 1;
                    if load_failures >= LOAD_ATTEMPTS {
                        tracing::warn!(configmap = %store.name, error = %e, "cannot read the open incidents of the previous leader; taking the verdicts found now as announced (a recovery that happened meanwhile is not sent; grant get, create and update on this ConfigMap)");
                        incidents.install(term, None, true);
                        load_failures = 0;
                        false
                    } else {
                        tracing::info!(configmap = %store.name, error = %e, "cannot read the open incidents yet; retrying");
                        true
                    }
                }
            },
            Work::Save(term, stored) => match store.save(stored).await {
                Ok(()) => {
                    incidents.count("save", true);
                    save_failures = 0;
                    false
                }
                Err(e) => {
                    incidents.count("save", false);
                    incidents.unsaved(term);
                    save_failures += 1;
                    if save_failures % 30 == 1 {
                        tracing::warn!(configmap = %store.name, error = %e, failures = save_failures, "cannot write the open incidents; retrying (a next leader would send some events again, with the same ids)");
                    }
                    true
                }
            },
            Work::Nothing => {
                tokio::select! {
                    () = incidents.woken() => continue,
                    () = stop.cancelled() => break,
                }
            }
        };
        if failed {
            tokio::select! {
                () = tokio::time::sleep(RETRY) => {}
                () = stop.cancelled() => break,
            }
        }
    }
    if let Work::Save(term, stored) = incidents.work() {
        match tokio::time::timeout(FINAL_WRITE, store.save(stored)).await {
            Ok(Ok(())) => {
                incidents.count("save", true);
                tracing::info!(configmap = %store.name, "open incidents written for the next leader");
            }
            failed => {
                incidents.count("save", false);
                incidents.unsaved(term);
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {FINAL_WRITE:?}"),
                };
                tracing::warn!(configmap = %store.name, %error, "cannot write the open incidents at shutdown; the next leader may send the last events again (same ids)");
            }
        }
    }
}
