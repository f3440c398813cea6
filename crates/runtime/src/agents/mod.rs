//! `agents`: programs that act for someone over time, with an identity others
//! can check, budgets with limits, a bond and a reputation, a memory root, and
//! paid tasks whose delivery links the receipts of the inferences they bought.
//!
//! - **Identity.** An agent is an ERC-721 token (ids u64 from 1): `register`
//!   mints it to the caller (name 1..=64 bytes, description at most 1 KiB) and
//!   emits `Transfer(0, owner, id)`. Transfers, approvals and operator approvals
//!   follow ERC-721 with OpenZeppelin's errors; the zero address, system
//!   addresses and agents' wallets cannot receive a token; `safeTransferFrom`
//!   is `transferFrom` (accounts here have no code). A transfer clears the
//!   token's approval and makes the new owner the agent's operator, so a
//!   buyer never leaves the seller's operator in control.
//! - **Wallet and budgets.** The agent's wallet ([`primitives::abi::agent_wallet`])
//!   is a payer in the inference module that no key holds: `fund` (anyone)
//!   deposits into its escrow, `defund` (owner) pays free escrow back to the
//!   owner, and `allow` / `release` / `completeRelease` / `bindApiKey` /
//!   `revokeApiKey` (operator or owner) are inference's own, for the wallet
//!   ([`crate::inference::InferenceWrite`]). `allow` is bounded by the limits:
//!   per period over all serving operators and per serving operator
//!   (`type(uint128).max`: none, the default), periods of `periodBlocks`
//!   (default `agents.default_period_blocks`) starting at its multiples.
//! - **Freeze and allowlist.** The owner freezes at once (`frozenAt` = the
//!   height): a frozen agent cannot `allow` or bind keys, and a receipt it pays
//!   settles only if issued before `frozenAt`; a model allowlist (empty: any)
//!   refuses receipts of other models issued at or after the height the list
//!   last changed (`modelsSince`). A serving node that checks `canServe` at
//!   the height it issues a receipt is never left unpaid.
//! - **Bond.** The owner bonds OPEN; `unbond` moves part of it out of `bond`
//!   at once into `unbonding`, withdrawable after `agents.unbond_delay_blocks`;
//!   a lost dispute slashes `agents.dispute_slash_bps` of the bond with its
//!   unbonding part (so unbonding does not escape a pending dispute), taking
//!   from `bond` first. Accepting a task needs `bond ≥ requiredStake`.
//! - **Memory.** The operator or owner records a new Merkle root of the memory
//!   map and the update's blob hash (at most `agents.max_memory_update` bytes);
//!   the owner names up to 32 readers besides owner and operator.
//! - **Tasks.** A client escrows a payment for an agent (or as an open offer
//!   any agent with the required bond may accept) with a deadline and a
//!   resolver. The agent delivers by the deadline a result hash and up to
//!   [`primitives::abi::MAX_TASK_RECEIPTS`] hashes of settled receipts its
//!   wallet paid, each linked to one task only. The client accepts (paid) or
//!   disputes within `agents.dispute_window_blocks`; the resolver rules (the
//!   agent paid, or the client refunded with a slash of the bond); anyone
//!   settles what time decided (an undisputed delivery after the window is
//!   paid; an undelivered task after its deadline, or a dispute unresolved
//!   after `agents.resolve_timeout_blocks`, is refunded without a slash).
//!   Paying sends `agents.protocol_share_bps` of the payment (rounded down)
//!   to the treasury and the rest to the agent's owner at that moment. The
//!   client gives feedback once per paid task (score 0..=100).
//!
//! Everything the module holds is in its bank balance and reported by kind in
//! [`AgentsHoldings`]: task escrow and bonds (with their unbonding parts).

mod calls;
pub mod params;
pub mod records;
pub mod state_key;
pub mod view;

use primitives::abi::IAgents::{self, IAgentsCalls};
use primitives::abi::Overflow;
use primitives::system::{Module, TREASURY};
use primitives::{Address, Amount, Bytes, U256};

use crate::bank::BankWrite;
use crate::context::{CallCtx, CallFail};
use crate::dispatch::{SystemModule, calls};
use crate::params::{ParamSpec, ParamsRead};
use crate::{Overlay, revert};
pub use records::*;
pub use view::{AgentsRead, AgentsWrite};

