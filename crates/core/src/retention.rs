//! Retention: how long a record is kept, written as a duration (`30d`, `6mo`, `7y`), `forever`,
//! or the name of a policy, and turned into an `expires_at` by the recorder's policy.
//!
//! Durations use jiff's calendar arithmetic in UTC, so `6mo` after 31 August is 28 or 29
//! February, not "180 days".

use std::fmt;
use std::str::FromStr;

use jiff::{Span, Timestamp, tz::TimeZone};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ModelError;

/// A validated retention, kept as written so that it round-trips exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Retention(String);

/// What a [`Retention`] means.
#[derive(Debug, Clone, Copy)]
pub enum RetentionKind<'a> {
    /// Keep for this long after the event.
    Duration(Span),
    /// Never expires.
    Forever,
    /// Look the duration up in the policy table.
    Named(&'a str),
}

impl Retention {
    /// Parses a retention; see the module documentation for the forms.
    pub fn parse(text: &str) -> Result<Retention, ModelError> {
        let text = text.trim();
        Self::classify(text)?;
        Ok(Retention(text.to_string()))
    }

    /// A retention of a duration, which must not be negative.
    pub fn duration(span: Span) -> Result<Retention, ModelError> {
        Retention::parse(&format!("{span:#}"))
    }

    pub fn forever() -> Retention {
        Retention("forever".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> RetentionKind<'_> {
        // Validated at construction, so classification can not fail here.
        Self::classify(&self.0).unwrap_or(RetentionKind::Forever)
    }

    fn classify(text: &str) -> Result<RetentionKind<'_>, ModelError> {
        if text.eq_ignore_ascii_case("forever") || text.eq_ignore_ascii_case("permanent") {
            return Ok(RetentionKind::Forever);
        }
        if text.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == 'P') {
            let span: Span = text
                .parse()
                .map_err(|_| ModelError::InvalidRetention(text.to_string()))?;
            if span.is_negative() {
                return Err(ModelError::NegativeDuration(text.to_string()));
            }
            return Ok(RetentionKind::Duration(span));
        }
        let is_name = text.starts_with(|c: char| c.is_ascii_lowercase())
            && text.len() <= 64
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if is_name {
            Ok(RetentionKind::Named(text))
        } else {
            Err(ModelError::InvalidRetention(text.to_string()))
        }
    }
}

/// `start` plus `span`, in UTC calendar arithmetic; `None` when it overflows the calendar
/// (treated as "never expires").
pub fn add_span(start: Timestamp, span: Span) -> Option<Timestamp> {
    start
        .to_zoned_datetime(TimeZone::UTC)
        .checked_add(span)
        .ok()
        .map(|z| z.timestamp())
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Retention {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Retention::parse(s)
    }
}

impl Serialize for Retention {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Retention::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Retention {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Retention".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A non-negative duration (`30d`, `6mo`, `7y`, `1y 6mo`, ISO 8601 `P30D`), `forever`, or the name of a retention policy.",
            "type": "string"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expiry(start: &str, retention: &str) -> Timestamp {
        let start: Timestamp = start.parse().unwrap();
        match Retention::parse(retention).unwrap().kind() {
            RetentionKind::Duration(span) => add_span(start, span).unwrap(),
            other => panic!("{retention} is not a duration: {other:?}"),
        }
    }

    #[test]
    fn durations_in_days_months_and_years_become_calendar_expiry() {
        assert_eq!(
            expiry("2026-01-01T00:00:00Z", "30d"),
            "2026-01-31T00:00:00Z".parse().unwrap()
        );
        assert_eq!(
            expiry("2026-08-31T12:00:00Z", "6mo"),
            "2027-02-28T12:00:00Z".parse().unwrap()
        );
        assert_eq!(
            expiry("2026-03-01T00:00:00Z", "7y"),
            "2033-03-01T00:00:00Z".parse().unwrap()
        );
    }

    #[test]
    fn negative_durations_are_refused_with_their_own_error() {
        assert_eq!(
            Retention::parse("-30d").unwrap_err(),
            ModelError::NegativeDuration("-30d".to_string())
        );
    }

    #[test]
    fn names_and_forever_are_recognised() {
        assert!(matches!(
            Retention::parse("forever").unwrap().kind(),
            RetentionKind::Forever
        ));
        assert!(matches!(
            Retention::parse("gdpr-standard").unwrap().kind(),
            RetentionKind::Named("gdpr-standard")
        ));
        assert!(Retention::parse("30 parsecs").is_err());
        assert!(Retention::parse("Not A Name").is_err());
    }

    #[test]
    fn retention_round_trips_as_written() {
        let r: Retention = serde_json::from_str("\"6mo\"").unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"6mo\"");
    }
}
