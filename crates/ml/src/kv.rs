//! The KV cache in fixed-size blocks, and attention over it.
//!
//! Layout: per layer, one pool for keys and one for values, each
//! `[block][slot][kv_head][head_dim]` of f32. A sequence owns a block table (the
//! blocks holding its positions in order) and a length; blocks are allocated as
//! it grows and returned when it is freed, so sequences of any length share one
//! pool without fragmentation (vLLM's paged attention, on the CPU).

use std::collections::HashMap;

use crate::MlError;
use crate::config::ModelConfig;

/// A sequence's id in a cache, chosen by the caller.
pub type SeqId = u64;

/// The blocks holding a sequence's positions, in order, and how many positions are filled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockTable {
    pub blocks: Vec<u32>,
    pub len: usize,
}

struct LayerPool {
    k: Vec<f32>,
    v: Vec<f32>,
}

/// A paged KV cache for one model.
pub struct KvCache {
    block_size: usize,
    n_blocks: usize,
    kv_heads: usize,
    head_dim: usize,
    layers: Vec<LayerPool>,
    free: Vec<u32>,
    tables: HashMap<SeqId, BlockTable>,
}

impl KvCache {
    /// A pool of `n_blocks` blocks of `block_size` positions for every layer.
    pub fn new(cfg: &ModelConfig, block_size: usize, n_blocks: usize) -> KvCache {
        let block_size = block_size.max(1);
        let per_block = block_size * cfg.num_key_value_heads * cfg.head_dim;
        let layers = (0..cfg.num_hidden_layers)
            .map(|_| LayerPool { k: vec![0.0; per_block * n_blocks], v: vec![0.0; per_block * n_blocks] })
            .collect();
        KvCache {
            block_size,
            n_blocks,
            kv_heads: cfg.num_key_value_heads,
            head_dim: cfg.head_dim,
            layers,
            // Pop from the end: lowest block ids first.
            free: (0..n_blocks as u32).rev().collect(),
            tables: HashMap::new(),
        }
    }

    /// Enough blocks for `tokens` positions in all.
    pub fn for_tokens(cfg: &ModelConfig, tokens: usize, block_size: usize) -> KvCache {
        Self::new(cfg, block_size, tokens.div_ceil(block_size.max(1)))
    }

    pub fn block_size(&self) -> usize {
        self.block_size
    }

    pub fn total_blocks(&self) -> usize {
        self.n_blocks
    }

    pub fn free_blocks(&self) -> usize {
        self.free.len()
    }

    /// Bytes the pools occupy.
    pub fn byte_size(&self) -> usize {
        self.layers.len() * 2 * self.n_blocks * self.block_size * self.kv_heads * self.head_dim * 4
    }

    /// Blocks a sequence of `len` positions needs.
    pub fn blocks_for(&self, len: usize) -> usize {
        len.div_ceil(self.block_size)
    }

    pub fn contains(&self, id: SeqId) -> bool {
        self.tables.contains_key(&id)
    }

    /// Filled positions of a sequence (0 if unknown).
    pub fn len(&self, id: SeqId) -> usize {
        self.tables.get(&id).map(|t| t.len).unwrap_or(0)
    }

    pub fn table(&self, id: SeqId) -> Option<&BlockTable> {
        self.tables.get(&id)
    }

    /// Make room for `new_len` positions of `id` (creating the sequence if new).
    /// All or nothing: on `KvFull` the sequence is unchanged.
    pub fn reserve(&mut self, id: SeqId, new_len: usize) -> Result<(), MlError> {
        let have = self.tables.get(&id).map(|t| t.blocks.len()).unwrap_or(0);
        let need = self.blocks_for(new_len);
        if need > have && need - have > self.free.len() {
            return Err(MlError::KvFull { needed: need - have, free: self.free.len() });
        }
        let t = self.tables.entry(id).or_default();
        while t.blocks.len() < need {
            t.blocks.push(self.free.pop().expect("checked above"));
        }
        Ok(())
    }

    /// Drop positions from `len` on (e.g. after a rejected speculative step).
    pub fn truncate(&mut self, id: SeqId, len: usize) {
        if let Some(t) = self.tables.get_mut(&id) {
            t.len = t.len.min(len);
            let keep = t.len.div_ceil(self.block_size);
            while t.blocks.len() > keep {
                self.free.push(t.blocks.pop().expect("non-empty"));
            }
        }
    }

    /// Return a sequence's blocks to the pool.
    pub fn free_seq(&mut self, id: SeqId) {
        if let Some(t) = self.tables.remove(&id) {
            self.free.extend(t.blocks.into_iter().rev());
        }
    }

    fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Offset (in f32) of position `pos` of a table.
    fn offset(&self, t: &BlockTable, pos: usize) -> usize {
        let block = t.blocks[pos / self.block_size] as usize;
        (block * self.block_size + pos % self.block_size) * self.kv_dim()
    }

