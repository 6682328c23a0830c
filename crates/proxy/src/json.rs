//! A JSON reader as permissive as the servers behind the proxy, so that what a server can parse
//! and run, the proxy can parse and record (no parser differential).
//!
//! `serde_json` is stricter than the servers it stands in front of, in ways a client can choose:
//! it refuses invalid UTF-8 inside a string (Node decodes it as U+FFFD), a lone surrogate escape
//! such as `\ud800` (JavaScript and Python keep it), nesting deeper than 128 (V8 and Python's
//! `json` go far deeper), and numbers beyond a double (`1e400`, which Python reads as `inf`).
//! A frame the proxy could not read used to pass unrecorded, so this reader takes all of them:
//!
//! - **Text**: invalid UTF-8 becomes U+FFFD (as Node's decoder does), a lone surrogate escape
//!   becomes U+FFFD; a raw control character inside a string and an unknown escape are kept.
//! - **Depth**: parsing is iterative (no recursion, so no depth can overflow the stack). Below
//!   [`MAX_DEPTH`] nested arrays and objects, a value is kept as its JSON text, a string: the
//!   record holds every byte the client sent while every `Value` it builds stays shallow enough
//!   for the encoders and readers of the trail, which recurse.
//! - **Numbers**: an integer that fits 64 bits and a finite double that does not underflow to
//!   zero are numbers; any other number (`1e400`, a 30-digit integer, `1e-400`) and `NaN`,
//!   `Infinity` and `-Infinity` (which Python's `json` reads) are kept as the string of their
//!   text as written, so the record does not hold a number the client did not send.
//! - **Duplicate keys**: the last one wins, as in JavaScript, Python and `serde_json`.
//!
//! Anything else (a frame that is not JSON at all, or ends mid-value) is an error with the
//! byte offset where reading stopped.

use serde_json::{Map, Number, Value};

/// How many arrays and objects deep a value is built; deeper ones are kept as their text.
/// Far below `serde_json`'s reading limit of 128 once the value sits inside an event.
pub const MAX_DEPTH: usize = 64;

/// Why a text is not JSON, even read permissively.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem} at byte {offset}")]
pub struct JsonError {
    /// What was wrong.
    pub problem: &'static str,
    /// Where reading stopped.
    pub offset: usize,
}

/// Reads one JSON value from `bytes` (the whole of it, surrounded by any whitespace).
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let text = String::from_utf8_lossy(bytes);
    Reader {
        text: &text,
        bytes: text.as_bytes(),
        pos: 0,
    }
    .document(&mut Vec::new())
}

/// What the start of a document holds: the value read up to where the text ends or stops
/// being JSON, with every array and object still open closed there (an object's last key
/// without its value is left out). `None` when no array or object was opened (nor a whole
/// value read). For the start of a frame too large to hold, and for answering the requests
/// of a frame that is not JSON with their ids.
pub fn parse_start(bytes: &[u8]) -> Option<Value> {
    let text = String::from_utf8_lossy(bytes);
    let mut open = Vec::new();
    let read = Reader {
        text: &text,
        bytes: text.as_bytes(),
        pos: 0,
    }
    .document(&mut open);
    if let Ok(value) = read {
        return Some(value);
    }
    let mut value = None;
    while let Some(holder) = open.pop() {
        value = Some(match holder {
            Open::Array(mut items) => {
                items.extend(value);
                Value::Array(items)
            }
            Open::Object(mut members, key) => {
                if let Some(value) = value {
                    members.insert(key, value);
                }
                Value::Object(members)
            }
        });
    }
    value
}

