//! A usage plan's quota counted with every other gateway on the same server: what one
//! gateway holds of one API key's quota, as a functional core with no I/O. Time is passed
//! in (Unix milliseconds), so the arithmetic is tested without waiting.
//!
//! Periods are aligned to the wall clock (a period of P seconds starts at every multiple
//! of P since the Unix epoch), so that every gateway counts the same periods. The server
//! keeps the authoritative count per key and period and grants *leases* from it: "up to
//! N admissions of this period", never past the plan's quota. A gateway spends what it
//! holds locally, one admission per request, and asks for the next lease in the background
//! once it holds `lease / 2` or fewer; a request finding nothing held asks for a lease and
//! waits for it. One lease is asked for at a time: requests finding nothing held while one
//! is on its way wait for it rather than ask again.
//!
//! Bounds (with G gateways and a lease size of L):
//! - over-admission: none. An admission is spent only from a lease, and the server's
//!   leases of a period add up to at most the quota. While the server is unreachable a
//!   gateway spends what it holds, then refuses (503): it fails closed for quotas.
//! - under-admission: a gateway holds at most L + L/2 admissions unspent, so when some
//!   gateways go quiet, at most G × (L + L/2) of a period's quota go unused (held by them
//!   when the period ends).

use std::time::Duration;

/// How long a gateway waits after a failed lease request before asking again; requests
/// that find nothing held meanwhile are refused without asking.
pub const RETRY_AFTER_FAILURE_MS: i64 = 1000;

/// The lease size for a quota when the plan names none: a hundredth of the quota, at
/// least 1 and at most 1000.
pub fn default_lease(quota: u64) -> u64 {
    (quota / 100).clamp(1, 1000)
}

/// A request for a lease: the period and how many admissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    /// The period's start, Unix seconds.
    pub period_start: i64,
    /// How many admissions.
    pub want: u64,
}

/// Whether a request may go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Admitted, one admission spent; if `refill` is set, ask for it in the background
    /// ([`SharedQuota::granted`] or [`SharedQuota::failed`] with its answer).
    Yes {
        /// A lease to ask for now, before the admissions held run out.
        refill: Option<Ask>,
    },
    /// Nothing held: ask for this lease, then call [`SharedQuota::admit`] again.
    Ask(Ask),
    /// Nothing held, and a lease is on its way: wait for its answer, then call
    /// [`SharedQuota::admit`] again.
    Wait,
    /// The period's quota is spent, across all gateways: refuse (429) until it ends.
    Exhausted {
        /// How long until the next period.
        retry_after: Duration,
    },
    /// Nothing held and the server could not be asked lately: refuse (503).
    Unavailable {
        /// How long until the gateway asks again.
        retry_after: Duration,
    },
}

/// What one gateway holds of one API key's shared quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedQuota {
    quota: u64,
    period_seconds: u64,
    lease: u64,
    /// The period what is held belongs to.
    period_start: i64,
    /// Admissions held, unspent.
    held: u64,
    /// The server said the period's count is at the quota.
    exhausted: bool,
    /// A lease is being asked for (in the background, or by a request).
    asking: bool,
    /// After a failed lease request: no request asks again before this (Unix ms).
    quiet_until: i64,
}

impl SharedQuota {
    /// Nothing held yet, for a quota of `quota` per `period_seconds` (at least 1),
    /// leased `lease` admissions at a time (1 to `quota`).
    pub fn new(quota: u64, period_seconds: u64, lease: u64) -> SharedQuota {
        SharedQuota {
            quota,
            period_seconds: period_seconds.max(1),
            lease: lease.clamp(1, quota.max(1)),
            period_start: i64::MIN,
            held: 0,
            exhausted: false,
            asking: false,
            quiet_until: i64::MIN,
        }
    }

    /// The quota per period.
    pub fn quota(&self) -> u64 {
        self.quota
    }

    /// The period's length, in seconds.
    pub fn period_seconds(&self) -> u64 {
        self.period_seconds
    }

    /// How many admissions are held, unspent.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// Whether a request finding nothing held would wait ([`Admit::Wait`]): a lease is on
    /// its way. Changes nothing.
    pub fn waiting(&self) -> bool {
        self.held == 0 && self.asking
    }

    /// The start (Unix seconds) of the period `now_ms` is in.
    pub fn period_of(&self, now_ms: i64) -> i64 {
        let seconds = i64::try_from(self.period_seconds).unwrap_or(i64::MAX);
        now_ms.div_euclid(1000).div_euclid(seconds) * seconds
    }

