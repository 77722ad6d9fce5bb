//! One storage suite, run against both backends: SQLite (a temporary file) always, and
//! PostgreSQL (a fresh database per test) when `WRIT_TEST_POSTGRES_URL` is set; without it
//! the `postgres` tests are reported as ignored (and fail under `CI=true`; see `build.rs`).
//!
//! Each check is an async fn taking a [`Ctx`] (an open [`Store`] and the URL it was opened
//! from); the `backends!` macro turns each into a `sqlite` and a `postgres` test.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;
use writ_policy::intentions::{HeaderMatch, Intention, IntentionAction, Permission};
use writ_secrets::model::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, Labels};
use writ_server::store::{
    Applied, AuditKeyRecord, Backend, FunctionRecord, GatewayRecord, KeyKind, KeyRecord, Meta,
    QuotaCount, QuotaPeriod, RevocationKind, RewrapCounts, SecretChange, SecretRecord, Store,
    StoreError, TokenKind, TokenRecord, VersionRecord, WrappedKey,
};

const POSTGRES_ENV: &str = "WRIT_TEST_POSTGRES_URL";

/// The PostgreSQL server to make test databases on. Reached only when the test is not
/// ignored, so an unset variable here means CI=true or `--include-ignored`: fail, saying why.
fn postgres_url() -> String {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{POSTGRES_ENV} is unset: this test needs PostgreSQL (postgres://USER@HOST:PORT/DB). \
             Under CI=true the PostgreSQL tests are required, not skipped; .ci/run sets it \
             to the local server. Outside CI, without it, they are reported as ignored."
        ),
    }
}

/// What a check gets: the store, and the URL to open it again.
struct Ctx {
    store: Store,
    url: String,
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `check` and then `cleanup`, even if the check panicked; then re-raises the panic.
async fn run_guarded<Fut>(check: Fut, cleanup: impl Future<Output = ()>)
where
    Fut: Future<Output = ()> + Send + 'static,
{
    let result = tokio::spawn(check).await;
    cleanup.await;
    if let Err(e) = result {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("check did not finish: {e}"),
        }
    }
}

