//! A certificate authority for a trust domain, and X.509-SVIDs signed for callers' CSRs.
//!
//! The caller keeps its private key: it sends a certificate signing request, and the CA
//! signs a certificate that follows the X.509-SVID rules whatever the request asked for:
//! exactly one URI SAN (the SPIFFE ID the caller proved), not a CA, `digitalSignature`, for
//! client and server authentication, valid for a bounded time. A request that asks to be a CA
//! (CA:true, keyCertSign, cRLSign), names anything but the caller's SPIFFE ID, or carries an
//! extension writ does not know is refused, not quietly trimmed, so a misbehaving client is
//! noticed; other requested key usages are replaced by the SVID's own. Only the CSR's public
//! key reaches the certificate, with its algorithm read from the key itself.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PublicKeyData, SanType,
    SerialNumber, SubjectPublicKeyInfo,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::FromDer;

use crate::spiffe_id::{SpiffeId, TrustDomain};

/// Certificates start this long before they are issued, so a peer whose clock is slightly
/// behind does not reject them.
const BACKDATE: Duration = Duration::seconds(30);

/// The DNS names and IP addresses a server's X.509-SVID carries besides its SPIFFE ID: a
/// gateway's, fixed when it was registered. Empty for a function's SVID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerNames {
    /// DNS names (lowercase, no wildcard).
    pub dns: Vec<String>,
    /// IP addresses.
    pub ips: Vec<std::net::IpAddr>,
}

/// Why a CSR was refused or a certificate could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// The bytes are not a PKCS#10 certificate signing request.
    #[error("the CSR is not a valid PKCS#10 request (DER or PEM)")]
    MalformedCsr,
    /// The request's signature does not match its public key.
    #[error("the CSR's signature does not verify against its own public key")]
    BadCsrSignature,
    /// The request's key or signature algorithm is not one writ accepts.
    #[error("the CSR's key must be ECDSA P-256, ECDSA P-384 or Ed25519")]
    UnsupportedAlgorithm,
    /// The request carries an extension writ does not understand.
    #[error(
        "the CSR requests an extension writ does not support; request only subject alternative names, key usages or basic constraints (CA:false)"
    )]
    UnsupportedExtension,
    /// The request asks to be a certificate authority.
    #[error(
        "the CSR asks to be a CA (CA:true, keyCertSign or cRLSign); an X.509-SVID is never a CA"
    )]
    AsksForCa,
    /// The request names something other than the caller's SPIFFE ID.
    #[error(
        "the CSR asks for subject alternative names {0:?}; an X.509-SVID carries exactly one URI SAN, the caller's SPIFFE ID, and only a gateway's also carries DNS names and IP addresses: those it was registered with"
    )]
    ForeignNames(Vec<String>),
    /// The SPIFFE ID is not in this CA's trust domain.
    #[error("this CA signs only for its own trust domain, not for {0}")]
    ForeignTrustDomain(String),
    /// The SPIFFE ID has no path: a trust domain's own ID names no workload.
    #[error("an X.509-SVID's SPIFFE ID needs a path, such as /fn/NAME")]
    NoPath,
    /// The requested lifetime is zero, negative, or past the end of representable time.
    #[error("the requested lifetime must be positive and end before the year 10000")]
    BadLifetime,
    /// The CA itself is not valid at this time.
    #[error("the CA certificate is not valid at the time of issue")]
    CaNotValid,
    /// The cryptographic library failed; the message carries no secret.
    #[error("could not sign the certificate: {0}")]
    Signing(String),
}

/// Why a stored CA could not be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The certificate is not one PEM `CERTIFICATE` block of valid X.509.
    #[error("the CA certificate is not a valid PEM X.509 certificate")]
    Certificate,
    /// The certificate is not a CA.
    #[error("the certificate is not a CA certificate")]
    NotCa,
    /// The certificate does not carry the trust domain's SPIFFE ID.
    #[error("the CA certificate is not for this trust domain")]
    ForeignTrustDomain,
    /// The key is not a PKCS#8 key writ can sign with.
    #[error("the CA key is not a valid PKCS#8 signing key")]
    Key,
    /// The key is not the one the certificate certifies.
    #[error("the CA key does not belong to the CA certificate")]
    KeyMismatch,
}

