//! The history index: subject ‖ block ‖ tx index ‖ slot → roles, where a
//! subject is an address, a Datanet, a model or a contribution
//! ([`primitives::history::Subject`]) and the slot is 0 for the transaction
//! itself, `n + 1` for its log `n`. It is written in the block's own write
//! transaction, so it never disagrees with the blocks; a page of one
//! subject's history newest first is one reverse range read.
//!
//! `meta["indexed"]` is the next block the index lacks. A store written
//! before the index existed has none: [`Store::index_history`] fills it in
//! batches (the chain does so when it opens), and until it has caught up
//! [`Store::commit`] leaves new blocks to it. `meta["history_format"]` is
//! [`HISTORY_FORMAT`]; a store whose index was written in an older format
//! (format 1 did not file logs under their emitting contract, format 2 did
//! not file settled receipts under their model) has its index dropped when it
//! opens, and rebuilt the same way.

use std::collections::BTreeMap;

use primitives::block::{Receipt, StoredTx};
use primitives::history::{
    HistoryCursor, HistoryEntry, HistoryPage, MAX_HISTORY_PAGE, ROLE_EMITTER, ROLE_LOG, ROLE_RECIPIENT, ROLE_SENDER,
    SUBJECT_BYTES, Subject, data_subjects, emitter_subject, log_subjects, tx_subjects,
};
use primitives::tx::SignedTransaction;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

use crate::store::{META, Snapshot, Store, be8};
use crate::{Result, StorageError};

/// subject (21 bytes) ‖ block BE ‖ tx index BE (u32) ‖ slot BE (u32) → roles.
pub(crate) const HISTORY: TableDefinition<&[u8], u8> = TableDefinition::new("history");

const KEY_BYTES: usize = SUBJECT_BYTES + 16;

/// The index's format: 2 files logs under their emitting contract too; 3
/// files the inference module's `ReceiptSettled` under its model as well.
pub const HISTORY_FORMAT: u64 = 3;

/// Drop an index written in an older format (it is rebuilt from the blocks).
pub(crate) fn upgrade(w: &WriteTransaction) -> Result<()> {
    let mut meta = w.open_table(META)?;
    let format = match meta.get("history_format")? {
        Some(g) => u64::from_be_bytes(g.value().try_into().map_err(|_| StorageError::Corrupt("meta".into()))?),
        None => 1,
    };
    if format == HISTORY_FORMAT {
        return Ok(());
    }
    let had_index = meta.get("indexed")?.is_some();
    meta.remove("indexed")?;
    meta.insert("history_format", be8(HISTORY_FORMAT).as_slice())?;
    drop(meta);
    if had_index {
        w.delete_table(HISTORY)?;
    }
    w.open_table(HISTORY)?;
    Ok(())
}

fn key(subject: &Subject, c: HistoryCursor) -> [u8; KEY_BYTES] {
    let mut k = [0u8; KEY_BYTES];
    k[..SUBJECT_BYTES].copy_from_slice(&subject.to_bytes());
    k[SUBJECT_BYTES..SUBJECT_BYTES + 8].copy_from_slice(&be8(c.block));
    k[SUBJECT_BYTES + 8..SUBJECT_BYTES + 12].copy_from_slice(&c.tx_index.to_be_bytes());
    k[SUBJECT_BYTES + 12..].copy_from_slice(&c.slot.to_be_bytes());
    k
}

fn entry(k: &[u8], roles: u8) -> Result<HistoryEntry> {
    if k.len() != KEY_BYTES {
        return Err(StorageError::Corrupt("history key".into()));
    }
    let slot = u32::from_be_bytes(k[SUBJECT_BYTES + 12..].try_into().unwrap());
    Ok(HistoryEntry {
        block: u64::from_be_bytes(k[SUBJECT_BYTES..SUBJECT_BYTES + 8].try_into().unwrap()),
        tx_index: u32::from_be_bytes(k[SUBJECT_BYTES + 8..SUBJECT_BYTES + 12].try_into().unwrap()),
        log_index: slot.checked_sub(1),
        roles,
    })
}

/// The next block the index lacks, as of `w`.
pub(crate) fn next_unindexed(w: &WriteTransaction) -> Result<u64> {
    let meta = w.open_table(META)?;
    let read = |k: &str| -> Result<u64> {
        Ok(match meta.get(k)? {
            Some(g) => u64::from_be_bytes(g.value().try_into().map_err(|_| StorageError::Corrupt("meta".into()))?),
            None => 0,
        })
    };
    Ok(read("indexed")?.max(read("first_block")?))
}

