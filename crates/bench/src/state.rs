//! `bench state`: the cost of committing one block's state writes as the state
//! grows, our [`storage::Store`] (Jellyfish Merkle tree on redb: prepare computes
//! the new root, commit writes nodes, values, the block record and fsyncs) vs the
//! same writes to a plain redb table keyed by `sha256(key)` (one write
//! transaction per block, `Durability::Immediate`), in the same process, on the
//! same disk, alternating block by block.
//!
//! Per size: populate N accounts (24-byte values under `bank/a/` ++ a 20-byte
//! address) in chunks of `--chunk` writes per version in a fresh directory, then
//! time `--blocks` blocks of `--writes` random updates (a seeded xorshift picks
//! the accounts and values; both sides get the very same writes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use primitives::block::Header;
use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use serde_json::json;
use storage::{BlockRecord, Store, StoreOptions, key_hash};

use crate::machine::{Machine, today};
use crate::stats::{count_list, fmt_ratio, median, ratio};

/// sha256(key) → value: the plain-redb side.
const PLAIN: TableDefinition<&[u8], &[u8]> = TableDefinition::new("accounts");
/// Page cache of each database (the Store's production default).
const CACHE_BYTES: usize = 256 << 20;
/// Prefix of account keys in the state (the bank module's accounts).
const ACCOUNT_PREFIX: &[u8] = b"bank/a/";
/// Bytes of one account value.
const VALUE_BYTES: usize = 24;

/// `openledger bench state`: commit cost per block as the state grows, JMT on
/// redb (our Store) vs plain redb.
#[derive(clap::Args, Debug, Clone)]
pub struct StateOpts {
    /// State sizes (accounts), comma-separated; `k` and `M` suffixes allowed
    /// (10M is a manual run: about an hour and tens of GB).
    #[arg(long, default_value = "10000,100000,1000000")]
    pub accounts: String,
    /// Timed blocks per size.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub blocks: u32,
    /// Random account updates per block.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub writes: u32,
    /// Accounts written per version (and per write transaction) while populating.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk: u32,
    /// Seed of the random updates.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Commit without fsync on both sides (isolates the Merkle layer from the disk flush).
    #[arg(long)]
    pub no_fsync: bool,
    /// Where the temporary databases go (default: the system temp directory). Use a real disk.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

impl Default for StateOpts {
    fn default() -> Self {
        StateOpts {
            accounts: "10000,100000,1000000".into(),
            blocks: 20,
            writes: 1000,
            chunk: 100_000,
            seed: 1,
            no_fsync: false,
            dir: None,
            json_out: None,
        }
    }
}

/// "10000, 100k,1M" → [10000, 100000, 1000000].
pub(crate) fn parse_sizes(s: &str) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for (part, n) in count_list(s, "--accounts")? {
        let n = n.filter(|n| *n > 0).with_context(|| format!("--accounts: {part:?} must be a positive count"))?;
        out.push(n);
    }
    if out.is_empty() {
        bail!("--accounts: no sizes given");
    }
    Ok(out)
}

/// xorshift64*: small, seeded, deterministic.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(splitmix64(seed) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform enough in 0..n for a benchmark (n ≪ 2^64).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The state key of account number `i`: `bank/a/` ++ a 20-byte address derived
/// from `i` (its first 8 bytes are a bijection of `i`, so keys never collide).
pub(crate) fn account_key(i: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(ACCOUNT_PREFIX.len() + 20);
    k.extend_from_slice(ACCOUNT_PREFIX);
    let a = splitmix64(i);
    k.extend_from_slice(&a.to_be_bytes());
    k.extend_from_slice(&splitmix64(a).to_be_bytes());
    k.extend_from_slice(&(splitmix64(a ^ 1) as u32).to_be_bytes());
    k
}

fn account_value(rng: &mut Rng) -> Vec<u8> {
    let mut v = Vec::with_capacity(VALUE_BYTES);
    v.extend_from_slice(&rng.next_u64().to_be_bytes());
    v.extend_from_slice(&rng.next_u64().to_be_bytes());
    v.extend_from_slice(&rng.next_u64().to_be_bytes());
    v
}

type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// The two databases under test.
struct Pair {
    store: Store,
    store_path: PathBuf,
    plain: Database,
    plain_path: PathBuf,
    durability: Durability,
    version: u64,
}

