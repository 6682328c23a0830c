//! `mcp-audit redact --test FILE`: what a redaction policy does to a sample, before it is put
//! in front of real traffic.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use mcp_audit_core::AuditEvent;
use serde_json::Value;

use mcp_audit_core::input::parse_event;

/// Show what a redaction policy does to a sample event or JSON value
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit redact --test policy.toml < event.json
  echo '{\"password\":\"hunter2\",\"q\":\"Bearer abc.def.ghi\"}' | mcp-audit redact
  mcp-audit redact --test policy.toml --server files --tool read --result < result.json

Reads one JSON document from stdin. An object with `kind` and `operation` is taken as an event
(the form `mcp-audit log` reads) and printed as it would be recorded; anything else is taken as
a tool's arguments (or, with --result, its result) and printed redacted. The rules that fired
and their counts go to stderr.")]
pub struct RedactArgs {
    /// The policy file to try; `none` for no redaction. Default: the built-in secrets policy.
    #[arg(long = "test", value_name = "FILE|none")]
    policy: Option<PathBuf>,
    /// For a sample that is not an event: the server it came from (for rules scoped by server).
    #[arg(long, value_name = "NAME")]
    server: Option<String>,
    /// For a sample that is not an event: the tool it went to (for rules scoped by tool).
    #[arg(long, value_name = "NAME", default_value = "sample")]
    tool: String,
    /// For a sample that is not an event: it is a result, not arguments.
    #[arg(long)]
    result: bool,
}

pub fn run(args: RedactArgs) -> anyhow::Result<()> {
    let redactor = crate::redact_arg::load(args.policy.as_deref())?;
    let mut bytes = Vec::new();
    io::stdin()
        .read_to_end(&mut bytes)
        .context("cannot read the sample from stdin")?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        bail!("no sample on stdin: give one JSON document (an event, or a tool's arguments)");
    }
    let value: Value = serde_json::from_slice(&bytes).context("the sample is not JSON")?;
    let is_event = value
        .as_object()
        .is_some_and(|o| o.contains_key("kind") && o.contains_key("operation"));
    let (printed, fired) = if is_event {
        let mut event = parse_event(&bytes)?.event;
        let fired = redactor.redact(&mut event);
        (serde_json::to_value(&event)?, fired)
    } else {
        let mut builder = AuditEvent::tool_execution(args.tool.as_str());
        if let Some(server) = &args.server {
            builder = builder.server(server.as_str());
        }
        let mut event = builder.build()?;
        if args.result {
            event.payload.output = Some(value);
        } else {
            event.payload.input = Some(value);
        }
        let fired = redactor.redact(&mut event);
        let payload = std::mem::take(&mut event.payload);
        (
            payload.output.or(payload.input).unwrap_or(Value::Null),
            fired,
        )
    };
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &printed)?;
    writeln!(out)?;
    let mut err = io::stderr().lock();
    if fired.is_empty() {
        writeln!(err, "nothing redacted")?;
    } else {
        for one in &fired {
            writeln!(err, "redacted by {}: {}", one.rule, one.count)?;
        }
    }
    Ok(())
}
