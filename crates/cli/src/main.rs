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
mod filter_args;
mod publish;
mod record_args;
mod redact_arg;
mod render;
mod retention_arg;
mod table;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::commands::{
    cleanup, export, follow, hold, import, integrity, log, proxy, query, recover, redact, report,
    schema, serve, show, sink, stats, subject, summary, token, witness,
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
    #[command(flatten)]
    database: db::DatabaseArgs,

    /// Accepted before the command too (`mcp-audit --spool-dir DIR proxy ...`), for the
    /// commands that write; the command's own flag wins.
    #[command(flatten)]
    writing: db::WritingArgs,

    #[command(subcommand)]
    command: Command,
}

/// A command that writes, with the PostgreSQL writer's options (`W`) in its own `--help`:
/// read commands do not show them.
#[derive(Debug, clap::Args)]
struct Writes<A: clap::Args, W: clap::Args> {
    #[command(flatten)]
    args: A,
    #[command(flatten)]
    writing: W,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Record audit events
    Log(Writes<log::LogArgs, db::ReconnectArgs>),
    Query(query::QueryArgs),
    Show(show::ShowArgs),
    Summary(summary::SummaryArgs),
    Stats(stats::StatsArgs),
    Export(export::ExportArgs),
    /// Delete expired events (expires_at in the past) with their payloads and lineage rows
    Cleanup(Writes<cleanup::CleanupArgs, db::ReconnectArgs>),
    Schema(schema::SchemaArgs),
    /// Run an MCP server behind the audit proxy
    Proxy(Writes<Box<proxy::ProxyArgs>, db::WritingArgs>),
    /// Record operations a stopped proxy left unanswered as incomplete
    Recover(Writes<recover::RecoverArgs, db::ReconnectArgs>),
    /// Create a checkpoint signing key
    Keygen(integrity::KeygenArgs),
    /// Sign a checkpoint of the log as it is now
    Checkpoint(Writes<integrity::CheckpointArgs, db::ReconnectArgs>),
    /// Check that the log is the one that was signed
    Verify(integrity::VerifyArgs),
    /// Erase an event's personal data, keeping its proofs valid
    Erase(Writes<integrity::EraseArgs, db::ReconnectArgs>),
    /// Print an inclusion proof of one event
    Prove(integrity::ProveArgs),
    /// Check an inclusion proof offline with the public key
    VerifyProof(integrity::VerifyProofArgs),
    /// Prove that one signed checkpoint extends another
    Consistency(integrity::ConsistencyArgs),
    Serve(Writes<serve::ServeArgs, db::ReconnectArgs>),
    Token(Writes<token::TokenArgs, db::ReconnectArgs>),
    /// Show what a redaction policy does to a sample (stdin)
    Redact(redact::RedactArgs),
    /// A data subject's rights: export with proofs
    Subject(Writes<subject::SubjectArgs, db::ReconnectArgs>),
    /// Place, list and release legal holds
    Hold(Writes<hold::HoldArgs, db::ReconnectArgs>),
    Report(report::ReportArgs),
    /// Import a seed logger's database (MockLoop, ContextForge) into the log
    Import(Writes<import::ImportArgs, db::ReconnectArgs>),
    Witness(Writes<witness::WitnessArgs, db::ReconnectArgs>),
    Follow(follow::FollowArgs),
    Sink(sink::SinkArgs),
}

