//! Envelope encryption. Each secret version gets its own random 256-bit data key; the value
//! is encrypted with AES-256-GCM under it, with a random 96-bit nonce and the secret's name
//! and version id bound as associated data, so a ciphertext moved to another secret or
//! version does not decrypt. The data key is stored wrapped by the master key (through
//! [`KeyWrapper`], bound to the same name and version); rotating the master key re-wraps
//! data keys ([`rewrap`]) without touching any ciphertext.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Wraps and unwraps data keys: the master key's part. `context` names what the key is for
/// and must be bound to the wrapped bytes (as associated data, say).
pub trait KeyWrapper {
    /// Wraps `key` for `context`.
    fn wrap(&self, context: &str, key: &[u8]) -> Result<Vec<u8>, WrapError>;
    /// Unwraps a key wrapped for `context`; fails for any other context or key.
    fn unwrap(&self, context: &str, wrapped: &[u8]) -> Result<Vec<u8>, WrapError>;
}

/// Why a [`KeyWrapper`] could not wrap or unwrap a key. Messages carry no key material.
#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    /// The wrapped bytes do not open: altered, wrapped by another key, or for another
    /// context.
    #[error(
        "the wrapped key does not open: altered, wrapped by another key, or for another context"
    )]
    Mismatch,
    /// The wrapper itself failed (its random source, the service that holds its key).
    #[error("the key wrapper failed: {0}")]
    Failed(String),
}

/// One sealed secret version, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The data key, wrapped by the master key.
    pub wrapped_key: Vec<u8>,
    /// The nonce, then the ciphertext and its tag.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// Why a value could not be sealed or opened. Messages carry no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The master key could not wrap or unwrap the data key.
    #[error("the data key could not be {0}")]
    Key(&'static str),
    /// The ciphertext was altered, or belongs to another secret or version.
    #[error(
        "the secret value does not decrypt: it was altered, or belongs to another secret or version"
    )]
    Decrypt,
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
}

/// What the data key and the ciphertext are bound to.
fn context(name: &str, version_id: &str) -> String {
    format!("writ-secret-v1\0{name}\0{version_id}")
}

/// Encrypts `value` for `name` at `version_id` under a fresh data key.
pub fn seal(
    wrapper: &dyn KeyWrapper,
    name: &str,
    version_id: &str,
    value: &[u8],
) -> Result<Sealed, EnvelopeError> {
    let rng = SystemRandom::new();
    let mut key = [0u8; 32];
    rng.fill(&mut key).map_err(|_| EnvelopeError::Random)?;
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| EnvelopeError::Random)?;
    let ctx = context(name, version_id);
    let aead = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &key).map_err(|_| EnvelopeError::Key("made"))?,
    );
    let mut body = value.to_vec();
    aead.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(ctx.as_bytes()),
        &mut body,
    )
    .map_err(|_| EnvelopeError::Key("used"))?;
    let wrapped_key = wrapper
        .wrap(&ctx, &key)
        .map_err(|_| EnvelopeError::Key("wrapped"))?;
    key.fill(0);
    let mut ciphertext = nonce.to_vec();
    ciphertext.extend_from_slice(&body);
    Ok(Sealed {
        wrapped_key,
        ciphertext,
    })
}

/// Decrypts a version sealed by [`seal`] for the same `name` and `version_id`.
pub fn open(
    wrapper: &dyn KeyWrapper,
    name: &str,
    version_id: &str,
    sealed: &Sealed,
) -> Result<Vec<u8>, EnvelopeError> {
    let ctx = context(name, version_id);
    let mut key = wrapper
        .unwrap(&ctx, &sealed.wrapped_key)
        .map_err(|_| EnvelopeError::Key("unwrapped"))?;
    if sealed.ciphertext.len() < NONCE_LEN {
        return Err(EnvelopeError::Decrypt);
    }
    let (nonce, body) = sealed.ciphertext.split_at(NONCE_LEN);
    let aead = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &key).map_err(|_| EnvelopeError::Key("unwrapped"))?,
    );
    key.fill(0);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| EnvelopeError::Decrypt)?;
    let mut body = body.to_vec();
    let plain = aead
        .open_in_place(nonce, Aad::from(ctx.as_bytes()), &mut body)
        .map_err(|_| EnvelopeError::Decrypt)?;
    Ok(plain.to_vec())
}

