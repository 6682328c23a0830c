//! Witness cosignatures: C2SP tlog-cosignature `cosignature/v1` (Ed25519), the statement by a
//! witness that a checkpoint is the largest consistent tree it has seen of a log.
//!
//! A cosignature is one more signed-note signature line on the log's checkpoint:
//!
//! ```text
//! — <witness name> base64(key id[4] ‖ timestamp[8, big-endian] ‖ Ed25519 signature[64])
//! ```
//!
//! The signature is over
//!
//! ```text
//! cosignature/v1\n
//! time <timestamp, decimal, no leading zeroes>\n
//! <the whole checkpoint body, extension lines included, with its final newline>
//! ```
//!
//! and the key id is `SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)[:4]`: the same construction as
//! a log key's (`checkpoint`), with the cosignature algorithm byte, so that a log key can never
//! be mistaken for a witness key nor one signature for the other. The message starts with its
//! own header line for the same reason: a witness signature can not be replayed as a log's.
//!
//! Keys are written as signed-note keys with that byte: a verifier key (vkey)
//! `<name>+<key id hex>+<base64(0x04 ‖ public key)>`, and, for `mcp-audit serve --witness-key`,
//! a signer key `PRIVATE+KEY+<name>+<key id hex>+<base64(0x04 ‖ seed)>`. The Ed25519 message
//! does not commit to the witness name, so one key serves one witness name only.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

use crate::checkpoint::{NoteError, SIG_PREFIX, malformed};
use crate::note_key::{self, KeyType};

/// The signed-note signature type of an Ed25519 `cosignature/v1`.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// A witness key's signature type.
const WITNESS_KEY: KeyType = KeyType {
    byte: ALG_COSIGNATURE_V1,
    other_type: "not a cosignature/v1 key (signature type 0x04)",
};
/// The header line of the signed message (domain separation).
const HEADER: &str = "cosignature/v1\n";
/// key id (4) ‖ timestamp (8) ‖ signature (64).
const BLOB_LEN: usize = 4 + 8 + 64;

/// The message a `cosignature/v1` signs: header, time line, then the checkpoint `body`
/// (which ends in a newline).
pub fn signed_message(body: &str, timestamp: u64) -> String {
    format!("{HEADER}time {timestamp}\n{body}")
}

/// The body of a signed note: its text up to the blank line before the signatures, with the
/// body's final newline. `None` when the note has no blank line.
pub fn note_body(note: &str) -> Option<&str> {
    note.find("\n\n").map(|at| &note[..=at])
}

/// A witness's signing key.
pub struct CosignatureSigner {
    name: String,
    key: SigningKey,
}

impl CosignatureSigner {
    /// A fresh key named `name` (no `+`, no white space; a schema-less URL by convention,
    /// e.g. `witness.example.com/w1`).
    pub fn generate(name: &str) -> Result<CosignatureSigner, NoteError> {
        Ok(CosignatureSigner {
            name: name.to_string(),
            key: note_key::generate(name)?,
        })
    }

    /// `PRIVATE+KEY+<name>+<key id hex>+<base64(0x04 ‖ seed)>`.
    pub fn to_text(&self) -> String {
        note_key::signer_text(WITNESS_KEY, &self.name, &self.key)
    }

    pub fn from_text(text: &str) -> Result<CosignatureSigner, NoteError> {
        let (name, key) = note_key::parse_signer(WITNESS_KEY, text, "witness signer key")?;
        Ok(CosignatureSigner { name, key })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The cosignature line (`— <name> <base64>\n`) of the checkpoint `body` at `timestamp`
    /// (seconds since the Unix epoch).
    pub fn cosign(&self, body: &str, timestamp: u64) -> String {
        let signature = self.key.sign(signed_message(body, timestamp).as_bytes());
        let mut blob = Vec::with_capacity(BLOB_LEN);
        blob.extend_from_slice(&self.verifier().key_id());
        // timestamped_signature: u64 timestamp, big-endian, then the signature.
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        format!("{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(blob))
    }
}

/// A witness's public key: what `verify --witness` and a log's sender check cosignatures
/// with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key: VerifyingKey,
}

/// A cosignature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// When the witness signed, in seconds since the Unix epoch.
    pub timestamp: u64,
    /// The signature line as found (with its final newline).
    pub line: String,
}

