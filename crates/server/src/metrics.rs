//! `/metrics`: the console's own figures in the Prometheus text format (0.0.4), for a
//! scraper: its recorder's (events written by kind and outcome, queue, commit latency, as the
//! proxy exposes its own: `mcp_audit_proxy::metrics`), the reads of arguments and
//! results, exports and reviews it served (each also an event of the log), the result of the
//! last verify, and what the ingest endpoint took and refused, with its recorder's queue
//! (`mcp_audit_console_ingest_*`: its events go through a recorder of their own). Counts only, nothing of the log's content, so it needs no token (as a
//! scraper has none); keep `serve` where only the operators reach it.

use std::sync::Mutex;

use mcp_audit_proxy::metrics::RecorderCollector;
use mcp_audit_store::Recorder;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// The console's metrics, registered once.
pub struct Metrics {
    registry: Mutex<Registry>,
    served: Family<Labels, Counter>,
    ingest_events: Family<Labels, Counter>,
    ingest_refused: Family<Labels, Counter>,
    verify_ok: Gauge,
    verify_finished: Gauge,
}

/// What the console served that is on record.
#[derive(Clone, Copy)]
pub enum Served {
    PayloadRead,
    Export,
    Review,
}

impl Metrics {
    /// The console's own families (`mcp_audit_console_*`) and its recorder's, under the names
    /// the proxy uses for its own (`mcp_audit_recorder_*`, read at each scrape).
    /// `ingest`: the ingest endpoint's recorder, whose queue and results are read at each
    /// scrape. `collectors`: more families of the same process (its sinks'), read at each
    /// scrape too.
    pub fn new(
        recorder: Recorder,
        ingest: Option<Recorder>,
        collectors: Vec<Box<dyn Collector>>,
    ) -> Metrics {
        let served = Family::<Labels, Counter>::default();
        let ingest_events = Family::<Labels, Counter>::default();
        let ingest_refused = Family::<Labels, Counter>::default();
        let verify_ok = Gauge::default();
        let verify_finished = Gauge::default();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(RecorderCollector::new(recorder)));
        if let Some(ingest) = ingest {
            registry.register_collector(Box::new(IngestRecorderCollector(ingest)));
        }
        for collector in collectors {
            registry.register_collector(collector);
        }
        let console = registry.sub_registry_with_prefix("mcp_audit_console");
        console.register(
            "served",
            "Reads of arguments and results, exports and reviews served (each recorded in the log)",
            served.clone(),
        );
        console.register(
            "ingest_events",
            "Events posted to the ingest endpoint: accepted (answered 201 or 202), or refused with \
             their body by reason (invalid_events: a bad line refused every line; not_recorded: \
             the write failed)",
            ingest_events.clone(),
        );
        console.register(
            "ingest_requests_refused",
            "Requests to the ingest endpoint refused, by the error code of the answer",
            ingest_refused.clone(),
        );
        console.register(
            "last_verify_ok",
            "1 when the last verify started from the console passed, 0 when it failed, -1 when none ran",
            verify_ok.clone(),
        );
        console.register(
            "last_verify_finished_seconds",
            "When the last verify finished, in seconds since the Unix epoch (0: none ran)",
            verify_finished.clone(),
        );
        verify_ok.set(-1);
        Metrics {
            registry: Mutex::new(registry),
            served,
            ingest_events,
            ingest_refused,
            verify_ok,
            verify_finished,
        }
    }

    pub fn served(&self, what: Served) {
        let name = match what {
            Served::PayloadRead => "payload_read",
            Served::Export => "export",
            Served::Review => "review",
        };
        self.served
            .get_or_create(&vec![("what".to_string(), name.to_string())])
            .inc();
    }

    /// `n` events of a body were accepted (handed to the ingest recorder).
    pub fn ingest_accepted(&self, n: usize) {
        self.ingest_events
            .get_or_create(&vec![("result".to_string(), "accepted".to_string())])
            .inc_by(n as u64);
    }

    /// A request to the ingest endpoint was refused with the error code `code`, and with it
    /// the `events` lines of its body that were read (none when the body was not).
    pub fn ingest_refused(&self, code: &str, events: usize) {
        self.ingest_refused
            .get_or_create(&vec![("reason".to_string(), code.to_string())])
            .inc();
        if events > 0 {
            self.ingest_events
                .get_or_create(&vec![
                    ("result".to_string(), "refused".to_string()),
                    ("reason".to_string(), code.to_string()),
                ])
                .inc_by(events as u64);
        }
    }

    /// The text exposition, with the last verify brought up to date (the recorder's figures
    /// are read as it is written).
    pub fn render(
        &self,
        last_verify: Option<(bool, jiff::Timestamp)>,
    ) -> Result<String, std::fmt::Error> {
        if let Some((ok, finished)) = last_verify {
            self.verify_ok.set(i64::from(ok));
            self.verify_finished.set(finished.as_second());
        }
        let mut out = String::new();
        let registry = self.registry.lock().map_err(|_| std::fmt::Error)?;
        encode(&mut out, &registry)?;
        Ok(out)
    }
}

/// The ingest recorder's queue and what it wrote, read at each scrape: a queue that stays full
/// is writers outpacing the database (requests with `wait=durable` then wait, and those
/// without wait for one of the bodies on their way), and `failed` counts what was answered
/// 202 but never written.
struct IngestRecorderCollector(Recorder);

impl std::fmt::Debug for IngestRecorderCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestRecorderCollector")
            .field("log_id", &self.0.log_id())
            .finish()
    }
}

impl Collector for IngestRecorderCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = self.0.metrics();
        let mut results = encoder.encode_descriptor(
            "mcp_audit_console_ingest_recorder_events",
            "Events the ingest recorder wrote (recorded), left out by the audit level (skipped) or failed to write",
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
        for (name, help, value) in [
            (
                "mcp_audit_console_ingest_queue_depth",
                "Records and requests waiting for the ingest recorder's writer now",
                m.queue_depth,
            ),
            (
                "mcp_audit_console_ingest_queue_capacity",
                "How many may wait for the ingest recorder's writer before recording blocks",
                m.queue_capacity,
            ),
        ] {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}
