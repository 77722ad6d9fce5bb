//! Whether the store takes writes: the last write that failed, kept until a write succeeds,
//! so `/v1/health` can say the server is degraded (a full disk, a lost database) while
//! reads still work.

use std::sync::Mutex;

use super::StoreError;

/// A write the store could not make, as `/v1/health` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    /// When it failed, in Unix seconds.
    pub at: i64,
    /// Why, in words safe to show any caller: never a path, a host or a database message.
    pub reason: &'static str,
}

/// The last write failure, if no write succeeded since.
#[derive(Debug, Default)]
pub(super) struct WriteHealth(Mutex<Option<WriteFailure>>);

impl WriteHealth {
    /// Remembers how a write went.
    pub(super) fn note<T>(&self, result: &Result<T, StoreError>) {
        let mut last = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok(_) => *last = None,
            Err(e) => {
                *last = Some(WriteFailure {
                    at: time::OffsetDateTime::now_utc().unix_timestamp(),
                    reason: reason(e),
                });
            }
        }
    }

    /// The last write failure, if no write succeeded since.
    pub(super) fn last(&self) -> Option<WriteFailure> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Why a write failed, in general words.
fn reason(e: &StoreError) -> &'static str {
    let StoreError::Database(e) = e else {
        return match e {
            StoreError::Tampered(_) => "the audit log does not verify; run `writ audit verify`",
            _ => "the store refused a write",
        };
    };
    if let Some(db) = e.as_database_error() {
        let code = db.code().unwrap_or_default();
        // SQLite gives its (extended) result code as a number; PostgreSQL its SQLSTATE.
        if let Ok(n) = code.parse::<i64>() {
            return match n & 0xff {
                13 => "the database's disk is full",
                5 | 6 => "the database is locked by another writer",
                8 => "the database is read-only",
                10 => "the database could not write to disk",
                14 => "the database file could not be opened",
                _ => "the database refused a write",
            };
        }
        return match code.as_ref() {
            "53100" => "the database's disk is full",
            c if c.starts_with("53") => "the database is out of resources",
            "25006" => "the database is read-only",
            c if c.starts_with("08") => "the database could not be reached",
            _ => "the database refused a write",
        };
    }
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => "the database could not be reached",
        _ => "the database refused a write",
    }
}
