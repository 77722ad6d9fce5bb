//! The trust domain's signing keys as a server holds them: CAs for X.509-SVIDs and keys for
//! JWT-SVIDs, each with the time it starts signing and the time it leaves the bundle.
//!
//! Rotation follows one rule: a new key is published in the bundle before it signs
//! anything, and the key it replaces stays published until the last credential it can have
//! signed has expired. Which key signs, and what the bundle holds, is a pure function of the
//! stored records and the time.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use ring::digest::{SHA256, digest};
use time::{Duration, OffsetDateTime};
use writ_identity::{CertificateAuthority, JwtAuthority, TrustDomain};

use crate::master_key::MasterKey;
use crate::store::{KeyKind, KeyRecord};

/// How long a CA certificate lives. CAs are rotated well before this.
pub const CA_LIFETIME: Duration = Duration::days(365);

/// A CA and its record.
pub struct LoadedCa {
    /// Its stored record (public half and times).
    pub record: KeyRecord,
    /// The CA, able to sign.
    pub ca: CertificateAuthority,
}

/// A JWT signing key and its record.
pub struct LoadedJwtKey {
    /// Its stored record.
    pub record: KeyRecord,
    /// The key, able to sign.
    pub authority: JwtAuthority,
}

/// Every signing key of the trust domain, unwrapped.
pub struct Authorities {
    /// The key generation these were loaded at.
    pub generation: i64,
    /// The CAs, oldest first.
    pub cas: Vec<LoadedCa>,
    /// The JWT keys, oldest first.
    pub jwt_keys: Vec<LoadedJwtKey>,
}

impl std::fmt::Debug for Authorities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorities")
            .field("generation", &self.generation)
            .field("cas", &self.cas.len())
            .field("jwt_keys", &self.jwt_keys.len())
            .finish()
    }
}

/// What a signing key's sealing is bound to.
pub(crate) fn sealing_purpose(id: &str) -> String {
    format!("writ signing key {id}")
}

fn published(record: &KeyRecord, now: i64) -> bool {
    record.publish_until.is_none_or(|until| now < until)
}

/// The one key of a list that signs at `now`: the latest whose `active_from` has come, and
/// of keys active from the same second, the one a later rotation made.
fn signer<T>(keys: &[T], record: impl Fn(&T) -> &KeyRecord, now: i64) -> Option<&T> {
    keys.iter()
        .filter(|k| record(k).active_from <= now && published(record(k), now))
        .max_by_key(|k| (record(k).active_from, record(k).generation))
}

impl Authorities {
    /// Unwraps the stored keys with the master key.
    pub fn load(
        trust_domain: &TrustDomain,
        generation: i64,
        records: Vec<KeyRecord>,
        master: &MasterKey,
    ) -> Result<Authorities, String> {
        let mut cas = Vec::new();
        let mut jwt_keys = Vec::new();
        for record in records {
            let key = master
                .open(&sealing_purpose(&record.id), &record.wrapped_key)
                .map_err(|e| e.to_string())?;
            match record.kind {
                KeyKind::X509 => {
                    let ca = CertificateAuthority::from_parts(trust_domain, &record.public, &key)
                        .map_err(|e| format!("signing key {}: {e}", record.id))?;
                    cas.push(LoadedCa { record, ca });
                }
                KeyKind::Jwt => {
                    let authority = JwtAuthority::from_pkcs8_der(trust_domain, &key)
                        .map_err(|e| format!("signing key {}: {e}", record.id))?;
                    jwt_keys.push(LoadedJwtKey { record, authority });
                }
            }
        }
        Ok(Authorities {
            generation,
            cas,
            jwt_keys,
        })
    }

    /// The CA that signs X.509-SVIDs at `now`.
    pub fn signing_ca(&self, now: i64) -> Option<&LoadedCa> {
        signer(&self.cas, |k| &k.record, now)
    }

    /// The key that signs JWT-SVIDs at `now`.
    pub fn signing_jwt_key(&self, now: i64) -> Option<&LoadedJwtKey> {
        signer(&self.jwt_keys, |k| &k.record, now)
    }

    /// The CAs in the bundle at `now`.
    pub fn bundle_cas(&self, now: i64) -> impl Iterator<Item = &LoadedCa> {
        self.cas.iter().filter(move |k| published(&k.record, now))
    }

    /// The X.509 trust bundle at `now`, as concatenated PEM certificates.
    pub fn bundle_pem(&self, now: i64) -> String {
        self.bundle_cas(now).map(|k| k.ca.cert_pem()).collect()
    }

    /// The JWT bundle at `now`.
    pub fn jwks(&self, now: i64) -> JwkSet {
        JwkSet {
            keys: self
                .jwt_keys
                .iter()
                .filter(|k| published(&k.record, now))
                .map(|k| k.authority.jwk().clone())
                .collect::<Vec<Jwk>>(),
        }
    }
}

