//! The functions of `IAgents`, one handler each, its gas beside it.

use primitives::B256;
use primitives::abi::{AgentLimits, MAX_TASK_RECEIPTS};
use primitives::system::is_system_address;

use super::*;
use crate::dispatch::Handler;
use crate::inference::{InferenceRead, InferenceWrite};
use crate::models::ModelsRead;

/// Gas of a view.
const VIEW_GAS: u64 = 5_000;
/// Gas of a call into inference's escrow (its own handler's price).
const INFERENCE_GAS: u64 = 40_000;

/// ERC-165 interface ids: ERC-165, ERC-721, ERC-721 Metadata.
const INTERFACES: [[u8; 4]; 3] = primitives::abi::ERC721_INTERFACE_IDS;

// ---- ERC-721 (and ERC-165) ----

impl Handler for IAgents::nameCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, _st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(NAME.to_string())
    }
}

impl Handler for IAgents::symbolCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, _st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(SYMBOL.to_string())
    }
}

impl Handler for IAgents::tokenURICall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = token(st, self.tokenId)?;
        Ok(format!("openledger://agents/{}", a.id))
    }
}

impl Handler for IAgents::balanceOfCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(U256::from(st.agent_balance(&self.owner)?))
    }
}

impl Handler for IAgents::ownerOfCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(token(st, self.tokenId)?.owner)
    }
}

/// ERC-721 `transferFrom`: the caller is the owner, approved for the token, or
/// an operator of the owner; `from` is the owner; `to` can hold a token.
fn transfer_token(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    from: Address,
    to: Address,
    token_id: U256,
) -> Result<(), CallFail> {
    let mut a = token(st, token_id)?;
    let sender = ctx.sender;
    let allowed = sender == a.owner || st.approved(a.id)? == sender || st.is_approved_for_all(&a.owner, &sender)?;
    if !allowed {
        return Err(revert(IAgents::ERC721InsufficientApproval { operator: sender, tokenId: token_id }));
    }
    if from != a.owner {
        return Err(revert(IAgents::ERC721IncorrectOwner { sender: from, tokenId: token_id, owner: a.owner }));
    }
    // Nobody could act for a token held by the zero address, a system contract or an agent's wallet.
    if to == Address::ZERO || is_system_address(&to) || st.agent_of_wallet(&to)?.is_some() {
        return Err(revert(IAgents::ERC721InvalidReceiver { receiver: to }));
    }
    st.move_agent(&mut a, to)?;
    ctx.emit(ADDRESS, &IAgents::Transfer { from, to, tokenId: token_id });
    ctx.emit(ADDRESS, &IAgents::OperatorSet { id: a.id, operator: to });
    Ok(())
}

/// A transfer: the owner sets, a token approval clears, the owner's set moves.
const TRANSFER_GAS: u64 = 60_000;

impl Handler for IAgents::transferFromCall {
    fn gas(&self) -> u64 {
        TRANSFER_GAS
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        transfer_token(st, ctx, self.from, self.to, self.tokenId)?;
        Ok(IAgents::transferFromReturn {})
    }
}

impl Handler for IAgents::safeTransferFrom_0Call {
    /// As `transferFrom`: accounts here have no code to call back.
    fn gas(&self) -> u64 {
        TRANSFER_GAS
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        transfer_token(st, ctx, self.from, self.to, self.tokenId)?;
        Ok(IAgents::safeTransferFrom_0Return {})
    }
}

impl Handler for IAgents::safeTransferFrom_1Call {
    /// As `transferFrom` (the data is ignored: no receiver hook to pass it to).
    fn gas(&self) -> u64 {
        TRANSFER_GAS
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        transfer_token(st, ctx, self.from, self.to, self.tokenId)?;
        Ok(IAgents::safeTransferFrom_1Return {})
    }
}

impl Handler for IAgents::approveCall {
    fn gas(&self) -> u64 {
        30_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = token(st, self.tokenId)?;
        let sender = ctx.sender;
        if sender != a.owner && !st.is_approved_for_all(&a.owner, &sender)? {
            return Err(revert(IAgents::ERC721InvalidApprover { approver: sender }));
        }
        st.set_approved(a.id, self.to);
        ctx.emit(ADDRESS, &IAgents::Approval { owner: a.owner, approved: self.to, tokenId: self.tokenId });
        Ok(IAgents::approveReturn {})
    }
}

