//! `mcp-audit token`: console tokens for `serve`, kept as events of the log itself (see
//! `mcp_audit_server::tokens`): creating or revoking one is recorded, and `list` reads them back.

use std::io::{self, Write};

use anyhow::bail;
use mcp_audit_server::tokens::Grant;
use mcp_audit_server::{NewToken, TokenTable, tokens};

use crate::db::Db;
use crate::table::Table;

/// Create, list and revoke the console's access tokens
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit token create --name alice --role auditor
  mcp-audit token create --name billing-mcp --role writer   (may only POST /api/v1/events)
  mcp-audit token list
  mcp-audit token revoke 3f2a9c0d1e4b5a67
Roles: viewer (metadata), reviewer (+ review queue), auditor (+ arguments, results, exports),
admin (+ tokens over the API); writer, apart from them: posts events to the ingest API
(POST /api/v1/events) and reads nothing. The token is printed once; the log keeps only its SHA-256.")]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Create a token and print it (once)
    Create {
        /// Who the token is for: the actor of every read it makes
        #[arg(long)]
        name: String,
        /// viewer, reviewer, auditor or admin (reading), or writer (posts events to the
        /// ingest API and reads nothing)
        #[arg(long)]
        role: Grant,
        /// Who creates it, as recorded (default: the OS user)
        #[arg(long, value_name = "USER")]
        actor: Option<String>,
    },
    /// List every token: id, name, role, created, revoked
    List {
        /// As a JSON array
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id
    Revoke {
        /// The token's id (from `token list`)
        id: String,
        /// Who revokes it, as recorded (default: the OS user)
        #[arg(long, value_name = "USER")]
        actor: Option<String>,
    },
}

pub fn run(db: &Db, args: TokenArgs) -> anyhow::Result<()> {
    match args.command {
        TokenCommand::Create { name, role, actor } => {
            if name.trim().is_empty() {
                bail!("--name must name who the token is for");
            }
            let actor = actor.unwrap_or_else(crate::commands::proxy::os_user);
            let token = NewToken::generate();
            db.record_one(
                token.create_event(name.trim(), role, &actor)?,
                "the token event",
            )?;
            println!("{}", token.secret);
            eprintln!(
                "created token {} for {} ({role}); it is shown only now",
                token.id,
                name.trim()
            );
        }
        TokenCommand::List { json } => {
            let table = TokenTable::load(db.open_read_only()?.as_mut())?;
            let mut out = io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &table.tokens)?;
                writeln!(out)?;
            } else {
                let mut rows = Table::new(&["id", "name", "role", "created", "revoked"]);
                for t in &table.tokens {
                    rows.push([
                        t.id.clone(),
                        t.name.clone(),
                        t.grant.to_string(),
                        crate::render::time(t.created),
                        t.revoked.map(crate::render::time).unwrap_or_default(),
                    ]);
                }
                rows.write(&mut out)?;
            }
        }
        TokenCommand::Revoke { id, actor } => {
            let table = TokenTable::load(db.open_read_only()?.as_mut())?;
            match table.get(&id) {
                None => bail!("no token with id `{id}` (see `mcp-audit token list`)"),
                Some(t) if t.revoked.is_some() => bail!("token `{id}` is already revoked"),
                Some(_) => {}
            }
            let actor = actor.unwrap_or_else(crate::commands::proxy::os_user);
            db.record_one(tokens::revoke_event(&id, &actor)?, "the token event")?;
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}
