//! Property: the supply equation holds after every block of any random sequence
//! of operations, and every fee splits exactly between sender, treasury and pool.

use std::collections::BTreeMap;

use alloy_consensus::TxEip1559;
use alloy_primitives::TxKind;
use alloy_sol_types::SolCall;
use keys::{SecretKey, derive_account, encode_2718, sign_eip1559};
use primitives::abi::{IBank, IInference, IParams};
use primitives::system::{Module, SYSTEM_MODULES, TREASURY, VALIDATOR_REWARD_POOL};
use primitives::{Address, Amount, Bytes, SignedTransaction, U256};
use proptest::prelude::*;
use runtime::bank::BankRead;
use runtime::{BlockEnv, Genesis, Overlay};

mod common;
use common::Mem;

#[derive(Clone, Debug)]
enum Op {
    Transfer { from: usize, to: usize, milli: u64 },
    BankTransfer { from: usize, to: usize, milli: u64 },
    SetParam { from: usize },
    PayNonPayable { from: usize },
    Donate { from: usize, milli: u64 },
    Garbage { from: usize, data: Vec<u8> },
    InferenceDeposit { from: usize, milli: u64 },
    InferenceWithdraw { from: usize, milli: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0usize..4;
    prop_oneof![
        (who.clone(), 0usize..5, 0u64..20_000_000).prop_map(|(from, to, milli)| Op::Transfer { from, to, milli }),
        (who.clone(), 0usize..5, 0u64..20_000_000).prop_map(|(from, to, milli)| Op::BankTransfer { from, to, milli }),
        who.clone().prop_map(|from| Op::SetParam { from }),
        who.clone().prop_map(|from| Op::PayNonPayable { from }),
        (who.clone(), 0u64..1000).prop_map(|(from, milli)| Op::Donate { from, milli }),
        (who.clone(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(from, data)| Op::Garbage { from, data }),
        (who.clone(), 0u64..2_000).prop_map(|(from, milli)| Op::InferenceDeposit { from, milli }),
        (who, 0u64..2_000).prop_map(|(from, milli)| Op::InferenceWithdraw { from, milli }),
    ]
}

fn sign(k: &SecretKey, nonce: u64, to: Address, value: u128, input: Vec<u8>, gas: u64, tip: u128) -> SignedTransaction {
    let t = TxEip1559 {
        chain_id: 31337,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 50_000_000_000,
        max_priority_fee_per_gas: tip,
        to: TxKind::Call(to),
        value: U256::from(value),
        access_list: Default::default(),
        input: Bytes::from(input),
    };
    SignedTransaction::decode(&encode_2718(&sign_eip1559(k, t)), 31337).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn supply_equation_and_exact_fee_splits(blocks in proptest::collection::vec(proptest::collection::vec(op(), 1..8), 1..6), bps in 0u128..=10_000) {
        let ks: Vec<SecretKey> = (0..5).map(|i| derive_account(keys::DEV_MNEMONIC, i).unwrap()).collect();
        let addrs: Vec<Address> = ks.iter().map(|k| k.address()).collect();
        let g = Genesis {
            chain_id: 31337,
            timestamp: 0,
            alloc: addrs[..4].iter().map(|a| (*a, Amount::open(10_000))).collect(),
            params: vec![("fee.treasury_bps".into(), bps)],
            operators: vec![],
            calls: vec![],
            base_model: None,
        };
        let mut mem = Mem(BTreeMap::new());
        {
            let empty = runtime::EmptyState;
            let mut st = Overlay::new(&empty);
            g.apply(&mut st).unwrap();
            mem.apply(st.into_writes());
        }
        let mut everyone: Vec<Address> = addrs.clone();
        everyone.extend([TREASURY, VALIDATOR_REWARD_POOL]);
        everyone.extend(SYSTEM_MODULES.iter().map(|m| m.address()));
        everyone.extend(primitives::system::MODULE_ESCROWS);
        let mut nonces = [0u64; 5];
        for (bn, ops) in blocks.iter().enumerate() {
            let env = BlockEnv { chain_id: 31337, number: bn as u64 + 1, timestamp: 0, base_fee: 1_000_000_007, gas_limit: 30_000_000, coinbase: VALIDATOR_REWARD_POOL, last_commit: None };
            let writes = {
                let mut st = Overlay::new(&mem);
                runtime::begin_block(&mut st, &env).unwrap();
                let mut used = 0;
                for o in ops {
                    let milli = primitives::ONE_OPEN / 1000;
                    let (from, tx) = match o.clone() {
                        Op::Transfer { from, to, milli: m } => (from, sign(&ks[from], nonces[from], addrs[to], m as u128 * milli, vec![], 21_000, 3)),
                        Op::BankTransfer { from, to, milli: m } => (from, sign(&ks[from], nonces[from], Module::Bank.address(), 0,
                            IBank::transferCall { to: addrs[to], amount: U256::from(m as u128 * milli) }.abi_encode(), 60_000, 5)),
                        Op::SetParam { from } => (from, sign(&ks[from], nonces[from], Module::Params.address(), 0,
                            IParams::setCall { name: "fee.treasury_bps".into(), value: U256::from(1) }.abi_encode(), 80_000, 0)),
                        Op::PayNonPayable { from } => (from, sign(&ks[from], nonces[from], Module::Bank.address(), 7,
                            IBank::totalSupplyCall {}.abi_encode(), 60_000, 1)),
                        Op::Donate { from, milli: m } => (from, sign(&ks[from], nonces[from], TREASURY, m as u128 * milli, vec![], 21_000, 2)),
                        Op::Garbage { from, data } => (from, sign(&ks[from], nonces[from], Module::Staking.address(), 0, data, 60_000, 1)),
                        Op::InferenceDeposit { from, milli: m } => (from, sign(&ks[from], nonces[from], Module::Inference.address(), m as u128 * milli,
                            IInference::depositCall {}.abi_encode(), 80_000, 1)),
                        Op::InferenceWithdraw { from, milli: m } => (from, sign(&ks[from], nonces[from], Module::Inference.address(), 0,
                            IInference::withdrawCall { amount: m as u128 * milli }.abi_encode(), 80_000, 1)),
                    };
                    let before_sender = st.balance(&tx.sender).unwrap();
                    let before_fees = st.balance(&TREASURY).unwrap().0 + st.balance(&VALIDATOR_REWARD_POOL).unwrap().0;
                    match runtime::apply_transaction(&mut st, &env, &tx, used) {
                        Ok(r) => {
                            used = r.cumulative_gas_used;
                            nonces[from] += 1;
                            let fee = r.gas_used as u128 * r.effective_gas_price;
                            let after_fees = st.balance(&TREASURY).unwrap().0 + st.balance(&VALIDATOR_REWARD_POOL).unwrap().0;
                            let donated = if tx.to() == Some(TREASURY) && r.success { tx.value().to::<u128>() } else { 0 };
                            // Treasury and pool receive exactly the fee (plus a donation to the treasury).
                            prop_assert_eq!(after_fees - before_fees, fee + donated);
                            let after_sender = st.balance(&tx.sender).unwrap();
                            // What left the sender besides the fee (negative: what it received).
                            let moved: i128 = if r.success {
                                match o { Op::BankTransfer { milli: m, to, .. } if addrs[*to] != tx.sender => (*m as u128 * milli) as i128,
                                          Op::Transfer { to, .. } if addrs[*to] == tx.sender => 0,
                                          Op::InferenceWithdraw { milli: m, .. } => -((*m as u128 * milli) as i128),
                                          _ => tx.value().to::<u128>() as i128 }
                            } else { 0 };
                            prop_assert_eq!(before_sender.0 as i128 - after_sender.0 as i128, fee as i128 + moved);
                            if !r.success { prop_assert!(!r.revert_data.is_empty()); prop_assert!(r.logs.is_empty()); }
                        }
                        Err(e) => {
                            // Not includable: nothing changed.
                            prop_assert_eq!(st.balance(&tx.sender).unwrap(), before_sender);
                            prop_assert!(matches!(e, runtime::ApplyError::InsufficientFunds), "{e}");
                        }
                    }
                }
                runtime::end_block(&mut st, &env).unwrap();
                st.into_writes()
            };
            mem.apply(writes);
            let sum: u128 = everyone.iter().map(|a| mem.balance(a).unwrap().0).sum();
            let report = runtime::supply_report(&mem).unwrap();
            prop_assert_eq!(report.total, Amount(sum));
            prop_assert_eq!(report.total, report.genesis);
            // The inference module holds exactly what it reports (here: free escrow only).
            prop_assert_eq!(report.inference.total(), mem.balance(&Module::Inference.address()).unwrap());
            prop_assert_eq!(report.inference.total(), report.inference.free_escrow);
        }
    }
}
