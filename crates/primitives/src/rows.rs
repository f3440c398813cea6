//! Datanet rows, row ids, rows roots and version roots.
//!
//! - A **row** is `{text}` or `{prompt, completion}`, UTF-8, already normalised
//!   by ingest (line endings `\n`, no byte-order mark, no trailing whitespace).
//! - Its **canonical bytes** are a tag byte (`0x01` text, `0x02` prompt/completion)
//!   followed by each field as a u32 big-endian length and its UTF-8 bytes.
//! - A **row leaf** is `blake3(canonical bytes)`; a tombstoned row's leaf is
//!   [`TOMBSTONE_LEAF`] (32 zero bytes).
//! - A **row id** is (contribution id, index in the contribution), never the content hash,
//!   so two contributors' identical rows stay distinct rows.
//! - A contribution's **rows root** is [`crate::merkle::root`] over its row leaves in index order.
//! - A **version root** is the root of a sparse Merkle map of depth 64 keyed by
//!   contribution id (big-endian bits, most significant first) whose leaves are
//!   `blake3(0x02 ‖ id u64 BE ‖ rows root ‖ row count u64 BE)` for the approved
//!   contributions; an empty subtree hashes to [`EMPTY_ROOT`], and an inner node
//!   with two empty children is empty too, so the map's root depends only on its entries.
//!   The runtime updates it from what an attestation carries, without seeing rows.

use std::collections::BTreeMap;

use alloy_primitives::B256;

use crate::merkle::{self, EMPTY_ROOT, node_hash};

/// A Datanet row.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Row {
    Text { text: String },
    PromptCompletion { prompt: String, completion: String },
}

/// Where a row lives: its contribution and its index there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowId {
    pub contribution: u64,
    pub index: u32,
}

/// The leaf that replaces a tombstoned row's leaf.
pub const TOMBSTONE_LEAF: B256 = B256::ZERO;

/// Why canonical row bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("row encoding: {0}")]
    Encoding(&'static str),
}

impl Row {
    pub fn canonical_bytes(&self) -> Vec<u8> {
        fn field(out: &mut Vec<u8>, s: &str) {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        let mut out = Vec::new();
        match self {
            Row::Text { text } => {
                out.push(0x01);
                field(&mut out, text);
            }
            Row::PromptCompletion { prompt, completion } => {
                out.push(0x02);
                field(&mut out, prompt);
                field(&mut out, completion);
            }
        }
        out
    }

    pub fn from_canonical_bytes(b: &[u8]) -> Result<Row, RowError> {
        fn field(b: &mut &[u8]) -> Result<String, RowError> {
            if b.len() < 4 {
                return Err(RowError::Encoding("truncated length"));
            }
            let n = u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
            if b.len() < 4 + n {
                return Err(RowError::Encoding("truncated field"));
            }
            let s = std::str::from_utf8(&b[4..4 + n]).map_err(|_| RowError::Encoding("invalid UTF-8"))?;
            *b = &b[4 + n..];
            Ok(s.to_string())
        }
        let (&tag, mut rest) = b.split_first().ok_or(RowError::Encoding("empty"))?;
        let row = match tag {
            0x01 => Row::Text { text: field(&mut rest)? },
            0x02 => {
                let prompt = field(&mut rest)?;
                let completion = field(&mut rest)?;
                Row::PromptCompletion { prompt, completion }
            }
            _ => return Err(RowError::Encoding("unknown tag")),
        };
        if !rest.is_empty() {
            return Err(RowError::Encoding("trailing bytes"));
        }
        Ok(row)
    }

    pub fn leaf(&self) -> B256 {
        crate::hash::content_hash(&self.canonical_bytes())
    }
}

/// The rows root of a contribution from its row leaves in index order.
pub fn rows_root(leaves: &[B256]) -> B256 {
    merkle::root(leaves)
}

/// One approved contribution as the version map sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionEntry {
    pub rows_root: B256,
    pub row_count: u64,
}

/// The leaf of contribution `id` in a version map.
pub fn version_leaf(id: u64, e: &VersionEntry) -> B256 {
    let mut h = blake3::Hasher::new();
    h.update(&[0x02]);
    h.update(&id.to_be_bytes());
    h.update(e.rows_root.as_slice());
    h.update(&e.row_count.to_be_bytes());
    B256::from(*h.finalize().as_bytes())
}

