//! The bytes Python's `json.dumps(value, sort_keys=True)` writes with its defaults, which is
//! what MockLoop's logger hashes: `", "` and `": "` as separators, every character outside
//! printable ASCII escaped as `\uXXXX` (`ensure_ascii`, lower-case hex, surrogate pairs beyond
//! U+FFFF), object keys sorted by code point, and floats as Python's `repr` prints them (`1.0`,
//! `1e+16`, `1.5e-05`).
//!
//! A value read back from the seed's stored JSON text comes through `serde_json`, which holds
//! an integer beyond 64 bits as a float: such an integer is written otherwise than Python wrote
//! it, and its row's hash does not match (reported, never silently accepted).

use std::fmt::Write as _;

use serde_json::Value;

/// `json.dumps(value, sort_keys=True)`, as Python writes it.
pub fn dumps_sorted(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else if let Some(f) = n.as_f64() {
                out.push_str(&float_repr(f));
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Rust's `str` order is byte order of UTF-8, which is code point order: Python's.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, key);
                out.push_str(": ");
                write_value(out, &map[key]);
            }
            out.push('}');
        }
    }
}

/// A string as `json.dumps` with `ensure_ascii=True` writes it.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// A float as Python's `repr` writes it: the shortest digits that read back to the same
/// double, in fixed notation when the decimal exponent is in -4..16, else as `d.ddde±XX`.
fn float_repr(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // Rust's `{:e}` gives the same shortest digits: `1.5e-5`, `1e16`, `-2.5e0`.
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exponent) {
        if exponent >= 0 {
            let int_len = exponent as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exponent - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Each expected text is what CPython 3.11 prints for `json.dumps(v, sort_keys=True)`.
    #[test]
    fn writes_what_python_writes() {
        let cases = [
            (
                json!({"b": 1, "a": [true, null]}),
                r#"{"a": [true, null], "b": 1}"#,
            ),
            (json!({}), "{}"),
            (json!([]), "[]"),
            (
                json!("Zoë 😀\n\"\\\u{7f}"),
                r#""Zo\u00eb \ud83d\ude00\n\"\\\u007f""#,
            ),
            (json!(12.5), "12.5"),
            (json!(1.0), "1.0"),
            (json!(-3.0), "-3.0"),
            (json!(0.25), "0.25"),
            (json!(0.0001), "0.0001"),
            (json!(0.00001), "1e-05"),
            (json!(1.5e-7), "1.5e-07"),
            (json!(1e16), "1e+16"),
            (json!(1234567890123456.0), "1234567890123456.0"),
            (json!(1.2345678901234568e17), "1.2345678901234568e+17"),
            (json!(1e300), "1e+300"),
            (json!(0.1), "0.1"),
            (
                json!(-18446744073709551615i128 as f64),
                "-1.8446744073709552e+19",
            ),
            (json!(18446744073709551615u64), "18446744073709551615"),
            (json!(-5), "-5"),
        ];
        for (value, expected) in cases {
            assert_eq!(dumps_sorted(&value), expected, "{value}");
        }
    }

    #[test]
    fn keys_sort_by_code_point() {
        let value = json!({"é": 1, "z": 2, "Z": 3, "a": 4});
        assert_eq!(
            dumps_sorted(&value),
            r#"{"Z": 3, "a": 4, "z": 2, "\u00e9": 1}"#
        );
    }
}
