//! RFC 8785 (JCS) canonical JSON written straight from `Serialize`, for the common value.
//!
//! Sealing encodes every event twice (metadata and personal half). Going through a
//! `serde_json::Value` tree first, to have its keys sorted, cost about three quarters of that
//! encoding: a map and a string per key and value, built only to be printed and dropped. This
//! serializer writes bytes directly: each object's members are written into one scratch buffer
//! as they come, then copied out in sorted key order.
//!
//! It covers what serde_json already prints the JCS way: strings (serde_json's escapes are
//! JCS's), booleans, null, integers within ±2^53, and object keys below U+D800 (for which UTF-16
//! order, JCS's, is byte order). Anything else (a float, a larger integer, a key from U+D800 up,
//! bytes) stops it with [`NotPlain`], and the caller uses the general canonicalizer. Tests hold
//! the two equal.

use std::io::Write as _;
use std::ops::Range;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// Why the fast path stopped: the value needs the general canonicalizer (or failed to
/// serialize at all, which the general path will report in its own words).
#[derive(Debug)]
pub(crate) struct NotPlain;

impl std::fmt::Display for NotPlain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not plain JSON for the fast canonical path")
    }
}

impl std::error::Error for NotPlain {}

impl ser::Error for NotPlain {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        NotPlain
    }
}

/// The canonical JSON of `value`, or `NotPlain` when it needs the general canonicalizer.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, NotPlain> {
    let mut out = Vec::with_capacity(1024);
    value.serialize(&mut Writer { out: &mut out })?;
    Ok(out)
}

/// Integers JCS writes as serde_json does: those a double holds exactly.
const EXACT: u64 = 1 << 53;

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn text(&mut self, s: &str) -> Result<(), NotPlain> {
        serde_json::to_writer(&mut *self.out, s).map_err(|_| NotPlain)
    }

    fn unsigned(&mut self, n: u64) -> Result<(), NotPlain> {
        if n > EXACT {
            return Err(NotPlain);
        }
        write!(self.out, "{n}").map_err(|_| NotPlain)
    }

    fn signed(&mut self, n: i64) -> Result<(), NotPlain> {
        if n.unsigned_abs() > EXACT {
            return Err(NotPlain);
        }
        write!(self.out, "{n}").map_err(|_| NotPlain)
    }

    /// `{"variant":` before a variant's content; [`Writer::close_variant`] after it.
    fn open_variant(&mut self, variant: &str) -> Result<(), NotPlain> {
        check_key(variant)?;
        self.out.push(b'{');
        self.text(variant)?;
        self.out.push(b':');
        Ok(())
    }

    fn close_variant(&mut self) {
        self.out.push(b'}');
    }
}

/// A key JCS orders as serde_json's maps do: nothing from U+D800 up.
fn check_key(key: &str) -> Result<(), NotPlain> {
    match key.chars().all(|c| (c as u32) < 0xD800) {
        true => Ok(()),
        false => Err(NotPlain),
    }
}

