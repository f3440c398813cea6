//! MinHash signatures over shingles (see the crate docs, "Near duplicates").

use primitives::rows::Row;

use crate::text::{fold_into, hash_bytes, mix64, tokens};

/// Version of the shingling, hashing and signature rules. Signatures made under another version are
/// not comparable: [`crate::DedupIndex::from_bytes`] refuses them and the index must be rebuilt.
pub const MINHASH_VERSION: u32 = 2;

/// Domain of the per-permutation seeds: `seed_i = first 8 bytes (LE) of blake3(SEED_DOMAIN ‖ i as u32 BE)`.
pub const SEED_DOMAIN: &[u8] = b"openledger/ingest/minhash/v1";

/// Start of a word shingle's hash chain.
const WORD_SHINGLE_START: u64 = 0x5753_4849_4e47_4c45; // "WSHINGLE"
/// Token standing for the boundary between a prompt and its completion.
const PAIR_SEPARATOR: u64 = 0x5345_5041_5241_544f; // "SEPARATO"
/// Character used for that boundary in the folded text of short rows.
const PAIR_SEPARATOR_CHAR: char = '\u{1}';
/// Start of an LSH band key's hash chain.
const BAND_START: u64 = 0x4c53_485f_4241_4e44; // "LSH_BAND"

/// Near-duplicate detection parameters. Defaults and the reasons for them are in the crate docs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NearDupConfig {
    /// Words per word shingle (default 3).
    pub shingle_words: u32,
    /// Characters per character shingle, used for short rows (default 5).
    pub shingle_chars: u32,
    /// Rows with fewer words than this use character shingles (default 12).
    pub short_row_words: u32,
    /// Number of MinHash permutations, i.e. signature length (default 128).
    pub num_perm: u32,
    /// LSH bands (default 16).
    pub bands: u32,
    /// Signature values per LSH band (default 4); `bands * rows_per_band <= num_perm`.
    pub rows_per_band: u32,
    /// A candidate is a near duplicate when at least this percentage of the `num_perm` signature
    /// values are equal: `equal * 100 >= threshold_pct * num_perm` (default 70).
    pub threshold_pct: u32,
    /// At most this many earlier rows are looked at in one LSH bucket per query (default 256), which
    /// bounds the work on data full of near-identical rows; the most recently inserted come first.
    pub max_bucket_scan: u32,
}

impl Default for NearDupConfig {
    fn default() -> Self {
        NearDupConfig {
            shingle_words: 3,
            shingle_chars: 5,
            short_row_words: 12,
            num_perm: 128,
            bands: 16,
            rows_per_band: 4,
            threshold_pct: 70,
            max_bucket_scan: 256,
        }
    }
}

impl NearDupConfig {
    /// Check the parameters are usable.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |m: &str| Err(format!("near-duplicate config: {m}"));
        if self.shingle_words == 0 || self.shingle_words > 16 {
            return bad("shingle_words must be 1..=16");
        }
        if self.shingle_chars == 0 || self.shingle_chars > 64 {
            return bad("shingle_chars must be 1..=64");
        }
        if self.short_row_words < self.shingle_words {
            return bad("short_row_words must be at least shingle_words");
        }
        if self.num_perm == 0 || self.num_perm > 1024 {
            return bad("num_perm must be 1..=1024");
        }
        if self.bands == 0
            || self.rows_per_band == 0
            || u64::from(self.bands) * u64::from(self.rows_per_band) > u64::from(self.num_perm)
        {
            return bad("bands and rows_per_band must be positive with bands * rows_per_band <= num_perm");
        }
        if self.threshold_pct == 0 || self.threshold_pct > 100 {
            return bad("threshold_pct must be 1..=100");
        }
        if self.max_bucket_scan == 0 {
            return bad("max_bucket_scan must be positive");
        }
        Ok(())
    }

    pub(crate) fn seeds(&self) -> Vec<u64> {
        (0..self.num_perm)
            .map(|i| {
                let mut h = blake3::Hasher::new();
                h.update(SEED_DOMAIN);
                h.update(&i.to_be_bytes());
                u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().unwrap())
            })
            .collect()
    }

    /// Whether `equal` of `num_perm` values reach the threshold (integer arithmetic only).
    pub fn is_near(&self, equal: u32) -> bool {
        u64::from(equal) * 100 >= u64::from(self.threshold_pct) * u64::from(self.num_perm)
    }
}

