//! `--redact-policy FILE|none`: the redaction policy of the commands that record (`proxy`,
//! `log`), read once at start so that a bad policy stops the command before anything runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use mcp_audit_core::redact::Redactor;

/// The redaction flag, shared by the commands that record.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RedactArgs {
    /// The redaction policy (TOML) applied to every event before it is sealed and stored;
    /// `none` records payloads as given. Default: the built-in secrets policy (bearer
    /// values, JWTs, private keys, API tokens, password/secret/token fields). See
    /// docs/privacy.md.
    #[arg(long, value_name = "FILE|none")]
    pub redact_policy: Option<PathBuf>,
}

impl RedactArgs {
    /// The policy the flag names, compiled.
    pub fn load(&self) -> anyhow::Result<Arc<Redactor>> {
        load(self.redact_policy.as_deref())
    }
}

/// `None`: the built-in secrets policy; `none`: no redaction (a file of that name is
/// `./none`); anything else: a policy file, whose `[hash] key_file` is read relative to it.
pub fn load(spec: Option<&Path>) -> anyhow::Result<Arc<Redactor>> {
    let Some(path) = spec else {
        return Ok(Redactor::shared_secrets());
    };
    if path == Path::new("none") {
        return Ok(Arc::new(Redactor::none()));
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the redaction policy {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let redactor = Redactor::from_toml(&text, |key_file| {
        let key_path = base.join(key_file);
        let key = std::fs::read(&key_path)
            .map_err(|e| format!("cannot read {}: {e}", key_path.display()))?;
        // Whoever reads the key can test guesses against every pseudonym made with it.
        if let Some(mode) = mcp_audit_store::files::readable_by_others(&key_path) {
            eprintln!(
                "warning: the redaction key {} is open to other users (mode {mode:03o}): chmod 600 {}",
                key_path.display(),
                key_path.display()
            );
        }
        Ok(key)
    })
    .with_context(|| format!("redaction policy {}", path.display()))?;
    Ok(Arc::new(redactor))
}