impl CosignatureVerifier {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)[:4]`.
    pub fn key_id(&self) -> [u8; 4] {
        note_key::key_id(WITNESS_KEY, &self.name, &self.key)
    }

    /// `<name>+<key id hex>+<base64(0x04 ‖ public key)>`.
    pub fn to_text(&self) -> String {
        note_key::verifier_text(WITNESS_KEY, &self.name, &self.key)
    }

    pub fn from_text(text: &str) -> Result<CosignatureVerifier, NoteError> {
        let (name, key) = note_key::parse_verifier(WITNESS_KEY, text, "witness verifier key")?;
        Ok(CosignatureVerifier { name, key })
    }

    /// Finds this witness's cosignature of the checkpoint `body` among `lines` (signature
    /// lines, each ending in a newline: a witness's answer, or a note's signatures). Lines of
    /// other keys are ignored, as the spec asks; of several valid ones the newest wins.
    pub fn find(&self, body: &str, lines: &str) -> Result<Cosigned, NoteError> {
        let what = "cosignature";
        let id = self.key_id();
        let mut found = false;
        let mut best: Option<Cosigned> = None;
        for line in lines.split_inclusive('\n') {
            let Some(rest) = line
                .strip_suffix('\n')
                .and_then(|l| l.strip_prefix(SIG_PREFIX))
            else {
                return Err(malformed(what, "a line that is not a signature line"));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(malformed(what, "a signature line without a signature"));
            };
            let Ok(blob) = STANDARD.decode(blob) else {
                return Err(malformed(what, "a signature that is not base64"));
            };
            if name != self.name || blob.len() < 4 || blob[..4] != id {
                continue;
            }
            found = true;
            if let Some(timestamp) = self.check(body, &blob)
                && best.as_ref().is_none_or(|b| b.timestamp < timestamp)
            {
                best = Some(Cosigned {
                    timestamp,
                    line: line.to_string(),
                });
            }
        }
        best.ok_or_else(|| {
            if found {
                NoteError::BadSignature(self.name.clone())
            } else {
                NoteError::NoSignatureByKey(self.name.clone())
            }
        })
    }

    /// The timestamp of `blob` (key id ‖ timestamp ‖ signature) if its signature of `body`
    /// verifies.
    fn check(&self, body: &str, blob: &[u8]) -> Option<u64> {
        if blob.len() != BLOB_LEN {
            return None;
        }
        let timestamp = u64::from_be_bytes(blob[4..12].try_into().ok()?);
        // tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1.
        if timestamp > i64::MAX as u64 {
            return None;
        }
        let signature = Signature::from_slice(&blob[12..]).ok()?;
        self.key
            .verify(signed_message(body, timestamp).as_bytes(), &signature)
            .ok()
            .map(|()| timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, NoteSigner, NoteVerifier};

    const BODY: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn the_signed_message_is_header_time_line_and_the_whole_body() {
        assert_eq!(
            signed_message(BODY, 1679315147),
            format!("cosignature/v1\ntime 1679315147\n{BODY}")
        );
        assert_eq!(note_body(&format!("{BODY}\n\u{2014} k AAAA\n")), Some(BODY));
        assert_eq!(note_body(BODY), None);
    }

    /// The spec's example cosignature line (tlog-cosignature): its blob is key id ‖ the
    /// big-endian timestamp of the example message (1679315147) ‖ a 64-byte signature.
    #[test]
    fn the_spec_example_line_has_the_layout_we_write() {
        let blob = STANDARD
            .decode("jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==")
            .unwrap();
        assert_eq!(blob.len(), BLOB_LEN);
        assert_eq!(
            u64::from_be_bytes(blob[4..12].try_into().unwrap()),
            1679315147
        );
        let signer = CosignatureSigner::generate("witness.example.com/w1").unwrap();
        let line = signer.cosign(BODY, 1679315147);
        let ours = STANDARD
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        assert_eq!(ours.len(), BLOB_LEN);
        assert_eq!(ours[4..12], blob[4..12]);
        assert_eq!(ours[..4], signer.verifier().key_id());
    }

    #[test]
    fn a_cosignature_verifies_with_the_verifier_key_text_and_keys_round_trip() {
        let signer = CosignatureSigner::generate("witness.test/w1").unwrap();
        let line = signer.cosign(BODY, 1_700_000_000);
        assert!(line.starts_with("\u{2014} witness.test/w1 "), "{line}");
        let verifier = CosignatureVerifier::from_text(&signer.verifier().to_text()).unwrap();
        let found = verifier.find(BODY, &line).unwrap();
        assert_eq!(found.timestamp, 1_700_000_000);
        assert_eq!(found.line, line);
        let again = CosignatureSigner::from_text(&signer.to_text()).unwrap();
        assert_eq!(again.verifier(), signer.verifier());
        // The key id is the one computed with 0x04, not the log keys' 0x01.
        assert_eq!(verifier.to_text().split('+').nth(1).unwrap(), {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(b"witness.test/w1\n\x04");
            h.update(signer.key.verifying_key().as_bytes());
            hex::encode(&h.finalize()[..4])
        });
    }

    #[test]
    fn a_changed_body_time_or_bit_breaks_the_cosignature() {
        let signer = CosignatureSigner::generate("w").unwrap();
        let verifier = signer.verifier();
        let line = signer.cosign(BODY, 5);
        let other_body = BODY.replace("20852163", "20852164");
        assert_eq!(
            verifier.find(&other_body, &line),
            Err(NoteError::BadSignature("w".into()))
        );
        let blob = STANDARD
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        for at in [4 + 7, 12, BLOB_LEN - 1] {
            let mut flipped = blob.clone();
            flipped[at] ^= 1;
            let forged = format!("\u{2014} w {}\n", STANDARD.encode(flipped));
            assert_eq!(
                verifier.find(BODY, &forged),
                Err(NoteError::BadSignature("w".into())),
                "bit flipped at {at}"
            );
        }
    }

    #[test]
    fn other_keys_lines_are_ignored_and_a_log_key_is_not_a_witness_key() {
        let log = NoteSigner::generate("log.test").unwrap();
        let checkpoint = Checkpoint {
            origin: "log.test/1".into(),
            size: 3,
            root: crate::merkle::leaf_hash(b"r"),
        };
        let note = log.sign(&checkpoint);
        let body = note_body(&note).unwrap();
        let witness = CosignatureSigner::generate("w").unwrap();
        let stranger = CosignatureSigner::generate("w").unwrap();
        let lines = format!("{}{}", stranger.cosign(body, 1), witness.cosign(body, 2));
        assert_eq!(witness.verifier().find(body, &lines).unwrap().timestamp, 2);
        assert_eq!(
            stranger.verifier().find(body, &witness.cosign(body, 2)),
            Err(NoteError::NoSignatureByKey("w".into()))
        );
        // The cosigned note still opens with the log's key.
        let cosigned = format!("{note}{}", witness.cosign(body, 2));
        assert_eq!(log.verifier().open(&cosigned).unwrap(), checkpoint);
        // Key texts of one kind are refused as the other.
        assert!(CosignatureVerifier::from_text(&log.verifier().to_text()).is_err());
        assert!(NoteVerifier::from_text(&witness.verifier().to_text()).is_err());
        assert!(CosignatureSigner::from_text(&log.to_text()).is_err());
    }

    #[test]
    fn malformed_lines_and_keys_are_errors_never_panics() {
        let v = CosignatureSigner::generate("w").unwrap().verifier();
        for lines in [
            "",
            "x\n",
            "\u{2014} w\n",
            "\u{2014} w !!!\n",
            "\u{2014} w AAAA",
        ] {
            assert!(v.find(BODY, lines).is_err(), "{lines:?}");
        }
        // Too short a blob with the right id is a bad signature, not a panic.
        let short = format!("\u{2014} w {}\n", STANDARD.encode(v.key_id()));
        assert_eq!(
            v.find(BODY, &short),
            Err(NoteError::BadSignature("w".into()))
        );
        for key in [
            "",
            "w",
            "w+1+2+3",
            "w+00000000+BA==",
            "PRIVATE+KEY+w+00000000+BA==",
        ] {
            assert!(CosignatureVerifier::from_text(key).is_err(), "{key:?}");
            assert!(CosignatureSigner::from_text(key).is_err(), "{key:?}");
        }
        let text = v.to_text();
        let parts: Vec<&str> = text.splitn(3, '+').collect();
        assert!(
            CosignatureVerifier::from_text(&format!("{}+00000000+{}", parts[0], parts[2])).is_err()
        );
    }
}
