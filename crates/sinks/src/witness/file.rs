//! The `file` target: each signed checkpoint appended to a file, one JSON object per line
//! (`{"size":..,"note":".."}`, as `checkpoint --checkpoint-out` writes them and
//! `verify --checkpoints` reads them), then synced to disk. Put the file where the database's
//! owner cannot rewrite it (another machine's mount, an append-only object store's sync).
//!
//! The file is its own cursor: the sizes it already holds are not appended again, so a round
//! after a crash between the append and the sync of the cursor cannot duplicate or skip one.
//! Sizes are a log's own, so a file holds one log: `{log}` in the configured path is replaced
//! by the log's id, one file per log, which a database of many logs (PostgreSQL) requires.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use mcp_audit_store::integrity::OutsideCheckpoint;
use mcp_audit_store::{Append, Audit, Witnessing};

use super::{Step, WitnessError};

/// What stands for the log's id in a configured path.
pub const LOG_PLACEHOLDER: &str = "{log}";

pub struct FileWitness {
    /// The configured path, `{log}` not yet replaced.
    template: PathBuf,
    /// The file of the log the round is on.
    path: PathBuf,
}

impl FileWitness {
    pub fn new(path: PathBuf) -> FileWitness {
        FileWitness {
            path: path.clone(),
            template: path,
        }
    }

    /// Whether the path names each log's own file (it holds `{log}`).
    pub fn names_the_log(&self) -> bool {
        self.template.to_string_lossy().contains(LOG_PLACEHOLDER)
    }

    /// The file of `log_id`.
    fn path_of(&self, log_id: &str) -> PathBuf {
        if !self.names_the_log() {
            return self.template.clone();
        }
        PathBuf::from(
            self.template
                .to_string_lossy()
                .replace(LOG_PLACEHOLDER, log_id),
        )
    }

    fn io(&self, source: std::io::Error) -> WitnessError {
        WitnessError::File {
            path: self.path.clone(),
            source,
        }
    }

    /// The sizes the file holds. A line that is not a checkpoint is skipped (a line cut by a
    /// crash mid-append is written again, complete, after it).
    fn sizes(&self) -> Result<BTreeSet<u64>, WitnessError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(self.io(e)),
        };
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str::<OutsideCheckpoint>(line).ok())
            .map(|c| c.size)
            .collect())
    }

    pub fn step<S>(&mut self, store: &mut S) -> Result<Step, WitnessError>
    where
        S: Append + Audit + Witnessing + ?Sized,
    {
        self.path = self.path_of(store.log_id());
        let have = self.sizes()?;
        let missing: Vec<(u64, String)> = store
            .checkpoints()?
            .into_iter()
            .filter(|(size, _)| !have.contains(size))
            .collect();
        let Some(&(last, _)) = missing.last() else {
            return Ok(Step::UpToDate);
        };
        let mut text = String::new();
        // A file cut mid-line by a crash: start on a line of our own.
        if let Ok(existing) = std::fs::read(&self.path)
            && existing.last().is_some_and(|b| *b != b'\n')
        {
            text.push('\n');
        }
        for (size, note) in &missing {
            let line = serde_json::to_string(&OutsideCheckpoint {
                size: *size,
                note: note.clone(),
            })
            .map_err(|e| self.io(std::io::Error::other(e)))?;
            text.push_str(&line);
            text.push('\n');
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        file.write_all(text.as_bytes()).map_err(|e| self.io(e))?;
        file.sync_all().map_err(|e| self.io(e))?;
        Ok(Step::Appended {
            count: missing.len(),
            size: last,
        })
    }
}

#[cfg(test)]
mod tests {
    use mcp_audit_core::checkpoint::NoteSigner;
    use mcp_audit_store::integrity::sign_checkpoint;
    use mcp_audit_store::{Recorder, RecorderConfig, SqliteOptions, SqliteStore};

    use super::*;

    fn grow(path: &std::path::Path, signer: &NoteSigner, n: u64) {
        let store = SqliteStore::open(path, SqliteOptions::default()).unwrap();
        let recorder = Recorder::start(store, RecorderConfig::default()).unwrap();
        for i in 0..n {
            recorder
                .record(
                    mcp_audit_core::AuditEvent::tool_execution(format!("t{i}"))
                        .build()
                        .unwrap(),
                )
                .unwrap();
        }
        recorder.shutdown().unwrap();
        let mut store = SqliteStore::open(path, SqliteOptions::default()).unwrap();
        sign_checkpoint(&mut store, signer, "log.test/f").unwrap();
    }

    #[test]
    fn each_checkpoint_is_appended_once_and_a_cut_line_is_written_again_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let out = dir.path().join("checkpoints.jsonl");
        let signer = NoteSigner::generate("log.test").unwrap();
        let mut witness = FileWitness::new(out.clone());
        grow(&db, &signer, 2);
        grow(&db, &signer, 1);
        let mut store = SqliteStore::open(&db, SqliteOptions::default()).unwrap();
        assert_eq!(
            witness.step(&mut store).unwrap(),
            Step::Appended { count: 2, size: 3 }
        );
        assert_eq!(witness.step(&mut store).unwrap(), Step::UpToDate);
        // A crash cut the file mid-line: the next checkpoint starts a line of its own.
        let mut file = OpenOptions::new().append(true).open(&out).unwrap();
        file.write_all(b"{\"size\":9,\"no").unwrap();
        drop(file);
        grow(&db, &signer, 1);
        let mut store = SqliteStore::open(&db, SqliteOptions::default()).unwrap();
        assert_eq!(
            witness.step(&mut store).unwrap(),
            Step::Appended { count: 1, size: 4 }
        );
        let kept: Vec<OutsideCheckpoint> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let sizes: Vec<u64> = kept.iter().map(|c| c.size).collect();
        assert_eq!(sizes, vec![2, 3, 4]);
        // What the file holds is what the log signed.
        let verifier = signer.verifier();
        for c in kept {
            assert_eq!(verifier.open(&c.note).unwrap().size, c.size);
        }
    }

    #[test]
    fn a_path_that_names_the_log_gets_one_file_per_log() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let signer = NoteSigner::generate("log.test").unwrap();
        grow(&db, &signer, 2);
        let mut store = SqliteStore::open(&db, SqliteOptions::default()).unwrap();
        let log_id = mcp_audit_store::Log::log_id(&store).to_string();
        assert!(!log_id.is_empty());
        let mut witness = FileWitness::new(dir.path().join("cp-{log}.jsonl"));
        assert!(witness.names_the_log());
        assert!(!FileWitness::new(dir.path().join("cp.jsonl")).names_the_log());
        assert_eq!(
            witness.step(&mut store).unwrap(),
            Step::Appended { count: 1, size: 2 }
        );
        let file = dir.path().join(format!("cp-{log_id}.jsonl"));
        let kept: OutsideCheckpoint =
            serde_json::from_str(std::fs::read_to_string(&file).unwrap().trim()).unwrap();
        assert_eq!(kept.size, 2);
        assert!(!dir.path().join("cp-{log}.jsonl").exists());
    }
}
