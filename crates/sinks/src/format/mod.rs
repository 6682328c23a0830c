//! The wire formats a SIEM reads: one stored event in, one line out.
//!
//! Pure functions, no I/O: the syslog sink puts their output in the MSG part of an RFC 5424
//! message, and `mcp-audit export --format cef|leef|ocsf` writes one per line. Every format
//! yields a single line (no CR or LF inside, whatever the event holds), so a record can never
//! be split or joined with the next by a line-oriented reader.
//!
//! - [`cef`]: ArcSight Common Event Format, version 0.
//! - [`leef`]: IBM QRadar Log Event Extended Format, version 2.0, tab-delimited.
//! - [`ocsf`]: Open Cybersecurity Schema Framework JSON, class API Activity (6003).
//! - [`Format::Json`]: the event's own JSON form, as `export --format jsonl` writes it.
//!
//! What the formats carry: the event's metadata, and in OCSF's `unmapped` (and the JSON form)
//! also its payload as the store keeps it: redacted before it was written, absent once erased.

pub mod cef;
pub mod leef;
pub mod ocsf;

use std::net::IpAddr;

use mcp_audit_core::{Classification, Outcome};
use mcp_audit_store::StoredEvent;
use serde::Deserialize;

/// The vendor and product every format names, and the version of this build.
pub const VENDOR: &str = "mcp-audit";
pub const PRODUCT: &str = "mcp-audit";
pub const PRODUCT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A format for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// ArcSight CEF:0.
    #[default]
    Cef,
    /// QRadar LEEF:2.0.
    Leef,
    /// OCSF API Activity JSON.
    Ocsf,
    /// The stored event's own JSON form.
    Json,
}

/// Why a record could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The event did not serialise to JSON (a bug rather than bad input: every stored event
    /// does).
    #[error("cannot write seq {seq} as JSON: {source}")]
    Json {
        seq: u64,
        #[source]
        source: serde_json::Error,
    },
}

impl Format {
    /// The name used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Cef => "cef",
            Format::Leef => "leef",
            Format::Ocsf => "ocsf",
            Format::Json => "json",
        }
    }

    /// Renders `event` as one line (without its line ending).
    pub fn render(self, event: &StoredEvent) -> Result<String, FormatError> {
        let json = |value: Result<String, serde_json::Error>| {
            value.map_err(|source| FormatError::Json {
                seq: event.seq,
                source,
            })
        };
        match self {
            Format::Cef => Ok(cef::record(event)),
            Format::Leef => Ok(leef::record(event)),
            Format::Ocsf => json(serde_json::to_string(&ocsf::record(event))),
            Format::Json => json(serde_json::to_string(event)),
        }
    }
}

/// How much a record matters to whoever watches the SIEM, from its outcome and its data's
/// classification: the higher of the two. One scale, mapped onto each format's own (CEF and
/// LEEF 0..=10, OCSF `severity_id`, syslog's severity), so that every format ranks the same
/// event the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A success, or an intent not yet completed, on public or internal data.
    Informational,
    /// Cancelled or never completed; or confidential data.
    Low,
    /// A tool or protocol error; or restricted data.
    Medium,
    /// Refused by credentials or policy: someone tried something they may not do.
    High,
}

impl Severity {
    pub fn of(event: &StoredEvent) -> Severity {
        let by_outcome = match event.event.outcome {
            Outcome::Success | Outcome::Pending => Severity::Informational,
            Outcome::Cancelled | Outcome::Incomplete => Severity::Low,
            Outcome::ToolError | Outcome::ProtocolError => Severity::Medium,
            Outcome::Denied => Severity::High,
            // An outcome added later: noticed rather than hidden.
            _ => Severity::Medium,
        };
        let by_classification = match event.event.compliance.classification {
            None | Some(Classification::Public) | Some(Classification::Internal) => {
                Severity::Informational
            }
            Some(Classification::Confidential) => Severity::Low,
            Some(Classification::Restricted) => Severity::Medium,
        };
        by_outcome.max(by_classification)
    }

    /// CEF's and LEEF's 0..=10 scale (CEF reads 0-3 as Low, 4-6 Medium, 7-8 High).
    pub fn scale_10(self) -> u8 {
        match self {
            Severity::Informational => 1,
            Severity::Low => 3,
            Severity::Medium => 5,
            Severity::High => 8,
        }
    }

    /// OCSF `severity_id`: 1 Informational, 2 Low, 3 Medium, 4 High.
    pub fn ocsf_id(self) -> u8 {
        match self {
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
        }
    }

    /// OCSF `severity`, the caption of [`Severity::ocsf_id`].
    pub fn ocsf_name(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
        }
    }

    /// RFC 5424 severity (§6.2.1): 6 informational, 5 notice, 4 warning, 3 error.
    pub fn syslog(self) -> u8 {
        match self {
            Severity::Informational => 6,
            Severity::Low => 5,
            Severity::Medium => 4,
            Severity::High => 3,
        }
    }
}

/// The event class a SIEM groups records by: kind and operation, `tool_execution/read_file`.
pub fn signature_id(event: &StoredEvent) -> String {
    format!("{}/{}", event.event.kind.as_str(), event.event.operation)
}

/// A human title: `tool_execution EXECUTE read_file`.
pub fn title(event: &StoredEvent) -> String {
    format!(
        "{} {} {}",
        event.event.kind.as_str(),
        event.event.action.as_str(),
        event.event.operation
    )
}

/// The actor's client IP, only when it is an IP address: the formats' address fields are typed,
/// and a SIEM drops (or worse, mis-parses) a record whose `src` is not an address. Anything
/// else the field holds travels in a free-text field instead.
pub fn client_ip(event: &StoredEvent) -> Option<IpAddr> {
    event.event.actor.client_ip.as_deref()?.trim().parse().ok()
}

/// Milliseconds since the Unix epoch: CEF's `rt`, OCSF's `time`.
pub fn epoch_millis(ts: jiff::Timestamp) -> i64 {
    ts.as_millisecond()
}

/// Replaces CR, LF and the other control characters with a space, for the header fields that
/// have no escape for them. The exact value travels in an extension field too.
fn flatten_controls(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A header field of CEF or LEEF (the two share the pipe-delimited header): `\` → `\\`,
/// `|` → `\|`, control characters → space.
pub fn escape_header(value: &str) -> String {
    flatten_controls(value)
        .replace('\\', "\\\\")
        .replace('|', "\\|")
}

/// `value` with each character of `escapes` replaced by its escape, the rest as it is: CEF and
/// LEEF escape their values alike, each with its own delimiters.
fn escape_with(value: &str, escapes: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match escapes.iter().find(|(from, _)| *from == c) {
            Some((_, to)) => out.push_str(to),
            None => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape_with`] as a receiver reads it (`\` then the letter of `letters`, or
/// the character itself), for the round-trip tests of both formats.
#[cfg(test)]
fn unescape_with(escaped: &str, letters: &[(char, char)]) -> String {
    let mut out = String::new();
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(next) => out.push(
                letters
                    .iter()
                    .find(|(letter, _)| *letter == next)
                    .map_or(next, |(_, c)| *c),
            ),
            None => panic!("a lone backslash at the end of {escaped:?}"),
        }
    }
    out
}
