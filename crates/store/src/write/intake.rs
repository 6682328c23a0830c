//! Events given from outside (`mcp-audit log -`, the ingest API) checked line by line before
//! any of them is recorded, so that a batch is all or nothing and every bad line is named.
//!
//! Each line is checked as the recorder will check it (JSON, the event's form, the model's
//! and the policy's checks) and its id (not given twice, not already recorded). Ids are unique
//! in the store, and a batch is written in one transaction: a repeated id would fail it with a
//! constraint error that names no line. Catching it here costs one indexed lookup per event
//! whose id the input gave (generated ids are fresh UUIDv7s), and names the line that repeats
//! it.

use std::collections::HashMap;
use std::io::BufRead;

use mcp_audit_core::input::{InputError, parse_event};
use mcp_audit_core::{AuditEvent, EventId, ModelError, Policy};

use crate::error::StoreError;
use crate::store::Read;

/// Why one line of a batch is refused. The caller adds the line number.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LineProblem {
    /// Not an event (encoding, JSON, form).
    #[error(transparent)]
    Input(#[from] InputError),
    /// An event the model's or the policy's checks refuse.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The id was given by an earlier line of the same input.
    #[error("duplicate event id {id} (already given on line {first_line})")]
    DuplicateId { id: EventId, first_line: u64 },
    /// The id is already in the log.
    #[error("event id {id} is already recorded (seq {seq})")]
    AlreadyRecorded { id: EventId, seq: u64 },
    /// The store could not be asked whether the id is taken.
    #[error("cannot look the event id up: {0}")]
    Store(#[from] StoreError),
}

/// The ids seen so far in this input, and a reader to look up those recorded before.
pub struct IdGuard<'r, R: Read + ?Sized> {
    /// id → the input line that gave it.
    seen: HashMap<EventId, u64>,
    reader: &'r mut R,
}

impl<'r, R: Read + ?Sized> IdGuard<'r, R> {
    pub fn new(reader: &'r mut R) -> IdGuard<'r, R> {
        IdGuard {
            reader,
            seen: HashMap::new(),
        }
    }

    /// Errs when `id` was given by an earlier line or is already recorded; otherwise
    /// remembers it as given by `line`.
    pub fn claim(&mut self, id: EventId, line: u64) -> Result<(), LineProblem> {
        if let Some(first) = self.seen.get(&id) {
            return Err(LineProblem::DuplicateId {
                id,
                first_line: *first,
            });
        }
        if let Some(existing) = self.reader.get(id)? {
            return Err(LineProblem::AlreadyRecorded {
                id,
                seq: existing.seq,
            });
        }
        self.seen.insert(id, line);
        Ok(())
    }
}

/// What the input of a batch held: the events of the good lines and the problems of the bad
/// ones, each with its line number (blank lines are skipped, but counted).
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<(u64, AuditEvent)>,
    pub problems: Vec<(u64, LineProblem)>,
}

impl Batch {
    /// The lines that held an event or a problem.
    pub fn lines(&self) -> usize {
        self.events.len() + self.problems.len()
    }
}

/// Checks one line (`line_no` counts from 1) as the recorder will, and claims its id.
pub fn check_line<R: Read + ?Sized>(
    bytes: &[u8],
    line_no: u64,
    ids: &mut IdGuard<'_, R>,
    policy: &Policy,
) -> Result<AuditEvent, LineProblem> {
    let input = parse_event(bytes)?;
    let mut event = input.event;
    event.normalize()?;
    // The recorder applies the policy to what the level keeps; applied twice, it gives the
    // same event.
    if policy.admits(&event) {
        policy.apply(&mut event)?;
    }
    if input.id_given {
        ids.claim(event.id, line_no)?;
    }
    Ok(event)
}

/// Reads every line of `input`, checking each with [`check_line`], so that one run names
/// every bad line. Fails only when the input can not be read (the error says which line).
pub fn read_batch<R: Read + ?Sized>(
    ids: &mut IdGuard<'_, R>,
    policy: &Policy,
    mut input: impl BufRead,
) -> Result<Batch, (u64, std::io::Error)> {
    let mut batch = Batch::default();
    let mut buf = Vec::new();
    for line_no in 1u64.. {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(|e| (line_no, e))?;
        if n == 0 {
            break;
        }
        let line = trim_line_end(&buf);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match check_line(line, line_no, ids, policy) {
            Ok(event) => batch.events.push((line_no, event)),
            Err(problem) => batch.problems.push((line_no, problem)),
        }
    }
    Ok(batch)
}

/// The line without its `\n` or `\r\n`.
fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}