impl Handler for IAgents::getApprovedCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = token(st, self.tokenId)?;
        Ok(st.approved(a.id)?)
    }
}

impl Handler for IAgents::setApprovalForAllCall {
    fn gas(&self) -> u64 {
        30_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        if self.operator == Address::ZERO {
            return Err(revert(IAgents::ERC721InvalidOperator { operator: self.operator }));
        }
        st.set_approved_for_all(&sender, &self.operator, self.approved);
        let ev = IAgents::ApprovalForAll { owner: sender, operator: self.operator, approved: self.approved };
        ctx.emit(ADDRESS, &ev);
        Ok(IAgents::setApprovalForAllReturn {})
    }
}

impl Handler for IAgents::isApprovedForAllCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.is_approved_for_all(&self.owner, &self.operator)?)
    }
}

impl Handler for IAgents::supportsInterfaceCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, _st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(INTERFACES.contains(&self.interfaceId.0))
    }
}

impl Handler for IAgents::totalSupplyCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(U256::from(st.agent_count()?))
    }
}

// ---- identity ----

impl Handler for IAgents::registerCall {
    /// The record, its wallet, the owner's set, limits; per description byte (kept in state).
    fn gas(&self) -> u64 {
        150_000 + 20 * (self.name.len() + self.description.len()) as u64
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let (sender, height) = (ctx.sender, ctx.env.number);
        let name = self.name.trim();
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(invalid("the name must be 1 to 64 bytes"));
        }
        check_description(&self.description)?;
        let operator = if self.operator == Address::ZERO { sender } else { self.operator };
        let rec = AgentRecord {
            id: 0,
            owner: sender,
            operator,
            wallet: Address::ZERO,
            name: name.to_string(),
            description: self.description,
            metadataHash: self.metadataHash,
            createdAt: height,
            ..Default::default()
        };
        let limits = AgentLimits {
            perPeriod: u128::MAX,
            perOperator: u128::MAX,
            periodBlocks: blocks(st, &params::AGENTS_DEFAULT_PERIOD_BLOCKS)?.max(1),
            models: vec![],
            modelsSince: 0,
        };
        let id = st.insert_agent(rec, &limits)?;
        let wallet = primitives::abi::agent_wallet(id);
        ctx.emit(ADDRESS, &IAgents::Transfer { from: Address::ZERO, to: sender, tokenId: U256::from(id) });
        let registered = IAgents::AgentRegistered { id, owner: sender, wallet, metadataHash: self.metadataHash };
        ctx.emit(ADDRESS, &registered);
        Ok(id)
    }
}

impl Handler for IAgents::updateCall {
    fn gas(&self) -> u64 {
        40_000 + 20 * self.description.len() as u64
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let mut a = owned_by(st, self.id, &ctx.sender)?;
        check_description(&self.description)?;
        a.description = self.description;
        a.metadataHash = self.metadataHash;
        st.put_agent(&a);
        ctx.emit(ADDRESS, &IAgents::AgentUpdated { id: a.id });
        Ok(IAgents::updateReturn {})
    }
}

impl Handler for IAgents::setOperatorCall {
    fn gas(&self) -> u64 {
        30_000
    }
    /// Zero names the owner.
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let mut a = owned_by(st, self.id, &ctx.sender)?;
        a.operator = if self.operator == Address::ZERO { a.owner } else { self.operator };
        st.put_agent(&a);
        ctx.emit(ADDRESS, &IAgents::OperatorSet { id: a.id, operator: a.operator });
        Ok(IAgents::setOperatorReturn {})
    }
}

impl Handler for IAgents::agentCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        get_agent(st, self.id)
    }
}

impl Handler for IAgents::resolveCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        get_agent(st, self.id)
    }
}

impl Handler for IAgents::agentCountCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.agent_count()?)
    }
}