/// Makes a new CA, sealed for storage, that starts signing at `active_from`.
pub fn new_ca_record(
    trust_domain: &TrustDomain,
    master: &MasterKey,
    now: OffsetDateTime,
    active_from: i64,
) -> Result<KeyRecord, String> {
    let ca = CertificateAuthority::generate(trust_domain, now, CA_LIFETIME)
        .map_err(|e| e.to_string())?;
    let id = hex_prefix(ca.cert_der());
    let key = ca.key_pkcs8_der();
    Ok(KeyRecord {
        wrapped_key: master
            .seal(&sealing_purpose(&id), &key)
            .map_err(|e| e.to_string())?,
        id,
        kind: KeyKind::X509,
        public: ca.cert_pem().to_string(),
        created_at: now.unix_timestamp(),
        active_from,
        publish_until: None,
        generation: 0,
    })
}

/// Makes a new JWT signing key, sealed for storage, that starts signing at `active_from`.
pub fn new_jwt_record(
    trust_domain: &TrustDomain,
    master: &MasterKey,
    now: OffsetDateTime,
    active_from: i64,
) -> Result<KeyRecord, String> {
    let authority = JwtAuthority::generate(trust_domain).map_err(|e| e.to_string())?;
    let id = authority.kid().to_string();
    Ok(KeyRecord {
        wrapped_key: master
            .seal(&sealing_purpose(&id), authority.pkcs8_der())
            .map_err(|e| e.to_string())?,
        public: serde_json::to_string(authority.jwk()).map_err(|e| e.to_string())?,
        id,
        kind: KeyKind::Jwt,
        created_at: now.unix_timestamp(),
        active_from,
        publish_until: None,
        generation: 0,
    })
}

/// A short, stable id for a CA: the first 10 bytes of its certificate's SHA-256, in hex.
fn hex_prefix(der: &[u8]) -> String {
    digest(&SHA256, der).as_ref()[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, active_from: i64, publish_until: Option<i64>) -> KeyRecord {
        KeyRecord {
            generation: match id {
                "new" => 1,
                "newer" => 2,
                _ => 0,
            },
            id: id.into(),
            kind: KeyKind::X509,
            public: String::new(),
            wrapped_key: vec![],
            created_at: 0,
            active_from,
            publish_until,
        }
    }

    #[test]
    fn a_prepared_key_is_published_before_it_signs_and_the_old_one_stays_until_retired() {
        // Old key active since 0, replaced by a key prepared at 100 that signs from 160;
        // the old key leaves the bundle at 160 + the longest lifetime (3600).
        let keys = [record("old", 0, Some(3760)), record("new", 160, None)];
        let signing = |now| signer(&keys, |k| k, now).map(|k| k.id.as_str());
        let bundle = |now| {
            keys.iter()
                .filter(|k| published(k, now))
                .map(|k| k.id.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(signing(120), Some("old"));
        assert_eq!(bundle(120), ["old", "new"]);
        assert_eq!(signing(160), Some("new"));
        assert_eq!(bundle(3759), ["old", "new"]);
        assert_eq!(bundle(3760), ["new"]);
    }

    #[test]
    fn of_keys_active_from_the_same_second_the_later_rotation_signs() {
        // Initialised and rotated (to sign at once) within one second, twice.
        let keys = [
            record("old", 100, Some(3700)),
            record("newer", 100, None),
            record("new", 100, Some(3700)),
        ];
        assert_eq!(
            signer(&keys, |k| k, 100).map(|k| k.id.as_str()),
            Some("newer")
        );
    }

    #[test]
    fn stored_keys_load_back_and_refuse_another_master_key() {
        let td = TrustDomain::new("example.org").unwrap();
        let master = MasterKey::from_bytes(&[1; 32]).unwrap();
        let now = OffsetDateTime::now_utc();
        let ca = new_ca_record(&td, &master, now, now.unix_timestamp()).unwrap();
        let jwt = new_jwt_record(&td, &master, now, now.unix_timestamp()).unwrap();
        let loaded = Authorities::load(&td, 1, vec![ca.clone(), jwt.clone()], &master).unwrap();
        let t = now.unix_timestamp();
        assert_eq!(loaded.signing_ca(t).unwrap().record.id, ca.id);
        assert_eq!(loaded.signing_jwt_key(t).unwrap().record.id, jwt.id);
        assert_eq!(loaded.jwks(t).keys.len(), 1);
        assert!(
            loaded
                .bundle_pem(t)
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        let other = MasterKey::from_bytes(&[2; 32]).unwrap();
        assert!(Authorities::load(&td, 1, vec![ca.clone()], &other).is_err());
        // A sealed key moved to another record's id does not open.
        let mut swapped = jwt.clone();
        swapped.wrapped_key = ca.wrapped_key.clone();
        assert!(Authorities::load(&td, 1, vec![swapped], &master).is_err());
    }
}
