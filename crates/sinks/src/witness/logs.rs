//! Which logs one witness sink follows, and the store it reaches each one through.
//!
//! A SQLite file holds one log ([`OneLog`]); a PostgreSQL database holds one per writer, and
//! new ones appear while the sink runs ([`EveryLog`]). A witness sink reads a log's
//! checkpoints and writes only what is its own (the cosignatures it got, its targets'
//! cursors), so on PostgreSQL one connection that claims no log serves them all, pointed at
//! each in turn: it never takes a log's writer lock from the proxy that records into it.

use mcp_audit_store::{Store, StoreError};

/// The logs a witness sink follows.
pub trait WitnessLogs: Send {
    /// The logs to witness now. Asked again every pass, so that a log started since is
    /// followed too.
    fn log_ids(&mut self) -> Result<Vec<String>, StoreError>;

    /// The store pointed at `log_id` (one of [`WitnessLogs::log_ids`]), for one round.
    fn log(&mut self, log_id: &str) -> Result<&mut dyn Store, StoreError>;
}

impl<T: WitnessLogs + ?Sized> WitnessLogs for Box<T> {
    fn log_ids(&mut self) -> Result<Vec<String>, StoreError> {
        (**self).log_ids()
    }

    fn log(&mut self, log_id: &str) -> Result<&mut dyn Store, StoreError> {
        (**self).log(log_id)
    }
}

/// The one log of a SQLite file, through the store that opened it (which a proxy or `log`
/// writing the file meanwhile shares: nothing is held beyond a write's own transaction).
pub struct OneLog(pub Box<dyn Store>);

impl WitnessLogs for OneLog {
    fn log_ids(&mut self) -> Result<Vec<String>, StoreError> {
        // A file with nothing recorded yet has no log id: its round finds no checkpoint.
        Ok(vec![self.0.log_id().to_string()])
    }

    fn log(&mut self, _log_id: &str) -> Result<&mut dyn Store, StoreError> {
        Ok(self.0.as_mut())
    }
}

/// Every log of a PostgreSQL database, through one connection that claims none
/// ([`mcp_audit_store::PgStore::open_unclaimed`]): appending through it is refused, and each
/// write it makes (a cosignature, a cursor) is a transaction of its own.
#[cfg(feature = "postgres")]
pub struct EveryLog(mcp_audit_store::PgStore);

#[cfg(feature = "postgres")]
impl EveryLog {
    /// Connects to `url` (migrating the schema, as any sink does).
    pub fn open(url: &str) -> Result<EveryLog, StoreError> {
        mcp_audit_store::PgStore::open_unclaimed(url).map(EveryLog)
    }
}

#[cfg(feature = "postgres")]
impl WitnessLogs for EveryLog {
    fn log_ids(&mut self) -> Result<Vec<String>, StoreError> {
        self.0.logs()
    }

    fn log(&mut self, log_id: &str) -> Result<&mut dyn Store, StoreError> {
        self.0.read_log(log_id)?;
        Ok(&mut self.0)
    }
}
