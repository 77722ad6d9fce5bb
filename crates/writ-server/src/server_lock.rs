//! One lock tells whether writ servers are running on a deployment: every server holds it
//! shared for as long as it runs, and a master-key rotation, which must not race a server
//! still wrapping keys with the old master key, holds it alone. With SQLite it is a lock
//! file in the data directory; with PostgreSQL also a session advisory lock in the
//! database, which every server on it shares.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::store::Store;

/// A held lock; released when dropped (or when the process exits, however it exits).
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
    // Behind a mutex only so a running server's state can be shared between threads.
    _database: Option<std::sync::Mutex<sqlx::AnyConnection>>,
}

/// How a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// By a running server, beside other servers.
    Server,
    /// By a master-key rotation, alone.
    Exclusive,
}

/// Takes the lock for `data_dir` and `store`, or says who holds it.
pub async fn acquire(data_dir: &Path, store: &Store, mode: Mode) -> Result<ServerLock, String> {
    let busy = || match mode {
        Mode::Server => "a master-key rotation is running on this deployment; start the server \
                         when `writ operator rotate-master-key` has finished"
            .to_string(),
        Mode::Exclusive => "a writ server is running on this deployment; stop every server \
                            first, then rotate the master key"
            .to_string(),
    };
    let path = data_dir.join("writ.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let locked = match mode {
        Mode::Server => file.try_lock_shared(),
        Mode::Exclusive => file.try_lock(),
    };
    match locked {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(busy()),
        Err(TryLockError::Error(e)) => return Err(format!("{}: {e}", path.display())),
    }
    let database = match store.backend() {
        crate::store::Backend::Sqlite => None,
        crate::store::Backend::Postgres => Some(
            store
                .server_lock(mode == Mode::Exclusive)
                .await
                .map_err(|e| format!("taking the database's server lock: {e}"))?
                .ok_or_else(busy)?,
        ),
    };
    Ok(ServerLock {
        _file: file,
        _database: database.map(std::sync::Mutex::new),
    })
}
