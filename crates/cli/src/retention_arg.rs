//! `--retention-policy FILE`: the retention classes of the commands that record (`proxy`,
//! `log`), read once at start so that a bad file stops the command before anything runs. The
//! classes go into the recorder's `Policy`, which sets each event's `expires_at` when it is
//! recorded (`mcp_audit_core::retention_classes`).

use std::path::PathBuf;

use anyhow::Context;
use mcp_audit_core::{Policy, RetentionClasses};

/// The retention-classes flag, shared by the commands that record.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RetentionPolicyArgs {
    /// Retention classes (TOML): by kind, classification, server and tool, a retention for the
    /// events that name none (the first class that matches). See docs/privacy.md.
    #[arg(long, value_name = "FILE")]
    pub retention_policy: Option<PathBuf>,
}

impl RetentionPolicyArgs {
    /// `policy` with the classes of the file the flag names, if any.
    pub fn apply_to(&self, mut policy: Policy) -> anyhow::Result<Policy> {
        let Some(path) = &self.retention_policy else {
            return Ok(policy);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the retention policy {}", path.display()))?;
        policy.classes = RetentionClasses::from_toml(&text, &policy.builtin_names())
            .with_context(|| format!("retention policy {}", path.display()))?;
        Ok(policy)
    }
}
