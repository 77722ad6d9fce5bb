//! The host without the rest of writ, for benchmarks in a release build that does not
//! compile the whole workspace: `cargo build --release -p writ-lambda --example lambda_host`.
//!
//! Usage: `lambda_host TEMPLATE CONFIG CREDENTIALS LISTEN DATA_DIR`; prints the address as
//! `writ lambda` does. Logs go nowhere (no subscriber), as in a quiet deployment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use writ_lambda::auth::Authorizer;
use writ_lambda::definition;
use writ_lambda::host::{HostSettings, serve};
use writ_lambda::invoke::RetrySchedule;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [template, config, credentials, listen, data] = &args[..] else {
        return Err("usage: lambda_host TEMPLATE CONFIG CREDENTIALS LISTEN DATA_DIR".into());
    };
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
    let dir = |p: &str| {
        Path::new(p)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    };
    let functions = definition::parse_template(template, &dir(template), &read(template)?)
        .map_err(|e| e.to_string())?;
    let host_config =
        definition::parse_config(config, &read(config)?).map_err(|e| e.to_string())?;
    let functions = definition::merge(functions, &host_config, config, &dir(config))
        .map_err(|e| e.to_string())?;
    let creds = read(credentials)?;
    let authorizer = Authorizer::new(
        Some((credentials, &creds)),
        &functions,
        &host_config.region,
        &host_config.account_id,
    )
    .map_err(|e| e.to_string())?;
    let settings = HostSettings {
        region: host_config.region.clone(),
        account: host_config.account_id.clone(),
        functions,
        runtimes: host_config.runtimes.clone(),
        failure_dir: Path::new(data).join("lambda-failures"),
        retry: RetrySchedule::new(
            host_config
                .retry_delays_seconds
                .iter()
                .map(|d| Duration::from_secs_f64(*d))
                .collect(),
        ),
        audit_log: Path::new(data).join("lambda-audit.jsonl"),
        authorizer,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen.as_str())
            .await
            .map_err(|e| format!("{listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("writ: lambda host listening on http://{addr}");
        serve(listener, settings, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
    })
}
