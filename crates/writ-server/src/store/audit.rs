//! The audit log's tables: events (append-only, hash-chained), signed checkpoints, and the
//! audit keys. The code only ever inserts into them.
//!
//! Events are stored a segment at a time ([`writ_audit::chain::Segment`]): each append, a
//! batch of up to thousands of events under load, is one row holding their JSON
//! (compressed, [`writ_audit::packed`]) and their hashes, with a row in
//! `audit_segment_actors` per distinct actor in it for the actor filter. Reads give the
//! same [`Record`]s a row per event gave, from what is stored alone, so `writ audit verify`
//! checks exactly that.

use sqlx::Row;
use writ_audit::Event;
use writ_audit::chain::{self, Head, Record, Segment};
use writ_audit::checkpoint::{Checkpoint, SignerError};
use writ_audit::packed;

use super::{Applied, Backend, SecretChange, Store, StoreError};

/// What [`Store::audit_append_changes`] did: the new head and the segment stored (if there
/// were events to append), and each change's result.
pub type AppendedChanges = (Option<(Head, Segment)>, Vec<Result<Applied, StoreError>>);

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

/// Actor rows per INSERT statement when appending, 2 values each: within both databases'
/// parameter limits (SQLite 32,766, PostgreSQL 65,535).
const ACTORS_PER_STATEMENT: usize = 1000;

/// Segments whose bounds one read looks up at a time.
const SEGMENTS_PER_LOOKUP: i64 = 1000;

/// Unix milliseconds of an event's time; 0 if it is not RFC 3339.
fn time_ms(time: &str) -> i64 {
    time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or(0)
}

/// The fields of a stored event's JSON that reads filter on.
#[derive(serde::Deserialize)]
struct Filtered<'a> {
    #[serde(borrow)]
    time: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    actor: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    outcome: std::borrow::Cow<'a, str>,
}

impl AuditFilter {
    /// Whether it filters on anything an event's JSON holds.
    fn on_content(&self) -> bool {
        self.actor.is_some() || self.since_ms.is_some() || self.outcome.is_some()
    }

    /// Whether a stored event's JSON passes the actor, time and outcome filters. An event
    /// that is not readable passes none (`writ audit verify` reads without filters).
    fn passes(&self, event_json: &str) -> bool {
        let Ok(e) = serde_json::from_str::<Filtered>(event_json) else {
            return false;
        };
        self.actor.as_deref().is_none_or(|a| e.actor == a)
            && self.since_ms.is_none_or(|since| time_ms(&e.time) >= since)
            && self.outcome.as_deref().is_none_or(|o| e.outcome == o)
    }
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
    /// one transaction: either all of them are durable, or none. Returns the new head and
    /// the segment stored (its events' JSON as hashed, for copies of the log). Several servers on one
    /// PostgreSQL database append in turn (a table lock held to commit).
    pub async fn audit_append(
        &self,
        events: &[Event],
        sign: impl Fn(&Head) -> Result<Checkpoint, SignerError>,
        signed: impl Fn(&Checkpoint) -> bool,
    ) -> Result<(Head, Segment), StoreError> {
        let started = std::time::Instant::now();
        let result = async {
            let mut tx = self.begin_append().await?;
            let head = self.audit_head(&mut tx, signed).await?;
            let appended = self.write_segment(&mut tx, &head, events, sign).await?;
            tx.commit().await?;
            Ok(appended)
        }
        .await;
        self.note_write(&result);
        self.latency
            .observe(super::StoreOp::AuditAppend, started.elapsed());
        result
    }

    /// Makes `changes` and appends their events with `events` to the chain, in one
    /// transaction, so that each change and its event commit together or not at all.
    ///
    /// Each change is made under a savepoint of its own: one that fails ([`StoreError`]) or
    /// does not apply ([`Applied::Refused`]) is undone alone, its event is not appended, and
    /// the others go on. The events of the changes made are appended after `events`, in
    /// order, and left in it. If the transaction then fails (the append, the checkpoint,
    /// the commit), nothing of it is stored: no change and no event. Returns the new head
    /// and the segment stored (`None` when there was no event to append), and each
    /// change's result, in order.
    pub async fn audit_append_changes(
        &self,
        events: &mut Vec<Event>,
        changes: Vec<(SecretChange, Event)>,
        sign: impl Fn(&Head) -> Result<Checkpoint, SignerError>,
        signed: impl Fn(&Checkpoint) -> bool,
    ) -> Result<AppendedChanges, StoreError> {
        let started = std::time::Instant::now();
        let result = async {
            let mut tx = self.begin_append().await?;
            let head = self.audit_head(&mut tx, signed).await?;
            let mut results = Vec::with_capacity(changes.len());
            for (change, event) in changes {
                let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
                match change.apply(&mut savepoint, self.backend).await {
                    Ok(Applied::Made(labels)) => {
                        savepoint.commit().await?;
                        events.push(event);
                        results.push(Ok(Applied::Made(labels)));
                    }
                    // Undone alone. If SQLite rolled the whole transaction back (a full
                    // disk can), the savepoint is gone and this fails the batch, rather
                    // than letting later changes commit one statement at a time.
                    Ok(refused @ Applied::Refused(_)) => {
                        savepoint.rollback().await?;
                        results.push(Ok(refused));
                    }
                    Err(e) => {
                        savepoint.rollback().await?;
                        results.push(Err(e));
                    }
                }
            }
            if events.is_empty() {
                tx.rollback().await?;
                return Ok((None, results));
            }
            let appended = self.write_segment(&mut tx, &head, events, sign).await?;
            tx.commit().await?;
            Ok((Some(appended), results))
        }
        .await;
        self.note_write(&result);
        self.latency
            .observe(super::StoreOp::AuditAppend, started.elapsed());
        result
    }

