//! Genesis operators: their bonds come out of their genesis balances.

use primitives::{Address, Amount, B256};

use super::{ADDRESS, register, snapshot_validator_set};
use crate::Overlay;
use crate::bank::BankWrite;
use crate::context::{BlockEnv, CallCtx, CallFail};

/// An operator bonded at genesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesisOperator {
    pub operator: Address,
    pub role: u8,
    pub consensus_key: B256,
    pub serving_key: Address,
    pub commission_bps: u16,
    pub bond: Amount,
}

pub fn init(st: &mut Overlay, chain_id: u64, ops: &[GenesisOperator]) -> Result<(), CallFail> {
    let env = BlockEnv {
        chain_id,
        number: 0,
        timestamp: 0,
        base_fee: 0,
        gas_limit: 0,
        coinbase: Address::ZERO,
        last_commit: None,
    };
    for o in ops {
        st.transfer(&o.operator, &ADDRESS, o.bond)?;
        let mut ctx = CallCtx { env: &env, sender: o.operator, value: o.bond, logs: Vec::new(), calls: Vec::new() };
        register(st, &mut ctx, o.operator, o.role, o.consensus_key, o.serving_key, o.commission_bps, o.bond)?;
    }
    snapshot_validator_set(st, 0)
}
