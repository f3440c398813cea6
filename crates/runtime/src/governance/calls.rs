//! The functions of `IGovernance`, one handler each, its gas beside it.

use super::*;
use crate::dispatch::Handler;

/// Gas of a view.
const VIEW_GAS: u64 = 5_000;

impl Handler for IGovernance::proposeCall {
    const PAYABLE: bool = true;

    fn gas(&self) -> u64 {
        100_000 + 10_000 * self.targets.len() as u64
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let sender = ctx.sender;
        let power = st.voting_power(&sender)?;
        let threshold = st.param(&params::GOV_PROPOSAL_THRESHOLD)?;
        if power < threshold {
            return Err(revert(IGovernance::BelowProposalThreshold {
                power: U256::from(power),
                threshold: U256::from(threshold),
            }));
        }
        let mut open = load::<Vec<u64>>(st, &state_key::open())?.unwrap_or_default();
        let deposit = required_deposit(st.param(&params::GOV_DEPOSIT)?, open.len());
        if ctx.value.0 != deposit {
            return Err(revert(IGovernance::DepositMismatch {
                required: U256::from(deposit),
                sent: ctx.value.to_u256(),
            }));
        }
        if self.targets.len() != self.calldatas.len() {
            return Err(revert(InvalidArguments {}));
        }
        if self.targets.is_empty() && self.description.trim().is_empty() {
            return Err(revert(IGovernance::EmptyProposal {}));
        }
        if self.targets.len() > MAX_CALLS {
            return Err(revert(IGovernance::TooManyCalls { max: U256::from(MAX_CALLS) }));
        }
        if let Some(t) = self.targets.iter().find(|t| Module::from_address(t).is_none()) {
            return Err(revert(IGovernance::TargetNotSystem { target: *t }));
        }
        if open.len() >= MAX_OPEN {
            return Err(revert(IGovernance::TooManyOpenProposals { max: U256::from(MAX_OPEN) }));
        }
        let id = st.proposal_count()? + 1;
        let start = height.saturating_add(param_u64(st, &params::GOV_VOTING_DELAY)?);
        let end = start.saturating_add(param_u64(st, &params::GOV_VOTING_PERIOD)?.saturating_sub(1));
        let p = ProposalRecord {
            proposer: sender,
            state: PENDING,
            voteStart: start,
            voteEnd: end,
            eta: 0,
            forVotes: U256::ZERO,
            againstVotes: U256::ZERO,
            abstainVotes: U256::ZERO,
            vetoVotes: U256::ZERO,
            deposit: U256::from(deposit),
            description: self.description.clone(),
            targets: self.targets.clone(),
            calldatas: self.calldatas.clone(),
        };
        // The deposit arrived with the call; hold it where no proposal reaches.
        st.transfer(&ADDRESS, &GOVERNANCE_DEPOSITS, ctx.value)?;
        store(st, state_key::proposal(id), &p);
        store(st, state_key::count(), &id);
        open.push(id);
        store(st, state_key::open(), &open);
        ctx.emit(
            ADDRESS,
            &IGovernance::ProposalCreated {
                id,
                proposer: sender,
                description: self.description,
                targets: self.targets,
                calldatas: self.calldatas,
                voteStart: start,
                voteEnd: end,
            },
        );
        Ok(id)
    }
}

impl Handler for IGovernance::castVoteCall {
    fn gas(&self) -> u64 {
        50_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let sender = ctx.sender;
        let mut p = get(st, self.id)?;
        if p.state != PENDING || height < p.voteStart || height > p.voteEnd {
            return Err(revert(IGovernance::VotingClosed {
                id: self.id,
                voteStart: p.voteStart,
                voteEnd: p.voteEnd,
                height,
            }));
        }
        if self.support > 3 {
            return Err(revert(IGovernance::InvalidSupport { support: self.support }));
        }
        let key = state_key::vote(self.id, &sender);
        if st.get(&key)?.is_some() {
            return Err(revert(IGovernance::AlreadyVoted { id: self.id, voter: sender }));
        }
        let weight = U256::from(st.voting_power_at(&sender, p.voteStart - 1)?);
        if weight.is_zero() {
            return Err(revert(IGovernance::NoVotingPower { voter: sender }));
        }
        match self.support {
            0 => p.againstVotes += weight,
            1 => p.forVotes += weight,
            2 => p.abstainVotes += weight,
            _ => p.vetoVotes += weight,
        }
        st.put(key, Some(vec![self.support + 1]));
        store(st, state_key::proposal(self.id), &p);
        ctx.emit(ADDRESS, &IGovernance::VoteCast { id: self.id, voter: sender, support: self.support, weight });
        Ok(IGovernance::castVoteReturn {})
    }
}