/// An X.509-SVID: a signed certificate for one SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509Svid {
    /// The identity the certificate carries.
    pub spiffe_id: SpiffeId,
    /// The certificate, DER-encoded.
    pub cert_der: Vec<u8>,
    /// The certificate in PEM.
    pub cert_pem: String,
    /// The serial number, as revocation names it.
    pub serial: Vec<u8>,
    /// When it expires (whole seconds, as in the certificate).
    pub not_after: OffsetDateTime,
}

/// A trust domain's signing authority: a self-signed ECDSA P-256 CA certificate and its key.
pub struct CertificateAuthority {
    trust_domain: TrustDomain,
    cert_der: Vec<u8>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CertificateAuthority")
            .field("trust_domain", &self.trust_domain)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn random_serial(rng: &SystemRandom) -> Result<Vec<u8>, IssueError> {
    let mut serial = [0u8; 16];
    rng.fill(&mut serial)
        .map_err(|_| IssueError::Signing("the system random source failed".into()))?;
    // A positive INTEGER: clear the top bit, and make sure it is not zero.
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    Ok(serial.to_vec())
}

fn signing(e: rcgen::Error) -> IssueError {
    IssueError::Signing(e.to_string())
}

/// Certificates hold whole seconds; so do the times writ reports.
fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// `now + lifetime`, refusing non-positive lifetimes and overflow.
fn end_of(now: OffsetDateTime, lifetime: Duration) -> Result<OffsetDateTime, IssueError> {
    if lifetime <= Duration::ZERO {
        return Err(IssueError::BadLifetime);
    }
    now.checked_add(lifetime)
        .filter(|t| t.year() < 10_000)
        .map(whole_seconds)
        .ok_or(IssueError::BadLifetime)
}

impl CertificateAuthority {
    /// Creates a CA for `trust_domain`, valid from `now` for `lifetime`. Its certificate
    /// carries the trust domain's SPIFFE ID, may sign only end-entity certificates
    /// (path length 0), and is the trust bundle peers verify SVIDs against.
    pub fn generate(
        trust_domain: &TrustDomain,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<CertificateAuthority, IssueError> {
        let not_after = end_of(now, lifetime)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(signing)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "writ");
        dn.push(DnType::CommonName, format!("writ CA {trust_domain}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        // X509-SVID: digitalSignature is for leaves only.
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names = vec![SanType::URI(
            trust_domain.id().as_str().try_into().map_err(signing)?,
        )];
        params.not_before = whole_seconds(now - BACKDATE);
        params.not_after = not_after;
        params.serial_number = Some(SerialNumber::from_slice(&random_serial(
            &SystemRandom::new(),
        )?));
        let cert = params.self_signed(&key).map_err(signing)?;
        Ok(CertificateAuthority {
            trust_domain: trust_domain.clone(),
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            not_before: params.not_before,
            not_after: params.not_after,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA saved with [`CertificateAuthority::cert_pem`] and
    /// [`CertificateAuthority::key_pkcs8_der`]. The certificate must be a CA of
    /// `trust_domain` and the key must be the one it certifies.
    pub fn from_parts(
        trust_domain: &TrustDomain,
        cert_pem: &str,
        key_pkcs8_der: &[u8],
    ) -> Result<CertificateAuthority, LoadError> {
        let block = pem::parse(cert_pem).map_err(|_| LoadError::Certificate)?;
        if block.tag() != "CERTIFICATE" {
            return Err(LoadError::Certificate);
        }
        let der = block.into_contents();
        let (_, cert) =
            x509_parser::parse_x509_certificate(&der).map_err(|_| LoadError::Certificate)?;
        if !cert.is_ca() {
            return Err(LoadError::NotCa);
        }
        let td_uri = trust_domain.id();
        let names_td = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .is_some_and(|san| {
                san.value.general_names.iter().any(|n| {
                    matches!(n, x509_parser::extensions::GeneralName::URI(u) if *u == td_uri.as_str())
                })
            });
        if !names_td {
            return Err(LoadError::ForeignTrustDomain);
        }
        let key = KeyPair::try_from(key_pkcs8_der).map_err(|_| LoadError::Key)?;
        if key.subject_public_key_info() != cert.tbs_certificate.subject_pki.raw {
            return Err(LoadError::KeyMismatch);
        }
        let not_before = cert.validity().not_before.to_datetime();
        let not_after = cert.validity().not_after.to_datetime();
        let issuer = Issuer::from_ca_cert_der(&der.as_slice().into(), key)
            .map_err(|_| LoadError::Certificate)?;
        Ok(CertificateAuthority {
            trust_domain: trust_domain.clone(),
            cert_pem: pem::encode(&pem::Pem::new("CERTIFICATE", der.clone())),
            cert_der: der,
            issuer,
            not_before,
            not_after,
        })
    }

    /// The CA's private key as PKCS#8 DER, to be wrapped before it is stored. Handle with
    /// care: this is the key that signs every SVID of the trust domain.
    pub fn key_pkcs8_der(&self) -> Vec<u8> {
        self.issuer.key().serialize_der()
    }

    /// Issues a TLS server certificate for writ's own endpoints: the given DNS names and IP
    /// addresses, plus `spiffe_id` as a URI SAN, for server and client authentication (the
    /// server is a client when it calls rotation hooks). The key is
    /// made here and returned as PKCS#8 DER beside the certificate PEM.
    pub fn issue_server_certificate(
        &self,
        spiffe_id: &SpiffeId,
        dns_names: &[String],
        ip_addresses: &[std::net::IpAddr],
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<(String, Vec<u8>), IssueError> {
        let end = end_of(now, lifetime)?;
        if spiffe_id.trust_domain() != self.trust_domain.as_str() {
            return Err(IssueError::ForeignTrustDomain(
                spiffe_id.trust_domain().into(),
            ));
        }
        if now < self.not_before || now >= self.not_after {
            return Err(IssueError::CaNotValid);
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(signing)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "writ");
        dn.push(DnType::CommonName, "writ server");
        params.distinguished_name = dn;
        let mut sans = vec![SanType::URI(
            spiffe_id.as_str().try_into().map_err(signing)?,
        )];
        for name in dns_names {
            sans.push(SanType::DnsName(name.as_str().try_into().map_err(signing)?));
        }
        sans.extend(ip_addresses.iter().map(|ip| SanType::IpAddress(*ip)));
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Client auth too: the server calls rotation hooks with this identity.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = whole_seconds(now - BACKDATE);
        params.not_after = end.min(self.not_after);
        params.serial_number = Some(SerialNumber::from_slice(&random_serial(
            &SystemRandom::new(),
        )?));
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(signing)?;
        Ok((cert.pem(), key.serialize_der()))
    }

    /// The trust domain this CA signs for.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The CA certificate, DER-encoded.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate in PEM: the X.509 trust bundle.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// When the CA certificate expires.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Signs an X.509-SVID for `spiffe_id` over the public key of `csr` (DER, or PEM text).
    /// The caller must already have proved it is `spiffe_id`; the CSR only carries the key.
    /// The lifetime is cut to the CA's own expiry.
    pub fn sign_csr(
        &self,
        csr: &[u8],
        spiffe_id: &SpiffeId,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<X509Svid, IssueError> {
        self.sign_csr_for(csr, spiffe_id, &ServerNames::default(), now, lifetime)
    }

    /// Signs an X.509-SVID as [`CertificateAuthority::sign_csr`] does, that also carries
    /// `names` (the DNS names and IP addresses a gateway was registered for) as subject
    /// alternative names, so TLS clients can check it as a server certificate. The CSR may
    /// ask for the SPIFFE ID and any of `names`, nothing else; the certificate carries
    /// the SPIFFE ID and all of `names`.
    pub fn sign_csr_for(
        &self,
        csr: &[u8],
        spiffe_id: &SpiffeId,
        names: &ServerNames,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<X509Svid, IssueError> {
        let end = end_of(now, lifetime)?;
        if spiffe_id.trust_domain() != self.trust_domain.as_str() {
            return Err(IssueError::ForeignTrustDomain(
                spiffe_id.trust_domain().into(),
            ));
        }
        if spiffe_id.path().is_empty() {
            return Err(IssueError::NoPath);
        }
        if now < self.not_before || now >= self.not_after {
            return Err(IssueError::CaNotValid);
        }
        let (request, public_key) = parse_csr(csr)?;
        let ca_usages = [KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        if matches!(request.params.is_ca, IsCa::Ca(_))
            || request
                .params
                .key_usages
                .iter()
                .any(|u| ca_usages.contains(u))
        {
            return Err(IssueError::AsksForCa);
        }
        let foreign: Vec<String> = request
            .params
            .subject_alt_names
            .iter()
            .filter(|san| match san {
                SanType::URI(uri) => uri.as_str() != spiffe_id.as_str(),
                SanType::DnsName(dns) => !names
                    .dns
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(dns.as_str())),
                SanType::IpAddress(ip) => !names.ips.contains(ip),
                _ => true,
            })
            .map(describe_san)
            .collect();
        if !foreign.is_empty() {
            return Err(IssueError::ForeignNames(foreign));
        }

        let serial = random_serial(&SystemRandom::new())?;
        let not_after = end.min(self.not_after);
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "writ");
        params.distinguished_name = dn;
        params.subject_alt_names = vec![SanType::URI(
            spiffe_id.as_str().try_into().map_err(signing)?,
        )];
        for dns in &names.dns {
            params
                .subject_alt_names
                .push(SanType::DnsName(dns.as_str().try_into().map_err(signing)?));
        }
        for ip in &names.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = whole_seconds(now - BACKDATE);
        params.not_after = not_after;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&public_key, &self.issuer)
            .map_err(signing)?;
        Ok(X509Svid {
            spiffe_id: spiffe_id.clone(),
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            serial,
            not_after,
        })
    }
}

/// Parses a CSR (DER or PEM) and checks its signature; returns what it requests and its
/// public key, whose algorithm is read from the key itself, not from the signature.
fn parse_csr(
    csr: &[u8],
) -> Result<(CertificateSigningRequestParams, SubjectPublicKeyInfo), IssueError> {
    let trimmed = csr.trim_ascii_start();
    let der = if trimmed.starts_with(b"-----BEGIN") {
        let block = pem::parse(trimmed).map_err(|_| IssueError::MalformedCsr)?;
        if !matches!(
            block.tag(),
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST"
        ) {
            return Err(IssueError::MalformedCsr);
        }
        block.into_contents()
    } else {
        csr.to_vec()
    };
    let request =
        CertificateSigningRequestParams::from_der(&der.as_slice().into()).map_err(|e| match e {
            rcgen::Error::InvalidCertificationRequestSignature => IssueError::BadCsrSignature,
            rcgen::Error::UnsupportedExtension => IssueError::UnsupportedExtension,
            rcgen::Error::UnsupportedSignatureAlgorithm => IssueError::UnsupportedAlgorithm,
            _ => IssueError::MalformedCsr,
        })?;
    let (_, parsed) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
        .map_err(|_| IssueError::MalformedCsr)?;
    let spki = SubjectPublicKeyInfo::from_der(parsed.certification_request_info.subject_pki.raw)
        .map_err(|_| IssueError::UnsupportedAlgorithm)?;
    let accepted = [
        &PKCS_ECDSA_P256_SHA256,
        &PKCS_ECDSA_P384_SHA384,
        &PKCS_ED25519,
    ];
    if !accepted.contains(&spki.algorithm()) {
        return Err(IssueError::UnsupportedAlgorithm);
    }
    Ok((request, spki))
}

fn describe_san(san: &SanType) -> String {
    match san {
        SanType::URI(u) => format!("URI:{}", u.as_str()),
        SanType::DnsName(d) => format!("DNS:{}", d.as_str()),
        SanType::Rfc822Name(e) => format!("email:{}", e.as_str()),
        SanType::IpAddress(ip) => format!("IP:{ip}"),
        other => format!("{other:?}"),
    }
}

/// The URI SANs of a certificate: an X.509-SVID carries exactly one, its SPIFFE ID.
pub fn uri_sans<'a>(cert: &'a x509_parser::certificate::X509Certificate<'_>) -> Vec<&'a str> {
    cert.subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::URI(u) => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}
