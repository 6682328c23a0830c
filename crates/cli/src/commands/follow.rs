//! `follow`: run the sinks of a configuration file until stopped, or print every new record
//! as a JSON line. The sinks themselves live in `mcp_audit_sinks`; this wires them to the
//! database and to the process's signals.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mcp_audit_sinks::config::{self, Built, Kind};
use mcp_audit_sinks::runner::{self, Backoff, SinkSpec, Start};
use mcp_audit_sinks::stats::{SinkCollector, SinkStats};
use mcp_audit_sinks::stdout::Stdout;
use mcp_audit_sinks::witness::Witness;
use mcp_audit_sinks::witness::file::LOG_PLACEHOLDER;
use mcp_audit_sinks::witness::logs::WitnessLogs;
use mcp_audit_sinks::witness::runner::{self as witness_runner, WitnessSpec};
use mcp_audit_store::SinkState;
use tokio_util::sync::CancellationToken;

use crate::db::Db;

/// Follow the log: run sinks, or print new records as JSON lines
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit follow --sink sinks.toml          # webhooks, syslog, witnesses, ... (docs/sinks.md)
  mcp-audit follow --stdout | jq .event.operation
  mcp-audit --db postgres://audit@db/audit follow --stdout --from-start

With --sink, each sink keeps a cursor per log in the database and resumes from it after a
restart or a crash; it stops on Ctrl-C or SIGTERM, after the delivery under way. One
process at a time sends for a sink name (a lease in the database): a second follow of the same
sink waits as a standby and takes over when the first stops, or lease_ms after it died. With
--stdout no cursor is kept: each run starts afresh, from the end of each log (what is
recorded from now on, as tail -f), or from its first record with --from-start.")]
pub struct FollowArgs {
    /// The sinks' configuration (TOML, one [[sink]] table per sink)
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "stdout",
        conflicts_with = "stdout"
    )]
    pub sink: Option<PathBuf>,
    /// Print every new record of every log as a JSON line on stdout
    #[arg(long)]
    pub stdout: bool,
    /// With --stdout: start from each log's first record instead of its end
    #[arg(long, requires = "stdout")]
    pub from_start: bool,
}

pub fn run(db: &Db, args: FollowArgs) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let sinks = match &args.sink {
        Some(path) => load(db, path)?,
        None => vec![Ready::Records(
            stdout_spec(args.from_start),
            Kind::Stdout(Stdout::ending(stop.clone())),
            db.open_follower()?,
        )],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let signal = mcp_audit_proxy::audit::stop_signal();
        let (tasks, _) = spawn(sinks, &stop);
        if args.sink.is_some() {
            eprintln!(
                "mcp-audit follow: {} sink(s) following {}",
                tasks.len(),
                db.name()
            );
        }
        // A signal, or (with --stdout) the reader of the pipe gone.
        tokio::select! {
            () = signal => {}
            () = stop.cancelled() => {}
        }
        stop.cancel();
        for task in tasks {
            task.await.context("a sink's task failed")?;
        }
        Ok(())
    })
}

/// A sink, its destination and its own connections, ready to run (one per sink, moved once:
/// the size difference between the variants costs nothing).
#[allow(clippy::large_enum_variant)]
pub enum Ready {
    /// A sink of records: its connection reads the logs and keeps its cursors.
    Records(SinkSpec, Kind, Box<dyn SinkState>),
    /// A witness: the logs it follows (it writes their cosignatures), and the sinks' cursors.
    Witness(
        WitnessSpec,
        Witness,
        Box<dyn WitnessLogs>,
        Box<dyn SinkState>,
    ),
}

/// The sinks of the configuration at `path`, each with a connection of its own: a bad file,
/// secret or database stops the command before any sink runs.
pub fn load(db: &Db, path: &std::path::Path) -> anyhow::Result<Vec<Ready>> {
    config::load(path)?
        .into_iter()
        .map(|(sink, built)| {
            Ok(match built {
                Built::Records(kind) => Ready::Records(sink.spec, kind, db.open_follower()?),
                Built::Witness(witness) => {
                    let logs = witness_logs(db, &sink.spec.name, &witness)?;
                    Ready::Witness(
                        WitnessSpec {
                            name: sink.spec.name.clone(),
                            poll: sink.spec.poll,
                            backoff: sink.spec.backoff,
                        },
                        witness,
                        logs,
                        db.open_follower()?,
                    )
                }
            })
        })
        .collect()
}

