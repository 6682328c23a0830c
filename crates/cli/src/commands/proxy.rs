//! `mcp-audit proxy`: run an MCP server behind the audit proxy, over stdio; or, with
//! `--listen` and `--upstream`, put the audit proxy in front of a remote Streamable HTTP server.

use std::ffi::OsString;
use std::time::Duration;

use anyhow::{Context, Result};
use mcp_audit_core::{Actor, EventId};
use mcp_audit_proxy::audit::stop_signal;
use mcp_audit_proxy::{ProxyConfig, SessionConfig, Transport, run_stdio};
use mcp_audit_store::Durability;

use crate::commands::proxy_audit;
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
    #[arg(long, default_value = "30s", value_parser = proxy_audit::parse_max_outage, value_name = "DURATION|off")]
    max_outage: proxy_audit::MaxOutage,
    /// Serve `/metrics` (Prometheus text format: events recorded by kind and outcome, the
    /// writer's queue, commit latency, spool size, calls refused by reason) on this address.
    /// Without it, the HTTP proxy answers `GET /metrics` on its --listen address and the
    /// stdio proxy serves none.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    checkpoints: crate::commands::integrity::CheckpointFlags,
    #[command(flatten)]
    http: crate::commands::proxy_http::HttpArgs,
    #[command(flatten)]
    redaction: crate::redact_arg::RedactArgs,
    #[command(flatten)]
    retention_policy: crate::retention_arg::RetentionPolicyArgs,
    #[command(flatten)]
    sinks: crate::commands::follow::HostedArgs,
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
    let redaction = args.redaction.load()?;
    let policy = args
        .retention_policy
        .apply_to(mcp_audit_core::Policy::default())?;
    for warning in db.exposure_warnings(&args.checkpoints.key_files()) {
        eprintln!("warning: {warning}");
    }
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
                redaction,
                policy,
                metrics_listen: args.metrics_listen,
                sinks: args.sinks,
            },
        );
    }
    let (audit, checkpointing) = proxy_audit::start(
        db,
        args.durability,
        Transport::Stdio,
        &args.checkpoints,
        args.max_outage,
        redaction,
        policy,
    )?;
    let sinks = args.sinks.load(db)?;
    let (user_id, auth_method) = match args.user {
        Some(user) => (user, "configured"),
        None => (os_user(), "os_user"),
    };
    let denials = mcp_audit_proxy::Denials::default();
    let config = ProxyConfig {
        denials: denials.clone(),
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
        let sinks = sinks.map(crate::commands::follow::Hosted::start);
        let metrics = match args.metrics_listen {
            Some(listen) => Some(
                proxy_audit::serve_metrics(listen, audit.recorder(), &denials, sinks.as_ref())
                    .await?,
            ),
            None => None,
        };
        audit.recover().await?;
        // Pipes from the client are polled by the runtime, not read on its blocking pool.
        let (client_in, client_out) = mcp_audit_proxy::client_stdio::client_stdio();
        let code = run_stdio(
            config,
            audit.recorder().clone(),
            client_in,
            client_out,
            stop,
        )
        .await;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        if let Some(sinks) = sinks {
            sinks.finish().await;
        }
        proxy_audit::finish(audit, checkpointing, code).await
    });
    // Our stdin may still be open when the server has gone: do not wait for the client.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(result?.unwrap_or(1))
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
