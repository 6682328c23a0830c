//! What a receiver's answer means for the batch: the part of failure mapping both transports
//! share.

use crate::Failure;

/// A receiver that answers OK with a `partial_success` naming rejected items did not take the
/// whole batch. OTLP says how many it rejected, not which, so the batch counts as refused at
/// its first record: the runner then sends that record alone, and the batch's records go one
/// by one until the one the receiver rejects is alone and, after its tries, in the dead
/// letters. Records it accepted meanwhile may arrive twice, which the idempotency key
/// (`mcp_audit.key`) lets the receiver drop.
pub fn partial_success(signal: &str, rejected: i64, message: &str) -> Result<(), Failure> {
    if rejected <= 0 {
        return Ok(());
    }
    let detail = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    Err(Failure::Refused {
        accepted: 0,
        reason: format!("receiver rejected {rejected} {signal}{detail}"),
    })
}

/// A receiver's own text, cut to a length that fits an error line and the dead letters.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 300;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}
