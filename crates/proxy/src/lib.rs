//! The mcp-audit proxy: puts the audit trail in front of any MCP server without touching it.
//!
//! - [`jsonrpc`]: JSON-RPC framing (single messages and 2025-03-26 batches).
//! - [`Interpreter`]: MCP interpretation, transport-independent: pairs requests and responses
//!   in both directions and turns them into `AuditEvent`s.
//! - [`stdio`]: the stdio transport adapter: the client talks to us, we talk to the server we
//!   started, and every byte passes through unchanged.
//! - [`http`]: the Streamable HTTP adapter: the audit layer of a gateway in front of remote
//!   MCP servers, with the caller's identity.

pub mod http;
pub mod interpreter;
pub mod jsonrpc;
pub mod stdio;

pub use http::{HttpConfig, HttpError, run_http};
pub use interpreter::{Continuations, Direction, Interpreter, Record, SessionConfig};
pub use stdio::{ProxyConfig, ProxyError, incomplete_outcomes, run_stdio};
