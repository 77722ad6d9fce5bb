//! The audit log's tables: events (append-only, hash-chained), signed checkpoints, and the
//! audit keys. The code only ever inserts into them.

use sqlx::Row;
use writ_audit::Event;
use writ_audit::chain::{self, Head, Record};
use writ_audit::checkpoint::Checkpoint;

use super::{Backend, Store, StoreError};

/// A stored audit key: the checkpoint signing key, or the HMAC key for identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditKeyRecord {
    /// Its id.
    pub id: String,
    /// `signing` or `hmac`.
    pub kind: String,
    /// The public key in hex (empty for the HMAC key).
    pub public: String,
    /// The key, sealed by the master key.
    pub wrapped_key: Vec<u8>,
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only events after this sequence number.
    pub after: i64,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only events at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// `allowed` for allowed outcomes, `denied` for denied ones.
    pub outcome: Option<String>,
    /// At most this many.
    pub limit: i64,
}

/// Rows per INSERT statement when appending, 9 values each: 9,000 parameters, within both
/// databases' limits (SQLite 32,766, PostgreSQL 65,535). Each statement is a hand-off to
/// the driver's thread and back, so fewer, larger ones cost less.
const ROWS_PER_STATEMENT: usize = 1000;

fn time_ms(event: &Event) -> i64 {
    time::OffsetDateTime::parse(&event.time, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or(0)
}

impl Store {
    /// The audit keys, or `None` before they were made.
    pub async fn audit_keys(&self) -> Result<Vec<AuditKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, public, wrapped_key FROM audit_keys ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditKeyRecord {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    public: r.try_get(2)?,
                    wrapped_key: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Stores audit keys made at start, unless a key of the same kind exists (another
    /// server made them first); in one transaction.
    pub async fn insert_audit_keys(
        &self,
        keys: &[AuditKeyRecord],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE audit_keys IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        for key in keys {
            let exists = sqlx::query("SELECT 1 FROM audit_keys WHERE kind = $1")
                .bind(&key.kind)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if exists {
                continue;
            }
            sqlx::query(
                "INSERT INTO audit_keys (id, kind, public, wrapped_key, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&key.id)
            .bind(&key.kind)
            .bind(&key.public)
            .bind(&key.wrapped_key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends events to the chain and a checkpoint signed by `sign` over the new head, in
    /// one transaction: either all of them are durable, or none. Several servers on one
    /// PostgreSQL database append in turn (a table lock held to commit).
    pub async fn audit_append(
        &self,
        events: &[Event],
        sign: impl Fn(&Head) -> Result<Checkpoint, String>,
        signed: impl Fn(&Checkpoint) -> bool,
    ) -> Result<Head, StoreError> {
        // SQLite: take the write lock before reading the head, or a commit by another
        // connection between the read and the insert fails the whole batch.
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        if self.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE audit_events IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let last = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let head = match last {
            None => Head::genesis(),
            Some(row) => {
                let seq: i64 = row.try_get(0)?;
                let hash: String = row.try_get(1)?;
                Head::from_stored(seq, &hash).ok_or_else(|| {
                    StoreError::Migration(format!("audit event {seq} has a malformed hash"))
                })?
            }
        };
        // Every batch commits with a checkpoint over its last event, so the newest checkpoint
        // must be genuine and name the head. If not, the tables were altered (checkpoints
        // deleted, events rewritten): append nothing, and never sign over a forged head.
        if head.seq > 0 {
            let newest = sqlx::query(
                "SELECT seq, hash, time, key_id, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
            )
            .fetch_optional(&mut *tx)
            .await?;
            let checkpoint = newest.as_ref().map(checkpoint_from_row).transpose()?;
            let intact = checkpoint.as_ref().is_some_and(|cp| {
                cp.seq == head.seq && cp.hash == writ_audit::hex(&head.hash) && signed(cp)
            });
            if !intact {
                return Err(StoreError::Tampered(format!(
                    "the audit log's last event ({}) is not covered by a valid signed checkpoint; \
                     the audit tables were altered outside writ. Run `writ audit verify`.",
                    head.seq
                )));
            }
        }
        let (records, new_head) =
            chain::append(&head, events).map_err(|e| StoreError::Migration(e.to_string()))?;
        let mut records = records.into_iter();
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(match self.backend {
                // Any failure fails the whole transaction anyway, so a statement need not
                // be undone on its own: OR ROLLBACK spares SQLite a statement journal (a
                // copy of every page a multi-row INSERT touches).
                Backend::Sqlite => "INSERT OR ROLLBACK INTO ",
                Backend::Postgres => "INSERT INTO ",
            });
            sql.push_str(
                "audit_events (seq, time_ms, actor, action, decision, outcome, event, prev_hash, hash) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                match self.backend {
                    // Anonymous parameters: SQLite finds a named one (`$1`) by walking the
                    // list of names, which costs the square of their number per statement.
                    Backend::Sqlite => sql.push_str("(?,?,?,?,?,?,?,?,?)"),
                    Backend::Postgres => {
                        let b = i * 9;
                        sql.push('(');
                        for k in 1..=9 {
                            if k > 1 {
                                sql.push(',');
                            }
                            sql.push_str(&format!("${}", b + k));
                        }
                        sql.push(')');
                    }
                }
            }
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (event, record) in chunk.iter().zip(records.by_ref()) {
                query = query
                    .bind(record.seq)
                    .bind(time_ms(event))
                    .bind(event.actor.clone())
                    .bind(event.action.clone())
                    .bind(event.decision.map(|d| d.as_str()))
                    .bind(event.outcome.as_str())
                    .bind(record.event)
                    .bind(record.prev_hash)
                    .bind(record.hash);
            }
            query.execute(&mut *tx).await?;
        }
        let checkpoint = sign(&new_head).map_err(StoreError::Migration)?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(checkpoint.seq)
        .bind(&checkpoint.hash)
        .bind(&checkpoint.time)
        .bind(&checkpoint.key_id)
        .bind(&checkpoint.signature)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(new_head)
    }

    /// Stored events in order, as the chain holds them.
    pub async fn audit_records(&self, filter: &AuditFilter) -> Result<Vec<Record>, StoreError> {
        // Filters are optional; NULL parameters switch them off, so one statement serves.
        let rows = sqlx::query(
            "SELECT seq, event, prev_hash, hash FROM audit_events \
             WHERE seq > $1 AND ($2 IS NULL OR actor = $2) AND ($3 IS NULL OR time_ms >= $3) \
             AND ($4 IS NULL OR outcome = $4) ORDER BY seq LIMIT $5",
        )
        .bind(filter.after)
        .bind(filter.actor.clone())
        .bind(filter.since_ms)
        .bind(filter.outcome.clone())
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Record {
                    seq: r.try_get(0)?,
                    event: r.try_get(1)?,
                    prev_hash: r.try_get(2)?,
                    hash: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Checkpoints in order, after `after` (a sequence number), at most `limit`.
    pub async fn audit_checkpoints(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, hash, time, key_id, signature FROM audit_checkpoints WHERE seq > $1 \
             ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(checkpoint_from_row)
            .collect::<Result<_, _>>()?)
    }
}

/// A checkpoint from `SELECT seq, hash, time, key_id, signature`.
fn checkpoint_from_row(r: &sqlx::any::AnyRow) -> Result<Checkpoint, sqlx::Error> {
    Ok(Checkpoint {
        seq: r.try_get(0)?,
        hash: r.try_get(1)?,
        time: r.try_get(2)?,
        key_id: r.try_get(3)?,
        signature: r.try_get(4)?,
    })
}
