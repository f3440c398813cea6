//! Properties of staking and governance under random operations:
//! - the supply equation holds after every block (bonds, unbondings, rewards,
//!   issuance, deposits, slashing and burning included);
//! - every reward claim and withdrawal can be paid (staking never owes more than it holds);
//! - voting power at a past height never changes, and the powers of all
//!   accounts at a height sum to the total: no stake is counted twice.

use std::collections::BTreeMap;

use alloy_primitives::U256;
use alloy_sol_types::SolInterface;
use primitives::abi::IGovernance::{self, IGovernanceCalls};
use primitives::abi::IStaking::{self, IStakingCalls};
use primitives::system::{Module, SYSTEM_MODULES, TREASURY, VALIDATOR_REWARD_POOL};
use primitives::{Address, Amount, ONE_OPEN};
use proptest::prelude::*;
use runtime::bank::{BankRead, BankWrite};
use runtime::staking::StakingRead;
use runtime::{BlockEnv, CallCtx, CallFail, Genesis, Overlay};

mod common;
use common::Mem;

fn acct(i: usize) -> Address {
    Address::with_last_byte(0x40 + i as u8)
}

#[derive(Clone, Debug)]
enum Op {
    Bond { who: usize, op: usize, milli: u64 },
    Unbond { who: usize, op: usize, milli: u64 },
    Withdraw { who: usize },
    Claim { who: usize, op: usize },
    Deposit { who: usize, pool: bool, milli: u64 },
    Slash { op: usize, ppm: u32, jail: u64 },
    Unjail { op: usize },
    Fees { milli: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..5, 0usize..2, 1u64..3_000_000).prop_map(|(who, op, milli)| Op::Bond { who, op, milli }),
        (0usize..5, 0usize..2, 1u64..400_000).prop_map(|(who, op, milli)| Op::Unbond { who, op, milli }),
        (0usize..5).prop_map(|who| Op::Withdraw { who }),
        (0usize..5, 0usize..2).prop_map(|(who, op)| Op::Claim { who, op }),
        (0usize..5, any::<bool>(), 1u64..100_000).prop_map(|(who, pool, milli)| Op::Deposit { who, pool, milli }),
        (0usize..2, 0u32..400_000, 0u64..4).prop_map(|(op, ppm, jail)| Op::Slash { op, ppm, jail }),
        (0usize..2).prop_map(|op| Op::Unjail { op }),
        (1u64..50_000).prop_map(|milli| Op::Fees { milli }),
    ]
}

/// Run one staking call as `sender` with `value`, all-or-nothing like a transaction.
fn run(st: &mut Overlay, env: &BlockEnv, sender: Address, value: Amount, call: IStakingCalls) -> Result<(), CallFail> {
    let cp = st.checkpoint();
    let mut ctx = CallCtx { env, sender, value, logs: vec![], calls: vec![] };
    let r = st
        .transfer(&sender, &runtime::staking::ADDRESS, value)
        .and_then(|_| runtime::staking::execute(st, &mut ctx, call));
    if r.is_err() {
        st.revert_to(cp);
    }
    r.map(|_| ())
}