pub const ADDRESS: Address = Module::Agents.address();
/// The ERC-721 collection's name and symbol.
pub const NAME: &str = "OpenLedger Agents";
pub const SYMBOL: &str = "AGENT";
/// Longest agent name and description (bytes).
pub const MAX_NAME: usize = 64;
pub const MAX_DESCRIPTION: usize = 1024;
/// Most models in an agent's allowlist.
pub const MAX_MODELS: usize = 64;
/// Most memory readers besides owner and operator.
pub const MAX_READERS: usize = 32;
/// Most ids in one page of `agentsOf`, `tasksOf` and `openTasks`.
pub const MAX_PAGE: u64 = 256;

fn overflow() -> CallFail {
    revert(Overflow {})
}

fn param(st: &Overlay, spec: &ParamSpec) -> Result<u128, CallFail> {
    Ok(st.param(spec)?)
}

fn blocks(st: &Overlay, spec: &ParamSpec) -> Result<u64, CallFail> {
    Ok(u64::try_from(st.param(spec)?).unwrap_or(u64::MAX))
}

fn get_agent(st: &Overlay, id: u64) -> Result<AgentRecord, CallFail> {
    st.agent(id)?.ok_or_else(|| revert(IAgents::UnknownAgent { id }))
}

/// The agent of an ERC-721 token id.
fn token(st: &Overlay, token_id: U256) -> Result<AgentRecord, CallFail> {
    let missing = || revert(IAgents::ERC721NonexistentToken { tokenId: token_id });
    let id = u64::try_from(token_id).map_err(|_| missing())?;
    st.agent(id)?.ok_or_else(missing)
}

fn get_task(st: &Overlay, id: u64) -> Result<TaskRecord, CallFail> {
    st.task(id)?.ok_or_else(|| revert(IAgents::UnknownTask { id }))
}

/// The agent, if `sender` owns it.
fn owned_by(st: &Overlay, id: u64, sender: &Address) -> Result<AgentRecord, CallFail> {
    let a = get_agent(st, id)?;
    if a.owner != *sender {
        return Err(revert(IAgents::NotAgentOwner { caller: *sender }));
    }
    Ok(a)
}

/// The agent, if `sender` is its operator or owner.
fn operated_by(st: &Overlay, id: u64, sender: &Address) -> Result<AgentRecord, CallFail> {
    let a = get_agent(st, id)?;
    if a.operator != *sender && a.owner != *sender {
        return Err(revert(IAgents::NotAgentOperator { caller: *sender }));
    }
    Ok(a)
}

fn not_frozen(a: &AgentRecord) -> Result<(), CallFail> {
    if a.frozenAt != 0 {
        return Err(revert(IAgents::AgentFrozen { id: a.id }));
    }
    Ok(())
}

fn invalid(reason: &str) -> CallFail {
    revert(IAgents::InvalidAgent { reason: reason.into() })
}

fn invalid_task(reason: String) -> CallFail {
    revert(IAgents::InvalidTask { reason })
}

fn wrong_status(t: &TaskRecord) -> CallFail {
    revert(IAgents::WrongTaskStatus { taskId: t.id, status: t.status })
}

fn check_description(d: &str) -> Result<(), CallFail> {
    if d.len() > MAX_DESCRIPTION {
        return Err(invalid("the description must be at most 1024 bytes"));
    }
    Ok(())
}

/// First block of the period of `period_blocks` (≥ 1) that `height` is in.
fn period_start(height: u64, period_blocks: u64) -> u64 {
    height - height % period_blocks.max(1)
}

/// Run `f` over the module's holdings, writing them back if it changed them.
fn with_holdings<R>(
    st: &mut Overlay,
    f: impl FnOnce(&mut Overlay, &mut AgentsHoldings) -> Result<R, CallFail>,
) -> Result<R, CallFail> {
    let mut h = st.agent_holdings()?;
    let before = h;
    let out = f(st, &mut h)?;
    if h != before {
        st.put_holdings(&h);
    }
    Ok(out)
}

fn add(a: Amount, b: u128) -> Result<Amount, CallFail> {
    a.checked_add(Amount(b)).map_err(|_| overflow())
}

/// Totals are kept in step with every record, so a shortfall is a bug; it
/// reverts the call rather than halting the chain.
fn sub(a: Amount, b: u128) -> Result<Amount, CallFail> {
    a.checked_sub(Amount(b)).map_err(|_| overflow())
}

