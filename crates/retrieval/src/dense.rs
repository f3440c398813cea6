//! Exact dense retrieval over caller-given embeddings, and reciprocal rank fusion.

use std::collections::BTreeMap;

use crate::{RetrievalError, check_k, check_order};

/// Reciprocal rank fusion constant (Cormack et al. 2009): a row at rank r
/// (from 1) in a list adds 1 / (RRF_K + r).
pub const RRF_K: f64 = 60.0;

/// One dense hit.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseHit {
    /// Contribution id.
    pub contribution: u64,
    /// Row index within the contribution.
    pub row: u32,
    /// Cosine similarity with the query.
    pub score: f32,
}

/// Flat (exact) cosine search: every row's unit vector in one array, each query
/// a dot product with all of them, summed in index order so results are
/// bit-for-bit reproducible. No approximate-nearest-neighbour structure: at
/// 10^5 rows of 576 floats a scan is tens of milliseconds.
#[derive(Debug, Clone)]
pub struct DenseIndex {
    dim: usize,
    keys: Vec<(u64, u32)>,
    vectors: Vec<f32>,
}

fn unit(v: &[f32], dim: usize) -> Result<Vec<f32>, RetrievalError> {
    if v.len() != dim {
        return Err(RetrievalError::BadVector(format!("{} values, the index has dimension {dim}", v.len())));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(RetrievalError::BadVector("a value is not finite".into()));
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(RetrievalError::BadVector("zero or overflowing norm".into()));
    }
    Ok(v.iter().map(|x| x / norm).collect())
}

impl DenseIndex {
    /// An empty index of vectors with `dim` values.
    pub fn new(dim: usize) -> Result<DenseIndex, RetrievalError> {
        if dim == 0 {
            return Err(RetrievalError::BadVector("dimension 0".into()));
        }
        Ok(DenseIndex { dim, keys: Vec::new(), vectors: Vec::new() })
    }

    /// Add a row's embedding (normalised here); rows in strictly increasing (contribution, row) order.
    pub fn push(&mut self, contribution: u64, row: u32, vector: &[f32]) -> Result<(), RetrievalError> {
        check_order(self.keys.last().copied(), (contribution, row))?;
        let v = unit(vector, self.dim)?;
        self.keys.push((contribution, row));
        self.vectors.extend_from_slice(&v);
        Ok(())
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// How many rows.
    pub fn n_docs(&self) -> u64 {
        self.keys.len() as u64
    }

    /// Top `k` (1..=[`MAX_K`](crate::MAX_K)) rows by cosine similarity; ties by (contribution, row).
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<DenseHit>, RetrievalError> {
        check_k(k)?;
        let q = unit(query, self.dim)?;
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
        for (i, v) in self.vectors.chunks_exact(self.dim).enumerate() {
            let s: f32 = v.iter().zip(&q).map(|(a, b)| a * b).sum();
            // Rows come in key order: a later row only displaces a strictly lower score.
            if best.len() == k && s <= best[k - 1].0 {
                continue;
            }
            let at = best.partition_point(|b| b.0 >= s);
            best.insert(at, (s, i));
            best.truncate(k);
        }
        Ok(best
            .into_iter()
            .map(|(score, i)| DenseHit { contribution: self.keys[i].0, row: self.keys[i].1, score })
            .collect())
    }
}

/// A fused hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    /// Contribution id.
    pub contribution: u64,
    /// Row index within the contribution.
    pub row: u32,
    /// Sum of 1 / (RRF_K + rank) over the lists the row is in.
    pub score: f64,
}

/// Reciprocal rank fusion of ranked lists of (contribution, row) (best first,
/// e.g. BM25's and dense's), top `k`; ties by (contribution, row) ascending. A key
/// repeated within one list counts at its first rank only.
pub fn fuse(lists: &[&[(u64, u32)]], k: usize) -> Result<Vec<Fused>, RetrievalError> {
    check_k(k)?;
    let mut scores: BTreeMap<(u64, u32), f64> = BTreeMap::new();
    for list in lists {
        let mut seen = std::collections::HashSet::new();
        for (rank, key) in list.iter().enumerate() {
            if seen.insert(*key) {
                *scores.entry(*key).or_default() += 1.0 / (RRF_K + rank as f64 + 1.0);
            }
        }
    }
    let mut out: Vec<Fused> =
        scores.into_iter().map(|((contribution, row), score)| Fused { contribution, row, score }).collect();
    // Stable sort over key order: equal scores stay by key.
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out.truncate(k);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_first_ties_by_key_and_bad_vectors_refused() {
        let mut index = DenseIndex::new(2).unwrap();
        index.push(1, 0, &[1.0, 0.0]).unwrap();
        index.push(1, 1, &[0.0, 3.0]).unwrap();
        index.push(2, 0, &[2.0, 0.0]).unwrap(); // same direction as (1, 0)
        index.push(3, 0, &[1.0, 1.0]).unwrap();
        let hits = index.search(&[5.0, 0.0], 3).unwrap();
        let keys: Vec<(u64, u32)> = hits.iter().map(|h| (h.contribution, h.row)).collect();
        assert_eq!(keys, vec![(1, 0), (2, 0), (3, 0)]);
        assert_eq!(hits[0].score, hits[1].score);
        assert!((hits[2].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!(matches!(index.push(3, 0, &[1.0, 0.0]), Err(RetrievalError::Order { .. })));
        assert!(matches!(index.push(4, 0, &[1.0]), Err(RetrievalError::BadVector(_))));
        assert!(matches!(index.push(4, 0, &[0.0, 0.0]), Err(RetrievalError::BadVector(_))));
        assert!(matches!(index.search(&[f32::NAN, 1.0], 1), Err(RetrievalError::BadVector(_))));
        assert!(matches!(index.search(&[1.0, 0.0], 0), Err(RetrievalError::KOutOfRange { .. })));
        assert!(DenseIndex::new(0).is_err());
    }

    #[test]
    fn fusion_rewards_agreement_and_breaks_ties_by_key() {
        let bm25 = [(5, 0), (1, 0), (2, 0)];
        let dense = [(1, 0), (9, 0), (5, 0)];
        let fused = fuse(&[&bm25, &dense], 4).unwrap();
        let keys: Vec<(u64, u32)> = fused.iter().map(|f| (f.contribution, f.row)).collect();
        // (1,0): 1/62 + 1/61 > (5,0): 1/61 + 1/63; then (9,0) and (2,0) at 1/62 and 1/63.
        assert_eq!(keys, vec![(1, 0), (5, 0), (9, 0), (2, 0)]);
        assert_eq!(fused[0].score, 1.0 / 62.0 + 1.0 / 61.0);
        // Equal scores: smaller key first, whichever list it came from.
        let tie = fuse(&[&[(7, 0)], &[(3, 1)]], 2).unwrap();
        assert_eq!((tie[0].contribution, tie[1].contribution), (3, 7));
        // A repeat within a list counts once.
        assert_eq!(fuse(&[&[(1, 0), (1, 0)]], 1).unwrap()[0].score, 1.0 / 61.0);
        assert!(fuse(&[], 65).is_err());
    }
}
