//! Writing with the server away: appending a batch (and recognising one whose commit was lost
//! with the connection), spooling it or waiting for the server, and replaying spools in order.

use std::time::Instant;

use super::spool::{self, Spool, SpoolOptions};
use super::{PgStore, REPLAY_BATCH, RETRY_EVERY, append, map_err};
use crate::error::StoreError;
use crate::store::Entry;
use postgres::Client;

impl PgStore {
    /// Appends `entries` to `log_id` in one transaction. An append whose commit was lost with
    /// the connection may have happened: when the log is already past the batch and holds its
    /// last event at its seq, it did, and is not written twice.
    pub(super) fn try_append(
        &mut self,
        log_id: &str,
        entries: &[Entry<'_>],
        erasures_seen: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut partitions = std::mem::take(&mut self.partitions);
        let method = self.options.write_method;
        let result = self.with_client(|client| {
            for attempt in 0..2 {
                partitions.ensure(
                    client,
                    entries
                        .iter()
                        .map(|e| e.sealed.event.timestamp.as_microsecond()),
                )?;
                let tx = client.transaction().map_err(map_err)?;
                match append::append(tx, log_id, entries, method, erasures_seen) {
                    Err(StoreError::SeqConflict { next })
                        if already_written(client, log_id, entries, next)? =>
                    {
                        return Ok(());
                    }
                    // A partition dropped by a cleanup since it was created here.
                    Err(StoreError::Database(reason))
                        if attempt == 0 && reason.contains("no partition") =>
                    {
                        partitions.forget();
                    }
                    other => return other,
                }
            }
            Err(StoreError::Database(
                "no partition for the batch's events".into(),
            ))
        });
        self.partitions = partitions;
        result
    }

    /// Replays `spool` into this store's log, skipping what is already there, then empties it.
    pub(super) fn drain(&mut self, spool: &mut Spool) -> Result<(), StoreError> {
        let log_id = self.log_id.clone();
        let replayed = self.replay(&log_id, spool)?;
        if replayed > 0 {
            tracing::info!(entries = replayed, log_id, "replayed the local spool");
        }
        Ok(())
    }

    /// Appends the entries of `spool` that `log_id` does not hold yet (a commit whose
    /// acknowledgement was lost may have written some), in order, then empties the spool.
    pub(super) fn replay(&mut self, log_id: &str, spool: &mut Spool) -> Result<usize, StoreError> {
        let entries = spool.read()?;
        let next = self.db_next_seq(log_id)?;
        let waiting: Vec<&spool::Spooled> = entries.iter().filter(|e| e.seq >= next).collect();
        for chunk in waiting.chunks(REPLAY_BATCH) {
            let batch: Vec<Entry<'_>> = chunk.iter().map(|s| s.entry()).collect();
            self.try_append(log_id, &batch, None)?;
        }
        spool.clear()?;
        Ok(waiting.len())
    }

    /// Replays the spools that crashed writers of other logs left in `options.dir`.
    pub(super) fn replay_others(&mut self, options: &SpoolOptions) -> Result<(), StoreError> {
        for (log_id, path) in spool::others(&options.dir, &self.log_id)? {
            match self.claim(&log_id) {
                Ok(()) => {}
                // Its writer is alive and will replay it itself.
                Err(StoreError::LogInUse { .. }) => continue,
                Err(e) => return Err(e),
            }
            let mut other = Spool::at(path, options.max_bytes)?;
            let result = self.replay(&log_id, &mut other);
            self.with_client(|c| {
                c.execute(
                    "SELECT pg_advisory_unlock(hashtextextended(current_schema() || '/' || $1, 0))",
                    &[&log_id],
                )
                .map(drop)
                .map_err(map_err)
            })?;
            let replayed = result?;
            tracing::info!(entries = replayed, log_id, "replayed a spool left behind");
        }
        Ok(())
    }

    /// The server took writes again: the next outage is warned of anew.
    fn outage_over(&mut self) {
        if self.spooling {
            self.spooling = false;
            tracing::warn!("database reachable again: the spool is replayed");
        }
    }

    pub(super) fn db_next_seq(&mut self, log_id: &str) -> Result<u64, StoreError> {
        self.with_client(|c| {
            let row = c
                .query_opt("SELECT next_seq FROM logs WHERE log_id = $1", &[&log_id])
                .map_err(map_err)?;
            Ok(row.map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0))
        })
    }

