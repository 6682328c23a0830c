//! The one place between the adapters and the recorder: it records, then lets a frame go on or
//! refuses it, and keeps what is known of a frame too large to hold.
//!
//! Both adapters hand it every frame a peer sends ([`Tap::admit`] for a client's, which may be
//! refused; [`Tap::see`] for the others), and forward a frame only once what it returned says
//! so: intents (`sync`) made durable first ([`Held::durable`]), together for all the frames of
//! one read so that they share one group commit; every other record queued without holding the
//! traffic. The bookkeeping of what is not forwarded is here too, so that no adapter spells it:
//! a frame the interpreter refuses (what `sync` can not put on record whole), a frame whose
//! intents could not be written ([`Tap::deny`]), a frame refused because the store has refused
//! writes past the recorder's `max_outage` (`batch`), and a frame refused before it was read
//! for what it is (bad credentials, [`Tap::refuse`]): each request is recorded `denied` as the
//! operation it is, queued (the recorder keeps it through an outage, and puts what it had no
//! room for on record as a gap event), and answered with the proxy's own JSON-RPC error.
//!
//! A frame is held whole (up to [`MAX_FRAME`]) so that it can be interpreted, and in `sync`
//! recorded, before it is forwarded. A larger one can not be: it is streamed through (or, in
//! `sync` from the client, dropped and refused), and only its size, hash and start are kept
//! ([`Oversize`]), which is what [`crate::Interpreter::admit_oversize`] decides on.

use std::sync::Mutex;
use std::time::Instant;

use mcp_audit_core::Outcome;
use mcp_audit_store::{Receipt, RecordError, Recorder};
use sha2::{Digest, Sha256};

use crate::interpreter::{Admission, Direction, Interpreter, Record};
use crate::metrics::{DenialReason, Denials};

/// Frames larger than this are not held: forwarded without being interpreted whole (recorded
/// by size, hash and start), or in `sync` from the client refused.
pub const MAX_FRAME: usize = 10 * 1024 * 1024;

/// How much of the start of an oversized frame is kept: enough for the id, the method and the
/// name that a request usually puts before its arguments.
pub const HEAD: usize = 64 * 1024;

/// A frame larger than [`MAX_FRAME`] on its way: its hash so far, its size, and its start.
/// The one record of such a frame for every adapter (stdio lines, HTTP bodies, SSE events).
pub struct Oversize {
    hash: Sha256,
    size: usize,
    head: Vec<u8>,
    /// Whether its bytes are being forwarded (else dropped: the frame will be refused).
    pub forwarded: bool,
}

/// What is known of an oversized frame once it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its first [`HEAD`] bytes.
    pub head: Vec<u8>,
    pub size: usize,
    pub sha256: [u8; 32],
}

impl Oversize {
    /// An oversized frame whose first bytes are `bytes`.
    pub fn start(bytes: &[u8], forwarded: bool) -> Oversize {
        let mut oversize = Oversize {
            hash: Sha256::new(),
            size: 0,
            head: Vec::new(),
            forwarded,
        };
        oversize.update(bytes);
        oversize
    }

    /// More of the frame.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hash.update(bytes);
        self.size += bytes.len();
        let room = HEAD - self.head.len();
        if room > 0 {
            self.head.extend_from_slice(&bytes[..room.min(bytes.len())]);
        }
    }

    /// The frame ended with `last`.
    pub fn finish(mut self, last: &[u8]) -> Seen {
        self.update(last);
        Seen {
            head: self.head,
            size: self.size,
            sha256: self.hash.finalize().into(),
        }
    }
}

/// What an adapter does to a record before it is written: the HTTP adapter stamps the caller
/// and its session on it; the stdio adapter leaves it as the interpreter made it.
pub type Stamp<'a> = &'a (dyn Fn(&mut Record) + Sync);

/// Leaves a record as it is (see [`Stamp`]).
pub fn unstamped(_: &mut Record) {}

/// The recorder, as the adapters use it.
#[derive(Clone)]
pub struct Tap {
    recorder: Recorder,
    /// The calls refused here, by reason, for `/metrics`.
    denials: Denials,
}

/// What becomes of a client's frame (see [`Tap::admit`]).
pub enum Verdict {
    /// Forward it once its intents are durable.
    Forward(Held),
    /// Do not forward it; its records are queued.
    Refuse(Refusal),
}

