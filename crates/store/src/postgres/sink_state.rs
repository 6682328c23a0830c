//! A sink's cursors and dead letters in PostgreSQL (schema 9; queued dead letters and leases:
//! 10), and its reads of every log of the database (see [`crate::sinks`]).

use std::time::Duration;

use jiff::Timestamp;
use mcp_audit_core::EventId;
use postgres::Row;

use super::{PgOptions, PgStore, map_err, pseudonyms, read};
use crate::error::StoreError;
use crate::query::StoredEvent;
use crate::sinks::{
    Attempt, DeadLetter, LEASE_COLUMNS, LetterChoice, LogSize, SinkCursor, SinkLease, SinkState,
    TAKE_LEASE_SQL, from_micros, micros, no_cursor,
};

const CURSOR_COLUMNS: &str = "sink, log_id, next_seq, tries, refusals, last_error, updated_at";
const LETTER_COLUMNS: &str = "sink, log_id, seq, event_id, tries, last_error, at, queued";

/// The dead letters of one choice: `$1` sink, `$2` log or NULL, `$3` seq or NULL.
const CHOSEN: &str =
    "sink = $1 AND ($2::TEXT IS NULL OR log_id = $2) AND ($3::BIGINT IS NULL OR seq = $3)";

/// The server's clock in microseconds: the leases of runners on several hosts are compared
/// on one clock.
const SERVER_NOW: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT";

fn cursor_row(row: &Row) -> Result<SinkCursor, StoreError> {
    Ok(SinkCursor {
        sink: row.try_get(0).map_err(map_err)?,
        log_id: row.try_get(1).map_err(map_err)?,
        next_seq: row.try_get::<_, i64>(2).map_err(map_err)? as u64,
        tries: row.try_get::<_, i32>(3).map_err(map_err)? as u32,
        refusals: row.try_get::<_, i32>(4).map_err(map_err)? as u32,
        last_error: row.try_get(5).map_err(map_err)?,
        updated_at: from_micros(row.try_get(6).map_err(map_err)?),
    })
}

fn letter_row(row: &Row) -> Result<DeadLetter, StoreError> {
    Ok(DeadLetter {
        sink: row.try_get(0).map_err(map_err)?,
        log_id: row.try_get(1).map_err(map_err)?,
        seq: row.try_get::<_, i64>(2).map_err(map_err)? as u64,
        event_id: EventId(row.try_get(3).map_err(map_err)?),
        tries: row.try_get::<_, i32>(4).map_err(map_err)? as u32,
        last_error: row.try_get(5).map_err(map_err)?,
        at: from_micros(row.try_get(6).map_err(map_err)?),
        queued: row.try_get(7).map_err(map_err)?,
    })
}

fn lease_row(row: &Row) -> Result<SinkLease, StoreError> {
    Ok(SinkLease {
        sink: row.try_get(0).map_err(map_err)?,
        owner: row.try_get(1).map_err(map_err)?,
        expires_at: from_micros(row.try_get(2).map_err(map_err)?),
        standby: row.try_get(3).map_err(map_err)?,
        standby_until: row
            .try_get::<_, Option<i64>>(4)
            .map_err(map_err)?
            .map(from_micros),
    })
}

fn seq(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}

fn count(n: u32) -> i32 {
    n.min(i32::MAX as u32) as i32
}

impl PgStore {
    /// Connects for a sink: migrates the schema (its cursor tables are part of it) and may
    /// write, but appends to no log and claims none, so that it runs beside every writer of
    /// the database.
    pub fn open_follower(url: &str) -> Result<PgStore, StoreError> {
        PgStore::open_unclaimed(url)
    }

    /// Connects for changes that append to no log: erasing payloads (erasing appends
    /// nothing; the recorder beside it records the erasure), a witness's state. Migrates the
    /// schema and may write, but claims no log, so that each run neither holds a log of its
    /// own nor could leave one behind; an append through it is refused. A witness sink points
    /// it at each log in turn ([`PgStore::read_log`]) to keep that log's cosignatures and
    /// cursors, beside the log's running writer.
    pub fn open_unclaimed(url: &str) -> Result<PgStore, StoreError> {
        let mut store = PgStore::configure(url, PgOptions::default(), true)?;
        store.log_id = String::new();
        store.claims = false;
        let connected = store.client().map(drop);
        connected.map_err(|e| store.open_error(e))?;
        Ok(store)
    }
}

