//! `writ advisories update` against a real HTTP server: nginx on 127.0.0.1 (an
//! ephemeral port, a temporary prefix and configuration) serving an `all.zip` built here
//! from the repository's test OSV data. Covers a full download, an interrupted download
//! resumed with `Range`/`If-Range`, a file changed on the server between the two (started
//! again), and an archive that is not OSV data (refused; the installed data untouched).
//! Skipped with a message when nginx is not installed.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const NGINX: &str = "/usr/sbin/nginx";

fn writ() -> Command {
    Command::new(env!("CARGO_BIN_EXE_writ"))
}

fn osv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../writ-lint/tests/data/osv")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint")
}

/// An `all.zip` of the test records of `eco`, plus a stored (uncompressed) padding
/// record of `pad` pseudo-random bytes so that a rate-limited download takes a while.
fn build_zip(eco: &str, pad: usize) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let deflate = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let mut entries: Vec<_> = std::fs::read_dir(osv().join(eco))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            z.start_file(p.file_name().unwrap().to_str().unwrap(), deflate)
                .unwrap();
            z.write_all(&std::fs::read(&p).unwrap()).unwrap();
        }
        if pad > 0 {
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            let noise: String = (0..pad)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    char::from(b'a' + (x % 26) as u8)
                })
                .collect();
            let stored = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            z.start_file("TEST-PADDING.json", stored).unwrap();
            let rec = serde_json::json!({"id": "TEST-PADDING", "details": noise, "affected": []});
            z.write_all(rec.to_string().as_bytes()).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

struct Nginx {
    child: Child,
    port: u16,
    root: PathBuf,
    www: PathBuf,
}