impl Pair {
    fn open(dir: &Path, fsync: bool) -> Result<Pair> {
        let store_path = dir.join("store.redb");
        let plain_path = dir.join("plain.redb");
        let store = Store::open(
            &store_path,
            StoreOptions { durable: fsync, cache_bytes: CACHE_BYTES, ..StoreOptions::default() },
        )
        .context("opening the Store")?;
        let plain = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&plain_path)
            .context("opening the plain redb file")?;
        let w = plain.begin_write()?;
        w.open_table(PLAIN)?;
        w.commit()?;
        Ok(Pair {
            store,
            store_path,
            plain,
            plain_path,
            durability: if fsync { Durability::Immediate } else { Durability::None },
            version: 0,
        })
    }

    /// One block into the Store: prepare (new root) + commit. Returns the time taken.
    fn store_block(&mut self, writes: &Writes) -> Result<Duration> {
        let v = self.version;
        let header = Header { number: v, ..Default::default() };
        let record = BlockRecord::empty(header);
        let t = Instant::now();
        let update = self.store.prepare(v, writes)?;
        self.store.commit(&record, update)?;
        let d = t.elapsed();
        self.version += 1;
        Ok(d)
    }

    /// The same writes into the plain table: one write transaction. Returns the time taken.
    fn plain_block(&self, writes: &Writes) -> Result<Duration> {
        let t = Instant::now();
        let mut w = self.plain.begin_write()?;
        w.set_durability(self.durability).map_err(|e| anyhow::anyhow!("{e}"))?;
        {
            let mut table = w.open_table(PLAIN)?;
            for (k, v) in writes {
                let kh = key_hash(k);
                match v {
                    Some(v) => {
                        table.insert(kh.0.as_slice(), v.as_slice())?;
                    }
                    None => {
                        table.remove(kh.0.as_slice())?;
                    }
                }
            }
        }
        w.commit()?;
        Ok(t.elapsed())
    }

    /// Both sides hold the same latest values for `keys`.
    fn check_same(&self, keys: &[Vec<u8>]) -> Result<()> {
        let snap = self.store.snapshot()?;
        let r = self.plain.begin_read()?;
        let table = r.open_table(PLAIN)?;
        for k in keys {
            let ours = snap.get_latest(k)?;
            let plain = table.get(key_hash(k).0.as_slice())?.map(|g| g.value().to_vec());
            if ours != plain {
                bail!("the Store and plain redb disagree on key {}", hex_short(k));
            }
        }
        Ok(())
    }
}

fn hex_short(k: &[u8]) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// Figures for one state size.
struct SizeFigures {
    accounts: u64,
    populate_store_s: f64,
    populate_plain_s: f64,
    store_ms: Vec<f64>,
    plain_ms: Vec<f64>,
    store_us_per_write: Vec<f64>,
    plain_us_per_write: Vec<f64>,
    store_bytes: u64,
    plain_bytes: u64,
}

