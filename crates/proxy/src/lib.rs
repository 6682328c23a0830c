//! The mcp-audit proxy: puts the audit trail in front of any MCP server without touching it.
//!
//! - [`json`]: a JSON reader as permissive as the servers behind the proxy, so that what a
//!   server can parse and run, the proxy can parse and record.
//! - [`jsonrpc`]: JSON-RPC framing (single messages and 2025-03-26 batches).
//! - [`Interpreter`]: MCP interpretation, transport-independent: pairs requests and responses
//!   in both directions and turns them into `AuditEvent`s.
//! - [`stdio`]: the stdio transport adapter: the client talks to us, we talk to the server we
//!   started, and every byte passes through unchanged.
//! - [`client_stdio`]: the proxy's own standard streams as the client's end, polled by the
//!   runtime when they are pipes (no thread hop per frame).
//! - [`exit`]: how that server ended ([`ServerExit`]: a status or a signal), and stopping it.
//! - [`http`]: the Streamable HTTP adapter: the audit layer of a gateway in front of remote
//!   MCP servers, with the caller's identity.
//! - [`metrics`]: `/metrics` in the Prometheus text format: the recorder's figures and the
//!   calls refused, by reason ([`ProxyMetrics`]).
//! - [`audit`]: what a program running either adapter needs around it ([`ProxyAudit`]: the
//!   recorder over an opened store, tuned to the durability and transport, crash recovery,
//!   shutdown); the `mcp-audit proxy` command is this plus its flags.

pub mod audit;
pub mod client_stdio;
pub mod exit;
mod flood;
pub mod http;
pub mod interpreter;
pub mod json;
pub mod jsonrpc;
pub mod metrics;
pub mod stdio;
pub mod tap;

pub use audit::{AuditOptions, ProxyAudit, Transport, incomplete_outcomes};
pub use exit::ServerExit;
pub use http::{HttpConfig, HttpError, run_http};
pub use interpreter::{Admission, Continuations, Direction, Interpreter, Record, SessionConfig};
pub use metrics::{Denials, ProxyMetrics};
pub use stdio::{ProxyConfig, ProxyError, run_stdio};

/// Why a request was refused when its intent could not be made durable (`sync`): the reason
/// on record, and after `mcp-audit: ` the client's error, on both transports.
const NOT_FORWARDED: &str =
    "the request was not forwarded because its audit record could not be written";

/// The reason on record for a request refused because its intent could not be written.
pub(crate) fn not_forwarded(error: &impl std::fmt::Display) -> String {
    format!("{NOT_FORWARDED} ({error})")
}
