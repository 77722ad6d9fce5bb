//! Rate limits (token buckets) and quotas (requests per period), kept in memory per
//! gateway process. Time is passed in, so the arithmetic is tested without waiting.
//!
//! And what an unauthenticated client can make the gateway hold: the bytes of request
//! bodies read before their request is authenticated ([`BodyBudget`]), and connections
//! per client address ([`ClientConnections`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// The bytes the gateway may hold, across all connections, in request bodies read before
/// their request is authenticated (a webhook's: its signature covers the body). A body
/// is read only into bytes reserved here first, and they come back when the reservation
/// is dropped. One atomic counter, taken from without a lock.
#[derive(Debug)]
pub struct BodyBudget {
    limit: usize,
    used: AtomicUsize,
}

impl BodyBudget {
    /// A budget of `limit` bytes, none of them reserved.
    pub fn new(limit: usize) -> BodyBudget {
        BodyBudget {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// How many bytes it holds in all.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many bytes are reserved now.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Reserves `bytes`, or `None` (and nothing reserved) if fewer are left.
    pub fn reserve(&self, bytes: usize) -> Option<Reserved<'_>> {
        // Not `then_some`: a `Reserved` made and dropped would give back what was
        // never taken.
        if self.take(bytes) {
            Some(Reserved {
                budget: self,
                bytes,
            })
        } else {
            None
        }
    }

    fn take(&self, bytes: usize) -> bool {
        bytes == 0
            || self
                .used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                    used.checked_add(bytes).filter(|&total| total <= self.limit)
                })
                .is_ok()
    }
}

/// Bytes reserved from a [`BodyBudget`], given back when this is dropped.
#[derive(Debug)]
pub struct Reserved<'a> {
    budget: &'a BodyBudget,
    bytes: usize,
}

impl Reserved<'_> {
    /// How many bytes it holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Reserves `more` bytes besides; `false` (and nothing more reserved) if fewer are
    /// left.
    pub fn grow(&mut self, more: usize) -> bool {
        let taken = self.budget.take(more);
        if taken {
            self.bytes += more;
        }
        taken
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

/// The connections open from each client, with a limit per client. A client is an IPv4
/// address, or an IPv6 /64 (what one host is usually given, so that an attacker cannot
/// take a fresh address per connection). Counted once when a connection is accepted and
/// once when it ends, never per request.
#[derive(Debug)]
pub struct ClientConnections {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl ClientConnections {
    /// At most `limit` connections per client; 0 for no limit.
    pub fn new(limit: usize) -> Arc<ClientConnections> {
        Arc::new(ClientConnections {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a connection from `address`, or `None` if its client has `limit` open
    /// already. The connection is counted until the slot is dropped.
    pub fn open(self: &Arc<Self>, address: IpAddr) -> Option<ClientSlot> {
        if self.limit == 0 {
            return Some(ClientSlot(None));
        }
        let client = client_of(address);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(client).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ClientSlot(Some((self.clone(), client))))
    }

    /// How many connections `address`'s client has open (counted only with a limit).
    pub fn open_from(&self, address: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&client_of(address)).copied().unwrap_or(0)
    }
}

/// The client an address counts for: the IPv4 address (also when mapped into IPv6), or
/// the IPv6 address's /64.
fn client_of(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// One counted connection of a client's; uncounted when dropped.
#[derive(Debug)]
pub struct ClientSlot(Option<(Arc<ClientConnections>, IpAddr)>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Some((clients, client)) = self.0.take() {
            let mut open = clients.open.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = open.get_mut(&client) {
                *count -= 1;
                if *count == 0 {
                    open.remove(&client);
                }
            }
        }
    }
}

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
    fn a_body_budget_reserves_up_to_its_limit_and_takes_back_what_is_dropped() {
        let budget = BodyBudget::new(100);
        let mut a = budget.reserve(60).unwrap();
        assert_eq!(budget.in_use(), 60);
        // More than is left: refused, and nothing taken.
        assert!(budget.reserve(41).is_none());
        assert_eq!(budget.in_use(), 60);
        let b = budget.reserve(40).unwrap();
        assert_eq!(budget.in_use(), 100);
        // Spent: even a byte is refused, and so is growing; nothing is reserved empty.
        assert!(budget.reserve(1).is_none());
        assert!(!a.grow(1));
        assert_eq!(a.bytes(), 60);
        assert!(budget.reserve(0).is_some());
        drop(b);
        assert_eq!(budget.in_use(), 60);
        assert!(a.grow(40));
        assert_eq!((a.bytes(), budget.in_use()), (100, 100));
        drop(a);
        assert_eq!(budget.in_use(), 0);
        // No overflow past usize::MAX: refused.
        let _one = budget.reserve(1).unwrap();
        assert!(budget.reserve(usize::MAX).is_none());
        assert_eq!(budget.in_use(), 1);
        assert_eq!(budget.limit(), 100);
    }

    #[test]
    fn a_body_budget_is_shared_by_threads_without_losing_count() {
        let budget = Arc::new(BodyBudget::new(1000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let budget = budget.clone();
                std::thread::spawn(move || {
                    let mut got = 0;
                    for _ in 0..1000 {
                        if let Some(mut r) = budget.reserve(7) {
                            if r.grow(3) {
                                got += 1;
                            }
                            assert!(budget.in_use() <= 1000);
                        }
                    }
                    got
                })
            })
            .collect();
        let got: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(got > 0);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn connections_are_limited_per_client_and_counted_until_they_end() {
        let clients = ClientConnections::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = clients.open(a).unwrap();
        let second = clients.open(a).unwrap();
        assert!(clients.open(a).is_none(), "a third from the same address");
        // The same address mapped into IPv6 is the same client.
        assert!(clients.open("::ffff:192.0.2.1".parse().unwrap()).is_none());
        let other = clients.open(b).unwrap();
        assert_eq!(clients.open_from(a), 2);
        drop(first);
        assert_eq!(clients.open_from(a), 1);
        let again = clients.open(a).unwrap();

        // IPv6: one /64 is one client, whatever its interface identifiers.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let x = clients.open(v6("2001:db8:1:2::1")).unwrap();
        let y = clients.open(v6("2001:db8:1:2:ffff::9")).unwrap();
        assert!(clients.open(v6("2001:db8:1:2:abcd::1")).is_none());
        assert!(clients.open(v6("2001:db8:1:3::1")).is_some());

        // Every slot dropped: nothing left counted, nothing left in the table.
        drop((second, again, other, x, y));
        assert_eq!(clients.open_from(a), 0);
        assert!(clients.open.lock().unwrap().is_empty());

        // 0: no limit.
        let unlimited = ClientConnections::new(0);
        let slots: Vec<_> = (0..1000).map(|_| unlimited.open(a).unwrap()).collect();
        assert_eq!(slots.len(), 1000);
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
