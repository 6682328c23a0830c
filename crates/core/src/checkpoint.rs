//! Signed checkpoints: the C2SP tlog-checkpoint body (origin, tree size, root hash) inside a
//! C2SP signed note, signed with Ed25519.
//!
//! ```text
//! <origin>\n<size>\n<base64 root hash>\n        the checkpoint body (the signed text)
//! \n
//! — <key name> <base64(key id[4] ‖ signature[64])>\n
//! ```
//!
//! The key id is the first four bytes of `SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public key)`. A
//! verifier key is written `<name>+<key id hex>+<base64(0x01 ‖ public key)>`, a signer key
//! `PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 ‖ seed)>`. Someone who holds only the verifier
//! key can check a checkpoint, and with `merkle::verify_inclusion`, an event.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

use crate::hash::Hash;
use crate::note_key::{self, KeyType};

/// Ed25519, in the signed-note algorithm numbering.
const ALG_ED25519: u8 = 0x01;
/// The line that introduces a signature: an em dash and a space.
pub(crate) const SIG_PREFIX: &str = "\u{2014} ";

/// Why a checkpoint, note or key text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The text is not in the expected form; says what is wrong.
    #[error("malformed {what}: {problem}")]
    Malformed {
        what: &'static str,
        problem: &'static str,
    },
    /// No signature by the expected key is on the note.
    #[error("the note carries no signature by key `{0}`")]
    NoSignatureByKey(String),
    /// A signature by the expected key is there, and it does not verify.
    #[error("the signature by key `{0}` does not verify")]
    BadSignature(String),
}

pub(crate) fn malformed(what: &'static str, problem: &'static str) -> NoteError {
    NoteError::Malformed { what, problem }
}

/// A log's state: its origin, size and root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique name, e.g. `mcp-audit.example.com/log/<log id>`.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint body, the text that is signed.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root.0)
        )
    }

    /// Parses a body (extension lines after the third are allowed and ignored).
    pub fn parse_body(body: &str) -> Result<Checkpoint, NoteError> {
        let what = "checkpoint";
        let mut lines = body
            .strip_suffix('\n')
            .ok_or(malformed(what, "no final newline"))?
            .split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(malformed(what, "no origin"))?;
        let size = lines.next().ok_or(malformed(what, "no size"))?;
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(malformed(what, "the size is not a decimal number"));
        }
        let size = size
            .parse()
            .map_err(|_| malformed(what, "the size is out of range"))?;
        let root = lines.next().ok_or(malformed(what, "no root hash"))?;
        let root = STANDARD
            .decode(root)
            .map_err(|_| malformed(what, "the root hash is not base64"))?;
        let root =
            Hash::from_slice(&root).ok_or(malformed(what, "the root hash is not 32 bytes"))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

/// The log key's signature type: Ed25519.
const LOG_KEY: KeyType = KeyType {
    byte: ALG_ED25519,
    other_type: "not an Ed25519 key",
};

fn key_id(name: &str, public: &VerifyingKey) -> [u8; 4] {
    note_key::key_id(LOG_KEY, name, public)
}

/// A key that signs checkpoints.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl NoteSigner {
    /// A fresh key named `name` (no `+`, no white space).
    pub fn generate(name: &str) -> Result<NoteSigner, NoteError> {
        Ok(NoteSigner {
            name: name.to_string(),
            key: note_key::generate(name)?,
        })
    }

    /// `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ seed)>`.
    pub fn to_text(&self) -> String {
        note_key::signer_text(LOG_KEY, &self.name, &self.key)
    }

    pub fn from_text(text: &str) -> Result<NoteSigner, NoteError> {
        let (name, key) = note_key::parse_signer(LOG_KEY, text, "signer key")?;
        Ok(NoteSigner { name, key })
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The signed note of `checkpoint`.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let body = checkpoint.body();
        let signature = self.key.sign(body.as_bytes());
        let mut blob = key_id(&self.name, &self.key.verifying_key()).to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!(
            "{body}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        )
    }
}

/// A key that checks checkpoints: all a third party needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
}

