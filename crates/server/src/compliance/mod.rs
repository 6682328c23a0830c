//! Compliance reports (`mcp-audit report gdpr|ccpa|activity|pia`): what a data protection
//! officer signs off, built from the log itself.
//!
//! - [`model`]: the report, its sections, and [`ReportKind`]; what every renderer reads.
//! - `tally`: the figures, folded from the store's read API ([`mcp_audit_store::Read`]), the
//!   same on every backend: one pass over the window's events, one over the reviews (a review
//!   may come after the window it reviews).
//! - `admin`: which admin events are erasures, exports served, legal holds and cleanup runs,
//!   recognised by their operation names, so a new kind of record is one line there.
//! - `render`: JSON, CSV (one row per figure) and a single-file HTML page that prints well.
//!
//! Why the log and nothing else: a report is evidence, so every figure in it can be checked
//! against the events that made it (`mcp-audit query` with the same window), and a report
//! run twice over the same window says the same.
//!
//! What a report never holds: payloads, data-subject ids or user ids. It counts subjects, it
//! does not list them; a report is handed around more freely than the log.

mod admin;
pub mod model;
mod render;
mod tally;

pub use model::{
    CheckpointInfo, LogIntegrity, Report, ReportError, ReportKind, ReportOptions, VerifyStatus,
};
pub use render::{Format, render};
pub use tally::build;
