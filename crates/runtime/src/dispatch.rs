//! The shape every module has, below both the modules and the executor: a
//! module is a [`SystemModule`] (its call enum, hooks and genesis) whose calls
//! are each a [`Handler`] (one function per call, its gas beside it, as
//! Penumbra's action handlers). The executor dispatches by address to the
//! module's trait; modules import nothing from the executor.

use alloy_sol_types::{SolCall, SolInterface};
use primitives::Bytes;
use primitives::abi::{InvalidArguments, UnknownFunction};

use crate::context::{BlockEnv, CallCtx, CallFail};
use crate::genesis::{Genesis, GenesisError};
use crate::{Overlay, revert};

/// One function of a system contract: its price, whether it takes OPEN, and its effect.
pub trait Handler: SolCall {
    /// Whether the function takes OPEN with the call (bonds, deposits, escrow);
    /// every other function refuses value with `NonPayable` before it runs, so
    /// no OPEN is ever left at a module by a call that does not account for it.
    const PAYABLE: bool = false;

    /// Gas charged on top of intrinsic gas (which already prices calldata by the byte).
    fn gas(&self) -> u64;

    /// Run the call: what fails reverts the call's writes and logs.
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail>;
}

/// Run a handler and ABI-encode what it returns.
pub fn run<H: Handler>(call: H, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Bytes, CallFail> {
    let out = call.execute(st, ctx)?;
    Ok(H::abi_encode_returns(&out).into())
}

/// A runtime module at its system-contract address: its ABI, its hooks and its
/// part of the genesis. The calls' behaviour lives in their [`Handler`]s; the
/// module's `gas`, `payable` and `execute` only dispatch to them ([`calls!`]).
pub trait SystemModule {
    /// The module's call enum (`sol!`'s `I…Calls`).
    type Calls: SolInterface;

    /// Decode calldata into a call, with the errors every module shares.
    fn decode(input: &[u8]) -> Result<Self::Calls, CallFail> {
        decode_calls::<Self::Calls>(input)
    }
    /// Gas charged on top of intrinsic gas.
    fn gas(call: &Self::Calls) -> u64;
    /// Whether the call takes OPEN ([`Handler::PAYABLE`]).
    fn payable(call: &Self::Calls) -> bool;
    /// Run a call; returns its ABI-encoded result.
    fn execute(st: &mut Overlay, ctx: &mut CallCtx, call: Self::Calls) -> Result<Bytes, CallFail>;

    /// Hook run before a block's transactions.
    fn begin_block(_st: &mut Overlay, _env: &BlockEnv) -> Result<(), CallFail> {
        Ok(())
    }
    /// Hook run after a block's transactions.
    fn end_block(_st: &mut Overlay, _env: &BlockEnv) -> Result<(), CallFail> {
        Ok(())
    }
    /// Write the module's part of the genesis state.
    fn genesis(_st: &mut Overlay, _genesis: &Genesis) -> Result<(), GenesisError> {
        Ok(())
    }
}

/// Implement [`SystemModule`]'s `gas`, `payable` and `execute` for a call enum
/// by dispatching every variant to its [`Handler`]: list each function once
/// (a missing one does not compile).
macro_rules! calls {
    ($calls:ident { $($f:ident),* $(,)? }) => {
        fn gas(call: &$calls) -> u64 {
            match call {
                $($calls::$f(c) => $crate::dispatch::Handler::gas(c),)*
            }
        }
        fn payable(call: &$calls) -> bool {
            match call {
                $($calls::$f(c) => $crate::dispatch::payable(c),)*
            }
        }
        fn execute(
            st: &mut $crate::Overlay,
            ctx: &mut $crate::CallCtx,
            call: $calls,
        ) -> Result<primitives::Bytes, $crate::CallFail> {
            match call {
                $($calls::$f(c) => $crate::dispatch::run(c, st, ctx),)*
            }
        }
    };
}
pub(crate) use calls;

/// [`Handler::PAYABLE`] of a call value (what [`calls!`] needs).
pub fn payable<H: Handler>(_call: &H) -> bool {
    H::PAYABLE
}

/// Decode calldata into a module's call enum, with the errors every module shares.
pub fn decode_calls<C: SolInterface>(input: &[u8]) -> Result<C, CallFail> {
    if input.len() < 4 {
        let mut sel = [0u8; 4];
        sel[..input.len()].copy_from_slice(input);
        return Err(revert(UnknownFunction { selector: sel.into() }));
    }
    let sel: [u8; 4] = input[..4].try_into().unwrap();
    if !C::valid_selector(sel) {
        return Err(revert(UnknownFunction { selector: sel.into() }));
    }
    C::abi_decode(input).map_err(|_| revert(InvalidArguments {}))
}
