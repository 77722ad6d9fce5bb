//! Every cache of the server, in one place and of one kind.
//!
//! A [`Cache`] holds at most its capacity of entries, each for at most its time to live
//! (for ever when it has none: what it holds never changes, or this server drops it when it
//! changes it). The eviction rule is the same for all: an insert into a full cache first
//! drops the entries whose time is up, and, if it is still full, empties it. Caches hold
//! records, compiled policies and sealed bytes; never a plaintext secret value.
//!
//! | cache | key | lives | holds at most |
//! |---|---|---|---|
//! | [`Caches::functions`] | function name | [`FUNCTION_TTL`] | [`RECORDS`] |
//! | [`Caches::secrets`] | secret name | [`SECRET_TTL`] | [`RECORDS`] |
//! | [`Caches::secret_versions`] | secret name, version id | for ever (immutable) | [`RECORDS`] |
//! | [`Caches::token_policies`] | admin token id | for ever (dropped on revocation) | [`POLICIES`] |
//! | [`Caches::policies`] | policy kind and text | for ever (immutable) | [`POLICIES`] |
//! | [`Caches::jwks`] | JWKS URL | [`crate::attest::JWKS_TTL`] | [`POLICIES`] |
//!
//! Other servers sharing the store change functions and secrets too: what they change is
//! seen here within the time to live.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use writ_policy::{CompiledPolicy, PolicyKind, PolicySet};
use writ_secrets::model::Labels;

use crate::store::{FunctionRecord, SecretRecord, VersionRecord};

/// How long a function's record read for one call is reused by the next.
pub const FUNCTION_TTL: Duration = Duration::from_secs(1);
/// How long a secret's record and labels read for one call are reused by the next.
pub const SECRET_TTL: Duration = Duration::from_secs(1);
/// The most records (functions, secrets, versions) a cache holds.
pub const RECORDS: usize = 100_000;
/// The most compiled policies and documents a cache holds.
pub const POLICIES: usize = 10_000;

/// A bounded map whose entries expire; see the module's documentation.
#[derive(Debug)]
pub struct Cache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    capacity: usize,
    ttl: Option<Duration>,
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    /// A cache of at most `capacity` entries, each kept at most `ttl` (for ever if none).
    pub fn new(capacity: usize, ttl: Option<Duration>) -> Cache<K, V> {
        Cache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// The entry for `key`, if there is one whose time is not up.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_with_age(key).map(|(v, _)| v)
    }

    /// The entry for `key` and how long ago it was put there, if its time is not up.
    pub fn get_with_age<Q>(&self, key: &Q) -> Option<(V, Duration)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.lock();
        let (value, at) = entries.get(key)?;
        let age = at.elapsed();
        if self.ttl.is_some_and(|ttl| age >= ttl) {
            return None;
        }
        Some((value.clone(), age))
    }

    /// Puts `value` under `key`, making room by the one eviction rule.
    pub fn insert(&self, key: K, value: V) {
        self.insert_at(key, value, Instant::now());
    }

    /// Puts `value` under `key` as read at `at`.
    fn insert_at(&self, key: K, value: V, at: Instant) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            if let Some(ttl) = self.ttl {
                entries.retain(|_, (_, at)| at.elapsed() < ttl);
            }
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (value, at));
    }

    /// Drops the entry for `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(key);
    }

    /// Keeps only the entries for which `keep` holds.
    pub fn retain(&self, mut keep: impl FnMut(&K) -> bool) {
        self.lock().retain(|k, _| keep(k));
    }

    /// How many entries it holds (some may have expired).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (V, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A secret's record (or its absence) and labels.
pub type SecretMeta = (Option<SecretRecord>, Labels);

/// The server's caches.
#[derive(Debug)]
pub struct Caches {
    /// Functions read for SVID-authenticated calls (none: no such function).
    pub functions: Cache<String, Option<FunctionRecord>>,
    /// Secrets' records and labels.
    pub secrets: Cache<String, SecretMeta>,
    /// Versions' sealed bytes, which never change.
    pub secret_versions: Cache<(String, String), VersionRecord>,
    /// Admin tokens' policies, compiled.
    pub token_policies: Cache<String, Arc<PolicySet>>,
    /// Function, boundary and resource policies, compiled, by their text.
    pub policies: Cache<(PolicyKind, String), Arc<CompiledPolicy>>,
    /// OIDC issuers' JWKS documents, by URL.
    pub jwks: Cache<String, jsonwebtoken::jwk::JwkSet>,
    /// AWS session tokens opened, by the SHA-256 of the token (each is checked for
    /// expiry and its function's liveness at every use).
    pub aws_sessions: Cache<[u8; 32], Arc<crate::aws::credentials::Session>>,
}

impl Default for Caches {
    fn default() -> Caches {
        Caches {
            functions: Cache::new(RECORDS, Some(FUNCTION_TTL)),
            secrets: Cache::new(RECORDS, Some(SECRET_TTL)),
            secret_versions: Cache::new(RECORDS, None),
            token_policies: Cache::new(POLICIES, None),
            policies: Cache::new(POLICIES, None),
            jwks: Cache::new(POLICIES, Some(crate::attest::JWKS_TTL)),
            aws_sessions: Cache::new(RECORDS, None),
        }
    }
}

impl Caches {
    /// Forgets a secret after this server changed it.
    pub fn forget_secret(&self, name: &str) {
        self.secrets.remove(name);
        self.secret_versions.retain(|(n, _)| n != name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_a_full_cache_drops_the_expired_first() {
        let ttl = Duration::from_secs(3600);
        let cache: Cache<u32, u32> = Cache::new(2, Some(ttl));
        let long_ago = Instant::now().checked_sub(ttl * 2).unwrap();
        cache.insert_at(1, 10, long_ago);
        assert_eq!(cache.get(&1), None, "its time is up");
        cache.insert(2, 20);
        // Full: the expired entry goes, the fresh one stays.
        cache.insert(3, 30);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&2), Some(20));
        assert_eq!(cache.get(&3), Some(30));
    }

    #[test]
    fn a_full_cache_of_live_entries_is_emptied() {
        let cache: Cache<u32, u32> = Cache::new(2, None);
        cache.insert(1, 10);
        cache.insert(2, 20);
        cache.insert(2, 21);
        assert_eq!(cache.len(), 2, "replacing an entry makes no room");
        cache.insert(3, 30);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&3), Some(30));
        cache.remove(&3);
        assert!(cache.is_empty());
    }
}
