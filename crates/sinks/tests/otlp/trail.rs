//! The trail the OTLP tests deliver from: events recorded into a real SQLite log, read back as
//! a sink following the log reads them.

use mcp_audit_core::{AuditEvent, EventId};
use mcp_audit_store::{
    Filter, Maintain, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore, StoredEvent,
};
use tempfile::TempDir;

/// A SQLite log holding `events`, and the events as a sink reads them back (seq order).
pub struct Trail {
    dir: TempDir,
}

impl Trail {
    /// Records on a thread of its own: the recorder blocks until each event is durable, which
    /// the tests' async runtime does not allow on its own thread.
    pub fn record(events: Vec<AuditEvent>) -> Trail {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        std::thread::spawn(move || {
            let store = SqliteStore::open(path, SqliteOptions::default()).unwrap();
            let recorder = Recorder::start(store, RecorderConfig::default()).unwrap();
            for event in events {
                recorder.record(event).unwrap();
            }
            recorder.shutdown().unwrap();
        })
        .join()
        .unwrap();
        Trail { dir }
    }

    pub fn read(&self) -> Vec<StoredEvent> {
        let mut store =
            SqliteStore::open_read_only(self.dir.path().join("audit.db"), SqliteOptions::default())
                .unwrap();
        // Every record, as a sink follows the log: pending intents too.
        let every = Filter {
            include_pending: true,
            ..Filter::default()
        };
        let mut events = Vec::new();
        store
            .for_each(&every, &mut |e| {
                events.push(e);
                Ok(())
            })
            .unwrap();
        events
    }

    pub fn erase(&self, id: EventId) {
        let mut store =
            SqliteStore::open(self.dir.path().join("audit.db"), SqliteOptions::default()).unwrap();
        assert!(store.erase_payload(id).unwrap());
    }
}
