//! Floods: beyond a rate, repeated notifications (and malformed frames) are counted, not
//! recorded one event each.
//!
//! A peer can send tens of thousands of notifications a second; recorded one by one they fill
//! the disk, and a full disk makes `sync` refuse every call. So within each second, per
//! direction and method, the first [`PER_METHOD`] are recorded on their own and the rest are
//! counted; and at most [`PER_SECOND`] are recorded on their own per second in all, so that a
//! flood of ever new method names is bounded too. When a second with counted notifications is
//! over, its count is recorded as one event with a sample (the first counted one's parameters).
//! The records on their own plus the counts always add up to what was sent.
//!
//! The interpreter has no clock of its own: a second is closed by the first frame that arrives
//! after it ([`Flood::due`]), and by the end of the session ([`Flood::drain`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::interpreter::Direction;

/// How many notifications of one method and direction are recorded on their own per second.
pub const PER_METHOD: u64 = 10;

/// How many notifications are recorded on their own per second, over all methods.
pub const PER_SECOND: u64 = 100;

/// How many methods are counted apart within one second; the notifications of any further
/// method are counted together under [`OTHER_METHODS`].
pub const MAX_METHODS: usize = 256;

/// The method under which the notifications of methods past [`MAX_METHODS`] are counted.
pub const OTHER_METHODS: &str = "(other methods)";

const WINDOW: Duration = Duration::from_secs(1);

/// Whether a notification is recorded on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Record,
    /// Counted in its second's [`Summary`].
    Counted,
}

/// The notifications of one method and direction counted in one second.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub direction: Direction,
    pub method: String,
    /// How many were counted (not recorded on their own); at least 1.
    pub count: u64,
    /// The first counted one's parameters (or, for a malformed frame, its details).
    pub sample: Value,
}

/// The count of one method and direction in the current second.
struct Window {
    start: Instant,
    seen: u64,
    counted: u64,
    sample: Value,
}

/// The flood counters of one interpreter.
#[derive(Default)]
pub struct Flood {
    windows: HashMap<(Direction, String), Window>,
    /// The start of the second that `recorded` counts, and how many were recorded in it.
    second: Option<(Instant, u64)>,
}

impl Flood {
    /// Decides whether the notification `method` that arrived at `at` is recorded on its own;
    /// `sample` gives what a summary keeps of it, asked only for the first counted one.
    pub fn admit(
        &mut self,
        direction: Direction,
        method: &str,
        sample: impl FnOnce() -> Value,
        at: Instant,
    ) -> Verdict {
        let recorded = match &mut self.second {
            Some((start, n)) if at.saturating_duration_since(*start) < WINDOW => n,
            second => &mut second.insert((at, 0)).1,
        };
        let key = if self.windows.len() >= MAX_METHODS
            && !self.windows.contains_key(&(direction, method.to_string()))
        {
            (direction, OTHER_METHODS.to_string())
        } else {
            (direction, method.to_string())
        };
        let window = self.windows.entry(key).or_insert(Window {
            start: at,
            seen: 0,
            counted: 0,
            sample: Value::Null,
        });
        window.seen += 1;
        if window.seen <= PER_METHOD && *recorded < PER_SECOND {
            *recorded += 1;
            return Verdict::Record;
        }
        if window.counted == 0 {
            window.sample = sample();
        }
        window.counted += 1;
        Verdict::Counted
    }

    /// The summaries of the seconds over by `at`; their windows are closed.
    pub fn due(&mut self, at: Instant) -> Vec<Summary> {
        let mut summaries = Vec::new();
        self.windows.retain(|(direction, method), window| {
            if at.saturating_duration_since(window.start) < WINDOW {
                return true;
            }
            summaries.extend(summary(*direction, method, window));
            false
        });
        summaries
    }

    /// Every summary still open (the session is ending).
    pub fn drain(&mut self) -> Vec<Summary> {
        self.windows
            .drain()
            .filter_map(|((direction, method), window)| summary(direction, &method, &window))
            .collect()
    }
}

fn summary(direction: Direction, method: &str, window: &Window) -> Option<Summary> {
    (window.counted > 0).then(|| Summary {
        direction,
        method: method.to_string(),
        count: window.counted,
        sample: window.sample.clone(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const C2S: Direction = Direction::ClientToServer;

    #[test]
    fn past_the_rate_notifications_are_counted_and_the_counts_add_up() {
        let mut flood = Flood::default();
        let t0 = Instant::now();
        let verdicts: Vec<Verdict> = (0..1000)
            .map(|n| flood.admit(C2S, "notifications/x", || json!({ "n": n }), t0))
            .collect();
        let recorded = verdicts.iter().filter(|v| **v == Verdict::Record).count();
        assert_eq!(recorded as u64, PER_METHOD);
        assert!(flood.due(t0).is_empty(), "the second is not over");
        let summaries = flood.due(t0 + WINDOW);
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].count, 1000 - PER_METHOD);
        assert_eq!(summaries[0].sample, json!({ "n": PER_METHOD }));
        // A new second records again.
        let next = flood.admit(C2S, "notifications/x", || json!({}), t0 + WINDOW);
        assert_eq!(next, Verdict::Record);
        assert!(flood.drain().is_empty());
    }

    #[test]
    fn ever_new_method_names_are_bounded_too() {
        let mut flood = Flood::default();
        let t0 = Instant::now();
        let sent = 10_000;
        let recorded = (0..sent)
            .filter(|n| {
                flood.admit(C2S, &format!("notifications/{n}"), || json!(n), t0) == Verdict::Record
            })
            .count() as u64;
        assert_eq!(recorded, PER_SECOND);
        let summaries = flood.drain();
        assert!(summaries.len() <= MAX_METHODS + 1);
        let counted: u64 = summaries.iter().map(|s| s.count).sum();
        assert_eq!(recorded + counted, sent);
        assert!(summaries.iter().any(|s| s.method == OTHER_METHODS));
    }
}
