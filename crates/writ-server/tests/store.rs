//! One storage suite, run against both backends: SQLite (a temporary file) always, and
//! PostgreSQL (a fresh database per test) when `WRIT_TEST_POSTGRES_URL` is set.
//!
//! Each check is an async fn taking a [`Ctx`] (an open [`Store`] and the URL it was opened
//! from); the `backends!` macro turns each into a `sqlite` and a `postgres` test.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;
use writ_server::store::{
    Backend, FunctionRecord, KeyKind, KeyRecord, Meta, RevocationKind, Store, StoreError,
    TokenKind, TokenRecord,
};

const POSTGRES_ENV: &str = "WRIT_TEST_POSTGRES_URL";

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
    let Ok(base) = std::env::var(POSTGRES_ENV) else {
        eprintln!(
            "skipped: set {POSTGRES_ENV} (postgres://USER@HOST:PORT/DB) to run on PostgreSQL"
        );
        return;
    };
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
    tokens_insert_and_get,
    join_tokens_are_single_use_and_refused_when_expired_or_revoked,
    concurrent_use_of_one_join_token_has_one_winner,
    revoke_appends_to_the_feed_and_marks_rows,
    revocation_feed_paginates,
    concurrent_revocations_get_distinct_sequence_numbers,
    a_feed_follower_misses_nothing_under_concurrent_writes,
);

// --- fixtures ---

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
    assert_eq!(versions, vec![1, 2, 3], "each migration recorded once");

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