/// The logs a witness sink follows: the SQLite file's one log, or every log of the PostgreSQL
/// database (those started while it runs too), through a connection that claims none, so that
/// it runs beside each log's writer. A file target on PostgreSQL must name each log's own
/// file: sizes are a log's own, and one file of many logs would take one log's checkpoint for
/// another's.
fn witness_logs(db: &Db, sink: &str, witness: &Witness) -> anyhow::Result<Box<dyn WitnessLogs>> {
    if db.is_postgres()
        && let Witness::File(file) = witness
        && !file.names_the_log()
    {
        anyhow::bail!(
            "sink `{sink}`: on PostgreSQL a file target writes one file per log: put `{LOG_PLACEHOLDER}` in its path (e.g. \"checkpoints-{LOG_PLACEHOLDER}.jsonl\")"
        );
    }
    db.open_witness_logs()
}

/// Starts each sink as a task stopped by `stop`; the tasks, and the sinks' counters for
/// `/metrics`.
pub fn spawn(
    sinks: Vec<Ready>,
    stop: &CancellationToken,
) -> (Vec<tokio::task::JoinHandle<()>>, SinkCollector) {
    let mut counters = Vec::new();
    let tasks = sinks
        .into_iter()
        .map(|ready| {
            let stats = Arc::new(SinkStats::default());
            match ready {
                Ready::Records(spec, kind, state) => {
                    counters.push((spec.name.clone(), stats.clone()));
                    tokio::spawn(runner::run(spec, kind, state, stop.clone(), stats))
                }
                Ready::Witness(spec, witness, logs, state) => {
                    counters.push((spec.name.clone(), stats.clone()));
                    tokio::spawn(witness_runner::run(
                        spec,
                        witness,
                        logs,
                        state,
                        stop.clone(),
                        stats,
                    ))
                }
            }
        })
        .collect();
    (tasks, SinkCollector::new(counters))
}

/// `--stdout`: no cursor kept, from the end of each log unless `from_start`.
fn stdout_spec(from_start: bool) -> SinkSpec {
    SinkSpec {
        name: "stdout".into(),
        batch: 1_000,
        max_tries: 1,
        backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        },
        poll: Duration::from_millis(200),
        start: if from_start {
            Start::Beginning
        } else {
            Start::End
        },
        logs: None,
        redactor: None,
        durable: false,
        lease: Duration::from_secs(15),
    }
}

/// Sinks run inside another command (`proxy`, `serve`, `--sink FILE`): started in its runtime,
/// stopped with it, after the delivery under way.
pub struct Hosted {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The sinks' counters, for the host's `/metrics`.
    pub collector: SinkCollector,
}

impl Hosted {
    /// Starts `sinks` (from [`load`]); call inside the runtime.
    pub fn start(sinks: Vec<Ready>) -> Hosted {
        let stop = CancellationToken::new();
        let (tasks, collector) = spawn(sinks, &stop);
        Hosted {
            stop,
            tasks,
            collector,
        }
    }

    /// Stops the sinks and waits for them.
    pub async fn finish(self) {
        self.stop.cancel();
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a sink's task failed");
            }
        }
    }
}

/// `--sink FILE` of `proxy` and `serve`: the sinks to run inside the process.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HostedArgs {
    /// Run the sinks of this configuration (TOML, [[sink]] tables) inside this process, as
    /// `mcp-audit follow --sink FILE` would alone (see docs/sinks.md)
    #[arg(long = "sink", value_name = "FILE")]
    pub sink: Option<PathBuf>,
}

impl HostedArgs {
    /// The configured sinks, each with its connection: call once the database exists.
    pub fn load(&self, db: &Db) -> anyhow::Result<Option<Vec<Ready>>> {
        self.sink.as_deref().map(|path| load(db, path)).transpose()
    }
}
