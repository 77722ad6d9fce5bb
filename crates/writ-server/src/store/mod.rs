//! Storage: one interface, two backends. SQLite (embedded, WAL mode) is the default;
//! PostgreSQL lets several servers share one database. Both go through sqlx's `Any` driver
//! with the same queries, so the code that runs is the code the shared test suite checks;
//! only the schema files differ, in the few words the two dialects spell differently.
//!
//! Times are Unix seconds. Secrets never reach this layer in the clear: tokens are stored as
//! SHA-256 hashes and private keys wrapped by the master key.

use std::sync::Arc;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection, Row};

mod audit;
mod health;
mod intentions;
mod latency;
mod migrate;
mod quotas;
mod secrets;
mod sqlite_file;

pub use audit::{AppendedChanges, AuditFilter, AuditKeyRecord};
pub use health::WriteFailure;
pub use intentions::{IntentionRecord, IntentionWrite};
pub use latency::{Latency, OpLatency, StoreOp};
pub use quotas::{QuotaCount, QuotaPeriod};
pub use secrets::{
    Applied, Relabel, RewrapCounts, SecretChange, SecretRecord, VersionRecord, WrappedKey,
};

/// Which database a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, in one file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with that key exists already.
    #[error("{0} already exists")]
    Conflict(String),
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The store URL is not one writ can open. It holds the URL's scheme only, since the
    /// rest may carry a password.
    #[error(
        "unsupported store URL scheme {0:?}: use postgres://USER@HOST:PORT/DB, or leave --store unset for SQLite in --data-dir"
    )]
    Url(String),
    /// Stored data that writ signed or chained no longer checks out.
    #[error("tampering detected: {0}")]
    Tampered(String),
    /// The schema is newer than this binary, or a migration failed.
    #[error("schema migration failed: {0}")]
    Migration(String),
    /// The SQLite database file cannot be created or opened: its path and the cause.
    #[error("{0}")]
    Open(String),
}

/// The state written once, when the server first starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The trust domain, fixed for the life of the deployment.
    pub trust_domain: String,
    /// Bumped on every change to the signing keys, so every server reloads them.
    pub key_generation: i64,
}

/// What a signing key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A CA that signs X.509-SVIDs.
    X509,
    /// A key that signs JWT-SVIDs.
    Jwt,
}

impl KeyKind {
    /// The name stored in the database and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::X509 => "x509",
            KeyKind::Jwt => "jwt",
        }
    }

    fn parse(s: &str) -> Result<KeyKind, sqlx::Error> {
        match s {
            "x509" => Ok(KeyKind::X509),
            "jwt" => Ok(KeyKind::Jwt),
            other => Err(sqlx::Error::Decode(
                format!("unknown key kind {other:?}").into(),
            )),
        }
    }
}

/// A stored signing key: its public half in the clear, its private half wrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key id: the JWT `kid`, or for a CA the first 10 bytes of its certificate's
    /// SHA-256, in hex.
    pub id: String,
    /// What it signs.
    pub kind: KeyKind,
    /// The CA certificate PEM, or the public JWK as JSON.
    pub public: String,
    /// The private key, sealed by the master key.
    pub wrapped_key: Vec<u8>,
    /// When it was made.
    pub created_at: i64,
    /// From when it signs (it is in the bundle before that).
    pub active_from: i64,
    /// Until when it stays in the bundle, once a newer key has replaced it.
    pub publish_until: Option<i64>,
    /// The key generation that made it: 1 for the first keys, one more for each rotation.
    /// Of two keys active from the same second, the later generation signs. The store
    /// assigns it; the value given on insert is ignored.
    pub generation: i64,
}

/// A registered function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRecord {
    /// The function's name, the last segment of its SPIFFE ID.
    pub name: String,
    /// `spiffe://<trust-domain>/fn/<name>`.
    pub spiffe_id: String,
    /// Its attestation rules, as JSON.
    pub attestation: String,
    /// The X.509-SVID lifetime for this function, if not the server's default.
    pub x509_ttl_seconds: Option<i64>,
    /// When it was registered.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Its identity policies (what it may do), as a JSON array of policy documents.
    pub policies: Option<String>,
    /// Its permissions boundary, as a JSON array of policy documents: the policies of the
    /// operator's token that set [`FunctionRecord::policies`]. The function may do only what
    /// both allow.
    pub boundary: Option<String>,
}