/// A frame not forwarded, on record.
#[derive(Debug)]
pub struct Refusal {
    /// Why, as recorded (and after `mcp-audit: `, as the client is told).
    pub reason: String,
    /// The proxy's answer to each request of the frame, with its id (`None`: the frame named
    /// no request to answer).
    pub answer: Option<Vec<u8>>,
}

/// The intents of a frame being made durable, and whether the store is past its outage
/// limit (then the frame is refused as if they had failed).
#[must_use = "a frame may go on only once its intents are durable"]
pub struct Held {
    intents: Vec<tokio::task::JoinHandle<Result<Receipt, RecordError>>>,
    outage: Option<RecordError>,
}

impl Held {
    /// Whether nothing is held: the frame may go on at once.
    pub fn is_empty(&self) -> bool {
        self.intents.is_empty() && self.outage.is_none()
    }

    /// Waits for the intents; the first failure (or the outage) if the frame must not go on.
    pub async fn durable(self) -> Result<(), RecordError> {
        let mut failure = self.outage;
        for intent in self.intents {
            let result = intent.await.unwrap_or_else(|e| {
                // The write's task panicked: its record is not known to be durable.
                tracing::error!(error = %e, "an intent's write failed");
                Err(RecordError::Closed)
            });
            if let Err(e) = result {
                failure = failure.or(Some(e));
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

impl Tap {
    pub fn new(recorder: Recorder, denials: Denials) -> Tap {
        Tap { recorder, denials }
    }

    /// Counts the calls among `records` that are on record `denied`, for `reason`.
    pub fn count_denied(&self, records: &[Record], reason: DenialReason) {
        let calls = records
            .iter()
            .filter(|r| r.event.outcome == Outcome::Denied)
            .count();
        self.denials.count(reason, calls as u64);
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// A client's frame: the interpreter decides (see [`crate::Interpreter::admit`]); a frame
    /// it refuses is on record (queued) and answered. `oversize` is a frame too large to hold,
    /// of which `frame` is the last part (only its start, size and hash are known); it is
    /// forwarded as it streams, so it is never refused for an outage.
    pub async fn admit(
        &self,
        interpreter: &Mutex<Interpreter>,
        frame: &[u8],
        oversize: Option<Oversize>,
        stamp: Stamp<'_>,
    ) -> Verdict {
        let at = Instant::now();
        let (admission, head) = {
            let mut i = lock(interpreter);
            match oversize {
                Some(oversize) => {
                    let seen = oversize.finish(frame);
                    let admission = i.admit_oversize(
                        Direction::ClientToServer,
                        &seen.head,
                        seen.size,
                        seen.sha256,
                        at,
                    );
                    (admission, Some(seen.head))
                }
                None => (i.admit(Direction::ClientToServer, frame, at), None),
            }
        };
        match admission {
            Admission::Forward(records) => {
                let mut held = self.submit(records, stamp).await;
                if head.is_none()
                    && let Some(error) = self.recorder.outage_refusal()
                    && crate::jsonrpc::refusal(frame, "").is_some()
                {
                    // Answers and notifications still pass, so that the peers' sessions stay
                    // whole; requests do not run while nothing can be recorded durably.
                    held.outage = Some(error);
                }
                Verdict::Forward(held)
            }
            Admission::Refuse { records, reason } => {
                tracing::warn!(reason, "a frame from the client was refused");
                self.count_denied(&records, DenialReason::NotRecordable);
                self.queue(records, stamp).await;
                let answerable = head.as_deref().unwrap_or(frame);
                Verdict::Refuse(Refusal {
                    answer: crate::jsonrpc::refusal(answerable, &reason),
                    reason,
                })
            }
        }
    }

    /// A frame the proxy forwards whatever it holds (the server's, or any a peer sends that
    /// is not admitted): interpreted, its records submitted. `oversize` as for [`Tap::admit`].
    pub async fn see(
        &self,
        interpreter: &Mutex<Interpreter>,
        direction: Direction,
        frame: &[u8],
        oversize: Option<Oversize>,
        stamp: Stamp<'_>,
    ) -> Held {
        let records = {
            let mut i = lock(interpreter);
            match oversize {
                Some(oversize) => {
                    let seen = oversize.finish(frame);
                    vec![i.oversize(direction, &seen.head, seen.size, seen.sha256)]
                }
                None => i.frame(direction, frame, Instant::now()),
            }
        };
        self.submit(records, stamp).await
    }

    /// A client's frame that will not be forwarded after all, because its intents could not
    /// be made durable (`error`): its requests are recorded `denied` (queued, so on record once
    /// the store takes writes again) and answered.
    pub async fn deny(
        &self,
        interpreter: &Mutex<Interpreter>,
        frame: &[u8],
        error: &RecordError,
        stamp: Stamp<'_>,
    ) -> Refusal {
        tracing::error!(%error, "an intent could not be recorded; the request was refused");
        let reason = crate::not_forwarded(error);
        let records = lock(interpreter).abandon(
            Direction::ClientToServer,
            frame,
            Outcome::Denied,
            &reason,
            Instant::now(),
        );
        let why = match error {
            RecordError::Outage { .. } => DenialReason::AuditOutage,
            _ => DenialReason::AuditWriteFailed,
        };
        self.count_denied(&records, why);
        self.queue(records, stamp).await;
        Refusal {
            answer: crate::jsonrpc::refusal(frame, &reason),
            reason,
        }
    }

    /// A client's frame refused before it was admitted (bad credentials: `reason`): each
    /// request recorded `denied` as the operation it is, and answered.
    pub async fn refuse(
        &self,
        interpreter: &Mutex<Interpreter>,
        frame: &[u8],
        reason: &str,
        stamp: Stamp<'_>,
    ) -> Refusal {
        let records =
            lock(interpreter).refused(Direction::ClientToServer, frame, Outcome::Denied, reason);
        self.count_denied(&records, DenialReason::Credentials);
        self.queue(records, stamp).await;
        Refusal {
            answer: crate::jsonrpc::refusal(frame, reason),
            reason: reason.to_string(),
        }
    }

    /// Writes records: those that must be durable before their frame moves on are started at
    /// once (so that the intents of every frame of one read share a group commit) and held;
    /// the others are queued without holding the traffic (a full queue still blocks:
    /// backpressure).
    pub async fn submit(&self, records: Vec<Record>, stamp: Stamp<'_>) -> Held {
        let mut intents = Vec::new();
        for mut r in records {
            stamp(&mut r);
            if r.before_forwarding {
                let recorder = self.recorder.clone();
                intents.push(tokio::spawn(async move {
                    recorder.record_durable_async(r.event).await
                }));
            } else {
                self.queue_one(r).await;
            }
        }
        Held {
            intents,
            outage: None,
        }
    }

    /// Queues records nobody waits for.
    pub async fn queue(&self, records: Vec<Record>, stamp: Stamp<'_>) {
        for mut r in records {
            stamp(&mut r);
            self.queue_one(r).await;
        }
    }

    /// Queues one record nobody waits for. A record that can not be queued is counted by the
    /// recorder and reported by its shutdown; the traffic goes on.
    pub async fn queue_one(&self, r: Record) {
        if let Err(error) = self.recorder.record_async(r.event).await {
            tracing::error!(%error, "could not record an MCP event");
        }
    }
}

fn lock(i: &Mutex<Interpreter>) -> std::sync::MutexGuard<'_, Interpreter> {
    i.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_frame_is_kept_as_its_size_its_hash_and_its_start_however_it_arrives() {
        let frame: Vec<u8> = (0..3 * HEAD).map(|n| (n % 251) as u8).collect();
        let whole: [u8; 32] = Sha256::digest(&frame).into();
        // In one piece, in pieces of every size around the start's length, byte by byte.
        for piece in [frame.len(), 1, 7, HEAD - 1, HEAD, HEAD + 1] {
            let mut pieces = frame.chunks(piece);
            let mut oversize = Oversize::start(pieces.next().unwrap_or_default(), true);
            let rest: Vec<&[u8]> = pieces.collect();
            let (last, middle) = rest
                .split_last()
                .map_or((&[][..], &[][..]), |(l, m)| (*l, m));
            for p in middle {
                oversize.update(p);
            }
            let seen = oversize.finish(last);
            assert_eq!(seen.size, frame.len(), "{piece}");
            assert_eq!(seen.sha256, whole, "{piece}");
            assert_eq!(seen.head, frame[..HEAD], "{piece}");
        }
    }
}
