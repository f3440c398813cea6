//! Governance through signed transactions: deposits are held where no
//! proposal reaches them, so a passed proposal that spends everything the
//! governance address holds cannot take another proposal's deposit, and the
//! end-of-block refund of that deposit cannot fail (it used to fail fatally,
//! so every block build retried for ever).

use alloy_sol_types::{SolCall, SolInterface};
use keys::SecretKey;
use primitives::abi::IBank;
use primitives::abi::IGovernance::{self, IGovernanceCalls};
use primitives::system::{GOVERNANCE_DEPOSITS, Module};
use primitives::{Address, Amount, ONE_OPEN, U256};
use runtime::Genesis;
use runtime::bank::BankRead;

mod common;
use common::Ledger;

const GOV: Address = Module::Governance.address();

fn key(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i + 1; 32]).unwrap()
}

fn genesis() -> Genesis {
    Genesis {
        chain_id: 31337,
        timestamp: 1_800_000_000,
        alloc: (0..4).map(|i| (key(i).address(), Amount::open(10_000))).collect(),
        params: vec![
            ("staking.min_self_bond".into(), 100 * ONE_OPEN),
            ("governance.voting_delay".into(), 2),
            ("governance.voting_period".into(), 3),
            ("governance.timelock".into(), 1),
            ("governance.deposit".into(), 10 * ONE_OPEN),
        ],
        operators: vec![runtime::staking::genesis::GenesisOperator {
            operator: key(0).address(),
            role: 1,
            consensus_key: primitives::B256::repeat_byte(1),
            serving_key: Address::ZERO,
            commission_bps: 0,
            bond: Amount::open(1_000),
        }],
        calls: vec![],
        base_model: None,
    }
}

fn propose(description: &str, targets: Vec<Address>, calldatas: Vec<Vec<u8>>) -> Vec<u8> {
    IGovernanceCalls::propose(IGovernance::proposeCall {
        description: description.into(),
        targets,
        calldatas: calldatas.into_iter().map(Into::into).collect(),
    })
    .abi_encode()
}

fn call(c: IGovernanceCalls) -> Vec<u8> {
    c.abi_encode()
}

#[test]
fn a_passed_proposal_cannot_spend_another_proposals_deposit() {
    let mut l = Ledger::new(&genesis());
    let (voter, thief, other) = (key(0), key(1), key(2));
    // Block 1: a proposal that sends 10 OPEN from the governance address to
    // the thief. Block 2: another proposal, whose vote ends one block later
    // (when the first executes, its 10 OPEN deposit is all there is to take).
    let steal = IBank::transferCall { to: thief.address(), amount: U256::from(10 * ONE_OPEN) }.abi_encode();
    let r = l.send(&voter, GOV, Amount::open(10), propose("pay the thief", vec![Module::Bank.address()], vec![steal]));
    assert!(r.success);
    let r = l.send(&voter, GOV, Amount::open(10), propose("text only", vec![], vec![]));
    assert!(r.success);
    assert_eq!(l.mem.balance(&GOVERNANCE_DEPOSITS).unwrap(), Amount::open(20), "deposits held apart");
    assert_eq!(l.mem.balance(&GOV).unwrap(), Amount::ZERO, "nothing a proposal can spend");
    // Both pass.
    l.until(3);
    let votes = vec![l.sign(
        &voter,
        GOV,
        Amount::ZERO,
        call(IGovernanceCalls::castVote(IGovernance::castVoteCall { id: 1, support: 1 })),
    )];
    assert!(l.block(votes).iter().all(|r| r.success));
    let v2 = l.sign(
        &voter,
        GOV,
        Amount::ZERO,
        call(IGovernanceCalls::castVote(IGovernance::castVoteCall { id: 2, support: 1 })),
    );
    assert!(l.block(vec![v2]).iter().all(|r| r.success));
    l.until(6);
    let p1 = runtime::governance::GovernanceRead::proposal(&l.mem, 1).unwrap().unwrap();
    assert_eq!(p1.state, runtime::governance::QUEUED);
    // Block 6: proposal 1 executes (its transfer finds nothing to take, so it
    // reverts as a whole); proposal 2's tally at the end of the block returns its deposit.
    let thief_before = l.mem.balance(&thief.address()).unwrap();
    let voter_before = l.mem.balance(&voter.address()).unwrap();
    let ex = l.sign(&other, GOV, Amount::ZERO, call(IGovernanceCalls::execute(IGovernance::executeCall { id: 1 })));
    let rs = l.try_block(vec![ex]).expect("the block builds: no end-of-block hook fails on what a transaction did");
    assert!(!rs[0].success, "the proposal's transfer had nothing to spend");
    assert_eq!(l.mem.balance(&thief.address()).unwrap(), thief_before);
    let p2 = runtime::governance::GovernanceRead::proposal(&l.mem, 2).unwrap().unwrap();
    assert_eq!(p2.state, runtime::governance::QUEUED);
    assert_eq!(l.mem.balance(&voter.address()).unwrap().0, voter_before.0 + 10 * ONE_OPEN, "deposit 2 returned");
    assert_eq!(l.mem.balance(&GOVERNANCE_DEPOSITS).unwrap(), Amount::ZERO);
    // The chain goes on.
    l.block(vec![]);
}