impl NoteVerifier {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<name>+<key id hex>+<base64(0x01 ‖ public key)>`.
    pub fn to_text(&self) -> String {
        note_key::verifier_text(LOG_KEY, &self.name, &self.key)
    }

    pub fn from_text(text: &str) -> Result<NoteVerifier, NoteError> {
        let (name, key) = note_key::parse_verifier(LOG_KEY, text, "verifier key")?;
        Ok(NoteVerifier { name, key })
    }

    /// Checks `note`'s signature by this key and returns its checkpoint. Signatures by other
    /// keys are allowed (cosigners) and ignored.
    pub fn open(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let what = "signed note";
        let (body, signatures) = note
            .split_once("\n\n")
            .ok_or(malformed(what, "no blank line before the signatures"))?;
        let body = format!("{body}\n");
        let id = key_id(&self.name, &self.key);
        let mut found = false;
        for line in signatures
            .strip_suffix('\n')
            .ok_or(malformed(what, "no final newline"))?
            .split('\n')
        {
            let rest = line
                .strip_prefix(SIG_PREFIX)
                .ok_or(malformed(what, "a signature line without `— `"))?;
            let (name, blob) = rest
                .split_once(' ')
                .ok_or(malformed(what, "a signature line without a signature"))?;
            let blob = STANDARD
                .decode(blob)
                .map_err(|_| malformed(what, "a signature that is not base64"))?;
            if name != self.name || blob.len() < 4 || blob[..4] != id {
                continue;
            }
            found = true;
            let signature = Signature::from_slice(&blob[4..])
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            if self.key.verify(body.as_bytes(), &signature).is_ok() {
                return Checkpoint::parse_body(&body);
            }
        }
        Err(if found {
            NoteError::BadSignature(self.name.clone())
        } else {
            NoteError::NoSignatureByKey(self.name.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "mcp-audit.test/log/1".into(),
            size: 42,
            root: crate::merkle::leaf_hash(b"root"),
        }
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_verifier_key_text() {
        let signer = NoteSigner::generate("audit-test").unwrap();
        let note = signer.sign(&checkpoint());
        assert!(note.starts_with("mcp-audit.test/log/1\n42\n"), "{note}");
        assert!(note.contains("\n\n\u{2014} audit-test "), "{note}");
        let verifier = NoteVerifier::from_text(&signer.verifier().to_text()).unwrap();
        assert_eq!(verifier.open(&note).unwrap(), checkpoint());
        // The signer key text round-trips too.
        let again = NoteSigner::from_text(&signer.to_text()).unwrap();
        assert_eq!(again.verifier(), signer.verifier());
    }

    #[test]
    fn any_change_to_the_body_breaks_the_signature() {
        let signer = NoteSigner::generate("k").unwrap();
        let note = signer.sign(&checkpoint());
        for (from, to) in [("\n42\n", "\n41\n"), ("log/1", "log/2")] {
            let forged = note.replacen(from, to, 1);
            assert_eq!(
                signer.verifier().open(&forged),
                Err(NoteError::BadSignature("k".into()))
            );
        }
    }

    #[test]
    fn a_note_signed_by_another_key_is_refused() {
        let ours = NoteSigner::generate("k").unwrap();
        let theirs = NoteSigner::generate("k").unwrap();
        let note = theirs.sign(&checkpoint());
        assert_eq!(
            ours.verifier().open(&note),
            Err(NoteError::NoSignatureByKey("k".into()))
        );
    }

    #[test]
    fn malformed_notes_and_keys_are_errors_never_panics() {
        let v = NoteSigner::generate("k").unwrap().verifier();
        for note in [
            "",
            "\n",
            "a\n1\n",
            "a\n1\nAAAA\n\n",
            "a\n1\nAAAA\n\nnot a signature\n",
            "a\n1\nAAAA\n\n\u{2014} k !!!\n",
            "\u{2014}\n\n\u{2014} k AAAA\n",
        ] {
            assert!(v.open(note).is_err(), "{note:?}");
        }
        for body in [
            "",
            "o\n",
            "o\n01\nAAAA\n",
            "o\n-1\nAAAA\n",
            "o\n1\nnot base64\n",
            "o\n1\nAAAA\n",
            "o\n99999999999999999999\nAAAA\n",
        ] {
            assert!(Checkpoint::parse_body(body).is_err(), "{body:?}");
        }
        for key in [
            "",
            "k",
            "k+1+2+3",
            "k+00000000+AAAA",
            "PRIVATE+KEY+k+00000000+AAAA",
        ] {
            assert!(NoteVerifier::from_text(key).is_err(), "{key:?}");
            assert!(NoteSigner::from_text(key).is_err(), "{key:?}");
        }
        // A valid key with a wrong id is refused.
        let text = v.to_text();
        let parts: Vec<&str> = text.splitn(3, '+').collect();
        assert!(NoteVerifier::from_text(&format!("{}+00000000+{}", parts[0], parts[2])).is_err());
    }
}
