//! The gateway's TLS: rustls with the gateway's own certificate, asking every client for a
//! certificate but checking it after the handshake. The handshake proves the client holds
//! the certificate's key (its signature is verified here); whether the certificate is an
//! SVID of the trust domain, unexpired and unrevoked, is decided per request against the
//! current bundle (see [`crate::authn::verify_svid`]). So a certificate from another trust
//! domain, or an expired one, gets a 401 with a reason in the audit log rather than a
//! bare TLS alert, and a bundle rotation needs no new TLS configuration.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};

/// Accepts any client certificate at the handshake, after checking the client's signature
/// with it; the chain is checked per request.
#[derive(Debug)]
struct DeferredClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for DeferredClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The gateway's server configuration from its certificate chain and key (PEM text).
pub fn server_config(cert_pem: &str, key_pem: &str) -> Result<rustls::ServerConfig, String> {
    let chain: Vec<CertificateDer<'static>> = pem::parse_many(cert_pem)
        .map_err(|e| format!("tls.cert: {e}"))?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| CertificateDer::from(p.into_contents()))
        .collect();
    if chain.is_empty() {
        return Err("tls.cert: no CERTIFICATE block".into());
    }
    let key = writ_client::fetch::private_key(key_pem).map_err(|e| format!("tls.key: {e}"))?;
    let config = builder()?
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls: {e}"))?;
    Ok(finish(config))
}

/// The gateway's server configuration serving the certificate `resolver` gives each new
/// connection: for a certificate from writ, the current X.509-SVID
/// ([`writ_client::fetch::SvidSource`]), swapped on renewal.
pub fn server_config_resolving(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
) -> Result<rustls::ServerConfig, String> {
    Ok(finish(builder()?.with_cert_resolver(resolver)))
}

/// A server configuration up to its certificate: TLS 1.2 and 1.3, every client asked for
/// a certificate, checked per request.
fn builder()
-> Result<rustls::ConfigBuilder<rustls::ServerConfig, rustls::server::WantsServerCert>, String> {
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(DeferredClientCert {
        algorithms: provider.signature_verification_algorithms,
    });
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_client_cert_verifier(verifier))
}

fn finish(mut config: rustls::ServerConfig) -> rustls::ServerConfig {
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No resumption: every connection shows its certificate afresh.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config
}
