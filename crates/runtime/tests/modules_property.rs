//! Property: random sequences of every module's calls by random accounts (the
//! attacks of the hardening issues among them: value sent to views, proposals
//! that spend the governance address's balance, slots filled, random calldata
//! to every function of every module) never make a block fail to build, and
//! after every block the supply equation holds and every module holds exactly
//! what it reports.

use alloy_primitives::U256;
use alloy_sol_types::{SolCall, SolInterface};
use keys::SecretKey;
use primitives::abi::{IAgents, IAttribution, IBank, IDatanets, IGovernance, IInference, IModels, IParams, IStaking};
use primitives::system::{GOVERNANCE_DEPOSITS, Module};
use primitives::{Address, Amount, B256, ONE_OPEN};
use proptest::prelude::*;
use runtime::Genesis;
use runtime::agents::AgentsRead;
use runtime::bank::BankRead;
use runtime::inference::InferenceRead;

mod common;
use common::Ledger;

const N: usize = 5;

fn key(i: usize) -> SecretKey {
    SecretKey::from_bytes(&[i as u8 + 11; 32]).unwrap()
}

fn genesis() -> Genesis {
    Genesis {
        chain_id: 31337,
        timestamp: 1_800_000_000,
        alloc: (0..N).map(|i| (key(i).address(), Amount::open(50_000))).collect(),
        params: vec![
            ("staking.min_self_bond".into(), 100 * ONE_OPEN),
            ("staking.unbonding_blocks".into(), 3),
            ("governance.voting_delay".into(), 1),
            ("governance.voting_period".into(), 2),
            ("governance.timelock".into(), 1),
            ("governance.deposit".into(), 10 * ONE_OPEN),
            ("inference.release_delay_blocks".into(), 2),
            ("staking.issuance_per_block".into(), ONE_OPEN),
        ],
        operators: vec![
            runtime::staking::genesis::GenesisOperator {
                operator: key(0).address(),
                role: 1,
                consensus_key: B256::repeat_byte(1),
                serving_key: Address::ZERO,
                commission_bps: 500,
                bond: Amount::open(1_000),
            },
            // A serving operator agents can grant allowances to.
            runtime::staking::genesis::GenesisOperator {
                operator: key(4).address(),
                role: 2,
                consensus_key: B256::ZERO,
                serving_key: key(4).address(),
                commission_bps: 500,
                bond: Amount::open(1_000),
            },
        ],
        // Agents 1..=3 exist from the start (owned by accounts 1..=3), so agent
        // operations reach past "unknown agent".
        calls: (1..4)
            .map(|i| runtime::genesis::GenesisCall {
                from: key(i).address(),
                to: Module::Agents.address(),
                value: Amount::ZERO,
                data: IAgents::registerCall {
                    name: format!("agent {i}"),
                    description: String::new(),
                    metadataHash: B256::ZERO,
                    operator: Address::ZERO,
                }
                .abi_encode()
                .into(),
            })
            .collect(),
        base_model: None,
    }
}

