//! The ledger the simulation drives: genesis, then blocks of signed
//! transactions through `runtime::begin_block`, `apply_transaction` and
//! `end_block`, over state held in memory. The supply equation is checked after
//! every block against a running sum of balances kept from each block's writes
//! (summing every balance each block would make a long run quadratic).

use std::collections::{BTreeMap, HashMap};

use alloy_consensus::TxEip1559;
use alloy_primitives::{TxKind, U256};
use alloy_sol_types::SolCall;
use keys::SecretKey;
use primitives::block::Receipt;
use primitives::state::{StateError, StateRead};
use primitives::system::VALIDATOR_REWARD_POOL;
use primitives::{Address, Amount, SignedTransaction};
use rayon::prelude::*;

use crate::SimError;

/// State held in a map.
#[derive(Debug, Default)]
pub struct Mem(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl StateRead for Mem {
    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.0.get(k).cloned())
    }
}

const BALANCE_PREFIX: &[u8] = b"bank/a/";

/// The balance in a bank account record (nonce u64 ‖ balance u128, big-endian).
fn balance_of_record(v: &[u8]) -> u128 {
    if v.len() == 24 { u128::from_be_bytes(v[8..].try_into().expect("16 bytes")) } else { 0 }
}

/// A transaction the simulation wants sent: signed when its block is built,
/// so nonces follow inclusion order.
pub struct Intent<T> {
    pub from: usize,
    pub to: Address,
    pub value: u128,
    pub data: Vec<u8>,
    /// Gas the call may use beyond its intrinsic gas.
    pub gas: u64,
    pub tag: T,
}

/// What became of an intent: its receipt, or why it could not be included.
pub enum Outcome {
    Included(Receipt),
    Dropped(String),
}

pub const GENESIS_TIME: u64 = 1_800_000_000;

/// The chain in memory.
pub struct Chain {
    pub mem: Mem,
    pub height: u64,
    pub chain_id: u64,
    pub block_seconds: u64,
    pub gas_limit: u64,
    pub base_fee: u64,
    min_base_fee: u64,
    nonces: HashMap<Address, u64>,
    /// The sum of every balance, kept from each block's writes.
    balances: u128,
    /// Blocks executed, and transactions included.
    pub blocks: u64,
    pub txs: u64,
}

impl Chain {
    pub fn new(g: &runtime::Genesis, block_seconds: u64, gas_limit: u64, min_base_fee: u64) -> Result<Chain, SimError> {
        let mut mem = Mem::default();
        let e = runtime::EmptyState;
        let mut st = runtime::Overlay::new(&e);
        g.apply(&mut st).map_err(|e| SimError::Runtime(format!("genesis: {e}")))?;
        for (k, v) in st.into_writes() {
            if let Some(v) = v {
                mem.0.insert(k, v);
            }
        }
        let balances =
            mem.0.iter().filter(|(k, _)| k.starts_with(BALANCE_PREFIX)).map(|(_, v)| balance_of_record(v)).sum();
        let c = Chain {
            mem,
            height: 0,
            chain_id: g.chain_id,
            block_seconds,
            gas_limit,
            base_fee: min_base_fee,
            min_base_fee,
            nonces: HashMap::new(),
            balances,
            blocks: 0,
            txs: 0,
        };
        c.check_supply()?;
        Ok(c)
    }

    pub fn env(&self, number: u64) -> runtime::BlockEnv {
        runtime::BlockEnv {
            chain_id: self.chain_id,
            number,
            timestamp: GENESIS_TIME + number * self.block_seconds,
            base_fee: self.base_fee,
            gas_limit: self.gas_limit,
            coinbase: VALIDATOR_REWARD_POOL,
            last_commit: None,
        }
    }

    fn check_supply(&self) -> Result<(), SimError> {
        let s = runtime::supply_report(&self.mem).map_err(|e| SimError::Runtime(e.0))?;
        if s.total.0 != self.balances {
            return Err(SimError::SupplyBroken { height: self.height, supply: s.total.0, balances: self.balances });
        }
        Ok(())
    }

    /// The gas limit a transaction of `data` gets for `gas` of execution.
    fn tx_gas(data: &[u8], gas: u64) -> u64 {
        primitives::tx::intrinsic_gas(data) + gas
    }

