//! The gateway's Lambda upstream end to end: the server, the gateway (a real process) and a
//! Lambda Invoke API endpoint run by this test on 127.0.0.1. The endpoint verifies each
//! invocation's SigV4 signature with writ-sigv4 against the credentials the gateway was
//! given, and runs small handlers: an echo of the event, a shaped answer (status, headers,
//! cookies, base64 body), a bare value, a function error, a slow one and a throttled one.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::gateway::Gateway;
use common::{Curl, Server, Svid, TRUST_DOMAIN, TempDir, wait_for};
use serde_json::{Value, json};

const KEY_ID: &str = "AKIDGATEWAYLAMBDA";
const SECRET: &str = "gateway-lambda-secret-key";
const TOKEN: &str = "gateway-session-token";
const REGION: &str = "us-east-1";

/// The test's Invoke API endpoint: how many invocations reached a handler, and the events.
struct Endpoint {
    port: u16,
    invoked: Arc<AtomicUsize>,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Endpoint {
    /// An endpoint that trusts `secret` for [`KEY_ID`].
    fn start(secret: &'static str) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let invoked = Arc::new(AtomicUsize::new(0));
        let events = Arc::new(Mutex::new(Vec::new()));
        let (i, e) = (invoked.clone(), events.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (i, e) = (i.clone(), e.clone());
                std::thread::spawn(move || serve(conn, secret, &i, &e));
            }
        });
        Endpoint {
            port,
            invoked,
            events,
        }
    }

    fn invocations(&self) -> usize {
        self.invoked.load(Ordering::SeqCst)
    }

    fn last_event(&self) -> Value {
        self.events
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("an event")
    }
}

/// Serves the requests of one kept-alive connection.
fn serve(conn: TcpStream, secret: &str, invoked: &AtomicUsize, events: &Mutex<Vec<Value>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').unwrap();
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        let length: usize = get("content-length").map_or(0, |l| l.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let (status, extra, payload) =
            invoke(&method, &target, &headers, &body, secret, invoked, events);
        let mut answer = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            payload.len()
        );
        for (n, v) in extra {
            answer.push_str(&format!("{n}: {v}\r\n"));
        }
        answer.push_str("\r\n");
        let mut wire = answer.into_bytes();
        wire.extend_from_slice(&payload);
        if out.write_all(&wire).is_err() {
            return;
        }
    }
}

type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// One invocation: the signature checked, then the handler the path names.
fn invoke(
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
    secret: &str,
    invoked: &AtomicUsize,
    events: &Mutex<Vec<Value>>,
) -> Answer {
    let refuse = |status: u16, kind: &str, message: &str| -> Answer {
        (
            status,
            vec![(
                "x-amzn-errortype",
                format!("{kind}:http://internal.amazon.com/"),
            )],
            json!({"Type": "User", "message": message})
                .to_string()
                .into_bytes(),
        )
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = writ_sigv4::SignableRequest::new(
        method,
        path,
        query,
        &pairs,
        writ_sigv4::Payload::Bytes(body),
    );
    let cache = writ_sigv4::SigningKeyCache::default();
    let verified = writ_sigv4::verify(
        &request,
        time::OffsetDateTime::now_utc(),
        &writ_sigv4::VerifySettings::default(),
        &cache,
        |akid| (akid == KEY_ID).then_some(secret),
    );
    let verified = match verified {
        Ok(v) => v,
        Err(e) => return refuse(403, "AccessDeniedException", &format!("signature: {e}")),
    };
    assert_eq!(verified.service, "lambda");
    assert_eq!(verified.region, REGION);
    assert_eq!(verified.session_token.as_deref(), Some(TOKEN));
    assert!(verified.payload_signed);
    let find = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(find("x-amz-invocation-type"), Some("RequestResponse"));
    assert_eq!(method, "POST");
    let Some(function) = path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|p| p.strip_suffix("/invocations"))
    else {
        return refuse(404, "ResourceNotFoundException", "no such path");
    };
    let event: Value = serde_json::from_slice(body).expect("the event is JSON");
    invoked.fetch_add(1, Ordering::SeqCst);
    events.lock().unwrap().push(event.clone());
    let ok = |v: Value| -> Answer { (200, vec![], v.to_string().into_bytes()) };
    match function {
        "echo" => {
            assert_eq!(query, "Qualifier=live");
            ok(
                json!({"statusCode": 200, "headers": {"content-type": "application/json"},
                      "body": event.to_string()}),
            )
        }
        "shaped" => ok(json!({
            "statusCode": 201,
            "headers": {"content-type": "text/plain", "x-handler": "shaped"},
            "multiValueHeaders": {"x-multi": ["a", "b"]},
            "cookies": ["session=abc; HttpOnly", "theme=dark"],
            "body": "aGVsbG8sIGJpbmFyeQ==",
            "isBase64Encoded": true,
        })),
        "bare" => ok(json!({"hello": "world", "n": 3})),
        "fails" => (
            200,
            vec![("x-amz-function-error", "Unhandled".into())],
            json!({"errorType": "ValueError", "errorMessage": "db password is hunter2",
                   "stackTrace": ["  File \"/var/task/app.py\", line 3"]})
            .to_string()
            .into_bytes(),
        ),
        "slow" => {
            std::thread::sleep(Duration::from_secs(3));
            ok(json!("late"))
        }
        "throttled" => refuse(429, "TooManyRequestsException", "Rate exceeded"),
        _ => refuse(404, "ResourceNotFoundException", "Function not found"),
    }
}

