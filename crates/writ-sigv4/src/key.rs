//! Signing-key derivation (`AWS4` + secret, then date, region, service and `aws4_request`)
//! and a bounded cache of derived keys.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};

use ring::hmac;
use subtle::ConstantTimeEq;

/// The signing key of [`signing_key`], ready to sign with.
pub(crate) fn derive(secret: &[u8], date: &str, region: &str, service: &str) -> hmac::Key {
    hmac::Key::new(
        hmac::HMAC_SHA256,
        &signing_key(secret, date, region, service),
    )
}

/// The SigV4 signing key of a secret access key for one day (`YYYYMMDD`), region and
/// service: the 32 bytes the four HMAC steps end with. It signs requests of that scope only,
/// which is what makes it fit to hand to a verifier that must not hold the secret itself
/// (a gateway), which checks the request with [`crate::Prepared::finish`].
pub fn signing_key(secret: &[u8], date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut first = Vec::with_capacity(4 + secret.len());
    first.extend_from_slice(b"AWS4");
    first.extend_from_slice(secret);
    let step = |key: &[u8], data: &[u8]| {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    };
    let k_date = step(&first, date.as_bytes());
    first.fill(0);
    let k_region = step(&k_date, region.as_bytes());
    let k_service = step(&k_region, service.as_bytes());
    step(&k_service, b"aws4_request")
}

struct Entry {
    access_key_id: Box<str>,
    date: Box<str>,
    region: Box<str>,
    service: Box<str>,
    /// The secret the key was derived from: a hit needs the same secret (compared in
    /// constant time), so a rotated secret never meets a key derived from the old one.
    secret: Box<[u8]>,
    key: hmac::Key,
}

/// A bounded cache of derived signing keys, keyed by access key id, secret, date, region and
/// service, shared between threads (`&self` everywhere).
///
/// A signing key is valid for one day, one region and one service, so verifying many
/// requests from one credential costs one HMAC chain per day instead of four HMACs per
/// request. When the cache is full, a new day's key first evicts the keys of other days,
/// then an arbitrary entry. A capacity of 0 disables caching.
pub struct SigningKeyCache {
    capacity: usize,
    entries: Mutex<HashMap<u64, Entry>>,
    hasher: foldhash::quality::RandomState,
}

impl SigningKeyCache {
    /// A cache holding at most `capacity` derived keys (each a few hundred bytes).
    pub fn new(capacity: usize) -> Self {
        SigningKeyCache {
            capacity,
            entries: Mutex::new(HashMap::new()),
            hasher: foldhash::quality::RandomState::default(),
        }
    }

    /// How many derived keys the cache holds now.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether the cache holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The signing key for this scope, from the cache or derived (and then cached).
    pub(crate) fn key(
        &self,
        access_key_id: &str,
        secret: &[u8],
        date: &str,
        region: &str,
        service: &str,
    ) -> hmac::Key {
        if self.capacity == 0 {
            return derive(secret, date, region, service);
        }
        let slot = self.hasher.hash_one((access_key_id, date, region, service));
        {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = entries.get(&slot)
                && &*e.access_key_id == access_key_id
                && &*e.date == date
                && &*e.region == region
                && &*e.service == service
                && bool::from(e.secret.ct_eq(secret))
            {
                return e.key.clone();
            }
        }
        let key = derive(secret, date, region, service);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&slot) {
            entries.retain(|_, e| &*e.date == date);
            if entries.len() >= self.capacity
                && let Some(&victim) = entries.keys().next()
            {
                entries.remove(&victim);
            }
        }
        entries.insert(
            slot,
            Entry {
                access_key_id: access_key_id.into(),
                date: date.into(),
                region: region.into(),
                service: service.into(),
                secret: secret.into(),
                key: key.clone(),
            },
        );
        key
    }
}

impl Default for SigningKeyCache {
    /// A cache of 1,024 keys.
    fn default() -> Self {
        SigningKeyCache::new(1024)
    }
}

impl std::fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &hmac::Key) -> Vec<u8> {
        hmac::sign(key, b"x").as_ref().to_vec()
    }

    #[test]
    fn aws_documented_derivation() {
        // The example in AWS's "Examples of how to derive a signing key for Signature
        // Version 4": the signing key, as hex, signs nothing here; compare through a tag.
        let key = derive(
            b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        let expected = hmac::Key::new(
            hmac::HMAC_SHA256,
            &[
                0xf4, 0x78, 0x0e, 0x2d, 0x9f, 0x65, 0xfa, 0x89, 0x5f, 0x9c, 0x67, 0xb3, 0x2c, 0xe1,
                0xba, 0xf0, 0xb0, 0xd8, 0xa4, 0x35, 0x05, 0xa0, 0x00, 0xa1, 0xa9, 0xe0, 0x90, 0xd4,
                0x14, 0xdb, 0x40, 0x4d,
            ],
        );
        assert_eq!(tag(&key), tag(&expected));
        assert_eq!(
            signing_key(
                b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "20120215",
                "us-east-1",
                "iam"
            )[..4],
            [0xf4, 0x78, 0x0e, 0x2d]
        );
    }

    #[test]
    fn cache_hits_and_respects_secret_and_bound() {
        let cache = SigningKeyCache::new(2);
        let a = cache.key("AK", b"s1", "20150830", "us-east-1", "svc");
        assert_eq!(cache.len(), 1);
        let again = cache.key("AK", b"s1", "20150830", "us-east-1", "svc");
        assert_eq!(tag(&a), tag(&again));
        // A rotated secret must not get the old key.
        let rotated = cache.key("AK", b"s2", "20150830", "us-east-1", "svc");
        assert_ne!(tag(&a), tag(&rotated));
        assert_eq!(
            tag(&rotated),
            tag(&derive(b"s2", "20150830", "us-east-1", "svc"))
        );
        cache.key("AK", b"s2", "20150830", "eu-west-1", "svc");
        cache.key("AK", b"s2", "20150831", "eu-west-1", "svc");
        assert!(cache.len() <= 2);
        // The new day's key evicted the old day's keys.
        assert_eq!(cache.len(), 1);
        let none = SigningKeyCache::new(0);
        none.key("AK", b"s1", "20150830", "us-east-1", "svc");
        assert!(none.is_empty());
    }
}
