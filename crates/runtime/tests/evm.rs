//! Contracts beside the native modules: a contract calls a system contract as
//! itself, the module's writes revert with the frame that made them, and the
//! ways around the module's rules (STATICCALL, DELEGATECALL, value to a
//! function that takes none) are refused. The contracts are a few bytes of
//! hand-written EVM code, so the test needs no compiler; the Solidity
//! contracts, Uniswap v2 and OpenZeppelin run through the RPC in
//! `cli/tests/evm_e2e.rs`. Every block is checked against the supply equation
//! (`common::Ledger`).

use alloy_primitives::TxKind;
use alloy_sol_types::{SolCall, SolError};
use keys::SecretKey;
use primitives::abi::{DelegateCallToSystem, IBank, IStaking, NonPayable, WriteInStaticCall};
use primitives::system::Module;
use primitives::{Address, Amount, ONE_OPEN, U256};
use runtime::Genesis;
use runtime::bank::BankRead;

mod common;
use common::Ledger;
use common::contracts::{CALL, DELEGATECALL, STATICCALL, deployer, proxy, through};

fn key(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i; 32]).unwrap()
}

const OPERATOR: u8 = 9;

fn ledger() -> Ledger {
    Ledger::new(&Genesis {
        chain_id: 31337,
        timestamp: 1_800_000_000,
        alloc: [1, 2, 3, OPERATOR].iter().map(|i| (key(*i).address(), Amount::open(10_000))).collect(),
        params: vec![("staking.min_self_bond".into(), 100 * ONE_OPEN)],
        operators: vec![runtime::staking::genesis::GenesisOperator {
            operator: key(OPERATOR).address(),
            role: 1,
            consensus_key: primitives::B256::repeat_byte(1),
            serving_key: Address::ZERO,
            commission_bps: 0,
            bond: Amount::open(1_000),
        }],
        calls: vec![],
        base_model: None,
    })
}

/// Deploy `runtime` from `k`; the new contract's address.
fn deploy(l: &mut Ledger, k: &SecretKey, runtime: &[u8]) -> Address {
    let nonce = l.mem.account(&k.address()).unwrap().nonce;
    let tx = l.sign_kind(k, TxKind::Create, Amount::ZERO, deployer(runtime), 1_000_000);
    let r = l.block(vec![tx]).pop().unwrap();
    assert!(r.success, "{r:?}");
    let at = k.address().create(nonce);
    assert_eq!(runtime::evm::code_at(&l.mem, &at).unwrap().as_ref(), runtime);
    at
}

/// Move OPEN to `to` with the bank's ERC-20 transfer.
fn fund(l: &mut Ledger, from: &SecretKey, to: Address, amount: Amount) {
    let call = IBank::transferCall { to, amount: amount.to_u256() }.abi_encode();
    assert!(l.send(from, Module::Bank.address(), Amount::ZERO, call).success);
}

fn stake_of(l: &Ledger, account: Address) -> U256 {
    let call = IStaking::stakeOfCall { operator: key(OPERATOR).address(), account };
    let env = l.env(l.height + 1);
    let out =
        runtime::call(&l.mem, &env, Address::ZERO, Module::Staking.address(), Amount::ZERO, &call.abi_encode(), None)
            .unwrap();
    IStaking::stakeOfCall::abi_decode_returns(&out.output).unwrap().amount
}

/// The marker account of module calls is never stored.
fn assert_no_marker(l: &Ledger) {
    let marker = primitives::address!("0x00000000000000000000000000000000000010fb");
    for k in l.mem.0.keys() {
        assert!(!k.windows(20).any(|w| w == marker.as_slice()), "a key names the marker account: {k:?}");
    }
}