fn everyone() -> Vec<Address> {
    let mut v: Vec<Address> = (0..5).map(acct).collect();
    v.extend([TREASURY, VALIDATOR_REWARD_POOL, Address::with_last_byte(0x99)]);
    v.extend(SYSTEM_MODULES.iter().map(|m| m.address()));
    v.extend(primitives::system::MODULE_ESCROWS);
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn supply_solvency_and_vote_snapshots(blocks in proptest::collection::vec(proptest::collection::vec(op(), 1..10), 2..8)) {
        let g = Genesis {
            chain_id: 1,
            timestamp: 0,
            alloc: (0..5).map(|i| (acct(i), Amount::open(10_000))).collect(),
            params: vec![
                ("staking.min_self_bond".into(), 100 * ONE_OPEN),
                ("staking.unbonding_blocks".into(), 2),
                ("staking.issuance_per_block".into(), ONE_OPEN / 3),
            ],
            operators: vec![
                runtime::staking::genesis::GenesisOperator { operator: acct(0), role: 1, consensus_key: primitives::B256::repeat_byte(1), serving_key: Address::ZERO, commission_bps: 1_000, bond: Amount::open(1_000) },
                runtime::staking::genesis::GenesisOperator { operator: acct(1), role: 2, consensus_key: primitives::B256::ZERO, serving_key: acct(1), commission_bps: 0, bond: Amount::open(500) },
            ],
            calls: vec![],
            base_model: None,
        };
        let mut mem = Mem(BTreeMap::new());
        {
            let e = runtime::EmptyState;
            let mut st = Overlay::new(&e);
            g.apply(&mut st).unwrap();
            mem.apply(st.into_writes());
        }
        let gov = Module::Governance.address();
        let mut snapshots: Vec<(u64, Vec<u128>, u128)> = vec![];
        for (bn, ops) in blocks.iter().enumerate() {
            let env = BlockEnv { chain_id: 1, number: bn as u64 + 1, timestamp: 0, base_fee: 1, gas_limit: 30_000_000, coinbase: VALIDATOR_REWARD_POOL, last_commit: None };
            let writes = {
                let mut st = Overlay::new(&mem);
                runtime::begin_block(&mut st, &env).unwrap();
                for o in ops {
                    let m = ONE_OPEN / 1000;
                    let r = match o.clone() {
                        Op::Bond { who, op, milli } => run(&mut st, &env, acct(who), Amount(milli as u128 * m), IStakingCalls::bond(IStaking::bondCall { operator: acct(op) })),
                        Op::Unbond { who, op, milli } => run(&mut st, &env, acct(who), Amount::ZERO, IStakingCalls::unbond(IStaking::unbondCall { operator: acct(op), amount: U256::from(milli as u128 * m) })),
                        Op::Withdraw { who } => run(&mut st, &env, acct(who), Amount::ZERO, IStakingCalls::withdraw(IStaking::withdrawCall {})),
                        Op::Claim { who, op } => run(&mut st, &env, acct(who), Amount::ZERO, IStakingCalls::claimRewards(IStaking::claimRewardsCall { operator: acct(op) })),
                        Op::Deposit { who, pool, milli } => run(&mut st, &env, acct(who), Amount(milli as u128 * m), IStakingCalls::depositRewards(IStaking::depositRewardsCall { amount: U256::from(milli as u128 * m), pool: if pool { "validators".into() } else { "serving".into() } })),
                        Op::Slash { op, ppm, jail } => run(&mut st, &env, gov, Amount::ZERO, IStakingCalls::slash(IStaking::slashCall { operator: acct(op), fractionPpm: ppm, jailBlocks: jail, reason: "test".into(), reporter: Address::with_last_byte(0x99) })),
                        Op::Unjail { op } => run(&mut st, &env, acct(op), Amount::ZERO, IStakingCalls::unjail(IStaking::unjailCall {})),
                        Op::Fees { milli } => st.transfer(&acct(4), &VALIDATOR_REWARD_POOL, Amount(milli as u128 * m)),
                    };
                    if std::env::var("STAKING_TRACE").is_ok() {
                        eprintln!("{o:?} -> {}", if r.is_ok() { "ok" } else { "reverted" });
                    }
                }
                // A non-governance caller can never slash.
                let denied = run(&mut st, &env, acct(2), Amount::ZERO, IStakingCalls::slash(IStaking::slashCall { operator: acct(0), fractionPpm: 1, jailBlocks: 0, reason: "x".into(), reporter: acct(2) }));
                prop_assert!(matches!(denied, Err(CallFail::Revert(_))));
                runtime::end_block(&mut st, &env).unwrap();
                st.into_writes()
            };
            mem.apply(writes);
            // Supply equation.
            let sum: u128 = everyone().iter().map(|a| mem.balance(a).unwrap().0).sum();
            let r = runtime::supply_report(&mem).unwrap();
            prop_assert_eq!(Amount(sum), r.total);
            prop_assert_eq!(r.total.0, r.genesis.0 + r.issued.0 - r.burned.0);
            // Each pool's total is exactly the stake of its active operators.
            for role in [1u8, 2] {
                let mut counted = U256::ZERO;
                for a in mem.operators(role).unwrap() {
                    let o = mem.operator(&a).unwrap().unwrap();
                    let active = !o.jailed && o.selfBond >= U256::from(100 * ONE_OPEN);
                    prop_assert_eq!(o.countedStake, if active { o.selfBond + o.delegated } else { U256::ZERO });
                    counted += o.countedStake;
                }
                prop_assert_eq!(mem.pool(role).unwrap().totalStake, counted);
            }
            // Snapshots: powers at this height sum to the total; older snapshots never move.
            let h = bn as u64 + 1;
            let powers: Vec<u128> = (0..5).map(|i| mem.voting_power_at(&acct(i), h).unwrap()).collect();
            let total = mem.total_voting_power_at(h).unwrap();
            prop_assert_eq!(powers.iter().sum::<u128>(), total);
            snapshots.push((h, powers, total));
            for (sh, sp, stot) in &snapshots {
                let now: Vec<u128> = (0..5).map(|i| mem.voting_power_at(&acct(i), *sh).unwrap()).collect();
                prop_assert_eq!(&now, sp);
                prop_assert_eq!(mem.total_voting_power_at(*sh).unwrap(), *stot);
            }
        }
        // Solvency: every account can claim every reward and withdraw every matured unbonding.
        let env = BlockEnv { chain_id: 1, number: 1_000, timestamp: 0, base_fee: 1, gas_limit: 30_000_000, coinbase: VALIDATOR_REWARD_POOL, last_commit: None };
        let mut st = Overlay::new(&mem);
        for who in 0..5 {
            for op in 0..2 {
                let r = run(&mut st, &env, acct(who), Amount::ZERO, IStakingCalls::claimRewards(IStaking::claimRewardsCall { operator: acct(op) }));
                if let Err(CallFail::Revert(d)) = &r {
                    // Only "no delegation here" may refuse a claim, never a shortfall.
                    let e = IStaking::IStakingErrors::abi_decode(d);
                    prop_assert!(matches!(e, Ok(IStaking::IStakingErrors::InsufficientStake(_))), "claim failed: {:?}", r);
                }
            }
            let w = run(&mut st, &env, acct(who), Amount::ZERO, IStakingCalls::withdraw(IStaking::withdrawCall {}));
            prop_assert!(w.is_ok(), "withdraw failed: {:?}", w);
        }
        // What staking still holds covers every remaining stake.
        let mut owed = U256::ZERO;
        for op in 0..2 {
            if let Some(o) = st.operator(&acct(op)).unwrap() {
                owed += o.selfBond + o.delegated;
            }
        }
        prop_assert!(st.balance(&runtime::staking::ADDRESS).unwrap().to_u256() >= owed);
    }
}

