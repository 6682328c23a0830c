//! Sealing: the canonical encoding of an event, split into its non-personal metadata and its
//! personal half, with the payload commitment and the Merkle leaf.
//!
//! ```text
//! meta_json   = JCS(event without its personal fields)                     (RFC 8785)
//! personal    = JCS({email, client_ip, user_agent, payload})
//! commitment  = SHA-256("mcp-audit:payload:v1" ‖ 0x00 ‖ salt[32] ‖ personal)
//! meta_digest = SHA-256("mcp-audit:meta:v1" ‖ 0x00 ‖ meta_json)
//! leaf        = "mcp-audit:leaf:v1" ‖ 0x00 ‖ seq (u64 big-endian) ‖ meta_digest ‖ commitment
//! leaf_hash   = SHA-256(0x00 ‖ leaf)                                       (RFC 6962 §2.1)
//! ```
//!
//! Why two levels: the caller's thread does the expensive part (encoding and hashing a
//! kilobyte) before the event is queued, and the single writer thread, which alone knows the
//! sequence number, only hashes the 90-byte leaf. Why a salt: without it, a short personal
//! field (a yes/no answer, an e-mail address) could be guessed back from the commitment after
//! erasure. Erasing deletes `personal` and `salt`; `commitment` stays in the leaf, so every
//! proof stays valid.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ModelError;
use crate::event::{AuditEvent, Payload};
use crate::hash::Hash;

const PAYLOAD_DOMAIN: &[u8] = b"mcp-audit:payload:v1\0";
const META_DOMAIN: &[u8] = b"mcp-audit:meta:v1\0";
const LEAF_TAG: &[u8] = b"mcp-audit:leaf:v1\0";

/// The length of [`leaf_bytes`]'s output.
pub const LEAF_LEN: usize = LEAF_TAG.len() + 8 + 32 + 32;

/// The personal half of an event, as stored in the erasable part of the record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Personal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Payload::is_empty")]
    pub payload: Payload,
}

impl Personal {
    /// Moves the personal fields out of `event`, leaving only its metadata.
    fn take_from(event: &mut AuditEvent) -> Personal {
        Personal {
            email: event.actor.email.take(),
            client_ip: event.actor.client_ip.take(),
            user_agent: event.actor.user_agent.take(),
            payload: std::mem::take(&mut event.payload),
        }
    }

    /// The canonical JSON of `self`, written field by field in JCS key order without first
    /// copying the payload into a `serde_json::Value` tree (that copy was a third of sealing);
    /// `None` when a value needs the general canonicalizer (see [`is_plain`]). A test holds the
    /// two equal.
    fn canonical_fast(&self) -> Option<Vec<u8>> {
        let p = &self.payload;
        // Every key of `Personal` and `Payload`, in sorted (JCS) order.
        let values: [(&str, Option<&serde_json::Value>); 10] = [
            ("changes", p.changes.as_ref()),
            ("context", p.context.as_ref()),
            ("details", p.details.as_ref()),
            ("input", p.input.as_ref()),
            ("metadata", p.metadata.as_ref()),
            ("new_values", p.new_values.as_ref()),
            ("old_values", p.old_values.as_ref()),
            ("output", p.output.as_ref()),
            ("state_after", p.state_after.as_ref()),
            ("state_before", p.state_before.as_ref()),
        ];
        if !values.iter().all(|(_, v)| v.is_none_or(is_plain)) {
            return None;
        }
        let mut out = Vec::with_capacity(1024);
        let mut first = true;
        let mut key = |out: &mut Vec<u8>, k: &str| {
            out.push(if first { b'{' } else { b',' });
            first = false;
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
        };
        let text = |out: &mut Vec<u8>, t: &str| serde_json::to_writer(&mut *out, t).ok();
        if let Some(ip) = &self.client_ip {
            key(&mut out, "client_ip");
            text(&mut out, ip)?;
        }
        if let Some(email) = &self.email {
            key(&mut out, "email");
            text(&mut out, email)?;
        }
        if !p.is_empty() {
            key(&mut out, "payload");
            let mut first_field = true;
            let mut field = |out: &mut Vec<u8>, k: &str| {
                out.push(if first_field { b'{' } else { b',' });
                first_field = false;
                out.push(b'"');
                out.extend_from_slice(k.as_bytes());
                out.extend_from_slice(b"\":");
            };
            // The two text fields sort in among the values.
            let strings: [(&str, Option<&String>); 2] = [
                ("content_preview", p.content_preview.as_ref()),
                ("error_message", p.error_message.as_ref()),
            ];
            let mut all: Vec<(&str, Result<&serde_json::Value, &String>)> = values
                .iter()
                .filter_map(|(k, v)| v.map(|v| (*k, Ok(v))))
                .chain(strings.iter().filter_map(|(k, v)| v.map(|v| (*k, Err(v)))))
                .collect();
            all.sort_unstable_by_key(|(k, _)| *k);
            for (k, v) in all {
                field(&mut out, k);
                match v {
                    Ok(value) => serde_json::to_writer(&mut out, value).ok()?,
                    Err(t) => text(&mut out, t)?,
                }
            }
            out.push(b'}');
        }
        if let Some(agent) = &self.user_agent {
            key(&mut out, "user_agent");
            text(&mut out, agent)?;
        }
        if first {
            out.push(b'{');
        }
        out.push(b'}');
        Some(out)
    }

