//! The dense form of the canonical metadata a SQLite row keeps (`events.meta`).
//!
//! It is short (a few hundred bytes) and made mostly of the same member names and values from
//! event to event, so each is compressed on its own against a dictionary built into the
//! binary: zstd finds the repeated names in the dictionary rather than in the text itself,
//! which a few hundred bytes are too short to offer.
//!
//! The personal half (`payloads.body`) is not packed (yet): the full-text index reads its
//! words from `payloads` (external content), and the erasure and redaction tests prove that a
//! secret or an erased word is gone by looking for it in the file's bytes, which a compressed
//! body would pass whether or not it were gone. Packing it needs those tests to look for the
//! packed form too, and the index to read through `mcp_audit_text`.
//!
//! **A value carries its format**, so that files written before it read as they were and no
//! migration rewrites them:
//!
//! - TEXT: the canonical JSON as it is (every row written before schema 18, and every
//!   payload);
//! - BLOB: one format byte, then the encoded text. Format [`ZSTD_V1`]: a zstd frame
//!   (with its content size) compressed against [`DICTIONARY_V1`].
//!
//! What is hashed is never the stored form: `verify` and every reader decode the value back to
//! the exact canonical bytes the seal wrote and hash or parse those, so a changed byte of the
//! stored form is a changed (or undecodable) text and fails the leaf. The dictionary of a
//! format is part of the format: it is never edited (a test pins its digest); a better one
//! is a new format byte beside it.

use std::cell::RefCell;

use rusqlite::types::ValueRef;

/// The format byte of a zstd frame compressed against [`DICTIONARY_V1`].
pub(super) const ZSTD_V1: u8 = 1;

/// The dictionary of [`ZSTD_V1`]: raw content (no trained entropy tables), member names and
/// common values of the metadata and the personal half as the seal writes them, in plain text
/// so that a reader of the repository sees what it holds. zstd takes a dictionary without its
/// magic number as raw content.
pub(super) static DICTIONARY_V1: &[u8] = include_bytes!("packed/dictionary-v1.txt");

/// The compression level. Measured on the benchmarks' events (`benches/bytes.rs`, see
/// `docs/benchmarks.md`): level 6 saved 15-25 bytes of `meta` more than 3 at about twice the
/// writer's CPU (12 against 6-7 µs per event more than uncompressed).
const LEVEL: i32 = 3;

/// The largest text a frame may claim to hold: a row's JSON is far smaller (events are
/// refused long before), so a larger claim is a damaged value, not an allocation to make.
const MAX_TEXT: u64 = 256 << 20;

/// Why a stored value does not decode to a text.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UnpackError {
    /// A BLOB whose first byte names no format this build reads.
    #[error("stored in an unknown format ({0})")]
    UnknownFormat(u8),
    /// The value is not a TEXT nor a BLOB (an integer, a real), or an empty BLOB.
    #[error("neither a text nor an encoded text")]
    NotText,
    /// The frame does not decode (a damaged value).
    #[error("does not decode: {0}")]
    Corrupt(String),
}

thread_local! {
    /// One compression context per thread (the writer's), made once: a context and its
    /// loaded dictionary cost far more to make than a row to compress.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    /// The same for decoding, per reading thread.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Appends the stored form of `text` to `out` (emptied first): [`ZSTD_V1`] and its frame.
pub(super) fn pack(text: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    // The frame is written after the format byte, into a slice (a `Vec` given to zstd is
    // written from its start), then cut to its length.
    out.clear();
    out.resize(1 + zstd::zstd_safe::compress_bound(text.len()), 0);
    out[0] = ZSTD_V1;
    let written = COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let compressor = match cell.as_mut() {
            Some(c) => c,
            None => cell.insert(new_compressor()?),
        };
        compressor.compress_to_buffer(text, &mut out[1..])
    })?;
    out.truncate(1 + written);
    Ok(())
}

fn new_compressor() -> std::io::Result<zstd::bulk::Compressor<'static>> {
    use zstd::zstd_safe::CParameter;
    let mut c = zstd::bulk::Compressor::with_dictionary(LEVEL, DICTIONARY_V1)?;
    // The frame's own checksum and dictionary id would only repeat what the leaf hash and
    // the format byte already say: 4 + 4 bytes a row less.
    c.set_parameter(CParameter::ChecksumFlag(false))?;
    c.set_parameter(CParameter::DictIdFlag(false))?;
    c.set_parameter(CParameter::ContentSizeFlag(true))?;
    Ok(c)
}

/// The text of a stored value: a TEXT as it is (borrowed), a BLOB decoded into `buf`. NULL is
/// `Ok(None)` (an erased payload).
pub(crate) fn unpack<'a>(
    value: ValueRef<'a>,
    buf: &'a mut Vec<u8>,
) -> Result<Option<&'a [u8]>, UnpackError> {
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Text(text) => Ok(Some(text)),
        ValueRef::Blob(blob) => unpack_blob(blob, buf).map(|()| Some(buf.as_slice())),
        ValueRef::Integer(_) | ValueRef::Real(_) => Err(UnpackError::NotText),
    }
}