struct Env {
    dir: TempDir,
    server: Server,
    gateway: Gateway,
    endpoint: Endpoint,
    wrong_key_endpoint: Endpoint,
}

/// A container credentials endpoint (as ECS and EKS Pod Identity serve one) that hands out
/// [`KEY_ID`]'s credentials to a request with `Authorization: container-auth`, expiring
/// five minutes and two seconds later (so the gateway fetches them again within about
/// ten seconds: five minutes before expiry, but not sooner than its retry interval); how
/// many it answered.
fn container_credentials() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut authorized = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                authorized |= line.trim_end() == "authorization: container-auth";
            }
            let (status, body) = if authorized {
                count.fetch_add(1, Ordering::SeqCst);
                (
                    200,
                    json!({"AccessKeyId": KEY_ID, "SecretAccessKey": SECRET, "Token": TOKEN,
                           "Expiration": (time::OffsetDateTime::now_utc()
                               + time::Duration::seconds(302))
                           .format(&time::format_description::well_known::Rfc3339)
                           .unwrap()})
                    .to_string(),
                )
            } else {
                (403, String::new())
            };
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    (format!("http://127.0.0.1:{port}/v2/credentials"), served)
}

impl Env {
    fn new() -> Env {
        Env::with_credentials(&[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", TOKEN),
        ])
    }

