//! The transaction pool: per-sender nonce order, replacement by fee bump,
//! limits and eviction. It knows nothing of disk; [`crate::Chain`] journals
//! what it accepts.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use primitives::{Address, B256, SignedTransaction, U256};

/// Pool limits.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Transactions held in all.
    pub max_txs: usize,
    /// Transactions held per sender.
    pub max_per_sender: usize,
    /// How far ahead of the account's nonce a transaction may be.
    pub max_nonce_gap: u64,
    /// Minimum fee increase, in percent, for a replacement (same sender and nonce).
    pub price_bump_percent: u128,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig { max_txs: 50_000, max_per_sender: 1_024, max_nonce_gap: 1_024, price_bump_percent: 10 }
    }
}

/// Why the pool refused a transaction (go-ethereum's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("already known")]
    AlreadyKnown,
    #[error("nonce too low")]
    NonceTooLow,
    #[error("nonce too high")]
    NonceTooHigh,
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    #[error("insufficient funds for gas * price + value")]
    InsufficientFunds,
    #[error("txpool is full")]
    Full,
    #[error("account limit exceeded")]
    SenderFull,
}

#[derive(Clone, Debug)]
pub struct PooledTx {
    pub tx: Arc<SignedTransaction>,
    /// Arrival order, to break fee ties first-come first-served.
    pub seq: u64,
}

/// What an admission changed.
#[derive(Debug)]
pub enum Admitted {
    New,
    /// Replaced the transaction with this hash.
    Replaced(B256),
}

#[derive(Default)]
pub struct Pool {
    cfg: PoolConfig,
    by_hash: HashMap<B256, PooledTx>,
    by_sender: HashMap<Address, BTreeMap<u64, B256>>,
    seq: u64,
}

fn max_cost(tx: &SignedTransaction) -> U256 {
    U256::from(tx.gas_limit()) * U256::from(tx.max_fee_per_gas()) + tx.value()
}

/// The tip a transaction pays per gas at `base_fee`.
fn tip(tx: &SignedTransaction, base_fee: u64) -> u128 {
    tx.effective_gas_price(base_fee).saturating_sub(base_fee as u128)
}

