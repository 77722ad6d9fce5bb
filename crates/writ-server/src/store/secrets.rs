//! Secrets' tables: one row per secret, one per version (its wrapped data key and
//! ciphertext, never the value), and one per staging label. Label moves and the new version
//! they point to are written in one transaction, serialised per secret, so concurrent
//! writers lose no version.

use sqlx::Row;
use writ_secrets::model::Labels;

use super::{Backend, Store, StoreError};

/// A secret's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// Its name, e.g. `prod/orders-db`.
    pub name: String,
    /// A note for people.
    pub description: String,
    /// Tags, as a JSON object.
    pub tags: String,
    /// Its resource policy, if it has one.
    pub resource_policy: Option<String>,
    /// When it was made.
    pub created_at: i64,
    /// When a value or its metadata last changed.
    pub updated_at: i64,
    /// When it was scheduled for deletion.
    pub deleted_at: Option<i64>,
    /// Until when it can be restored.
    pub recovery_until: Option<i64>,
    /// How it is rotated (the hook and the schedule, as JSON), if it is.
    pub rotation: Option<String>,
    /// When its next scheduled rotation is due.
    pub next_rotation_at: Option<i64>,
    /// How the last rotation went, as JSON.
    pub last_rotation: Option<String>,
}

/// One stored version.
#[derive(Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// Its id.
    pub version_id: String,
    /// The data key, wrapped by the master key.
    pub wrapped_key: Vec<u8>,
    /// Nonce, ciphertext and tag.
    pub ciphertext: Vec<u8>,
    /// Whether the value is binary rather than a string.
    pub binary: bool,
    /// When it was made.
    pub created_at: i64,
}

