//! X.509-SVIDs checked by the real thing: CSRs made by the `openssl` command line, and the
//! certificates writ signs verified and inspected by `openssl verify` and `openssl x509`.

use std::path::{Path, PathBuf};
use std::process::Command;

use time::{Duration, OffsetDateTime};
use writ_identity::{CertificateAuthority, IssueError, ServerNames, SpiffeId, TrustDomain};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("writ-identity-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn openssl(args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("openssl is installed (.ci/run installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A P-256 key and CSR made by openssl, with extra `-addext` arguments.
fn openssl_csr(d: &Path, extra: &[&str]) -> Vec<u8> {
    let mut args = vec![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=orders",
        "-keyout",
        "key.pem",
        "-out",
        "csr.pem",
    ];
    args.extend_from_slice(extra);
    let (ok, text) = openssl(&args, d);
    assert!(ok, "openssl req: {text}");
    std::fs::read(d.join("csr.pem")).expect("csr.pem")
}

fn setup(
    name: &str,
) -> (
    PathBuf,
    TrustDomain,
    CertificateAuthority,
    SpiffeId,
    OffsetDateTime,
) {
    let d = dir(name);
    let td = TrustDomain::new("example.org").unwrap();
    let now = OffsetDateTime::now_utc();
    let ca = CertificateAuthority::generate(&td, now, Duration::days(1)).unwrap();
    std::fs::write(d.join("bundle.pem"), ca.cert_pem()).unwrap();
    let id = SpiffeId::for_function(&td, "orders").unwrap();
    (d, td, ca, id, now)
}

#[test]
fn openssl_verifies_an_svid_signed_for_an_openssl_csr() {
    let (d, _, ca, id, now) = setup("verify");
    let csr = openssl_csr(&d, &[]);
    let svid = ca.sign_csr(&csr, &id, now, Duration::hours(1)).unwrap();
    std::fs::write(d.join("svid.pem"), &svid.cert_pem).unwrap();

    let (ok, text) = openssl(&["verify", "-CAfile", "bundle.pem", "svid.pem"], &d);
    assert!(ok, "{text}");
    assert!(text.contains("svid.pem: OK"), "{text}");

    // The certificate carries the CSR's public key: it matches openssl's private key.
    let (_, cert_key) = openssl(&["x509", "-in", "svid.pem", "-noout", "-pubkey"], &d);
    let (_, own_key) = openssl(&["pkey", "-in", "key.pem", "-pubout"], &d);
    assert_eq!(cert_key, own_key);
}

#[test]
fn the_certificate_follows_the_x509_svid_rules() {
    let (d, _, ca, id, now) = setup("rules");
    let csr = openssl_csr(&d, &[]);
    let svid = ca.sign_csr(&csr, &id, now, Duration::hours(1)).unwrap();
    std::fs::write(d.join("svid.pem"), &svid.cert_pem).unwrap();
    let (ok, text) = openssl(
        &[
            "x509",
            "-in",
            "svid.pem",
            "-noout",
            "-ext",
            "subjectAltName,basicConstraints,keyUsage,extendedKeyUsage",
        ],
        &d,
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("URI:spiffe://example.org/fn/orders"),
        "{text}"
    );
    assert_eq!(
        text.matches("URI:").count(),
        1,
        "exactly one URI SAN: {text}"
    );
    assert!(!text.contains("DNS:"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(!text.contains("Certificate Sign"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");

    // The CA names its trust domain and may sign only end-entity certificates.
    let (_, ca_text) = openssl(
        &[
            "x509",
            "-in",
            "bundle.pem",
            "-noout",
            "-ext",
            "subjectAltName,basicConstraints,keyUsage",
        ],
        &d,
    );
    assert!(ca_text.contains("URI:spiffe://example.org"), "{ca_text}");
    assert!(ca_text.contains("CA:TRUE, pathlen:0"), "{ca_text}");
    assert!(ca_text.contains("Certificate Sign"), "{ca_text}");
}

#[test]
fn lifetimes_are_bounded_and_expiry_is_enforced_by_openssl() {
    let (d, _, ca, id, now) = setup("lifetime");
    let csr = openssl_csr(&d, &[]);
    let svid = ca.sign_csr(&csr, &id, now, Duration::hours(1)).unwrap();
    let whole = |t: OffsetDateTime| t.replace_nanosecond(0).unwrap();
    assert_eq!(svid.not_after, whole(now + Duration::hours(1)));
    std::fs::write(d.join("svid.pem"), &svid.cert_pem).unwrap();
    let later = (now + Duration::hours(2)).unix_timestamp().to_string();
    let (ok, text) = openssl(
        &[
            "verify",
            "-attime",
            &later,
            "-CAfile",
            "bundle.pem",
            "svid.pem",
        ],
        &d,
    );
    assert!(!ok && text.contains("expired"), "{text}");

    // Never past the CA's own expiry.
    let capped = ca.sign_csr(&csr, &id, now, Duration::days(365)).unwrap();
    assert_eq!(capped.not_after, ca.not_after());
    assert_eq!(
        ca.sign_csr(&csr, &id, now, Duration::ZERO),
        Err(IssueError::BadLifetime)
    );
    assert_eq!(
        ca.sign_csr(&csr, &id, now + Duration::days(2), Duration::hours(1)),
        Err(IssueError::CaNotValid)
    );
}

#[test]
fn another_trust_domains_ca_does_not_verify_it() {
    let (d, _, ca, id, now) = setup("other-ca");
    let csr = openssl_csr(&d, &[]);
    let svid = ca.sign_csr(&csr, &id, now, Duration::hours(1)).unwrap();
    std::fs::write(d.join("svid.pem"), &svid.cert_pem).unwrap();
    let other = CertificateAuthority::generate(
        &TrustDomain::new("other.org").unwrap(),
        now,
        Duration::days(1),
    )
    .unwrap();
    std::fs::write(d.join("other.pem"), other.cert_pem()).unwrap();
    let (ok, text) = openssl(&["verify", "-CAfile", "other.pem", "svid.pem"], &d);
    assert!(!ok, "{text}");
}

#[test]
fn every_svid_gets_its_own_serial() {
    let (d, _, ca, id, now) = setup("serials");
    let csr = openssl_csr(&d, &[]);
    let a = ca.sign_csr(&csr, &id, now, Duration::hours(1)).unwrap();
    let b = ca.sign_csr(&csr, &id, now, Duration::hours(1)).unwrap();
    assert_ne!(
        a.serial, b.serial,
        "revocation by serial needs distinct serials"
    );
    assert_eq!(a.serial.len(), 16);
}

#[test]
fn csrs_asking_for_more_are_refused() {
    let (d, _, ca, id, now) = setup("refuse");
    let ca_csr = openssl_csr(&d, &["-addext", "basicConstraints=critical,CA:TRUE"]);
    assert_eq!(
        ca.sign_csr(&ca_csr, &id, now, Duration::hours(1)),
        Err(IssueError::AsksForCa)
    );

    let extra = openssl_csr(
        &d,
        &[
            "-addext",
            "subjectAltName=DNS:evil.example,URI:spiffe://example.org/fn/orders",
        ],
    );
    assert_eq!(
        ca.sign_csr(&extra, &id, now, Duration::hours(1)),
        Err(IssueError::ForeignNames(vec!["DNS:evil.example".into()]))
    );

    let other_id = openssl_csr(
        &d,
        &[
            "-addext",
            "subjectAltName=URI:spiffe://example.org/fn/payments",
        ],
    );
    let err = ca
        .sign_csr(&other_id, &id, now, Duration::hours(1))
        .unwrap_err();
    assert_eq!(
        err,
        IssueError::ForeignNames(vec!["URI:spiffe://example.org/fn/payments".into()])
    );
    assert!(err.to_string().contains("exactly one"), "{err}");

    // Asking for exactly its own ID is fine.
    let own = openssl_csr(
        &d,
        &[
            "-addext",
            "subjectAltName=URI:spiffe://example.org/fn/orders",
        ],
    );
    assert!(ca.sign_csr(&own, &id, now, Duration::hours(1)).is_ok());
}

#[test]
fn malformed_and_tampered_csrs_are_refused() {
    let (d, _, ca, id, now) = setup("malformed");
    assert_eq!(
        ca.sign_csr(b"", &id, now, Duration::hours(1)),
        Err(IssueError::MalformedCsr)
    );
    assert_eq!(
        ca.sign_csr(b"not a csr", &id, now, Duration::hours(1)),
        Err(IssueError::MalformedCsr)
    );
    assert_eq!(
        ca.sign_csr(
            b"-----BEGIN CERTIFICATE REQUEST-----\n!!\n-----END CERTIFICATE REQUEST-----\n",
            &id,
            now,
            Duration::hours(1)
        ),
        Err(IssueError::MalformedCsr)
    );
    // Flip a byte of the public key inside the DER: the signature no longer verifies.
    let pem = openssl_csr(&d, &[]);
    let (ok, _) = openssl(
        &[
            "req", "-in", "csr.pem", "-outform", "DER", "-out", "csr.der",
        ],
        &d,
    );
    assert!(ok);
    let mut der = std::fs::read(d.join("csr.der")).unwrap();
    assert!(
        ca.sign_csr(&der, &id, now, Duration::hours(1)).is_ok(),
        "DER works as well as PEM"
    );
    let key_at = der.len() / 2;
    der[key_at] ^= 0x01;
    let err = ca.sign_csr(&der, &id, now, Duration::hours(1)).unwrap_err();
    assert!(
        matches!(err, IssueError::BadCsrSignature | IssueError::MalformedCsr),
        "{err:?}"
    );
    // Truncations never panic.
    for cut in (0..pem.len()).step_by(37) {
        let _ = ca.sign_csr(&pem[..cut], &id, now, Duration::hours(1));
    }
}

#[test]
fn the_key_algorithm_comes_from_the_key_not_the_signature() {
    // A P-256 key signed with SHA-384: the certificate must still label the key P-256.
    let (d, _, ca, id, now) = setup("alg-mismatch");
    let csr = openssl_csr(&d, &["-sha384"]);
    let svid = ca.sign_csr(&csr, &id, now, Duration::hours(1)).unwrap();
    std::fs::write(d.join("svid.pem"), &svid.cert_pem).unwrap();
    let (ok, text) = openssl(&["verify", "-CAfile", "bundle.pem", "svid.pem"], &d);
    assert!(ok, "{text}");
    let (_, text) = openssl(&["x509", "-in", "svid.pem", "-noout", "-text"], &d);
    assert!(
        text.contains("prime256v1") || text.contains("P-256"),
        "{text}"
    );
}

#[test]
fn ed25519_keys_are_accepted_and_rsa_keys_refused() {
    let (d, _, ca, id, now) = setup("algorithms");
    let (ok, text) = openssl(
        &[
            "req", "-new", "-newkey", "ed25519", "-nodes", "-subj", "/CN=a", "-keyout", "ed.key",
            "-out", "ed.csr",
        ],
        &d,
    );
    assert!(ok, "{text}");
    let csr = std::fs::read(d.join("ed.csr")).unwrap();
    let svid = ca.sign_csr(&csr, &id, now, Duration::hours(1)).unwrap();
    std::fs::write(d.join("svid.pem"), &svid.cert_pem).unwrap();
    let (ok, text) = openssl(&["verify", "-CAfile", "bundle.pem", "svid.pem"], &d);
    assert!(ok, "{text}");

    let (ok, text) = openssl(
        &[
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=a", "-keyout", "rsa.key",
            "-out", "rsa.csr",
        ],
        &d,
    );
    assert!(ok, "{text}");
    let csr = std::fs::read(d.join("rsa.csr")).unwrap();
    assert_eq!(
        ca.sign_csr(&csr, &id, now, Duration::hours(1)),
        Err(IssueError::UnsupportedAlgorithm)
    );
}

#[test]
fn the_ca_signs_only_workload_ids_of_its_own_trust_domain() {
    let (d, td, ca, _, now) = setup("scope");
    let csr = openssl_csr(&d, &[]);
    let foreign = SpiffeId::parse("spiffe://other.org/fn/x").unwrap();
    assert_eq!(
        ca.sign_csr(&csr, &foreign, now, Duration::hours(1)),
        Err(IssueError::ForeignTrustDomain("other.org".into()))
    );
    assert_eq!(
        ca.sign_csr(&csr, &td.id(), now, Duration::hours(1)),
        Err(IssueError::NoPath)
    );
}

#[test]
fn key_usages_follow_the_specification() {
    let (d, _, ca, id, now) = setup("usages");
    // Asking for CA key usages is asking to be a CA.
    let csr = openssl_csr(&d, &["-addext", "keyUsage=keyCertSign,cRLSign"]);
    assert_eq!(
        ca.sign_csr(&csr, &id, now, Duration::hours(1)),
        Err(IssueError::AsksForCa)
    );
    let csr = openssl_csr(&d, &[]);
    let svid = ca.sign_csr(&csr, &id, now, Duration::hours(1)).unwrap();
    std::fs::write(d.join("svid.pem"), &svid.cert_pem).unwrap();
    let (_, leaf) = openssl(
        &["x509", "-in", "svid.pem", "-noout", "-ext", "keyUsage"],
        &d,
    );
    assert!(
        leaf.contains("Digital Signature") && !leaf.contains("Key Agreement"),
        "{leaf}"
    );
    let (_, ca_text) = openssl(
        &["x509", "-in", "bundle.pem", "-noout", "-ext", "keyUsage"],
        &d,
    );
    assert!(
        !ca_text.contains("Digital Signature"),
        "digitalSignature is for leaves only: {ca_text}"
    );
    // Strict X.509 checking accepts the chain.
    let (ok, text) = openssl(
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            "bundle.pem",
            "svid.pem",
        ],
        &d,
    );
    assert!(ok, "{text}");
}

#[test]
fn absurd_lifetimes_are_errors_not_panics() {
    let (d, td, ca, id, now) = setup("absurd");
    let csr = openssl_csr(&d, &[]);
    assert_eq!(
        ca.sign_csr(&csr, &id, now, Duration::MAX),
        Err(IssueError::BadLifetime)
    );
    assert_eq!(
        CertificateAuthority::generate(&td, now, Duration::days(365 * 9000)).unwrap_err(),
        IssueError::BadLifetime
    );
    // PEM with leading white space is still PEM.
    let mut padded = b"\n  ".to_vec();
    padded.extend_from_slice(&csr);
    assert!(ca.sign_csr(&padded, &id, now, Duration::hours(1)).is_ok());
}

#[test]
fn a_gateways_svid_carries_exactly_its_registered_names() {
    let (d, td, ca, _, now) = setup("gateway-names");
    let id = SpiffeId::for_gateway(&td, "edge").unwrap();
    let names = ServerNames {
        dns: vec!["gw.internal".into()],
        ips: vec!["127.0.0.1".parse().unwrap()],
    };
    // A CSR asking for nothing, or for some of the registered names, gets them all.
    for extra in [
        vec![],
        vec!["-addext", "subjectAltName=DNS:gw.internal"],
        vec![
            "-addext",
            "subjectAltName=IP:127.0.0.1,URI:spiffe://example.org/writ/gateway/edge",
        ],
    ] {
        let csr = openssl_csr(&d, &extra);
        let svid = ca
            .sign_csr_for(&csr, &id, &names, now, Duration::hours(1))
            .unwrap();
        std::fs::write(d.join("gw.pem"), &svid.cert_pem).unwrap();
        let (ok, text) = openssl(
            &[
                "x509",
                "-in",
                "gw.pem",
                "-noout",
                "-ext",
                "subjectAltName,extendedKeyUsage",
            ],
            &d,
        );
        assert!(ok, "{text}");
        for want in [
            "URI:spiffe://example.org/writ/gateway/edge",
            "DNS:gw.internal",
            "IP Address:127.0.0.1",
            "TLS Web Server Authentication",
        ] {
            assert!(text.contains(want), "{extra:?}: {want} in {text}");
        }
    }
    // Any other name is refused, and named.
    for (extra, named) in [
        ("subjectAltName=DNS:evil.internal", "DNS:evil.internal"),
        ("subjectAltName=DNS:gw.internal,IP:10.0.0.1", "IP:10.0.0.1"),
        (
            "subjectAltName=URI:spiffe://example.org/fn/orders",
            "URI:spiffe://example.org/fn/orders",
        ),
    ] {
        let csr = openssl_csr(&d, &["-addext", extra]);
        assert_eq!(
            ca.sign_csr_for(&csr, &id, &names, now, Duration::hours(1)),
            Err(IssueError::ForeignNames(vec![named.into()])),
            "{extra}"
        );
    }
    // A function's SVID carries no DNS name even if its CSR asks for a gateway's.
    let fn_id = SpiffeId::for_function(&td, "orders").unwrap();
    let csr = openssl_csr(&d, &["-addext", "subjectAltName=DNS:gw.internal"]);
    assert!(ca.sign_csr(&csr, &fn_id, now, Duration::hours(1)).is_err());
}
