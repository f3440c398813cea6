//! Attribution records waiting to be posted on-chain (phase two), journaled:
//! one small JSON file a receipt under `<dir>/to-post/`, written before the
//! record is announced and removed once its post is sent. A node killed
//! between computing a record and posting it posts it after the restart
//! (the meter asks the chain which of them already settled); before, the
//! queue was memory only, and such a receipt fell to the fallback.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use primitives::B256;
use primitives::abi::Credit;
use serde_json::{Value, json};

/// One record to post: its hash, its credits and the Datanet versions its answer retrieved from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub record: B256,
    pub credits: Vec<Credit>,
    pub retrieved: Vec<(u64, u64)>,
}

impl Pending {
    fn to_json(&self) -> Value {
        json!({
            "record": self.record.to_string(),
            "credits": self.credits.iter().map(|c| json!([c.contributionId, c.weightPpm])).collect::<Vec<_>>(),
            "retrieved": self.retrieved,
        })
    }

    fn from_json(v: &Value) -> Option<Pending> {
        let record = v["record"].as_str()?.parse().ok()?;
        let credits = v["credits"]
            .as_array()?
            .iter()
            .map(|c| Some(Credit { contributionId: c[0].as_u64()?, weightPpm: u32::try_from(c[1].as_u64()?).ok()? }))
            .collect::<Option<Vec<_>>>()?;
        let retrieved =
            v["retrieved"].as_array()?.iter().map(|p| Some((p[0].as_u64()?, p[1].as_u64()?))).collect::<Option<_>>()?;
        Some(Pending { record, credits, retrieved })
    }
}

/// The queue of records to post, in memory and in its directory.
pub struct PendingRecords {
    dir: PathBuf,
    map: Mutex<HashMap<B256, Pending>>,
}

impl PendingRecords {
    /// The queue journaled in `dir`, with what a previous run left there (a
    /// damaged file is dropped with a warning: its receipt falls to the fallback).
    pub fn open(dir: PathBuf) -> PendingRecords {
        let mut map = HashMap::new();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let Some(receipt) = name.strip_suffix(".json").and_then(|h| h.parse::<B256>().ok()) else { continue };
            let read = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            match read.as_ref().and_then(Pending::from_json) {
                Some(p) => {
                    map.insert(receipt, p);
                }
                None => {
                    tracing::warn!("pending attribution record {} is unreadable; dropped", path.display());
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        PendingRecords { dir, map: Mutex::new(map) }
    }

    fn file(&self, receipt: &B256) -> PathBuf {
        self.dir.join(format!("{receipt:x}.json"))
    }

    /// Queue `receipt`'s record: on disk first (`Err` if that failed: the
    /// record is then queued in memory only), then in memory.
    pub fn insert(&self, receipt: B256, p: Pending) -> Result<(), String> {
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| crate::records::write_atomic(&self.file(&receipt), p.to_json().to_string().as_bytes()))
            .map_err(|e| format!("pending attribution record of {receipt} not journaled: {e}"));
        self.map.lock().unwrap().insert(receipt, p);
        written
    }

    /// Take `receipt`'s record out of the queue (and its file).
    pub fn take(&self, receipt: &B256) -> Option<Pending> {
        let p = self.map.lock().unwrap().remove(receipt)?;
        if let Err(e) = std::fs::remove_file(self.file(receipt)) {
            tracing::warn!("pending attribution record of {receipt}: file not removed: {e}");
        }
        Some(p)
    }

    pub fn contains(&self, receipt: &B256) -> bool {
        self.map.lock().unwrap().contains_key(receipt)
    }

    /// The receipts queued.
    pub fn receipts(&self) -> Vec<B256> {
        self.map.lock().unwrap().keys().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(i: u8) -> Pending {
        Pending {
            record: B256::repeat_byte(i),
            credits: vec![
                Credit { contributionId: i.into(), weightPpm: 600_000 },
                Credit { contributionId: 99, weightPpm: 400_000 },
            ],
            retrieved: if i.is_multiple_of(2) { vec![(1, 2)] } else { vec![] },
        }
    }

    #[test]
    fn the_queue_outlives_a_restart_and_a_taken_record_does_not_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let q = PendingRecords::open(dir.path().join("to-post"));
        for i in 1..=4u8 {
            q.insert(B256::repeat_byte(0x10 + i), pending(i)).unwrap();
        }
        assert_eq!(q.take(&B256::repeat_byte(0x11)), Some(pending(1)));
        drop(q);
        // A restart: what was queued and not taken is back, exactly.
        let q = PendingRecords::open(dir.path().join("to-post"));
        assert_eq!(q.len(), 3);
        assert!(!q.contains(&B256::repeat_byte(0x11)));
        for i in 2..=4u8 {
            assert_eq!(q.take(&B256::repeat_byte(0x10 + i)), Some(pending(i)));
        }
        assert!(PendingRecords::open(dir.path().join("to-post")).is_empty());
    }

    #[test]
    fn a_damaged_file_is_dropped_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let to_post = dir.path().join("to-post");
        let q = PendingRecords::open(to_post.clone());
        q.insert(B256::repeat_byte(1), pending(1)).unwrap();
        std::fs::write(to_post.join(format!("{:x}.json", B256::repeat_byte(2))), b"{\"record\": 7").unwrap();
        std::fs::write(to_post.join("not-a-receipt.json"), b"{}").unwrap();
        let q = PendingRecords::open(to_post.clone());
        assert_eq!(q.receipts(), vec![B256::repeat_byte(1)]);
        assert!(!to_post.join(format!("{:x}.json", B256::repeat_byte(2))).exists());
    }
}
