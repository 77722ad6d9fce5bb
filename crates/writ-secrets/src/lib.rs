//! The core of writ's secrets, without I/O: envelope encryption ([`envelope`]) and the
//! Secrets Manager-shaped model of names, versions and staging labels ([`model`]).
//!
//! ```
//! use writ_secrets::envelope::{KeyWrapper, WrapError, open, seal};
//!
//! // The master key wraps data keys; here a toy one that only tags them (never do this).
//! struct Toy;
//! impl KeyWrapper for Toy {
//!     fn wrap(&self, context: &str, key: &[u8]) -> Result<Vec<u8>, WrapError> {
//!         Ok([context.as_bytes(), b"|", key].concat())
//!     }
//!     fn unwrap(&self, context: &str, wrapped: &[u8]) -> Result<Vec<u8>, WrapError> {
//!         wrapped.strip_prefix([context.as_bytes(), b"|"].concat().as_slice())
//!             .map(<[u8]>::to_vec).ok_or(WrapError::Mismatch)
//!     }
//! }
//! let sealed = seal(&Toy, "prod/orders-db", "v1", b"hunter2").unwrap();
//! assert_eq!(open(&Toy, "prod/orders-db", "v1", &sealed).unwrap(), b"hunter2");
//! assert!(open(&Toy, "prod/other", "v1", &sealed).is_err());
//! ```

pub mod envelope;
pub mod model;
