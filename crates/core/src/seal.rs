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
//!
//! Fields added to the metadata after events were first recorded (`trace_id`, `received_at`)
//! are left out of `meta_json` when absent, so an event recorded before them encodes, and so
//! hashes, exactly as it did: every existing leaf stays valid.

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
    /// Pseudonym → identity rows drawn for this event's identifiers (see
    /// [`crate::pseudonym`]), which the writer stores with it; empty when every identifier was
    /// known or the event names nobody. Not hashed: the mapping is erasable.
    pub links: Vec<crate::pseudonym::Link>,
}

impl SealedEvent {
    /// The Merkle leaf hash of this event at position `seq` of its log.
    pub fn leaf_hash(&self, seq: u64) -> Hash {
        leaf_hash(seq, &self.meta_digest, &self.commitment)
    }

    /// Encodes the metadata again after a change to `event`'s non-personal fields, keeping
    /// the personal half, its salt and its commitment as sealed: for the writer, which names
    /// a person afresh in an event sealed just before their erasure was seen (see
    /// [`crate::pseudonym::Pseudonyms::retain_mapped`]).
    pub fn reseal_metadata(&mut self) -> Result<(), ModelError> {
        let personal = Personal::take_from(&mut self.event);
        let meta_json = canonical(&self.event);
        personal.put_into(&mut self.event);
        self.meta_json = meta_json?;
        self.meta_digest = meta_digest(&self.meta_json);
        Ok(())
    }
}

/// Encodes `event`, draws a fresh salt and computes its commitment and metadata digest.
pub fn seal(mut event: AuditEvent) -> Result<SealedEvent, ModelError> {
    let personal = Personal::take_from(&mut event);
    let meta_json = canonical(&event)?;
    let personal_json = canonical(&personal)?;
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
        links: Vec::new(),
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

/// Rebuilds an event from its stored halves, as [`unseal`] does, but without its payload:
/// the personal half's `email`, `client_ip` and `user_agent` are decoded, its `payload` is
/// only stepped over, and the answer says whether the stored one held anything. For a list
/// that withholds payloads anyway: building arguments and results as JSON trees only to drop
/// them cost about a fifth of a page's work (see docs/benchmarks.md).
pub fn unseal_without_payload(
    meta_json: &[u8],
    personal_json: Option<&[u8]>,
) -> Result<(AuditEvent, bool), ModelError> {
    let mut event: AuditEvent =
        serde_json::from_slice(meta_json).map_err(|e| ModelError::Encoding(e.to_string()))?;
    let mut had_payload = false;
    if let Some(p) = personal_json {
        let brief: PersonalBrief =
            serde_json::from_slice(p).map_err(|e| ModelError::Encoding(e.to_string()))?;
        event.actor.email = brief.email;
        event.actor.client_ip = brief.client_ip;
        event.actor.user_agent = brief.user_agent;
        had_payload = brief.payload.0;
    }
    Ok((event, had_payload))
}

/// [`Personal`] with its payload stepped over.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonalBrief {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    client_ip: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    payload: PayloadPresence,
}

/// Whether a payload object holds a field that is not `null` (what makes
/// [`Payload::is_empty`] false), read without building any of its values.
#[derive(Default)]
struct PayloadPresence(bool);

