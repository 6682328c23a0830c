//! Cutting a batch into export requests that a receiver takes.
//!
//! A receiver refuses a request past its size limit: the OpenTelemetry Collector's gRPC
//! receiver by default refuses messages over 4 MiB (as `RESOURCE_EXHAUSTED`, which reads like
//! throttling, so the sink would retry the same batch forever). So the sink keeps every request
//! under `max_request_bytes`: consecutive records go into one request while they fit, and a
//! record too large to fit alone is refused by index, after the records before it were
//! delivered. The runner then retries it alone and, after its tries, gives it to the dead
//! letters, and the rest of the log flows on.
//!
//! What keeps this correct: a record's cost is the exact protobuf size it adds to its request
//! (`tag + length varint + message`, the encoding of a repeated message field), and the
//! request's own cost (resource, scope, and the two enclosing messages' length prefixes, which
//! grow by at most 8 bytes as the content grows) is counted once with that margin.

use std::ops::Range;

use prost::Message;
use prost::encoding::encoded_len_varint;

/// The bytes a request's envelope may grow beyond its encoding without records: the length
/// varints of `ResourceLogs`/`ScopeLogs` (or the span pair) grow from 1 to at most 5 bytes each.
const ENVELOPE_GROWTH: usize = 8;

/// What one record adds to each signal's request, in bytes; 0 where it sends nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub log: usize,
    pub span: usize,
}

/// The bytes `message` adds as one element of a repeated message field.
pub fn element_cost(message: &impl Message) -> usize {
    let len = message.encoded_len();
    1 + encoded_len_varint(len as u64) + len
}

/// The bytes of a request without records, growth of its length prefixes included.
pub fn envelope_cost(empty_request: &impl Message) -> usize {
    empty_request.encoded_len() + ENVELOPE_GROWTH
}

/// How a batch is sent: the requests in order, and the first record that cannot be sent at all.
#[derive(Debug, PartialEq, Eq)]
pub struct Cut {
    /// Consecutive ranges of the batch, each one request per signal; they cover the batch up to
    /// `oversized`.
    pub requests: Vec<Range<usize>>,
    pub oversized: Option<Oversized>,
}

/// A record whose log record or span alone is past the limit.
#[derive(Debug, PartialEq, Eq)]
pub struct Oversized {
    pub index: usize,
    pub bytes: usize,
}

/// Cuts records of `costs` into requests of at most `room` bytes of records per signal.
pub fn cut(costs: &[Cost], room: usize) -> Cut {
    let mut requests = Vec::new();
    let mut start = 0;
    let (mut logs, mut spans) = (0, 0);
    for (index, cost) in costs.iter().enumerate() {
        if cost.log > room || cost.span > room {
            if start < index {
                requests.push(start..index);
            }
            let bytes = cost.log.max(cost.span);
            return Cut {
                requests,
                oversized: Some(Oversized { index, bytes }),
            };
        }
        if logs + cost.log > room || spans + cost.span > room {
            requests.push(start..index);
            start = index;
            (logs, spans) = (0, 0);
        }
        logs += cost.log;
        spans += cost.span;
    }
    if start < costs.len() {
        requests.push(start..costs.len());
    }
    Cut {
        requests,
        oversized: None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Cost, Cut, Oversized, cut};

    fn costs(logs: &[usize]) -> Vec<Cost> {
        logs.iter().map(|&log| Cost { log, span: 0 }).collect()
    }

    #[test]
    fn records_that_fit_go_in_one_request() {
        assert_eq!(cut(&costs(&[3, 3, 4]), 10).requests, vec![0..3]);
        assert_eq!(
            cut(&[], 10),
            Cut {
                requests: vec![],
                oversized: None
            }
        );
    }

    #[test]
    fn a_request_ends_before_the_record_that_would_overflow_it() {
        assert_eq!(
            cut(&costs(&[6, 4, 1, 9, 10]), 10).requests,
            [0..2, 2..4, 4..5]
        );
        // The span request counts on its own.
        let mixed = [Cost { log: 1, span: 6 }, Cost { log: 1, span: 6 }];
        assert_eq!(cut(&mixed, 10).requests, [0..1, 1..2]);
    }

    #[test]
    fn a_record_too_large_alone_is_refused_after_the_ones_before_it() {
        let c = cut(&costs(&[2, 3, 11, 1]), 10);
        assert_eq!(c.requests, vec![0..2]);
        assert_eq!(
            c.oversized,
            Some(Oversized {
                index: 2,
                bytes: 11
            })
        );
        let first = cut(&[Cost { log: 1, span: 12 }], 10);
        assert_eq!(
            (first.requests.len(), first.oversized),
            (
                0,
                Some(Oversized {
                    index: 0,
                    bytes: 12
                })
            )
        );
    }

    /// Every cut of every batch of up to 6 records of cost 0..=5, against what it must be:
    /// contiguous, in order, each request within room and not joinable with the next record.
    #[test]
    fn every_small_batch_is_cut_into_full_requests_within_room() {
        let room = 5;
        let mut batch = Vec::new();
        fn all(batch: &mut Vec<usize>, room: usize) {
            let c = cut(&costs(batch), room);
            let end = c.oversized.as_ref().map_or(batch.len(), |o| o.index);
            let mut next = 0;
            for r in &c.requests {
                assert_eq!(r.start, next, "{batch:?}");
                assert!(!r.is_empty());
                let sum: usize = batch[r.clone()].iter().sum();
                assert!(sum <= room, "{batch:?}");
                if r.end < end {
                    assert!(
                        sum + batch[r.end] > room,
                        "{batch:?}: could have taken one more"
                    );
                }
                next = r.end;
            }
            assert_eq!(next, end, "{batch:?}");
            if let Some(o) = c.oversized {
                assert!(batch[o.index] > room && batch[..o.index].iter().all(|&b| b <= room));
            }
            if batch.len() < 6 {
                for cost in 0..=room + 1 {
                    batch.push(cost);
                    all(batch, room);
                    batch.pop();
                }
            }
        }
        all(&mut batch, room);
    }
}
