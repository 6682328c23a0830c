//! The one table of the `events` columns ([`EVENT_COLUMNS`]) that every write path binds by,
//! instead of each spelling the columns out: SQLite's `INSERT`, PostgreSQL's binary `COPY` and
//! its multi-row `INSERT` build their column lists, placeholders, types and values from it;
//! `verify`'s log scans build their column lists from it, and its column check compares each
//! column with what the table says the hashed metadata makes of it ([`Column::expected`]).

use crate::audit::indexed::{Indexed, micros};
use crate::columns::{DEFAULT_CLASSIFICATION, clamp_duration, classification, duration_us};
use crate::store::{Cell, Entry};
use mcp_audit_core::Outcome;

/// One column of the `events` table that a writer fills from a sealed entry: its name, its
/// type, and its value. [`EVENT_COLUMNS`] is the one list of them that every write path binds
/// by (SQLite's `INSERT`, PostgreSQL's binary `COPY` and its multi-row `INSERT`), so that a
/// column is added in one place (and in the migrations, which make it); a test holds the list
/// to the table each backend's migrations make.
pub(crate) struct Column {
    pub(crate) name: &'static str,
    /// Read by PostgreSQL's write paths, which declare types (SQLite binds by value; its test
    /// holds the kinds to its declared types all the same), and by both log scans, which read
    /// each compared column as its kind.
    pub(crate) kind: Kind,
    /// The value of this column for one entry.
    pub(crate) value: for<'e> fn(&'e Entry<'e>) -> Value<'e>,
    /// The value `verify` expects of this column, from the entry's hashed metadata (`None`
    /// inside when the metadata's value cannot be what any writer put there, e.g. an id that is
    /// no UUID: a mismatch whatever the column holds). `None` for the columns that verify
    /// checks otherwise (`seq`, `meta`, `commitment`, `leaf_hash` go into the leaf), which the
    /// log scans therefore do not read as copies.
    pub(crate) expected: Option<for<'m> fn(&'m Indexed<'m>) -> Option<Value<'m>>>,
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