    fn until_next_period(&self, now_ms: i64) -> Duration {
        let seconds = i64::try_from(self.period_seconds).unwrap_or(i64::MAX);
        let end_ms = self
            .period_of(now_ms)
            .saturating_add(seconds)
            .saturating_mul(1000);
        Duration::from_millis(u64::try_from(end_ms.saturating_sub(now_ms)).unwrap_or(0))
    }

    /// Moves to the period of `now_ms`, dropping what was held of an earlier one.
    fn roll(&mut self, now_ms: i64) -> i64 {
        let period = self.period_of(now_ms);
        if period != self.period_start {
            self.period_start = period;
            self.held = 0;
            self.exhausted = false;
            self.asking = false;
        }
        period
    }

    /// Decides a request at `now_ms`.
    pub fn admit(&mut self, now_ms: i64) -> Admit {
        let period = self.roll(now_ms);
        if self.held > 0 {
            self.held -= 1;
            let refill = (!self.exhausted
                && !self.asking
                && now_ms >= self.quiet_until
                && self.held <= self.lease / 2)
                .then(|| {
                    self.asking = true;
                    Ask {
                        period_start: period,
                        want: self.lease,
                    }
                });
            return Admit::Yes { refill };
        }
        if self.exhausted {
            return Admit::Exhausted {
                retry_after: self.until_next_period(now_ms),
            };
        }
        if now_ms < self.quiet_until {
            return Admit::Unavailable {
                retry_after: Duration::from_millis(
                    u64::try_from(self.quiet_until - now_ms).unwrap_or(0),
                ),
            };
        }
        if self.asking {
            return Admit::Wait;
        }
        self.asking = true;
        Admit::Ask(Ask {
            period_start: period,
            want: self.lease,
        })
    }

    /// The server granted `granted` admissions for `ask`, leaving its count of the period
    /// at `counted`. A grant for a period already over is dropped.
    pub fn granted(&mut self, ask: Ask, granted: u64, counted: u64, now_ms: i64) {
        let period = self.roll(now_ms);
        if ask.period_start != period {
            return;
        }
        self.asking = false;
        self.quiet_until = i64::MIN;
        self.held = self.held.saturating_add(granted.min(ask.want));
        if granted < ask.want || counted >= self.quota {
            self.exhausted = true;
        }
    }

