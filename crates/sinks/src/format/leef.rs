//! IBM QRadar Log Event Extended Format, version 2.0.
//!
//! `LEEF:2.0|Vendor|Product|Version|EventID|x09|key=value<TAB>key=value...`
//!
//! The sixth header field names the attribute delimiter; `x09` is the tab, LEEF's own default
//! and the one character no audit value needs unescaped. LEEF defines no escaping of its own,
//! so we hold to the one QRadar and other parsers read back unambiguously:
//! - in header fields, `\` becomes `\\`, `|` becomes `\|`, control characters become spaces
//!   (the exact operation travels in `resource` too);
//! - in attribute values, `\` becomes `\\`, TAB `\t`, LF `\n`, CR `\r`. A `=` needs no escape:
//!   an attribute splits at its first `=`, and keys are ours.
//!
//! Attributes: `devTime` with its `devTimeFormat` (the event's time, UTC, milliseconds), `cat`
//! (kind), `sev` (1..=10), `usrName`, `src` (only when an address), `action`, `outcome`,
//! `resource` (the operation), `userAgent`, `eventId`, `logId`, `seq`, `leafHash`, `sessionId`,
//! `serverName`, `classification`.

use std::fmt::Write;

use mcp_audit_store::StoredEvent;

use super::{PRODUCT, PRODUCT_VERSION, Severity, VENDOR, client_ip, escape_header, signature_id};

/// The attribute delimiter, as the header names it.
pub const DELIMITER: char = '\t';

/// `devTime`'s format, in Java's `SimpleDateFormat` notation as `devTimeFormat` wants it.
pub const DEV_TIME_FORMAT: &str = "yyyy-MM-dd'T'HH:mm:ss.SSSZ";

/// The LEEF line for `event`.
pub fn record(event: &StoredEvent) -> String {
    let e = &event.event;
    let mut line = String::from("LEEF:2.0");
    for field in [
        VENDOR,
        PRODUCT,
        PRODUCT_VERSION,
        &signature_id(event),
        "x09",
    ] {
        line.push('|');
        line.push_str(&escape_header(field));
    }
    line.push('|');

    let time = e
        .timestamp
        .strftime("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string();
    let src = client_ip(event).map(|ip| ip.to_string());
    let pairs: [(&str, Option<&str>); 17] = [
        ("devTime", Some(&time)),
        ("devTimeFormat", Some(DEV_TIME_FORMAT)),
        ("cat", Some(e.kind.as_str())),
        ("sev", Some(&Severity::of(event).scale_10().to_string())),
        ("usrName", e.actor.user_id.as_deref()),
        ("src", src.as_deref()),
        ("action", Some(e.action.as_str())),
        ("outcome", Some(e.outcome.as_str())),
        ("resource", Some(&e.operation)),
        ("userAgent", e.actor.user_agent.as_deref()),
        ("eventId", Some(&e.id.to_string())),
        ("logId", Some(&event.log_id)),
        ("seq", Some(&event.seq.to_string())),
        ("leafHash", Some(&event.leaf_hash.to_string())),
        ("sessionId", e.session_id.as_deref()),
        ("serverName", e.target.server_name.as_deref()),
        (
            "classification",
            e.compliance.classification.map(|c| c.as_str()),
        ),
    ];
    let mut first = true;
    for (key, value) in pairs {
        let Some(value) = value else { continue };
        if !first {
            line.push(DELIMITER);
        }
        first = false;
        let _ = write!(line, "{key}={}", escape_value(value));
    }
    line
}

/// An attribute value: `\` → `\\`, TAB → `\t`, LF → `\n`, CR → `\r`.
pub fn escape_value(value: &str) -> String {
    super::escape_with(
        value,
        &[('\\', "\\\\"), ('\t', "\\t"), ('\n', "\\n"), ('\r', "\\r")],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unescape_value(escaped: &str) -> String {
        crate::format::unescape_with(escaped, &[('t', '\t'), ('n', '\n'), ('r', '\r')])
    }

    #[test]
    fn escapes_keep_the_tab_delimiter_and_line_breaks_out_of_values() {
        assert_eq!(escape_header(r"a|b\c"), r"a\|b\\c");
        assert_eq!(escape_value("a\tb=c\\d\r\n"), r"a\tb=c\\d\r\n");
    }

    #[test]
    fn every_short_value_over_the_delimiters_round_trips() {
        let alphabet = ['a', '|', '\\', '=', '\n', '\r', 't', '\t'];
        let mut level = vec![String::new()];
        for _ in 0..4 {
            level = level
                .iter()
                .flat_map(|v| alphabet.iter().map(move |c| format!("{v}{c}")))
                .collect();
            for value in &level {
                let escaped = escape_value(value);
                assert!(!escaped.contains(['\t', '\n', '\r']), "{escaped:?}");
                assert_eq!(&unescape_value(&escaped), value);
            }
        }
    }
}
