//! How times, durations and ratios read in output meant for people.

use jiff::Timestamp;

/// `2026-03-01 12:00:00.123Z`: UTC, millisecond precision, sortable.
pub fn time(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
}

/// A latency in the largest unit that keeps it readable: `850µs`, `12.3ms`, `4.20s`.
pub fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..1_000_000 => format!("{:.1}ms", us as f64 / 1_000.0),
        _ => format!("{:.2}s", us as f64 / 1_000_000.0),
    }
}

/// `0.125` as `12.5%`.
pub fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(micros(850), "850µs");
        assert_eq!(micros(12_345), "12.3ms");
        assert_eq!(micros(4_200_000), "4.20s");
    }

    #[test]
    fn times_are_utc_with_milliseconds() {
        let ts: Timestamp = "2026-03-01T12:00:00.123456Z".parse().unwrap();
        assert_eq!(time(ts), "2026-03-01 12:00:00.123Z");
    }

    #[test]
    fn ratios_read_as_percentages() {
        assert_eq!(percent(0.125), "12.5%");
    }
}
