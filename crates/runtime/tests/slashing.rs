//! Slashing is lazy: a slash costs the same with 300 delegators and 300
//! unbondings as with 3, yet every delegation and every unbonding still in its
//! cooldown loses the slashed fraction, unbondings released before the slash
//! keep all they had, the delegators' voting power follows within
//! ceil(n / SWEEP_PER_BLOCK) blocks, and a 100% slash tombstones the operator.

use std::cell::Cell;
use std::collections::BTreeMap;

use alloy_primitives::U256;
use alloy_sol_types::{SolCall, SolInterface};
use primitives::abi::IStaking::{self, IStakingCalls};
use primitives::state::{StateError, StateRead};
use primitives::system::{Module, TREASURY};
use primitives::{Address, Amount, ONE_OPEN};
use runtime::bank::{BankRead, BankWrite};
use runtime::staking::StakingRead;
use runtime::{BlockEnv, CallCtx, CallFail, Genesis, Overlay};

mod common;
use common::Mem;

const OPERATOR: Address = Address::with_last_byte(0x01);
const UNBONDING_BLOCKS: u64 = 10;

fn delegator(i: usize) -> Address {
    let mut b = [0x50u8; 20];
    b[16..].copy_from_slice(&(i as u32).to_be_bytes());
    Address::from(b)
}

/// A state that counts its reads.
struct Counting<'a>(&'a Mem, Cell<u64>);

impl StateRead for Counting<'_> {
    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.1.set(self.1.get() + 1);
        self.0.get(k)
    }
}

struct World {
    mem: Mem,
    height: u64,
    n: usize,
}

fn env(number: u64) -> BlockEnv {
    BlockEnv {
        chain_id: 1,
        number,
        timestamp: 0,
        base_fee: 1,
        gas_limit: 30_000_000,
        coinbase: Address::ZERO,
        last_commit: None,
    }
}

/// Run one staking call, all-or-nothing like a transaction.
fn run(
    st: &mut Overlay,
    env: &BlockEnv,
    sender: Address,
    value: Amount,
    call: IStakingCalls,
) -> Result<Vec<u8>, CallFail> {
    let cp = st.checkpoint();
    let mut ctx = CallCtx { env, sender, value, logs: vec![], calls: vec![] };
    let r = st
        .transfer(&sender, &runtime::staking::ADDRESS, value)
        .and_then(|_| runtime::staking::execute(st, &mut ctx, call));
    if r.is_err() {
        st.revert_to(cp);
    }
    r.map(|b| b.to_vec())
}

impl World {
    /// An operator with `n` delegators of 10 OPEN each; each then unbonds 2 OPEN.
    fn new(n: usize) -> World {
        let g = Genesis {
            chain_id: 1,
            timestamp: 0,
            alloc: std::iter::once((OPERATOR, Amount::open(10_000)))
                .chain((0..n).map(|i| (delegator(i), Amount::open(100))))
                .collect(),
            params: vec![
                ("staking.min_self_bond".into(), 100 * ONE_OPEN),
                ("staking.unbonding_blocks".into(), UNBONDING_BLOCKS as u128),
            ],
            operators: vec![runtime::staking::genesis::GenesisOperator {
                operator: OPERATOR,
                role: 1,
                consensus_key: primitives::B256::repeat_byte(1),
                serving_key: Address::ZERO,
                commission_bps: 0,
                bond: Amount::open(1_000),
            }],
            calls: vec![],
            base_model: None,
        };
        let mut w = World { mem: Mem(BTreeMap::new()), height: 0, n };
        let e = runtime::EmptyState;
        let mut st = Overlay::new(&e);
        g.apply(&mut st).unwrap();
        w.mem.apply(st.into_writes());
        w.block(|st, env| {
            for i in 0..n {
                let bond = IStakingCalls::bond(IStaking::bondCall { operator: OPERATOR });
                run(st, env, delegator(i), Amount::open(10), bond).unwrap();
            }
        });
        w.block(|st, env| {
            for i in 0..n {
                let unbond = IStaking::unbondCall { operator: OPERATOR, amount: U256::from(2 * ONE_OPEN) };
                run(st, env, delegator(i), Amount::ZERO, IStakingCalls::unbond(unbond)).unwrap();
            }
        });
        w
    }

