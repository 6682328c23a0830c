//! `/metrics`: the console's own figures in the Prometheus text format (OpenMetrics), for a
//! scraper: the events its recorder wrote or failed to write, the reads of arguments and
//! results, exports and reviews it served (each also an event of the log), and the result of
//! the last verify. Counts only, nothing of the log's content, so it needs no token (as a
//! scraper has none); keep `serve` where only the operators reach it.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// The console's metrics, registered once.
pub struct Metrics {
    registry: Mutex<Registry>,
    served: Family<Labels, Counter>,
    recorder: Family<Labels, Counter>,
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

impl Default for Metrics {
    fn default() -> Metrics {
        let served = Family::<Labels, Counter>::default();
        let recorder = Family::<Labels, Counter>::default();
        let verify_ok = Gauge::default();
        let verify_finished = Gauge::default();
        let mut registry = Registry::with_prefix("mcp_audit_console");
        registry.register(
            "served",
            "Reads of arguments and results, exports and reviews served (each recorded in the log)",
            served.clone(),
        );
        registry.register(
            "recorder_events",
            "Events the console's recorder wrote (recorded), left out (skipped) or failed to write",
            recorder.clone(),
        );
        registry.register(
            "last_verify_ok",
            "1 when the last verify started from the console passed, 0 when it failed, -1 when none ran",
            verify_ok.clone(),
        );
        registry.register(
            "last_verify_finished_seconds",
            "When the last verify finished, in seconds since the Unix epoch (0: none ran)",
            verify_finished.clone(),
        );
        verify_ok.set(-1);
        Metrics {
            registry: Mutex::new(registry),
            served,
            recorder,
            verify_ok,
            verify_finished,
        }
    }
}

impl Metrics {
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

    /// The text exposition, with the recorder's counts and the last verify brought up to date.
    pub fn render(
        &self,
        stats: mcp_audit_store::RecorderStats,
        last_verify: Option<(bool, jiff::Timestamp)>,
    ) -> Result<String, std::fmt::Error> {
        for (result, now) in [
            ("recorded", stats.recorded),
            ("skipped", stats.skipped),
            ("failed", stats.failed),
        ] {
            let counter = self
                .recorder
                .get_or_create(&vec![("result".to_string(), result.to_string())]);
            // The recorder keeps its own totals: the counter catches up to them.
            let before = counter.get();
            if now > before {
                counter.inc_by(now - before);
            }
        }
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
