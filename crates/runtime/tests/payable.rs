//! Value sent with a call that takes no OPEN is refused, never kept: every
//! function of every module's interface is called with 1 base unit, and only
//! the functions that take OPEN (bonds, deposits, escrow) may succeed.

use alloy_sol_types::{SolCall, SolError, SolInterface};
use keys::SecretKey;
use primitives::abi::{
    IAgents, IAttribution, IBank, IDatanets, IGovernance, IInference, IModels, IParams, IStaking, InvalidArguments,
    NonPayable,
};
use primitives::system::Module;
use primitives::{Address, Amount, ONE_OPEN};
use runtime::Genesis;
use runtime::bank::BankRead;

mod common;
use common::Ledger;

fn selectors<I: SolInterface>() -> Vec<[u8; 4]> {
    (0..I::COUNT).filter_map(I::selector_at).collect()
}

fn genesis(who: Address) -> Genesis {
    Genesis {
        chain_id: 31337,
        timestamp: 1_800_000_000,
        alloc: vec![(who, Amount::open(1_000_000))],
        params: vec![("staking.min_self_bond".into(), ONE_OPEN)],
        operators: vec![],
        calls: vec![],
        base_model: None,
    }
}

#[test]
fn every_function_that_takes_no_open_refuses_value() {
    let k = SecretKey::from_bytes(&[3; 32]).unwrap();
    let l = Ledger::new(&genesis(k.address()));
    let payable: Vec<[u8; 4]> = vec![
        IStaking::registerOperatorCall::SELECTOR,
        IStaking::bondCall::SELECTOR,
        IStaking::depositRewardsCall::SELECTOR,
        IGovernance::proposeCall::SELECTOR,
        IDatanets::submitContributionCall::SELECTOR,
        IInference::depositCall::SELECTOR,
        IInference::buyLicenceCall::SELECTOR,
        IAttribution::challengeCall::SELECTOR,
        IAgents::fundCall::SELECTOR,
        IAgents::bondCall::SELECTOR,
        IAgents::postTaskCall::SELECTOR,
    ];
    let modules: Vec<(Module, Vec<[u8; 4]>)> = vec![
        (Module::Bank, selectors::<IBank::IBankCalls>()),
        (Module::Params, selectors::<IParams::IParamsCalls>()),
        (Module::Staking, selectors::<IStaking::IStakingCalls>()),
        (Module::Governance, selectors::<IGovernance::IGovernanceCalls>()),
        (Module::Datanets, selectors::<IDatanets::IDatanetsCalls>()),
        (Module::Models, selectors::<IModels::IModelsCalls>()),
        (Module::Inference, selectors::<IInference::IInferenceCalls>()),
        (Module::Attribution, selectors::<IAttribution::IAttributionCalls>()),
        (Module::Agents, selectors::<IAgents::IAgentsCalls>()),
    ];
    let env = l.env(1);
    let mut refused_by_value = 0;
    for (m, sels) in modules {
        for sel in sels {
            if payable.contains(&sel) {
                continue;
            }
            // Zero arguments decode for most functions (empty strings and
            // arrays, zero ids); the rest fail to decode, which refuses too.
            let mut input = sel.to_vec();
            input.extend_from_slice(&[0u8; 2048]);
            let out =
                runtime::call(&l.mem, &env, k.address(), m.address(), Amount(1), &input, Some(10_000_000)).unwrap();
            assert!(
                !out.success,
                "{}.{} kept the value sent with it",
                m.name(),
                primitives::Bytes::copy_from_slice(&sel)
            );
            let nonpayable = out.output.as_ref() == NonPayable::SELECTOR.as_slice();
            let undecodable = out.output.as_ref() == InvalidArguments::SELECTOR.as_slice();
            assert!(
                nonpayable || undecodable,
                "{}.{}: {}",
                m.name(),
                primitives::Bytes::copy_from_slice(&sel),
                out.output
            );
            refused_by_value += nonpayable as usize;
        }
    }
    assert!(refused_by_value > 60, "most functions decode with zero arguments: {refused_by_value}");
}

/// The attack as a wallet makes it: a view called in a transaction with value.
#[test]
fn a_view_sent_with_value_loses_only_gas() {
    let k = SecretKey::from_bytes(&[3; 32]).unwrap();
    let mut l = Ledger::new(&genesis(k.address()));
    let before = l.mem.balance(&k.address()).unwrap();
    let view = IStaking::operatorsCall { role: 1, offset: 0, limit: 256 }.abi_encode();
    let r = l.send(&k, Module::Staking.address(), Amount::open(5), view);
    assert!(!r.success);
    assert_eq!(r.revert_data.as_ref(), NonPayable::SELECTOR.as_slice());
    let fee = r.gas_used as u128 * r.effective_gas_price;
    assert_eq!(l.mem.balance(&k.address()).unwrap().0, before.0 - fee, "the 5 OPEN stay with the sender");
    assert_eq!(l.mem.balance(&Module::Staking.address()).unwrap(), Amount::ZERO);
}
