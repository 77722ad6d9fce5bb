//! The SQLite database file. It holds wrapped keys, token hashes and the audit log, so it
//! is made owner-only (0600) before SQLite opens it, whatever the umask: SQLite gives the
//! `-wal` and `-shm` files it creates beside it the main file's permissions. When it cannot
//! be created or opened, the error names the file and the cause, not SQLite's bare
//! "unable to open database file".

use std::fs::{OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::StoreError;

/// Owner read and write only.
const MODE: u32 = 0o600;

/// The file a `sqlite:` URL names, and whether it may be created; `None` for an in-memory
/// database.
pub(super) fn file_of(url: &str) -> Option<(PathBuf, bool)> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    let text = path.to_string_lossy();
    if text.starts_with("file:sqlx-in-memory-") || text == ":memory:" || url.contains("mode=memory")
    {
        return None;
    }
    Some((path.to_path_buf(), url.contains("mode=rwc")))
}

/// The file beside `path` SQLite makes with this suffix (`-wal`, `-shm`).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Makes the database file 0600 if it is missing (and `create`), or takes group and other
/// permissions away from it and its `-wal` and `-shm` files if it has them.
pub(super) fn prepare(path: &Path, create: bool) -> Result<(), StoreError> {
    let made = if create {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .open(path)
        {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
            Err(e) => {
                return Err(StoreError::Open(format!(
                    "cannot create the SQLite database {}: {e}{}",
                    path.display(),
                    directory_hint(path)
                )));
            }
        }
    } else {
        false
    };
    for file in [
        path.to_path_buf(),
        beside(path, "-wal"),
        beside(path, "-shm"),
    ] {
        let Some(meta) = std::fs::metadata(&file).ok().filter(|m| m.is_file()) else {
            continue;
        };
        // A new file gets exactly 0600 (the umask may have taken more away); an existing
        // one loses what group and others had.
        let mode = meta.permissions().mode() & 0o777;
        if (made && mode != MODE) || mode & 0o077 != 0 {
            std::fs::set_permissions(&file, Permissions::from_mode(mode & 0o700 | MODE)).map_err(
                |e| {
                    StoreError::Open(format!(
                        "cannot make {} readable by its owner only: {e}",
                        file.display()
                    ))
                },
            )?;
        }
    }
    Ok(())
}

/// Opens one connection and reads the schema, so that a database SQLite cannot open or
/// read (a read-only data dir: SQLite cannot make the `-shm` file a WAL database needs)
/// fails at once, with its path and the cause. The pool would instead retry the
/// connection until its acquire timeout, and then say only that it timed out.
pub(super) async fn check_opens(url: &str, path: &Path) -> Result<(), StoreError> {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .map_err(|e| open_error(path, &e))?;
    let read = sqlx::raw_sql("SELECT count(*) FROM sqlite_master")
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    read.map(|_| ()).map_err(|e| open_error(path, &e))
}

/// The error for a database file SQLite could not open: its path, SQLite's reason, and
/// whether its directory is writable (SQLite creates the `-wal` and `-shm` files there).
pub(super) fn open_error(path: &Path, e: &sqlx::Error) -> StoreError {
    StoreError::Open(format!(
        "cannot open the SQLite database {}: {e}{}",
        path.display(),
        directory_hint(path)
    ))
}

/// Why the directory of `path` may be the cause, if it is: missing, or not writable.
fn directory_hint(path: &Path) -> String {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let probe = dir.join(format!(".writ-write-probe-{}", std::process::id()));
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(MODE)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            String::new()
        }
        Err(e) => format!(
            " (the directory {} must exist and be writable by this user, since SQLite \
             creates the database's -wal and -shm files beside it: {e})",
            dir.display()
        ),
    }
}
