//! A cache of secret values for one function.
//!
//! Each secret is fetched once and then served from memory. Past `refresh_after` a read
//! still returns at once, and one background fetch brings the newest `AWSCURRENT`, which
//! is how rotations arrive. Past `ttl` a read waits for a fetch; if the server cannot be
//! reached, the cached value is served until `ttl + max_stale`, then reads fail. A refusal
//! (403: access revoked; 404: the secret is gone) drops the entry at once: authorization
//! fails closed, the network fails static.
//!
//! ```
//! use std::time::Duration;
//! use writ_client::secrets::{CachePolicy, Fetch, FetchError, SecretCache, SecretValue};
//!
//! struct Fixed;
//! impl Fetch for Fixed {
//!     async fn fetch(&self, name: &str) -> Result<SecretValue, FetchError> {
//!         Ok(SecretValue::text(name, "v1", "s3cr3t"))
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let cache = SecretCache::new(Fixed, CachePolicy::default());
//! let value = cache.get("prod/orders-db").await.unwrap();
//! assert_eq!(value.as_str(), Some("s3cr3t"));
//! # });
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;

/// One version of a secret's value. Its bytes are zeroed when the last copy is dropped,
/// and `Debug` never shows them.
pub struct SecretValue {
    name: String,
    version_id: String,
    bytes: Vec<u8>,
    binary: bool,
}

impl SecretValue {
    /// A text value.
    pub fn text(name: &str, version_id: &str, value: &str) -> SecretValue {
        SecretValue {
            name: name.into(),
            version_id: version_id.into(),
            bytes: value.as_bytes().to_vec(),
            binary: false,
        }
    }

    /// A binary value.
    pub fn binary(name: &str, version_id: &str, value: Vec<u8>) -> SecretValue {
        SecretValue {
            name: name.into(),
            version_id: version_id.into(),
            bytes: value,
            binary: true,
        }
    }

    /// The secret's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version this value is.
    pub fn version_id(&self) -> &str {
        &self.version_id
    }

    /// The value as text, if it was stored as text.
    pub fn as_str(&self) -> Option<&str> {
        if self.binary {
            None
        } else {
            std::str::from_utf8(&self.bytes).ok()
        }
    }

    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the value was stored as binary.
    pub fn is_binary(&self) -> bool {
        self.binary
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("name", &self.name)
            .field("version_id", &self.version_id)
            .field(
                "bytes",
                &format_args!("({} bytes, redacted)", self.bytes.len()),
            )
            .finish()
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        self.bytes.fill(0);
    }
}

/// Why a fetch did not bring a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The server could not be reached, or failed (5xx): the cached value may be served.
    #[error("the server is unreachable: {0}")]
    Unreachable(String),
    /// The server refused (4xx): access was revoked or the secret is gone. The cached value
    /// is dropped.
    #[error("the server refused ({status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
}

/// Fetches a secret's `AWSCURRENT` value.
pub trait Fetch: Send + Sync + 'static {
    /// Fetches `name`.
    fn fetch(&self, name: &str) -> impl Future<Output = Result<SecretValue, FetchError>> + Send;
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The server refused; nothing is cached for this name any more.
    #[error("secret {name:?}: {source}")]
    Refused {
        /// The secret.
        name: String,
        /// The refusal.
        source: FetchError,
    },
    /// The server is unreachable and there is no value young enough to serve.
    #[error(
        "secret {name:?}: {source}; no cached value within the staleness bound ({max_stale:?} past its TTL)"
    )]
    Unavailable {
        /// The secret.
        name: String,
        /// The last failure.
        source: FetchError,
        /// The policy's bound.
        max_stale: Duration,
    },
}

/// How long values are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// How long a fetched value is served without asking the server again.
    pub ttl: Duration,
    /// After this age a read starts a background refresh (and still returns at once).
    /// Must be shorter than `ttl`.
    pub refresh_after: Duration,
    /// How long past `ttl` a value is served while the server is unreachable.
    pub max_stale: Duration,
    /// After a failed fetch, how long to wait before trying again.
    pub retry_after: Duration,
}

