//! Tamper evidence over a log in any backend: signing checkpoints, and verifying that the rows as
//! stored are the log that was signed (erasing payloads is `crate::erasure`).
//!
//! `verify` trusts nothing in the database: it recomputes every event's metadata digest from
//! `meta`, its payload commitment from `payloads` (absent: `redacted` if an erasure event
//! accounts for it, else `missing_payload`), its leaf from its seq, rebuilds the tree, and
//! checks each stored checkpoint's signature and root. What an attacker with write access can
//! still do undetected is append valid-looking entries after the last checkpoint, or cut the
//! tail together with the checkpoints that cover it: outside copies of the checkpoints
//! (`--checkpoint-out`, checked with `outside`) close that gap.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use mcp_audit_core::checkpoint::{Checkpoint, NoteSigner, NoteVerifier};
use mcp_audit_core::seal::{leaf_hash, meta_digest, payload_commitment};
use mcp_audit_core::{EventId, Hash, merkle, tiles};
use serde::Serialize;

use crate::error::StoreError;
use crate::event_columns::{self, EVENT_COLUMNS};
use crate::expiry::{CLEANUP_OPERATION, CleanupRecord, SeqRange, Tombstone};
use crate::indexed;
use crate::lineage::{self, LineageHashes};
use crate::store::{Append, Audit, IndexedColumns, LogEntry, Store, Tally};
use crate::tree::TreeSource;

/// What is wrong with one entry, or with the log as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Finding {
    /// The metadata no longer hashes to the entry's leaf.
    ModifiedMetadata { seq: u64 },
    /// An indexed column disagrees with the hashed metadata (queries would be misled).
    ModifiedColumn { seq: u64, column: &'static str },
    /// The payload no longer matches its commitment.
    ModifiedPayload { seq: u64 },
    /// The entry's leaf belongs at another position: entries were moved.
    Reordered { seq: u64, belongs_at: u64 },
    /// No entry at this position, below the log's size, and no tombstone that a cleanup record
    /// in the log vouches for (see [`crate::expiry`]): the entry was deleted some other way.
    MissingEntry { seq: u64 },
    /// An entry at or past the log's recorded size.
    ExtraEntry { seq: u64 },
    /// A checkpoint's root differs from the root of the entries it covers.
    CheckpointMismatch { size: u64 },
    /// A checkpoint covers more entries than the log has: its tail was cut.
    TruncatedTail { checkpoint_size: u64, log_size: u64 },
    /// A checkpoint whose signature does not verify with the given key.
    BadSignature { size: u64, problem: String },
    /// The backend's lookup index (sessions, users) disagrees with the events below
    /// `below`: a key was deleted, added or changed, so keyed queries would be misled.
    LookupIndex { below: u64 },
    /// The backend's running totals per session and user, which their summaries read,
    /// disagree with the events below `below`: a summary would be misled.
    KeyTotals { below: u64 },
    /// A stored interior node of the tree (the root of the `2^level` entries from
    /// `index * 2^level` on) is not the root of those entries: proofs that pass through it
    /// fail (none can be forged with it, since a proof is checked against a signed root).
    TreeNode { level: u32, index: u64 },
    /// The entry has no payload and no erasure event accounts for it: the payload was
    /// deleted behind the log's back (see `erasure`).
    MissingPayload { seq: u64 },
    /// The entry's rows in `table` (`data_sources` or `compliance_events`) are not the copies
    /// of its hashed metadata's list: a row was edited, added or deleted.
    ModifiedLineage { seq: u64, table: &'static str },
    /// A key was given, but there is no checkpoint at all, stored or outside: nothing of the
    /// log was checked against a signature (all checkpoints deleted from a rewritten log). A
    /// checkpoint that is there but does not open with the key is a `BadSignature`.
    NoSignedCheckpoint,
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Entries read.
    pub entries: u64,
    /// Entries whose payload was erased, as an erasure event records (still proven).
    pub redacted: u64,
    /// Entries a cleanup run removed when their retention ran out, each with a tombstone that
    /// keeps its leaf and a record of the run in the log (still part of every proof).
    pub expired: u64,
    /// Those entries by the cleanup run that removed them.
    pub expiries: Vec<Expiry>,
    /// Checkpoints whose signature and root were checked and hold.
    pub checkpoints_verified: u64,
    /// The size of the largest verified checkpoint: entries past it are not yet covered.
    pub covered: u64,
    pub findings: Vec<Finding>,
    /// The gap events of the log (see [`crate::gap_size`]): records its writer lost while the
    /// store refused writes, and said so in the log. Not damage (the log is intact), but a
    /// hole a reader must know of.
    pub gaps: Vec<Gap>,
}

/// A gap event found by [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The gap event's place in the log.
    pub seq: u64,
    /// How many records it says were lost before it.
    pub lost: u64,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }
}

