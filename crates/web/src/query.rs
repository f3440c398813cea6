//! What the browser sends, checked before anything reads it: query strings
//! bounded in length and to known keys, values percent-decoded with a bound,
//! numbers, hashes and addresses parsed strictly. Every refusal is a 400 that
//! says what was wrong.

use primitives::{Address, B256};

use crate::page::WebError;

/// The longest query string a page reads.
pub const MAX_QUERY: usize = 1024;
/// The longest value of one query parameter (after decoding).
pub const MAX_VALUE: usize = 200;

/// The parameters of a query string, each of `allowed` at most once.
pub fn params(raw: Option<&str>, allowed: &[&str]) -> Result<Vec<(String, String)>, WebError> {
    parse(raw.unwrap_or(""), allowed, MAX_QUERY, MAX_VALUE)
}

/// The longest form body a page reads (`application/x-www-form-urlencoded`).
pub const MAX_FORM: usize = 16 * 1024;
/// The longest value of one form field (after decoding).
pub const MAX_FORM_VALUE: usize = 8 * 1024;

/// The fields of a posted form (`application/x-www-form-urlencoded`), bounded
/// as a query string is but with room for a description.
pub fn form(body: &[u8], allowed: &[&str]) -> Result<Vec<(String, String)>, WebError> {
    let raw = std::str::from_utf8(body).map_err(|_| WebError::bad("the form is not UTF-8"))?;
    parse(raw, allowed, MAX_FORM, MAX_FORM_VALUE)
}

fn parse(raw: &str, allowed: &[&str], max_len: usize, max_value: usize) -> Result<Vec<(String, String)>, WebError> {
    if raw.len() > max_len {
        return Err(WebError::bad(format!("the query string is {} bytes long; at most {max_len} are read", raw.len())));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k, max_value)?;
        if !allowed.contains(&k.as_str()) {
            let known = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
            return Err(WebError::bad(format!("unknown query parameter {k:?} (this page reads: {known})")));
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(WebError::bad(format!("query parameter {k:?} given twice")));
        }
        out.push((k, decode(v, max_value)?));
    }
    Ok(out)
}

/// The value of `key` among `params`.
pub fn get<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `application/x-www-form-urlencoded` decoding ('+' is a space), bounded,
/// refusing broken escapes and bytes that are not UTF-8.
fn decode(s: &str, max: usize) -> Result<String, WebError> {
    let bad = || WebError::bad(format!("malformed percent-encoding in {:?}", truncate(s)));
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    if out.len() > max {
        return Err(WebError::bad(format!("a query value is {} bytes long; at most {max}", out.len())));
    }
    String::from_utf8(out).map_err(|_| WebError::bad("a query value is not UTF-8"))
}

/// At most 40 characters of what the browser sent, for messages.
pub fn truncate(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A decimal u64 (a block number, an id); `what` names it in the refusal.
pub fn number(s: &str, what: &str) -> Result<u64, WebError> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WebError::bad(format!("{:?} is not a {what} (a decimal number)", truncate(s))));
    }
    s.parse().map_err(|_| WebError::bad(format!("{what} {s} is out of range (at most {})", u64::MAX)))
}

/// A `0x`-prefixed 32-byte hash.
pub fn hash(s: &str) -> Result<B256, WebError> {
    fixed_hex::<32>(s)
        .map(B256::from)
        .ok_or_else(|| WebError::bad(format!("{:?} is not a 0x-prefixed 32-byte hash", truncate(s))))
}

/// A `0x`-prefixed 20-byte address (any letter case).
pub fn address(s: &str) -> Result<Address, WebError> {
    fixed_hex::<20>(s)
        .map(Address::from)
        .ok_or_else(|| WebError::bad(format!("{:?} is not a 0x-prefixed 20-byte address", truncate(s))))
}

fn fixed_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if h.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(h, &mut out).ok()?;
    Some(out)
}

/// The page size among `params` (key `limit`): `default` when absent,
/// clamped to `1..=max` when present (a huge size is not an error).
pub fn limit(params: &[(String, String)], default: u64, max: u64) -> Result<u64, WebError> {
    match get(params, "limit") {
        Some(l) => Ok(number(l, "page size")?.clamp(1, max)),
        None => Ok(default),
    }
}

/// The optional numeric parameter `key` among `params`.
pub fn optional_number(params: &[(String, String)], key: &str, what: &str) -> Result<Option<u64>, WebError> {
    get(params, key).map(|s| number(s, what)).transpose()
}

/// A model id: `m12` or `12`.
pub fn model_id(s: &str) -> Result<u64, WebError> {
    number(s.strip_prefix('m').unwrap_or(s), "model id")
}

/// A Datanet id: `d3` or `3`.
pub fn datanet_id(s: &str) -> Result<u64, WebError> {
    number(s.strip_prefix('d').unwrap_or(s), "Datanet id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_bounded_and_strict() {
        let p = params(Some("q=0xab+c%21&limit=5"), &["q", "limit"]).unwrap();
        assert_eq!(get(&p, "q"), Some("0xab c!"));
        assert_eq!(get(&p, "limit"), Some("5"));
        assert_eq!(params(None, &[]).unwrap(), vec![]);
        for bad in ["x=1", "q=1&q=2", "q=%zz", "q=%4", "q=%ff%fe"] {
            assert!(matches!(params(Some(bad), &["q"]), Err(WebError::BadRequest(_))), "{bad}");
        }
        let long = format!("q={}", "a".repeat(MAX_VALUE + 1));
        assert!(matches!(params(Some(&long), &["q"]), Err(WebError::BadRequest(_))));
        let huge = format!("q={}", "a".repeat(MAX_QUERY));
        assert!(matches!(params(Some(&huge), &["q"]), Err(WebError::BadRequest(_))));
    }

    #[test]
    fn numbers_hashes_and_addresses_parse_strictly() {
        assert_eq!(number("42", "block").unwrap(), 42);
        assert_eq!(number("18446744073709551615", "block").unwrap(), u64::MAX);
        for bad in ["", "-1", "1e3", "18446744073709551616", "99999999999999999999999", " 1", "0x10"] {
            assert!(number(bad, "block").is_err(), "{bad}");
        }
        assert!(hash(&format!("0x{}", "ab".repeat(32))).is_ok());
        assert!(hash(&format!("0x{}", "zz".repeat(32))).is_err());
        assert!(hash("0x1234").is_err());
        assert!(address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266").is_ok());
        assert!(address("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266").is_err());
        assert_eq!(model_id("m7").unwrap(), 7);
        assert_eq!(datanet_id("d3").unwrap(), 3);
        assert!(model_id("m").is_err());
        let p = params(Some("limit=999&offset=3"), &["limit", "offset"]).unwrap();
        assert_eq!(limit(&p, 20, 100).unwrap(), 100);
        assert_eq!(limit(&[], 20, 100).unwrap(), 20);
        assert_eq!(optional_number(&p, "offset", "offset").unwrap(), Some(3));
        assert!(limit(&params(Some("limit=x"), &["limit"]).unwrap(), 20, 100).is_err());
        assert_eq!(truncate(&"é".repeat(50)).chars().count(), 41);
    }
}
