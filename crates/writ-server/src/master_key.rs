//! The master key: 32 random bytes that wrap (AES-256-GCM) every private key writ stores.
//! It comes from the environment (`WRIT_MASTER_KEY`, base64) or from a 0600 file that is
//! created on first start. Several servers sharing one database must share it too.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The environment variable that carries the master key, base64-encoded.
pub const MASTER_KEY_ENV: &str = "WRIT_MASTER_KEY";

/// Why the master key could not be loaded or could not unwrap.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// The key material is not 32 bytes of base64.
    #[error("{0}: the master key must be 32 bytes, base64-encoded")]
    Format(String),
    /// The key file is readable by others.
    #[error("{0}: the master key file must be readable by its owner only (chmod 600); it is {1:o}")]
    Permissions(String, u32),
    /// Reading or creating the file failed.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The sealed data was altered, sealed under another key, or for another purpose.
    #[error("could not unwrap {0}: wrong master key, or the stored data was altered")]
    Unwrap(String),
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
}

/// The master key. Its bytes never leave this type except sealed data.
pub struct MasterKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A master key from 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, MasterKeyError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| MasterKeyError::Format("master key".into()))?;
        Ok(MasterKey {
            key: LessSafeKey::new(unbound),
        })
    }

    /// A master key from base64 text; `source` names where the text came from, for errors.
    pub fn from_base64(text: &str, source: &str) -> Result<MasterKey, MasterKeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| MasterKeyError::Format(source.into()))?;
        if bytes.len() != 32 {
            return Err(MasterKeyError::Format(source.into()));
        }
        MasterKey::from_bytes(&bytes)
    }

    /// Loads the key from `WRIT_MASTER_KEY` if set, or else from `path`, creating that file
    /// (mode 0600) with a new random key if it does not exist. Returns whether it was created.
    pub fn load_or_create(
        env_value: Option<&str>,
        path: &Path,
    ) -> Result<(MasterKey, bool), MasterKeyError> {
        if let Some(text) = env_value {
            return Ok((MasterKey::from_base64(text, MASTER_KEY_ENV)?, false));
        }
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_owner_only(path, &shown)?;
                Ok((MasterKey::from_base64(&text, &shown)?, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok((MasterKey::create_file(path)?, true))
            }
            Err(e) => Err(MasterKeyError::Io(shown, e)),
        }
    }

    /// Makes a new random key and writes it to `path` (mode 0600), which must not exist.
    pub fn create_file(path: &Path) -> Result<MasterKey, MasterKeyError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| MasterKeyError::Random)?;
        write_owner_only(path, format!("{}\n", STANDARD.encode(bytes)).as_bytes())
            .map_err(|e| MasterKeyError::Io(path.display().to_string(), e))?;
        let key = MasterKey::from_bytes(&bytes);
        bytes.fill(0);
        key
    }

    /// Loads the key from `WRIT_MASTER_KEY` if set, or else from `path`, which must exist.
    pub fn load(env_value: Option<&str>, path: &Path) -> Result<MasterKey, MasterKeyError> {
        if let Some(text) = env_value {
            return MasterKey::from_base64(text, MASTER_KEY_ENV);
        }
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| MasterKeyError::Io(shown.clone(), e))?;
        check_owner_only(path, &shown)?;
        MasterKey::from_base64(&text, &shown)
    }

    /// Seals `plaintext` for `purpose` (bound as associated data, so sealed data cannot be
    /// moved to another purpose): a random 96-bit nonce, then ciphertext and tag.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<Vec<u8>, MasterKeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| MasterKeyError::Random)?;
        let mut out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut out,
            )
            .map_err(|_| MasterKeyError::Random)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&out);
        Ok(sealed)
    }

    /// Opens data sealed by [`MasterKey::seal`] for the same `purpose`.
    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, MasterKeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(MasterKeyError::Unwrap(purpose.into()));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| MasterKeyError::Unwrap(purpose.into()))?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut body)
            .map_err(|_| MasterKeyError::Unwrap(purpose.into()))?;
        Ok(plain.to_vec())
    }
}

/// Writes a new file readable by its owner only; refuses to overwrite.
pub fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn check_owner_only(path: &Path, shown: &str) -> Result<(), MasterKeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| MasterKeyError::Io(shown.into(), e))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(MasterKeyError::Permissions(shown.into(), mode));
        }
    }
    let _ = (path, shown);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_for_its_purpose_and_key() {
        let key = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let sealed = key.seal("ca-key:abc", b"secret key bytes").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            key.open("ca-key:abc", &sealed).unwrap(),
            b"secret key bytes"
        );
        assert!(key.open("ca-key:xyz", &sealed).is_err());
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open("ca-key:abc", &sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(key.open("ca-key:abc", &tampered).is_err());
        assert!(key.open("ca-key:abc", &sealed[..5]).is_err());
    }

    #[test]
    fn key_file_is_created_0600_and_loaded_again() {
        let dir = std::env::temp_dir().join(format!("writ-mk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master.key");
        let (first, created) = MasterKey::load_or_create(None, &path).unwrap();
        assert!(created);
        let sealed = first.seal("p", b"x").unwrap();
        let (again, created) = MasterKey::load_or_create(None, &path).unwrap();
        assert!(!created);
        assert_eq!(again.open("p", &sealed).unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = MasterKey::load_or_create(None, &path).unwrap_err();
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        assert!(MasterKey::load_or_create(Some("not base64!"), &path).is_err());
        assert!(MasterKey::load_or_create(Some("c2hvcnQ="), &path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
