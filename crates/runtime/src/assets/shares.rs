//! The share tokens: ERC-20 calls at `share_token_address(n)`, answered by
//! this module, with the reward-per-share accounting of every balance change.

use alloy_sol_types::{SolCall, SolInterface};
use primitives::abi::IShareToken::{self, IShareTokenCalls};
use primitives::system::{is_system_address, share_token_address, share_token_index};
use primitives::{Address, Amount, Bytes, U256};

use super::ADDRESS;
use super::records::{HolderRecord, ShareRecord};
use super::view::{AssetsRead, AssetsWrite, pending};
use crate::bank::BankWrite;
use crate::context::{CallCtx, CallFail};
use crate::dispatch::decode_calls;
use crate::executor::SystemCall;
use crate::{Overlay, revert};

/// A decoded call to share token `n`.
pub(crate) struct ShareCall {
    n: u32,
    call: IShareTokenCalls,
}

/// `None` if `to` is not a share token; otherwise the decoded call or its revert.
pub(crate) fn decode_share_call(to: &Address, input: &[u8]) -> Option<Result<Box<dyn SystemCall>, CallFail>> {
    let n = share_token_index(to)?;
    Some(decode_calls::<IShareTokenCalls>(input).map(|call| Box::new(ShareCall { n, call }) as Box<dyn SystemCall>))
}

const VIEW_GAS: u64 = 2_000;
/// Two holders settled and written, the token written, an event.
const TRANSFER_GAS: u64 = 45_000;

