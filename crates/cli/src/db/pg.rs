//! The PostgreSQL side of [`Db`]: opening a log's writer, a reader, one log's reader, the list
//! of logs.
//!
//! A build without the `postgres` feature has no PostgreSQL client; the same functions then
//! refuse with an error that says so, rather than `--db postgres://...` being taken for a
//! SQLite file name (which would create a file of that name) or failing in some less clear way.

#[cfg(feature = "postgres")]
pub(super) use with_postgres::*;
#[cfg(not(feature = "postgres"))]
pub(super) use without_postgres::*;

#[cfg(feature = "postgres")]
mod with_postgres {
    use mcp_audit_core::EventId;
    use mcp_audit_sinks::witness::logs::{EveryLog, WitnessLogs};
    use mcp_audit_store::{Durability, PgOptions, PgStore, Read, SinkState, SpoolOptions, Store};

    use crate::db::Db;

    /// The writer of log `log_id` (a new one if `None`). A writer that records with `batch`
    /// durability spools to `--spool-dir` while the server is unreachable; any other waits for
    /// it (fail-closed).
    pub(in crate::db) fn writer(
        db: &Db,
        url: &str,
        durability: Durability,
        log_id: Option<String>,
    ) -> anyhow::Result<Box<dyn Store>> {
        Ok(Box::new(PgStore::open(
            url,
            PgOptions {
                log_id,
                spool: (durability == Durability::Batch).then(|| SpoolOptions::new(&db.spool_dir)),
                reconnect_timeout: db.reconnect_timeout,
                ..PgOptions::default()
            },
        )?))
    }

    /// A reader of every log.
    pub(in crate::db) fn reader(url: &str) -> anyhow::Result<Box<dyn Store>> {
        Ok(Box::new(PgStore::open_read_only(url)?))
    }

    /// What erases payloads, or keeps a witness's state: a writer of no log.
    pub(in crate::db) fn eraser(url: &str) -> anyhow::Result<Box<dyn Store>> {
        Ok(Box::new(PgStore::open_unclaimed(url)?))
    }

    /// What a sink follows every log of the database with.
    pub(in crate::db) fn follower(url: &str) -> anyhow::Result<Box<dyn SinkState>> {
        Ok(Box::new(PgStore::open_follower(url)?))
    }

    /// What a witness sink follows every log of the database with.
    pub(in crate::db) fn witness_logs(url: &str) -> anyhow::Result<Box<dyn WitnessLogs>> {
        Ok(Box::new(EveryLog::open(url)?))
    }

    /// The ids of the database's logs.
    pub(in crate::db) fn logs(url: &str) -> anyhow::Result<Vec<String>> {
        Ok(PgStore::open_read_only(url)?.logs()?)
    }

    /// The logs that hold an event expired at `now`.
    pub(in crate::db) fn logs_with_expired(
        url: &str,
        now: jiff::Timestamp,
    ) -> anyhow::Result<Vec<String>> {
        Ok(PgStore::open_read_only(url)?.logs_with_expired(now)?)
    }

    /// A reader of the log `log_id` alone.
    pub(in crate::db) fn log_reader(url: &str, log_id: &str) -> anyhow::Result<Box<dyn Store>> {
        let mut store = PgStore::open_read_only(url)?;
        store.read_log(log_id)?;
        Ok(Box::new(store))
    }

    /// A reader of the log that holds event `id`; `None` when no log does.
    pub(in crate::db) fn event_log_reader(
        url: &str,
        id: EventId,
    ) -> anyhow::Result<Option<Box<dyn Store>>> {
        let mut store = PgStore::open_read_only(url)?;
        let Some(event) = store.get(id)? else {
            return Ok(None);
        };
        store.read_log(&event.log_id)?;
        Ok(Some(Box::new(store)))
    }
}

#[cfg(not(feature = "postgres"))]
mod without_postgres {
    use mcp_audit_core::EventId;
    use mcp_audit_store::{Durability, SinkState, Store};

    use crate::db::Db;

    /// Why every function here fails. The URL is left out: it may hold a password.
    pub(in crate::db) const UNSUPPORTED: &str = "--db is a PostgreSQL URL, but this mcp-audit was built without PostgreSQL support (cargo feature `postgres`, on by default): use a SQLite file, or build with the feature";

    pub(in crate::db) fn writer(
        _db: &Db,
        _url: &str,
        _durability: Durability,
        _log_id: Option<String>,
    ) -> anyhow::Result<Box<dyn Store>> {
        anyhow::bail!(UNSUPPORTED)
    }

    pub(in crate::db) fn reader(_url: &str) -> anyhow::Result<Box<dyn Store>> {
        anyhow::bail!(UNSUPPORTED)
    }

    pub(in crate::db) fn eraser(_url: &str) -> anyhow::Result<Box<dyn Store>> {
        anyhow::bail!(UNSUPPORTED)
    }

    pub(in crate::db) fn follower(_url: &str) -> anyhow::Result<Box<dyn SinkState>> {
        anyhow::bail!(UNSUPPORTED)
    }

    pub(in crate::db) fn witness_logs(
        _url: &str,
    ) -> anyhow::Result<Box<dyn mcp_audit_sinks::witness::logs::WitnessLogs>> {
        anyhow::bail!(UNSUPPORTED)
    }

    pub(in crate::db) fn logs(_url: &str) -> anyhow::Result<Vec<String>> {
        anyhow::bail!(UNSUPPORTED)
    }

    pub(in crate::db) fn logs_with_expired(
        _url: &str,
        _now: jiff::Timestamp,
    ) -> anyhow::Result<Vec<String>> {
        anyhow::bail!(UNSUPPORTED)
    }

    pub(in crate::db) fn log_reader(_url: &str, _log_id: &str) -> anyhow::Result<Box<dyn Store>> {
        anyhow::bail!(UNSUPPORTED)
    }

    pub(in crate::db) fn event_log_reader(
        _url: &str,
        _id: EventId,
    ) -> anyhow::Result<Option<Box<dyn Store>>> {
        anyhow::bail!(UNSUPPORTED)
    }

    #[cfg(test)]
    mod tests {
        use std::time::Duration;

        use mcp_audit_core::EventId;
        use mcp_audit_store::Durability;

        use crate::db::Db;

        #[test]
        fn a_postgres_url_is_refused_by_every_opener_with_the_reason_and_no_password() {
            let dir = tempfile::tempdir().unwrap();
            let db = Db::new(
                "postgres://audit:s3cret@db.internal/audit".into(),
                Duration::from_secs(1),
                None,
                dir.path().join("spool"),
                Duration::from_secs(1),
            );
            let attempts = [
                db.open_writable(Durability::Sync).map(drop),
                db.open_writable(Durability::Batch).map(drop),
                db.open_existing_writable().map(drop),
                db.open_read_only().map(drop),
                db.log_ids().map(drop),
                db.open_log("a-log").map(drop),
                db.open_log_reader().map(drop),
                db.open_event_log(EventId::new()).map(drop),
                db.open_log_writer().map(drop),
                db.open_eraser().map(drop),
                db.open_witness_logs().map(drop),
                db.logs_with_expired(jiff::Timestamp::now()).map(drop),
                db.open_writer_of("a-log").map(drop),
            ];
            for attempt in attempts {
                let message = format!("{:#}", attempt.unwrap_err());
                assert!(
                    message.contains("built without PostgreSQL support"),
                    "{message}"
                );
                assert!(!message.contains("s3cret"), "{message}");
            }
            // Nothing was taken for a SQLite file: no spool, no file named after the URL.
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
            assert!(!std::path::Path::new("postgres:").exists());
        }
    }
}
