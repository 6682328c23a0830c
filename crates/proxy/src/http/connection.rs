//! One client connection, and the MCP session it carries when the upstream gives none.
//!
//! An upstream that answers `initialize` without an `Mcp-Session-Id` (a stateless server)
//! still has clients that hold a session: they initialize, then send their requests. With
//! nothing to key that session by, each request used to be an exchange of its own: the
//! `session_start` of the initialize was never ended (31 starts and 0 ends, even after the
//! proxy stopped), and every later request had a new session id. Now the connection is the
//! session: the interpreter of an initialize answered without a session id follows the
//! requests without one on the same connection, and its `session_end` is recorded when the
//! connection closes (once the last exchange on it is recorded), when it is idle for
//! `--session-idle`, or when the proxy stops. Only the caller that opened the session joins
//! it (a gateway in front may carry several callers over one connection). Requests on
//! another connection, or on one that never initialized (2026-07-28 has no handshake), stay
//! exchanges of their own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use mcp_audit_core::Actor;

use super::exchange::{queue, stamp};
use super::server::App;
use super::sessions::{Shared, lock};

/// Numbers the connections of this process.
static NEXT: AtomicU64 = AtomicU64::new(1);

/// A client's connection. Every exchange on it holds it, so that it is dropped (and its
/// session ended) only once the connection is closed and the last answer on it is recorded.
pub struct Connection {
    app: Arc<App>,
    /// This connection's key in the session map: never an `Mcp-Session-Id` (see [`key`]).
    key: String,
    /// Who opened the session the connection carries. A gateway in front may send the requests
    /// of several callers over one connection: only the opener's join the session.
    opener: Mutex<Option<Actor>>,
}

/// The session-map key of connection `n`. It starts with a NUL, which no HTTP header value
/// holds, so that no client can name another connection's session with `Mcp-Session-Id`.
fn key(n: u64) -> String {
    format!("\0connection {n}")
}

/// Whether a session-map key is a connection's (it is no `Mcp-Session-Id` to record).
pub fn is_connection_key(key: &str) -> bool {
    key.starts_with('\0')
}

impl Connection {
    pub(crate) fn new(app: Arc<App>) -> Connection {
        Connection {
            app,
            key: key(NEXT.fetch_add(1, Ordering::Relaxed)),
            opener: Mutex::new(None),
        }
    }

    fn opener(&self) -> MutexGuard<'_, Option<Actor>> {
        self.opener.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session this connection carries for `caller`, if an initialize of that same
    /// caller on it opened one.
    pub fn session(&self, caller: &Actor) -> Option<Shared> {
        if self.opener().as_ref() != Some(caller) {
            return None;
        }
        self.app.sessions.get(&self.key)
    }

    /// Makes `interpreter` (of an initialize the upstream answered without a session id)
    /// the connection's session, for `caller`. A session the connection carried already (the
    /// client initialized again) ends here.
    pub fn open_session(&self, interpreter: Shared, caller: &Actor) {
        *self.opener() = Some(caller.clone());
        lock(&interpreter).become_session();
        if let Some(previous) = self.app.sessions.remove(&self.key)
            && !Arc::ptr_eq(&previous, &interpreter)
        {
            self.end(previous, "the client initialized again on its connection");
        }
        self.app.sessions.insert(&self.key, interpreter);
    }

    fn end(&self, interpreter: Shared, reason: &str) {
        let records = lock(&interpreter).finish(reason, None, Instant::now());
        if records.is_empty() {
            return;
        }
        let tap = self.app.tap.clone();
        let write = async move {
            for mut r in records {
                // The caller is on every record already; there is no HTTP session id.
                let actor = r.event.actor.clone();
                stamp(&mut r, &actor, None);
                queue(&tap, r).await;
            }
        };
        // Dropped inside the runtime (a connection's or an exchange's task); tracked, so that
        // the proxy waits for these records before it stops.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.app.tasks.spawn_on(write, &runtime);
        } else {
            tracing::error!("the end of a connection's session could not be recorded");
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(interpreter) = self.app.sessions.remove(&self.key) {
            let reason = if *self.app.stopping.borrow() {
                "the proxy was told to stop"
            } else {
                "the client closed its connection"
            };
            self.end(interpreter, reason);
        }
    }
}