impl Default for CachePolicy {
    /// 5 minutes, as the AWS Parameters and Secrets Lambda Extension; refreshed from 4
    /// minutes; served up to 5 minutes stale while the server is down; retried every second.
    fn default() -> CachePolicy {
        CachePolicy {
            ttl: Duration::from_secs(300),
            refresh_after: Duration::from_secs(240),
            max_stale: Duration::from_secs(300),
            retry_after: Duration::from_secs(1),
        }
    }
}

/// How old a cached value is, against the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// Serve it.
    Fresh,
    /// Serve it, and refresh in the background.
    RefreshDue,
    /// Fetch first; serve it only if the server is unreachable.
    Expired,
    /// Too old to serve at all.
    Dead,
}

fn freshness(age: Duration, policy: &CachePolicy) -> Freshness {
    if age < policy.refresh_after.min(policy.ttl) {
        Freshness::Fresh
    } else if age < policy.ttl {
        Freshness::RefreshDue
    } else if age < policy.ttl + policy.max_stale {
        Freshness::Expired
    } else {
        Freshness::Dead
    }
}

struct Entry {
    value: Arc<SecretValue>,
    fetched_at: Instant,
    /// A background refresh is running (or waiting out `retry_after`).
    refreshing: AtomicBool,
    /// When the last fetch for this entry failed as unreachable.
    failed_at: Mutex<Option<Instant>>,
}

impl Entry {
    fn new(value: SecretValue) -> Arc<Entry> {
        Arc::new(Entry {
            value: Arc::new(value),
            fetched_at: Instant::now(),
            refreshing: AtomicBool::new(false),
            failed_at: Mutex::new(None),
        })
    }

    fn recently_failed(&self, retry_after: Duration) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|t| t.elapsed() < retry_after)
    }

    fn mark_failed(&self) {
        *self
            .failed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }
}

