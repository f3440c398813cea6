//! Binary Merkle trees over blake3, used for rows roots and other content lists.
//!
//! Rules (fixed; changing them changes every on-chain root):
//! - the leaves are 32-byte hashes given by the caller (for rows: [`crate::rows::row_leaf`]);
//! - an inner node is `blake3(0x00 ‖ left ‖ right)`; no leaf preimage starts with
//!   0x00 followed by exactly 64 bytes of hashes by construction of the row encoding,
//!   and leaves are hashes anyway, so inner nodes and leaves cannot be confused;
//! - no padding: at a level with an odd number of nodes, the last node is carried up
//!   unchanged (no duplication, so no CVE-2012-2459-style ambiguity);
//! - the root of one leaf is the leaf; the root of no leaves is [`EMPTY_ROOT`] (32 zero bytes).

use alloy_primitives::B256;

/// Root of an empty list.
pub const EMPTY_ROOT: B256 = B256::ZERO;

/// Hash of an inner node.
pub fn node_hash(left: &B256, right: &B256) -> B256 {
    let mut h = blake3::Hasher::new();
    h.update(&[0u8]);
    h.update(left.as_slice());
    h.update(right.as_slice());
    B256::from(*h.finalize().as_bytes())
}

/// Merkle root of `leaves` in order.
pub fn root(leaves: &[B256]) -> B256 {
    if leaves.is_empty() {
        return EMPTY_ROOT;
    }
    let mut level: Vec<B256> = leaves.to_vec();
    while level.len() > 1 {
        level = level.chunks(2).map(|c| if c.len() == 2 { node_hash(&c[0], &c[1]) } else { c[0] }).collect();
    }
    level[0]
}

/// A path from a leaf to the root: the sibling at each level where one exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleProof {
    pub index: u64,
    pub leaf_count: u64,
    pub siblings: Vec<B256>,
}

/// The proof of leaf `index`, or `None` if out of range.
pub fn prove(leaves: &[B256], index: usize) -> Option<MerkleProof> {
    if index >= leaves.len() {
        return None;
    }
    let mut siblings = Vec::new();
    let mut level: Vec<B256> = leaves.to_vec();
    let mut i = index;
    while level.len() > 1 {
        let sib = i ^ 1;
        if sib < level.len() {
            siblings.push(level[sib]);
        }
        level = level.chunks(2).map(|c| if c.len() == 2 { node_hash(&c[0], &c[1]) } else { c[0] }).collect();
        i /= 2;
    }
    Some(MerkleProof { index: index as u64, leaf_count: leaves.len() as u64, siblings })
}

impl MerkleProof {
    /// The root that `leaf` at this proof's position implies, or `None` if the proof's shape is wrong.
    pub fn root_for(&self, leaf: &B256) -> Option<B256> {
        if self.index >= self.leaf_count {
            return None;
        }
        let mut acc = *leaf;
        let mut i = self.index;
        let mut n = self.leaf_count;
        let mut sibs = self.siblings.iter();
        while n > 1 {
            let sib = i ^ 1;
            if sib < n {
                let s = sibs.next()?;
                acc = if i.is_multiple_of(2) { node_hash(&acc, s) } else { node_hash(s, &acc) };
            }
            i /= 2;
            n = n.div_ceil(2);
        }
        if sibs.next().is_some() {
            return None;
        }
        Some(acc)
    }

    pub fn verify(&self, leaf: &B256, root: &B256) -> bool {
        self.root_for(leaf).as_ref() == Some(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::content_hash;
    use proptest::prelude::*;

    #[test]
    fn small_trees() {
        let l: Vec<B256> = (0u8..5).map(|i| content_hash(&[i])).collect();
        assert_eq!(root(&[]), EMPTY_ROOT);
        assert_eq!(root(&l[..1]), l[0]);
        assert_eq!(root(&l[..2]), node_hash(&l[0], &l[1]));
        assert_eq!(root(&l[..3]), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        assert_eq!(root(&l), node_hash(&node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3])), &l[4]));
    }

    proptest! {
        #[test]
        fn every_proof_verifies_and_wrong_leaf_fails(n in 1usize..70, seed in any::<u8>()) {
            let l: Vec<B256> = (0..n).map(|i| content_hash(&[seed, i as u8, (i >> 8) as u8])).collect();
            let r = root(&l);
            for i in 0..n {
                let p = prove(&l, i).unwrap();
                prop_assert!(p.verify(&l[i], &r));
                prop_assert!(!p.verify(&content_hash(b"other"), &r));
            }
        }
    }
}
