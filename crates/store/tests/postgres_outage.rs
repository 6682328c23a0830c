//! Connection loss, for real: these tests stop and start the local PostgreSQL server during a
//! run (Debian's `pg_ctlcluster`) and check that nothing recorded is lost.
//!
//! They must not run beside other PostgreSQL tests: `.config/nextest.toml` puts every
//! PostgreSQL test in one serial group, and the tests of this binary also take a lock of their
//! own for `cargo test`. A guard starts the server again whatever happens.

mod backend;

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mcp_audit_core::AuditEvent;
use mcp_audit_store::{
    Durability, Filter, PgOptions, RecordError, Recorder, RecorderConfig, SpoolOptions, StoreError,
};

use backend::{Backend, Db};

/// One outage at a time within this binary.
static SERVER: Mutex<()> = Mutex::new(());

/// The local cluster, stopped on demand and always started again when dropped.
struct Server {
    version: String,
}

impl Server {
    /// The local cluster, or `None` (said) when this machine has none to stop.
    fn local() -> Option<Server> {
        let version = std::fs::read_dir("/etc/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .max()?;
        let have = Command::new("pg_ctlcluster").arg("--help").output().is_ok();
        if !have {
            eprintln!("skipped: no pg_ctlcluster on this machine");
            return None;
        }
        Some(Server { version })
    }

    /// Runs `pg_ctlcluster`; its status is not checked, the server's state is (a cluster
    /// already in the asked state makes it fail harmlessly).
    fn ctl(&self, action: &str) {
        let _ = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &self.version, "main", action])
            .status()
            .expect("pg_ctlcluster runs");
    }

    fn stop(&self) {
        self.ctl("stop");
        assert!(!ready(), "PostgreSQL is still up after stop");
    }

    fn start(&self) {
        self.ctl("start");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ready() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("PostgreSQL did not come back within 30 s");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !ready() {
            let _ = Command::new("pg_ctlcluster")
                .args(["--skip-systemctl-redirect", &self.version, "main", "start"])
                .status();
        }
    }
}

/// What every test of this binary needs: this binary's lock on the server, a database on it,
/// and the local cluster to stop. Dropped in field order: the server is started again before
/// the database's schema is dropped, and the lock is released last.
struct Outage {
    server: Server,
    db: Db,
    _one: std::sync::MutexGuard<'static, ()>,
}

impl Outage {
    /// `None` (said) when there is no PostgreSQL to test or no local cluster to stop.
    fn prepare() -> Option<Outage> {
        let one = SERVER.lock().unwrap_or_else(|p| p.into_inner());
        let db = Db::new(Backend::Postgres)?;
        let server = Server::local()?;
        Some(Outage {
            server,
            db,
            _one: one,
        })
    }
}

/// Whether the local server accepts connections.
fn ready() -> bool {
    Command::new("pg_isready")
        .args(["-q", "-h", "127.0.0.1"])
        .status()
        .is_ok_and(|s| s.success())
}

/// No user: `assert_leaves_match` re-seals what the reader shows, and a reader shows the
/// identity where the hashed metadata holds a user's pseudonym.
fn event(name: String) -> AuditEvent {
    AuditEvent::tool_execution(name).build().unwrap()
}

/// The operations of one log, in seq order, after checking that its seqs are dense from 0.
fn log_in_order(db: &Db, log_id: &str) -> Vec<String> {
    let rows = db
        .pg
        .as_ref()
        .unwrap()
        .raw()
        .query(
            "SELECT seq, operation FROM events WHERE log_id = $1 ORDER BY seq",
            &[&log_id],
        )
        .unwrap();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.get::<_, i64>(0), i as i64, "seqs are dense");
    }
    rows.iter().map(|r| r.get(1)).collect()
}

