//! Rate limits (token buckets) and quotas (requests per period), kept in memory per
//! gateway process. Time is passed in, so the arithmetic is tested without waiting.

use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// A token bucket: `burst` tokens, refilled at `per_second`.
#[derive(Debug)]
pub struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(limit: RateLimit, now: Instant) -> Bucket {
        Bucket {
            limit,
            tokens: f64::from(limit.burst),
            last: now,
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens =
            (self.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.limit.per_second,
            ))
        }
    }
}

/// A quota: at most `limit` requests in each period, counted from the first request.
#[derive(Debug)]
pub struct Quota {
    limit: u64,
    period: Duration,
    used: u64,
    since: Instant,
}

impl Quota {
    /// An unused quota.
    pub fn new(limit: u64, period: Duration, now: Instant) -> Quota {
        Quota {
            limit,
            period,
            used: 0,
            since: now,
        }
    }

    /// Counts a request, or says how long until the period starts over.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        if now.saturating_duration_since(self.since) >= self.period {
            self.used = 0;
            self.since = now;
        }
        if self.used < self.limit {
            self.used += 1;
            Ok(())
        } else {
            Err(self
                .period
                .saturating_sub(now.saturating_duration_since(self.since)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(
            RateLimit {
                per_second: 10.0,
                burst: 3,
            },
            t0,
        );
        for _ in 0..3 {
            b.take(t0).unwrap();
        }
        let wait = b.take(t0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        b.take(t0 + Duration::from_millis(100)).unwrap();
        assert!(b.take(t0 + Duration::from_millis(100)).is_err());
        // Refills never exceed the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            b.take(later).unwrap();
        }
        assert!(b.take(later).is_err());
    }

    #[test]
    fn a_quota_counts_per_period() {
        let t0 = Instant::now();
        let mut q = Quota::new(2, Duration::from_secs(60), t0);
        q.take(t0).unwrap();
        q.take(t0 + Duration::from_secs(1)).unwrap();
        let wait = q.take(t0 + Duration::from_secs(20)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(40));
        q.take(t0 + Duration::from_secs(60)).unwrap();
    }
}
