//! `mcp-audit proxy --listen ADDR --upstream URL`: the audit layer in front of a remote
//! Streamable HTTP MCP server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mcp_audit_proxy::http::{IdentityConfig, JwtKeys, Limits, parse_trusted_proxy};
use mcp_audit_proxy::{HttpConfig, Transport, run_http};
use mcp_audit_store::Durability;

use crate::commands::proxy_audit;
use crate::db::Db;

/// The flags of the HTTP mode.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Streamable HTTP (--listen)")]
pub struct HttpArgs {
    /// Serve MCP over Streamable HTTP on this address instead of running a server over stdio.
    #[arg(long, value_name = "ADDR", requires = "upstream")]
    pub listen: Option<SocketAddr>,
    /// The upstream MCP endpoint (http:// or https://); the proxy serves the same path.
    #[arg(
        long,
        value_name = "URL",
        requires = "listen",
        conflicts_with = "server"
    )]
    upstream: Option<String>,
    /// Also trust the CA certificates in this PEM file for an https:// upstream.
    #[arg(long, value_name = "PEM", requires = "listen")]
    upstream_ca: Option<PathBuf>,
    /// Verify bearer JWTs (HS256) with the secret in this file.
    #[arg(long, value_name = "PATH", requires = "listen", group = "jwt_key")]
    jwt_hs256_secret_file: Option<PathBuf>,
    /// Verify bearer JWTs (RS256 or ES256) with this PEM public key.
    #[arg(long, value_name = "PEM", requires = "listen", group = "jwt_key")]
    jwt_public_key: Option<PathBuf>,
    /// Verify bearer JWTs with the keys of this JWKS file (chosen by `kid`).
    #[arg(long, value_name = "FILE", requires = "listen", group = "jwt_key")]
    jwt_jwks: Option<PathBuf>,
    /// Answer 401 (and record `denied`) to requests without a valid token.
    #[arg(long, requires = "jwt_key")]
    jwt_required: bool,
    /// The token's `iss` must be this.
    #[arg(long, value_name = "ISS", requires = "jwt_key")]
    jwt_issuer: Option<String>,
    /// The token's `aud` must contain this.
    #[arg(long, value_name = "AUD", requires = "jwt_key")]
    jwt_audience: Option<String>,
    /// The claim that names the caller's team.
    #[arg(long, default_value = "team", value_name = "NAME")]
    team_claim: String,
    /// A header a trusted gateway sets to the caller's user id (believed only from
    /// --trusted-proxy peers when any are given).
    #[arg(long, value_name = "NAME", requires = "listen")]
    identity_header: Option<String>,
    /// A proxy (address or CIDR) whose X-Forwarded-For is believed; repeatable.
    #[arg(long, value_name = "CIDR/IP", requires = "listen")]
    trusted_proxy: Vec<String>,
    /// Request bodies larger than this are answered 413 (and recorded).
    #[arg(long, default_value_t = 4 * 1024 * 1024, value_name = "BYTES")]
    max_body: usize,
    /// How long a client may take to send a request body; then 408, recorded.
    #[arg(long, default_value = "30s", value_parser = mcp_audit_server::time::parse_duration, value_name = "DURATION")]
    body_timeout: Duration,
    /// How long the upstream may take to answer, or to send the next chunk of an answer to a
    /// POST (`30s`, `5m`); then 504, or the stream is cut, and recorded.
    #[arg(long, default_value = "300s", value_parser = mcp_audit_server::time::parse_duration, value_name = "DURATION")]
    upstream_timeout: Duration,
    /// Sessions without traffic for this long are ended and forgotten.
    #[arg(long, default_value = "30m", value_parser = mcp_audit_server::time::parse_duration, value_name = "DURATION")]
    session_idle: Duration,
    /// Client connections open at once; more are answered 503 and closed (and logged).
    #[arg(long, default_value_t = Limits::default().max_connections as u32, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    max_connections: u32,
    /// How long a client may take to send a request's head, or leave a keep-alive connection
    /// idle; then the connection is closed (and logged).
    #[arg(long, default_value = "30s", value_parser = mcp_audit_server::time::parse_duration, value_name = "DURATION")]
    header_timeout: Duration,
}