#[test]
fn governance_refuses_double_votes_and_counts_snapshot_power() {
    let g = Genesis {
        chain_id: 1,
        timestamp: 0,
        alloc: (0..5).map(|i| (acct(i), Amount::open(10_000))).collect(),
        params: vec![
            ("staking.min_self_bond".into(), 100 * ONE_OPEN),
            ("governance.voting_delay".into(), 2),
            ("governance.voting_period".into(), 3),
            ("governance.timelock".into(), 1),
            ("governance.deposit".into(), 10 * ONE_OPEN),
        ],
        operators: vec![runtime::staking::genesis::GenesisOperator {
            operator: acct(0),
            role: 1,
            consensus_key: primitives::B256::repeat_byte(1),
            serving_key: Address::ZERO,
            commission_bps: 0,
            bond: Amount::open(1_000),
        }],
        calls: vec![],
        base_model: None,
    };
    let mut mem = Mem(BTreeMap::new());
    {
        let e = runtime::EmptyState;
        let mut st = Overlay::new(&e);
        g.apply(&mut st).unwrap();
        mem.apply(st.into_writes());
    }
    let block = |mem: &mut Mem, n: u64, f: &mut dyn FnMut(&mut Overlay, &BlockEnv)| {
        let env = BlockEnv {
            chain_id: 1,
            number: n,
            timestamp: 0,
            base_fee: 1,
            gas_limit: 30_000_000,
            coinbase: VALIDATOR_REWARD_POOL,
            last_commit: None,
        };
        let w = {
            let mut st = Overlay::new(&*mem);
            f(&mut st, &env);
            runtime::end_block(&mut st, &env).unwrap();
            st.into_writes()
        };
        mem.apply(w);
    };
    let gcall =
        |st: &mut Overlay, env: &BlockEnv, who: Address, value: Amount, c: IGovernanceCalls| -> Result<(), CallFail> {
            let cp = st.checkpoint();
            let mut ctx = CallCtx { env, sender: who, value, logs: vec![], calls: vec![] };
            let r = st
                .transfer(&who, &runtime::governance::ADDRESS, value)
                .and_then(|_| runtime::governance::execute(st, &mut ctx, c));
            if r.is_err() {
                st.revert_to(cp);
            }
            r.map(|_| ())
        };
    let set = alloy_sol_types::SolCall::abi_encode(&primitives::abi::IParams::setCall {
        name: "fee.treasury_bps".into(),
        value: U256::from(3_000),
    });
    // Block 1: acct 0 proposes (vote starts at 3; snapshot = 2).
    block(&mut mem, 1, &mut |st, env| {
        gcall(
            st,
            env,
            acct(0),
            Amount::open(10),
            IGovernanceCalls::propose(IGovernance::proposeCall {
                description: "raise".into(),
                targets: vec![Module::Params.address()],
                calldatas: vec![set.clone().into()],
            }),
        )
        .unwrap();
        // Below the threshold, acct 1 cannot propose.
        assert!(
            gcall(
                st,
                env,
                acct(1),
                Amount::open(10),
                IGovernanceCalls::propose(IGovernance::proposeCall {
                    description: "x".into(),
                    targets: vec![],
                    calldatas: vec![]
                })
            )
            .is_err()
        );
    });
    // Block 2: acct 1 delegates 5,000 before the snapshot; block 3 (voting open) acct 2 delegates after it.
    block(&mut mem, 2, &mut |st, env| {
        run(st, env, acct(1), Amount::open(5_000), IStakingCalls::bond(IStaking::bondCall { operator: acct(0) }))
            .unwrap();
    });
    block(&mut mem, 3, &mut |st, env| {
        run(st, env, acct(2), Amount::open(9_000), IStakingCalls::bond(IStaking::bondCall { operator: acct(0) }))
            .unwrap();
        gcall(
            st,
            env,
            acct(0),
            Amount::ZERO,
            IGovernanceCalls::castVote(IGovernance::castVoteCall { id: 1, support: 1 }),
        )
        .unwrap();
        assert!(
            gcall(
                st,
                env,
                acct(0),
                Amount::ZERO,
                IGovernanceCalls::castVote(IGovernance::castVoteCall { id: 1, support: 1 })
            )
            .is_err(),
            "double vote"
        );
        gcall(
            st,
            env,
            acct(1),
            Amount::ZERO,
            IGovernanceCalls::castVote(IGovernance::castVoteCall { id: 1, support: 0 }),
        )
        .unwrap();
        // acct 2's stake came after the snapshot: no voting power.
        assert!(
            gcall(
                st,
                env,
                acct(2),
                Amount::ZERO,
                IGovernanceCalls::castVote(IGovernance::castVoteCall { id: 1, support: 0 })
            )
            .is_err()
        );
    });
    let p = runtime::governance::GovernanceRead::proposal(&mem, 1).unwrap().unwrap();
    assert_eq!(p.forVotes, Amount::open(1_000).to_u256());
    assert_eq!(p.againstVotes, Amount::open(5_000).to_u256());
    // Voting ends at block 5; against wins; deposit returned.
    let before = mem.balance(&acct(0)).unwrap();
    block(&mut mem, 4, &mut |_, _| {});
    block(&mut mem, 5, &mut |_, _| {});
    let p = runtime::governance::GovernanceRead::proposal(&mem, 1).unwrap().unwrap();
    assert_eq!(p.state, runtime::governance::DEFEATED);
    assert_eq!(mem.balance(&acct(0)).unwrap().0, before.0 + 10 * ONE_OPEN);
    assert_eq!(mem.balance(&runtime::governance::ADDRESS).unwrap(), Amount::ZERO);
}
