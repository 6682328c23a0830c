//! Dead letters queued again (`mcp-audit sink retry`): sent by the sink's runner before the
//! live records of their log, one at a time and in seq order within a log (the first queued
//! letter of a log holds back the later ones until it is delivered or given up on again).
//!
//! Each is read as any record is (the reader's view: an erased payload stays absent), passes
//! the sink's redaction, and leaves alone with its original `log_id:seq` key. Delivered, it
//! is removed from the dead letters; refused `max_tries` times again, it stays a dead letter
//! (its tries added up) and is no longer queued; unavailable, it waits out a backoff. A
//! letter whose record is no longer in the log (removed at expiry) is removed: nothing is
//! left to send.

use mcp_audit_store::{DeadLetter, LetterChoice, SinkState, StoreError};
use tokio::time::Instant;

use super::Runner;
use crate::stats::SinkStats;
use crate::{Destination, Failure};

impl<D: Destination, S: SinkState> Runner<D, S> {
    /// Sends the first queued dead letter of each log that is not waiting out a backoff;
    /// whether any was delivered or given up on.
    pub(super) async fn replay(&mut self) -> Result<bool, StoreError> {
        let name = self.spec.name.clone();
        let queued = self.store.call(move |s| s.queued_letters(&name)).await?;
        let mut moved = false;
        let mut previous_log: Option<String> = None;
        for letter in queued {
            if previous_log.as_deref() == Some(letter.log_id.as_str()) {
                continue; // one per log and round, the lowest seq first
            }
            previous_log = Some(letter.log_id.clone());
            if self
                .replay_waits
                .get(&letter.log_id)
                .is_some_and(|w| w.1 > Instant::now())
            {
                continue;
            }
            if self.stop.is_cancelled() || !self.may_send().await {
                break;
            }
            moved |= self.replay_one(letter).await?;
        }
        Ok(moved)
    }

    /// Sends one queued dead letter; whether it left the queue.
    async fn replay_one(&mut self, letter: DeadLetter) -> Result<bool, StoreError> {
        let (log_id, seq) = (letter.log_id.clone(), letter.seq);
        let mut batch = self
            .store
            .call(move |s| s.events_from(&log_id, seq, 1))
            .await?;
        if batch.first().is_none_or(|e| e.seq != letter.seq) {
            tracing::warn!(sink = %self.spec.name, log = %letter.log_id, seq = letter.seq, "a queued dead letter's record is no longer in the log (expired): removed");
            self.remove(&letter).await?;
            return Ok(true);
        }
        self.prepare(&mut batch);
        match self.destination.deliver(&batch).await {
            Ok(()) => {
                tracing::info!(sink = %self.spec.name, log = %letter.log_id, seq = letter.seq, "dead letter sent again and acknowledged");
                self.remove(&letter).await?;
                self.replay_waits.remove(&letter.log_id);
                SinkStats::add(&self.stats.delivered, 1);
                Ok(true)
            }
            Err(Failure::Unavailable(reason)) => {
                tracing::warn!(sink = %self.spec.name, log = %letter.log_id, seq = letter.seq, %reason, "destination unavailable for a dead letter sent again; will retry");
                SinkStats::add(&self.stats.retries, 1);
                self.replay_wait(&letter.log_id);
                Ok(false)
            }
            Err(Failure::Refused { reason, .. }) => {
                SinkStats::add(&self.stats.retries, 1);
                let (name, log_id, seq, max) = (
                    self.spec.name.clone(),
                    letter.log_id.clone(),
                    letter.seq,
                    self.spec.max_tries,
                );
                let after = self
                    .store
                    .call(move |s| s.replay_refused(&name, &log_id, seq, &reason, max))
                    .await?;
                match after {
                    Some(l) if l.queued => {
                        self.replay_wait(&letter.log_id);
                        Ok(false)
                    }
                    Some(l) => {
                        tracing::error!(sink = %self.spec.name, log = %l.log_id, seq = l.seq, tries = l.tries, "dead letter sent again was refused {max} times: back in the dead letters");
                        self.replay_waits.remove(&letter.log_id);
                        SinkStats::add(&self.stats.dead_letters, 1);
                        Ok(true)
                    }
                    None => Ok(true), // dropped meanwhile
                }
            }
        }
    }

    /// Removes `letter` from the dead letters (delivered, or nothing left to send).
    async fn remove(&mut self, letter: &DeadLetter) -> Result<(), StoreError> {
        let (name, log_id, seq) = (letter.sink.clone(), letter.log_id.clone(), letter.seq);
        self.store
            .call(move |s| {
                s.drop_dead_letters(&LetterChoice {
                    sink: &name,
                    log_id: Some(&log_id),
                    seqs: Some(&[seq]),
                })
            })
            .await
            .map(drop)
    }

    /// Starts (or doubles) the backoff of the replays in `log_id`.
    fn replay_wait(&mut self, log_id: &str) {
        let tries = self.replay_waits.get(log_id).map_or(0, |w| w.0) + 1;
        let until = Instant::now() + self.spec.backoff.after(tries);
        self.replay_waits.insert(log_id.to_string(), (tries, until));
    }
}
