//! End-of-block work is bounded per block, whatever the state holds: with
//! ten times the operators, an ordinary block's hooks read the same number of
//! keys, and after governance moves the minimum self bond the recount walks
//! at most `RECONCILE_PER_BLOCK` operators a block.

use std::cell::Cell;

use alloy_sol_types::SolCall;
use keys::SecretKey;
use primitives::abi::IStaking;
use primitives::state::{StateError, StateRead};
use primitives::system::Module;
use primitives::{Address, Amount, B256, ONE_OPEN};
use runtime::params::ParamsWrite;
use runtime::{Genesis, Overlay};

mod common;
use common::{Ledger, Mem};

/// A state that counts its reads.
struct Counting<'a>(&'a Mem, Cell<u64>);

impl StateRead for Counting<'_> {
    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.1.set(self.1.get() + 1);
        self.0.get(k)
    }
}

fn key(i: u32) -> SecretKey {
    let mut b = [7u8; 32];
    b[..4].copy_from_slice(&(i + 1).to_be_bytes());
    SecretKey::from_bytes(&b).unwrap()
}

/// A chain with `n` validators registered by transactions; returns the ledger.
fn with_validators(n: u32) -> Ledger {
    with_validators_capped(n, 200)
}

/// The same with the set capped at `max` validators.
fn with_validators_capped(n: u32, max: u128) -> Ledger {
    let g = Genesis {
        chain_id: 31337,
        timestamp: 1_800_000_000,
        alloc: (0..n).map(|i| (key(i).address(), Amount::open(1_000))).collect(),
        params: vec![("staking.min_self_bond".into(), 100 * ONE_OPEN), ("staking.max_validators".into(), max)],
        operators: vec![],
        calls: vec![],
        base_model: None,
    };
    let mut l = Ledger::new(&g);
    let txs: Vec<_> = (0..n)
        .map(|i| {
            let call = IStaking::registerOperatorCall {
                role: 1,
                consensusKey: B256::from(primitives::keccak256(i.to_be_bytes())),
                servingKey: Address::ZERO,
                commissionBps: 0,
            };
            l.sign(&key(i), Module::Staking.address(), Amount::open(100 + i as u64 % 3), call.abi_encode())
        })
        .collect();
    // 4M gas each in a 30M block: seven a block.
    let mut txs = txs.into_iter().peekable();
    while txs.peek().is_some() {
        let chunk: Vec<_> = txs.by_ref().take(7).collect();
        assert!(l.block(chunk).iter().all(|r| r.success));
    }
    l.block(vec![]);
    l
}

/// Keys the end-of-block hooks read in the next (empty) block.
fn end_block_reads(l: &Ledger) -> u64 {
    let c = Counting(&l.mem, Cell::new(0));
    let env = l.env(l.height + 1);
    let mut st = Overlay::new(&c);
    runtime::end_block(&mut st, &env).unwrap();
    c.1.get()
}

/// Keys the beginning-of-block hooks read in the next block, decided by
/// consensus with `signers` in the last commit.
fn begin_block_reads(l: &Ledger, signers: Vec<Address>) -> u64 {
    let c = Counting(&l.mem, Cell::new(0));
    let mut env = l.env(l.height + 1);
    env.last_commit = Some(runtime::LastCommit { height: l.height, signers });
    let mut st = Overlay::new(&c);
    runtime::begin_block(&mut st, &env).unwrap();
    c.1.get()
}

#[test]
fn downtime_accounting_reads_the_seats_not_every_validator() {
    let (small, large) = (with_validators_capped(12, 10), with_validators_capped(60, 10));
    let everyone = |n: u32| (0..n).map(|i| key(i).address()).collect::<Vec<_>>();
    let (a, b) = (begin_block_reads(&small, everyone(12)), begin_block_reads(&large, everyone(60)));
    assert_eq!(a, b, "10 seats are read whether 12 or 60 validators registered");
    assert!((20..40).contains(&a), "{a} reads: a seat's operator and liveness records, and the set");
}

