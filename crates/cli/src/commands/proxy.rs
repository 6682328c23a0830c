//! `mcp-audit proxy`: placeholder until the stdio proxy lands (issue 3); its owner replaces
//! this file.

use std::path::Path;

/// Runs an MCP server as a child process and records what passes through.
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// The server command and its arguments, after `--`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub server: Vec<String>,
}

pub fn run(_db: &Path, _args: ProxyArgs) -> anyhow::Result<i32> {
    anyhow::bail!("the proxy is not yet available in this build")
}
