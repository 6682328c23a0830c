//! Roots and proofs of a large log without its leaves in memory.
//!
//! [`crate::merkle`] works on a slice of leaf hashes: fine for a test or a small log, but a
//! proof in a log of ten million entries would read and rehash all of them. Every hash an RFC
//! 9162 proof or root needs is the root of a *perfect, aligned* subtree: `2^h` leaves starting
//! at a multiple of `2^h`. The functions here ask a `source` for exactly those roots, so a store
//! that keeps the roots of every aligned subtree of height 8, 16, 24, ... (the interior nodes at
//! every [`TILE_HEIGHT`]-th level, a 1/255 overhead on the leaves) answers any of them from at
//! most 128 stored hashes, and a proof costs O(log n) small reads whatever the log's size.
//!
//! The source is trusted only for speed: a proof built from a wrong stored node does not verify
//! against the signed checkpoint, so a tampered node store can deny a proof, never forge one.

use crate::Hash;
use crate::merkle::{empty_root, node_hash};

/// Interior nodes are stored at every level that is a multiple of this (8, 16, 24, ...).
pub const TILE_HEIGHT: u32 = 8;

/// The largest power of two strictly below `n` (`n ≥ 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// MTH(D[start .. start + size)): the root over a range of the log, from the roots of the
/// perfect subtrees it splits into. `start` must be aligned as RFC 9162's recursion aligns it
/// (a multiple of the largest power of two not above `size`), which every range a proof or a
/// prefix root needs is.
pub fn range_root<E>(
    start: u64,
    size: u64,
    source: &mut (impl FnMut(u64, u32) -> Result<Hash, E> + ?Sized),
) -> Result<Hash, E> {
    if size == 0 {
        return Ok(empty_root());
    }
    if size.is_power_of_two() {
        return source(start, size.trailing_zeros());
    }
    let k = split(size);
    let left = range_root(start, k, source)?;
    let right = range_root(start + k, size - k, source)?;
    Ok(node_hash(&left, &right))
}

/// PATH(index, D[size]) as [`crate::merkle::inclusion_proof`] computes it, from subtree roots;
/// `None` when `index` is not a leaf of the tree.
pub fn inclusion_proof<E>(
    index: u64,
    size: u64,
    source: &mut (impl FnMut(u64, u32) -> Result<Hash, E> + ?Sized),
) -> Result<Option<Vec<Hash>>, E> {
    if index >= size {
        return Ok(None);
    }
    // Walk down from the root, noting the sibling range at each split; the proof lists them
    // from the leaf up.
    let mut siblings = Vec::new();
    let (mut start, mut n, mut m) = (0u64, size, index);
    while n > 1 {
        let k = split(n);
        if m < k {
            siblings.push((start + k, n - k));
            n = k;
        } else {
            siblings.push((start, k));
            start += k;
            m -= k;
            n -= k;
        }
    }
    let mut proof = Vec::with_capacity(siblings.len());
    for (s, len) in siblings.into_iter().rev() {
        proof.push(range_root(s, len, source)?);
    }
    Ok(Some(proof))
}

/// PROOF(old_size, D[new_size]) as [`crate::merkle::consistency_proof`] computes it, from
/// subtree roots; `None` unless `0 < old_size ≤ new_size`.
pub fn consistency_proof<E>(
    old_size: u64,
    new_size: u64,
    source: &mut (impl FnMut(u64, u32) -> Result<Hash, E> + ?Sized),
) -> Result<Option<Vec<Hash>>, E> {
    if old_size == 0 || old_size > new_size {
        return Ok(None);
    }
    let mut proof = Vec::new();
    subproof(old_size, 0, new_size, true, source, &mut proof)?;
    Ok(Some(proof))
}

