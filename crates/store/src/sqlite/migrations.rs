//! Versioned schema migrations: an ordered list of steps, numbered by their place in the list
//! and tracked in `PRAGMA user_version`. Each step runs in its own transaction, so a crash
//! mid-migration leaves the database at the previous version, never half-way.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;

/// One numbered step: the SQL that takes the schema from version `n - 1` to `n`.
pub(crate) struct Migration {
    pub(crate) description: &'static str,
    pub(crate) sql: &'static str,
}

/// The steps, oldest first. Append only: a released step is never edited.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        description: "events, their erasable payloads, and the log's own state",
        sql: "
            CREATE TABLE log_state (
                key   TEXT PRIMARY KEY,
                value TEXT NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE events (
                seq             INTEGER PRIMARY KEY,  -- dense from 0 in commit order; the leaf index
                id              BLOB NOT NULL UNIQUE, -- UUIDv7, 16 bytes
                ts              INTEGER NOT NULL,     -- microseconds since the Unix epoch, UTC
                kind            TEXT NOT NULL,
                action          TEXT NOT NULL,
                operation       TEXT NOT NULL,
                user_id         TEXT,
                session_id      TEXT,
                correlation_id  TEXT,
                server_name     TEXT,
                resource_type   TEXT,
                resource_id     TEXT,
                outcome         TEXT NOT NULL,
                classification  TEXT NOT NULL,
                requires_review INTEGER NOT NULL,
                data_subject_id TEXT,
                expires_at      INTEGER,
                duration_us     INTEGER,
                completes       BLOB,                 -- id of the pending event this one completes
                meta            TEXT NOT NULL,        -- canonical metadata JSON: the source of truth
                commitment      BLOB NOT NULL,
                leaf_hash       BLOB NOT NULL
            );
            CREATE TABLE payloads (
                seq  INTEGER PRIMARY KEY,             -- the event's seq; no row once erased
                salt BLOB NOT NULL,
                body TEXT NOT NULL                    -- canonical personal JSON
            );
        ",
    },
    Migration {
        description: "data lineage and compliance events as rows of their own; query indexes",
        sql: "
            CREATE TABLE data_sources (
                seq            INTEGER NOT NULL,
                ordinal        INTEGER NOT NULL,
                uri            TEXT NOT NULL,
                source_type    TEXT,
                identifier     TEXT,
                transformation TEXT,
                destination    TEXT,
                direction      TEXT NOT NULL,
                metadata       TEXT,
                PRIMARY KEY (seq, ordinal)
            ) WITHOUT ROWID;
            CREATE TABLE compliance_events (
                seq        INTEGER NOT NULL,
                ordinal    INTEGER NOT NULL,
                framework  TEXT NOT NULL,
                event_type TEXT NOT NULL,
                risk_level TEXT NOT NULL,
                details    TEXT,
                mitigation TEXT,
                PRIMARY KEY (seq, ordinal)
            ) WITHOUT ROWID;
            CREATE INDEX events_session   ON events (session_id, seq) WHERE session_id IS NOT NULL;
            CREATE INDEX events_user      ON events (user_id, seq) WHERE user_id IS NOT NULL;
            CREATE INDEX events_operation ON events (operation, seq);
            CREATE INDEX events_ts        ON events (ts);
            CREATE INDEX events_expiry    ON events (expires_at) WHERE expires_at IS NOT NULL;
            CREATE INDEX events_pending   ON events (seq) WHERE outcome = 'pending';
            CREATE INDEX events_completes ON events (completes) WHERE completes IS NOT NULL;
        ",
    },
    Migration {
        description: "signed checkpoints of the Merkle log",
        sql: "
            CREATE TABLE checkpoints (
                size      INTEGER PRIMARY KEY,  -- tree size the checkpoint commits to
                root      BLOB NOT NULL,        -- its root hash
                note      TEXT NOT NULL,        -- the signed note, as signed
                signed_at INTEGER NOT NULL      -- microseconds since the Unix epoch
            );
        ",
    },
    Migration {
        description: "interior nodes of the Merkle tree, so that proofs need not rehash the log",
        sql: "
            CREATE TABLE tree_nodes (
                level INTEGER NOT NULL,  -- 8, 16, 24, ...: the node covers 2^level leaves
                idx   INTEGER NOT NULL,  -- its first leaf is idx * 2^level
                hash  BLOB NOT NULL,
                PRIMARY KEY (level, idx)
            ) WITHOUT ROWID;
        ",
    },
    Migration {
        description: "session and user keys indexed in bulk (see sqlite/keys.rs)",
        sql: "
            DROP INDEX events_session;
            DROP INDEX events_user;
            CREATE TABLE event_keys (
                field INTEGER NOT NULL,  -- 1 session_id, 2 user_id
                value TEXT NOT NULL,
                seq   INTEGER NOT NULL,
                PRIMARY KEY (field, value, seq)
            ) WITHOUT ROWID;
            INSERT INTO event_keys (field, value, seq)
                SELECT 1, session_id, seq FROM events WHERE session_id IS NOT NULL
                UNION ALL SELECT 2, user_id, seq FROM events WHERE user_id IS NOT NULL
                ORDER BY 1, 2, 3;
            INSERT INTO log_state (key, value)
                SELECT 'indexed_to', value FROM log_state WHERE key = 'next_seq';
        ",
    },
    Migration {
        description: "running totals per session and user, for their summaries (see sqlite/totals.rs)",
        sql: "
            CREATE TABLE key_totals (
                field    INTEGER NOT NULL,  -- as in event_keys: 1 session_id, 2 user_id
                value    TEXT NOT NULL,
                kind     TEXT NOT NULL,
                outcome  TEXT NOT NULL,
                n        INTEGER NOT NULL,  -- how many events
                first_ts INTEGER NOT NULL,  -- the earliest and latest of their times
                last_ts  INTEGER NOT NULL,
                review   INTEGER NOT NULL,  -- how many require review
                mixed    INTEGER NOT NULL,  -- 1: several users, or some events without one
                one_user TEXT,              -- else their one user (NULL: none)
                PRIMARY KEY (field, value, kind, outcome)
            ) WITHOUT ROWID;
            INSERT INTO log_state (key, value)
                SELECT 'totaled_to', value FROM log_state WHERE key = 'indexed_to';
            WITH bound AS (SELECT COALESCE(
                (SELECT CAST(value AS INTEGER) FROM log_state WHERE key = 'totaled_to'), 0) AS seq),
            groups AS (
                SELECT 1 AS field, e.session_id AS value, e.kind, e.outcome,
                       COUNT(*) AS n, MIN(e.ts) AS first_ts, MAX(e.ts) AS last_ts,
                       SUM(e.requires_review) AS review,
                       MIN(e.user_id) IS NOT MAX(e.user_id)
                           OR COUNT(e.user_id) NOT IN (0, COUNT(*)) AS mixed,
                       MIN(e.user_id) AS user_id
                  FROM events e
                 WHERE e.seq < (SELECT seq FROM bound) AND e.session_id IS NOT NULL
                 GROUP BY e.session_id, e.kind, e.outcome
                UNION ALL
                SELECT 2, e.user_id, e.kind, e.outcome,
                       COUNT(*), MIN(e.ts), MAX(e.ts), SUM(e.requires_review), 0, e.user_id
                  FROM events e
                 WHERE e.seq < (SELECT seq FROM bound) AND e.user_id IS NOT NULL
                 GROUP BY e.user_id, e.kind, e.outcome)
            INSERT INTO key_totals
                (field, value, kind, outcome, n, first_ts, last_ts, review, mixed, one_user)
            SELECT field, value, kind, outcome, n, first_ts, last_ts, review, mixed,
                   CASE WHEN mixed THEN NULL ELSE user_id END
              FROM groups;
        ",
    },
    Migration {
        description: "tombstones of the entries cleanup removed (see expiry.rs)",
        sql: "
            CREATE TABLE expired_entries (
                seq        INTEGER PRIMARY KEY,  -- the removed entry's seq
                leaf_hash  BLOB NOT NULL,        -- its leaf as stored: all the tree needs of it
                removed_by INTEGER NOT NULL      -- the seq of the cleanup event that lists it
            );
            CREATE INDEX expired_entries_by_run ON expired_entries (removed_by);
        ",
    },
    Migration {
        description: "the time the recorder received each event (see docs/integrity.md)",
        sql: "
            -- NULL for the events recorded before: their metadata has no receive time. A
            -- file written at an older schema by this build's recorder (tests do) holds
            -- events whose metadata has one: their copy is made here, from the text the
            -- recorder writes (`YYYY-MM-DDTHH:MM:SS[.f]Z`), as verify reads it.
            ALTER TABLE events ADD COLUMN received_at INTEGER;  -- microseconds since the Unix epoch
            UPDATE events SET received_at = (
                SELECT CAST(strftime('%s', substr(r, 1, 19)) AS INTEGER) * 1000000
                       + CASE WHEN substr(r, 20, 1) = '.'
                              THEN CAST(substr(substr(r, 21, length(r) - 21) || '000000', 1, 6)
                                        AS INTEGER)
                              ELSE 0 END
                  FROM (SELECT json_extract(meta, '$.received_at') AS r))
             WHERE instr(meta, '\"received_at\":') > 0;
            CREATE INDEX events_received ON events (received_at);
        ",
    },
    Migration {
        description: "full-text index of the payloads, for search (see read/search.rs)",
        sql: "
            -- External content: the index keeps the words and where they are, not a second copy
            -- of the text, which stays in payloads alone. Its rowid is the payload's seq. The
            -- tokenizer cuts text into runs of letters and digits, as a search text is cut;
            -- diacritics are kept, as PostgreSQL's index keeps them.
            CREATE VIRTUAL TABLE payload_text USING fts5(
                body, content = 'payloads', content_rowid = 'seq',
                tokenize = 'unicode61 remove_diacritics 0'
            );
            -- Written by the database on every path that adds or removes a payload (append,
            -- erasure, expiry), so that no path can forget it: an erased payload leaves the
            -- index in the statement that deletes it.
            CREATE TRIGGER payload_text_insert AFTER INSERT ON payloads BEGIN
                INSERT INTO payload_text (rowid, body) VALUES (new.seq, new.body);
            END;
            CREATE TRIGGER payload_text_delete AFTER DELETE ON payloads BEGIN
                INSERT INTO payload_text (payload_text, rowid, body)
                    VALUES ('delete', old.seq, old.body);
            END;
            CREATE TRIGGER payload_text_update AFTER UPDATE ON payloads BEGIN
                INSERT INTO payload_text (payload_text, rowid, body)
                    VALUES ('delete', old.seq, old.body);
                INSERT INTO payload_text (rowid, body) VALUES (new.seq, new.body);
            END;
            -- A deleted entry is taken out of the index's pages at once rather than masked by a
            -- delete marker until the next merge: an erased word must leave the file.
            INSERT INTO payload_text (payload_text, rank) VALUES ('secure-delete', 1);
            -- The payloads recorded before this version.
            INSERT INTO payload_text (payload_text) VALUES ('rebuild');
        ",
    },
    Migration {
        description: "the erasable pseudonym -> identity mapping (see docs/privacy.md)",
        sql: "
            -- The hashed metadata names a person only by a random pseudonym; this row is all
            -- that links it to them, and a subject's erasure deletes it.
            CREATE TABLE pseudonyms (
                pseudonym TEXT PRIMARY KEY,  -- 'pn:' and 32 hex digits
                field     TEXT NOT NULL,     -- 'user' or 'subject'
                identity  TEXT NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX pseudonyms_identity ON pseudonyms (identity, field);
        ",
    },
    Migration {
        description: "the review queue's index: the events that require review, newest first",
        sql: "
            -- Partial: few events require review, and the rest pay nothing for it. Without
            -- it a page of the queue read the log backwards row by row until it had found
            -- its events: at one event in a thousand, a hundred thousand rows a page. The
            -- WHERE builder writes the review filter as this bare column so that SQLite
            -- matches it to the index's condition.
            CREATE INDEX events_review ON events (seq) WHERE requires_review;
        ",
    },
    Migration {
        description: "the count of pseudonym erasures, that running recorders follow",
        sql: "
            -- One row: how many times a subject's erasure deleted rows of `pseudonyms`, raised
            -- in the erasure's transaction. A running writer reads it before each batch and,
            -- when it moved, forgets the erased identities it had cached, so that their next
            -- events get fresh pseudonyms (see write/erasure_watch.rs).
            CREATE TABLE pseudonym_epoch (n INTEGER NOT NULL);
            INSERT INTO pseudonym_epoch (n) VALUES (0);
        ",
    },
    Migration {
        description: "witnesses: the checkpoints this database co-signed as a witness, and the cosignatures of this log's checkpoints (see docs/sinks.md)",
        sql: "
            -- Witness side (`serve --witness-key`): per log origin, the latest checkpoint
            -- co-signed. Moved forward only by a compare-and-swap on `size`; never deleted.
            CREATE TABLE witnessed (
                origin     TEXT PRIMARY KEY,
                size       INTEGER NOT NULL,  -- tree size of the latest co-signed checkpoint
                root       BLOB NOT NULL,     -- its root hash
                note       TEXT NOT NULL,     -- the signed note as submitted
                updated_at INTEGER NOT NULL   -- microseconds since the Unix epoch
            );
            -- Log side: witnesses' cosignatures of this log's checkpoints.
            CREATE TABLE cosignatures (
                size        INTEGER NOT NULL,  -- the co-signed checkpoint's tree size
                witness     TEXT NOT NULL,     -- <name>+<key id hex> of the witness key
                line        TEXT NOT NULL,     -- the signature line as received
                received_at INTEGER NOT NULL,
                PRIMARY KEY (size, witness)
            );
            -- Log side: how far each target that returns nothing to keep (a plain POST) has
            -- acknowledged this log's checkpoints, moved after each acknowledgement.
            CREATE TABLE witness_cursors (
                target TEXT PRIMARY KEY,       -- the target's URL
                size   INTEGER NOT NULL        -- the largest checkpoint size it acknowledged
            );
        ",
    },
    Migration {
        description: "the full-text index written by the writer in bulk (see sqlite/append.rs)",
        sql: "
            -- The writer adds a commit's payloads to the index with one statement (in the
            -- commit's own transaction, so that a search sees every committed event) instead
            -- of a trigger per row. Removals stay with the triggers: erasure and expiry take an
            -- entry out of the index in the statement that deletes its payload.
            DROP TRIGGER payload_text_insert;
            DROP TRIGGER payload_text_delete;
            DROP TRIGGER payload_text_update;
            DROP TABLE payload_text;
            -- The same index without its per-row column sizes (`columnsize=0`): they serve
            -- ranking, and searches order by seq, not by rank. Positions stay (`detail=full`):
            -- a search is a phrase, words next to each other.
            CREATE VIRTUAL TABLE payload_text USING fts5(
                body, content = 'payloads', content_rowid = 'seq', columnsize = 0,
                tokenize = 'unicode61 remove_diacritics 0'
            );
            CREATE TRIGGER payload_text_delete AFTER DELETE ON payloads BEGIN
                INSERT INTO payload_text (payload_text, rowid, body)
                    VALUES ('delete', old.seq, old.body);
            END;
            CREATE TRIGGER payload_text_update AFTER UPDATE ON payloads BEGIN
                INSERT INTO payload_text (payload_text, rowid, body)
                    VALUES ('delete', old.seq, old.body);
                INSERT INTO payload_text (rowid, body) VALUES (new.seq, new.body);
            END;
            INSERT INTO payload_text (payload_text, rank) VALUES ('secure-delete', 1);
            -- A commit of a few thousand payloads is one in-memory batch of terms, written as
            -- one segment, rather than several flushed at the default 1 MB: fewer segments,
            -- fewer merges (each merge rewrites every entry of the segments it merges).
            INSERT INTO payload_text (payload_text, rank) VALUES ('hashsize', 16777216);
            INSERT INTO payload_text (payload_text) VALUES ('rebuild');
        ",
    },
    Migration {
        description: "sinks' cursors and dead letters (see sinks/mod.rs)",
        sql: "
            -- One row per sink and log: the seq of the next record to send, moved only after
            -- the destination acknowledged, and the failed attempts at that position.
            CREATE TABLE sink_cursors (
                sink       TEXT NOT NULL,
                log_id     TEXT NOT NULL,
                next_seq   INTEGER NOT NULL,
                tries      INTEGER NOT NULL,     -- failed attempts at next_seq
                refusals   INTEGER NOT NULL,     -- of which refusals of the record itself
                last_error TEXT,
                updated_at INTEGER NOT NULL,     -- microseconds since the Unix epoch
                PRIMARY KEY (sink, log_id)
            ) WITHOUT ROWID;
            -- The records a sink gave up on: ids and the reason only, never the payload.
            CREATE TABLE sink_dead_letters (
                sink       TEXT NOT NULL,
                log_id     TEXT NOT NULL,
                seq        INTEGER NOT NULL,
                event_id   BLOB NOT NULL,        -- 16 bytes
                tries      INTEGER NOT NULL,
                last_error TEXT NOT NULL,
                at         INTEGER NOT NULL,     -- microseconds since the Unix epoch
                PRIMARY KEY (sink, log_id, seq)
            ) WITHOUT ROWID;
        ",
    },
    Migration {
        description: "dead letters queued to be sent again, and a lease per sink name (see sinks/mod.rs)",
        sql: "
            -- Queued by `sink retry`; `replays` counts the refusals since it was queued.
            ALTER TABLE sink_dead_letters ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE sink_dead_letters ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
            -- One runner at a time per sink name: the holder renews the row before it runs
            -- out; another runner waits, named as the standby.
            CREATE TABLE sink_leases (
                sink          TEXT PRIMARY KEY,
                owner         TEXT NOT NULL,
                expires_at    INTEGER NOT NULL,  -- microseconds since the Unix epoch
                standby       TEXT,
                standby_until INTEGER
            ) WITHOUT ROWID;
        ",
    },
    Migration {
        description: "the full-text index written behind the writer (see sqlite/text_tail.rs)",
        sql: "
            -- The words go in a few hundred events at a time; `text_indexed_to` says how far.
            -- A payload past it is not in the index, and a 'delete' of an entry the index never
            -- had would corrupt it: the triggers act only below the bound.
            DROP TRIGGER payload_text_delete;
            DROP TRIGGER payload_text_update;
            CREATE TRIGGER payload_text_delete AFTER DELETE ON payloads
            WHEN old.seq < (SELECT CAST(value AS INTEGER) FROM log_state
                             WHERE key = 'text_indexed_to')
            BEGIN
                INSERT INTO payload_text (payload_text, rowid, body)
                    VALUES ('delete', old.seq, old.body);
            END;
            CREATE TRIGGER payload_text_update AFTER UPDATE ON payloads
            WHEN old.seq < (SELECT CAST(value AS INTEGER) FROM log_state
                             WHERE key = 'text_indexed_to')
            BEGIN
                INSERT INTO payload_text (payload_text, rowid, body)
                    VALUES ('delete', old.seq, old.body);
                INSERT INTO payload_text (rowid, body) VALUES (new.seq, new.body);
            END;
            -- Everything recorded so far is indexed (version 14 on, a commit at a time).
            INSERT INTO log_state (key, value)
                SELECT 'text_indexed_to', value FROM log_state WHERE key = 'next_seq';
        ",
    },
    Migration {
        description: "the metadata stored compressed, each value carrying its format (see sqlite/packed.rs)",
        sql: "
            -- No row is rewritten: a TEXT `meta` stays the canonical JSON it was, and this
            -- version's writer stores new ones as BLOBs that start with their format byte,
            -- which every reader of this version decodes. The version is raised all the same,
            -- so that an older build refuses the file rather than misread its new rows.
        ",
    },
];

