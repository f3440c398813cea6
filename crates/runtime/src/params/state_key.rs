//! Every storage key of the parameter registry. Prefix `params/`.

/// `params/v/<name>` → u128 BE.
pub fn value(name: &str) -> Vec<u8> {
    let mut k = b"params/v/".to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}
