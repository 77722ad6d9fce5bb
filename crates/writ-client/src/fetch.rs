//! Fetching secrets from `writ server` with the function's X.509-SVID, over mTLS.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::DigitallySignedStruct;
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer, ServerName, UnixTime,
};
use rustls::sign::CertifiedKey;
use writ_api::endpoints::GetSecretValue;
use writ_api::secrets::GetSecretRequest;

use crate::api::{ApiCallError, ApiClient, Credential};
use crate::secrets::{Fetch, FetchError, SecretValue};

/// The current X.509-SVID and key: a function's, presented as the TLS client
/// certificate, or a gateway's, served as its TLS server certificate. Replace it with [`SvidSource::update`] after a renewal; new connections use the new one.
#[derive(Debug)]
pub struct SvidSource {
    current: RwLock<Arc<CertifiedKey>>,
}

impl SvidSource {
    /// An SVID from its certificate chain and private key (PKCS#8 or SEC1), in PEM.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Arc<SvidSource>, String> {
        Ok(Arc::new(SvidSource {
            current: RwLock::new(certified_key(cert_pem, key_pem)?),
        }))
    }

    /// Replaces the SVID.
    pub fn update(&self, cert_pem: &str, key_pem: &str) -> Result<(), String> {
        let key = certified_key(cert_pem, key_pem)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = key;
        Ok(())
    }
}

impl ResolvesClientCert for SvidSource {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A gateway serves the SVID writ issued it as its TLS server certificate: each new
/// connection gets the current one, so a renewal takes effect without a restart.
impl rustls::server::ResolvesServerCert for SvidSource {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The private key in PEM text: PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
pub fn private_key(key_pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    pem::parse_many(key_pem)
        .map_err(|_| "not PEM".to_string())?
        .into_iter()
        .find_map(|p| match p.tag() {
            "PRIVATE KEY" => Some(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                p.into_contents(),
            ))),
            "EC PRIVATE KEY" => Some(PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(
                p.into_contents(),
            ))),
            _ => None,
        })
        .ok_or_else(|| "no PRIVATE KEY or EC PRIVATE KEY block".to_string())
}

/// The trust bundle a function verifies writ's TLS servers with: the union of the CAs the
/// server publishes (old and new through a CA rotation's overlap window), replaced with
/// [`TrustBundle::update`] as the server publishes a new one. It verifies each new TLS
/// connection against the bundle current at that moment, so a client built once with
/// [`mtls_client_trusting`] goes on working when the server's certificate comes to be
/// signed by a CA published after the client was built.
#[derive(Debug)]
pub struct TrustBundle {
    current: RwLock<(String, Arc<rustls::client::WebPkiServerVerifier>)>,
}

fn verifier(bundle_pem: &str) -> Result<Arc<rustls::client::WebPkiServerVerifier>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots(bundle_pem)?),
        provider,
    )
    .build()
    .map_err(|e| format!("trust bundle: {e}"))
}

impl TrustBundle {
    /// The CAs in `bundle_pem` (concatenated PEM certificates); an error when it holds
    /// none or one cannot be used.
    pub fn from_pem(bundle_pem: &str) -> Result<Arc<TrustBundle>, String> {
        Ok(Arc::new(TrustBundle {
            current: RwLock::new((bundle_pem.to_string(), verifier(bundle_pem)?)),
        }))
    }

    /// The current bundle (PEM).
    pub fn pem(&self) -> String {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .clone()
    }

    /// Replaces the bundle with `bundle_pem`, for the connections made from now on.
    /// `Ok(true)` when it changed; an error (and the current bundle kept) when
    /// `bundle_pem` holds no usable CA.
    pub fn update(&self, bundle_pem: &str) -> Result<bool, String> {
        if self.pem() == bundle_pem {
            return Ok(false);
        }
        let verifier = verifier(bundle_pem)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            (bundle_pem.to_string(), verifier);
        Ok(true)
    }