/// The entries one cleanup run removed, as `verify` found them lawfully gone: a tombstone each,
/// listed by the run's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiry {
    /// The seq of the cleanup run's event.
    pub cleanup_seq: u64,
    pub entries: u64,
    pub ranges: Vec<SeqRange>,
}

/// A checkpoint as kept outside the database: one JSON object per line.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct OutsideCheckpoint {
    pub size: u64,
    pub note: String,
}

/// Logs at least this long are read in parts on two threads, when the backend can open
/// another reader: recomputing the hashes costs about as much as reading the rows.
const PARALLEL_FROM: u64 = 65_536;

/// Recomputes and checks everything; `progress` is called with the number of entries read.
///
/// A cleanup that runs meanwhile may remove entries between the moment the tombstones are read
/// and the moment the rows are: when entries came out missing and tombstones for some of them
/// have appeared since, the log is verified once more.
pub fn verify(
    store: &mut (impl Store + ?Sized),
    verifier: Option<&NoteVerifier>,
    outside: &[OutsideCheckpoint],
    progress: &mut dyn FnMut(u64),
) -> Result<Report, StoreError> {
    let (report, bare) = verify_once(store, verifier, outside, progress)?;
    for range in SeqRange::runs(bare) {
        if !store.tombstones(range.start, range.end)?.is_empty() {
            return Ok(verify_once(store, verifier, outside, progress)?.0);
        }
    }
    Ok(report)
}

