//! Shared API-key quotas: per key and period, how many admissions have been leased to
//! gateways. A lease is a compare-and-set on the count it read, retried when another
//! server or request moved the count first, so no interleaving grants past the limit.

use sqlx::Row;

use super::{Store, StoreError};

/// One quota period of one API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaPeriod<'a> {
    /// The API key's id.
    pub key: &'a str,
    /// The period's length, in seconds (at least 1).
    pub seconds: i64,
    /// When the period began, in Unix seconds.
    pub start: i64,
}

/// What a lease did to a period's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaCount {
    /// The admissions granted by this lease (0 when the count had reached the limit).
    pub granted: i64,
    /// The period's count after it.
    pub counted: i64,
}

/// How many times a lease reads and compares-and-sets before it gives up, when other
/// leases keep moving the count: each failure means another lease succeeded.
const ATTEMPTS: usize = 64;

/// How long after its end a period's row is kept.
const KEEP_ENDED: i64 = 86_400;

impl Store {
    /// Leases up to `want` admissions of `period`, never taking its count past `limit`.
    /// `now` (Unix seconds) only decides which ended periods' rows are dropped. `None` if
    /// other leases moved the count [`ATTEMPTS`] times while this one tried: the caller
    /// asks again later.
    pub async fn lease_quota(
        &self,
        period: QuotaPeriod<'_>,
        limit: i64,
        want: i64,
        now: i64,
    ) -> Result<Option<QuotaCount>, StoreError> {
        let started = std::time::Instant::now();
        let result = self.lease_quota_untimed(period, limit, want, now).await;
        self.latency
            .observe(super::StoreOp::QuotaLease, started.elapsed());
        result
    }

    async fn lease_quota_untimed(
        &self,
        period: QuotaPeriod<'_>,
        limit: i64,
        want: i64,
        now: i64,
    ) -> Result<Option<QuotaCount>, StoreError> {
        let end = period.start.saturating_add(period.seconds);
        let inserted = sqlx::query(
            "INSERT INTO api_key_quotas (key_id, period_seconds, period_start, period_end, granted) \
             VALUES ($1, $2, $3, $4, 0) ON CONFLICT DO NOTHING",
        )
        .bind(period.key)
        .bind(period.seconds)
        .bind(period.start)
        .bind(end)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            // A new period began: the rows of periods long over go.
            sqlx::query("DELETE FROM api_key_quotas WHERE period_end < $1")
                .bind(now.saturating_sub(KEEP_ENDED))
                .execute(&self.pool)
                .await?;
        }
        for _ in 0..ATTEMPTS {
            let counted: i64 = sqlx::query(
                "SELECT granted FROM api_key_quotas \
                 WHERE key_id = $1 AND period_seconds = $2 AND period_start = $3",
            )
            .bind(period.key)
            .bind(period.seconds)
            .bind(period.start)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
            let granted = want.min(limit.saturating_sub(counted)).max(0);
            if granted == 0 {
                return Ok(Some(QuotaCount { granted, counted }));
            }
            let set = sqlx::query(
                "UPDATE api_key_quotas SET granted = $1 \
                 WHERE key_id = $2 AND period_seconds = $3 AND period_start = $4 AND granted = $5",
            )
            .bind(counted + granted)
            .bind(period.key)
            .bind(period.seconds)
            .bind(period.start)
            .bind(counted)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if set == 1 {
                return Ok(Some(QuotaCount {
                    granted,
                    counted: counted + granted,
                }));
            }
        }
        Ok(None)
    }
}
