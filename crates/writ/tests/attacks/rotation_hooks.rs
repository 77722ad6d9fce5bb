//! Secret rotation hooks: where the server may be made to connect.
//!
//! The attack: `writ secret rotate --hook-url` pointed at the cloud's metadata service
//! (`https://169.254.169.254/...`), a private or unique-local address, or any loopback
//! port over plain HTTP, was accepted and called; and the error texts told a refused port
//! from a silent one, which made the server a port scanner. Hooks now reach only public
//! addresses unless the operator allow-lists a network, and every connection failure reads
//! the same.

use std::net::TcpListener;

use super::common::{Response, Server, TRUST_DOMAIN, TempDir};
use serde_json::json;

fn rotate(server: &Server, url: &str) -> Response {
    server
        .curl("POST", "/v1/secrets/rotate")
        .bearer(&server.admin_token())
        .json(&json!({"name": "app/key", "hook": {"type": "https", "url": url}, "rotateNow": true}))
        .send()
}

fn start(dir: &TempDir, args: &[&str]) -> Server {
    let mut all = vec!["--trust-domain", TRUST_DOMAIN];
    all.extend_from_slice(args);
    let server = Server::start(&dir.join("data"), &all);
    let value = dir.join("v1.txt");
    std::fs::write(&value, "v1").unwrap();
    server.cli_ok(&[
        "secret",
        "put",
        "app/key",
        "--value-file",
        value.to_str().unwrap(),
    ]);
    server
}

#[test]
fn hooks_cannot_reach_metadata_private_or_loopback_addresses_unless_allow_listed() {
    let dir = TempDir::new("attack-hook-ssrf");
    let server = start(&dir, &[]);
    let local = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = local.local_addr().unwrap().port();
    for (url, kind) in [
        (
            "https://169.254.169.254/latest/meta-data/".to_string(),
            "link-local",
        ),
        ("https://10.0.0.1/rotate".to_string(), "private"),
        ("https://192.168.1.1/rotate".to_string(), "private"),
        ("https://[fd00::1]/rotate".to_string(), "unique local"),
        (
            "https://[::ffff:169.254.169.254]/".to_string(),
            "link-local",
        ),
        ("https://0x7f.1/".to_string(), "loopback"),
        (format!("http://127.0.0.1:{port}/"), "loopback"),
    ] {
        let r = rotate(&server, &url);
        assert_eq!(r.status, 400, "{url}: {}", r.body);
        let message = r.error_message();
        assert!(message.contains(kind), "{url}: {message}");
        assert!(message.contains("--hook-allow-net"), "{url}: {message}");
    }

    // A name that resolves to loopback passes the check, and is refused when it is called.
    let r = rotate(&server, &format!("https://localhost:{port}/"));
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(
        r.error_message().contains("could not reach the hook"),
        "{}",
        r.body
    );
    assert!(
        server
            .log()
            .contains("resolves to no address a hook may reach")
    );
}

#[test]
fn every_connection_failure_reads_the_same() {
    let dir = TempDir::new("attack-hook-scan");
    // Loopback allow-listed, so the server does connect, as it would to a private network
    // the operator allowed.
    let server = start(&dir, &["--hook-allow-net", "127.0.0.0/8"]);
    // A closed port, and a port that accepts and then says nothing TLS.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in open.incoming().take(4) {
            drop(stream);
        }
    });
    let refused = rotate(&server, &format!("https://127.0.0.1:{closed}/"));
    let dropped = rotate(&server, &format!("https://127.0.0.1:{open_port}/"));
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert_eq!(dropped.status, 502, "{}", dropped.body);
    assert_eq!(refused.body, dropped.body);
    assert!(refused.error_message().contains("could not reach the hook"));
}