/// [`verify`], once; also returns the seqs that neither a row nor a tombstone held.
fn verify_once(
    store: &mut (impl Store + ?Sized),
    verifier: Option<&NoteVerifier>,
    outside: &[OutsideCheckpoint],
    progress: &mut dyn FnMut(u64),
) -> Result<(Report, Vec<u64>), StoreError> {
    let mut report = Report::default();
    let log_size = store.next_seq()?;
    let read = AtomicU64::new(0);
    // Checkpoints: the stored ones, then the outside copies.
    let mut notes = store.checkpoints()?;
    notes.extend(outside.iter().map(|o| (o.size, o.note.clone())));
    dedup_notes(&mut notes);
    let no_checkpoint = notes.is_empty();
    // Opened first: the readers compute the tree's root at each checkpoint's size as they go.
    let mut opened: Vec<Checkpoint> = Vec::new();
    for (size, note) in notes {
        let checkpoint = match verifier {
            Some(v) => match v.open(&note) {
                Ok(c) => c,
                Err(e) => {
                    report.findings.push(Finding::BadSignature {
                        size,
                        problem: e.to_string(),
                    });
                    continue;
                }
            },
            None => match note
                .split_once("\n\n")
                .map(|(b, _)| Checkpoint::parse_body(&format!("{b}\n")))
            {
                Some(Ok(c)) => c,
                _ => {
                    report.findings.push(Finding::BadSignature {
                        size,
                        problem: "unreadable note".into(),
                    });
                    continue;
                }
            },
        };
        if checkpoint.size > log_size {
            report.findings.push(Finding::TruncatedTail {
                checkpoint_size: checkpoint.size,
                log_size,
            });
            continue;
        }
        opened.push(checkpoint);
    }
    if verifier.is_some() && no_checkpoint {
        report.findings.push(Finding::NoSignedCheckpoint);
    }
    let sizes: HashSet<u64> = opened.iter().map(|c| c.size).collect();

    // Keyed afresh for this run (see `lineage`).
    let state = RandomState::new();
    let long = log_size >= PARALLEL_FROM;
    // The backend's own derived data as it stands before the entries are read, and a tally
    // of the entries for it per thread (see `Audit::derived_check`).
    let derived = store.derived_check(long)?;
    let mut first_tally = derived.as_ref().map(|check| check.tally());
    let mut rest_tally = derived.as_ref().map(|check| check.tally());
    let second = if long { store.another_reader()? } else { None };

    // Each entry checked on its own; a long log in parts on two threads (see `part_starts`):
    // the first part on this one, the others on the second.
    let starts = match second {
        Some(_) => part_starts(log_size),
        None => Vec::new(),
    };
    let (first, rest) = match second {
        Some(mut other) => std::thread::scope(|scope| {
            let read = &read;
            let state = &state;
            let sizes = &sizes;
            let starts = &starts;
            let rest_tally = &mut rest_tally;
            let rest = scope.spawn(move || {
                let quiet = &mut |_| {};
                let ends = starts.iter().skip(1).copied().chain([u64::MAX]);
                starts
                    .iter()
                    .zip(ends)
                    .map(|(&from, to)| {
                        let at = Range::new(from, to, log_size);
                        check_range(&mut *other, at, state, rest_tally, sizes, read, quiet)
                    })
                    .collect::<Result<Vec<_>, _>>()
            });
            let at = Range::new(0, starts[0], log_size);
            let tally = &mut first_tally;
            let first = check_range(store, at, state, tally, sizes, read, progress);
            let failed = || StoreError::Database("a verifying thread failed".into());
            let rest = rest.join().unwrap_or_else(|_| Err(failed()));
            (first, rest)
        }),
        None => {
            let at = Range::new(0, u64::MAX, log_size);
            let tally = &mut first_tally;
            (
                check_range(store, at, &state, tally, &sizes, &read, progress),
                Ok(Vec::new()),
            )
        }
    };

    // Then across entries: the backend's derived data, and what is missing, extra or moved.
    let (first, rest) = (first?, rest?);
    if let Some(check) = derived {
        let tallies = [first_tally, rest_tally].into_iter().flatten().collect();
        report.findings.extend(check.finish(tallies)?);
    }
    let mut complete = true;
    let mut stored = Vec::new();
    let mut payloadless = Vec::new();
    let mut nodes: HashMap<(u32, u64), Hash> = HashMap::new();
    // Roots at checkpoint sizes: the first part's as they are, each later part's joined to the
    // root of everything before it, a perfect subtree (RFC 9162 §2.1.1: the left subtree is the
    // largest power of two below the size). Where the parts joined so far make a subtree at a
    // level the store keeps, that is a node no part completed on its own.
    let mut roots: HashMap<u64, Hash> = first.roots.iter().copied().collect();
    let mut left = first.end_root;
    let ends = starts.iter().skip(1).copied().chain([log_size]);
    for (part, end) in rest.iter().zip(ends) {
        roots.extend(
            part.roots
                .iter()
                .map(|&(size, right)| (size, merkle::node_hash(&left, &right))),
        );
        left = merkle::node_hash(&left, &part.end_root);
        let level = end.trailing_zeros();
        if end.is_power_of_two() && level % tiles::TILE_HEIGHT == 0 {
            nodes.insert((level, 0), left);
        }
    }
    let mut bare = Vec::new();
    let mut tombstoned = Vec::new();
    let mut records = HashMap::new();
    for part in std::iter::once(first).chain(rest) {
        nodes.extend(part.nodes.iter().map(|n| ((n.level, n.index), n.hash)));
        report.entries += part.entries;
        payloadless.extend(part.payloadless);
        report.findings.extend(part.findings);
        report.gaps.extend(part.gaps);
        complete &= part.missing.is_empty();
        bare.extend(part.missing);
        tombstoned.extend(part.tombstoned);
        records.extend(part.records);
        stored.extend(part.mismatched);
    }
    report
        .findings
        .extend(bare.iter().map(|&seq| Finding::MissingEntry { seq }));
    judge_tombstones(&tombstoned, &records, &mut report);
    let (redacted, unaccounted) = crate::erasure::judge_missing_payloads(store, &payloadless)?;
    report.redacted = redacted;
    report.findings.extend(unaccounted);
    // Entries whose leaf is not the stored one: the nodes over them are not checked (their
    // finding is the entry's own).
    let mut moved: Vec<u64> = stored.iter().map(|m| m.0).collect();
    moved.sort_unstable();
    // A leaf that is right for another position means the entry was moved, not edited.
    for (seq, stored_leaf, digest, commitment) in stored {
        let lo = seq.saturating_sub(1024);
        let hi = (seq + 1024).min(log_size);
        match (lo..hi).find(|&k| k != seq && leaf_hash(k, &digest, &commitment) == stored_leaf) {
            Some(k) => report
                .findings
                .push(Finding::Reordered { seq, belongs_at: k }),
            None => report.findings.push(Finding::ModifiedMetadata { seq }),
        }
    }

    if complete {
        report
            .findings
            .extend(check_nodes(store, &nodes, &moved, log_size)?);
        for checkpoint in &opened {
            if roots.get(&checkpoint.size) != Some(&checkpoint.root) {
                report.findings.push(Finding::CheckpointMismatch {
                    size: checkpoint.size,
                });
            } else if verifier.is_some() {
                report.checkpoints_verified += 1;
                report.covered = report.covered.max(checkpoint.size);
            }
        }
    }
    report.findings.sort_by_key(finding_seq);
    report.findings.dedup();
    progress(report.entries);
    Ok((report, bare))
}

