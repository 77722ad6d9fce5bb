//! Workload identity for writ: SPIFFE IDs, a trust domain's CA that signs X.509-SVIDs for
//! callers' certificate signing requests, and JWT-SVIDs minted and verified against a JWKS.
//!
//! This crate does no I/O beyond asking the operating system for random bytes (for keys and
//! serial numbers). Time is always passed in, so issuance is testable at any instant.
//!
//! ```
//! use time::{Duration, OffsetDateTime};
//! use writ_identity::{CertificateAuthority, SpiffeId, TrustDomain};
//!
//! let td = TrustDomain::new("example.org").unwrap();
//! let now = OffsetDateTime::now_utc();
//! let ca = CertificateAuthority::generate(&td, now, Duration::days(30)).unwrap();
//!
//! // The function makes its own key and sends only a CSR.
//! let key = rcgen::KeyPair::generate().unwrap();
//! let csr = rcgen::CertificateParams::default().serialize_request(&key).unwrap();
//!
//! let id = SpiffeId::for_function(&td, "orders").unwrap();
//! let svid = ca.sign_csr(csr.der(), &id, now, Duration::hours(1)).unwrap();
//! assert_eq!(svid.spiffe_id.as_str(), "spiffe://example.org/fn/orders");
//! ```

pub mod aws_iam;
pub mod jwt_svid;
pub mod oidc;
mod spiffe_id;
mod x509_svid;

pub use jwt_svid::{AudienceRule, DEFAULT_JWT_TTL, JwtAuthority, JwtError, JwtSvidClaims};
pub use spiffe_id::{SpiffeId, SpiffeIdError, TrustDomain};
pub use x509_svid::{CertificateAuthority, IssueError, LoadError, ServerNames, X509Svid, uri_sans};
