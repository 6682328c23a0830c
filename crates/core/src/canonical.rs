//! Canonical JSON written straight from `Serialize`: RFC 8785 (JCS), with one deliberate
//! difference for integers beyond ±2^53.
//!
//! Why a writer of our own: sealing encodes every event twice (metadata and personal half).
//! Going through a `serde_json::Value` tree first, to have its keys sorted, cost about three
//! quarters of that encoding: a map and a string per key and value, built only to be printed and
//! dropped. This serializer writes bytes directly: each object's members are written into one
//! scratch buffer as they come, then copied out in sorted key order.
//!
//! Why the difference: JCS writes every number as an IEEE-754 double prints, so an integer
//! beyond ±2^53 comes out rounded. A 64-bit id in a tool's arguments (1850000000000000001, say)
//! would be stored as 1850000000000000000: the trail would not hold what the agent sent, and two
//! different arguments would share one hash. Integers are written with all their digits instead.
//! Every value without such an integer comes out byte for byte as JCS writes it (tests hold this
//! writer equal to a JCS implementation), and a JCS implementation that reads integers exactly,
//! as Python's `json` does, writes these same bytes for the rest.
//!
//! The rest is JCS: strings with serde_json's escapes (which are JCS's), floats as ECMAScript
//! prints them (`ryu-js`, the formatting JCS specifies), and object members in the UTF-16 order
//! of their keys. For the common key (no escape, nothing from U+D800 up) that order is the order
//! of its JSON text, compared as bytes; an object with any other key is sorted by its keys'
//! UTF-16 code units.

use std::io::Write as _;
use std::ops::Range;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// Why a value has no JSON form: a float that is not finite, or a map key that is not text or
/// an integer. Nothing in the event model produces either.
#[derive(Debug)]
pub(crate) struct Unencodable(String);

impl std::fmt::Display for Unencodable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unencodable {}

impl ser::Error for Unencodable {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        Unencodable(message.to_string())
    }
}

/// The canonical JSON of `value`.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Unencodable> {
    let mut out = Vec::with_capacity(1024);
    value.serialize(&mut Writer { out: &mut out })?;
    Ok(out)
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn text(&mut self, s: &str) -> Result<(), Unencodable> {
        serde_json::to_writer(&mut *self.out, s).map_err(|e| Unencodable(e.to_string()))
    }

    /// Every digit of an integer, whatever its size (see the module's doc for why).
    fn integer(&mut self, n: impl std::fmt::Display) -> Result<(), Unencodable> {
        write!(self.out, "{n}").map_err(|e| Unencodable(e.to_string()))
    }

    /// A float as ECMAScript's `Number.prototype.toString` writes it, which is JCS's number
    /// form (negative zero included, as `0`).
    fn float(&mut self, n: f64) -> Result<(), Unencodable> {
        if !n.is_finite() {
            return Err(Unencodable(format!("{n} is not a JSON number")));
        }
        self.out
            .extend_from_slice(ryu_js::Buffer::new().format_finite(n).as_bytes());
        Ok(())
    }

    /// `{"variant":` before a variant's content; [`Writer::close_variant`] after it.
    fn open_variant(&mut self, variant: &str) -> Result<(), Unencodable> {
        self.out.push(b'{');
        self.text(variant)?;
        self.out.push(b':');
        Ok(())
    }

    fn close_variant(&mut self) {
        self.out.push(b'}');
    }
}

/// Whether a key's JSON text sorts as the key does in UTF-16 (JCS's order): it needs no escape
/// (its text is the key in quotes) and has nothing from U+D800 up, where UTF-8's byte order
/// and UTF-16's part.
fn sorts_as_bytes(key: &str, text: &[u8]) -> bool {
    text.len() == key.len() + 2 && key.chars().all(|c| (c as u32) < 0xD800)
}

/// The ten `serialize_*` methods for integers, each handed to the serializer's own `integer`,
/// which writes every digit (a value's, or a map key's in quotes); `$ok` is the serializer's
/// `Ok` type.
macro_rules! integers {
    ($ok:ty) => {
        integers!($ok; serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
            serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
            serialize_u32: u32, serialize_u64: u64, serialize_u128: u128);
    };
    ($ok:ty; $($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<$ok, Unencodable> {
            self.integer(v)
        }
    )*};
}

