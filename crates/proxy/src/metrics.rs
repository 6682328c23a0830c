//! `/metrics` for a proxy, in the Prometheus text format (0.0.4), for a scraper: what the
//! recorder wrote (by kind and outcome), its queue, how long its commits take, the bytes
//! waiting in a PostgreSQL spool, and the calls the proxy refused, by reason. Counts only,
//! nothing of the trail's content.
//!
//! The figures are kept where they arise, as atomics (the recorder's writer thread, the
//! [`Tap`](crate::tap) for refusals) and read at each scrape by a prometheus-client
//! [`Collector`]: recording does not get slower for being watched, and a proxy nobody scrapes
//! does no metrics work at all. [`RecorderCollector`] is public so that the console exposes
//! its own recorder under the same names.
//!
//! Where a proxy serves it: the HTTP proxy on its own listener at `GET /metrics` (other
//! methods on that path go where any other path goes), unless `--metrics-listen` gives it a
//! listener of its own; the stdio proxy only with `--metrics-listen` ([`serve_metrics`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mcp_audit_store::{Recorder, RecorderMetrics};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The content type of the exposition: the Prometheus text format 0.0.4, which every scraper
/// reads and `promtool check metrics` checks (its OpenMetrics parser is Prometheus's own only).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why the proxy refused a call (each also recorded `denied` in the trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenialReason {
    /// No valid credentials (HTTP: a missing or bad bearer token, `--jwt-required`).
    Credentials,
    /// Its intent could not be made durable (`sync`).
    AuditWriteFailed,
    /// The store has refused writes past `--max-outage` (`batch`).
    AuditOutage,
    /// A frame the proxy can not put on record whole, so does not forward (`sync`).
    NotRecordable,
    /// An HTTP request body over `--max-body`.
    BodyTooLarge,
}

impl DenialReason {
    pub const ALL: [DenialReason; 5] = [
        DenialReason::Credentials,
        DenialReason::AuditWriteFailed,
        DenialReason::AuditOutage,
        DenialReason::NotRecordable,
        DenialReason::BodyTooLarge,
    ];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            DenialReason::Credentials => "credentials",
            DenialReason::AuditWriteFailed => "audit_write_failed",
            DenialReason::AuditOutage => "audit_outage",
            DenialReason::NotRecordable => "not_recordable",
            DenialReason::BodyTooLarge => "body_too_large",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Calls refused, by reason: a handle shared by the adapter that counts them and the metrics
/// endpoint that reads them. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Denials(Arc<[AtomicU64; DenialReason::ALL.len()]>);

impl Denials {
    pub fn count(&self, reason: DenialReason, calls: u64) {
        if calls > 0 {
            self.0[reason.index()].fetch_add(calls, Ordering::Relaxed);
        }
    }

    pub fn get(&self, reason: DenialReason) -> u64 {
        self.0[reason.index()].load(Ordering::Relaxed)
    }
}

/// A recorder's figures (see `mcp_audit_store::telemetry`), read at each scrape, under the
/// `mcp_audit_recorder_` names.
#[derive(Clone)]
pub struct RecorderCollector(Recorder);

impl RecorderCollector {
    pub fn new(recorder: Recorder) -> RecorderCollector {
        RecorderCollector(recorder)
    }
}

impl std::fmt::Debug for RecorderCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderCollector")
            .field("log_id", &self.0.log_id())
            .finish()
    }
}

impl Collector for RecorderCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_recorder(&self.0.metrics(), &mut encoder)
    }
}

/// Writes `m` as the `mcp_audit_recorder_*` families.
fn encode_recorder(
    m: &RecorderMetrics,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let mut written = encoder.encode_descriptor(
        "mcp_audit_recorder_events_written",
        "Events durably written to the audit log, by kind and outcome",
        None,
        MetricType::Counter,
    )?;
    for (kind, outcome, n) in &m.written {
        let labels = [("kind", kind.as_str()), ("outcome", outcome.as_str())];
        ConstCounter::new(*n).encode(written.encode_family(&labels)?)?;
    }
    let mut results = encoder.encode_descriptor(
        "mcp_audit_recorder_events",
        "Events the recorder wrote (recorded), left out by the audit level (skipped) or failed to write",
        None,
        MetricType::Counter,
    )?;
    for (result, n) in [
        ("recorded", m.stats.recorded),
        ("skipped", m.stats.skipped),
        ("failed", m.stats.failed),
    ] {
        ConstCounter::new(n).encode(results.encode_family(&[("result", result)])?)?;
    }
    gauge(
        encoder,
        "mcp_audit_recorder_queue_depth",
        "Records and requests waiting for the writer thread now",
        m.queue_depth as i64,
    )?;
    gauge(
        encoder,
        "mcp_audit_recorder_queue_capacity",
        "How many may wait for the writer before recording blocks",
        m.queue_capacity as i64,
    )?;
    let histogram = &m.commit_latency;
    encoder
        .encode_descriptor(
            "mcp_audit_recorder_commit_duration_seconds",
            "How long each commit of a batch took (successful or not)",
            None,
            MetricType::Histogram,
        )?
        .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            histogram.sum_micros as f64 / 1e6,
            histogram.count(),
            &histogram.buckets_seconds(),
            None,
        )?;
    if let Some(bytes) = m.spool_bytes {
        gauge(
            encoder,
            "mcp_audit_recorder_spool_bytes",
            "Bytes waiting in the local spool for PostgreSQL to come back (0: none)",
            i64::try_from(bytes).unwrap_or(i64::MAX),
        )?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

/// The calls a proxy refused, by reason.
#[derive(Debug)]
struct DenialCollector(Denials);

impl Collector for DenialCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "mcp_audit_proxy_denied_calls",
            "Calls the proxy refused (each recorded as denied), by reason",
            None,
            MetricType::Counter,
        )?;
        for reason in DenialReason::ALL {
            let labels = [("reason", reason.as_str())];
            ConstCounter::new(self.0.get(reason)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// A proxy's metrics: its recorder's and its refusals.
pub struct ProxyMetrics {
    registry: Registry,
}

impl ProxyMetrics {
    pub fn new(recorder: Recorder, denials: Denials) -> ProxyMetrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(RecorderCollector::new(recorder)));
        registry.register_collector(Box::new(DenialCollector(denials)));
        ProxyMetrics { registry }
    }

    /// Adds more figures of the same process (the sinks a proxy runs with `--sink`), read at
    /// each scrape too.
    pub fn with_collector(mut self, collector: Box<dyn Collector>) -> ProxyMetrics {
        self.registry.register_collector(collector);
        self
    }

    /// The text exposition, as of now.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// The `/metrics` answer: the exposition, or 500 when it could not be written.
    pub fn response(&self) -> Response {
        match self.render() {
            Ok(text) => (
                [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
                text,
            )
                .into_response(),
            Err(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "mcp-audit: the metrics could not be written",
            )
                .into_response(),
        }
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes (`--metrics-listen`); every
/// other path is 404.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: Arc<ProxyMetrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move { metrics.response() }
        }),
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_denial_reason_has_its_own_counter() {
        let denials = Denials::default();
        for (n, reason) in DenialReason::ALL.into_iter().enumerate() {
            denials.count(reason, n as u64 + 1);
        }
        for (n, reason) in DenialReason::ALL.into_iter().enumerate() {
            assert_eq!(denials.get(reason), n as u64 + 1, "{}", reason.as_str());
        }
    }
}