impl Handler for IAgents::agentOfWalletCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.agent_of_wallet(&self.wallet)?.unwrap_or(0))
    }
}

/// Gas of a page of ids: a read per item, at most [`MAX_PAGE`] items.
fn page_gas(limit: u64, per_item: u64) -> u64 {
    VIEW_GAS + per_item * limit.min(MAX_PAGE)
}

impl Handler for IAgents::agentsOfCall {
    fn gas(&self) -> u64 {
        page_gas(self.limit, 2_500)
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.agents_of(&self.owner, self.offset, self.limit.min(MAX_PAGE))?)
    }
}

// ---- budgets ----

impl Handler for IAgents::fundCall {
    const PAYABLE: bool = true;
    fn gas(&self) -> u64 {
        INFERENCE_GAS + 10_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = get_agent(st, self.id)?;
        let (sender, v) = (ctx.sender, ctx.value.0);
        // The value sits at this module's address; inference takes it from here.
        st.deposit_escrow(ctx, &ADDRESS, &a.wallet, v)?;
        ctx.emit(ADDRESS, &IAgents::AgentFunded { id: a.id, from: sender, amount: v });
        Ok(IAgents::fundReturn {})
    }
}

impl Handler for IAgents::defundCall {
    fn gas(&self) -> u64 {
        INFERENCE_GAS + 10_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = owned_by(st, self.id, &ctx.sender)?;
        st.withdraw_escrow(ctx, &a.wallet, &a.owner, self.amount)?;
        ctx.emit(ADDRESS, &IAgents::AgentDefunded { id: a.id, to: a.owner, amount: self.amount });
        Ok(IAgents::defundReturn {})
    }
}

impl Handler for IAgents::setLimitsCall {
    /// A read per model named.
    fn gas(&self) -> u64 {
        40_000 + 5_000 * (self.models.len().min(MAX_MODELS + 1)) as u64
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = owned_by(st, self.id, &ctx.sender)?;
        if self.periodBlocks == 0 {
            return Err(invalid("the period must be at least one block"));
        }
        if self.models.len() > MAX_MODELS {
            return Err(invalid("at most 64 models"));
        }
        let mut models = self.models.clone();
        models.sort_unstable();
        models.dedup();
        if models.len() != self.models.len() {
            return Err(invalid("a model is named twice"));
        }
        for m in &models {
            if st.model(primitives::ModelId(*m))?.is_none() {
                return Err(invalid("an unknown model is named"));
            }
        }
        let old = st.limits(a.id)?.unwrap_or_default();
        // Receipts of a model the list stops allowing refuse from now on; earlier ones settle.
        let models_since = if old.models == models { old.modelsSince } else { ctx.env.number };
        let l = AgentLimits {
            perPeriod: self.perPeriod,
            perOperator: self.perOperator,
            periodBlocks: self.periodBlocks,
            models: models.clone(),
            modelsSince: models_since,
        };
        st.put_limits(a.id, &l);
        let set = IAgents::LimitsSet {
            id: a.id,
            perPeriod: self.perPeriod,
            perOperator: self.perOperator,
            periodBlocks: self.periodBlocks,
            models,
        };
        ctx.emit(ADDRESS, &set);
        Ok(IAgents::setLimitsReturn {})
    }
}

/// Refuse an allowance that would pass a limit of the current period.
fn check_limit(id: u64, which: &str, limit: u128, used: u128, amount: u128) -> Result<(), CallFail> {
    let available = limit.saturating_sub(used);
    if amount > available {
        return Err(revert(IAgents::LimitExceeded { id, which: which.into(), available, required: amount }));
    }
    Ok(())
}