/// Sorts the removed entries (tombstones that stood in for a missing row: seq and the seq of
/// the cleanup event they name) into the lawfully expired, counted by cleanup run, and the
/// rest, which are missing entries: those whose named event is no intact cleanup record after
/// them listing their seq (see [`crate::expiry`]).
fn judge_tombstones(
    tombstoned: &[(u64, u64)],
    records: &HashMap<u64, CleanupRecord>,
    report: &mut Report,
) {
    let mut by_run: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
    for &(seq, removed_by) in tombstoned {
        match records.get(&removed_by) {
            Some(record) if removed_by > seq && record.lists(seq) => {
                by_run.entry(removed_by).or_default().push(seq);
            }
            _ => report.findings.push(Finding::MissingEntry { seq }),
        }
    }
    for (cleanup_seq, mut seqs) in by_run {
        seqs.sort_unstable();
        report.expired += seqs.len() as u64;
        report.expiries.push(Expiry {
            cleanup_seq,
            entries: seqs.len() as u64,
            ranges: SeqRange::runs(seqs),
        });
    }
}

/// Where the parts of a long log begin after the first (which begins at 0): the second thread
/// reads them one after the other while the first reads the first part. Every part but the
/// last is a perfect subtree, so that a root past it is the root of the parts before joined to
/// its own. Two parts meet at the largest power of two below the log's size; when the last
/// part would then be under half the first, the first is halved too, so that the two threads
/// get similar shares (a log of 300,000 entries was read 262,144 to 37,856).
fn part_starts(log_size: u64) -> Vec<u64> {
    let top = 1u64 << (63 - (log_size - 1).leading_zeros());
    if log_size - top < top / 2 {
        vec![top / 2, top]
    } else {
        vec![top]
    }
}

/// The seqs one reader checks: `from..to`, of a log of `log_size` entries.
#[derive(Clone, Copy)]
struct Range {
    from: u64,
    to: u64,
    log_size: u64,
}

impl Range {
    fn new(from: u64, to: u64, log_size: u64) -> Range {
        Range { from, to, log_size }
    }
}

