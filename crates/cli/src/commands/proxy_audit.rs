//! What both modes of `mcp-audit proxy` share around the proxy crate's `ProxyAudit`: the store
//! opened from the command line, checkpoint signing and posting, the outage limit's flag, and
//! the order in which a stopped proxy reports what went wrong.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use mcp_audit_proxy::{AuditOptions, Denials, ProxyAudit, ProxyMetrics, Transport};
use mcp_audit_store::{Durability, Recorder};

use crate::commands::integrity::{CheckpointFlags, Checkpointing};
use crate::db::Db;

/// How long a `batch` proxy forwards calls while the store refuses writes (`off`: `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaxOutage(pub(crate) Option<Duration>);

pub(crate) fn parse_max_outage(text: &str) -> Result<MaxOutage, String> {
    if text == "off" {
        return Ok(MaxOutage(None));
    }
    mcp_audit_server::time::parse_duration(text).map(|d| MaxOutage(Some(d)))
}

/// Opens the store for writing and starts the proxy's recorder on it, with checkpointing
/// when a key is given. On PostgreSQL, with `batch` records wait in a local spool while the
/// server is unreachable; with `sync` the traffic waits for it (fail-closed).
pub(crate) fn start(
    db: &Db,
    durability: Durability,
    transport: Transport,
    checkpoints: &CheckpointFlags,
    max_outage: MaxOutage,
    redaction: std::sync::Arc<mcp_audit_core::redact::Redactor>,
    policy: mcp_audit_core::Policy,
) -> Result<(ProxyAudit, Checkpointing)> {
    let store = db.open_writable(durability)?;
    let checkpointing = checkpoints.start(store.log_id())?;
    let options = AuditOptions {
        max_outage: max_outage.0,
        checkpoints: checkpointing.policy.clone(),
        redaction,
        policy,
        ..AuditOptions::new(durability, transport)
    };
    Ok((ProxyAudit::start(store, options)?, checkpointing))
}

/// With `--metrics-listen ADDR`: serves the proxy's `/metrics` there (bound before any
/// traffic, so that a bad address stops the proxy at once) until the returned task is
/// aborted, and says where on stderr. `sinks`: the counters of the sinks the proxy runs.
pub(crate) async fn serve_metrics(
    listen: SocketAddr,
    recorder: &Recorder,
    denials: &Denials,
    sinks: Option<&crate::commands::follow::Hosted>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--metrics-listen: listening on {listen}"))?;
    let at = listener.local_addr().unwrap_or(listen);
    eprintln!("mcp-audit proxy: metrics at http://{at}/metrics");
    let mut metrics = ProxyMetrics::new(recorder.clone(), denials.clone());
    if let Some(sinks) = sinks {
        metrics = metrics.with_collector(Box::new(sinks.collector.clone()));
    }
    let metrics = std::sync::Arc::new(metrics);
    Ok(tokio::spawn(mcp_audit_proxy::metrics::serve_metrics(
        listener,
        metrics,
        std::future::pending(),
    )))
}

/// Once the adapter has stopped with `served`: shuts the recorder down and posts the last
/// checkpoints. The adapter's failure is reported first, then an incomplete trail, then
/// checkpoints that could not be posted.
pub(crate) async fn finish<T, E>(
    audit: ProxyAudit,
    checkpointing: Checkpointing,
    served: Result<T, E>,
) -> Result<T>
where
    anyhow::Error: From<E>,
{
    let shutdown = audit.finish().await;
    let value = served?;
    shutdown.context("the audit trail is incomplete")?;
    checkpointing.finish()?;
    Ok(value)
}
