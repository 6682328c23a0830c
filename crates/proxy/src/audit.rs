//! What a program running the proxy needs around an adapter, whether it is the `mcp-audit`
//! binary or a program that embeds the proxy: the recorder over an opened store, tuned to the
//! durability and transport; the calls the last run left without an answer, closed as
//! `incomplete`; and the recorder's shutdown once the adapter has stopped.
//!
//! The store is opened by the caller (a `Box<dyn Store>` is a store), so the proxy knows no
//! configuration files, command lines or connection strings; checkpoint signing comes as the
//! writer's [`CheckpointPolicy`] (where its checkpoints are posted is the caller's too).
//!
//! ```no_run
//! use mcp_audit_proxy::audit::{AuditOptions, ProxyAudit, Transport};
//! use mcp_audit_proxy::{ProxyConfig, SessionConfig, run_stdio};
//! use mcp_audit_store::{Durability, SqliteOptions, SqliteStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SqliteStore::open("audit.db", SqliteOptions::default())?;
//! let audit = ProxyAudit::start(
//!     Box::new(store),
//!     AuditOptions::new(Durability::Sync, Transport::Stdio),
//! )?;
//! audit.recover().await?;
//! let config = ProxyConfig {
//!     command: vec!["my-mcp-server".into()],
//!     session: SessionConfig {
//!         session_id: "session-1".into(),
//!         server_name: None,
//!         actor: Default::default(),
//!         transport: "stdio",
//!         capture_limit: 64 * 1024,
//!         record_intents: true,
//!     },
//!     denials: Default::default(),
//! };
//! let served = run_stdio(
//!     config,
//!     audit.recorder().clone(),
//!     tokio::io::stdin(),
//!     tokio::io::stdout(),
//!     mcp_audit_proxy::audit::stop_signal(),
//! )
//! .await;
//! let trail = audit.finish().await;
//! served?;
//! trail?;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use mcp_audit_core::{AuditEvent, EventId, Outcome};
use mcp_audit_store::{
    CheckpointPolicy, Durability, RecordError, Recorder, RecorderConfig, RecorderStats, Store,
    StoreError, StoredEvent,
};

/// How long, in `sync` mode, an outcome may wait for the next call's intent to be committed
/// with it. Longer only delays the outcome of a session's last call.
const SYNC_LINGER: Duration = Duration::from_millis(2);

/// How long, in `batch` mode over HTTP, a record may wait for others to be committed with it.
/// Calls from many clients to a real server come a few hundred microseconds apart: committed
/// one or two at a time, each commit rewrote a dozen 16 KiB pages, and that was most of the
/// proxy's CPU (`docs/benchmarks.md`). Nobody waits for a `batch` record, so this delays no
/// call; it only widens, by this much, the window a crash could lose.
const HTTP_BATCH_LINGER: Duration = Duration::from_millis(5);

/// At most this many records wait for the writer in a `batch` proxy, and at most this many go
/// in one transaction: what a `kill -9` can lose is bounded by their sum (1,536 records), and
/// by time, by what the writer takes to commit that many (`docs/proxy.md` has the figures).
/// The library's defaults (65,536 and 4,096) let a killed proxy lose up to 7,470 answered calls
/// in a flood; at the proxy's throughput the smaller queue costs nothing measurable, since a
/// writer that keeps up never has more than a batch waiting.
pub const BATCH_QUEUE: usize = 1_024;
/// See [`BATCH_QUEUE`].
pub const BATCH_MAX: usize = 512;

/// How long a `batch` proxy forwards calls, by default, while the store refuses writes.
pub const MAX_OUTAGE: Duration = Duration::from_secs(30);

/// Which adapter a proxy runs: they differ in how long the writer holds a batch open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Stdio,
    Http,
}

/// How a proxy records.
#[derive(Clone)]
pub struct AuditOptions {
    /// `sync`: the adapters make intents durable before forwarding; `batch`: never wait.
    pub durability: Durability,
    pub transport: Transport,
    /// With `batch`: once the store has refused writes for this long, calls are refused (and
    /// recorded `denied`) until it takes them again; `None` never refuses.
    pub max_outage: Option<Duration>,
    /// Checkpoint signing by the writer, if any.
    pub checkpoints: Option<CheckpointPolicy>,
    /// What is taken out of each event's payload before it is sealed (the recorder's default:
    /// the built-in secrets policy).
    pub redaction: std::sync::Arc<mcp_audit_core::redact::Redactor>,
    /// The recording policy: audit level, classification, retention (classes) → `expires_at`.
    pub policy: mcp_audit_core::Policy,
}

