//! ArcSight Common Event Format, version 0 (Micro Focus, "Implementing ArcSight CEF").
//!
//! `CEF:0|Device Vendor|Device Product|Device Version|Device Event Class ID|Name|Severity|Extension`
//!
//! Escaping, as the specification has it:
//! - in the seven header fields, `\` becomes `\\` and `|` becomes `\|`; the header has no
//!   escape for line breaks, so control characters there become spaces (the exact operation
//!   name travels in `cs6` too);
//! - in extension values, `\` becomes `\\`, `=` becomes `\=`, and CR and LF become `\r` and
//!   `\n`; a `|` there needs no escape (the header ends at the seventh unescaped pipe).
//!
//! So a value can hold any text, including `a=b`, `|`, backslashes and line breaks, and the
//! record still splits into the same header and the same keys.
//!
//! Extension keys: `rt` (the event's time, epoch milliseconds), `cat` (kind), `act` (action),
//! `outcome`, `suser` (user id), `src` (client IP, only when it is an address),
//! `requestClientApplication` (user agent), `externalId` (event id), and the custom strings
//! `cs1` log id, `cs2` seq, `cs3` leaf hash, `cs4` session id, `cs5` server name, `cs6`
//! operation (tool, resource, prompt or method), each with its `csNLabel`.

use std::fmt::Write;

use mcp_audit_store::StoredEvent;

use super::{
    PRODUCT, PRODUCT_VERSION, Severity, VENDOR, client_ip, epoch_millis, escape_header,
    signature_id, title,
};

/// The CEF line for `event`.
pub fn record(event: &StoredEvent) -> String {
    let e = &event.event;
    let mut line = String::from("CEF:0");
    for field in [
        VENDOR,
        PRODUCT,
        PRODUCT_VERSION,
        &signature_id(event),
        &title(event),
        &Severity::of(event).scale_10().to_string(),
    ] {
        line.push('|');
        line.push_str(&escape_header(field));
    }
    line.push('|');

    let mut ext = Extension(line, false);
    ext.push("rt", &epoch_millis(e.timestamp).to_string());
    ext.push("cat", e.kind.as_str());
    ext.push("act", e.action.as_str());
    ext.push("outcome", e.outcome.as_str());
    ext.push_opt("suser", e.actor.user_id.as_deref());
    ext.push_opt("src", client_ip(event).map(|ip| ip.to_string()).as_deref());
    ext.push_opt("requestClientApplication", e.actor.user_agent.as_deref());
    ext.push("externalId", &e.id.to_string());
    let custom: [(&str, Option<String>); 6] = [
        ("logId", Some(event.log_id.clone())),
        ("seq", Some(event.seq.to_string())),
        ("leafHash", Some(event.leaf_hash.to_string())),
        ("sessionId", e.session_id.clone()),
        ("serverName", e.target.server_name.clone()),
        ("operation", Some(e.operation.clone())),
    ];
    for (n, (label, value)) in custom.iter().enumerate() {
        if let Some(value) = value {
            ext.push(&format!("cs{}", n + 1), value);
            ext.push(&format!("cs{}Label", n + 1), label);
        }
    }
    ext.0
}

/// The extension being written: the line so far, and whether a pair is already in it.
struct Extension(String, bool);

impl Extension {
    fn push(&mut self, key: &str, value: &str) {
        if self.1 {
            self.0.push(' ');
        }
        self.1 = true;
        let _ = write!(self.0, "{key}={}", escape_value(value));
    }

    fn push_opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.push(key, value);
        }
    }
}

/// An extension value: `\` → `\\`, `=` → `\=`, CR → `\r`, LF → `\n`.
pub fn escape_value(value: &str) -> String {
    super::escape_with(
        value,
        &[('\\', "\\\\"), ('=', "\\="), ('\n', "\\n"), ('\r', "\\r")],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CEF's unescaping of an extension value, written from the specification.
    fn unescape_value(escaped: &str) -> String {
        crate::format::unescape_with(escaped, &[('n', '\n'), ('r', '\r')])
    }

    #[test]
    fn escapes_follow_the_specification() {
        assert_eq!(escape_header(r"a|b\c"), r"a\|b\\c");
        assert_eq!(escape_header("a\r\nb\tc"), "a  b c");
        assert_eq!(escape_value(r"a=b\c|d"), r"a\=b\\c|d");
        assert_eq!(escape_value("a\r\nb"), r"a\r\nb");
    }

    /// Every string of up to four characters over the delimiters comes back from its escaped
    /// form, which holds no line break and no unescaped `=`.
    #[test]
    fn every_short_value_over_the_delimiters_round_trips() {
        let alphabet = ['a', '|', '\\', '=', '\n', '\r', ' ', 'n'];
        let mut level = vec![String::new()];
        for _ in 0..4 {
            level = level
                .iter()
                .flat_map(|v| alphabet.iter().map(move |c| format!("{v}{c}")))
                .collect();
            for value in &level {
                let escaped = escape_value(value);
                assert!(!escaped.contains(['\n', '\r']), "{escaped:?}");
                assert!(!has_bare_equals(&escaped), "{escaped:?}");
                assert_eq!(&unescape_value(&escaped), value);
            }
        }
    }

    /// Whether `escaped` holds an `=` not preceded by an odd run of backslashes.
    fn has_bare_equals(escaped: &str) -> bool {
        let mut backslashes = 0;
        for c in escaped.chars() {
            match c {
                '\\' => backslashes += 1,
                '=' if backslashes % 2 == 0 => return true,
                _ => backslashes = 0,
            }
        }
        false
    }
}
