//! Exact BM25 by scanning every row: the reference [`Bm25Index`](crate::Bm25Index) is measured against.

use std::collections::HashMap;

use crate::{
    BM25_B, BM25_K1, Doc, Hit, MAX_QUERY_BYTES, MAX_QUERY_TERMS, RetrievalError, check_k, check_order, query_terms,
};

/// Every row's term counts in memory, scored in full for each query with the
/// textbook BM25 (Lucene's idf, exact document lengths where tantivy stores a
/// one-byte approximation). Slow by design: it is the reference, not a server.
#[derive(Debug, Default)]
pub struct Bm25Scan {
    vocab: HashMap<String, u32>,
    /// Rows holding each term.
    df: Vec<u32>,
    docs: Vec<ScanDoc>,
    total_len: u64,
}

#[derive(Debug)]
struct ScanDoc {
    key: (u64, u32),
    len: u32,
    /// (term id, count), by term id.
    tf: Vec<(u32, u32)>,
    text: String,
}

impl Bm25Scan {
    /// Take rows in strictly increasing (contribution, row) order.
    pub fn new(docs: impl IntoIterator<Item = Doc>) -> Result<Bm25Scan, RetrievalError> {
        let mut scan = Bm25Scan::default();
        for d in docs {
            check_order(scan.docs.last().map(|x| x.key), (d.contribution, d.row))?;
            let terms = query_terms(&d.text);
            let mut tf: HashMap<u32, u32> = HashMap::new();
            for t in &terms {
                let next = scan.vocab.len() as u32;
                let id = *scan.vocab.entry(t.clone()).or_insert(next);
                *tf.entry(id).or_default() += 1;
            }
            let mut tf: Vec<(u32, u32)> = tf.into_iter().collect();
            tf.sort_unstable();
            scan.df.resize(scan.vocab.len(), 0);
            for &(id, _) in &tf {
                scan.df[id as usize] += 1;
            }
            scan.total_len += terms.len() as u64;
            scan.docs.push(ScanDoc { key: (d.contribution, d.row), len: terms.len() as u32, tf, text: d.text });
        }
        Ok(scan)
    }

    /// How many rows.
    pub fn n_docs(&self) -> u64 {
        self.docs.len() as u64
    }

    /// Top `k` by exact BM25, same limits, terms and tie-break as [`Bm25Index::search`](crate::Bm25Index::search).
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<Hit>, RetrievalError> {
        check_k(k)?;
        if query.len() > MAX_QUERY_BYTES {
            return Err(RetrievalError::QueryTooLong { len: query.len() });
        }
        let n = self.docs.len() as f32;
        let mut weights: Vec<(u32, f32)> = Vec::new();
        for t in query_terms(query) {
            let Some(&id) = self.vocab.get(&t) else { continue };
            if weights.iter().any(|w| w.0 == id) || weights.len() == MAX_QUERY_TERMS {
                continue;
            }
            let df = self.df[id as usize] as f32;
            weights.push((id, (1.0 + (n - df + 0.5) / (df + 0.5)).ln()));
        }
        if weights.is_empty() {
            return Ok(Vec::new());
        }
        let avg = self.total_len as f32 / n;
        let mut scored: Vec<(f32, usize)> = Vec::new();
        for (i, d) in self.docs.iter().enumerate() {
            let norm = BM25_K1 * (1.0 - BM25_B + BM25_B * d.len as f32 / avg);
            let mut score = 0.0f32;
            for &(id, idf) in &weights {
                if let Ok(at) = d.tf.binary_search_by_key(&id, |x| x.0) {
                    let tf = d.tf[at].1 as f32;
                    score += idf * tf * (BM25_K1 + 1.0) / (tf + norm);
                }
            }
            if score > 0.0 {
                scored.push((score, i));
            }
        }
        // Rows are in key order, so index order breaks ties by key.
        scored.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        Ok(scored
            .into_iter()
            .take(k)
            .map(|(score, i)| {
                let d = &self.docs[i];
                Hit { contribution: d.key.0, row: d.key.1, score, text: d.text.clone() }
            })
            .collect())
    }
}
