//! The sinks' configuration file: a TOML file of `[[sink]]` tables, each with the fields every
//! sink has (below) and the fields of its `type`.
//!
//! ```toml
//! [[sink]]
//! name = "siem"              # the cursor's name: renaming a sink starts it afresh
//! type = "webhook"           # webhook | otlp | syslog | stdout | witness
//! url = "https://siem.example/hooks/mcp-audit"
//! secret_file = "/etc/mcp-audit/webhook.secret"
//! batch = 100                # records per delivery (1 to 10,000)
//! max_tries = 5              # refusals of one record before it goes to the dead letters
//! backoff_initial_ms = 500   # first wait after a failure, doubled at each failure after
//! backoff_max_ms = 60000     # the most it waits
//! poll_ms = 500              # how often it looks for new records when it has caught up
//! start = "beginning"        # beginning | end: where a new cursor starts
//! logs = ["proxy-a"]         # only these logs (default: every log of the database)
//! redact_policy = "strict.toml"  # a stricter redaction applied before records leave
//! lease_ms = 15000           # one runner per name: how long a standby waits after a crash
//! ```
//!
//! A `witness` sink follows the signed checkpoints rather than the records: it takes `name`,
//! `poll_ms` and the backoff, and refuses `batch`, `max_tries`, `start`, `logs` and
//! `redact_policy`, which are about records (see [`crate::witness::runner`]).
//!
//! Every table refuses fields it does not know (a misspelt `max_trys` is an error, not a
//! default), and every error names the file and the line of the sink it is about.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mcp_audit_core::redact::Redactor;
use mcp_audit_store::StoredEvent;
use serde::Deserialize;

use crate::otlp::{Otlp, OtlpConfig};
use crate::runner::{Backoff, SinkSpec, Start};
use crate::stdout::{Stdout, StdoutConfig};
use crate::syslog::{Syslog, SyslogConfig};
use crate::webhook::{Webhook, WebhookConfig};
use crate::witness::{Witness, WitnessConfig};
use crate::{Destination, Failure};

/// Why a configuration file was refused: the file, the line, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", path.display())]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

/// The fields every sink has.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    name: String,
    #[serde(default = "default_batch")]
    batch: u32,
    #[serde(default = "default_max_tries")]
    max_tries: u32,
    #[serde(default = "default_backoff_initial_ms")]
    backoff_initial_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    backoff_max_ms: u64,
    #[serde(default = "default_poll_ms")]
    poll_ms: u64,
    #[serde(default)]
    start: Start,
    #[serde(default)]
    logs: Option<Vec<String>>,
    #[serde(default)]
    redact_policy: Option<PathBuf>,
    #[serde(default = "default_lease_ms")]
    lease_ms: u64,
}

const COMMON_FIELDS: &[&str] = &[
    "name",
    "batch",
    "max_tries",
    "backoff_initial_ms",
    "backoff_max_ms",
    "poll_ms",
    "start",
    "logs",
    "redact_policy",
    "lease_ms",
];

fn default_batch() -> u32 {
    100
}
fn default_max_tries() -> u32 {
    5
}
fn default_backoff_initial_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    60_000
}
fn default_poll_ms() -> u64 {
    500
}
fn default_lease_ms() -> u64 {
    15_000
}

/// The fields of the common ones that only sinks of records take: a witness refuses them.
const RECORD_FIELDS: &[&str] = &[
    "batch",
    "max_tries",
    "start",
    "logs",
    "redact_policy",
    "lease_ms",
];

/// Each kind's own fields, chosen by `type`: each kind's `XConfig` (which refuses fields it
/// does not know) and its `X::new(config)`, here and in [`Kind`]. A witness follows the signed
/// checkpoints, not the records: it is built as a [`Witness`] and run by
/// [`crate::witness::runner`] (see [`Built`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum KindConfig {
    Webhook(WebhookConfig),
    Stdout(StdoutConfig),
    Otlp(OtlpConfig),
    Syslog(SyslogConfig),
    Witness(WitnessConfig),
}

