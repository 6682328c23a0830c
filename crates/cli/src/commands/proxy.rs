//! `mcp-audit proxy`: run an MCP server behind the audit proxy, over stdio; or, with
//! `--listen` and `--upstream`, put the audit proxy in front of a remote Streamable HTTP server.

use std::ffi::OsString;
use std::time::Duration;

use anyhow::{Context, Result};
use mcp_audit_core::{Actor, EventId};
use mcp_audit_proxy::{ProxyConfig, SessionConfig, incomplete_outcomes, run_stdio};
use mcp_audit_store::{Durability, Recorder, RecorderConfig, StoreError, StoredEvent};

use crate::commands::integrity::{CheckpointFlags, Checkpointing};
use crate::db::Db;

/// Run an MCP server as a child process and record every operation that passes through.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  mcp-audit proxy -- npx -y @modelcontextprotocol/server-everything
  mcp-audit proxy --db /var/lib/mcp-audit/audit.db --server-name files --user alice -- \\
      npx -y @modelcontextprotocol/server-filesystem /srv/shared
  mcp-audit proxy --checkpoint-key audit.key --checkpoint-out /mnt/elsewhere/cp.jsonl -- <server>

  mcp-audit proxy --listen 127.0.0.1:8080 --upstream http://127.0.0.1:3001/mcp \\
      --jwt-jwks jwks.json --jwt-required --trusted-proxy 10.0.0.0/8

Put the whole line where your MCP client expects the server command. The client's bytes reach
the server unchanged, and the server's reach the client unchanged; the exit status is the
server's. With --durability sync (the default) tools/call, resources/read and prompts/get are
forwarded only once their record is durable; batch never holds traffic. Operations left without
an answer by a crash are recorded as incomplete at the next start (or by `mcp-audit recover`).
With --listen, the proxy serves the upstream's path (here /mcp) over HTTP; clients use
http://127.0.0.1:8080/mcp instead of the server's URL.")]
pub struct ProxyArgs {
    /// The server's name in the audit trail (default: the name it reports).
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Who is using the client (default: the operating-system user).
    #[arg(long, value_name = "ID", conflicts_with = "listen")]
    user: Option<String>,
    /// `sync`: an operation runs only once its record is durable (if that record can not be
    /// written, the client gets a JSON-RPC error and the operation does not run); `batch`:
    /// never wait.
    #[arg(long, default_value = "sync", value_parser = |s: &str| s.parse::<Durability>())]
    durability: Durability,
    /// Larger arguments and results are stored as an excerpt with their size and SHA-256.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    capture_limit: usize,
    /// With --durability batch: once the audit store has refused writes for this long, calls
    /// are refused with a JSON-RPC error (and recorded `denied`) until it takes them again;
    /// `off` never refuses. Records wait in memory meanwhile (up to 65,536; past that, a gap
    /// event counts the lost ones).
    #[arg(long, default_value = "30s", value_parser = parse_max_outage, value_name = "DURATION|off")]
    max_outage: MaxOutage,
    #[command(flatten)]
    checkpoints: crate::commands::integrity::CheckpointFlags,
    #[command(flatten)]
    http: crate::commands::proxy_http::HttpArgs,
    /// The server command and its arguments, after `--`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required_unless_present = "listen",
        conflicts_with = "listen",
        value_name = "SERVER COMMAND"
    )]
    server: Vec<OsString>,
}