impl AuditOptions {
    /// `durability` over `transport`, with the default outage limit and no checkpoints.
    pub fn new(durability: Durability, transport: Transport) -> AuditOptions {
        AuditOptions {
            durability,
            transport,
            max_outage: Some(MAX_OUTAGE),
            checkpoints: None,
            redaction: RecorderConfig::default().redaction,
            policy: mcp_audit_core::Policy::default(),
        }
    }

    /// The recorder's configuration for these options.
    pub fn recorder_config(&self) -> RecorderConfig {
        // The recorder itself is `batch`: outcome events never hold the traffic, and the
        // adapters make intents durable one by one when `durability` is `sync`.
        let mut config = RecorderConfig {
            durability: Durability::Batch,
            checkpoints: self.checkpoints.clone(),
            linger: linger(self.durability, self.transport),
            redaction: self.redaction.clone(),
            policy: self.policy.clone(),
            ..RecorderConfig::default()
        };
        if self.durability == Durability::Batch {
            config.queue_capacity = BATCH_QUEUE;
            config.max_batch = BATCH_MAX;
            config.max_outage = self.max_outage;
        }
        config
    }
}

/// How long the writer holds a batch that nobody waits for open for more records. The stdio
/// proxy in `batch` does not: its calls are one pipe hop apart, and a lingering writer cost
/// each of them more (added p99 0.2 ms to 0.6 ms) than the commits it saved.
fn linger(durability: Durability, transport: Transport) -> Duration {
    match (durability, transport) {
        (Durability::Sync, _) => SYNC_LINGER,
        (Durability::Batch, Transport::Http) => HTTP_BATCH_LINGER,
        (Durability::Batch, Transport::Stdio) => Duration::ZERO,
    }
}

/// The recorder both adapters record through, and the operations the last run left without
/// an answer.
pub struct ProxyAudit {
    recorder: Recorder,
    pending: Vec<StoredEvent>,
}

impl ProxyAudit {
    /// Starts the recorder on `store`, opened for writing. On PostgreSQL opened for `batch`
    /// (spooling), a store that is away at the start leaves the calls a crash left open to the
    /// next start that reaches it.
    pub fn start(
        mut store: Box<dyn Store>,
        options: AuditOptions,
    ) -> Result<ProxyAudit, StoreError> {
        let pending = match store.pending_without_outcome() {
            Ok(pending) => pending,
            Err(StoreError::Unavailable { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        let recorder = Recorder::start(store, options.recorder_config())?;
        Ok(ProxyAudit { recorder, pending })
    }

    /// The recorder to hand to an adapter ([`crate::run_stdio`], [`crate::run_http`]).
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Records `incomplete` for the operations the last run left without an answer; returns
    /// how many.
    pub async fn recover(&self) -> Result<usize, RecordError> {
        let outcomes = incomplete_outcomes(&self.pending);
        let count = outcomes.len();
        for event in outcomes {
            self.recorder.record_async(event).await?;
        }
        Ok(count)
    }

    /// Once the adapter has stopped: shuts the recorder down, every record queued written (or
    /// the error that says the trail is incomplete).
    pub async fn finish(self) -> Result<RecorderStats, RecordError> {
        self.recorder.shutdown_async().await
    }
}

/// The outcome events that close intents left pending by a proxy that stopped before their
/// answer (crash recovery): `incomplete`, linked to the intent, same correlation id.
pub fn incomplete_outcomes(pending: &[StoredEvent]) -> Vec<AuditEvent> {
    pending
        .iter()
        .map(|p| {
            let mut e = p.event.clone();
            e.id = EventId::new();
            e.timestamp = mcp_audit_core::now_micros();
            e.outcome = Outcome::Incomplete;
            e.completes = Some(p.event.id);
            e.payload.error_message =
                Some("the proxy stopped before the answer was recorded".into());
            e
        })
        .collect()
}

/// Completes on SIGINT or SIGTERM: clients stop their server that way when it lingers. The
/// handlers are installed here, at the call (inside the runtime), not when the future is first
/// polled: a signal that comes between the two would otherwise kill the proxy unrecorded.
pub fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