fn run_size(opts: &StateOpts, base: &Path, accounts: u64) -> Result<SizeFigures> {
    let dir = tempfile::Builder::new()
        .prefix("openledger-bench-state-")
        .tempdir_in(base)
        .with_context(|| format!("creating a directory in {}", base.display()))?;
    let mut pair = Pair::open(dir.path(), !opts.no_fsync)?;
    let mut rng = Rng::new(opts.seed ^ accounts);

    // Populate, chunk by chunk, alternating which side goes first.
    let chunk = opts.chunk as u64;
    let (mut pop_store, mut pop_plain) = (Duration::ZERO, Duration::ZERO);
    let mut start = 0;
    let mut last_report = Instant::now();
    while start < accounts {
        let end = (start + chunk).min(accounts);
        let writes: Writes = (start..end).map(|i| (account_key(i), Some(account_value(&mut rng)))).collect();
        if pair.version % 2 == 0 {
            pop_store += pair.store_block(&writes)?;
            pop_plain += pair.plain_block(&writes)?;
        } else {
            pop_plain += pair.plain_block(&writes)?;
            pop_store += pair.store_block(&writes)?;
        }
        start = end;
        if last_report.elapsed() > Duration::from_secs(5) || start == accounts {
            eprintln!(
                "  {accounts} accounts: populated {start} (Store {:.1} s, plain redb {:.1} s)",
                pop_store.as_secs_f64(),
                pop_plain.as_secs_f64()
            );
            last_report = Instant::now();
        }
    }

    // Timed blocks.
    let mut f = SizeFigures {
        accounts,
        populate_store_s: pop_store.as_secs_f64(),
        populate_plain_s: pop_plain.as_secs_f64(),
        store_ms: vec![],
        plain_ms: vec![],
        store_us_per_write: vec![],
        plain_us_per_write: vec![],
        store_bytes: 0,
        plain_bytes: 0,
    };
    let mut touched = Vec::new();
    for b in 0..opts.blocks {
        let writes: Writes = (0..opts.writes)
            .map(|_| {
                let i = rng.below(accounts);
                (account_key(i), Some(account_value(&mut rng)))
            })
            .collect();
        let n = writes.len() as f64;
        let (s, p) = if b % 2 == 0 {
            let s = pair.store_block(&writes)?;
            (s, pair.plain_block(&writes)?)
        } else {
            let p = pair.plain_block(&writes)?;
            (pair.store_block(&writes)?, p)
        };
        f.store_ms.push(s.as_secs_f64() * 1e3);
        f.plain_ms.push(p.as_secs_f64() * 1e3);
        f.store_us_per_write.push(s.as_secs_f64() * 1e6 / n);
        f.plain_us_per_write.push(p.as_secs_f64() * 1e6 / n);
        touched.extend(writes.into_keys().take(5));
    }
    touched.push(account_key(0));
    touched.push(account_key(accounts - 1));
    touched.push(account_key(accounts)); // absent on both sides
    pair.check_same(&touched)?;

    let (store_path, plain_path) = (pair.store_path.clone(), pair.plain_path.clone());
    drop(pair);
    f.store_bytes = file_size(&store_path);
    f.plain_bytes = file_size(&plain_path);
    Ok(f)
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

/// Run `bench state`: print per size the medians, the ratio Store / plain redb,
/// file sizes and population times, then the machine.
pub fn run_state(opts: &StateOpts) -> Result<()> {
    let sizes = parse_sizes(&opts.accounts)?;
    let machine = Machine::detect();
    let base = opts.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let fsync = if opts.no_fsync { "no fsync" } else { "fsync per block" };

    println!(
        "bench state: commit cost per block, storage::Store (JMT on redb, {fsync}) vs plain redb (sha256(key) → value, {fsync})"
    );
    println!(
        "  sizes {:?} accounts ({VALUE_BYTES}-byte values, populated {} per version); {} timed blocks × {} random updates (seed {}), alternating sides",
        sizes, opts.chunk, opts.blocks, opts.writes, opts.seed
    );
    println!("  databases in {} (cache {} MiB each)", base.display(), CACHE_BYTES >> 20);
    println!("  machine: {}\n", machine.describe());

    let mut results = Vec::new();
    for &n in &sizes {
        let f = run_size(opts, &base, n).with_context(|| format!("{n} accounts"))?;
        let (s_us, p_us) = (median(&f.store_us_per_write), median(&f.plain_us_per_write));
        println!(
            "{n:>10} accounts: Store {:.2} ms/block {s_us:.2} µs/write | plain redb {:.2} ms/block {p_us:.2} µs/write | ratio {} | files {:.1} MB vs {:.1} MB | populated in {:.1} s vs {:.1} s",
            median(&f.store_ms),
            median(&f.plain_ms),
            fmt_ratio(ratio(Some(s_us), Some(p_us))),
            mb(f.store_bytes),
            mb(f.plain_bytes),
            f.populate_store_s,
            f.populate_plain_s,
        );
        results.push(f);
    }

    println!("\nmedians over {} blocks of {} updates:", opts.blocks, opts.writes);
    println!(
        "{:>10} | {:>11} {:>11} {:>7} | {:>11} {:>11} | {:>10} {:>10} | {:>10} {:>10}",
        "accounts",
        "Store µs/w",
        "redb µs/w",
        "ratio",
        "Store ms/b",
        "redb ms/b",
        "Store MB",
        "redb MB",
        "Store pop s",
        "redb pop s"
    );
    for f in &results {
        let (s_us, p_us) = (median(&f.store_us_per_write), median(&f.plain_us_per_write));
        println!(
            "{:>10} | {s_us:>11.2} {p_us:>11.2} {:>7} | {:>11.2} {:>11.2} | {:>10.1} {:>10.1} | {:>10.1} {:>10.1}",
            f.accounts,
            fmt_ratio(ratio(Some(s_us), Some(p_us))),
            median(&f.store_ms),
            median(&f.plain_ms),
            mb(f.store_bytes),
            mb(f.plain_bytes),
            f.populate_store_s,
            f.populate_plain_s
        );
    }
    if let (Some(a), Some(b)) = (results.first(), results.last())
        && results.len() > 1
    {
        let growth = |v: &[f64], w: &[f64]| fmt_ratio(ratio(Some(median(w)), Some(median(v))));
        println!(
            "growth from {} to {} accounts: Store {}, plain redb {}",
            a.accounts,
            b.accounts,
            growth(&a.store_us_per_write, &b.store_us_per_write),
            growth(&a.plain_us_per_write, &b.plain_us_per_write)
        );
    }
    println!("machine: {}", machine.describe());

    if let Some(path) = &opts.json_out {
        let doc = json!({
            "suite": "state",
            "date": today(),
            "machine": machine.to_json(),
            "config": {
                "accounts": sizes, "blocks": opts.blocks, "writes": opts.writes,
                "chunk": opts.chunk, "seed": opts.seed, "fsync": !opts.no_fsync,
                "dir": base.display().to_string(),
            },
            "results": results.iter().map(|f| {
                let (s_us, p_us) = (median(&f.store_us_per_write), median(&f.plain_us_per_write));
                json!({
                    "accounts": f.accounts,
                    "storeUsPerWrite": s_us,
                    "plainUsPerWrite": p_us,
                    "ratio": ratio(Some(s_us), Some(p_us)),
                    "storeMsPerBlock": median(&f.store_ms),
                    "plainMsPerBlock": median(&f.plain_ms),
                    "storeBytes": f.store_bytes,
                    "plainBytes": f.plain_bytes,
                    "populateStoreS": f.populate_store_s,
                    "populatePlainS": f.populate_plain_s,
                    "storeMsBlocks": f.store_ms,
                    "plainMsBlocks": f.plain_ms,
                })
            }).collect::<Vec<_>>(),
        });
        crate::chain::write_results(path, &doc)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sizes() {
        assert_eq!(parse_sizes("10000,100000,1000000").unwrap(), vec![10_000, 100_000, 1_000_000]);
        assert_eq!(parse_sizes(" 10k, 1M ,2_000").unwrap(), vec![10_000, 1_000_000, 2_000]);
        assert!(parse_sizes("").is_err());
        assert!(parse_sizes("0").is_err());
        assert!(parse_sizes("ten").is_err());
    }

    #[test]
    fn keys_distinct_and_shaped() {
        let keys: HashSet<Vec<u8>> = (0..10_000).map(account_key).collect();
        assert_eq!(keys.len(), 10_000);
        let k = account_key(7);
        assert_eq!(k.len(), 27);
        assert!(k.starts_with(b"bank/a/"));
        assert_eq!(account_key(7), k, "deterministic");
    }

    #[test]
    fn rng_deterministic() {
        let (mut a, mut b, mut c) = (Rng::new(5), Rng::new(5), Rng::new(6));
        let va: Vec<u64> = (0..10).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..10).map(|_| b.next_u64()).collect();
        let vc: Vec<u64> = (0..10).map(|_| c.next_u64()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
        assert!((0..1000).all(|_| a.below(7) < 7));
        assert_eq!(account_value(&mut a).len(), VALUE_BYTES);
    }

    #[test]
    fn run_state_smoke() {
        let dir = tempfile::tempdir().unwrap();
        let json_path = dir.path().join("state.json");
        let opts = StateOpts {
            accounts: "1000,1500".into(),
            blocks: 2,
            writes: 10,
            chunk: 400,
            dir: Some(dir.path().to_path_buf()),
            json_out: Some(json_path.clone()),
            ..StateOpts::default()
        };
        run_state(&opts).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        let results = doc["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["accounts"], 1000);
        assert!(results[0]["storeUsPerWrite"].as_f64().unwrap() > 0.0);
        assert!(results[1]["storeBytes"].as_u64().unwrap() > 0);
        assert_eq!(doc["machine"]["cores"].as_u64().unwrap() as usize, Machine::detect().cores);
        // The temporary databases are gone.
        let left: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).collect();
        assert!(left.is_empty());
    }
}
