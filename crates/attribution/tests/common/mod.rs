//! Helpers shared by the integration tests: a seeded generator, row builders and
//! naive reference implementations (a plain scan over the rows).
#![allow(dead_code)]

use attribution::{IndexKey, IndexRow, RowRef, SpanIndex};
use primitives::rows::RowId;
use primitives::{Address, B256};

pub fn key(version: u64) -> IndexKey {
    IndexKey { tokenizer: B256::repeat_byte(0x11), datanet: 7, version }
}

/// xorshift64*, seeded.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The contributor of contribution `c` in these tests.
pub fn contributor(c: u64) -> Address {
    let mut a = [0u8; 20];
    a[12..].copy_from_slice(&c.to_be_bytes());
    a[0] = 0xC0;
    Address::from(a)
}

pub fn row(c: u64, i: u32, tokens: Vec<u32>) -> IndexRow {
    IndexRow { id: RowId { contribution: c, index: i }, contributor: contributor(c), tombstoned: false, tokens }
}

/// `n` rows of random tokens below `vocab`, lengths in `lens`, three rows per contribution.
pub fn random_rows(rng: &mut Rng, n: usize, vocab: u32, lens: std::ops::Range<usize>) -> Vec<IndexRow> {
    (0..n)
        .map(|k| {
            let len = lens.start + rng.below((lens.end - lens.start).max(1) as u64) as usize;
            let toks = (0..len).map(|_| rng.below(vocab as u64) as u32).collect();
            row(k as u64 / 3 + 1, (k % 3) as u32, toks)
        })
        .collect()
}

pub fn build(rows: &[IndexRow], vocab: u32, shard: usize, dir: &std::path::Path, name: &str) -> SpanIndex {
    SpanIndex::build(key(1), rows, vocab, shard, &dir.join(name), &mut |_, _| {}).unwrap()
}

/// Slot positions of every occurrence of q (rows laid out with one separator each).
pub fn naive_positions(rows: &[IndexRow], q: &[u32]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for r in rows {
        if !q.is_empty() && r.tokens.len() >= q.len() {
            for o in 0..=r.tokens.len() - q.len() {
                if r.tokens[o..o + q.len()] == *q {
                    out.push(start + o as u64);
                }
            }
        }
        start += r.tokens.len() as u64 + 1;
    }
    out
}

pub fn occurs(r: &IndexRow, q: &[u32]) -> bool {
    !q.is_empty() && r.tokens.windows(q.len()).any(|w| w == q)
}

/// The first `max` rows not tombstoned that contain q.
pub fn naive_rows(rows: &[IndexRow], q: &[u32], max: usize) -> Vec<RowRef> {
    rows.iter()
        .filter(|r| !r.tombstoned && occurs(r, q))
        .take(max)
        .map(|r| RowRef { id: r.id, contributor: r.contributor })
        .collect()
}

/// (start, end, count) of the maximal spans, by the definition in trace.rs, by brute force.
pub fn naive_maximal(
    rows: &[IndexRow],
    resp: &[u32],
    ws: &[bool],
    min_len: usize,
    max_freq: u64,
) -> Vec<(u32, u32, u64)> {
    let l = resp.len();
    let mut out = Vec::new();
    let mut last_end = 0;
    for i in 0..l {
        if !ws[i] {
            continue;
        }
        let mut len = 0;
        while i + len < l && rows.iter().any(|r| occurs(r, &resp[i..i + len + 1])) {
            len += 1;
        }
        let mut e = i + len;
        while e > i && e < l && !ws[e] {
            e -= 1;
        }
        if e - i < min_len {
            continue;
        }
        let q = &resp[i..e];
        let count = naive_positions(rows, q).len() as u64;
        if count > max_freq || !rows.iter().any(|r| !r.tombstoned && occurs(r, q)) {
            continue;
        }
        if e > last_end {
            last_end = e;
            out.push((i as u32, e as u32, count));
        }
    }
    out
}
