//! The client-side secrets cache (`writ-client`) against the real `writ server`: it fetches
//! with the function's X.509-SVID over mTLS, serves reads from memory (the server's audit
//! log shows one read, not hundreds), picks up a new version by background refresh, keeps
//! serving while the server is down until the staleness bound, and drops the value when
//! the function loses access.

mod common;

use std::time::Duration;

use common::{Server, Svid, TRUST_DOMAIN, TempDir, join_token_evidence, wait_for};
use serde_json::json;
use writ_client::fetch::{HttpFetcher, SvidSource};
use writ_client::secrets::{CacheError, CachePolicy, SecretCache};

fn put(server: &Server, dir: &TempDir, name: &str, value: &str) {
    let file = dir.unique_file("value", "txt");
    std::fs::write(&file, value).unwrap();
    server.cli_ok(&[
        "secret",
        "put",
        name,
        "--value-file",
        file.to_str().unwrap(),
    ]);
}

fn reads_on_record(server: &Server, name: &str) -> usize {
    server
        .audit_events()
        .iter()
        .filter(|e| {
            e["action"] == "secrets:GetSecretValue"
                && e["resource"] == format!("writ:secret/{name}")
                && e["outcome"] == "allowed"
        })
        .count()
}

#[test]
fn the_cache_serves_from_memory_refreshes_in_the_background_and_fails_static() {
    let dir = TempDir::new("secret-cache");
    let mut server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
    let policy = dir.join("payments.json");
    std::fs::write(
        &policy,
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": "secrets:GetSecretValue", "Resource": "writ:secret/prod/*"}]})
        .to_string(),
    )
    .unwrap();
    server.cli_ok(&[
        "fn",
        "register",
        "payments",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    put(&server, &dir, "prod/stripe-key", "sk_one");
    let token = server.join_token("payments");
    let svid = Svid::login(&server, &dir, "payments", join_token_evidence(&token))
        .unwrap_or_else(|r| panic!("login: {} {}", r.status, r.body));

    let source = SvidSource::from_pem(
        &std::fs::read_to_string(&svid.cert).unwrap(),
        &std::fs::read_to_string(&svid.key).unwrap(),
    )
    .unwrap();
    let fetcher = HttpFetcher::new(
        &server.addr(),
        &std::fs::read_to_string(&svid.bundle).unwrap(),
        source,
    )
    .unwrap();
    let cache = SecretCache::new(
        fetcher,
        CachePolicy {
            ttl: Duration::from_secs(3),
            refresh_after: Duration::from_secs(1),
            max_stale: Duration::from_secs(3),
            retry_after: Duration::from_millis(200),
        },
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let get = |name: &str| runtime.block_on(cache.get(name));

    for _ in 0..200 {
        assert_eq!(get("prod/stripe-key").unwrap().as_str(), Some("sk_one"));
    }
    server.wait_for_audit("the first read", |e| {
        e["action"] == "secrets:GetSecretValue"
    });
    assert_eq!(
        reads_on_record(&server, "prod/stripe-key"),
        1,
        "199 reads from memory"
    );

    // A new version on the server arrives by background refresh once the value is past
    // refresh_after; the reads that start it are served at once from memory.
    put(&server, &dir, "prod/stripe-key", "sk_two");
    wait_for("the new version", Duration::from_secs(10), || {
        let v = get("prod/stripe-key").unwrap();
        (v.as_str() == Some("sk_two")).then_some(())
    });

    // The server goes away: the cached value is served until ttl + max_stale, then not.
    server.stop();
    let started = std::time::Instant::now();
    assert_eq!(get("prod/stripe-key").unwrap().as_str(), Some("sk_two"));
    let refused = wait_for(
        "the staleness bound",
        Duration::from_secs(15),
        || match get("prod/stripe-key") {
            Ok(v) => {
                assert_eq!(v.as_str(), Some("sk_two"));
                None
            }
            Err(e) => Some(e),
        },
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "served stale for a while first"
    );
    assert!(
        matches!(refused, CacheError::Unavailable { .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("staleness bound"), "{refused}");
}

#[test]
fn losing_access_drops_the_cached_value_at_the_next_fetch() {
    let dir = TempDir::new("secret-cache-revoke");
    let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
    put(&server, &dir, "prod/db", "pw");
    let policy = dir.join("resource.json");
    std::fs::write(
        &policy,
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"SPIFFE": format!("spiffe://{TRUST_DOMAIN}/fn/orders")},
            "Action": "secrets:GetSecretValue", "Resource": "writ:secret/prod/db"}]})
        .to_string(),
    )
    .unwrap();
    server.cli_ok(&[
        "secret",
        "policy",
        "prod/db",
        "--file",
        policy.to_str().unwrap(),
    ]);
    server.register("orders");
    let token = server.join_token("orders");
    let svid = Svid::login(&server, &dir, "orders", join_token_evidence(&token))
        .unwrap_or_else(|r| panic!("login: {} {}", r.status, r.body));
    let source = SvidSource::from_pem(
        &std::fs::read_to_string(&svid.cert).unwrap(),
        &std::fs::read_to_string(&svid.key).unwrap(),
    )
    .unwrap();
    let fetcher = HttpFetcher::new(
        &server.addr(),
        &std::fs::read_to_string(&svid.bundle).unwrap(),
        source,
    )
    .unwrap();
    let cache = SecretCache::new(
        fetcher,
        CachePolicy {
            ttl: Duration::from_secs(2),
            refresh_after: Duration::from_millis(500),
            max_stale: Duration::from_secs(60),
            retry_after: Duration::from_millis(100),
        },
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(
        runtime.block_on(cache.get("prod/db")).unwrap().as_str(),
        Some("pw")
    );
    server.cli_ok(&["secret", "policy", "prod/db", "--remove"]);
    // Refused (403) is not "unreachable": the long max_stale does not keep it alive.
    let err = wait_for("the refusal", Duration::from_secs(10), || {
        runtime.block_on(cache.get("prod/db")).err()
    });
    match err {
        CacheError::Refused { source, .. } => {
            assert!(source.to_string().contains("403"), "{source}")
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert!(
        runtime.block_on(cache.get("prod/db")).is_err(),
        "and it stays dropped"
    );
}
