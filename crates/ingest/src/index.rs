//! The duplicate index of a Datanet (see the crate docs, "The index" and "Index file format").

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use alloy_primitives::B256;
use primitives::rows::Row;

use crate::minhash::{MINHASH_VERSION, NearDupConfig, band_key, equal_count, shingles, signature};
use crate::text::mix64;
use crate::{DupKind, IngestError, RowRef};

/// Magic bytes that start a serialised index.
pub const INDEX_MAGIC: [u8; 4] = *b"OLDI";
/// Version of the serialised index layout.
pub const INDEX_FORMAT_VERSION: u8 = 1;

const NONE: u32 = u32::MAX;

/// A fixed (unseeded) hasher for the index's hash maps. Only lookups are made, never iteration,
/// so the maps' layout cannot reach any output; being fixed keeps runs reproducible anyway.
#[derive(Default, Clone, Copy)]
pub(crate) struct FixedHasher(u64);

impl Hasher for FixedHasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = mix64(self.0 ^ u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = mix64(self.0 ^ n);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

pub(crate) type FixedState = BuildHasherDefault<FixedHasher>;

/// What a Datanet already holds, for duplicate detection: every row's id and leaf (exact
/// duplicates) and its MinHash signature in LSH buckets (near duplicates).
///
/// The index is a deterministic function of the sequence of [`DedupIndex::insert`] calls, and
/// [`DedupIndex::to_bytes`] / [`DedupIndex::from_bytes`] preserve that sequence, so a reloaded
/// index answers exactly as the one that was saved. Memory: under 1 KB per row with the default
/// configuration (the 256-byte signature, the leaf, the id and 16 bucket entries); serialised,
/// about 300 bytes per row.
#[derive(Clone, Debug)]
pub struct DedupIndex {
    cfg: NearDupConfig,
    seeds: Vec<u64>,
    refs: Vec<RowRef>,
    leaves: Vec<B256>,
    /// `num_perm` values per row; rows without a signature hold zeros and `has_sig[i] == false`.
    sigs: Vec<u16>,
    has_sig: Vec<bool>,
    /// Leaf → position of the first row inserted with that leaf.
    exact: HashMap<B256, u32, FixedState>,
    /// Per band: bucket key → position of the most recently inserted row in that bucket.
    heads: Vec<HashMap<u64, u32, FixedState>>,
    /// `bands` entries per row: the previous row in the same bucket, or `NONE`.
    next: Vec<u32>,
}

/// A near-duplicate match: the earlier row and how many signature values were equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NearMatch {
    pub row: RowRef,
    pub equal: u32,
}

impl DedupIndex {
    /// An empty index. Panics if `cfg` is invalid (see [`NearDupConfig::validate`]).
    pub fn new(cfg: &NearDupConfig) -> Self {
        if let Err(e) = cfg.validate() {
            panic!("{e}");
        }
        DedupIndex {
            cfg: cfg.clone(),
            seeds: cfg.seeds(),
            refs: Vec::new(),
            leaves: Vec::new(),
            sigs: Vec::new(),
            has_sig: Vec::new(),
            exact: HashMap::default(),
            heads: (0..cfg.bands).map(|_| HashMap::default()).collect(),
            next: Vec::new(),
        }
    }

    /// The near-duplicate parameters this index was built with.
    pub fn config(&self) -> &NearDupConfig {
        &self.cfg
    }

    /// Number of rows inserted (duplicates included).
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// Add a row. A row whose leaf is already present is recorded but not added to the LSH
    /// buckets: queries find the first row with that content.
    pub fn insert(&mut self, id: RowRef, row: &Row) {
        let leaf = row.leaf();
        let sig = if self.exact.contains_key(&leaf) { None } else { self.signature(row) };
        self.insert_parts(id, leaf, sig.as_deref());
    }

    /// The first row inserted with this leaf.
    pub fn find_exact(&self, leaf: &B256) -> Option<RowRef> {
        self.exact.get(leaf).map(|&p| self.refs[p as usize])
    }

