//! A server started in this process on a fresh data directory, for tests that drive its
//! router without sockets (axum's `oneshot`).

use std::path::PathBuf;

use writ_server::server::{Running, Settings, start};
use writ_server::state::Limits;

/// A started server, its router, the bootstrap admin token and its data directory
/// (removed when dropped).
pub struct InProcess {
    /// The running server, kept so that its background tasks run until this is dropped.
    _running: Running,
    /// The API's router over the server's state.
    pub router: axum::Router,
    /// The bootstrap admin token.
    pub token: String,
    dir: PathBuf,
}

impl InProcess {
    /// The server's state.
    #[allow(dead_code)]
    pub fn state(&self) -> &std::sync::Arc<writ_server::state::AppState> {
        &self._running.state
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a server for the trust domain `example.org`; `name` tells data directories apart.
pub async fn start_server(name: &str) -> InProcess {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("writ-{name}-{}-{nanos}", std::process::id()));
    let settings = Settings {
        data_dir: dir.clone(),
        store_url: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        trust_domain: Some("example.org".into()),
        limits: Limits {
            x509_ttl: time::Duration::hours(1),
            x509_max_ttl: time::Duration::hours(24),
            jwt_ttl: time::Duration::minutes(5),
            jwt_max_ttl: time::Duration::hours(1),
        },
        tls_names: vec![],
        master_key_env: None,
        node: name.into(),
        audit_copies: Default::default(),
        rotation_hooks: vec![],
        hook_networks: Default::default(),
        aws_iam: Default::default(),
        aws_account_id: writ_server::aws::DEFAULT_ACCOUNT_ID.into(),
    };
    let (running, _listener) = start(settings).await.expect("start the server");
    let router = writ_server::api::router(running.state.clone());
    let token = std::fs::read_to_string(dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    InProcess {
        _running: running,
        router,
        token,
        dir,
    }
}
