//! The statements a connection has prepared, by their text: the synchronous client has no
//! cache of its own, and `query(&str)` prepares afresh each time (a round trip and a parse
//! before every statement). A reader's statements are few (a page's shape per filter
//! combination), so a small map kept per connection serves them.

use std::collections::HashMap;

use postgres::{Client, Statement};

use super::map_err;
use crate::error::StoreError;

/// At most this many statements are kept; past it the map starts over (the shapes a reader
/// asks are far fewer, but a page's `LIMIT` is written into its text).
const MOST: usize = 256;

/// One connection's prepared statements. Cleared when the connection is replaced: a
/// statement belongs to the session that prepared it.
#[derive(Default)]
pub(super) struct Statements {
    by_text: HashMap<String, Statement>,
}

impl Statements {
    /// `sql` prepared on `client`, preparing it on first use.
    pub(super) fn get(&mut self, client: &mut Client, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.by_text.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql).map_err(map_err)?;
        if self.by_text.len() >= MOST {
            self.by_text.clear();
        }
        self.by_text.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub(super) fn clear(&mut self) {
        self.by_text.clear();
    }
}
