//! The MCP sessions the proxy is following: one interpreter per `Mcp-Session-Id`.
//!
//! A session leaves the map when the client deletes it, when the server says it no longer
//! knows it (404), when it has been idle too long, or when the proxy stops; each way records
//! its `session_end`, so that a dead client never holds memory for long.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::interpreter::Interpreter;

/// One interpreter, shared by the concurrent HTTP exchanges of its session.
pub type Shared = Arc<Mutex<Interpreter>>;

/// Locks an interpreter; a panic elsewhere does not stop the recording.
pub fn lock(i: &Mutex<Interpreter>) -> MutexGuard<'_, Interpreter> {
    i.lock().unwrap_or_else(|p| p.into_inner())
}

struct Entry {
    interpreter: Shared,
    last_used: Instant,
}

/// The map from `Mcp-Session-Id` to its interpreter.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The interpreter of a session the proxy follows.
    pub fn get(&self, id: &str) -> Option<Shared> {
        let mut map = self.map();
        let entry = map.get_mut(id)?;
        entry.last_used = Instant::now();
        Some(entry.interpreter.clone())
    }

    /// Follows a session: one the server just opened, or one it accepted a request for. If
    /// two requests of the same unfollowed session race, the first one's interpreter stays.
    pub fn insert(&self, id: &str, interpreter: Shared) {
        self.map().entry(id.to_string()).or_insert_with(|| Entry {
            interpreter,
            last_used: Instant::now(),
        });
    }

    /// Notes traffic on a session (a server stream that is still talking).
    pub fn touch(&self, id: &str) {
        if let Some(entry) = self.map().get_mut(id) {
            entry.last_used = Instant::now();
        }
    }

    pub fn remove(&self, id: &str) -> Option<Shared> {
        self.map().remove(id).map(|e| e.interpreter)
    }

    /// Removes and returns the sessions idle for longer than `idle`.
    pub fn take_idle(&self, idle: Duration) -> Vec<(String, Shared)> {
        let mut map = self.map();
        let now = Instant::now();
        let stale: Vec<String> = map
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_used) > idle)
            .map(|(id, _)| id.clone())
            .collect();
        stale
            .into_iter()
            .filter_map(|id| map.remove(&id).map(|e| (id, e.interpreter)))
            .collect()
    }

    /// Removes and returns every session (the proxy is stopping).
    pub fn take_all(&self) -> Vec<(String, Shared)> {
        self.map()
            .drain()
            .map(|(id, e)| (id, e.interpreter))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