impl Handler for IAgents::allowCall {
    /// Inference's allowance, the limits and the two usage records.
    fn gas(&self) -> u64 {
        INFERENCE_GAS + 40_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = operated_by(st, self.id, &ctx.sender)?;
        not_frozen(&a)?;
        let l = st.limits(a.id)?.unwrap_or_default();
        let start = period_start(ctx.env.number, l.periodBlocks);
        let (total, to_op) = st.period_usage(a.id, &self.servingOperator, start)?;
        check_limit(a.id, "period", l.perPeriod, total, self.amount)?;
        check_limit(a.id, "operator", l.perOperator, to_op, self.amount)?;
        st.grant_allowance(ctx, &a.wallet, &self.servingOperator, self.amount)?;
        // Both fit: each is at most its limit, a u128.
        st.put_period_usage(a.id, &self.servingOperator, start, total + self.amount, to_op + self.amount);
        let ev = IAgents::AgentAllowance { id: a.id, servingOperator: self.servingOperator, amount: self.amount };
        ctx.emit(ADDRESS, &ev);
        Ok(IAgents::allowReturn {})
    }
}

impl Handler for IAgents::releaseCall {
    fn gas(&self) -> u64 {
        INFERENCE_GAS + 10_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = operated_by(st, self.id, &ctx.sender)?;
        st.request_release(ctx, &a.wallet, &self.servingOperator, self.amount)?;
        Ok(IAgents::releaseReturn {})
    }
}

impl Handler for IAgents::completeReleaseCall {
    fn gas(&self) -> u64 {
        INFERENCE_GAS + 10_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = operated_by(st, self.id, &ctx.sender)?;
        st.complete_release(ctx, &a.wallet, &self.servingOperator)?;
        Ok(IAgents::completeReleaseReturn {})
    }
}

impl Handler for IAgents::bindApiKeyCall {
    fn gas(&self) -> u64 {
        35_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = operated_by(st, self.id, &ctx.sender)?;
        not_frozen(&a)?;
        st.bind_api_key(ctx, &a.wallet, self.keyHash)?;
        Ok(IAgents::bindApiKeyReturn {})
    }
}

impl Handler for IAgents::revokeApiKeyCall {
    fn gas(&self) -> u64 {
        35_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = operated_by(st, self.id, &ctx.sender)?;
        st.revoke_api_key(ctx, &a.wallet, self.keyHash)?;
        Ok(IAgents::revokeApiKeyReturn {})
    }
}

impl Handler for IAgents::freezeCall {
    fn gas(&self) -> u64 {
        30_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let mut a = owned_by(st, self.id, &ctx.sender)?;
        // Frozen already: the earlier height stands.
        not_frozen(&a)?;
        // Height 0 is genesis, where no transaction runs; `max(1)` keeps 0 meaning "not frozen".
        a.frozenAt = ctx.env.number.max(1);
        st.put_agent(&a);
        ctx.emit(ADDRESS, &IAgents::Frozen { id: a.id, height: a.frozenAt });
        Ok(IAgents::freezeReturn {})
    }
}

impl Handler for IAgents::unfreezeCall {
    fn gas(&self) -> u64 {
        30_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let mut a = owned_by(st, self.id, &ctx.sender)?;
        if a.frozenAt == 0 {
            return Err(invalid("the agent is not frozen"));
        }
        a.frozenAt = 0;
        st.put_agent(&a);
        ctx.emit(ADDRESS, &IAgents::Unfrozen { id: a.id });
        Ok(IAgents::unfreezeReturn {})
    }
}

impl Handler for IAgents::limitsCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = get_agent(st, self.id)?;
        Ok(st.limits(a.id)?.unwrap_or_default())
    }
}

impl Handler for IAgents::periodUsageCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = get_agent(st, self.id)?;
        let l = st.limits(a.id)?.unwrap_or_default();
        let start = period_start(ctx.env.number, l.periodBlocks);
        let (total, to_op) = st.period_usage(a.id, &self.servingOperator, start)?;
        Ok(IAgents::periodUsageReturn { periodStart: start, total, toOperator: to_op })
    }
}

impl Handler for IAgents::canServeCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let reason = st.serve_refusal(&self.wallet, self.modelId)?;
        Ok(IAgents::canServeReturn { ok: reason.is_none(), reason: reason.unwrap_or_default() })
    }
}

// ---- bond ----

