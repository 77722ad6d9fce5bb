//! The wire types: each survives a round trip through JSON, requests refuse unknown
//! fields as the server does, and answers shaped as the server's handlers write them
//! decode.

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use writ_api::audit::*;
use writ_api::ca::*;
use writ_api::endpoint::Endpoint;
use writ_api::endpoints;
use writ_api::error::*;
use writ_api::functions::*;
use writ_api::identity::*;
use writ_api::intentions::*;
use writ_api::secrets::*;
use writ_api::system::*;
use writ_api::tokens::*;
use writ_policy::intentions::{HeaderMatch, Intention, IntentionAction, Permission};

/// Serializes `sample`, reads it back, and checks it is the same.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(sample: T) {
    let text = serde_json::to_string(&sample).unwrap();
    let back: T = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {e}: {text}", std::any::type_name::<T>()));
    assert_eq!(back, sample, "{text}");
}

/// Decodes `value` as `T`, and checks it serializes back to the same JSON.
fn decodes<T: Serialize + DeserializeOwned>(value: Value) -> T {
    let decoded: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{}: {e}: {value}", std::any::type_name::<T>()));
    assert_eq!(serde_json::to_value(&decoded).unwrap(), value);
    decoded
}

fn jwks() -> Jwks {
    Jwks {
        keys: vec![
            json!({"kty": "EC", "crv": "P-256", "kid": "k1", "x": "AA", "y": "BB",
                          "alg": "ES256", "use": "sig"}),
        ],
    }
}

fn intention() -> Intention {
    Intention {
        source: "orders".into(),
        destination: "payments".into(),
        action: IntentionAction::Allow,
        permissions: vec![Permission {
            methods: vec!["POST".into()],
            path_prefix: None,
            path_exact: Some("/charge".into()),
            headers: vec![HeaderMatch {
                name: "x-env".into(),
                exact: Some("prod".into()),
                ..HeaderMatch::default()
            }],
        }],
        description: Some("orders charges".into()),
    }
}

fn rotation() -> Rotation {
    Rotation {
        hook: Hook::Https {
            url: "https://rotator.internal/db".into(),
        },
        every: Some("30d".into()),
        next_rotation_date: Some("2026-02-01T00:00:00Z".into()),
        last_rotation: Some(LastRotation::Failed {
            step: None,
            reason: "hook unreachable".into(),
            date: "2026-01-01T00:00:00Z".into(),
        }),
    }
}

fn function() -> Function {
    Function {
        name: "orders".into(),
        spiffe_id: "spiffe://example.org/fn/orders".into(),
        attestation: vec![
            AttestationRule::JoinToken,
            AttestationRule::Oidc(OidcRule {
                issuer: "https://token.actions.githubusercontent.com".into(),
                jwks_url: Some(
                    "https://token.actions.githubusercontent.com/.well-known/jwks".into(),
                ),
                jwks: None,
                audience: "writ".into(),
                subject: Some("repo:acme/orders:*".into()),
                claims: BTreeMap::from([("ref".into(), "refs/heads/main".into())]),
            }),
            AttestationRule::AwsIam(AwsIamRule {
                role_arns: vec!["arn:aws:iam::123456789012:role/orders-*".into()],
                accounts: vec!["123456789012".into()],
                session_name: Some("orders".into()),
            }),
        ],
        x509_ttl: "1h".into(),
        x509_ttl_pinned: true,
        created_at: "2026-01-01T00:00:00Z".into(),
        revoked_at: None,
        policies: vec![json!({"Version": "2012-10-17", "Statement": []})],
        permissions_boundary: Some(vec![json!("not JSON, kept as text")]),
    }
}

