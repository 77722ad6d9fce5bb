//! Checkpoints: the chain's head at a point, signed by the server's audit key (ECDSA P-256),
//! in the spirit of CloudTrail's digest files. Someone who can write the database but not
//! read the master key can recompute hashes after an edit, but cannot sign a checkpoint
//! for the result.

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};

use crate::chain::{Break, Head, Record};
use crate::{hex, unhex};

/// A signed statement: "the log's event `seq` has hash `hash`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The event it covers, and with it every event before.
    pub seq: i64,
    /// That event's hash, in hex.
    pub hash: String,
    /// When it was signed, RFC 3339.
    pub time: String,
    /// The signing key's id.
    pub key_id: String,
    /// The ECDSA P-256 SHA-256 signature (fixed-length r||s), in hex.
    pub signature: String,
}

fn message(seq: i64, hash: &str, time: &str) -> Vec<u8> {
    format!("writ-audit-checkpoint-v1\n{seq}\n{hash}\n{time}").into_bytes()
}

/// The server's audit signing key.
pub struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a checkpoint key could not be made, loaded or used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    /// The system random source failed while making a key.
    #[error("checkpoint key generation failed")]
    Generate,
    /// The stored key is not an ECDSA P-256 key in PKCS#8.
    #[error("not an ECDSA P-256 PKCS#8 key")]
    NotP256,
    /// Signing failed (the system random source).
    #[error("signing a checkpoint failed")]
    Sign,
}

impl Signer {
    /// A new key, as PKCS#8 DER (to be wrapped and stored).
    pub fn generate_pkcs8() -> Result<Vec<u8>, SignerError> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| SignerError::Generate)
    }

    /// Loads a key from PKCS#8 DER. Its id is the first 8 bytes of its public key's
    /// SHA-256, in hex.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Signer, SignerError> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|_| SignerError::NotP256)?;
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        let id = hex(&digest.as_ref()[..8]);
        Ok(Signer { key, rng, id })
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The public key (uncompressed point), in hex.
    pub fn public_key_hex(&self) -> String {
        hex(self.key.public_key().as_ref())
    }

    /// Signs the head at `time`.
    pub fn sign(&self, head: &Head, time: &str) -> Result<Checkpoint, SignerError> {
        let hash = hex(&head.hash);
        let signature = self
            .key
            .sign(&self.rng, &message(head.seq, &hash, time))
            .map_err(|_| SignerError::Sign)?;
        Ok(Checkpoint {
            seq: head.seq,
            hash,
            time: time.into(),
            key_id: self.id.clone(),
            signature: hex(signature.as_ref()),
        })
    }
}

/// A public key to verify checkpoints with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// Its id.
    pub id: String,
    /// The uncompressed point, in hex.
    pub public_key: String,
}

/// Whether a checkpoint's signature verifies under one of `keys`.
pub fn signature_ok(checkpoint: &Checkpoint, keys: &[PublicKey]) -> bool {
    let Some(key) = keys.iter().find(|k| k.id == checkpoint.key_id) else {
        return false;
    };
    let (Some(public), Some(signature)) = (unhex(&key.public_key), unhex(&checkpoint.signature))
    else {
        return false;
    };
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
        .verify(
            &message(checkpoint.seq, &checkpoint.hash, &checkpoint.time),
            &signature,
        )
        .is_ok()
}

/// What a full verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Events checked.
    pub events: i64,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// The newest event a valid checkpoint covers (0 if none).
    pub signed_through: i64,
}

/// Verifies the whole log: the chain of `records` from the start, and every checkpoint's
/// signature and agreement with the chain. Returns the first break.
pub fn verify_log(
    records: &[Record],
    checkpoints: &[Checkpoint],
    keys: &[PublicKey],
) -> Result<Report, Break> {
    let head = crate::chain::verify_records(records)?;
    let mut signed_through = 0;
    for cp in checkpoints {
        if !signature_ok(cp, keys) {
            return Err(Break {
                seq: cp.seq,
                problem: format!(
                    "the checkpoint signed at {} does not verify under audit key {} (forged or altered checkpoint)",
                    cp.time, cp.key_id
                ),
            });
        }
        let covered = usize::try_from(cp.seq - 1)
            .ok()
            .and_then(|i| records.get(i));
        match covered {
            Some(record) if record.hash == cp.hash => {
                signed_through = signed_through.max(cp.seq);
            }
            Some(_) => {
                return Err(Break {
                    seq: cp.seq,
                    problem: format!(
                        "the chain differs from what the checkpoint signed at {} says (events rewritten up to here)",
                        cp.time
                    ),
                });
            }
            None if cp.seq == 0 => {}
            None => {
                return Err(Break {
                    seq: cp.seq,
                    problem: format!(
                        "a checkpoint signed at {} covers this event, but the log ends at {} (events deleted from the end)",
                        cp.time, head.seq
                    ),
                });
            }
        }
    }
    Ok(Report {
        events: head.seq,
        checkpoints: checkpoints.len(),
        signed_through,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::append;
    use crate::{Event, Outcome};

    #[test]
    fn checkpoints_catch_rewritten_chains_and_forged_signatures() {
        let signer = Signer::from_pkcs8(&Signer::generate_pkcs8().unwrap()).unwrap();
        let keys = [PublicKey {
            id: signer.id().into(),
            public_key: signer.public_key_hex(),
        }];
        let ev = |who: &str| {
            Event::new(
                "t",
                who,
                "x509Svid",
                "writ:RenewSvid",
                "r",
                Outcome::Allowed,
            )
        };
        let (records, head) = append(&Head::genesis(), &[ev("a"), ev("b"), ev("c")]).unwrap();
        let cp = signer.sign(&head, "2026-11-24T10:00:00Z").unwrap();
        let report = verify_log(&records, std::slice::from_ref(&cp), &keys).unwrap();
        assert_eq!(report.signed_through, 3);

        // Someone with write access rebuilds a consistent chain with other content.
        let (forged, _) = append(&Head::genesis(), &[ev("a"), ev("x"), ev("c")]).unwrap();
        let b = verify_log(&forged, std::slice::from_ref(&cp), &keys).unwrap_err();
        assert_eq!(b.seq, 3, "{b}");
        // ... and cannot re-sign it.
        let mut resigned = cp.clone();
        resigned.hash = forged[2].hash.clone();
        assert!(verify_log(&forged, &[resigned], &keys).is_err());
        // A tampered signature, or an unknown key, is found.
        let mut bad = cp.clone();
        bad.signature.replace_range(
            0..2,
            if &bad.signature[0..2] == "00" {
                "01"
            } else {
                "00"
            },
        );
        assert!(verify_log(&records, &[bad], &keys).is_err());
        let mut unknown = cp.clone();
        unknown.key_id = "nobody".into();
        assert!(verify_log(&records, &[unknown], &keys).is_err());
        // Deleting the end of the log is found by the checkpoint that covered it.
        let b = verify_log(&records[..2], &[cp], &keys).unwrap_err();
        assert!(b.problem.contains("deleted"), "{b}");
    }
}