impl Pool {
    pub fn new(cfg: PoolConfig) -> Self {
        Pool { cfg, ..Default::default() }
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn get(&self, hash: &B256) -> Option<Arc<SignedTransaction>> {
        self.by_hash.get(hash).map(|p| p.tx.clone())
    }

    pub fn contains(&self, hash: &B256) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Every pooled transaction in arrival order (what the journal must hold).
    pub fn all_raw(&self) -> Vec<primitives::Bytes> {
        let mut v: Vec<&PooledTx> = self.by_hash.values().collect();
        v.sort_by_key(|p| p.seq);
        v.into_iter().map(|p| p.tx.raw.clone()).collect()
    }

    /// The next nonce of `sender` counting its contiguous pooled transactions.
    pub fn pending_nonce(&self, sender: &Address, state_nonce: u64) -> u64 {
        let mut n = state_nonce;
        if let Some(q) = self.by_sender.get(sender) {
            while q.contains_key(&n) {
                n += 1;
            }
        }
        n
    }

    /// (executable, queued): transactions that follow their sender's nonce without gap, and the rest.
    pub fn counts(&self, state_nonce: impl Fn(&Address) -> u64) -> (usize, usize) {
        let mut ready = 0;
        for (s, q) in &self.by_sender {
            let n0 = state_nonce(s);
            let mut n = n0;
            while q.contains_key(&n) {
                n += 1;
            }
            ready += (n - n0) as usize;
        }
        (ready, self.len() - ready)
    }

    /// Admit `tx` given its sender's state nonce and balance.
    pub fn add(
        &mut self,
        tx: SignedTransaction,
        state_nonce: u64,
        balance: U256,
        base_fee: u64,
    ) -> Result<Admitted, PoolError> {
        if self.by_hash.contains_key(&tx.hash) {
            return Err(PoolError::AlreadyKnown);
        }
        let nonce = tx.nonce();
        if nonce < state_nonce {
            return Err(PoolError::NonceTooLow);
        }
        if nonce >= state_nonce + self.cfg.max_nonce_gap {
            return Err(PoolError::NonceTooHigh);
        }
        let queue = self.by_sender.get(&tx.sender);
        let replacing = queue.and_then(|q| q.get(&nonce)).copied();
        if let Some(old_hash) = replacing {
            let old = &self.by_hash[&old_hash].tx;
            let bump = |old: u128| old + old * self.cfg.price_bump_percent / 100;
            if tx.max_fee_per_gas() < bump(old.max_fee_per_gas())
                || tx.max_priority_fee_per_gas() < bump(old.max_priority_fee_per_gas())
            {
                return Err(PoolError::ReplacementUnderpriced);
            }
        }
        // The sender must afford this transaction on top of its other pooled ones.
        let mut committed = max_cost(&tx);
        if let Some(q) = queue {
            for (n, h) in q {
                if *n != nonce {
                    committed += max_cost(&self.by_hash[h].tx);
                }
            }
            if replacing.is_none() && q.len() >= self.cfg.max_per_sender {
                return Err(PoolError::SenderFull);
            }
        }
        if committed > balance {
            return Err(PoolError::InsufficientFunds);
        }
        if replacing.is_none() && self.by_hash.len() >= self.cfg.max_txs {
            self.evict_for(&tx, base_fee)?;
        }
        if let Some(old) = replacing {
            self.by_hash.remove(&old);
        }
        self.seq += 1;
        let hash = tx.hash;
        let sender = tx.sender;
        self.by_hash.insert(hash, PooledTx { tx: Arc::new(tx), seq: self.seq });
        self.by_sender.entry(sender).or_default().insert(nonce, hash);
        Ok(match replacing {
            Some(h) => Admitted::Replaced(h),
            None => Admitted::New,
        })
    }

    /// Make room for `incoming` by dropping the cheapest sender's last transaction,
    /// if `incoming` pays more per gas; otherwise refuse it.
    fn evict_for(&mut self, incoming: &SignedTransaction, base_fee: u64) -> Result<(), PoolError> {
        let mut victim: Option<(u128, u64, Address, u64)> = None;
        for (s, q) in &self.by_sender {
            if let Some((n, h)) = q.iter().next_back() {
                let p = &self.by_hash[h];
                let t = tip(&p.tx, base_fee);
                let better = match victim {
                    None => true,
                    Some((vt, vseq, _, _)) => t < vt || (t == vt && p.seq > vseq),
                };
                if better {
                    victim = Some((t, p.seq, *s, *n));
                }
            }
        }
        match victim {
            Some((t, _, s, n)) if t < tip(incoming, base_fee) => {
                self.remove_nonce(&s, n);
                Ok(())
            }
            _ => Err(PoolError::Full),
        }
    }

    fn remove_nonce(&mut self, sender: &Address, nonce: u64) {
        if let Some(q) = self.by_sender.get_mut(sender) {
            if let Some(h) = q.remove(&nonce) {
                self.by_hash.remove(&h);
            }
            if q.is_empty() {
                self.by_sender.remove(sender);
            }
        }
    }

    pub fn remove(&mut self, hash: &B256) {
        if let Some(p) = self.by_hash.get(hash) {
            let (s, n) = (p.tx.sender, p.tx.nonce());
            self.remove_nonce(&s, n);
        }
    }

    /// Drop every transaction of `sender` below `state_nonce` (included or superseded).
    pub fn prune_sender(&mut self, sender: &Address, state_nonce: u64) {
        if let Some(q) = self.by_sender.get_mut(sender) {
            let stale: Vec<u64> = q.range(..state_nonce).map(|(n, _)| *n).collect();
            for n in stale {
                if let Some(h) = q.remove(&n) {
                    self.by_hash.remove(&h);
                }
            }
            if q.is_empty() {
                self.by_sender.remove(sender);
            }
        }
    }

    pub fn senders(&self) -> Vec<Address> {
        self.by_sender.keys().copied().collect()
    }

    /// Up to `max` executable transactions, best tip first, each sender's in
    /// nonce order starting at its state nonce. Ties go to the earlier arrival.
    pub fn best(
        &self,
        base_fee: u64,
        max: usize,
        state_nonce: impl Fn(&Address) -> u64,
    ) -> Vec<Arc<SignedTransaction>> {
        let mut heap = BinaryHeap::new();
        for (s, q) in &self.by_sender {
            let n = state_nonce(s);
            if let Some(h) = q.get(&n) {
                let p = &self.by_hash[h];
                if p.tx.max_fee_per_gas() >= base_fee as u128 {
                    heap.push((tip(&p.tx, base_fee), Reverse(p.seq), *s, n));
                }
            }
        }
        let mut out = Vec::new();
        while let Some((_, _, s, n)) = heap.pop() {
            if out.len() >= max {
                break;
            }
            let q = &self.by_sender[&s];
            out.push(self.by_hash[&q[&n]].tx.clone());
            if let Some(h) = q.get(&(n + 1)) {
                let p = &self.by_hash[h];
                if p.tx.max_fee_per_gas() >= base_fee as u128 {
                    heap.push((tip(&p.tx, base_fee), Reverse(p.seq), s, n + 1));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::TxEip1559;
    use alloy_primitives::TxKind;

    fn tx(seed: u8, nonce: u64, tip: u128) -> SignedTransaction {
        let k = keys::SecretKey::from_bytes(&[seed; 32]).unwrap();
        let t = TxEip1559 {
            chain_id: 1,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 100 + tip,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(Address::ZERO),
            ..Default::default()
        };
        SignedTransaction::decode(&keys::encode_2718(&keys::sign_eip1559(&k, t)), 1).unwrap()
    }

    const RICH: U256 = U256::MAX;

    #[test]
    fn best_orders_by_tip_then_nonce_and_skips_gaps() {
        let mut p = Pool::new(PoolConfig::default());
        let (a0, a1, b0, c5) = (tx(1, 0, 5), tx(1, 1, 50), tx(2, 0, 10), tx(3, 5, 99));
        for t in [&a1, &a0, &b0, &c5] {
            p.add(t.clone(), 0, RICH, 100).unwrap();
        }
        let order: Vec<B256> = p.best(100, 10, |_| 0).iter().map(|t| t.hash).collect();
        // b0 (tip 10) before a0 (tip 5); a1 only after a0; c5 is gapped.
        assert_eq!(order, vec![b0.hash, a0.hash, a1.hash]);
        assert_eq!(p.pending_nonce(&a0.sender, 0), 2);
        assert_eq!(p.counts(|_| 0), (3, 1));
        assert_eq!(p.best(100, 1, |_| 0).len(), 1);
    }

    #[test]
    fn limits_and_eviction() {
        let cfg = PoolConfig { max_txs: 3, max_per_sender: 2, max_nonce_gap: 4, price_bump_percent: 10 };
        let mut p = Pool::new(cfg);
        p.add(tx(1, 0, 1), 0, RICH, 100).unwrap();
        p.add(tx(1, 1, 1), 0, RICH, 100).unwrap();
        assert_eq!(p.add(tx(1, 2, 1), 0, RICH, 100).unwrap_err(), PoolError::SenderFull);
        assert_eq!(p.add(tx(2, 9, 1), 0, RICH, 100).unwrap_err(), PoolError::NonceTooHigh);
        p.add(tx(2, 0, 3), 0, RICH, 100).unwrap();
        // Full: a cheaper newcomer is refused, a richer one evicts the cheapest sender's last tx.
        assert_eq!(p.add(tx(3, 0, 1), 0, RICH, 100).unwrap_err(), PoolError::Full);
        p.add(tx(3, 0, 7), 0, RICH, 100).unwrap();
        assert_eq!(p.len(), 3);
        assert!(!p.contains(&tx(1, 1, 1).hash));
        assert!(p.contains(&tx(1, 0, 1).hash));
        // Balance must cover every pooled transaction of the sender.
        let mut p = Pool::new(PoolConfig::default());
        let cost = U256::from(21_000u64 * 101);
        p.add(tx(4, 0, 1), 0, cost, 100).unwrap();
        assert_eq!(p.add(tx(4, 1, 1), 0, cost, 100).unwrap_err(), PoolError::InsufficientFunds);
        p.prune_sender(&tx(4, 0, 1).sender, 1);
        assert!(p.is_empty());
    }
}
