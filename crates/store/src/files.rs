//! File modes: the database, its write-ahead log and shared memory, the writers' lock and the
//! spool hold payloads (or their traces), so they are created `0600` and their directories
//! `0700`, whatever the process's umask. An explicit mode at creation is enough: the umask can
//! only take permission bits away, never add them. SQLite creates its `-wal` and `-shm` files
//! with the main file's mode (its unix VFS reads it and `fchmod`s them to match), so creating
//! the main file first, empty and `0600`, carries over to both.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of the files that hold audit records.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// The mode of the directories created for them.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `path` empty with mode `0600` unless it exists (an existing file keeps its mode:
/// see [`readable_by_others`] for the warning about it). A SQLite URI or `:memory:` is left to
/// SQLite.
pub(crate) fn create_private_file(path: &Path) -> std::io::Result<()> {
    let text = path.to_string_lossy();
    if text.is_empty() || text.starts_with("file:") || text == ":memory:" {
        return Ok(());
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Options that create a file `0600` (the caller adds read, write, append...).
pub(crate) fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(PRIVATE_FILE_MODE);
    options
}

/// Creates `dir` and its missing parents with mode `0700`.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
}

/// The permission bits of `path` when it exists and group or others may read or write it.
pub fn readable_by_others(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o066 != 0).then_some(mode)
}

/// The files beside a SQLite database that hold its records or their traces: the database,
/// its write-ahead log and shared memory, and the writers' lock. Those that do not exist are
/// left out by [`exposed_files`].
pub fn sqlite_files(db: &Path) -> Vec<PathBuf> {
    let mut files = vec![db.to_path_buf()];
    for suffix in ["-wal", "-shm", "-writers"] {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    files
}

/// Every regular file under `dir` (a spool), not following links, in name order. A missing
/// or unreadable directory has none.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => dirs.push(entry.path()),
                Ok(t) if t.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    files.sort();
    files
}

/// Of `paths`, those that exist and that group or others may read or write, with their mode:
/// what `serve` and `proxy` warn about at start (a file made before mcp-audit created them
/// `0600`, or by hand, keeps its mode).
pub fn exposed_files(paths: &[PathBuf]) -> Vec<(PathBuf, u32)> {
    paths
        .iter()
        .filter_map(|p| readable_by_others(p).map(|mode| (p.clone(), mode)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs::Permissions;

    use super::*;

    #[test]
    fn exposed_files_lists_the_database_wal_and_spool_files_open_to_others_only() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = dir.path().join("audit.db");
        let files = sqlite_files(&db);
        for (file, mode) in files.iter().zip([0o644, 0o600, 0o640, 0o600]) {
            std::fs::write(file, b"x").expect("write");
            std::fs::set_permissions(file, Permissions::from_mode(mode)).expect("chmod");
        }
        let spool = dir.path().join("spool");
        create_private_dir_all(&spool.join("log")).expect("spool dirs");
        let segment = spool.join("log").join("0001.spool");
        std::fs::write(&segment, b"x").expect("write");
        std::fs::set_permissions(&segment, Permissions::from_mode(0o604)).expect("chmod");

        let mut all = files.clone();
        all.extend(files_under(&spool));
        all.push(dir.path().join("missing.key"));
        let exposed = exposed_files(&all);
        assert_eq!(
            exposed,
            vec![
                (files[0].clone(), 0o644),
                (files[2].clone(), 0o640),
                (segment, 0o604)
            ]
        );
    }
}