impl Handler for IAgents::bondCall {
    const PAYABLE: bool = true;
    fn gas(&self) -> u64 {
        40_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        with_holdings(st, |st, h| {
            let mut a = owned_by(st, self.id, &ctx.sender)?;
            let v = ctx.value.0;
            if v == 0 {
                return Err(invalid("the bond must be non-zero"));
            }
            a.bond = a.bond.checked_add(v).ok_or_else(overflow)?;
            h.bonds = add(h.bonds, v)?;
            st.put_agent(&a);
            ctx.emit(ADDRESS, &IAgents::AgentBonded { id: a.id, amount: v });
            Ok(IAgents::bondReturn {})
        })
    }
}

impl Handler for IAgents::unbondCall {
    fn gas(&self) -> u64 {
        40_000
    }
    /// A further request adds to the unbonding part and restarts its delay.
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let mut a = owned_by(st, self.id, &ctx.sender)?;
        if self.amount == 0 || self.amount > a.bond {
            return Err(revert(IAgents::StakeTooSmall { required: self.amount, bond: a.bond }));
        }
        let release_at = ctx.env.number.saturating_add(blocks(st, &params::AGENTS_UNBOND_DELAY_BLOCKS)?);
        a.bond -= self.amount;
        a.unbonding = a.unbonding.checked_add(self.amount).ok_or_else(overflow)?;
        a.unbondAt = release_at;
        st.put_agent(&a);
        ctx.emit(ADDRESS, &IAgents::AgentUnbondStarted { id: a.id, amount: self.amount, releaseAt: release_at });
        Ok(IAgents::unbondReturn {})
    }
}

impl Handler for IAgents::withdrawBondCall {
    fn gas(&self) -> u64 {
        40_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        with_holdings(st, |st, h| {
            let mut a = owned_by(st, self.id, &ctx.sender)?;
            if a.unbonding == 0 {
                return Err(invalid("nothing is unbonding"));
            }
            if ctx.env.number < a.unbondAt {
                return Err(revert(IAgents::WindowOpen { taskId: 0, until: a.unbondAt }));
            }
            let amount = std::mem::take(&mut a.unbonding);
            a.unbondAt = 0;
            st.put_agent(&a);
            h.bonds = sub(h.bonds, amount)?;
            st.transfer(&ADDRESS, &a.owner, Amount(amount))?;
            ctx.emit(ADDRESS, &IAgents::AgentUnbonded { id: a.id, amount });
            Ok(IAgents::withdrawBondReturn {})
        })
    }
}

// ---- memory ----

impl Handler for IAgents::updateMemoryCall {
    fn gas(&self) -> u64 {
        35_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let mut a = operated_by(st, self.id, &ctx.sender)?;
        let max = u32::try_from(param(st, &params::AGENTS_MAX_MEMORY_UPDATE)?).unwrap_or(u32::MAX);
        if self.size > max {
            return Err(revert(IAgents::MemoryUpdateTooLarge { size: self.size, max }));
        }
        a.memoryRoot = self.root;
        a.memoryVersion = a.memoryVersion.checked_add(1).ok_or_else(overflow)?;
        st.put_agent(&a);
        let ev = IAgents::MemoryUpdated {
            id: a.id,
            root: self.root,
            version: a.memoryVersion,
            blobHash: self.blobHash,
            size: self.size,
        };
        ctx.emit(ADDRESS, &ev);
        Ok(IAgents::updateMemoryReturn {})
    }
}

impl Handler for IAgents::setMemoryReadersCall {
    fn gas(&self) -> u64 {
        30_000 + 5_000 * self.readers.len().min(MAX_READERS + 1) as u64
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = owned_by(st, self.id, &ctx.sender)?;
        if self.readers.len() > MAX_READERS {
            return Err(invalid("at most 32 memory readers"));
        }
        st.put_memory_readers(a.id, &self.readers);
        ctx.emit(ADDRESS, &IAgents::MemoryReadersSet { id: a.id, readers: self.readers });
        Ok(IAgents::setMemoryReadersReturn {})
    }
}

impl Handler for IAgents::memoryReadersCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = get_agent(st, self.id)?;
        Ok(st.memory_readers(a.id)?)
    }
}

