//! Fetching secrets from `writ server` with the function's X.509-SVID, over mTLS.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use rustls::sign::CertifiedKey;
use serde_json::{Value, json};

use crate::secrets::{Fetch, FetchError, SecretValue};

/// The function's current X.509-SVID and key, presented as the TLS client certificate.
/// Replace it with [`SvidSource::update`] after a renewal; new connections use the new one.
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

/// Fetches `AWSCURRENT` values from `writ server` (`POST /v1/secrets/get`) with the
/// function's SVID.
pub struct HttpFetcher {
    client: reqwest::Client,
    url: String,
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
        Ok(HttpFetcher {
            client,
            url: format!("{}/v1/secrets/get", server.trim_end_matches('/')),
        })
    }
}

impl Fetch for HttpFetcher {
    async fn fetch(&self, name: &str) -> Result<SecretValue, FetchError> {
        let response = self
            .client
            .post(&self.url)
            .json(&json!({"name": name}))
            .send()
            .await
            .map_err(|e| FetchError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| FetchError::Unreachable(format!("HTTP {status}: {}", e.without_url())))?;
        if status.is_server_error() {
            return Err(FetchError::Unreachable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(FetchError::Refused {
                status: status.as_u16(),
                message: body
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .to_string(),
            });
        }
        let version = body["versionId"].as_str().unwrap_or_default();
        match (body["secretString"].as_str(), body["secretBinary"].as_str()) {
            (Some(s), _) => Ok(SecretValue::text(name, version, s)),
            (None, Some(b)) => STANDARD
                .decode(b)
                .map(|bytes| SecretValue::binary(name, version, bytes))
                .map_err(|_| FetchError::Unreachable("the server sent malformed base64".into())),
            _ => Err(FetchError::Unreachable(
                "the server's answer holds no value".into(),
            )),
        }
    }
}
