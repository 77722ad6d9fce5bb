//! Why a TLS connection failed, for people: the error's source chain walked to the rustls
//! error inside (which reqwest and hyper wrap, some of it inside `std::io::Error`), and
//! the certificate problem named (unknown issuer, a name the certificate is not for,
//! expired, ...), so a failed call to a gateway says more than "error sending request".

use std::error::Error;

/// The TLS failure in `e`'s source chain, in words, if there is one.
pub fn tls_cause(e: &(dyn Error + 'static)) -> Option<String> {
    let mut current: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(describe(tls));
        }
        current = next(err);
    }
    None
}

/// The error under `err`. An `std::io::Error` that carries another error is followed to
/// that error itself (its `source` skips it, going to the carried error's source), so
/// io errors nested in io errors, as hyper and tokio-rustls leave them, are walked too.
fn next<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
    match err
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => Some(inner as &(dyn Error + 'static)),
        None => err.source(),
    }
}

/// A rustls error, in words.
pub fn describe(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => {
            let why = match c {
                C::UnknownIssuer => "unknown issuer: it does not chain to a trusted CA (for a gateway whose certificate writ issued, the trust bundle; otherwise --gateway-ca)".to_string(),
                C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                    "name mismatch: {c}; the certificate does not name the host called (a gateway's names are those it was registered with)"
                ),
                C::Expired | C::ExpiredContext { .. } => format!("expired: {c}"),
                C::NotValidYet | C::NotValidYetContext { .. } => format!("not valid yet: {c}"),
                C::Revoked => "revoked".to_string(),
                C::BadSignature => "bad signature".to_string(),
                C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                    format!("not for TLS servers: {c}")
                }
                other => other.to_string(),
            };
            format!("TLS: the server's certificate was refused: {why}")
        }
        rustls::Error::AlertReceived(alert) => {
            format!("TLS: the server refused the handshake ({alert:?})")
        }
        other => format!("TLS: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(Box<dyn Error + Send + Sync>);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("error sending request")
        }
    }

    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn the_cause_is_found_through_wrappers() {
        // As hyper leaves it: an io::Error carrying an io::Error carrying rustls's.
        let inner = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        let e = Wrapper(Box::new(inner));
        let cause = tls_cause(&e).unwrap();
        assert!(cause.contains("unknown issuer"), "{cause}");
        let name = Wrapper(Box::new(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName,
        )));
        assert!(tls_cause(&name).unwrap().contains("name mismatch"));
        let plain = Wrapper(Box::new(std::io::Error::other("connection refused")));
        assert_eq!(tls_cause(&plain), None);
    }
}
