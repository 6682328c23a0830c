//! The syslog sink: RFC 5424 messages over TCP (RFC 6587) or TLS (RFC 5425), one per record,
//! with a CEF, LEEF, OCSF or JSON body (see [`crate::format`]).
//!
//! Each message carries the record's key in a structured-data element,
//! `[mcp-audit@32473 log="LOG" seq="SEQ"]`, and is framed by octet counting, so no byte of an
//! event can split a record or forge another. The connection is opened on the first batch and
//! kept; a failed connect, handshake or write drops it and reports
//! [`Failure::Unavailable`](crate::Failure::Unavailable), and the next batch connects afresh.
//!
//! # What "delivered" means here
//!
//! Syslog over TCP has no application-level acknowledgement: the receiver never says that it
//! stored a message. A batch counts as delivered once it is written and flushed to the socket
//! (the kernel took every byte), and the runner then moves the cursor. So:
//!
//! - a receiver that is down, refuses the connection or resets it before the write is seen:
//!   the batch is retried, nothing is lost;
//! - a receiver that closed the connection since the last batch (a restart) is noticed before
//!   writing (see [`connection`]), and we reconnect first;
//! - a receiver that crashes *after* the kernel took the bytes (in its socket buffer, or in its
//!   own queue before it reached disk) loses them, and we cannot know. The window is one batch
//!   at most; a receiver with a disk-assisted queue (rsyslog's `queue.type="LinkedList"` with
//!   `queue.saveOnShutdown`, or a SIEM's own) narrows it. Where that loss matters, use a sink
//!   whose receiver acknowledges (webhook, OTLP), and compare counts per log and seq on the
//!   receiver: every message carries both, so a gap is visible there.
//!
//! A write that fails half-way through a batch (a receiver that stopped reading, past the
//! timeout) leaves part of it at the receiver; the whole batch is sent again on a new
//! connection, and the receiver sees those records twice, with the same log and seq, and may
//! keep the message the failure cut short as a truncated one.

mod config;
mod connection;
pub mod message;

use std::path::PathBuf;
use std::time::Duration;

use mcp_audit_store::StoredEvent;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

pub use config::{Facility, Framing, SyslogConfig, SyslogTls};

use crate::format::Format;
use crate::{Destination, Failure};
use connection::{Connection, Tls};
use message::Header;

/// Why a syslog sink cannot be set up from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyslogError {
    /// A field holds a value the protocol cannot carry.
    #[error("syslog sink: {field}: {reason}")]
    Field { field: &'static str, reason: String },
    /// The CA file cannot be read.
    #[error("syslog sink: cannot read the CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The CA file holds no certificate rustls accepts as a trust anchor.
    #[error("syslog sink: {path} holds no usable PEM certificate (`-----BEGIN CERTIFICATE-----`)")]
    NoCertificate { path: PathBuf },
    /// rustls refused the settings.
    #[error("syslog sink: TLS settings refused: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
}

/// A syslog receiver as a [`Destination`].
pub struct Syslog {
    address: String,
    tls: Option<Tls>,
    header: Header,
    format: Format,
    timeout: Duration,
    /// The open connection, if any; `None` after a failure, so the next batch reconnects.
    connection: Option<Connection>,
}

