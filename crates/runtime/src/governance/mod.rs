//! `governance`: proposals as lists of calls to system contracts, voted with
//! staked OPEN (voting power snapshotted the block before voting starts),
//! tallied at the end of the voting period, executed with the governance
//! address as sender after the timelock. The treasury moves only through
//! `spendTreasury`, which only a proposal can call. Deposits are held at
//! [`GOVERNANCE_DEPOSITS`], apart from the governance address a proposal acts
//! as, so no proposal can spend another's deposit and returning one at the end
//! of a block cannot fail.

mod calls;
pub mod params;
pub mod records;
pub mod state_key;
pub mod view;

use alloy_primitives::U256;
use primitives::abi::IGovernance::{self, IGovernanceCalls};
use primitives::abi::{InvalidArguments, Unauthorized};
use primitives::system::{GOVERNANCE_DEPOSITS, Module, TREASURY};
use primitives::{Address, Amount, Bytes};

use crate::bank::BankWrite;
use crate::codec::{load, store};
use crate::context::{BlockEnv, CallCtx, CallFail};
use crate::dispatch::{SystemModule, calls};
use crate::params::ParamsRead;
use crate::staking::StakingRead;
use crate::{Overlay, revert};
pub use records::ProposalRecord;
pub use view::GovernanceRead;

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

/// The state of `p` at `height`, deriving active and expired.
pub fn effective_state(p: &ProposalRecord, height: u64, grace: u64) -> u8 {
    match p.state {
        PENDING if height >= p.voteStart => ACTIVE,
        QUEUED if height > p.eta.saturating_add(grace) => EXPIRED,
        s => s,
    }
}

fn get(st: &Overlay, id: u64) -> Result<ProposalRecord, CallFail> {
    st.proposal(id)?.ok_or_else(|| revert(IGovernance::UnknownProposal { id }))
}

fn param_u64(st: &Overlay, p: &crate::params::ParamSpec) -> Result<u64, CallFail> {
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

fn tally_ended(st: &mut Overlay, env: &BlockEnv) -> Result<(), CallFail> {
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
        let bps = |x: &crate::params::ParamSpec| -> Result<U256, CallFail> { Ok(U256::from(st.param(x)?)) };
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

/// Governance as a system module.
pub struct Governance;

impl SystemModule for Governance {
    type Calls = IGovernanceCalls;
    calls!(IGovernanceCalls {
        propose,
        castVote,
        execute,
        cancel,
        spendTreasury,
        proposal,
        proposalCalls,
        proposalDeposit,
        proposalCount,
        hasVoted
    });

    /// End of block: tally every proposal whose vote ended. Blocks carry no logs
    /// outside transactions, so the outcome is read from `proposal(id)` (its state,
    /// tallies and eta); `ProposalTallied` is emitted only for tallies made inside a
    /// transaction, which none are today.
    fn end_block(st: &mut Overlay, env: &BlockEnv) -> Result<(), CallFail> {
        tally_ended(st, env)
    }
}

/// Execute a call to the module directly (tests and tools).
pub fn execute(st: &mut Overlay, ctx: &mut CallCtx, call: IGovernanceCalls) -> Result<Bytes, CallFail> {
    <Governance as SystemModule>::execute(st, ctx, call)
}
