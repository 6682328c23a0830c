//! The filter flags shared by `query`, `stats` and `export`, and their translation into the
//! store's [`Filter`].

use jiff::Timestamp;
use mcp_audit_core::{Action, Classification, EventKind, Outcome};
use mcp_audit_store::{Filter, TextSearch, TimeBasis};

use mcp_audit_server::time::parse_time;

/// Which events a command covers. Every flag narrows; none means every completed event.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterArgs {
    /// Only this kind of event (tool_execution, resource_access, admin, ...); repeat for several
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<EventKind>,
    /// Only this action (CREATE, READ, UPDATE, DELETE, EXECUTE, ACCESS, EXPORT, IMPORT, or a custom one)
    #[arg(long, value_name = "ACTION")]
    pub action: Option<Action>,
    /// Only this tool name, resource URI, prompt name or method
    #[arg(long = "tool", visible_alias = "operation", value_name = "NAME")]
    pub operation: Option<String>,
    /// Only this resource type (tool, server, user, ...)
    #[arg(long, value_name = "TYPE")]
    pub resource_type: Option<String>,
    /// Only this resource id (a file path, a record id: what the server acted on)
    #[arg(long, value_name = "ID")]
    pub resource_id: Option<String>,
    /// Only events of this user id
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Only events of this MCP session (the proxy records one per client connection)
    #[arg(long, value_name = "SESSION")]
    pub session: Option<String>,
    /// Only events of this correlation id (the records of one request share it: an intent
    /// and its outcome)
    #[arg(long, value_name = "ID")]
    pub correlation: Option<String>,
    /// Only events against this MCP server
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,
    /// success, tool_error, protocol_error, denied, cancelled, incomplete or pending
    #[arg(long, value_name = "OUTCOME")]
    pub outcome: Option<Outcome>,
    /// public, internal, confidential or restricted
    #[arg(long, value_name = "LEVEL")]
    pub classification: Option<Classification>,
    /// Only events that require review
    #[arg(long, conflicts_with = "no_review")]
    pub review: bool,
    /// Only events that do not require review
    #[arg(long)]
    pub no_review: bool,
    /// Only events about this data subject
    #[arg(long, value_name = "ID")]
    pub subject: Option<String>,
    /// At or after this time: RFC 3339, a date, or a span ago (30m, 1h, 7d)
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub since: Option<Timestamp>,
    /// Before this time: RFC 3339, a date, or a span ago (30m, 1h, 7d)
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub until: Option<Timestamp>,
    /// Which time --since and --until bound: `stated`, the time the event gives for itself
    /// (the caller's, which may be back- or future-dated), or `received`, the time the recorder
    /// received it (stamped by the recorder and hashed; events recorded before mcp-audit kept
    /// it have none)
    #[arg(long, value_name = "stated|received", default_value = "stated")]
    pub time: TimeBasis,
    /// Only events whose stated time is more than 5 minutes from their receive time
    #[arg(long)]
    pub skewed: bool,
    /// Also show `pending` intents (operations recorded before they ran)
    #[arg(long)]
    pub include_pending: bool,
    /// Only events whose arguments or result (any of the payload) hold these words, in this
    /// order, ignoring case: `customer-123`, `alice@example.com` (words are runs of letters
    /// and digits; everything else separates them)
    #[arg(long, value_parser = parse_search, value_name = "TEXT")]
    pub search: Option<TextSearch>,
}

fn parse_search(text: &str) -> Result<TextSearch, String> {
    TextSearch::new(text).map_err(|e| e.to_string())
}

impl FilterArgs {
    /// The filter these flags ask for, narrowed to the log `log_id` names (`--log-id`, which
    /// is a database option and not one of these flags).
    pub fn to_filter(&self, log_id: Option<&str>) -> Filter {
        let requires_review = match (self.review, self.no_review) {
            (true, _) => Some(true),
            (false, true) => Some(false),
            (false, false) => None,
        };
        Filter {
            kinds: self.kinds.clone(),
            action: self.action.clone(),
            operation: self.operation.clone(),
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id.clone(),
            user_id: self.user.clone(),
            session_id: self.session.clone(),
            correlation_id: self.correlation.clone(),
            server_name: self.server.clone(),
            outcome: self.outcome,
            classification: self.classification,
            requires_review,
            data_subject_id: self.subject.clone(),
            log_id: log_id.map(str::to_string),
            since: self.since,
            until: self.until,
            time: self.time,
            skewed: self.skewed,
            include_pending: self.include_pending,
            search: self.search.clone(),
        }
    }
}
