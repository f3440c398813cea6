//! The functions of `IStaking`, one handler each, its gas beside it.

use super::*;
use crate::dispatch::Handler;

/// Gas of a view.
const VIEW_GAS: u64 = 5_000;
/// Most operators in one page of `operators`.
pub const MAX_PAGE: u64 = 256;
/// Gas of a slash: a constant, as delegations and unbondings are slashed through the operator's factor.
pub(super) const SLASH_GAS: u64 = 250_000;

impl Handler for IStaking::registerOperatorCall {
    const PAYABLE: bool = true;
    fn gas(&self) -> u64 {
        120_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        if st.operator(&sender)?.is_some() {
            return Err(revert(IStaking::AlreadyRegistered { operator: sender }));
        }
        if self.role != ROLE_VALIDATOR && self.role != ROLE_SERVING {
            return Err(revert(IStaking::UnknownRole { role: self.role }));
        }
        if (self.role == ROLE_VALIDATOR && self.consensusKey == B256::ZERO)
            || (self.role == ROLE_SERVING && self.servingKey == Address::ZERO)
            || self.commissionBps > 10_000
        {
            return Err(revert(IStaking::InvalidKey {}));
        }
        let value = ctx.value;
        register(st, ctx, sender, self.role, self.consensusKey, self.servingKey, self.commissionBps, value)?;
        Ok(IStaking::registerOperatorReturn {})
    }
}

impl Handler for IStaking::bondCall {
    const PAYABLE: bool = true;
    fn gas(&self) -> u64 {
        80_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        if ctx.value == Amount::ZERO {
            return Err(revert(IStaking::BelowMinimumBond { amount: U256::ZERO, minimum: U256::from(1) }));
        }
        let (sender, value) = (ctx.sender, ctx.value);
        bond(st, ctx, &self.operator, &sender, value)?;
        Ok(IStaking::bondReturn {})
    }
}

impl Handler for IStaking::unbondCall {
    fn gas(&self) -> u64 {
        80_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        unbond(st, ctx, &self.operator, self.amount)?;
        Ok(IStaking::unbondReturn {})
    }
}

impl Handler for IStaking::withdrawCall {
    /// At most `MAX_UNBONDINGS` entries, each valued by a binary search over its operator's slashes.
    fn gas(&self) -> u64 {
        50_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        let total = withdraw(st, &sender, ctx.env.number)?;
        ctx.emit(ADDRESS, &IStaking::Withdrawn { account: sender, amount: total });
        Ok(IStaking::withdrawReturn {})
    }
}

impl Handler for IStaking::claimRewardsCall {
    fn gas(&self) -> u64 {
        50_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        let mut oc = load_op(st, &self.operator)?;
        let paid = if sender == self.operator {
            std::mem::replace(&mut oc.op.rewards, U256::ZERO)
        } else {
            let key = state_key::delegation(&self.operator, &sender);
            let mut d = load::<DelegationRecord>(st, &key)?
                .ok_or_else(|| revert(IStaking::InsufficientStake { available: U256::ZERO, requested: U256::ZERO }))?;
            settle_delegation(&oc.op, &mut d);
            let r = std::mem::replace(&mut d.rewards, U256::ZERO);
            store(st, key, &d);
            r
        };
        save_op(st, &mut oc)?;
        st.transfer(&ADDRESS, &sender, amt(paid)?)?;
        ctx.emit(ADDRESS, &IStaking::RewardsClaimed { operator: self.operator, account: sender, amount: paid });
        Ok(IStaking::claimRewardsReturn {})
    }
}

impl Handler for IStaking::rotateConsensusKeyCall {
    fn gas(&self) -> u64 {
        40_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        let mut oc = load_op(st, &sender)?;
        if self.key == B256::ZERO
            || oc.op.role != ROLE_VALIDATOR
            || st.get(&state_key::consensus_key_owner(&self.key))?.is_some()
        {
            return Err(revert(IStaking::InvalidKey {}));
        }
        // The old key stays reserved: a key once used is never reused by anyone.
        st.put(state_key::consensus_key_owner(&self.key), Some(sender.to_vec()));
        oc.op.consensusKey = self.key;
        save_op(st, &mut oc)?;
        ctx.emit(ADDRESS, &IStaking::ConsensusKeyRotated { operator: sender, key: self.key });
        Ok(IStaking::rotateConsensusKeyReturn {})
    }
}

