//! Our checkpoints, keys, cosignatures and Merkle proofs against an implementation we did not
//! write: Cloudflare's `signed_note` (a port of Go's `golang.org/x/mod/sumdb/note`) and
//! `tlog_tiles` (of Go's `golang.org/x/mod/sumdb/tlog`, and C2SP tlog-checkpoint).
//!
//! So far our formats were checked only against our own reading of the C2SP texts; here a
//! note we sign must verify with their verifier built from the key text we print, a note they
//! sign must open with ours, the key ids must agree, and their parser must read our checkpoint
//! body to the same origin, size and root.
//!
//! Neither crate (0.2) verifies a C2SP tlog-cosignature (`cosignature/v1`, signature type
//! 0x04): `signed_note` knows only Ed25519 note keys (0x01). Their signed-note framework is
//! open, though: `Verifier` is a trait, and `Note::verify` runs any verifier. So the
//! cosignature check here is theirs for the note (parsing, the line's name and key id, the
//! dispatch by key) and, for the signed message, a verifier written below straight from the
//! tlog-cosignature text, not from our code; the key id of a witness key is their `key_id`
//! over `0x04 ‖ public key`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use mcp_audit_core::Hash;
use mcp_audit_core::checkpoint::{Checkpoint, NoteSigner, NoteVerifier};
use mcp_audit_core::cosignature::{CosignatureSigner, CosignatureVerifier, note_body};
use mcp_audit_core::merkle::{consistency_proof, inclusion_proof, leaf_hash, root};
use signed_note::{Note, StandardSigner, StandardVerifier, Verifier, VerifierList};

fn checkpoint(size: u64) -> Checkpoint {
    let leaves: Vec<Hash> = (0..size)
        .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
        .collect();
    Checkpoint {
        origin: "audit.example.com/log".into(),
        size,
        root: root(&leaves),
    }
}

/// The key id and key bytes (type byte first) of a `<name>+<hex id>+<base64 key>` text.
fn key_text_parts(text: &str) -> (String, u32, Vec<u8>) {
    let mut parts = text.trim().splitn(3, '+');
    let name = parts.next().unwrap().to_string();
    let id = u32::from_str_radix(parts.next().unwrap(), 16).unwrap();
    let key = STANDARD.decode(parts.next().unwrap()).unwrap();
    (name, id, key)
}

fn their_verifiers(list: Vec<Box<dyn Verifier>>) -> VerifierList {
    VerifierList::new(list)
}

#[test]
fn our_signed_checkpoints_verify_with_signed_notes_verifier_from_our_printed_key() {
    let signer = NoteSigner::generate("audit.example.com").unwrap();
    let ours = signer.verifier().to_text();
    let theirs = StandardVerifier::new(&ours).expect("signed_note reads our verifier key");
    for size in [0, 1, 2, 7, 1000] {
        let note = signer.sign(&checkpoint(size));
        let parsed = Note::from_bytes(note.as_bytes()).expect("signed_note parses our note");
        let (verified, unverified) = parsed
            .verify(&their_verifiers(vec![Box::new(theirs.clone())]))
            .expect("signed_note verifies our note");
        assert_eq!((verified.len(), unverified.len()), (1, 0));
        assert_eq!(parsed.text(), note_body(&note).unwrap().as_bytes());
        // A flipped bit of the body: their verifier refuses it too.
        let forged = note.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1), 1);
        let forged = Note::from_bytes(forged.as_bytes()).unwrap();
        assert!(
            forged
                .verify(&their_verifiers(vec![Box::new(theirs.clone())]))
                .is_err()
        );
    }
}

#[test]
fn our_log_key_id_and_witness_key_id_equal_signed_notes_key_id() {
    let log = NoteSigner::generate("audit.example.com")
        .unwrap()
        .verifier();
    let (name, id, key) = key_text_parts(&log.to_text());
    assert_eq!(key[0], 0x01);
    assert_eq!(id, signed_note::key_id(&name, &key));
    assert_eq!(id, StandardVerifier::new(&log.to_text()).unwrap().key_id());
    let witness = CosignatureSigner::generate("witness.example.com/w1")
        .unwrap()
        .verifier();
    let (name, id, key) = key_text_parts(&witness.to_text());
    assert_eq!(key[0], 0x04);
    assert_eq!(id, signed_note::key_id(&name, &key));
    assert_eq!(id.to_be_bytes(), witness.key_id());
    // Their verifier refuses a 0x04 key as of an unknown algorithm: not mistaken for a log key.
    assert!(matches!(
        StandardVerifier::new(&witness.to_text()),
        Err(signed_note::VerifierError::Alg)
    ));
}

#[test]
fn a_note_signed_by_signed_note_opens_with_our_verifier() {
    let (skey, vkey) = signed_note::generate_key(&mut rand::rngs::OsRng, "other.example.com");
    let theirs = StandardSigner::new(&skey).unwrap();
    let ours = NoteVerifier::from_text(&vkey).expect("we read their verifier key");
    let body = checkpoint(42).body();
    let mut note = Note::new(body.as_bytes(), &[]).unwrap();
    note.add_sigs(&[&theirs]).unwrap();
    let text = String::from_utf8(note.to_bytes()).unwrap();
    let opened = ours.open(&text).expect("our verifier opens their note");
    assert_eq!(opened, checkpoint(42));
    // Their key text round-trips through ours unchanged.
    assert_eq!(ours.to_text(), vkey);
    // Their signature under another body: refused by ours.
    let forged = text.replacen("\n42\n", "\n43\n", 1);
    assert!(ours.open(&forged).is_err());
}