    fn verifier(&self) -> Arc<rustls::client::WebPkiServerVerifier> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
            .clone()
    }
}

/// Verification is WebPKI's (chain to a CA of the bundle, validity, the server's name),
/// against the bundle current when the connection is made.
impl ServerCertVerifier for TrustBundle {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier().verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.verifier().supported_verify_schemes()
    }
}

/// The CA certificates in a PEM trust bundle, as rustls roots; an error when there are
/// none.
pub fn roots(bundle_pem: &str) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for block in pem::parse_many(bundle_pem).map_err(|e| format!("trust bundle: {e}"))? {
        if block.tag() == "CERTIFICATE" {
            roots
                .add(CertificateDer::from(block.into_contents()))
                .map_err(|e| format!("trust bundle: {e}"))?;
        }
    }
    if roots.is_empty() {
        return Err("trust bundle: no certificates".into());
    }
    Ok(roots)
}

fn client_config(
    bundle_pem: &str,
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots(bundle_pem)?))
}

fn https_client(config: rustls::ClientConfig) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// An HTTPS client that trusts the CAs in `bundle_pem` and presents no certificate: for
/// attestation, before there is an SVID. No redirects; 10-second timeout.
pub fn bundle_client(bundle_pem: &str) -> Result<reqwest::Client, String> {
    https_client(client_config(bundle_pem)?.with_no_client_auth())
}

fn certified_key(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, String> {
    let certs: Vec<CertificateDer<'static>> = pem::parse_many(cert_pem)
        .map_err(|e| format!("SVID certificate: {e}"))?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| CertificateDer::from(p.into_contents()))
        .collect();
    if certs.is_empty() {
        return Err("SVID certificate: no CERTIFICATE block".into());
    }
    let key = private_key(key_pem).map_err(|e| format!("SVID key: {e}"))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|_| "SVID key: not a key type TLS can sign with".to_string())?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

/// An HTTPS client that trusts the CAs in `bundle_pem` (the trust bundle) and presents
/// `svid` as its client certificate: for calling the server, or other functions through
/// the gateway. No redirects; 10-second timeout.
pub fn mtls_client(bundle_pem: &str, svid: Arc<SvidSource>) -> Result<reqwest::Client, String> {
    https_client(client_config(bundle_pem)?.with_client_cert_resolver(svid))
}

/// An HTTPS client that verifies servers against `trust` as it is when each connection is
/// made (so it follows the trust bundle through a CA rotation) and presents `svid` as its
/// client certificate. No redirects; 10-second timeout.
pub fn mtls_client_trusting(
    trust: Arc<TrustBundle>,
    svid: Arc<SvidSource>,
) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(trust)
        .with_client_cert_resolver(svid);
    https_client(config)
}

/// Fetches `AWSCURRENT` values from `writ server` (`POST /v1/secrets/get`) with the
/// function's SVID.
pub struct HttpFetcher {
    api: ApiClient,
}

impl HttpFetcher {
    /// A fetcher for the server at `server` (`https://host:port`) that trusts the CAs in
    /// `bundle_pem` (the trust bundle) and presents `svid`.
    pub fn new(
        server: &str,
        bundle_pem: &str,
        svid: Arc<SvidSource>,
    ) -> Result<HttpFetcher, String> {
        let client = mtls_client(bundle_pem, svid)?;
        Ok(HttpFetcher::with(ApiClient::new(
            server,
            client,
            Credential::Tls,
        )))
    }

    /// A fetcher for the server at `server` (`https://host:port`) that verifies it against
    /// `trust` as it is at each new connection (following the trust bundle through a CA
    /// rotation) and presents `svid`.
    pub fn trusting(
        server: &str,
        trust: Arc<TrustBundle>,
        svid: Arc<SvidSource>,
    ) -> Result<HttpFetcher, String> {
        let client = mtls_client_trusting(trust, svid)?;
        Ok(HttpFetcher::with(ApiClient::new(
            server,
            client,
            Credential::Tls,
        )))
    }

