//! Word tokens and the fixed 64-bit hash functions shared by the scorer and MinHash.
//!
//! Nothing here is random: every function gives the same output on every machine.

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The splitmix64 finaliser: a bijection on `u64` that mixes every input bit into every output bit.
#[inline]
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `mix64(FNV-1a(bytes))`: the hash of a token or a character shingle.
#[inline]
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    mix64(h)
}

/// A word token: the hash of its lower-cased text and its byte span in the source.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    pub hash: u64,
    pub start: u32,
    pub end: u32,
}

/// Han ideographs and Japanese kana: scripts written without spaces, where each character is a token.
#[inline]
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF        // Hiragana, Katakana
        | 0x3400..=0x4DBF      // CJK Unified Ideographs Extension A
        | 0x4E00..=0x9FFF      // CJK Unified Ideographs
        | 0xF900..=0xFAFF      // CJK Compatibility Ideographs
        | 0x20000..=0x3134F // CJK Extensions B–G and the Compatibility Supplement
    )
}

/// Push the lower-case form of `c` (std's Unicode tables) into `buf`.
#[inline]
pub(crate) fn push_lower(buf: &mut String, c: char) {
    if c.is_ascii() {
        buf.push(c.to_ascii_lowercase());
    } else {
        buf.extend(c.to_lowercase());
    }
}

/// The words of `text`: maximal runs of alphanumeric characters (`char::is_alphanumeric`),
/// lower-cased; each Han or kana character is a word on its own. Everything else separates words.
pub(crate) fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut start: Option<usize> = None;
    let flush = |buf: &mut String, start: &mut Option<usize>, end: usize, out: &mut Vec<Token>| {
        if let Some(s) = start.take() {
            out.push(Token { hash: hash_bytes(buf.as_bytes()), start: s as u32, end: end as u32 });
            buf.clear();
        }
    };
    for (i, c) in text.char_indices() {
        if is_cjk(c) {
            flush(&mut buf, &mut start, i, &mut out);
            buf.push(c);
            start = Some(i);
            flush(&mut buf, &mut start, i + c.len_utf8(), &mut out);
        } else if c.is_alphanumeric() {
            if start.is_none() {
                start = Some(i);
            }
            push_lower(&mut buf, c);
        } else {
            flush(&mut buf, &mut start, i, &mut out);
        }
    }
    flush(&mut buf, &mut start, text.len(), &mut out);
    out
}

/// The folded form used for character shingles: words lower-cased and separated by one space.
pub(crate) fn fold_into(text: &str, out: &mut String) {
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            push_lower(out, c);
        } else {
            pending_space = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<&str> {
        tokens(s).iter().map(|t| &s[t.start as usize..t.end as usize]).collect()
    }

    #[test]
    fn tokens_split_on_non_alphanumerics_and_fold_case() {
        assert_eq!(words("Hello, world! It's 2024."), ["Hello", "world", "It", "s", "2024"]);
        let a = tokens("HELLO World");
        let b = tokens("hello world");
        assert_eq!(a.iter().map(|t| t.hash).collect::<Vec<_>>(), b.iter().map(|t| t.hash).collect::<Vec<_>>());
        assert_eq!(words("東京は大きい city"), ["東", "京", "は", "大", "き", "い", "city"]);
        assert!(tokens("  !!! ... ").is_empty());
    }

    #[test]
    fn fold_is_lowercase_words_single_spaced() {
        let mut s = String::new();
        fold_into("  Hello,   WORLD!! ", &mut s);
        assert_eq!(s, "hello world");
    }

    #[test]
    fn fixed_hash_values() {
        // Pinned values are in minhash::tests; these are the function's basic properties.
        assert_eq!(hash_bytes(b""), mix64(FNV_OFFSET));
        assert_eq!(mix64(0), 0);
        assert_ne!(hash_bytes(b"a"), hash_bytes(b"b"));
    }
}