/// A configured sink, built: a destination of records, or a witness of checkpoints. Built
/// once per sink, so the size difference between them costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Built {
    Records(Kind),
    Witness(Witness),
}

/// A destination of any kind (enum dispatch: the runner is generic over one concrete type).
/// Built once per sink, so the size difference between kinds costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Kind {
    Webhook(Webhook),
    Stdout(Stdout),
    Otlp(Otlp),
    Syslog(Syslog),
}

impl Kind {
    /// The destination `config` describes, for the sink named `sink`.
    pub fn new(sink: &str, config: &KindConfig) -> Result<Kind, String> {
        Ok(match config {
            KindConfig::Webhook(c) => {
                Kind::Webhook(Webhook::new(sink, c).map_err(|e| e.to_string())?)
            }
            KindConfig::Stdout(c) => Kind::Stdout(Stdout::new(c)),
            KindConfig::Otlp(c) => Kind::Otlp(Otlp::new(c.clone()).map_err(|e| e.to_string())?),
            KindConfig::Syslog(c) => {
                Kind::Syslog(Syslog::new(c.clone()).map_err(|e| e.to_string())?)
            }
            KindConfig::Witness(_) => {
                return Err("a witness is not a destination of records".into());
            }
        })
    }
}

impl Destination for Kind {
    fn kind(&self) -> &'static str {
        match self {
            Kind::Webhook(d) => d.kind(),
            Kind::Stdout(d) => d.kind(),
            Kind::Otlp(d) => d.kind(),
            Kind::Syslog(d) => d.kind(),
        }
    }

    async fn deliver(&mut self, batch: &[StoredEvent]) -> Result<(), Failure> {
        match self {
            Kind::Webhook(d) => d.deliver(batch).await,
            Kind::Stdout(d) => d.deliver(batch).await,
            Kind::Otlp(d) => d.deliver(batch).await,
            Kind::Syslog(d) => d.deliver(batch).await,
        }
    }
}

/// One configured sink: how it runs, and where it delivers.
pub struct SinkConfig {
    pub spec: SinkSpec,
    pub kind: KindConfig,
    /// The line of its `[[sink]]` table, for errors found later (building the destination).
    pub line: usize,
}

impl SinkConfig {
    /// Builds the destination or the witness (reads secrets and keys, parses URLs).
    pub fn destination(&self, path: &Path) -> Result<Built, ConfigError> {
        let built = match &self.kind {
            KindConfig::Witness(c) => Witness::new(c.clone())
                .map(Built::Witness)
                .map_err(|e| e.to_string()),
            other => Kind::new(&self.spec.name, other).map(Built::Records),
        };
        built.map_err(|message| ConfigError {
            path: path.to_path_buf(),
            line: self.line,
            message: format!("sink `{}`: {message}", self.spec.name),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    #[serde(default)]
    sink: Vec<toml::Spanned<toml::Table>>,
}

/// Reads and checks the file at `path`, and builds each sink's destination, so that a bad
/// file stops a command before anything runs.
pub fn load(path: &Path) -> Result<Vec<(SinkConfig, Built)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: 0,
        message: format!("cannot read the sinks configuration: {e}"),
    })?;
    parse(path, &text)?
        .into_iter()
        .map(|sink| {
            let kind = sink.destination(path)?;
            Ok((sink, kind))
        })
        .collect()
}