/// The shingle hashes of a row, sorted and deduplicated; empty when the row has no letters or digits.
pub(crate) fn shingles(row: &Row, cfg: &NearDupConfig) -> Vec<u64> {
    let (a, b) = match row {
        Row::Text { text } => (text.as_str(), None),
        Row::PromptCompletion { prompt, completion } => (prompt.as_str(), Some(completion.as_str())),
    };
    let mut toks: Vec<u64> = tokens(a).iter().map(|t| t.hash).collect();
    let mut words = toks.len();
    if let Some(b) = b {
        let tb = tokens(b);
        words += tb.len();
        toks.push(PAIR_SEPARATOR);
        toks.extend(tb.iter().map(|t| t.hash));
    }
    let mut out: Vec<u64> = Vec::new();
    if words >= cfg.short_row_words as usize {
        let k = cfg.shingle_words as usize;
        out.reserve(toks.len());
        for w in toks.windows(k) {
            let mut h = WORD_SHINGLE_START;
            for &t in w {
                h = mix64(h ^ t);
            }
            out.push(h);
        }
    } else {
        let mut folded = String::new();
        fold_into(a, &mut folded);
        if let Some(b) = b {
            folded.push(' ');
            folded.push(PAIR_SEPARATOR_CHAR);
            folded.push(' ');
            fold_into(b, &mut folded);
        }
        if words == 0 {
            return out;
        }
        let k = cfg.shingle_chars as usize;
        let bounds: Vec<usize> = folded.char_indices().map(|(i, _)| i).chain(std::iter::once(folded.len())).collect();
        let nchars = bounds.len() - 1;
        if nchars <= k {
            out.push(hash_bytes(folded.as_bytes()));
        } else {
            for i in 0..=nchars - k {
                out.push(hash_bytes(&folded.as_bytes()[bounds[i]..bounds[i + k]]));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The b-bit (b = 16) MinHash signature of a shingle set. Each 64-bit hash
/// `h = mix64(x XOR seed_g)` serves four permutations: value `4g + k` is the low 16
/// bits of `min over shingles x of rotate_left(h, 16k)`, so the ordering of
/// permutation `k` is decided by a different 16-bit lane of `h` and the value kept
/// is another lane (uniform, whatever the set's size). A signature of `n` values
/// costs `n / 4` hashes per shingle. `None` for an empty set.
pub(crate) fn signature(shingles: &[u64], seeds: &[u64]) -> Option<Vec<u16>> {
    if shingles.is_empty() {
        return None;
    }
    let n = seeds.len();
    let groups = n.div_ceil(4);
    let mut mins = Vec::with_capacity(groups * 4);
    // One permutation group at a time, its four minima in registers.
    for &s in &seeds[..groups] {
        let (mut m0, mut m1, mut m2, mut m3) = (u64::MAX, u64::MAX, u64::MAX, u64::MAX);
        for &x in shingles {
            let v = mix64(x ^ s);
            m0 = m0.min(v);
            m1 = m1.min(v.rotate_left(16));
            m2 = m2.min(v.rotate_left(32));
            m3 = m3.min(v.rotate_left(48));
        }
        mins.extend([m0, m1, m2, m3]);
    }
    mins.truncate(n);
    Some(mins.into_iter().map(|m| m as u16).collect())
}

/// The bucket key of one LSH band.
#[inline]
pub(crate) fn band_key(band: u32, values: &[u16]) -> u64 {
    let mut h = BAND_START ^ u64::from(band);
    for &v in values {
        h = mix64(h ^ u64::from(v));
    }
    h
}

/// Number of equal values in two signatures of the same length.
#[inline]
pub(crate) fn equal_count(a: &[u16], b: &[u16]) -> u32 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(text: &str) -> Vec<u16> {
        let cfg = NearDupConfig::default();
        signature(&shingles(&Row::Text { text: text.into() }, &cfg), &cfg.seeds()).unwrap()
    }

    #[test]
    fn identical_shingle_sets_have_identical_signatures() {
        // Case and punctuation do not matter.
        let a = sig("The quick brown fox jumps over the lazy dog near the quiet river bank today.");
        let b = sig("the QUICK brown fox -- jumps over the lazy dog, near the quiet river bank today");
        assert_eq!(a, b);
        assert_eq!(a.len(), 128);
    }

    #[test]
    fn short_rows_use_character_shingles() {
        let cfg = NearDupConfig::default();
        let s = shingles(&Row::Text { text: "Hello world".into() }, &cfg);
        // "hello world" has 11 characters: 7 character 5-shingles.
        assert_eq!(s.len(), 7);
        assert!(shingles(&Row::Text { text: "!!! ???".into() }, &cfg).is_empty());
        assert_eq!(shingles(&Row::Text { text: "Hi".into() }, &cfg).len(), 1);
    }

    #[test]
    fn default_config_is_valid_and_seeds_are_pinned() {
        let cfg = NearDupConfig::default();
        cfg.validate().unwrap();
        let seeds = cfg.seeds();
        assert_eq!(seeds.len(), 128);
        let mut sorted = seeds.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 128);
        assert!(cfg.is_near(90) && !cfg.is_near(89)); // 90/128 = 70.3 %, 89/128 = 69.5 %
        // Pinned values: if one changes, signatures changed and MINHASH_VERSION must be bumped.
        assert_eq!((seeds[0], seeds[127]), (0x81e2_2412_d1f1_26a0, 0xb798_9589_8179_47e1));
        assert_eq!(crate::text::hash_bytes(b"hello"), 0x16fe_05a1_c75b_cd0f);
        let s = sig("The quick brown fox jumps over the lazy dog near the quiet river bank today.");
        assert_eq!(s[..8], [31863, 38746, 48179, 48876, 10864, 33754, 58479, 16364]);
    }
}