impl Handler for IAgents::canReadMemoryCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = get_agent(st, self.id)?;
        let r = self.reader;
        Ok(r == a.owner || r == a.operator || st.memory_readers(a.id)?.contains(&r))
    }
}

// ---- tasks ----

impl Handler for IAgents::postTaskCall {
    const PAYABLE: bool = true;
    /// The record and its listing (an open offer updates the Fenwick tree: 33 writes).
    fn gas(&self) -> u64 {
        if self.agentId == 0 { 250_000 } else { 80_000 }
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        with_holdings(st, |st, h| {
            let (client, height, payment) = (ctx.sender, ctx.env.number, ctx.value.0);
            if payment == 0 {
                return Err(invalid_task("the payment must be non-zero".into()));
            }
            if self.deadline <= height {
                return Err(revert(IAgents::DeadlinePassed { taskId: 0, deadline: self.deadline }));
            }
            if self.resolver == Address::ZERO {
                return Err(invalid_task("the resolver must be non-zero".into()));
            }
            if self.agentId != 0 {
                not_frozen(&get_agent(st, self.agentId)?)?;
            }
            let t = TaskRecord {
                client,
                agentId: self.agentId,
                specHash: self.specHash,
                payment,
                deadline: self.deadline,
                requiredStake: self.requiredStake,
                resolver: self.resolver,
                status: TASK_OPEN,
                postedAt: height,
                score: NO_SCORE,
                ..Default::default()
            };
            let id = st.insert_task(t)?;
            h.task_escrow = add(h.task_escrow, payment)?;
            let posted = IAgents::TaskPosted {
                taskId: id,
                client,
                agentId: self.agentId,
                payment,
                deadline: self.deadline,
                specHash: self.specHash,
            };
            ctx.emit(ADDRESS, &posted);
            Ok(id)
        })
    }
}

fn client_task(st: &Overlay, id: u64, sender: &Address) -> Result<TaskRecord, CallFail> {
    let t = get_task(st, id)?;
    if t.client != *sender {
        return Err(revert(IAgents::NotClient { caller: *sender }));
    }
    Ok(t)
}

impl Handler for IAgents::cancelTaskCall {
    fn gas(&self) -> u64 {
        250_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        with_holdings(st, |st, h| {
            let mut t = client_task(st, self.taskId, &ctx.sender)?;
            if t.status != TASK_OPEN {
                return Err(wrong_status(&t));
            }
            refund_task(st, ctx, h, &mut t, 0)?;
            Ok(IAgents::cancelTaskReturn {})
        })
    }
}

impl Handler for IAgents::acceptTaskCall {
    fn gas(&self) -> u64 {
        250_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = operated_by(st, self.agentId, &ctx.sender)?;
        let mut t = get_task(st, self.taskId)?;
        if t.status != TASK_OPEN {
            return Err(wrong_status(&t));
        }
        if ctx.env.number > t.deadline {
            return Err(revert(IAgents::DeadlinePassed { taskId: t.id, deadline: t.deadline }));
        }
        if t.agentId != 0 && t.agentId != a.id {
            return Err(invalid_task(format!("task {} is for agent {}", t.id, t.agentId)));
        }
        not_frozen(&a)?;
        if a.bond < t.requiredStake {
            return Err(revert(IAgents::StakeTooSmall { required: t.requiredStake, bond: a.bond }));
        }
        if t.agentId == 0 {
            st.close_offer(t.id)?;
            st.push_task_of(a.id, t.id)?;
            t.agentId = a.id;
        }
        t.status = TASK_ACCEPTED;
        st.put_task(&t);
        ctx.emit(ADDRESS, &IAgents::TaskAccepted { taskId: t.id, agentId: a.id });
        Ok(IAgents::acceptTaskReturn {})
    }
}