impl SinkState for PgStore {
    fn logs(&mut self) -> Result<Vec<LogSize>, StoreError> {
        self.with_client(|c| {
            let rows = c
                .query("SELECT log_id, next_seq FROM logs ORDER BY log_id", &[])
                .map_err(map_err)?;
            Ok(rows
                .iter()
                .map(|r| LogSize {
                    log_id: r.get(0),
                    size: r.get::<_, i64>(1) as u64,
                })
                .collect())
        })
    }

    fn events_from(
        &mut self,
        log_id: &str,
        from: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {} {} WHERE e.log_id = $1 AND e.seq >= $2 ORDER BY e.seq LIMIT $3",
            read::COLUMNS,
            read::FROM
        );
        self.with_client(|c| {
            let rows = c
                .query(&sql, &[&log_id, &seq(from), &i64::from(limit)])
                .map_err(map_err)?;
            let mut events = rows
                .iter()
                .map(read::decode)
                .collect::<Result<Vec<_>, _>>()?;
            let mut revealer = crate::reveal::Revealer::default();
            for stored in &mut events {
                revealer.reveal(&mut stored.event, &mut |p| pseudonyms::identity(c, p))?;
            }
            Ok(events)
        })
    }

    fn cursor(&mut self, sink: &str, log_id: &str) -> Result<Option<SinkCursor>, StoreError> {
        self.with_client(|c| {
            c.query_opt(
                &format!(
                    "SELECT {CURSOR_COLUMNS} FROM sink_cursors WHERE sink = $1 AND log_id = $2"
                ),
                &[&sink, &log_id],
            )
            .map_err(map_err)?
            .as_ref()
            .map(cursor_row)
            .transpose()
        })
    }

    fn cursors(&mut self, sink: Option<&str>) -> Result<Vec<SinkCursor>, StoreError> {
        self.with_client(|c| {
            c.query(
                &format!(
                    "SELECT {CURSOR_COLUMNS} FROM sink_cursors
                      WHERE $1::TEXT IS NULL OR sink = $1 ORDER BY sink, log_id"
                ),
                &[&sink],
            )
            .map_err(map_err)?
            .iter()
            .map(cursor_row)
            .collect()
        })
    }

    fn advance(&mut self, sink: &str, log_id: &str, next_seq: u64) -> Result<(), StoreError> {
        let now = micros(Timestamp::now());
        self.with_client(|c| {
            c.execute(
                "INSERT INTO sink_cursors (sink, log_id, next_seq, tries, refusals, last_error, updated_at)
                 VALUES ($1, $2, $3, 0, 0, NULL, $4)
                 ON CONFLICT (sink, log_id) DO UPDATE
                    SET next_seq = excluded.next_seq, tries = 0, refusals = 0,
                        last_error = NULL, updated_at = excluded.updated_at
                  WHERE excluded.next_seq > sink_cursors.next_seq",
                &[&sink, &log_id, &seq(next_seq), &now],
            )
            .map(drop)
            .map_err(map_err)
        })
    }

    fn failed(
        &mut self,
        sink: &str,
        log_id: &str,
        attempt: Attempt,
        error: &str,
    ) -> Result<SinkCursor, StoreError> {
        let refused = i32::from(attempt == Attempt::Refused);
        let now = micros(Timestamp::now());
        self.with_client(|c| {
            c.query_opt(
                &format!(
                    "UPDATE sink_cursors
                        SET tries = tries + 1, refusals = refusals + $3, last_error = $4,
                            updated_at = $5
                      WHERE sink = $1 AND log_id = $2
                  RETURNING {CURSOR_COLUMNS}"
                ),
                &[&sink, &log_id, &refused, &error, &now],
            )
            .map_err(map_err)?
            .as_ref()
            .map(cursor_row)
            .transpose()?
            .ok_or_else(|| no_cursor(sink, log_id))
        })
    }

    fn add_dead_letter(&mut self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.with_client(|c| {
            c.execute(
                &format!(
                    "INSERT INTO sink_dead_letters ({LETTER_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (sink, log_id, seq) DO UPDATE
                        SET event_id = excluded.event_id, tries = excluded.tries,
                            last_error = excluded.last_error, at = excluded.at,
                            queued = excluded.queued, replays = 0"
                ),
                &[
                    &letter.sink,
                    &letter.log_id,
                    &seq(letter.seq),
                    &letter.event_id.0,
                    &count(letter.tries),
                    &letter.last_error,
                    &micros(letter.at),
                    &letter.queued,
                ],
            )
            .map(drop)
            .map_err(map_err)
        })
    }

    fn dead_letters(&mut self, sink: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
        self.with_client(|c| {
            c.query(
                &format!(
                    "SELECT {LETTER_COLUMNS} FROM sink_dead_letters
                      WHERE $1::TEXT IS NULL OR sink = $1 ORDER BY sink, log_id, seq"
                ),
                &[&sink],
            )
            .map_err(map_err)?
            .iter()
            .map(letter_row)
            .collect()
        })
    }

    fn queue_dead_letters(&mut self, choice: &LetterChoice<'_>) -> Result<u64, StoreError> {
        self.each_chosen(
            choice,
            &format!("UPDATE sink_dead_letters SET queued = true, replays = 0 WHERE {CHOSEN}"),
        )
    }

    fn drop_dead_letters(&mut self, choice: &LetterChoice<'_>) -> Result<u64, StoreError> {
        self.each_chosen(
            choice,
            &format!("DELETE FROM sink_dead_letters WHERE {CHOSEN}"),
        )
    }

    fn queued_letters(&mut self, sink: &str) -> Result<Vec<DeadLetter>, StoreError> {
        self.with_client(|c| {
            c.query(
                &format!(
                    "SELECT {LETTER_COLUMNS} FROM sink_dead_letters
                      WHERE sink = $1 AND queued ORDER BY log_id, seq"
                ),
                &[&sink],
            )
            .map_err(map_err)?
            .iter()
            .map(letter_row)
            .collect()
        })
    }

    fn replay_refused(
        &mut self,
        sink: &str,
        log_id: &str,
        at_seq: u64,
        error: &str,
        max_tries: u32,
    ) -> Result<Option<DeadLetter>, StoreError> {
        let now = micros(Timestamp::now());
        self.with_client(|c| {
            c.query_opt(
                &format!(
                    "UPDATE sink_dead_letters
                        SET tries = tries + 1, last_error = $4, at = $5,
                            queued = (replays + 1 < $6),
                            replays = CASE WHEN replays + 1 < $6 THEN replays + 1 ELSE 0 END
                      WHERE sink = $1 AND log_id = $2 AND seq = $3
                  RETURNING {LETTER_COLUMNS}"
                ),
                &[
                    &sink,
                    &log_id,
                    &seq(at_seq),
                    &error,
                    &now,
                    &count(max_tries),
                ],
            )
            .map_err(map_err)?
            .as_ref()
            .map(letter_row)
            .transpose()
        })
    }

    fn take_lease(
        &mut self,
        sink: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<SinkLease, StoreError> {
        let ttl = ttl.as_micros().min(i64::MAX as u128) as i64;
        self.with_client(|c| {
            let now: i64 = c.query_one(SERVER_NOW, &[]).map_err(map_err)?.get(0);
            let row = c
                .query_one(
                    TAKE_LEASE_SQL,
                    &[&sink, &owner, &now.saturating_add(ttl), &now],
                )
                .map_err(map_err)?;
            lease_row(&row)
        })
    }

    fn release_lease(&mut self, sink: &str, owner: &str) -> Result<(), StoreError> {
        self.with_client(|c| {
            c.execute(
                "DELETE FROM sink_leases WHERE sink = $1 AND owner = $2",
                &[&sink, &owner],
            )
            .map(drop)
            .map_err(map_err)
        })
    }

    fn leases(&mut self) -> Result<Vec<SinkLease>, StoreError> {
        self.with_client(|c| {
            c.query(
                &format!("SELECT {LEASE_COLUMNS} FROM sink_leases ORDER BY sink"),
                &[],
            )
            .map_err(map_err)?
            .iter()
            .map(lease_row)
            .collect()
        })
    }
}

impl PgStore {
    /// Runs `sql` (which filters with [`CHOSEN`]) once per chosen seq, or once for every seq,
    /// in one transaction; the rows it changed.
    fn each_chosen(&mut self, choice: &LetterChoice<'_>, sql: &str) -> Result<u64, StoreError> {
        self.with_client(|c| {
            let mut tx = c.transaction().map_err(map_err)?;
            let mut changed = 0;
            match choice.seqs {
                None => {
                    changed += tx
                        .execute(sql, &[&choice.sink, &choice.log_id, &None::<i64>])
                        .map_err(map_err)?;
                }
                Some(seqs) => {
                    for &n in seqs {
                        changed += tx
                            .execute(sql, &[&choice.sink, &choice.log_id, &Some(seq(n))])
                            .map_err(map_err)?;
                    }
                }
            }
            tx.commit().map_err(map_err)?;
            Ok(changed)
        })
    }
}
