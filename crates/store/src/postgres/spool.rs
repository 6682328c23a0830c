//! The local spool: where a `batch`-mode writer puts entries while PostgreSQL is unreachable,
//! so that the proxy keeps working, and from where they are replayed, in order, once it is back.
//!
//! One file per log (`<hex of the log id>.spool`) in the spool directory, made only of appended
//! records, each fsynced before the writer reports the batch written: a crash loses nothing, and
//! the next writer that opens the same directory replays what it finds. A record is
//!
//! ```text
//! len u32 BE | seq u64 BE | leaf_hash 32 | salt 32 | commitment 32 | meta_digest 32
//!            | meta_len u32 BE | meta JSON | [links_len u32 BE | links JSON] | personal JSON
//! ```
//!
//! The links are the pseudonym → identity rows drawn for the identities the event is the
//! first to name (see `mcp_audit_core::pseudonym`): replayed in the same transaction as the
//! event, as a direct write stores them, so that an identity first met during an outage is
//! still resolved once the entries are in the database. They are present when the top bit of
//! `meta_len` is set (a JSON array of `[pseudonym, field, identity]`); a record without them
//! (every record of a build from before) has it clear and reads as it always did.
//!
//! A record cut short by a crash mid-write was never acknowledged; reading stops before it.
//! Fields added to the event (its receive time) travel inside the metadata JSON, so records
//! written before them read as they are.
//! The file is bounded: past `max_bytes`, the writer waits for the database instead.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use mcp_audit_core::pseudonym::{IdentityField, Link};
use mcp_audit_core::{Hash, SealedEvent, unseal};

use crate::error::StoreError;
use crate::store::Entry;

/// Where and how much to spool.
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    /// The directory of the spool files (created if missing). Give each host its own.
    pub dir: PathBuf,
    /// At most this many bytes per log; past it, writes wait for the database.
    pub max_bytes: u64,
}

impl SpoolOptions {
    /// A spool in `dir` of at most 256 MiB per log.
    pub fn new(dir: impl Into<PathBuf>) -> SpoolOptions {
        SpoolOptions {
            dir: dir.into(),
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// An entry read back from a spool file.
pub(super) struct Spooled {
    pub(super) seq: u64,
    pub(super) leaf_hash: Hash,
    pub(super) sealed: SealedEvent,
}

impl Spooled {
    pub(super) fn entry(&self) -> Entry<'_> {
        Entry {
            seq: self.seq,
            leaf_hash: self.leaf_hash,
            sealed: &self.sealed,
        }
    }
}

/// One log's spool file.
pub(super) struct Spool {
    path: PathBuf,
    max_bytes: u64,
    /// Bytes in the file (0: nothing waits).
    len: u64,
    /// The seq after the last spooled entry.
    next_seq: Option<u64>,
}

/// The file name of `log_id`'s spool: hex, so that any log id makes a safe name.
fn file_name(log_id: &str) -> String {
    format!("{}.spool", hex::encode(log_id.as_bytes()))
}

/// The spool files in `dir` other than `own`, with the log id each belongs to.
pub(super) fn others(dir: &Path, own: &str) -> Result<Vec<(String, PathBuf)>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_error(dir, e))?.path();
        let log_id = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".spool"))
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| String::from_utf8(b).ok());
        if let Some(log_id) = log_id
            && log_id != own
        {
            found.push((log_id, path));
        }
    }
    found.sort();
    Ok(found)
}

fn io_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Open {
        path: path.to_path_buf(),
        reason: format!("spool: {e}"),
    }
}

impl Spool {
    /// The spool of `log_id` in `options.dir`; reads what an earlier run left behind.
    pub(super) fn open(options: &SpoolOptions, log_id: &str) -> Result<Spool, StoreError> {
        crate::files::create_private_dir_all(&options.dir)
            .map_err(|e| io_error(&options.dir, e))?;
        Spool::at(options.dir.join(file_name(log_id)), options.max_bytes)
    }

    /// The spool file at `path` (which may not exist).
    pub(super) fn at(path: PathBuf, max_bytes: u64) -> Result<Spool, StoreError> {
        let mut spool = Spool {
            path,
            max_bytes,
            len: 0,
            next_seq: None,
        };
        let entries = spool.read()?;
        spool.len = std::fs::metadata(&spool.path).map(|m| m.len()).unwrap_or(0);
        spool.next_seq = entries.last().map(|e| e.seq + 1);
        Ok(spool)
    }

    /// Bytes waiting here (for metrics).
    pub(super) fn bytes(&self) -> u64 {
        self.len
    }