/// Re-wraps a version's data key from the `old` master key to the `new` one. The
/// ciphertext is untouched.
pub fn rewrap(
    old: &dyn KeyWrapper,
    new: &dyn KeyWrapper,
    name: &str,
    version_id: &str,
    wrapped_key: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let ctx = context(name, version_id);
    let mut key = old
        .unwrap(&ctx, wrapped_key)
        .map_err(|_| EnvelopeError::Key("unwrapped"))?;
    let rewrapped = new
        .wrap(&ctx, &key)
        .map_err(|_| EnvelopeError::Key("wrapped"));
    key.fill(0);
    rewrapped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real AES-256-GCM wrapper, as the server's master key is.
    struct Kek(LessSafeKey);

    impl Kek {
        fn new(byte: u8) -> Kek {
            Kek(LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, &[byte; 32]).unwrap(),
            ))
        }
    }

    impl KeyWrapper for Kek {
        fn wrap(&self, context: &str, key: &[u8]) -> Result<Vec<u8>, WrapError> {
            let mut nonce = [0u8; NONCE_LEN];
            SystemRandom::new().fill(&mut nonce).unwrap();
            let mut body = key.to_vec();
            self.0
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(context.as_bytes()),
                    &mut body,
                )
                .map_err(|_| WrapError::Failed("seal".into()))?;
            Ok([nonce.as_slice(), &body].concat())
        }

        fn unwrap(&self, context: &str, wrapped: &[u8]) -> Result<Vec<u8>, WrapError> {
            let (nonce, body) = wrapped.split_at(NONCE_LEN.min(wrapped.len()));
            let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| WrapError::Mismatch)?;
            let mut body = body.to_vec();
            Ok(self
                .0
                .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
                .map_err(|_| WrapError::Mismatch)?
                .to_vec())
        }
    }

    #[test]
    fn a_sealed_value_opens_only_as_itself() {
        let kek = Kek::new(1);
        let value = b"postgres://app:s3cr3t@db/orders";
        let sealed = seal(&kek, "prod/orders-db", "v1", value).unwrap();
        assert!(
            !sealed.ciphertext.windows(6).any(|w| w == b"s3cr3t"),
            "the ciphertext does not hold the value"
        );
        assert_eq!(open(&kek, "prod/orders-db", "v1", &sealed).unwrap(), value);
        // Moved to another secret or version: refused.
        assert!(open(&kek, "prod/payments-db", "v1", &sealed).is_err());
        assert!(open(&kek, "prod/orders-db", "v2", &sealed).is_err());
        // Altered anywhere: refused.
        for i in [0, 12, sealed.ciphertext.len() - 1] {
            let mut bad = sealed.clone();
            bad.ciphertext[i] ^= 1;
            assert_eq!(
                open(&kek, "prod/orders-db", "v1", &bad),
                Err(EnvelopeError::Decrypt)
            );
        }
        let mut short = sealed.clone();
        short.ciphertext.truncate(5);
        assert!(open(&kek, "prod/orders-db", "v1", &short).is_err());
        // Another master key cannot open it.
        assert!(open(&Kek::new(2), "prod/orders-db", "v1", &sealed).is_err());
        // Each version has its own data key and nonce.
        let again = seal(&kek, "prod/orders-db", "v1", value).unwrap();
        assert_ne!(again.ciphertext, sealed.ciphertext);
        assert!(!format!("{sealed:?}").contains("s3cr3t"));
    }

    #[test]
    fn rewrapping_under_a_new_master_key_keeps_every_version_readable() {
        let (old, new) = (Kek::new(1), Kek::new(2));
        let versions: Vec<(String, Sealed)> = (0..5)
            .map(|i| {
                let id = format!("v{i}");
                let sealed = seal(&old, "app/key", &id, format!("value {i}").as_bytes()).unwrap();
                (id, sealed)
            })
            .collect();
        for (i, (id, sealed)) in versions.iter().enumerate() {
            let rewrapped = Sealed {
                wrapped_key: rewrap(&old, &new, "app/key", id, &sealed.wrapped_key).unwrap(),
                ciphertext: sealed.ciphertext.clone(),
            };
            assert_eq!(
                open(&new, "app/key", id, &rewrapped).unwrap(),
                format!("value {i}").as_bytes()
            );
            assert!(open(&old, "app/key", id, &rewrapped).is_err());
        }
        // Re-wrapping for the wrong version fails rather than mislabelling a key.
        assert!(rewrap(&old, &new, "app/key", "v9", &versions[0].1.wrapped_key).is_err());
    }
}
