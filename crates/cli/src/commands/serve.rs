//! `mcp-audit serve`: the audit console's HTTP API (`mcp_audit_server`) over `--db`.
//!
//! Thin: parses the flags, opens the database and the console's own recorder, and hands over.
//! On SQLite the console is one more writer of the file the proxies write (reads and reviews
//! are recorded into the same log); on PostgreSQL it writes a log of its own (`--log-id`, by
//! default a new one for each run), and reads every log. The events writers post go through a
//! second recorder with the ingest policy: the same SQLite log, or a new PostgreSQL log of
//! each run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use mcp_audit_core::EventId;
use mcp_audit_core::checkpoint::NoteVerifier;
use mcp_audit_core::cosignature::CosignatureSigner;
use mcp_audit_proxy::http::{IdentityConfig, JwtKeys};
use mcp_audit_server::jwt::{DEFAULT_ROLE_CLAIM, parse_role_mapping};
use mcp_audit_server::tokens::Grant;
use mcp_audit_server::witness::{TrustedLog, Witness};
use mcp_audit_server::{Config, Databases, Ingest, JwtRoles, OpenError};
use mcp_audit_store::{Durability, Recorder, RecorderConfig, Store};

use crate::db::Db;

/// Serve the audit console's HTTP API
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  mcp-audit token create --name alice --role auditor     # prints the token once
  mcp-audit serve --listen 127.0.0.1:8700
  curl -H 'Authorization: Bearer mcpa_...' http://127.0.0.1:8700/api/v1/events?limit=10
  mcp-audit serve --tls-cert cert.pem --tls-key key.pem --jwt-jwks idp-keys.json \
      --jwt-issuer https://idp.example --jwt-audience mcp-audit --jwt-role-map sec-team=auditor
  mcp-audit serve --witness-key witness.key \
      --witness-trust 'audit.example.com/log=audit.example.com+1a2b3c4d+AQ...'
  mcp-audit token create --name billing-mcp --role writer
  curl -H 'Authorization: Bearer mcpa_...' -H 'Content-Type: application/jsonl' \
      --data-binary @events.jsonl 'http://127.0.0.1:8700/api/v1/events?wait=durable'
  mcp-audit serve --redact-policy redact.toml --retention-policy retention.toml
Events posted by writers (POST /api/v1/events) are checked and recorded as `mcp-audit log -`
records them, with --level, --retention, --redact-policy and --retention-policy; the
console's own records keep the defaults. See docs/ingest.md.
Every read of arguments or results, every export and every review is recorded in the log with
the token's name. See docs/console.md for the roles and the API.

With --witness-key, serve is also a witness (C2SP tlog-witness): POST /add-checkpoint co-signs a
checkpoint of a --witness-trust log when it extends the last one it co-signed for that origin,
and refuses a fork or a truncation (409/422). Its state is kept in --db. See docs/sinks.md.")]
pub struct ServeArgs {
    /// Where to listen (address:port)
    #[arg(long, default_value = "127.0.0.1:8700", value_name = "ADDR")]
    listen: SocketAddr,
    /// The checkpoint verifier key (its text, or a file holding it), shown by /api/v1/integrity
    #[arg(long, value_name = "KEY")]
    verifier_key: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Also take JWT bearers (HS256) verified with the secret in this file
    #[arg(long, value_name = "PATH", group = "jwt_key")]
    jwt_hs256_secret_file: Option<PathBuf>,
    /// Also take JWT bearers (RS256 or ES256) verified with this PEM public key
    #[arg(long, value_name = "PEM", group = "jwt_key")]
    jwt_public_key: Option<PathBuf>,
    /// Also take JWT bearers verified with the keys of this JWKS file (chosen by `kid`)
    #[arg(long, value_name = "FILE", group = "jwt_key")]
    jwt_jwks: Option<PathBuf>,
    /// Require this issuer (`iss`) in every JWT
    #[arg(long, value_name = "ISS", requires = "jwt_key")]
    jwt_issuer: Option<String>,
    /// Require this audience (`aud`) in every JWT
    #[arg(long, value_name = "AUD", requires = "jwt_key")]
    jwt_audience: Option<String>,
    /// The JWT claim whose value (a text or a list) names the role
    #[arg(long, value_name = "NAME", default_value = DEFAULT_ROLE_CLAIM, requires = "jwt_key")]
    jwt_role_claim: String,
    /// A claim value that stands for a role, e.g. an identity provider's group (repeatable)
    #[arg(long, value_name = "VALUE=ROLE", requires = "jwt_key", value_parser = parse_role_mapping)]
    jwt_role_map: Vec<(String, Grant)>,
    // How posted events are recorded (the console's own records keep the defaults).
    #[command(flatten)]
    record: crate::record_args::RecordArgs,
    /// The largest body POST /api/v1/events takes, in bytes (a larger one is a 413)
    #[arg(long, value_name = "BYTES", default_value_t = mcp_audit_server::DEFAULT_MAX_BODY)]
    ingest_max_body: usize,
    /// Act as a C2SP tlog-witness (POST /add-checkpoint) with this key from `witness keygen`
    #[arg(long, value_name = "PATH", requires = "witness_trust")]
    witness_key: Option<PathBuf>,
    /// A log to witness: its checkpoints' origin line and its verifier key (text or file) (repeatable)
    #[arg(long, value_name = "ORIGIN=KEY", requires = "witness_key")]
    witness_trust: Vec<String>,
    #[command(flatten)]
    sinks: crate::commands::follow::HostedArgs,
}

