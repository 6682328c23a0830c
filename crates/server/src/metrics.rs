//! `/metrics`: the console's own figures in the Prometheus text format (0.0.4), for a
//! scraper: its recorder's (events written by kind and outcome, queue, commit latency, as the
//! proxy exposes its own: `mcp_audit_proxy::metrics`), the reads of arguments and
//! results, exports and reviews it served (each also an event of the log), and the result of
//! the last verify. Counts only, nothing of the log's content, so it needs no token (as a
//! scraper has none); keep `serve` where only the operators reach it.

use std::sync::Mutex;

use mcp_audit_proxy::metrics::RecorderCollector;
use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// The console's metrics, registered once.
pub struct Metrics {
    registry: Mutex<Registry>,
    served: Family<Labels, Counter>,
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
    /// `collectors`: more families of the same process (its sinks'), read at each scrape too.
    pub fn new(
        recorder: mcp_audit_store::Recorder,
        collectors: Vec<Box<dyn prometheus_client::collector::Collector>>,
    ) -> Metrics {
        let served = Family::<Labels, Counter>::default();
        let verify_ok = Gauge::default();
        let verify_finished = Gauge::default();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(RecorderCollector::new(recorder)));
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
