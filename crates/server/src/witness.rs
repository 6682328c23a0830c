//! `serve --witness-key`: a C2SP tlog-witness, `POST /add-checkpoint`.
//!
//! A log sends its newest signed checkpoint with a consistency proof from the size this
//! witness last co-signed; the witness checks the log's signature with the verifier key it
//! trusts for that origin, checks the proof against the root it stored, stores the new size
//! and root, and answers with its `cosignature/v1` line. Whoever later holds that cosignature
//! knows that this witness saw no other tree of that size, nor any larger tree that the
//! checkpoint does not extend: a log cut back or rewritten after it was co-signed can no
//! longer get a cosignature for its new history.
//!
//! The answers follow the spec exactly, so that any tlog-witness client can use this witness:
//!
//! | status | when |
//! |---|---|
//! | 200 | co-signed: the body is the cosignature line(s) |
//! | 400 | the body is malformed, or the old size is larger than the checkpoint's |
//! | 403 | no signature on the checkpoint verifies with a key trusted for its origin |
//! | 404 | the origin is not one this witness is configured for |
//! | 409 | the old size is not the one last co-signed (the body, `text/x.tlog.size`, says which), or the same size with another root (a fork) |
//! | 413 | the body is larger than [`MAX_BODY`] |
//! | 422 | the consistency proof does not verify (a fork or a truncation) |
//!
//! The stored state moves only through a compare-and-swap on the old size
//! ([`mcp_audit_store::Witnessing::advance_witnessed`]): of two submissions that extend the
//! same size, one wins and the other gets the 409 a stale client gets.
//!
//! Submissions are not recorded as events of the audit log: the endpoint takes requests from
//! anyone who can reach it (the protocol has no authentication beyond the log's signature), and
//! a record per request would let any caller grow the log without bound. What the witness
//! keeps is one row per trusted origin, written only for a checkpoint signed by a trusted key;
//! refusals of validly signed checkpoints (possible evidence of a fork) go to the server's log
//! output as warnings with the submitted note.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mcp_audit_core::Hash;
use mcp_audit_core::checkpoint::{Checkpoint, NoteError, NoteVerifier};
use mcp_audit_core::cosignature::{CosignatureSigner, note_body};
use mcp_audit_core::merkle;
use mcp_audit_store::{Advance, Store, Witnessed};

/// The largest request body taken: an old-size line, at most 63 proof lines and a checkpoint
/// with a handful of signatures fit in a few kilobytes.
pub const MAX_BODY: usize = 64 * 1024;
/// tlog-witness: a client MUST NOT send more than 63 consistency proof lines.
const MAX_PROOF_LINES: usize = 63;

/// A log this witness co-signs: its origin line and a key that signs its checkpoints.
#[derive(Debug, Clone)]
pub struct TrustedLog {
    pub origin: String,
    pub key: NoteVerifier,
}

/// What `serve --witness-key` runs with.
pub struct Witness {
    pub signer: CosignatureSigner,
    pub trusted: Vec<TrustedLog>,
    /// A writable store of the serve database, where the co-signed state is kept. Behind a
    /// std `Mutex`: it is only used inside `spawn_blocking`, one submission at a time per
    /// process (the compare-and-swap covers other processes).
    pub state: Mutex<Box<dyn Store>>,
}

/// The `/add-checkpoint` route.
pub(crate) fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(witness)
}

/// A parsed request body.
#[derive(Debug)]
struct Submission {
    old_size: u64,
    proof: Vec<Hash>,
    note: String,
}

/// A refusal, as the spec's status and a one-line reason (plain text).
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    reason: String,
    /// For 409: the size last co-signed, sent as `text/x.tlog.size`.
    size: Option<u64>,
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
        size: None,
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self.size {
            Some(size) => (
                self.status,
                [(header::CONTENT_TYPE, "text/x.tlog.size")],
                format!("{size}\n"),
            )
                .into_response(),
            None => (
                self.status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{}\n", self.reason),
            )
                .into_response(),
        }
    }
}

/// Parses `old <size>\n`, the proof lines, a blank line, then the checkpoint note.
fn parse(body: &[u8]) -> Result<Submission, Refusal> {
    let bad = |why: &str| refuse(StatusCode::BAD_REQUEST, format!("malformed request: {why}"));
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
    // The first blank line ends the proof: the checkpoint's own blank line comes later.
    let at = text
        .find("\n\n")
        .ok_or_else(|| bad("no blank line before the checkpoint"))?;
    let (head, note) = (&text[..at], &text[at + 2..]);
    let mut lines = head.split('\n');
    let old = lines
        .next()
        .and_then(|l| l.strip_prefix("old "))
        .ok_or_else(|| bad("the first line is not `old <size>`"))?;
    if old.is_empty()
        || !old.bytes().all(|b| b.is_ascii_digit())
        || (old.len() > 1 && old.starts_with('0'))
    {
        return Err(bad(
            "the old size is not a decimal number without leading zeroes",
        ));
    }
    let old_size = old
        .parse()
        .map_err(|_| bad("the old size is out of range"))?;
    let mut proof = Vec::new();
    for line in lines {
        if proof.len() == MAX_PROOF_LINES {
            return Err(bad("more than 63 consistency proof lines"));
        }
        let hash = STANDARD
            .decode(line)
            .ok()
            .and_then(|bytes| Hash::from_slice(&bytes))
            .ok_or_else(|| bad("a proof line is not a base64 32-byte hash"))?;
        proof.push(hash);
    }
    if note.is_empty() {
        return Err(bad("no checkpoint"));
    }
    Ok(Submission {
        old_size,
        proof,
        note: note.to_string(),
    })
}