    /// A fetcher that reads with `api`, and its credential.
    pub fn with(api: ApiClient) -> HttpFetcher {
        HttpFetcher { api }
    }
}

/// Reads `AWSCURRENT` of `name` with `api`: the value, or why not, as a cache acts on it.
pub async fn fetch_current(api: &ApiClient, name: &str) -> Result<SecretValue, FetchError> {
    let answer = api
        .send::<GetSecretValue>(&GetSecretRequest {
            name: name.to_string(),
            ..GetSecretRequest::default()
        })
        .await
        .map_err(FetchError::from)?;
    match (answer.secret_string, answer.secret_binary) {
        (Some(s), _) => Ok(SecretValue::text(name, &answer.version_id, &s)),
        (None, Some(b)) => STANDARD
            .decode(b)
            .map(|bytes| SecretValue::binary(name, &answer.version_id, bytes))
            .map_err(|_| FetchError::Unreachable("the server sent malformed base64".into())),
        (None, None) => Err(FetchError::Unreachable(
            "the server's answer holds no value".into(),
        )),
    }
}

/// A failed call as a secrets cache acts on it: a refusal (4xx) drops the cached value;
/// anything else (no answer, a 5xx, an answer not in the API's shape) keeps serving it.
impl From<ApiCallError> for FetchError {
    fn from(e: ApiCallError) -> FetchError {
        match e {
            ApiCallError::Refused {
                status, message, ..
            } if (400..500).contains(&status) => FetchError::Refused { status, message },
            ApiCallError::Status {
                status, json: true, ..
            } if (400..500).contains(&status) => FetchError::Refused {
                status,
                message: "no message".into(),
            },
            ApiCallError::Refused { status, .. } | ApiCallError::Status { status, .. } => {
                FetchError::Unreachable(format!("HTTP {}", crate::api::status_text(status)))
            }
            other => FetchError::Unreachable(other.detail()),
        }
    }
}

impl Fetch for HttpFetcher {
    async fn fetch(&self, name: &str) -> Result<SecretValue, FetchError> {
        fetch_current(&self.api, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    /// A CA (its PEM certificate) and what signs with it.
    fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), Issuer::new(params, key))
    }

    /// A TLS server certificate for `localhost` that `issuer` signed.
    fn server_cert(issuer: &Issuer<'_, KeyPair>) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.signed_by(&key, issuer).unwrap().der().clone()
    }

    #[test]
    fn the_trust_bundle_follows_a_ca_rotation() {
        let (old_pem, old) = ca("old CA");
        let (new_pem, new) = ca("new CA");
        let (by_old, by_new) = (server_cert(&old), server_cert(&new));
        let name = ServerName::try_from("localhost").unwrap();
        let verify = |trust: &TrustBundle, cert: &CertificateDer<'_>| {
            trust
                .verify_server_cert(cert, &[], &name, &[], UnixTime::now())
                .is_ok()
        };

        let trust = TrustBundle::from_pem(&old_pem).unwrap();
        assert!(verify(&trust, &by_old));
        assert!(!verify(&trust, &by_new), "a CA not yet published");

        // The overlap window: both CAs published.
        let both = format!("{old_pem}{new_pem}");
        assert_eq!(trust.update(&both), Ok(true));
        assert_eq!(trust.update(&both), Ok(false), "unchanged");
        assert_eq!(trust.pem(), both);
        assert!(verify(&trust, &by_old));
        assert!(verify(&trust, &by_new));

        // Nothing usable: the current bundle stays.
        assert!(trust.update("").is_err());
        assert!(trust.update("not PEM").is_err());
        assert_eq!(trust.pem(), both);
        assert!(verify(&trust, &by_new));

        // The old CA retired.
        assert_eq!(trust.update(&new_pem), Ok(true));
        assert!(!verify(&trust, &by_old));
        assert!(verify(&trust, &by_new));
    }
}