/// Check delivered receipts: each settled, paid by `wallet`, not linked to a
/// task yet and named once.
fn check_receipts(st: &Overlay, wallet: &Address, receipts: &[B256]) -> Result<(), CallFail> {
    if receipts.len() > MAX_TASK_RECEIPTS {
        return Err(invalid_task(format!("at most {MAX_TASK_RECEIPTS} receipts")));
    }
    for (i, h) in receipts.iter().enumerate() {
        let bad = |reason: String| revert(IAgents::BadReceipt { index: U256::from(i), reason });
        let Some(r) = st.settled_receipt(h)? else { return Err(bad("not settled".into())) };
        if r.payer != *wallet {
            return Err(bad(format!("paid by {}, not the agent's wallet", r.payer)));
        }
        let linked = st.task_of_receipt(h)?;
        if linked != 0 {
            return Err(bad(format!("delivered with task {linked} already")));
        }
        if receipts[..i].contains(h) {
            return Err(bad("named twice".into()));
        }
    }
    Ok(())
}

impl Handler for IAgents::deliverCall {
    /// Three reads and a write per receipt.
    fn gas(&self) -> u64 {
        50_000 + 30_000 * self.receipts.len().min(MAX_TASK_RECEIPTS + 1) as u64
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let mut t = get_task(st, self.taskId)?;
        if t.status != TASK_ACCEPTED {
            return Err(wrong_status(&t));
        }
        let a = operated_by(st, t.agentId, &ctx.sender)?;
        if ctx.env.number > t.deadline {
            return Err(revert(IAgents::DeadlinePassed { taskId: t.id, deadline: t.deadline }));
        }
        check_receipts(st, &a.wallet, &self.receipts)?;
        for h in &self.receipts {
            st.link_receipt(h, t.id);
        }
        t.status = TASK_DELIVERED;
        t.deliveredAt = ctx.env.number;
        t.resultHash = self.resultHash;
        t.receipts = self.receipts.clone();
        st.put_task(&t);
        let ev = IAgents::TaskDelivered { taskId: t.id, resultHash: self.resultHash, receipts: self.receipts };
        ctx.emit(ADDRESS, &ev);
        Ok(IAgents::deliverReturn {})
    }
}

/// Paying a task: two transfers, the record and the reputation.
const PAY_GAS: u64 = 80_000;

impl Handler for IAgents::acceptResultCall {
    fn gas(&self) -> u64 {
        PAY_GAS
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        with_holdings(st, |st, h| {
            let mut t = client_task(st, self.taskId, &ctx.sender)?;
            if t.status != TASK_DELIVERED {
                return Err(wrong_status(&t));
            }
            pay_task(st, ctx, h, &mut t)?;
            Ok(IAgents::acceptResultReturn {})
        })
    }
}

fn dispute_until(st: &Overlay, t: &TaskRecord) -> Result<u64, CallFail> {
    Ok(t.deliveredAt.saturating_add(blocks(st, &params::AGENTS_DISPUTE_WINDOW_BLOCKS)?))
}

impl Handler for IAgents::disputeCall {
    fn gas(&self) -> u64 {
        40_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let mut t = client_task(st, self.taskId, &ctx.sender)?;
        if t.status != TASK_DELIVERED {
            return Err(wrong_status(&t));
        }
        let until = dispute_until(st, &t)?;
        if ctx.env.number >= until {
            return Err(revert(IAgents::WindowClosed { taskId: t.id, until }));
        }
        t.status = TASK_DISPUTED;
        st.put_task(&t);
        st.set_disputed_at(t.id, ctx.env.number);
        ctx.emit(ADDRESS, &IAgents::TaskDisputed { taskId: t.id, reasonHash: self.reasonHash });
        Ok(IAgents::disputeReturn {})
    }
}

impl Handler for IAgents::resolveDisputeCall {
    fn gas(&self) -> u64 {
        PAY_GAS + 20_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        with_holdings(st, |st, h| {
            let mut t = get_task(st, self.taskId)?;
            if t.resolver != ctx.sender {
                return Err(revert(IAgents::NotResolver { caller: ctx.sender }));
            }
            if t.status != TASK_DISPUTED {
                return Err(wrong_status(&t));
            }
            let mut rep = st.reputation(t.agentId)?;
            if self.agentWins {
                rep.disputesWon = rep.disputesWon.saturating_add(1);
                st.put_reputation(t.agentId, &rep);
                pay_task(st, ctx, h, &mut t)?;
            } else {
                rep.disputesLost = rep.disputesLost.saturating_add(1);
                st.put_reputation(t.agentId, &rep);
                let bps = param(st, &params::AGENTS_DISPUTE_SLASH_BPS)?;
                refund_task(st, ctx, h, &mut t, bps)?;
            }
            Ok(IAgents::resolveDisputeReturn {})
        })
    }
}