    /// How many of `intents` (from the front) fit in one block.
    pub fn fitting<T>(&self, intents: &[Intent<T>]) -> usize {
        let mut used = 0u64;
        for (i, it) in intents.iter().enumerate() {
            used += Self::tx_gas(&it.data, it.gas);
            if used > self.gas_limit {
                return i.max(1);
            }
        }
        intents.len()
    }

    /// Execute the next block with these intents (signed here, in parallel);
    /// check the supply equation after it.
    pub fn block<T>(
        &mut self,
        intents: Vec<Intent<T>>,
        keys: &[SecretKey],
    ) -> Result<Vec<(Intent<T>, Outcome)>, SimError> {
        let number = self.height + 1;
        let env = self.env(number);
        let max_fee = (self.base_fee as u128) * 2 + 1;
        let mut unsigned = Vec::with_capacity(intents.len());
        for it in &intents {
            let sender = keys[it.from].address();
            let nonce = self.nonces.entry(sender).or_insert(0);
            unsigned.push(TxEip1559 {
                chain_id: self.chain_id,
                nonce: *nonce,
                gas_limit: Self::tx_gas(&it.data, it.gas),
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: 1,
                to: TxKind::Call(it.to),
                value: U256::from(it.value),
                access_list: Default::default(),
                input: it.data.clone().into(),
            });
            *nonce += 1;
        }
        let from: Vec<usize> = intents.iter().map(|it| it.from).collect();
        let txs: Vec<SignedTransaction> = unsigned
            .into_par_iter()
            .zip(from.into_par_iter())
            .map(|(t, from)| {
                let k = &keys[from];
                let raw = keys::encode_2718(&keys::sign_eip1559(k, t));
                SignedTransaction::from_trusted(raw.into(), k.address())
                    .expect("a transaction the simulator signed decodes")
            })
            .collect();
        let mut outcomes = Vec::with_capacity(txs.len());
        let mut resync = vec![];
        let writes = {
            let mut st = runtime::Overlay::new(&self.mem);
            runtime::begin_block(&mut st, &env).map_err(|e| SimError::Runtime(e.0))?;
            let mut used = 0;
            for tx in &txs {
                match runtime::apply_transaction(&mut st, &env, tx, used) {
                    Ok(r) => {
                        used = r.cumulative_gas_used;
                        outcomes.push(Outcome::Included(r));
                    }
                    Err(runtime::ApplyError::Fatal(e)) => return Err(SimError::Runtime(e.0)),
                    Err(e) => {
                        resync.push(tx.sender);
                        outcomes.push(Outcome::Dropped(e.to_string()));
                    }
                }
            }
            runtime::end_block(&mut st, &env).map_err(|e| SimError::Runtime(e.0))?;
            self.base_fee = primitives::block::next_base_fee(used, self.gas_limit, self.base_fee, self.min_base_fee);
            st.into_writes()
        };
        for (k, v) in writes {
            if k.starts_with(BALANCE_PREFIX) {
                let old = self.mem.0.get(&k).map(|v| balance_of_record(v)).unwrap_or(0);
                let new = v.as_deref().map(balance_of_record).unwrap_or(0);
                self.balances = self.balances - old + new;
            }
            match v {
                Some(v) => self.mem.0.insert(k, v),
                None => self.mem.0.remove(&k),
            };
        }
        self.height = number;
        self.blocks += 1;
        self.txs += outcomes.iter().filter(|o| matches!(o, Outcome::Included(_))).count() as u64;
        for a in resync {
            let n = runtime::bank::BankRead::account(&self.mem, &a).map_err(|e| SimError::Runtime(e.0))?.nonce;
            self.nonces.insert(a, n);
        }
        self.check_supply()?;
        Ok(intents.into_iter().zip(outcomes).collect())
    }

    /// A view call at the head.
    pub fn view<C: SolCall>(&self, to: Address, c: C) -> Result<C::Return, SimError> {
        let env = self.env(self.height + 1);
        let out = runtime::call(&self.mem, &env, Address::ZERO, to, Amount::ZERO, &c.abi_encode(), None)
            .map_err(|e| SimError::Runtime(format!("view: {e:?}")))?;
        if !out.success {
            return Err(SimError::Runtime(format!("view reverted: 0x{}", alloy_primitives::hex::encode(&out.output))));
        }
        C::abi_decode_returns(&out.output).map_err(|e| SimError::Runtime(format!("view result: {e}")))
    }

    pub fn balance(&self, a: &Address) -> u128 {
        runtime::bank::BankRead::balance(&self.mem, a).map(|b| b.0).unwrap_or(0)
    }
}
