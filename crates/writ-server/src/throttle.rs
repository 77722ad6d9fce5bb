//! Failed authentications, counted by source: a guesser of admin tokens or join tokens,
//! or a replayer of logins, gets a few tries, then one more now and then, and is refused
//! unheard in between; and its refusals stop flooding the audit log.
//!
//! Each source has a bucket of [`BURST`] tries that refills one every [`REFILL`]. A failure
//! takes one; with none left, the source's next attempts are answered 429 before anything
//! is checked, until one has refilled. Successes cost nothing. Failures are audited while
//! the source has tries left; once it is throttled, one event says so for the whole
//! episode, rather than one per attempt. IPv6 sources are counted by /64, so a host
//! cannot take a fresh address per guess.
//!
//! The decisions are made on an [`Instant`] the caller passes, without I/O.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures in a row a source may have before it is throttled.
pub const BURST: u32 = 30;
/// How often a throttled source earns one more try.
pub const REFILL: Duration = Duration::from_secs(2);
/// The most sources remembered; past it, those that have refilled are forgotten first.
const MAX_SOURCES: usize = 100_000;

/// What to do with an attempt from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check its credentials.
    Check,
    /// Refuse it unheard; it may try again after this long. `first` is true for the first
    /// refusal of this episode, which is audited.
    Throttled {
        /// How long until the source has a try again.
        retry_after: Duration,
        /// Whether this is the first refusal since the source ran out of tries.
        first: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tries: f64,
    at: Instant,
    /// Whether this throttling episode's event was audited.
    announced: bool,
}

impl Bucket {
    fn refilled(mut self, now: Instant) -> Bucket {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() / REFILL.as_secs_f64();
        self.tries = (self.tries + earned).min(f64::from(BURST));
        self.at = now;
        if self.tries >= 1.0 {
            self.announced = false;
        }
        self
    }
}

/// Failed authentications by source.
#[derive(Debug, Default)]
pub struct FailureThrottle {
    sources: Mutex<HashMap<IpAddr, Bucket>>,
}

/// The key a source is counted under: an IPv4 address, or an IPv6 /64.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl FailureThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Bucket>> {
        self.sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether to check an attempt from `source` at all.
    pub fn admit(&self, source: IpAddr, now: Instant) -> Admission {
        let mut sources = self.lock();
        let Some(bucket) = sources.get_mut(&source_key(source)) else {
            return Admission::Check;
        };
        *bucket = bucket.refilled(now);
        if bucket.tries >= 1.0 {
            return Admission::Check;
        }
        let first = !bucket.announced;
        bucket.announced = true;
        let retry_after = REFILL.mul_f64(1.0 - bucket.tries);
        Admission::Throttled { retry_after, first }
    }

    /// Counts a failed attempt from `source`.
    pub fn failed(&self, source: IpAddr, now: Instant) {
        let mut sources = self.lock();
        if sources.len() >= MAX_SOURCES {
            sources.retain(|_, b| b.refilled(now).tries < f64::from(BURST));
        }
        let bucket = sources.entry(source_key(source)).or_insert(Bucket {
            tries: f64::from(BURST),
            at: now,
            announced: false,
        });
        *bucket = bucket.refilled(now);
        bucket.tries = (bucket.tries - 1.0).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_source_gets_its_burst_then_one_try_per_refill() {
        let throttle = FailureThrottle::default();
        let t0 = Instant::now();
        let guesser = ip("192.0.2.7");
        for _ in 0..BURST {
            assert_eq!(throttle.admit(guesser, t0), Admission::Check);
            throttle.failed(guesser, t0);
        }
        let Admission::Throttled { retry_after, first } = throttle.admit(guesser, t0) else {
            panic!("not throttled after {BURST} failures");
        };
        assert!(first);
        assert!(retry_after <= REFILL && retry_after > Duration::ZERO);
        // Announced once per episode.
        assert!(matches!(
            throttle.admit(guesser, t0),
            Admission::Throttled { first: false, .. }
        ));
        // Others are not affected.
        assert_eq!(throttle.admit(ip("192.0.2.8"), t0), Admission::Check);
        // One refill later, one more try; failing it throttles again, announced anew.
        let t1 = t0 + REFILL;
        assert_eq!(throttle.admit(guesser, t1), Admission::Check);
        throttle.failed(guesser, t1);
        assert!(matches!(
            throttle.admit(guesser, t1),
            Admission::Throttled { first: true, .. }
        ));
        // A source that stops comes back to its whole burst.
        let later = t1 + REFILL * BURST;
        for _ in 0..BURST {
            assert_eq!(throttle.admit(guesser, later), Admission::Check);
            throttle.failed(guesser, later);
        }
    }

    #[test]
    fn ipv6_sources_are_counted_by_their_64() {
        let throttle = FailureThrottle::default();
        let t0 = Instant::now();
        for i in 0..BURST {
            throttle.failed(ip(&format!("2001:db8:1:2::{i:x}")), t0);
        }
        assert!(matches!(
            throttle.admit(ip("2001:db8:1:2::ffff"), t0),
            Admission::Throttled { .. }
        ));
        assert_eq!(throttle.admit(ip("2001:db8:1:3::1"), t0), Admission::Check);
        // An IPv4 address written as IPv6 is that IPv4 address.
        for _ in 0..BURST {
            throttle.failed(ip("::ffff:198.51.100.1"), t0);
        }
        assert!(matches!(
            throttle.admit(ip("198.51.100.1"), t0),
            Admission::Throttled { .. }
        ));
    }
}
