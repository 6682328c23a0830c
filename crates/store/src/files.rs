//! File modes: the database, its write-ahead log and shared memory, the writers' lock and the
//! spool hold payloads (or their traces), so they are created `0600` and their directories
//! `0700`, whatever the process's umask. An explicit mode at creation is enough: the umask can
//! only take permission bits away, never add them. SQLite creates its `-wal` and `-shm` files
//! with the main file's mode (its unix VFS reads it and `fchmod`s them to match), so creating
//! the main file first, empty and `0600`, carries over to both.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

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
