//! What the adapters share between a peer's bytes and the recorder: how large a frame the proxy
//! holds, and what it keeps of one that is larger.
//!
//! A frame is held whole (up to [`MAX_FRAME`]) so that it can be interpreted, and in `sync`
//! recorded, before it is forwarded. A larger one can not be: it is streamed through (or, in
//! `sync` from the client, dropped and refused), and only its size, hash and start are kept,
//! which is what [`crate::Interpreter::admit_oversize`] decides on.

use sha2::{Digest, Sha256};

/// Frames larger than this are not held: forwarded without being interpreted whole (recorded
/// by size, hash and start), or in `sync` from the client refused.
pub const MAX_FRAME: usize = 10 * 1024 * 1024;

/// How much of the start of an oversized frame is kept: enough for the id, the method and the
/// name that a request usually puts before its arguments.
pub const HEAD: usize = 64 * 1024;

/// A frame larger than [`MAX_FRAME`] on its way: its hash so far, its size, and its start.
/// The one record of such a frame for every adapter (stdio lines, HTTP bodies, SSE events).
pub struct Oversize {
    hash: Sha256,
    size: usize,
    head: Vec<u8>,
    /// Whether its bytes are being forwarded (else dropped: the frame will be refused).
    pub forwarded: bool,
}

/// What is known of an oversized frame once it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its first [`HEAD`] bytes.
    pub head: Vec<u8>,
    pub size: usize,
    pub sha256: [u8; 32],
}

impl Oversize {
    /// An oversized frame whose first bytes are `bytes`.
    pub fn start(bytes: &[u8], forwarded: bool) -> Oversize {
        let mut oversize = Oversize {
            hash: Sha256::new(),
            size: 0,
            head: Vec::new(),
            forwarded,
        };
        oversize.update(bytes);
        oversize
    }

    /// More of the frame.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hash.update(bytes);
        self.size += bytes.len();
        let room = HEAD - self.head.len();
        if room > 0 {
            self.head.extend_from_slice(&bytes[..room.min(bytes.len())]);
        }
    }

    /// The frame ended with `last`.
    pub fn finish(mut self, last: &[u8]) -> Seen {
        self.update(last);
        Seen {
            head: self.head,
            size: self.size,
            sha256: self.hash.finalize().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_frame_is_kept_as_its_size_its_hash_and_its_start_however_it_arrives() {
        let frame: Vec<u8> = (0..3 * HEAD).map(|n| (n % 251) as u8).collect();
        let whole: [u8; 32] = Sha256::digest(&frame).into();
        // In one piece, in pieces of every size around the start's length, byte by byte.
        for piece in [frame.len(), 1, 7, HEAD - 1, HEAD, HEAD + 1] {
            let mut pieces = frame.chunks(piece);
            let mut oversize = Oversize::start(pieces.next().unwrap_or_default(), true);
            let rest: Vec<&[u8]> = pieces.collect();
            let (last, middle) = rest
                .split_last()
                .map_or((&[][..], &[][..]), |(l, m)| (*l, m));
            for p in middle {
                oversize.update(p);
            }
            let seen = oversize.finish(last);
            assert_eq!(seen.size, frame.len(), "{piece}");
            assert_eq!(seen.sha256, whole, "{piece}");
            assert_eq!(seen.head, frame[..HEAD], "{piece}");
        }
    }
}