#[test]
fn a_contract_calls_a_system_contract_as_itself() {
    let mut l = ledger();
    let (a, b) = (key(1), key(2));
    let p = deploy(&mut l, &a, &proxy(CALL, false));
    // Fund the contract through the bank (no code runs, as for a block reward).
    fund(&mut l, &a, p, Amount::open(10));
    assert_eq!(l.mem.balance(&p).unwrap(), Amount::open(10));

    let before_b = l.mem.balance(&b.address()).unwrap();
    let transfer = IBank::transferCall { to: b.address(), amount: U256::from(5u64) }.abi_encode();
    let r = l.send(&a, p, Amount::ZERO, through(Module::Bank.address(), transfer));
    assert!(r.success, "{r:?}");
    assert_eq!(l.mem.balance(&b.address()).unwrap(), Amount(before_b.0 + 5));
    assert_eq!(l.mem.balance(&p).unwrap(), Amount(Amount::open(10).0 - 5));
    // The bank's event, from the bank's address, names the contract as sender.
    let log = r.logs.iter().find(|l| l.address == Module::Bank.address()).expect("the bank's Transfer");
    assert_eq!(log.topics()[1], p.into_word());

    // A view through a plain CALL returns the module's answer.
    let env = l.env(l.height + 1);
    let q = through(Module::Bank.address(), IBank::balanceOfCall { account: p }.abi_encode());
    let out = runtime::call(&l.mem, &env, a.address(), p, Amount::ZERO, &q, None).unwrap();
    assert!(out.success);
    assert_eq!(U256::from_be_slice(&out.output), l.mem.balance(&p).unwrap().to_u256());
    assert_no_marker(&l);
}

#[test]
fn module_writes_revert_with_the_frame_that_made_them() {
    let mut l = ledger();
    let a = key(1);
    let reverting = deploy(&mut l, &a, &proxy(CALL, true));
    let keeping = deploy(&mut l, &a, &proxy(CALL, false));
    let bond = IStaking::bondCall { operator: key(OPERATOR).address() }.abi_encode();
    let before = l.mem.balance(&a.address()).unwrap();

    // Bonding through a frame that then reverts: the stake and the OPEN moved
    // into staking are undone with it; the sender pays gas only.
    let r = l.send(&a, reverting, Amount::open(200), through(Module::Staking.address(), bond.clone()));
    assert!(!r.success);
    assert_eq!(stake_of(&l, reverting), U256::ZERO);
    assert_eq!(l.mem.balance(&reverting).unwrap(), Amount::ZERO);
    let gas_paid = r.gas_used as u128 * r.effective_gas_price;
    assert_eq!(l.mem.balance(&a.address()).unwrap(), Amount(before.0 - gas_paid));

    // The same through a frame that returns: the contract has bonded.
    let r = l.send(&a, keeping, Amount::open(200), through(Module::Staking.address(), bond));
    assert!(r.success, "{r:?}");
    assert_eq!(stake_of(&l, keeping), Amount::open(200).to_u256());
    assert_eq!(l.mem.balance(&keeping).unwrap(), Amount::ZERO);
    assert_no_marker(&l);
}

#[test]
fn a_static_call_cannot_write_through_a_system_contract() {
    let mut l = ledger();
    let (a, b) = (key(1), key(2));
    let s = deploy(&mut l, &a, &proxy(STATICCALL, false));
    let before_b = l.mem.balance(&b.address()).unwrap();
    let transfer = IBank::transferCall { to: b.address(), amount: U256::ZERO }.abi_encode();
    let r = l.send(&a, s, Amount::ZERO, through(Module::Bank.address(), transfer));
    assert!(!r.success);
    assert_eq!(r.revert_data.as_ref(), WriteInStaticCall {}.abi_encode().as_slice());
    assert_eq!(l.mem.balance(&b.address()).unwrap(), before_b);
    // Reading is what STATICCALL is for.
    let env = l.env(l.height + 1);
    let q = through(Module::Bank.address(), IBank::balanceOfCall { account: b.address() }.abi_encode());
    let out = runtime::call(&l.mem, &env, a.address(), s, Amount::ZERO, &q, None).unwrap();
    assert!(out.success);
    assert_eq!(U256::from_be_slice(&out.output), before_b.to_u256());
}