impl std::fmt::Debug for VersionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionRecord")
            .field("version_id", &self.version_id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

fn secret_from_row(r: &sqlx::any::AnyRow) -> Result<SecretRecord, sqlx::Error> {
    Ok(SecretRecord {
        name: r.try_get(0)?,
        description: r.try_get(1)?,
        tags: r.try_get(2)?,
        resource_policy: r.try_get(3)?,
        created_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
        deleted_at: r.try_get(6)?,
        recovery_until: r.try_get(7)?,
        rotation: r.try_get(8)?,
        next_rotation_at: r.try_get(9)?,
        last_rotation: r.try_get(10)?,
    })
}

const SECRET_COLUMNS: &str = "name, description, tags, resource_policy, created_at, updated_at, \
     deleted_at, recovery_until, rotation, next_rotation_at, last_rotation";

impl Store {
    /// Creates a secret with its first version, current. A name in use is a conflict
    /// (also while the old secret is deleted but recoverable).
    pub async fn create_secret(
        &self,
        secret: &SecretRecord,
        version: &VersionRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        create_in(&mut tx, secret, version).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds a version and moves labels with `relabel` (which sees the labels as they are
    /// inside the transaction), in one transaction serialised with other writers of the
    /// same secret. Returns the labels after, or `None` if there is no such live secret.
    pub async fn put_secret_version(
        &self,
        name: &str,
        version: &VersionRecord,
        now: i64,
        relabel: impl FnOnce(&mut Labels),
    ) -> Result<Option<Labels>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let after = put_in(&mut tx, self.backend, name, version, now, relabel).await?;
        if after.is_some() {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(after)
    }

    /// Moves labels without adding a version (finishing or cancelling a rotation).
    pub async fn relabel_secret(
        &self,
        name: &str,
        relabel: impl FnOnce(&mut Labels) -> Result<(), String>,
    ) -> Result<Result<Labels, String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let after = relabel_in(&mut tx, self.backend, name, relabel).await?;
        if after.is_ok() {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(after)
    }

    /// A secret's metadata (deleted or not).
    pub async fn secret(&self, name: &str) -> Result<Option<SecretRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE name = $1"
        ));
        let row = sqlx::query(sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(secret_from_row).transpose()?)
    }

    /// All secrets not scheduled for deletion, by name.
    pub async fn secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE deleted_at IS NULL ORDER BY name"
        ));
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(secret_from_row).collect::<Result<_, _>>()?)
    }

    /// A secret's labels.
    pub async fn secret_labels(&self, name: &str) -> Result<Labels, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read_labels(&mut conn, name).await
    }

    /// A secret's versions (without their ciphertexts' plaintext, which this layer never
    /// sees), oldest first.
    pub async fn secret_versions(&self, name: &str) -> Result<Vec<VersionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT version_id, wrapped_key, ciphertext, is_binary, created_at FROM secret_versions \
             WHERE name = $1 ORDER BY created_at, version_id",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(version_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// One version.
    pub async fn secret_version(
        &self,
        name: &str,
        version_id: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT version_id, wrapped_key, ciphertext, is_binary, created_at FROM secret_versions \
             WHERE name = $1 AND version_id = $2",
        )
        .bind(name)
        .bind(version_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(version_from_row).transpose()?)
    }

    /// Schedules deletion: the secret is hidden and unreadable now, restorable until
    /// `recovery_until`, and purged at the first access after.
    pub async fn delete_secret(
        &self,
        name: &str,
        now: i64,
        recovery_until: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        delete_in(&mut conn, name, now, recovery_until).await
    }

    /// Cancels a scheduled deletion within its recovery window.
    pub async fn restore_secret(&self, name: &str, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        restore_in(&mut conn, name, now).await
    }

    /// Removes for good a secret whose recovery window has passed, with its versions and
    /// labels. Returns whether it did.
    pub async fn purge_secret(&self, name: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "DELETE FROM secrets WHERE name = $1 AND deleted_at IS NOT NULL AND recovery_until <= $2",
        )
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            for table in [
                "DELETE FROM secret_versions WHERE name = $1",
                "DELETE FROM secret_labels WHERE name = $1",
            ] {
                sqlx::query(table).bind(name).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Sets or clears a secret's resource policy.
    pub async fn set_secret_policy(
        &self,
        name: &str,
        policy: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        set_policy_in(&mut conn, name, policy, now).await
    }

    /// Sets how a secret is rotated (`None` stops rotation) and when it is next due.
    pub async fn set_secret_rotation(
        &self,
        name: &str,
        rotation: Option<&str>,
        next_rotation_at: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        set_rotation_in(&mut conn, name, rotation, next_rotation_at, now).await
    }

    /// Claims a live secret for one rotation: `false` if another rotation, on this or any
    /// server sharing the store, claimed it after `stale_before` and has not ended.
    pub async fn claim_rotation(
        &self,
        name: &str,
        now: i64,
        stale_before: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE secrets SET rotating_since = $1 WHERE name = $2 AND deleted_at IS NULL \
             AND (rotating_since IS NULL OR rotating_since < $3)",
        )
        .bind(now)
        .bind(name)
        .bind(stale_before)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Ends the rotation claimed at `claimed_at`: records how it went and, for a scheduled
    /// secret, when the next one is due. A claim taken over since (this one went stale) is
    /// left alone.
    pub async fn end_rotation(
        &self,
        name: &str,
        claimed_at: i64,
        last_rotation: &str,
        next_rotation_at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE secrets SET rotating_since = NULL, last_rotation = $1, \
             next_rotation_at = CASE WHEN rotation IS NULL THEN NULL ELSE $2 END \
             WHERE name = $3 AND rotating_since = $4",
        )
        .bind(last_rotation)
        .bind(next_rotation_at)
        .bind(name)
        .bind(claimed_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Live secrets whose scheduled rotation is due and not running.
    pub async fn due_rotations(
        &self,
        now: i64,
        stale_before: i64,
    ) -> Result<Vec<SecretRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE deleted_at IS NULL AND rotation IS NOT NULL \
             AND next_rotation_at <= $1 AND (rotating_since IS NULL OR rotating_since < $2) \
             ORDER BY next_rotation_at LIMIT 100"
        ));
        let rows = sqlx::query(sql)
            .bind(now)
            .bind(stale_before)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(secret_from_row).collect::<Result<_, _>>()?)
    }

    /// Replaces every key the master key wraps (secret data keys, signing keys and audit
    /// keys) in one transaction: a master-key rotation. `rewrap` gets each wrapped key and
    /// returns its new wrapping; one refusal rolls everything back. Returns how many of
    /// each were rewrapped.
    pub async fn rewrap_wrapped_keys(
        &self,
        rewrap: impl Fn(&WrappedKey<'_>) -> Result<Vec<u8>, String>,
    ) -> Result<RewrapCounts, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut counts = RewrapCounts::default();
        let rows = sqlx::query(
            "SELECT name, version_id, wrapped_key FROM secret_versions ORDER BY name, version_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        for r in &rows {
            let name: String = r.try_get(0)?;
            let id: String = r.try_get(1)?;
            let wrapped: Vec<u8> = r.try_get(2)?;
            let new = rewrap(&WrappedKey::SecretVersion {
                name: &name,
                version_id: &id,
                wrapped: &wrapped,
            })
            .map_err(StoreError::Migration)?;
            sqlx::query(
                "UPDATE secret_versions SET wrapped_key = $1 WHERE name = $2 AND version_id = $3",
            )
            .bind(new)
            .bind(&name)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            counts.secret_versions += 1;
        }
        for (table, is_signing) in [("signing_keys", true), ("audit_keys", false)] {
            let select =
                sqlx::AssertSqlSafe(format!("SELECT id, wrapped_key FROM {table} ORDER BY id"));
            let update = format!("UPDATE {table} SET wrapped_key = $1 WHERE id = $2");
            for r in &sqlx::query(select).fetch_all(&mut *tx).await? {
                let id: String = r.try_get(0)?;
                let wrapped: Vec<u8> = r.try_get(1)?;
                let key = if is_signing {
                    WrappedKey::SigningKey {
                        id: &id,
                        wrapped: &wrapped,
                    }
                } else {
                    WrappedKey::AuditKey {
                        id: &id,
                        wrapped: &wrapped,
                    }
                };
                let new = rewrap(&key).map_err(StoreError::Migration)?;
                sqlx::query(sqlx::AssertSqlSafe(update.clone()))
                    .bind(new)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                if is_signing {
                    counts.signing_keys += 1;
                } else {
                    counts.audit_keys += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(counts)
    }
}

/// A key the master key wraps, as stored.
#[derive(Debug)]
pub enum WrappedKey<'a> {
    /// A secret version's data key.
    SecretVersion {
        /// The secret's name.
        name: &'a str,
        /// The version's id.
        version_id: &'a str,
        /// The wrapped data key.
        wrapped: &'a [u8],
    },
    /// A CA or JWT signing key.
    SigningKey {
        /// Its id.
        id: &'a str,
        /// The wrapped private key.
        wrapped: &'a [u8],
    },
    /// An audit checkpoint-signing or HMAC key.
    AuditKey {
        /// Its id.
        id: &'a str,
        /// The wrapped key.
        wrapped: &'a [u8],
    },
}

/// How many keys a master-key rotation rewrapped, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewrapCounts {
    /// Secret versions' data keys.
    pub secret_versions: usize,
    /// CA and JWT signing keys.
    pub signing_keys: usize,
    /// Audit keys.
    pub audit_keys: usize,
}