impl Command {
    /// The PostgreSQL writer's options given after the command, if it takes them.
    fn writing(&self) -> db::WritingArgs {
        match self {
            Command::Proxy(w) => w.writing.clone(),
            Command::Log(Writes { writing, .. })
            | Command::Cleanup(Writes { writing, .. })
            | Command::Recover(Writes { writing, .. })
            | Command::Checkpoint(Writes { writing, .. })
            | Command::Erase(Writes { writing, .. })
            | Command::Serve(Writes { writing, .. })
            | Command::Token(Writes { writing, .. })
            | Command::Subject(Writes { writing, .. })
            | Command::Hold(Writes { writing, .. })
            | Command::Import(Writes { writing, .. })
            | Command::Witness(Writes { writing, .. }) => writing.clone().into(),
            _ => db::WritingArgs::default(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    // `verify` tells "the log is not what was signed" (1) from "could not run" (2).
    let failure = match cli.command {
        Command::Verify(_) => integrity::VERIFY_COULD_NOT_RUN,
        _ => 1,
    };
    let db = Db::from_args(cli.database, cli.command.writing().or(cli.writing));
    let result = match cli.command {
        Command::Log(w) => log::run(&db, w.args).map(|()| 0),
        Command::Query(args) => query::run(&db, args).map(|()| 0),
        Command::Show(args) => show::run(&db, args).map(|()| 0),
        Command::Summary(args) => summary::run(&db, args).map(|()| 0),
        Command::Stats(args) => stats::run(&db, args).map(|()| 0),
        Command::Export(args) => export::run(&db, args).map(|()| 0),
        Command::Cleanup(w) => cleanup::run(&db, w.args).map(|()| 0),
        Command::Schema(args) => schema::run(args).map(|()| 0),
        Command::Proxy(w) => proxy::run(&db, *w.args),
        Command::Recover(w) => recover::run(&db, w.args).map(|()| 0),
        Command::Keygen(args) => integrity::keygen(args).map(|()| 0),
        Command::Checkpoint(w) => integrity::checkpoint(&db, w.args).map(|()| 0),
        Command::Verify(args) => integrity::verify(&db, args),
        Command::Erase(w) => integrity::erase(&db, w.args).map(|()| 0),
        Command::Prove(args) => integrity::prove(&db, args).map(|()| 0),
        Command::VerifyProof(args) => integrity::verify_proof(args).map(|()| 0),
        Command::Consistency(args) => integrity::consistency(&db, args).map(|()| 0),
        Command::Serve(w) => serve::run(&db, w.args).map(|()| 0),
        Command::Token(w) => token::run(&db, w.args).map(|()| 0),
        Command::Redact(args) => redact::run(args).map(|()| 0),
        Command::Subject(w) => subject::run(&db, w.args).map(|()| 0),
        Command::Hold(w) => hold::run(&db, w.args).map(|()| 0),
        Command::Report(args) => report::run(&db, args).map(|()| 0),
        Command::Import(w) => import::run(&db, w.args).map(|()| 0),
        Command::Witness(w) => witness::run(&db, w.args).map(|()| 0),
        Command::Follow(args) => follow::run(&db, args).map(|()| 0),
        Command::Sink(args) => sink::run(&db, args).map(|()| 0),
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
        .with_ansi(colour_on_stderr())
        .with_env_filter(filter)
        .init();
}

/// Colour only on a terminal: a log file or a pipe (an MCP client keeping the proxy's stderr)
/// would fill with escape codes. `NO_COLOR` (set and not empty) turns it off everywhere.
fn colour_on_stderr() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    io::stderr().is_terminal() && !no_color
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every command, the top level included, with its path (`mcp-audit proxy`).
    fn commands() -> Vec<(String, clap::Command)> {
        fn walk(path: String, command: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
            for sub in command.get_subcommands() {
                walk(format!("{path} {}", sub.get_name()), sub, out);
            }
            out.push((path, command.clone()));
        }
        let mut cli = Cli::command();
        cli.build();
        let mut out = Vec::new();
        walk("mcp-audit".to_string(), &cli, &mut out);
        out
    }

    #[test]
    fn every_option_of_every_command_has_a_description() {
        let mut missing = Vec::new();
        for (path, command) in commands() {
            for arg in command.get_arguments() {
                let described = arg
                    .get_help()
                    .is_some_and(|help| !help.to_string().trim().is_empty());
                if !described {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "options without help: {missing:?}");
    }

    #[test]
    fn only_commands_that_write_list_the_postgres_writer_options() {
        let writers = [
            "log",
            "cleanup",
            "proxy",
            "recover",
            "checkpoint",
            "erase",
            "serve",
            "token",
            "subject",
            "hold",
            "import",
            "witness",
        ];
        for (path, command) in commands() {
            // The whole path after `mcp-audit`: a subcommand of a group (`subject erase`) is not
            // the top-level command of the same name (`erase`); the group carries the options.
            let name = path.strip_prefix("mcp-audit ").unwrap_or_default();
            let has = |id: &str| command.get_arguments().any(|a| a.get_id() == id);
            // clap's generated `help` subcommands (top level and under `token`) take no options.
            if path == "mcp-audit" || path.split(' ').any(|word| word == "help") {
                continue;
            }
            assert_eq!(
                has("reconnect_timeout"),
                writers.contains(&name),
                "{path}: --reconnect-timeout"
            );
            assert_eq!(has("spool_dir"), name == "proxy", "{path}: --spool-dir");
            assert!(has("db") && has("log_id"), "{path}: --db and --log-id");
        }
    }
}
