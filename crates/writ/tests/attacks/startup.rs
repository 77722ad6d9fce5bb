//! What the server does with its data directory and master key when they are not as it
//! left them.

use super::common::{Server, TRUST_DOMAIN, TempDir};

/// Moving `master.key` away used to make a fresh random key on the next start, which then
/// failed with "wrong master key" and left the useless new key behind. Now a store that is
/// already initialised stops the server at once, saying the key is missing, and nothing is
/// written.
#[test]
fn a_missing_master_key_stops_the_server_and_writes_nothing() {
    let dir = TempDir::new("attack-master-key");
    let data = dir.join("data");
    let mut server = Server::start(&data, &["--trust-domain", TRUST_DOMAIN]);
    server.stop();
    let key = data.join("master.key");
    let moved = dir.join("master.key.moved");
    std::fs::rename(&key, &moved).unwrap();

    let err = match Server::launch(&data, &[], &[]) {
        Ok(_) => panic!("the server started without its master key"),
        Err(e) => e,
    };
    assert!(err.contains("the master key is missing"), "{err}");
    assert!(err.contains("master.key"), "{err}");
    assert!(!key.exists(), "a new master key file was written");

    // With the key back, the same store starts as before.
    std::fs::rename(&moved, &key).unwrap();
    let mut again = Server::start(&data, &[]);
    again.cli_ok(&["fn", "list"]);
    again.stop();
}