        expected: None,
    },
    Column {
        name: "id",
        kind: Kind::Id,
        value: |e| Value::Id(Some(*e.sealed.event.id.0.as_bytes())),

        expected: Some(|m| uuid(&m.id).map(|id| Value::Id(Some(id)))),
    },
    Column {
        name: "ts",
        kind: Kind::Int,
        value: |e| Value::Int(Some(e.sealed.event.timestamp.as_microsecond())),

        expected: Some(|m| micros(&m.timestamp).map(|t| Value::Int(Some(t)))),
    },
    Column {
        name: "kind",
        kind: Kind::Text,
        value: |e| Value::Text(Some(e.sealed.event.kind.as_str())),

        expected: Some(|m| Some(Value::Text(Some(&m.kind)))),
    },
    Column {
        name: "action",
        kind: Kind::Text,
        value: |e| Value::Text(Some(e.sealed.event.action.as_str())),

        expected: Some(|m| Some(Value::Text(Some(&m.action)))),
    },
    Column {
        name: "operation",
        kind: Kind::Text,
        value: |e| Value::Text(Some(&e.sealed.event.operation)),

        expected: Some(|m| Some(Value::Text(Some(&m.operation)))),
    },
    Column {
        name: "user_id",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.actor.user_id.as_deref()),

        expected: Some(|m| {
            Some(Value::Text(
                m.actor.as_ref().and_then(|a| a.user_id.as_deref()),
            ))
        }),
    },
    Column {
        name: "session_id",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.session_id.as_deref()),

        expected: Some(|m| Some(Value::Text(m.session_id.as_deref()))),
    },
    Column {
        name: "correlation_id",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.correlation_id.as_deref()),

        expected: Some(|m| Some(Value::Text(m.correlation_id.as_deref()))),
    },
    Column {
        name: "server_name",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.target.server_name.as_deref()),

        expected: Some(|m| {
            Some(Value::Text(
                m.target.as_ref().and_then(|t| t.server_name.as_deref()),
            ))
        }),
    },
    Column {
        name: "resource_type",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.target.resource_type.as_deref()),

        expected: Some(|m| {
            Some(Value::Text(
                m.target.as_ref().and_then(|t| t.resource_type.as_deref()),
            ))
        }),
    },
    Column {
        name: "resource_id",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.target.resource_id.as_deref()),

        expected: Some(|m| {
            Some(Value::Text(
                m.target.as_ref().and_then(|t| t.resource_id.as_deref()),
            ))
        }),
    },
    Column {
        name: "outcome",
        kind: Kind::Text,
        value: |e| Value::Text(Some(e.sealed.event.outcome.as_str())),

        expected: Some(|m| {
            Some(Value::Text(Some(
                m.outcome.as_deref().unwrap_or(Outcome::Success.as_str()),
            )))
        }),
    },
    Column {
        name: "classification",
        kind: Kind::Text,
        value: |e| Value::Text(Some(classification(&e.sealed.event).as_str())),

        expected: Some(|m| {
            let c = m
                .compliance
                .as_ref()
                .and_then(|c| c.classification.as_deref());
            Some(Value::Text(Some(
                c.unwrap_or(DEFAULT_CLASSIFICATION.as_str()),
            )))
        }),
    },
    Column {
        name: "requires_review",
        kind: Kind::Bool,
        value: |e| Value::Bool(e.sealed.event.compliance.requires_review.unwrap_or(false)),

        expected: Some(|m| {
            Some(Value::Bool(
                m.compliance
                    .as_ref()
                    .and_then(|c| c.requires_review)
                    .unwrap_or(false),
            ))
        }),
    },
    Column {
        name: "data_subject_id",
        kind: Kind::Text,
        value: |e| Value::Text(e.sealed.event.compliance.data_subject_id.as_deref()),

        expected: Some(|m| {
            Some(Value::Text(
                m.compliance
                    .as_ref()
                    .and_then(|c| c.data_subject_id.as_deref()),
            ))
        }),
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

        expected: Some(|m| time(m.compliance.as_ref().and_then(|c| c.expires_at.as_deref()))),
    },
    Column {
        name: "duration_us",
        kind: Kind::Int,
        value: |e| Value::Int(duration_us(&e.sealed.event)),

        expected: Some(|m| Some(Value::Int(m.duration_us.map(clamp_duration)))),
    },
    Column {
        name: "completes",
        kind: Kind::Id,
        value: |e| Value::Id(e.sealed.event.completes.map(|c| *c.0.as_bytes())),

        expected: Some(|m| match &m.completes {
            Some(text) => uuid(text).map(|c| Value::Id(Some(c))),
            None => Some(Value::Id(None)),
        }),
    },
    Column {
        name: META,
        kind: Kind::Text,
        value: |e| Value::Text(Some(meta(e))),

        expected: None,
    },
    Column {
        name: "commitment",
        kind: Kind::Bytes,
        value: |e| Value::Bytes(e.sealed.commitment.as_bytes().as_slice()),

        expected: None,
    },
    Column {
        name: "leaf_hash",
        kind: Kind::Bytes,
        value: |e| Value::Bytes(e.leaf_hash.as_bytes().as_slice()),

        expected: None,
    },
    Column {
        name: RECEIVED_AT,
        kind: Kind::Int,
        value: |e| Value::Int(e.sealed.event.received_at.map(|t| t.as_microsecond())),

        expected: Some(|m| time(m.received_at.as_deref())),
    },
];

/// The column of the canonical metadata, which SQLite stores in its dense form from schema 18
/// (see `sqlite/packed.rs`) and PostgreSQL as text.
pub(crate) const META: &str = "meta";

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

/// A UUID's 16 bytes, from the metadata's text.
fn uuid(text: &str) -> Option<[u8; 16]> {
    uuid::Uuid::parse_str(text).ok().map(|u| *u.as_bytes())
}

/// The expected copy of an optional time of the metadata: none for none, and a mismatch for a
/// time that does not read as one.
fn time(text: Option<&str>) -> Option<Value<'static>> {
    match text {
        Some(text) => micros(text).map(|t| Value::Int(Some(t))),
        None => Some(Value::Int(None)),
    }
}