/// Pay a task's escrow: the protocol share to the treasury, the rest to the
/// agent's current owner; the agent completed one more task.
fn pay_task(st: &mut Overlay, ctx: &mut CallCtx, h: &mut AgentsHoldings, t: &mut TaskRecord) -> Result<(), CallFail> {
    let a = get_agent(st, t.agentId)?;
    let bps = param(st, &params::AGENTS_PROTOCOL_SHARE_BPS)?.min(10_000);
    let share = Amount(t.payment).mul_div(bps, 10_000).map_err(|_| overflow())?.0;
    let to_agent = t.payment - share;
    st.transfer(&ADDRESS, &TREASURY, Amount(share))?;
    st.transfer(&ADDRESS, &a.owner, Amount(to_agent))?;
    h.task_escrow = sub(h.task_escrow, t.payment)?;
    t.status = TASK_PAID;
    st.put_task(t);
    let mut rep = st.reputation(a.id)?;
    rep.tasksCompleted = rep.tasksCompleted.saturating_add(1);
    st.put_reputation(a.id, &rep);
    let paid = IAgents::TaskPaid { taskId: t.id, agentOwner: a.owner, toAgent: to_agent, protocolShare: share };
    ctx.emit(ADDRESS, &paid);
    Ok(())
}

/// Refund a task's escrow to its client, with `slash_bps` of the agent's bond
/// (taken from the bond, then from its unbonding part) paid to the client too.
fn refund_task(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    h: &mut AgentsHoldings,
    t: &mut TaskRecord,
    slash_bps: u128,
) -> Result<(), CallFail> {
    let mut slashed = 0u128;
    if slash_bps > 0 && t.agentId != 0 {
        let mut a = get_agent(st, t.agentId)?;
        let total = a.bond.checked_add(a.unbonding).ok_or_else(overflow)?;
        slashed = Amount(total).mul_div(slash_bps.min(10_000), 10_000).map_err(|_| overflow())?.0;
        let from_bond = slashed.min(a.bond);
        a.bond -= from_bond;
        a.unbonding -= slashed - from_bond;
        if a.unbonding == 0 {
            a.unbondAt = 0;
        }
        st.put_agent(&a);
        h.bonds = sub(h.bonds, slashed)?;
    }
    if t.status == TASK_OPEN && t.agentId == 0 {
        st.close_offer(t.id)?;
    }
    let amount = t.payment.checked_add(slashed).ok_or_else(overflow)?;
    st.transfer(&ADDRESS, &t.client, Amount(amount))?;
    h.task_escrow = sub(h.task_escrow, t.payment)?;
    t.status = TASK_REFUNDED;
    st.put_task(t);
    let refunded = IAgents::TaskRefunded { taskId: t.id, client: t.client, amount: t.payment, bondSlashed: slashed };
    ctx.emit(ADDRESS, &refunded);
    Ok(())
}

/// Agents as a system module.
pub struct Agents;

impl SystemModule for Agents {
    type Calls = IAgentsCalls;
    calls!(IAgentsCalls {
        name,
        symbol,
        tokenURI,
        balanceOf,
        ownerOf,
        transferFrom,
        safeTransferFrom_0,
        safeTransferFrom_1,
        approve,
        getApproved,
        setApprovalForAll,
        isApprovedForAll,
        supportsInterface,
        totalSupply,
        register,
        update,
        setOperator,
        agent,
        resolve,
        agentCount,
        agentOfWallet,
        agentsOf,
        fund,
        defund,
        setLimits,
        allow,
        release,
        completeRelease,
        bindApiKey,
        revokeApiKey,
        freeze,
        unfreeze,
        limits,
        periodUsage,
        canServe,
        bond,
        unbond,
        withdrawBond,
        updateMemory,
        setMemoryReaders,
        memoryReaders,
        canReadMemory,
        postTask,
        cancelTask,
        acceptTask,
        deliver,
        acceptResult,
        dispute,
        resolveDispute,
        settleTask,
        feedback,
        task,
        taskCount,
        openTasks,
        tasksOf,
        taskOfReceipt,
        reputation,
        holdings
    });
}

/// Execute a call to the agents module directly (tests and tools).
pub fn execute(st: &mut Overlay, ctx: &mut CallCtx, call: IAgentsCalls) -> Result<Bytes, CallFail> {
    <Agents as SystemModule>::execute(st, ctx, call)
}
