//! Where the database is and how to open it: the `--db` and `--lock-timeout` flags, shared by
//! every command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use mcp_audit_store::{SqliteOptions, SqliteStore};

/// The database the user pointed at.
#[derive(Debug, Clone)]
pub struct Db {
    path: PathBuf,
    lock_timeout: Duration,
}

impl Db {
    pub fn new(path: PathBuf, lock_timeout: Duration) -> Db {
        Db { path, lock_timeout }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn options(&self) -> SqliteOptions {
        SqliteOptions {
            lock_timeout: self.lock_timeout,
        }
    }

    /// Opens (creating and migrating as needed) for commands that write.
    pub fn open_writable(&self) -> anyhow::Result<SqliteStore> {
        Ok(SqliteStore::open(&self.path, self.options())?)
    }

    /// Opens an existing database for writing, for commands that change what is there
    /// (`cleanup`): they have nothing to do in a new, empty database.
    pub fn open_existing_writable(&self) -> anyhow::Result<SqliteStore> {
        self.must_exist()?;
        self.open_writable()
    }

    /// Opens an existing database for commands that only read.
    pub fn open_read_only(&self) -> anyhow::Result<SqliteStore> {
        self.must_exist()?;
        Ok(SqliteStore::open_read_only(&self.path, self.options())?)
    }

    /// Only `log` creates a database: anywhere else a mistyped `--db` must be an error, not an
    /// empty answer (and a stray new file).
    fn must_exist(&self) -> anyhow::Result<()> {
        if !self.path.exists() {
            bail!(
                "database {} does not exist (record events with `mcp-audit log`, or point --db or MCP_AUDIT_DB at one)",
                self.path.display()
            );
        }
        Ok(())
    }
}