/// The first version with `event_keys` (see `keys.rs`).
pub(crate) const BULK_KEYS_VERSION: i64 = 5;

/// The first version with `key_totals` (see `totals.rs`).
pub(crate) const KEY_TOTALS_VERSION: i64 = 6;

/// The first version with `expired_entries` (see `expiry.rs`).
pub(crate) const TOMBSTONES_VERSION: i64 = 7;

/// The first version with `events.received_at`.
pub(crate) const RECEIVED_AT_VERSION: i64 = 8;

/// The first version with `payload_text`, the full-text index of the payloads.
pub(crate) const SEARCH_VERSION: i64 = 9;
/// The first version with `pseudonyms` (see `pseudonyms.rs`).
pub(crate) const PSEUDONYMS_VERSION: i64 = 10;
/// The first version with `pseudonym_epoch`, the count of erasures of the mapping.
pub(crate) const PSEUDONYM_EPOCH_VERSION: i64 = 12;
/// The first version with `witnessed` and `cosignatures` (see `witness.rs`).
pub(crate) const WITNESS_VERSION: i64 = 13;

/// The first version whose text index the writer fills itself, a commit at a time (see
/// `append.rs`); before it a trigger did, a row at a time.
pub(crate) const TEXT_IN_BULK_VERSION: i64 = 14;

