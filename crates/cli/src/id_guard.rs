//! Refusing an event id that is already taken, on the input line that repeats it.
//!
//! Ids are unique in the store, and a `log -` batch is written in one transaction: a repeated
//! id would fail it with a constraint error that names no line. Catching it here, before
//! recording, costs one indexed lookup per event whose id the input gave (generated ids are
//! fresh UUIDv7s), and names the line that repeats it.

use std::collections::HashMap;

use anyhow::bail;
use mcp_audit_core::EventId;
use mcp_audit_store::Read;

/// The ids seen so far in this input, and a reader to look up those recorded before.
pub struct IdGuard {
    reader: Box<dyn Read>,
    /// id → the input line that gave it.
    seen: HashMap<EventId, u64>,
}

impl IdGuard {
    pub fn new(reader: Box<dyn Read>) -> IdGuard {
        IdGuard {
            reader,
            seen: HashMap::new(),
        }
    }

    /// Errs when `id` was given by an earlier line or is already recorded; otherwise
    /// remembers it as given by `line`.
    pub fn claim(&mut self, id: EventId, line: u64) -> anyhow::Result<()> {
        if let Some(first) = self.seen.get(&id) {
            bail!("duplicate event id {id} (already given on line {first})");
        }
        if let Some(existing) = self.reader.get(id)? {
            bail!("event id {id} is already recorded (seq {})", existing.seq);
        }
        self.seen.insert(id, line);
        Ok(())
    }
}