/// A change to a secret that is made in the same transaction as the audit event recording
/// it ([`Store::audit_append_changes`]), so the two commit together or not at all: a
/// version is never current without its event, and an event never records a change that
/// was not made. Each variant does what the [`Store`] method it names does.
pub enum SecretChange {
    /// [`Store::create_secret`].
    Create {
        /// The secret's metadata.
        secret: SecretRecord,
        /// Its first version, made current.
        version: VersionRecord,
    },
    /// [`Store::put_secret_version`].
    Put {
        /// The secret's name.
        name: String,
        /// The new version.
        version: VersionRecord,
        /// The time of the change.
        now: i64,
        /// How the labels move, seeing them as they are inside the transaction.
        relabel: Box<dyn FnOnce(&mut Labels) + Send>,
    },
    /// [`Store::relabel_secret`].
    Relabel {
        /// The secret's name.
        name: String,
        /// How the labels move; an error refuses the change.
        relabel: Relabel,
    },
    /// [`Store::delete_secret`].
    Delete {
        /// The secret's name.
        name: String,
        /// The time of the change.
        now: i64,
        /// Until when it can be restored.
        recovery_until: i64,
    },
    /// [`Store::restore_secret`].
    Restore {
        /// The secret's name.
        name: String,
        /// The time of the change.
        now: i64,
    },
    /// [`Store::set_secret_policy`].
    SetPolicy {
        /// The secret's name.
        name: String,
        /// The resource policy, or `None` to remove it.
        policy: Option<String>,
        /// The time of the change.
        now: i64,
    },
    /// [`Store::set_secret_rotation`].
    SetRotation {
        /// The secret's name.
        name: String,
        /// How it is rotated, as JSON; `None` stops rotation.
        rotation: Option<String>,
        /// When its next scheduled rotation is due.
        next_rotation_at: Option<i64>,
        /// The time of the change.
        now: i64,
    },
}