impl Handler for IGovernance::executeCall {
    fn gas(&self) -> u64 {
        60_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let mut p = get(st, self.id)?;
        let grace = param_u64(st, &params::GOV_GRACE_PERIOD)?;
        let s = effective_state(&p, height, grace);
        if s != QUEUED {
            return Err(revert(IGovernance::NotQueued { id: self.id, state: s }));
        }
        if height < p.eta {
            return Err(revert(IGovernance::TimelockNotExpired { id: self.id, eta: p.eta, height }));
        }
        p.state = EXECUTED;
        store(st, state_key::proposal(self.id), &p);
        ctx.calls.extend(p.targets.iter().copied().zip(p.calldatas.iter().cloned()));
        ctx.emit(ADDRESS, &IGovernance::ProposalExecuted { id: self.id });
        Ok(IGovernance::executeReturn {})
    }
}

impl Handler for IGovernance::cancelCall {
    fn gas(&self) -> u64 {
        40_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let sender = ctx.sender;
        let mut p = get(st, self.id)?;
        if p.proposer != sender {
            return Err(revert(IGovernance::NotProposer { caller: sender }));
        }
        if p.state != PENDING || height >= p.voteStart {
            return Err(revert(IGovernance::VotingStarted { id: self.id }));
        }
        p.state = CANCELED;
        store(st, state_key::proposal(self.id), &p);
        remove_open(st, self.id)?;
        ctx.logs.extend(return_deposit(st, self.id, &p)?);
        ctx.emit(ADDRESS, &IGovernance::ProposalCanceled { id: self.id });
        Ok(IGovernance::cancelReturn {})
    }
}

impl Handler for IGovernance::spendTreasuryCall {
    fn gas(&self) -> u64 {
        40_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        if sender != ADDRESS {
            return Err(revert(Unauthorized { caller: sender }));
        }
        let a = Amount::from_u256(self.amount).map_err(|_| revert(primitives::abi::Overflow {}))?;
        st.transfer(&TREASURY, &self.to, a)?;
        ctx.emit(ADDRESS, &IGovernance::TreasurySpent { to: self.to, amount: self.amount });
        Ok(IGovernance::spendTreasuryReturn {})
    }
}

impl Handler for IGovernance::proposalCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let p = get(st, self.id)?;
        let grace = param_u64(st, &params::GOV_GRACE_PERIOD)?;
        Ok(IGovernance::proposalReturn {
            proposer: p.proposer,
            state: effective_state(&p, height, grace),
            voteStart: p.voteStart,
            voteEnd: p.voteEnd,
            eta: p.eta,
            forVotes: p.forVotes,
            againstVotes: p.againstVotes,
            abstainVotes: p.abstainVotes,
            vetoVotes: p.vetoVotes,
            deposit: p.deposit,
            description: p.description,
        })
    }
}

impl Handler for IGovernance::proposalCallsCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let p = get(st, self.id)?;
        Ok(IGovernance::proposalCallsReturn { targets: p.targets, calldatas: p.calldatas })
    }
}

impl Handler for IGovernance::proposalDepositCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let open = load::<Vec<u64>>(st, &state_key::open())?.unwrap_or_default().len();
        let d = required_deposit(st.param(&params::GOV_DEPOSIT)?, open);
        Ok(U256::from(d))
    }
}

impl Handler for IGovernance::proposalCountCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.proposal_count()?)
    }
}

impl Handler for IGovernance::hasVotedCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.get(&state_key::vote(self.id, &self.voter))?.is_some())
    }
}