/// Parses a configuration file's text (`path` names it in errors and anchors the relative
/// paths it holds).
pub fn parse(path: &Path, text: &str) -> Result<Vec<SinkConfig>, ConfigError> {
    let error = |line: usize, message: String| ConfigError {
        path: path.to_path_buf(),
        line,
        message,
    };
    let form: FileForm = toml::from_str(text).map_err(|e| {
        error(
            e.span().map_or(1, |s| line_of(text, s.start)),
            e.message().trim().to_string(),
        )
    })?;
    if form.sink.is_empty() {
        return Err(error(1, "no [[sink]] table: nothing to run".into()));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut names = HashSet::new();
    let mut sinks = Vec::new();
    for spanned in form.sink {
        let line = line_of(text, spanned.span().start);
        let mut table = spanned.into_inner();
        let name = table
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string();
        let at = |message: String| error(line, format!("sink `{name}`: {message}"));
        let witness = table.get("type").and_then(|v| v.as_str()) == Some("witness");
        if witness && let Some(field) = RECORD_FIELDS.iter().find(|f| table.contains_key(**f)) {
            return Err(at(format!(
                "`{field}` is about records; a witness sends checkpoints (it takes name, poll_ms, backoff_initial_ms and backoff_max_ms)"
            )));
        }
        let mut common = toml::Table::new();
        for field in COMMON_FIELDS {
            if let Some(value) = table.remove(*field) {
                common.insert(field.to_string(), value);
            }
        }
        let common: Common = toml::Value::Table(common)
            .try_into()
            .map_err(|e: toml::de::Error| at(e.message().trim().to_string()))?;
        if !table.contains_key("type") {
            return Err(at(
                "missing field `type` (webhook, otlp, syslog, stdout, witness)".into(),
            ));
        }
        let mut kind: KindConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| at(e.message().trim().to_string()))?;
        if let KindConfig::Witness(c) = &mut kind {
            anchor_witness(base, c).map_err(at)?;
        }
        if common.name.is_empty() || !names.insert(common.name.clone()) {
            return Err(at("every sink needs a name of its own".into()));
        }
        if !(1..=10_000).contains(&common.batch) {
            return Err(at("`batch` must be 1 to 10,000".into()));
        }
        if common.lease_ms < 100 {
            return Err(at("`lease_ms` must be at least 100".into()));
        }
        if common.max_tries == 0 {
            return Err(at("`max_tries` must be at least 1".into()));
        }
        let redactor = match &common.redact_policy {
            None => None,
            Some(p) => Some(load_policy(&base.join(p)).map_err(at)?),
        };
        sinks.push(SinkConfig {
            spec: SinkSpec {
                name: common.name,
                batch: common.batch,
                max_tries: common.max_tries,
                backoff: Backoff {
                    initial: Duration::from_millis(common.backoff_initial_ms.max(1)),
                    max: Duration::from_millis(common.backoff_max_ms.max(1)),
                },
                poll: Duration::from_millis(common.poll_ms.max(1)),
                start: common.start,
                logs: common.logs,
                redactor,
                durable: true,
                lease: Duration::from_millis(common.lease_ms),
            },
            kind,
            line,
        });
    }
    Ok(sinks)
}

/// A witness's `path` is relative to the file, and its `key` is the key's text or a file
/// holding it (as `witness push --key` takes it).
fn anchor_witness(base: &Path, config: &mut WitnessConfig) -> Result<(), String> {
    if let Some(path) = &mut config.path {
        *path = base.join(&*path);
    }
    if let Some(key) = &mut config.key {
        let file = base.join(&*key);
        if !key.contains('+') || file.is_file() {
            *key = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read the witness key {}: {e}", file.display()))?
                .trim()
                .to_string();
        }
    }
    Ok(())
}

/// A redaction policy file (the `--redact-policy` format), its `[hash] key_file` relative to it.
fn load_policy(path: &Path) -> Result<Arc<Redactor>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the redaction policy {}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    Redactor::from_toml(&text, |key_file| {
        let key_path = base.join(key_file);
        std::fs::read(&key_path).map_err(|e| format!("cannot read {}: {e}", key_path.display()))
    })
    .map(Arc::new)
    .map_err(|e| format!("redaction policy {}: {e}", path.display()))
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