async fn on_sqlite<F, Fut>(check: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir: PathBuf = std::env::temp_dir().join(format!("writ-store-test-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.join("writ.db").display());
    let store = Store::open(&url).await.expect("open sqlite store");
    assert_eq!(store.backend(), Backend::Sqlite);
    let closer = store.clone();
    run_guarded(check(Ctx { store, url }), async move {
        closer.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

/// `base` with its database name replaced by `db`.
fn with_database(base: &str, db: &str) -> String {
    let (main, query) = match base.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (base, None),
    };
    let authority_start = main.find("://").map_or(0, |i| i + 3);
    let root = match main[authority_start..].find('/') {
        Some(i) => &main[..authority_start + i],
        None => main,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

async fn on_postgres<F, Fut>(check: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let base = postgres_url();
    let db = format!("writ_test_{}", unique_suffix());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("connect to {POSTGRES_ENV}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let url = with_database(&base, &db);
    let store = Store::open(&url).await.expect("open postgres store");
    assert_eq!(store.backend(), Backend::Postgres);
    let closer = store.clone();
    run_guarded(check(Ctx { store, url }), async move {
        closer.close().await;
        // Best effort: a leftover database is only clutter.
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
        let _ = admin.close().await;
    })
    .await;
}

/// For each check, a module with a `sqlite` and a `postgres` test.
macro_rules! backends {
    ($($check:ident),* $(,)?) => {
        $(
            mod $check {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::on_sqlite(super::$check).await;
                }

                #[cfg_attr(writ_no_test_postgres, ignore = "needs PostgreSQL: set WRIT_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/DB (.ci/run does)")]
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::on_postgres(super::$check).await;
                }
            }
        )*
    };
}

backends!(
    migrations_run_at_open_and_are_idempotent,
    a_schema_newer_than_the_binary_is_refused,
    initialize_happens_once,
    concurrent_initialize_has_one_winner,
    keys_round_trip,
    rotate_key_retires_older_keys_of_its_kind_only,
    a_rotation_withdraws_a_key_still_waiting_to_sign,
    functions_insert_get_list_delete,
    functions_update_and_reinstate,
    tokens_insert_and_get,
    gateways_insert_get_list_and_their_join_tokens,
    join_tokens_are_single_use_and_refused_when_expired_or_revoked,
    concurrent_use_of_one_join_token_has_one_winner,
    revoke_appends_to_the_feed_and_marks_rows,
    revocation_feed_paginates,
    concurrent_revocations_get_distinct_sequence_numbers,
    a_feed_follower_misses_nothing_under_concurrent_writes,
    secrets_versions_and_labels_round_trip,
    concurrent_secret_writers_lose_no_version,
    deleted_secrets_restore_within_the_window_and_purge_after,
    rewrap_wrapped_keys_replaces_each_key_once_or_none,
    one_rotation_claim_at_a_time_and_schedules_come_due,
    intentions_upsert_list_delete_and_bump_the_index,
    concurrent_intention_writes_get_distinct_indexes_and_lose_nothing,
    audit_batches_longer_than_one_statement_chain_and_filter,
    an_audit_log_of_rows_per_event_moves_to_segments,
    an_audit_log_of_text_segments_is_packed,
    altered_hashes_are_kept_as_stored_when_packed,
    an_append_chains_on_the_signed_head_and_refuses_without_one,
    a_secret_change_and_its_event_commit_together_or_not_at_all,
    a_change_that_fails_is_undone_alone,
    a_rotations_finish_commits_with_its_event,
    a_failed_transaction_never_leaves_its_connection_inside_it,
    quota_leases_never_grant_past_the_limit,
    concurrent_quota_leases_from_two_pools_grant_the_limit_exactly,
);

// --- fixtures ---

/// A fresh audit signing key, and the public keys that verify its checkpoints.
fn audit_signer() -> (
    writ_audit::checkpoint::Signer,
    Vec<writ_audit::checkpoint::PublicKey>,
) {
    use writ_audit::checkpoint::{PublicKey, Signer};
    let signer = Signer::from_pkcs8(&Signer::generate_pkcs8().unwrap()).unwrap();
    let keys = vec![PublicKey {
        id: signer.id().to_string(),
        public_key: signer.public_key_hex(),
    }];
    (signer, keys)
}

const T0: i64 = 1_700_000_000;

fn key(id: &str, kind: KeyKind, active_from: i64) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        kind,
        public: format!("public half of {id}"),
        // Every byte value, so a text column or an encoding slip would show.
        wrapped_key: (0..=255u8).chain(id.bytes()).collect(),
        created_at: active_from - 5,
        active_from,
        publish_until: None,
        // What the store assigns to the first keys; rotations assign later generations.
        generation: 1,
    }
}

fn admin_token(id: &str) -> TokenRecord {
    TokenRecord {
        id: id.into(),
        kind: TokenKind::Admin,
        secret_hash: vec![0xab; 32],
        function_name: None,
        gateway_name: None,
        policies: Some(r#"[{"Version":"2012-10-17","Statement":[]}]"#.into()),
        description: format!("admin token {id}"),
        created_at: T0,
        expires_at: None,
        used_at: None,
        revoked_at: None,
    }
}

fn join_token(id: &str, function: &str, expires_at: Option<i64>) -> TokenRecord {
    TokenRecord {
        id: id.into(),
        kind: TokenKind::Join,
        secret_hash: vec![0x00, 0xff, 0x10, 0x80],
        function_name: Some(function.into()),
        gateway_name: None,
        policies: None,
        description: String::new(),
        created_at: T0,
        expires_at,
        used_at: None,
        revoked_at: None,
    }
}

fn function(name: &str) -> FunctionRecord {
    FunctionRecord {
        name: name.into(),
        spiffe_id: format!("spiffe://example.org/fn/{name}"),
        attestation: r#"[{"type":"joinToken"}]"#.into(),
        x509_ttl_seconds: None,
        created_at: T0,
        revoked_at: None,
        policies: None,
        boundary: None,
    }
}

async fn init(store: &Store) {
    let keys = [
        key("ca-1", KeyKind::X509, T0),
        key("jwt-1", KeyKind::Jwt, T0),
    ];
    assert!(
        store
            .initialize("example.org", T0, &keys, &admin_token("boot"))
            .await
            .unwrap()
    );
}

async fn schema_versions(url: &str) -> Vec<i64> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("raw connection");
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT version FROM writ_schema ORDER BY version")
        .fetch_all(&pool)
        .await
        .expect("read writ_schema");
    pool.close().await;
    rows.into_iter().map(|(v,)| v).collect()
}

// --- checks ---

async fn migrations_run_at_open_and_are_idempotent(ctx: Ctx) {
    let Ctx { store, url } = ctx;
    // The schema exists after open: a new store reads as uninitialised, not as an error.
    assert_eq!(store.meta().await.unwrap(), None);
    assert_eq!(store.functions().await.unwrap(), vec![]);
    assert_eq!(store.revocation_head().await.unwrap(), 0);
    let versions = schema_versions(&url).await;
    assert_eq!(
        versions,
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        "each migration recorded once"
    );

    init(&store).await;
    store.insert_function(&function("orders")).await.unwrap();

    // Opening again (while the first handle is still open, as a second server would) runs
    // no migration twice and keeps the data.
    let again = Store::open(&url).await.expect("second open");
    let third = Store::open(&url).await.expect("third open");
    assert_eq!(schema_versions(&url).await, versions);
    assert_eq!(
        again.meta().await.unwrap(),
        Some(Meta {
            trust_domain: "example.org".into(),
            key_generation: 1
        })
    );
    assert_eq!(third.functions().await.unwrap(), vec![function("orders")]);
    again.close().await;
    third.close().await;
}

async fn a_schema_newer_than_the_binary_is_refused(ctx: Ctx) {
    let Ctx { store, url } = ctx;
    store.close().await;
    {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO writ_schema (version, name, applied_at) VALUES (999, 'future', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    match Store::open(&url).await {
        Err(StoreError::Migration(msg)) => assert!(msg.contains("999"), "{msg}"),
        other => panic!("expected a migration error, got {other:?}"),
    }
}

async fn initialize_happens_once(ctx: Ctx) {
    let store = ctx.store;
    let first_keys = [
        key("ca-1", KeyKind::X509, T0),
        key("jwt-1", KeyKind::Jwt, T0),
    ];
    assert!(
        store
            .initialize("example.org", T0, &first_keys, &admin_token("boot-1"))
            .await
            .unwrap()
    );
    let second_keys = [
        key("ca-2", KeyKind::X509, T0 + 10),
        key("jwt-2", KeyKind::Jwt, T0 + 10),
    ];
    let again = store
        .initialize(
            "other.example",
            T0 + 10,
            &second_keys,
            &admin_token("boot-2"),
        )
        .await
        .unwrap();
    assert!(!again, "a second initialisation reports false");
    // ... and writes nothing: not its trust domain, keys, or bootstrap token.
    assert_eq!(
        store.meta().await.unwrap(),
        Some(Meta {
            trust_domain: "example.org".into(),
            key_generation: 1
        })
    );
    assert_eq!(store.keys().await.unwrap(), first_keys.to_vec());
    assert_eq!(
        store.token("boot-1").await.unwrap(),
        Some(admin_token("boot-1"))
    );
    assert_eq!(store.token("boot-2").await.unwrap(), None);
}

async fn concurrent_initialize_has_one_winner(ctx: Ctx) {
    let Ctx { store, url } = ctx;
    // Two "servers" (two pools) racing, several attempts each.
    let other = Store::open(&url).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            let keys = [
                key(&format!("ca-{i}"), KeyKind::X509, T0),
                key(&format!("jwt-{i}"), KeyKind::Jwt, T0),
            ];
            let won = s
                .initialize(
                    &format!("td{i}.example"),
                    T0,
                    &keys,
                    &admin_token(&format!("boot-{i}")),
                )
                .await
                .unwrap_or_else(|e| panic!("initialize {i}: {e}"));
            (i, won)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, won) = t.await.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one initialisation wins: {winners:?}"
    );
    let w = winners[0];
    let meta = store.meta().await.unwrap().unwrap();
    assert_eq!(meta.trust_domain, format!("td{w}.example"));
    let ids: Vec<String> = store
        .keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids.len(), 2, "only the winner's keys: {ids:?}");
    assert!(ids.contains(&format!("ca-{w}")) && ids.contains(&format!("jwt-{w}")));
    for i in 0..8 {
        let token = store.token(&format!("boot-{i}")).await.unwrap();
        assert_eq!(token.is_some(), i == w, "bootstrap token {i}");
    }
    other.close().await;
}

async fn keys_round_trip(ctx: Ctx) {
    let store = ctx.store;
    assert_eq!(store.keys().await.unwrap(), vec![]);
    let mut ca = key("ca-1", KeyKind::X509, T0);
    ca.publish_until = Some(T0 + 1000);
    let jwt = key("jwt-1", KeyKind::Jwt, T0 - 50);
    store
        .initialize(
            "example.org",
            T0,
            &[ca.clone(), jwt.clone()],
            &admin_token("b"),
        )
        .await
        .unwrap();
    // Oldest (by active_from) first; every field as written.
    let keys = store.keys().await.unwrap();
    assert_eq!(keys, vec![jwt, ca]);
    assert_eq!(keys[1].wrapped_key.len(), 256 + 4);
    assert_eq!(keys[0].kind, KeyKind::Jwt);
    assert_eq!(KeyKind::X509.as_str(), "x509");
    assert_eq!(KeyKind::Jwt.as_str(), "jwt");
}

async fn a_rotation_withdraws_a_key_still_waiting_to_sign(ctx: Ctx) {
    let store = ctx.store;
    init(&store).await;
    // Rotated at T0 to sign from T0 + 60; rotated again at T0 + 10 to sign at once. The
    // first new key has signed nothing and must never take over from the second: it
    // leaves the bundle when the second rotation is made.
    let mut waiting = key("ca-waiting", KeyKind::X509, T0 + 60);
    waiting.created_at = T0;
    store.rotate_key(&waiting, T0 + 60 + 3600).await.unwrap();
    let mut now = key("ca-now", KeyKind::X509, T0 + 10);
    now.created_at = T0 + 10;
    store.rotate_key(&now, T0 + 10 + 3600).await.unwrap();
    let keys = store.keys().await.unwrap();
    let by_id = |id: &str| keys.iter().find(|k| k.id == id).unwrap().clone();
    assert_eq!(by_id("ca-waiting").publish_until, Some(T0 + 10));
    assert_eq!(by_id("ca-1").publish_until, Some(T0 + 10 + 3600));
    assert_eq!(by_id("ca-now").publish_until, None);

    // A rotation that activates late keeps the signing key published until everything it
    // can sign before then has expired, even past a time an earlier rotation set.
    let mut late = key("ca-late", KeyKind::X509, T0 + 7200);
    late.created_at = T0 + 20;
    store.rotate_key(&late, T0 + 7200 + 3660).await.unwrap();
    let keys = store.keys().await.unwrap();
    let by_id = |id: &str| keys.iter().find(|k| k.id == id).unwrap().clone();
    assert_eq!(by_id("ca-now").publish_until, Some(T0 + 7200 + 3660));
    assert_eq!(
        by_id("ca-1").publish_until,
        Some(T0 + 10 + 3600),
        "retiring: unchanged"
    );
}

async fn rotate_key_retires_older_keys_of_its_kind_only(ctx: Ctx) {
    let store = ctx.store;
    init(&store).await;
    let generation = || async { store.meta().await.unwrap().unwrap().key_generation };
    assert_eq!(generation().await, 1);

    let ca2 = key("ca-2", KeyKind::X509, T0 + 100);
    store.rotate_key(&ca2, T0 + 5000).await.unwrap();
    assert_eq!(generation().await, 2);
    let keys = store.keys().await.unwrap();
    let by_id = |id: &str| keys.iter().find(|k| k.id == id).unwrap().clone();
    assert_eq!(by_id("ca-1").publish_until, Some(T0 + 5000));
    assert_eq!(
        by_id("jwt-1").publish_until,
        None,
        "the other kind is untouched"
    );
    assert_eq!(
        by_id("ca-2"),
        KeyRecord {
            generation: 2,
            ..ca2.clone()
        },
        "the new key is stored as given, with the next generation"
    );
    assert_eq!(keys.len(), 3);

    // A JWT rotation leaves the CAs alone.
    let jwt2 = key("jwt-2", KeyKind::Jwt, T0 + 200);
    store.rotate_key(&jwt2, T0 + 7000).await.unwrap();
    assert_eq!(generation().await, 3);
    let keys = store.keys().await.unwrap();
    let by_id = |id: &str| keys.iter().find(|k| k.id == id).unwrap().clone();
    assert_eq!(by_id("jwt-1").publish_until, Some(T0 + 7000));
    assert_eq!(by_id("jwt-2").publish_until, None);
    assert_eq!(by_id("ca-1").publish_until, Some(T0 + 5000));
    assert_eq!(by_id("ca-2").publish_until, None);

    // Each rotation sets the time of the key signing when it is made; keys already
    // retiring keep theirs.
    let ca3 = key("ca-3", KeyKind::X509, T0 + 300);
    store.rotate_key(&ca3, T0 + 9000).await.unwrap();
    let ca4 = key("ca-4", KeyKind::X509, T0 + 400);
    store.rotate_key(&ca4, T0 + 4000).await.unwrap();
    assert_eq!(generation().await, 5);
    let keys = store.keys().await.unwrap();
    let by_id = |id: &str| keys.iter().find(|k| k.id == id).unwrap().clone();
    assert_eq!(by_id("ca-1").publish_until, Some(T0 + 5000));
    assert_eq!(by_id("ca-2").publish_until, Some(T0 + 9000));
    assert_eq!(by_id("ca-3").publish_until, Some(T0 + 4000));
    assert_eq!(by_id("ca-4").publish_until, None);
    assert_eq!(by_id("jwt-1").publish_until, Some(T0 + 7000));
    assert_eq!(by_id("jwt-2").publish_until, None);

    // A duplicate key id fails the whole rotation: no retirement, no generation bump.
    let err = store.rotate_key(&ca4, T0 + 1).await;
    assert!(err.is_err(), "duplicate key id: {err:?}");
    assert_eq!(generation().await, 5);
    assert_eq!(
        store.keys().await.unwrap(),
        keys,
        "the failed rotation changed nothing"
    );
}

async fn functions_update_and_reinstate(ctx: Ctx) {
    let store = ctx.store;
    let orders = function("orders");
    store.insert_function(&orders).await.unwrap();

    // An update replaces rules, lifetime, policies and boundary, and nothing else.
    let mut updated = orders.clone();
    updated.attestation = r#"[{"type":"joinToken"}]"#.into();
    updated.x509_ttl_seconds = Some(900);
    updated.policies = Some(r#"["{}"]"#.into());
    updated.boundary = Some(r#"["{}"]"#.into());
    updated.created_at = T0 + 999;
    updated.revoked_at = Some(T0 + 999);
    assert!(store.update_function(&updated).await.unwrap());
    let stored = store.function("orders").await.unwrap().unwrap();
    assert_eq!(stored.x509_ttl_seconds, Some(900));
    assert_eq!(stored.policies, updated.policies);
    assert_eq!(stored.boundary, updated.boundary);
    assert_eq!(stored.created_at, orders.created_at, "the life is kept");
    assert_eq!(stored.revoked_at, None, "an update does not revoke");
    let mut nobody = function("nobody");
    nobody.x509_ttl_seconds = Some(60);
    assert!(!store.update_function(&nobody).await.unwrap());
    assert_eq!(store.function("nobody").await.unwrap(), None);

    // Reinstating takes a revoked function only, and starts its life again; its join
    // tokens not yet used are revoked with it, and no other.
    assert!(!store.reinstate_function("orders", T0 + 10).await.unwrap());
    store
        .insert_token(&join_token("j-stale", "orders", None))
        .await
        .unwrap();
    store
        .insert_token(&join_token("j-other", "other", None))
        .await
        .unwrap();
    store
        .revoke(
            RevocationKind::Function,
            &orders.spiffe_id,
            Some("orders"),
            T0 + 20,
        )
        .await
        .unwrap();
    let head = store.revocation_head().await.unwrap();
    assert!(store.reinstate_function("orders", T0 + 21).await.unwrap());
    let back = store.function("orders").await.unwrap().unwrap();
    assert_eq!(back.revoked_at, None);
    assert_eq!(back.created_at, T0 + 21);
    assert_eq!(
        store.revocation_head().await.unwrap(),
        head,
        "the revocation stays on the feed"
    );
    assert_eq!(
        store.token("j-stale").await.unwrap().unwrap().revoked_at,
        Some(T0 + 21)
    );
    assert_eq!(
        store.token("j-other").await.unwrap().unwrap().revoked_at,
        None
    );
    assert!(!store.use_join_token("j-stale", T0 + 22).await.unwrap());
    assert!(!store.reinstate_function("orders", T0 + 22).await.unwrap());
    assert!(!store.reinstate_function("nobody", T0 + 22).await.unwrap());
}

async fn functions_insert_get_list_delete(ctx: Ctx) {
    let store = ctx.store;
    assert_eq!(store.function("orders").await.unwrap(), None);
    let mut orders = function("orders");
    orders.x509_ttl_seconds = Some(1800);
    orders.attestation =
        r#"[{"type":"oidc","issuer":"https://i","jwksUrl":"https://i/k","audience":"a"}]"#.into();
    let billing = function("billing");
    store.insert_function(&orders).await.unwrap();
    store.insert_function(&billing).await.unwrap();
    assert_eq!(
        store.function("orders").await.unwrap(),
        Some(orders.clone())
    );
    assert_eq!(
        store.functions().await.unwrap(),
        vec![billing.clone(), orders.clone()],
        "listed by name"
    );

    // The same name again is a conflict, and the first record stands.
    let mut dup = function("orders");
    dup.attestation = "[]".into();
    match store.insert_function(&dup).await {
        Err(StoreError::Conflict(what)) => assert!(what.contains("orders"), "{what}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // So is another name with the same SPIFFE ID.
    let mut same_id = function("other");
    same_id.spiffe_id = orders.spiffe_id.clone();
    assert!(matches!(
        store.insert_function(&same_id).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.function("orders").await.unwrap(),
        Some(orders.clone())
    );
    assert_eq!(store.functions().await.unwrap().len(), 2);

    // Delete takes the function's join tokens with it, and nothing else.
    store
        .insert_token(&join_token("j-orders", "orders", None))
        .await
        .unwrap();
    store
        .insert_token(&join_token("j-billing", "billing", None))
        .await
        .unwrap();
    store.insert_token(&admin_token("adm")).await.unwrap();
    let head = store.revocation_head().await.unwrap();
    let entry = store
        .delete_function("orders", T0 + 50)
        .await
        .unwrap()
        .expect("deleted");
    // Its SVIDs must stop working everywhere: the deletion is on the feed.
    assert_eq!(entry.kind, RevocationKind::Function);
    assert_eq!(entry.value, "spiffe://example.org/fn/orders");
    assert_eq!(entry.revoked_at, T0 + 50);
    assert_eq!(
        store.revocations_after(head, 10).await.unwrap(),
        vec![entry]
    );
    assert_eq!(store.function("orders").await.unwrap(), None);
    assert_eq!(store.token("j-orders").await.unwrap(), None);
    assert!(store.token("j-billing").await.unwrap().is_some());
    assert!(store.token("adm").await.unwrap().is_some());
    assert_eq!(store.functions().await.unwrap(), vec![billing]);
    assert!(
        store.delete_function("orders", T0).await.unwrap().is_none(),
        "already gone"
    );
    assert!(store.delete_function("never", T0).await.unwrap().is_none());
    assert_eq!(
        store.revocation_head().await.unwrap(),
        head + 1,
        "nothing deleted, nothing published"
    );

    // The name is free again.
    store.insert_function(&function("orders")).await.unwrap();
}

async fn tokens_insert_and_get(ctx: Ctx) {
    let store = ctx.store;
    assert_eq!(store.token("nope").await.unwrap(), None);
    let admin = TokenRecord {
        expires_at: Some(T0 + 3600),
        ..admin_token("a1")
    };
    let join = join_token("j1", "orders", Some(T0 + 600));
    store.insert_token(&admin).await.unwrap();
    store.insert_token(&join).await.unwrap();
    assert_eq!(store.token("a1").await.unwrap(), Some(admin));
    assert_eq!(store.token("j1").await.unwrap(), Some(join.clone()));
    // Ids are unique.
    let mut again = join_token("j1", "billing", None);
    again.secret_hash = vec![1; 32];
    assert!(store.insert_token(&again).await.is_err());
    assert_eq!(store.token("j1").await.unwrap(), Some(join));
}

async fn gateways_insert_get_list_and_their_join_tokens(ctx: Ctx) {
    let store = ctx.store;
    assert_eq!(store.gateway("edge").await.unwrap(), None);
    let edge = GatewayRecord {
        name: "edge".into(),
        spiffe_id: "spiffe://example.org/writ/gateway/edge".into(),
        attestation: r#"[{"type":"joinToken"}]"#.into(),
        dns_names: r#"["gw.internal"]"#.into(),
        ip_addresses: r#"["127.0.0.1"]"#.into(),
        x509_ttl_seconds: Some(3600),
        created_at: T0,
        revoked_at: None,
    };
    store.insert_gateway(&edge).await.unwrap();
    assert!(matches!(
        store.insert_gateway(&edge).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.gateway("edge").await.unwrap(), Some(edge.clone()));
    assert_eq!(store.gateways().await.unwrap(), vec![edge]);
    // A gateway of a name is no function of that name.
    assert_eq!(store.function("edge").await.unwrap(), None);
    // Its join token names it, and no function; it is single-use as a function's is.
    let token = TokenRecord {
        function_name: None,
        gateway_name: Some("edge".into()),
        ..join_token("g1", "unused", Some(T0 + 600))
    };
    store.insert_token(&token).await.unwrap();
    assert_eq!(store.token("g1").await.unwrap(), Some(token));
    assert!(store.use_join_token("g1", T0 + 1).await.unwrap());
    assert!(!store.use_join_token("g1", T0 + 2).await.unwrap());
}

async fn join_tokens_are_single_use_and_refused_when_expired_or_revoked(ctx: Ctx) {
    let store = ctx.store;
    let now = T0 + 100;
    store
        .insert_token(&join_token("fresh", "orders", Some(now + 600)))
        .await
        .unwrap();
    store
        .insert_token(&join_token("forever", "orders", None))
        .await
        .unwrap();
    store
        .insert_token(&join_token("expired", "orders", Some(now - 1)))
        .await
        .unwrap();
    store
        .insert_token(&join_token("expires-now", "orders", Some(now)))
        .await
        .unwrap();
    store
        .insert_token(&join_token("revoked", "orders", Some(now + 600)))
        .await
        .unwrap();
    store.insert_token(&admin_token("admin")).await.unwrap();
    store
        .revoke(RevocationKind::Token, "revoked", None, now - 10)
        .await
        .unwrap();

    // Single use: the first use marks it, the second is refused.
    assert!(store.use_join_token("fresh", now).await.unwrap());
    assert_eq!(
        store.token("fresh").await.unwrap().unwrap().used_at,
        Some(now)
    );
    assert!(!store.use_join_token("fresh", now).await.unwrap());
    assert!(!store.use_join_token("fresh", now + 1).await.unwrap());
    assert_eq!(
        store.token("fresh").await.unwrap().unwrap().used_at,
        Some(now),
        "a refused use does not move used_at"
    );
    assert!(store.use_join_token("forever", now).await.unwrap());

    // Expired (including exactly at expiry), revoked, not a join token, unknown: refused
    // and left unused.
    for id in ["expired", "expires-now", "revoked", "admin", "unknown"] {
        assert!(!store.use_join_token(id, now).await.unwrap(), "{id}");
        if let Some(t) = store.token(id).await.unwrap() {
            assert_eq!(t.used_at, None, "{id}");
        }
    }
    // Before its expiry the "expires-now" token was fine.
    assert!(store.use_join_token("expires-now", now - 1).await.unwrap());
}

async fn concurrent_use_of_one_join_token_has_one_winner(ctx: Ctx) {
    let Ctx { store, url } = ctx;
    let now = T0;
    store
        .insert_token(&join_token("race", "orders", Some(now + 600)))
        .await
        .unwrap();
    // Two pools, as two servers would have.
    let other = Store::open(&url).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.use_join_token("race", now + i).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await
            .unwrap()
            .expect("no database error under contention")
        {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "exactly one of 16 concurrent uses succeeds");
    let used = store.token("race").await.unwrap().unwrap().used_at;
    assert!(
        used.is_some_and(|u| (now..now + 16).contains(&u)),
        "{used:?}"
    );
    other.close().await;
}

async fn revoke_appends_to_the_feed_and_marks_rows(ctx: Ctx) {
    let store = ctx.store;
    assert_eq!(store.revocation_head().await.unwrap(), 0);
    store.insert_function(&function("orders")).await.unwrap();
    store.insert_function(&function("billing")).await.unwrap();
    store.insert_token(&admin_token("adm")).await.unwrap();

    let r1 = store
        .revoke(
            RevocationKind::Function,
            "spiffe://example.org/fn/orders",
            Some("orders"),
            T0 + 10,
        )
        .await
        .unwrap();
    assert_eq!(r1.kind, RevocationKind::Function);
    assert_eq!(r1.value, "spiffe://example.org/fn/orders");
    assert_eq!(r1.revoked_at, T0 + 10);
    assert_eq!(
        store.function("orders").await.unwrap().unwrap().revoked_at,
        Some(T0 + 10)
    );
    assert_eq!(
        store.function("billing").await.unwrap().unwrap().revoked_at,
        None,
        "only the named function"
    );

    let r2 = store
        .revoke(RevocationKind::Token, "adm", None, T0 + 20)
        .await
        .unwrap();
    assert_eq!(
        store.token("adm").await.unwrap().unwrap().revoked_at,
        Some(T0 + 20)
    );
    let r3 = store
        .revoke(RevocationKind::Serial, "0a1b2c", None, T0 + 30)
        .await
        .unwrap();

    // Revoking again appends a new entry but keeps the first revocation time.
    let r4 = store
        .revoke(
            RevocationKind::Function,
            "spiffe://example.org/fn/orders",
            Some("orders"),
            T0 + 40,
        )
        .await
        .unwrap();
    assert_eq!(
        store.function("orders").await.unwrap().unwrap().revoked_at,
        Some(T0 + 10)
    );
    let r5 = store
        .revoke(RevocationKind::Token, "adm", None, T0 + 50)
        .await
        .unwrap();
    assert_eq!(
        store.token("adm").await.unwrap().unwrap().revoked_at,
        Some(T0 + 20)
    );

    let seqs = [r1.seq, r2.seq, r3.seq, r4.seq, r5.seq];
    assert!(seqs[0] > 0, "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "increasing: {seqs:?}");
    assert_eq!(store.revocation_head().await.unwrap(), r5.seq);
    assert_eq!(
        store.revocations_after(0, 100).await.unwrap(),
        vec![r1, r2, r3, r4, r5]
    );
}

async fn revocation_feed_paginates(ctx: Ctx) {
    let store = ctx.store;
    assert_eq!(store.revocations_after(0, 10).await.unwrap(), vec![]);
    let mut all = Vec::new();
    for i in 0..7 {
        all.push(
            store
                .revoke(RevocationKind::Serial, &format!("{i:02x}"), None, T0 + i)
                .await
                .unwrap(),
        );
    }
    let head = store.revocation_head().await.unwrap();
    assert_eq!(head, all.last().unwrap().seq);

    // Walk the feed three at a time, as a follower does.
    let mut after = 0;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.revocations_after(after, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().unwrap().seq;
        seen.extend(page);
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all);
    assert_eq!(after, head);
    // From the middle; past the head; a negative cursor reads from the start.
    assert_eq!(
        store.revocations_after(all[4].seq, 100).await.unwrap(),
        all[5..].to_vec()
    );
    assert_eq!(store.revocations_after(head, 100).await.unwrap(), vec![]);
    assert_eq!(
        store.revocations_after(head + 100, 100).await.unwrap(),
        vec![]
    );
    assert_eq!(
        store.revocations_after(-5, 2).await.unwrap(),
        all[..2].to_vec()
    );
    assert_eq!(store.revocations_after(0, 0).await.unwrap(), vec![]);
}

async fn concurrent_revocations_get_distinct_sequence_numbers(ctx: Ctx) {
    let Ctx { store, url } = ctx;
    let other = Store::open(&url).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            s.revoke(RevocationKind::Serial, &format!("{i:x}"), None, T0)
                .await
                .expect("revoke under contention")
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().seq);
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 16, "distinct: {seqs:?}");
    assert_eq!(
        store.revocation_head().await.unwrap(),
        *seqs.last().unwrap()
    );
    let feed = store.revocations_after(0, 100).await.unwrap();
    assert_eq!(
        feed.iter().map(|r| r.seq).collect::<Vec<_>>(),
        seqs,
        "the feed holds each once, in order"
    );
    other.close().await;
}

/// Followers read "entries after the last one I saw"; an entry committed after one with a
/// higher number would be skipped for good. Writers race while a follower polls.
async fn a_feed_follower_misses_nothing_under_concurrent_writes(ctx: Ctx) {
    let Ctx { store, url } = ctx;
    let other = Store::open(&url).await.unwrap();
    let writers: Vec<_> = (0..64)
        .map(|i| {
            let s = if i % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                s.revoke(RevocationKind::Serial, &format!("{i:x}"), None, T0)
                    .await
                    .expect("revoke")
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut head = 0;
    let follow = |head: i64| {
        let store = store.clone();
        async move { store.revocations_after(head, 1000).await.unwrap() }
    };
    while seen.len() < 64 {
        for entry in follow(head).await {
            head = entry.seq;
            seen.push(entry.value);
        }
        if writers.iter().all(|w| w.is_finished()) {
            // One last read after every writer is done; anything still missing was skipped.
            seen.extend(follow(head).await.into_iter().map(|e| e.value));
            break;
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    seen.sort();
    let mut all: Vec<String> = (0..64).map(|i| format!("{i:x}")).collect();
    all.sort();
    assert_eq!(seen, all, "the follower saw every entry exactly once");
    other.close().await;
}

// --- secrets ---

fn secret(name: &str) -> SecretRecord {
    SecretRecord {
        name: name.into(),
        description: format!("about {name}"),
        tags: r#"{"team":"a"}"#.into(),
        resource_policy: None,
        created_at: T0,
        updated_at: T0,
        deleted_at: None,
        recovery_until: None,
        rotation: None,
        next_rotation_at: None,
        last_rotation: None,
    }
}

fn version(id: &str, created_at: i64) -> VersionRecord {
    VersionRecord {
        version_id: id.into(),
        // Every byte value, so a text column or an encoding slip would show.
        wrapped_key: (0..=255u8).chain(id.bytes()).collect(),
        ciphertext: id.bytes().chain((0..=255u8).rev()).collect(),
        binary: false,
        created_at,
    }
}

fn version_ids(versions: &[VersionRecord]) -> Vec<String> {
    versions.iter().map(|v| v.version_id.clone()).collect()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().map(|(l, v)| (l.to_string(), v.to_string())))
}

async fn secrets_versions_and_labels_round_trip(ctx: Ctx) {
    let store = ctx.store;
    let name = "prod/orders-db";
    assert_eq!(store.secret(name).await.unwrap(), None);
    assert_eq!(store.secrets().await.unwrap(), vec![]);
    assert_eq!(store.secret_labels(name).await.unwrap(), Labels::default());
    assert_eq!(store.secret_versions(name).await.unwrap(), vec![]);

    let v1 = version("v1", T0);
    store.create_secret(&secret(name), &v1).await.unwrap();
    assert_eq!(store.secret(name).await.unwrap(), Some(secret(name)));
    assert_eq!(store.secret_versions(name).await.unwrap(), vec![v1.clone()]);
    assert_eq!(
        store.secret_version(name, "v1").await.unwrap(),
        Some(v1.clone()),
        "byte for byte"
    );
    assert_eq!(
        store.secret_labels(name).await.unwrap(),
        labels(&[(AWSCURRENT, "v1")])
    );

    // The name is taken: a conflict, and the loser's version is not stored.
    let mut other = secret(name);
    other.description = "another".into();
    match store.create_secret(&other, &version("v-dup", T0)).await {
        Err(StoreError::Conflict(what)) => assert!(what.contains(name), "{what}"),
        r => panic!("expected a conflict, got {r:?}"),
    }
    assert_eq!(store.secret(name).await.unwrap(), Some(secret(name)));
    assert_eq!(store.secret_version(name, "v-dup").await.unwrap(), None);

    // A new current version; the old one becomes previous; updated_at moves.
    let v2 = version("v2", T0 + 10);
    let after = store
        .put_secret_version(name, &v2, T0 + 10, |l| l.make_current("v2"))
        .await
        .unwrap()
        .expect("live secret");
    let expected = labels(&[(AWSCURRENT, "v2"), (AWSPREVIOUS, "v1")]);
    assert_eq!(after, expected);
    assert_eq!(store.secret_labels(name).await.unwrap(), expected);
    let record = store.secret(name).await.unwrap().unwrap();
    assert_eq!((record.created_at, record.updated_at), (T0, T0 + 10));

    // A binary version staged as pending does not move AWSCURRENT.
    let mut v3 = version("v3", T0 + 20);
    v3.binary = true;
    let after = store
        .put_secret_version(name, &v3, T0 + 20, |l| l.stage_pending("v3"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.version(AWSCURRENT), Some("v2"));
    assert_eq!(after.version(AWSPENDING), Some("v3"));
    assert_eq!(
        store.secret_version(name, "v3").await.unwrap(),
        Some(v3.clone())
    );
    assert_eq!(
        version_ids(&store.secret_versions(name).await.unwrap()),
        ["v1", "v2", "v3"],
        "oldest first"
    );

    // A relabel that fails changes nothing; one that succeeds finishes the rotation.
    let before = store.secret_labels(name).await.unwrap();
    let refused = store
        .relabel_secret(name, |l| {
            l.cancel_rotation();
            Err("changed my mind".into())
        })
        .await
        .unwrap();
    assert_eq!(refused, Err("changed my mind".to_string()));
    assert_eq!(store.secret_labels(name).await.unwrap(), before);
    let finished = store
        .relabel_secret(name, |l| l.finish_rotation().map_err(|e| e.to_string()))
        .await
        .unwrap()
        .unwrap();
    let expected = labels(&[(AWSCURRENT, "v3"), (AWSPREVIOUS, "v2")]);
    assert_eq!(finished, expected);
    assert_eq!(store.secret_labels(name).await.unwrap(), expected);

    // No such secret: nothing written.
    assert_eq!(
        store
            .put_secret_version("nope", &version("vx", T0), T0, |l| l.make_current("vx"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.secret_version("nope", "vx").await.unwrap(), None);
    assert_eq!(
        store.secret_labels("nope").await.unwrap(),
        Labels::default()
    );
    assert!(
        store
            .relabel_secret("nope", |_| Ok(()))
            .await
            .unwrap()
            .is_err()
    );

    // Resource policies are set and cleared.
    let policy = r#"{"Version":"2012-10-17","Statement":[]}"#;
    assert!(
        store
            .set_secret_policy(name, Some(policy), T0 + 30)
            .await
            .unwrap()
    );
    let record = store.secret(name).await.unwrap().unwrap();
    assert_eq!(record.resource_policy.as_deref(), Some(policy));
    assert_eq!(record.updated_at, T0 + 30);
    assert!(store.set_secret_policy(name, None, T0 + 40).await.unwrap());
    assert_eq!(
        store.secret(name).await.unwrap().unwrap().resource_policy,
        None
    );
    assert!(!store.set_secret_policy("nope", None, T0).await.unwrap());

    // Versions and labels belong to their secret: the same version id elsewhere is apart.
    store
        .create_secret(&secret("a/first"), &version("v1", T0 + 50))
        .await
        .unwrap();
    assert_eq!(
        store
            .secrets()
            .await
            .unwrap()
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["a/first", name],
        "by name"
    );
    assert_eq!(
        store.secret_labels("a/first").await.unwrap(),
        labels(&[(AWSCURRENT, "v1")])
    );
    assert_eq!(store.secret_labels(name).await.unwrap(), expected);
    assert_eq!(
        store
            .secret_version("a/first", "v1")
            .await
            .unwrap()
            .unwrap()
            .created_at,
        T0 + 50
    );
    assert_eq!(store.secret_versions(name).await.unwrap().len(), 3);
}

/// Writers on two pools (as two servers) put versions on one secret at once. Each must see
/// the labels the one before it left: every writer's AWSPREVIOUS is a distinct version, the
/// writes form one chain, and no version or label move is lost.
async fn concurrent_secret_writers_lose_no_version(ctx: Ctx) {
    let Ctx { store, url } = ctx;
    let name = "race/key";
    store
        .create_secret(&secret(name), &version("v00", T0))
        .await
        .unwrap();
    let other = Store::open(&url).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for i in 1..=16i64 {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("v{i:02}");
            let v = version(&id, T0 + i);
            barrier.wait().await;
            let after = s
                .put_secret_version(name, &v, T0 + i, |l| l.make_current(&id))
                .await
                .unwrap_or_else(|e| panic!("put {id} under contention: {e}"))
                .unwrap_or_else(|| panic!("put {id}: the secret is there"));
            (id, after)
        }));
    }
    let mut previous_of = std::collections::BTreeMap::new();
    for t in tasks {
        let (id, after) = t.await.unwrap();
        assert_eq!(after.version(AWSCURRENT), Some(id.as_str()), "{after:?}");
        let prev = after
            .version(AWSPREVIOUS)
            .unwrap_or_else(|| panic!("{id} has a predecessor: {after:?}"))
            .to_string();
        assert_ne!(prev, id);
        previous_of.insert(id, prev);
    }
    let new_ids: Vec<String> = (1..=16).map(|i| format!("v{i:02}")).collect();

    // Every version is there.
    let mut stored = version_ids(&store.secret_versions(name).await.unwrap());
    stored.sort();
    let mut all = new_ids.clone();
    all.push("v00".into());
    all.sort();
    assert_eq!(stored, all, "16 + 1 versions");

    // Each write saw a different predecessor: they form one chain from v00.
    let mut predecessors: Vec<&String> = previous_of.values().collect();
    predecessors.sort();
    predecessors.dedup();
    assert_eq!(
        predecessors.len(),
        16,
        "two writers saw the same AWSCURRENT: {previous_of:?}"
    );
    let last: Vec<&String> = new_ids
        .iter()
        .filter(|id| !previous_of.values().any(|p| p == *id))
        .collect();
    assert_eq!(last.len(), 1, "one version is nobody's predecessor");
    let last = last[0].clone();
    let mut chain = vec![last.clone()];
    while let Some(p) = previous_of.get(chain.last().unwrap()) {
        chain.push(p.clone());
    }
    assert_eq!(
        chain.len(),
        17,
        "one chain through every version: {chain:?}"
    );
    assert_eq!(chain.last().map(String::as_str), Some("v00"));

    // The stored labels are the last writer's.
    let final_labels = store.secret_labels(name).await.unwrap();
    assert_eq!(
        final_labels,
        labels(&[(AWSCURRENT, &last), (AWSPREVIOUS, &previous_of[&last])]),
        "{previous_of:?}"
    );
    let from_other = other.secret_labels(name).await.unwrap();
    assert_eq!(from_other, final_labels);
    other.close().await;
}

async fn deleted_secrets_restore_within_the_window_and_purge_after(ctx: Ctx) {
    let store = ctx.store;
    let name = "gone/soon";
    let window = 7 * 86_400;
    store
        .create_secret(&secret(name), &version("v1", T0))
        .await
        .unwrap();
    store
        .put_secret_version(name, &version("v2", T0 + 1), T0 + 1, |l| {
            l.make_current("v2")
        })
        .await
        .unwrap()
        .unwrap();
    store
        .create_secret(&secret("stays/here"), &version("v1", T0))
        .await
        .unwrap();
    let kept_versions = store.secret_versions("stays/here").await.unwrap();
    let kept_labels = store.secret_labels("stays/here").await.unwrap();

    let deleted_at = T0 + 100;
    let until = deleted_at + window;
    assert!(store.delete_secret(name, deleted_at, until).await.unwrap());
    assert!(
        !store
            .delete_secret(name, deleted_at + 5, until + 5)
            .await
            .unwrap(),
        "already scheduled"
    );
    assert!(
        !store
            .delete_secret("nope", deleted_at, until)
            .await
            .unwrap()
    );
    let record = store.secret(name).await.unwrap().unwrap();
    assert_eq!(
        (record.deleted_at, record.recovery_until),
        (Some(deleted_at), Some(until)),
        "the first deletion's window stands"
    );
    assert_eq!(
        store
            .secrets()
            .await
            .unwrap()
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["stays/here"]
    );

    // While deleted: no writes, no relabels, no policy, and the name stays taken.
    assert_eq!(
        store
            .put_secret_version(name, &version("v3", T0 + 200), T0 + 200, |l| {
                l.make_current("v3")
            })
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.secret_version(name, "v3").await.unwrap(), None);
    assert!(
        store
            .relabel_secret(name, |_| Ok(()))
            .await
            .unwrap()
            .is_err()
    );
    assert!(
        !store
            .set_secret_policy(name, Some("{}"), T0 + 200)
            .await
            .unwrap()
    );
    assert!(matches!(
        store.create_secret(&secret(name), &version("v9", T0)).await,
        Err(StoreError::Conflict(_))
    ));
    // Not purged within the window.
    assert!(!store.purge_secret(name, until - 1).await.unwrap());
    assert_eq!(store.secret_versions(name).await.unwrap().len(), 2);

    // Restored within the window (not at its end), with versions and labels intact.
    assert!(!store.restore_secret(name, until).await.unwrap());
    assert!(!store.restore_secret(name, until + 1).await.unwrap());
    assert!(store.restore_secret(name, until - 1).await.unwrap());
    let record = store.secret(name).await.unwrap().unwrap();
    assert_eq!((record.deleted_at, record.recovery_until), (None, None));
    assert!(!store.restore_secret(name, until - 1).await.unwrap());
    assert!(!store.restore_secret("nope", T0).await.unwrap());
    assert_eq!(
        store.secret_labels(name).await.unwrap(),
        labels(&[(AWSCURRENT, "v2"), (AWSPREVIOUS, "v1")])
    );
    assert_eq!(store.secrets().await.unwrap().len(), 2);
    // A live secret is never purged.
    assert!(!store.purge_secret(name, i64::MAX).await.unwrap());
    assert_eq!(store.secret_versions(name).await.unwrap().len(), 2);

    // Deleted again and left past its window: restore fails, purge removes it all.
    let deleted_at = T0 + 1000;
    let until = deleted_at + window;
    assert!(store.delete_secret(name, deleted_at, until).await.unwrap());
    assert!(!store.restore_secret(name, until + 60).await.unwrap());
    assert!(store.secret(name).await.unwrap().is_some());
    assert!(store.purge_secret(name, until).await.unwrap());
    assert_eq!(store.secret(name).await.unwrap(), None);
    assert_eq!(store.secret_versions(name).await.unwrap(), vec![]);
    assert_eq!(store.secret_version(name, "v1").await.unwrap(), None);
    assert_eq!(store.secret_labels(name).await.unwrap(), Labels::default());
    assert!(!store.purge_secret(name, until).await.unwrap(), "once");
    assert!(!store.restore_secret(name, until - 1).await.unwrap());
    // Only that secret went.
    assert_eq!(
        store.secret_versions("stays/here").await.unwrap(),
        kept_versions
    );
    assert_eq!(
        store.secret_labels("stays/here").await.unwrap(),
        kept_labels
    );

    // The name is free, and the new secret inherits nothing.
    store
        .create_secret(&secret(name), &version("fresh", until + 1))
        .await
        .unwrap();
    assert_eq!(
        version_ids(&store.secret_versions(name).await.unwrap()),
        ["fresh"]
    );
    assert_eq!(
        store.secret_labels(name).await.unwrap(),
        labels(&[(AWSCURRENT, "fresh")])
    );
}

/// Adapts a closure over (secret name, version id, wrapped key) to `rewrap_wrapped_keys`;
/// signing and audit keys get a recognisable new wrapping.
fn secret_rewrap(
    f: impl Fn(&str, &str, &[u8]) -> Result<Vec<u8>, String>,
) -> impl Fn(&WrappedKey<'_>) -> Result<Vec<u8>, String> {
    move |k| match k {
        WrappedKey::SecretVersion {
            name,
            version_id,
            wrapped,
        } => f(name, version_id, wrapped),
        WrappedKey::SigningKey { id, wrapped } | WrappedKey::AuditKey { id, wrapped } => {
            Ok([b"rewrapped:", id.as_bytes(), b"/", wrapped].concat())
        }
    }
}

async fn rewrap_wrapped_keys_replaces_each_key_once_or_none(ctx: Ctx) {
    let store = ctx.store;
    let calls = std::sync::Mutex::new(Vec::<(String, String, Vec<u8>)>::new());
    let new_key = |name: &str, id: &str, old: &[u8]| -> Vec<u8> {
        [
            b"rewrapped:".as_slice(),
            name.as_bytes(),
            b"/",
            id.as_bytes(),
            old,
        ]
        .concat()
    };
    // Nothing to do on an empty store.
    let n = store
        .rewrap_wrapped_keys(secret_rewrap(|n, i, w| {
            calls.lock().unwrap().push((n.into(), i.into(), w.into()));
            Ok(new_key(n, i, w))
        }))
        .await
        .unwrap();
    assert_eq!(
        (n, calls.lock().unwrap().len()),
        (RewrapCounts::default(), 0)
    );

    // The CA and JWT keys, and an audit key, are wrapped by the master key too.
    init(&store).await;
    let audit_key = AuditKeyRecord {
        id: "audit-1".into(),
        kind: "hmac".into(),
        public: String::new(),
        wrapped_key: vec![7; 40],
    };
    store
        .insert_audit_keys(std::slice::from_ref(&audit_key), T0)
        .await
        .unwrap();
    let signing_before = store.keys().await.unwrap();

    let mut originals = Vec::new();
    for (name, ids) in [("r/a", &["a1", "a2", "a3"][..]), ("r/b", &["b1", "b2"][..])] {
        for (i, id) in ids.iter().enumerate() {
            let mut v = version(id, T0 + i as i64);
            v.binary = i % 2 == 1;
            if i == 0 {
                store.create_secret(&secret(name), &v).await.unwrap();
            } else {
                store
                    .put_secret_version(name, &v, T0, |l| l.make_current(id))
                    .await
                    .unwrap()
                    .unwrap();
            }
            originals.push((name.to_string(), v));
        }
    }
    // A deleted (but restorable) secret's keys are rewrapped too.
    store
        .delete_secret("r/b", T0, T0 + 86_400 * 7)
        .await
        .unwrap();

    let n = store
        .rewrap_wrapped_keys(secret_rewrap(|n, i, w| {
            calls.lock().unwrap().push((n.into(), i.into(), w.into()));
            Ok(new_key(n, i, w))
        }))
        .await
        .unwrap();
    assert_eq!(
        n,
        RewrapCounts {
            secret_versions: 5,
            signing_keys: 2,
            audit_keys: 1
        }
    );
    for (after, before) in store.keys().await.unwrap().iter().zip(&signing_before) {
        let want = [
            b"rewrapped:",
            before.id.as_bytes(),
            b"/",
            &before.wrapped_key,
        ]
        .concat();
        assert_eq!(after.wrapped_key, want, "signing key {}", before.id);
        assert_eq!((&after.id, &after.public), (&before.id, &before.public));
    }
    let audit_after = store.audit_keys().await.unwrap();
    assert_eq!(
        audit_after[0].wrapped_key,
        [b"rewrapped:audit-1/".as_slice(), &audit_key.wrapped_key].concat()
    );
    let mut seen = std::mem::take(&mut *calls.lock().unwrap());
    seen.sort();
    let mut expected: Vec<(String, String, Vec<u8>)> = originals
        .iter()
        .map(|(n, v)| (n.clone(), v.version_id.clone(), v.wrapped_key.clone()))
        .collect();
    expected.sort();
    assert_eq!(seen, expected, "once per version, with its wrapped key");
    for (name, v) in &originals {
        let stored = store
            .secret_version(name, &v.version_id)
            .await
            .unwrap()
            .unwrap();
        let want = VersionRecord {
            wrapped_key: new_key(name, &v.version_id, &v.wrapped_key),
            ..v.clone()
        };
        assert_eq!(stored, want, "only the wrapped key changed: {name} {v:?}");
    }
    let snapshot = |store: Store| async move {
        let mut all = Vec::new();
        for name in ["r/a", "r/b"] {
            all.extend(store.secret_versions(name).await.unwrap());
        }
        all
    };
    let before = snapshot(store.clone()).await;

    // One failure fails the whole rotation: nothing is half rewrapped.
    let count = std::sync::atomic::AtomicUsize::new(0);
    let r = store
        .rewrap_wrapped_keys(|k| {
            if count.fetch_add(1, Ordering::SeqCst) == 6 {
                Err(format!("cannot unwrap {k:?}"))
            } else {
                secret_rewrap(|n, i, w| Ok(new_key(n, i, w)))(k)
            }
        })
        .await;
    match r {
        Err(StoreError::Migration(msg)) => assert!(msg.contains("cannot unwrap"), "{msg}"),
        other => panic!("expected the closure's error, got {other:?}"),
    }
    assert_eq!(
        count.load(Ordering::SeqCst),
        7,
        "it stops at the failure, a signing key"
    );
    assert_eq!(snapshot(store.clone()).await, before, "rolled back");
    assert_eq!(
        store.audit_keys().await.unwrap(),
        audit_after,
        "rolled back"
    );
}

async fn one_rotation_claim_at_a_time_and_schedules_come_due(ctx: Ctx) {
    let store = Arc::new(ctx.store);
    store
        .create_secret(&secret("rot/a"), &version("a1", T0))
        .await
        .unwrap();
    store
        .create_secret(&secret("rot/b"), &version("b1", T0))
        .await
        .unwrap();
    let config = r#"{"hook":{"type":"command","name":"db"},"every":"1h"}"#;
    assert!(
        store
            .set_secret_rotation("rot/a", Some(config), Some(T0 + 3600), T0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_secret_rotation("rot/none", Some(config), None, T0)
            .await
            .unwrap()
    );
    let due = |now| {
        let store = store.clone();
        async move {
            store
                .due_rotations(now, now - 300)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
        }
    };
    assert!(due(T0 + 3599).await.is_empty(), "not yet due");
    assert_eq!(
        due(T0 + 3600).await,
        ["rot/a"],
        "only scheduled secrets come due"
    );

    // 16 servers race to claim the due rotation: exactly one wins.
    let mut racers = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .claim_rotation("rot/a", T0 + 3600, T0 + 3300)
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.unwrap());
    }
    assert_eq!(winners, 1);
    assert!(
        due(T0 + 3601).await.is_empty(),
        "a running rotation is not due again"
    );
    // A claim older than the stale bound is taken over (its server died).
    assert!(
        store
            .claim_rotation("rot/a", T0 + 4000, T0 + 3700)
            .await
            .unwrap()
    );

    store
        .end_rotation(
            "rot/a",
            T0 + 4000,
            r#"{"status":"succeeded"}"#,
            Some(T0 + 7600),
        )
        .await
        .unwrap();
    let a = store.secret("rot/a").await.unwrap().unwrap();
    assert_eq!(a.next_rotation_at, Some(T0 + 7600));
    assert_eq!(
        a.last_rotation.as_deref(),
        Some(r#"{"status":"succeeded"}"#)
    );
    assert_eq!(a.rotation.as_deref(), Some(config));
    assert!(
        store
            .claim_rotation("rot/a", T0 + 4001, T0 + 3701)
            .await
            .unwrap(),
        "ended, so free"
    );
    // Ending a rotation of an unscheduled secret leaves no due date.
    assert!(store.claim_rotation("rot/b", T0, T0 - 300).await.unwrap());
    // A stale claimant's end does not clear the claim that took over.
    store
        .end_rotation("rot/b", T0 - 1, "{}", None)
        .await
        .unwrap();
    assert!(
        !store
            .claim_rotation("rot/b", T0 + 1, T0 - 300)
            .await
            .unwrap(),
        "still claimed"
    );
    store
        .end_rotation("rot/b", T0, "{}", Some(T0 + 10))
        .await
        .unwrap();
    assert_eq!(
        store
            .secret("rot/b")
            .await
            .unwrap()
            .unwrap()
            .next_rotation_at,
        None
    );
    // A deleted secret is neither due nor claimable.
    store
        .delete_secret("rot/a", T0, T0 + 86_400 * 7)
        .await
        .unwrap();
    assert!(due(T0 + 100_000).await.is_empty());
    assert!(
        !store
            .claim_rotation("rot/a", T0 + 100_000, T0 + 99_000)
            .await
            .unwrap()
    );
}

fn intention(source: &str, destination: &str, action: IntentionAction) -> Intention {
    Intention::new(source, destination, action)
}

async fn intentions_upsert_list_delete_and_bump_the_index(ctx: Ctx) {
    let Ctx { store, .. } = ctx;
    assert_eq!(store.intentions_index().await.unwrap(), 0);
    assert_eq!(store.intentions().await.unwrap(), (vec![], 0));

    let l7 = Intention {
        permissions: vec![Permission {
            methods: vec!["POST".into()],
            path_prefix: Some("/charge".into()),
            headers: vec![HeaderMatch {
                name: "x-env".into(),
                exact: Some("prod \u{e9}".into()),
                ..HeaderMatch::default()
            }],
            ..Permission::default()
        }],
        description: Some("checkout calls payments".into()),
        ..intention("orders", "payments", IntentionAction::Allow)
    };
    let w = store.upsert_intention(&l7, T0).await.unwrap();
    assert_eq!((w.index, w.previous), (1, None));
    let deny_all = intention("*", "payments", IntentionAction::Deny);
    assert_eq!(
        store
            .upsert_intention(&deny_all, T0 + 1)
            .await
            .unwrap()
            .index,
        2
    );
    let wildcard = intention("orders", "*", IntentionAction::Allow);
    assert_eq!(
        store
            .upsert_intention(&wildcard, T0 + 2)
            .await
            .unwrap()
            .index,
        3
    );

    let (records, index) = store.intentions().await.unwrap();
    assert_eq!(index, 3);
    // Ordered by destination, then source.
    let listed: Vec<&Intention> = records.iter().map(|r| &r.intention).collect();
    assert_eq!(listed, vec![&wildcard, &deny_all, &l7]);
    assert_eq!((records[2].created_at, records[2].updated_at), (T0, T0));

    // Replacing keeps created_at, reports what it replaced, and bumps the index.
    let plain = intention("orders", "payments", IntentionAction::Deny);
    let w = store.upsert_intention(&plain, T0 + 10).await.unwrap();
    assert_eq!((w.index, w.previous.as_ref()), (4, Some(&l7)));
    let (records, _) = store.intentions().await.unwrap();
    let replaced = records
        .iter()
        .find(|r| r.intention.source == "orders" && r.intention.destination == "payments")
        .unwrap();
    assert_eq!(replaced.intention, plain);
    assert_eq!((replaced.created_at, replaced.updated_at), (T0, T0 + 10));

    // Deleting returns what was deleted; deleting nothing changes nothing.
    assert_eq!(
        store.delete_intention("*", "payments").await.unwrap(),
        Some((deny_all, 5))
    );
    assert_eq!(store.delete_intention("*", "payments").await.unwrap(), None);
    assert_eq!(store.delete_intention("nobody", "*").await.unwrap(), None);
    assert_eq!(store.intentions_index().await.unwrap(), 5);
    let (records, index) = store.intentions().await.unwrap();
    assert_eq!(index, 5);
    assert_eq!(records.len(), 2);
}

async fn concurrent_intention_writes_get_distinct_indexes_and_lose_nothing(ctx: Ctx) {
    let Ctx { store, url } = ctx;
    let other = Store::open(&url).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            let it = intention(&format!("fn-{i}"), "payments", IntentionAction::Allow);
            s.upsert_intention(&it, T0)
                .await
                .expect("upsert under contention")
                .index
        }));
    }
    let mut indexes = Vec::new();
    for t in tasks {
        indexes.push(t.await.unwrap());
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (1..=16).collect::<Vec<i64>>());
    let (records, index) = other.intentions().await.unwrap();
    assert_eq!((records.len(), index), (16, 16));
    other.close().await;
}

// --- audit log ---

/// A large append (one segment of 2,345 events), then a small one: every event is stored in
/// order, the chain and its signed checkpoints verify, the filters (actor, outcome, time)
/// find what the events say, and reads in pages that start and end inside segments give
/// the same records as one read.
async fn audit_batches_longer_than_one_statement_chain_and_filter(ctx: Ctx) {
    use writ_audit::checkpoint::{signature_ok, verify_log};
    use writ_audit::{Decision, Event, Outcome};
    use writ_server::store::AuditFilter;

    let (signer, keys) = audit_signer();
    let event = |i: usize| {
        let denied = i.is_multiple_of(7);
        let mut e = Event::new(
            &format!("2026-11-24T10:{:02}:{:02}.000Z", i / 60 % 60, i % 60),
            &format!("spiffe://example.org/fn/f{}", i % 3),
            "x509Svid",
            "writ:Invoke",
            "writ:fn/payments",
            if denied {
                Outcome::Denied
            } else {
                Outcome::Allowed
            },
        );
        e.request_id = format!("r{i}");
        e.decision = Some(if denied {
            Decision::ImplicitDeny
        } else {
            Decision::Allowed
        });
        e
    };
    let events: Vec<Event> = (0..2_345).map(event).collect();
    let more: Vec<Event> = (2_345..2_355).map(event).collect();
    for batch in [&events, &more] {
        ctx.store
            .audit_append(
                batch,
                |head| signer.sign(head, "2026-11-24T11:00:00Z"),
                |cp| signature_ok(cp, &keys),
            )
            .await
            .expect("append");
    }

    let all = ctx
        .store
        .audit_records(&AuditFilter {
            limit: 10_000,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2_355);
    for (i, record) in all.iter().enumerate() {
        assert_eq!(record.seq, i as i64 + 1);
        assert_eq!(record.event, event(i).to_json(), "event {}", i + 1);
    }
    let checkpoints = ctx.store.audit_checkpoints(0, 100).await.unwrap();
    assert_eq!(checkpoints.len(), 2);
    let report = verify_log(&all, &checkpoints, &keys).expect("the chain verifies");
    assert_eq!(report.events, 2_355);

    let count = |filter: AuditFilter| {
        let store = ctx.store.clone();
        async move {
            store
                .audit_records(&AuditFilter {
                    limit: 10_000,
                    ..filter
                })
                .await
                .unwrap()
                .len()
        }
    };
    let denied = (0..2_355).filter(|i: &usize| i.is_multiple_of(7)).count();
    let outcome = |o: &str| AuditFilter {
        outcome: Some(o.into()),
        ..AuditFilter::default()
    };
    assert_eq!(count(outcome("denied")).await, denied);
    assert_eq!(count(outcome("allowed")).await, 2_355 - denied);
    let actor = AuditFilter {
        actor: Some("spiffe://example.org/fn/f1".into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        count(actor).await,
        (0..2_355).filter(|i| i % 3 == 1).count()
    );
    // Events at or after 10:30:00 (event i is at 10:mm:ss with mm = i / 60 % 60).
    let since = time::OffsetDateTime::parse(
        "2026-11-24T10:30:00Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp()
        * 1000;
    let recent = (0..2_355).filter(|i| i / 60 % 60 >= 30).count();
    assert_eq!(
        count(AuditFilter {
            since_ms: Some(since),
            ..AuditFilter::default()
        })
        .await,
        recent
    );

    // Pages of 97 from wherever the last one ended, across the two segments' boundary.
    let mut paged = Vec::new();
    loop {
        let page = ctx
            .store
            .audit_records(&AuditFilter {
                after: paged
                    .last()
                    .map_or(0, |r: &writ_audit::chain::Record| r.seq),
                limit: 97,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() == 97 || paged.len() + page.len() == 2_355);
        paged.extend(page);
    }
    assert_eq!(paged, all);
    // A filtered page that starts inside a segment.
    let page = ctx
        .store
        .audit_records(&AuditFilter {
            after: 2_000,
            limit: 5,
            ..outcome("denied")
        })
        .await
        .unwrap();
    let expected: Vec<i64> = (2_000..2_355)
        .filter(|i: &usize| i.is_multiple_of(7))
        .take(5)
        .map(|i| i as i64 + 1)
        .collect();
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), expected);
}

/// An append chains on the hash the newest checkpoint signed, not on the newest segment's
/// stored hashes: one altered in place does not become the head (and `verify_log` finds
/// it), and an append whose newest checkpoint is gone is refused, appending nothing.
async fn an_append_chains_on_the_signed_head_and_refuses_without_one(ctx: Ctx) {
    use sqlx::Row;
    use writ_audit::checkpoint::{signature_ok, verify_log};
    use writ_audit::{Event, Outcome};
    use writ_server::store::{AuditFilter, StoreError};

    let (signer, keys) = audit_signer();
    let event = |i: usize| {
        Event::new(
            &format!("2026-11-24T10:00:{i:02}Z"),
            "spiffe://example.org/fn/orders",
            "x509Svid",
            "writ:Invoke",
            "writ:fn/payments",
            Outcome::Allowed,
        )
    };
    let append = |events: Vec<Event>| {
        let (store, signer, keys) = (ctx.store.clone(), &signer, &keys);
        async move {
            store
                .audit_append(
                    &events,
                    |head| signer.sign(head, "2026-11-24T11:00:00Z"),
                    |cp| signature_ok(cp, keys),
                )
                .await
        }
    };
    append((0..3).map(event).collect())
        .await
        .expect("append 1-3");
    append((3..5).map(event).collect())
        .await
        .expect("append 4-5");
    let signed_head = ctx.store.audit_checkpoints(0, 100).await.unwrap()[1]
        .hash
        .clone();

    // Event 5's stored hash, altered in place.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&ctx.url).await.unwrap();
    let hashes: Vec<u8> = sqlx::query("SELECT hashes FROM audit_segments WHERE first_seq = 4")
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(writ_audit::hex(&hashes[32..]), signed_head);
    let forged = [&hashes[..32], &[0; 32]].concat();
    sqlx::query("UPDATE audit_segments SET hashes = $1 WHERE first_seq = 4")
        .bind(forged)
        .execute(&pool)
        .await
        .unwrap();

    let (head, segment) = append(vec![event(5)]).await.expect("append 6");
    assert_eq!(head.seq, 6);
    assert_eq!(segment.prev_hash, signed_head, "chained on the signed hash");
    let all = AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    };
    let records = ctx.store.audit_records(&all).await.unwrap();
    let checkpoints = ctx.store.audit_checkpoints(0, 100).await.unwrap();
    let broken = verify_log(&records, &checkpoints, &keys).expect_err("the altered hash");
    assert_eq!(broken.seq, 5, "{}", broken.problem);

    // Without a checkpoint over the newest event, nothing is appended.
    sqlx::query("DELETE FROM audit_checkpoints WHERE seq = 6")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let refused = append(vec![event(6)]).await.expect_err("no signed head");
    assert!(matches!(refused, StoreError::Tampered(_)), "{refused}");
    assert_eq!(ctx.store.audit_records(&all).await.unwrap().len(), 6);
}

/// A log stored a row per event (schema 5) reads the same after the move to segments
/// (schema 6, then packed by 7), its actor filter still works, and appends continue its
/// chain.
async fn an_audit_log_of_rows_per_event_moves_to_segments(ctx: Ctx) {
    use writ_audit::Event;
    use writ_audit::chain::{Head, append};

    let Ctx { store, url } = ctx;
    store.close().await;
    let events: Vec<Event> = (0..5).map(numbered_event).collect();
    let (records, head) = append(&Head::genesis(), &events).unwrap();
    let (signer, keys) = audit_signer();
    let checkpoint = signer.sign(&head, "2026-11-24T10:00:09Z").unwrap();
    {
        // Back to schema 5, with the events as it stored them.
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "DROP TABLE audit_segment_actors; DROP TABLE audit_segments; \
             ALTER TABLE functions DROP COLUMN boundary; DROP TABLE used_oidc_tokens; \
             DROP TABLE gateways; ALTER TABLE tokens DROP COLUMN gateway_name; \
             DROP TABLE api_key_quotas; \
             DELETE FROM writ_schema WHERE version >= 6; \
             CREATE TABLE audit_events (seq BIGINT PRIMARY KEY, time_ms BIGINT NOT NULL, \
               actor TEXT NOT NULL, action TEXT NOT NULL, decision TEXT, outcome TEXT NOT NULL, \
               event TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL); \
             CREATE INDEX audit_events_actor ON audit_events (actor, seq)",
        )
        .execute(&pool)
        .await
        .unwrap();
        for (r, e) in records.iter().zip(&events) {
            sqlx::query(
                "INSERT INTO audit_events (seq, time_ms, actor, action, decision, outcome, \
                 event, prev_hash, hash) VALUES ($1, $2, $3, $4, NULL, 'allowed', $5, $6, $7)",
            )
            .bind(r.seq)
            .bind(1_795_514_400_000 + r.seq)
            .bind(e.actor.clone())
            .bind(e.action.clone())
            .bind(r.event.clone())
            .bind(r.prev_hash.clone())
            .bind(r.hash.clone())
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(checkpoint.seq)
        .bind(checkpoint.hash.clone())
        .bind(checkpoint.time.clone())
        .bind(checkpoint.key_id.clone())
        .bind(checkpoint.signature.clone())
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }

    migrated_log_reads_the_same_and_continues(&url, &records, &signer, &keys).await;
}

/// Opens the store at `url` (migrating it to the newest schema) and checks the five
/// events of `records` (made by [`numbered_event`]) read back the same, the actor filter
/// finds events 2 and 4, and three more events appended continue the chain. Returns what
/// it then reads.
async fn migrated_log_reads_the_same_and_continues(
    url: &str,
    records: &[writ_audit::chain::Record],
    signer: &writ_audit::checkpoint::Signer,
    keys: &[writ_audit::checkpoint::PublicKey],
) -> Vec<writ_audit::chain::Record> {
    use writ_audit::chain::verify_records;
    use writ_audit::checkpoint::signature_ok;
    use writ_server::store::AuditFilter;

    let store = Store::open(url).await.expect("open and migrate");
    assert_eq!(
        schema_versions(url).await,
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    );
    let all = AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    };
    assert_eq!(store.audit_records(&all).await.unwrap(), records);
    let f1 = store
        .audit_records(&AuditFilter {
            actor: Some("spiffe://example.org/fn/f1".into()),
            ..all.clone()
        })
        .await
        .unwrap();
    assert_eq!(f1.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 4]);

    let more: Vec<_> = (5..8).map(numbered_event).collect();
    let (new_head, _) = store
        .audit_append(
            &more,
            |head| signer.sign(head, "2026-11-24T10:00:10Z"),
            |cp| signature_ok(cp, keys),
        )
        .await
        .expect("append after the migration");
    assert_eq!(new_head.seq, 8);
    let after = store.audit_records(&all).await.unwrap();
    assert_eq!(after[..5], records[..]);
    assert_eq!(verify_records(&after).unwrap(), new_head);
    store.close().await;
    after
}

/// One row of `audit_segments` as schema 6 stored it: hashes in hex, events as text.
struct TextSegment {
    first_seq: i64,
    last_seq: i64,
    prev_hash: String,
    hashes: String,
    events: String,
}

impl TextSegment {
    /// What schema 6 stored for `segment`.
    fn of(segment: &writ_audit::chain::Segment) -> TextSegment {
        TextSegment {
            first_seq: segment.first_seq,
            last_seq: segment.first_seq + segment.events.split('\n').count() as i64 - 1,
            prev_hash: segment.prev_hash.clone(),
            hashes: writ_audit::hex(&segment.hashes),
            events: segment.events.clone(),
        }
    }
}

/// Takes the store at `url` back to schema 6 (undoing the later migrations), with `segments` (and their actors) and
/// `checkpoint` in its audit tables.
async fn store_as_schema_6(
    url: &str,
    segments: &[TextSegment],
    checkpoint: &writ_audit::checkpoint::Checkpoint,
) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::raw_sql(
        "DROP TABLE audit_segments; DELETE FROM audit_segment_actors; \
         DELETE FROM audit_checkpoints; ALTER TABLE functions DROP COLUMN boundary; \
         DROP TABLE used_oidc_tokens; DROP TABLE gateways; \
         ALTER TABLE tokens DROP COLUMN gateway_name; DROP TABLE api_key_quotas; \
         DELETE FROM writ_schema WHERE version >= 7; \
         CREATE TABLE audit_segments (first_seq BIGINT PRIMARY KEY, last_seq BIGINT NOT NULL, \
           min_time_ms BIGINT NOT NULL, max_time_ms BIGINT NOT NULL, prev_hash TEXT NOT NULL, \
           hashes TEXT NOT NULL, events TEXT NOT NULL); \
         CREATE INDEX audit_segments_last ON audit_segments (last_seq)",
    )
    .execute(&pool)
    .await
    .unwrap();
    for s in segments {
        sqlx::query(
            "INSERT INTO audit_segments (first_seq, last_seq, min_time_ms, max_time_ms, \
             prev_hash, hashes, events) VALUES ($1, $2, 0, 0, $3, $4, $5)",
        )
        .bind(s.first_seq)
        .bind(s.last_seq)
        .bind(s.prev_hash.clone())
        .bind(s.hashes.clone())
        .bind(s.events.clone())
        .execute(&pool)
        .await
        .unwrap();
        let mut actors: Vec<String> = s
            .events
            .split('\n')
            .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
            .filter_map(|e| e["actor"].as_str().map(str::to_string))
            .collect();
        actors.sort();
        actors.dedup();
        for actor in actors {
            sqlx::query("INSERT INTO audit_segment_actors (actor, first_seq) VALUES ($1, $2)")
                .bind(actor)
                .bind(s.first_seq)
                .execute(&pool)
                .await
                .unwrap();
        }
    }
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(checkpoint.seq)
    .bind(checkpoint.hash.clone())
    .bind(checkpoint.time.clone())
    .bind(checkpoint.key_id.clone())
    .bind(checkpoint.signature.clone())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

/// An event of the migration tests, its actor one of two.
fn numbered_event(i: usize) -> writ_audit::Event {
    writ_audit::Event::new(
        &format!("2026-11-24T10:00:0{i}Z"),
        &format!("spiffe://example.org/fn/f{}", i % 2),
        "x509Svid",
        "writ:Invoke",
        "writ:fn/payments",
        writ_audit::Outcome::Allowed,
    )
}

/// A log of segments stored as text (schema 6) reads the same once schema 7 stores them as
/// bytes: each event's text and hash exactly as before, the actor filter, and appends that
/// continue its chain, now compressed.
async fn an_audit_log_of_text_segments_is_packed(ctx: Ctx) {
    use writ_audit::chain::{Head, Record, append_segment};

    let Ctx { store, url } = ctx;
    store.close().await;
    let events: Vec<_> = (0..5).map(numbered_event).collect();
    let (first, head) = append_segment(&Head::genesis(), &events[..3]).unwrap();
    let (second, head) = append_segment(&head, &events[3..]).unwrap();
    let records: Vec<Record> = first.records().chain(second.records()).collect();
    let (signer, keys) = audit_signer();
    let checkpoint = signer.sign(&head, "2026-11-24T10:00:09Z").unwrap();
    store_as_schema_6(
        &url,
        &[TextSegment::of(&first), TextSegment::of(&second)],
        &checkpoint,
    )
    .await;

    let after = migrated_log_reads_the_same_and_continues(&url, &records, &signer, &keys).await;

    // Stored as the columns say: the old segments as their text, the new one compressed,
    // and every hash as its 32 bytes.
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let rows: Vec<(String, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT codec, hashes, events FROM audit_segments ORDER BY first_seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    let codecs: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(codecs, ["none", "none", "lz4"]);
    assert_eq!(rows[0].1, first.hashes);
    assert_eq!(rows[0].2, first.events.as_bytes());
    let text: String = after[5..]
        .iter()
        .map(|r| r.event.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(rows[2].1.len(), 3 * 32);
    assert!(rows[2].2.len() < text.len(), "compressed");
    assert_eq!(writ_audit::packed::unpack("lz4", &rows[2].2).unwrap(), text);
}

/// Hashes altered into something that is not hex before schema 7 are kept byte for byte
/// (the migration does not fail, and does not tidy the evidence away): the records show
/// them, so `writ audit verify` still breaks at the segment.
async fn altered_hashes_are_kept_as_stored_when_packed(ctx: Ctx) {
    use writ_audit::chain::{Head, append_segment, verify_records};
    use writ_server::store::AuditFilter;

    let Ctx { store, url } = ctx;
    store.close().await;
    let events: Vec<_> = (0..3).map(numbered_event).collect();
    let (segment, head) = append_segment(&Head::genesis(), &events).unwrap();
    let mut altered = TextSegment::of(&segment);
    // Three hashes' worth of text, not hex.
    altered.hashes = "z".repeat(192);
    let (signer, _) = audit_signer();
    let checkpoint = signer.sign(&head, "2026-11-24T10:00:09Z").unwrap();
    store_as_schema_6(&url, &[altered], &checkpoint).await;

    let store = Store::open(&url).await.expect("open and migrate");
    let records = store
        .audit_records(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let kept = writ_audit::hex(&[b'z'; 32]);
    assert_eq!(
        records.iter().map(|r| r.hash.as_str()).collect::<Vec<_>>(),
        [kept.as_str(); 3]
    );
    assert_eq!(verify_records(&records).unwrap_err().seq, 1);
    store.close().await;
}

// --- secret changes made with their audit events ---

/// The audit events stored, as JSON.
async fn stored_events(store: &Store) -> Vec<serde_json::Value> {
    store
        .audit_records(&all_events())
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&r.event).unwrap())
        .collect()
}

/// An event naming what it records, in its resource.
fn change_event(what: &str) -> writ_audit::Event {
    writ_audit::Event::new(
        "2026-11-24T10:00:00Z",
        "operator",
        "adminToken",
        "secrets:PutSecretValue",
        what,
        writ_audit::Outcome::Allowed,
    )
}

fn resources(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["resource"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn put_change(name: &str, id: &str) -> SecretChange {
    let current = id.to_string();
    SecretChange::Put {
        name: name.into(),
        version: version(id, T0 + 1),
        now: T0 + 1,
        relabel: Box::new(move |l| l.make_current(&current)),
    }
}

/// A change to a secret is made in the transaction that appends its audit event: when the
/// event cannot be committed, the change is not stored either; when it is, both are.
async fn a_secret_change_and_its_event_commit_together_or_not_at_all(ctx: Ctx) {
    use writ_audit::checkpoint::signature_ok;
    let store = ctx.store;
    let (signer, keys) = audit_signer();
    let sign = |head: &writ_audit::chain::Head| signer.sign(head, "2026-11-24T10:00:00Z");
    let signed = |cp: &writ_audit::checkpoint::Checkpoint| signature_ok(cp, &keys);

    // Committed: the secret and both events, the plain one first.
    let mut events = vec![change_event("plain-1")];
    let (appended, results) = store
        .audit_append_changes(
            &mut events,
            vec![(
                SecretChange::Create {
                    secret: secret("db"),
                    version: version("v1", T0),
                },
                change_event("create-db"),
            )],
            sign,
            signed,
        )
        .await
        .expect("the batch commits");
    assert!(appended.is_some());
    assert_eq!(results.len(), 1);
    assert_eq!(*results[0].as_ref().unwrap(), Applied::Made(None));
    let appended: Vec<&str> = events.iter().map(|e| e.resource.as_str()).collect();
    assert_eq!(appended, ["plain-1", "create-db"]);
    assert_eq!(
        store.secret_labels("db").await.unwrap(),
        labels(&[(AWSCURRENT, "v1")])
    );
    assert_eq!(
        resources(&stored_events(&store).await),
        ["plain-1", "create-db"]
    );

    // The event cannot be committed (its checkpoint cannot be signed): the new version
    // is not stored, and AWSCURRENT has not moved.
    let mut events = vec![change_event("plain-2")];
    let failed = store
        .audit_append_changes(
            &mut events,
            vec![(put_change("db", "v2"), change_event("put-db-v2"))],
            |_: &writ_audit::chain::Head| Err(writ_audit::checkpoint::SignerError::Sign),
            signed,
        )
        .await;
    assert!(failed.is_err(), "the batch must fail");
    assert_eq!(
        version_ids(&store.secret_versions("db").await.unwrap()),
        ["v1"]
    );
    assert_eq!(
        store.secret_labels("db").await.unwrap(),
        labels(&[(AWSCURRENT, "v1")])
    );
    assert_eq!(
        resources(&stored_events(&store).await),
        ["plain-1", "create-db"]
    );

    // Nor when the head it chains on does not verify.
    let failed = store
        .audit_append_changes(
            &mut vec![],
            vec![(put_change("db", "v3"), change_event("put-db-v3"))],
            sign,
            |_: &writ_audit::checkpoint::Checkpoint| false,
        )
        .await;
    assert!(matches!(failed, Err(StoreError::Tampered(_))), "{failed:?}");
    assert_eq!(
        version_ids(&store.secret_versions("db").await.unwrap()),
        ["v1"]
    );

    // And then it can: version and event, together.
    let mut events = Vec::new();
    let (_, results) = store
        .audit_append_changes(
            &mut events,
            vec![(put_change("db", "v4"), change_event("put-db-v4"))],
            sign,
            signed,
        )
        .await
        .expect("the batch commits");
    assert_eq!(
        *results[0].as_ref().unwrap(),
        Applied::Made(Some(labels(&[(AWSCURRENT, "v4"), (AWSPREVIOUS, "v1")])))
    );
    assert_eq!(
        version_ids(&store.secret_versions("db").await.unwrap()),
        ["v1", "v4"]
    );
    assert_eq!(
        resources(&stored_events(&store).await),
        ["plain-1", "create-db", "put-db-v4"]
    );
    let report = writ_audit::checkpoint::verify_log(
        &store.audit_records(&all_events()).await.unwrap(),
        &store.audit_checkpoints(0, 100).await.unwrap(),
        &keys,
    )
    .expect("the chain verifies");
    assert_eq!(report.events, 3);
}

/// A filter that passes every event.
fn all_events() -> writ_server::store::AuditFilter {
    writ_server::store::AuditFilter {
        limit: 10_000,
        ..writ_server::store::AuditFilter::default()
    }
}

/// The move of AWSCURRENT that finishes a rotation is made with the rotation's event:
/// not at all when the event cannot be committed, and not when AWSPENDING moved meanwhile.
async fn a_rotations_finish_commits_with_its_event(ctx: Ctx) {
    use writ_audit::checkpoint::signature_ok;
    let store = ctx.store;
    let (signer, keys) = audit_signer();
    let sign = |head: &writ_audit::chain::Head| signer.sign(head, "2026-11-24T10:00:00Z");
    let signed = |cp: &writ_audit::checkpoint::Checkpoint| signature_ok(cp, &keys);
    store
        .create_secret(&secret("db"), &version("v1", T0))
        .await
        .unwrap();
    store
        .put_secret_version("db", &version("v2", T0 + 1), T0 + 1, |l| {
            l.stage_pending("v2")
        })
        .await
        .unwrap()
        .expect("the secret is there");
    let finish = |pending: &'static str| SecretChange::Relabel {
        name: "db".into(),
        relabel: Box::new(move |l: &mut Labels| {
            if l.version(AWSPENDING) == Some(pending) {
                l.finish_rotation().map_err(|e| e.to_string())
            } else {
                Err("AWSPENDING moved during the rotation".into())
            }
        }),
    };
    let staged = labels(&[(AWSCURRENT, "v1"), (AWSPENDING, "v2")]);

    let failed = store
        .audit_append_changes(
            &mut vec![],
            vec![(finish("v2"), change_event("rotated-to-v2"))],
            |_: &writ_audit::chain::Head| Err(writ_audit::checkpoint::SignerError::Sign),
            signed,
        )
        .await;
    assert!(failed.is_err());
    assert_eq!(store.secret_labels("db").await.unwrap(), staged);

    let (_, results) = store
        .audit_append_changes(
            &mut vec![],
            vec![(finish("v9"), change_event("rotated-to-v9"))],
            sign,
            signed,
        )
        .await
        .expect("nothing to commit");
    assert!(
        matches!(results[0], Ok(Applied::Refused(_))),
        "{:?}",
        results[0]
    );
    assert_eq!(store.secret_labels("db").await.unwrap(), staged);
    assert!(stored_events(&store).await.is_empty());

    let (_, results) = store
        .audit_append_changes(
            &mut vec![],
            vec![(finish("v2"), change_event("rotated-to-v2"))],
            sign,
            signed,
        )
        .await
        .expect("the batch commits");
    let after = labels(&[(AWSCURRENT, "v2"), (AWSPREVIOUS, "v1")]);
    assert_eq!(
        *results[0].as_ref().unwrap(),
        Applied::Made(Some(after.clone()))
    );
    assert_eq!(store.secret_labels("db").await.unwrap(), after);
    assert_eq!(resources(&stored_events(&store).await), ["rotated-to-v2"]);
}

/// Installs a trigger that fails any write of a label of the secret `boom`: on SQLite with
/// `RAISE(how)` (ABORT fails the statement, ROLLBACK the whole transaction), on PostgreSQL
/// with an exception (which dooms the transaction, or the savepoint it is under).
async fn fail_writes_of_boom(url: &str, backend: Backend, how: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let sql = match backend {
        Backend::Sqlite => format!(
            "CREATE TRIGGER boom BEFORE INSERT ON secret_labels WHEN NEW.name = 'boom' \
             BEGIN SELECT RAISE({how}, 'injected failure'); END"
        ),
        Backend::Postgres => "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN IF NEW.name = 'boom' THEN RAISE EXCEPTION 'injected failure'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER boom BEFORE INSERT ON secret_labels FOR EACH ROW EXECUTE FUNCTION boom()"
            .to_string(),
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// A change that fails in a batch is undone alone: its event is not appended, and the
/// batch's other changes and events commit. One that finds nothing to change is refused,
/// with no event.
async fn a_change_that_fails_is_undone_alone(ctx: Ctx) {
    use writ_audit::checkpoint::signature_ok;
    let store = ctx.store;
    fail_writes_of_boom(&ctx.url, store.backend(), "ABORT").await;
    let (signer, keys) = audit_signer();
    let sign = |head: &writ_audit::chain::Head| signer.sign(head, "2026-11-24T10:00:00Z");
    let signed = |cp: &writ_audit::checkpoint::Checkpoint| signature_ok(cp, &keys);
    let create = |name: &str| SecretChange::Create {
        secret: secret(name),
        version: version("v1", T0),
    };

    let mut events = vec![change_event("plain")];
    let (_, results) = store
        .audit_append_changes(
            &mut events,
            vec![
                (create("boom"), change_event("create-boom")),
                (create("ok"), change_event("create-ok")),
                (create("ok"), change_event("create-ok-again")),
                (put_change("missing", "v9"), change_event("put-missing")),
                (put_change("ok", "v2"), change_event("put-ok")),
            ],
            sign,
            signed,
        )
        .await
        .expect("the batch commits");
    assert!(
        matches!(results[0], Err(StoreError::Database(_))),
        "{:?}",
        results[0]
    );
    assert_eq!(*results[1].as_ref().unwrap(), Applied::Made(None));
    assert!(
        matches!(results[2], Err(StoreError::Conflict(_))),
        "{:?}",
        results[2]
    );
    assert!(
        matches!(results[3], Ok(Applied::Refused(_))),
        "{:?}",
        results[3]
    );
    assert!(matches!(results[4], Ok(Applied::Made(Some(_)))));
    // Nothing of the failed create stays, not even the secret's row written before the
    // label that failed.
    assert_eq!(store.secret("boom").await.unwrap(), None);
    assert!(store.secret_versions("boom").await.unwrap().is_empty());
    assert_eq!(store.secret("missing").await.unwrap(), None);
    assert_eq!(
        version_ids(&store.secret_versions("ok").await.unwrap()),
        ["v1", "v2"]
    );
    assert_eq!(
        resources(&stored_events(&store).await),
        ["plain", "create-ok", "put-ok"]
    );

    // A batch whose only change fails appends nothing.
    let (appended, results) = store
        .audit_append_changes(
            &mut vec![],
            vec![(create("boom"), change_event("create-boom"))],
            sign,
            signed,
        )
        .await
        .expect("nothing to commit");
    assert!(appended.is_none());
    assert!(results[0].is_err());
    assert_eq!(stored_events(&store).await.len(), 3);
}

/// A transaction that fails in the database (a full disk rolls a SQLite transaction back
/// by itself) leaves no pooled connection inside it: every write after it commits, and is
/// seen by another connection. `write_failure` reports the failed write until one succeeds.
async fn a_failed_transaction_never_leaves_its_connection_inside_it(ctx: Ctx) {
    use writ_audit::checkpoint::signature_ok;
    let store = ctx.store;
    let backend = store.backend();
    fail_writes_of_boom(&ctx.url, backend, "ROLLBACK").await;
    let (signer, keys) = audit_signer();
    let sign = |head: &writ_audit::chain::Head| signer.sign(head, "2026-11-24T10:00:00Z");
    let signed = |cp: &writ_audit::checkpoint::Checkpoint| signature_ok(cp, &keys);

    let failed = store
        .create_secret(&secret("boom"), &version("v1", T0))
        .await;
    assert!(matches!(failed, Err(StoreError::Database(_))), "{failed:?}");
    // More writes than the pool has connections, each kind of transaction: whichever
    // connection the failure was on is used again.
    for i in 0..12 {
        let name = format!("ok-{i}");
        store
            .create_secret(&secret(&name), &version("v1", T0))
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
        store
            .put_secret_version(&name, &version("v2", T0 + 1), T0 + 1, |l| {
                l.make_current("v2")
            })
            .await
            .unwrap_or_else(|e| panic!("put {name}: {e}"))
            .expect("the secret is there");
        store
            .audit_append(&[numbered_event(i % 10)], sign, signed)
            .await
            .unwrap_or_else(|e| panic!("append {i}: {e}"));
    }
    assert_eq!(store.write_failure(), None);

    // The failure inside a batch of changes: on SQLite it rolls the whole transaction back,
    // so the batch fails (and later changes are not committed one statement at a time); on
    // PostgreSQL only its savepoint.
    let mut events = vec![change_event("plain-in-failed-batch")];
    let result = store
        .audit_append_changes(
            &mut events,
            vec![
                (
                    SecretChange::Create {
                        secret: secret("boom"),
                        version: version("v1", T0),
                    },
                    change_event("create-boom"),
                ),
                (put_change("ok-0", "v3"), change_event("put-ok-0")),
            ],
            sign,
            signed,
        )
        .await;
    match backend {
        Backend::Sqlite => {
            assert!(result.is_err(), "{result:?}");
            let failure = store.write_failure().expect("the failed write is reported");
            assert_eq!(failure.reason, "the database refused a write");
        }
        Backend::Postgres => {
            let (_, results) = result.expect("the batch commits");
            assert!(results[0].is_err() && results[1].is_ok());
            assert_eq!(store.write_failure(), None);
        }
    }
    store
        .audit_append(&[numbered_event(1)], sign, signed)
        .await
        .expect("an append after the failure");
    assert_eq!(store.write_failure(), None);

    // What was acknowledged is committed: another connection sees it.
    let other = Store::open(&ctx.url).await.unwrap();
    for i in 0..12 {
        let name = format!("ok-{i}");
        let expected = if i == 0 && backend == Backend::Postgres {
            labels(&[(AWSCURRENT, "v3"), (AWSPREVIOUS, "v2")])
        } else {
            labels(&[(AWSCURRENT, "v2"), (AWSPREVIOUS, "v1")])
        };
        assert_eq!(
            other.secret_labels(&name).await.unwrap(),
            expected,
            "{name}"
        );
    }
    assert_eq!(other.secret("boom").await.unwrap(), None);
    let stored = resources(&stored_events(&other).await);
    assert_eq!(
        stored.len(),
        if backend == Backend::Postgres { 15 } else { 13 }
    );
    assert!(!stored.contains(&"create-boom".to_string()));
    other.close().await;
}

// --- the SQLite file ---

/// A fresh directory for a SQLite store, and the URL of `writ.db` in it.
fn sqlite_dir() -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("writ-store-test-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.join("writ.db").display());
    (dir, url)
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The database and its WAL and shared-memory files are readable by their owner only,
/// whatever the umask (the process's is usually 022); an existing file readable by others
/// is tightened.
#[tokio::test]
async fn sqlite_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, url) = sqlite_dir();
    let store = Store::open(&url).await.expect("open");
    store
        .create_secret(&secret("db"), &version("v1", T0))
        .await
        .unwrap();
    for file in ["writ.db", "writ.db-wal", "writ.db-shm"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    store.close().await;

    // One made by an older version, or by hand, readable by all.
    let (old_dir, old_url) = sqlite_dir();
    let old = Store::open(&old_url).await.expect("open");
    old.close().await;
    for file in ["writ.db", "writ.db-wal", "writ.db-shm"] {
        let path = old_dir.join(file);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let reopened = Store::open(&old_url).await.expect("reopen");
    reopened
        .create_secret(&secret("db"), &version("v1", T0))
        .await
        .unwrap();
    for file in ["writ.db", "writ.db-wal", "writ.db-shm"] {
        assert_eq!(mode(&old_dir.join(file)), 0o600, "{file}");
    }
    reopened.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&old_dir);
}

/// A database that cannot be created says which file and why, not SQLite's bare "unable
/// to open database file".
#[tokio::test]
async fn an_unopenable_sqlite_file_names_its_path_and_cause() {
    let (dir, _) = sqlite_dir();
    // The data directory is a file: nothing can be created in it (even by root).
    let not_a_dir = dir.join("data");
    std::fs::write(&not_a_dir, "").unwrap();
    let path = not_a_dir.join("writ.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let error = Store::open(&url)
        .await
        .expect_err("cannot open")
        .to_string();
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(error.contains("Not a directory"), "{error}");
    assert!(
        error.contains(&format!("the directory {}", not_a_dir.display())),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The WAL does not grow past its limit: it is checkpointed and cut back, so a small
/// volume does not fill with it.
#[tokio::test]
async fn the_wal_is_checkpointed_and_cut_back() {
    let (dir, url) = sqlite_dir();
    let store = Store::open(&url).await.expect("open");
    store
        .create_secret(&secret("big"), &version("v0", T0))
        .await
        .unwrap();
    // 48 MiB of versions, half a MiB each.
    let mut largest = 0;
    for i in 1..=96 {
        let mut v = version(&format!("v{i}"), T0 + i);
        v.ciphertext = vec![i as u8; 512 * 1024];
        store
            .put_secret_version("big", &v, T0 + i, |l| l.make_current(&v.version_id))
            .await
            .unwrap();
        largest = largest.max(std::fs::metadata(dir.join("writ.db-wal")).unwrap().len());
    }
    // The checkpoint threshold (16 MiB) and one transaction over it, at most.
    assert!(
        largest <= 18 * 1024 * 1024,
        "the WAL grew to {largest} bytes"
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

// --- shared API-key quotas ---

fn quota_period(key: &str) -> QuotaPeriod<'_> {
    QuotaPeriod {
        key,
        seconds: 60,
        start: T0 - T0 % 60,
    }
}

async fn quota_leases_never_grant_past_the_limit(ctx: Ctx) {
    let Ctx { store, .. } = ctx;
    let p = quota_period("partner-a");
    let lease = |want| store.lease_quota(p, 10, want, T0);
    assert_eq!(
        lease(4).await.unwrap(),
        Some(QuotaCount {
            granted: 4,
            counted: 4
        })
    );
    assert_eq!(
        lease(4).await.unwrap(),
        Some(QuotaCount {
            granted: 4,
            counted: 8
        })
    );
    // Only 2 left: a short grant, then none.
    assert_eq!(
        lease(4).await.unwrap(),
        Some(QuotaCount {
            granted: 2,
            counted: 10
        })
    );
    assert_eq!(
        lease(1).await.unwrap(),
        Some(QuotaCount {
            granted: 0,
            counted: 10
        })
    );
    // Another key, another period, another period length: counted apart.
    let other = store
        .lease_quota(quota_period("partner-b"), 10, 3, T0)
        .await
        .unwrap();
    assert_eq!(other.map(|c| c.counted), Some(3));
    let next = QuotaPeriod {
        start: p.start + 60,
        ..p
    };
    assert_eq!(
        store
            .lease_quota(next, 10, 3, T0 + 60)
            .await
            .unwrap()
            .map(|c| c.counted),
        Some(3)
    );
    let hourly = QuotaPeriod {
        seconds: 3600,
        start: T0 - T0 % 3600,
        ..p
    };
    assert_eq!(
        store
            .lease_quota(hourly, 10, 5, T0)
            .await
            .unwrap()
            .map(|c| c.counted),
        Some(5)
    );
    // A new period a day and more later drops the rows of periods long over.
    let much_later = T0 + 3 * 86_400;
    let late = QuotaPeriod {
        start: much_later - much_later % 60,
        ..p
    };
    store.lease_quota(late, 10, 1, much_later).await.unwrap();
    assert_eq!(
        lease(4).await.unwrap().map(|c| c.counted),
        Some(4),
        "the old period's row was dropped, so it counts from zero"
    );
}

async fn concurrent_quota_leases_from_two_pools_grant_the_limit_exactly(ctx: Ctx) {
    let Ctx { store, url } = ctx;
    // Two pools, as two servers on one database would have.
    let other = Store::open(&url).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut got = 0;
            for _ in 0..10 {
                if let Some(c) = s
                    .lease_quota(quota_period("race"), 50, 3, T0)
                    .await
                    .expect("no database error under contention")
                {
                    got += c.granted;
                }
            }
            got
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += t.await.unwrap();
    }
    assert_eq!(granted, 50, "16 x 10 leases of 3 against a limit of 50");
    other.close().await;
}
