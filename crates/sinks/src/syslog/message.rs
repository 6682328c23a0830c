//! One RFC 5424 message per record, framed by octet counting (RFC 6587 §3.4.1). Pure: bytes
//! in, bytes out.
//!
//! ```text
//! 312 <134>1 2026-12-07T10:15:02.123456Z host mcp-audit 4711 tool_execution [mcp-audit@32473 log="proxy" seq="41"] CEF:0|...
//! ^len ^PRI ^VERSION ^TIMESTAMP (the event's, UTC, µs)  ^PROCID ^MSGID (kind)  ^SD-ELEMENT                        ^MSG
//! ```
//!
//! The frame's length is the message's byte length, so nothing the message holds (a line
//! break, a `<13>1` that looks like another header, a digit run and a space) can end it early
//! or start another: a receiver reads exactly that many bytes. The structured-data element
//! carries the record's idempotency key (log id and seq), so a receiver can drop duplicates
//! without parsing the body; `32473` is the private enterprise number RFC 5612 reserves for
//! documentation, used until the project has its own.

use mcp_audit_store::StoredEvent;

use crate::format::Severity;

/// The SD-ID of the element that carries the record key.
pub const SD_ID: &str = "mcp-audit@32473";

/// The parts of the header that are the same for every message of a sink.
#[derive(Debug, Clone)]
pub struct Header {
    /// 0..=23.
    pub facility: u8,
    /// Printable US-ASCII, 1..=255 characters (checked by the configuration).
    pub hostname: String,
    /// Printable US-ASCII, 1..=48 characters (checked by the configuration).
    pub app_name: String,
    /// This process's id.
    pub proc_id: u32,
}

/// `MSG-LEN SP SYSLOG-MSG` for `event` with `body` as its MSG, appended to `out`.
pub fn frame(out: &mut Vec<u8>, header: &Header, event: &StoredEvent, body: &str) {
    let message = message(header, event, body);
    out.extend_from_slice(format!("{} ", message.len()).as_bytes());
    out.extend_from_slice(message.as_bytes());
}

/// The RFC 5424 SYSLOG-MSG: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`.
pub fn message(header: &Header, event: &StoredEvent, body: &str) -> String {
    // PRI = facility × 8 + severity (§6.2.1).
    let pri = u16::from(header.facility) * 8 + u16::from(Severity::of(event).syslog());
    // TIME-SECFRAC takes at most six digits (§6.2.3); the store keeps microseconds.
    let timestamp = event
        .event
        .timestamp
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    format!(
        "<{pri}>1 {timestamp} {} {} {} {} [{SD_ID} log=\"{}\" seq=\"{}\"] {body}",
        header.hostname,
        header.app_name,
        header.proc_id,
        event.event.kind.as_str(),
        escape_param(&event.log_id),
        event.seq,
    )
}

/// A PARAM-VALUE: `"`, `\` and `]` take a backslash (§6.3.3).
pub fn escape_param(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `value` is 1..=`max` printable US-ASCII characters (`PRINTUSASCII`, 33..=126), as
/// HOSTNAME, APP-NAME, PROCID and MSGID must be.
pub fn is_print_us_ascii(value: &str, max: usize) -> bool {
    !value.is_empty() && value.len() <= max && value.bytes().all(|b| (33..=126).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_values_escape_quote_backslash_and_bracket_only() {
        assert_eq!(escape_param(r#"a"b\c]d[e="#), r#"a\"b\\c\]d[e="#);
    }

    #[test]
    fn header_fields_are_printable_us_ascii_within_their_length() {
        assert!(is_print_us_ascii("mcp-audit", 48));
        assert!(!is_print_us_ascii("", 48));
        assert!(!is_print_us_ascii("mcp audit", 48));
        assert!(!is_print_us_ascii("prôxy", 255));
        assert!(!is_print_us_ascii(&"a".repeat(49), 48));
    }
}
