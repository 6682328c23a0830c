//! What a running sink counts, for the metrics of the process that hosts it (`proxy`, `serve`,
//! `follow`): plain atomics, read by whichever registry exports them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// One sink's counters since the process started.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Records the destination acknowledged.
    pub delivered: AtomicU64,
    /// Failed deliveries (each retried later, or dead-lettered).
    pub retries: AtomicU64,
    /// Records given up on.
    pub dead_letters: AtomicU64,
    /// Records not delivered yet, over every log followed, as of the last look.
    pub lag_records: AtomicU64,
}

impl SinkStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters' values now: (delivered, retries, dead letters, lag in records).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.delivered.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.dead_letters.load(Ordering::Relaxed),
            self.lag_records.load(Ordering::Relaxed),
        )
    }
}

/// One family: its name, help, type, and how to read it from a sink's counters.
type Family = (
    &'static str,
    &'static str,
    MetricType,
    fn(&SinkStats) -> u64,
);

/// The sinks of a process as Prometheus families (`mcp_audit_sink_*`, label `sink`), read at
/// each scrape: delivering does not get slower for being watched.
#[derive(Debug, Clone, Default)]
pub struct SinkCollector {
    sinks: Vec<(String, Arc<SinkStats>)>,
}

impl SinkCollector {
    pub fn new(sinks: Vec<(String, Arc<SinkStats>)>) -> SinkCollector {
        SinkCollector { sinks }
    }
}

impl Collector for SinkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let families: [Family; 4] = [
            (
                "mcp_audit_sink_delivered",
                "Records the sink's destination acknowledged",
                MetricType::Counter,
                |s| s.delivered.load(Ordering::Relaxed),
            ),
            (
                "mcp_audit_sink_retries",
                "Failed deliveries, each retried later or dead-lettered",
                MetricType::Counter,
                |s| s.retries.load(Ordering::Relaxed),
            ),
            (
                "mcp_audit_sink_dead_letters",
                "Records the sink gave up on after max_tries refusals",
                MetricType::Counter,
                |s| s.dead_letters.load(Ordering::Relaxed),
            ),
            (
                "mcp_audit_sink_lag_records",
                "Records not delivered yet, over every log the sink follows",
                MetricType::Gauge,
                |s| s.lag_records.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, kind, read) in families {
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for (sink, stats) in &self.sinks {
                let labels = [("sink", sink.as_str())];
                let value = read(stats);
                match kind {
                    MetricType::Counter => {
                        ConstCounter::new(value).encode(family.encode_family(&labels)?)?
                    }
                    _ => ConstGauge::new(value as i64).encode(family.encode_family(&labels)?)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collector_shows_each_sinks_counters_by_name() {
        let stats = Arc::new(SinkStats::default());
        SinkStats::add(&stats.delivered, 12);
        SinkStats::add(&stats.dead_letters, 1);
        stats.lag_records.store(3, Ordering::Relaxed);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(SinkCollector::new(vec![("hook".into(), stats)])));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "mcp_audit_sink_delivered_total{sink=\"hook\"} 12",
            "mcp_audit_sink_retries_total{sink=\"hook\"} 0",
            "mcp_audit_sink_dead_letters_total{sink=\"hook\"} 1",
            "mcp_audit_sink_lag_records{sink=\"hook\"} 3",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