/// What one range of the log holds, entry by entry. Its leaves go into a Merkle frontier as
/// they are read, not into memory: a long log costs no memory per entry.
#[derive(Default)]
struct Checked {
    entries: u64,
    /// Entries without a payload (seq, id column): redacted if an erasure event accounts for
    /// them, else a finding (see `erasure::judge_missing_payloads`).
    payloadless: Vec<(u64, [u8; 16])>,
    /// Its entries' lineage and compliance rows as their metadata gives them (see `lineage`).
    lineage: LineageHashes,
    /// Seqs below the log's size that neither a row nor a tombstone holds.
    missing: Vec<u64>,
    /// Seqs that no row holds but a tombstone does, with the seq of the cleanup event it names
    /// (judged against the records once every part is read: `judge_tombstones`).
    tombstoned: Vec<(u64, u64)>,
    /// The cleanup records of its intact entries, by seq.
    records: Vec<(u64, CleanupRecord)>,
    /// Extra entries, modified payloads and columns.
    findings: Vec<Finding>,
    gaps: Vec<Gap>,
    /// Entries whose stored leaf is not the recomputed one: seq, stored leaf, metadata digest,
    /// commitment (to tell a moved entry from an edited one).
    mismatched: Vec<(u64, Hash, Hash, Hash)>,
    /// The root of the range's own tree (its leaves from `from` on) at each checkpoint size
    /// that falls in it, keyed by the log size it stands for; meaningless when entries are
    /// missing.
    roots: Vec<(u64, Hash)>,
    /// The root of the range's own tree over all its leaves.
    end_root: Hash,
    /// The interior nodes its leaves complete at the levels a store keeps (see
    /// [`tiles::TILE_HEIGHT`]), indexed in the whole log's tree.
    nodes: Vec<tiles::Node>,
}

/// How many records the entry with these columns says were lost, when it is a gap event. Read
/// from the columns (compared with the hashed metadata by the column check), so that the hot
/// path parses no JSON.
fn gap_in(columns: &crate::store::IndexedColumns<'_>) -> Option<u64> {
    if columns.kind() != b"protocol" || columns.operation() != crate::GAP_OPERATION.as_bytes() {
        return None;
    }
    std::str::from_utf8(columns.resource_id()?)
        .ok()?
        .parse()
        .ok()
}

/// Checks each entry of `at`, pushing its leaf onto the range's own tree and noting the root
/// at each of `sizes` (log sizes) that falls in the range, and counting into `read`; also
/// hands each entry to the backend's `tally` of its derived data.
fn check_range(
    store: &mut (impl Audit + ?Sized),
    at: Range,
    state: &RandomState,
    tally: &mut Option<Box<dyn Tally>>,
    sizes: &HashSet<u64>,
    read: &AtomicU64,
    progress: &mut dyn FnMut(u64),
) -> Result<Checked, StoreError> {
    let mut out = Checked::default();
    let end = at.to.min(at.log_size);
    let mut next = at.from;
    let mut tree = RangeTree {
        at,
        sizes,
        frontier: merkle::Frontier::new(),
    };
    if sizes.contains(&at.from) && at.from == 0 {
        out.roots.push((0, tree.frontier.root()));
    }
    // Read before the rows: a tombstone is never deleted, so one that a cleanup writes while
    // the rows are read is at worst missed (see `verify`), never wrong.
    let mut tombstones = store.tombstones(at.from, end)?.into_iter().peekable();
    store.scan_log(at.from, at.to, &mut |entry| {
        let seq = entry.seq;
        out.entries += 1;
        if out.entries % 65_536 == 0 {
            progress(read.fetch_add(65_536, Ordering::Relaxed) + 65_536);
        }
        if seq < at.from || seq >= end {
            out.findings.push(Finding::ExtraEntry { seq });
            return Ok(());
        }
        fill_gap(next..seq, &mut tombstones, &mut tree, &mut out);
        next = seq + 1;
        if let Some(tally) = tally {
            tally.entry(entry);
        }
        if let Some(lost) = gap_in(&entry.columns) {
            out.gaps.push(Gap { seq, lost });
        }
        let (leaf, has_lineage) = check_entry(entry, &mut out);
        if has_lineage {
            lineage::expect(state, seq, entry.meta, &mut out.lineage);
        }
        if entry.columns.kind() == b"admin"
            && entry.columns.operation() == CLEANUP_OPERATION.as_bytes()
            && Hash::from_slice(entry.leaf_hash) == Some(leaf)
            && let Some(record) = CleanupRecord::from_meta(entry.meta)
        {
            out.records.push((seq, record));
        }
        tree.push(leaf, &mut out);
        Ok(())
    })?;
    fill_gap(next..end, &mut tombstones, &mut tree, &mut out);
    out.end_root = tree.frontier.root();
    let rows = lineage::stored(store, state, at.from, at.to)?;
    out.findings
        .extend(lineage::compare(&std::mem::take(&mut out.lineage), &rows));
    read.fetch_add(out.entries % 65_536, Ordering::Relaxed);
    Ok(out)
}

