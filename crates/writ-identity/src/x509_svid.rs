//! A certificate authority for a trust domain, and X.509-SVIDs signed for callers' CSRs.
//!
//! The caller keeps its private key: it sends a certificate signing request, and the CA
//! signs a certificate that follows the X.509-SVID rules whatever the request asked for:
//! exactly one URI SAN (the SPIFFE ID the caller proved), not a CA, `digitalSignature`, for
//! client and server authentication, valid for a bounded time. A request that asks for more
//! (CA:true, other names, extensions writ does not know) is refused, not quietly trimmed, so
//! a misbehaving client is noticed.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};

use crate::spiffe_id::{SpiffeId, TrustDomain};

/// Certificates start this long before they are issued, so a peer whose clock is slightly
/// behind does not reject them.
const BACKDATE: Duration = Duration::seconds(30);

/// Why a CSR was refused or a certificate could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// The bytes are not a PKCS#10 certificate signing request.
    #[error("the CSR is not a valid PKCS#10 request (DER or PEM)")]
    MalformedCsr,
    /// The request's signature does not match its public key.
    #[error("the CSR's signature does not verify against its own public key")]
    BadCsrSignature,
    /// The request uses a signature algorithm writ does not accept.
    #[error("the CSR's signature algorithm is not supported (use ECDSA P-256, P-384 or Ed25519)")]
    UnsupportedAlgorithm,
    /// The request carries an extension writ does not understand.
    #[error(
        "the CSR requests an extension writ does not support; request none, or only the subject alternative name of your SPIFFE ID"
    )]
    UnsupportedExtension,
    /// The request asks to be a certificate authority.
    #[error("the CSR asks for CA:true; an X.509-SVID is never a CA")]
    AsksForCa,
    /// The request names something other than the caller's SPIFFE ID.
    #[error(
        "the CSR asks for subject alternative names {0:?}; an X.509-SVID carries exactly one, the caller's SPIFFE ID"
    )]
    ForeignNames(Vec<String>),
    /// The requested lifetime is zero or negative.
    #[error("the requested lifetime must be positive")]
    BadLifetime,
    /// The CA itself is not valid at this time.
    #[error("the CA certificate is not valid at the time of issue")]
    CaNotValid,
    /// The cryptographic library failed; the message carries no secret.
    #[error("could not sign the certificate: {0}")]
    Signing(String),
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
    /// When it expires.
    pub not_after: OffsetDateTime,
}

/// A trust domain's signing authority: a self-signed ECDSA P-256 CA certificate and its key.
pub struct CertificateAuthority {
    trust_domain: TrustDomain,
    cert_der: Vec<u8>,
    cert_pem: String,
    key: KeyPair,
    not_after: OffsetDateTime,
    not_before: OffsetDateTime,
    issuer_params: CertificateParams,
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

impl CertificateAuthority {
    /// Creates a CA for `trust_domain`, valid from `now` for `lifetime`. Its certificate
    /// carries the trust domain's SPIFFE ID, may sign only end-entity certificates
    /// (path length 0), and is the trust bundle peers verify SVIDs against.
    pub fn generate(
        trust_domain: &TrustDomain,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<CertificateAuthority, IssueError> {
        if lifetime <= Duration::ZERO {
            return Err(IssueError::BadLifetime);
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(signing)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "writ");
        dn.push(DnType::CommonName, format!("writ CA {trust_domain}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.subject_alt_names = vec![SanType::URI(
            trust_domain.id().as_str().try_into().map_err(signing)?,
        )];
        params.not_before = now - BACKDATE;
        params.not_after = now + lifetime;
        params.serial_number = Some(SerialNumber::from_slice(&random_serial(
            &SystemRandom::new(),
        )?));
        params.use_authority_key_identifier_extension = false;
        let cert = params.self_signed(&key).map_err(signing)?;
        Ok(CertificateAuthority {
            trust_domain: trust_domain.clone(),
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            not_after: params.not_after,
            not_before: params.not_before,
            issuer_params: params,
            key,
        })
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
        if lifetime <= Duration::ZERO {
            return Err(IssueError::BadLifetime);
        }
        if now < self.not_before || now >= self.not_after {
            return Err(IssueError::CaNotValid);
        }
        let request = parse_csr(csr)?;
        if matches!(request.params.is_ca, IsCa::Ca(_)) {
            return Err(IssueError::AsksForCa);
        }
        let foreign: Vec<String> = request
            .params
            .subject_alt_names
            .iter()
            .filter(|san| !matches!(san, SanType::URI(uri) if uri.as_str() == spiffe_id.as_str()))
            .map(describe_san)
            .collect();
        if !foreign.is_empty() {
            return Err(IssueError::ForeignNames(foreign));
        }

        let serial = random_serial(&SystemRandom::new())?;
        let not_after = (now + lifetime).min(self.not_after);
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "writ");
        params.distinguished_name = dn;
        params.subject_alt_names = vec![SanType::URI(
            spiffe_id.as_str().try_into().map_err(signing)?,
        )];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = not_after;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.use_authority_key_identifier_extension = true;
        let signed = CertificateSigningRequestParams {
            params,
            public_key: request.public_key,
        };
        let issuer = Issuer::from_params(&self.issuer_params, &self.key);
        let cert = signed.signed_by(&issuer).map_err(signing)?;
        Ok(X509Svid {
            spiffe_id: spiffe_id.clone(),
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            serial,
            not_after,
        })
    }
}

fn parse_csr(csr: &[u8]) -> Result<CertificateSigningRequestParams, IssueError> {
    let map = |e: rcgen::Error| match e {
        rcgen::Error::InvalidCertificationRequestSignature => IssueError::BadCsrSignature,
        rcgen::Error::UnsupportedExtension => IssueError::UnsupportedExtension,
        rcgen::Error::UnsupportedSignatureAlgorithm => IssueError::UnsupportedAlgorithm,
        _ => IssueError::MalformedCsr,
    };
    if csr.starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(csr).map_err(|_| IssueError::MalformedCsr)?;
        CertificateSigningRequestParams::from_pem(text).map_err(map)
    } else {
        CertificateSigningRequestParams::from_der(&csr.to_vec().into()).map_err(map)
    }
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
