//! The election's rules, pure: given what the Lease says, who we are and
//! the time, what to do next; and when a leader that cannot renew must
//! stop acting as one. No I/O and no clock: the runner
//! ([`super::lease`]) passes the times in, and the tests inject them.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// What a Lease says, as far as the election reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// `spec.holderIdentity`; `None` or empty: nobody holds it.
    pub holder: Option<String>,
    /// `spec.renewTime`.
    pub renewed: Option<Timestamp>,
    /// `spec.leaseDurationSeconds`.
    pub duration_seconds: Option<i32>,
    /// `spec.leaseTransitions`.
    pub transitions: Option<i32>,
}

/// What to do with the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// There is none: create it, held by us.
    Create,
    /// We hold it: renew it (`renewTime` now).
    Renew,
    /// Nobody holds it, or its holder let it run out: take it over (we
    /// become the holder, `acquireTime` now, one more transition).
    Acquire,
    /// Someone else holds it and renewed it in time: follow, at least
    /// until `expires`.
    Follow { holder: String, expires: Timestamp },
}

impl Observed {
    /// The holder, if there is one (an empty identity is none: a released
    /// lease).
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref().filter(|h| !h.is_empty())
    }

    /// When the lease runs out: renew time plus its duration (`fallback`
    /// when it gives none). `None` without a renew time.
    pub fn expires(&self, fallback: Duration) -> Option<Timestamp> {
        let seconds = match self.duration_seconds {
            Some(s) if s > 0 => SignedDuration::from_secs(i64::from(s)),
            _ => SignedDuration::try_from(fallback).unwrap_or(SignedDuration::ZERO),
        };
        self.renewed.and_then(|r| r.checked_add(seconds).ok())
    }
}

/// What `me` does at `now` about `lease` (`None`: there is no Lease);
/// `fallback` is the duration of a lease that names none (ours).
pub fn decide(lease: Option<&Observed>, me: &str, now: Timestamp, fallback: Duration) -> Action {
    let Some(lease) = lease else {
        return Action::Create;
    };
    match lease.holder() {
        None => Action::Acquire,
        Some(holder) if holder == me => Action::Renew,
        Some(holder) => match lease.expires(fallback) {
            // Strictly past: at the very instant it runs out, its holder
            // may still be renewing.
            Some(expires) if now <= expires => Action::Follow {
                holder: holder.to_owned(),
                expires,
            },
            _ => Action::Acquire,
        },
    }
}

/// Whether a leader whose last successful renewal started at
/// `last_renewed` must step down at `now`: once the renew deadline has
/// passed without a renewal. The deadline is shorter than the lease, so it
/// stops acting before any other replica may take the lease over.
pub fn must_step_down(last_renewed: Duration, now: Duration, renew_deadline: Duration) -> bool {
    now.saturating_sub(last_renewed) >= renew_deadline
}

/// The timings of an election (`--lease-duration`, `--lease-renew-deadline`,
/// `--lease-retry-period`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl Timings {
    /// Duration > renew deadline > retry period > 0, as client-go demands:
    /// a leader must give up before its lease runs out, and try at least
    /// once more before it gives up.
    pub fn validate(&self) -> Result<(), String> {
        let Timings {
            lease_duration,
            renew_deadline,
            retry_period,
        } = *self;
        if retry_period.is_zero() {
            return Err("--lease-retry-period must be positive".to_owned());
        }
        if lease_duration <= renew_deadline {
            return Err(format!(
                "--lease-duration ({} s) must be longer than --lease-renew-deadline ({} s)",
                lease_duration.as_secs(),
                renew_deadline.as_secs()
            ));
        }
        if renew_deadline <= retry_period {
            return Err(format!(
                "--lease-renew-deadline ({} s) must be longer than --lease-retry-period ({} s)",
                renew_deadline.as_secs(),
                retry_period.as_secs()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn held(holder: &str, renewed: i64, seconds: i32) -> Observed {
        Observed {
            holder: Some(holder.to_owned()),
            renewed: Some(t(renewed)),
            duration_seconds: Some(seconds),
            transitions: Some(3),
        }
    }

    #[test]
    fn no_lease_is_created() {
        assert_eq!(decide(None, "a", t(0), D), Action::Create);
    }

    #[test]
    fn our_own_lease_is_renewed_even_late() {
        assert_eq!(decide(Some(&held("a", 0, 15)), "a", t(1), D), Action::Renew);
        assert_eq!(
            decide(Some(&held("a", 0, 15)), "a", t(99), D),
            Action::Renew
        );
    }

    #[test]
    fn anothers_lease_is_followed_until_it_runs_out() {
        let lease = held("b", 0, 15);
        for now in [0, 1, 14, 15] {
            assert_eq!(
                decide(Some(&lease), "a", t(now), D),
                Action::Follow {
                    holder: "b".to_owned(),
                    expires: t(15)
                },
                "at {now}"
            );
        }
        assert_eq!(decide(Some(&lease), "a", t(16), D), Action::Acquire);
    }

    #[test]
    fn the_leases_own_duration_counts_else_ours() {
        assert_eq!(
            decide(Some(&held("b", 0, 3)), "a", t(4), D),
            Action::Acquire
        );
        let mut no_duration = held("b", 0, 0);
        no_duration.duration_seconds = None;
        assert!(matches!(
            decide(Some(&no_duration), "a", t(14), D),
            Action::Follow { .. }
        ));
        assert_eq!(decide(Some(&no_duration), "a", t(16), D), Action::Acquire);
    }

    #[test]
    fn a_released_or_never_renewed_lease_is_taken() {
        let mut released = held("b", 0, 15);
        released.holder = Some(String::new());
        assert_eq!(decide(Some(&released), "a", t(1), D), Action::Acquire);
        released.holder = None;
        assert_eq!(decide(Some(&released), "a", t(1), D), Action::Acquire);
        let mut never = held("b", 0, 15);
        never.renewed = None;
        assert_eq!(decide(Some(&never), "a", t(1), D), Action::Acquire);
    }

    #[test]
    fn a_leader_steps_down_at_the_renew_deadline_before_the_lease_ends() {
        let s = Duration::from_secs;
        let deadline = s(10);
        assert!(!must_step_down(s(100), s(100), deadline));
        assert!(!must_step_down(s(100), s(109), deadline));
        assert!(must_step_down(s(100), s(110), deadline));
        // A clock that went backwards (never with a monotonic one) does
        // not make a leader step down.
        assert!(!must_step_down(s(100), s(90), deadline));
        let timings = Timings::default();
        assert!(timings.renew_deadline < timings.lease_duration);
    }

    #[test]
    fn timings_must_nest() {
        let s = Duration::from_secs;
        let ok = |d, r, p| {
            Timings {
                lease_duration: s(d),
                renew_deadline: s(r),
                retry_period: s(p),
            }
            .validate()
        };
        assert!(ok(15, 10, 2).is_ok());
        assert!(ok(3, 2, 1).is_ok());
        assert!(ok(10, 10, 2).unwrap_err().contains("--lease-duration"));
        assert!(ok(15, 2, 2).unwrap_err().contains("--lease-renew-deadline"));
        assert!(ok(15, 10, 0).unwrap_err().contains("--lease-retry-period"));
    }
}