impl Nginx {
    fn start(name: &str) -> Option<Nginx> {
        if !Path::new(NGINX).exists() {
            eprintln!("skipped: {NGINX} is not installed");
            return None;
        }
        let root = std::env::temp_dir().join(format!("writ-adv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let www = root.join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::create_dir_all(root.join("logs")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log {root}/logs/access.log;
  client_body_temp_path {root}/tmp-body;
  proxy_temp_path {root}/tmp-proxy;
  fastcgi_temp_path {root}/tmp-fastcgi;
  uwsgi_temp_path {root}/tmp-uwsgi;
  scgi_temp_path {root}/tmp-scgi;
  default_type application/zip;
  server {{
    listen 127.0.0.1:{port};
    root {www};
    location /slow/ {{
      alias {www}/;
      limit_rate 24k;
    }}
  }}
}}
"#,
            root = root.display(),
            www = www.display(),
        );
        std::fs::write(root.join("nginx.conf"), conf).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(&root)
            .arg("-e")
            .arg(root.join("logs/error.log"))
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Nginx {
            child,
            port,
            root,
            www,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn publish(&self, eco: &str, bytes: &[u8]) {
        std::fs::create_dir_all(self.www.join(eco)).unwrap();
        std::fs::write(self.www.join(eco).join("all.zip"), bytes).unwrap();
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.root.join("logs/access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn update(args: &[&str]) -> Output {
    writ()
        .arg("advisories")
        .arg("update")
        .args(args)
        .output()
        .expect("run writ")
}

fn lint_deps(db: &Path, path: &Path) -> Value {
    let o = writ()
        .args(["lint", "--deps", "--format", "json", "--advisories-dir"])
        .arg(db)
        .arg(path)
        .output()
        .unwrap();
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn downloads_the_ecosystems_in_use_and_lint_reads_them() {
    let Some(nginx) = Nginx::start("full") else {
        return;
    };
    for eco in ["PyPI", "npm", "crates.io", "Go"] {
        nginx.publish(eco, &build_zip(eco, 0));
    }
    let db = nginx.root.join("db");
    let deps = fixtures().join("deps");
    let o = update(&[
        deps.to_str().unwrap(),
        "--dir",
        db.to_str().unwrap(),
        "--source",
        &nginx.url("/"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    for eco in ["PyPI", "npm", "crates.io", "Go"] {
        assert!(
            err.contains(&format!("writ advisories: {eco}: downloading")),
            "{err}"
        );
        let live = db.join(eco);
        assert!(
            std::fs::symlink_metadata(&live)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let info: Value = serde_json::from_str(
            &std::fs::read_to_string(live.join(".writ-download.json")).unwrap(),
        )
        .unwrap();
        assert!(info["validator"].as_str().is_some(), "{info}");
        let index = std::fs::read_to_string(live.join(".writ-index.tsv")).unwrap();
        assert!(!index.is_empty(), "{eco}");
    }
    let v = lint_deps(&db, &deps);
    let ids: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "WRIT-DEP-001")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 6, "{ids:#?}");
    let index = std::fs::read_to_string(db.join("PyPI/.writ-index.tsv")).unwrap();
    assert!(
        index.contains("requests\tGHSA-x84v-xcm2-53pg.json\n"),
        "{index}"
    );
    assert!(
        index.contains("pyyaml\tGHSA-8q59-q68h-6hv4.json\n"),
        "{index}"
    );

    // Updating again replaces the data atomically; the old directory is gone.
    let before = std::fs::read_link(db.join("PyPI")).unwrap();
    let o = update(&[
        "--ecosystem",
        "pypi",
        "--dir",
        db.to_str().unwrap(),
        "--source",
        &nginx.url("/"),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let after = std::fs::read_link(db.join("PyPI")).unwrap();
    assert_ne!(before, after);
    assert!(!db.join(&before).exists());

    // An archive that is not OSV data is refused and the installed data kept.
    nginx.publish("PyPI", b"<html>not a zip</html>");
    let o = update(&[
        "--ecosystem",
        "PyPI",
        "--dir",
        db.to_str().unwrap(),
        "--source",
        &nginx.url("/"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("is not a zip of OSV records"), "{err}");
    assert_eq!(std::fs::read_link(db.join("PyPI")).unwrap(), after);
    assert!(db.join("PyPI/GHSA-x84v-xcm2-53pg.json").exists());

    // A missing file is an error naming the URL and status.
    let o = update(&[
        "--ecosystem",
        "Go",
        "--dir",
        db.to_str().unwrap(),
        "--source",
        &nginx.url("/nothing"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("/nothing/Go/all.zip: the server answered 404"),
        "{err}"
    );
}

/// Starts a rate-limited download, kills it once part of the file is on disk, and runs
/// again: it must resume with a `Range` request (206), not start over.
#[test]
fn an_interrupted_download_resumes_and_a_changed_file_starts_again() {
    let Some(nginx) = Nginx::start("resume") else {
        return;
    };
    let zip = build_zip("PyPI", 160 * 1024);
    nginx.publish("PyPI", &zip);
    let db = nginx.root.join("db");
    let partial = db.join(".PyPI.all.zip.partial");
    let interrupt = |source: &str| {
        let _ = std::fs::remove_file(&partial);
        let mut child = writ()
            .args(["advisories", "update", "--ecosystem", "PyPI", "--dir"])
            .arg(&db)
            .args(["--source", source])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
            if have >= 30 * 1024 {
                break;
            }
            assert!(Instant::now() < deadline, "the download did not start");
            assert!(child.try_wait().unwrap().is_none(), "finished too early");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::metadata(&partial).unwrap().len()
    };

    let have = interrupt(&nginx.url("/slow"));
    assert!(have < zip.len() as u64, "{have}");
    let o = update(&[
        "--ecosystem",
        "PyPI",
        "--dir",
        db.to_str().unwrap(),
        "--source",
        &nginx.url("/"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("resuming"), "{err}");
    assert!(!partial.exists());
    let log = nginx.access_log();
    let last = log.lines().last().unwrap();
    assert!(last.contains("\"GET /PyPI/all.zip HTTP/1.1\" 206"), "{log}");
    let sent: u64 = last
        .split("\" 206 ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(sent, zip.len() as u64 - have, "{last}");
    assert!(db.join("PyPI/TEST-PADDING.json").exists());
    let v = lint_deps(&db, &fixtures().join("deps/functions/orders"));
    assert_eq!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "WRIT-DEP-001")
            .count(),
        2,
        "{v}"
    );

    // Interrupted again, then the file changes on the server: If-Range no longer
    // matches, the server sends the whole new file, and the download starts over.
    interrupt(&nginx.url("/slow"));
    std::thread::sleep(Duration::from_millis(1100));
    let changed = build_zip("PyPI", 100 * 1024);
    nginx.publish("PyPI", &changed);
    let o = update(&[
        "--ecosystem",
        "PyPI",
        "--dir",
        db.to_str().unwrap(),
        "--source",
        &nginx.url("/"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("changed since the interrupted download"),
        "{err}"
    );
    let log = nginx.access_log();
    assert!(
        log.lines()
            .last()
            .unwrap()
            .contains(&format!("\" 200 {} ", changed.len())),
        "{log}"
    );
}