#[test]
fn our_checkpoint_body_reads_the_same_with_tlog_tiles() {
    let huge = Checkpoint {
        size: 1 << 40,
        ..checkpoint(3)
    };
    for ours in [checkpoint(0), checkpoint(1), checkpoint(5), huge] {
        let theirs = tlog_tiles::Checkpoint::from_bytes(ours.body().as_bytes())
            .expect("tlog_tiles parses our checkpoint body");
        assert_eq!(theirs.origin(), ours.origin);
        assert_eq!(theirs.size(), ours.size);
        assert_eq!(theirs.hash().0, ours.root.0);
        assert_eq!(theirs.to_bytes(), ours.body().into_bytes());
    }
}

/// A C2SP tlog-cosignature `cosignature/v1` verifier written from the spec text, for
/// `signed_note`'s `Note::verify`: the signature is `timestamp[8, big-endian] ‖ Ed25519
/// signature[64]` over `"cosignature/v1\ntime " ‖ decimal timestamp ‖ "\n" ‖ note body`, and
/// the key id is `key_id(name, 0x04 ‖ public key)`.
struct SpecCosignatureVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl SpecCosignatureVerifier {
    fn from_text(text: &str) -> SpecCosignatureVerifier {
        let (name, id, key) = key_text_parts(text);
        assert_eq!(key[0], 0x04, "a cosignature/v1 key");
        assert_eq!(id, signed_note::key_id(&name, &key));
        SpecCosignatureVerifier {
            name,
            id,
            key: VerifyingKey::from_bytes(key[1..].try_into().unwrap()).unwrap(),
        }
    }
}

impl Verifier for SpecCosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = <&[u8; 72]>::try_from(sig) else {
            return false;
        };
        let timestamp = u64::from_be_bytes(sig[..8].try_into().unwrap());
        let mut signed = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
        signed.extend_from_slice(msg);
        let signature = Signature::from_bytes(sig[8..].try_into().unwrap());
        self.key.verify(&signed, &signature).is_ok()
    }
}

#[test]
fn our_witness_cosignature_verifies_with_signed_note_and_a_verifier_written_from_the_spec() {
    let log = NoteSigner::generate("audit.example.com").unwrap();
    let witness = CosignatureSigner::generate("witness.example.com/w1").unwrap();
    let note = log.sign(&checkpoint(5));
    let body = note_body(&note).unwrap();
    let line = witness.cosign(body, 1_765_152_000);
    // The note as a verifier receives it: the log's signature, then the witness's.
    let cosigned = format!("{note}{line}");
    let parsed = Note::from_bytes(cosigned.as_bytes()).expect("signed_note parses it");
    let spec = SpecCosignatureVerifier::from_text(&witness.verifier().to_text());
    let log_key = StandardVerifier::new(&log.verifier().to_text()).unwrap();
    let (verified, unverified) = parsed
        .verify(&their_verifiers(vec![Box::new(log_key), Box::new(spec)]))
        .expect("both signatures verify");
    assert_eq!((verified.len(), unverified.len()), (2, 0));
    assert_eq!(verified[1].name(), "witness.example.com/w1");
    assert_eq!(verified[1].id().to_be_bytes(), witness.verifier().key_id());
    // The cosignature of another checkpoint does not verify on this one.
    let other = witness.cosign(note_body(&log.sign(&checkpoint(6))).unwrap(), 1_765_152_000);
    let mixed = Note::from_bytes(format!("{note}{other}").as_bytes()).unwrap();
    let spec = SpecCosignatureVerifier::from_text(&witness.verifier().to_text());
    assert!(matches!(
        mixed.verify(&their_verifiers(vec![Box::new(spec)])),
        Err(signed_note::NoteError::InvalidSignature { .. })
    ));
    // And ours finds the line the spec's verifier accepted.
    let found = CosignatureVerifier::from_text(&witness.verifier().to_text())
        .unwrap()
        .find(body, &line)
        .unwrap();
    assert_eq!(found.timestamp, 1_765_152_000);
}

#[test]
fn our_inclusion_and_consistency_proofs_check_with_tlog_tiles_for_every_small_tree() {
    let leaves: Vec<Hash> = (0..40u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let theirs = |h: &Hash| tlog_tiles::Hash(h.0);
    for size in 1..=leaves.len() {
        let tree = &leaves[..size];
        let tree_root = root(tree);
        for index in 0..size {
            let proof: Vec<_> = inclusion_proof(tree, index)
                .unwrap()
                .iter()
                .map(theirs)
                .collect();
            tlog_tiles::check_record(
                &proof,
                size as u64,
                theirs(&tree_root),
                index as u64,
                theirs(&tree[index]),
            )
            .unwrap_or_else(|e| panic!("inclusion of {index} in {size}: {e:?}"));
        }
        for old in 1..=size {
            let proof: Vec<_> = consistency_proof(tree, old)
                .unwrap()
                .iter()
                .map(theirs)
                .collect();
            tlog_tiles::check_tree(
                &proof,
                size as u64,
                theirs(&tree_root),
                old as u64,
                theirs(&root(&leaves[..old])),
            )
            .unwrap_or_else(|e| panic!("consistency {old} -> {size}: {e:?}"));
            // A flipped bit in the proof: refused.
            if let Some(first) = proof.first() {
                let mut bad = proof.clone();
                bad[0] = tlog_tiles::Hash({
                    let mut b = first.0;
                    b[0] ^= 1;
                    b
                });
                assert!(
                    tlog_tiles::check_tree(
                        &bad,
                        size as u64,
                        theirs(&tree_root),
                        old as u64,
                        theirs(&root(&leaves[..old])),
                    )
                    .is_err()
                );
            }
        }
    }
}
