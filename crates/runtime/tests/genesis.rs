//! Genesis calls: set-up a chain starts with, executed as if their senders had
//! sent them, without touching any nonce; a call that reverts refuses the genesis.

use alloy_sol_types::SolCall;
use primitives::abi::IInference;
use primitives::system::Module;
use primitives::{Address, Amount, ONE_OPEN};
use runtime::bank::BankRead;
use runtime::genesis::GenesisCall;
use runtime::inference::InferenceRead;
use runtime::{Genesis, Overlay};

mod common;
use common::Mem;

fn genesis(calls: Vec<GenesisCall>) -> Genesis {
    Genesis {
        chain_id: 31337,
        timestamp: 1_800_000_000,
        alloc: vec![(Address::repeat_byte(1), Amount::open(100))],
        params: vec![],
        operators: vec![],
        calls,
        base_model: None,
    }
}

fn apply(g: &Genesis) -> Result<Mem, runtime::genesis::GenesisError> {
    let e = runtime::EmptyState;
    let mut st = Overlay::new(&e);
    g.apply(&mut st)?;
    let mut m = Mem(Default::default());
    m.apply(st.into_writes());
    Ok(m)
}

#[test]
fn genesis_calls_set_up_state_without_nonces_and_must_succeed() {
    let payer = Address::repeat_byte(1);
    let inference = Module::Inference.address();
    let deposit = GenesisCall {
        from: payer,
        to: inference,
        value: Amount::open(40),
        data: IInference::depositCall {}.abi_encode().into(),
    };
    let m = apply(&genesis(vec![deposit.clone()])).unwrap();
    assert_eq!(m.escrow(&payer).unwrap(), Amount::open(40));
    assert_eq!(m.balance(&payer).unwrap(), Amount::open(60));
    assert_eq!(m.account(&payer).unwrap().nonce, 0, "no nonce is used");
    let s = runtime::supply_report(&m).unwrap();
    assert_eq!(s.total, Amount::open(100));
    // A call that reverts (more than the sender has) refuses the genesis.
    let too_much = GenesisCall { value: Amount(101 * ONE_OPEN), ..deposit.clone() };
    assert!(apply(&genesis(vec![too_much])).is_err());
    let bad = GenesisCall { data: vec![1, 2, 3, 4].into(), ..deposit.clone() };
    let e = apply(&genesis(vec![bad])).unwrap_err().to_string();
    assert!(e.contains("genesis call 0"), "{e}");
    // Only system contracts.
    let plain = GenesisCall { to: Address::repeat_byte(9), ..deposit };
    assert!(apply(&genesis(vec![plain])).unwrap_err().to_string().contains("not a system contract"));
}