/// Write block `number`'s entries (O(transactions + logs)) and mark it indexed.
pub(crate) fn index_block(w: &WriteTransaction, number: u64, txs: &[StoredTx], receipts: &[Receipt]) -> Result<()> {
    let mut entries: BTreeMap<[u8; KEY_BYTES], u8> = BTreeMap::new();
    for (i, tx) in txs.iter().enumerate() {
        let tx_index = i as u32;
        // The store takes bodies as opaque bytes; one that does not decode
        // (the chain never commits such) is filed under its sender only.
        let to = SignedTransaction::from_trusted(tx.raw.clone(), tx.sender).ok().and_then(|t| t.to());
        for s in tx_subjects(tx.sender, to) {
            let role = if s == Subject::Address(tx.sender) { ROLE_SENDER } else { ROLE_RECIPIENT };
            *entries.entry(key(&s, HistoryCursor { block: number, tx_index, slot: 0 })).or_default() |= role;
        }
        for (j, log) in receipts.get(i).map_or(&[][..], |r| &r.logs[..]).iter().enumerate() {
            let at = HistoryCursor { block: number, tx_index, slot: j as u32 + 1 };
            for s in log_subjects(log).into_iter().chain(data_subjects(log)) {
                *entries.entry(key(&s, at)).or_default() |= ROLE_LOG;
            }
            if let Some(s) = emitter_subject(log) {
                *entries.entry(key(&s, at)).or_default() |= ROLE_EMITTER;
            }
        }
    }
    let mut table = w.open_table(HISTORY)?;
    for (k, roles) in &entries {
        table.insert(k.as_slice(), *roles)?;
    }
    w.open_table(META)?.insert("indexed", be8(number + 1).as_slice())?;
    Ok(())
}

/// What one [`Store::index_history`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexProgress {
    /// Blocks indexed by this call.
    pub indexed: u64,
    /// The next block the index lacks.
    pub next: u64,
    /// Committed blocks still lacking (0: caught up).
    pub remaining: u64,
}

impl Store {
    /// Index up to `max_blocks` of the committed blocks the history index
    /// lacks (a store written before it existed), in one write transaction.
    /// Blocks whose body is not stored (below a snapshot import) are skipped.
    pub fn index_history(&self, max_blocks: u64) -> Result<IndexProgress> {
        let w = self.db.begin_write()?;
        let from = next_unindexed(&w)?;
        let head = match self.snapshot()?.head()? {
            Some(h) if h >= from => h,
            // Nothing committed yet, or nothing left to index.
            _ => return Ok(IndexProgress { indexed: 0, next: from, remaining: 0 }),
        };
        let to = head.min(from.saturating_add(max_blocks.max(1)) - 1);
        let snap = self.snapshot()?;
        for n in from..=to {
            let txs = snap.body(n)?.unwrap_or_default();
            let receipts = snap.receipts(n)?.unwrap_or_default();
            index_block(&w, n, &txs, &receipts)?;
        }
        w.commit()?;
        Ok(IndexProgress { indexed: to + 1 - from, next: to + 1, remaining: head - to })
    }
}

