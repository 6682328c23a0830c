//! `mcp-audit schema`: the JSON Schema of an event's JSON form, generated from the Rust types.
//!
//! The same text is checked in as `schema/audit-event.v1.schema.json`; a test regenerates it,
//! so the published schema can not drift from what `log` accepts.

use std::io::{self, Write};

use serde_json::Value;

/// Print the JSON Schema of the event JSON form (what `log` reads)
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  mcp-audit schema > audit-event.v1.schema.json")]
pub struct SchemaArgs {}

pub fn run(_args: SchemaArgs) -> anyhow::Result<()> {
    let schema = without_generated_defaults(mcp_audit_core::event_json_schema());
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &schema)?;
    writeln!(out)?;
    Ok(())
}

/// Fields whose serde default is generated at run time.
const GENERATED: [&str; 2] = ["id", "timestamp"];

/// The schema without the `default` that schemars computes for `id` and `timestamp` by
/// calling their default functions: a fresh UUID and the current time, different on every run
/// (so the checked-in file could never match) and meaningless to a reader, whom the field
/// descriptions already tell that both are generated when absent.
fn without_generated_defaults(mut schema: Value) -> Value {
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for field in GENERATED {
            if let Some(property) = properties.get_mut(field).and_then(Value::as_object_mut) {
                property.remove("default");
            }
        }
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_the_same_on_every_run() {
        let first = without_generated_defaults(mcp_audit_core::event_json_schema());
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = without_generated_defaults(mcp_audit_core::event_json_schema());
        assert_eq!(first, second);
        assert!(first["properties"]["kind"].is_object());
    }
}
