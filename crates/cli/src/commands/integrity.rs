//! Tamper evidence from the command line: `keygen`, `checkpoint`, `verify`, `erase`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;
use mcp_audit_core::EventId;
use mcp_audit_core::checkpoint::{NoteSigner, NoteVerifier};
use mcp_audit_core::cosignature::CosignatureVerifier;
use mcp_audit_server::verify::{self, Finished, LogResult};
use mcp_audit_store::erasure::{self, ErasureRequest};
use mcp_audit_store::integrity::{self, OutsideCheckpoint};
use mcp_audit_store::{Durability, Recorder, RecorderConfig, Scrub};

use crate::db::Db;

/// Create a checkpoint signing key (Ed25519, C2SP signed-note format).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  mcp-audit keygen --name audit.example.com --out audit.key
Writes the private key to audit.key (mode 0600; an existing file is never overwritten) and the
public verifier key to audit.key.pub, and prints the verifier key: give it to whoever checks the log.")]
pub struct KeygenArgs {
    /// The key's name, which appears in every signature (no `+`, no spaces).
    #[arg(long)]
    name: String,
    /// Where to write the private key.
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
}

pub fn keygen(args: KeygenArgs) -> Result<()> {
    let signer = NoteSigner::generate(&args.name)?;
    write_key_pair(&args.out, &signer.to_text(), &signer.verifier().to_text())
}

/// Writes a private key to `out` (0600) and its public key to `out.pub`, and prints the
/// public key.
pub(crate) fn write_key_pair(out: &Path, private: &str, public: &str) -> Result<()> {
    write_new(out, &format!("{private}\n"), 0o600)?;
    let pub_path = PathBuf::from(format!("{}.pub", out.display()));
    write_new(&pub_path, &format!("{public}\n"), 0o644)?;
    println!("{public}");
    Ok(())
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| {
            format!(
                "writing {} (an existing key is never overwritten)",
                path.display()
            )
        })?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Sign a checkpoint of the log as it is now.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  mcp-audit checkpoint --key audit.key --checkpoint-out /mnt/elsewhere/checkpoints.jsonl
  mcp-audit checkpoint --key audit.key --post https://witness.example.com/checkpoints
Keep a copy outside the database (--checkpoint-out, --post): only an outside copy proves that the
tail of the log was not cut later. The checkpoint is stored even when posting fails (exit 1).")]
pub struct CheckpointArgs {
    /// The private key file written by `keygen`.
    #[arg(long, value_name = "PATH")]
    key: PathBuf,
    /// The log's name in the checkpoint (default: mcp-audit/<log id>).
    #[arg(long)]
    origin: Option<String>,
    /// Also append the signed checkpoint to this file (one JSON object per line).
    #[arg(long, value_name = "PATH")]
    checkpoint_out: Option<PathBuf>,
    /// Also POST the signed checkpoint (text/plain) to this http(s) URL.
    #[arg(long, value_name = "URL")]
    post: Option<String>,
}

pub fn checkpoint(db: &Db, args: CheckpointArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let signer = NoteSigner::from_text(&text)
        .with_context(|| format!("reading the key in {}", args.key.display()))?;
    // A URL that can not be posted to is refused before anything is signed.
    let poster = args
        .post
        .as_deref()
        .map(crate::publish::CheckpointPoster::start)
        .transpose()?;
    let mut store = db.open_log_writer()?;
    let origin = args
        .origin
        .unwrap_or_else(|| format!("mcp-audit/{}", store.log_id()));
    let signed = integrity::sign_checkpoint(store.as_mut(), &signer, &origin)?;
    if let Some(path) = &args.checkpoint_out {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(file, "{}", serde_json::to_string(&signed)?)?;
        file.sync_all()?;
    }
    print!("{}", signed.note);
    if let Some((poster, publish)) = poster {
        publish(&signed);
        poster.finish(POST_GRACE)?;
    }
    Ok(())
}