    /// Begins an append's transaction. SQLite: take the write lock before reading the
    /// head, or a commit by another connection between the read and the insert fails the
    /// whole batch.
    async fn begin_append(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// The head to chain on, read inside the append's transaction (on PostgreSQL, under the
    /// lock that makes servers sharing the database append in turn).
    async fn audit_head(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        signed: impl Fn(&Checkpoint) -> bool,
    ) -> Result<Head, StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE audit_segments IN EXCLUSIVE MODE")
                .execute(&mut **tx)
                .await?;
        }
        // The head: the newest segment's last event, and the hash the newest checkpoint
        // signed for it. Every batch commits with a checkpoint over its last event, so that
        // checkpoint must be genuine and name that event. If not, the tables were altered
        // (checkpoints deleted, events added or removed): append nothing, and never sign
        // over a forged head. The hash is taken from the signed checkpoint, not from the
        // segment's stored hashes (which would mean reading them all, a few MB a batch
        // under load); `writ audit verify` checks the stored ones against it.
        let last =
            sqlx::query("SELECT last_seq FROM audit_segments ORDER BY first_seq DESC LIMIT 1")
                .fetch_optional(&mut **tx)
                .await?;
        match last {
            None => Ok(Head::genesis()),
            Some(row) => {
                let seq: i64 = row.try_get(0)?;
                let newest = sqlx::query(
                    "SELECT seq, hash, time, key_id, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
                )
                .fetch_optional(&mut **tx)
                .await?;
                let checkpoint = newest.as_ref().map(checkpoint_from_row).transpose()?;
                let head = checkpoint
                    .filter(|cp| cp.seq == seq && signed(cp))
                    .and_then(|cp| Head::from_stored(cp.seq, &cp.hash));
                head.ok_or_else(|| {
                    StoreError::Tampered(format!(
                        "the audit log's last event ({seq}) is not covered by a valid signed checkpoint; \
                         the audit tables were altered outside writ. Run `writ audit verify`."
                    ))
                })
            }
        }
    }

    /// Stores `events` as a segment chained on `head`, and a checkpoint over the new head.
    async fn write_segment(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        head: &Head,
        events: &[Event],
        sign: impl Fn(&Head) -> Result<Checkpoint, SignerError>,
    ) -> Result<(Head, Segment), StoreError> {
        let (segment, new_head) = chain::append_segment(head, events)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
        for event in events {
            let t = time_ms(&event.time);
            min_time = min_time.min(t);
            max_time = max_time.max(t);
        }
        sqlx::query(match self.backend {
            // Any failure fails the whole transaction anyway, so a statement need not be
            // undone on its own: OR ROLLBACK spares SQLite a statement journal.
            Backend::Sqlite => {
                "INSERT OR ROLLBACK INTO audit_segments (first_seq, last_seq, min_time_ms, \
                 max_time_ms, prev_hash, hashes, codec, events) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            }
            Backend::Postgres => {
                "INSERT INTO audit_segments (first_seq, last_seq, min_time_ms, max_time_ms, \
                 prev_hash, hashes, codec, events) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            }
        })
        .bind(segment.first_seq)
        .bind(new_head.seq)
        .bind(min_time)
        .bind(max_time)
        .bind(segment.prev_hash.as_str())
        .bind(segment.hashes.as_slice())
        .bind(packed::LZ4)
        .bind(packed::pack(&segment.events))
        .execute(&mut **tx)
        .await?;
        let mut actors: Vec<&str> = events.iter().map(|e| e.actor.as_str()).collect();
        actors.sort_unstable();
        actors.dedup();
        for chunk in actors.chunks(ACTORS_PER_STATEMENT) {
            let mut sql =
                String::from("INSERT INTO audit_segment_actors (actor, first_seq) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
            }
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for actor in chunk {
                query = query.bind(actor.to_string()).bind(segment.first_seq);
            }
            query.execute(&mut **tx).await?;
        }
        let checkpoint = sign(&new_head).map_err(|e| StoreError::Migration(e.to_string()))?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(checkpoint.seq)
        .bind(&checkpoint.hash)
        .bind(&checkpoint.time)
        .bind(&checkpoint.key_id)
        .bind(&checkpoint.signature)
        .execute(&mut **tx)
        .await?;
        Ok((new_head, segment))
    }

    /// Stored events in order, as the chain holds them: those after `filter.after` that
    /// pass its filters, at most `filter.limit`.
    pub async fn audit_records(&self, filter: &AuditFilter) -> Result<Vec<Record>, StoreError> {
        let limit = usize::try_from(filter.limit).unwrap_or(0);
        let mut records = Vec::new();
        // Every event after `cursor` is still to be read.
        let mut cursor = filter.after;
        while records.len() < limit {
            // First the bounds of the segments to read (the index alone), then the
            // segments holding about as many events as are still wanted, so a read holds
            // no more than it returns plus a segment. Filters are optional; NULL
            // parameters switch them off, so one statement serves.
            let bounds = sqlx::query(
                "SELECT first_seq, last_seq FROM audit_segments WHERE last_seq > $1 \
                 AND ($2 IS NULL OR first_seq IN \
                   (SELECT first_seq FROM audit_segment_actors WHERE actor = $2)) \
                 AND ($3 IS NULL OR max_time_ms >= $3) ORDER BY first_seq LIMIT $4",
            )
            .bind(cursor)
            .bind(filter.actor.clone())
            .bind(filter.since_ms)
            .bind(SEGMENTS_PER_LOOKUP)
            .fetch_all(&self.pool)
            .await?;
            let Some(first) = bounds.first() else { break };
            let from: i64 = first.try_get(0)?;
            let wanted = (limit - records.len()) as i64;
            let (mut to, mut to_last) = (from, cursor);
            let mut events = 0i64;
            for row in &bounds {
                let (first_seq, last_seq): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
                (to, to_last) = (first_seq, last_seq);
                let from_here = first_seq.max(cursor.saturating_add(1));
                events = events.saturating_add(last_seq.saturating_sub(from_here) + 1);
                if events >= wanted {
                    break;
                }
            }
            // Every column as bytes: SQLite keeps a value as the type it was written
            // with, whatever the column says, and text need not be UTF-8. A row altered
            // that way is still read (and `writ audit verify` finds it) rather than failing
            // every read of the log.
            let columns = match self.backend {
                Backend::Sqlite => {
                    "first_seq, CAST(prev_hash AS BLOB), CAST(hashes AS BLOB), \
                     CAST(codec AS BLOB), CAST(events AS BLOB)"
                }
                Backend::Postgres => {
                    "first_seq, convert_to(prev_hash, 'UTF8'), hashes, \
                     convert_to(codec, 'UTF8'), events"
                }
            };
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {columns} FROM audit_segments \
                 WHERE first_seq >= $1 AND first_seq <= $2 AND last_seq > $3 \
                 AND ($4 IS NULL OR first_seq IN \
                   (SELECT first_seq FROM audit_segment_actors WHERE actor = $4)) \
                 AND ($5 IS NULL OR max_time_ms >= $5) ORDER BY first_seq"
            )))
            .bind(from)
            .bind(to)
            .bind(cursor)
            .bind(filter.actor.clone())
            .bind(filter.since_ms)
            .fetch_all(&self.pool)
            .await?;
            let mut next = cursor;
            for row in &rows {
                let first_seq: i64 = row.try_get(0)?;
                let text = |i: usize| -> Result<String, sqlx::Error> {
                    Ok(String::from_utf8_lossy(&row.try_get::<Vec<u8>, _>(i)?).into_owned())
                };
                let codec = text(3)?;
                let stored: Vec<u8> = row.try_get(4)?;
                // Stored bytes that do not unpack were altered: the segment reads as one
                // empty event, which `writ audit verify` reports as edited, at its first.
                let events = packed::unpack(&codec, &stored).unwrap_or_else(|e| {
                    tracing::error!(first_seq, error = %e, "a stored audit segment does not unpack");
                    String::new()
                });
                let segment = Segment {
                    first_seq,
                    prev_hash: text(1)?,
                    hashes: row.try_get(2)?,
                    events,
                };
                for record in segment.records() {
                    next = next.max(record.seq);
                    if record.seq > cursor && (!filter.on_content() || filter.passes(&record.event))
                    {
                        records.push(record);
                        if records.len() == limit {
                            return Ok(records);
                        }
                    }
                }
            }
            // Past the last segment read, even if the second read did not return it.
            cursor = next.max(to_last);
        }
        Ok(records)
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
