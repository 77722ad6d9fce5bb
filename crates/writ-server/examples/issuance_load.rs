//! Load generator for SVID issuance through the API (see BENCHMARKS.md and
//! bench/issuance.sh, which starts a server and runs this against it).
//!
//! It registers a function (allowed to read one secret), logs in once with a join token,
//! and then, from `--connections` keep-alive mTLS connections, renews the X.509-SVID
//! (`POST /v1/svid/x509`), mints JWT-SVIDs (`POST /v1/svid/jwt`) or reads the secret
//! (`POST /v1/secrets/get`, each read durable in the audit log before it is answered) as
//! fast as the server answers, for `--seconds`.
//! Every answer is checked (status 200 and a certificate or token in the body).
//!
//! ```text
//! issuance_load --addr https://127.0.0.1:7443 --data-dir DIR [--connections 32] [--seconds 10] [--what x509|jwt|secret]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Args {
    addr: String,
    data_dir: std::path::PathBuf,
    connections: usize,
    seconds: u64,
    what: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        addr: "https://127.0.0.1:7443".into(),
        data_dir: "writ-data".into(),
        connections: 32,
        seconds: 10,
        what: "x509".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => a.addr = value,
            "--data-dir" => a.data_dir = value.into(),
            "--connections" => a.connections = value.parse().map_err(|_| "--connections")?,
            "--seconds" => a.seconds = value.parse().map_err(|_| "--seconds")?,
            "--what" => a.what = value,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

fn roots(pem_text: &str) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for block in pem::parse_many(pem_text).expect("bundle PEM") {
        roots.add(block.into_contents().into()).expect("CA cert");
    }
    roots
}

fn client(
    ca_pem: &str,
    identity: Option<(&str, Vec<u8>)>,
) -> Result<reqwest::Client, Box<dyn std::error::Error>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_pem));
    let tls = match identity {
        Some((cert_pem, key_der)) => {
            let chain = pem::parse_many(cert_pem)?
                .into_iter()
                .map(|b| b.into_contents().into())
                .collect();
            builder.with_client_auth_cert(
                chain,
                rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
            )?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .pool_max_idle_per_host(1024)
        .build()?)
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> Result<Value, String> {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
    if status.is_success() {
        Ok(v)
    } else {
        Err(format!("{url}: {status} {v}"))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    let ca = std::fs::read_to_string(a.data_dir.join("ca.pem"))?;
    let admin = std::fs::read_to_string(a.data_dir.join("admin-token"))?
        .trim()
        .to_string();
    let setup = client(&ca, None)?;
    let name = format!("bench-{}", std::process::id());
    let secret = format!("bench/{name}");
    // The function may read one secret (for --what secret).
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "secrets:GetSecretValue", "Resource": format!("writ:secret/{secret}")}]});
    post(
        &setup,
        &format!("{}/v1/functions", a.addr),
        Some(&admin),
        json!({"name": name, "policies": [policy]}),
    )
    .await?;
    post(
        &setup,
        &format!("{}/v1/secrets/create", a.addr),
        Some(&admin),
        json!({"name": secret, "secretString": "postgres://bench:not-a-real-password@db/bench"}),
    )
    .await?;
    let join = post(
        &setup,
        &format!("{}/v1/functions/{name}/join-tokens", a.addr),
        Some(&admin),
        json!({}),
    )
    .await?;
    let key = rcgen::KeyPair::generate()?;
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)?
        .pem()?;
    let login = post(
        &setup,
        &format!("{}/v1/login", a.addr),
        None,
        json!({"function": name, "attestation": {"type": "joinToken", "token": join["token"]}, "csr": csr}),
    )
    .await?;
    let svid = login["x509Svid"].as_str().ok_or("no SVID")?.to_string();
    let key_der = key.serialize_der();

    let (path, body, field) = match a.what.as_str() {
        "x509" => ("/v1/svid/x509", json!({"csr": csr}), "x509Svid"),
        "jwt" => ("/v1/svid/jwt", json!({"audience": "payments"}), "token"),
        "secret" => ("/v1/secrets/get", json!({"name": secret}), "secretString"),
        other => return Err(format!("--what {other}: x509, jwt or secret").into()),
    };
    let url = format!("{}{path}", a.addr);
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..a.connections {
        // One client per task: one keep-alive connection each.
        let c = client(&ca, Some((&svid, key_der.clone())))?;
        let (url, body, done, count) = (url.clone(), body.clone(), done.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let start = Instant::now();
                let v = post(&c, &url, None, body.clone()).await?;
                if v.get(field).and_then(Value::as_str).is_none() {
                    return Err(format!("no {field} in the answer"));
                }
                latencies.push(start.elapsed());
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>(latencies)
        }));
    }
    // Warm up (handshakes), then measure a window.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = count.load(Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    let measured = count.load(Ordering::Relaxed) - before;
    let elapsed = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "{}: {:.0} per second over {:.1} s with {} connections; latency p50 {:.2} ms, p99 {:.2} ms",
        a.what,
        measured as f64 / elapsed,
        elapsed,
        a.connections,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
    Ok(())
}
