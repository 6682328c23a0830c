//! The fields of an event's hashed metadata that have column copies (see
//! `store::IndexedColumns`), read out of its canonical JSON for `verify`'s column check without
//! building the whole event: verification reads every entry, so this is its hot path.

use std::borrow::Cow;

/// The metadata fields with column copies; the rest of the JSON is skipped unread.
#[derive(serde::Deserialize)]
pub(crate) struct Indexed<'a> {
    #[serde(borrow)]
    pub(crate) id: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) operation: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) kind: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) action: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) outcome: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) correlation_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) timestamp: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) received_at: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) duration_us: Option<u64>,
    #[serde(borrow, default)]
    pub(crate) completes: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) actor: Option<IndexedActor<'a>>,
    #[serde(borrow, default)]
    pub(crate) target: Option<IndexedTarget<'a>>,
    #[serde(borrow, default)]
    pub(crate) compliance: Option<IndexedCompliance<'a>>,
    /// Whether the event lists data sources and compliance events, whose rows `verify` holds to
    /// the lists (`lineage.rs` reads them; here they are skipped, as an unknown field would be).
    #[serde(default)]
    pub(crate) data_sources: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub(crate) compliance_events: Option<serde::de::IgnoredAny>,
}

impl Indexed<'_> {
    /// Whether the event has lineage or compliance rows beside it.
    pub(crate) fn has_lineage(&self) -> bool {
        self.data_sources.is_some() || self.compliance_events.is_some()
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct IndexedActor<'a> {
    #[serde(borrow, default)]
    pub(crate) user_id: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct IndexedTarget<'a> {
    #[serde(borrow, default)]
    pub(crate) server_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) resource_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) resource_id: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct IndexedCompliance<'a> {
    #[serde(borrow, default)]
    pub(crate) classification: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) requires_review: Option<bool>,
    #[serde(borrow, default)]
    pub(crate) data_subject_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) expires_at: Option<Cow<'a, str>>,
}

/// The indexed fields of `meta`, or `None` when it is not such JSON.
pub(crate) fn read(meta: &str) -> Option<Indexed<'_>> {
    serde_json::from_str(meta).ok()
}

/// The timestamp text of an event's metadata in microseconds since the Unix epoch.
pub(crate) fn micros(text: &str) -> Option<i64> {
    utc_micros(text).or_else(|| {
        text.parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_microsecond())
    })
}

/// Microseconds since the Unix epoch of the timestamp form events are written in
/// (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`, from 1970 on), read without a general parser: this runs
/// once per entry of `verify`, where parsing it was a twentieth of the work. `None` for any
/// other form, which the caller gives to `jiff`.
fn utc_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[b.len() - 1] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let days_in_month = *month_days.get(usize::try_from(month - 1).ok()?)?;
    if year < 1970 || day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // The fraction: nothing, or a dot and 1 to 9 digits, truncated to microseconds.
    let fraction = &b[19..b.len() - 1];
    let micros = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let mut n = 0i64;
            for i in 0..6 {
                let d = match digits.get(i) {
                    Some(c) if c.is_ascii_digit() => i64::from(c - b'0'),
                    Some(_) => return None,
                    None => 0,
                };
                n = n * 10 + d;
            }
            if !digits[6.min(digits.len())..].iter().all(u8::is_ascii_digit) {
                return None;
            }
            n
        }
        _ => return None,
    };
    // Days from the civil date (proleptic Gregorian), as in H. Hinnant's `days_from_civil`.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::utc_micros;

    #[test]
    fn the_event_timestamp_form_reads_as_jiff_reads_it() {
        let mut samples = vec![
            "1970-01-01T00:00:00Z".to_string(),
            "2000-02-29T23:59:59.999999Z".into(),
            "2024-12-31T12:00:00.5Z".into(),
            "2026-11-27T19:12:26.123456789Z".into(),
            "2100-03-01T00:00:00.000001Z".into(),
        ];
        // Every day of a leap year and of a common one, at a spread of times.
        for day in 0..(366 + 365) {
            let t =
                jiff::Timestamp::from_second(1_704_067_200 + day * 86_400 + day * 3_607 % 86_400)
                    .unwrap()
                    .checked_add(jiff::SignedDuration::from_nanos(
                        day * 7_919_993 % 1_000_000_000,
                    ))
                    .unwrap();
            samples.push(t.to_string());
        }
        for text in &samples {
            let expected = text.parse::<jiff::Timestamp>().unwrap().as_microsecond();
            assert_eq!(utc_micros(text), Some(expected), "{text}");
        }
        // Anything else is left to jiff.
        for other in [
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-11-27T19:12:26+01:00",
            "2026-11-27 19:12:26Z",
            "2026-11-27T19:12:26.Z",
            "2026-11-27T19:12:26.1234567890Z",
            "2026-11-27T24:00:00Z",
            "2026-1a-27T19:12:26Z",
            "",
        ] {
            assert_eq!(utc_micros(other), None, "{other}");
        }
    }
}
