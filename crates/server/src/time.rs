//! Times and durations as people type them: `--since 2026-03-01T12:00:00Z`, `--since
//! 2026-03-01`, `--since 7d` (seven days ago), `--lock-timeout 500ms` on the command line, and
//! `?since=7d` in the console. One parser for both, so a filter means the same in each.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp, civil};

/// An instant: RFC 3339, a date (midnight UTC), or a span meaning "that long ago".
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    parse_time_at(text, Timestamp::now())
}

/// As [`parse_time`], with "now" given, so that tests do not depend on the clock.
pub fn parse_time_at(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(date) = text.parse::<civil::Date>() {
        return date
            .to_zoned_datetime(TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| format!("`{text}`: {e}"));
    }
    let span: Span = text.parse().map_err(|_| {
        format!("`{text}` is neither an RFC 3339 time (2026-03-01T12:00:00Z), a date (2026-03-01), nor a span ago (30m, 1h, 7d)")
    })?;
    if span.is_negative() {
        return Err(format!("`{text}`: a span ago must not be negative"));
    }
    // Calendar units (days, months) need a time zone to subtract; UTC keeps it unambiguous.
    now.to_zoned_datetime(TimeZone::UTC)
        .checked_sub(span)
        .map(|z| z.timestamp())
        .map_err(|e| format!("`{text}`: {e}"))
}

/// A non-negative duration such as `500ms`, `5s` or `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: SignedDuration = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (write 500ms, 5s, 2m)"))?;
    Duration::try_from(signed).map_err(|_| format!("`{text}`: a duration must not be negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-03-10T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn rfc3339_and_dates_are_absolute() {
        assert_eq!(
            parse_time_at("2026-03-01T08:30:00+01:00", now()).unwrap(),
            "2026-03-01T07:30:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_time_at("2026-03-01", now()).unwrap(),
            "2026-03-01T00:00:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn spans_mean_that_long_ago() {
        assert_eq!(
            parse_time_at("1h", now()).unwrap(),
            "2026-03-10T11:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            parse_time_at("7d", now()).unwrap(),
            "2026-03-03T12:00:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn nonsense_and_negative_spans_are_refused() {
        assert!(
            parse_time_at("yesterday-ish", now())
                .unwrap_err()
                .contains("RFC 3339")
        );
        assert!(
            parse_time_at("-1h", now())
                .unwrap_err()
                .contains("negative")
        );
    }

    #[test]
    fn durations_parse_in_friendly_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