impl Snapshot {
    /// A page of `subject`'s history, newest first, strictly before `before`
    /// (from the newest when `None`); `limit` is clamped to 1..=[`MAX_HISTORY_PAGE`].
    pub fn history(&self, subject: &Subject, before: Option<HistoryCursor>, limit: usize) -> Result<HistoryPage> {
        let limit = limit.clamp(1, MAX_HISTORY_PAGE);
        let lo = key(subject, HistoryCursor { block: 0, tx_index: 0, slot: 0 });
        let hi = key(subject, before.unwrap_or(HistoryCursor { block: u64::MAX, tx_index: u32::MAX, slot: u32::MAX }));
        let mut entries = Vec::with_capacity(limit + 1);
        let range = self.history.range::<&[u8]>(lo.as_slice()..hi.as_slice())?;
        for e in range.rev().take(limit + 1) {
            let (k, v) = e?;
            entries.push(entry(k.value(), v.value())?);
        }
        let more = entries.len() > limit;
        entries.truncate(limit);
        let indexed = self.meta_u64("indexed")?.unwrap_or(0);
        Ok(HistoryPage {
            next: if more { entries.last().map(HistoryEntry::cursor) } else { None },
            entries,
            indexed_from: self.first_block()?,
            indexed_to: indexed.checked_sub(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BlockRecord, StoreOptions};
    use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
    use alloy_eips::eip2718::Encodable2718;
    use alloy_primitives::{Signature, TxKind};
    use alloy_sol_types::SolEvent;
    use primitives::abi::{IBank, IInference};
    use primitives::block::Header;
    use primitives::system::Module;
    use primitives::{Address, U256};

    const ALICE: Address = Address::repeat_byte(0xa1);
    const BOB: Address = Address::repeat_byte(0xb0);

    /// Block `n`: ALICE sends BOB a transfer, whose receipt logs a bank Transfer.
    fn block(n: u64) -> BlockRecord {
        let tx = TxEip1559 { chain_id: 1, nonce: n, to: TxKind::Call(BOB), gas_limit: 21_000, ..Default::default() };
        let signed = tx.into_signed(Signature::new(U256::from(1), U256::from(1), false));
        let raw = TxEnvelope::from(signed).encoded_2718();
        let transfer = IBank::Transfer { from: ALICE, to: BOB, value: U256::from(n) };
        let log = primitives::Log { address: Module::Bank.address(), data: transfer.encode_log_data() };
        let receipt = Receipt {
            tx_type: 2,
            success: true,
            cumulative_gas_used: 21_000,
            gas_used: 21_000,
            effective_gas_price: 1,
            logs: vec![log],
            revert_data: Default::default(),
        };
        let mut r = BlockRecord::empty(Header { number: n, ..Default::default() });
        r.txs = vec![StoredTx { raw: raw.into(), sender: ALICE }];
        r.tx_hashes = vec![primitives::B256::with_last_byte(n as u8)];
        r.receipts = vec![receipt];
        r
    }

    fn commit(store: &Store, n: u64) {
        let u = store.prepare(n, &BTreeMap::from([(b"k".to_vec(), Some(n.to_be_bytes().to_vec()))])).unwrap();
        store.commit(&block(n), u).unwrap();
    }

    fn all(store: &Store, s: Subject) -> Vec<HistoryEntry> {
        let snap = store.snapshot().unwrap();
        let mut out = vec![];
        let mut before = None;
        loop {
            let page = snap.history(&s, before, 2).unwrap();
            assert!(page.entries.len() <= 2);
            out.extend(page.entries);
            match page.next {
                Some(c) => before = Some(c),
                None => return out,
            }
        }
    }

    #[test]
    fn written_with_each_block_paged_newest_first_and_kept_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let store = Store::open(&path, StoreOptions { history: 2, ..Default::default() }).unwrap();
        for n in 0..5 {
            commit(&store, n);
            // The entries of block n are visible exactly when block n is.
            let page = store.snapshot().unwrap().history(&Subject::Address(BOB), None, 1).unwrap();
            assert_eq!((page.entries[0].block, page.indexed_to), (n, Some(n)));
        }
        drop(store);
        let store = Store::open(&path, StoreOptions { history: 2, ..Default::default() }).unwrap();
        let bob = all(&store, Subject::Address(BOB));
        // Per block: the transaction (recipient) and its Transfer log, newest first.
        let expect: Vec<(u64, Option<u32>, u8)> =
            (0..5).rev().flat_map(|n| [(n, Some(0), ROLE_LOG), (n, None, ROLE_RECIPIENT)]).collect();
        assert_eq!(bob.iter().map(|e| (e.block, e.log_index, e.roles)).collect::<Vec<_>>(), expect);
        assert_eq!(all(&store, Subject::Address(ALICE))[1].roles, ROLE_SENDER);
        assert!(all(&store, Subject::Datanet(1)).is_empty());
        // Limits are clamped; a cursor resumes strictly before itself.
        let snap = store.snapshot().unwrap();
        assert_eq!(snap.history(&Subject::Address(BOB), None, 0).unwrap().entries.len(), 1);
        let c = HistoryCursor { block: 3, tx_index: 0, slot: 1 };
        assert_eq!(
            snap.history(&Subject::Address(BOB), Some(c), 1000).unwrap().entries[0].cursor(),
            HistoryCursor { block: 3, tx_index: 0, slot: 0 }
        );
        assert_eq!(c.to_string().parse::<HistoryCursor>(), Ok(c));
        assert!("3-0".parse::<HistoryCursor>().is_err() && "a-b-c".parse::<HistoryCursor>().is_err());
    }

    #[test]
    fn an_empty_store_has_nothing_to_index() {
        let store = Store::in_memory(StoreOptions::default()).unwrap();
        assert_eq!(store.index_history(10).unwrap(), IndexProgress { indexed: 0, next: 0, remaining: 0 });
        commit(&store, 0);
        assert_eq!(store.snapshot().unwrap().history(&Subject::Address(BOB), None, 10).unwrap().entries.len(), 2);
    }

    #[test]
    fn a_store_without_the_index_is_filled_in_and_then_kept_current() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        for n in 0..7 {
            commit(&store, n);
        }
        let full = all(&store, Subject::Address(BOB));
        // What a data directory from before the index looks like.
        let w = store.db.begin_write().unwrap();
        w.delete_table(HISTORY).unwrap();
        w.open_table(META).unwrap().remove("indexed").unwrap();
        w.commit().unwrap();
        drop(store);
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        assert!(all(&store, Subject::Address(BOB)).is_empty());
        // New blocks wait for the index to catch up rather than leave a gap.
        commit(&store, 7);
        assert!(all(&store, Subject::Address(BOB)).is_empty());
        let progress = |indexed, next| IndexProgress { indexed, next, remaining: 8 - next };
        assert_eq!(store.index_history(3).unwrap(), progress(3, 3));
        assert_eq!(store.index_history(3).unwrap(), progress(3, 6));
        assert_eq!(store.index_history(3).unwrap(), progress(2, 8));
        assert_eq!(store.index_history(3).unwrap(), progress(0, 8));
        commit(&store, 8);
        let rebuilt = all(&store, Subject::Address(BOB));
        assert_eq!(rebuilt.len(), full.len() + 4);
        assert_eq!(&rebuilt[4..], &full[..]);
    }

    /// A contract's own logs are its history (ROLE_EMITTER), beside the
    /// addresses they name; a module's are not filed under the module.
    #[test]
    fn contract_logs_are_filed_under_their_emitter_and_old_indexes_are_rebuilt() {
        const TOKEN: Address = Address::repeat_byte(0xc0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        let mut b = block(0);
        let transfer = IBank::Transfer { from: ALICE, to: BOB, value: U256::from(5) };
        b.receipts[0].logs.push(primitives::Log { address: TOKEN, data: transfer.encode_log_data() });
        let u = store.prepare(0, &BTreeMap::from([(b"k".to_vec(), Some(vec![0]))])).unwrap();
        store.commit(&b, u).unwrap();
        let token = all(&store, Subject::Address(TOKEN));
        assert_eq!(token.iter().map(|e| (e.log_index, e.roles)).collect::<Vec<_>>(), vec![(Some(1), ROLE_EMITTER)]);
        assert!(all(&store, Subject::Address(Module::Bank.address())).is_empty(), "modules are not emitters");
        assert_eq!(all(&store, Subject::Address(BOB)).len(), 3, "the transaction and both transfers");
        // A store indexed in format 1 (no emitters): its index is dropped on open and rebuilt.
        let w = store.db.begin_write().unwrap();
        {
            let mut t = w.open_table(HISTORY).unwrap();
            let k = key(&Subject::Address(TOKEN), HistoryCursor { block: 0, tx_index: 0, slot: 2 });
            t.remove(k.as_slice()).unwrap();
        }
        w.open_table(META).unwrap().remove("history_format").unwrap();
        w.commit().unwrap();
        drop(store);
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        assert!(all(&store, Subject::Address(BOB)).is_empty(), "dropped, to be rebuilt");
        assert_eq!(store.index_history(10).unwrap().next, 1);
        assert_eq!(all(&store, Subject::Address(TOKEN)), token);
        drop(store);
        // Opening a current store again drops nothing.
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        assert_eq!(all(&store, Subject::Address(TOKEN)), token);
    }

    /// A settled receipt names its model in its data: the index files it under
    /// the model too, and a store indexed in format 2 (which did not) is rebuilt.
    #[test]
    fn settled_receipts_are_filed_under_their_model_and_format_2_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        let mut b = block(0);
        let settled = IInference::ReceiptSettled {
            receiptHash: primitives::B256::repeat_byte(7),
            payer: ALICE,
            operator: BOB,
            modelId: 42,
            cost: 1000,
            dataShare: 0,
        };
        b.receipts[0]
            .logs
            .push(primitives::Log { address: Module::Inference.address(), data: settled.encode_log_data() });
        let u = store.prepare(0, &BTreeMap::from([(b"k".to_vec(), Some(vec![0]))])).unwrap();
        store.commit(&b, u).unwrap();
        let model = all(&store, Subject::Model(42));
        assert_eq!(model.iter().map(|e| (e.log_index, e.roles)).collect::<Vec<_>>(), vec![(Some(1), ROLE_LOG)]);
        assert!(all(&store, Subject::Model(7)).is_empty());
        // A store indexed in format 2: no model entry; dropped on open and rebuilt with it.
        let w = store.db.begin_write().unwrap();
        {
            let mut t = w.open_table(HISTORY).unwrap();
            let k = key(&Subject::Model(42), HistoryCursor { block: 0, tx_index: 0, slot: 2 });
            assert!(t.remove(k.as_slice()).unwrap().is_some());
        }
        w.open_table(META).unwrap().insert("history_format", be8(2).as_slice()).unwrap();
        w.commit().unwrap();
        drop(store);
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        assert!(all(&store, Subject::Address(BOB)).is_empty(), "dropped, to be rebuilt");
        assert_eq!(store.index_history(10).unwrap().next, 1);
        assert_eq!(all(&store, Subject::Model(42)), model);
    }
}