/// Decodes an encoded text (a BLOB's bytes) into `buf`.
pub(crate) fn unpack_blob(blob: &[u8], buf: &mut Vec<u8>) -> Result<(), UnpackError> {
    let (&format, frame) = blob.split_first().ok_or(UnpackError::NotText)?;
    if format != ZSTD_V1 {
        return Err(UnpackError::UnknownFormat(format));
    }
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size <= MAX_TEXT => size as usize,
        _ => return Err(UnpackError::Corrupt("no valid content size".into())),
    };
    buf.clear();
    buf.reserve(size);
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let decompressor = match cell.as_mut() {
            Some(d) => d,
            None => cell.insert(
                zstd::bulk::Decompressor::with_dictionary(DICTIONARY_V1)
                    .map_err(|e| UnpackError::Corrupt(e.to_string()))?,
            ),
        };
        let n = decompressor
            .decompress_to_buffer(frame, buf)
            .map_err(|e| UnpackError::Corrupt(e.to_string()))?;
        if n != size {
            return Err(UnpackError::Corrupt(format!(
                "{n} bytes where the frame says {size}"
            )));
        }
        Ok(())
    })
}

/// The text of the stored value in column `column` of a row, owned, for the readers that keep
/// it (pages, proofs): NULL is `None`; a value that does not decode, or whose text is not
/// UTF-8, is the row's conversion error, as a TEXT column that is not UTF-8 always was.
pub(super) fn owned_text(value: ValueRef<'_>, column: usize) -> rusqlite::Result<Option<String>> {
    let failure = |e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(column, value.data_type(), e)
    };
    let mut buf = Vec::new();
    match unpack(value, &mut buf) {
        Ok(Some(text)) => String::from_utf8(text.to_vec())
            .map(Some)
            .map_err(|e| failure(Box::new(e))),
        Ok(None) => Ok(None),
        Err(e) => Err(failure(Box::new(e))),
    }
}

/// The SQL function `mcp_audit_text(value)`: the text of a stored value in either form, or
/// NULL when it does not decode. For tests and people reading a file by hand.
pub(super) fn register(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "mcp_audit_text",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let mut buf = Vec::new();
            Ok(match unpack(ctx.get_raw(0), &mut buf) {
                Ok(Some(text)) => String::from_utf8(text.to_vec()).ok(),
                Ok(None) | Err(_) => None,
            })
        },
    )
}

/// The SQL function `mcp_audit_pack(text)`: [`pack`] of a text, for tests that alter a row
/// by hand (never registered on the store's own connections).
pub(super) fn register_pack(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function("mcp_audit_pack", 1, FunctionFlags::SQLITE_UTF8, |ctx| {
        let text: String = ctx.get(0)?;
        let mut out = Vec::new();
        pack(text.as_bytes(), &mut out)
            .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest of [`DICTIONARY_V1`]: rows written with it decode only with these bytes, so
    /// an edit of the file must fail here (a new dictionary is a new format byte).
    #[test]
    fn the_v1_dictionary_is_never_edited() {
        use sha2::{Digest, Sha256};
        let digest = hex::encode(Sha256::digest(DICTIONARY_V1));
        assert_eq!(
            digest,
            "4b169e10afdb0c65ea64e6c0d5bd55f17bdda5c5d7c030dfa0b09be1306ca43f"
        );
    }

    #[test]
    fn a_packed_text_unpacks_to_the_same_bytes_and_a_text_value_reads_as_it_is() {
        let texts: [&[u8]; 4] = [
            b"",
            b"{}",
            br#"{"action":"EXECUTE","id":"0193f0a0-0000-7000-8000-000000000000","kind":"tool_execution"}"#,
            "{\"payload\":{\"output\":{\"text\":\"Zoë \\u0000 \u{1F600}\"}}}".as_bytes(),
        ];
        let (mut packed, mut buf) = (Vec::new(), Vec::new());
        for text in texts {
            pack(text, &mut packed).unwrap();
            assert_eq!(packed[0], ZSTD_V1);
            let back = unpack(ValueRef::Blob(&packed), &mut buf).unwrap().unwrap();
            assert_eq!(back, text);
            let mut unused = Vec::new();
            assert_eq!(
                unpack(ValueRef::Text(text), &mut unused).unwrap().unwrap(),
                text
            );
        }
        assert!(unpack(ValueRef::Null, &mut buf).unwrap().is_none());
    }

    #[test]
    fn an_unknown_format_or_a_non_text_is_an_error_not_a_text() {
        let mut buf = Vec::new();
        assert!(matches!(
            unpack(ValueRef::Blob(&[9, 1, 2]), &mut buf),
            Err(UnpackError::UnknownFormat(9))
        ));
        assert!(matches!(
            unpack(ValueRef::Blob(&[]), &mut buf),
            Err(UnpackError::NotText)
        ));
        assert!(matches!(
            unpack(ValueRef::Integer(3), &mut buf),
            Err(UnpackError::NotText)
        ));
        assert!(matches!(
            unpack(ValueRef::Blob(&[ZSTD_V1, 0x28, 0xb5]), &mut buf),
            Err(UnpackError::Corrupt(_))
        ));
    }
}