#[test]
fn every_type_survives_a_round_trip() {
    round_trip(ErrorBody::new(
        ErrorCode::TooManyFailures,
        "try again in 3 s",
    ));
    round_trip(Health {
        status: HealthStatus::Degraded,
        trust_domain: "example.org".into(),
        reason: Some("writes are failing: the disk is full".into()),
        write_failed_at: Some("2026-01-01T00:00:00Z".into()),
    });
    round_trip(OpenApiDocument(json!({"openapi": "3.1.0"})));
    round_trip(Bundle {
        trust_domain: "example.org".into(),
        x509_bundle: "-----BEGIN CERTIFICATE-----\n".into(),
        jwks: jwks(),
    });
    for attestation in [
        Evidence::JoinToken {
            token: "writ.join.0123.s".into(),
        },
        Evidence::Oidc {
            token: "eyJ.x.y".into(),
        },
        Evidence::AwsIam {
            request: AwsSignedRequest {
                method: "POST".into(),
                url: "https://sts.us-east-1.amazonaws.com/".into(),
                headers: BTreeMap::from([
                    ("host".into(), "sts.us-east-1.amazonaws.com".into()),
                    ("x-writ-server-id".into(), "example.org".into()),
                ]),
                body: "QWN0aW9uPUdldENhbGxlcklkZW50aXR5JlZlcnNpb249MjAxMS0wNi0xNQ==".into(),
            },
        },
    ] {
        round_trip(LoginRequest {
            function: "orders".into(),
            attestation,
            csr: "-----BEGIN CERTIFICATE REQUEST-----\n".into(),
        });
    }
    round_trip(RenewRequest { csr: "c".into() });
    round_trip(Svid {
        spiffe_id: "spiffe://example.org/fn/orders".into(),
        x509_svid: "pem".into(),
        serial: "0a1b".into(),
        expires_at: "2026-01-01T01:00:00Z".into(),
        x509_bundle: "pem".into(),
        jwks: jwks(),
    });
    round_trip(MintJwtRequest {
        audience: Audience::One("spiffe://example.org/fn/payments".into()),
        ttl: None,
    });
    round_trip(MintJwtRequest {
        audience: Audience::Many(vec!["a".into(), "b".into()]),
        ttl: Some("5m".into()),
    });
    round_trip(JwtSvid {
        spiffe_id: "s".into(),
        token: "eyJ".into(),
        expires_at: "t".into(),
    });
    round_trip(FeedQuery { after: 7, wait: 25 });
    let revocation = Revocation {
        seq: 3,
        kind: RevocationKind::Serial,
        value: "0a1b".into(),
        revoked_at: 1_700_000_000,
    };
    round_trip(Feed {
        entries: vec![revocation.clone()],
        next: 3,
    });
    round_trip(RevokeRequest {
        token_id: Some("0123456789abcdef01234567".into()),
        ..RevokeRequest::default()
    });
    round_trip(Revoked { revocation });
    round_trip(RegisterFunctionRequest {
        name: "orders".into(),
        attestation: function().attestation,
        x509_ttl: Some("30m".into()),
        policies: function().policies,
    });
    round_trip(function());
    round_trip(FunctionList {
        functions: vec![function()],
    });
    round_trip(FunctionName::new("orders"));
    round_trip(JoinTokenRequest {
        ttl: Some("10m".into()),
    });
    round_trip(AdminTokenRequest {
        policies: vec![json!("{}")],
        ttl: None,
        description: "on-call".into(),
    });
    round_trip(IssuedToken {
        id: "0123".into(),
        token: "writ.admin.0123.s".into(),
        function: None,
        expires_at: None,
    });
    round_trip(IntentionsQuery {
        after: Some(4),
        wait: 10,
    });
    let entry = IntentionEntry {
        intention: intention(),
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-02T00:00:00Z".into(),
    };
    round_trip(entry.clone());
    round_trip(IntentionList {
        intentions: vec![entry],
        index: 9,
    });
    round_trip(IntentionWritten {
        intention: intention(),
        index: 9,
        created: true,
    });
    round_trip(IntentionPair {
        source: "*".into(),
        destination: "payments".into(),
    });
    round_trip(IntentionDeleted {
        deleted: intention(),
        index: 10,
    });
    round_trip(CheckRequest {
        source: "orders".into(),
        destination: "payments".into(),
        method: Some("POST".into()),
        path: Some("/charge".into()),
        headers: BTreeMap::from([("x-env".into(), "prod".into())]),
        proposed: Some(intention()),
    });
    round_trip(IntentionVerdict {
        decision: IntentionDecision::Denied,
        intention: None,
        reason: "no intention allows orders -> payments (default deny)".into(),
        matched: Vec::new(),
        index: 10,
    });
    round_trip(Ca {
        trust_domain: "example.org".into(),
        keys: vec![CaKey {
            id: "x509-1".into(),
            kind: KeyKind::X509,
            status: KeyStatus::Retiring,
            active_from: "t".into(),
            published_until: Some("u".into()),
        }],
        x509_bundle: "pem".into(),
        jwks: jwks(),
    });
    round_trip(RotateCaRequest {
        kind: RotateKind::Jwt,
        activate_after: Some("0s".into()),
    });
    round_trip(EventsQuery {
        after: 1,
        limit: Some(10_000),
        actor: Some("spiffe://example.org/fn/orders".into()),
        since_ms: Some(1_700_000_000_000),
        outcome: Some(writ_audit::Outcome::Denied),
        wait: 30,
    });
    round_trip(AuditRecords {
        records: vec![writ_audit::chain::Record {
            seq: 1,
            event: "{\"time\":\"t\"}".into(),
            prev_hash: "00".into(),
            hash: "11".into(),
        }],
        next: 1,
    });
    round_trip(CheckpointsQuery {
        after: 0,
        limit: None,
    });
    round_trip(Checkpoints {
        checkpoints: vec![writ_audit::checkpoint::Checkpoint {
            seq: 1,
            hash: "11".into(),
            time: "t".into(),
            key_id: "k".into(),
            signature: "ff".into(),
        }],
        public_keys: vec![writ_audit::checkpoint::PublicKey {
            id: "k".into(),
            public_key: "04".into(),
        }],
    });
    let mut event = writ_audit::Event::new(
        "2026-01-01T00:00:00Z",
        "spiffe://example.org/fn/orders",
        "x509Svid",
        "writ:Invoke",
        "writ:fn/payments",
        writ_audit::Outcome::Allowed,
    );
    event.decision = Some(writ_audit::Decision::Allowed);
    event.latency_us = Some(80);
    round_trip(EventBatch {
        events: vec![event],
    });
    round_trip(Accepted { accepted: 1 });
    round_trip(CreateSecretRequest {
        name: "prod/db".into(),
        secret_string: Some("s3cr3t".into()),
        secret_binary: None,
        description: "db".into(),
        tags: BTreeMap::from([("team".into(), "a".into())]),
    });
    round_trip(SecretCreated {
        name: "prod/db".into(),
        version_id: "v1".into(),
    });
    round_trip(PutSecretRequest {
        name: "prod/db".into(),
        secret_string: None,
        secret_binary: Some("AAE=".into()),
    });
    round_trip(SecretVersionPut {
        name: "prod/db".into(),
        version_id: "v2".into(),
        version_stages: vec!["AWSCURRENT".into()],
    });
    round_trip(GetSecretRequest {
        name: "prod/db".into(),
        version_id: None,
        version_stage: Some("AWSPREVIOUS".into()),
    });
    round_trip(SecretValue {
        name: "prod/db".into(),
        version_id: "v2".into(),
        version_stages: vec!["AWSCURRENT".into()],
        created_date: "t".into(),
        secret_string: Some("s3cr3t".into()),
        secret_binary: None,
    });
    round_trip(SecretName {
        name: "prod/db".into(),
    });
    round_trip(SecretNamed {
        name: "prod/db".into(),
    });
    round_trip(SecretDescription {
        name: "prod/db".into(),
        description: "db".into(),
        tags: BTreeMap::new(),
        created_date: "t".into(),
        last_changed_date: "u".into(),
        resource_policy: Some(json!({"Version": "2012-10-17"})),
        rotation: Some(rotation()),
        versions: vec![VersionInfo {
            version_id: "v2".into(),
            version_stages: vec!["AWSCURRENT".into()],
            created_date: "t".into(),
        }],
    });
    round_trip(SecretList {
        secrets: vec![SecretListEntry {
            name: "prod/db".into(),
            description: String::new(),
            last_changed_date: "t".into(),
        }],
    });
    round_trip(DeleteSecretRequest {
        name: "prod/db".into(),
        recovery_days: Some(7),
    });
    round_trip(SecretDeleted {
        name: "prod/db".into(),
        deletion_date: "t".into(),
    });
    round_trip(RotateSecretRequest {
        name: "prod/db".into(),
        hook: Some(Hook::Command { name: "db".into() }),
        every: Some("off".into()),
        rotate_now: Some(false),
    });
    round_trip(Rotated {
        name: "prod/db".into(),
        rotated: false,
        version_id: None,
        rotation: Some(Rotation {
            last_rotation: Some(LastRotation::Succeeded {
                version_id: "v3".into(),
                date: "t".into(),
            }),
            ..rotation()
        }),
    });
    round_trip(SecretPolicyRequest {
        name: "prod/db".into(),
        policy: None,
    });
}