impl Handler for IAgents::settleTaskCall {
    /// A payment, or a refund that may close an open offer (33 writes).
    fn gas(&self) -> u64 {
        250_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        with_holdings(st, |st, h| {
            let height = ctx.env.number;
            let mut t = get_task(st, self.taskId)?;
            match t.status {
                TASK_DELIVERED => {
                    let until = dispute_until(st, &t)?;
                    if height < until {
                        return Err(revert(IAgents::WindowOpen { taskId: t.id, until }));
                    }
                    pay_task(st, ctx, h, &mut t)?;
                }
                TASK_OPEN | TASK_ACCEPTED => {
                    if height <= t.deadline {
                        return Err(revert(IAgents::DeadlineNotPassed { taskId: t.id, deadline: t.deadline }));
                    }
                    refund_task(st, ctx, h, &mut t, 0)?;
                }
                TASK_DISPUTED => {
                    let timeout = blocks(st, &params::AGENTS_RESOLVE_TIMEOUT_BLOCKS)?;
                    let until = st.disputed_at(t.id)?.saturating_add(timeout);
                    if height <= until {
                        return Err(revert(IAgents::WindowOpen { taskId: t.id, until }));
                    }
                    refund_task(st, ctx, h, &mut t, 0)?;
                }
                _ => return Err(wrong_status(&t)),
            }
            Ok(IAgents::settleTaskReturn {})
        })
    }
}

impl Handler for IAgents::feedbackCall {
    fn gas(&self) -> u64 {
        40_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let mut t = client_task(st, self.taskId, &ctx.sender)?;
        if t.status != TASK_PAID {
            return Err(wrong_status(&t));
        }
        if t.score != NO_SCORE {
            return Err(revert(IAgents::FeedbackAlreadyGiven { taskId: t.id }));
        }
        if self.score > 100 {
            return Err(revert(IAgents::InvalidScore { score: self.score }));
        }
        t.score = self.score;
        t.commentHash = self.commentHash;
        st.put_task(&t);
        let mut rep = st.reputation(t.agentId)?;
        rep.feedbackCount = rep.feedbackCount.saturating_add(1);
        rep.scoreSum = rep.scoreSum.saturating_add(self.score as u64);
        st.put_reputation(t.agentId, &rep);
        let ev = IAgents::FeedbackGiven {
            taskId: t.id,
            agentId: t.agentId,
            score: self.score,
            commentHash: self.commentHash,
        };
        ctx.emit(ADDRESS, &ev);
        Ok(IAgents::feedbackReturn {})
    }
}

impl Handler for IAgents::taskCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        get_task(st, self.taskId)
    }
}

impl Handler for IAgents::taskCountCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.task_count()?)
    }
}

impl Handler for IAgents::openTasksCall {
    /// A Fenwick search (33 reads) per item.
    fn gas(&self) -> u64 {
        page_gas(self.limit, 40_000)
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.open_tasks(self.offset, self.limit.min(MAX_PAGE))?)
    }
}

impl Handler for IAgents::tasksOfCall {
    fn gas(&self) -> u64 {
        page_gas(self.limit, 2_500)
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.tasks_of(self.agentId, self.offset, self.limit.min(MAX_PAGE))?)
    }
}

impl Handler for IAgents::taskOfReceiptCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.task_of_receipt(&self.receiptHash)?)
    }
}

impl Handler for IAgents::reputationCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = get_agent(st, self.id)?;
        Ok(st.reputation(a.id)?)
    }
}

impl Handler for IAgents::holdingsCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let h = st.agent_holdings()?;
        Ok(IAgents::holdingsReturn { taskEscrow: h.task_escrow.0, bonds: h.bonds.0 })
    }
}