    /// Store keys and values `[n, kv_dim]` of positions `start..start+n` of `id`
    /// in `layer`; the space must be reserved. Sets the sequence's length after the last layer.
    pub(crate) fn write(&mut self, layer: usize, id: SeqId, start: usize, k: &[f32], v: &[f32]) -> Result<(), MlError> {
        let d = self.kv_dim();
        let n = k.len() / d;
        let t = self.tables.get(&id).ok_or(MlError::UnknownSequence(id))?.clone();
        if self.blocks_for(start + n) > t.blocks.len() {
            return Err(MlError::KvFull { needed: self.blocks_for(start + n) - t.blocks.len(), free: self.free.len() });
        }
        for i in 0..n {
            let off = self.offset(&t, start + i);
            let pool = &mut self.layers[layer];
            pool.k[off..off + d].copy_from_slice(&k[i * d..(i + 1) * d]);
            pool.v[off..off + d].copy_from_slice(&v[i * d..(i + 1) * d]);
        }
        Ok(())
    }

    pub(crate) fn set_len(&mut self, id: SeqId, len: usize) {
        if let Some(t) = self.tables.get_mut(&id) {
            t.len = len;
        }
    }
}

/// Where a sequence's queries sit in a step: rows `row..row+n` of the query
/// matrix are positions `start..start+n` of sequence `seq`.
#[derive(Debug, Clone, Copy)]
pub struct AttnSpan {
    pub seq: SeqId,
    pub row: usize,
    pub n: usize,
    pub start: usize,
}

/// Causal attention of queries `[rows, n_heads, head_dim]` over the cache of
/// `layer`: the query at position p attends to positions 0..=p of its own
/// sequence; grouped-query heads share key-value heads. Returns `[rows, n_heads * head_dim]`.
/// Each output row depends only on its own sequence, never on the rest of the batch.
pub fn paged_attention(
    q: &[f32],
    n_heads: usize,
    cache: &KvCache,
    layer: usize,
    spans: &[AttnSpan],
) -> Result<Vec<f32>, MlError> {
    let rows: usize = spans.iter().map(|s| s.n).sum();
    let mut out = vec![0.0f32; rows * n_heads * cache.head_dim];
    paged_attention_into(q, n_heads, cache, layer, spans, &mut out)?;
    Ok(out)
}

/// Below this many multiply-adds (scores and weighted values of every head) the
/// attention of a step runs on the calling thread. At 2^15 a batch-1 decode of
/// SmolLM2-135M (9 heads × 64, ~64 positions) went to the pool every layer and
/// attention took 3.0 ms a step, mostly waking the pool; on the calling thread
/// it takes 0.75 ms (`bench generate --profile`, 2 cores). The result is the
/// same either way: each (row, head) is computed alone.
const ATTN_PARALLEL_MIN: usize = 1 << 18;