#[test]
fn system_contracts_refuse_delegatecall_and_unwanted_value() {
    let mut l = ledger();
    let (a, b) = (key(1), key(2));
    let d = deploy(&mut l, &a, &proxy(DELEGATECALL, false));
    let c = deploy(&mut l, &a, &proxy(CALL, false));
    let transfer = IBank::transferCall { to: b.address(), amount: U256::from(1u64) }.abi_encode();
    let before_b = l.mem.balance(&b.address()).unwrap();
    // DELEGATECALL would run the bank as the proxy: refused.
    let r = l.send(&a, d, Amount::open(1), through(Module::Bank.address(), transfer.clone()));
    assert!(!r.success);
    assert_eq!(r.revert_data.as_ref(), DelegateCallToSystem {}.abi_encode().as_slice());
    // Value to a function that takes none is refused, not kept by the bank.
    let r = l.send(&a, c, Amount::open(1), through(Module::Bank.address(), transfer));
    assert!(!r.success);
    assert_eq!(r.revert_data.as_ref(), NonPayable {}.abi_encode().as_slice());
    assert_eq!(l.mem.balance(&b.address()).unwrap(), before_b);
    assert_eq!(l.mem.balance(&c).unwrap(), Amount::ZERO);
    assert_eq!(l.mem.balance(&Module::Bank.address()).unwrap(), Amount::ZERO);
}

#[test]
fn the_estimate_is_enough_and_a_failed_creation_still_pays() {
    let mut l = ledger();
    let (a, b) = (key(1), key(2));
    let p = deploy(&mut l, &a, &proxy(CALL, false));
    fund(&mut l, &a, p, Amount::open(1));
    let transfer =
        through(Module::Bank.address(), IBank::transferCall { to: b.address(), amount: U256::from(3u64) }.abi_encode());
    let env = l.env(l.height + 1);
    let est = runtime::estimate_gas(&l.mem, &env, a.address(), Some(p), Amount::ZERO, &transfer).unwrap();
    assert!(est.success);
    let tx = l.sign_kind(&a, TxKind::Call(p), Amount::ZERO, transfer.clone(), est.gas_used);
    let r = l.block(vec![tx]).pop().unwrap();
    assert!(r.success, "the estimate {} was not enough: {r:?}", est.gas_used);

    // Init code that reverts: the creation fails, the nonce moves, gas is paid, no code is left.
    let nonce = l.mem.account(&a.address()).unwrap().nonce;
    let tx = l.sign_kind(&a, TxKind::Create, Amount::ZERO, vec![0x5f, 0x5f, 0xfd], 100_000);
    let r = l.block(vec![tx]).pop().unwrap();
    assert!(!r.success);
    assert!(r.gas_used >= 53_000, "creation pays 32,000 over a call: {}", r.gas_used);
    assert_eq!(l.mem.account(&a.address()).unwrap().nonce, nonce + 1);
    assert!(runtime::evm::code_at(&l.mem, &a.address().create(nonce)).unwrap().is_empty());
}

#[test]
fn code_size_limits_hold() {
    let mut l = ledger();
    let a = key(1);
    // Runtime code of 24,577 bytes (EIP-170's limit plus one): the creation fails and pays.
    let nonce = l.mem.account(&a.address()).unwrap().nonce;
    let tx = l.sign_kind(&a, TxKind::Create, Amount::ZERO, vec![0x61, 0x60, 0x01, 0x5f, 0xf3], 5_000_000);
    let r = l.block(vec![tx]).pop().unwrap();
    assert!(!r.success);
    assert!(runtime::evm::code_at(&l.mem, &a.address().create(nonce)).unwrap().is_empty());
    // 24,576 bytes is allowed.
    let tx = l.sign_kind(&a, TxKind::Create, Amount::ZERO, vec![0x61, 0x60, 0x00, 0x5f, 0xf3], 6_000_000);
    let r = l.block(vec![tx]).pop().unwrap();
    assert!(r.success, "{r:?}");
    assert_eq!(runtime::evm::code_at(&l.mem, &a.address().create(nonce + 1)).unwrap().len(), 24_576);
    // Code starting with 0xEF is refused (EIP-3541).
    let tx =
        l.sign_kind(&a, TxKind::Create, Amount::ZERO, vec![0x60, 0xef, 0x5f, 0x53, 0x60, 0x01, 0x5f, 0xf3], 100_000);
    assert!(!l.block(vec![tx]).pop().unwrap().success);
    // Init code over 49,152 bytes (EIP-3860) is not a transaction at all.
    let tx = l.sign_kind(&a, TxKind::Create, Amount::ZERO, vec![0x00; 49_153], 15_000_000);
    let e = l.try_block(vec![tx]).unwrap_err();
    assert!(e.contains("initcode"), "{e}");
}