struct Inner<F> {
    fetcher: F,
    policy: CachePolicy,
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    /// One fetch at a time per name, so a cold start with many readers fetches once.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A cache of secret values; cheap to clone (clones share the cache).
pub struct SecretCache<F> {
    inner: Arc<Inner<F>>,
}

impl<F> Clone for SecretCache<F> {
    fn clone(&self) -> Self {
        SecretCache {
            inner: self.inner.clone(),
        }
    }
}

impl<F: Fetch> SecretCache<F> {
    /// A cache that fetches with `fetcher`.
    pub fn new(fetcher: F, policy: CachePolicy) -> SecretCache<F> {
        SecretCache {
            inner: Arc::new(Inner {
                fetcher,
                policy,
                entries: RwLock::new(HashMap::new()),
                in_flight: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The current value of `name`: from memory while fresh, else fetched.
    pub async fn get(&self, name: &str) -> Result<Arc<SecretValue>, CacheError> {
        if let Some(entry) = self.inner.lookup(name) {
            match freshness(entry.fetched_at.elapsed(), &self.inner.policy) {
                Freshness::Fresh => return Ok(entry.value.clone()),
                Freshness::RefreshDue => {
                    self.refresh_in_background(name, &entry);
                    return Ok(entry.value.clone());
                }
                Freshness::Expired | Freshness::Dead => {}
            }
        }
        self.inner.fetch_now(name).await
    }

    /// Forgets every value (the function lost its identity, say).
    pub fn clear(&self) {
        self.inner.write().clear();
    }

    /// Forgets `name`, so the next read fetches it.
    pub fn invalidate(&self, name: &str) {
        self.inner.write().remove(name);
    }

    fn refresh_in_background(&self, name: &str, entry: &Arc<Entry>) {
        if entry.recently_failed(self.inner.policy.retry_after)
            || entry.refreshing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let inner = self.inner.clone();
        let entry = entry.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            match inner.fetcher.fetch(&name).await {
                Ok(value) => {
                    inner.store(&name, value);
                }
                Err(FetchError::Refused { .. }) => {
                    inner.write().remove(&name);
                }
                Err(e) => {
                    tracing::warn!(secret = name, error = %e, "background refresh failed");
                    entry.mark_failed();
                }
            }
            entry.refreshing.store(false, Ordering::Release);
        });
    }
}

impl<F: Fetch> Inner<F> {
    fn lookup(&self, name: &str) -> Option<Arc<Entry>> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Entry>>> {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn store(&self, name: &str, value: SecretValue) -> Arc<SecretValue> {
        let entry = Entry::new(value);
        let value = entry.value.clone();
        self.write().insert(name.to_string(), entry);
        value
    }

    async fn fetch_now(&self, name: &str) -> Result<Arc<SecretValue>, CacheError> {
        let gate = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(name.to_string())
            .or_default()
            .clone();
        let _turn = gate.lock().await;
        // Whoever held the gate before may have fetched it, or failed just now.
        let cached = self.lookup(name);
        if let Some(entry) = &cached {
            let state = freshness(entry.fetched_at.elapsed(), &self.policy);
            if matches!(state, Freshness::Fresh | Freshness::RefreshDue)
                || (state == Freshness::Expired && entry.recently_failed(self.policy.retry_after))
            {
                return Ok(entry.value.clone());
            }
        }
        match self.fetcher.fetch(name).await {
            Ok(value) => Ok(self.store(name, value)),
            Err(source @ FetchError::Refused { .. }) => {
                self.write().remove(name);
                Err(CacheError::Refused {
                    name: name.into(),
                    source,
                })
            }
            Err(source) => match cached {
                Some(entry)
                    if freshness(entry.fetched_at.elapsed(), &self.policy) != Freshness::Dead =>
                {
                    tracing::warn!(secret = name, error = %source, "serving a stale value");
                    entry.mark_failed();
                    Ok(entry.value.clone())
                }
                _ => Err(CacheError::Unavailable {
                    name: name.into(),
                    source,
                    max_stale: self.policy.max_stale,
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A server in memory: the current version, whether it answers, and a fetch count.
    #[derive(Default)]
    struct Server {
        version: AtomicUsize,
        down: AtomicBool,
        refuse: AtomicBool,
        fetches: AtomicUsize,
    }

    #[derive(Clone, Default)]
    struct Fake(Arc<Server>);

    impl Fetch for Fake {
        async fn fetch(&self, name: &str) -> Result<SecretValue, FetchError> {
            tokio::task::yield_now().await;
            self.0.fetches.fetch_add(1, Ordering::SeqCst);
            if self.0.refuse.load(Ordering::SeqCst) {
                return Err(FetchError::Refused {
                    status: 403,
                    message: "denied".into(),
                });
            }
            if self.0.down.load(Ordering::SeqCst) {
                return Err(FetchError::Unreachable("connection refused".into()));
            }
            let v = self.0.version.load(Ordering::SeqCst);
            Ok(SecretValue::text(
                name,
                &format!("v{v}"),
                &format!("value {v}"),
            ))
        }
    }

    fn policy() -> CachePolicy {
        CachePolicy {
            ttl: Duration::from_secs(60),
            refresh_after: Duration::from_secs(45),
            max_stale: Duration::from_secs(30),
            retry_after: Duration::from_secs(1),
        }
    }

    fn fetches(f: &Fake) -> usize {
        f.0.fetches.load(Ordering::SeqCst)
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[test]
    fn freshness_follows_the_policy() {
        let p = policy();
        let at = |s| freshness(Duration::from_secs(s), &p);
        assert_eq!(at(0), Freshness::Fresh);
        assert_eq!(at(44), Freshness::Fresh);
        assert_eq!(at(45), Freshness::RefreshDue);
        assert_eq!(at(59), Freshness::RefreshDue);
        assert_eq!(at(60), Freshness::Expired);
        assert_eq!(at(89), Freshness::Expired);
        assert_eq!(at(90), Freshness::Dead);
    }

    #[tokio::test(start_paused = true)]
    async fn reads_within_the_ttl_do_not_reach_the_server() {
        let fake = Fake::default();
        let cache = SecretCache::new(fake.clone(), policy());
        for _ in 0..1000 {
            assert_eq!(cache.get("a").await.unwrap().as_str(), Some("value 0"));
        }
        assert_eq!(fetches(&fake), 1);
        cache.get("b").await.unwrap();
        assert_eq!(fetches(&fake), 2, "one fetch per name");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_first_reads_fetch_once() {
        let fake = Fake::default();
        let cache = SecretCache::new(fake.clone(), policy());
        let readers: Vec<_> = (0..50)
            .map(|_| {
                let c = cache.clone();
                tokio::spawn(async move { c.get("a").await.unwrap().version_id().to_string() })
            })
            .collect();
        for r in readers {
            assert_eq!(r.await.unwrap(), "v0");
        }
        assert_eq!(fetches(&fake), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotation_arrives_by_background_refresh_without_a_waiting_read() {
        let fake = Fake::default();
        let cache = SecretCache::new(fake.clone(), policy());
        cache.get("a").await.unwrap();
        fake.0.version.store(1, Ordering::SeqCst); // rotated on the server
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(
            cache.get("a").await.unwrap().version_id(),
            "v0",
            "still fresh"
        );
        tokio::time::advance(Duration::from_secs(20)).await; // 50 s: refresh due
        assert_eq!(
            cache.get("a").await.unwrap().version_id(),
            "v0",
            "served at once while the refresh runs"
        );
        settle().await;
        assert_eq!(fetches(&fake), 2, "one background refresh");
        assert_eq!(cache.get("a").await.unwrap().version_id(), "v1");
        assert_eq!(fetches(&fake), 2, "the refreshed value is fresh again");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_server_gets_the_stale_value_until_the_bound_then_an_error() {
        let fake = Fake::default();
        let cache = SecretCache::new(fake.clone(), policy());
        cache.get("a").await.unwrap();
        fake.0.down.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(50)).await;
        assert_eq!(cache.get("a").await.unwrap().version_id(), "v0");
        settle().await;
        // The failed refresh is not retried on every read, only after retry_after.
        for _ in 0..100 {
            cache.get("a").await.unwrap();
        }
        settle().await;
        assert_eq!(fetches(&fake), 2);
        tokio::time::advance(Duration::from_secs(20)).await; // 70 s: past the TTL
        assert_eq!(
            cache.get("a").await.unwrap().as_str(),
            Some("value 0"),
            "stale"
        );
        assert_eq!(fetches(&fake), 3);
        for _ in 0..100 {
            cache.get("a").await.unwrap();
        }
        assert_eq!(
            fetches(&fake),
            3,
            "failures are retried once per second at most"
        );
        tokio::time::advance(Duration::from_secs(25)).await; // 95 s: past ttl + max_stale
        match cache.get("a").await {
            Err(CacheError::Unavailable { name, .. }) => assert_eq!(name, "a"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        // Back up: the next read fetches.
        fake.0.down.store(false, Ordering::SeqCst);
        fake.0.version.store(2, Ordering::SeqCst);
        assert_eq!(cache.get("a").await.unwrap().version_id(), "v2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_drops_the_value_at_once() {
        let fake = Fake::default();
        let cache = SecretCache::new(fake.clone(), policy());
        cache.get("a").await.unwrap();
        fake.0.refuse.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(50)).await;
        cache.get("a").await.unwrap(); // starts the refresh, which is refused
        settle().await;
        match cache.get("a").await {
            Err(CacheError::Refused { source, .. }) => {
                assert!(matches!(source, FetchError::Refused { status: 403, .. }))
            }
            other => panic!("a revoked caller must not be served: {other:?}"),
        }
    }

    #[test]
    fn values_are_never_shown_by_debug() {
        let v = SecretValue::text("a", "v1", "hunter2");
        let shown = format!("{v:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("7 bytes"),
            "{shown}"
        );
        assert_eq!(SecretValue::binary("b", "v", vec![0xff]).as_str(), None);
    }
}
