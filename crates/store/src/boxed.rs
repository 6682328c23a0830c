//! A boxed store is a store: callers that choose the backend at run time (the CLI's `--db`,
//! the tests that run one suite against every backend) hold a `Box<dyn Store>` and hand it to
//! [`crate::Recorder::start`] like any other. Each role is forwarded for any boxed value of it,
//! so a `Box<dyn Read>` is a `Read` too, and `Box<dyn Store>` is a `Store` by the blanket impl.

use jiff::Timestamp;
use mcp_audit_core::pseudonym::Link;
use mcp_audit_core::tiles::Node;
use mcp_audit_core::{EventId, Hash};

use crate::error::StoreError;
use crate::expiry::{ExpiredEntry, Removal, Tombstone};
use crate::query::{
    CleanupReport, Filter, Page, Query, StoredEvent, Summary, SummaryScope, ToolStats,
};
use crate::store::{
    Append, Audit, DerivedCheck, Entry, LineageRow, Log, LogEntry, Maintain, ProofEntry, Read,
    Scrub,
};

impl<T: Log + ?Sized> Log for Box<T> {
    fn log_id(&self) -> &str {
        (**self).log_id()
    }

    fn next_seq(&mut self) -> Result<u64, StoreError> {
        (**self).next_seq()
    }
}

impl<T: Append + ?Sized> Append for Box<T> {
    fn append(&mut self, entries: &[Entry<'_>]) -> Result<(), StoreError> {
        (**self).append(entries)
    }

    fn append_unless_erased(
        &mut self,
        entries: &[Entry<'_>],
        erasures_seen: u64,
    ) -> Result<(), StoreError> {
        (**self).append_unless_erased(entries, erasures_seen)
    }

    fn settle(&mut self) -> Result<(), StoreError> {
        (**self).settle()
    }

    fn settle_all(&mut self) -> Result<(), StoreError> {
        (**self).settle_all()
    }

    fn spool_bytes(&self) -> Option<u64> {
        (**self).spool_bytes()
    }

    fn leaf_hashes(&mut self, from: u64) -> Result<Vec<Hash>, StoreError> {
        (**self).leaf_hashes(from)
    }

    fn latest_checkpoint(&mut self) -> Result<Option<(u64, Hash)>, StoreError> {
        (**self).latest_checkpoint()
    }

    fn put_checkpoint(&mut self, size: u64, root: &Hash, note: &str) -> Result<(), StoreError> {
        (**self).put_checkpoint(size, root, note)
    }

    fn pending_without_outcome(&mut self) -> Result<Vec<StoredEvent>, StoreError> {
        (**self).pending_without_outcome()
    }

    fn pseudonym_links(&mut self) -> Result<Vec<Link>, StoreError> {
        (**self).pseudonym_links()
    }

    fn pseudonym_erasures(&mut self) -> Result<u64, StoreError> {
        (**self).pseudonym_erasures()
    }

    fn leaf_range(&mut self, from: u64, to: u64) -> Result<Vec<Hash>, StoreError> {
        (**self).leaf_range(from, to)
    }

    fn tree_nodes(
        &mut self,
        level: u32,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Hash)>, StoreError> {
        (**self).tree_nodes(level, from, to)
    }

    fn put_tree_nodes(&mut self, nodes: &[Node]) -> Result<(), StoreError> {
        (**self).put_tree_nodes(nodes)
    }
}

impl<T: Read + ?Sized> Read for Box<T> {
    fn identity_of(&mut self, pseudonym: &str) -> Result<Option<String>, StoreError> {
        (**self).identity_of(pseudonym)
    }

    fn query(&mut self, query: &Query) -> Result<Page, StoreError> {
        (**self).query(query)
    }

    fn list(&mut self, query: &Query) -> Result<Page, StoreError> {
        (**self).list(query)
    }

    fn count_each(&mut self, filter: &Filter, operations: &[&str]) -> Result<Vec<u64>, StoreError> {
        (**self).count_each(filter, operations)
    }

    fn get(&mut self, id: EventId) -> Result<Option<StoredEvent>, StoreError> {
        (**self).get(id)
    }

    fn count(&mut self, filter: &Filter) -> Result<u64, StoreError> {
        (**self).count(filter)
    }

    fn for_each(
        &mut self,
        filter: &Filter,
        sink: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        (**self).for_each(filter, sink)
    }

    fn summary(&mut self, scope: &SummaryScope) -> Result<Summary, StoreError> {
        (**self).summary(scope)
    }

    fn summary_of_log(
        &mut self,
        scope: &SummaryScope,
        log_id: Option<&str>,
    ) -> Result<Summary, StoreError> {
        (**self).summary_of_log(scope, log_id)
    }

    fn tool_stats(&mut self, filter: &Filter) -> Result<Vec<ToolStats>, StoreError> {
        (**self).tool_stats(filter)
    }
}

impl<T: Audit + ?Sized> Audit for Box<T> {
    fn derived_check(
        &mut self,
        parallel: bool,
    ) -> Result<Option<Box<dyn DerivedCheck>>, StoreError> {
        (**self).derived_check(parallel)
    }

    fn tombstones(&mut self, from: u64, to: u64) -> Result<Vec<Tombstone>, StoreError> {
        (**self).tombstones(from, to)
    }

    fn scan_log(
        &mut self,
        from: u64,
        to: u64,
        sink: &mut dyn FnMut(&LogEntry<'_>) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        (**self).scan_log(from, to, sink)
    }

    fn another_reader(&self) -> Result<Option<Box<dyn Audit>>, StoreError> {
        (**self).another_reader()
    }

    fn checkpoints(&mut self) -> Result<Vec<(u64, String)>, StoreError> {
        (**self).checkpoints()
    }

    fn proof_entry(&mut self, id: EventId) -> Result<Option<ProofEntry>, StoreError> {
        (**self).proof_entry(id)
    }

    fn scan_lineage(
        &mut self,
        from: u64,
        to: u64,
        sink: &mut dyn FnMut(&LineageRow<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        (**self).scan_lineage(from, to, sink)
    }
}

impl<T: Maintain + ?Sized> Maintain for Box<T> {
    fn count_expired(&mut self, now: Timestamp) -> Result<CleanupReport, StoreError> {
        (**self).count_expired(now)
    }

    fn expired_entries(&mut self, now: Timestamp) -> Result<Vec<ExpiredEntry>, StoreError> {
        (**self).expired_entries(now)
    }

    fn remove_expired(&mut self, removal: &Removal<'_>) -> Result<CleanupReport, StoreError> {
        (**self).remove_expired(removal)
    }

    fn erase_payload(&mut self, id: EventId) -> Result<bool, StoreError> {
        (**self).erase_payload(id)
    }

    fn scrub(&mut self) -> Result<Scrub, StoreError> {
        (**self).scrub()
    }

    fn outcomes_of(&mut self, intent: EventId) -> Result<Vec<EventId>, StoreError> {
        (**self).outcomes_of(intent)
    }

    fn links_of(&mut self, identity: &str) -> Result<Vec<Link>, StoreError> {
        (**self).links_of(identity)
    }

    fn forget_pseudonyms(&mut self, pseudonyms: &[String]) -> Result<u64, StoreError> {
        (**self).forget_pseudonyms(pseudonyms)
    }
}