    /// The row `row` duplicates, if any: an exact duplicate first, else the best near duplicate.
    pub fn check(&self, row: &Row) -> Option<(RowRef, DupKind)> {
        if let Some(r) = self.find_exact(&row.leaf()) {
            return Some((r, DupKind::Exact));
        }
        let sig = self.signature(row)?;
        self.find_near(&sig).map(|m| (m.row, DupKind::Near { equal: m.equal, of: self.cfg.num_perm }))
    }

    pub(crate) fn signature(&self, row: &Row) -> Option<Vec<u16>> {
        signature(&shingles(row, &self.cfg), &self.seeds)
    }

    pub(crate) fn insert_parts(&mut self, id: RowRef, leaf: B256, sig: Option<&[u16]>) {
        let pos = self.refs.len() as u32;
        assert!(pos < NONE, "dedup index full");
        let np = self.cfg.num_perm as usize;
        let first = !self.exact.contains_key(&leaf);
        self.refs.push(id);
        self.leaves.push(leaf);
        if first {
            self.exact.insert(leaf, pos);
        }
        match sig {
            Some(s) => {
                assert_eq!(s.len(), np, "signature length");
                self.sigs.extend_from_slice(s);
                self.has_sig.push(true);
            }
            None => {
                self.sigs.resize(self.sigs.len() + np, 0);
                self.has_sig.push(false);
            }
        }
        let r = self.cfg.rows_per_band as usize;
        for band in 0..self.cfg.bands {
            let mut prev = NONE;
            if let (Some(s), true) = (sig, first) {
                let b = band as usize;
                let key = band_key(band, &s[b * r..(b + 1) * r]);
                prev = self.heads[b].insert(key, pos).unwrap_or(NONE);
            }
            self.next.push(prev);
        }
    }

    fn sig_at(&self, pos: u32) -> &[u16] {
        let np = self.cfg.num_perm as usize;
        &self.sigs[pos as usize * np..(pos as usize + 1) * np]
    }

    /// The best near duplicate of a signature: LSH candidates (a band equal, at most
    /// `max_bucket_scan` rows per bucket), confirmed over the whole signature against the
    /// threshold; the most equal values win, ties going to the smallest row id.
    pub(crate) fn find_near(&self, sig: &[u16]) -> Option<NearMatch> {
        let r = self.cfg.rows_per_band as usize;
        let bands = self.cfg.bands as usize;
        let mut cands: Vec<u32> = Vec::new();
        for b in 0..bands {
            let vals = &sig[b * r..(b + 1) * r];
            let Some(&head) = self.heads[b].get(&band_key(b as u32, vals)) else { continue };
            let mut pos = head;
            let mut scanned = 0;
            while pos != NONE && scanned < self.cfg.max_bucket_scan {
                if &self.sig_at(pos)[b * r..(b + 1) * r] == vals {
                    cands.push(pos);
                }
                scanned += 1;
                pos = self.next[pos as usize * bands + b];
            }
        }
        cands.sort_unstable();
        cands.dedup();
        let mut best: Option<NearMatch> = None;
        for pos in cands {
            let equal = equal_count(self.sig_at(pos), sig);
            if !self.cfg.is_near(equal) {
                continue;
            }
            let m = NearMatch { row: self.refs[pos as usize], equal };
            best = match best {
                Some(b) if (b.equal, std::cmp::Reverse(b.row)) >= (m.equal, std::cmp::Reverse(m.row)) => Some(b),
                _ => Some(m),
            };
        }
        best
    }

