//! Intentions' table: one row per (source, destination), and a one-row index bumped in the
//! same transaction as every change, so a follower (a gateway, another server) can tell
//! whether the set it holds is current.

use sqlx::Row;
use sqlx::any::AnyRow;
use writ_policy::intentions::{Intention, IntentionAction, Permission};

use super::{Store, StoreError};

/// A stored intention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentionRecord {
    /// The intention itself.
    pub intention: Intention,
    /// When it was first written (Unix seconds).
    pub created_at: i64,
    /// When it was last written.
    pub updated_at: i64,
}

/// What an upsert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentionWrite {
    /// The intentions index after the change.
    pub index: i64,
    /// The intention it replaced, if there was one for the same source and destination.
    pub previous: Option<Intention>,
}

/// The columns [`from_row`] reads, in its order.
macro_rules! columns {
    () => {
        "source, destination, action, permissions, description, created_at, updated_at"
    };
}

fn from_row(r: &AnyRow) -> Result<IntentionRecord, sqlx::Error> {
    let source: String = r.try_get(0)?;
    let destination: String = r.try_get(1)?;
    let action = match r.try_get::<String, _>(2)?.as_str() {
        "allow" => IntentionAction::Allow,
        "deny" => IntentionAction::Deny,
        other => {
            return Err(sqlx::Error::Decode(
                format!("intention {source} -> {destination}: unknown action {other:?}").into(),
            ));
        }
    };
    let permissions: Vec<Permission> = match r.try_get::<Option<String>, _>(3)? {
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            sqlx::Error::Decode(
                format!("intention {source} -> {destination}: stored permissions: {e}").into(),
            )
        })?,
        None => Vec::new(),
    };
    Ok(IntentionRecord {
        intention: Intention {
            source,
            destination,
            action,
            permissions,
            description: r.try_get(4)?,
        },
        created_at: r.try_get(5)?,
        updated_at: r.try_get(6)?,
    })
}

/// Bumps the index; the row lock it takes serialises writers of intentions on PostgreSQL
/// (SQLite has one writer at a time), so indexes and changes commit in the same order.
async fn bump(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<i64, StoreError> {
    let row =
        sqlx::query("UPDATE intentions_index SET value = value + 1 WHERE id = 1 RETURNING value")
            .fetch_one(&mut **tx)
            .await?;
    Ok(row.try_get(0)?)
}

impl Store {
    /// Writes an intention, replacing any with the same source and destination (its
    /// `created_at` is kept), and bumps the index, in one transaction. The caller has
    /// validated it.
    pub async fn upsert_intention(
        &self,
        intention: &Intention,
        now: i64,
    ) -> Result<IntentionWrite, StoreError> {
        let permissions = if intention.permissions.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&intention.permissions).map_err(|e| {
                StoreError::Database(sqlx::Error::Encode(
                    format!("intention permissions: {e}").into(),
                ))
            })?)
        };
        let mut tx = self.pool.begin().await?;
        let index = bump(&mut tx).await?;
        let previous = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM intentions WHERE source = $1 AND destination = $2"
        ))
        .bind(&intention.source)
        .bind(&intention.destination)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()?
        .map(|r| r.intention);
        sqlx::query(
            "INSERT INTO intentions (source, destination, action, permissions, description, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (source, destination) DO UPDATE SET action = excluded.action, \
             permissions = excluded.permissions, description = excluded.description, \
             updated_at = excluded.updated_at",
        )
        .bind(&intention.source)
        .bind(&intention.destination)
        .bind(intention.action.as_str())
        .bind(permissions)
        .bind(&intention.description)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(IntentionWrite { index, previous })
    }

    /// Deletes the intention from `source` to `destination` and bumps the index. Returns the
    /// deleted intention and the new index, or `None` (changing nothing) if there was none.
    pub async fn delete_intention(
        &self,
        source: &str,
        destination: &str,
    ) -> Result<Option<(Intention, i64)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let index = bump(&mut tx).await?;
        let deleted = sqlx::query(concat!(
            "DELETE FROM intentions WHERE source = $1 AND destination = $2 RETURNING ",
            columns!()
        ))
        .bind(source)
        .bind(destination)
        .fetch_optional(&mut *tx)
        .await?;
        match deleted {
            Some(row) => {
                let record = from_row(&row)?;
                tx.commit().await?;
                Ok(Some((record.intention, index)))
            }
            None => {
                tx.rollback().await?;
                Ok(None)
            }
        }
    }

    /// Every intention, ordered by destination then source, with the index they are at
    /// least as new as. The index is read first: a follower that stores both may hold
    /// rows newer than its index (and fetch them once more), never older.
    pub async fn intentions(&self) -> Result<(Vec<IntentionRecord>, i64), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let index = intentions_index(&mut conn).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM intentions ORDER BY destination, source"
        ))
        .fetch_all(&mut *conn)
        .await?;
        let records = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        Ok((records, index))
    }

    /// The intentions index: 0 for a store where intentions never changed, one more for
    /// every upsert and delete since.
    pub async fn intentions_index(&self) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        intentions_index(&mut conn).await
    }
}

async fn intentions_index(conn: &mut sqlx::AnyConnection) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT value FROM intentions_index WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get(0)?)
}
