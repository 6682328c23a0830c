//! `mcp-audit recover`: close intents that a stopped proxy left without an outcome.

use anyhow::Result;
use mcp_audit_proxy::incomplete_outcomes;
use mcp_audit_store::{Recorder, RecorderConfig};

use crate::db::Db;

/// Record `incomplete` for every operation whose intent was recorded but whose answer never was
/// (the proxy was killed in between). The proxy also does this when it starts.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  mcp-audit recover && mcp-audit query --outcome incomplete")]
pub struct RecoverArgs {}

pub fn run(db: &Db, _args: RecoverArgs) -> Result<()> {
    let mut store = db.open_existing_writable()?;
    let pending = store.pending_without_outcome()?;
    let recorder = Recorder::start(store, RecorderConfig::default())?;
    for event in incomplete_outcomes(&pending) {
        recorder.record(event)?;
    }
    recorder.shutdown()?;
    println!("recorded {} incomplete operation(s)", pending.len());
    Ok(())
}
