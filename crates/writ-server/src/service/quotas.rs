//! Shared API-key quotas: gateways lease admissions from the count the store keeps per key
//! and period, so several gateways (and several servers on one PostgreSQL) admit no more
//! than a plan's quota together. The request is checked here; the count's atomicity is
//! the store's ([`crate::store::Store::lease_quota`]).

use writ_api::quotas::{QuotaLease, QuotaLeaseRequest};

use super::{Error, Result};
use crate::store::{QuotaPeriod, Store};

/// How far a lease's period may be from the server's clock, in seconds: gateways' clocks
/// drift, and a lease asked for at a period's edge may arrive in the next one.
const SKEW: i64 = 300;

/// The largest quota or period taken: far past any plan, and small enough that sums of
/// them stay within the store's 64-bit integers.
const MAX: u64 = 1 << 53;

/// Checks a lease request against the server's clock `now` (Unix seconds): each field in
/// range, the period aligned and current. The message names the field.
pub fn check(request: &QuotaLeaseRequest, now: i64) -> Result<()> {
    let key = &request.key;
    if key.is_empty()
        || key.len() > 128
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(Error::Invalid(
            "key: 1 to 128 characters of letters, digits, '-', '_' or '.'".into(),
        ));
    }
    if !(1..=MAX).contains(&request.period_seconds) {
        return Err(Error::Invalid(format!(
            "periodSeconds: from 1 to {MAX}, got {}",
            request.period_seconds
        )));
    }
    if !(1..=MAX).contains(&request.limit) {
        return Err(Error::Invalid(format!(
            "limit: from 1 to {MAX}, got {}",
            request.limit
        )));
    }
    if !(1..=request.limit).contains(&request.want) {
        return Err(Error::Invalid(format!(
            "want: from 1 to the limit ({}), got {}",
            request.limit, request.want
        )));
    }
    // In range by the check above.
    let seconds = request.period_seconds as i64;
    if request.period_start.rem_euclid(seconds) != 0 {
        return Err(Error::Invalid(format!(
            "periodStart: a multiple of periodSeconds ({seconds}), got {}",
            request.period_start
        )));
    }
    let end = request.period_start.saturating_add(seconds);
    if request.period_start > now + SKEW || end < now - SKEW {
        return Err(Error::Invalid(format!(
            "periodStart: {} is not the current period of {seconds} s (the server's clock says {now}, \
             give or take {SKEW} s); check the gateway's clock",
            request.period_start
        )));
    }
    Ok(())
}

/// Leases admissions for `request`, checked first against the server's clock `now`.
pub async fn lease(store: &Store, request: &QuotaLeaseRequest, now: i64) -> Result<QuotaLease> {
    check(request, now)?;
    // All in range of i64 by the check.
    let period = QuotaPeriod {
        key: &request.key,
        seconds: request.period_seconds as i64,
        start: request.period_start,
    };
    let count = store
        .lease_quota(period, request.limit as i64, request.want as i64, now)
        .await?
        .ok_or_else(|| Error::Conflict {
            code: "quotaContended",
            message: format!(
                "the quota count of API key {} kept moving under other leases; ask again",
                request.key
            ),
        })?;
    Ok(QuotaLease {
        granted: count.granted.max(0) as u64,
        counted: count.counted.max(0) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> QuotaLeaseRequest {
        QuotaLeaseRequest {
            key: "partner-a".into(),
            period_seconds: 60,
            // 1_800_000_000 is a multiple of 60.
            period_start: 1_800_000_000,
            limit: 10,
            want: 2,
        }
    }

    #[test]
    fn a_request_for_the_current_period_is_taken() {
        check(&request(), 1_800_000_000).unwrap();
        // Give or take the skew either side.
        check(&request(), 1_800_000_000 + 60 + SKEW - 1).unwrap();
    }

    #[test]
    fn each_wrong_field_is_named() {
        let now = 1_800_000_000;
        let cases: Vec<(QuotaLeaseRequest, &str)> = vec![
            (
                QuotaLeaseRequest {
                    key: "a/b".into(),
                    ..request()
                },
                "key:",
            ),
            (
                QuotaLeaseRequest {
                    key: String::new(),
                    ..request()
                },
                "key:",
            ),
            (
                QuotaLeaseRequest {
                    period_seconds: 0,
                    ..request()
                },
                "periodSeconds:",
            ),
            (
                QuotaLeaseRequest {
                    limit: 0,
                    ..request()
                },
                "limit:",
            ),
            (
                QuotaLeaseRequest {
                    limit: MAX + 1,
                    ..request()
                },
                "limit:",
            ),
            (
                QuotaLeaseRequest {
                    want: 11,
                    ..request()
                },
                "want:",
            ),
            (
                QuotaLeaseRequest {
                    want: 0,
                    ..request()
                },
                "want:",
            ),
            (
                QuotaLeaseRequest {
                    period_start: request().period_start + 1,
                    ..request()
                },
                "a multiple",
            ),
            (
                QuotaLeaseRequest {
                    period_start: request().period_start - 3600,
                    ..request()
                },
                "not the current period",
            ),
            (
                QuotaLeaseRequest {
                    period_start: request().period_start + 3600,
                    ..request()
                },
                "not the current period",
            ),
        ];
        for (r, why) in cases {
            match check(&r, now) {
                Err(Error::Invalid(m)) => assert!(m.contains(why), "{r:?}: {m}"),
                other => panic!("{r:?}: expected Invalid({why}), got {other:?}"),
            }
        }
    }
}