/// The checkpoint of `note` if a key trusted for its origin signed it.
fn open(trusted: &[TrustedLog], note: &str) -> Result<Checkpoint, Refusal> {
    let origin = note.split('\n').next().unwrap_or_default();
    let keys: Vec<&TrustedLog> = trusted.iter().filter(|t| t.origin == origin).collect();
    if keys.is_empty() {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            format!("unknown log origin `{origin}`"),
        ));
    }
    let mut last = None;
    for log in keys {
        match log.key.open(note) {
            Ok(checkpoint) => return Ok(checkpoint),
            Err(NoteError::Malformed { what, problem }) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    format!("malformed {what}: {problem}"),
                ));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(refuse(
        StatusCode::FORBIDDEN,
        last.map_or_else(
            || "no trusted signature".to_string(),
            |e| format!("no signature by a key trusted for `{origin}` verifies: {e}"),
        ),
    ))
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    let submission = match parse(&body) {
        Ok(s) => s,
        Err(refusal) => return refusal.into_response(),
    };
    let checkpoint = match open(&witness.trusted, &submission.note) {
        Ok(c) => c,
        Err(refusal) => return refusal.into_response(),
    };
    let worker = Arc::clone(&witness);
    let decided =
        tokio::task::spawn_blocking(move || decide(&worker, &submission, &checkpoint)).await;
    match decided {
        Ok(Ok(line)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            line,
        )
            .into_response(),
        Ok(Err(refusal)) => refusal.into_response(),
        Err(e) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the witness's worker failed: {e}"),
        )
        .into_response(),
    }
}

/// Checks `submission` against the stored state, advances it, and cosigns: the cosignature
/// line, or the refusal.
fn decide(
    witness: &Witness,
    submission: &Submission,
    checkpoint: &Checkpoint,
) -> Result<String, Refusal> {
    let (old, size) = (submission.old_size, checkpoint.size);
    if old > size {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("the old size {old} is larger than the checkpoint's {size}"),
        ));
    }
    let internal = |e: mcp_audit_store::StoreError| {
        tracing::error!(error = %e, "the witness state could not be read or written");
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the witness state could not be read or written",
        )
    };
    let mut store = witness.state.lock().map_err(|_| {
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the witness state is unusable",
        )
    })?;
    let stored = store.witnessed(&checkpoint.origin).map_err(internal)?;
    let stored_size = stored.as_ref().map_or(0, |s| s.size);
    let conflict = |size| Refusal {
        status: StatusCode::CONFLICT,
        reason: String::new(),
        size: Some(size),
    };
    if old != stored_size {
        return Err(conflict(stored_size));
    }
    let evidence = |what: &str| {
        tracing::warn!(
            origin = %checkpoint.origin,
            old,
            size,
            note = %submission.note,
            "witness refused a validly signed checkpoint: {what}"
        );
    };
    let old_root = stored.as_ref().map_or_else(merkle::empty_root, |s| s.root);
    if old == size && old_root != checkpoint.root {
        evidence("same size, another root (a fork)");
        return Err(conflict(stored_size));
    }
    if !merkle::verify_consistency(old, size, &submission.proof, &old_root, &checkpoint.root) {
        evidence("the consistency proof does not verify");
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the consistency proof from {old} to {size} does not verify"),
        ));
    }
    if old != size || stored.is_none() {
        let new = Witnessed {
            size,
            root: checkpoint.root,
            note: submission.note.clone(),
        };
        match store
            .advance_witnessed(&checkpoint.origin, old, &new)
            .map_err(internal)?
        {
            Advance::Advanced => {}
            Advance::Conflict { size } => return Err(conflict(size)),
        }
    }
    drop(store);
    let body = note_body(&submission.note).ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            "malformed signed note: no blank line before the signatures",
        )
    })?;
    let now = jiff::Timestamp::now().as_second().max(0) as u64;
    tracing::info!(origin = %checkpoint.origin, old, size, "witness co-signed a checkpoint");
    Ok(witness.signer.cosign(body, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_body_is_read_as_the_spec_writes_it() {
        let h = STANDARD.encode([7u8; 32]);
        let s =
            parse(format!("old 20\n{h}\n{h}\n\norigin\n21\nroot\n\n— k sig\n").as_bytes()).unwrap();
        assert_eq!(s.old_size, 20);
        assert_eq!(s.proof.len(), 2);
        assert_eq!(s.note, "origin\n21\nroot\n\n— k sig\n");
        let s = parse(b"old 0\n\no\n0\nr\n\n- k s\n").unwrap();
        assert_eq!((s.old_size, s.proof.len()), (0, 0));
    }

    #[test]
    fn malformed_bodies_are_400() {
        let h = STANDARD.encode([7u8; 32]);
        let many = format!("old 1\n{}\no\n1\nr\n\n— k s\n", format!("{h}\n").repeat(64));
        for body in [
            "".to_string(),
            "old 1\n".into(),
            "new 1\n\no\n1\nr\n\n— k s\n".into(),
            "old 01\n\no\n1\nr\n\n— k s\n".into(),
            "old -1\n\no\n1\nr\n\n— k s\n".into(),
            "old 1\nnot base64\n\no\n1\nr\n\n— k s\n".into(),
            format!(
                "old 1\n{}\n\no\n1\nr\n\n— k s\n",
                STANDARD.encode([1u8; 31])
            ),
            "old 1\n\n".into(),
            many,
        ] {
            let refusal = parse(body.as_bytes()).unwrap_err();
            assert_eq!(refusal.status, StatusCode::BAD_REQUEST, "{body:?}");
        }
        assert_eq!(
            parse(&[b'o', b'l', b'd', b' ', 0xff]).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
