//! The end of a stdio session must not cost the records of what was read last. Here the
//! client's frames are read while the store is locked by another process and the recorder's
//! queue is full, so the pump that read them waits to queue their records; the server exits
//! meanwhile. The pump must be let finish, not aborted: every frame is on record once the lock
//! is gone. (The server is a shell that sleeps and exits, the scripted peer this fault needs;
//! the real servers are driven by the CLI's tests.)

use std::time::Duration;

use mcp_audit_core::Actor;
use mcp_audit_proxy::{ProxyConfig, SessionConfig, run_stdio};
use mcp_audit_store::{
    Durability, Filter, Read, Recorder, RecorderConfig, SqliteOptions, SqliteStore,
};
use tokio::io::AsyncWriteExt;

const FRAMES: usize = 12;

#[tokio::test]
async fn frames_read_while_the_queue_is_full_are_recorded_after_the_server_exits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let options = SqliteOptions {
        lock_timeout: Duration::from_secs(60),
    };
    let recorder = Recorder::start(
        SqliteStore::open(&path, options.clone()).unwrap(),
        RecorderConfig {
            durability: Durability::Batch,
            queue_capacity: 1,
            max_batch: 1,
            ..RecorderConfig::default()
        },
    )
    .unwrap();

    // Another process's write transaction: the writer waits for it with its first event.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let (mut client, proxy_side) = tokio::io::duplex(1 << 20);
    let (proxy_in, proxy_out) = tokio::io::split(proxy_side);
    let config = ProxyConfig {
        command: ["sh", "-c", "sleep 1"].map(Into::into).to_vec(),
        session: SessionConfig {
            session_id: "stop-test".into(),
            server_name: Some("sleeper".into()),
            actor: Actor::default(),
            transport: "stdio",
            capture_limit: 4096,
            record_intents: false,
        },
        denials: Default::default(),
    };
    let session = tokio::spawn(run_stdio(
        config,
        recorder.clone(),
        proxy_in,
        proxy_out,
        std::future::pending(),
    ));
    // Frames that are not JSON: each is recorded at once, as a protocol error.
    let frames: String = (0..FRAMES).map(|i| format!("not json {i}\n")).collect();
    client.write_all(frames.as_bytes()).await.unwrap();
    client.flush().await.unwrap();

    // The server exits after a second; the lock goes a second after that.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !session.is_finished(),
        "the session waits for the pump that is still recording"
    );
    other.execute_batch("COMMIT").unwrap();
    drop(other);

    session.await.unwrap().unwrap();
    recorder.shutdown_async().await.unwrap();

    let mut reader = SqliteStore::open_read_only(&path, options).unwrap();
    let recorded = reader
        .count(&Filter {
            session_id: Some("stop-test".into()),
            outcome: Some(mcp_audit_core::Outcome::ProtocolError),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(recorded, FRAMES as u64, "every frame read is on record");
}