    /// One block: `f` runs between the hooks; the writes are applied.
    fn block(&mut self, f: impl FnOnce(&mut Overlay, &BlockEnv)) {
        self.height += 1;
        let env = env(self.height);
        let writes = {
            let mut st = Overlay::new(&self.mem);
            runtime::begin_block(&mut st, &env).unwrap();
            f(&mut st, &env);
            runtime::end_block(&mut st, &env).unwrap();
            st.into_writes()
        };
        self.mem.apply(writes);
        let r = runtime::supply_report(&self.mem).unwrap();
        assert_eq!(r.total.0, r.genesis.0 + r.issued.0 - r.burned.0, "supply equation");
    }

    fn slash_call(ppm: u32) -> IStakingCalls {
        IStakingCalls::slash(IStaking::slashCall {
            operator: OPERATOR,
            fractionPpm: ppm,
            jailBlocks: 0,
            reason: "double sign".into(),
            reporter: Address::ZERO,
        })
    }

    /// Reads and writes of one slash of `ppm` in the next block (not applied).
    fn slash_cost(&self, ppm: u32) -> (u64, usize) {
        let c = Counting(&self.mem, Cell::new(0));
        let env = env(self.height + 1);
        let mut st = Overlay::new(&c);
        run(&mut st, &env, Module::Governance.address(), Amount::ZERO, Self::slash_call(ppm)).unwrap();
        (c.1.get(), st.into_writes().len())
    }

    fn stake(&self, who: Address) -> U256 {
        let call = IStaking::stakeOfCall { operator: OPERATOR, account: who };
        let out = runtime::staking::execute(
            &mut Overlay::new(&self.mem),
            &mut ctx(&env(self.height)),
            IStakingCalls::stakeOf(call),
        )
        .unwrap();
        IStaking::stakeOfCall::abi_decode_returns(&out).unwrap().amount
    }

    fn unbonding_amounts(&self, who: Address) -> Vec<U256> {
        let call = IStaking::unbondingsCall { account: who };
        let out = runtime::staking::execute(
            &mut Overlay::new(&self.mem),
            &mut ctx(&env(self.height)),
            IStakingCalls::unbondings(call),
        )
        .unwrap();
        IStaking::unbondingsCall::abi_decode_returns(&out).unwrap().amounts
    }
}

fn ctx(env: &BlockEnv) -> CallCtx<'_> {
    CallCtx { env, sender: Address::ZERO, value: Amount::ZERO, logs: vec![], calls: vec![] }
}

#[test]
fn a_slash_costs_the_same_whatever_the_number_of_delegators_and_unbondings() {
    let (small, large) = (World::new(3), World::new(300));
    let (a, b) = (small.slash_cost(100_000), large.slash_cost(100_000));
    assert_eq!(a, b, "reads and writes of a slash with 3 and with 300 delegators and unbondings");
    assert!(a.0 < 60 && a.1 < 30, "{a:?}");
}

