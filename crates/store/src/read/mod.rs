//! Filter → rows: what readers ask for and get, the `WHERE` clause every backend shares, and
//! the backend-neutral half of summaries and statistics.

pub mod query;
pub mod report;
pub(crate) mod reveal;
pub mod search;
pub mod sql;