fn subproof<E>(
    m: u64,
    start: u64,
    n: u64,
    whole: bool,
    source: &mut (impl FnMut(u64, u32) -> Result<Hash, E> + ?Sized),
    proof: &mut Vec<Hash>,
) -> Result<(), E> {
    if m == n {
        if !whole {
            proof.push(range_root(start, n, source)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(m, start, k, whole, source, proof)?;
        proof.push(range_root(start + k, n - k, source)?);
    } else {
        subproof(m - k, start + k, n - k, false, source, proof)?;
        proof.push(range_root(start, k, source)?);
    }
    Ok(())
}

/// A stored interior node: the root of the `2^level` leaves from `index · 2^level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub level: u32,
    pub index: u64,
    pub hash: Hash,
}

impl Node {
    /// The first leaf the node covers.
    pub fn start(&self) -> u64 {
        self.index << self.level
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{self, Frontier};

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n as u32)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect()
    }

    /// A source that answers from the leaves and checks the alignment promise.
    fn from_leaves(leaves: &[Hash]) -> impl FnMut(u64, u32) -> Result<Hash, String> + '_ {
        |start, height| {
            let len = 1u64 << height;
            if start % len != 0 {
                return Err(format!("unaligned subtree {start}/{height}"));
            }
            let (s, e) = (start as usize, (start + len) as usize);
            leaves
                .get(s..e)
                .map(merkle::root)
                .ok_or_else(|| format!("subtree {s}..{e} is outside the log"))
        }
    }

    #[test]
    fn proofs_from_subtree_roots_equal_proofs_from_leaves() {
        let all = leaves(300);
        for n in [
            1usize, 2, 3, 5, 7, 8, 9, 31, 64, 65, 100, 255, 256, 257, 300,
        ] {
            let l = &all[..n];
            let mut source = from_leaves(l);
            assert_eq!(
                range_root(0, n as u64, &mut source).unwrap(),
                merkle::root(l)
            );
            for i in 0..n {
                assert_eq!(
                    inclusion_proof(i as u64, n as u64, &mut source).unwrap(),
                    merkle::inclusion_proof(l, i),
                    "inclusion {i} of {n}"
                );
            }
            for m in 0..=n + 1 {
                assert_eq!(
                    consistency_proof(m as u64, n as u64, &mut source).unwrap(),
                    merkle::consistency_proof(l, m),
                    "consistency {m} -> {n}"
                );
            }
        }
    }

    #[test]
    fn a_leaf_outside_the_tree_has_no_proof() {
        let l = leaves(10);
        assert_eq!(inclusion_proof(10, 10, &mut from_leaves(&l)).unwrap(), None);
    }

    #[test]
    fn a_failing_source_fails_the_proof() {
        let l = leaves(10);
        // Sizes beyond the leaves make the source fail: the error comes back, not a proof.
        assert!(inclusion_proof(3, 40, &mut from_leaves(&l)).is_err());
    }

    #[test]
    fn the_frontier_reports_each_completed_tile_node_once() {
        let l = leaves(1000);
        let mut frontier = Frontier::new();
        let mut nodes = Vec::new();
        for leaf in &l {
            frontier.push_reporting(*leaf, &mut |node| nodes.push(node));
        }
        // 1000 leaves hold three complete level-8 subtrees and no level-16 one.
        assert_eq!(
            nodes.iter().map(|n| (n.level, n.index)).collect::<Vec<_>>(),
            vec![(8, 0), (8, 1), (8, 2)]
        );
        for node in &nodes {
            let s = node.start() as usize;
            assert_eq!(node.hash, merkle::root(&l[s..s + 256]));
        }
        assert_eq!(frontier.root(), merkle::root(&l));
    }

    #[test]
    fn a_frontier_rebuilt_from_subtree_roots_continues_like_the_original() {
        let l = leaves(700);
        for n in [0usize, 1, 6, 256, 511, 600] {
            let mut rebuilt = Frontier::from_source(n as u64, &mut from_leaves(&l[..n])).unwrap();
            let mut original = Frontier::from_leaves(&l[..n]);
            assert_eq!(rebuilt, original, "size {n}");
            for leaf in &l[n..] {
                rebuilt.push(*leaf);
                original.push(*leaf);
            }
            assert_eq!(rebuilt.root(), original.root());
        }
    }
}