/// The first version whose text index is written behind the writer, past a bound (see
/// `text_tail.rs`).
pub(crate) const TEXT_BEHIND_VERSION: i64 = 17;
/// The first version whose writer stores `meta` compressed (see `packed.rs`).
pub(crate) const PACKED_VERSION: i64 = 18;

/// The schema version this build writes.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

pub(crate) fn current_version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the schema to `target` (at most [`latest_version`]); refuses a newer database.
///
/// Several processes may open a new file at once (three proxies started together): each step
/// reads the version and applies the step in one IMMEDIATE transaction, which takes the write
/// lock before it reads (waiting up to the connection's busy timeout). A process that finds
/// the step already applied by another moves on; none applies a step twice. Reading the
/// version first and then opening a deferred transaction let two processes both see version
/// 0, and the second failed on `table log_state already exists`. A file already at `target`
/// is seen so without the lock (a read-only file opened for writing is refused later, by its
/// first write, as before).
pub(crate) fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), StoreError> {
    let found = current_version(conn).map_err(super::map_err)?;
    if found >= target && found <= latest_version() {
        return Ok(());
    }
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(super::map_err)?;
        let found = current_version(&tx).map_err(super::map_err)?;
        if found > latest_version() {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: latest_version(),
            });
        }
        let Some(step) = MIGRATIONS.get(found as usize).filter(|_| found < target) else {
            // Nothing to do: the read-only transaction ends without a write.
            return tx.commit().map_err(super::map_err);
        };
        let version = found + 1;
        tx.execute_batch(step.sql).map_err(|e| {
            StoreError::Database(format!("migration {version} ({}): {e}", step.description))
        })?;
        tx.pragma_update(None, "user_version", version)
            .map_err(super::map_err)?;
        tx.commit().map_err(super::map_err)?;
        tracing::info!(
            version,
            description = step.description,
            "migrated database schema"
        );
    }
}