    /// Empties the spool into the database when it holds entries and the server may be back.
    /// `Ok(false)`: still unreachable (or tried too recently), entries keep waiting.
    pub(super) fn try_drain(&mut self, force: bool) -> Result<bool, StoreError> {
        let Some(mut spool) = self.spool.take() else {
            return Ok(true);
        };
        let result = if spool.is_empty() {
            Ok(true)
        } else if !force && self.last_attempt.is_some_and(|t| t.elapsed() < RETRY_EVERY) {
            Ok(false)
        } else {
            self.last_attempt = Some(Instant::now());
            match self.drain(&mut spool) {
                Ok(()) => {
                    self.outage_over();
                    Ok(true)
                }
                Err(StoreError::Unavailable { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        };
        self.spool = Some(spool);
        result
    }

    /// Appends `entries` to this writer's log, behind any spooled ones. While the server is
    /// unreachable: spools them (with a spool that has room), or retries every RETRY_EVERY
    /// until `reconnect_timeout`, then fails with [`StoreError::Unavailable`].
    pub(super) fn append_or_wait(
        &mut self,
        entries: &[Entry<'_>],
        erasures_seen: Option<u64>,
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        let log_id = self.log_id.clone();
        let mut retrying = false;
        loop {
            // Entries already spooled go first, in order. While they wait, the server is tried
            // at most every RETRY_EVERY, not on every batch.
            let drained = self.try_drain(retrying)?;
            retrying = true;
            let reason = if drained {
                match self.try_append(&log_id, entries, erasures_seen) {
                    Err(StoreError::Unavailable { reason, .. }) => reason,
                    Ok(()) => {
                        self.outage_over();
                        return Ok(());
                    }
                    other => return other,
                }
            } else {
                "the database is unreachable".to_string()
            };
            if let Some(spool) = self.spool.as_mut() {
                match spool.push(entries) {
                    Ok(()) => {
                        self.last_attempt = Some(Instant::now());
                        // Once per outage: a line per batch said the same thing thousands of
                        // times.
                        if !self.spooling {
                            self.spooling = true;
                            tracing::warn!(
                                reason,
                                "database unreachable: spooling until it is back"
                            );
                        }
                        return Ok(());
                    }
                    Err(StoreError::Unavailable { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            let waited = started.elapsed();
            if waited >= self.options.reconnect_timeout {
                let full = self.spool.as_ref().is_some_and(|s| !s.is_empty());
                return Err(StoreError::Unavailable {
                    waited_ms: waited.as_millis() as u64,
                    reason: if full {
                        format!("{reason}; the local spool is full")
                    } else {
                        reason
                    },
                });
            }
            std::thread::sleep(RETRY_EVERY.min(self.options.reconnect_timeout - waited));
        }
    }
}

/// Whether the batch ending with `entries`' last is in the log already (its commit was
/// acknowledged to nobody because the connection dropped).
fn already_written(
    client: &mut Client,
    log_id: &str,
    entries: &[Entry<'_>],
    next: u64,
) -> Result<bool, StoreError> {
    let Some(last) = entries.last() else {
        return Ok(true);
    };
    if next <= last.seq {
        return Ok(false);
    }
    let row = client
        .query_opt(
            "SELECT id FROM events WHERE log_id = $1 AND seq = $2",
            &[&log_id, &(last.seq as i64)],
        )
        .map_err(map_err)?;
    Ok(row.is_some_and(|r| r.get::<_, uuid::Uuid>(0) == last.sealed.event.id.0))
}