impl SystemCall for ShareCall {
    fn gas(&self) -> u64 {
        use IShareTokenCalls as C;
        match &self.call {
            C::transfer(_) | C::transferFrom(_) => TRANSFER_GAS,
            C::approve(_) => 25_000,
            C::claim(_) => 40_000,
            _ => VIEW_GAS,
        }
    }
    fn payable(&self) -> bool {
        false
    }
    fn execute(self: Box<Self>, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Bytes, CallFail> {
        use IShareTokenCalls as C;
        let n = self.n;
        let mut t = st
            .share_token(n)?
            .ok_or_else(|| revert(primitives::abi::UnknownFunction { selector: self.call.selector().into() }))?;
        let out: Vec<u8> = match self.call {
            C::name(_) => <IShareToken::nameCall as SolCall>::abi_encode_returns(&format!(
                "{} shares of model {}",
                t.symbol, t.assetId
            )),
            C::symbol(_) => <IShareToken::symbolCall as SolCall>::abi_encode_returns(&t.symbol.clone()),
            C::decimals(_) => <IShareToken::decimalsCall as SolCall>::abi_encode_returns(&18u8),
            C::totalSupply(_) => <IShareToken::totalSupplyCall as SolCall>::abi_encode_returns(&t.totalSupply),
            C::balanceOf(c) => {
                <IShareToken::balanceOfCall as SolCall>::abi_encode_returns(&st.holder(n, &c.account)?.balance)
            }
            C::allowance(c) => <IShareToken::allowanceCall as SolCall>::abi_encode_returns(
                &st.share_allowance(n, &c.owner, &c.spender)?,
            ),
            C::asset(_) => <IShareToken::assetCall as SolCall>::abi_encode_returns(&t.assetId),
            C::earningSupply(_) => <IShareToken::earningSupplyCall as SolCall>::abi_encode_returns(&t.earningSupply),
            C::earned(c) => {
                let h = st.holder(n, &c.holder)?;
                <IShareToken::earnedCall as SolCall>::abi_encode_returns(&(h.owed + pending(&t, &h)))
            }
            C::approve(c) => {
                if c.spender == Address::ZERO {
                    return Err(revert(IShareToken::ERC20InvalidSpender { spender: c.spender }));
                }
                st.put_share_allowance(n, &ctx.sender, &c.spender, c.value);
                let ev = IShareToken::Approval { owner: ctx.sender, spender: c.spender, value: c.value };
                ctx.emit(share_token_address(n), &ev);
                <IShareToken::approveCall as SolCall>::abi_encode_returns(&true)
            }
            C::transfer(c) => {
                move_shares(st, ctx, n, &mut t, ctx.sender, c.to, c.value)?;
                <IShareToken::transferCall as SolCall>::abi_encode_returns(&true)
            }
            C::transferFrom(c) => {
                let allowed = st.share_allowance(n, &c.from, &ctx.sender)?;
                if allowed != U256::MAX {
                    if allowed < c.value {
                        return Err(revert(IShareToken::ERC20InsufficientAllowance {
                            spender: ctx.sender,
                            allowance: allowed,
                            needed: c.value,
                        }));
                    }
                    st.put_share_allowance(n, &c.from, &ctx.sender, allowed - c.value);
                }
                move_shares(st, ctx, n, &mut t, c.from, c.to, c.value)?;
                <IShareToken::transferFromCall as SolCall>::abi_encode_returns(&true)
            }
            C::claim(_) => <IShareToken::claimCall as SolCall>::abi_encode_returns(&claim(st, ctx, n, &mut t)?),
        };
        Ok(out.into())
    }
}

/// Settle `a` in token `n`: add what it earned since its last settlement to
/// `owed`, then fix its earning status anew (moving its balance in or out of
/// `earningSupply`). Returns the settled record (not written).
pub(super) fn settle(st: &Overlay, n: u32, t: &mut ShareRecord, a: &Address) -> Result<HolderRecord, CallFail> {
    let mut h = st.holder(n, a)?;
    h.owed += pending(t, &h);
    h.debt = t.acc;
    let earning = st.earns(a)?;
    if earning != h.earning {
        if earning {
            t.earningSupply += h.balance;
        } else {
            t.earningSupply -= h.balance;
        }
        h.earning = earning;
    }
    Ok(h)
}

/// Move `value` shares of token `n` from `from` to `to`, settling both first.
fn move_shares(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    n: u32,
    t: &mut ShareRecord,
    from: Address,
    to: Address,
    value: U256,
) -> Result<(), CallFail> {
    if to == Address::ZERO || is_system_address(&to) || share_token_index(&to).is_some() {
        return Err(revert(IShareToken::ERC20InvalidReceiver { receiver: to }));
    }
    let mut f = settle(st, n, t, &from)?;
    if f.balance < value {
        return Err(revert(IShareToken::ERC20InsufficientBalance { sender: from, balance: f.balance, needed: value }));
    }
    f.balance -= value;
    if f.earning {
        t.earningSupply -= value;
    }
    st.put_holder(n, &from, &f);
    let mut r = settle(st, n, t, &to)?;
    r.balance += value;
    if r.earning {
        t.earningSupply += value;
    }
    st.put_holder(n, &to, &r);
    st.put_share_token(n, t);
    ctx.emit(share_token_address(n), &IShareToken::Transfer { from, to, value });
    Ok(())
}

/// Pay the caller what it has earned in token `n`.
fn claim(st: &mut Overlay, ctx: &mut CallCtx, n: u32, t: &mut ShareRecord) -> Result<U256, CallFail> {
    let who = ctx.sender;
    let mut h = settle(st, n, t, &who)?;
    let amount = h.owed;
    h.owed = U256::ZERO;
    t.held -= amount;
    st.put_holder(n, &who, &h);
    st.put_share_token(n, t);
    if !amount.is_zero() {
        let a = Amount::from_u256(amount).map_err(|_| revert(primitives::abi::Overflow {}))?;
        st.transfer(&ADDRESS, &who, a)?;
    }
    ctx.emit(share_token_address(n), &IShareToken::Claimed { holder: who, amount });
    Ok(amount)
}

/// Mint a new token's whole supply to `to` (the split).
pub(super) fn mint_all(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    n: u32,
    t: &mut ShareRecord,
    to: Address,
) -> Result<(), CallFail> {
    let mut h = settle(st, n, t, &to)?;
    h.balance = t.totalSupply;
    if h.earning {
        t.earningSupply = t.totalSupply;
    }
    st.put_holder(n, &to, &h);
    st.put_share_token(n, t);
    ctx.emit(share_token_address(n), &IShareToken::Transfer { from: Address::ZERO, to, value: t.totalSupply });
    Ok(())
}
