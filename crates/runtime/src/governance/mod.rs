//! `governance`: proposals as lists of calls to system contracts, voted with
//! staked OPEN (voting power snapshotted the block before voting starts),
//! tallied at the end of the voting period, executed with the governance
//! address as sender after the timelock. The treasury moves only through
//! `spendTreasury`, which only a proposal can call. Deposits are held at
//! [`GOVERNANCE_DEPOSITS`], apart from the governance address a proposal acts
//! as, so no proposal can spend another's deposit and returning one at the end
//! of a block cannot fail.

pub mod state_key;

use alloy_primitives::U256;
use alloy_sol_types::{SolCall, sol};
use primitives::abi::IGovernance::{self, IGovernanceCalls};
use primitives::abi::{InvalidArguments, Unauthorized};
use primitives::system::{GOVERNANCE_DEPOSITS, Module, TREASURY};
use primitives::{Address, Amount, Bytes};

use crate::bank::BankWrite;
use crate::codec::{load, store};
use crate::context::{BlockEnv, CallCtx, CallFail};
use crate::params::{self, ParamsRead};
use crate::staking::StakingRead;
use crate::{Overlay, revert};

pub const ADDRESS: Address = Module::Governance.address();
/// Most calls in one proposal.
pub const MAX_CALLS: usize = 32;
/// Most proposals open (pending or voting) at once.
pub const MAX_OPEN: usize = 64;
/// The deposit doubles for every this many open proposals.
pub const DEPOSIT_DOUBLING: usize = 8;

/// The deposit a proposal must send while `open` proposals are open: the
/// base deposit doubled for every [`DEPOSIT_DOUBLING`] of them, so occupying
/// the slots to block governance costs far more than one deposit each (and a
/// proposal without quorum loses its deposit).
pub fn required_deposit(base: u128, open: usize) -> u128 {
    base.saturating_mul(1u128 << (open / DEPOSIT_DOUBLING).min(64))
}

pub const PENDING: u8 = 0;
pub const ACTIVE: u8 = 1;
pub const CANCELED: u8 = 2;
pub const DEFEATED: u8 = 3;
pub const SUCCEEDED: u8 = 4;
pub const QUEUED: u8 = 5;
pub const EXPIRED: u8 = 6;
pub const EXECUTED: u8 = 7;
pub const VETOED: u8 = 8;

/// Names of the states, for humans.
pub fn state_name(s: u8) -> &'static str {
    ["pending", "active", "canceled", "defeated", "succeeded", "queued", "expired", "executed", "vetoed"]
        .get(s as usize)
        .copied()
        .unwrap_or("unknown")
}

sol! {
    struct ProposalRecord {
        address proposer;
        /// Stored state: PENDING until tallied (ACTIVE is derived from the height), then final ones.
        uint8 state;
        uint64 voteStart;
        uint64 voteEnd;
        uint64 eta;
        uint256 forVotes;
        uint256 againstVotes;
        uint256 abstainVotes;
        uint256 vetoVotes;
        uint256 deposit;
        string description;
        address[] targets;
        bytes[] calldatas;
    }
}

/// The state of `p` at `height`, deriving active and expired.
pub fn effective_state(p: &ProposalRecord, height: u64, grace: u64) -> u8 {
    match p.state {
        PENDING if height >= p.voteStart => ACTIVE,
        QUEUED if height > p.eta.saturating_add(grace) => EXPIRED,
        s => s,
    }
}

/// Reads of governance state.
pub trait GovernanceRead {
    fn proposal(&self, id: u64) -> Result<Option<ProposalRecord>, primitives::state::StateError>;
    fn proposal_count(&self) -> Result<u64, primitives::state::StateError>;
}

impl<S: primitives::state::StateRead + ?Sized> GovernanceRead for S {
    fn proposal(&self, id: u64) -> Result<Option<ProposalRecord>, primitives::state::StateError> {
        load(self, &state_key::proposal(id))
    }
    fn proposal_count(&self) -> Result<u64, primitives::state::StateError> {
        Ok(load::<u64>(self, &state_key::count())?.unwrap_or(0))
    }
}

pub fn gas_cost(call: &IGovernanceCalls) -> u64 {
    use IGovernanceCalls::*;
    match call {
        propose(c) => 100_000 + 10_000 * c.targets.len() as u64,
        castVote(_) => 50_000,
        execute(_) => 60_000,
        cancel(_) | spendTreasury(_) => 40_000,
        _ => 5_000,
    }
}

pub fn decode(input: &[u8]) -> Result<IGovernanceCalls, CallFail> {
    crate::executor::decode_calls::<IGovernanceCalls>(input)
}

