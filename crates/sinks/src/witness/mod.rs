//! The witness sink: every signed checkpoint of the log leaves the box.
//!
//! A checkpoint kept only in the database proves nothing to someone who does not trust the
//! machine it is on: whoever owns the machine can cut the log's tail, or rewrite it, and sign
//! a new checkpoint with the log's key. A copy elsewhere closes that door, and a **witness**
//! closes it for everyone: it co-signs a checkpoint only if it extends every checkpoint of
//! that log it co-signed before, so a log that was cut or forked after a cosignature can never
//! get one again, and `mcp-audit verify --witness KEY` fails on it.
//!
//! Targets ([`WitnessTarget`]):
//!
//! - `tlog-witness`: a C2SP tlog-witness (`POST <url>/add-checkpoint`, such as another
//!   `mcp-audit serve --witness-key`); see [`tlog`]. The cosignature it returns is checked with
//!   the witness's key and kept next to the checkpoint
//!   ([`mcp_audit_store::Witnessing::put_cosignature`]). The newest size the witness co-signed
//!   is this sink's durable cursor: the next consistency proof starts there, and a witness that
//!   knows another size says so (409) and is answered from that one.
//! - `file`: each checkpoint appended to a file (one JSON object per line, the format of
//!   `checkpoint --checkpoint-out`, which `verify --checkpoints` reads) and synced; the file is
//!   its own cursor (a checkpoint whose size it holds is not appended again); `{log}` in its
//!   path is the log's id, one file per log (which a database of many logs needs); see [`file`].
//! - `post`: each checkpoint POSTed as the signed note (`text/plain`) to an http(s) URL, in
//!   order, from a cursor kept in the store after each acknowledgement; see [`post`].
//!
//! [`Witness::step`] does one round: it sends what the target has not seen of the log's
//! stored checkpoints ([`mcp_audit_store::Audit::checkpoints`]) and says what it did. The
//! [`runner`] makes a round on each log of [`logs::WitnessLogs`] (one log of a SQLite file,
//! every log of a PostgreSQL database) per pass.

pub mod file;
pub mod logs;
pub mod post;
pub mod runner;
pub mod tlog;

use std::path::PathBuf;

use mcp_audit_core::checkpoint::NoteError;
use mcp_audit_core::cosignature::CosignatureVerifier;
use mcp_audit_store::{Append, Audit, StoreError, Witnessing};
use serde::Deserialize;

/// Where checkpoints go (`target` in the sink configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WitnessTarget {
    /// A C2SP tlog-witness at `url`, whose cosignatures are checked with `key`.
    TlogWitness,
    /// A file at `path`, appended to and synced.
    File,
    /// A plain POST of each signed note to `url`.
    Post,
}

/// A witness sink's configuration, e.g.
///
/// ```toml
/// type = "witness"            # the runner's; not part of this struct
/// target = "tlog-witness"
/// url = "https://witness.example.com"
/// key = "witness.example.com/w1+1a2b3c4d+BA..."
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    pub target: WitnessTarget,
    /// `tlog-witness`: the witness's submission prefix (`/add-checkpoint` is appended);
    /// `post`: the URL each note is POSTed to.
    #[serde(default)]
    pub url: Option<String>,
    /// `tlog-witness`: the witness's verifier key (`<name>+<key id>+<base64(0x04 ‖ key)>`).
    #[serde(default)]
    pub key: Option<String>,
    /// `file`: the file the checkpoints are appended to.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// Why a witness round failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// The configuration misses a field its target needs, or has one it does not take.
    #[error("witness configuration: {0}")]
    Config(String),
    /// The witness key text is not a `cosignature/v1` verifier key.
    #[error("the witness key: {0}")]
    Key(#[source] NoteError),
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The witness could not be reached, or answered with a server error.
    #[error("the witness at {url} is unavailable: {reason}")]
    Unavailable { url: String, reason: String },
    /// The witness refused the checkpoint (a 4xx other than a size conflict it resolved):
    /// with a fork or a truncation of the log, this is the alarm.
    #[error("the witness at {url} refused checkpoint {size}: HTTP {status}: {reason}")]
    Refused {
        url: String,
        size: u64,
        status: u16,
        reason: String,
    },
    /// The witness answered, but not with a valid cosignature by its key.
    #[error("the witness at {url} answered without a valid cosignature: {reason}")]
    BadAnswer { url: String, reason: String },
    /// The file could not be read or appended to.
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The log has no checkpoint yet, or the target has the newest one.
    UpToDate,
    /// A tlog-witness co-signed the checkpoint of `size`; its line is kept in the store.
    Cosigned { size: u64, line: String },
    /// `count` checkpoints were appended to the file, up to `size`.
    Appended { count: usize, size: u64 },
    /// `count` checkpoints were POSTed and acknowledged, up to `size`.
    Posted { count: usize, size: u64 },
}

/// The small runtime a round's HTTP request runs on. It shuts down without waiting when
/// dropped, so that a witness may be dropped anywhere: a sinks file whose later table fails to
/// build, or a host that ends, drops it inside an async task, where a runtime that waits would
/// panic.
pub(crate) struct RoundRuntime(Option<tokio::runtime::Runtime>);

impl RoundRuntime {
    pub(crate) fn new() -> Result<RoundRuntime, WitnessError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| RoundRuntime(Some(runtime)))
            .map_err(|e| WitnessError::Config(format!("the HTTP client's runtime: {e}")))
    }

    /// Runs `future` to its end on this thread (never call from inside an async task).
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        match &self.0 {
            Some(runtime) => runtime.block_on(future),
            None => unreachable!("the runtime is taken only when dropped"),
        }
    }
}

