//! The OTLP sink: the trail into a tracing or log backend (an OpenTelemetry Collector, Grafana
//! Tempo and Loki, Jaeger, Elastic, Datadog, Honeycomb, ...).
//!
//! Each event becomes a **log record** (the stored event's JSON as the body, attributes beside
//! it), and each MCP operation also a **span** after the OpenTelemetry MCP semantic conventions
//! (`mcp.method.name`, `mcp.session.id`, `gen_ai.tool.name`, `jsonrpc.request.id`,
//! `error.type`, ...) in the caller's own trace where the proxy recorded its `traceparent`.
//! Both carry `mcp_audit.log_id`, `mcp_audit.seq` and `mcp_audit.key` (the idempotency key a
//! receiver deduplicates on) and `mcp_audit.leaf_hash` (the record's Merkle leaf, which
//! `mcp-audit prove` proves), so what a backend shows can be checked against the log.
//!
//! Ids are a function of the record (module `ids`), so a batch sent again after a lost
//! acknowledgement gives spans with the same ids, which a backend can tell for one.
//!
//! - [`OtlpConfig`]: endpoint, protocol (`http/protobuf` or `grpc`), headers, timeout, resource,
//!   signals.
//! - [`Otlp`]: the [`Destination`]; [`OtlpError`]: a configuration it refuses.
//! - `semconv`: what an event says in the conventions' names; `logs` and `spans`: the two
//!   records; `http` and `grpc`: the transports and their failure mapping.
//!
//! A batch is one export request per signal (logs first, then traces), or several in order
//! when it is larger than `max_request_bytes` (module `requests`); the batch is acknowledged once
//! every request is. The protobuf types are the official OTLP definitions as the
//! `opentelemetry-proto` crate builds them.

mod answer;
mod config;
mod error;
mod grpc;
mod http;
mod ids;
mod logs;
mod requests;
mod resource;
mod semconv;
mod spans;

use jiff::Timestamp;
use mcp_audit_store::StoredEvent;
use reqwest::Url;

use crate::{Destination, Failure};
pub use config::{Compression, MIN_REQUEST_BYTES, OtlpConfig, Protocol, Signals};
pub use error::OtlpError;
use grpc::GrpcExporter;
use http::HttpExporter;
pub use logs::log_record;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use requests::{Cost, Oversized};
use resource::Origin;
pub use spans::span;

/// A destination that exports records to an OTLP receiver.
pub struct Otlp {
    exporter: Exporter,
    origin: Origin,
    signals: Signals,
    max_request_bytes: usize,
}

/// The transport, chosen once from the configuration. The gRPC one is boxed: tonic's
/// `Endpoint` is several hundred bytes, and the sink enum that holds an `Otlp` beside the other
/// kinds should not carry that for every kind.
enum Exporter {
    Http(HttpExporter),
    Grpc(Box<GrpcExporter>),
}

