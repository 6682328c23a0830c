//! Trace and span ids that a retry reproduces.
//!
//! A sink delivers at least once, so the same event may be exported twice; a backend that keys
//! spans by their ids then shows one span, not two, only if the ids are a function of the
//! record. So:
//!
//! - trace id: the W3C trace id the proxy recorded from the caller's `traceparent`, which joins
//!   the span to the caller's own trace; when there is none (or it is not 32 hex digits, or is
//!   all zeros, which W3C calls invalid), the first 16 bytes of
//!   `SHA-256("mcp-audit/otlp/trace" || 0x00 || event id as 16 bytes)`.
//! - span id: the first 8 bytes of
//!   `SHA-256("mcp-audit/otlp/span" || 0x00 || log id || 0x00 || seq as 8 bytes big-endian)`,
//!   the record's idempotency key; unique per record of a database.
//!
//! An all-zero id is invalid in OTLP; a digest that starts with that many zero bytes gets its
//! last byte set to 1 (a 2^-64 chance that costs one branch).

use mcp_audit_store::StoredEvent;
use sha2::{Digest, Sha256};

/// The trace id of `event`'s span and log record (16 bytes).
pub fn trace_id(event: &StoredEvent) -> [u8; 16] {
    if let Some(recorded) = event.event.trace_id.as_deref().and_then(parse_trace_id) {
        return recorded;
    }
    let digest = Sha256::new()
        .chain_update(b"mcp-audit/otlp/trace\0")
        .chain_update(event.event.id.0.as_bytes())
        .finalize();
    nonzero(digest[..16].try_into().unwrap_or([1; 16]))
}

/// The span id of `event`'s span (8 bytes).
pub fn span_id(event: &StoredEvent) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update(b"mcp-audit/otlp/span\0")
        .chain_update(event.log_id.as_bytes())
        .chain_update([0])
        .chain_update(event.seq.to_be_bytes())
        .finalize();
    nonzero(digest[..8].try_into().unwrap_or([1; 8]))
}

/// A recorded W3C trace id: 32 hex digits, not all zero.
fn parse_trace_id(text: &str) -> Option<[u8; 16]> {
    let mut id = [0u8; 16];
    hex::decode_to_slice(text, &mut id).ok()?;
    (id != [0; 16]).then_some(id)
}

fn nonzero<const N: usize>(mut id: [u8; N]) -> [u8; N] {
    if id == [0; N] {
        id[N - 1] = 1;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::parse_trace_id;

    #[test]
    fn a_recorded_trace_id_is_used_only_when_it_is_a_valid_w3c_id() {
        let valid = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            parse_trace_id(valid).map(hex::encode).as_deref(),
            Some(valid)
        );
        for bad in [
            "",
            "4bf92f35",
            "00000000000000000000000000000000",
            "zz",
            &format!("{valid}00"),
        ] {
            assert_eq!(parse_trace_id(bad), None, "{bad}");
        }
    }
}
