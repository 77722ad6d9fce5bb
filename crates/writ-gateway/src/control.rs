//! What the gateway enforces, as last heard from the server: the trust bundle, the JWKS,
//! the intentions (compiled to policy statements) and the revocations. It is kept on disk
//! after every change, so a gateway that restarts while the server is down enforces the
//! last known state (fail static) until it is older than the staleness bound.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use writ_policy::intentions::IntentionSet;

/// The control-plane state as stored: what the server sent, verbatim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The X.509 trust bundle (PEM).
    pub bundle_pem: String,
    /// The JWT-SVID signing keys (a JWKS document).
    pub jwks: Value,
    /// The intentions, as `GET /v1/intentions` returned them.
    pub intentions: Value,
    /// Revoked SVID serials (lowercase hex).
    pub revoked_serials: Vec<String>,
    /// Revoked functions: SPIFFE ID and when (Unix seconds).
    pub revoked_functions: Vec<(String, i64)>,
    /// The revocation feed position after the last entry taken in.
    pub feed_next: i64,
    /// When the bundle, JWKS and intentions were last fetched and installed (Unix seconds).
    pub synced_at: i64,
    /// When the revocation feed last answered and its entries were installed.
    #[serde(default)]
    pub feed_synced_at: i64,
}

/// The state compiled for enforcement.
pub struct Control {
    /// What it was built from.
    pub snapshot: Snapshot,
    /// The CAs of the bundle.
    pub bundle: Vec<CertificateDer<'static>>,
    /// A digest of the bundle: a certificate checked against one bundle is checked again
    /// when this changes.
    pub bundle_digest: u64,
    /// The JWKS.
    pub jwks: jsonwebtoken::jwk::JwkSet,
    /// A digest of the JWKS: verified tokens are verified again when it changes.
    pub jwks_digest: u64,
    /// The intentions, compiled to policy statements.
    pub intentions: IntentionSet,
    /// A digest of the intentions: a decision made under one set of intentions is made
    /// again when this changes.
    pub intentions_digest: u64,
    /// Revoked serials, without leading zeros (see [`serial_key`]).
    pub revoked_serials: HashSet<String>,
    /// The (lower-case) headers some intention's L7 permission names: a request may carry
    /// each at most once, and only with a visible-ASCII value, so what was authorized is
    /// what the upstream reads.
    pub intention_headers: HashSet<String>,
    /// Revoked functions' SPIFFE IDs, with when they were revoked.
    pub revoked_functions: std::collections::HashMap<String, i64>,
}

impl Control {
    /// Compiles a snapshot; refuses one whose parts do not parse.
    pub fn build(snapshot: Snapshot, trust_domain: &str) -> Result<Arc<Control>, String> {
        let bundle = pem::parse_many(&snapshot.bundle_pem)
            .map_err(|e| format!("trust bundle: {e}"))?
            .into_iter()
            .filter(|p| p.tag() == "CERTIFICATE")
            .map(|p| CertificateDer::from(p.into_contents()))
            .collect();
        let jwks =
            serde_json::from_value(snapshot.jwks.clone()).map_err(|e| format!("JWKS: {e}"))?;
        let intentions = crate::intentions::compile(&snapshot.intentions, trust_domain)?;
        let intention_headers = intentions
            .intentions()
            .iter()
            .flat_map(|i| i.permissions.iter())
            .flat_map(|p| p.headers.iter())
            .map(|h| h.name.to_ascii_lowercase())
            .collect();
        Ok(Arc::new(Control {
            intentions,
            intentions_digest: digest(snapshot.intentions.to_string().as_bytes()),
            bundle,
            bundle_digest: digest(snapshot.bundle_pem.as_bytes()),
            jwks_digest: digest(snapshot.jwks.to_string().as_bytes()),
            jwks,
            revoked_serials: snapshot
                .revoked_serials
                .iter()
                .map(|s| serial_key(s))
                .collect(),
            intention_headers,
            revoked_functions: snapshot.revoked_functions.iter().cloned().collect(),
            snapshot,
        }))
    }
}

/// A serial as compared: lower-case hex without colons or leading zeros, so the same
/// number written two ways is one serial.
pub fn serial_key(serial: &str) -> String {
    let hex: String = serial
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

/// The first 64 bits of a SHA-256.
fn digest(bytes: &[u8]) -> u64 {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&d.as_ref()[..8]);
    u64::from_be_bytes(first)
}

/// Where the snapshot is kept.
pub fn snapshot_file(state_dir: &Path) -> PathBuf {
    state_dir.join("control-state.json")
}

/// Reads the kept snapshot, if there is one.
pub fn load(state_dir: &Path) -> Result<Option<Snapshot>, String> {
    let path = snapshot_file(state_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Keeps a snapshot: written to a temporary file, synced, then renamed over the old one,
/// so a crash leaves the old or the new, never half of one.
pub fn save(state_dir: &Path, snapshot: &Snapshot) -> Result<(), String> {
    std::fs::create_dir_all(state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
    let path = snapshot_file(state_dir);
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = state_dir.join(format!("control-state.json.{}.{n}.tmp", std::process::id()));
    let bytes = serde_json::to_vec(snapshot).map_err(|e| e.to_string())?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))
}
