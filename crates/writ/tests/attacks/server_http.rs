//! The server's HTTP surface: requests shaped to confuse a reader, or to be answered
//! outside the API's error shape.

use super::common::{Server, TRUST_DOMAIN, TempDir, raw_tls};
use serde_json::{Value, json};

fn start(dir: &TempDir) -> Server {
    Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN])
}

/// The JSON body of a raw HTTP answer, and its status line.
fn split(answer: &str) -> (String, Value) {
    let status = answer.lines().next().unwrap_or_default().to_string();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}")),
    )
}

#[test]
fn a_request_with_no_host_or_two_is_refused_in_the_error_shape() {
    let dir = TempDir::new("attack-server-host");
    let server = start(&dir);
    let none = raw_tls(
        server.port,
        &server.ca_file(),
        b"GET /v1/health HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    let (status, body) = split(&none);
    assert!(status.contains(" 400 "), "{none}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Host header: missing"),
        "{body}"
    );
    let two = raw_tls(
        server.port,
        &server.ca_file(),
        b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    let (status, body) = split(&two);
    assert!(status.contains(" 400 "), "{two}");
    assert_eq!(body["error"]["code"], "invalidRequest", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than once"),
        "{body}"
    );
}

#[test]
fn wrong_methods_and_query_strings_answer_in_the_error_shape() {
    let dir = TempDir::new("attack-server-shape");
    let server = start(&dir);
    let r = server.curl("PUT", "/v1/health").send().expect(405);
    assert_eq!(r.error_code(), "methodNotAllowed");
    assert!(r.error_message().contains("PUT"), "{}", r.body);

    let token = server.admin_token();
    let r = server
        .curl("GET", "/v1/revocations?after=yesterday")
        .bearer(&token)
        .send()
        .expect(400);
    assert_eq!(r.error_code(), "invalidRequest");
    assert!(r.error_message().contains("query string"), "{}", r.body);
    assert!(r.error_message().contains("after"), "{}", r.body);

    // A wait above the documented maximum is refused, not cut short in silence.
    for path in [
        "/v1/revocations?after=0&wait=61",
        "/v1/audit/events?after=0&wait=3600",
        "/v1/intentions?after=0&wait=61",
    ] {
        let r = server.curl("GET", path).bearer(&token).send().expect(400);
        assert!(r.error_message().contains("wait"), "{path}: {}", r.body);
        assert!(r.error_message().contains("60"), "{path}: {}", r.body);
    }
}

/// serde_json keeps the last of two keys, other parsers the first: a policy that reads as
/// Deny to one reader and Allow to another must never be stored.
#[test]
fn a_body_with_a_key_given_twice_is_refused_before_anything_reads_it() {
    let dir = TempDir::new("attack-server-dupkeys");
    let server = start(&dir);
    let body = r#"{"name": "dup", "policies": [{"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Effect": "Allow", "Action": "secrets:*", "Resource": "*"}]}]}"#;
    let r = server
        .curl("POST", "/v1/functions")
        .bearer(&server.admin_token())
        .body(body, "application/json")
        .send()
        .expect(400);
    assert!(
        r.error_message().contains("$.policies[0].Statement[0]"),
        "{}",
        r.body
    );
    assert!(r.error_message().contains("Effect"), "{}", r.body);
    server
        .curl("GET", "/v1/functions/dup")
        .bearer(&server.admin_token())
        .send()
        .expect(404);

    // An audit batch skips the pass over the text (its events are structs, which serde
    // reads field by field), and serde refuses a field given twice itself.
    let batch = r#"{"events": [{"time": "2026-12-07T10:00:00Z", "actor": "a", "actor": "b",
        "authenticatedBy": "mtls", "action": "writ:Invoke", "resource": "writ:fn/payments",
        "outcome": "allowed"}]}"#;
    let r = server
        .curl("POST", "/v1/audit/events")
        .bearer(&server.admin_token())
        .body(batch, "application/json")
        .send()
        .expect(400);
    assert!(
        r.error_message().contains("duplicate field `actor`"),
        "{}",
        r.body
    );
}

#[test]
fn an_oversized_body_gets_a_413_naming_the_endpoints_own_limit() {
    let dir = TempDir::new("attack-server-413");
    let server = start(&dir);
    let token = server.admin_token();
    for (path, limit) in [("/v1/secrets/put", 131_072), ("/v1/functions", 65_536)] {
        let body = json!({"name": "x", "description": "A".repeat(limit + 1024)});
        let r = server.curl("POST", path).bearer(&token).json(&body).send();
        assert_eq!(r.status, 413, "{path}: {}", r.body);
        assert_eq!(r.error_code(), "bodyTooLarge", "{path}");
        assert!(
            r.error_message().contains(&limit.to_string()),
            "{path}: {}",
            r.body
        );
    }
}

#[test]
fn a_join_token_cannot_be_made_for_a_revoked_function() {
    let dir = TempDir::new("attack-server-revoked-join");
    let server = start(&dir);
    server.register("orders");
    server.cli_ok(&["revoke", "--fn", "orders"]);
    let r = server
        .curl("POST", "/v1/functions/orders/join-tokens")
        .bearer(&server.admin_token())
        .json(&json!({}))
        .send()
        .expect(409);
    assert_eq!(r.error_code(), "functionRevoked");
}

/// A guesser of admin tokens gets a burst of tries, then is refused unheard (429 with
/// Retry-After) while its refusals stop filling the audit log; other sources are not
/// affected, and the bootstrap operator's own calls from elsewhere go on.
#[test]
fn admin_token_guesses_are_throttled_per_source_and_their_events_rate_limited() {
    let dir = TempDir::new("attack-server-throttle");
    let server = start(&dir);
    let guess = |i: usize| {
        format!(
            "writ.admin.{:024x}.GuessedSecretGuessedSecretGuessed{i:04}",
            i
        )
    };
    let mut statuses = Vec::new();
    for i in 0..40 {
        let r = server
            .curl("GET", "/v1/functions")
            .bearer(&guess(i))
            .source_address("127.0.0.2")
            .send();
        statuses.push(r.status);
        if r.status == 429 {
            assert_eq!(r.error_code(), "tooManyFailures", "{}", r.body);
            assert!(r.headers["retry-after"].is_array(), "{:?}", r.headers);
        }
    }
    let refused = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!((30..=31).contains(&refused), "{statuses:?}");
    assert_eq!(refused + throttled, 40, "{statuses:?}");

    // The right token from another source is unaffected.
    server
        .curl("GET", "/v1/functions")
        .bearer(&server.admin_token())
        .send()
        .expect(200);

    // One event for the whole throttling episode, not one per guess.
    server.register("after");
    server.wait_for_audit("the registration", |e| {
        e["action"] == "writ:RegisterFunction"
    });
    let events = server.audit_events();
    let guesses = events
        .iter()
        .filter(|e| e["action"] == "writ:ListFunctions" && e["outcome"] == "denied")
        .count();
    assert_eq!(guesses, refused + 1, "{events:#?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("throttled")))
            .count(),
        1
    );
}
