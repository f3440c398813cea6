//! Who may read which blob, and a blob hash from its text form: what the
//! node's blob route (`node::blob_route`) asks before it serves a blob.

use primitives::{Address, B256};

/// Who may read which blob. The route knows nothing of Datanets, models or
/// records: the node implements this, deny by default (`node::access`: public
/// Datanets' data and live models' artefacts to anyone; allow-list Datanets'
/// data, job outputs and attribution records only to their readers; prompts and
/// whatever it cannot place to no one).
pub trait BlobAccessPolicy: Send + Sync {
    /// Whether `caller` (`None`: anonymous) may read blob `hash`; `Err` when the
    /// policy cannot decide (answered 500 with the message).
    fn allowed(&self, hash: &B256, caller: Option<Address>) -> Result<bool, String>;
}

/// Every blob is readable by everyone (tests and single-user tools only: the
/// node never serves with it).
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicBlobs;

impl BlobAccessPolicy for PublicBlobs {
    fn allowed(&self, _hash: &B256, _caller: Option<Address>) -> Result<bool, String> {
        Ok(true)
    }
}

/// A blob hash from its text form: 64 hex digits, with or without `0x`.
pub fn parse_hash(s: &str) -> Option<B256> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(digits, &mut out).ok()?;
    Some(B256::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes() {
        let h = primitives::content_hash(b"x");
        let hex = hex::encode(h);
        assert_eq!(parse_hash(&hex), Some(h));
        assert_eq!(parse_hash(&format!("0x{hex}")), Some(h));
        assert_eq!(parse_hash(&format!("0X{}", hex.to_uppercase())), Some(h));
        assert_eq!(parse_hash(&hex[1..]), None);
        assert_eq!(parse_hash(&format!("{hex}0")), None);
        assert_eq!(parse_hash(&format!("{}g", &hex[1..])), None);
        assert_eq!(parse_hash(""), None);
    }
}