/// An array or object being read: the values so far (and, for an object, the key whose value
/// is being read).
enum Open {
    Array(Vec<Value>),
    Object(Map<String, Value>, String),
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn fail<T>(&self, problem: &'static str) -> Result<T, JsonError> {
        Err(JsonError {
            problem,
            offset: self.pos,
        })
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// The whole document: one value, then only whitespace.
    /// `open` holds the arrays and objects being read, left there when reading fails.
    fn document(&mut self, open: &mut Vec<Open>) -> Result<Value, JsonError> {
        'value: loop {
            self.skip_whitespace();
            let mut value = match self.peek() {
                Some(b'{' | b'[') if open.len() >= MAX_DEPTH => {
                    let start = self.pos;
                    self.skip_nested()?;
                    Value::String(self.text[start..self.pos].to_string())
                }
                Some(b'{') => {
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        Value::Object(Map::new())
                    } else {
                        let key = self.key()?;
                        open.push(Open::Object(Map::new(), key));
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        Value::Array(Vec::new())
                    } else {
                        open.push(Open::Array(Vec::new()));
                        continue 'value;
                    }
                }
                Some(b'"') => Value::String(self.string()?),
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal("true", Value::Bool(true))?,
                Some(b'f') => self.literal("false", Value::Bool(false))?,
                Some(b'n') => self.literal("null", Value::Null)?,
                Some(b'N') => self.literal("NaN", Value::String("NaN".into()))?,
                Some(b'I') => self.literal("Infinity", Value::String("Infinity".into()))?,
                Some(_) => return self.fail("expected a value"),
                None => return self.fail("the text ends where a value was expected"),
            };
            // Put the finished value into what holds it, closing every array and object that
            // it finishes.
            loop {
                let Some(holder) = open.last_mut() else {
                    self.skip_whitespace();
                    if self.pos != self.bytes.len() {
                        return self.fail("more after the value");
                    }
                    return Ok(value);
                };
                self.skip_whitespace();
                let next = self.peek();
                self.pos += 1;
                match holder {
                    Open::Array(items) => {
                        items.push(value);
                        match next {
                            Some(b',') => continue 'value,
                            Some(b']') => {}
                            _ => {
                                self.pos -= 1;
                                return self.fail("expected `,` or `]`");
                            }
                        }
                    }
                    Open::Object(members, key) => {
                        members.insert(std::mem::take(key), value);
                        match next {
                            Some(b',') => {
                                self.skip_whitespace();
                                *key = self.key()?;
                                continue 'value;
                            }
                            Some(b'}') => {}
                            _ => {
                                self.pos -= 1;
                                return self.fail("expected `,` or `}`");
                            }
                        }
                    }
                }
                value = match open.pop() {
                    Some(Open::Array(items)) => Value::Array(items),
                    Some(Open::Object(members, _)) => Value::Object(members),
                    None => unreachable!("`holder` was the last open value"),
                };
            }
        }
    }

    /// An object's key and the `:` after it.
    fn key(&mut self) -> Result<String, JsonError> {
        if self.peek() != Some(b'"') {
            return self.fail("expected a key");
        }
        let key = self.string()?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return self.fail("expected `:`");
        }
        self.pos += 1;
        Ok(key)
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, JsonError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            self.fail("expected a value")
        }
    }

    /// A string, from its opening quote to past its closing one.
    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' {
                    break;
                }
                self.pos += 1;
            }
            // Between ASCII delimiters: always on a character boundary.
            out.push_str(&self.text[start..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(_) => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                None => return self.fail("the text ends inside a string"),
            }
        }
    }

    /// The escape after a backslash.
    fn escape(&mut self, out: &mut String) -> Result<(), JsonError> {
        let Some(c) = self.peek() else {
            return self.fail("the text ends inside a string");
        };
        self.pos += 1;
        match c {
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let unit = self.hex4()?;
                let c = match unit {
                    0xD800..=0xDBFF if self.bytes[self.pos..].starts_with(b"\\u") => {
                        let save = self.pos;
                        self.pos += 2;
                        let low = self.hex4()?;
                        if (0xDC00..=0xDFFF).contains(&low) {
                            let scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                            char::from_u32(scalar).unwrap_or(char::REPLACEMENT_CHARACTER)
                        } else {
                            // A lone high surrogate; the next escape is read on its own.
                            self.pos = save;
                            char::REPLACEMENT_CHARACTER
                        }
                    }
                    unit => char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER),
                };
                out.push(c);
            }
            // `"`, `\`, `/`, and (permissively) any other character stand for themselves.
            _ => {
                self.pos -= 1;
                let rest = &self.text[self.pos..];
                if let Some(ch) = rest.chars().next() {
                    out.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.bytes.get(self.pos..self.pos + 4);
        let unit = digits
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok());
        match unit {
            Some(unit) => {
                self.pos += 4;
                Ok(unit)
            }
            None => self.fail("expected four hex digits after `\\u`"),
        }
    }

    /// A number (or `-Infinity`), kept exactly or as its text (see the module's doc).
    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
            if self.peek() == Some(b'I') {
                return self.literal("Infinity", Value::String("-Infinity".into()));
            }
        }
        let digits = |r: &mut Self| {
            let from = r.pos;
            while let Some(b'0'..=b'9') = r.peek() {
                r.pos += 1;
            }
            r.pos > from
        };
        if !digits(self) {
            return self.fail("expected a digit");
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            integer = false;
            if !digits(self) {
                return self.fail("expected a digit after `.`");
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !digits(self) {
                return self.fail("expected a digit in the exponent");
            }
        }
        let text = &self.text[start..self.pos];
        Ok(number(text, integer).unwrap_or_else(|| Value::String(text.to_string())))
    }

    /// Past the array or object that starts here, without building it: the text of a value
    /// deeper than [`MAX_DEPTH`]. Brackets are counted, not matched by kind.
    fn skip_nested(&mut self) -> Result<(), JsonError> {
        let mut depth: u64 = 0;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                b'"' => {
                    self.pos -= 1;
                    self.string()?;
                }
                _ => {}
            }
        }
        self.fail("the text ends inside an array or object")
    }
}