#[test]
fn every_delegation_and_pending_unbonding_loses_the_fraction_and_power_follows() {
    let mut w = World::new(150);
    let n = w.n;
    // Delegator 0's unbonding is released (UNBONDING_BLOCKS pass) before the second
    // slash; everyone else unbonds again later, so theirs are in their cooldown.
    let treasury_before = w.mem.balance(&TREASURY).unwrap();
    w.block(|st, env| {
        run(st, env, Module::Governance.address(), Amount::ZERO, World::slash_call(100_000)).map(|_| ()).unwrap()
    });
    let slashed_at = w.height;
    // 10% of 1,000 self bond + 10% of n × 8 delegated + 10% of n × 2 unbonding.
    let expect = ONE_OPEN * (100 + n as u128 * 8 / 10 + n as u128 * 2 / 10);
    let got = w.mem.balance(&TREASURY).unwrap().0 - treasury_before.0;
    assert!(expect - got < 1_000, "the treasury got {got}, expected {expect} (less rounding dust)");
    for i in [0, n / 2, n - 1] {
        let s = w.stake(delegator(i));
        assert!(U256::from(72 * ONE_OPEN / 10) - s < U256::from(10), "delegation {i} worth {s}, expected 7.2 OPEN");
        let u = w.unbonding_amounts(delegator(i));
        assert!(
            U256::from(18 * ONE_OPEN / 10) - u[0] < U256::from(10),
            "unbonding {i} worth {:?}, expected 1.8 OPEN",
            u
        );
    }
    // Voting power: the sweep syncs SWEEP_PER_BLOCK delegators a block; the
    // total always equals the sum of the accounts' powers.
    let per = runtime::staking::SWEEP_PER_BLOCK as usize;
    let power = |w: &World, i: usize| w.mem.voting_power(&delegator(i)).unwrap();
    assert!(power(&w, 0) < 8 * ONE_OPEN, "the first delegators are synced in the slash's block");
    assert_eq!(power(&w, n - 1), 8 * ONE_OPEN, "the last ones not yet");
    for _ in 0..n.div_ceil(per) {
        w.block(|_, _| {});
    }
    for i in 0..n {
        assert_eq!(U256::from(power(&w, i)), w.stake(delegator(i)), "delegator {i}'s power is its stake");
    }
    let sum: u128 = (0..n).map(|i| power(&w, i)).sum::<u128>() + w.mem.voting_power(&OPERATOR).unwrap();
    assert_eq!(sum, w.mem.total_voting_power_at(w.height).unwrap(), "powers sum to the total");

    // Let the first unbondings be released, then start new ones and slash again:
    // only those still in their cooldown lose.
    while w.height < slashed_at + UNBONDING_BLOCKS {
        w.block(|_, _| {});
    }
    w.block(|st, env| {
        for i in 1..n {
            let unbond = IStaking::unbondCall { operator: OPERATOR, amount: U256::from(ONE_OPEN) };
            run(st, env, delegator(i), Amount::ZERO, IStakingCalls::unbond(unbond)).unwrap();
        }
    });
    w.block(|st, env| {
        run(st, env, Module::Governance.address(), Amount::ZERO, World::slash_call(500_000)).map(|_| ()).unwrap()
    });
    let released = w.unbonding_amounts(delegator(0));
    assert!(U256::from(18 * ONE_OPEN / 10) - released[0] < U256::from(10), "a released unbonding keeps its value");
    let both = w.unbonding_amounts(delegator(1));
    assert_eq!(both.len(), 2);
    assert!(U256::from(18 * ONE_OPEN / 10) - both[0] < U256::from(10), "released before the slash");
    assert!(U256::from(ONE_OPEN / 2) - both[1] < U256::from(10), "in its cooldown: halved, {both:?}");
    // Everyone withdraws everything once released; staking stays solvent.
    while w.height < slashed_at + 3 * UNBONDING_BLOCKS {
        w.block(|_, _| {});
    }
    w.block(|st, env| {
        for i in 0..n {
            let before = st.balance(&delegator(i)).unwrap();
            run(st, env, delegator(i), Amount::ZERO, IStakingCalls::withdraw(IStaking::withdrawCall {})).unwrap();
            assert!(st.balance(&delegator(i)).unwrap() > before);
        }
    });
    let op = w.mem.operator(&OPERATOR).unwrap().unwrap();
    assert!(w.mem.balance(&runtime::staking::ADDRESS).unwrap().to_u256() >= op.selfBond + op.delegated);
    assert!(op.unbondingUnits.is_zero(), "every unbonding left the slashable sum at its release");
}

#[test]
fn a_full_slash_tombstones_the_operator() {
    let mut w = World::new(4);
    w.block(|st, env| {
        run(st, env, Module::Governance.address(), Amount::ZERO, World::slash_call(1_000_000)).map(|_| ()).unwrap()
    });
    assert_eq!(w.stake(delegator(0)), U256::ZERO);
    assert_eq!(w.unbonding_amounts(delegator(0)), vec![U256::ZERO]);
    w.block(|st, env| {
        let bond = IStakingCalls::bond(IStaking::bondCall { operator: OPERATOR });
        let e = run(st, env, delegator(0), Amount::open(1), bond).unwrap_err();
        let CallFail::Revert(d) = e else { panic!("{e:?}") };
        assert!(matches!(IStaking::IStakingErrors::abi_decode(&d), Ok(IStaking::IStakingErrors::Tombstoned(_))));
        let unbond = IStaking::unbondCall { operator: OPERATOR, amount: U256::from(1) };
        assert!(
            run(st, env, delegator(0), Amount::ZERO, IStakingCalls::unbond(unbond)).is_err(),
            "nothing left to unbond"
        );
    });
}
