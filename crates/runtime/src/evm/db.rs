//! revm's view of the chain state: accounts from the bank, code and storage
//! from `evm/` keys, all read through the block's overlay. revm never writes
//! here; [`super::commit`] applies what it changed after the transaction.

use primitives::state::{StateError, StateRead};
use primitives::{Address, B256, U256, keccak256};
use revm::bytecode::Bytecode;
use revm::database_interface::{DBErrorMarker, Database};
use revm::primitives::KECCAK_EMPTY;
use revm::state::AccountInfo;

use super::natives::NativeLog;
use super::state_key;
use crate::bank::BankRead;
use crate::context::BlockEnv;

/// A store failure inside revm (it cannot be a revert: the block cannot be built).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DbError(pub String);

impl DBErrorMarker for DbError {}

impl From<StateError> for DbError {
    fn from(e: StateError) -> Self {
        DbError(e.0)
    }
}

/// The database of one EVM transaction (or call).
pub(crate) struct StateDb<'a> {
    /// The state before the transaction (the block's overlay so far).
    pub base: &'a dyn StateRead,
    /// The runtime's block, for the native modules that contracts call.
    pub env: &'a BlockEnv,
    /// What native module calls made from contracts wrote so far.
    pub native: NativeLog,
    /// A store failure met inside a system-contract call: revm only carries a
    /// string out of a precompile, so the error itself waits here.
    pub fatal: Option<StateError>,
}

impl<'a> StateDb<'a> {
    pub fn new(base: &'a dyn StateRead, env: &'a BlockEnv) -> Self {
        StateDb { base, env, native: NativeLog::default(), fatal: None }
    }
}

/// The code at `a` and its hash: a system contract's marker code, a
/// contract's stored code hash, or none.
pub(crate) fn code_hash_of(st: &(impl StateRead + ?Sized), a: &Address) -> Result<Option<B256>, StateError> {
    if let Some(code) = crate::system_code(a) {
        return Ok(Some(keccak256(&code)));
    }
    match st.get(&state_key::code_hash(a))? {
        Some(h) if h.len() == 32 => Ok(Some(B256::from_slice(&h))),
        Some(h) => Err(StateError(format!("code hash record of {} bytes", h.len()))),
        None => Ok(None),
    }
}

/// The runtime code at `a` (empty for accounts without code).
pub fn code_at(st: &(impl StateRead + ?Sized), a: &Address) -> Result<primitives::Bytes, StateError> {
    if let Some(code) = crate::system_code(a) {
        return Ok(code);
    }
    match code_hash_of(st, a)? {
        None => Ok(primitives::Bytes::new()),
        Some(h) => st
            .get(&state_key::bytecode(&h))?
            .map(primitives::Bytes::from)
            .ok_or_else(|| StateError(format!("code {h} of {a} is missing"))),
    }
}

/// A storage slot of the contract at `a`.
pub fn storage_at(st: &(impl StateRead + ?Sized), a: &Address, slot: &U256) -> Result<U256, StateError> {
    match st.get(&state_key::storage(a, slot))? {
        None => Ok(U256::ZERO),
        Some(v) if v.len() == 32 => Ok(U256::from_be_slice(&v)),
        Some(v) => Err(StateError(format!("storage value of {} bytes", v.len()))),
    }
}

/// Whether a message to `a` runs EVM code: the account has code and is not a system contract.
pub fn has_contract_code(st: &(impl StateRead + ?Sized), a: &Address) -> Result<bool, StateError> {
    Ok(crate::system_code(a).is_none() && st.get(&state_key::code_hash(a))?.is_some())
}

impl Database for StateDb<'_> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        let acct = self.base.account(&address)?;
        let (code_hash, code) = match crate::system_code(&address) {
            Some(sys) => (keccak256(&sys), Some(Bytecode::new_raw(sys))),
            None => match code_hash_of(self.base, &address)? {
                Some(h) => (h, None),
                None => (KECCAK_EMPTY, Some(Bytecode::default())),
            },
        };
        if acct.nonce == 0 && acct.balance == primitives::Amount::ZERO && code_hash == KECCAK_EMPTY {
            return Ok(None);
        }
        Ok(Some(AccountInfo {
            balance: acct.balance.to_u256(),
            nonce: acct.nonce,
            code_hash,
            code,
            ..Default::default()
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, DbError> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        match self.base.get(&state_key::bytecode(&code_hash))? {
            Some(code) => Ok(Bytecode::new_raw(code.into())),
            None => Err(DbError(format!("code {code_hash} is missing"))),
        }
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, DbError> {
        Ok(storage_at(self.base, &address, &index)?)
    }

    /// Block hashes are not part of the state the runtime sees: BLOCKHASH
    /// answers zero (ARCHITECTURE.md, "The EVM").
    fn block_hash(&mut self, _number: u64) -> Result<B256, DbError> {
        Ok(B256::ZERO)
    }
}