#[test]
fn requests_refuse_unknown_fields_as_the_server_does() {
    let unknown = |text: &str| text.contains("unknown field");
    let e = serde_json::from_value::<LoginRequest>(
        json!({"function": "f", "attestation": {"type": "joinToken", "token": "t"}, "csr": "c", "extra": 1}),
    )
    .unwrap_err();
    assert!(unknown(&e.to_string()), "{e}");
    let e = serde_json::from_value::<RegisterFunctionRequest>(json!({"name": "f", "ttl": "1h"}))
        .unwrap_err();
    assert!(unknown(&e.to_string()), "{e}");
    let e = serde_json::from_value::<GetSecretRequest>(json!({"name": "n", "VersionId": "v"}))
        .unwrap_err();
    assert!(unknown(&e.to_string()), "{e}");
    let e = serde_json::from_value::<EventsQuery>(json!({"after": 1, "since": 2})).unwrap_err();
    assert!(unknown(&e.to_string()), "{e}");
    // Answers take fields a newer server adds.
    let svid: JwtSvid = serde_json::from_value(
        json!({"spiffeId": "s", "token": "t", "expiresAt": "e", "addedLater": true}),
    )
    .unwrap();
    assert_eq!(svid.spiffe_id, "s");
    // Defaults as the server applies them.
    let r: RegisterFunctionRequest = serde_json::from_value(json!({"name": "f"})).unwrap();
    assert_eq!(r.attestation, default_rules());
    let r: RotateCaRequest = serde_json::from_value(json!({})).unwrap();
    assert_eq!(r.kind, RotateKind::All);
}