    /// Moves the personal fields back into `event`.
    fn put_into(self, event: &mut AuditEvent) {
        event.actor.email = self.email;
        event.actor.client_ip = self.client_ip;
        event.actor.user_agent = self.user_agent;
        event.payload = self.payload;
    }
}

/// An event ready for the writer: encoded and committed, waiting only for its sequence number.
#[derive(Debug, Clone)]
pub struct SealedEvent {
    /// The whole event, personal fields included (the store indexes some of its fields).
    pub event: AuditEvent,
    /// The canonical JSON of the non-personal metadata: what the leaf covers.
    pub meta_json: Vec<u8>,
    /// The canonical JSON of the personal half: what the commitment covers.
    pub personal_json: Vec<u8>,
    pub salt: [u8; 32],
    pub commitment: Hash,
    pub meta_digest: Hash,
}

impl SealedEvent {
    /// The Merkle leaf hash of this event at position `seq` of its log.
    pub fn leaf_hash(&self, seq: u64) -> Hash {
        leaf_hash(seq, &self.meta_digest, &self.commitment)
    }
}

/// Encodes `event`, draws a fresh salt and computes its commitment and metadata digest.
pub fn seal(mut event: AuditEvent) -> Result<SealedEvent, ModelError> {
    let personal = Personal::take_from(&mut event);
    let meta_json = canonical(&event)?;
    let personal_json = match personal.canonical_fast() {
        Some(json) => json,
        None => canonical(&personal)?,
    };
    personal.put_into(&mut event);

    let mut salt = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut salt);
    Ok(SealedEvent {
        commitment: payload_commitment(&salt, &personal_json),
        meta_digest: meta_digest(&meta_json),
        event,
        meta_json,
        personal_json,
        salt,
    })
}

/// Rebuilds an event from its stored halves. `personal` is `None` once erased: the event then
/// comes back with empty personal fields.
pub fn unseal(meta_json: &[u8], personal_json: Option<&[u8]>) -> Result<AuditEvent, ModelError> {
    let mut event: AuditEvent =
        serde_json::from_slice(meta_json).map_err(|e| ModelError::Encoding(e.to_string()))?;
    if let Some(p) = personal_json {
        let personal: Personal =
            serde_json::from_slice(p).map_err(|e| ModelError::Encoding(e.to_string()))?;
        personal.put_into(&mut event);
    }
    Ok(event)
}

/// RFC 8785 (JCS) canonical JSON.
///
/// For the common value (no floats, integers within ±2^53, object keys below U+D800) plain
/// `serde_json` output already is JCS: its maps sort keys by bytes, which for such keys is JCS's
/// UTF-16 order, and its string escapes are JCS's. That path is about four times faster than the
/// general canonicalizer, which still handles every other value (a test holds the two equal).
pub fn canonical<T: Serialize>(value: &T) -> Result<Vec<u8>, ModelError> {
    let encoding = |e: serde_json::Error| ModelError::Encoding(e.to_string());
    let tree = serde_json::to_value(value).map_err(encoding)?;
    if is_plain(&tree) {
        serde_json::to_vec(&tree).map_err(encoding)
    } else {
        serde_json_canonicalizer::to_vec(&tree).map_err(encoding)
    }
}

