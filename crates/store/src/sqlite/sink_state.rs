//! A sink's cursors and dead letters in the SQLite file (schema 15; queued dead letters and
//! leases: 16), and its reads of the one log the file holds (see [`crate::sinks`]).

use std::time::Duration;

use mcp_audit_core::EventId;
use rusqlite::{OptionalExtension, Row, params};
use uuid::Uuid;

use super::{SqliteStore, map_err, pseudonyms, read, schema};
use crate::error::StoreError;
use crate::query::StoredEvent;
use crate::sinks::{
    Attempt, DeadLetter, LEASE_COLUMNS, LetterChoice, LogSize, SinkCursor, SinkLease, SinkState,
    TAKE_LEASE_SQL, from_micros, micros, no_cursor,
};

const CURSOR_COLUMNS: &str = "sink, log_id, next_seq, tries, refusals, last_error, updated_at";
const LETTER_COLUMNS: &str = "sink, log_id, seq, event_id, tries, last_error, at, queued";

/// The dead letters of one choice: `?1` sink, `?2` log or NULL, `?3` seq or NULL.
const CHOSEN: &str = "sink = ?1 AND (?2 IS NULL OR log_id = ?2) AND (?3 IS NULL OR seq = ?3)";

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
        queued: row.get(7)?,
    })
}

fn lease_row(row: &Row<'_>) -> rusqlite::Result<SinkLease> {
    Ok(SinkLease {
        sink: row.get(0)?,
        owner: row.get(1)?,
        expires_at: from_micros(row.get(2)?),
        standby: row.get(3)?,
        standby_until: row.get::<_, Option<i64>>(4)?.map(from_micros),
    })
}

fn seq(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
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
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    letter.sink,
                    letter.log_id,
                    letter.seq.min(i64::MAX as u64) as i64,
                    letter.event_id.0.as_bytes().as_slice(),
                    letter.tries,
                    letter.last_error,
                    micros(letter.at),
                    letter.queued,
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

    fn queue_dead_letters(&mut self, choice: &LetterChoice<'_>) -> Result<u64, StoreError> {
        self.each_chosen(
            choice,
            &format!("UPDATE sink_dead_letters SET queued = 1, replays = 0 WHERE {CHOSEN}"),
        )
    }

    fn drop_dead_letters(&mut self, choice: &LetterChoice<'_>) -> Result<u64, StoreError> {
        self.each_chosen(
            choice,
            &format!("DELETE FROM sink_dead_letters WHERE {CHOSEN}"),
        )
    }

    fn queued_letters(&mut self, sink: &str) -> Result<Vec<DeadLetter>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {LETTER_COLUMNS} FROM sink_dead_letters
                  WHERE sink = ?1 AND queued ORDER BY log_id, seq"
            ))
            .and_then(|mut stmt| {
                stmt.query_map(params![sink], letter_row)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| self.map(e))
    }

    fn replay_refused(
        &mut self,
        sink: &str,
        log_id: &str,
        seq_at: u64,
        error: &str,
        max_tries: u32,
    ) -> Result<Option<DeadLetter>, StoreError> {
        self.conn
            .query_row(
                &format!(
                    "UPDATE sink_dead_letters
                        SET tries = tries + 1, last_error = ?4, at = ?5,
                            queued = (replays + 1 < ?6),
                            replays = CASE WHEN replays + 1 < ?6 THEN replays + 1 ELSE 0 END
                      WHERE sink = ?1 AND log_id = ?2 AND seq = ?3
                  RETURNING {LETTER_COLUMNS}"
                ),
                params![sink, log_id, seq(seq_at), error, now(), max_tries],
                letter_row,
            )
            .optional()
            .map_err(|e| self.map(e))
    }

    fn take_lease(
        &mut self,
        sink: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<SinkLease, StoreError> {
        let now = now();
        let until = now.saturating_add(ttl.as_micros().min(i64::MAX as u128) as i64);
        self.conn
            .query_row(
                &TAKE_LEASE_SQL.replace('$', "?"),
                params![sink, owner, until, now],
                lease_row,
            )
            .map_err(|e| self.map(e))
    }

    fn release_lease(&mut self, sink: &str, owner: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM sink_leases WHERE sink = ?1 AND owner = ?2",
                params![sink, owner],
            )
            .map(drop)
            .map_err(|e| self.map(e))
    }

    fn leases(&mut self) -> Result<Vec<SinkLease>, StoreError> {
        self.conn
            .prepare(&format!(
                "SELECT {LEASE_COLUMNS} FROM sink_leases ORDER BY sink"
            ))
            .and_then(|mut stmt| {
                stmt.query_map([], lease_row)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| self.map(e))
    }
}

impl SqliteStore {
    /// Runs `sql` (which filters with [`CHOSEN`]) once per chosen seq, or once for every seq,
    /// in one transaction; the rows it changed.
    fn each_chosen(&mut self, choice: &LetterChoice<'_>, sql: &str) -> Result<u64, StoreError> {
        let run = |conn: &rusqlite::Connection| -> rusqlite::Result<u64> {
            let tx = conn.unchecked_transaction()?;
            let mut changed = 0;
            {
                let mut stmt = tx.prepare(sql)?;
                match choice.seqs {
                    None => {
                        changed +=
                            stmt.execute(params![choice.sink, choice.log_id, None::<i64>])? as u64
                    }
                    Some(seqs) => {
                        for &n in seqs {
                            changed +=
                                stmt.execute(params![choice.sink, choice.log_id, seq(n)])? as u64;
                        }
                    }
                }
            }
            tx.commit()?;
            Ok(changed)
        };
        run(&self.conn).map_err(|e| self.map(e))
    }
}