impl Handler for IStaking::rotateServingKeyCall {
    fn gas(&self) -> u64 {
        40_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        let mut oc = load_op(st, &sender)?;
        if self.key == Address::ZERO {
            return Err(revert(IStaking::InvalidKey {}));
        }
        oc.op.servingKey = self.key;
        save_op(st, &mut oc)?;
        ctx.emit(ADDRESS, &IStaking::ServingKeyRotated { operator: sender, key: self.key });
        Ok(IStaking::rotateServingKeyReturn {})
    }
}

impl Handler for IStaking::setCommissionCall {
    fn gas(&self) -> u64 {
        40_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        let mut oc = load_op(st, &sender)?;
        if self.commissionBps > 10_000 {
            return Err(revert(IStaking::InvalidFraction { fractionPpm: self.commissionBps as u32 }));
        }
        oc.op.commissionBps = self.commissionBps;
        save_op(st, &mut oc)?;
        ctx.emit(ADDRESS, &IStaking::CommissionChanged { operator: sender, commissionBps: self.commissionBps });
        Ok(IStaking::setCommissionReturn {})
    }
}

impl Handler for IStaking::unjailCall {
    /// Rejoining the validator set may compare with every seat (at most `staking.max_validators`).
    fn gas(&self) -> u64 {
        40_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        let mut oc = load_op(st, &sender)?;
        if !oc.op.jailed {
            return Err(revert(IStaking::NotJailed { operator: sender }));
        }
        if st.tombstoned(&sender)? {
            return Err(revert(IStaking::Tombstoned { operator: sender }));
        }
        if ctx.env.number < oc.op.jailedUntil {
            return Err(revert(IStaking::OperatorJailed { operator: sender, until: oc.op.jailedUntil }));
        }
        oc.op.jailed = false;
        oc.op.lastPoolIndex = oc.pool.index;
        save_op(st, &mut oc)?;
        ctx.emit(ADDRESS, &IStaking::Unjailed { operator: sender });
        Ok(IStaking::unjailReturn {})
    }
}

impl Handler for IStaking::depositRewardsCall {
    const PAYABLE: bool = true;
    fn gas(&self) -> u64 {
        50_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        if amt(self.amount)? != ctx.value {
            return Err(revert(IStaking::ValueMismatch { expected: self.amount, sent: ctx.value.to_u256() }));
        }
        let role = pool_role(&self.pool).ok_or_else(|| revert(IStaking::UnknownPool { pool: self.pool.clone() }))?;
        // The value already sits at staking's address.
        let v = ctx.value;
        distribute(st, Some(ctx), role, v)?;
        Ok(IStaking::depositRewardsReturn {})
    }
}

impl Handler for IStaking::slashCall {
    /// A constant: delegations and unbondings are slashed through the operator's factor.
    fn gas(&self) -> u64 {
        SLASH_GAS
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        if sender != Module::Governance.address() && sender != Module::Attribution.address() {
            return Err(revert(Unauthorized { caller: sender }));
        }
        slash(st, ctx, &self.operator, self.fractionPpm, self.jailBlocks, &self.reason, &self.reporter)?;
        Ok(IStaking::slashReturn {})
    }
}

impl Handler for IStaking::reportDoubleVoteCall {
    /// Two ed25519 verifications and a slash ([`evidence::REPORT_GAS`]).
    fn gas(&self) -> u64 {
        evidence::REPORT_GAS
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let chain_id = ctx.env.chain_id;
        let (a, b) = (evidence::Signed::vote(self.a, chain_id)?, evidence::Signed::vote(self.b, chain_id)?);
        evidence::report(st, ctx, &self.operator, a, b, "double vote")?;
        Ok(IStaking::reportDoubleVoteReturn {})
    }
}