/// Check that the log is the one that was signed: every entry, every checkpoint.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  mcp-audit verify --key audit.key.pub
  mcp-audit verify --key 'audit.example.com+1a2b3c4d+AQ...' --checkpoints checkpoints.jsonl --json
  mcp-audit verify --key audit.key.pub --witness witness.key.pub
Every finding is listed with its sequence number (modified metadata, column, payload, lineage or
compliance row, missing, extra or reordered entry, a payload deleted with no erasure recorded,
checkpoint mismatch, truncated tail, bad signature, no signed checkpoint under --key, an edited
lookup index, running total or stored tree node). Payloads erased with `erase` (which records
each erasure in the log) are counted as redacted, not tampered. Entries that `cleanup` removed
are counted as expired, with the seq of the run's own event in the log; a removed entry without
such a record is missing.

With --witness KEY (repeatable): the newest stored checkpoint must carry a valid cosignature by
each witness key (kept by `witness push`), and every kept cosignature must verify against the
stored checkpoint of its size; any other outcome is listed as `WITNESS ...` and fails (exit 1).

Each run is recorded in the log (unless --no-record): an `admin` event `verify audit_log` by the OS
user, with the logs and ranges read and the result, passed or not. On PostgreSQL only with
--record-log ID, the log to record into (sign checkpoints of it as of the others). `mcp-audit serve` shows the newest as the last verify. A run that cannot be recorded
says so on stderr; its exit status is the verify's.

Exit status:
  0  the log is what was signed: no finding
  1  the log is not what was signed: findings (listed), or --key given and no checkpoint
  2  verify could not run: bad arguments, no such database, unreadable key or checkpoint file,
     a database error")]
pub struct VerifyArgs {
    /// The verifier key: its text, or a file holding it. Without it signatures are not checked.
    /// With it, a log must have at least one checkpoint (stored or outside).
    #[arg(long)]
    key: Option<String>,
    /// Checkpoints kept outside the database (`checkpoint --checkpoint-out`); may be given
    /// more than once. A checkpoint found twice counts once.
    #[arg(long, value_name = "PATH")]
    checkpoints: Vec<PathBuf>,
    /// One JSON array on stdout: a report per log, with its `log_id` (the same shape on
    /// SQLite and PostgreSQL).
    #[arg(long)]
    json: bool,
    /// Do not record the result in the log (a copy of the database, a file this user may
    /// not write). Without it the result, passed or failed, becomes an `admin` event that
    /// the console's integrity page shows as the last verify.
    #[arg(long)]
    no_record: bool,
    /// Require that the newest checkpoint carries a valid cosignature by this witness key
    /// (text or file, from `witness keygen`), as `witness push` keeps them (repeatable).
    #[arg(long, value_name = "KEY")]
    witness: Vec<String>,
    /// PostgreSQL: record the result in this log (sign checkpoints of it as of the others:
    /// with --key, a log without a checkpoint is a finding). Without it nothing is recorded
    /// on PostgreSQL.
    #[arg(long, value_name = "ID")]
    record_log: Option<String>,
}

/// The exit status of `verify` when it could not run (its findings exit with 1).
pub const VERIFY_COULD_NOT_RUN: u8 = 2;

/// A verifier key given as its text or as a file holding it (`keygen` writes `<key>.pub`).
pub(crate) fn read_verifier(key: &str) -> Result<NoteVerifier> {
    let text = if Path::new(key).exists() {
        std::fs::read_to_string(key).with_context(|| format!("reading {key}"))?
    } else {
        key.to_string()
    };
    NoteVerifier::from_text(&text)
        .context("reading the verifier key (its text, or a file holding it)")
}