/// Whether `serde_json`'s own output of `v` is already RFC 8785 canonical.
fn is_plain(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    const EXACT: u64 = 1 << 53;
    match v {
        Value::Null | Value::Bool(_) | Value::String(_) => true,
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u <= EXACT,
            (None, Some(i)) => i.unsigned_abs() <= EXACT,
            _ => false,
        },
        Value::Array(items) => items.iter().all(is_plain),
        Value::Object(map) => map
            .iter()
            .all(|(k, v)| k.chars().all(|c| (c as u32) < 0xD800) && is_plain(v)),
    }
}

/// `SHA-256("mcp-audit:payload:v1" ‖ 0x00 ‖ salt ‖ personal_json)`.
pub fn payload_commitment(salt: &[u8; 32], personal_json: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(PAYLOAD_DOMAIN);
    h.update(salt);
    h.update(personal_json);
    Hash(h.finalize().into())
}

/// `SHA-256("mcp-audit:meta:v1" ‖ 0x00 ‖ meta_json)`.
pub fn meta_digest(meta_json: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(META_DOMAIN);
    h.update(meta_json);
    Hash(h.finalize().into())
}

/// The leaf: `"mcp-audit:leaf:v1" ‖ 0x00 ‖ seq (u64 BE) ‖ meta_digest ‖ commitment`.
pub fn leaf_bytes(seq: u64, meta_digest: &Hash, commitment: &Hash) -> [u8; LEAF_LEN] {
    let mut out = [0u8; LEAF_LEN];
    let (tag, rest) = out.split_at_mut(LEAF_TAG.len());
    tag.copy_from_slice(LEAF_TAG);
    rest[..8].copy_from_slice(&seq.to_be_bytes());
    rest[8..40].copy_from_slice(&meta_digest.0);
    rest[40..72].copy_from_slice(&commitment.0);
    out
}

