//! The witness tables on SQLite (see `crate::witnessing`).

use jiff::Timestamp;
use mcp_audit_core::Hash;
use rusqlite::OptionalExtension;

use super::{SqliteStore, map_err};
use crate::error::StoreError;
use crate::witnessing::{Advance, StoredCosignature, Witnessed, Witnessing};

impl Witnessing for SqliteStore {
    fn witnessed(&mut self, origin: &str) -> Result<Option<Witnessed>, StoreError> {
        if !self.layout.witness {
            return Ok(None);
        }
        let row: Option<(i64, Vec<u8>, String)> = self
            .conn
            .query_row(
                "SELECT size, root, note FROM witnessed WHERE origin = ?1",
                [origin],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(map_err)?;
        row.map(|(size, root, note)| {
            Ok(Witnessed {
                size: size as u64,
                root: Hash::from_slice(&root).ok_or_else(|| {
                    StoreError::Database(format!("the witnessed root of {origin} is not 32 bytes"))
                })?,
                note,
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
        let now = Timestamp::now().as_microsecond();
        let params = rusqlite::params![
            origin,
            new.size as i64,
            new.root.0.as_slice(),
            new.note,
            now,
            old_size as i64
        ];
        // One statement each: SQLite runs it under the write lock, so the check of the stored
        // size and the write are one step. Rows are never deleted, so "no row" means size 0.
        let changed = if old_size == 0 {
            self.conn.execute(
                "INSERT INTO witnessed (origin, size, root, note, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, \
                   note = excluded.note, updated_at = excluded.updated_at \
                 WHERE witnessed.size = ?6",
                params,
            )
        } else {
            self.conn.execute(
                "UPDATE witnessed SET size = ?2, root = ?3, note = ?4, updated_at = ?5 \
                 WHERE origin = ?1 AND size = ?6",
                params,
            )
        }
        .map_err(|e| self.map(e))?;
        if changed == 1 {
            return Ok(Advance::Advanced);
        }
        let size = self.witnessed(origin)?.map_or(0, |w| w.size);
        Ok(Advance::Conflict { size })
    }

    fn put_cosignature(&mut self, c: &StoredCosignature) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO cosignatures (size, witness, line, received_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    c.size as i64,
                    c.witness,
                    c.line,
                    Timestamp::now().as_microsecond()
                ],
            )
            .map(drop)
            .map_err(|e| self.map(e))
    }

    fn cosignatures(&mut self) -> Result<Vec<StoredCosignature>, StoreError> {
        if !self.layout.witness {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT size, witness, line FROM cosignatures ORDER BY size, witness")
            .map_err(map_err)?;
        stmt.query_map([], |r| {
            Ok(StoredCosignature {
                size: r.get::<_, i64>(0)? as u64,
                witness: r.get(1)?,
                line: r.get(2)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(map_err)
    }

    fn sent_size(&mut self, target: &str) -> Result<u64, StoreError> {
        if !self.layout.witness {
            return Ok(0);
        }
        let size: Option<i64> = self
            .conn
            .query_row(
                "SELECT size FROM witness_cursors WHERE target = ?1",
                [target],
                |r| r.get(0),
            )
            .optional()
            .map_err(map_err)?;
        Ok(size.map_or(0, |s| s as u64))
    }

    fn put_sent_size(&mut self, target: &str, size: u64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO witness_cursors (target, size) VALUES (?1, ?2) \
                 ON CONFLICT (target) DO UPDATE SET size = excluded.size \
                 WHERE excluded.size > witness_cursors.size",
                rusqlite::params![target, size as i64],
            )
            .map(drop)
            .map_err(|e| self.map(e))
    }
}