pub fn verify(db: &Db, args: VerifyArgs) -> Result<i32> {
    let verifier = args.key.as_deref().map(read_verifier).transpose()?;
    let witnesses = args
        .witness
        .iter()
        .map(|k| crate::commands::witness::read_witness_key(k))
        .collect::<Result<Vec<_>>>()?;
    let mut outside = Vec::new();
    for path in &args.checkpoints {
        outside.extend(read_outside(path)?);
    }
    let logs = db.log_ids()?;
    if logs.len() > 1 && !outside.is_empty() {
        bail!("outside checkpoints belong to one log: name it with --log-id");
    }
    let started = Timestamp::now();
    let mut results = Vec::new();
    let ran = verify_logs(db, &args, verifier.as_ref(), &outside, logs, &mut results)
        .and_then(|all_ok| Ok(witnessed(db, &witnesses, args.json)? && all_ok));
    // On PostgreSQL only into a log named for it: a new log per run would make the next
    // `verify --key` report a log without a checkpoint.
    let record_log = match (db.is_postgres(), &args.record_log) {
        (_, _) if args.no_record => None,
        (true, None) => None,
        (true, Some(log_id)) => Some(log_id.as_str()),
        (false, _) => Some(""),
    };
    if let Some(record_log) = record_log {
        let run = Finished {
            started,
            finished: Timestamp::now(),
            by: crate::commands::proxy::os_user(),
            recorded_as: None,
            ok: ran.as_ref().is_ok_and(|&all_ok| all_ok),
            error: ran.as_ref().err().map(|e| format!("{e:#}")),
            signatures_checked: verifier.is_some(),
            logs: results,
        };
        if let Err(e) = record_verify(db, record_log, &run) {
            eprintln!(
                "warning: the result was not recorded in the log (--no-record skips this): {e:#}"
            );
        }
    }
    Ok(if ran? { 0 } else { 1 })
}

/// Verifies each of `logs`, printing each report, and adds each one's brief to `results`;
/// whether every log passed.
fn verify_logs(
    db: &Db,
    args: &VerifyArgs,
    verifier: Option<&NoteVerifier>,
    outside: &[OutsideCheckpoint],
    logs: Vec<String>,
    results: &mut Vec<LogResult>,
) -> Result<bool> {
    let many = db.is_postgres();
    let mut all_ok = true;
    let mut reports = Vec::new();
    for log_id in logs {
        let mut store = db.open_log(&log_id)?;
        let total = store.next_seq()?;
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} entries")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let report = integrity::verify(store.as_mut(), verifier, outside, &mut |n| {
            bar.set_position(n)
        })?;
        bar.finish_and_clear();
        all_ok &= report.is_ok();
        results.push(LogResult::of(store.log_id(), total, &report));
        // Warnings are for the person running it, not part of the report: stderr, in both
        // forms, so that `--json | jq` and a script reading the text see only the report.
        if verifier.is_none() {
            eprintln!("warning: no --key given: signatures were not checked");
        } else if report.checkpoints_verified == 0 {
            eprintln!(
                "warning: no checkpoint was verified: nothing was checked against a signature"
            );
        }
        if args.json {
            reports.push((store.log_id().to_string(), report));
            continue;
        }
        if many {
            println!("log {log_id}:");
        }
        print_report(&report);
    }
    if args.json {
        let all: Vec<serde_json::Value> = reports
            .iter()
            .map(|(log_id, report)| {
                let mut value = serde_json::to_value(report)?;
                value["log_id"] = serde_json::Value::from(log_id.as_str());
                value["ok"] = serde_json::Value::from(report.is_ok());
                Ok(value)
            })
            .collect::<Result<_>>()?;
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(all_ok)
}

