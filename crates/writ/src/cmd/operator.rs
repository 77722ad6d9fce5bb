//! `writ operator`: maintenance of a deployment that works on its store directly, with
//! every server stopped.

use std::path::PathBuf;
use std::process::ExitCode;

use writ_server::master_key::{MASTER_KEY_ENV, MasterKey};
use writ_server::master_key_rotation::{self, pending_file};
use writ_server::server_lock::{self, Mode};
use writ_server::store::Store;

/// `writ operator ...`
#[derive(clap::Args)]
pub struct OperatorArgs {
    #[command(subcommand)]
    command: OperatorCommand,
}

#[derive(clap::Subcommand)]
enum OperatorCommand {
    /// Rotate the master key: rewrap every key it wraps (secret data keys, CA, JWT and
    /// audit keys) under a new one, in one transaction. Ciphertexts are not touched.
    #[command(after_help = "Examples:
  writ operator rotate-master-key --data-dir /var/lib/writ
  WRIT_MASTER_KEY=... writ operator rotate-master-key --store postgres://writ@db/writ --new-key-file new.key

Stop every server first (the command refuses while one runs). With the key in
DATA_DIR/master.key, the new key replaces it there. With WRIT_MASTER_KEY, the new key is
written to --new-key-file (mode 0600): give it to every server as WRIT_MASTER_KEY before
starting them again. The old key opens nothing afterwards; backups of the store taken
before the rotation still need it.")]
    RotateMasterKey {
        /// The data directory (master key file, SQLite database, lock file).
        #[arg(long, env = "WRIT_DATA_DIR", default_value = "writ-data")]
        data_dir: PathBuf,
        /// PostgreSQL URL; SQLite in --data-dir when omitted.
        #[arg(long, env = "WRIT_STORE")]
        store: Option<String>,
        /// Where to write the new key when the old one comes from WRIT_MASTER_KEY.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
}

/// Runs `writ operator`.
pub fn run(args: OperatorArgs) -> Result<ExitCode, String> {
    let OperatorCommand::RotateMasterKey {
        data_dir,
        store,
        new_key_file,
    } = args.command;
    let env_key = std::env::var(MASTER_KEY_ENV).ok();
    if env_key.is_some() && new_key_file.is_none() {
        return Err(format!(
            "the master key comes from {MASTER_KEY_ENV}: give --new-key-file FILE to receive the new one"
        ));
    }
    if env_key.is_none() && new_key_file.is_some() {
        return Err(format!(
            "--new-key-file is for keys given in {MASTER_KEY_ENV}; the new key replaces {}",
            data_dir.join("master.key").display()
        ));
    }
    let key_path = data_dir.join("master.key");
    if env_key.is_none() && !key_path.exists() {
        return Err(format!(
            "{}: no master key here; give the server's --data-dir, or set {MASTER_KEY_ENV}",
            key_path.display()
        ));
    }
    let url = match store {
        Some(url) => url,
        None => {
            let db = data_dir.join("writ.db");
            if !db.exists() {
                return Err(format!(
                    "{}: no store here; give the server's --data-dir or --store",
                    db.display()
                ));
            }
            writ_server::server::sqlite_url(&db).map_err(|e| e.to_string())?
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the runtime: {e}"))?;
    runtime.block_on(async move {
        let store = Store::open(&url)
            .await
            .map_err(|e| format!("opening the store: {e}"))?;
        let _lock = server_lock::acquire(&data_dir, &store, Mode::Exclusive).await?;
        if env_key.is_none()
            && let Some(done) = master_key_rotation::settle_interrupted(&data_dir, &store).await?
        {
            eprintln!("writ: {done}");
        }
        let old = MasterKey::load(env_key.as_deref(), &key_path).map_err(|e| e.to_string())?;
        let target = new_key_file.unwrap_or_else(|| pending_file(&data_dir));
        let new = MasterKey::create_file(&target).map_err(|e| e.to_string())?;
        let counts = match master_key_rotation::rewrap_all(&store, &old, &new).await {
            Ok(c) => c,
            Err(master_key_rotation::RewrapError::Refused(e)) => {
                let _ = std::fs::remove_file(&target);
                return Err(format!(
                    "nothing changed: {e} (is this the deployment's current master key?)"
                ));
            }
            Err(master_key_rotation::RewrapError::Store(e)) => {
                // The commit may have happened: the new key must survive.
                return Err(format!(
                    "the store failed during the rewrap ({e}); it may have committed. Both keys are kept: {} holds the new one{}",
                    target.display(),
                    if env_key.is_none() {
                        "; the next server start keeps whichever opens the store"
                    } else {
                        "; try the old key first, then the new one"
                    }
                ));
            }
        };
        store.close().await;
        if env_key.is_none() {
            std::fs::rename(&target, &key_path)
                .map_err(|e| format!("{}: {e}", target.display()))?;
        }
        println!(
            "rewrapped {} secret versions, {} signing keys and {} audit keys under the new master key",
            counts.secret_versions, counts.signing_keys, counts.audit_keys
        );
        match env_key {
            Some(_) => println!(
                "the new key is in {}: set it as {MASTER_KEY_ENV} on every server, then start them",
                target.display()
            ),
            None => println!("{} now holds the new key", key_path.display()),
        }
        Ok(ExitCode::SUCCESS)
    })
}