pub fn run(db: &Db, args: ProxyArgs) -> Result<i32> {
    if args.http.listen.is_some() {
        return crate::commands::proxy_http::run(
            db,
            args.http,
            crate::commands::proxy_http::Common {
                server_name: args.server_name,
                durability: args.durability,
                capture_limit: args.capture_limit,
                checkpoints: args.checkpoints,
                max_outage: args.max_outage,
            },
        );
    }
    let audit = ProxyAudit::start(
        db,
        args.durability,
        Transport::Stdio,
        &args.checkpoints,
        args.max_outage,
    )?;
    let (user_id, auth_method) = match args.user {
        Some(user) => (user, "configured"),
        None => (os_user(), "os_user"),
    };
    let config = ProxyConfig {
        command: args.server,
        session: SessionConfig {
            session_id: EventId::new().to_string(),
            server_name: args.server_name,
            actor: Actor {
                user_id: Some(user_id),
                auth_method: Some(auth_method.to_string()),
                ..Actor::default()
            },
            transport: "stdio",
            capture_limit: args.capture_limit,
            record_intents: args.durability == Durability::Sync,
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(async {
        let stop = stop_signal();
        audit.recover().await?;
        let code = run_stdio(
            config,
            audit.recorder.clone(),
            tokio::io::stdin(),
            tokio::io::stdout(),
            stop,
        )
        .await;
        audit.finish(code).await
    });
    // Our stdin may still be open when the server has gone: do not wait for the client.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(result?.unwrap_or(1))
}

/// How long, in `sync` mode, an outcome may wait for the next call's intent to be committed
/// with it. Longer only delays the outcome of a session's last call.
const SYNC_LINGER: Duration = Duration::from_millis(2);

/// How long, in `batch` mode over HTTP, a record may wait for others to be committed with it.
/// Calls from many clients to a real server come a few hundred microseconds apart: committed
/// one or two at a time, each commit rewrote a dozen 16 KiB pages, and that was most of the
/// proxy's CPU (`docs/benchmarks.md`). Nobody waits for a `batch` record, so this delays no
/// call; it only widens, by this much, the window a crash could lose.
const HTTP_BATCH_LINGER: Duration = Duration::from_millis(5);

/// Which adapter a proxy runs: they differ in how long the writer holds a batch open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Stdio,
    Http,
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

/// How long a `batch` proxy forwards calls while the store refuses writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaxOutage(pub(crate) Option<Duration>);

fn parse_max_outage(text: &str) -> Result<MaxOutage, String> {
    if text == "off" {
        return Ok(MaxOutage(None));
    }
    crate::time_arg::parse_duration(text).map(|d| MaxOutage(Some(d)))
}

/// At most this many records wait for the writer in a `batch` proxy, and at most this many go
/// in one transaction: what a `kill -9` can lose is bounded by their sum (1,536 records), and
/// by time, by what the writer takes to commit that many (`docs/proxy.md` has the figures).
/// The library's defaults (65,536 and 4,096) let a killed proxy lose up to 7,470 answered calls
/// in a flood; at the proxy's throughput the smaller queue costs nothing measurable, since a
/// writer that keeps up never has more than a batch waiting.
const BATCH_QUEUE: usize = 1_024;
const BATCH_MAX: usize = 512;

/// What both proxy modes record through: the recorder over the store opened for writing, the
/// operations the last run left without an answer, and checkpointing on the store's log.
pub(crate) struct ProxyAudit {
    pub(crate) recorder: Recorder,
    pending: Vec<StoredEvent>,
    checkpointing: Checkpointing,
}

impl ProxyAudit {
    /// Opens the store and starts the recorder. On PostgreSQL, with `batch` records wait in a
    /// local spool while the server is unreachable; with `sync` the traffic waits for it
    /// (fail-closed). The recorder itself is `batch`: outcome events never hold the traffic,
    /// and the adapters make intents durable one by one when `durability` is `sync`.
    pub(crate) fn start(
        db: &Db,
        durability: Durability,
        transport: Transport,
        checkpoints: &CheckpointFlags,
        max_outage: MaxOutage,
    ) -> Result<ProxyAudit> {
        let mut store = db.open_writable(durability)?;
        let pending = match store.pending_without_outcome() {
            Ok(pending) => pending,
            // A `batch` proxy on PostgreSQL starts on its spool while the server is away; the
            // calls a crash left open are closed by the next start that reaches it.
            Err(StoreError::Unavailable { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let checkpointing = checkpoints.start(store.log_id())?;
        let mut config = RecorderConfig {
            durability: Durability::Batch,
            checkpoints: checkpointing.policy.clone(),
            linger: linger(durability, transport),
            ..RecorderConfig::default()
        };
        if durability == Durability::Batch {
            config.queue_capacity = BATCH_QUEUE;
            config.max_batch = BATCH_MAX;
            config.max_outage = max_outage.0;
        }
        let recorder = Recorder::start(store, config)?;
        Ok(ProxyAudit {
            recorder,
            pending,
            checkpointing,
        })
    }

    /// Records `incomplete` for the operations the last run left without an answer.
    pub(crate) async fn recover(&self) -> Result<()> {
        for event in incomplete_outcomes(&self.pending) {
            self.recorder.record_async(event).await?;
        }
        Ok(())
    }

    /// Once the adapter has stopped with `served`: shuts the recorder down and posts the last
    /// checkpoints. The adapter's failure is reported first, then an incomplete trail, then
    /// checkpoints that could not be posted.
    pub(crate) async fn finish<T, E>(self, served: Result<T, E>) -> Result<T>
    where
        anyhow::Error: From<E>,
    {
        let shutdown = self.recorder.shutdown_async().await;
        let value = served?;
        shutdown.context("the audit trail is incomplete")?;
        self.checkpointing.finish()?;
        Ok(value)
    }
}

/// Completes on SIGINT or SIGTERM: clients stop their server that way when it lingers. The
/// handlers are installed here, at the call (inside the runtime), not when the future is first
/// polled: a signal that comes between the two would otherwise kill the proxy unrecorded.
pub(crate) fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
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

/// The operating-system user: `USER`/`LOGNAME`, else the password entry of the process's uid
/// (services often run without those variables), else `uid:N`.
pub(crate) fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    if let Some(user) = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
    {
        return user;
    }
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".to_string();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)? == uid.to_string()).then(|| name.to_string())
        })
        .unwrap_or_else(|| format!("uid:{uid}"))
}