#[test]
fn end_of_block_work_does_not_grow_with_operators() {
    let (small, large) = (with_validators(20), with_validators(200));
    let (a, b) = (end_block_reads(&small), end_block_reads(&large));
    assert_eq!(a, b, "an ordinary block's hooks read as many keys with 200 operators as with 20");
    assert!(a < 40, "{a} reads");

    // Governance raises the minimum self bond: the recount is spread over
    // blocks, at most RECONCILE_PER_BLOCK operators each.
    let mut l = large;
    let mut w = {
        let mut st = Overlay::new(&l.mem);
        st.put_param("staking.min_self_bond", 101 * ONE_OPEN, l.height).unwrap();
        st.into_writes()
    };
    l.mem.apply(std::mem::take(&mut w));
    let per = runtime::staking::RECONCILE_PER_BLOCK;
    let first = end_block_reads(&l);
    assert!(first < 20 * per, "{first} reads for a slice of {per} operators");
    assert!(first > a, "the recount does work");
    // Within ceil(200 / 64) blocks every operator below the new minimum left the pool.
    for _ in 0..200u64.div_ceil(per) + 1 {
        l.block(vec![]);
    }
    let set = runtime::staking::StakingRead::validator_set_at(&l.mem, l.height).unwrap();
    assert_eq!(set.operators.len(), 200 - 200usize.div_ceil(3), "those with 100 OPEN (every third) left the set");
    assert_eq!(end_block_reads(&l), a, "then blocks are cheap again");
}

#[test]
fn the_validator_set_is_capped_and_a_heavier_validator_takes_the_smallest_seat() {
    // 200 validators of 100, 101 or 102 OPEN for 50 seats.
    let mut l = with_validators_capped(200, 50);
    let set = runtime::staking::StakingRead::validator_set_at(&l.mem, l.height).unwrap();
    assert_eq!(set.operators.len(), 50);
    assert!(
        set.powers.iter().all(|p| *p == alloy_primitives::U256::from(102 * ONE_OPEN)),
        "the heaviest hold the seats"
    );
    // A snapshot reads the seats, not every validator ever registered.
    {
        let c = Counting(&l.mem, Cell::new(0));
        let mut st = Overlay::new(&c);
        st.put(b"staking/vdirty".to_vec(), Some(vec![1]));
        runtime::end_block(&mut st, &l.env(l.height + 1)).unwrap();
        assert!(c.1.get() < 50 * 3 + 60, "{} reads for a snapshot of 50 seats", c.1.get());
    }
    // Validator 1 (101 OPEN, waiting) bonds 2 OPEN more: it outweighs the smallest seat and takes it.
    let outside = key(1).address();
    assert!(!set.operators.contains(&outside));
    let bond = IStaking::bondCall { operator: outside };
    let tx = l.sign(&key(1), Module::Staking.address(), Amount::open(2), bond.abi_encode());
    assert!(l.block(vec![tx])[0].success);
    let after = runtime::staking::StakingRead::validator_set_at(&l.mem, l.height).unwrap();
    assert_eq!(after.operators.len(), 50);
    assert!(after.operators.contains(&outside), "the heavier validator holds a seat");
    let left: Vec<_> = set.operators.iter().filter(|a| !after.operators.contains(a)).collect();
    assert_eq!(left.len(), 1, "exactly one member gave up its seat");
    let pool = runtime::staking::StakingRead::pool(&l.mem, 1).unwrap();
    assert_eq!(
        pool.totalStake,
        after.powers.iter().copied().sum::<alloy_primitives::U256>(),
        "only seated validators count in the pool"
    );
}

#[test]
fn the_operators_view_is_a_bounded_page_priced_by_its_size() {
    use runtime::SystemModule;
    use runtime::staking::{MAX_PAGE, Staking};
    let l = with_validators(300);
    let env = l.env(l.height + 1);
    let page = |offset: u64, limit: u64| {
        let c = Counting(&l.mem, Cell::new(0));
        let call = IStaking::IStakingCalls::operators(IStaking::operatorsCall { role: 1, offset, limit });
        let gas = Staking::gas(&call);
        let mut ctx =
            runtime::CallCtx { env: &env, sender: Address::ZERO, value: Amount::ZERO, logs: vec![], calls: vec![] };
        let out = Staking::execute(&mut Overlay::new(&c), &mut ctx, call).unwrap();
        (IStaking::operatorsCall::abi_decode_returns(&out).unwrap(), c.1.get(), gas)
    };
    // Asking for everything gets one page of at most MAX_PAGE, read and charged as such.
    let (first, reads, gas) = page(0, u64::MAX);
    assert_eq!(first.len() as u64, MAX_PAGE);
    assert!(reads <= MAX_PAGE + 4, "{reads} reads for a page of {MAX_PAGE}");
    assert_eq!(gas, page(0, MAX_PAGE).2, "a larger limit costs no more than the largest page");
    assert!(gas > page(0, 10).2, "a larger page costs more gas");
    // The rest comes with the next offset; past the end, nothing.
    let (rest, _, _) = page(MAX_PAGE, u64::MAX);
    assert_eq!(rest.len(), 300 - MAX_PAGE as usize);
    assert!(rest.iter().all(|a| !first.contains(a)));
    assert!(page(u64::MAX, u64::MAX).0.is_empty(), "an offset past the end reads nothing and does not overflow");
}
