//! AWS's published SigV4 test suite, in full (`aws4_testsuite/`, see its README): for every
//! case, the canonical request, the string to sign and the `Authorization` header equal the
//! files, and verification accepts the signed request.

use std::fs;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use writ_sigv4::{
    Credentials, Payload, SignableRequest, SigningKeyCache, SigningParams, VerifyError,
    VerifySettings, sign_headers, verify,
};

const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// A request read from a `.req` or `.sreq` file.
struct RawRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    fn parse(text: &str) -> RawRequest {
        let text = text.replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let request_line = lines.next().expect("request line");
        let (method, rest) = request_line.split_once(' ').expect("method");
        // The target may contain spaces (normalize-path/get-space): it ends at " HTTP/".
        let target = &rest[..rest.rfind(" HTTP/").expect("HTTP version")];
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // A folded line continues the previous header's value.
                let last = headers.last_mut().expect("a header before a folded line");
                last.1.push('\n');
                last.1.push_str(line);
            } else {
                let (name, value) = line.split_once(':').expect("header line");
                headers.push((name.to_owned(), value.to_owned()));
            }
        }
        RawRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn cases(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read test suite dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if path.join(format!("{name}.req")).exists() {
                out.push(path.clone());
            }
            cases(&path, out);
        }
    }
}

fn read(case: &Path, ext: &str) -> String {
    let name = case.file_name().unwrap().to_str().unwrap();
    fs::read_to_string(case.join(format!("{name}.{ext}")))
        .unwrap_or_else(|e| panic!("{}: {name}.{ext}: {e}", case.display()))
}

fn signing_time() -> OffsetDateTime {
    // 20150830T123600Z
    OffsetDateTime::from_unix_timestamp(1_440_938_160).unwrap()
}

fn verify_raw(
    raw: &RawRequest,
    cache: &SigningKeyCache,
) -> Result<writ_sigv4::Verified, VerifyError> {
    let headers: Vec<(&str, &str)> = raw
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = SignableRequest::new(
        &raw.method,
        &raw.path,
        &raw.query,
        &headers,
        Payload::Bytes(&raw.body),
    );
    verify(
        &request,
        signing_time(),
        &VerifySettings::default(),
        cache,
        |akid| (akid == ACCESS_KEY_ID).then_some(SECRET),
    )
}

#[test]
fn every_case_of_the_aws_sigv4_test_suite() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws4_testsuite");
    let mut all = Vec::new();
    cases(&root, &mut all);
    assert_eq!(all.len(), 34, "the vendored suite has 34 cases");
    let cache = SigningKeyCache::default();
    for case in &all {
        let name = case.file_name().unwrap().to_str().unwrap();
        let req = RawRequest::parse(&read(case, "req"));
        let sreq = RawRequest::parse(&read(case, "sreq"));
        let creq = read(case, "creq");
        let mut creds = Credentials::new(ACCESS_KEY_ID, SECRET);
        // A case whose canonical request signs a session token the .req lacks expects the
        // signer to add it from the credentials (get-vanilla-with-session-token).
        if creq.contains("\nx-amz-security-token:") && req.header("x-amz-security-token").is_none()
        {
            creds = creds.with_session_token(
                sreq.header("x-amz-security-token")
                    .expect("the .sreq carries the token"),
            );
        }
        let headers: Vec<(&str, &str)> = req
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let request = SignableRequest::new(
            &req.method,
            &req.path,
            &req.query,
            &headers,
            Payload::Bytes(&req.body),
        );
        let signed = sign_headers(
            &request,
            &SigningParams::new(&creds, "us-east-1", "service", signing_time()),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(signed.canonical_request, creq, "{name}: canonical request");
        assert_eq!(
            signed.string_to_sign,
            read(case, "sts"),
            "{name}: string to sign"
        );
        let authorization = &signed.headers[0];
        assert_eq!(authorization.0, "authorization");
        assert_eq!(
            authorization.1,
            read(case, "authz"),
            "{name}: Authorization"
        );

        // The request as the signer sends it verifies.
        let mut sent = RawRequest::parse(&read(case, "req"));
        sent.headers.extend(
            signed
                .headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.clone())),
        );
        let verified = verify_raw(&sent, &cache).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.access_key_id, ACCESS_KEY_ID);
        assert_eq!(verified.region, "us-east-1");
        assert_eq!(verified.service, "service");
        assert_eq!(verified.date, signing_time());
        assert!(verified.payload_signed, "{name}");
        assert_eq!(
            verified.signed_headers.join(";"),
            creq.lines().rev().nth(1).unwrap(),
            "{name}: signed headers"
        );
        assert_eq!(
            verified.session_token.as_deref(),
            sent.header("x-amz-security-token"),
            "{name}: session token"
        );

        // So does the suite's own signed request, with one exception: the .sreq of
        // get-vanilla-with-session-token carries get-vanilla's signature, not the one in its
        // own .authz, and is rightly refused.
        let sreq_authz = sreq.header("authorization").expect("the .sreq is signed");
        if name == "get-vanilla-with-session-token" {
            assert_ne!(sreq_authz.trim(), read(case, "authz"));
            assert!(matches!(
                verify_raw(&sreq, &cache),
                Err(VerifyError::SignatureMismatch { .. })
            ));
        } else {
            assert_eq!(sreq_authz.trim(), read(case, "authz"), "{name}: .sreq");
            let verified =
                verify_raw(&sreq, &cache).unwrap_or_else(|e| panic!("{name} .sreq: {e}"));
            assert_eq!(
                verified.session_token.as_deref(),
                sreq.header("x-amz-security-token"),
                "{name}: .sreq session token"
            );
        }
    }
    // One signing key for every case: the cache derived it once.
    assert_eq!(cache.len(), 1);
}
