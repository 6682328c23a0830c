//! Versioned schema migrations for PostgreSQL: the same idea as SQLite's (an ordered, append-only
//! list of steps), tracked in a one-row table because PostgreSQL has no `user_version`. The
//! pending steps run in one transaction (PostgreSQL's DDL is transactional: a crash leaves the
//! previous version, never half a step) under a transaction advisory lock, so that two proxies
//! starting at once never run a step twice.

use postgres::Client;

use super::map_err;
use crate::error::StoreError;

/// The advisory lock key that serialises schema changes (migrations, new partitions). Any fixed
/// number works; this one spells "mcpaudit" in ASCII.
pub(super) const SCHEMA_LOCK: i64 = 0x6d63_7061_7564_6974;

/// One numbered step: the SQL that takes the schema from version `n - 1` to `n`.
struct Migration {
    description: &'static str,
    sql: &'static str,
}

/// The steps, oldest first. Append only: a released step is never edited.
///
/// Why this shape (see `docs/storage.md`): every log has its own dense seq, so the key of an
/// event is `(log_id, seq)`; the four event tables are range-partitioned by month on `ts` so
/// that retention can drop whole partitions, and a partitioned table's keys must include the
/// partition key, hence `ts` in each of them. Timestamps are microseconds since the epoch, as
/// in SQLite, so that the backend-neutral WHERE builder binds the same values to both.
const MIGRATIONS: &[Migration] = &[Migration {
    description: "logs, partitioned events with their payloads, lineage and compliance rows, tree nodes, checkpoints",
    sql: "
        CREATE TABLE logs (
            log_id     TEXT PRIMARY KEY,
            next_seq   BIGINT NOT NULL,       -- the log's size: the next entry's seq
            created_at BIGINT NOT NULL        -- microseconds since the Unix epoch
        );
        CREATE TABLE events (
            log_id          TEXT NOT NULL,
            seq             BIGINT NOT NULL,  -- dense from 0 per log, in commit order; the leaf index
            id              UUID NOT NULL,
            ts              BIGINT NOT NULL,  -- microseconds since the Unix epoch, UTC
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
            requires_review BOOLEAN NOT NULL,
            data_subject_id TEXT,
            expires_at      BIGINT,
            duration_us     BIGINT,
            completes       UUID,             -- id of the pending event this one completes
            meta            TEXT NOT NULL,    -- canonical metadata JSON, byte for byte as hashed
            commitment      BYTEA NOT NULL,
            leaf_hash       BYTEA NOT NULL,
            PRIMARY KEY (log_id, seq, ts)
        ) PARTITION BY RANGE (ts);
        CREATE TABLE payloads (
            log_id TEXT NOT NULL,
            seq    BIGINT NOT NULL,
            ts     BIGINT NOT NULL,           -- the event's, to share its partition
            salt   BYTEA NOT NULL,
            body   TEXT NOT NULL,             -- canonical personal JSON; no row once erased
            PRIMARY KEY (log_id, seq, ts)
        ) PARTITION BY RANGE (ts);
        CREATE TABLE data_sources (
            log_id         TEXT NOT NULL,
            seq            BIGINT NOT NULL,
            ts             BIGINT NOT NULL,
            ordinal        INTEGER NOT NULL,
            uri            TEXT NOT NULL,
            source_type    TEXT,
            identifier     TEXT,
            transformation TEXT,
            destination    TEXT,
            direction      TEXT NOT NULL,
            metadata       TEXT
        ) PARTITION BY RANGE (ts);
        CREATE TABLE compliance_events (
            log_id     TEXT NOT NULL,
            seq        BIGINT NOT NULL,
            ts         BIGINT NOT NULL,
            ordinal    INTEGER NOT NULL,
            framework  TEXT NOT NULL,
            event_type TEXT NOT NULL,
            risk_level TEXT NOT NULL,
            details    TEXT,
            mitigation TEXT
        ) PARTITION BY RANGE (ts);
        -- No key on the two tables above: their rows are written once, with their event, by
        -- the log's only writer, and read only by ad-hoc lineage queries; an index on each
        -- would cost every append more than it saves those (see docs/storage.md).
        -- Event ids are unique across all logs and months. A unique index on a partitioned
        -- table must contain the partition key, which would make it unique only per time, so
        -- ids get a small table of their own; it also finds an event's partition for `show`.
        CREATE TABLE event_ids (
            id     UUID PRIMARY KEY,
            log_id TEXT NOT NULL,
            seq    BIGINT NOT NULL,
            ts     BIGINT NOT NULL
        );
        -- Newest-first pages: by time, then log and seq as tie-breakers. No index on
        -- expires_at: retention drops whole months, and the rest of cleanup reads each
        -- partition once (see report.rs), which an index would make every append pay for.
        CREATE INDEX events_ts        ON events (ts, log_id, seq);
        CREATE INDEX events_session   ON events (session_id, ts) WHERE session_id IS NOT NULL;
        CREATE INDEX events_user      ON events (user_id, ts) WHERE user_id IS NOT NULL;
        CREATE INDEX events_operation ON events (operation, ts);
        CREATE INDEX events_pending   ON events (ts) WHERE outcome = 'pending';
        CREATE INDEX events_completes ON events (completes) WHERE completes IS NOT NULL;
        -- Interior nodes of each log's Merkle tree, so that proofs need not rehash the log.
        CREATE TABLE tree_nodes (
            log_id TEXT NOT NULL,
            level  INTEGER NOT NULL,          -- 8, 16, 24, ...: the node covers 2^level leaves
            idx    BIGINT NOT NULL,           -- its first leaf is idx * 2^level
            hash   BYTEA NOT NULL,
            PRIMARY KEY (log_id, level, idx)
        );
        CREATE TABLE checkpoints (
            log_id    TEXT NOT NULL,
            size      BIGINT NOT NULL,        -- tree size the checkpoint commits to
            root      BYTEA NOT NULL,
            note      TEXT NOT NULL,          -- the signed note, as signed
            signed_at BIGINT NOT NULL,
            PRIMARY KEY (log_id, size)
        );
    ",
}, Migration {
    description: "tombstones of the entries cleanup removed (see expiry.rs)",
    sql: "
        -- Not partitioned: a tombstone outlives the month of its event, whose partition
        -- cleanup drops.
        CREATE TABLE expired_entries (
            log_id     TEXT NOT NULL,
            seq        BIGINT NOT NULL,       -- the removed entry's seq
            leaf_hash  BYTEA NOT NULL,        -- its leaf as stored: all the tree needs of it
            removed_by BIGINT NOT NULL,       -- the seq of the cleanup event (same log) that lists it
            PRIMARY KEY (log_id, seq)
        );
        CREATE INDEX expired_entries_by_run ON expired_entries (log_id, removed_by);
    ",
}, Migration {
    description: "the time the recorder received each event (see docs/integrity.md)",
    sql: "
        -- NULL for the events recorded before: their metadata has no receive time. Added to
        -- every partition, and indexed in each, so that a window by receive time reads the
        -- index of every month rather than every row: the partitions are by stated time, which
        -- says nothing about when an event arrived.
        ALTER TABLE events ADD COLUMN received_at BIGINT;  -- microseconds since the Unix epoch
        CREATE INDEX events_received ON events (received_at);
    ",
}, Migration {
    description: "full-text index of the payloads, for search (see read/search.rs)",
    sql: "
        -- The words of a payload as search reads them: every character that is not a letter or
        -- a digit becomes a space (as SQLite's tokenizer cuts text), then the `simple`
        -- configuration lower-cases each word and keeps it (no stemming, no stop words). Only
        -- the first 100,000 characters (search::PG_INDEXED_CHARS): a tsvector is at most 1 MB,
        -- and an insert whose payload made a larger one would fail. IMMUTABLE so that it can
        -- be indexed; one SQL expression that the planner inlines, in the index and in the
        -- query alike, so that the query's expression matches the index's.
        CREATE OR REPLACE FUNCTION mcp_audit_search_doc(body TEXT) RETURNS tsvector
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT to_tsvector('simple'::regconfig,
                      regexp_replace(left(body, 100000), '[^[:alnum:]]+', ' ', 'g')) $$;
        -- The phrase of a search's words (already cut and lower-cased by the reader; cut
        -- again here so that no tsquery syntax can reach the parser).
        CREATE OR REPLACE FUNCTION mcp_audit_search_query(words TEXT) RETURNS tsquery
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT phraseto_tsquery('simple'::regconfig,
                      regexp_replace(words, '[^[:alnum:]]+', ' ', 'g')) $$;
        -- An expression index, not a stored column: the database computes it on every path that
        -- writes a payload (COPY, multi-row INSERT, the spool's replay), an erased payload's
        -- entry dies with its row, and nothing derived sits in the table beside the hashed
        -- data. Created on the parent, it is built on every partition, now and later.
        CREATE INDEX IF NOT EXISTS payloads_text ON payloads USING gin (mcp_audit_search_doc(body));
    ",
}, Migration {
    description: "the erasable pseudonym -> identity mapping (see docs/privacy.md)",
    sql: "
        -- The hashed metadata names a person only by a random pseudonym; this row is all that
        -- links it to them, and a subject's erasure deletes it. One mapping for the database:
        -- every log's events resolve through it.
        CREATE TABLE IF NOT EXISTS pseudonyms (
            pseudonym TEXT PRIMARY KEY,   -- 'pn:' and 32 hex digits
            field     TEXT NOT NULL,      -- 'user' or 'subject'
            identity  TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS pseudonyms_identity ON pseudonyms (identity, field);
    ",
}, Migration {
    description: "the review queue's index: the events that require review, newest first",
    sql: "
        -- Partial, in the page order: few events require review, and the rest pay nothing
        -- for it. Without it a page of the queue read the time index backwards, row by row,
        -- until it had found its events.
        CREATE INDEX IF NOT EXISTS events_review ON events (ts, log_id, seq) WHERE requires_review;
    ",
}, Migration {
    description: "the count of pseudonym erasures, that running recorders follow",
    sql: "
        -- One row: how many times a subject's erasure deleted rows of `pseudonyms`, raised in
        -- the erasure's transaction (the row lock orders concurrent erasures). Every writer
        -- reads it before each batch and, when it moved, forgets the erased identities it had
        -- cached, so that their next events get fresh pseudonyms (see write/erasure_watch.rs).
        CREATE TABLE IF NOT EXISTS pseudonym_epoch (n BIGINT NOT NULL);
        INSERT INTO pseudonym_epoch (n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM pseudonym_epoch);
    ",
}, Migration {
    description: "witnesses: the checkpoints this database co-signed as a witness, and the cosignatures of each log's checkpoints (see docs/sinks.md)",
    sql: "
        -- IF NOT EXISTS, as the steps before: a schema stamped back to an older version (the
        -- upgrade tests do) still has these tables when the steps run again.
        -- Witness side (`serve --witness-key`): per log origin, the latest checkpoint
        -- co-signed. Moved forward only by a compare-and-swap on `size`; never deleted.
        CREATE TABLE IF NOT EXISTS witnessed (
            origin     TEXT PRIMARY KEY,
            size       BIGINT NOT NULL,        -- tree size of the latest co-signed checkpoint
            root       BYTEA NOT NULL,         -- its root hash
            note       TEXT NOT NULL,          -- the signed note as submitted
            updated_at BIGINT NOT NULL         -- microseconds since the Unix epoch
        );
        -- Log side: witnesses' cosignatures of each log's checkpoints.
        CREATE TABLE IF NOT EXISTS cosignatures (
            log_id      TEXT NOT NULL,
            size        BIGINT NOT NULL,       -- the co-signed checkpoint's tree size
            witness     TEXT NOT NULL,         -- <name>+<key id hex> of the witness key
            line        TEXT NOT NULL,         -- the signature line as received
            received_at BIGINT NOT NULL,
            PRIMARY KEY (log_id, size, witness)
        );
        -- Log side: how far each target that returns nothing to keep (a plain POST) has
        -- acknowledged each log's checkpoints, moved after each acknowledgement.
        CREATE TABLE IF NOT EXISTS witness_cursors (
            log_id TEXT NOT NULL,
            target TEXT NOT NULL,              -- the target's URL
            size   BIGINT NOT NULL,            -- the largest checkpoint size it acknowledged
            PRIMARY KEY (log_id, target)
        );
    ",
}, Migration {
    description: "sinks' cursors and dead letters (see sinks/mod.rs)",
    sql: "
        -- One row per sink and log: the seq of the next record to send, moved only after the
        -- destination acknowledged, and the failed attempts at that position. Not partitioned:
        -- a cursor outlives the months it passed.
        CREATE TABLE IF NOT EXISTS sink_cursors (
            sink       TEXT NOT NULL,
            log_id     TEXT NOT NULL,
            next_seq   BIGINT NOT NULL,
            tries      INTEGER NOT NULL,      -- failed attempts at next_seq
            refusals   INTEGER NOT NULL,      -- of which refusals of the record itself
            last_error TEXT,
            updated_at BIGINT NOT NULL,       -- microseconds since the Unix epoch
            PRIMARY KEY (sink, log_id)
        );
        -- The records a sink gave up on: ids and the reason only, never the payload.
        CREATE TABLE IF NOT EXISTS sink_dead_letters (
            sink       TEXT NOT NULL,
            log_id     TEXT NOT NULL,
            seq        BIGINT NOT NULL,
            event_id   UUID NOT NULL,
            tries      INTEGER NOT NULL,
            last_error TEXT NOT NULL,
            at         BIGINT NOT NULL,       -- microseconds since the Unix epoch
            PRIMARY KEY (sink, log_id, seq)
        );
    ",
}, Migration {
    description: "dead letters queued to be sent again, and a lease per sink name (see sinks/mod.rs)",
    sql: "
        -- Queued by `sink retry`; `replays` counts the refusals since it was queued.
        ALTER TABLE sink_dead_letters ADD COLUMN IF NOT EXISTS queued BOOLEAN NOT NULL DEFAULT false;
        ALTER TABLE sink_dead_letters ADD COLUMN IF NOT EXISTS replays INTEGER NOT NULL DEFAULT 0;
        -- One runner at a time per sink name: the holder renews the row before it runs out;
        -- another runner waits, named as the standby. Times are the server's clock.
        CREATE TABLE IF NOT EXISTS sink_leases (
            sink          TEXT PRIMARY KEY,
            owner         TEXT NOT NULL,
            expires_at    BIGINT NOT NULL,     -- microseconds since the Unix epoch
            standby       TEXT,
            standby_until BIGINT
        );
    ",
}];

/// The first version with `expired_entries`.
pub(super) const TOMBSTONES_VERSION: i64 = 2;

/// The first version with `events.received_at`.
pub(super) const RECEIVED_AT_VERSION: i64 = 3;

/// The first version with the payloads' text index (`mcp_audit_search_doc`).
pub(super) const SEARCH_VERSION: i64 = 4;

/// The schema version this build writes.
pub(super) fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// The schema version of the database; 0 when it has none of our tables.
pub(super) fn current_version(client: &mut Client) -> Result<i64, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('mcp_audit_schema') IS NOT NULL", &[])
        .map_err(map_err)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one("SELECT version FROM mcp_audit_schema", &[])
        .map_err(map_err)?;
    Ok(i64::from(row.get::<_, i32>(0)))
}

/// Brings the schema to the latest version; refuses a newer database.
pub(super) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(map_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .map_err(map_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS mcp_audit_schema (version INTEGER NOT NULL);
         INSERT INTO mcp_audit_schema (version)
           SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM mcp_audit_schema);",
    )
    .map_err(map_err)?;
    let found = i64::from(
        tx.query_one("SELECT version FROM mcp_audit_schema", &[])
            .map_err(map_err)?
            .get::<_, i32>(0),
    );
    if found > latest_version() {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: latest_version(),
        });
    }
    for (index, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i32 + 1;
        tx.batch_execute(step.sql).map_err(|e| {
            StoreError::Database(format!("migration {version} ({}): {e}", step.description))
        })?;
        tx.execute("UPDATE mcp_audit_schema SET version = $1", &[&version])
            .map_err(map_err)?;
        tracing::info!(
            version,
            description = step.description,
            "migrated PostgreSQL schema"
        );
    }
    tx.commit().map_err(map_err)
}
