//! What the runtime's integration tests share: an in-memory state.

#![allow(dead_code)]

pub mod contracts;

use std::collections::BTreeMap;

use primitives::state::{StateError, StateRead};

/// State held in a map; blocks' writes are applied to it.
#[derive(Debug)]
pub struct Mem(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl StateRead for Mem {
    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.0.get(k).cloned())
    }
}

impl Mem {
    pub fn apply(&mut self, w: BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
        for (k, v) in w {
            match v {
                Some(v) => self.0.insert(k, v),
                None => self.0.remove(&k),
            };
        }
    }
}

impl Mem {
    /// Run one block over this state: its transactions (each must be
    /// includable), then `gov_calls` to models with the governance address as
    /// sender, as an executed proposal makes them, each all or nothing (whether
    /// each succeeded is returned beside the receipts); apply its writes.
    pub fn run_block(
        &mut self,
        env: &runtime::BlockEnv,
        txs: &[primitives::SignedTransaction],
        gov_calls: Vec<primitives::abi::IModels::IModelsCalls>,
    ) -> (Vec<primitives::block::Receipt>, Vec<bool>) {
        let mut done = vec![];
        let (receipts, writes) = {
            let mut st = runtime::Overlay::new(&*self);
            runtime::begin_block(&mut st, env).unwrap();
            let mut used = 0;
            let mut rs = vec![];
            for tx in txs {
                let r = runtime::apply_transaction(&mut st, env, tx, used).unwrap();
                used = r.cumulative_gas_used;
                rs.push(r);
            }
            for call in gov_calls {
                let sender = primitives::system::Module::Governance.address();
                let mut ctx =
                    runtime::CallCtx { env, sender, value: primitives::Amount::ZERO, logs: vec![], calls: vec![] };
                let cp = st.checkpoint();
                let ok = runtime::models::execute(&mut st, &mut ctx, call).is_ok();
                if !ok {
                    st.revert_to(cp);
                }
                done.push(ok);
            }
            runtime::end_block(&mut st, env).unwrap();
            (rs, st.into_writes())
        };
        self.apply(writes);
        (receipts, done)
    }
}

/// A ledger driven by signed transactions, as a chain applies them: genesis,
/// then one block per [`Ledger::block`], each checked against the supply equation.
pub struct Ledger {
    pub mem: Mem,
    pub height: u64,
    pub chain_id: u64,
    nonces: BTreeMap<primitives::Address, u64>,
}

impl Ledger {
    pub fn new(g: &runtime::Genesis) -> Ledger {
        let mut mem = Mem(BTreeMap::new());
        let e = runtime::EmptyState;
        let mut st = runtime::Overlay::new(&e);
        g.apply(&mut st).unwrap();
        mem.apply(st.into_writes());
        Ledger { mem, height: 0, chain_id: g.chain_id, nonces: BTreeMap::new() }
    }

    pub fn env(&self, number: u64) -> runtime::BlockEnv {
        runtime::BlockEnv {
            chain_id: self.chain_id,
            number,
            timestamp: 1_800_000_000 + number,
            base_fee: 7,
            gas_limit: 30_000_000,
            coinbase: primitives::system::VALIDATOR_REWARD_POOL,
            last_commit: None,
        }
    }

    pub fn sign(
        &mut self,
        k: &keys::SecretKey,
        to: primitives::Address,
        value: primitives::Amount,
        input: Vec<u8>,
    ) -> primitives::SignedTransaction {
        self.sign_kind(k, alloy_primitives::TxKind::Call(to), value, input, 4_000_000)
    }

    /// [`Ledger::sign`] for any target (`TxKind::Create` deploys `input`) and gas limit.
    pub fn sign_kind(
        &mut self,
        k: &keys::SecretKey,
        to: alloy_primitives::TxKind,
        value: primitives::Amount,
        input: Vec<u8>,
        gas_limit: u64,
    ) -> primitives::SignedTransaction {
        let nonce = self.nonces.entry(k.address()).or_default();
        let t = alloy_consensus::TxEip1559 {
            chain_id: self.chain_id,
            nonce: *nonce,
            gas_limit,
            max_fee_per_gas: 100,
            max_priority_fee_per_gas: 1,
            to,
            value: alloy_primitives::U256::from(value.0),
            access_list: Default::default(),
            input: input.into(),
        };
        *nonce += 1;
        primitives::SignedTransaction::decode(&keys::encode_2718(&keys::sign_eip1559(k, t)), self.chain_id).unwrap()
    }

    /// One block of these transactions; `Err` if a block hook failed (which no
    /// transaction may ever cause: the chain could not make the block).
    pub fn try_block(
        &mut self,
        txs: Vec<primitives::SignedTransaction>,
    ) -> Result<Vec<primitives::block::Receipt>, String> {
        let env = self.env(self.height + 1);
        self.try_block_in(env, txs)
    }

    /// One block decided by consensus: `signers` signed the commit
    /// certificate of the block before (`last_commit` of the block env).
    pub fn block_with_commit(
        &mut self,
        txs: Vec<primitives::SignedTransaction>,
        signers: Vec<primitives::Address>,
    ) -> Vec<primitives::block::Receipt> {
        let mut env = self.env(self.height + 1);
        env.last_commit = Some(runtime::LastCommit { height: self.height, signers });
        self.try_block_in(env, txs).unwrap()
    }

    /// One block in `env` (its number must be the next height).
    pub fn try_block_in(
        &mut self,
        env: runtime::BlockEnv,
        txs: Vec<primitives::SignedTransaction>,
    ) -> Result<Vec<primitives::block::Receipt>, String> {
        assert_eq!(env.number, self.height + 1, "blocks come in order");
        let (receipts, writes) = {
            let mut st = runtime::Overlay::new(&self.mem);
            runtime::begin_block(&mut st, &env).map_err(|e| e.to_string())?;
            let mut used = 0;
            let mut rs = vec![];
            for tx in &txs {
                let r = runtime::apply_transaction(&mut st, &env, tx, used).map_err(|e| e.to_string())?;
                used = r.cumulative_gas_used;
                rs.push(r);
            }
            runtime::end_block(&mut st, &env).map_err(|e| e.to_string())?;
            (rs, st.into_writes())
        };
        self.height += 1;
        self.mem.apply(writes);
        let s = runtime::supply_report(&self.mem).unwrap();
        let mut total = primitives::Amount::ZERO;
        for (k, v) in &self.mem.0 {
            if k.starts_with(b"bank/a/") && v.len() == 24 {
                total = primitives::Amount(total.0 + u128::from_be_bytes(v[8..].try_into().unwrap()));
            }
        }
        assert_eq!(s.total, total, "the supply equation after block {}", self.height);
        Ok(receipts)
    }

    pub fn block(&mut self, txs: Vec<primitives::SignedTransaction>) -> Vec<primitives::block::Receipt> {
        self.try_block(txs).unwrap()
    }

    /// One transaction in a block of its own.
    pub fn send(
        &mut self,
        k: &keys::SecretKey,
        to: primitives::Address,
        value: primitives::Amount,
        input: Vec<u8>,
    ) -> primitives::block::Receipt {
        let tx = self.sign(k, to, value, input);
        self.block(vec![tx]).pop().unwrap()
    }

    /// Empty blocks until the next block is `height`.
    pub fn until(&mut self, height: u64) {
        while self.height + 1 < height {
            self.block(vec![]);
        }
    }
}
