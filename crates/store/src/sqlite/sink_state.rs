//! A sink's cursors and dead letters in the SQLite file (schema 15), and its reads of the one
//! log the file holds (see [`crate::sinks`]).

use mcp_audit_core::EventId;
use rusqlite::{OptionalExtension, Row, params};
use uuid::Uuid;

use super::{SqliteStore, map_err, pseudonyms, read, schema};
use crate::error::StoreError;
use crate::query::StoredEvent;
use crate::sinks::{
    Attempt, DeadLetter, LogSize, SinkCursor, SinkState, from_micros, micros, no_cursor,
};

const CURSOR_COLUMNS: &str = "sink, log_id, next_seq, tries, refusals, last_error, updated_at";
const LETTER_COLUMNS: &str = "sink, log_id, seq, event_id, tries, last_error, at";

fn cursor_row(row: &Row<'_>) -> rusqlite::Result<SinkCursor> {
    Ok(SinkCursor {
        sink: row.get(0)?,
        log_id: row.get(1)?,
        next_seq: row.get::<_, i64>(2)? as u64,
        tries: row.get(3)?,
        refusals: row.get(4)?,
        last_error: row.get(5)?,
        updated_at: from_micros(row.get(6)?),
    })
}

fn letter_row(row: &Row<'_>) -> rusqlite::Result<DeadLetter> {
    let id: Vec<u8> = row.get(3)?;
    Ok(DeadLetter {
        sink: row.get(0)?,
        log_id: row.get(1)?,
        seq: row.get::<_, i64>(2)? as u64,
        event_id: EventId(Uuid::from_slice(&id).unwrap_or_default()),
        tries: row.get(4)?,
        last_error: row.get(5)?,
        at: from_micros(row.get(6)?),
    })
}

fn now() -> i64 {
    micros(jiff::Timestamp::now())
}

impl SinkState for SqliteStore {
    fn logs(&mut self) -> Result<Vec<LogSize>, StoreError> {
        let size = schema::next_seq(&self.conn).map_err(|e| self.map(e))?;
        Ok(vec![LogSize {
            log_id: self.log_id.clone(),
            size,
        }])
    }

    fn events_from(
        &mut self,
        log_id: &str,
        from: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        if log_id != self.log_id {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} {} WHERE e.seq >= ?1 ORDER BY e.seq LIMIT ?2",
            read::COLUMNS,
            read::FROM
        );
        let raws = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| {
                stmt.query_map(params![from.min(i64::MAX as u64) as i64, limit], read::raw)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| self.map(e))?;
        let mut events = raws
            .into_iter()
            .map(|raw| read::decode(&self.log_id, raw))
            .collect::<Result<Vec<_>, _>>()?;
        let mut revealer = crate::reveal::Revealer::default();
        for stored in &mut events {
            revealer.reveal(&mut stored.event, &mut |p| {
                pseudonyms::identity(&self.conn, p).map_err(map_err)
            })?;
        }
        Ok(events)
    }

    fn cursor(&mut self, sink: &str, log_id: &str) -> Result<Option<SinkCursor>, StoreError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {CURSOR_COLUMNS} FROM sink_cursors WHERE sink = ?1 AND log_id = ?2"
                ),
                params![sink, log_id],
                cursor_row,
            )
            .optional()
            .map_err(|e| self.map(e))
    }

    fn cursors(&mut self, sink: Option<&str>) -> Result<Vec<SinkCursor>, StoreError> {
        self.conn
            .prepare(&format!(
                "SELECT {CURSOR_COLUMNS} FROM sink_cursors
                  WHERE ?1 IS NULL OR sink = ?1 ORDER BY sink, log_id"
            ))
            .and_then(|mut stmt| {
                stmt.query_map(params![sink], cursor_row)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| self.map(e))
    }

    fn advance(&mut self, sink: &str, log_id: &str, next_seq: u64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO sink_cursors (sink, log_id, next_seq, tries, refusals, last_error, updated_at)
                 VALUES (?1, ?2, ?3, 0, 0, NULL, ?4)
                 ON CONFLICT (sink, log_id) DO UPDATE
                    SET next_seq = excluded.next_seq, tries = 0, refusals = 0,
                        last_error = NULL, updated_at = excluded.updated_at
                  WHERE excluded.next_seq > sink_cursors.next_seq",
                params![sink, log_id, next_seq.min(i64::MAX as u64) as i64, now()],
            )
            .map(drop)
            .map_err(|e| self.map(e))
    }

    fn failed(
        &mut self,
        sink: &str,
        log_id: &str,
        attempt: Attempt,
        error: &str,
    ) -> Result<SinkCursor, StoreError> {
        let refused = i64::from(attempt == Attempt::Refused);
        self.conn
            .query_row(
                &format!(
                    "UPDATE sink_cursors
                        SET tries = tries + 1, refusals = refusals + ?3, last_error = ?4,
                            updated_at = ?5
                      WHERE sink = ?1 AND log_id = ?2
                  RETURNING {CURSOR_COLUMNS}"
                ),
                params![sink, log_id, refused, error, now()],
                cursor_row,
            )
            .optional()
            .map_err(|e| self.map(e))?
            .ok_or_else(|| no_cursor(sink, log_id))
    }

    fn add_dead_letter(&mut self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.conn
            .execute(
                &format!(
                    "INSERT OR REPLACE INTO sink_dead_letters ({LETTER_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    letter.sink,
                    letter.log_id,
                    letter.seq.min(i64::MAX as u64) as i64,
                    letter.event_id.0.as_bytes().as_slice(),
                    letter.tries,
                    letter.last_error,
                    micros(letter.at),
                ],
            )
            .map(drop)
            .map_err(|e| self.map(e))
    }

    fn dead_letters(&mut self, sink: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        self.conn
            .prepare(&format!(
                "SELECT {LETTER_COLUMNS} FROM sink_dead_letters
                  WHERE ?1 IS NULL OR sink = ?1 ORDER BY sink, log_id, seq"
            ))
            .and_then(|mut stmt| {
                stmt.query_map(params![sink], letter_row)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| self.map(e))
    }
}