#[derive(Clone, Debug)]
enum Op {
    Register {
        who: usize,
        open: u64,
    },
    Bond {
        who: usize,
        to: usize,
        open: u64,
    },
    Unbond {
        who: usize,
        from: usize,
        open: u64,
    },
    Withdraw {
        who: usize,
    },
    Claim {
        who: usize,
        op: usize,
    },
    /// A proposal whose call sends `open` OPEN from the governance address.
    ProposeSpend {
        who: usize,
        open: u64,
        extra: u64,
    },
    Vote {
        who: usize,
        id: u64,
        support: u8,
    },
    Execute {
        who: usize,
        id: u64,
    },
    Deposit {
        who: usize,
        open: u64,
    },
    WithdrawEscrow {
        who: usize,
        open: u64,
    },
    Allow {
        who: usize,
        to: usize,
        open: u64,
    },
    Release {
        who: usize,
        to: usize,
        open: u64,
    },
    /// Value sent to a view.
    PayView {
        who: usize,
        open: u64,
    },
    /// One of the agents module's functions (`kind`), on agent `agent` and task `task`.
    Agent {
        who: usize,
        kind: u8,
        agent: u64,
        task: u64,
        to: usize,
        open: u64,
    },
    /// Any function of any module, random arguments, maybe value.
    Random {
        who: usize,
        module: usize,
        sel: usize,
        args: Vec<u8>,
        open: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..N;
    prop_oneof![
        1 => (who.clone(), 0u64..300).prop_map(|(who, open)| Op::Register { who, open }),
        1 => (who.clone(), 0..N, 0u64..500).prop_map(|(who, to, open)| Op::Bond { who, to, open }),
        1 => (who.clone(), 0..N, 0u64..500).prop_map(|(who, from, open)| Op::Unbond { who, from, open }),
        1 => who.clone().prop_map(|who| Op::Withdraw { who }),
        1 => (who.clone(), 0..N).prop_map(|(who, op)| Op::Claim { who, op }),
        1 => (who.clone(), 0u64..50, 0u64..3).prop_map(|(who, open, extra)| Op::ProposeSpend { who, open, extra }),
        1 => (who.clone(), 1u64..6, 0u8..4).prop_map(|(who, id, support)| Op::Vote { who, id, support }),
        1 => (who.clone(), 1u64..6).prop_map(|(who, id)| Op::Execute { who, id }),
        1 => (who.clone(), 0u64..100).prop_map(|(who, open)| Op::Deposit { who, open }),
        1 => (who.clone(), 0u64..100).prop_map(|(who, open)| Op::WithdrawEscrow { who, open }),
        1 => (who.clone(), 0..N, 0u64..100).prop_map(|(who, to, open)| Op::Allow { who, to, open }),
        1 => (who.clone(), 0..N, 0u64..100).prop_map(|(who, to, open)| Op::Release { who, to, open }),
        1 => (who.clone(), 1u64..5).prop_map(|(who, open)| Op::PayView { who, open }),
        // Kinds 14.. advance a task (as 8), so tasks go the whole way.
        10 => (who.clone(), 0u8..22, 0u64..4, 1u64..5, 0..N, 0u64..50)
            .prop_map(|(who, kind, agent, task, to, open)| Op::Agent { who, kind: if kind >= 14 { 8 } else { kind }, agent, task, to, open }),
        1 => (who, 0usize..9, 0usize..64, proptest::collection::vec(any::<u8>(), 0..200), 0u64..3)
            .prop_map(|(who, module, sel, args, open)| Op::Random { who, module, sel, args, open }),
    ]
}

fn selectors<I: SolInterface>() -> Vec<[u8; 4]> {
    (0..I::COUNT).filter_map(I::selector_at).collect()
}

/// (to, value, calldata) of an operation.
fn encode(o: &Op, mem: &common::Mem) -> (usize, Address, Amount, Vec<u8>) {
    let a = |i: usize| key(i).address();
    let staking = Module::Staking.address();
    let gov = Module::Governance.address();
    let inf = Module::Inference.address();
    let open = |n: u64| Amount::open(n);
    match o.clone() {
        Op::Register { who, open: n } => (
            who,
            staking,
            open(n),
            IStaking::registerOperatorCall {
                role: 1 + (n % 2) as u8,
                consensusKey: B256::repeat_byte(who as u8 + 2),
                servingKey: a(who),
                commissionBps: 100,
            }
            .abi_encode(),
        ),
        Op::Bond { who, to, open: n } => (who, staking, open(n), IStaking::bondCall { operator: a(to) }.abi_encode()),
        Op::Unbond { who, from, open: n } => (
            who,
            staking,
            Amount::ZERO,
            IStaking::unbondCall { operator: a(from), amount: U256::from(n as u128 * ONE_OPEN) }.abi_encode(),
        ),
        Op::Withdraw { who } => (who, staking, Amount::ZERO, IStaking::withdrawCall {}.abi_encode()),
        Op::Claim { who, op } => {
            (who, staking, Amount::ZERO, IStaking::claimRewardsCall { operator: a(op) }.abi_encode())
        }
        Op::ProposeSpend { who, open: n, extra } => {
            let spend = IBank::transferCall { to: a(who), amount: U256::from(n as u128 * ONE_OPEN) }.abi_encode();
            let call = IGovernance::proposeCall {
                description: "spend".into(),
                targets: vec![Module::Bank.address()],
                calldatas: vec![spend.into()],
            };
            // The base deposit, sometimes more (doubling as slots fill).
            (who, gov, Amount((10 << extra) * ONE_OPEN), call.abi_encode())
        }
        Op::Vote { who, id, support } => {
            (who, gov, Amount::ZERO, IGovernance::castVoteCall { id, support }.abi_encode())
        }
        Op::Execute { who, id } => (who, gov, Amount::ZERO, IGovernance::executeCall { id }.abi_encode()),
        Op::Deposit { who, open: n } => (who, inf, open(n), IInference::depositCall {}.abi_encode()),
        Op::WithdrawEscrow { who, open: n } => {
            (who, inf, Amount::ZERO, IInference::withdrawCall { amount: n as u128 * ONE_OPEN }.abi_encode())
        }
        Op::Allow { who, to, open: n } => (
            who,
            inf,
            Amount::ZERO,
            IInference::allowCall { operator: a(to), amount: n as u128 * ONE_OPEN }.abi_encode(),
        ),
        Op::Release { who, to, open: n } => (
            who,
            inf,
            Amount::ZERO,
            IInference::releaseCall { operator: a(to), amount: n as u128 * ONE_OPEN }.abi_encode(),
        ),
        Op::PayView { who, open: n } => {
            (who, staking, open(n), IStaking::operatorsCall { role: 1, offset: 0, limit: 256 }.abi_encode())
        }
        Op::Agent { who, kind, agent, task, to, open: n } => {
            // Mostly the party that may act, as state has it before the block:
            // the agent's owner, the task's agent's owner, client or resolver.
            let t = mem.task(task).ok().flatten();
            // Kind 8 takes the task one step along its life, whatever its status.
            let kind = match (kind, &t) {
                (8, Some(t)) => match t.status {
                    1 => 8,
                    2 => 9,
                    3 => 10 + (n % 2) as u8,
                    4 => 12,
                    _ => 13,
                },
                _ => kind,
            };
            let agent = match (kind, &t) {
                (7, _) => agent,
                (8, Some(t)) if t.agentId != 0 => t.agentId,
                _ => agent.max(1),
            };
            let owner_of = |id: u64| mem.agent(id).ok().flatten().map(|a| a.owner);
            let party = match kind {
                2..=6 | 8 => owner_of(agent),
                9 => t.as_ref().and_then(|t| owner_of(t.agentId)),
                10 | 11 => t.as_ref().map(|t| t.client),
                12 => t.as_ref().map(|t| t.resolver),
                _ => None,
            };
            let signer = match party.and_then(|p| (0..N).find(|i| key(*i).address() == p)) {
                Some(i) if n % 8 != 0 => i,
                _ => who,
            };
            let (value, call) = agent_call(signer, kind, agent, task, to, n);
            (signer, Module::Agents.address(), value, call)
        }
        Op::Random { who, module, sel, args, open: n } => {
            let (m, sels) = match module {
                0 => (Module::Bank, selectors::<IBank::IBankCalls>()),
                1 => (Module::Params, selectors::<IParams::IParamsCalls>()),
                2 => (Module::Staking, selectors::<IStaking::IStakingCalls>()),
                3 => (Module::Governance, selectors::<IGovernance::IGovernanceCalls>()),
                4 => (Module::Datanets, selectors::<IDatanets::IDatanetsCalls>()),
                5 => (Module::Models, selectors::<IModels::IModelsCalls>()),
                6 => (Module::Inference, selectors::<IInference::IInferenceCalls>()),
                7 => (Module::Attribution, selectors::<IAttribution::IAttributionCalls>()),
                _ => (Module::Agents, selectors::<IAgents::IAgentsCalls>()),
            };
            let mut data = sels[sel % sels.len()].to_vec();
            data.extend(args);
            (who, m.address(), Amount(n as u128 * ONE_OPEN / 2), data)
        }
    }
}

/// (value, calldata) of an agents call: register, fund, allow, bond, unbond,
/// withdraw the bond, transfer the token, post (directed or open), accept,
/// deliver, accept the result, dispute, resolve, settle.
fn agent_call(who: usize, kind: u8, agent: u64, task: u64, to: usize, n: u64) -> (Amount, Vec<u8>) {
    let a = |i: usize| key(i).address();
    let open = |n: u64| Amount(n as u128 * ONE_OPEN);
    let (id, amount) = (agent, n as u128 * ONE_OPEN);
    let zero = Amount::ZERO;
    match kind {
        0 => {
            let call = IAgents::registerCall {
                name: format!("a{who}"),
                description: String::new(),
                metadataHash: B256::ZERO,
                operator: a(to),
            };
            (zero, call.abi_encode())
        }
        1 => (open(n), IAgents::fundCall { id }.abi_encode()),
        2 => (zero, IAgents::allowCall { id, servingOperator: a(if to == 0 { 0 } else { 4 }), amount }.abi_encode()),
        3 => (open(n), IAgents::bondCall { id }.abi_encode()),
        4 => (zero, IAgents::unbondCall { id, amount }.abi_encode()),
        5 => (zero, IAgents::withdrawBondCall { id }.abi_encode()),
        6 => {
            let call = IAgents::transferFromCall { from: a(who), to: a(to), tokenId: U256::from(id) };
            (zero, call.abi_encode())
        }
        7 => {
            let call = IAgents::postTaskCall {
                agentId: id,
                specHash: B256::ZERO,
                // Absolute deadlines, most within the blocks these tests reach.
                deadline: 6 + n % 12,
                requiredStake: if n.is_multiple_of(5) { amount / 2 } else { 0 },
                resolver: a(to),
            };
            (open(n), call.abi_encode())
        }
        8 => (zero, IAgents::acceptTaskCall { taskId: task, agentId: id }.abi_encode()),
        9 => (zero, IAgents::deliverCall { taskId: task, resultHash: B256::ZERO, receipts: vec![] }.abi_encode()),
        10 => (zero, IAgents::acceptResultCall { taskId: task }.abi_encode()),
        11 => (zero, IAgents::disputeCall { taskId: task, reasonHash: B256::ZERO }.abi_encode()),
        12 => (zero, IAgents::resolveDisputeCall { taskId: task, agentWins: n.is_multiple_of(2) }.abi_encode()),
        _ => (zero, IAgents::settleTaskCall { taskId: task }.abi_encode()),
    }
}

/// What each module holds equals what it reports.
fn check_holdings(l: &Ledger) {
    let inf = l.mem.holdings().unwrap();
    assert_eq!(l.mem.balance(&Module::Inference.address()).unwrap(), inf.total(), "inference holds its holdings");
    let bonds = runtime::attribution::AttributionRead::bonds(&l.mem).unwrap();
    assert_eq!(l.mem.balance(&Module::Attribution.address()).unwrap(), bonds, "attribution holds its bonds");
    let agents = runtime::agents::AgentsRead::agent_holdings(&l.mem).unwrap();
    assert_eq!(l.mem.balance(&Module::Agents.address()).unwrap(), agents.total(), "agents hold task escrow and bonds");
    // Governance: the deposits of open proposals, held apart; the governance
    // address itself holds nothing a proposal could not spend.
    let mut open_deposits = 0u128;
    let count = runtime::governance::GovernanceRead::proposal_count(&l.mem).unwrap();
    for id in 1..=count {
        let p = runtime::governance::GovernanceRead::proposal(&l.mem, id).unwrap().unwrap();
        if p.state == runtime::governance::PENDING {
            open_deposits += p.deposit.to::<u128>();
        }
    }
    assert_eq!(l.mem.balance(&GOVERNANCE_DEPOSITS).unwrap().0, open_deposits, "deposits of open proposals");
    for m in [Module::Bank, Module::Params, Module::Datanets, Module::Models] {
        assert_eq!(l.mem.balance(&m.address()).unwrap(), Amount::ZERO, "{} holds nothing", m.name());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn every_block_builds_and_every_module_holds_what_it_reports(
        blocks in proptest::collection::vec(proptest::collection::vec(op(), 0..7), 1..14)
    ) {
        let mut l = Ledger::new(&genesis());
        for ops in blocks {
            let txs: Vec<_> = ops
                .iter()
                .map(|o| {
                    let (who, to, value, data) = encode(o, &l.mem);
                    l.sign(&key(who), to, value, data)
                })
                .collect();
            // Every transaction is includable (funded, nonces in order), so the
            // block must build: no hook may fail on what a transaction did.
            let rs = l.try_block(txs);
            prop_assert!(rs.is_ok(), "the block failed to build: {:?}", rs.err());
            check_holdings(&l);
        }
    }
}
