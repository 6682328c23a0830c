//! The text of a signed-note key, for any signature type: a checkpoint's log key (Ed25519,
//! 0x01, see `checkpoint`) and a witness's key (`cosignature/v1`, 0x04, see `cosignature`) are
//! written, read and identified alike, and differ only in that one byte. One implementation,
//! so that the two can never drift apart in how a key id is checked or a name validated.
//!
//! ```text
//! verifier key   <name>+<key id hex>+<base64(type ‖ public key)>
//! signer key     PRIVATE+KEY+<name>+<key id hex>+<base64(type ‖ seed)>
//! key id         SHA-256(name ‖ "\n" ‖ type ‖ public key)[:4]
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::checkpoint::{NoteError, malformed};

/// A signature type: its byte, and what a key of another type is told.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyType {
    pub byte: u8,
    /// The problem reported for a key of another type.
    pub other_type: &'static str,
}

/// `SHA-256(name ‖ "\n" ‖ type ‖ public key)[:4]`.
pub(crate) fn key_id(kind: KeyType, name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([kind.byte]);
    h.update(public.as_bytes());
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A key name as signed notes allow it: not empty, no `+`, no white space.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

/// A fresh signing key for a key named `name`, which must be valid.
pub(crate) fn generate(name: &str) -> Result<SigningKey, NoteError> {
    if !valid_name(name) {
        return Err(malformed("key name", "empty, or has a `+` or white space"));
    }
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    Ok(SigningKey::from_bytes(&seed))
}

/// `<name>+<key id hex>+<base64(type ‖ public key)>`.
pub(crate) fn verifier_text(kind: KeyType, name: &str, key: &VerifyingKey) -> String {
    format!(
        "{name}+{}+{}",
        hex::encode(key_id(kind, name, key)),
        encode(kind, key.as_bytes())
    )
}

/// `PRIVATE+KEY+<name>+<key id hex>+<base64(type ‖ seed)>`.
pub(crate) fn signer_text(kind: KeyType, name: &str, key: &SigningKey) -> String {
    format!(
        "PRIVATE+KEY+{name}+{}+{}",
        hex::encode(key_id(kind, name, &key.verifying_key())),
        encode(kind, &key.to_bytes())
    )
}

/// Reads a verifier key of type `kind` (`what` names it in errors): its name and key, the key
/// id checked against both.
pub(crate) fn parse_verifier(
    kind: KeyType,
    text: &str,
    what: &'static str,
) -> Result<(String, VerifyingKey), NoteError> {
    let text = text.trim();
    let (name, bytes) = split(kind, text, what)?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| malformed(what, "not a valid Ed25519 point"))?;
    check_id(kind, text, name, &key, what)?;
    Ok((name.to_string(), key))
}

/// Reads a signer key of type `kind` (`what` names it in errors): its name and key, the key
/// id checked against both.
pub(crate) fn parse_signer(
    kind: KeyType,
    text: &str,
    what: &'static str,
) -> Result<(String, SigningKey), NoteError> {
    let rest = text
        .trim()
        .strip_prefix("PRIVATE+KEY+")
        .ok_or(malformed(what, "no PRIVATE+KEY+ prefix"))?;
    let (name, seed) = split(kind, rest, what)?;
    let key = SigningKey::from_bytes(&seed);
    check_id(kind, rest, name, &key.verifying_key(), what)?;
    Ok((name.to_string(), key))
}

fn encode(kind: KeyType, key: &[u8; 32]) -> String {
    let mut bytes = Vec::with_capacity(33);
    bytes.push(kind.byte);
    bytes.extend_from_slice(key);
    STANDARD.encode(bytes)
}

/// Splits `<name>+<id hex>+<base64(type ‖ key)>`, checks the type byte and the key's length;
/// returns the name and the 32 key bytes.
fn split<'a>(
    kind: KeyType,
    text: &'a str,
    what: &'static str,
) -> Result<(&'a str, [u8; 32]), NoteError> {
    // At most three parts: the base64 key may itself contain `+`.
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(_id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed(what, "expected <name>+<key id>+<key>"));
    };
    if !valid_name(name) {
        return Err(malformed(what, "bad key name"));
    }
    let bytes = STANDARD
        .decode(key)
        .map_err(|_| malformed(what, "the key is not base64"))?;
    match bytes.split_first() {
        Some((&byte, key)) if byte == kind.byte => {
            let key = key
                .try_into()
                .map_err(|_| malformed(what, "the key is not 32 bytes"))?;
            Ok((name, key))
        }
        _ => Err(malformed(what, kind.other_type)),
    }
}

/// The key id as written (the part after the name) must be that of `name` and `key`.
fn check_id(
    kind: KeyType,
    text: &str,
    name: &str,
    key: &VerifyingKey,
    what: &'static str,
) -> Result<(), NoteError> {
    let written = text.split('+').nth(1).unwrap_or_default();
    if written != hex::encode(key_id(kind, name, key)) {
        return Err(malformed(what, "the key id does not match the key"));
    }
    Ok(())
}
