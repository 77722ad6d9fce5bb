//! Rotating the master key: every key it wraps (secret versions' data keys, the CA and JWT
//! signing keys, the audit keys) is unwrapped with the old key and wrapped with a new one,
//! in one transaction. Ciphertexts are not touched. Servers must be stopped: a running one
//! would go on wrapping new keys with the old master key; [`crate::server_lock`] enforces it.
//!
//! With the key in `DATA_DIR/master.key`, the new key is written to `master.key.new`
//! before the transaction and renamed over `master.key` after it commits. A crash between
//! the two leaves both files; [`settle_interrupted`] (run at every server start and before
//! every rotation) keeps whichever one the store's keys open.

use std::path::{Path, PathBuf};

use writ_secrets::envelope;

use crate::master_key::MasterKey;
use crate::store::{RewrapCounts, Store, WrappedKey};

/// The new key's file while a rotation runs.
pub fn pending_file(data_dir: &Path) -> PathBuf {
    data_dir.join("master.key.new")
}

/// Why a rewrap did not complete.
#[derive(Debug)]
pub enum RewrapError {
    /// A key did not open with the old master key: the transaction was rolled back and the
    /// store is as it was.
    Refused(String),
    /// The store failed; the transaction may or may not have committed (a connection lost
    /// during COMMIT, say), so the new key must be kept.
    Store(String),
}

impl std::fmt::Display for RewrapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RewrapError::Refused(m) | RewrapError::Store(m) => f.write_str(m),
        }
    }
}

/// Rewraps every wrapped key from `old` to `new`, all or nothing.
pub async fn rewrap_all(
    store: &Store,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<RewrapCounts, RewrapError> {
    store
        .rewrap_wrapped_keys(|k| match k {
            WrappedKey::SecretVersion {
                name,
                version_id,
                wrapped,
            } => envelope::rewrap(old, new, name, version_id, wrapped)
                .map_err(|e| format!("secret {name:?} version {version_id}: {e}")),
            WrappedKey::SigningKey { id, wrapped } => {
                reseal(old, new, &crate::authority::sealing_purpose(id), wrapped)
            }
            WrappedKey::AuditKey { id, wrapped } => {
                reseal(old, new, &crate::audit::purpose(id), wrapped)
            }
        })
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Migration(m) => RewrapError::Refused(m),
            other => RewrapError::Store(other.to_string()),
        })
}

fn reseal(
    old: &MasterKey,
    new: &MasterKey,
    purpose: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, String> {
    let mut plain = old.open(purpose, sealed).map_err(|e| e.to_string())?;
    let resealed = new.seal(purpose, &plain).map_err(|e| e.to_string());
    plain.fill(0);
    resealed
}

/// Whether `key` opens the store's first signing key; `None` for a store without keys.
async fn opens_store(store: &Store, key: &MasterKey) -> Result<Option<bool>, String> {
    let keys = store.keys().await.map_err(|e| e.to_string())?;
    Ok(keys.first().map(|k| {
        key.open(&crate::authority::sealing_purpose(&k.id), &k.wrapped_key)
            .is_ok()
    }))
}

/// Finishes or undoes a rotation that stopped between its commit and the rename of
/// `master.key.new`: keeps the key that opens the store. Returns what it did, if anything.
pub async fn settle_interrupted(data_dir: &Path, store: &Store) -> Result<Option<String>, String> {
    let pending = pending_file(data_dir);
    if !pending.exists() {
        return Ok(None);
    }
    let current_path = data_dir.join("master.key");
    let new = MasterKey::load(None, &pending).map_err(|e| e.to_string())?;
    if opens_store(store, &new).await? == Some(true) {
        std::fs::rename(&pending, &current_path)
            .map_err(|e| format!("{}: {e}", pending.display()))?;
        return Ok(Some(format!(
            "an interrupted master-key rotation had committed: {} now holds the new key",
            current_path.display()
        )));
    }
    let old = MasterKey::load(None, &current_path).map_err(|e| e.to_string())?;
    if opens_store(store, &old).await? != Some(false) {
        std::fs::remove_file(&pending).map_err(|e| format!("{}: {e}", pending.display()))?;
        return Ok(Some(format!(
            "an interrupted master-key rotation had not committed: removed {}",
            pending.display()
        )));
    }
    Err(format!(
        "neither {} nor {} opens the store's keys",
        current_path.display(),
        pending.display()
    ))
}