/// The tree of one range's leaves, noting in a [`Checked`] the nodes it completes and its
/// roots at the checkpoint sizes.
struct RangeTree<'a> {
    at: Range,
    /// The checkpoint sizes (log sizes) whose roots are wanted.
    sizes: &'a HashSet<u64>,
    frontier: merkle::Frontier,
}

impl RangeTree<'_> {
    fn push(&mut self, leaf: Hash, out: &mut Checked) {
        // The range starts at a multiple of every level it completes (0, or the power of two
        // a part begins at), so a node's index in the range's tree shifts by a whole number.
        let from = self.at.from;
        self.frontier.push_reporting(leaf, &mut |node| {
            out.nodes.push(tiles::Node {
                index: (from >> node.level) + node.index,
                ..node
            });
        });
        let size = from + self.frontier.size();
        if self.sizes.contains(&size) {
            out.roots.push((size, self.frontier.root()));
        }
    }
}

/// The seqs of `gap`, which no row holds: a tombstone's leaf goes into the tree in place of a
/// removed entry's (whether it was removed lawfully is judged later); a seq with no tombstone is
/// missing. Tombstones before the gap (beside a row that is there) are passed over.
fn fill_gap(
    gap: std::ops::Range<u64>,
    tombstones: &mut std::iter::Peekable<std::vec::IntoIter<Tombstone>>,
    tree: &mut RangeTree<'_>,
    out: &mut Checked,
) {
    for seq in gap {
        while tombstones.next_if(|t| t.seq < seq).is_some() {}
        match tombstones.next_if(|t| t.seq == seq) {
            Some(t) => {
                out.tombstoned.push((seq, t.removed_by));
                tree.push(t.leaf_hash, out);
            }
            None => out.missing.push(seq),
        }
    }
}

/// Compares the interior nodes the store keeps with `computed` (the nodes the entries' own
/// leaves give, by level and index), for every node of a log of `log_size` entries that covers
/// none of the `moved` seqs (sorted; entries whose leaf is not the stored one). A node the
/// store lacks is no finding: proofs recompute and store it again.
fn check_nodes(
    store: &mut (impl Append + ?Sized),
    computed: &HashMap<(u32, u64), Hash>,
    moved: &[u64],
    log_size: u64,
) -> Result<Vec<Finding>, StoreError> {
    let mut findings = Vec::new();
    let mut level = tiles::TILE_HEIGHT;
    while level < 64 && (1u64 << level) <= log_size {
        for (index, hash) in store.tree_nodes(level, 0, log_size >> level)? {
            let (first, end) = (index << level, (index + 1) << level);
            let over_moved =
                moved.partition_point(|&s| s < first) < moved.partition_point(|&s| s < end);
            if !over_moved && computed.get(&(level, index)) != Some(&hash) {
                findings.push(Finding::TreeNode { level, index });
            }
        }
        level += tiles::TILE_HEIGHT;
    }
    Ok(findings)
}