impl std::fmt::Debug for SecretChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, name) = match self {
            SecretChange::Create { secret, .. } => ("Create", &secret.name),
            SecretChange::Put { name, .. } => ("Put", name),
            SecretChange::Relabel { name, .. } => ("Relabel", name),
            SecretChange::Delete { name, .. } => ("Delete", name),
            SecretChange::Restore { name, .. } => ("Restore", name),
            SecretChange::SetPolicy { name, .. } => ("SetPolicy", name),
            SecretChange::SetRotation { name, .. } => ("SetRotation", name),
        };
        f.debug_struct("SecretChange")
            .field("kind", &kind)
            .field("name", name)
            .finish_non_exhaustive()
    }
}

/// A label move that may refuse (finishing or cancelling a rotation), for
/// [`SecretChange::Relabel`].
pub type Relabel = Box<dyn FnOnce(&mut Labels) -> Result<(), String> + Send>;

/// What applying a [`SecretChange`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// It was made. For a change that moves labels, the secret's labels after it.
    Made(Option<Labels>),
    /// It was not made, and why: no such live secret, nothing to restore, a refused label
    /// move. Nothing was written, and its event was not recorded.
    Refused(String),
}

impl SecretChange {
    /// Makes the change on `conn`, inside a transaction the caller commits or rolls back.
    pub(super) async fn apply(
        self,
        conn: &mut sqlx::AnyConnection,
        backend: Backend,
    ) -> Result<Applied, StoreError> {
        let gone = |name: &str| Applied::Refused(format!("no secret named {name:?}"));
        let made = |done: bool, name: &str| {
            if done {
                Applied::Made(None)
            } else {
                gone(name)
            }
        };
        Ok(match self {
            SecretChange::Create { secret, version } => {
                create_in(conn, &secret, &version).await?;
                Applied::Made(None)
            }
            SecretChange::Put {
                name,
                version,
                now,
                relabel,
            } => match put_in(conn, backend, &name, &version, now, relabel).await? {
                Some(labels) => Applied::Made(Some(labels)),
                None => gone(&name),
            },
            SecretChange::Relabel { name, relabel } => {
                match relabel_in(conn, backend, &name, relabel).await? {
                    Ok(labels) => Applied::Made(Some(labels)),
                    Err(why) => Applied::Refused(why),
                }
            }
            SecretChange::Delete {
                name,
                now,
                recovery_until,
            } => made(delete_in(conn, &name, now, recovery_until).await?, &name),
            SecretChange::Restore { name, now } => {
                if restore_in(conn, &name, now).await? {
                    Applied::Made(None)
                } else {
                    Applied::Refused(format!(
                        "secret {name:?} is not scheduled for deletion, or its recovery window has passed"
                    ))
                }
            }
            SecretChange::SetPolicy { name, policy, now } => made(
                set_policy_in(conn, &name, policy.as_deref(), now).await?,
                &name,
            ),
            SecretChange::SetRotation {
                name,
                rotation,
                next_rotation_at,
                now,
            } => made(
                set_rotation_in(conn, &name, rotation.as_deref(), next_rotation_at, now).await?,
                &name,
            ),
        })
    }
}

/// Creates a secret and its first version, current; a name in use is a conflict.
async fn create_in(
    conn: &mut sqlx::AnyConnection,
    secret: &SecretRecord,
    version: &VersionRecord,
) -> Result<(), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO secrets (name, description, tags, resource_policy, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(&secret.name)
    .bind(&secret.description)
    .bind(&secret.tags)
    .bind(&secret.resource_policy)
    .bind(secret.created_at)
    .bind(secret.updated_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("secret {:?}", secret.name)));
    }
    insert_version(conn, &secret.name, version).await?;
    let mut labels = Labels::default();
    labels.make_current(&version.version_id);
    write_labels(conn, &secret.name, &Labels::default(), &labels).await
}

/// Adds a version and moves labels; `None`, having written nothing, if there is no such
/// live secret.
async fn put_in(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    name: &str,
    version: &VersionRecord,
    now: i64,
    relabel: impl FnOnce(&mut Labels),
) -> Result<Option<Labels>, StoreError> {
    if !lock_live_secret(conn, backend, name).await? {
        return Ok(None);
    }
    let before = read_labels(conn, name).await?;
    let mut after = before.clone();
    relabel(&mut after);
    insert_version(conn, name, version).await?;
    write_labels(conn, name, &before, &after).await?;
    sqlx::query("UPDATE secrets SET updated_at = $1 WHERE name = $2")
        .bind(now)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(Some(after))
}