/// `--witness`: each log's checkpoints against each witness key's cosignatures; prints the
/// findings (stderr with `--json`, which keeps stdout for the report); whether there were none.
fn witnessed(db: &Db, witnesses: &[CosignatureVerifier], json: bool) -> Result<bool> {
    if witnesses.is_empty() {
        return Ok(true);
    }
    let mut ok = true;
    for log_id in db.log_ids()? {
        let mut store = db.open_log(&log_id)?;
        for finding in mcp_audit_store::cosigned::check(store.as_mut(), witnesses)? {
            ok = false;
            let line = format!("WITNESS {finding}");
            if json {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    }
    if ok && !json {
        println!("witnessed: the newest checkpoint is co-signed by every --witness key");
    }
    Ok(ok)
}

/// Records `run` as an event of the log (see `mcp_audit_server::verify::record_event`), and
/// waits until it is durable.
fn record_verify(db: &Db, pg_log_id: &str, run: &Finished) -> Result<()> {
    let event = verify::record_event(run, "os_user")?;
    let config = RecorderConfig {
        durability: Durability::Sync,
        ..RecorderConfig::default()
    };
    let recorder = Recorder::start(db.open_own_log(pg_log_id)?, config)?;
    let recorded = recorder.record(event);
    // Shut down either way; the record's own error is the precise one, so it goes first.
    let shutdown = recorder.shutdown();
    recorded?;
    shutdown.context("cannot record the verify result")?;
    Ok(())
}

/// The outside checkpoints in `path`, one JSON object per line.
fn read_outside(path: &Path) -> Result<Vec<OutsideCheckpoint>> {
    std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<OutsideCheckpoint>(l)
                .with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

/// One log's report, as text.
fn print_report(report: &integrity::Report) {
    println!(
        "{} entries checked, {} redacted, {} checkpoint(s) verified, covering {} entries",
        report.entries, report.redacted, report.checkpoints_verified, report.covered
    );
    for expiry in &report.expiries {
        let ranges: Vec<String> = expiry
            .ranges
            .iter()
            .map(|r| format!("{}..{}", r.start, r.end))
            .collect();
        println!(
            "{} entries expired: removed by the cleanup run recorded at seq {} (seqs {})",
            expiry.entries,
            expiry.cleanup_seq,
            ranges.join(", ")
        );
    }
    for gap in &report.gaps {
        println!(
            "GAP at seq {}: {} record(s) lost while the store refused writes",
            gap.seq, gap.lost
        );
    }
    for finding in &report.findings {
        if let Ok(text) = serde_json::to_string(finding) {
            println!("FOUND {text}");
        }
    }
    if report.is_ok() {
        println!("ok");
    } else {
        let mut kinds: Vec<String> = integrity::summary(report)
            .into_iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        kinds.sort();
        println!("NOT OK: {}", kinds.join(", "));
    }
}

/// Erase an event's personal data (GDPR Art. 17); its metadata and proofs stay valid.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  mcp-audit erase 019a1b2c-3d4e-7f00-8a9b-0c1d2e3f4a5b --reason 'erasure request #4711'
Erases every record of the event's call (a `sync` intent and its outcome both hold the
arguments), and records each erasure in the log first: who (--actor, default the OS user),
when, why (--reason) and which event. `verify` reports a payload missing without such a record
as tampering. SQLite: the bytes are overwritten and the write-ahead log truncated; a warning
says when another connection kept it from being truncated. PostgreSQL: see docs/integrity.md.
On PostgreSQL the erasure events go to --log-id's log (default: a new log).")]
pub struct EraseArgs {
    /// The event's id.
    id: String,
    /// Why the data is erased (the request, the legal ground): recorded with the erasure.
    #[arg(long)]
    reason: String,
    /// Who erases, as recorded (default: the OS user).
    #[arg(long, value_name = "USER")]
    actor: Option<String>,
}

pub fn erase(db: &Db, args: EraseArgs) -> Result<()> {
    let id: EventId = args
        .id
        .parse()
        .with_context(|| format!("`{}` is not an event id", args.id))?;
    if args.reason.trim().is_empty() {
        bail!("--reason must say why the data is erased");
    }
    let (actor, auth_method) = match args.actor {
        Some(actor) => (actor, "cli_flag"),
        None => (crate::commands::proxy::os_user(), "os_user"),
    };
    let request = ErasureRequest {
        actor,
        auth_method: auth_method.into(),
        reason: args.reason,
    };
    let mut store = db.open_eraser()?;
    let config = RecorderConfig {
        durability: Durability::Sync,
        ..RecorderConfig::default()
    };
    let recorder = Recorder::start(db.open_writable(Durability::Sync)?, config)?;
    let erased = erasure::erase_call(store.as_mut(), &recorder, id, &request);
    // Shut down either way; the erasure's own error is the precise one, so it goes first.
    let shutdown = recorder.shutdown();
    let erased = erased?;
    shutdown.context("cannot record the erasure")?;
    for record in &erased.records {
        let what = if record.intent { "intent" } else { "record" };
        let done = if record.payload_deleted {
            "erased the personal data of"
        } else {
            "recorded the earlier erasure of"
        };
        println!(
            "{done} {what} {} (erasure recorded as event {})",
            record.id, record.erasure_event
        );
    }
    if let Scrub::Pending(why) = &erased.scrub {
        eprintln!("warning: {why}");
    }
    Ok(())
}

/// Print an inclusion proof of one event (JSON), for someone who holds only the public key.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  mcp-audit prove 019a1b2c-3d4e-7f00-8a9b-0c1d2e3f4a5b > proof.json
  mcp-audit verify-proof proof.json --key audit.key.pub      # anywhere, no database needed
The proof holds the event's hashed metadata, its payload (unless erased), the Merkle path and the
signed checkpoint that covers it.")]
pub struct ProveArgs {
    /// The event's id.
    id: String,
}

pub fn prove(db: &Db, args: ProveArgs) -> Result<()> {
    let id: EventId = args
        .id
        .parse()
        .with_context(|| format!("`{}` is not an event id", args.id))?;
    let mut store = db.open_event_log(id)?;
    let proof = integrity::prove(store.as_mut(), id)?;
    println!("{}", serde_json::to_string_pretty(&proof)?);
    Ok(())
}

/// Check an inclusion proof offline, with the log's public key only.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  mcp-audit verify-proof proof.json --key audit.key.pub")]
pub struct VerifyProofArgs {
    /// The proof file (`-` for standard input).
    file: PathBuf,
    /// The verifier key: its text, or a file holding it.
    #[arg(long)]
    key: String,
}

pub fn verify_proof(args: VerifyProofArgs) -> Result<()> {
    let verifier = read_verifier(&args.key)?;
    let raw = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    let proof: mcp_audit_core::proof::InclusionProof =
        serde_json::from_str(&raw).context("reading the proof")?;
    let event = proof.verify(&verifier).context("the proof does not hold")?;
    println!(
        "ok: event {} ({} {}) is entry {} of the signed log of {} entries{}",
        event.id,
        event.kind,
        event.operation,
        proof.seq,
        proof.tree_size,
        if proof.payload.is_some() {
            ", payload included"
        } else {
            ", payload erased"
        }
    );
    Ok(())
}

/// Flags that make a recording command sign checkpoints as it goes.
#[derive(Debug, clap::Args)]
pub struct CheckpointFlags {
    /// Sign checkpoints with this private key (from `keygen`) while recording.
    #[arg(long, value_name = "PATH")]
    checkpoint_key: Option<PathBuf>,
    /// Sign once this many entries were added.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    checkpoint_every: u64,
    /// Sign once this much time has passed, if entries were added (`60s`, `5m`).
    #[arg(long, default_value = "60s", value_parser = mcp_audit_server::time::parse_duration, value_name = "DURATION")]
    checkpoint_interval: std::time::Duration,
    /// Also append every checkpoint to this file (keep it outside the database's reach).
    #[arg(long, value_name = "PATH", requires = "checkpoint_key")]
    checkpoint_out: Option<PathBuf>,
    /// Also POST every checkpoint (the signed note, text/plain) to this http(s) URL.
    #[arg(long, value_name = "URL", requires = "checkpoint_key")]
    checkpoint_post: Option<String>,
}

/// The writer's checkpoint policy, and the poster it feeds with `--checkpoint-post`.
pub struct Checkpointing {
    pub policy: Option<mcp_audit_store::CheckpointPolicy>,
    poster: Option<crate::publish::CheckpointPoster>,
}

impl Checkpointing {
    /// Once the recorder has shut down: posts what is still queued; fails if any checkpoint
    /// could not be posted.
    pub fn finish(self) -> Result<()> {
        match self.poster {
            Some(poster) => poster.finish(POST_GRACE),
            None => Ok(()),
        }
    }
}

/// How long a stopping command waits for its last checkpoints to be posted.
const POST_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

impl CheckpointFlags {
    /// The signing key's file, for the start-up warning about files open to others.
    pub fn key_files(&self) -> Vec<PathBuf> {
        self.checkpoint_key.iter().cloned().collect()
    }

    /// The writer's checkpoint policy (none without a key), with its poster started.
    pub fn start(&self, log_id: &str) -> Result<Checkpointing> {
        let Some(mut policy) = self.policy(log_id)? else {
            return Ok(Checkpointing {
                policy: None,
                poster: None,
            });
        };
        let poster = match &self.checkpoint_post {
            Some(url) => {
                let (poster, publisher) = crate::publish::CheckpointPoster::start(url)?;
                policy.publish = Some(publisher);
                Some(poster)
            }
            None => None,
        };
        Ok(Checkpointing {
            policy: Some(policy),
            poster,
        })
    }

    fn policy(&self, log_id: &str) -> Result<Option<mcp_audit_store::CheckpointPolicy>> {
        let Some(path) = &self.checkpoint_key else {
            return Ok(None);
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let signer = NoteSigner::from_text(&text)
            .with_context(|| format!("reading the key in {}", path.display()))?;
        Ok(Some(mcp_audit_store::CheckpointPolicy {
            signer: std::sync::Arc::new(signer),
            origin: format!("mcp-audit/{log_id}"),
            every_entries: self.checkpoint_every.max(1),
            every: self.checkpoint_interval,
            out: self.checkpoint_out.clone(),
            publish: None,
        }))
    }
}

/// Prove and check that one signed checkpoint extends another (the log only grew in between).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  mcp-audit consistency old-checkpoint.txt new-checkpoint.txt --key audit.key.pub
Each file holds a signed checkpoint (as `mcp-audit checkpoint` prints it). Prints the proof as
JSON on stdout and `ok: ...` on stderr, or fails: the newer checkpoint does not extend the older
one.")]
pub struct ConsistencyArgs {
    /// The older signed checkpoint.
    old: PathBuf,
    /// The newer signed checkpoint.
    new: PathBuf,
    /// The verifier key: its text, or a file holding it.
    #[arg(long)]
    key: String,
}

pub fn consistency(db: &Db, args: ConsistencyArgs) -> Result<()> {
    let verifier = read_verifier(&args.key)?;
    let open = |path: &Path| -> Result<mcp_audit_core::checkpoint::Checkpoint> {
        let note =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        verifier
            .open(&note)
            .with_context(|| format!("checking {}", path.display()))
    };
    let (old, new) = (open(&args.old)?, open(&args.new)?);
    let mut store = db.open_log_reader()?;
    let proof = integrity::consistency(store.as_mut(), old.size, new.size)?;
    let holds = mcp_audit_core::merkle::verify_consistency(
        old.size, new.size, &proof, &old.root, &new.root,
    );
    println!(
        "{}",
        serde_json::to_string_pretty(
            &serde_json::json!({"old_size": old.size, "new_size": new.size, "proof": proof})
        )?
    );
    if !holds {
        bail!(
            "checkpoint {} does not extend checkpoint {}: the log was rewritten in between",
            new.size,
            old.size
        );
    }
    // stdout holds the proof alone (`| jq` reads it); the verdict is for the person.
    eprintln!(
        "ok: the log of {} entries extends the log of {}",
        new.size, old.size
    );
    Ok(())
}
