//! The one table of the `events` columns ([`EVENT_COLUMNS`]) that every write path binds by,
//! instead of each spelling the columns out: SQLite's `INSERT`, PostgreSQL's binary `COPY` and
//! its multi-row `INSERT` build their column lists, placeholders, types and values from it.

use crate::columns::{classification, duration_us};
use crate::store::Entry;

/// One column of the `events` table that a writer fills from a sealed entry: its name, its
/// type, and its value. [`EVENT_COLUMNS`] is the one list of them that every write path binds
/// by (SQLite's `INSERT`, PostgreSQL's binary `COPY` and its multi-row `INSERT`), so that a
/// column is added in one place (and in the migrations, which make it); a test holds the list
/// to the table each backend's migrations make.
pub(crate) struct Column {
    pub(crate) name: &'static str,
    /// Read by PostgreSQL's write paths, which declare types; SQLite binds by value (its test
    /// holds the kinds to its declared types all the same).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) kind: Kind,
    /// The value of this column for one entry.
    pub(crate) value: for<'e> fn(&'e Entry<'e>) -> Value<'e>,
}

/// A column's type, as each backend spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A 64-bit integer (times and durations in microseconds, seqs).
    Int,
    Text,
    Bool,
    /// An event id: a `BLOB` of 16 bytes on SQLite, a `UUID` on PostgreSQL.
    Id,
    /// Bytes (hashes).
    Bytes,
}

impl Kind {
    /// The PostgreSQL type name (as `unnest` casts its arrays to).
    #[cfg(feature = "postgres")]
    pub(crate) fn pg_name(self) -> &'static str {
        match self {
            Kind::Int => "int8",
            Kind::Text => "text",
            Kind::Bool => "bool",
            Kind::Id => "uuid",
            Kind::Bytes => "bytea",
        }
    }

    /// The PostgreSQL type (as binary `COPY` declares it).
    #[cfg(feature = "postgres")]
    pub(crate) fn pg_type(self) -> postgres::types::Type {
        use postgres::types::Type;
        match self {
            Kind::Int => Type::INT8,
            Kind::Text => Type::TEXT,
            Kind::Bool => Type::BOOL,
            Kind::Id => Type::UUID,
            Kind::Bytes => Type::BYTEA,
        }
    }
}

/// One column's value for one entry, borrowed from it; each backend binds it as its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    Bool(bool),
    Id(Option<[u8; 16]>),
    Bytes(&'a [u8]),
}

/// The `meta` column: the canonical metadata JSON (always UTF-8, as the seal writes it).
fn meta<'e>(entry: &'e Entry<'e>) -> &'e str {
    std::str::from_utf8(&entry.sealed.meta_json).unwrap_or_default()
}

/// The columns of `events` that copy or carry a sealed entry, in the table's order (each
/// backend puts its own keys first: PostgreSQL the `log_id`).
pub(crate) const EVENT_COLUMNS: &[Column] = &[
    Column {
        name: "seq",
        kind: Kind::Int,
        value: |e| Value::Int(Some(e.seq as i64)),
    },
    Column {
        name: "id",
        kind: Kind::Id,
        value: |e| Value::Id(Some(*e.sealed.event.id.0.as_bytes())),
    },
    Column {
        name: "ts",
        kind: Kind::Int,
        value: |e| Value::Int(Some(e.sealed.event.timestamp.as_microsecond())),
    },
    Column {
        name: "kind",
        kind: Kind::Text,
        value: |e| Value::Text(Some(e.sealed.event.kind.as_str())),
    },
    Column {
        name: "action",
        kind: Kind::Text,
        value: |e| Value::Text(Some(e.sealed.event.action.as_str())),
    },
    Column {
        name: "operation",
        kind: Kind::Text,
        value: |e| Value::Text(Some(&e.sealed.event.operation)),
    },
    Column {
        name: "user_id",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.actor.user_id.as_deref()),
    },
    Column {
        name: "session_id",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.session_id.as_deref()),
    },
    Column {
        name: "correlation_id",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.correlation_id.as_deref()),
    },
    Column {
        name: "server_name",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.target.server_name.as_deref()),
    },
    Column {
        name: "resource_type",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.target.resource_type.as_deref()),
    },
    Column {
        name: "resource_id",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.target.resource_id.as_deref()),
    },
    Column {
        name: "outcome",
        kind: Kind::Text,
        value: |e| Value::Text(Some(e.sealed.event.outcome.as_str())),
    },
    Column {
        name: "classification",
        kind: Kind::Text,
        value: |e| Value::Text(Some(classification(&e.sealed.event).as_str())),
    },
    Column {
        name: "requires_review",
        kind: Kind::Bool,
        value: |e| Value::Bool(e.sealed.event.compliance.requires_review.unwrap_or(false)),
    },
    Column {
        name: "data_subject_id",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.compliance.data_subject_id.as_deref()),
    },
    Column {
        name: "expires_at",
        kind: Kind::Int,
        value: |e| {
            Value::Int(
                e.sealed
                    .event
                    .compliance
                    .expires_at
                    .map(|t| t.as_microsecond()),
            )
        },
    },
    Column {
        name: "duration_us",
        kind: Kind::Int,
        value: |e| Value::Int(duration_us(&e.sealed.event)),
    },
    Column {
        name: "completes",
        kind: Kind::Id,
        value: |e| Value::Id(e.sealed.event.completes.map(|c| *c.0.as_bytes())),
    },
    Column {
        name: "meta",
        kind: Kind::Text,
        value: |e| Value::Text(Some(meta(e))),
    },
    Column {
        name: "commitment",
        kind: Kind::Bytes,
        value: |e| Value::Bytes(e.sealed.commitment.as_bytes().as_slice()),
    },
    Column {
        name: "leaf_hash",
        kind: Kind::Bytes,
        value: |e| Value::Bytes(e.leaf_hash.as_bytes().as_slice()),
    },
    Column {
        name: RECEIVED_AT,
        kind: Kind::Int,
        value: |e| Value::Int(e.sealed.event.received_at.map(|t| t.as_microsecond())),
    },
];

/// The column of the receive time, the last one added (SQLite schema 8, PostgreSQL 3): a SQLite
/// file at an older schema (only a test writes one) is written without it.
pub(crate) const RECEIVED_AT: &str = "received_at";

/// The names of [`EVENT_COLUMNS`], comma-separated, after `first` (a backend's own key
/// columns, or nothing).
pub(crate) fn column_list(first: &[&str]) -> String {
    first
        .iter()
        .copied()
        .chain(EVENT_COLUMNS.iter().map(|c| c.name))
        .collect::<Vec<_>>()
        .join(", ")
}