/// The number `text` is, if a `Number` holds it as written: an integer of 64 bits, or a finite
/// double that is not zero for digits that are not all zero (an underflow).
fn number(text: &str, integer: bool) -> Option<Value> {
    if integer {
        if let Ok(n) = text.parse::<i64>() {
            if n == 0 && text.starts_with('-') {
                // `-0` is the double negative zero, as `serde_json` reads it.
                return Number::from_f64(-0.0).map(Value::Number);
            }
            return Some(Value::Number(n.into()));
        }
        return text.parse::<u64>().ok().map(|n| Value::Number(n.into()));
    }
    let n: f64 = text.parse().ok()?;
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    if n == 0.0 && mantissa.bytes().any(|b| matches!(b, b'1'..=b'9')) {
        return None;
    }
    Number::from_f64(n).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(text: &[u8], expected: Value) {
        assert_eq!(
            parse(text),
            Ok(expected),
            "{}",
            String::from_utf8_lossy(text)
        );
    }

    #[test]
    fn what_serde_json_reads_is_read_the_same() {
        for text in [
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"a":[1,-2,3.5,true,false,null,"x\n\"\\\/\u00e9\ud83d\ude00"]}}}"#,
            r#"  [ {"a" : {}} , [] , "" , 0 , -0 , 1e3 , 1.5E-3, 18446744073709551615, -9223372036854775808 ]  "#,
            r#"{"dup":1,"dup":2}"#,
        ] {
            let strict: Value = serde_json::from_str(text).unwrap();
            check(text.as_bytes(), strict);
        }
    }

    #[test]
    fn invalid_utf8_inside_a_string_is_replaced() {
        check(b"{\"name\":\"ec\xffho\"}", json!({"name": "ec\u{fffd}ho"}));
    }

    #[test]
    fn a_lone_surrogate_escape_is_replaced_and_a_pair_is_joined() {
        check(br#""a\ud800b""#, json!("a\u{fffd}b"));
        check(br#""\udc00""#, json!("\u{fffd}"));
        check(br#""\ud800\u0041""#, json!("\u{fffd}A"));
        check(br#""\ud83d\ude00""#, json!("\u{1f600}"));
    }

    #[test]
    fn numbers_no_number_holds_are_kept_as_written() {
        check(
            b"[1e400, -1e400, 1e-400, 0e5, 123456789012345678901234567890, 1.5]",
            json!([
                "1e400",
                "-1e400",
                "1e-400",
                0.0,
                "123456789012345678901234567890",
                1.5
            ]),
        );
        check(
            b"[NaN, Infinity, -Infinity]",
            json!(["NaN", "Infinity", "-Infinity"]),
        );
    }

    #[test]
    fn values_deeper_than_the_limit_are_kept_as_their_text() {
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        let frame = format!(r#"{{"arguments":{{"deep":{deep}}}}}"#);
        let value = parse(frame.as_bytes()).unwrap();
        let mut inner = &value["arguments"]["deep"];
        let mut levels = 2;
        while let Some(items) = inner.as_array() {
            inner = &items[0];
            levels += 1;
        }
        assert_eq!(levels, MAX_DEPTH);
        let rest = inner.as_str().unwrap();
        assert_eq!(rest.len(), 2 * (129 + 2 - MAX_DEPTH));
        assert!(rest.starts_with("[[") && rest.ends_with("]]"));
    }

    #[test]
    fn ten_million_open_brackets_do_not_overflow_the_stack() {
        let deep = "[".repeat(10_000_000);
        assert!(parse(deep.as_bytes()).is_err());
        let closed = format!("{deep}{}", "]".repeat(10_000_000));
        assert!(parse(closed.as_bytes()).unwrap().is_array());
    }

    #[test]
    fn the_start_of_a_document_is_what_it_holds_so_far() {
        let start = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"pad":"xxxx"#;
        assert_eq!(
            parse_start(start),
            Some(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                        "params": {"name": "echo", "arguments": {}}}))
        );
        assert_eq!(
            parse_start(br#"[{"id":1},{"id":"#),
            Some(json!([{"id": 1}, {}]))
        );
        assert_eq!(parse_start(b"not json"), None);
        assert_eq!(parse_start(b"{}"), Some(json!({})));
    }

    #[test]
    fn text_that_is_not_json_is_an_error_with_its_offset() {
        assert_eq!(parse(b"{nope").unwrap_err().offset, 1);
        for bad in [
            &b""[..],
            b"{",
            b"[1,",
            b"\"open",
            b"1 2",
            b"{\"a\" 1}",
            b"-",
            b"1.",
            b"tru",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