impl<'a, 'b> ser::Serializer for &'b mut Writer<'a> {
    type Ok = ();
    type Error = NotPlain;
    type SerializeSeq = Seq<'a, 'b>;
    type SerializeTuple = Seq<'a, 'b>;
    type SerializeTupleStruct = Seq<'a, 'b>;
    type SerializeTupleVariant = Seq<'a, 'b>;
    type SerializeMap = Object<'a, 'b>;
    type SerializeStruct = Object<'a, 'b>;
    type SerializeStructVariant = Object<'a, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), NotPlain> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), NotPlain> {
        self.signed(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), NotPlain> {
        self.signed(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), NotPlain> {
        self.signed(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), NotPlain> {
        self.signed(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), NotPlain> {
        self.unsigned(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), NotPlain> {
        self.unsigned(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), NotPlain> {
        self.unsigned(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), NotPlain> {
        self.unsigned(v)
    }
    fn serialize_f32(self, _: f32) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_f64(self, _: f64) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_char(self, v: char) -> Result<(), NotPlain> {
        self.text(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), NotPlain> {
        self.text(v)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_none(self) -> Result<(), NotPlain> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), NotPlain> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), NotPlain> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotPlain> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), NotPlain> {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), NotPlain> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), NotPlain> {
        self.open_variant(variant)?;
        value.serialize(&mut *self)?;
        self.close_variant();
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a, 'b>, NotPlain> {
        self.out.push(b'[');
        Ok(Seq {
            writer: self,
            first: true,
            variant: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a, 'b>, NotPlain> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'a, 'b>, NotPlain> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'a, 'b>, NotPlain> {
        self.open_variant(variant)?;
        self.out.push(b'[');
        Ok(Seq {
            writer: self,
            first: true,
            variant: true,
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a, 'b>, NotPlain> {
        Ok(Object::new(self, false))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object<'a, 'b>, NotPlain> {
        Ok(Object::new(self, false))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Object<'a, 'b>, NotPlain> {
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
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotPlain> {
        if !self.first {
            self.writer.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.writer)
    }

    fn finish(self) -> Result<(), NotPlain> {
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
            type Error = NotPlain;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotPlain> {
                self.element(value)
            }
            fn end(self) -> Result<(), NotPlain> {
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
            pending: None,
            variant,
        }
    }

    /// Starts a member: the comma, then the key as JSON text (see [`KeyWriter`]).
    fn key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<(usize, Range<usize>), NotPlain> {
        let out = &mut *self.writer.out;
        if !self.members.is_empty() {
            out.push(b',');
        }
        let start = out.len();
        key.serialize(KeyWriter { out: &mut *out })?;
        let key_range = start..out.len();
        out.push(b':');
        Ok((start, key_range))
    }

    fn value<T: Serialize + ?Sized>(
        &mut self,
        (start, key): (usize, Range<usize>),
        value: &T,
    ) -> Result<(), NotPlain> {
        value.serialize(&mut *self.writer)?;
        let out = &*self.writer.out;
        if let Some((last, _)) = self.members.last() {
            self.in_order &= out[last.clone()] < out[key.clone()];
        }
        self.members.push((key, start..out.len()));
        Ok(())
    }

    fn finish(mut self) -> Result<(), NotPlain> {
        if self.pending.is_some() {
            return Err(NotPlain);
        }
        if !self.in_order {
            let body = self.writer.out.split_off(self.body);
            // Offsets into `body` instead of the output.
            let at = |r: &Range<usize>| r.start - self.body..r.end - self.body;
            self.members
                .sort_unstable_by(|a, b| body[at(&a.0)].cmp(&body[at(&b.0)]));
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
    type Error = NotPlain;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), NotPlain> {
        self.pending = Some(self.key(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotPlain> {
        let pending = self.pending.take().ok_or(NotPlain)?;
        self.value(pending, value)
    }
    fn end(self) -> Result<(), NotPlain> {
        self.finish()
    }
}

/// A struct's and a struct variant's fields: members with static keys.
macro_rules! struct_like {
    ($($tr:ident),*) => {$(
        impl ser::$tr for Object<'_, '_> {
            type Ok = ();
            type Error = NotPlain;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), NotPlain> {
                let at = self.key(key)?;
                self.value(at, value)
            }
            fn end(self) -> Result<(), NotPlain> {
                self.finish()
            }
        }
    )*};
}

struct_like!(SerializeStruct, SerializeStructVariant);

/// Writes an object's key as quoted JSON text. Only text keys are plain (serde_json would quote
/// numbers; those go to the general path), and only keys JSON writes unescaped: their quoted
/// text then sorts as the key itself does, which is what the members are sorted by.
struct KeyWriter<'o> {
    out: &'o mut Vec<u8>,
}

impl KeyWriter<'_> {
    fn text(self, key: &str) -> Result<(), NotPlain> {
        check_key(key)?;
        let start = self.out.len();
        serde_json::to_writer(&mut *self.out, key).map_err(|_| NotPlain)?;
        match self.out.len() - start == key.len() + 2 {
            true => Ok(()),
            false => Err(NotPlain),
        }
    }
}

/// `serialize_*` methods for scalars that are not plain object keys: serde_json would quote
/// numbers as keys, which the general path handles.
macro_rules! refuse_scalars {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, _: $t) -> Result<(), NotPlain> {
            Err(NotPlain)
        }
    )*};
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = NotPlain;
    type SerializeSeq = Impossible<(), NotPlain>;
    type SerializeTuple = Impossible<(), NotPlain>;
    type SerializeTupleStruct = Impossible<(), NotPlain>;
    type SerializeTupleVariant = Impossible<(), NotPlain>;
    type SerializeMap = Impossible<(), NotPlain>;
    type SerializeStruct = Impossible<(), NotPlain>;
    type SerializeStructVariant = Impossible<(), NotPlain>;

    fn serialize_str(self, v: &str) -> Result<(), NotPlain> {
        self.text(v)
    }
    fn serialize_char(self, v: char) -> Result<(), NotPlain> {
        self.text(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), NotPlain> {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), NotPlain> {
        value.serialize(self)
    }
    refuse_scalars!(
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_f32: f32,
        serialize_f64: f64,
        serialize_bytes: &[u8]
    );
    fn serialize_none(self) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_unit(self) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotPlain> {
        Err(NotPlain)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotPlain> {
        Err(NotPlain)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotPlain> {
        Err(NotPlain)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn agrees(v: &impl Serialize) {
        let expected = serde_json_canonicalizer::to_vec(v).unwrap();
        let fast = to_vec(v).expect("plain");
        assert_eq!(
            String::from_utf8(fast).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }

    #[test]
    fn plain_values_come_out_as_the_full_canonicalizer_writes_them() {
        agrees(
            &json!({"b": 1, "a": [true, null, "x\u{1f}\"\\/\u{7f}é😀"], "c": {"z": -9007199254740992i64}}),
        );
        agrees(&json!([{"k": "line\nbreak\ttab"}, 12345678901234i64, -1, 0, {}, []]));
        agrees(&json!({"ab": 1, "a": 2, "b": {"y": [], "x": {"q": null}}, "": 3}));
        agrees(&json!({"\u{7ff}": 1, "\u{d7ff}": 2, "z": 3}));
        agrees(&json!("just text"));
        agrees(&json!(9007199254740992u64));
    }

    #[test]
    fn what_jcs_writes_otherwise_is_left_to_the_general_path() {
        for v in [
            json!({"f": 0.5}),
            json!(1e21),
            json!(9007199254740993u64),
            json!(-9007199254740993i64),
            json!({"\u{e000}": 1}),
            json!({"\u{10000}": 1}),
            json!({"a\"b": 1, "a": 2}),
            json!({"x": {"line\nbreak": 1}}),
        ] {
            assert!(to_vec(&v).is_err(), "{v}");
        }
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
