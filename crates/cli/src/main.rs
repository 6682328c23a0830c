//! `mcp-audit`: the command line of the MCP audit trail.
//!
//! Thin on purpose: every command parses its flags, opens the store, calls the library
//! (`mcp_audit_store`, `mcp_audit_core`) and prints. The logic lives in the libraries, where
//! tests reach it without a process; this crate is the only one that uses `anyhow`, because here
//! an error's last stop is one line on stderr.
//!
//! Exit status: 0 on success, 1 on any error (printed as one `error: ...` line, its causes
//! joined by `: `), 2 on a usage error (clap's own message). `verify` alone differs: 1 means
//! findings (the log is not what was signed), 2 any error that kept it from running.

/// mimalloc instead of the system allocator: the recorder builds each event in the caller's
/// thread and the writer frees it in its own, a pattern glibc's allocator handles poorly
/// (measured with the ingest benchmark: see `docs/benchmarks.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod commands;
mod db;
mod event_input;
mod filter_args;
mod id_guard;
mod publish;
mod render;
mod table;
mod time_arg;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::commands::{
    cleanup, export, integrity, log, proxy, query, recover, schema, serve, show, stats, summary,
    token,
};
use crate::db::Db;

/// A tamper-evident audit trail for the Model Context Protocol.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-audit",
    version,
    propagate_version = true,
    after_help = "Example:\n  mcp-audit log '{\"kind\":\"tool_execution\",\"action\":\"EXECUTE\",\"operation\":\"search\"}'\n  mcp-audit query --tool search --since 1h"
)]
struct Cli {
    /// The audit database: a SQLite file, or a PostgreSQL URL (`postgres://user@host/db`)
    /// shared by many proxies
    #[arg(
        long,
        global = true,
        env = "MCP_AUDIT_DB",
        default_value = "./mcp-audit.db",
        value_name = "PATH|URL"
    )]
    db: PathBuf,

    /// PostgreSQL: the log this process appends to (one per proxy instance; a log already
    /// being written is refused). Default: a new log for each run
    #[arg(long, global = true, env = "MCP_AUDIT_LOG_ID", value_name = "ID")]
    log_id: Option<String>,

    /// PostgreSQL: how long a write waits for an unreachable server before failing (`sync`
    /// durability, or a full spool)
    #[arg(long, global = true, default_value = "30s", value_parser = time_arg::parse_duration, value_name = "DURATION")]
    reconnect_timeout: Duration,

    /// PostgreSQL with `batch` durability: where records wait while the server is unreachable
    #[arg(
        long,
        global = true,
        env = "MCP_AUDIT_SPOOL_DIR",
        default_value = "./mcp-audit-spool",
        value_name = "DIR"
    )]
    spool_dir: PathBuf,

    /// How long to wait for another process's lock on the database before failing
    /// (`500ms`, `5s`)
    #[arg(long, global = true, default_value = "5s", value_parser = time_arg::parse_duration, value_name = "DURATION")]
    lock_timeout: Duration,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Log(log::LogArgs),
    Query(query::QueryArgs),
    Show(show::ShowArgs),
    Summary(summary::SummaryArgs),
    Stats(stats::StatsArgs),
    Export(export::ExportArgs),
    Cleanup(cleanup::CleanupArgs),
    Schema(schema::SchemaArgs),
    /// Run an MCP server behind the audit proxy
    Proxy(Box<proxy::ProxyArgs>),
    /// Record operations a stopped proxy left unanswered as incomplete
    Recover(recover::RecoverArgs),
    /// Create a checkpoint signing key
    Keygen(integrity::KeygenArgs),
    /// Sign a checkpoint of the log as it is now
    Checkpoint(integrity::CheckpointArgs),
    /// Check that the log is the one that was signed
    Verify(integrity::VerifyArgs),
    /// Erase an event's personal data, keeping its proofs valid
    Erase(integrity::EraseArgs),
    /// Print an inclusion proof of one event
    Prove(integrity::ProveArgs),
    /// Check an inclusion proof offline with the public key
    VerifyProof(integrity::VerifyProofArgs),
    /// Prove that one signed checkpoint extends another
    Consistency(integrity::ConsistencyArgs),
    Serve(serve::ServeArgs),
    Token(token::TokenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    // `verify` tells "the log is not what was signed" (1) from "could not run" (2).
    let failure = match cli.command {
        Command::Verify(_) => integrity::VERIFY_COULD_NOT_RUN,
        _ => 1,
    };
    let db = Db::new(
        cli.db,
        cli.lock_timeout,
        cli.log_id,
        cli.spool_dir,
        cli.reconnect_timeout,
    );
    let result = match cli.command {
        Command::Log(args) => log::run(&db, args).map(|()| 0),
        Command::Query(args) => query::run(&db, args).map(|()| 0),
        Command::Show(args) => show::run(&db, args).map(|()| 0),
        Command::Summary(args) => summary::run(&db, args).map(|()| 0),
        Command::Stats(args) => stats::run(&db, args).map(|()| 0),
        Command::Export(args) => export::run(&db, args).map(|()| 0),
        Command::Cleanup(args) => cleanup::run(&db, args).map(|()| 0),
        Command::Schema(args) => schema::run(args).map(|()| 0),
        Command::Proxy(args) => proxy::run(&db, *args),
        Command::Recover(args) => recover::run(&db, args).map(|()| 0),
        Command::Keygen(args) => integrity::keygen(args).map(|()| 0),
        Command::Checkpoint(args) => integrity::checkpoint(&db, args).map(|()| 0),
        Command::Verify(args) => integrity::verify(&db, args),
        Command::Erase(args) => integrity::erase(&db, args).map(|()| 0),
        Command::Prove(args) => integrity::prove(&db, args).map(|()| 0),
        Command::VerifyProof(args) => integrity::verify_proof(args).map(|()| 0),
        Command::Consistency(args) => integrity::consistency(&db, args).map(|()| 0),
        Command::Serve(args) => serve::run(&db, args).map(|()| 0),
        Command::Token(args) => token::run(&db, args).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(io::stderr(), "error: {}", one_line(&error));
            ExitCode::from(failure)
        }
    }
}

/// The error and its causes joined by ": ", on one line.
///
/// A cause whose text its parent already ends with is left out: library errors that wrap a
/// source often print it too (`audit write failed: {0}`), and saying it twice helps nobody.
/// Newlines inside a message (a store's reason, a server's text) would break the one-line
/// contract, so they become spaces.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace(['\n', '\r'], " ")
}

/// Diagnostics to stderr, filtered by `RUST_LOG` (default `warn`).
///
/// The writer's own "batch failed" log line is silenced by default: in this binary every
/// write failure already reaches the user as the command's one-line error, and printing it
/// twice would break that contract. `RUST_LOG=mcp_audit_store=debug` brings it back.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,mcp_audit_store::writer=off"));
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(filter)
        .init();
}

/// `mcp-audit query | head` closes our stdout early: that is the reader's choice, not an error.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        // serde_json keeps the I/O error inside its own rather than as its source.
        let kind = match cause.downcast_ref::<serde_json::Error>() {
            Some(json) => json.io_error_kind(),
            None => cause.downcast_ref::<io::Error>().map(io::Error::kind),
        };
        kind == Some(io::ErrorKind::BrokenPipe)
    })
}