    /// Whether entries wait here.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The seq after the last spooled entry, when any waits.
    pub(super) fn next_seq(&self) -> Option<u64> {
        self.next_seq
    }

    /// Appends `entries` and syncs the file. Refuses (writing nothing) when they would make the
    /// spool larger than its bound.
    pub(super) fn push(&mut self, entries: &[Entry<'_>]) -> Result<(), StoreError> {
        let mut buf = Vec::new();
        for entry in entries {
            encode(entry, &mut buf);
        }
        if self.len + buf.len() as u64 > self.max_bytes {
            return Err(StoreError::Unavailable {
                waited_ms: 0,
                reason: format!(
                    "the local spool {} is full ({} of {} bytes)",
                    self.path.display(),
                    self.len,
                    self.max_bytes
                ),
            });
        }
        let mut file = crate::files::private_options()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io_error(&self.path, e))?;
        file.write_all(&buf)
            .and_then(|()| file.sync_data())
            .map_err(|e| io_error(&self.path, e))?;
        if self.len == 0
            && let Some(dir) = self.path.parent()
        {
            // A new file's name must be durable too.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        self.len += buf.len() as u64;
        self.next_seq = entries.last().map(|e| e.seq + 1).or(self.next_seq);
        Ok(())
    }

    /// Every complete record, in the order written.
    pub(super) fn read(&self) -> Result<Vec<Spooled>, StoreError> {
        let mut bytes = Vec::new();
        match File::open(&self.path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)
                    .map_err(|e| io_error(&self.path, e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&self.path, e)),
        }
        let mut out = Vec::new();
        let mut rest = bytes.as_slice();
        while let Some((record, tail)) = split_record(rest) {
            out.push(decode(record).map_err(|reason| StoreError::Corrupt {
                path: self.path.clone(),
                reason,
            })?);
            rest = tail;
        }
        if !rest.is_empty() {
            tracing::warn!(
                path = %self.path.display(),
                bytes = rest.len(),
                "ignoring a spool record cut short by a crash (it was never acknowledged)"
            );
        }
        Ok(out)
    }

    /// Empties the spool once its entries are in the database.
    pub(super) fn clear(&mut self) -> Result<(), StoreError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&self.path, e)),
        }
        self.len = 0;
        self.next_seq = None;
        Ok(())
    }
}

/// The top bit of `meta_len`: a links section follows the metadata.
const HAS_LINKS: u32 = 1 << 31;

fn encode(entry: &Entry<'_>, buf: &mut Vec<u8>) {
    let s = entry.sealed;
    let links = encode_links(&s.links);
    let links_len = links.as_ref().map_or(0, |l| 4 + l.len());
    let body_len = 8 + 32 * 4 + 4 + s.meta_json.len() + links_len + s.personal_json.len();
    buf.extend_from_slice(&(body_len as u32).to_be_bytes());
    buf.extend_from_slice(&entry.seq.to_be_bytes());
    buf.extend_from_slice(entry.leaf_hash.as_bytes());
    buf.extend_from_slice(&s.salt);
    buf.extend_from_slice(s.commitment.as_bytes());
    buf.extend_from_slice(s.meta_digest.as_bytes());
    let flag = if links.is_some() { HAS_LINKS } else { 0 };
    buf.extend_from_slice(&(s.meta_json.len() as u32 | flag).to_be_bytes());
    buf.extend_from_slice(&s.meta_json);
    if let Some(links) = links {
        buf.extend_from_slice(&(links.len() as u32).to_be_bytes());
        buf.extend_from_slice(&links);
    }
    buf.extend_from_slice(&s.personal_json);
}

/// The links as the spool keeps them; `None` when there are none (most events: the identity
/// was met before), which keeps the record in its older form.
fn encode_links(links: &[Link]) -> Option<Vec<u8>> {
    if links.is_empty() {
        return None;
    }
    let rows: Vec<[&str; 3]> = links
        .iter()
        .map(|l| [l.pseudonym.as_str(), l.field.as_str(), l.identity.as_str()])
        .collect();
    // An array of string triples always serializes.
    serde_json::to_vec(&rows).ok()
}

fn decode_links(bytes: &[u8]) -> Result<Vec<Link>, String> {
    let rows: Vec<[String; 3]> = serde_json::from_slice(bytes)
        .map_err(|e| format!("spool record with unreadable pseudonym links: {e}"))?;
    rows.into_iter()
        .map(|[pseudonym, field, identity]| {
            let field = IdentityField::parse(&field)
                .ok_or_else(|| format!("spool record with an unknown pseudonym field `{field}`"))?;
            Ok(Link {
                pseudonym,
                field,
                identity,
            })
        })
        .collect()
}