/// Answers as the server's handlers build them (crates/writ-server/src/api/*.rs), with the
/// values its tests see.
#[test]
fn the_servers_answers_decode() {
    let td = "example.org";
    let health: Health = decodes(json!({"status": "ok", "trustDomain": td}));
    assert_eq!(health.status, HealthStatus::Ok);
    decodes::<Health>(json!({"status": "degraded", "trustDomain": td,
        "reason": "writes are failing: the store refused a write", "writeFailedAt": "2026-01-01T00:00:00Z"}));
    let jwks = json!({"keys": [{"kty": "EC", "use": "sig", "kid": "jwt-1", "alg": "ES256",
        "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
    decodes::<Bundle>(
        json!({"trustDomain": td, "x509Bundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "jwks": jwks}),
    );
    decodes::<Jwks>(jwks.clone());
    let svid: Svid = decodes(json!({"spiffeId": "spiffe://example.org/fn/orders",
        "x509Svid": "-----BEGIN CERTIFICATE-----\n", "serial": "5a1f", "expiresAt": "2026-01-01T01:00:00Z",
        "x509Bundle": "-----BEGIN CERTIFICATE-----\n", "jwks": jwks}));
    assert_eq!(svid.serial, "5a1f");
    decodes::<JwtSvid>(
        json!({"spiffeId": "spiffe://example.org/fn/orders", "token": "eyJhbGciOiJFUzI1NiJ9.e30.sig", "expiresAt": "2026-01-01T00:05:00Z"}),
    );
    let feed: Feed = decodes(json!({"entries": [
        {"seq": 1, "kind": "function", "value": "spiffe://example.org/fn/orders", "revokedAt": 1_700_000_000},
        {"seq": 2, "kind": "serial", "value": "5a1f", "revokedAt": 1_700_000_001},
        {"seq": 3, "kind": "token", "value": "0123456789abcdef01234567", "revokedAt": 1_700_000_002}],
        "next": 3}));
    assert_eq!(feed.entries[1].kind, RevocationKind::Serial);
    decodes::<Feed>(json!({"entries": [], "next": 0}));
    decodes::<Revoked>(
        json!({"revocation": {"seq": 4, "kind": "function", "value": "spiffe://example.org/fn/a", "revokedAt": 1}}),
    );
    // function_json, for a function registered without rules or policies, and revoked.
    let f: Function = decodes(
        json!({"name": "orders", "spiffeId": "spiffe://example.org/fn/orders",
        "attestation": [{"type": "joinToken"}], "x509Ttl": "1h", "x509TtlPinned": false, "createdAt": "2026-01-01T00:00:00Z",
        "revokedAt": "2026-01-02T00:00:00Z", "policies": [], "permissionsBoundary": null}),
    );
    assert_eq!(f.attestation, default_rules());
    decodes::<FunctionList>(
        json!({"functions": [{"name": "ci", "spiffeId": "spiffe://example.org/fn/ci",
        "attestation": [{"type": "oidc", "issuer": "https://issuer.example", "jwks": jwks, "audience": "writ", "subject": "repo:*"}],
        "x509Ttl": "30m", "x509TtlPinned": true, "createdAt": "t", "revokedAt": null,
        "policies": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secrets:GetSecretValue", "Resource": "writ:secret/ci/*"}]}],
        "permissionsBoundary": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]}]}),
    );
    let join: IssuedToken = decodes(
        json!({"id": "0123456789abcdef01234567", "token": "writ.join.0123456789abcdef01234567.c2VjcmV0",
        "function": "orders", "expiresAt": "2026-01-01T00:10:00Z"}),
    );
    assert!(
        !format!("{join:?}").contains("c2VjcmV0"),
        "Debug shows no token"
    );
    let aws: LoginRequest = decodes(json!({"function": "orders", "csr": "c",
        "attestation": {"type": "awsIam", "request": {"method": "POST",
            "url": "https://sts.us-east-1.amazonaws.com/",
            "headers": {"authorization": "AWS4-HMAC-SHA256 Credential=ASIAX/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=5ec2e7",
                        "x-amz-security-token": "SeSsIoNtOkEn"},
            "body": "QWN0aW9uPUdldENhbGxlcklkZW50aXR5JlZlcnNpb249MjAxMS0wNi0xNQ=="}}}));
    let shown = format!("{aws:?}");
    assert!(
        !shown.contains("SeSsIoNtOkEn") && !shown.contains("5ec2e7"),
        "Debug shows no session token or signature: {shown}"
    );
    decodes::<IssuedToken>(
        json!({"id": "0123456789abcdef01234567", "token": "writ.admin.0123456789abcdef01234567.c2VjcmV0", "expiresAt": null}),
    );
    // record_json: the intention's own fields, and when it was written.
    let list: IntentionList = decodes(json!({"intentions": [
        {"source": "orders", "destination": "payments", "action": "allow",
         "permissions": [{"methods": ["POST"], "pathExact": "/payments/charge"}],
         "description": "writ dev: orders charges through payments",
         "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"},
        {"source": "*", "destination": "payments", "action": "deny", "createdAt": "t", "updatedAt": "t"}],
        "index": 2}));
    assert_eq!(list.intentions[1].intention.action, IntentionAction::Deny);
    decodes::<IntentionWritten>(
        json!({"intention": {"source": "orders", "destination": "payments", "action": "allow"}, "index": 1, "created": true}),
    );
    decodes::<IntentionDeleted>(
        json!({"deleted": {"source": "*", "destination": "payments", "action": "deny"}, "index": 3}),
    );
    let verdict: IntentionVerdict = decodes(json!({"decision": "allowed",
        "intention": {"source": "orders", "destination": "payments", "action": "allow", "permissions": [{"methods": ["POST"]}]},
        "reason": "allowed by intention orders -> payments (POST)", "matched": ["intention:orders:payments:0"], "index": 2}));
    assert!(verdict.allowed());
    decodes::<IntentionVerdict>(json!({"decision": "denied", "intention": null,
        "reason": "no intention allows orders -> ledger (default deny)", "matched": [], "index": 2}));
    decodes::<Ca>(json!({"trustDomain": td, "keys": [
        {"id": "x509-2", "kind": "x509", "status": "prepared", "activeFrom": "t", "publishedUntil": null},
        {"id": "x509-1", "kind": "x509", "status": "signing", "activeFrom": "t", "publishedUntil": "u"},
        {"id": "jwt-1", "kind": "jwt", "status": "retiring", "activeFrom": "t", "publishedUntil": "u"}],
        "x509Bundle": "pem", "jwks": jwks}));
    let records: AuditRecords = decodes(json!({"records": [{"seq": 1,
        "event": "{\"time\":\"2026-01-01T00:00:00Z\",\"node\":\"writ-dev\",\"actor\":\"token:ab\",\"authenticatedBy\":\"adminToken\",\"action\":\"writ:RegisterFunction\",\"resource\":\"spiffe://example.org/fn/orders\",\"decision\":\"allowed\",\"outcome\":\"allowed\"}",
        "prevHash": "0000", "hash": "1111"}], "next": 1}));
    let event: writ_audit::Event = serde_json::from_str(&records.records[0].event).unwrap();
    assert_eq!(event.outcome, writ_audit::Outcome::Allowed);
    decodes::<Checkpoints>(
        json!({"checkpoints": [{"seq": 1, "hash": "1111", "time": "t", "keyId": "audit-1", "signature": "ff"}],
        "publicKeys": [{"id": "audit-1", "publicKey": "04ab"}]}),
    );
    decodes::<Accepted>(json!({"accepted": 2}));
    decodes::<SecretCreated>(json!({"name": "payments/stripe-key", "versionId": "3f2a"}));
    decodes::<SecretVersionPut>(
        json!({"name": "prod/db", "versionId": "3f2b", "versionStages": ["AWSCURRENT"]}),
    );
    let value: SecretValue = decodes(
        json!({"name": "prod/db", "versionId": "3f2b", "versionStages": ["AWSCURRENT"],
        "createdDate": "t", "secretString": "postgres://u:p@db/orders"}),
    );
    assert!(
        !format!("{value:?}").contains("postgres"),
        "Debug shows no value"
    );
    decodes::<SecretValue>(
        json!({"name": "certs/key", "versionId": "1", "versionStages": [], "createdDate": "t", "secretBinary": "AAE="}),
    );
    decodes::<SecretDescription>(
        json!({"name": "prod/db", "description": "orders database", "tags": {"team": "orders"},
        "createdDate": "t", "lastChangedDate": "u", "resourcePolicy": null,
        "rotation": {"hook": {"type": "https", "url": "https://rotator.internal/db"}, "every": null,
                     "nextRotationDate": null,
                     "lastRotation": {"status": "succeeded", "versionId": "v3", "date": "t"}},
        "versions": [{"versionId": "v3", "versionStages": ["AWSCURRENT"], "createdDate": "t"},
                     {"versionId": "v2", "versionStages": ["AWSPREVIOUS"], "createdDate": "t"}]}),
    );
    decodes::<SecretList>(
        json!({"secrets": [{"name": "prod/db", "description": "", "lastChangedDate": "t"}]}),
    );
    decodes::<SecretDeleted>(json!({"name": "prod/db", "deletionDate": "t"}));
    decodes::<SecretNamed>(json!({"name": "prod/db"}));
    decodes::<Rotated>(json!({"name": "prod/db", "rotated": true, "versionId": "v4"}));
    decodes::<Rotated>(
        json!({"name": "prod/db", "rotated": false, "rotation": {"hook": {"type": "command", "name": "db"},
        "every": "30d", "nextRotationDate": "t", "lastRotation": null}}),
    );
    let refused: ErrorBody = decodes(json!({"error": {"code": "accessDenied",
        "message": "secrets:GetSecretValue on writ:secret/prod/db is not allowed for spiffe://example.org/fn/orders (implicitDeny)"}}));
    assert_eq!(refused.error.code, ErrorCode::AccessDenied);
    assert_eq!(refused.error.code.status(), Some(403));
}

#[test]
fn endpoints_fill_the_path_query_and_body_from_the_request() {
    use std::borrow::Cow;
    assert_eq!(
        endpoints::GetFunction::path(&FunctionName::new("orders")),
        Cow::<str>::Borrowed("/v1/functions/orders")
    );
    let join = JoinTokenFor {
        function: FunctionName::new("a b"),
        request: JoinTokenRequest::default(),
    };
    assert_eq!(
        endpoints::CreateJoinToken::path(&join),
        "/v1/functions/a%20b/join-tokens"
    );
    assert_eq!(
        serde_json::to_string(endpoints::CreateJoinToken::body(&join).unwrap()).unwrap(),
        "{}"
    );
    assert_eq!(
        endpoints::ReadRevocations::query(&FeedQuery { after: 5, wait: 25 }).as_deref(),
        Some("after=5&wait=25")
    );
    assert_eq!(
        endpoints::DeleteIntention::query(&IntentionPair {
            source: "*".into(),
            destination: "payments".into()
        })
        .as_deref(),
        Some("destination=payments&source=%2A")
    );
    assert_eq!(
        endpoints::ListIntentions::query(&IntentionsQuery::default()),
        None,
        "a plain list has no query"
    );
    assert!(endpoints::ListSecrets::body(&writ_api::NoRequest).is_none());
    assert_eq!(endpoints::Revoke::STATUS, http::StatusCode::CREATED);
    assert_eq!(
        endpoints::DeleteFunction::STATUS,
        http::StatusCode::NO_CONTENT
    );
    let none: writ_api::NoContent = serde_json::from_str("null").unwrap();
    assert_eq!(none, writ_api::NoContent);
}
