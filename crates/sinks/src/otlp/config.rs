//! What an OTLP sink is told: where the receiver is, how to speak to it, and what to send.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// The configuration of one OTLP sink, as the `[[sink]]` table of type `otlp` spells it.
///
/// ```toml
/// endpoint = "http://collector:4318"
/// protocol = "http/protobuf"
/// headers = { authorization = "Bearer ..." }
/// timeout_ms = 10000
/// service_name = "mcp-audit"
/// resource_attributes = { "deployment.environment.name" = "prod" }
/// signals = "both"
/// max_request_bytes = 4194304
/// compression = "gzip"
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// The receiver's base URL, `http://` or `https://`. For `http/protobuf` the signal paths
    /// `/v1/logs` and `/v1/traces` are appended (as `OTEL_EXPORTER_OTLP_ENDPOINT` does); for
    /// `grpc` it is the server's address (`http://collector:4317`).
    pub endpoint: String,
    /// `http/protobuf` (default) or `grpc`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Sent with every export: HTTP headers, or gRPC metadata (keys lowercased). Typically a
    /// tenant or an `authorization` token, which is why `Debug` never prints the values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How long one export may take, connecting included, in milliseconds (1 ..; default
    /// 10 000, the OpenTelemetry exporters' default).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The resource's `service.name` (default `mcp-audit`).
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// More resource attributes (`deployment.environment.name`, `host.name`, ...), as strings.
    #[serde(default)]
    pub resource_attributes: BTreeMap<String, String>,
    /// What to send: `logs`, `spans` or `both` (default).
    #[serde(default)]
    pub signals: Signals,
    /// The largest export request the sink sends, in bytes (1024 ..; default 4 MiB, what the
    /// OpenTelemetry Collector's gRPC receiver takes by default). A batch is sent as several
    /// requests when it is larger; a record larger alone is refused (see `requests`).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// `none` (default) or `gzip`, as `OTEL_EXPORTER_OTLP_COMPRESSION` names them: OTLP
    /// compresses well (attribute keys repeat in every record), at some CPU per batch.
    #[serde(default)]
    pub compression: Compression,
}

/// How export requests are compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    /// HTTP: a gzip body with `Content-Encoding: gzip`; gRPC: the `gzip` message encoding.
    Gzip,
}

fn default_max_request_bytes() -> usize {
    4 * 1024 * 1024
}

/// The smallest `max_request_bytes` accepted: below it not even a small event fits.
pub const MIN_REQUEST_BYTES: usize = 1024;

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_service_name() -> String {
    "mcp-audit".to_string()
}

impl OtlpConfig {
    /// A configuration with every default, for `endpoint`.
    pub fn new(endpoint: impl Into<String>, protocol: Protocol) -> OtlpConfig {
        OtlpConfig {
            endpoint: endpoint.into(),
            protocol,
            headers: BTreeMap::new(),
            timeout_ms: default_timeout_ms(),
            service_name: default_service_name(),
            resource_attributes: BTreeMap::new(),
            signals: Signals::default(),
            max_request_bytes: default_max_request_bytes(),
            compression: Compression::default(),
        }
    }
}

/// Header values are credentials often enough that a configuration printed in a log or an
/// error must not show them.
impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&String> = self.headers.keys().collect();
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("headers", &header_names)
            .field("timeout_ms", &self.timeout_ms)
            .field("service_name", &self.service_name)
            .field("resource_attributes", &self.resource_attributes)
            .field("signals", &self.signals)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("compression", &self.compression)
            .finish()
    }
}

/// The OTLP transport, named as `OTEL_EXPORTER_OTLP_PROTOCOL` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    /// Protobuf bodies POSTed to `/v1/logs` and `/v1/traces` (port 4318 by convention).
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// The collector's gRPC services (port 4317 by convention).
    #[serde(rename = "grpc")]
    Grpc,
}

/// Which OTLP signals a sink sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signals {
    /// A log record per event.
    Logs,
    /// A span per MCP operation (events that are not one send nothing).
    Spans,
    /// Both: the log record carries the span's trace and span ids, so a backend joins them.
    #[default]
    Both,
}

impl Signals {
    pub fn logs(self) -> bool {
        matches!(self, Signals::Logs | Signals::Both)
    }

    pub fn spans(self) -> bool {
        matches!(self, Signals::Spans | Signals::Both)
    }
}