/// [`paged_attention`] into `out` (`[rows, n_heads * head_dim]`, overwritten).
/// Scores and the weighted sum of values use the kernels' dot and axpy, each a
/// fixed order over one (row, head), so the result is batch-invariant.
pub(crate) fn paged_attention_into(
    q: &[f32],
    n_heads: usize,
    cache: &KvCache,
    layer: usize,
    spans: &[AttnSpan],
    out: &mut [f32],
) -> Result<(), MlError> {
    let hd = cache.head_dim;
    let groups = n_heads / cache.kv_heads;
    let rows: usize = spans.iter().map(|s| s.n).sum();
    if out.len() != rows * n_heads * hd || q.len() != out.len() {
        return Err(MlError::Config(format!(
            "attention: {} queries and {} outputs for {rows} rows of {n_heads} heads × {hd}",
            q.len(),
            out.len()
        )));
    }
    let scale = 1.0 / (hd as f32).sqrt();
    // Each (row, head) knows its position and where its sequence's positions
    // are: one list per span of every position's row offset in the pool,
    // walked block by block (no division per position).
    let mut row_info = Vec::with_capacity(rows);
    let mut offsets = Vec::with_capacity(spans.len());
    let mut work = 0usize;
    for (si, s) in spans.iter().enumerate() {
        let t = cache.tables.get(&s.seq).ok_or(MlError::UnknownSequence(s.seq))?;
        let upto = s.start + s.n;
        let mut at = Vec::with_capacity(upto);
        for &b in &t.blocks {
            let base = b as usize * cache.block_size;
            let take = (upto - at.len()).min(cache.block_size);
            at.extend((0..take).map(|j| (base + j) * cache.kv_dim()));
            if at.len() == upto {
                break;
            }
        }
        if at.len() < upto {
            return Err(MlError::Config(format!(
                "attention: sequence {} has no room for position {}",
                s.seq,
                upto - 1
            )));
        }
        offsets.push(at);
        for i in 0..s.n {
            row_info.push((s.row + i, s.start + i, si));
            work += (s.start + i + 1) * 2 * hd * n_heads;
        }
    }
    let pool = &cache.layers[layer];
    // One work item per (row, key-value head): the query heads that share
    // that key-value head run one after another on one thread, so that the
    // second and later read its keys and values from this core's cache, not
    // from memory. (Heads of a group are adjacent in a row: h = kvh · groups + g.)
    let one = |scores: &mut Vec<f32>, (idx, o): (usize, &mut [f32])| {
        let (r, kvh) = (idx / cache.kv_heads, idx % cache.kv_heads);
        let (row, pos, si) = row_info[r];
        for (g, o) in o.chunks_mut(hd).enumerate() {
            let h = kvh * groups + g;
            let qv = &q[(row * n_heads + h) * hd..(row * n_heads + h + 1) * hd];
            crate::kernels::attend(qv, &pool.k, &pool.v, &offsets[si][..=pos], kvh * hd, scale, scores, o);
        }
    };
    if work < ATTN_PARALLEL_MIN {
        let mut scores = Vec::new();
        out.chunks_mut(groups * hd).enumerate().for_each(|a| one(&mut scores, a));
    } else {
        crate::kernels::team::for_each_chunk_mut(out, groups * hd, Vec::new, |s, i, o| one(s, (i, o)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step above `ATTN_PARALLEL_MIN` (the pool) gives every row, bit for
    /// bit, what it gets alone in a step below it (the calling thread).
    #[test]
    fn pooled_and_inline_attention_agree_bit_for_bit() {
        let cfg = ModelConfig::from_hf_json(
            r#"{"architectures": ["LlamaForCausalLM"], "vocab_size": 16, "hidden_size": 256,
                "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                "num_key_value_heads": 2, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5}"#,
        )
        .unwrap();
        let (nh, hd, kvd) = (4, cfg.head_dim, 2 * cfg.head_dim);
        let mut cache = KvCache::new(&cfg, 16, 256);
        let lens = [300usize, 200, 150];
        let mut rng = crate::rng::Rng::new(3);
        let mut val = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.below(2001) as f32 / 1000.0 - 1.0).collect() };
        for (s, &len) in lens.iter().enumerate() {
            cache.reserve(s as SeqId, len).unwrap();
            let (k, v) = (val(len * kvd), val(len * kvd));
            cache.write(0, s as SeqId, 0, &k, &v).unwrap();
        }
        // Every sequence's last 4 positions as rows of one step.
        let spans: Vec<AttnSpan> = lens
            .iter()
            .enumerate()
            .map(|(s, &len)| AttnSpan { seq: s as SeqId, row: s * 4, n: 4, start: len - 4 })
            .collect();
        let q = val(12 * nh * hd);
        let work: usize = lens.iter().map(|&l| (l - 3..=l).sum::<usize>() * 2 * hd * nh).sum();
        assert!(work >= ATTN_PARALLEL_MIN, "the batch must take the pool");
        let all = paged_attention(&q, nh, &cache, 0, &spans).unwrap();
        let w = nh * hd;
        for (s, sp) in spans.iter().enumerate() {
            for i in 0..4 {
                let one = AttnSpan { row: 0, n: 1, start: sp.start + i, ..*sp };
                let (r0, r1) = ((s * 4 + i) * w, (s * 4 + i + 1) * w);
                assert!((sp.start + i + 1) * 2 * hd * nh < ATTN_PARALLEL_MIN, "one row stays inline");
                let alone = paged_attention(&q[r0..r1], nh, &cache, 0, &[one]).unwrap();
                assert!(
                    alone.iter().zip(&all[r0..r1]).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "sequence {s} row {i}"
                );
                // The same bits as the plain formula: per position, an offset
                // through the block table, a dot, then an axpy in position order.
                let t = &cache.tables[&sp.seq];
                for h in 0..nh {
                    let qv = &q[r0 + h * hd..r0 + (h + 1) * hd];
                    let kvh = h / (nh / cache.kv_heads);
                    let at = |p: usize| cache.offset(t, p) + kvh * hd;
                    let pool = &cache.layers[0];
                    let scale = 1.0 / (hd as f32).sqrt();
                    let sc: Vec<f32> = (0..=sp.start + i)
                        .map(|p| crate::kernels::dot(qv, &pool.k[at(p)..at(p) + hd]) * scale)
                        .collect();
                    let max = sc.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                    let mut e: Vec<f32> = sc.iter().map(|x| x - max).collect();
                    crate::kernels::exp_in_place(&mut e);
                    let inv = 1.0 / e.iter().fold(0.0f32, |a, &x| a + x);
                    let mut o = vec![0.0f32; hd];
                    for (p, w) in e.iter().enumerate() {
                        crate::kernels::axpy(w * inv, &pool.v[at(p)..at(p) + hd], &mut o);
                    }
                    let got = &alone[h * hd..(h + 1) * hd];
                    assert!(
                        o.iter().zip(got).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "sequence {s} row {i} head {h}"
                    );
                }
            }
        }
    }
}