/// Checks one entry on its own, noting what is wrong with it in `out`; returns its leaf as
/// recomputed from the row, and whether its metadata lists data sources or compliance events
/// (whose rows `lineage` then expects).
fn check_entry(entry: &LogEntry<'_>, out: &mut Checked) -> (Hash, bool) {
    let seq = entry.seq;
    let commitment = Hash::from_slice(entry.commitment).unwrap_or_default();
    let stored_leaf = Hash::from_slice(entry.leaf_hash).unwrap_or_default();
    match entry.payload {
        None => {
            let id = entry.columns.id().try_into().unwrap_or([0; 16]);
            out.payloadless.push((seq, id));
        }
        Some((salt, body)) => {
            let salt: [u8; 32] = salt.try_into().unwrap_or([0; 32]);
            if payload_commitment(&salt, body) != commitment {
                out.findings.push(Finding::ModifiedPayload { seq });
            }
        }
    }
    let digest = meta_digest(entry.meta.as_bytes());
    let leaf = leaf_hash(seq, &digest, &commitment);
    if leaf != stored_leaf {
        out.mismatched.push((seq, stored_leaf, digest, commitment));
        // Not the metadata that was hashed, and not read for columns: looked at the slow way.
        return (leaf, lineage::mentioned(entry.meta));
    }
    // Read once for the column check and for whether it has lineage (which costs nothing more:
    // the lists are skipped unread here, as any field without a column copy is).
    let m = indexed::read(entry.meta);
    let has_lineage = m.as_ref().is_some_and(indexed::Indexed::has_lineage);
    if let Some(column) = column_mismatch(m, &entry.columns) {
        out.findings.push(Finding::ModifiedColumn { seq, column });
    }
    (leaf, has_lineage)
}

fn finding_seq(f: &Finding) -> u64 {
    match f {
        Finding::ModifiedMetadata { seq }
        | Finding::ModifiedColumn { seq, .. }
        | Finding::ModifiedPayload { seq }
        | Finding::Reordered { seq, .. }
        | Finding::MissingEntry { seq }
        | Finding::ExtraEntry { seq }
        | Finding::MissingPayload { seq }
        | Finding::ModifiedLineage { seq, .. } => *seq,
        Finding::NoSignedCheckpoint => 0,
        Finding::CheckpointMismatch { size } | Finding::BadSignature { size, .. } => *size,
        Finding::LookupIndex { below } | Finding::KeyTotals { below } => *below,
        Finding::TreeNode { level, index } => index << level,
        Finding::TruncatedTail {
            checkpoint_size, ..
        } => *checkpoint_size,
    }
}

/// The first column copy that disagrees with the hashed metadata, each compared with the
/// value the writers derive from it: a loop over the column table, whose `expected` says what
/// each copied column should hold (`write/event_columns.rs`).
fn column_mismatch(
    m: Option<indexed::Indexed<'_>>,
    columns: &IndexedColumns<'_>,
) -> Option<&'static str> {
    if let Some(column) = columns.malformed {
        return Some(column);
    }
    let Some(m) = m else {
        return Some("meta");
    };
    EVENT_COLUMNS
        .iter()
        .zip(&columns.cells)
        .find(|(column, cell)| {
            column
                .expected
                .is_some_and(|expected| !event_columns::matches(**cell, expected(&m)))
        })
        .map(|(column, _)| column.name)
}