/// The next complete record and what follows it; `None` at the end or before a torn record.
fn split_record(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let record = bytes.get(4..4 + len)?;
    Some((record, &bytes[4 + len..]))
}

fn decode(record: &[u8]) -> Result<Spooled, String> {
    let short = || "spool record too short".to_string();
    let take = |at: usize, n: usize| record.get(at..at + n).ok_or_else(short);
    let hash = |at: usize| take(at, 32).map(|b| Hash::from_slice(b).unwrap_or_default());
    let seq = u64::from_be_bytes(take(0, 8)?.try_into().map_err(|_| short())?);
    let leaf_hash = hash(8)?;
    let salt: [u8; 32] = take(40, 32)?.try_into().map_err(|_| short())?;
    let commitment = hash(72)?;
    let meta_digest = hash(104)?;
    let meta_word = u32::from_be_bytes(take(136, 4)?.try_into().map_err(|_| short())?);
    let meta_len = (meta_word & !HAS_LINKS) as usize;
    let meta_json = take(140, meta_len)?.to_vec();
    let mut at = 140 + meta_len;
    let links = if meta_word & HAS_LINKS != 0 {
        let links_len = u32::from_be_bytes(take(at, 4)?.try_into().map_err(|_| short())?) as usize;
        let links = decode_links(take(at + 4, links_len)?)?;
        at += 4 + links_len;
        links
    } else {
        Vec::new()
    };
    let personal_json = record.get(at..).ok_or_else(short)?.to_vec();
    let event = unseal(&meta_json, Some(&personal_json)).map_err(|e| e.to_string())?;
    Ok(Spooled {
        seq,
        leaf_hash,
        sealed: SealedEvent {
            event,
            meta_json,
            personal_json,
            salt,
            commitment,
            meta_digest,
            links,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_audit_core::{AuditEvent, seal};

    fn sealed(op: &str) -> SealedEvent {
        seal(
            AuditEvent::tool_execution(op)
                .user("alice")
                .email("alice@example.com")
                .build()
                .unwrap(),
        )
        .unwrap()
    }

    /// `s` as the log entry at `seq`.
    fn entry(s: &SealedEvent, seq: u64) -> Entry<'_> {
        Entry {
            seq,
            leaf_hash: s.leaf_hash(seq),
            sealed: s,
        }
    }

    #[test]
    fn spooled_entries_read_back_identical_and_in_order_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let options = SpoolOptions::new(dir.path());
        let events = [sealed("a"), sealed("b"), sealed("c")];
        let entries: Vec<Entry<'_>> = events
            .iter()
            .enumerate()
            .map(|(i, s)| entry(s, 10 + i as u64))
            .collect();
        let mut spool = Spool::open(&options, "log/1").unwrap();
        spool.push(&entries[..2]).unwrap();
        spool.push(&entries[2..]).unwrap();

        let reopened = Spool::open(&options, "log/1").unwrap();
        assert_eq!(reopened.next_seq(), Some(13));
        let back = reopened.read().unwrap();
        assert_eq!(back.len(), 3);
        for (b, e) in back.iter().zip(&entries) {
            assert_eq!(b.seq, e.seq);
            assert_eq!(b.leaf_hash, e.leaf_hash);
            assert_eq!(b.sealed.event, e.sealed.event);
            assert_eq!(b.sealed.meta_json, e.sealed.meta_json);
            assert_eq!(b.sealed.salt, e.sealed.salt);
        }
        assert_eq!(others(dir.path(), "another").unwrap()[0].0, "log/1");
    }

    /// The receive time travels inside the metadata JSON, so the record format did not change:
    /// a record spooled by a build that kept none reads back without one, and a stamped one
    /// reads back with it (the backend writes it to its column on replay).
    #[test]
    fn a_receive_time_comes_back_from_the_spool_and_a_record_without_one_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let options = SpoolOptions::new(dir.path());
        let before = sealed("before");
        assert_eq!(before.event.received_at, None);
        let mut event = AuditEvent::tool_execution("stamped").build().unwrap();
        event.received_at = Some("2026-03-04T05:06:07.890123Z".parse().unwrap());
        let stamped = seal(event).unwrap();
        let mut spool = Spool::open(&options, "log").unwrap();
        spool
            .push(&[entry(&before, 0), entry(&stamped, 1)])
            .unwrap();
        let back = Spool::open(&options, "log").unwrap().read().unwrap();
        assert_eq!(back[0].sealed.event.received_at, None);
        assert_eq!(back[0].sealed.meta_json, before.meta_json);
        assert_eq!(back[1].sealed.event.received_at, stamped.event.received_at);
        assert_eq!(back[1].sealed.meta_json, stamped.meta_json);
    }

    /// Regression: the links of an identity first met during an outage were not spooled, so
    /// after the replay its events named a pseudonym that nothing resolved.
    #[test]
    fn pseudonym_links_come_back_from_the_spool_and_records_without_them_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let options = SpoolOptions::new(dir.path());
        let plain = sealed("plain");
        let mut linked = sealed("linked");
        linked.links = vec![
            Link {
                pseudonym: mcp_audit_core::pseudonym::fresh(),
                field: IdentityField::User,
                identity: "alice".into(),
            },
            Link {
                pseudonym: mcp_audit_core::pseudonym::fresh(),
                field: IdentityField::Subject,
                identity: "subject \"7\" ü".into(),
            },
        ];
        let mut spool = Spool::open(&options, "log").unwrap();
        spool
            .push(&[entry(&plain, 0), entry(&linked, 1), entry(&plain, 2)])
            .unwrap();
        let back = Spool::open(&options, "log").unwrap().read().unwrap();
        assert_eq!(back.len(), 3);
        assert!(back[0].sealed.links.is_empty());
        assert_eq!(back[1].sealed.links, linked.links);
        assert_eq!(back[1].sealed.meta_json, linked.meta_json);
        assert_eq!(back[1].sealed.personal_json, linked.personal_json);
        assert_eq!(back[1].sealed.event, linked.event);
        assert!(back[2].sealed.links.is_empty());
        assert_eq!(back[2].sealed.personal_json, plain.personal_json);
    }

    #[test]
    fn a_record_with_unreadable_links_is_reported_corrupt_not_replayed_without_them() {
        let dir = tempfile::tempdir().unwrap();
        let options = SpoolOptions::new(dir.path());
        let mut linked = sealed("linked");
        linked.links = vec![Link {
            pseudonym: mcp_audit_core::pseudonym::fresh(),
            field: IdentityField::User,
            identity: "alice".into(),
        }];
        let mut spool = Spool::open(&options, "log").unwrap();
        spool.push(&[entry(&linked, 0)]).unwrap();
        let path = dir.path().join(file_name("log"));
        let mut bytes = std::fs::read(&path).unwrap();
        let field = br#""user","alice""#;
        let at = bytes
            .windows(field.len())
            .position(|w| w == field)
            .expect("the links are in the record");
        bytes[at + 1..at + 5].copy_from_slice(b"oops");
        std::fs::write(&path, &bytes).unwrap();
        let error = Spool::at(path, options.max_bytes).err().unwrap();
        assert!(
            error.to_string().contains("unknown pseudonym field"),
            "{error}"
        );
    }

    #[test]
    fn the_spool_directory_is_created_0700_and_its_files_0600() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let options = SpoolOptions::new(dir.path().join("spool/nested"));
        let s = sealed("a");
        let mut spool = Spool::open(&options, "log").unwrap();
        spool.push(std::slice::from_ref(&entry(&s, 0))).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&options.dir), 0o700);
        assert_eq!(mode(&dir.path().join("spool")), 0o700);
        assert_eq!(mode(&options.dir.join(file_name("log"))), 0o600);
    }

    #[test]
    fn a_record_torn_by_a_crash_is_ignored_and_the_ones_before_it_kept() {
        let dir = tempfile::tempdir().unwrap();
        let options = SpoolOptions::new(dir.path());
        let s = sealed("a");
        let entry = entry(&s, 0);
        let mut spool = Spool::open(&options, "log").unwrap();
        spool.push(std::slice::from_ref(&entry)).unwrap();
        let path = dir.path().join(file_name("log"));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&[0, 0, 9, 9, 1, 2, 3]).unwrap();
        assert_eq!(
            Spool::open(&options, "log").unwrap().read().unwrap().len(),
            1
        );
    }

    #[test]
    fn a_full_spool_refuses_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let options = SpoolOptions {
            dir: dir.path().to_path_buf(),
            max_bytes: 100,
        };
        let s = sealed("a");
        let entry = entry(&s, 0);
        let mut spool = Spool::open(&options, "log").unwrap();
        let error = spool.push(std::slice::from_ref(&entry)).unwrap_err();
        assert!(error.to_string().contains("spool"), "{error}");
        assert!(spool.is_empty());
        assert!(spool.read().unwrap().is_empty());
    }
}
