//! The stdout destination: one JSON line per record (the shape of [`Record`]), flushed after
//! each batch, for `mcp-audit follow --stdout | jq ...` and anything else that reads lines.

use std::io::Write;

use mcp_audit_store::StoredEvent;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::record::Record;
use crate::{Destination, Failure};

/// A `[[sink]]` of `type = "stdout"`: no fields of its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {}

/// Writes JSON lines to the process's standard output.
#[derive(Debug, Default)]
pub struct Stdout {
    /// Cancelled when the reader has gone (a closed pipe: `follow --stdout | head`), so that
    /// the command ends instead of retrying a write nobody can read.
    closed: Option<CancellationToken>,
}

impl Stdout {
    pub fn new(_config: &StdoutConfig) -> Stdout {
        Stdout::default()
    }

    /// A stdout that cancels `closed` when its reader has gone.
    pub fn ending(closed: CancellationToken) -> Stdout {
        Stdout {
            closed: Some(closed),
        }
    }
}

/// The JSON lines of `batch`, each ending in a newline.
pub fn json_lines(batch: &[StoredEvent]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    for stored in batch {
        serde_json::to_writer(&mut out, &Record::of(stored))?;
        out.push(b'\n');
    }
    Ok(out)
}

impl Destination for Stdout {
    fn kind(&self) -> &'static str {
        "stdout"
    }

    async fn deliver(&mut self, batch: &[StoredEvent]) -> Result<(), Failure> {
        let lines = json_lines(batch).map_err(|e| Failure::Refused {
            accepted: 0,
            reason: format!("cannot encode the record: {e}"),
        })?;
        // Written whole and flushed before the acknowledgement: a reader of the pipe has every
        // line the cursor moved past. A closed pipe is not a record's fault: unavailable.
        let mut out = std::io::stdout().lock();
        out.write_all(&lines)
            .and_then(|()| out.flush())
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::BrokenPipe
                    && let Some(closed) = &self.closed
                {
                    closed.cancel();
                }
                Failure::Unavailable(format!("cannot write to stdout: {e}"))
            })
    }
}