/// Runs `f` with a subtree source over `store`, then stores the nodes it had to recompute.
fn with_tree<S: Append + ?Sized, T>(
    store: &mut S,
    f: impl FnOnce(&mut dyn FnMut(u64, u32) -> Result<Hash, StoreError>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut source = TreeSource::new(store);
    let result = f(&mut |start, height| source.subtree(start, height));
    source.finish();
    result
}

/// Signs a checkpoint of the whole log as it is now, stores it, and returns it. Refuses to sign
/// a tree that does not extend the previous checkpoint (the stored leaves were changed since).
pub fn sign_checkpoint(
    store: &mut (impl Append + ?Sized),
    signer: &NoteSigner,
    origin: &str,
) -> Result<OutsideCheckpoint, StoreError> {
    let size = store.next_seq()?;
    let latest = store.latest_checkpoint()?;
    let root = with_tree(store, |source| {
        if let Some((old, old_root)) = latest
            && (old > size || tiles::range_root(0, old, source)? != old_root)
        {
            return Err(StoreError::Database(format!(
                "refusing to sign: the log no longer extends the checkpoint of size {old} (run `mcp-audit verify`)"
            )));
        }
        tiles::range_root(0, size, source)
    })?;
    let checkpoint = Checkpoint {
        origin: origin.to_string(),
        size,
        root,
    };
    let note = signer.sign(&checkpoint);
    store.put_checkpoint(checkpoint.size, &checkpoint.root, &note)?;
    Ok(OutsideCheckpoint {
        size: checkpoint.size,
        note,
    })
}

/// Every signed note once: the same checkpoint stored and kept outside (or given in two
/// files) is one checkpoint, and counts once.
fn dedup_notes(notes: &mut Vec<(u64, String)>) {
    let mut seen = HashSet::new();
    notes.retain(|(_, note)| seen.insert(note.clone()));
}

/// Groups findings by kind for a one-line summary.
pub fn summary(report: &Report) -> HashMap<&'static str, usize> {
    let mut m = HashMap::new();
    for f in &report.findings {
        let name = match f {
            Finding::ModifiedMetadata { .. } => "modified metadata",
            Finding::ModifiedColumn { .. } => "modified column",
            Finding::ModifiedPayload { .. } => "modified payload",
            Finding::Reordered { .. } => "reordered",
            Finding::MissingEntry { .. } => "missing entry",
            Finding::ExtraEntry { .. } => "extra entry",
            Finding::LookupIndex { .. } => "lookup index mismatch",
            Finding::KeyTotals { .. } => "summary totals mismatch",
            Finding::TreeNode { .. } => "tree node mismatch",
            Finding::CheckpointMismatch { .. } => "checkpoint mismatch",
            Finding::TruncatedTail { .. } => "truncated tail",
            Finding::BadSignature { .. } => "bad signature",
            Finding::MissingPayload { .. } => "payload deleted without an erasure record",
            Finding::ModifiedLineage { .. } => "modified lineage or compliance row",
            Finding::NoSignedCheckpoint => "no signed checkpoint",
        };
        *m.entry(name).or_default() += 1;
    }
    m
}

/// An inclusion proof of the event `id` under the latest stored checkpoint that covers it.
///
/// Reads O(log n) stored interior nodes (see [`mcp_audit_core::tiles`]), not the whole log.
pub fn prove(
    store: &mut (impl Append + Audit + ?Sized),
    id: EventId,
) -> Result<mcp_audit_core::proof::InclusionProof, StoreError> {
    let Some(entry) = store.proof_entry(id)? else {
        return Err(StoreError::Database(format!("no event with id {id}")));
    };
    let seq = entry.seq;
    let Some((size, note)) = store
        .checkpoints()?
        .into_iter()
        .filter(|(size, _)| *size > seq)
        .max_by_key(|(size, _)| *size)
    else {
        return Err(StoreError::Database(format!(
            "no checkpoint covers event {id} (seq {seq}) yet: run `mcp-audit checkpoint` first"
        )));
    };
    let path = with_tree(store, |source| tiles::inclusion_proof(seq, size, source))?
        .ok_or_else(|| StoreError::Database(format!("seq {seq} is outside the tree of {size}")))?;
    Ok(mcp_audit_core::proof::InclusionProof {
        seq,
        meta: entry.meta,
        commitment: entry.commitment,
        payload: entry
            .payload
            .map(|(salt, body)| mcp_audit_core::proof::ProvenPayload {
                salt: hex::encode(salt),
                body,
            }),
        tree_size: size,
        path,
        checkpoint: note,
    })
}

/// A consistency proof between two checkpoint sizes of this log (RFC 9162 §2.1.4), from the
/// stored nodes and leaves.
pub fn consistency(
    store: &mut (impl Append + ?Sized),
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, StoreError> {
    let log_size = store.next_seq()?;
    if new_size > log_size {
        return Err(StoreError::Database(format!(
            "the log has {log_size} entries, fewer than the newer checkpoint's {new_size}"
        )));
    }
    with_tree(store, |source| {
        tiles::consistency_proof(old_size, new_size, source)
    })?
    .ok_or_else(|| {
        StoreError::Database(format!(
            "no consistency proof from size {old_size} to {new_size}"
        ))
    })
}
