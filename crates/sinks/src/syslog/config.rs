//! What a syslog sink is configured with, as the sink configuration file spells it.

use std::path::PathBuf;

use serde::Deserialize;

use crate::format::Format;

/// A syslog receiver and how to talk to it.
///
/// ```toml
/// address = "siem.example.net:6514"
/// format = "cef"          # cef | leef | ocsf | json
/// facility = "local0"
/// app_name = "mcp-audit"
/// tls = { ca_file = "/etc/mcp-audit/siem-ca.pem", server_name = "siem.example.net" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `HOST:PORT` of the receiver's TCP listener (RFC 6587 over TCP, RFC 5425 over TLS).
    pub address: String,
    /// TLS to the receiver; plain TCP when absent.
    #[serde(default)]
    pub tls: Option<SyslogTls>,
    /// RFC 5424 APP-NAME: 1 to 48 printable US-ASCII characters. `mcp-audit` by default.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// RFC 5424 HOSTNAME: 1 to 255 printable US-ASCII characters. This machine's host name
    /// by default.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The syslog facility: `local0` by default.
    #[serde(default)]
    pub facility: Facility,
    /// The message body: `cef` by default.
    #[serde(default)]
    pub format: Format,
    /// How messages are delimited on the stream; octet counting is the one kind that no
    /// byte inside a message can break.
    #[serde(default)]
    pub framing: Framing,
    /// Seconds that connecting, the TLS handshake and each batch's write may take before the
    /// receiver counts as unavailable (1 to 3600; 10 by default).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

/// TLS to the receiver (RFC 5425).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTls {
    /// PEM file of the certificate authorities that may sign the receiver's certificate.
    /// Only these are trusted (not the system's store): a SIEM's listener usually carries a
    /// certificate from an internal CA.
    pub ca_file: PathBuf,
    /// The name the receiver's certificate must be valid for (a DNS name or an IP address);
    /// the host part of `address` by default.
    #[serde(default)]
    pub server_name: Option<String>,
}

/// Stream framing (RFC 6587 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Framing {
    /// `MSG-LEN SP SYSLOG-MSG` (RFC 6587 §3.4.1, and the only framing RFC 5425 allows).
    #[default]
    #[serde(rename = "octet-counting")]
    OctetCounting,
}

/// Syslog facilities (RFC 5424 §6.2.1), by their usual names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    Kern,
    User,
    Mail,
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Ntp,
    /// 13, "log audit".
    Audit,
    /// 14, "log alert".
    Alert,
    Clock,
    #[default]
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    /// The facility's number, 0..=23.
    pub fn code(self) -> u8 {
        self as u8
    }
}

fn default_app_name() -> String {
    "mcp-audit".to_string()
}

fn default_timeout() -> u64 {
    10
}
