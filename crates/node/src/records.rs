//! The attribution records this node signed, by receipt, and who may read
//! each: on disk, one small JSON file a receipt under `<dir>/records/`
//! (written before the record is announced), so they outlive a restart and a
//! challenge a day later still finds the record; the newest [`RECENT`] are
//! also kept in memory, so memory stays bounded however many answers a node
//! serves. A record's blob (its canonical bytes) is found by its hash through
//! `<dir>/records/by-hash/<hash>`, which names the receipt.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use primitives::{Address, B256};
use serde_json::{Value, json};

/// Records kept in memory, the newest.
pub const RECENT: usize = 1_024;

#[derive(Default)]
struct Recent {
    by_receipt: HashMap<B256, (B256, Value, serve::RecordAccess)>,
    order: VecDeque<B256>,
}

pub struct RecordStore {
    dir: PathBuf,
    recent: Mutex<Recent>,
}

fn access_json(a: &serve::RecordAccess) -> Value {
    json!({"payer": a.payer, "operator": a.operator, "public": a.public})
}

fn access_of(v: &Value) -> Option<serve::RecordAccess> {
    let addr = |k: &str| -> Option<Option<Address>> {
        match &v[k] {
            Value::Null => Some(None),
            Value::String(s) => s.parse().ok().map(Some),
            _ => None,
        }
    };
    Some(serve::RecordAccess { payer: addr("payer")?, operator: addr("operator")?, public: v["public"].as_bool()? })
}

/// Write `bytes` to `path` through a temporary file and a rename, so a crash
/// leaves the old file or the new one, never half of one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl RecordStore {
    pub fn new(dir: PathBuf) -> RecordStore {
        RecordStore { dir, recent: Mutex::new(Recent::default()) }
    }

    fn file(&self, receipt: &B256) -> PathBuf {
        self.dir.join(format!("{receipt:x}.json"))
    }

    fn hash_file(&self, hash: &B256) -> PathBuf {
        self.dir.join("by-hash").join(format!("{hash:x}"))
    }

    /// Keep the signed record of `receipt` (record hash `hash`) in memory and
    /// on disk; `Err` if the disk write failed (the record then lasts only
    /// while it stays among the newest in memory).
    pub fn put(&self, receipt: B256, hash: B256, signed: Value, access: serve::RecordAccess) -> Result<(), String> {
        let body = json!({"recordHash": hash.to_string(), "signed": signed, "access": access_json(&access)});
        self.remember(receipt, hash, signed, access);
        std::fs::create_dir_all(self.dir.join("by-hash"))
            .and_then(|()| write_atomic(&self.file(&receipt), body.to_string().as_bytes()))
            .and_then(|()| write_atomic(&self.hash_file(&hash), format!("{receipt:x}").as_bytes()))
            .map_err(|e| format!("attribution record of {receipt} not stored in {}: {e}", self.dir.display()))
    }

    fn remember(&self, receipt: B256, hash: B256, signed: Value, access: serve::RecordAccess) {
        let mut r = self.recent.lock().unwrap();
        if r.by_receipt.insert(receipt, (hash, signed, access)).is_none() {
            r.order.push_back(receipt);
        }
        while r.order.len() > RECENT {
            if let Some(old) = r.order.pop_front() {
                r.by_receipt.remove(&old);
            }
        }
    }

    /// The stored (hash, signed record, access) of `receipt`: from memory, else from disk.
    fn load(&self, receipt: &B256) -> Option<(B256, Value, serve::RecordAccess)> {
        if let Some(x) = self.recent.lock().unwrap().by_receipt.get(receipt) {
            return Some(x.clone());
        }
        let bytes = std::fs::read(self.file(receipt)).ok()?;
        let v: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("attribution record file of {receipt} is unreadable: {e}");
                return None;
            }
        };
        let hash: B256 = v["recordHash"].as_str()?.parse().ok()?;
        let access = access_of(&v["access"])?;
        Some((hash, v["signed"].clone(), access))
    }

    /// The signed record of `receipt` and who may read it.
    pub fn get(&self, receipt: &B256) -> Option<(Value, serve::RecordAccess)> {
        self.load(receipt).map(|(_, signed, access)| (signed, access))
    }

    /// Who may read the record whose canonical bytes hash to `hash`, if this node made it.
    pub fn access_by_hash(&self, hash: &B256) -> Option<serve::RecordAccess> {
        {
            let r = self.recent.lock().unwrap();
            if let Some((_, _, a)) = r.by_receipt.values().find(|(h, _, _)| h == hash) {
                return Some(*a);
            }
        }
        let receipt: B256 = std::fs::read_to_string(self.hash_file(hash)).ok()?.trim().parse().ok()?;
        self.load(&receipt).filter(|(h, _, _)| h == hash).map(|(_, _, a)| a)
    }

    /// Records in memory (at most [`RECENT`]).
    #[cfg(test)]
    fn in_memory(&self) -> usize {
        self.recent.lock().unwrap().by_receipt.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(i: u8) -> serve::RecordAccess {
        serve::RecordAccess { payer: Some(Address::repeat_byte(i)), operator: None, public: i.is_multiple_of(2) }
    }

    #[test]
    fn memory_is_bounded_and_every_record_outlives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordStore::new(dir.path().join("records"));
        let n = RECENT + 50;
        for i in 0..n {
            let receipt = B256::from(primitives::U256::from(i));
            let hash = primitives::keccak256(receipt);
            store.put(receipt, hash, json!({"record": i}), access((i % 250) as u8)).unwrap();
        }
        assert_eq!(store.in_memory(), RECENT);
        // The oldest left memory and is read back from disk.
        let first = B256::from(primitives::U256::from(0));
        assert_eq!(store.get(&first), Some((json!({"record": 0}), access(0))));
        assert_eq!(store.access_by_hash(&primitives::keccak256(first)), Some(access(0)));
        drop(store);
        let store = RecordStore::new(dir.path().join("records"));
        assert_eq!(store.in_memory(), 0);
        let last = B256::from(primitives::U256::from(n - 1));
        assert_eq!(store.get(&last).unwrap().0, json!({"record": n - 1}));
        assert_eq!(store.get(&B256::repeat_byte(9)), None);
        assert_eq!(store.access_by_hash(&B256::repeat_byte(9)), None);
    }

    #[test]
    fn a_damaged_file_is_no_record_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordStore::new(dir.path().to_path_buf());
        let receipt = B256::repeat_byte(1);
        let hash = B256::repeat_byte(2);
        store.put(receipt, hash, json!({"x": 1}), access(1)).unwrap();
        let store = RecordStore::new(dir.path().to_path_buf());
        std::fs::write(store.file(&receipt), b"{not json").unwrap();
        assert_eq!(store.get(&receipt), None);
        std::fs::write(store.file(&receipt), br#"{"recordHash":"0x01","signed":{},"access":{}}"#).unwrap();
        assert_eq!(store.get(&receipt), None);
        // A by-hash entry naming another receipt's record is not believed.
        std::fs::write(store.hash_file(&B256::repeat_byte(3)), format!("{receipt:x}")).unwrap();
        assert_eq!(store.access_by_hash(&B256::repeat_byte(3)), None);
    }
}