/// Every stored leaf hash is the one of its seq and event.
fn assert_leaves_match(db: &Db) {
    let mut reader = db.reader();
    reader
        .for_each(&Filter::default(), &mut |e| {
            let sealed = mcp_audit_core::seal(e.event.clone()).unwrap();
            assert_eq!(
                mcp_audit_core::seal::leaf_hash(e.seq, &sealed.meta_digest, &e.payload_commitment),
                e.leaf_hash
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn batch_mode_spools_while_the_server_is_down_and_replays_in_order_when_it_is_back() {
    let Some(outage) = Outage::prepare() else {
        return;
    };
    let Outage { server, db, .. } = &outage;
    let spool = db.dir.path().join("spool");
    let store = db
        .open_pg(PgOptions {
            spool: Some(SpoolOptions::new(&spool)),
            ..db.pg_options()
        })
        .unwrap();
    let r = Recorder::start(
        store,
        RecorderConfig {
            durability: Durability::Batch,
            max_batch: 16,
            ..RecorderConfig::default()
        },
    )
    .unwrap();
    let mut expected = Vec::new();
    let mut record = |r: &Recorder, n: usize, phase: &str| {
        for i in 0..n {
            let name = format!("{phase}-{i}");
            r.record(event(name.clone())).unwrap();
            expected.push(name);
        }
    };
    record(&r, 100, "before");
    r.flush().unwrap();

    server.stop();
    let started = Instant::now();
    record(&r, 100, "during");
    r.flush().expect("the spool takes the batches");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the proxy kept working"
    );
    assert!(
        std::fs::read_dir(&spool).unwrap().count() > 0,
        "a spool file holds them"
    );

    server.start();
    record(&r, 100, "after");
    let stats = r.shutdown().unwrap();
    assert_eq!((stats.recorded, stats.failed), (300, 0));
    assert_eq!(log_in_order(db, backend::LOG_ID), expected);
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "replayed and emptied"
    );
    assert_leaves_match(db);
}

#[test]
fn a_spool_left_behind_is_replayed_by_the_next_writer_that_opens_it() {
    let Some(outage) = Outage::prepare() else {
        return;
    };
    let Outage { server, db, .. } = &outage;
    let spool = db.dir.path().join("spool");
    let options = |log_id: &str| PgOptions {
        log_id: Some(log_id.to_string()),
        spool: Some(SpoolOptions::new(&spool)),
        ..PgOptions::default()
    };
    let r = Recorder::start(
        db.open_pg(options("proxy-that-dies")).unwrap(),
        RecorderConfig {
            durability: Durability::Batch,
            ..RecorderConfig::default()
        },
    )
    .unwrap();
    r.record(event("kept-0".into())).unwrap();
    r.flush().unwrap();
    server.stop();
    for i in 1..50 {
        r.record(event(format!("kept-{i}"))).unwrap();
    }
    // The process ends while the database is still away: only the spool file holds these.
    r.shutdown().unwrap();
    server.start();

    // Another proxy (another log) starting on this host replays it into the log it belongs to.
    let other = db.open_pg(options("next-proxy")).unwrap();
    drop(other);
    let expected: Vec<String> = (0..50).map(|i| format!("kept-{i}")).collect();
    assert_eq!(log_in_order(db, "proxy-that-dies"), expected);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
}

#[test]
fn sync_mode_waits_through_a_restart_and_fails_closed_after_the_timeout() {
    let Some(outage) = Outage::prepare() else {
        return;
    };
    let Outage { server, db, .. } = &outage;
    let r = Recorder::start(
        db.open_pg(PgOptions {
            reconnect_timeout: Duration::from_secs(4),
            ..db.pg_options()
        })
        .unwrap(),
        RecorderConfig::default(),
    )
    .unwrap();
    r.record(event("first".into())).unwrap();

    server.stop();
    let started = Instant::now();
    let err = r.record(event("refused".into())).unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(err, RecordError::Store(StoreError::Unavailable { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert!(
        waited >= Duration::from_secs(4),
        "it waited for the server ({waited:?})"
    );

    // A restart shorter than the timeout is ridden through: the record waits, then lands.
    let r2 = r.clone();
    let waiter = std::thread::spawn(move || r2.record(event("waited".into())));
    std::thread::sleep(Duration::from_millis(500));
    server.start();
    waiter.join().unwrap().unwrap();
    r.record(event("last".into())).unwrap();
    r.shutdown().unwrap();
    assert_eq!(
        log_in_order(db, backend::LOG_ID),
        ["first", "waited", "last"]
    );
}

/// Records the spool has no room for are held in memory (the recorder's backlog) while the
/// server is away, and a flush says so; once it is back they are written after the spooled ones,
/// in the order they came: none lost. (Until 2026-12-07 they were reported lost.)
#[test]
fn a_full_spool_keeps_records_in_memory_and_writes_them_in_order_when_the_server_is_back() {
    let Some(outage) = Outage::prepare() else {
        return;
    };
    let Outage { server, db, .. } = &outage;
    let spool = db.dir.path().join("spool");
    let r = Recorder::start(
        db.open_pg(PgOptions {
            spool: Some(SpoolOptions {
                dir: spool.clone(),
                // Room for a few small events, not for thirty.
                max_bytes: 8 * 1024,
            }),
            reconnect_timeout: Duration::from_millis(300),
            ..db.pg_options()
        })
        .unwrap(),
        RecorderConfig {
            durability: Durability::Batch,
            max_batch: 1,
            ..RecorderConfig::default()
        },
    )
    .unwrap();
    r.record(event("before".into())).unwrap();
    r.flush().unwrap();
    server.stop();
    for i in 0..30 {
        r.record(event(format!("during-{i}"))).unwrap();
    }
    let held = match r.flush() {
        Err(RecordError::Held { held, last_error }) => {
            assert!(last_error.contains("spool is full"), "{last_error}");
            held
        }
        other => panic!("expected records held for the server, got {other:?}"),
    };
    assert!(held > 0 && held < 30, "some spooled, some held: {held}");
    server.start();
    r.record(event("after".into())).unwrap();
    let stats = r.shutdown().unwrap();
    let stored = log_in_order(db, backend::LOG_ID);
    let expected: Vec<String> = std::iter::once("before".to_string())
        .chain((0..30).map(|i| format!("during-{i}")))
        .chain(std::iter::once("after".to_string()))
        .collect();
    assert_eq!(stored, expected);
    assert_eq!(stats.failed, 0);
}