impl Drop for RoundRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// One witness sink.
pub enum Witness {
    /// Boxed: the HTTP client and URL are large beside a path.
    Tlog(Box<tlog::TlogWitness>),
    File(file::FileWitness),
    Post(Box<post::PostWitness>),
}

impl Witness {
    /// Checks `config` (a missing or stray field, a bad URL or key is an error here, before
    /// anything is sent).
    pub fn new(config: WitnessConfig) -> Result<Witness, WitnessError> {
        match config.target {
            WitnessTarget::TlogWitness => {
                if config.path.is_some() {
                    return Err(WitnessError::Config("`path` is for target `file`".into()));
                }
                let url = config.url.ok_or_else(|| {
                    WitnessError::Config("target `tlog-witness` needs `url`".into())
                })?;
                let key = config.key.ok_or_else(|| {
                    WitnessError::Config("target `tlog-witness` needs `key`".into())
                })?;
                let key = CosignatureVerifier::from_text(&key).map_err(WitnessError::Key)?;
                Ok(Witness::Tlog(Box::new(tlog::TlogWitness::new(&url, key)?)))
            }
            WitnessTarget::File => {
                if config.url.is_some() || config.key.is_some() {
                    return Err(WitnessError::Config(
                        "`url` and `key` are for target `tlog-witness`".into(),
                    ));
                }
                let path = config
                    .path
                    .ok_or_else(|| WitnessError::Config("target `file` needs `path`".into()))?;
                Ok(Witness::File(file::FileWitness::new(path)))
            }
            WitnessTarget::Post => {
                if config.key.is_some() || config.path.is_some() {
                    return Err(WitnessError::Config(
                        "`key` is for target `tlog-witness`, `path` for `file`".into(),
                    ));
                }
                let url = config
                    .url
                    .ok_or_else(|| WitnessError::Config("target `post` needs `url`".into()))?;
                Ok(Witness::Post(Box::new(post::PostWitness::new(&url)?)))
            }
        }
    }

    /// One round: sends what the target has not seen yet of the log's checkpoints. Blocking,
    /// like every store call (the checkpoints, one consistency proof, one row, and the HTTP
    /// request on the sink's own small runtime): call it from a thread or `spawn_blocking`,
    /// never from inside an async task.
    pub fn step<S>(&mut self, store: &mut S) -> Result<Step, WitnessError>
    where
        S: Append + Audit + Witnessing + ?Sized,
    {
        match self {
            Witness::Tlog(w) => w.step(store),
            Witness::File(w) => w.step(store),
            Witness::Post(w) => w.step(store),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> Result<WitnessConfig, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[tokio::test]
    async fn a_witness_may_be_dropped_inside_an_async_task() {
        let key = mcp_audit_core::cosignature::CosignatureSigner::generate("w.test/1")
            .unwrap()
            .verifier()
            .to_text();
        let tlog = Witness::new(
            config(&format!(
                "target = \"tlog-witness\"\nurl = \"http://127.0.0.1:1\"\nkey = \"{key}\"\n"
            ))
            .unwrap(),
        )
        .unwrap();
        let post =
            Witness::new(config("target = \"post\"\nurl = \"https://c.test/cp\"\n").unwrap())
                .unwrap();
        tokio::spawn(async move {
            drop(tlog);
            drop(post);
        })
        .await
        .expect("dropping a witness in a task panicked");
    }

    #[test]
    fn a_configuration_names_its_target_and_only_the_fields_it_takes() {
        let key = mcp_audit_core::cosignature::CosignatureSigner::generate("w.test/1")
            .unwrap()
            .verifier()
            .to_text();
        let tlog = config(&format!(
            "target = \"tlog-witness\"\nurl = \"http://127.0.0.1:1\"\nkey = \"{key}\"\n"
        ))
        .unwrap();
        assert!(matches!(Witness::new(tlog), Ok(Witness::Tlog(_))));
        let file = config("target = \"file\"\npath = \"/tmp/x\"\n").unwrap();
        assert!(matches!(Witness::new(file), Ok(Witness::File(_))));
        let post = config("target = \"post\"\nurl = \"https://c.test/cp\"\n").unwrap();
        assert!(matches!(Witness::new(post), Ok(Witness::Post(_))));
        // An unknown field or target is refused by the parser.
        assert!(config("target = \"file\"\npath = \"x\"\nfsync = true\n").is_err());
        assert!(config("target = \"s3\"\n").is_err());
        // A field of the other target, a missing one, a log key for a witness key: refused.
        for bad in [
            "target = \"file\"\n".to_string(),
            "target = \"file\"\npath = \"x\"\nurl = \"http://h\"\n".into(),
            "target = \"tlog-witness\"\nurl = \"http://h\"\n".into(),
            "target = \"post\"\n".into(),
            format!("target = \"post\"\nurl = \"http://h\"\nkey = \"{key}\"\n"),
            format!("target = \"tlog-witness\"\nkey = \"{key}\"\n"),
            format!("target = \"tlog-witness\"\nurl = \"ftp://h\"\nkey = \"{key}\"\n"),
            format!(
                "target = \"tlog-witness\"\nurl = \"http://h\"\nkey = \"{}\"\n",
                mcp_audit_core::checkpoint::NoteSigner::generate("log")
                    .unwrap()
                    .verifier()
                    .to_text()
            ),
        ] {
            let parsed = config(&bad).unwrap();
            assert!(Witness::new(parsed).is_err(), "{bad}");
        }
    }
}