impl Handler for IStaking::reportDoubleProposalCall {
    /// Two ed25519 verifications and a slash ([`evidence::REPORT_GAS`]).
    fn gas(&self) -> u64 {
        evidence::REPORT_GAS
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let chain_id = ctx.env.chain_id;
        let (a, b) = (evidence::Signed::proposal(self.a, chain_id), evidence::Signed::proposal(self.b, chain_id));
        evidence::report(st, ctx, &self.operator, a, b, "double proposal")?;
        Ok(IStaking::reportDoubleProposalReturn {})
    }
}

impl Handler for IStaking::operatorInfoCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let op =
            st.operator(&self.operator)?.ok_or_else(|| revert(IStaking::NotOperator { account: self.operator }))?;
        Ok(IStaking::operatorInfoReturn {
            role: op.role,
            selfBond: op.selfBond,
            delegated: op.delegated,
            commissionBps: op.commissionBps,
            consensusKey: op.consensusKey,
            servingKey: op.servingKey,
            jailedUntil: if op.jailed { op.jailedUntil.max(1) } else { 0 },
        })
    }
}

impl Handler for IStaking::stakeOfCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let oc = load_op(st, &self.operator)?;
        let (amount, pending) = if self.account == self.operator {
            (oc.op.selfBond, oc.op.rewards)
        } else {
            let (have, d) = own_stake(st, &oc, &self.account)?;
            (have, d.map(|d| d.rewards).unwrap_or(U256::ZERO))
        };
        Ok(IStaking::stakeOfReturn { amount, pendingRewards: pending })
    }
}

impl Handler for IStaking::unbondingsCall {
    /// At most `MAX_UNBONDINGS` entries.
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let list = st.unbondings(&self.account)?;
        let amounts = list.iter().map(|e| unbonding_value(st, e)).collect::<Result<Vec<_>, _>>()?;
        Ok(IStaking::unbondingsReturn {
            operators: list.iter().map(|e| e.operator).collect(),
            amounts,
            releaseHeights: list.iter().map(|e| e.releaseHeight).collect(),
        })
    }
}

impl Handler for IStaking::operatorsCall {
    /// A page: a read per item, at most [`MAX_PAGE`] items.
    fn gas(&self) -> u64 {
        VIEW_GAS + 2_500 * self.limit.min(MAX_PAGE)
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let list = IndexedList::new(state_key::operators(self.role));
        Ok(list.page(st, self.offset, self.limit.min(MAX_PAGE))?)
    }
}

impl Handler for IStaking::poolStakeCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let role = pool_role(&self.pool).ok_or_else(|| revert(IStaking::UnknownPool { pool: self.pool.clone() }))?;
        Ok(st.pool(role)?.totalStake)
    }
}

impl Handler for IStaking::validatorSetAtCall {
    /// At most `staking.max_validators` seats.
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let v = st.validator_set_at(self.height)?;
        Ok(IStaking::validatorSetAtReturn { operators: v.operators, consensusKeys: v.consensusKeys, powers: v.powers })
    }
}

impl Handler for IStaking::votingPowerCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(U256::from(st.voting_power(&self.account)?))
    }
}

impl Handler for IStaking::votingPowerAtCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(U256::from(st.voting_power_at(&self.account, self.height)?))
    }
}

impl Handler for IStaking::totalVotingPowerAtCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(U256::from(st.total_voting_power_at(self.height)?))
    }
}

impl Handler for IStaking::tombstonedCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.tombstoned(&self.operator)?)
    }
}

impl Handler for IStaking::evidenceSubmittedCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.get(&state_key::evidence(&self.operator, self.height, self.round, self.kind))?.is_some())
    }
}

impl Handler for IStaking::livenessCall {
    /// One record of at most `staking.downtime_window` bits.
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let (missed, tracked) = liveness::liveness_of(st, &self.operator)?;
        Ok(IStaking::livenessReturn { missed, tracked })
    }
}