fn get(st: &Overlay, id: u64) -> Result<ProposalRecord, CallFail> {
    st.proposal(id)?.ok_or_else(|| revert(IGovernance::UnknownProposal { id }))
}

fn param_u64(st: &Overlay, p: &params::ParamSpec) -> Result<u64, CallFail> {
    Ok(u64::try_from(st.param(p)?).unwrap_or(u64::MAX))
}

fn return_deposit(st: &mut Overlay, id: u64, p: &ProposalRecord) -> Result<Option<primitives::Log>, CallFail> {
    let d = Amount::from_u256(p.deposit).map_err(|_| revert(primitives::abi::Overflow {}))?;
    st.transfer(&GOVERNANCE_DEPOSITS, &p.proposer, d)?;
    Ok(Some(log(&IGovernance::DepositReturned { id, proposer: p.proposer, amount: p.deposit })))
}

fn remove_open(st: &mut Overlay, id: u64) -> Result<(), CallFail> {
    let mut open = load::<Vec<u64>>(st, &state_key::open())?.unwrap_or_default();
    open.retain(|x| *x != id);
    store(st, state_key::open(), &open);
    Ok(())
}

pub fn execute(st: &mut Overlay, ctx: &mut CallCtx, call: IGovernanceCalls) -> Result<Bytes, CallFail> {
    use IGovernanceCalls as C;
    let height = ctx.env.number;
    let sender = ctx.sender;
    Ok(match call {
        C::propose(c) => {
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
            if c.targets.len() != c.calldatas.len() {
                return Err(revert(InvalidArguments {}));
            }
            if c.targets.is_empty() && c.description.trim().is_empty() {
                return Err(revert(IGovernance::EmptyProposal {}));
            }
            if c.targets.len() > MAX_CALLS {
                return Err(revert(IGovernance::TooManyCalls { max: U256::from(MAX_CALLS) }));
            }
            if let Some(t) = c.targets.iter().find(|t| Module::from_address(t).is_none()) {
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
                description: c.description.clone(),
                targets: c.targets.clone(),
                calldatas: c.calldatas.clone(),
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
                    description: c.description,
                    targets: c.targets,
                    calldatas: c.calldatas,
                    voteStart: start,
                    voteEnd: end,
                },
            );
            IGovernance::proposeCall::abi_encode_returns(&id).into()
        }
        C::castVote(c) => {
            let mut p = get(st, c.id)?;
            if p.state != PENDING || height < p.voteStart || height > p.voteEnd {
                return Err(revert(IGovernance::VotingClosed {
                    id: c.id,
                    voteStart: p.voteStart,
                    voteEnd: p.voteEnd,
                    height,
                }));
            }
            if c.support > 3 {
                return Err(revert(IGovernance::InvalidSupport { support: c.support }));
            }
            let key = state_key::vote(c.id, &sender);
            if st.get(&key)?.is_some() {
                return Err(revert(IGovernance::AlreadyVoted { id: c.id, voter: sender }));
            }
            let weight = U256::from(st.voting_power_at(&sender, p.voteStart - 1)?);
            if weight.is_zero() {
                return Err(revert(IGovernance::NoVotingPower { voter: sender }));
            }
            match c.support {
                0 => p.againstVotes += weight,
                1 => p.forVotes += weight,
                2 => p.abstainVotes += weight,
                _ => p.vetoVotes += weight,
            }
            st.put(key, Some(vec![c.support + 1]));
            store(st, state_key::proposal(c.id), &p);
            ctx.emit(ADDRESS, &IGovernance::VoteCast { id: c.id, voter: sender, support: c.support, weight });
            IGovernance::castVoteCall::abi_encode_returns(&IGovernance::castVoteReturn {}).into()
        }
        C::execute(c) => {
            let mut p = get(st, c.id)?;
            let grace = param_u64(st, &params::GOV_GRACE_PERIOD)?;
            let s = effective_state(&p, height, grace);
            if s != QUEUED {
                return Err(revert(IGovernance::NotQueued { id: c.id, state: s }));
            }
            if height < p.eta {
                return Err(revert(IGovernance::TimelockNotExpired { id: c.id, eta: p.eta, height }));
            }
            p.state = EXECUTED;
            store(st, state_key::proposal(c.id), &p);
            ctx.calls.extend(p.targets.iter().copied().zip(p.calldatas.iter().cloned()));
            ctx.emit(ADDRESS, &IGovernance::ProposalExecuted { id: c.id });
            IGovernance::executeCall::abi_encode_returns(&IGovernance::executeReturn {}).into()
        }
        C::cancel(c) => {
            let mut p = get(st, c.id)?;
            if p.proposer != sender {
                return Err(revert(IGovernance::NotProposer { caller: sender }));
            }
            if p.state != PENDING || height >= p.voteStart {
                return Err(revert(IGovernance::VotingStarted { id: c.id }));
            }
            p.state = CANCELED;
            store(st, state_key::proposal(c.id), &p);
            remove_open(st, c.id)?;
            ctx.logs.extend(return_deposit(st, c.id, &p)?);
            ctx.emit(ADDRESS, &IGovernance::ProposalCanceled { id: c.id });
            IGovernance::cancelCall::abi_encode_returns(&IGovernance::cancelReturn {}).into()
        }
        C::spendTreasury(c) => {
            if sender != ADDRESS {
                return Err(revert(Unauthorized { caller: sender }));
            }
            let a = Amount::from_u256(c.amount).map_err(|_| revert(primitives::abi::Overflow {}))?;
            st.transfer(&TREASURY, &c.to, a)?;
            ctx.emit(ADDRESS, &IGovernance::TreasurySpent { to: c.to, amount: c.amount });
            IGovernance::spendTreasuryCall::abi_encode_returns(&IGovernance::spendTreasuryReturn {}).into()
        }
        C::proposal(c) => {
            let p = get(st, c.id)?;
            let grace = param_u64(st, &params::GOV_GRACE_PERIOD)?;
            IGovernance::proposalCall::abi_encode_returns(&IGovernance::proposalReturn {
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
            .into()
        }
        C::proposalCalls(c) => {
            let p = get(st, c.id)?;
            IGovernance::proposalCallsCall::abi_encode_returns(&IGovernance::proposalCallsReturn {
                targets: p.targets,
                calldatas: p.calldatas,
            })
            .into()
        }
        C::proposalDeposit(_) => {
            let open = load::<Vec<u64>>(st, &state_key::open())?.unwrap_or_default().len();
            let d = required_deposit(st.param(&params::GOV_DEPOSIT)?, open);
            IGovernance::proposalDepositCall::abi_encode_returns(&U256::from(d)).into()
        }
        C::proposalCount(_) => IGovernance::proposalCountCall::abi_encode_returns(&st.proposal_count()?).into(),
        C::hasVoted(c) => {
            IGovernance::hasVotedCall::abi_encode_returns(&st.get(&state_key::vote(c.id, &c.voter))?.is_some()).into()
        }
    })
}

/// End of block: tally every proposal whose vote ended. Blocks carry no logs
/// outside transactions, so the outcome is read from `proposal(id)` (its state,
/// tallies and eta); `ProposalTallied` is emitted only for tallies made inside a
/// transaction, which none are today.
pub fn end_block(st: &mut Overlay, env: &BlockEnv) -> Result<(), CallFail> {
    let open = load::<Vec<u64>>(st, &state_key::open())?.unwrap_or_default();
    if open.is_empty() {
        return Ok(());
    }
    let mut still = Vec::new();
    for id in open {
        let mut p = get(st, id)?;
        if p.state != PENDING {
            continue;
        }
        if env.number < p.voteEnd {
            still.push(id);
            continue;
        }
        let total = U256::from(st.total_voting_power_at(p.voteStart - 1)?);
        let votes = p.forVotes + p.againstVotes + p.abstainVotes + p.vetoVotes;
        let bps = |x: &params::ParamSpec| -> Result<U256, CallFail> { Ok(U256::from(st.param(x)?)) };
        let quorum = !total.is_zero() && votes * U256::from(10_000u32) >= bps(&params::GOV_QUORUM_BPS)? * total;
        let vetoed = quorum && p.vetoVotes * U256::from(10_000u32) > bps(&params::GOV_VETO_BPS)? * votes;
        let decisive = p.forVotes + p.againstVotes + p.vetoVotes;
        let passed = quorum && !vetoed && p.forVotes * U256::from(10_000u32) > bps(&params::GOV_PASS_BPS)? * decisive;
        if vetoed || !quorum {
            // A veto, or a vote nobody came to: the deposit is burned, so
            // proposals that only occupy a slot cost their deposit.
            p.state = if vetoed { VETOED } else { DEFEATED };
            let d = Amount::from_u256(p.deposit).map_err(|_| revert(primitives::abi::Overflow {}))?;
            st.burn(&GOVERNANCE_DEPOSITS, d)?;
        } else {
            if passed {
                p.state = QUEUED;
                p.eta = env.number.saturating_add(param_u64(st, &params::GOV_TIMELOCK)?);
            } else {
                p.state = DEFEATED;
            }
            return_deposit(st, id, &p)?;
        }
        store(st, state_key::proposal(id), &p);
    }
    store(st, state_key::open(), &still);
    Ok(())
}

fn log<E: alloy_sol_types::SolEvent>(e: &E) -> primitives::Log {
    primitives::Log { address: ADDRESS, data: e.encode_log_data() }
}
