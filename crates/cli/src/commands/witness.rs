//! `mcp-audit witness`: a witness's key, and sending the log's checkpoints to witnesses.

use std::path::PathBuf;

use anyhow::{Context, Result};
use mcp_audit_core::cosignature::{CosignatureSigner, CosignatureVerifier};
use mcp_audit_sinks::witness::{Step, Witness, WitnessConfig, WitnessTarget};

use crate::db::Db;

/// Witnesses: keys, and sending checkpoints off the box
#[derive(Debug, clap::Args)]
pub struct WitnessArgs {
    #[command(subcommand)]
    command: WitnessCommand,
}

#[derive(Debug, clap::Subcommand)]
enum WitnessCommand {
    /// Create a witness's cosigning key (for `serve --witness-key`)
    Keygen(KeygenArgs),
    /// Send the newest checkpoint to a witness (or a file) once
    Push(PushArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  mcp-audit witness keygen --name witness.example.com/w1 --out witness.key
Writes the private key to witness.key (mode 0600; an existing file is never overwritten) and the
verifier key to witness.key.pub, and prints the verifier key: logs give it to `witness push --key`,
auditors to `verify --witness`. A witness key is not a log key (its signature type is 0x04,
C2SP tlog-cosignature): `keygen` makes log keys.")]
struct KeygenArgs {
    /// The witness's name, in every cosignature (a URL without scheme by convention).
    #[arg(long)]
    name: String,
    /// Where to write the private key.
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  mcp-audit checkpoint --key audit.key
  mcp-audit witness push --url https://witness.example.com --key witness.key.pub
  mcp-audit witness push --file /mnt/elsewhere/checkpoints.jsonl
  mcp-audit witness push --post https://collector.example.com/checkpoints
With --url: sends the newest stored checkpoint to the C2SP tlog-witness at URL
(POST URL/add-checkpoint) with a consistency proof from the size that witness last co-signed,
checks the cosignature it returns with --key and keeps it beside the checkpoint, where
`verify --witness` finds it. A witness that refuses (the log was cut back or rewritten since
it last co-signed) makes the command fail with its answer.
With --file: appends every stored checkpoint the file does not hold yet (one JSON object per
line, as `checkpoint --checkpoint-out`) and syncs it.
With --post: POSTs every stored checkpoint larger than the last one URL acknowledged, in order,
keeping that size in the database after each 2xx.
To send every checkpoint as it is signed, run the same targets as a sink (type = \"witness\"
in the file of `follow --sink`, `proxy --sink` or `serve --sink`; see docs/sinks.md).")]
struct PushArgs {
    /// The witness's submission URL prefix (`/add-checkpoint` is appended).
    #[arg(long, value_name = "URL", requires = "key", conflicts_with = "file")]
    url: Option<String>,
    /// The witness's verifier key (its text, or a file holding it), from `witness keygen`.
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Append the checkpoints to this file instead.
    #[arg(long, value_name = "PATH", required_unless_present_any = ["url", "post"], conflicts_with = "post")]
    file: Option<PathBuf>,
    /// POST each checkpoint not acknowledged yet (the signed note, text/plain) to this URL instead.
    #[arg(long, value_name = "URL", conflicts_with = "url")]
    post: Option<String>,
}

pub fn run(db: &Db, args: WitnessArgs) -> Result<()> {
    match args.command {
        WitnessCommand::Keygen(args) => keygen(args),
        WitnessCommand::Push(args) => push(db, args),
    }
}

fn keygen(args: KeygenArgs) -> Result<()> {
    let signer = CosignatureSigner::generate(&args.name)?;
    crate::commands::integrity::write_key_pair(
        &args.out,
        &signer.to_text(),
        &signer.verifier().to_text(),
    )
}

/// A witness verifier key given as its text or as a file holding it.
pub(crate) fn read_witness_key(key: &str) -> Result<CosignatureVerifier> {
    let text = if std::path::Path::new(key).exists() {
        std::fs::read_to_string(key).with_context(|| format!("reading {key}"))?
    } else {
        key.to_string()
    };
    CosignatureVerifier::from_text(&text)
        .context("reading the witness key (its text, or a file holding it)")
}

fn push(db: &Db, args: PushArgs) -> Result<()> {
    let config = match (&args.url, &args.file) {
        _ if args.post.is_some() => WitnessConfig {
            target: WitnessTarget::Post,
            url: args.post.clone(),
            key: None,
            path: None,
        },
        (Some(url), _) => WitnessConfig {
            target: WitnessTarget::TlogWitness,
            url: Some(url.clone()),
            key: args
                .key
                .as_deref()
                .map(|k| read_witness_key(k).map(|v| v.to_text()))
                .transpose()?,
            path: None,
        },
        (None, file) => WitnessConfig {
            target: WitnessTarget::File,
            url: None,
            key: None,
            path: file.clone(),
        },
    };
    let mut witness = Witness::new(config)?;
    let mut store = db.open_log_writer()?;
    match witness.step(store.as_mut())? {
        Step::UpToDate => println!("up to date: nothing to send"),
        Step::Cosigned { size, line } => {
            print!("co-signed checkpoint {size}: {line}");
        }
        Step::Appended { count, size } => {
            println!("appended {count} checkpoint(s), up to {size}");
        }
        Step::Posted { count, size } => {
            println!("posted {count} checkpoint(s), up to {size}");
        }
    }
    Ok(())
}