/// A registered gateway: its own identity, whose X.509-SVID is its TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRecord {
    /// The gateway's name, the last segment of its SPIFFE ID.
    pub name: String,
    /// `spiffe://<trust-domain>/writ/gateway/<name>`.
    pub spiffe_id: String,
    /// Its attestation rules, as JSON.
    pub attestation: String,
    /// The DNS names its certificate carries, as a JSON array.
    pub dns_names: String,
    /// The IP addresses its certificate carries, as a JSON array.
    pub ip_addresses: String,
    /// The X.509-SVID lifetime for this gateway, if not the server's default.
    pub x509_ttl_seconds: Option<i64>,
    /// When it was registered.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An operator's token, authorized by its policies.
    Admin,
    /// A one-time join token for one function.
    Join,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Admin => "admin",
            TokenKind::Join => "join",
        }
    }

    fn parse(s: &str) -> Result<TokenKind, sqlx::Error> {
        match s {
            "admin" => Ok(TokenKind::Admin),
            "join" => Ok(TokenKind::Join),
            other => Err(sqlx::Error::Decode(
                format!("unknown token kind {other:?}").into(),
            )),
        }
    }
}

/// A stored token. The secret itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's public id (its accessor).
    pub id: String,
    /// What it is for.
    pub kind: TokenKind,
    /// SHA-256 of the token's secret part.
    pub secret_hash: Vec<u8>,
    /// For a join token, the function it joins.
    pub function_name: Option<String>,
    /// For a gateway's join token, the gateway it logs in as (and no function).
    pub gateway_name: Option<String>,
    /// For an admin token, its policy documents as a JSON array.
    pub policies: Option<String>,
    /// A note for people.
    pub description: String,
    /// When it was made.
    pub created_at: i64,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
    /// When a join token was used.
    pub used_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// What a revocation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationKind {
    /// A function: its SPIFFE ID.
    Function,
    /// One X.509-SVID: its serial number in lowercase hex.
    Serial,
    /// A token: its id.
    Token,
}

impl RevocationKind {
    fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Function => "function",
            RevocationKind::Serial => "serial",
            RevocationKind::Token => "token",
        }
    }

    fn parse(s: &str) -> Result<RevocationKind, sqlx::Error> {
        match s {
            "function" => Ok(RevocationKind::Function),
            "serial" => Ok(RevocationKind::Serial),
            "token" => Ok(RevocationKind::Token),
            other => Err(sqlx::Error::Decode(
                format!("unknown revocation kind {other:?}").into(),
            )),
        }
    }
}

/// One entry of the revocation feed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    /// Its position in the feed; later entries have larger numbers.
    pub seq: i64,
    /// What it names.
    pub kind: RevocationKind,
    /// The SPIFFE ID, serial or token id.
    pub value: String,
    /// When it was revoked (Unix seconds). For a function, SVIDs it was issued before
    /// this time are no longer valid.
    pub revoked_at: i64,
}