/// Whether a column's value as read from a row (`cell`) is the copy `expected` of the hashed
/// metadata ([`Column::expected`]). A column the schema read lacks ([`Cell::Absent`]) has no
/// copy to compare, and matches.
pub(crate) fn matches(cell: Cell<'_>, expected: Option<Value<'_>>) -> bool {
    let bytes = match cell {
        Cell::Absent => return true,
        Cell::Bytes(b) => Some(b),
        Cell::Null | Cell::Int(_) => None,
    };
    let int = match cell {
        Cell::Int(n) => Some(n),
        _ => None,
    };
    match expected {
        None => false,
        Some(Value::Text(t)) => !matches!(cell, Cell::Int(_)) && bytes == t.map(str::as_bytes),
        Some(Value::Id(id)) => {
            !matches!(cell, Cell::Int(_)) && bytes == id.as_ref().map(|i| i.as_slice())
        }
        Some(Value::Bytes(b)) => bytes == Some(b),
        Some(Value::Int(n)) => !matches!(cell, Cell::Bytes(_)) && int == n,
        // As the writers store it: anything but a zero is true (as the readers take it).
        Some(Value::Bool(b)) => !matches!(cell, Cell::Bytes(_)) && (cell != Cell::Int(0)) == b,
    }
}

/// The position of the column `name` in [`EVENT_COLUMNS`], at compile time (a name not in the
/// table fails the build).
pub(crate) const fn position(name: &str) -> usize {
    let mut i = 0;
    while i < EVENT_COLUMNS.len() {
        let a = EVENT_COLUMNS[i].name.as_bytes();
        let b = name.as_bytes();
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("no such column in EVENT_COLUMNS")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_audit_core::seal::seal;
    use mcp_audit_core::{AuditEvent, Classification, EventId, Hash};

    /// The cell a log scan reads back for a value a writer bound.
    fn stored<'v>(value: &'v Value<'_>) -> Cell<'v> {
        match value {
            Value::Int(n) => n.map_or(Cell::Null, Cell::Int),
            Value::Text(t) => t.map_or(Cell::Null, |t| Cell::Bytes(t.as_bytes())),
            Value::Bool(b) => Cell::Int(i64::from(*b)),
            Value::Id(id) => id.as_ref().map_or(Cell::Null, |id| Cell::Bytes(id)),
            Value::Bytes(b) => Cell::Bytes(b),
        }
    }

    /// What verify expects of each column it compares is what the writers bind from the same
    /// event, for an event with every copied field and for one with none of the optional ones:
    /// a column added to the table with an `expected` that disagrees with its `value` fails
    /// here rather than as a false `modified_column` on every entry.
    #[test]
    fn every_compared_column_expects_what_the_writers_bind() {
        let mut full = AuditEvent::tool_execution("search")
            .user("alice")
            .session("s-1")
            .correlation_id("c-1")
            .completes(EventId::new())
            .server("files")
            .resource_type("document")
            .resource_id("d-1")
            .classification(Classification::Confidential)
            .requires_review(true)
            .data_subject("subject-1")
            .expires_at("2030-01-01T00:00:00Z".parse().unwrap())
            .duration_us(1_200)
            .build()
            .unwrap();
        full.received_at = Some("2026-12-07T18:00:00.123456Z".parse().unwrap());
        let bare = AuditEvent::tool_execution("search").build().unwrap();
        for event in [full, bare] {
            let sealed = seal(event).unwrap();
            let entry = Entry {
                seq: 7,
                leaf_hash: Hash::default(),
                sealed: &sealed,
            };
            let meta = std::str::from_utf8(&sealed.meta_json).unwrap();
            let indexed = crate::audit::indexed::read(meta).unwrap();
            let mut compared = 0;
            for column in EVENT_COLUMNS {
                let Some(expected) = column.expected else {
                    continue;
                };
                compared += 1;
                let value = (column.value)(&entry);
                assert!(
                    matches(stored(&value), expected(&indexed)),
                    "{}: bound {value:?}, expected {:?}",
                    column.name,
                    expected(&indexed)
                );
            }
            // Every column but the four the leaf covers.
            assert_eq!(compared, EVENT_COLUMNS.len() - 4);
        }
    }
}