/// `SHA-256(0x00 ‖ leaf)`, the RFC 6962 leaf hash of [`leaf_bytes`].
pub fn leaf_hash(seq: u64, meta_digest: &Hash, commitment: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf_bytes(seq, meta_digest, commitment));
    Hash(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event() -> AuditEvent {
        AuditEvent::tool_execution("search")
            .user("alice")
            .email("alice@example.com")
            .client_ip("10.0.0.7")
            .input(json!({"q": "acme", "limit": 5}))
            .output(json!({"rows": [1, 2]}))
            .build()
            .unwrap()
    }

    #[test]
    fn personal_fields_stay_out_of_the_metadata() {
        let sealed = seal(event()).unwrap();
        let meta = String::from_utf8(sealed.meta_json.clone()).unwrap();
        assert!(!meta.contains("alice@example.com"), "{meta}");
        assert!(!meta.contains("10.0.0.7"), "{meta}");
        assert!(!meta.contains("acme"), "{meta}");
        assert!(meta.contains("\"user_id\":\"alice\""), "{meta}");
        let personal = String::from_utf8(sealed.personal_json.clone()).unwrap();
        assert!(personal.contains("alice@example.com") && personal.contains("acme"));
    }

    #[test]
    fn unseal_restores_the_sealed_event() {
        let e = event();
        let sealed = seal(e.clone()).unwrap();
        assert_eq!(sealed.event, e);
        let back = unseal(&sealed.meta_json, Some(&sealed.personal_json)).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn erased_events_come_back_without_personal_fields() {
        let sealed = seal(event()).unwrap();
        let back = unseal(&sealed.meta_json, None).unwrap();
        assert!(back.payload.is_empty());
        assert_eq!(back.actor.email, None);
        assert_eq!(back.actor.user_id.as_deref(), Some("alice"));
    }

    #[test]
    fn commitment_depends_on_salt_and_every_personal_byte() {
        let sealed = seal(event()).unwrap();
        assert_eq!(
            payload_commitment(&sealed.salt, &sealed.personal_json),
            sealed.commitment
        );
        let mut other_salt = sealed.salt;
        other_salt[0] ^= 1;
        assert_ne!(
            payload_commitment(&other_salt, &sealed.personal_json),
            sealed.commitment
        );
        let mut tampered = sealed.personal_json.clone();
        tampered[3] ^= 1;
        assert_ne!(
            payload_commitment(&sealed.salt, &tampered),
            sealed.commitment
        );
    }

    #[test]
    fn leaf_binds_position_metadata_and_commitment() {
        let s = seal(event()).unwrap();
        let leaf = s.leaf_hash(5);
        assert_ne!(leaf, s.leaf_hash(6));
        assert_ne!(leaf, leaf_hash(5, &s.commitment, &s.meta_digest));
        // RFC 6962: the leaf hash is SHA-256(0x00 ‖ leaf bytes).
        let mut manual = vec![0u8];
        manual.extend_from_slice(&leaf_bytes(5, &s.meta_digest, &s.commitment));
        assert_eq!(leaf.0, <[u8; 32]>::from(Sha256::digest(&manual)));
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_canonicalizer() {
        let samples = [
            json!({"b": 1, "a": [true, null, "x\u{1f}\"\\/\u{7f}é😀"], "c": {"z": -9007199254740992i64}}),
            json!({"n": 9007199254740993u64, "f": 0.1, "e": 1e21, "small": 1e-7, "neg0": -0.0}),
            json!({"\u{e000}": 1, "\u{10000}": 2, "a": 3}),
            json!([{"k": "line\nbreak\ttab"}, 12345678901234i64, -1, 0]),
        ];
        for v in samples {
            let expected = serde_json_canonicalizer::to_vec(&v).unwrap();
            assert_eq!(
                String::from_utf8(canonical(&v).unwrap()).unwrap(),
                String::from_utf8(expected).unwrap(),
                "{v}"
            );
        }
        let e = event();
        assert_eq!(
            canonical(&e).unwrap(),
            serde_json_canonicalizer::to_vec(&e).unwrap()
        );
    }

    #[test]
    fn the_personal_fast_path_agrees_with_the_full_canonicalizer() {
        let value = json!({"b": [1, "x\u{1f}\"é😀"], "a": {"z": null, "y": true}});
        let full = Payload {
            input: Some(value.clone()),
            output: Some(json!("text")),
            error_message: Some("it \"failed\"\n".into()),
            old_values: Some(json!({"k": 1})),
            new_values: Some(json!({"k": 2})),
            changes: Some(json!({"k": {"old": 1, "new": 2}})),
            state_before: Some(json!([])),
            state_after: Some(json!({})),
            content_preview: Some("preview".into()),
            context: Some(value.clone()),
            details: Some(json!(-5)),
            metadata: Some(json!({"m": 1})),
        };
        let mut shapes = vec![
            Personal::default(),
            Personal {
                email: Some("a@example.com".into()),
                ..Personal::default()
            },
            Personal {
                client_ip: Some("10.0.0.1".into()),
                user_agent: Some("agent/1 \"x\"".into()),
                payload: full.clone(),
                email: Some("a@example.com".into()),
            },
        ];
        // Each payload field alone.
        let fields: [fn(&mut Payload); 12] = [
            |p| p.input = None,
            |p| p.output = None,
            |p| p.error_message = None,
            |p| p.old_values = None,
            |p| p.new_values = None,
            |p| p.changes = None,
            |p| p.state_before = None,
            |p| p.state_after = None,
            |p| p.content_preview = None,
            |p| p.context = None,
            |p| p.details = None,
            |p| p.metadata = None,
        ];
        for keep in 0..fields.len() {
            let mut payload = full.clone();
            for (i, clear) in fields.iter().enumerate() {
                if i != keep {
                    clear(&mut payload);
                }
            }
            assert!(!payload.is_empty());
            shapes.push(Personal {
                payload,
                ..Personal::default()
            });
        }
        for personal in &shapes {
            let expected = serde_json_canonicalizer::to_vec(personal).unwrap();
            let fast = personal
                .canonical_fast()
                .expect("plain values take the fast path");
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
        // A value JCS writes differently from serde_json takes the general path.
        let float = Personal {
            payload: Payload {
                input: Some(json!({"f": 0.1, "e": 1e21})),
                ..Payload::default()
            },
            ..Personal::default()
        };
        assert!(float.canonical_fast().is_none());
        let high_key = Personal {
            payload: Payload {
                metadata: Some(json!({"\u{e000}": 1, "a": 2})),
                ..Payload::default()
            },
            ..Personal::default()
        };
        assert!(high_key.canonical_fast().is_none());
        let sealed = seal(
            AuditEvent::tool_execution("t")
                .input(json!({"f": 1e21}))
                .build()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            sealed.personal_json,
            serde_json_canonicalizer::to_vec(&Personal {
                payload: sealed.event.payload.clone(),
                ..Personal::default()
            })
            .unwrap()
        );
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v = json!({"b": 1, "a": {"d": 2, "c": 3}});
        assert_eq!(canonical(&v).unwrap(), br#"{"a":{"c":3,"d":2},"b":1}"#);
    }
}
