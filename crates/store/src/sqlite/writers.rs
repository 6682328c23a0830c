//! Which processes are recording into a SQLite file right now, so that crash recovery leaves
//! a live proxy's calls alone.
//!
//! A proxy's intent stays `pending` until its call is answered. Recovery (`mcp-audit recover`,
//! or a proxy starting) closes the pending intents that no outcome completes as `incomplete`:
//! right for a proxy that crashed, wrong for one that is still running, which then also
//! records the call's real outcome. PostgreSQL tells them apart by the advisory lock each
//! writer holds on its log; one SQLite file is one log shared by every process that records
//! into it, so the same question is asked of a lock file beside the database
//! (`<file>-writers`):
//!
//! - every recovering writer holds a shared `flock` on it for as long as it lives; the kernel
//!   lets go of it when the process ends, however it ends (`kill -9` included), so a lock
//!   never outlives its process;
//! - recovery takes the lock exclusively, without waiting: it gets it only when no other such
//!   writer is alive, and then every pending intent is a crashed one's. Otherwise it recovers
//!   nothing (the live writers' calls are in flight, and which of the pending intents are
//!   theirs can not be told), and the intents of a crashed writer wait for a recovery that
//!   runs alone: the next `mcp-audit recover` with no proxy running, or the next proxy that
//!   starts alone.
//!
//! Once it has recovered, the writer keeps the lock shared, as every other one does.

use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;

use crate::error::StoreError;

/// This process's hold on the writers' lock file of one database.
#[derive(Debug)]
pub(super) struct WriterLock {
    /// Open for as long as the store is: closing it (or the process ending) releases the lock.
    file: File,
}

/// What taking the lock found.
#[derive(Debug)]
pub(super) enum Claim {
    /// No other live writer: the caller may recover every pending intent.
    Alone(WriterLock),
    /// Other writers are live: their calls are in flight; recover nothing.
    Shared(WriterLock),
}

/// The lock file of the database at `db`.
fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push("-writers");
    PathBuf::from(name)
}

/// Takes the lock of the database at `db`: exclusively if no other writer holds it (then
/// shared, once the caller has what it needs: see [`WriterLock::share`]), shared otherwise.
pub(super) fn claim(db: &Path) -> Result<Claim, StoreError> {
    let path = lock_path(db);
    let open_error = |e: std::io::Error| StoreError::Open {
        path: path.clone(),
        reason: format!("the writers' lock file: {e}"),
    };
    let file = crate::files::private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(open_error)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Claim::Alone(WriterLock { file })),
        Err(Errno::WOULDBLOCK) => {
            // Held by live writers, shared: join them. Waits only while another recovery
            // holds it exclusively, for as long as its query takes.
            flock(&file, FlockOperation::LockShared).map_err(|e| open_error(e.into()))?;
            Ok(Claim::Shared(WriterLock { file }))
        }
        Err(e) => Err(open_error(e.into())),
    }
}

impl WriterLock {
    /// Turns an exclusive hold into a shared one, so that other writers may start. (`flock`
    /// converts the lock in place.)
    pub(super) fn share(self) -> Result<WriterLock, StoreError> {
        flock(&self.file, FlockOperation::LockShared)
            .map_err(|e| StoreError::Database(format!("the writers' lock file: {e}")))?;
        Ok(self)
    }
}