/// The store: a pool of connections to one database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    writes: Arc<health::WriteHealth>,
    latency: Arc<Latency>,
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH` or `postgres://...`), creating a SQLite
    /// file if missing, and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
            return Err(StoreError::Url(scheme.to_string()));
        };
        // A connection goes back to the pool only outside any transaction. A transaction
        // dropped on an error path is rolled back when the connection is next used; if
        // that rollback fails (SQLite rolls a whole transaction back by itself on a full
        // disk or an I/O error, and then refuses the ROLLBACK), sqlx still counts the
        // transaction open, and a connection reused like that turns the next BEGIN into a
        // SAVEPOINT and ROLLBACK into ROLLBACK TO: a transaction that never ends, holding
        // the write lock, with writes acknowledged but never committed. Such a connection
        // is closed instead (the pool opens a fresh one).
        let options = AnyPoolOptions::new().after_release(|conn, _| {
            Box::pin(async move {
                if !conn.is_in_transaction() {
                    return Ok(true);
                }
                // Runs the queued rollback, then asks again.
                conn.ping().await?;
                Ok(!conn.is_in_transaction())
            })
        });
        let pool = match backend {
            Backend::Sqlite => {
                let file = sqlite_file::file_of(url);
                if let Some((path, create)) = &file {
                    sqlite_file::prepare(path, *create)?;
                    sqlite_file::check_opens(url, path).await?;
                }
                // WAL lets readers go on while one writer commits. FULL sync makes every
                // commit durable across power loss too: a used join token or a revocation
                // reported as done must stay done. One writer at a time, so a small pool.
                // The WAL is checkpointed every 1,024 pages (16 MiB with the 16 KiB pages
                // below) and cut back to 16 MiB after, so it does not fill a small volume.
                options
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::raw_sql(
                                "PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 1024; \
                                 PRAGMA journal_size_limit = 16777216; PRAGMA foreign_keys = ON;",
                            )
                            .execute(conn)
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await
                    .map_err(|e| match &file {
                        Some((path, _)) => sqlite_file::open_error(path, &e),
                        None => StoreError::Database(e),
                    })?
            }
            Backend::Postgres => options.max_connections(16).connect(url).await?,
        };
        if backend == Backend::Sqlite {
            // 16 KiB pages (for a new file; an existing one keeps its size): the audit log
            // appends megabytes per second, and each page is one write.
            sqlx::raw_sql("PRAGMA page_size = 16384; PRAGMA journal_mode = WAL;")
                .execute(&pool)
                .await?;
        }
        let store = Store {
            pool,
            backend,
            writes: Arc::default(),
            latency: Arc::default(),
        };
        migrate::run(&store.pool, backend).await?;
        Ok(store)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The last write that failed, if no write has succeeded since. Writes are the audit
    /// log's appends, with the secret changes made in them: every change the API reports
    /// as done is audited, so a store that cannot write fails them, and the first that
    /// succeeds clears this.
    pub fn write_failure(&self) -> Option<WriteFailure> {
        self.writes.last()
    }

    /// How long its timed operations took, for `/metrics`.
    pub fn latency(&self) -> &Latency {
        &self.latency
    }

    /// Remembers how a write went, for [`Store::write_failure`].
    fn note_write<T>(&self, result: &Result<T, StoreError>) {
        self.writes.note(result);
    }

    /// On PostgreSQL, takes the session advisory lock that running servers share and a
    /// master-key rotation holds alone, on a connection of its own that keeps it until
    /// dropped. `None` if the lock is held the other way. On SQLite, where a lock file in
    /// the data directory does this job, always `None`.
    pub async fn server_lock(
        &self,
        exclusive: bool,
    ) -> Result<Option<sqlx::AnyConnection>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut conn = self.pool.acquire().await?.detach();
        let sql = if exclusive {
            "SELECT pg_try_advisory_lock(2003987317)"
        } else {
            "SELECT pg_try_advisory_lock_shared(2003987317)"
        };
        let got: bool = sqlx::query(sql).fetch_one(&mut conn).await?.try_get(0)?;
        Ok(got.then_some(conn))
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The deployment's fixed state, or `None` before the first start has initialised it.
    pub async fn meta(&self) -> Result<Option<Meta>, StoreError> {
        let row = sqlx::query("SELECT trust_domain, key_generation FROM meta WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| -> Result<Meta, sqlx::Error> {
                Ok(Meta {
                    trust_domain: r.try_get(0)?,
                    key_generation: r.try_get(1)?,
                })
            })
            .transpose()?)
    }

    /// Initialises a new deployment in one transaction: the trust domain, the first signing
    /// keys and the bootstrap admin token. Returns `false`, writing nothing, when another
    /// server (or an earlier start) initialised it first.
    pub async fn initialize(
        &self,
        trust_domain: &str,
        now: i64,
        keys: &[KeyRecord],
        bootstrap_token: &TokenRecord,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO meta (id, trust_domain, key_generation, created_at) VALUES (1, $1, 1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(trust_domain)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for key in keys {
            insert_key(&mut tx, key, 1).await?;
        }
        insert_token(&mut tx, bootstrap_token).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every signing key, oldest first.
    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, public, wrapped_key, created_at, active_from, publish_until, generation \
             FROM signing_keys ORDER BY active_from, generation, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyRecord {
                    id: r.try_get(0)?,
                    kind: KeyKind::parse(&r.try_get::<String, _>(1)?)?,
                    public: r.try_get(2)?,
                    wrapped_key: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    active_from: r.try_get(5)?,
                    publish_until: r.try_get(6)?,
                    generation: r.try_get(7)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Adds a key that takes over signing at its `active_from`; see [`Store::rotate_keys`].
    pub async fn rotate_key(&self, key: &KeyRecord, retire_at: i64) -> Result<(), StoreError> {
        self.rotate_keys(&[(key.clone(), retire_at)]).await
    }

    /// Adds keys (one per kind) that take over signing at their `active_from`, in one
    /// transaction, each with the time `retire_at` when the last credential the key it
    /// replaces can have signed has expired:
    ///
    /// - the key of that kind signing at the new key's `created_at` stays in the bundle
    ///   until `retire_at` (it goes on signing until the new key activates);
    /// - a key still waiting to sign (an earlier rotation's, not yet active) is withdrawn at
    ///   the new key's `created_at`: it has signed nothing, and must never take over;
    /// - keys already retiring keep their time.
    ///
    /// Each new key gets the next key generation, which every server watches.
    pub async fn rotate_keys(&self, keys: &[(KeyRecord, i64)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (key, retire_at) in keys {
            let now = key.created_at;
            sqlx::query(
                "UPDATE signing_keys SET publish_until = $1 WHERE id = ( \
                   SELECT id FROM signing_keys WHERE kind = $2 AND active_from <= $3 \
                   AND (publish_until IS NULL OR publish_until > $3) \
                   ORDER BY active_from DESC, generation DESC LIMIT 1)",
            )
            .bind(*retire_at)
            .bind(key.kind.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE signing_keys SET publish_until = $1 \
                 WHERE kind = $2 AND active_from > $1 AND (publish_until IS NULL OR publish_until > $1)",
            )
            .bind(now)
            .bind(key.kind.as_str())
            .execute(&mut *tx)
            .await?;
            let generation: i64 = sqlx::query(
                "UPDATE meta SET key_generation = key_generation + 1 WHERE id = 1 RETURNING key_generation",
            )
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            insert_key(&mut tx, key, generation).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Registers a function; a name already taken is a conflict.
    pub async fn insert_function(&self, f: &FunctionRecord) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO functions (name, spiffe_id, attestation, x509_ttl_seconds, created_at, revoked_at, policies, boundary) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&f.name)
        .bind(&f.spiffe_id)
        .bind(&f.attestation)
        .bind(f.x509_ttl_seconds)
        .bind(f.created_at)
        .bind(f.revoked_at)
        .bind(&f.policies)
        .bind(&f.boundary)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("function {:?}", f.name)));
        }
        Ok(())
    }

    /// Replaces a function's rules, SVID lifetime, policies and their boundary. Returns
    /// whether there was such a function.
    pub async fn update_function(&self, f: &FunctionRecord) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE functions SET attestation = $1, x509_ttl_seconds = $2, policies = $3, \
             boundary = $4 WHERE name = $5",
        )
        .bind(&f.attestation)
        .bind(f.x509_ttl_seconds)
        .bind(&f.policies)
        .bind(&f.boundary)
        .bind(&f.name)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Reinstates a revoked function: it is no longer revoked, and its life starts again
    /// at `now` (`created_at`), so every SVID and JWT-SVID from before stays refused (they
    /// predate the function's current life); its join tokens not yet used are revoked, so
    /// that none made before comes back to life either. One transaction. Returns whether
    /// a revoked function of that name was reinstated.
    pub async fn reinstate_function(&self, name: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let reinstated = sqlx::query(
            "UPDATE functions SET revoked_at = NULL, created_at = $1 \
             WHERE name = $2 AND revoked_at IS NOT NULL",
        )
        .bind(now)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !reinstated {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE kind = 'join' AND function_name = $2 \
             AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One function by name.
    pub async fn function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError> {
        let row = sqlx::query(FUNCTION_BY_NAME)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(function_from_row).transpose()?)
    }

    /// All functions, by name.
    pub async fn functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, spiffe_id, attestation, x509_ttl_seconds, created_at, revoked_at, policies, \
             boundary FROM functions ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(function_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Deletes a function and all its join tokens, and publishes the revocation of its
    /// SPIFFE ID on the feed (its SVIDs must stop working everywhere), in one transaction.
    /// Returns the feed entry, or `None` if there was no such function.
    pub async fn delete_function(
        &self,
        name: &str,
        now: i64,
    ) -> Result<Option<Revocation>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM functions WHERE name = $1 RETURNING spiffe_id")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = deleted else {
            tx.rollback().await?;
            return Ok(None);
        };
        let spiffe_id: String = row.try_get(0)?;
        sqlx::query("DELETE FROM tokens WHERE kind = 'join' AND function_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let entry = append_revocation(
            &mut tx,
            self.backend,
            RevocationKind::Function,
            &spiffe_id,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(entry))
    }

    /// Registers a gateway; a name already taken is a conflict.
    pub async fn insert_gateway(&self, g: &GatewayRecord) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO gateways (name, spiffe_id, attestation, dns_names, ip_addresses, \
             x509_ttl_seconds, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&g.name)
        .bind(&g.spiffe_id)
        .bind(&g.attestation)
        .bind(&g.dns_names)
        .bind(&g.ip_addresses)
        .bind(g.x509_ttl_seconds)
        .bind(g.created_at)
        .bind(g.revoked_at)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("gateway {:?}", g.name)));
        }
        Ok(())
    }

    /// One gateway by name.
    pub async fn gateway(&self, name: &str) -> Result<Option<GatewayRecord>, StoreError> {
        let row = sqlx::query(GATEWAY_BY_NAME)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(gateway_from_row).transpose()?)
    }

    /// All gateways, by name.
    pub async fn gateways(&self) -> Result<Vec<GatewayRecord>, StoreError> {
        let rows = sqlx::query(GATEWAYS_BY_NAME).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(gateway_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Stores a new token.
    pub async fn insert_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_token(&mut tx, t).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One token by id.
    pub async fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, kind, secret_hash, function_name, policies, description, created_at, \
             expires_at, used_at, revoked_at, gateway_name FROM tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(token_from_row).transpose()?)
    }

    /// Marks a join token used, if it is still unused, unrevoked and unexpired at `now`.
    /// Returns whether this call used it: of two concurrent logins with one token, exactly
    /// one gets `true`.
    pub async fn use_join_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let used = sqlx::query(
            "UPDATE tokens SET used_at = $1 WHERE id = $2 AND kind = 'join' AND used_at IS NULL \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(used == 1)
    }

    /// Records that the OIDC token with this hash logged in, until `expires_at`. Returns
    /// false if it already had (a replay). Forgets tokens that expired before `now`.
    pub async fn use_oidc_token(
        &self,
        token_hash: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM used_oidc_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO used_oidc_tokens (token_hash, expires_at) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(token_hash)
        .bind(expires_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Revokes a function, an SVID serial or a token, and appends the revocation to the
    /// feed, in one transaction. Returns the feed entry.
    pub async fn revoke(
        &self,
        kind: RevocationKind,
        value: &str,
        function_name: Option<&str>,
        now: i64,
    ) -> Result<Revocation, StoreError> {
        let mut tx = self.pool.begin().await?;
        match kind {
            RevocationKind::Function => {
                sqlx::query(
                    "UPDATE functions SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(function_name.unwrap_or_default())
                .execute(&mut *tx)
                .await?;
            }
            RevocationKind::Token => {
                sqlx::query(
                    "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            }
            RevocationKind::Serial => {}
        }
        let entry = append_revocation(&mut tx, self.backend, kind, value, now).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Feed entries after `after`, oldest first, at most `limit`.
    pub async fn revocations_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Revocation>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind, value, revoked_at FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Revocation {
                    seq: r.try_get(0)?,
                    kind: RevocationKind::parse(&r.try_get::<String, _>(1)?)?,
                    value: r.try_get(2)?,
                    revoked_at: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The newest feed position (0 when nothing was ever revoked).
    pub async fn revocation_head(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM revocations")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }
}

const FUNCTION_BY_NAME: &str = "SELECT name, spiffe_id, attestation, x509_ttl_seconds, created_at, \
     revoked_at, policies, boundary FROM functions WHERE name = $1";

fn function_from_row(r: &AnyRow) -> Result<FunctionRecord, sqlx::Error> {
    Ok(FunctionRecord {
        name: r.try_get(0)?,
        spiffe_id: r.try_get(1)?,
        attestation: r.try_get(2)?,
        x509_ttl_seconds: r.try_get(3)?,
        created_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
        policies: r.try_get(6)?,
        boundary: r.try_get(7)?,
    })
}

const GATEWAY_BY_NAME: &str = "SELECT name, spiffe_id, attestation, dns_names, ip_addresses, \
     x509_ttl_seconds, created_at, revoked_at FROM gateways WHERE name = $1";

const GATEWAYS_BY_NAME: &str = "SELECT name, spiffe_id, attestation, dns_names, ip_addresses, \
     x509_ttl_seconds, created_at, revoked_at FROM gateways ORDER BY name";

fn gateway_from_row(r: &AnyRow) -> Result<GatewayRecord, sqlx::Error> {
    Ok(GatewayRecord {
        name: r.try_get(0)?,
        spiffe_id: r.try_get(1)?,
        attestation: r.try_get(2)?,
        dns_names: r.try_get(3)?,
        ip_addresses: r.try_get(4)?,
        x509_ttl_seconds: r.try_get(5)?,
        created_at: r.try_get(6)?,
        revoked_at: r.try_get(7)?,
    })
}

fn token_from_row(r: &AnyRow) -> Result<TokenRecord, sqlx::Error> {
    Ok(TokenRecord {
        id: r.try_get(0)?,
        kind: TokenKind::parse(&r.try_get::<String, _>(1)?)?,
        secret_hash: r.try_get(2)?,
        function_name: r.try_get(3)?,
        policies: r.try_get(4)?,
        description: r.try_get(5)?,
        created_at: r.try_get(6)?,
        expires_at: r.try_get(7)?,
        used_at: r.try_get(8)?,
        revoked_at: r.try_get(9)?,
        gateway_name: r.try_get(10)?,
    })
}

/// Appends a feed entry. Followers read "entries after the last one I saw", so entries
/// must become visible in the order of their numbers: on PostgreSQL, where a sequence
/// hands out numbers before commit, writers of the feed take a lock held to commit, so
/// no entry can commit after one with a higher number. (SQLite has one writer at a time.)
async fn append_revocation(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    kind: RevocationKind,
    value: &str,
    now: i64,
) -> Result<Revocation, StoreError> {
    if backend == Backend::Postgres {
        sqlx::query("LOCK TABLE revocations IN EXCLUSIVE MODE")
            .execute(&mut **tx)
            .await?;
    }
    let row = sqlx::query(
        "INSERT INTO revocations (kind, value, revoked_at) VALUES ($1, $2, $3) RETURNING seq",
    )
    .bind(kind.as_str())
    .bind(value)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Revocation {
        seq: row.try_get(0)?,
        kind,
        value: value.to_string(),
        revoked_at: now,
    })
}

async fn insert_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &KeyRecord,
    generation: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO signing_keys (id, kind, public, wrapped_key, created_at, active_from, \
         publish_until, generation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&key.id)
    .bind(key.kind.as_str())
    .bind(&key.public)
    .bind(&key.wrapped_key)
    .bind(key.created_at)
    .bind(key.active_from)
    .bind(key.publish_until)
    .bind(generation)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    t: &TokenRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tokens (id, kind, secret_hash, function_name, policies, description, \
         created_at, expires_at, used_at, revoked_at, gateway_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&t.id)
    .bind(t.kind.as_str())
    .bind(&t.secret_hash)
    .bind(&t.function_name)
    .bind(&t.policies)
    .bind(&t.description)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(t.used_at)
    .bind(t.revoked_at)
    .bind(&t.gateway_name)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
