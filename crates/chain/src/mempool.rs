//! The transaction pool: per-sender nonce order, replacement by fee bump,
//! limits and eviction. It knows nothing of disk; [`crate::Chain`] journals
//! what it accepts.
//!
//! A transaction is *executable* when it continues its sender's nonce
//! without a gap, *queued* (future) otherwise. Queued transactions cannot be
//! mined, so they are held on a short leash: a few per sender
//! (`max_queued_per_sender`), a bounded share of the pool (`max_queued`), an
//! age limit (`queued_lifetime`, dropped by [`Pool::expire_queued`]), and
//! they never evict an executable transaction: eviction takes the cheapest
//! queued transaction first, and an executable one only for an executable
//! newcomer that pays more.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Queued (future-nonce) transactions held per sender.
    pub max_queued_per_sender: usize,
    /// Queued transactions held in all.
    pub max_queued: usize,
    /// How long a queued transaction is kept before it is dropped.
    pub queued_lifetime: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_txs: 50_000,
            max_per_sender: 1_024,
            max_nonce_gap: 1_024,
            price_bump_percent: 10,
            max_queued_per_sender: 16,
            max_queued: 4_096,
            queued_lifetime: Duration::from_secs(600),
        }
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
    pub arrived: Instant,
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
    /// Each sender's state nonce as last seen (at admission or pruning): what
    /// tells its executable transactions from its queued ones.
    bases: HashMap<Address, u64>,
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

    /// The first nonce after `sender`'s executable run (its pending nonce by the last seen state nonce).
    fn ready_end(&self, sender: &Address) -> u64 {
        self.pending_nonce(sender, self.bases.get(sender).copied().unwrap_or(0))
    }

    /// Whether `sender`'s pooled transaction at `nonce` is queued (behind a gap).
    fn is_queued(&self, sender: &Address, nonce: u64) -> bool {
        nonce >= self.ready_end(sender)
    }

    /// Queued transactions of `sender`.
    fn queued_of(&self, sender: &Address) -> usize {
        let end = self.ready_end(sender);
        self.by_sender.get(sender).map_or(0, |q| q.range(end..).count())
    }

    fn queued_total(&self) -> usize {
        self.by_sender.keys().map(|s| self.queued_of(s)).sum()
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
        self.bases.insert(tx.sender, state_nonce);
        let queue = self.by_sender.get(&tx.sender);
        let replacing = queue.and_then(|q| q.get(&nonce)).copied();
        let queued = nonce > self.pending_nonce(&tx.sender, state_nonce);
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
        if queued && replacing.is_none() && self.queued_of(&tx.sender) >= self.cfg.max_queued_per_sender {
            return Err(PoolError::SenderFull);
        }
        if committed > balance {
            return Err(PoolError::InsufficientFunds);
        }
        if replacing.is_none() && queued && self.queued_total() >= self.cfg.max_queued {
            self.evict_for(&tx, base_fee, true)?;
        } else if replacing.is_none() && self.by_hash.len() >= self.cfg.max_txs {
            self.evict_for(&tx, base_fee, queued)?;
        }
        if let Some(old) = replacing {
            self.by_hash.remove(&old);
        }
        self.seq += 1;
        let hash = tx.hash;
        let sender = tx.sender;
        self.by_hash.insert(hash, PooledTx { tx: Arc::new(tx), seq: self.seq, arrived: Instant::now() });
        self.by_sender.entry(sender).or_default().insert(nonce, hash);
        Ok(match replacing {
            Some(h) => Admitted::Replaced(h),
            None => Admitted::New,
        })
    }

    /// Make room for `incoming` by dropping a sender's last transaction.
    /// Queued transactions go first: an executable newcomer takes the
    /// cheapest queued one whatever its tip, a queued newcomer only one it
    /// outbids. Without a queued victim, an executable newcomer takes the
    /// cheapest executable transaction it outbids; a queued newcomer never
    /// evicts an executable one. Otherwise it is refused.
    fn evict_for(
        &mut self,
        incoming: &SignedTransaction,
        base_fee: u64,
        incoming_queued: bool,
    ) -> Result<(), PoolError> {
        let incoming_tip = tip(incoming, base_fee);
        let victim = match self.cheapest_last(true, base_fee) {
            Some(v) if !incoming_queued || v.0 < incoming_tip => Some(v),
            _ if incoming_queued => None,
            _ => self.cheapest_last(false, base_fee).filter(|v| v.0 < incoming_tip),
        };
        match victim {
            Some((_, _, s, n)) => {
                self.remove_nonce(&s, n);
                Ok(())
            }
            None => Err(PoolError::Full),
        }
    }

    /// The cheapest (then latest) last transaction of a sender among queued
    /// ones (`queued`) or executable ones: (tip, seq, sender, nonce).
    fn cheapest_last(&self, queued: bool, base_fee: u64) -> Option<(u128, u64, Address, u64)> {
        let mut victim: Option<(u128, u64, Address, u64)> = None;
        for (s, q) in &self.by_sender {
            let Some((n, h)) = q.iter().next_back() else { continue };
            if self.is_queued(s, *n) != queued {
                continue;
            }
            let p = &self.by_hash[h];
            let t = tip(&p.tx, base_fee);
            if victim.is_none_or(|(vt, vseq, _, _)| t < vt || (t == vt && p.seq > vseq)) {
                victim = Some((t, p.seq, *s, *n));
            }
        }
        victim
    }

    /// Drop queued transactions older than `queued_lifetime` at `now`.
    /// Returns how many were dropped.
    pub fn expire_queued(&mut self, now: Instant) -> usize {
        let stale: Vec<(Address, u64)> = self
            .by_sender
            .iter()
            .flat_map(|(s, q)| {
                let end = self.ready_end(s);
                q.range(end..).map(move |(n, h)| (*s, *n, h))
            })
            .filter(|(_, _, h)| now.saturating_duration_since(self.by_hash[*h].arrived) > self.cfg.queued_lifetime)
            .map(|(s, n, _)| (s, n))
            .collect();
        for (s, n) in &stale {
            self.remove_nonce(s, *n);
        }
        stale.len()
    }

    fn remove_nonce(&mut self, sender: &Address, nonce: u64) {
        if let Some(q) = self.by_sender.get_mut(sender) {
            if let Some(h) = q.remove(&nonce) {
                self.by_hash.remove(&h);
            }
            if q.is_empty() {
                self.by_sender.remove(sender);
                self.bases.remove(sender);
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
        if self.by_sender.contains_key(sender) {
            self.bases.insert(*sender, state_nonce);
        }
        if let Some(q) = self.by_sender.get_mut(sender) {
            let stale: Vec<u64> = q.range(..state_nonce).map(|(n, _)| *n).collect();
            for n in stale {
                if let Some(h) = q.remove(&n) {
                    self.by_hash.remove(&h);
                }
            }
            if q.is_empty() {
                self.by_sender.remove(sender);
                self.bases.remove(sender);
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
        let cfg = PoolConfig {
            max_txs: 3,
            max_per_sender: 2,
            max_nonce_gap: 4,
            price_bump_percent: 10,
            ..Default::default()
        };
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

    #[test]
    fn queued_transactions_are_few_per_sender_short_lived_and_never_evict_executable_ones() {
        let cfg = PoolConfig {
            max_txs: 6,
            max_queued_per_sender: 2,
            max_queued: 3,
            queued_lifetime: Duration::from_secs(60),
            ..Default::default()
        };
        let mut p = Pool::new(cfg);
        // Sender 1: nonce 0 executable; 5 and 6 queued; a third queued one is refused.
        p.add(tx(1, 0, 1), 0, RICH, 100).unwrap();
        p.add(tx(1, 5, 50), 0, RICH, 100).unwrap();
        p.add(tx(1, 6, 50), 0, RICH, 100).unwrap();
        assert_eq!(p.add(tx(1, 7, 50), 0, RICH, 100).unwrap_err(), PoolError::SenderFull);
        assert_eq!(p.counts(|_| 0), (1, 2));
        // The pool's queued share (3) is full: a queued newcomer must outbid a queued one.
        p.add(tx(2, 3, 60), 0, RICH, 100).unwrap();
        assert_eq!(p.add(tx(3, 3, 10), 0, RICH, 100).unwrap_err(), PoolError::Full);
        p.add(tx(3, 3, 70), 0, RICH, 100).unwrap();
        assert!(!p.contains(&tx(1, 6, 50).hash), "the cheapest queued one went");
        assert_eq!(p.counts(|_| 0), (1, 3));
        // Executable transactions fill the pool; an executable newcomer evicts
        // a queued transaction first, whatever its tip.
        p.add(tx(4, 0, 1), 0, RICH, 100).unwrap();
        p.add(tx(5, 0, 1), 0, RICH, 100).unwrap();
        assert_eq!(p.len(), 6);
        p.add(tx(6, 0, 1), 0, RICH, 100).unwrap();
        assert_eq!(p.counts(|_| 0), (4, 2), "a queued one made room for the executable one");
        // Past their lifetime, queued transactions are dropped; executable ones stay.
        assert_eq!(p.expire_queued(Instant::now()), 0);
        assert_eq!(p.expire_queued(Instant::now() + Duration::from_secs(61)), 2);
        assert_eq!(p.counts(|_| 0), (4, 0));
        // A pool full of executable transactions: a queued newcomer, however
        // rich, is refused; an executable one that pays more evicts the cheapest.
        let mut p = Pool::new(PoolConfig { max_txs: 2, ..Default::default() });
        p.add(tx(4, 0, 1), 0, RICH, 100).unwrap();
        p.add(tx(5, 0, 1), 0, RICH, 100).unwrap();
        assert_eq!(p.add(tx(6, 2, 1_000), 0, RICH, 100).unwrap_err(), PoolError::Full);
        p.add(tx(6, 0, 2), 0, RICH, 100).unwrap();
        assert_eq!(p.counts(|_| 0), (2, 0));
    }
}