    /// An environment whose gateway has `credentials` (environment variables) as its AWS
    /// credentials' source.
    fn with_credentials(credentials: &[(&str, &str)]) -> Env {
        let dir = TempDir::new("gw-lambda");
        let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
        for f in ["orders", "payments", "stranger"] {
            server.register(f);
        }
        server.cli_ok(&["intention", "allow", "orders", "payments"]);
        common::gateway::token(&server, &dir, &[]);
        let (gateway_ca, cert, key) = common::localhost_certificate(&dir, "gateway");
        let endpoint = Endpoint::start(SECRET);
        let wrong_key_endpoint = Endpoint::start("another-secret");
        let route = |name: &str, function: &str, port: u16, extra: &str| {
            format!(
                r#"
[[route]]
name = "{name}"
function = "payments"
path_prefix = "/{name}"
auth = ["mtls", "jwt", "api-key"]
lambda = {{ function = "{function}", region = "{REGION}", endpoint = "http://127.0.0.1:{port}"{extra} }}
timeout = "1s"
"#
            )
        };
        let p = endpoint.port;
        let routes = [
            route("echo", "echo", p, r#", qualifier = "live""#),
            route("shaped", "shaped", p, ""),
            route("bare", "bare", p, ""),
            route("fails", "fails", p, ""),
            route("slow", "slow", p, ""),
            route("throttled", "throttled", p, ""),
            route("wrongkey", "echo", wrong_key_endpoint.port, ""),
        ]
        .concat();
        let out = common::run(common::writ_command().args([
            "gateway", "apikey", "partner", "--plan", "p", "--route", "echo",
        ]));
        let api_key = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let entry = String::from_utf8_lossy(&out.stderr);
        let entry = entry[entry.find("[[api_key]]").expect("the entry")..].to_string();
        std::fs::write(dir.join("api-key"), api_key).unwrap();
        let config = format!(
            "{head}{routes}\n[usage_plan.p]\nquota = 100\n{entry}\n",
            head = common::gateway::config_head(&server, &cert, &key),
        );
        std::fs::write(dir.join("gateway.toml"), config).unwrap();
        let mut cmd = common::writ_command();
        cmd.args(["gateway", "--config"])
            .arg(dir.join("gateway.toml"))
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION");
        for (k, v) in credentials {
            cmd.env(k, v);
        }
        let gateway = Gateway::start(cmd, &dir, gateway_ca);
        Env {
            dir,
            server,
            gateway,
            endpoint,
            wrong_key_endpoint,
        }
    }

    fn curl(&self, method: &str, path: &str) -> Curl {
        self.gateway.curl(method, path)
    }

    fn login(&self, function: &str) -> Svid {
        common::gateway::login(&self.server, &self.dir, function)
    }

    fn as_caller(&self, svid: &Svid, method: &str, path: &str) -> Curl {
        self.gateway.as_caller(svid, method, path)
    }
}

#[test]
fn the_gateway_invokes_lambda_functions_as_the_verified_caller() {
    let env = Env::new();
    let orders = env.login("orders");
    wait_for("the gateway to sync", Duration::from_secs(15), || {
        (env.as_caller(&orders, "GET", "/bare").send().status == 200).then_some(())
    });

    // Allowed: the event is payload 2.0, with the caller in requestContext.authorizer.
    let r = env
        .as_caller(&orders, "POST", "/echo/items?a=1&a=2&b=x%20y")
        .header("cookie: c1=v1; c2=v2")
        .header("x-multi: one")
        .header("x-multi: two")
        .header("x-writ-caller: spiffe://example.org/fn/admin")
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);
    let event = r.json();
    assert_eq!(event, env.endpoint.last_event());
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawPath"], "/echo/items");
    assert_eq!(event["rawQueryString"], "a=1&a=2&b=x%20y");
    assert_eq!(
        event["queryStringParameters"],
        json!({"a": "1,2", "b": "x y"})
    );
    assert_eq!(event["cookies"], json!(["c1=v1", "c2=v2"]));
    assert_eq!(event["headers"]["x-multi"], "one,two");
    assert_eq!(
        event["headers"]["x-writ-caller"],
        format!("spiffe://{TRUST_DOMAIN}/fn/orders"),
        "the caller's forged header is replaced"
    );
    assert_eq!(event["body"], r#"{"amount":5}"#);
    assert_eq!(event["isBase64Encoded"], false);
    let rc = &event["requestContext"];
    assert_eq!(rc["http"]["method"], "POST");
    assert_eq!(rc["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(rc["domainName"], format!("127.0.0.1:{}", env.gateway.port));
    assert_eq!(
        rc["authorizer"],
        json!({"writ": {"principal": format!("spiffe://{TRUST_DOMAIN}/fn/orders"),
                        "authenticatedBy": "mtls", "route": "echo"}})
    );
    assert_eq!(rc["requestId"].as_str().unwrap().len(), 36);

    // A body that is not UTF-8 goes as base64.
    let r = env
        .as_caller(&orders, "POST", "/echo")
        .body(vec![0xff, 0xfe, 0x00, 0x01], "application/octet-stream")
        .send()
        .expect(200);
    assert_eq!(r.json()["body"], "//4AAQ==");
    assert_eq!(r.json()["isBase64Encoded"], true);

    // A JWT-SVID and an API key are consumed: the function sees who, never the token.
    let jwt = orders
        .mint_jwt(&env.server, &format!("spiffe://{TRUST_DOMAIN}/fn/payments"))
        .expect(200)
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let event = env
        .curl("GET", "/echo")
        .bearer(&jwt)
        .send()
        .expect(200)
        .json();
    assert!(event["headers"].get("authorization").is_none(), "{event}");
    assert_eq!(
        event["requestContext"]["authorizer"]["writ"]["authenticatedBy"],
        "jwt"
    );
    let key = std::fs::read_to_string(env.dir.join("api-key")).unwrap();
    let event = env
        .curl("GET", "/echo")
        .header(&format!("x-api-key: {key}"))
        .send()
        .expect(200)
        .json();
    assert!(event["headers"].get("x-api-key").is_none(), "{event}");
    assert_eq!(
        event["requestContext"]["authorizer"]["writ"],
        json!({"principal": "apikey:partner", "authenticatedBy": "api-key", "route": "echo"})
    );

    // The function's status, headers, cookies and base64 body.
    let r = env.as_caller(&orders, "GET", "/shaped").send().expect(201);
    assert_eq!(r.body, "hello, binary");
    assert_eq!(r.headers["content-type"][0], "text/plain");
    assert_eq!(r.headers["x-handler"][0], "shaped");
    assert_eq!(r.headers["x-multi"], json!(["a", "b"]));
    assert_eq!(
        r.headers["set-cookie"],
        json!(["session=abc; HttpOnly", "theme=dark"])
    );

    // A bare value: 200, JSON, the value itself.
    let r = env.as_caller(&orders, "GET", "/bare").send().expect(200);
    assert_eq!(r.json(), json!({"hello": "world", "n": 3}));
    assert_eq!(r.headers["content-type"][0], "application/json");

    // A function error: 502 saying so, without the function's message or stack trace;
    // its error type goes to the audit event.
    let r = env.as_caller(&orders, "GET", "/fails").send().expect(502);
    assert_eq!(r.error_code(), "functionError");
    assert_eq!(r.error_message(), "the function failed");
    assert!(
        !r.body.contains("hunter2") && !r.body.contains("app.py"),
        "{}",
        r.body
    );
    let audited = env.server.wait_for_audit("the function error", |e| {
        e["reason"]
            .as_str()
            .is_some_and(|r| r.contains("function error ValueError"))
    });
    assert!(!audited.to_string().contains("hunter2"), "{audited}");

    // Slower than the route's timeout: 504, as for an HTTP upstream.
    let r = env.as_caller(&orders, "GET", "/slow").send().expect(504);
    assert_eq!(r.error_code(), "upstreamTimeout");

    // Throttled by Lambda: 503 naming why, with Retry-After.
    let r = env
        .as_caller(&orders, "GET", "/throttled")
        .send()
        .expect(503);
    assert!(
        r.error_message().contains("TooManyRequestsException"),
        "{}",
        r.body
    );
    assert_eq!(r.headers["retry-after"][0], "1");

    // Credentials the endpoint does not accept: 502 naming AccessDenied.
    let r = env
        .as_caller(&orders, "GET", "/wrongkey")
        .send()
        .expect(502);
    assert!(
        r.error_message().contains("AccessDeniedException"),
        "{}",
        r.body
    );
    assert_eq!(env.wrong_key_endpoint.invocations(), 0);

    // Denied by the intentions: 403, and the function is never invoked.
    let stranger = env.login("stranger");
    let before = env.endpoint.invocations();
    let r = env
        .as_caller(&stranger, "POST", "/echo")
        .json(&json!({}))
        .send()
        .expect(403);
    assert_eq!(r.error_code(), "accessDenied", "{}", r.body);
    assert_eq!(env.endpoint.invocations(), before);

    // No key, token or signature in the gateway's log.
    let log = env.gateway.proc.log();
    for secret in [SECRET, TOKEN, "Signature=", "hunter2"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn credentials_from_the_container_endpoint_sign_the_invocations() {
    let (url, served) = container_credentials();
    let env = Env::with_credentials(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-auth"),
    ]);
    assert_eq!(served.load(Ordering::SeqCst), 1, "fetched once, at start");
    let orders = env.login("orders");
    wait_for("the gateway to sync", Duration::from_secs(15), || {
        (env.as_caller(&orders, "GET", "/bare").send().status == 200).then_some(())
    });
    assert!(env.endpoint.invocations() >= 1);
    // Fetched again before they expire, and still signing.
    wait_for("the credentials' refresh", Duration::from_secs(30), || {
        (served.load(Ordering::SeqCst) >= 2).then_some(())
    });
    env.as_caller(&orders, "GET", "/bare").send().expect(200);
    let log = env.gateway.proc.log();
    for secret in [SECRET, TOKEN, "container-auth"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
