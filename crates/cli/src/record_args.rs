//! What the commands that take events from outside record them with (`log`, and `serve` for
//! what writers post): the audit level, the default retention, the retention classes and the
//! redaction policy, read once at start so that a bad file stops the command before anything
//! runs. One set of flags, so that `log -` and `POST /api/v1/events` record alike.

use std::sync::Arc;

use mcp_audit_core::redact::Redactor;
use mcp_audit_core::{AuditLevel, Policy, Retention};

use crate::redact_arg::RedactArgs;
use crate::retention_arg::RetentionPolicyArgs;

#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// What to record: all, writes (writes and executions only), off
    #[arg(long, default_value_t = AuditLevel::All, value_name = "LEVEL")]
    pub level: AuditLevel,
    /// Retention of events that name none: a duration (30d, 6mo, 7y), `forever`, or a policy
    /// name (short, standard, extended)
    #[arg(long, value_name = "DURATION|NAME")]
    pub retention: Option<Retention>,
    #[command(flatten)]
    pub redaction: RedactArgs,
    #[command(flatten)]
    pub retention_policy: RetentionPolicyArgs,
}

impl RecordArgs {
    /// The recorder's policy and redaction these flags give.
    pub fn load(&self) -> anyhow::Result<(Policy, Arc<Redactor>)> {
        let policy = Policy {
            level: self.level,
            default_retention: self.retention.clone(),
            ..Policy::default()
        };
        Ok((
            self.retention_policy.apply_to(policy)?,
            self.redaction.load()?,
        ))
    }
}