    /// Asking for `ask` failed at `now_ms` (the server unreachable, or refusing): the
    /// gateway spends what it holds, and asks again after [`RETRY_AFTER_FAILURE_MS`].
    pub fn failed(&mut self, ask: Ask, now_ms: i64) {
        let period = self.roll(now_ms);
        if ask.period_start == period {
            self.asking = false;
        }
        self.quiet_until = now_ms.saturating_add(RETRY_AFTER_FAILURE_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A time in the period of 60 s starting at 1_800_000_000 - 1_800_000_000 % 60.
    const T0: i64 = 1_799_999_980_000;

    fn yes(a: Admit) -> Option<Ask> {
        match a {
            Admit::Yes { refill } => refill,
            other => panic!("expected admitted, got {other:?}"),
        }
    }

    #[test]
    fn nothing_is_admitted_before_a_lease_and_a_lease_is_spent_one_by_one() {
        let mut q = SharedQuota::new(10, 60, 4);
        let Admit::Ask(ask) = q.admit(T0) else {
            panic!("nothing held: ask")
        };
        assert_eq!(ask.want, 4);
        assert_eq!(ask.period_start % 60, 0);
        assert!(ask.period_start * 1000 <= T0 && T0 < (ask.period_start + 60) * 1000);
        q.granted(ask, 4, 4, T0);
        // 4 held: the first two spend without asking, the third leaves 1 <= 4/2: refill.
        assert_eq!(yes(q.admit(T0)), None);
        assert_eq!(yes(q.admit(T0)), Some(ask));
        // One refill at a time.
        assert_eq!(yes(q.admit(T0)), None);
        assert_eq!(q.held(), 1);
        q.granted(ask, 4, 8, T0);
        assert_eq!(q.held(), 5);
    }

    #[test]
    fn one_lease_is_asked_for_at_a_time_and_others_wait_for_it() {
        let mut q = SharedQuota::new(10, 60, 4);
        let Admit::Ask(ask) = q.admit(T0) else {
            panic!("nothing held: ask")
        };
        // A second request while that lease is on its way waits for it.
        assert!(q.waiting());
        assert_eq!(q.admit(T0), Admit::Wait);
        q.granted(ask, 4, 4, T0);
        yes(q.admit(T0));
        // Spent down to half a lease: a refill is asked for; spent out meanwhile, the
        // next request waits for the refill rather than asking again.
        let refill = yes(q.admit(T0)).unwrap();
        yes(q.admit(T0));
        yes(q.admit(T0));
        assert_eq!(q.held(), 0);
        assert_eq!(q.admit(T0), Admit::Wait);
        q.granted(refill, 4, 8, T0);
        assert_eq!(q.held(), 4);
        assert!(!q.waiting());
    }

    #[test]
    fn a_short_grant_or_a_full_count_means_the_period_is_spent() {
        let mut q = SharedQuota::new(10, 60, 4);
        let Admit::Ask(ask) = q.admit(T0) else {
            panic!()
        };
        // Other gateways took 8: only 2 left.
        q.granted(ask, 2, 10, T0);
        yes(q.admit(T0));
        // No refill once the server said the count is full.
        assert_eq!(yes(q.admit(T0)), None);
        let Admit::Exhausted { retry_after } = q.admit(T0 + 5_000) else {
            panic!("spent")
        };
        // T0 is 20 s before 1_800_000_000, a period's end; 5 s later, 15 s are left.
        assert_eq!(retry_after, Duration::from_secs(15));
        // The next period starts over.
        assert!(matches!(q.admit(T0 + 20_000), Admit::Ask(_)));
    }

    #[test]
    fn held_admissions_do_not_carry_into_the_next_period() {
        let mut q = SharedQuota::new(100, 60, 10);
        let Admit::Ask(ask) = q.admit(T0) else {
            panic!()
        };
        q.granted(ask, 10, 10, T0);
        assert_eq!(q.held(), 10);
        let Admit::Ask(next) = q.admit(T0 + 20_000) else {
            panic!("a new period: nothing held")
        };
        assert_eq!(next.period_start, ask.period_start + 60);
        // A late answer for the old period is dropped.
        q.granted(ask, 10, 20, T0 + 20_000);
        assert_eq!(q.held(), 0);
    }

    #[test]
    fn a_failed_ask_fails_closed_once_nothing_is_held_and_asks_again_later() {
        let mut q = SharedQuota::new(10, 60, 4);
        let Admit::Ask(ask) = q.admit(T0) else {
            panic!()
        };
        q.failed(ask, T0);
        let Admit::Unavailable { retry_after } = q.admit(T0 + 200) else {
            panic!("nothing held, the server just failed")
        };
        assert_eq!(retry_after, Duration::from_millis(800));
        assert!(matches!(q.admit(T0 + 1000), Admit::Ask(_)));
        // Held admissions are spent while a refill fails.
        q.granted(ask, 4, 4, T0 + 1000);
        yes(q.admit(T0 + 1000));
        let refill = yes(q.admit(T0 + 1000)).unwrap();
        q.failed(refill, T0 + 1000);
        yes(q.admit(T0 + 1100));
        yes(q.admit(T0 + 1100));
        assert!(matches!(q.admit(T0 + 1100), Admit::Unavailable { .. }));
    }

    #[test]
    fn gateways_sharing_a_count_admit_the_quota_exactly() {
        // The server's side, as the store keeps it: grants never past the quota.
        let quota = 25;
        let mut counted = 0u64;
        let mut server = |ask: Ask| {
            let granted = ask.want.min(quota - counted);
            counted += granted;
            (granted, counted)
        };
        let mut gateways: Vec<SharedQuota> =
            (0..3).map(|_| SharedQuota::new(quota, 60, 4)).collect();
        let mut admitted = 0;
        for i in 0..200 {
            let g = &mut gateways[i % 3];
            loop {
                match g.admit(T0) {
                    Admit::Yes { refill } => {
                        admitted += 1;
                        if let Some(ask) = refill {
                            let (granted, c) = server(ask);
                            g.granted(ask, granted, c, T0);
                        }
                        break;
                    }
                    Admit::Ask(ask) => {
                        let (granted, c) = server(ask);
                        g.granted(ask, granted, c, T0);
                    }
                    Admit::Exhausted { .. } => break,
                    Admit::Unavailable { .. } | Admit::Wait => {
                        panic!("no failures, and every ask is answered at once")
                    }
                }
            }
        }
        assert_eq!(admitted, quota);
    }

    #[test]
    fn the_default_lease_is_a_hundredth_of_the_quota_within_bounds() {
        assert_eq!(default_lease(10), 1);
        assert_eq!(default_lease(5_000), 50);
        assert_eq!(default_lease(u64::MAX), 1000);
        assert_eq!(SharedQuota::new(3, 60, 10).lease, 3);
    }
}