/// Moves labels; the refusal, having written nothing but the row lock, if there is no such
/// live secret or `relabel` refuses.
async fn relabel_in(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    name: &str,
    relabel: impl FnOnce(&mut Labels) -> Result<(), String>,
) -> Result<Result<Labels, String>, StoreError> {
    if !lock_live_secret(conn, backend, name).await? {
        return Ok(Err(format!("no secret named {name:?}")));
    }
    let before = read_labels(conn, name).await?;
    let mut after = before.clone();
    if let Err(e) = relabel(&mut after) {
        return Ok(Err(e));
    }
    write_labels(conn, name, &before, &after).await?;
    Ok(Ok(after))
}

async fn delete_in(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    now: i64,
    recovery_until: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE secrets SET deleted_at = $1, recovery_until = $2 WHERE name = $3 AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(recovery_until)
    .bind(name)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

async fn restore_in(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE secrets SET deleted_at = NULL, recovery_until = NULL \
         WHERE name = $1 AND deleted_at IS NOT NULL AND recovery_until > $2",
    )
    .bind(name)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

async fn set_policy_in(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    policy: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE secrets SET resource_policy = $1, updated_at = $2 WHERE name = $3 AND deleted_at IS NULL",
    )
    .bind(policy)
    .bind(now)
    .bind(name)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

async fn set_rotation_in(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    rotation: Option<&str>,
    next_rotation_at: Option<i64>,
    now: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE secrets SET rotation = $1, next_rotation_at = $2, updated_at = $3 \
         WHERE name = $4 AND deleted_at IS NULL",
    )
    .bind(rotation)
    .bind(next_rotation_at)
    .bind(now)
    .bind(name)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Takes a live secret's row lock for the rest of the transaction, so two writers never
/// both read the same labels (PostgreSQL locks the row; SQLite's write takes its one
/// writer lock). `false` if there is no such live secret.
async fn lock_live_secret(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    name: &str,
) -> Result<bool, StoreError> {
    let lock = match backend {
        Backend::Postgres => {
            "SELECT name FROM secrets WHERE name = $1 AND deleted_at IS NULL FOR UPDATE"
        }
        Backend::Sqlite => {
            "UPDATE secrets SET updated_at = updated_at WHERE name = $1 AND deleted_at IS NULL RETURNING name"
        }
    };
    Ok(sqlx::query(lock)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

fn version_from_row(r: &sqlx::any::AnyRow) -> Result<VersionRecord, sqlx::Error> {
    Ok(VersionRecord {
        version_id: r.try_get(0)?,
        wrapped_key: r.try_get(1)?,
        ciphertext: r.try_get(2)?,
        binary: r.try_get::<i64, _>(3)? != 0,
        created_at: r.try_get(4)?,
    })
}

async fn insert_version(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    v: &VersionRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO secret_versions (name, version_id, wrapped_key, ciphertext, is_binary, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(name)
    .bind(&v.version_id)
    .bind(&v.wrapped_key)
    .bind(&v.ciphertext)
    .bind(i64::from(v.binary))
    .bind(v.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn read_labels(conn: &mut sqlx::AnyConnection, name: &str) -> Result<Labels, StoreError> {
    let rows = sqlx::query("SELECT label, version_id FROM secret_labels WHERE name = $1")
        .bind(name)
        .fetch_all(&mut *conn)
        .await?;
    let pairs = rows
        .iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Labels::from_pairs(pairs))
}

async fn write_labels(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    before: &Labels,
    after: &Labels,
) -> Result<(), StoreError> {
    for (label, _) in before.pairs() {
        if after.version(label).is_none() {
            sqlx::query("DELETE FROM secret_labels WHERE name = $1 AND label = $2")
                .bind(name)
                .bind(label)
                .execute(&mut *conn)
                .await?;
        }
    }
    for (label, version) in after.pairs() {
        if before.version(label) != Some(version) {
            sqlx::query(
                "INSERT INTO secret_labels (name, label, version_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (name, label) DO UPDATE SET version_id = excluded.version_id",
            )
            .bind(name)
            .bind(label)
            .bind(version)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