    /// The index as bytes (layout in the crate docs, "Index file format").
    pub fn to_bytes(&self) -> Vec<u8> {
        let np = self.cfg.num_perm as usize;
        let sig_rows = self.has_sig.iter().filter(|&&h| h).count();
        let mut out = Vec::with_capacity(64 + self.len() * 45 + sig_rows * np * 2 + 32);
        out.extend_from_slice(&INDEX_MAGIC);
        out.push(INDEX_FORMAT_VERSION);
        out.extend_from_slice(&MINHASH_VERSION.to_be_bytes());
        for v in config_fields(&self.cfg) {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&(self.len() as u64).to_be_bytes());
        for i in 0..self.len() {
            out.extend_from_slice(&self.refs[i].contribution.to_be_bytes());
            out.extend_from_slice(&self.refs[i].index.to_be_bytes());
            out.extend_from_slice(self.leaves[i].as_slice());
            out.push(self.has_sig[i] as u8);
            if self.has_sig[i] {
                for v in self.sig_at(i as u32) {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        let check = blake3::hash(&out);
        out.extend_from_slice(check.as_bytes());
        out
    }

    /// An index from [`DedupIndex::to_bytes`] output; refuses a wrong magic, format or MinHash
    /// version, an invalid configuration, a bad checksum, truncation or trailing bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, IngestError> {
        let err = |m: &str| IngestError::Index(m.to_string());
        if b.len() < 32 + 4 + 1 + 4 + 8 * 4 + 8 {
            return Err(err("truncated"));
        }
        let (body, check) = b.split_at(b.len() - 32);
        if blake3::hash(body).as_bytes() != check {
            return Err(err("checksum mismatch"));
        }
        let mut r = Reader(body);
        if r.take(4)? != INDEX_MAGIC {
            return Err(err("not a dedup index (bad magic)"));
        }
        let format = r.take(1)?[0];
        if format != INDEX_FORMAT_VERSION {
            return Err(IngestError::Index(format!("format version {format}, expected {INDEX_FORMAT_VERSION}")));
        }
        let mh = r.u32()?;
        if mh != MINHASH_VERSION {
            return Err(IngestError::Index(format!(
                "MinHash version {mh}, this build uses {MINHASH_VERSION}: rebuild the index from the rows"
            )));
        }
        let mut f = [0u32; 8];
        for v in &mut f {
            *v = r.u32()?;
        }
        let cfg = NearDupConfig {
            shingle_words: f[0],
            shingle_chars: f[1],
            short_row_words: f[2],
            num_perm: f[3],
            bands: f[4],
            rows_per_band: f[5],
            threshold_pct: f[6],
            max_bucket_scan: f[7],
        };
        cfg.validate().map_err(IngestError::Index)?;
        let n = r.u64()?;
        let np = cfg.num_perm as usize;
        // Every entry takes at least 45 bytes: refuse counts the input cannot hold before allocating.
        if n > (r.0.len() / 45) as u64 {
            return Err(err("truncated"));
        }
        let mut idx = DedupIndex::new(&cfg);
        let mut sig = vec![0u16; np];
        for _ in 0..n {
            let id = RowRef { contribution: r.u64()?, index: r.u32()? };
            let leaf = B256::from_slice(r.take(32)?);
            let flag = r.take(1)?[0];
            let s = match flag {
                0 => None,
                1 => {
                    let bytes = r.take(np * 2)?;
                    for (v, c) in sig.iter_mut().zip(bytes.chunks_exact(2)) {
                        *v = u16::from_be_bytes([c[0], c[1]]);
                    }
                    Some(sig.as_slice())
                }
                _ => return Err(err("bad signature flag")),
            };
            idx.insert_parts(id, leaf, s);
        }
        if !r.0.is_empty() {
            return Err(err("trailing bytes"));
        }
        Ok(idx)
    }
}

pub(crate) fn config_fields(c: &NearDupConfig) -> [u32; 8] {
    [
        c.shingle_words,
        c.shingle_chars,
        c.short_row_words,
        c.num_perm,
        c.bands,
        c.rows_per_band,
        c.threshold_pct,
        c.max_bucket_scan,
    ]
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], IngestError> {
        if self.0.len() < n {
            return Err(IngestError::Index("truncated".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, IngestError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, IngestError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
}
