//! Every storage key of the parameter registry. Prefix `params/`.

/// `params/v/<name>` → u128 BE: the value in force.
pub fn value(name: &str) -> Vec<u8> {
    let mut k = b"params/v/".to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// `params/hn/<name>` → u64 BE: how many changes the history of `name` holds.
pub fn history_len(name: &str) -> Vec<u8> {
    let mut k = b"params/hn/".to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// `params/h/<name>/<i: u64 BE>` → height u64 BE ‖ value u128 BE: the `i`-th
/// change of `name` (genesis overrides at height 0), in height order.
pub fn history(name: &str, i: u64) -> Vec<u8> {
    let mut k = b"params/h/".to_vec();
    k.extend_from_slice(name.as_bytes());
    k.push(b'/');
    k.extend_from_slice(&i.to_be_bytes());
    k
}