/// The flags shared with the stdio mode.
pub struct Common {
    pub server_name: Option<String>,
    pub durability: Durability,
    pub capture_limit: usize,
    pub checkpoints: crate::commands::integrity::CheckpointFlags,
    pub max_outage: proxy_audit::MaxOutage,
    pub redaction: std::sync::Arc<mcp_audit_core::redact::Redactor>,
    /// The recording policy (`--retention-policy`'s classes).
    pub policy: mcp_audit_core::Policy,
    /// `/metrics` on a listener of its own; else on `--listen` (see `HttpConfig::metrics_route`).
    pub metrics_listen: Option<SocketAddr>,
    /// `--sink FILE`: sinks run inside the proxy.
    pub sinks: crate::commands::follow::HostedArgs,
}

pub fn run(db: &Db, args: HttpArgs, common: Common) -> Result<i32> {
    let (Some(listen), Some(upstream)) = (args.listen, &args.upstream) else {
        bail!("--listen needs --upstream URL");
    };
    let upstream = mcp_audit_proxy::http::Url::parse(upstream)
        .with_context(|| format!("--upstream `{upstream}` is not a URL"))?;
    if !matches!(upstream.scheme(), "http" | "https") {
        bail!("--upstream must be an http:// or https:// URL, not `{upstream}`");
    }
    if common.metrics_listen.is_none() && upstream.path() == mcp_audit_proxy::http::METRICS_PATH {
        bail!(
            "the upstream's path is {}, where the proxy serves its metrics: give them a listener of their own with --metrics-listen ADDR",
            mcp_audit_proxy::http::METRICS_PATH
        );
    }
    if args.header_timeout.is_zero() {
        bail!("--header-timeout must be longer than 0");
    }
    let identity = identity(&args)?;
    let upstream_roots = match &args.upstream_ca {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            mcp_audit_proxy::http::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} holds no usable PEM certificate", path.display()))?
        }
        None => Vec::new(),
    };
    let (audit, checkpointing) = proxy_audit::start(
        db,
        common.durability,
        Transport::Http,
        &common.checkpoints,
        common.max_outage,
        common.redaction,
        common.policy,
    )?;
    let sinks = common.sinks.load(db)?;
    // Said once the port is open: where clients connect, and where the trail goes.
    let started = format!(
        "{}, forwarding to {upstream}, recording to {} ({} durability)",
        upstream.path(),
        db.name(),
        match common.durability {
            Durability::Sync => "sync",
            Durability::Batch => "batch",
        }
    );
    let denials = mcp_audit_proxy::Denials::default();
    let config = HttpConfig {
        denials: denials.clone(),
        metrics_route: common.metrics_listen.is_none(),
        upstream,
        upstream_roots,
        identity,
        server_name: common.server_name,
        capture_limit: common.capture_limit,
        record_intents: common.durability == Durability::Sync,
        body_limit: args.max_body,
        body_timeout: args.body_timeout,
        upstream_timeout: args.upstream_timeout,
        session_idle: args.session_idle,
        limits: Limits {
            max_connections: args.max_connections as usize,
            header_timeout: args.header_timeout,
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // Before the port opens: a client may stop the proxy as soon as it can connect.
        let stop = mcp_audit_proxy::audit::stop_signal();
        let sinks = sinks.map(crate::commands::follow::Hosted::start);
        let metrics = match common.metrics_listen {
            Some(at) => Some(
                proxy_audit::serve_metrics(at, audit.recorder(), &denials, sinks.as_ref()).await?,
            ),
            None => None,
        };
        audit.recover().await?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        tracing::info!(%listen, "mcp-audit proxy listening");
        let at = listener.local_addr().unwrap_or(listen);
        eprintln!("mcp-audit proxy: clients connect to http://{at}{started}");
        let served = run_http(listener, config, audit.recorder().clone(), stop).await;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        if let Some(sinks) = sinks {
            sinks.finish().await;
        }
        proxy_audit::finish(audit, checkpointing, served)
            .await
            .map(|()| 0)
    })
}

fn identity(args: &HttpArgs) -> Result<IdentityConfig> {
    let jwt = if let Some(path) = &args.jwt_hs256_secret_file {
        Some(JwtKeys::hs256_secret_file(path)?)
    } else if let Some(path) = &args.jwt_public_key {
        Some(JwtKeys::public_key_pem(path)?)
    } else if let Some(path) = &args.jwt_jwks {
        Some(JwtKeys::jwks_file(path)?)
    } else {
        None
    };
    let trusted_proxies = args
        .trusted_proxy
        .iter()
        .map(|p| parse_trusted_proxy(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(IdentityConfig {
        jwt,
        jwt_required: args.jwt_required,
        issuer: args.jwt_issuer.clone(),
        audience: args.jwt_audience.clone(),
        team_claim: args.team_claim.clone(),
        identity_header: args.identity_header.clone(),
        trusted_proxies,
    })
}
