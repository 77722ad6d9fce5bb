//! Versioned schema migrations, applied in order at start, each in its own transaction.
//! A database whose schema is newer than this binary knows is refused rather than used.

use sqlx::{AnyPool, Row};

use super::{Backend, StoreError};

/// One schema step: its version, a name, and the SQL for each backend.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sqlite: include_str!("migrations/sqlite/0001_initial.sql"),
        postgres: include_str!("migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "audit",
        sqlite: include_str!("migrations/sqlite/0002_audit.sql"),
        postgres: include_str!("migrations/postgres/0002_audit.sql"),
    },
    Migration {
        version: 3,
        name: "secrets",
        sqlite: include_str!("migrations/sqlite/0003_secrets.sql"),
        postgres: include_str!("migrations/postgres/0003_secrets.sql"),
    },
    Migration {
        version: 4,
        name: "rotation",
        sqlite: include_str!("migrations/sqlite/0004_rotation.sql"),
        postgres: include_str!("migrations/postgres/0004_rotation.sql"),
    },
    Migration {
        version: 5,
        name: "intentions",
        sqlite: include_str!("migrations/sqlite/0005_intentions.sql"),
        postgres: include_str!("migrations/postgres/0005_intentions.sql"),
    },
    Migration {
        version: 6,
        name: "audit segments",
        sqlite: include_str!("migrations/sqlite/0006_audit_segments.sql"),
        postgres: include_str!("migrations/postgres/0006_audit_segments.sql"),
    },
    Migration {
        version: 7,
        name: "audit segments packed",
        sqlite: include_str!("migrations/sqlite/0007_audit_packed.sql"),
        postgres: include_str!("migrations/postgres/0007_audit_packed.sql"),
    },
    Migration {
        version: 8,
        name: "function permissions boundary",
        sqlite: include_str!("migrations/sqlite/0008_function_boundary.sql"),
        postgres: include_str!("migrations/postgres/0008_function_boundary.sql"),
    },
    Migration {
        version: 9,
        name: "used OIDC tokens",
        sqlite: include_str!("migrations/sqlite/0009_used_oidc_tokens.sql"),
        postgres: include_str!("migrations/postgres/0009_used_oidc_tokens.sql"),
    },
    Migration {
        version: 10,
        name: "gateways",
        sqlite: include_str!("migrations/sqlite/0010_gateways.sql"),
        postgres: include_str!("migrations/postgres/0010_gateways.sql"),
    },
    Migration {
        version: 11,
        name: "API-key quotas",
        sqlite: include_str!("migrations/sqlite/0011_api_key_quotas.sql"),
        postgres: include_str!("migrations/postgres/0011_api_key_quotas.sql"),
    },
];

/// Brings the schema up to date. On PostgreSQL an advisory lock serialises servers that
/// start together, so each migration runs once.
pub(super) async fn run(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    if backend == Backend::Postgres {
        // Any fixed number will do; this one spells "writ".
        sqlx::query("SELECT pg_advisory_xact_lock(2003987316)")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS writ_schema (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM writ_schema")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let newest = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > newest {
        return Err(StoreError::Migration(format!(
            "the database has schema version {current}, newer than this writ knows ({newest}); \
             upgrade writ"
        )));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let sql = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::Migration(format!("{} ({}): {e}", m.version, m.name)))?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        sqlx::query("INSERT INTO writ_schema (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
