//! Merkle tree math of RFC 6962 / RFC 9162 §2.1: tree hashes, inclusion and consistency proofs,
//! and their verification. Algorithm only: no storage, no tiles, no signing, so that the rules a
//! third party checks are written once and tested on their own.
//!
//! Leaves are already hashed (`SHA-256(0x00 ‖ leaf)`, see [`leaf_hash`] and
//! [`crate::seal::leaf_hash`]); interior nodes are `SHA-256(0x01 ‖ left ‖ right)`; a tree of
//! `n > 1` leaves splits at the largest power of two below `n`. Proof elements are ordered from
//! the leaf up, as in the RFC.

use sha2::{Digest, Sha256};

use crate::hash::Hash;

/// `SHA-256(0x00 ‖ data)`: the hash of a leaf (RFC 9162 §2.1.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    Hash(h.finalize().into())
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node (RFC 9162 §2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// The largest power of two strictly below `n` (`n ≥ 2`): where a tree of `n` leaves splits.
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// MTH(D[n]): the root of the tree over `leaves` (leaf hashes).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]): the inclusion proof of leaf `index` (RFC 9162 §2.1.3.1); `None` when `index`
/// is not a leaf of the tree.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(index, leaves, &mut proof);
    Some(proof)
}

fn path(m: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &leaves[..k], proof);
        proof.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Checks that `leaf` is at `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// PROOF(m, D[n]): the consistency proof that the tree of the first `old_size` leaves is a prefix
/// of the tree over `leaves` (RFC 9162 §2.1.4.1); `None` unless `0 < old_size ≤ n`.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Option<Vec<Hash>> {
    if old_size == 0 || old_size > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    subproof(old_size, leaves, true, &mut proof);
    Some(proof)
}

fn subproof(m: usize, leaves: &[Hash], whole: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], whole, proof);
        proof.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2). Equal sizes need an empty proof
/// and equal roots; every tree extends the empty one.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f_n, mut s_n) = (old_size - 1, new_size - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && f_r == *old_root && s_r == *new_root
}

/// The right edge of a growing tree: the roots of its perfect subtrees, largest first. Appending
/// a leaf costs O(log n) hashes and so does the root, so a writer can sign checkpoints without
/// rehashing the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (height, root) of each perfect subtree, heights strictly decreasing.
    subtrees: Vec<(u32, Hash)>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// The frontier of a tree over `leaves`.
    pub fn from_leaves(leaves: &[Hash]) -> Frontier {
        let mut f = Frontier::new();
        for leaf in leaves {
            f.push(*leaf);
        }
        f
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The frontier of a tree of `size` leaves, from the roots of the perfect subtrees its size
    /// splits into (see [`crate::tiles`]): O(log n) subtree roots instead of every leaf.
    pub fn from_source<E>(
        size: u64,
        source: &mut (impl FnMut(u64, u32) -> Result<Hash, E> + ?Sized),
    ) -> Result<Frontier, E> {
        let mut subtrees = Vec::new();
        let mut start = 0u64;
        for height in (0..u64::BITS).rev() {
            if size & (1 << height) != 0 {
                subtrees.push((height, source(start, height)?));
                start += 1 << height;
            }
        }
        Ok(Frontier { size, subtrees })
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.push_reporting(leaf, &mut |_| {});
    }

    /// Appends one leaf hash, and hands `completed` each perfect subtree this leaf completes
    /// at a level that is a multiple of [`crate::tiles::TILE_HEIGHT`]: the interior nodes a
    /// store keeps so that proofs need not rehash the log.
    pub fn push_reporting(&mut self, leaf: Hash, completed: &mut impl FnMut(crate::tiles::Node)) {
        let mut node = (0u32, leaf);
        let size = self.size + 1;
        while let Some(&(height, left)) = self.subtrees.last() {
            if height != node.0 {
                break;
            }
            self.subtrees.pop();
            node = (height + 1, node_hash(&left, &node.1));
            if node.0.is_multiple_of(crate::tiles::TILE_HEIGHT) {
                completed(crate::tiles::Node {
                    level: node.0,
                    index: (size >> node.0) - 1,
                    hash: node.1,
                });
            }
        }
        self.subtrees.push(node);
        self.size = size;
    }

    /// The root of the tree so far (the RFC 6962 root: the perfect subtrees folded from the
    /// right).
    pub fn root(&self) -> Hash {
        let mut nodes = self.subtrees.iter().rev();
        let Some(&(_, mut root)) = nodes.next() else {
            return empty_root();
        };
        for (_, left) in nodes {
            root = node_hash(left, &root);
        }
        root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(hex: &str) -> Hash {
        hex.parse().unwrap()
    }

    /// The RFC 6962 test inputs used by the Certificate Transparency implementations.
    fn reference_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|x| leaf_hash(&hex::decode(x).unwrap()))
        .collect()
    }

    /// Their published roots, for sizes 0 to 8.
    const REFERENCE_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn the_frontier_root_equals_the_tree_root_at_every_size() {
        let all = leaves(300);
        let mut f = Frontier::new();
        assert_eq!(f.root(), empty_root());
        for n in 1..=300 {
            f.push(all[n - 1]);
            assert_eq!(
                (f.size(), f.root()),
                (n as u64, root(&all[..n])),
                "size {n}"
            );
        }
        assert_eq!(Frontier::from_leaves(&all[..77]).root(), root(&all[..77]));
    }

    #[test]
    fn roots_match_the_published_rfc_6962_vectors() {
        let leaves = reference_leaves();
        for (size, expected) in REFERENCE_ROOTS.iter().enumerate() {
            assert_eq!(root(&leaves[..size]), h(expected), "size {size}");
        }
    }

    #[test]
    fn inclusion_proofs_match_the_published_vectors() {
        let leaves = reference_leaves();
        let cases = [
            (
                0,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                vec![
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (index, expected) in cases {
            let expected: Vec<Hash> = expected.into_iter().map(h).collect();
            assert_eq!(
                inclusion_proof(&leaves, index).unwrap(),
                expected,
                "leaf {index}"
            );
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    fn flipped(proof: &[Hash], element: usize, bit: usize) -> Vec<Hash> {
        let mut p = proof.to_vec();
        p[element].0[bit / 8] ^= 1 << (bit % 8);
        p
    }

    #[test]
    fn every_inclusion_proof_verifies_and_any_flipped_bit_fails() {
        let all = leaves(65);
        for n in 1..=64usize {
            let tree = &all[..n];
            let r = root(tree);
            for index in 0..n {
                let proof = inclusion_proof(tree, index).unwrap();
                let (i, s) = (index as u64, n as u64);
                assert!(
                    verify_inclusion(&tree[index], i, s, &proof, &r),
                    "{index} of {n}"
                );
                for element in 0..proof.len() {
                    for bit in [0, 77, 255] {
                        let bad = flipped(&proof, element, bit);
                        assert!(!verify_inclusion(&tree[index], i, s, &bad, &r));
                    }
                }
                assert!(!verify_inclusion(&tree[(index + 1) % n], i, s, &proof, &r) || n == 1);
                // A proof only means something for an authenticated (size, root) pair: against
                // the real root of the next size, it must fail.
                let next_root = root(&all[..n + 1]);
                assert!(!verify_inclusion(
                    &tree[index],
                    i,
                    s + 1,
                    &proof,
                    &next_root
                ));
                if n > 1 {
                    assert!(!verify_inclusion(&tree[index], (i + 1) % s, s, &proof, &r));
                }
            }
            assert_eq!(inclusion_proof(tree, n), None);
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_any_flipped_bit_fails() {
        let all = leaves(64);
        for n in 1..=64usize {
            let new_root = root(&all[..n]);
            for m in 1..=n {
                let old_root = root(&all[..m]);
                let proof = consistency_proof(&all[..n], m).unwrap();
                let (m64, n64) = (m as u64, n as u64);
                assert!(
                    verify_consistency(m64, n64, &proof, &old_root, &new_root),
                    "{m} -> {n}"
                );
                for element in 0..proof.len() {
                    let bad = flipped(&proof, element, 13);
                    assert!(
                        !verify_consistency(m64, n64, &bad, &old_root, &new_root),
                        "{m} -> {n}"
                    );
                }
                if m < n {
                    // A different old tree (one changed leaf) is not extended by the new one.
                    let mut forked = all[..m].to_vec();
                    forked[m - 1] = leaf_hash(b"forged");
                    assert!(!verify_consistency(
                        m64,
                        n64,
                        &proof,
                        &root(&forked),
                        &new_root
                    ));
                }
            }
        }
        assert!(verify_consistency(
            0,
            5,
            &[],
            &empty_root(),
            &root(&all[..5])
        ));
        assert!(!verify_consistency(
            5,
            4,
            &[],
            &root(&all[..5]),
            &root(&all[..4])
        ));
        assert_eq!(consistency_proof(&all[..4], 0), None);
        assert_eq!(consistency_proof(&all[..4], 5), None);
    }
}
