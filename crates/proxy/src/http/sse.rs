//! Server-sent events, read from a copy of the bytes as they stream through.
//!
//! The proxy forwards an `text/event-stream` body chunk by chunk as it arrives; this parser is
//! fed the same chunks and hands back each complete event's `data` (the data lines joined by
//! `\n`, per the HTML standard), which is one JSON-RPC message for the interpreter. Only the
//! unfinished tail of the stream is held, and a tail that grows past the limit (an event that
//! never ends) is dropped and reported instead of growing without bound.

use crate::tap::{Oversize, Seen};

/// One complete event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `message` when absent.
    pub event: String,
    pub data: Vec<u8>,
    pub id: Option<String>,
}

/// What feeding a chunk produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fed {
    pub events: Vec<SseEvent>,
    /// The size of an event that outgrew the limit and was not interpreted, with its hash.
    pub oversized: Option<Seen>,
}

/// An incremental SSE parser.
pub struct SseParser {
    limit: usize,
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` at the start of the next one belongs to it.
    after_cr: bool,
    event: String,
    data: Vec<u8>,
    has_data: bool,
    id: Option<String>,
    /// An event past the limit: its hash, size and first bytes, until its blank line.
    oversize: Option<Oversize>,
}

impl SseParser {
    /// A parser that interprets events of at most `limit` bytes.
    pub fn new(limit: usize) -> SseParser {
        SseParser {
            limit,
            line: Vec::new(),
            after_cr: false,
            event: String::new(),
            data: Vec::new(),
            has_data: false,
            id: None,
            oversize: None,
        }
    }

    /// Feeds the next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) -> Fed {
        let mut fed = Fed::default();
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line, &mut fed);
                }
                _ => {
                    if let Some(event) = &mut self.oversize {
                        event.update(&[b]);
                    } else {
                        self.line.push(b);
                        if self.line.len() + self.data.len() > self.limit {
                            let mut event = Oversize::start(&self.data, true);
                            event.update(&self.line);
                            self.oversize = Some(event);
                            self.line.clear();
                            self.data.clear();
                        }
                    }
                }
            }
        }
        fed
    }

    fn line_done(&mut self, line: &[u8], fed: &mut Fed) {
        if line.is_empty() {
            if let Some(event) = self.oversize.take() {
                fed.oversized = Some(event.finish(&[]));
            } else if self.has_data {
                let event = if self.event.is_empty() {
                    "message".to_string()
                } else {
                    std::mem::take(&mut self.event)
                };
                fed.events.push(SseEvent {
                    event,
                    data: std::mem::take(&mut self.data),
                    id: self.id.clone(),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        if self.oversize.is_some() {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return, // a comment (keep-alive)
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"id" => self.id = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let mut p = SseParser::new(1024);
        let mut events = Vec::new();
        for chunk in [
            &b"id: 1\nevent: mess"[..],
            b"age\ndata: {\"a\"",
            b":1}\r\n\r",
            b"\n",
        ] {
            events.extend(p.feed(chunk).events);
        }
        assert_eq!(
            events,
            vec![SseEvent {
                event: "message".into(),
                data: br#"{"a":1}"#.to_vec(),
                id: Some("1".into()),
            }]
        );
    }

    #[test]
    fn multi_line_data_is_joined_and_comments_and_empty_events_are_skipped() {
        let mut p = SseParser::new(1024);
        let fed = p.feed(b": keep-alive\n\nid: 7\ndata:\n\ndata: a\ndata: b\n\n");
        let data: Vec<_> = fed.events.iter().map(|e| e.data.clone()).collect();
        assert_eq!(data, vec![b"".to_vec(), b"a\nb".to_vec()]);
    }

    #[test]
    fn an_event_past_the_limit_is_reported_by_size_not_held() {
        let mut p = SseParser::new(16);
        let fed = p.feed(b"data: 0123456789abcdefghij\n\ndata: ok\n\n");
        let seen = fed.oversized.expect("reported");
        assert_eq!(seen.size, "data: 0123456789abcdefghij".len());
        assert!(seen.head.starts_with(b"data: 0123"));
        assert_eq!(fed.events.len(), 1);
        assert_eq!(fed.events[0].data, b"ok");
    }
}
