//! `writ operator rotate-master-key` against the real binary: every secret version stays
//! readable, the CA, JWT and audit keys keep working, the old key opens nothing, a running
//! server blocks the rotation, and an interrupted rotation is settled at the next start.

mod common;

use std::path::Path;
use std::process::Output;

use common::{
    Server, Svid, TRUST_DOMAIN, TempDir, join_token_evidence, run, success, writ_command,
};

fn operator(data_dir: &Path, envs: &[(&str, &str)], extra: &[&str]) -> Output {
    let mut cmd = writ_command();
    cmd.args(["operator", "rotate-master-key", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .envs(envs.iter().copied());
    run(&mut cmd)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn put(server: &Server, dir: &TempDir, name: &str, value: &[u8], extra: &[&str]) -> String {
    let file = dir.unique_file("value", "bin");
    std::fs::write(&file, value).unwrap();
    let mut args = vec![
        "secret",
        "put",
        name,
        "--value-file",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = server.cli_ok(&[&args[..], &["--format", "json"]].concat());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["versionId"].as_str().unwrap().to_string()
}

fn get_version(server: &Server, name: &str, version: &str) -> Vec<u8> {
    let out = server.cli(&["secret", "get", name, "--version-id", version]);
    success(&format!("get {name} {version}"), &out);
    out.stdout
}

fn key_file(data: &Path) -> String {
    std::fs::read_to_string(data.join("master.key")).unwrap()
}

#[test]
fn after_a_master_key_rotation_every_version_reads_and_the_old_key_opens_nothing() {
    let dir = TempDir::new("master-key");
    let data = dir.join("data");
    let mut server = Server::start(&data, &["--trust-domain", TRUST_DOMAIN]);
    let mut versions = Vec::new();
    for (name, value) in [
        ("prod/a", b"first a".to_vec()),
        ("prod/a", b"second a".to_vec()),
        ("prod/b", vec![0xff, 0x00, 0x13, 0x37]),
    ] {
        let binary: &[&str] = if value.is_ascii() { &[] } else { &["--binary"] };
        let id = put(&server, &dir, name, &value, binary);
        versions.push((name, id, value));
    }
    server.register("orders");

    let refused = operator(&data, &[], &[]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("a writ server is running"),
        "{}",
        stderr(&refused)
    );

    server.stop();
    let old_key = key_file(&data);
    let out = operator(&data, &[], &[]);
    let text = success("rotate-master-key", &out);
    assert!(
        text.contains("rewrapped 3 secret versions, 2 signing keys and 2 audit keys"),
        "{text}"
    );
    let new_key = key_file(&data);
    assert_ne!(old_key, new_key);
    assert!(!data.join("master.key.new").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The old key opens nothing any more: a server given it does not start.
    let with_old = Server::launch(&data, &[], &[("WRIT_MASTER_KEY", old_key.trim())]);
    let err = with_old
        .err()
        .expect("the old key must not start the server");
    assert!(err.contains("could not unwrap"), "{err}");

    let server = Server::start(&data, &[]);
    for (name, id, value) in &versions {
        assert_eq!(&get_version(&server, name, id), value, "{name} {id}");
    }
    // The CA key signs, the JWT key mints, and the audit chain and checkpoints verify.
    let token = server.join_token("orders");
    let svid = Svid::login(&server, &dir, "orders", join_token_evidence(&token))
        .unwrap_or_else(|r| panic!("login: {} {}", r.status, r.body));
    svid.mint_jwt(&server, "payments").expect(200);
    server.cli_ok(&["audit", "verify"]);
}

#[test]
fn a_key_from_the_environment_goes_to_a_new_file_and_interruptions_settle_at_start() {
    let dir = TempDir::new("master-key-env");
    let data = dir.join("data");
    let env_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let envs = [("WRIT_MASTER_KEY", env_key)];
    let mut server = Server::launch(&data, &["--trust-domain", TRUST_DOMAIN], &envs)
        .unwrap_or_else(|e| panic!("{e}"));
    let id = put(&server, &dir, "app/key", b"value", &[]);
    server.stop();

    let out = operator(&data, &envs, &[]);
    assert!(
        stderr(&out).contains("give --new-key-file"),
        "{}",
        stderr(&out)
    );
    let new_file = dir.join("new.key");
    let out = operator(
        &data,
        &envs,
        &["--new-key-file", new_file.to_str().unwrap()],
    );
    let text = success("rotate-master-key (env)", &out);
    assert!(text.contains("set it as WRIT_MASTER_KEY"), "{text}");
    let new_key = std::fs::read_to_string(&new_file).unwrap();

    // A rotation that committed but did not rename its file: master.key is the old key and
    // master.key.new the new one. The next start keeps the new one.
    write_0600(&data.join("master.key"), &format!("{env_key}\n"));
    write_0600(&data.join("master.key.new"), &new_key);
    let mut server = Server::start(&data, &[]);
    assert!(server.log().contains("had committed"), "{}", server.log());
    assert_eq!(key_file(&data), new_key);
    assert!(!data.join("master.key.new").exists());
    assert_eq!(get_version(&server, "app/key", &id), b"value");
    server.stop();

    // One that did not commit: master.key.new opens nothing, so it is removed.
    write_0600(
        &data.join("master.key.new"),
        "BAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiM=\n",
    );
    let server = Server::start(&data, &[]);
    assert!(
        server.log().contains("had not committed"),
        "{}",
        server.log()
    );
    assert_eq!(key_file(&data), new_key);
    assert_eq!(get_version(&server, "app/key", &id), b"value");
}

fn write_0600(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}
