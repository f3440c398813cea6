use attribution::*;
use primitives::rows::RowId;
use primitives::{Address, B256};
use std::time::Instant;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn main() {
    let n: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(10_000_000);
    let shard: usize = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(0);
    let v = 50_000u32;
    let mut cdf = Vec::with_capacity(v as usize);
    let mut acc = 0.0;
    for k in 1..=v {
        acc += 1.0 / k as f64;
        cdf.push(acc);
    }
    let total = acc;
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut rows = Vec::new();
    let mut have = 0;
    let t = Instant::now();
    while have < n {
        let len = 50 + (rng.next() % 451) as usize;
        let len = len.min(n - have);
        let toks: Vec<u32> = (0..len)
            .map(|_| {
                let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
                cdf.partition_point(|&c| c < u) as u32
            })
            .collect();
        have += len;
        rows.push(IndexRow {
            id: RowId { contribution: rows.len() as u64 / 10, index: rows.len() as u32 % 10 },
            contributor: Address::ZERO,
            tombstoned: false,
            tokens: toks,
        });
    }
    eprintln!("gen {:?}", t.elapsed());
    let key = IndexKey { tokenizer: B256::ZERO, datanet: 1, version: 1 };
    let path = std::path::Path::new("/tmp/probe.idx");
    let t = Instant::now();
    let ix = SpanIndex::build(key, &rows, v, shard, path, &mut |d, tot| eprint!("\r{d}/{tot}   ")).unwrap();
    let el = t.elapsed().as_secs_f64();
    eprintln!("\nbuild {el:.2}s = {:.2} M tok/s sizes {:?}", n as f64 / el / 1e6, ix.sizes());
    // response: copies of a doc chunk and random
    let mut resp = Vec::new();
    for k in 0..5 {
        let r = &rows[(k * 977) % rows.len()].tokens;
        resp.extend_from_slice(&r[..r.len().min(40)]);
        for _ in 0..60 {
            resp.push((rng.next() % 50000) as u32);
        }
    }
    resp.truncate(500);
    let ws: Vec<bool> = resp.iter().map(|t| t % 5 != 0).collect();
    let p = TraceParams { max_frequency: 1_000_000, ..Default::default() };
    let mut times = vec![];
    for _ in 0..50 {
        let t = Instant::now();
        let tr = trace(&ix, &resp, &ws, &p).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if times.len() == 1 {
            eprintln!("spans {} credits {:?}", tr.spans.len(), tr.credits);
        }
    }
    times.sort_by(f64::total_cmp);
    eprintln!("trace p50 {:.2} ms p99 {:.2} ms", times[25], times[49]);
    if std::env::var("VERIFY").is_ok() {
        let t = Instant::now();
        ix.verify().unwrap();
        eprintln!("verify {:?}", t.elapsed());
    }
}