impl ServeArgs {
    /// The JWT configuration, if a key is given; a key file that cannot be used is an error
    /// here, before anything is served.
    fn jwt(&self) -> anyhow::Result<Option<JwtRoles>> {
        let keys = if let Some(path) = &self.jwt_hs256_secret_file {
            JwtKeys::hs256_secret_file(path)?
        } else if let Some(path) = &self.jwt_public_key {
            JwtKeys::public_key_pem(path)?
        } else if let Some(path) = &self.jwt_jwks {
            JwtKeys::jwks_file(path)?
        } else {
            return Ok(None);
        };
        Ok(Some(JwtRoles {
            identity: IdentityConfig {
                jwt: Some(keys),
                jwt_required: true,
                issuer: self.jwt_issuer.clone(),
                audience: self.jwt_audience.clone(),
                ..IdentityConfig::default()
            },
            role_claim: self.jwt_role_claim.clone(),
            role_map: self.jwt_role_map.clone(),
        }))
    }
}

/// The command line's way to the database, lent to the server.
struct CliDatabases(Db);

impl Databases for CliDatabases {
    fn reader(&self) -> Result<Box<dyn Store>, OpenError> {
        Ok(self.0.open_read_only()?)
    }

    fn event_log(&self, id: EventId) -> Result<Option<Box<dyn Store>>, OpenError> {
        Ok(Some(self.0.open_event_log(id)?))
    }

    fn logs(&self) -> Result<Vec<String>, OpenError> {
        Ok(self.0.log_ids()?)
    }

    fn log_reader(&self, log_id: &str) -> Result<Box<dyn Store>, OpenError> {
        Ok(self.0.open_log(log_id)?)
    }
}

/// The witness of `--witness-key` and `--witness-trust`, keeping its state in `db`.
fn witness(db: &Db, args: &ServeArgs) -> anyhow::Result<Option<Arc<Witness>>> {
    let Some(path) = &args.witness_key else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let signer = CosignatureSigner::from_text(&text)
        .with_context(|| format!("reading the witness key in {}", path.display()))?;
    let trusted = args
        .witness_trust
        .iter()
        .map(|trust| {
            let (origin, key) = trust
                .split_once('=')
                .with_context(|| format!("--witness-trust `{trust}`: expected ORIGIN=KEY"))?;
            if origin.is_empty() || origin.contains('\n') {
                anyhow::bail!("--witness-trust `{trust}`: the origin is empty");
            }
            let key = crate::commands::integrity::read_verifier(key)
                .with_context(|| format!("--witness-trust {origin}"))?;
            Ok(TrustedLog {
                origin: origin.to_string(),
                key,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(Arc::new(Witness {
        signer,
        trusted,
        state: std::sync::Mutex::new(db.open_eraser()?),
    })))
}

pub fn run(db: &Db, args: ServeArgs) -> anyhow::Result<()> {
    // Certificate, key and JWT key files that cannot be used fail before anything opens.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(mcp_audit_server::tls::server_config(cert, key)?),
        _ => None,
    };
    let jwt = args.jwt()?;
    // A mistyped --db must fail here, not on the first request.
    db.open_read_only()?;
    let witness = witness(db, &args)?;
    for warning in db.exposure_warnings(&[]) {
        eprintln!("warning: {warning}");
    }
    let verifier_key = args
        .verifier_key
        .map(|key| -> anyhow::Result<String> {
            Ok(if Path::new(&key).exists() {
                std::fs::read_to_string(&key).with_context(|| format!("reading {key}"))?
            } else {
                key
            }
            .trim()
            .to_string())
        })
        .transpose()?;
    if let Some(key) = &verifier_key {
        NoteVerifier::from_text(key)
            .context("reading the verifier key (its text, or a file holding it)")?;
    }
    let recorder = Recorder::start(
        db.open_writable(Durability::Sync)?,
        RecorderConfig {
            durability: Durability::Sync,
            ..RecorderConfig::default()
        },
    )
    .context("opening the console's recorder")?;
    let ingest = {
        let (policy, redaction) = args.record.load()?;
        // A recorder of its own: the writers' events get the policy and redaction given here,
        // the console's own records (tokens, reads, reviews) keep theirs.
        let recorder = Recorder::start(
            db.open_another_writable()?,
            RecorderConfig {
                durability: Durability::Sync,
                policy: policy.clone(),
                redaction,
                ..RecorderConfig::default()
            },
        )
        .context("opening the ingest recorder")?;
        Ingest::new(recorder, policy, args.ingest_max_body)
    };
    let ingest_recorder = ingest.recorder.clone();
    let sinks = args.sinks.load(db)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async {
        let stop = mcp_audit_proxy::audit::stop_signal();
        let listener = mcp_audit_server::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!(
            "mcp-audit serve: listening on {scheme}://{addr}/api/v1/ ({})",
            db.name()
        );
        let sinks = sinks.map(crate::commands::follow::Hosted::start);
        let config = Config {
            databases: Arc::new(CliDatabases(db.clone())),
            recorder: recorder.clone(),
            verifier_key,
            tls,
            jwt,
            witness,
            collectors: sinks
                .iter()
                .map(|s| {
                    Box::new(s.collector.clone())
                        as Box<dyn prometheus_client::collector::Collector>
                })
                .collect(),
            ingest: Some(ingest),
        };
        let served = mcp_audit_server::serve(listener, config, stop)
            .await
            .context("serving");
        if let Some(sinks) = sinks {
            sinks.finish().await;
        }
        served
    });
    let ingested = ingest_recorder.shutdown();
    let stopped = recorder.shutdown();
    served?;
    stopped.context("the console's records")?;
    ingested.context("the ingested events")?;
    Ok(())
}