impl Syslog {
    /// Checks `config` and prepares TLS; connects only when the first batch comes, so a
    /// receiver that is down at start-up delays records rather than the process.
    pub fn new(config: SyslogConfig) -> Result<Syslog, SyslogError> {
        let field = |field: &'static str, reason: &str| SyslogError::Field {
            field,
            reason: reason.to_string(),
        };
        // The one framing there is; a second would be matched here.
        let Framing::OctetCounting = config.framing;
        let host = host_of(&config.address).ok_or_else(|| {
            field(
                "address",
                "expected HOST:PORT, such as siem.example.net:6514",
            )
        })?;
        if !message::is_print_us_ascii(&config.app_name, 48) {
            return Err(field(
                "app_name",
                "must be 1 to 48 printable US-ASCII characters without spaces (RFC 5424 APP-NAME)",
            ));
        }
        let hostname = match config.hostname {
            Some(name) => name,
            None => local_hostname(),
        };
        if !message::is_print_us_ascii(&hostname, 255) {
            return Err(field(
                "hostname",
                "must be 1 to 255 printable US-ASCII characters without spaces (RFC 5424 HOSTNAME)",
            ));
        }
        if !(1..=3600).contains(&config.timeout_seconds) {
            return Err(field("timeout_seconds", "must be from 1 to 3600"));
        }
        let tls = match &config.tls {
            None => None,
            Some(tls) => Some(prepare_tls(tls, host)?),
        };
        Ok(Syslog {
            address: config.address,
            tls,
            header: Header {
                facility: config.facility.code(),
                hostname,
                app_name: config.app_name,
                proc_id: std::process::id(),
            },
            format: config.format,
            timeout: Duration::from_secs(config.timeout_seconds),
            connection: None,
        })
    }

    /// The open connection, or a new one when there is none or the receiver closed it.
    async fn connection(&mut self) -> Result<&mut Connection, Failure> {
        if let Some(open) = &mut self.connection
            && open.peer_closed().await
        {
            tracing::info!(address = %self.address, "syslog receiver closed the connection; reconnecting");
            self.connection = None;
        }
        if self.connection.is_none() {
            let open = tokio::time::timeout(
                self.timeout,
                Connection::open(&self.address, self.tls.as_ref()),
            )
            .await
            .map_err(|_| unavailable(&self.address, "timed out connecting"))?
            .map_err(|e| unavailable(&self.address, &e.to_string()))?;
            self.connection = Some(open);
        }
        self.connection
            .as_mut()
            .ok_or_else(|| unavailable(&self.address, "not connected"))
    }
}

impl Destination for Syslog {
    fn kind(&self) -> &'static str {
        "syslog"
    }

    async fn deliver(&mut self, batch: &[StoredEvent]) -> Result<(), Failure> {
        // Render first: a record that cannot be rendered is refused, and the ones before it
        // still go.
        let mut bytes = Vec::new();
        let mut refused = None;
        for (index, event) in batch.iter().enumerate() {
            match self.format.render(event) {
                Ok(body) => message::frame(&mut bytes, &self.header, event, &body),
                Err(e) => {
                    refused = Some(Failure::Refused {
                        accepted: index,
                        reason: e.to_string(),
                    });
                    break;
                }
            }
        }
        if !bytes.is_empty() {
            let timeout = self.timeout;
            let address = self.address.clone();
            let connection = self.connection().await?;
            let sent = tokio::time::timeout(timeout, connection.send(&bytes)).await;
            let failed = match sent {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("timed out writing".to_string()),
            };
            if let Some(reason) = failed {
                self.connection = None;
                return Err(unavailable(&address, &reason));
            }
        }
        refused.map_or(Ok(()), Err)
    }
}

fn unavailable(address: &str, reason: &str) -> Failure {
    Failure::Unavailable(format!("syslog {address}: {reason}"))
}

/// The host of `HOST:PORT` or `[V6]:PORT`, when the port is a number.
fn host_of(address: &str) -> Option<&str> {
    let (host, port) = address.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

/// This machine's name, or `-` (RFC 5424's NILVALUE) when it has none that fits.
fn local_hostname() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().into_owned();
    if message::is_print_us_ascii(&name, 255) {
        name
    } else {
        "-".to_string()
    }
}

fn prepare_tls(tls: &SyslogTls, host: &str) -> Result<Tls, SyslogError> {
    let pem = std::fs::read(&tls.ca_file).map_err(|source| SyslogError::CaFile {
        path: tls.ca_file.clone(),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok) {
        // A certificate that is not a usable anchor is skipped; none at all is an error.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(SyslogError::NoCertificate {
            path: tls.ca_file.clone(),
        });
    }
    let name = tls.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name.to_string()).map_err(|e| SyslogError::Field {
        field: "tls.server_name",
        reason: format!("{name:?} is neither a DNS name nor an IP address: {e}"),
    })?;
    Ok(Tls {
        connector: TlsConnector::from(connection::client_config(roots)?),
        server_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_takes_names_v4_and_bracketed_v6_and_wants_a_numeric_port() {
        assert_eq!(host_of("siem.example.net:6514"), Some("siem.example.net"));
        assert_eq!(host_of("127.0.0.1:514"), Some("127.0.0.1"));
        assert_eq!(host_of("[::1]:514"), Some("::1"));
        assert_eq!(host_of("siem.example.net"), None);
        assert_eq!(host_of("siem:syslog"), None);
        assert_eq!(host_of(":514"), None);
    }
}