impl<'a, 'b> ser::Serializer for &'b mut Writer<'a> {
    type Ok = ();
    type Error = Unencodable;
    type SerializeSeq = Seq<'a, 'b>;
    type SerializeTuple = Seq<'a, 'b>;
    type SerializeTupleStruct = Seq<'a, 'b>;
    type SerializeTupleVariant = Seq<'a, 'b>;
    type SerializeMap = Object<'a, 'b>;
    type SerializeStruct = Object<'a, 'b>;
    type SerializeStructVariant = Object<'a, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), Unencodable> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    integers!(());
    fn serialize_f32(self, v: f32) -> Result<(), Unencodable> {
        // As JCS implementations do: the double of the same value.
        self.float(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Unencodable> {
        self.float(v)
    }
    fn serialize_char(self, v: char) -> Result<(), Unencodable> {
        self.text(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Unencodable> {
        self.text(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Unencodable> {
        // As serde_json writes bytes: an array of numbers.
        use ser::SerializeSeq as _;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for byte in v {
            seq.serialize_element(byte)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), Unencodable> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unencodable> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unencodable> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unencodable> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unencodable> {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unencodable> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unencodable> {
        self.open_variant(variant)?;
        value.serialize(&mut *self)?;
        self.close_variant();
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a, 'b>, Unencodable> {
        self.out.push(b'[');
        Ok(Seq {
            writer: self,
            first: true,
            variant: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a, 'b>, Unencodable> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Seq<'a, 'b>, Unencodable> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'a, 'b>, Unencodable> {
        self.open_variant(variant)?;
        self.out.push(b'[');
        Ok(Seq {
            writer: self,
            first: true,
            variant: true,
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a, 'b>, Unencodable> {
        Ok(Object::new(self, false))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object<'a, 'b>, Unencodable> {
        Ok(Object::new(self, false))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Object<'a, 'b>, Unencodable> {
        self.open_variant(variant)?;
        Ok(Object::new(self, true))
    }
}

/// An array being written: elements go straight to the output.
struct Seq<'a, 'b> {
    writer: &'b mut Writer<'a>,
    first: bool,
    /// Inside `{"variant":[...]}`: one more brace to close.
    variant: bool,
}

impl Seq<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unencodable> {
        if !self.first {
            self.writer.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.writer)
    }

    fn finish(self) -> Result<(), Unencodable> {
        self.writer.out.push(b']');
        if self.variant {
            self.writer.close_variant();
        }
        Ok(())
    }
}

/// The four array-like serde traits, all written as [`Seq::element`]s.
macro_rules! seq_like {
    ($($tr:ident :: $method:ident),*) => {$(
        impl ser::$tr for Seq<'_, '_> {
            type Ok = ();
            type Error = Unencodable;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unencodable> {
                self.element(value)
            }
            fn end(self) -> Result<(), Unencodable> {
                self.finish()
            }
        }
    )*};
}

seq_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// An object being written. Members go straight to the output as they come, and most come in
/// order already (a `serde_json::Value`'s map is sorted); when one does not, the members are
/// put in order once the object is complete.
struct Object<'a, 'b> {
    writer: &'b mut Writer<'a>,
    /// Where the first member starts in the output (just after the `{`).
    body: usize,
    /// Each member's key (its quoted JSON text) and its `"key":value` bytes, in the output.
    members: Vec<(Range<usize>, Range<usize>)>,
    in_order: bool,
    /// Some key's JSON text does not sort as the key does (see [`sorts_as_bytes`]): the members
    /// are sorted by their keys' UTF-16 code units.
    by_utf16: bool,
    /// A map's key written, its value awaited: the member's start and the key's range.
    pending: Option<(usize, Range<usize>)>,
    /// Inside `{"variant":{...}}`: one more brace to close.
    variant: bool,
}

impl<'a, 'b> Object<'a, 'b> {
    fn new(writer: &'b mut Writer<'a>, variant: bool) -> Object<'a, 'b> {
        writer.out.push(b'{');
        let body = writer.out.len();
        Object {
            writer,
            body,
            members: Vec::with_capacity(8),
            in_order: true,
            by_utf16: false,
            pending: None,
            variant,
        }
    }

    /// Starts a member: the comma, then the key as JSON text (see [`KeyWriter`]).
    fn key<K: Serialize + ?Sized>(
        &mut self,
        key: &K,
    ) -> Result<(usize, Range<usize>), Unencodable> {
        let out = &mut *self.writer.out;
        if !self.members.is_empty() {
            out.push(b',');
        }
        let start = out.len();
        let plain = key.serialize(KeyWriter { out: &mut *out })?;
        self.by_utf16 |= !plain;
        let key_range = start..out.len();
        out.push(b':');
        Ok((start, key_range))
    }

    fn value<T: Serialize + ?Sized>(
        &mut self,
        (start, key): (usize, Range<usize>),
        value: &T,
    ) -> Result<(), Unencodable> {
        value.serialize(&mut *self.writer)?;
        let out = &*self.writer.out;
        if let Some((last, _)) = self.members.last() {
            self.in_order &= out[last.clone()] < out[key.clone()];
        }
        self.members.push((key, start..out.len()));
        Ok(())
    }

    fn finish(mut self) -> Result<(), Unencodable> {
        if self.pending.is_some() {
            return Err(Unencodable("a map key without its value".into()));
        }
        if !self.in_order || self.by_utf16 {
            let body = self.writer.out.split_off(self.body);
            // Offsets into `body` instead of the output.
            let at = |r: &Range<usize>| r.start - self.body..r.end - self.body;
            if self.by_utf16 {
                let mut keyed = Vec::with_capacity(self.members.len());
                for (key, member) in self.members.drain(..) {
                    let key: String = serde_json::from_slice(&body[at(&key)])
                        .map_err(|e| Unencodable(e.to_string()))?;
                    keyed.push((key.encode_utf16().collect::<Vec<u16>>(), member));
                }
                keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                self.members = keyed.into_iter().map(|(_, m)| (0..0, m)).collect();
            } else {
                self.members
                    .sort_unstable_by(|a, b| body[at(&a.0)].cmp(&body[at(&b.0)]));
            }
            let out = &mut *self.writer.out;
            for (i, (_, member)) in self.members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&body[at(member)]);
            }
        }
        self.writer.out.push(b'}');
        if self.variant {
            self.writer.close_variant();
        }
        Ok(())
    }
}

impl ser::SerializeMap for Object<'_, '_> {
    type Ok = ();
    type Error = Unencodable;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unencodable> {
        self.pending = Some(self.key(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unencodable> {
        let pending = self
            .pending
            .take()
            .ok_or_else(|| Unencodable("a map value without its key".into()))?;
        self.value(pending, value)
    }
    fn end(self) -> Result<(), Unencodable> {
        self.finish()
    }
}

/// A struct's and a struct variant's fields: members with static keys.
macro_rules! struct_like {
    ($($tr:ident),*) => {$(
        impl ser::$tr for Object<'_, '_> {
            type Ok = ();
            type Error = Unencodable;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Unencodable> {
                let at = self.key(key)?;
                self.value(at, value)
            }
            fn end(self) -> Result<(), Unencodable> {
                self.finish()
            }
        }
    )*};
}

struct_like!(SerializeStruct, SerializeStructVariant);

/// Writes an object's key as quoted JSON text, as serde_json does: text as it is, integers in
/// quotes. Returns whether that text sorts as the key does ([`sorts_as_bytes`]).
struct KeyWriter<'o> {
    out: &'o mut Vec<u8>,
}

impl KeyWriter<'_> {
    fn text(self, key: &str) -> Result<bool, Unencodable> {
        let start = self.out.len();
        serde_json::to_writer(&mut *self.out, key).map_err(|e| Unencodable(e.to_string()))?;
        Ok(sorts_as_bytes(key, &self.out[start..]))
    }

    fn integer(self, n: impl std::fmt::Display) -> Result<bool, Unencodable> {
        self.text(&n.to_string())
    }
}

/// Key types JSON has no text for.
fn not_a_key(what: &str) -> Unencodable {
    Unencodable(format!("a map key must be text or an integer, not {what}"))
}

/// `serialize_*` methods for scalars that can not be keys.
macro_rules! refuse_scalars {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, _: $t) -> Result<bool, Unencodable> {
            Err(not_a_key(stringify!($t)))
        }
    )*};
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = bool;
    type Error = Unencodable;
    type SerializeSeq = Impossible<bool, Unencodable>;
    type SerializeTuple = Impossible<bool, Unencodable>;
    type SerializeTupleStruct = Impossible<bool, Unencodable>;
    type SerializeTupleVariant = Impossible<bool, Unencodable>;
    type SerializeMap = Impossible<bool, Unencodable>;
    type SerializeStruct = Impossible<bool, Unencodable>;
    type SerializeStructVariant = Impossible<bool, Unencodable>;

    fn serialize_str(self, v: &str) -> Result<bool, Unencodable> {
        self.text(v)
    }
    fn serialize_char(self, v: char) -> Result<bool, Unencodable> {
        self.text(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<bool, Unencodable> {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<bool, Unencodable> {
        value.serialize(self)
    }
    integers!(bool);
    refuse_scalars!(
        serialize_bool: bool,
        serialize_f32: f32,
        serialize_f64: f64,
        serialize_bytes: &[u8]
    );
    fn serialize_none(self) -> Result<bool, Unencodable> {
        Err(not_a_key("null"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<bool, Unencodable> {
        Err(not_a_key("an option"))
    }
    fn serialize_unit(self) -> Result<bool, Unencodable> {
        Err(not_a_key("null"))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<bool, Unencodable> {
        Err(not_a_key("a unit struct"))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<bool, Unencodable> {
        Err(not_a_key("an enum with data"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unencodable> {
        Err(not_a_key("an array"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unencodable> {
        Err(not_a_key("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unencodable> {
        Err(not_a_key("a tuple"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unencodable> {
        Err(not_a_key("an enum with data"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unencodable> {
        Err(not_a_key("an object"))
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Unencodable> {
        Err(not_a_key("an object"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unencodable> {
        Err(not_a_key("an enum with data"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    /// What a JCS implementation writes for `v`, and what this writer does.
    fn both(v: &impl Serialize) -> (String, String) {
        let jcs = serde_json_canonicalizer::to_vec(v).unwrap();
        let ours = to_vec(v).expect("encodable");
        (
            String::from_utf8(ours).unwrap(),
            String::from_utf8(jcs).unwrap(),
        )
    }

    fn agrees(v: &impl Serialize) {
        let (ours, jcs) = both(v);
        assert_eq!(ours, jcs);
    }

    #[test]
    fn values_come_out_as_a_jcs_implementation_writes_them() {
        agrees(
            &json!({"b": 1, "a": [true, null, "x\u{1f}\"\\/\u{7f}é😀"], "c": {"z": -9007199254740992i64}}),
        );
        agrees(&json!([{"k": "line\nbreak\ttab"}, 12345678901234i64, -1, 0, {}, []]));
        agrees(&json!({"ab": 1, "a": 2, "b": {"y": [], "x": {"q": null}}, "": 3}));
        agrees(&json!({"\u{7ff}": 1, "\u{d7ff}": 2, "z": 3}));
        agrees(&json!("just text"));
        agrees(&json!(9007199254740992u64));
        agrees(&json!(-9007199254740992i64));
    }

    #[test]
    fn floats_are_written_as_ecmascript_prints_them() {
        for v in [
            json!({"f": 0.5, "tenth": 0.1, "third": 1.0 / 3.0}),
            json!([
                1e21,
                1e20,
                1e-7,
                1e-6,
                -0.0,
                0.0,
                5e-324,
                1.7976931348623157e308
            ]),
            json!({"temperature": 0.7, "n": 3, "nested": {"x": -2.5e-10}}),
        ] {
            agrees(&v);
        }
        let (ours, _) = both(&json!([1e21, -0.0, 100.0]));
        assert_eq!(ours, "[1e+21,0,100]");
    }

    #[test]
    fn integers_beyond_two_to_the_53_keep_every_digit() {
        let v = json!({
            "id": 1850000000000000001u64,
            "above": 9007199254740993u64,
            "below": -9007199254740993i64,
            "max": u64::MAX,
            "min": i64::MIN,
        });
        let (ours, jcs) = both(&v);
        assert_eq!(
            ours,
            r#"{"above":9007199254740993,"below":-9007199254740993,"id":1850000000000000001,"max":18446744073709551615,"min":-9223372036854775808}"#
        );
        // JCS itself would round them (the reason for the difference).
        assert!(jcs.contains(r#""id":1850000000000000000"#), "{jcs}");
        // Neighbours no longer share one encoding, so no longer one hash.
        assert_ne!(
            to_vec(&json!(9007199254740993u64)).unwrap(),
            to_vec(&json!(9007199254740992u64)).unwrap()
        );
        assert_eq!(
            to_vec(&(i128::MAX, u128::MAX)).unwrap(),
            format!("[{},{}]", i128::MAX, u128::MAX).into_bytes()
        );
    }

    #[test]
    fn keys_whose_text_sorts_otherwise_are_ordered_by_utf16_code_units() {
        // U+10000 is D800 DC00 in UTF-16, before U+E000; in UTF-8 it comes after.
        agrees(&json!({"\u{e000}": 1, "\u{10000}": 2, "a": 3}));
        // An escaped key: its text starts with a backslash, its key with U+0001.
        agrees(&json!({"a\u{1}": 1, "aA": 2, "a\"b": 3, "a": 4}));
        agrees(&json!({"x": {"line\nbreak": 1, "line": 2, "linf": 3}}));
        let (ours, _) = both(&json!({"\u{e000}": 1, "\u{10000}": 2}));
        assert_eq!(ours, "{\"\u{10000}\":2,\"\u{e000}\":1}");
    }

    #[test]
    fn integer_keys_are_quoted_and_sorted_as_text() {
        let map: BTreeMap<u64, u8> = [(9, 1), (10, 2)].into();
        assert_eq!(to_vec(&map).unwrap(), br#"{"10":2,"9":1}"#);
        agrees(&map);
    }

    #[test]
    fn what_json_can_not_hold_is_refused_with_its_reason() {
        let err = to_vec(&[1.0, f64::NAN]).unwrap_err();
        assert!(err.to_string().contains("not a JSON number"), "{err}");
        assert!(to_vec(&f64::INFINITY).is_err());
        let map: BTreeMap<bool, u8> = [(true, 1)].into();
        let err = to_vec(&map).unwrap_err();
        assert!(err.to_string().contains("map key"), "{err}");
    }

    #[test]
    fn bytes_are_an_array_of_numbers() {
        struct Bytes;
        impl Serialize for Bytes {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&[0, 7, 255])
            }
        }
        assert_eq!(to_vec(&Bytes).unwrap(), b"[0,7,255]");
    }

    #[test]
    fn structs_and_enums_sort_their_members() {
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Tagged {
            Zeta { b: u8, a: u8 },
        }
        #[derive(Serialize)]
        enum Outer {
            Newtype(u8),
            Tuple(u8, String),
            Struct { y: bool, x: Option<u8> },
            Unit,
        }
        #[derive(Serialize)]
        struct S {
            zulu: Vec<Outer>,
            alpha: Tagged,
            #[serde(skip_serializing_if = "Option::is_none")]
            skipped: Option<u8>,
            mid: std::collections::BTreeMap<String, u8>,
        }
        agrees(&S {
            zulu: vec![
                Outer::Newtype(1),
                Outer::Tuple(2, "t".into()),
                Outer::Struct { y: true, x: None },
                Outer::Unit,
            ],
            alpha: Tagged::Zeta { b: 2, a: 1 },
            skipped: None,
            mid: [("n".to_string(), 1), ("m".to_string(), 2)].into(),
        });
    }
}