fn map_node(l: &B256, r: &B256) -> B256 {
    if *l == EMPTY_ROOT && *r == EMPTY_ROOT { EMPTY_ROOT } else { node_hash(l, r) }
}

/// The version root over approved contributions keyed by contribution id.
pub fn version_root(entries: &BTreeMap<u64, VersionEntry>) -> B256 {
    let v: Vec<(u64, B256)> = entries.iter().map(|(id, e)| (*id, version_leaf(*id, e))).collect();
    subtree(&v, 0)
}

fn subtree(entries: &[(u64, B256)], depth: u32) -> B256 {
    if entries.is_empty() {
        return EMPTY_ROOT;
    }
    if depth == 64 {
        return entries[0].1;
    }
    let bit = 63 - depth;
    let split = entries.partition_point(|(id, _)| (id >> bit) & 1 == 0);
    map_node(&subtree(&entries[..split], depth + 1), &subtree(&entries[split..], depth + 1))
}

/// The 64 siblings (leaf level first) of `id` in the version map: with them the
/// runtime recomputes the root after changing that one leaf.
pub fn version_path(entries: &BTreeMap<u64, VersionEntry>, id: u64) -> Vec<B256> {
    let v: Vec<(u64, B256)> = entries.iter().map(|(i, e)| (*i, version_leaf(*i, e))).collect();
    let mut sibs = Vec::with_capacity(64);
    let mut slice: &[(u64, B256)] = &v;
    let mut top_down = Vec::with_capacity(64);
    for depth in 0..64u32 {
        let bit = 63 - depth;
        let split = slice.partition_point(|(i, _)| (i >> bit) & 1 == 0);
        let (left, right) = slice.split_at(split);
        if (id >> bit) & 1 == 0 {
            top_down.push(subtree(right, depth + 1));
            slice = left;
        } else {
            top_down.push(subtree(left, depth + 1));
            slice = right;
        }
    }
    sibs.extend(top_down.into_iter().rev());
    sibs
}

/// Recompute a version root from a leaf (or [`EMPTY_ROOT`] to remove it) and its path.
pub fn version_root_from_path(id: u64, leaf: B256, path: &[B256]) -> Option<B256> {
    if path.len() != 64 {
        return None;
    }
    let mut acc = leaf;
    for (level, sib) in path.iter().enumerate() {
        acc = if (id >> level) & 1 == 0 { map_node(&acc, sib) } else { map_node(sib, &acc) };
    }
    Some(acc)
}

/// One row of a Datanet version as its readers see it: the row, its id and
/// who contributed it (what `datanets::DatanetReader` yields, after checking
/// the rows against the chain, and what ModelFactory trains on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionRow {
    pub id: RowId,
    pub contributor: alloy_primitives::Address,
    pub row: Row,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_round_trip_and_distinct_kinds() {
        let a = Row::Text { text: "héllo".into() };
        let b = Row::PromptCompletion { prompt: "q".into(), completion: "a".into() };
        for r in [&a, &b] {
            assert_eq!(&Row::from_canonical_bytes(&r.canonical_bytes()).unwrap(), r);
        }
        assert_ne!(a.leaf(), b.leaf());
        // Field boundaries are part of the encoding.
        let c = Row::PromptCompletion { prompt: "qa".into(), completion: "".into() };
        let d = Row::PromptCompletion { prompt: "q".into(), completion: "a".into() };
        assert_ne!(c.leaf(), d.leaf());
        assert!(Row::from_canonical_bytes(&[0x01, 0, 0, 0, 9, b'x']).is_err());
        assert!(Row::from_canonical_bytes(&[0x07]).is_err());
    }

    proptest! {
        #[test]
        fn version_path_recomputes_root(ids in proptest::collection::btree_set(any::<u64>(), 1..12), n in 1u64..100) {
            let entries: BTreeMap<u64, VersionEntry> = ids.iter().map(|id| (*id, VersionEntry {
                rows_root: crate::hash::content_hash(&id.to_le_bytes()), row_count: n + id % 7 })).collect();
            let root = version_root(&entries);
            for (id, e) in &entries {
                let path = version_path(&entries, *id);
                prop_assert_eq!(version_root_from_path(*id, version_leaf(*id, e), &path), Some(root));
                // Removing the entry through its path gives the root of the map without it.
                let mut without = entries.clone();
                without.remove(id);
                prop_assert_eq!(version_root_from_path(*id, EMPTY_ROOT, &path), Some(version_root(&without)));
            }
        }
    }
}