impl Otlp {
    /// Checks the configuration (the endpoint is an `http`/`https` URL, headers are sendable,
    /// the timeout is not zero, the service name not blank) and builds the exporter. Nothing
    /// is connected yet: a receiver that is down at start-up is the first export's
    /// `Failure::Unavailable`, not an error here.
    pub fn new(config: OtlpConfig) -> Result<Otlp, OtlpError> {
        let bad_endpoint = |reason: &str| OtlpError::Endpoint {
            endpoint: config.endpoint.clone(),
            reason: reason.to_string(),
        };
        let url = Url::parse(&config.endpoint).map_err(|e| bad_endpoint(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad_endpoint("the scheme must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad_endpoint("no host"));
        }
        if config.timeout_ms == 0 {
            return Err(OtlpError::Timeout);
        }
        if config.max_request_bytes < MIN_REQUEST_BYTES {
            return Err(OtlpError::MaxRequestBytes {
                min: MIN_REQUEST_BYTES,
                got: config.max_request_bytes,
            });
        }
        if config.service_name.trim().is_empty() {
            return Err(OtlpError::ServiceName);
        }
        let exporter = match config.protocol {
            Protocol::HttpProtobuf => Exporter::Http(HttpExporter::new(&config, &url)?),
            Protocol::Grpc => Exporter::Grpc(Box::new(GrpcExporter::new(&config, &url)?)),
        };
        Ok(Otlp {
            exporter,
            origin: Origin::new(&config.service_name, &config.resource_attributes),
            signals: config.signals,
            max_request_bytes: config.max_request_bytes,
        })
    }
}

impl Destination for Otlp {
    fn kind(&self) -> &'static str {
        "otlp"
    }

    /// Sends the batch as one request per signal, or as several in order when it is larger
    /// than `max_request_bytes` (logs, then spans, for each part). A record too large to send
    /// at all is refused by its index once the records before it are delivered; a part the
    /// receiver refuses is refused at the part's first record, the parts before it having been
    /// acknowledged.
    async fn deliver(&mut self, batch: &[StoredEvent]) -> Result<(), Failure> {
        let (mut logs, mut spans) = self.records(batch);
        let cut = self.cut(&logs, &spans);
        for range in cut.requests {
            let start = range.start;
            let part_logs: Vec<LogRecord> = logs[range.clone()]
                .iter_mut()
                .filter_map(Option::take)
                .collect();
            let part_spans: Vec<Span> = spans[range].iter_mut().filter_map(Option::take).collect();
            self.send(part_logs, part_spans)
                .await
                .map_err(|failure| match failure {
                    Failure::Refused { accepted, reason } => Failure::Refused {
                        accepted: start + accepted,
                        reason,
                    },
                    unavailable => unavailable,
                })?;
        }
        match cut.oversized {
            None => Ok(()),
            Some(Oversized { index, bytes }) => Err(Failure::Refused {
                accepted: index,
                reason: format!(
                    "record encodes to {bytes} bytes of OTLP, more than max_request_bytes ({}) allows",
                    self.max_request_bytes
                ),
            }),
        }
    }
}

impl Otlp {
    /// Each event's log record and span, where the signals ask for them and the event has one.
    fn records(&self, batch: &[StoredEvent]) -> (Vec<Option<LogRecord>>, Vec<Option<Span>>) {
        let logs = batch
            .iter()
            .map(|e| self.signals.logs().then(|| log_record(e)))
            .collect();
        let spans = batch
            .iter()
            .map(|e| if self.signals.spans() { span(e) } else { None })
            .collect();
        (logs, spans)
    }

    /// Where the batch is cut into requests under `max_request_bytes`.
    fn cut(&self, logs: &[Option<LogRecord>], spans: &[Option<Span>]) -> requests::Cut {
        let costs: Vec<Cost> = logs
            .iter()
            .zip(spans)
            .map(|(log, span)| Cost {
                log: log.as_ref().map_or(0, requests::element_cost),
                span: span.as_ref().map_or(0, requests::element_cost),
            })
            .collect();
        let envelope = requests::envelope_cost(&logs::request(&self.origin, Vec::new())).max(
            requests::envelope_cost(&spans::request(&self.origin, Vec::new())),
        );
        requests::cut(&costs, self.max_request_bytes.saturating_sub(envelope))
    }

    /// One part of a batch: its log records, then its spans (either may be empty: nothing is
    /// sent for it).
    async fn send(&mut self, logs: Vec<LogRecord>, spans: Vec<Span>) -> Result<(), Failure> {
        if !logs.is_empty() {
            let request = logs::request(&self.origin, logs);
            match &mut self.exporter {
                Exporter::Http(http) => http.export_logs(request).await?,
                Exporter::Grpc(grpc) => grpc.export_logs(request).await?,
            }
        }
        if !spans.is_empty() {
            let request = spans::request(&self.origin, spans);
            match &mut self.exporter {
                Exporter::Http(http) => http.export_traces(request).await?,
                Exporter::Grpc(grpc) => grpc.export_traces(request).await?,
            }
        }
        Ok(())
    }
}

/// Nanoseconds since the Unix epoch, as OTLP times are; 0 (OTLP's "unknown") for a time
/// before 1970.
fn unix_nanos(time: Timestamp) -> u64 {
    u64::try_from(time.as_nanosecond()).unwrap_or(0)
}
