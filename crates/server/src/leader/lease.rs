//! The election on the Kubernetes API, with client-go's semantics, on a
//! `coordination.k8s.io/v1` Lease: every retry period, read the Lease and
//! do what [`decide`] says (create it, renew it, take it over, or follow);
//! a `409 Conflict` (someone wrote it since we read it) is answered by
//! reading it again. A leader that has not renewed within the renew
//! deadline steps down, before the lease runs out for the others. At
//! shutdown the leader releases the lease (no holder) so that another
//! replica takes over at its next retry, not a lease duration later.
//!
//! Times: tokio's clock for the deadlines (tests can pause it), the wall
//! clock for what is written into the Lease (other replicas read it).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Leadership;
use super::decide::{Action, Observed, Timings, decide, must_step_down};

/// Longest the release at shutdown may take.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads and writes of one attempt, at most (a conflict costs one more).
const ATTEMPTS: usize = 3;

/// One replica's candidacy.
#[derive(Clone)]
pub struct Election {
    /// The Leases of the namespace the lease lives in.
    pub api: Api<Lease>,
    /// The Lease's name (`--leader-election-lease`).
    pub name: String,
    /// Who we are (`POD_NAME`, else the hostname).
    pub identity: String,
    pub timings: Timings,
}

/// What one attempt found.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// We hold the lease, renewed (or acquired) now.
    Held,
    /// Another replica holds it.
    Followed(String),
}

/// Run the election until `shutdown`, telling `leadership` the result;
/// then step down and, if we held the lease, release it once `release` is
/// cancelled (after the last events are delivered and the open incidents
/// written: the next leader starts from them).
pub async fn run(
    election: Election,
    leadership: Leadership,
    shutdown: CancellationToken,
    release: CancellationToken,
) {
    leadership.candidate();
    let Timings {
        renew_deadline,
        retry_period,
        ..
    } = election.timings;
    tracing::info!(
        lease = %election.name,
        identity = %election.identity,
        "leader election: candidate for the lease"
    );
    let epoch = Instant::now();
    // While we lead: when our last successful renewal started.
    let mut renewed: Option<Duration> = None;
    let mut failures = 0u64;
    loop {
        let started = Instant::now().duration_since(epoch);
        // A leader's attempt may take no longer than its deadline leaves.
        let limit = match renewed {
            Some(at) => (at + renew_deadline)
                .saturating_sub(started)
                .max(Duration::from_millis(10)),
            None => renew_deadline,
        };
        let attempt = tokio::time::timeout(limit, election.attempt(Timestamp::now()));
        let outcome = tokio::select! {
            outcome = attempt => outcome,
            () = shutdown.cancelled() => break,
        };
        match outcome {
            Ok(Ok(Outcome::Held)) => {
                renewed = Some(started);
                failures = 0;
                leadership.lead(&election.identity);
            }
            Ok(Ok(Outcome::Followed(holder))) => {
                renewed = None;
                failures = 0;
                leadership.follow(Some(holder.as_str()), "another replica holds the lease");
            }
            failed => {
                let (error, forbidden) = match failed {
                    Ok(Err(e)) => (e.to_string(), is_status(&e, 403)),
                    _ => (format!("no answer within {limit:?}"), false),
                };
                failures += 1;
                // The first failure, then every 30th: a lasting outage
                // does not flood the log.
                if failures % 30 == 1 {
                    let hint = if forbidden {
                        "; grant get, create and update on coordination.k8s.io leases in this namespace to the server's service account"
                    } else {
                        ""
                    };
                    tracing::warn!(%error, failures, lease = %election.name, "leader election: cannot read or write the lease; retrying{hint}");
                }
                let now = Instant::now().duration_since(epoch);
                if renewed.is_some_and(|at| must_step_down(at, now, renew_deadline)) {
                    renewed = None;
                    leadership.follow(
                        None,
                        "the lease could not be renewed within the renew deadline",
                    );
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(retry_period) => {}
            () = shutdown.cancelled() => break,
        }
    }
    if leadership.is_leader() {
        leadership.follow(None, "shutting down");
        release.cancelled().await;
        match tokio::time::timeout(RELEASE_TIMEOUT, election.release(Timestamp::now())).await {
            Ok(Ok(true)) => {
                tracing::info!(lease = %election.name, "leader election: lease released for the next replica")
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "leader election: cannot release the lease; another replica takes over once it runs out")
            }
            Err(_) => tracing::warn!(
                "leader election: releasing the lease timed out; another replica takes over once it runs out"
            ),
        }
    }
}

impl Election {
    /// Read the lease and act on it; after a conflict, read it again.
    async fn attempt(&self, now: Timestamp) -> kube::Result<Outcome> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.step(now).await {
                Err(e) if is_conflict(&e) && tries < ATTEMPTS => {
                    tracing::debug!(error = %e, "leader election: the lease changed under us; reading it again");
                }
                other => return other,
            }
        }
    }

    async fn step(&self, now: Timestamp) -> kube::Result<Outcome> {
        let current = self.api.get_opt(&self.name).await?;
        let observed = current.as_ref().map(observe);
        let action = decide(
            observed.as_ref(),
            &self.identity,
            now,
            self.timings.lease_duration,
        );
        let params = PostParams::default();
        match (action, current) {
            (Action::Follow { holder, .. }, _) => Ok(Outcome::Followed(holder)),
            (Action::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(now, 0)),
                };
                self.api.create(&params, &lease).await?;
                Ok(Outcome::Held)
            }
            (Action::Renew, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                spec.renew_time = Some(micro(now));
                spec.lease_duration_seconds = Some(self.duration_seconds());
                self.api.replace(&self.name, &params, &lease).await?;
                Ok(Outcome::Held)
            }
            (Action::Acquire, Some(mut lease)) => {
                let transitions = observed.and_then(|o| o.transitions).unwrap_or(0);
                lease.spec = Some(self.spec(now, transitions.saturating_add(1)));
                self.api.replace(&self.name, &params, &lease).await?;
                Ok(Outcome::Held)
            }
        }
    }

    /// A spec held by us from `now`.
    fn spec(&self, now: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration_seconds()),
            acquire_time: Some(micro(now)),
            renew_time: Some(micro(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.timings.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// Give the lease up if we still hold it: no holder, renewed now, for
    /// one second, as client-go releases it. `false`: not ours any more.
    async fn release(&self, now: Timestamp) -> kube::Result<bool> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(false);
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(false);
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(micro(now));
        spec.acquire_time = Some(micro(now));
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        Ok(true)
    }
}

/// What the election reads of a Lease.
fn observe(lease: &Lease) -> Observed {
    let spec = lease.spec.clone().unwrap_or_default();
    Observed {
        holder: spec.holder_identity,
        renewed: spec.renew_time.map(|t| t.0),
        duration_seconds: spec.lease_duration_seconds,
        transitions: spec.lease_transitions,
    }
}

/// A time as the API stores it: whole microseconds.
fn micro(t: Timestamp) -> MicroTime {
    MicroTime(Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t))
}

/// `409`: the lease changed since we read it (or was created meanwhile).
fn is_conflict(e: &kube::Error) -> bool {
    is_status(e, 409)
}

/// The API answered `code`.
fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == code)
}

#[cfg(test)]
mod tests;
