//! The witness tables on PostgreSQL (see `crate::witnessing`): the witness state is the
//! database's (per origin, whichever log the serving process writes), the cosignatures are
//! per log.

use jiff::Timestamp;
use mcp_audit_core::Hash;

use super::{PgStore, map_err};
use crate::error::StoreError;
use crate::witnessing::{Advance, StoredCosignature, Witnessed, Witnessing};

impl PgStore {
    /// Whether the schema has the witness tables (a reader of an older schema may not).
    fn has_witness_tables(&mut self) -> Result<bool, StoreError> {
        self.with_client(|c| {
            c.query_one("SELECT to_regclass('cosignatures') IS NOT NULL", &[])
                .map(|r| r.get(0))
                .map_err(map_err)
        })
    }
}

impl Witnessing for PgStore {
    fn witnessed(&mut self, origin: &str) -> Result<Option<Witnessed>, StoreError> {
        if !self.has_witness_tables()? {
            return Ok(None);
        }
        let row = self.with_client(|c| {
            c.query_opt(
                "SELECT size, root, note FROM witnessed WHERE origin = $1",
                &[&origin],
            )
            .map_err(map_err)
        })?;
        row.map(|r| {
            let root: Vec<u8> = r.get(1);
            Ok(Witnessed {
                size: r.get::<_, i64>(0) as u64,
                root: Hash::from_slice(&root).ok_or_else(|| {
                    StoreError::Database(format!("the witnessed root of {origin} is not 32 bytes"))
                })?,
                note: r.get(2),
            })
        })
        .transpose()
    }

    fn advance_witnessed(
        &mut self,
        origin: &str,
        old_size: u64,
        new: &Witnessed,
    ) -> Result<Advance, StoreError> {
        let (size, old, now) = (
            new.size as i64,
            old_size as i64,
            Timestamp::now().as_microsecond(),
        );
        let root = new.root.0.as_slice();
        // One statement each: PostgreSQL's row lock makes the size check and the write one
        // step (a concurrent update re-checks the WHERE on the row it waited for). Rows are
        // never deleted, so "no row" means size 0.
        let changed = self.with_client(|c| {
            if old_size == 0 {
                c.execute(
                    "INSERT INTO witnessed (origin, size, root, note, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (origin) DO UPDATE SET size = EXCLUDED.size, \
                       root = EXCLUDED.root, note = EXCLUDED.note, \
                       updated_at = EXCLUDED.updated_at \
                     WHERE witnessed.size = $6",
                    &[&origin, &size, &root, &new.note, &now, &old],
                )
            } else {
                c.execute(
                    "UPDATE witnessed SET size = $2, root = $3, note = $4, updated_at = $5 \
                     WHERE origin = $1 AND size = $6",
                    &[&origin, &size, &root, &new.note, &now, &old],
                )
            }
            .map_err(map_err)
        })?;
        if changed == 1 {
            return Ok(Advance::Advanced);
        }
        let size = self.witnessed(origin)?.map_or(0, |w| w.size);
        Ok(Advance::Conflict { size })
    }

    fn put_cosignature(&mut self, c: &StoredCosignature) -> Result<(), StoreError> {
        let log_id = self.log_id.clone();
        self.with_client(|client| {
            client
                .execute(
                    "INSERT INTO cosignatures (log_id, size, witness, line, received_at) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (log_id, size, witness) DO UPDATE \
                       SET line = EXCLUDED.line, received_at = EXCLUDED.received_at",
                    &[
                        &log_id,
                        &(c.size as i64),
                        &c.witness,
                        &c.line,
                        &Timestamp::now().as_microsecond(),
                    ],
                )
                .map(drop)
                .map_err(map_err)
        })
    }

    fn cosignatures(&mut self) -> Result<Vec<StoredCosignature>, StoreError> {
        if !self.has_witness_tables()? {
            return Ok(Vec::new());
        }
        let log_id = self.log_id.clone();
        let rows = self.with_client(|c| {
            c.query(
                "SELECT size, witness, line FROM cosignatures WHERE log_id = $1 \
                 ORDER BY size, witness",
                &[&log_id],
            )
            .map_err(map_err)
        })?;
        Ok(rows
            .iter()
            .map(|r| StoredCosignature {
                size: r.get::<_, i64>(0) as u64,
                witness: r.get(1),
                line: r.get(2),
            })
            .collect())
    }

    fn sent_size(&mut self, target: &str) -> Result<u64, StoreError> {
        if !self.has_witness_tables()? {
            return Ok(0);
        }
        let log_id = self.log_id.clone();
        let row = self.with_client(|c| {
            c.query_opt(
                "SELECT size FROM witness_cursors WHERE log_id = $1 AND target = $2",
                &[&log_id, &target],
            )
            .map_err(map_err)
        })?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    fn put_sent_size(&mut self, target: &str, size: u64) -> Result<(), StoreError> {
        let log_id = self.log_id.clone();
        self.with_client(|c| {
            c.execute(
                "INSERT INTO witness_cursors (log_id, target, size) VALUES ($1, $2, $3) \
                 ON CONFLICT (log_id, target) DO UPDATE SET size = EXCLUDED.size \
                 WHERE EXCLUDED.size > witness_cursors.size",
                &[&log_id, &target, &(size as i64)],
            )
            .map(drop)
            .map_err(map_err)
        })
    }
}