/// Blocking governance by filling its 64 open-proposal slots costs far more
/// than it gains: the deposit doubles for every 8 open proposals, and a
/// proposal that never reaches quorum loses its deposit.
#[test]
fn open_proposal_slots_cost_more_as_they_fill_and_idle_proposals_lose_their_deposit() {
    use alloy_sol_types::SolError;
    let mut l = Ledger::new(&genesis());
    let voter = key(0);
    let base = 10 * ONE_OPEN;
    let deposit_now = |l: &Ledger| {
        let out = runtime::call(
            &l.mem,
            &l.env(l.height + 1),
            Address::ZERO,
            GOV,
            Amount::ZERO,
            &IGovernance::proposalDepositCall {}.abi_encode(),
            None,
        )
        .unwrap();
        IGovernance::proposalDepositCall::abi_decode_returns(&out.output).unwrap()
    };
    assert_eq!(deposit_now(&l), U256::from(base));
    let txs: Vec<_> =
        (0..8).map(|i| l.sign(&voter, GOV, Amount(base), propose(&format!("slot {i}"), vec![], vec![]))).collect();
    assert!(l.block(txs).iter().all(|r| r.success));
    assert_eq!(deposit_now(&l), U256::from(2 * base), "doubled at 8 open");
    let r = l.send(&voter, GOV, Amount(base), propose("one more", vec![], vec![]));
    assert!(!r.success);
    let e = IGovernance::DepositMismatch::abi_decode(&r.revert_data).unwrap();
    assert_eq!(e.required, U256::from(2 * base));
    assert!(l.send(&voter, GOV, Amount(2 * base), propose("one more", vec![], vec![])).success);
    assert_eq!(l.mem.balance(&GOVERNANCE_DEPOSITS).unwrap(), Amount(10 * base));
    // Nobody votes: every one is defeated without quorum and its deposit burned.
    let burned_before = runtime::supply_report(&l.mem).unwrap().burned;
    l.until(10);
    assert_eq!(l.mem.balance(&GOVERNANCE_DEPOSITS).unwrap(), Amount::ZERO);
    let burned = runtime::supply_report(&l.mem).unwrap().burned;
    assert_eq!(burned.0 - burned_before.0, 10 * base);
    let p = runtime::governance::GovernanceRead::proposal(&l.mem, 1).unwrap().unwrap();
    assert_eq!(p.state, runtime::governance::DEFEATED);
    assert_eq!(deposit_now(&l), U256::from(base), "the slots are free again");
}