impl<'de> Deserialize<'de> for PayloadPresence {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = PayloadPresence;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a payload object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<PayloadPresence, A::Error> {
                let mut present = false;
                while let Some(_key) = map.next_key::<serde::de::IgnoredAny>()? {
                    // `null` reads as an absent field, as `Option` reads it in `Payload`.
                    present |= map.next_value::<Option<serde::de::IgnoredAny>>()?.is_some();
                }
                Ok(PayloadPresence(present))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// Canonical JSON: RFC 8785 (JCS), except that integers beyond ±2^53 keep every digit (JCS
/// would round them, and the record would not hold the number it was given; see
/// [`crate::canonical`]). Written straight from `Serialize`, about four times faster than
/// through a `serde_json::Value` tree; tests hold it equal to a JCS implementation for every
/// other value.
pub fn canonical<T: Serialize>(value: &T) -> Result<Vec<u8>, ModelError> {
    crate::canonical::to_vec(value).map_err(|e| ModelError::Encoding(e.to_string()))
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
    fn unsealing_without_payload_keeps_every_other_field_and_tells_if_one_was_stored() {
        let full = event();
        let sealed = seal(full.clone()).unwrap();
        let (brief, had) =
            unseal_without_payload(&sealed.meta_json, Some(&sealed.personal_json)).unwrap();
        assert!(had);
        let mut expected = full.clone();
        expected.payload = Payload::default();
        assert_eq!(brief, expected);
        // No payload stored, or only nulls (which `Payload` reads as absent): none to withhold.
        let mut bare = full.clone();
        bare.payload = Payload::default();
        let sealed = seal(bare.clone()).unwrap();
        let (brief, had) =
            unseal_without_payload(&sealed.meta_json, Some(&sealed.personal_json)).unwrap();
        assert!(!had);
        assert_eq!(brief, bare);
        let nulls = br#"{"email":"a@b.c","payload":{"input":null}}"#;
        let (brief, had) = unseal_without_payload(&sealed.meta_json, Some(nulls)).unwrap();
        assert!(!had);
        assert_eq!(brief.actor.email.as_deref(), Some("a@b.c"));
        // Erased: nothing personal, nothing withheld.
        let (brief, had) = unseal_without_payload(&sealed.meta_json, None).unwrap();
        assert!(!had && brief.actor.email.is_none());
        // A personal half that `unseal` refuses is refused here too.
        for bad in [&br#"{"surprise":1}"#[..], br#"{"payload":"x"}"#, b"{"] {
            assert!(unseal(&sealed.meta_json, Some(bad)).is_err());
            assert!(unseal_without_payload(&sealed.meta_json, Some(bad)).is_err());
        }
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
    fn the_trace_id_is_hashed_metadata_and_absent_when_unset() {
        // Absent, the key is not written at all: events from before the field hash as before.
        let plain = seal(event()).unwrap();
        let meta = String::from_utf8(plain.meta_json.clone()).unwrap();
        assert!(!meta.contains("trace_id"), "{meta}");
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let mut traced = event();
        traced.trace_id = Some(id.into());
        let sealed = seal(traced.clone()).unwrap();
        let meta = String::from_utf8(sealed.meta_json.clone()).unwrap();
        assert!(meta.contains(&format!("\"trace_id\":\"{id}\"")), "{meta}");
        assert_eq!(
            unseal(&sealed.meta_json, None).unwrap().trace_id,
            traced.trace_id
        );
    }

    #[test]
    fn the_receive_time_is_hashed_metadata_and_absent_when_unset() {
        // An event from before receive times were kept: no key, the same bytes as before.
        let plain = seal(event()).unwrap();
        let meta = String::from_utf8(plain.meta_json.clone()).unwrap();
        assert!(!meta.contains("received_at"), "{meta}");
        let mut stamped = event();
        stamped.received_at = Some("2026-01-02T03:04:05.123456Z".parse().unwrap());
        let sealed = seal(stamped.clone()).unwrap();
        let meta = String::from_utf8(sealed.meta_json.clone()).unwrap();
        assert!(
            meta.contains(r#""received_at":"2026-01-02T03:04:05.123456Z""#),
            "{meta}"
        );
        assert_ne!(sealed.meta_digest, plain.meta_digest);
        assert_eq!(
            unseal(&sealed.meta_json, None).unwrap().received_at,
            stamped.received_at
        );
    }

    #[test]
    fn an_event_is_skewed_only_past_the_threshold_from_its_receive_time() {
        let mut e = event();
        assert_eq!(e.clock_skew(), None);
        assert!(!e.is_skewed(), "no receive time: nothing to compare");
        let received: jiff::Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        e.received_at = Some(received);
        for (offset, skewed) in [
            (jiff::SignedDuration::ZERO, false),
            (crate::MAX_CLOCK_SKEW, false),
            (-crate::MAX_CLOCK_SKEW, false),
            (
                crate::MAX_CLOCK_SKEW + jiff::SignedDuration::from_micros(1),
                true,
            ),
            (
                -crate::MAX_CLOCK_SKEW - jiff::SignedDuration::from_micros(1),
                true,
            ),
        ] {
            e.timestamp = received.checked_add(offset).unwrap();
            assert_eq!(e.clock_skew(), Some(offset));
            assert_eq!(e.is_skewed(), skewed, "{offset:?}");
        }
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
    fn canonical_json_is_what_a_jcs_implementation_writes() {
        let samples = [
            json!({"b": 1, "a": [true, null, "x\u{1f}\"\\/\u{7f}é😀"], "c": {"z": -9007199254740992i64}}),
            json!({"n": 9007199254740992u64, "f": 0.1, "e": 1e21, "small": 1e-7, "neg0": -0.0}),
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
    fn the_personal_half_is_what_a_jcs_implementation_writes() {
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
            let fast = canonical(personal).unwrap();
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
        // Floats and keys that sort otherwise than their text: JCS's bytes too.
        for input in [
            json!({"f": 0.1, "e": 1e21}),
            json!({"\u{e000}": 1, "\u{10000}": 2, "a\u{1}": 3, "aA": 4}),
        ] {
            let personal = Personal {
                payload: Payload {
                    input: Some(input),
                    ..Payload::default()
                },
                ..Personal::default()
            };
            assert_eq!(
                canonical(&personal).unwrap(),
                serde_json_canonicalizer::to_vec(&personal).unwrap()
            );
        }
    }

    #[test]
    fn a_large_integer_in_the_arguments_is_sealed_and_read_back_exactly() {
        let sealed_with = |id: u64| {
            seal(
                AuditEvent::tool_execution("lookup")
                    .input(json!({"tweet_id": id, "temperature": 0.7}))
                    .build()
                    .unwrap(),
            )
            .unwrap()
        };
        let sealed = sealed_with(1_850_000_000_000_000_001);
        let text = String::from_utf8(sealed.personal_json.clone()).unwrap();
        assert!(text.contains(r#""tweet_id":1850000000000000001"#), "{text}");
        let back = unseal(&sealed.meta_json, Some(&sealed.personal_json)).unwrap();
        assert_eq!(
            back.payload.input.unwrap()["tweet_id"].as_u64(),
            Some(1_850_000_000_000_000_001)
        );
        // Two ids a double can not tell apart are two different personal halves.
        assert_ne!(
            sealed.personal_json,
            sealed_with(1_850_000_000_000_000_000).personal_json
        );
    }

    /// Every kind of event with every field the builder sets, sealed: both halves equal what
    /// the full RFC 8785 canonicalizer writes.
    #[test]
    fn both_halves_of_every_kind_of_event_are_canonical() {
        use crate::{
            Action, ComplianceEvent, ContextOp, DataSource, FlowDirection, LegalBasis, Policy,
            RiskLevel,
        };
        let kinds = [
            AuditEvent::tool_execution("search").input(json!({"q": "x"})),
            AuditEvent::resource_access("file:///a", Action::Read).content_preview("abc"),
            AuditEvent::context_operation("key", ContextOp::Update)
                .state_before(json!({"v": 1}))
                .state_after(json!({"v": 2})),
            AuditEvent::prompt_execution("greet").output(json!([{"role": "user"}])),
            AuditEvent::server_operation("initialize", Action::Execute),
            AuditEvent::admin(Action::Update, "tool", "t1")
                .old_values(json!({"a": 1, "b": "x"}))
                .new_values(json!({"a": 2, "b": "x"})),
            AuditEvent::session_start("s1"),
        ];
        for builder in kinds {
            let mut event = builder
                .user("alice")
                .email("alice@example.com")
                .team("ops")
                .client_ip("10.0.0.7")
                .user_agent("agent/1.0 (\"quoted\")")
                .session("s1")
                .server("crm")
                .request("POST", "/mcp")
                .correlation_id("c-1")
                .trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
                .duration_us(1234)
                .error_code(-32000)
                .details(json!({"nested": {"z": [1, 2, {"y": null}], "a": "é😀\u{1}"}}))
                .context(json!({"ctx": true}))
                .metadata(json!({"m": "v"}))
                .data_source(
                    DataSource::input("postgres://db/t")
                        .source_type("database")
                        .identifier("t")
                        .transformation("filter")
                        .direction(FlowDirection::Bidirectional)
                        .metadata(json!({"rows": 3})),
                )
                .compliance_event(ComplianceEvent {
                    framework: "GDPR".into(),
                    event_type: "data_access".into(),
                    risk_level: RiskLevel::High,
                    details: Some(json!({"why": "audit"})),
                    mitigation: vec!["masked".into()],
                })
                .tag("pii")
                .purpose("support")
                .legal_basis(LegalBasis::Consent)
                .gdpr(true)
                .ccpa(true)
                .data_subject("subject-1")
                .retention("7y")
                .build()
                .unwrap();
            Policy::default().apply(&mut event).unwrap();
            let sealed = seal(event.clone()).unwrap();
            let mut meta = event.clone();
            let personal = Personal::take_from(&mut meta);
            assert_eq!(
                String::from_utf8(sealed.meta_json).unwrap(),
                String::from_utf8(serde_json_canonicalizer::to_vec(&meta).unwrap()).unwrap()
            );
            assert_eq!(
                String::from_utf8(sealed.personal_json).unwrap(),
                String::from_utf8(serde_json_canonicalizer::to_vec(&personal).unwrap()).unwrap()
            );
            assert!(
                crate::canonical::to_vec(&meta).is_ok(),
                "took the fast path"
            );
        }
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v = json!({"b": 1, "a": {"d": 2, "c": 3}});
        assert_eq!(canonical(&v).unwrap(), br#"{"a":{"c":3,"d":2},"b":1}"#);
    }
}
