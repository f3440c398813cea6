//! The agents module through signed transactions, as a chain applies them:
//! the ERC-721 identity and its refusals, budgets through inference's escrow
//! (limits per period and per serving operator, freeze, model allowlist, and
//! the settlement of an agent's receipts), the per-receipt payout record, the
//! task path (paid, disputed, refunded, feedback), the bond's timing and the
//! memory root; after every block the supply equation holds and inference and
//! agents each hold exactly what they report.

use std::collections::BTreeMap;

use alloy_primitives::U256;
use alloy_sol_types::{SolCall, SolEvent, SolInterface};
use keys::SecretKey;
use primitives::abi::IAgents::{self, IAgentsCalls, IAgentsErrors};
use primitives::abi::IInference::{self, IInferenceCalls, IInferenceErrors};
use primitives::abi::IModels::{self, IModelsCalls};
use primitives::abi::{InferenceReceipt, ModelRegistration, agent_wallet, receipt_hash, receipt_signing_hash};
use primitives::block::Receipt;
use primitives::system::{Module, SYSTEM_MODULES, TREASURY, VALIDATOR_REWARD_POOL};
use primitives::{Address, Amount, B256, Bytes, ONE_OPEN, SignedTransaction, keccak256};
use runtime::agents::AgentsRead;
use runtime::bank::BankRead;
use runtime::genesis::BaseModelGenesis;
use runtime::{BlockEnv, Genesis, Overlay};

mod common;
use common::Mem;

const CHAIN: u64 = 31337;
const AGENTS: Address = Module::Agents.address();
const INFERENCE: Address = Module::Inference.address();
const PERIOD: u64 = 10;
const UNBOND_DELAY: u64 = 5;
const WINDOW: u64 = 4;
const RESOLVE_TIMEOUT: u64 = 6;
const SHARE_BPS: u128 = 500;
const SLASH_BPS: u128 = 1_000;
const M2_ADAPTER: B256 = B256::repeat_byte(0xad);

fn key(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i + 1; 32]).unwrap()
}

fn serving_key() -> SecretKey {
    SecretKey::from_bytes(&[0x5e; 32]).unwrap()
}

/// Accounts: 0 validator, 1 serving operator, 2 owner, 3 agent operator, 4 client, 5 buyer, 6 resolver, 7 other.
const VALIDATOR: u8 = 0;
const OPERATOR: u8 = 1;
const OWNER: u8 = 2;
const AGENT_OP: u8 = 3;
const CLIENT: u8 = 4;
const BUYER: u8 = 5;
const RESOLVER: u8 = 6;
const OTHER: u8 = 7;

struct Chain {
    mem: Mem,
    height: u64,
    nonces: BTreeMap<Address, u64>,
    accounts: Vec<Address>,
}

fn addr(i: u8) -> Address {
    key(i).address()
}

impl Chain {
    /// Genesis with a validator, a serving operator, the base model m1 (7 / 11
    /// per 1K tokens) and, after block 1, a live m2 (3 / 5) with an adapter.
    fn new() -> Chain {
        let accounts: Vec<Address> = (0..8).map(addr).collect();
        let operator = |i: u8, role: u8, serving: Address| runtime::staking::genesis::GenesisOperator {
            operator: addr(i),
            role,
            consensus_key: if role == 1 { B256::repeat_byte(1) } else { B256::ZERO },
            serving_key: serving,
            commission_bps: 0,
            bond: Amount::open(1_000),
        };
        let g = Genesis {
            chain_id: CHAIN,
            timestamp: 1_800_000_000,
            alloc: accounts.iter().map(|a| (*a, Amount::open(100_000))).collect(),
            params: vec![
                ("fee.treasury_bps".into(), 0),
                ("staking.min_self_bond".into(), 100 * ONE_OPEN),
                ("models.base_price_in_per_1k".into(), 7),
                ("models.base_price_out_per_1k".into(), 11),
                ("inference.release_delay_blocks".into(), 2),
                ("agents.default_period_blocks".into(), PERIOD as u128),
                ("agents.unbond_delay_blocks".into(), UNBOND_DELAY as u128),
                ("agents.dispute_window_blocks".into(), WINDOW as u128),
                ("agents.resolve_timeout_blocks".into(), RESOLVE_TIMEOUT as u128),
                ("agents.protocol_share_bps".into(), SHARE_BPS),
                ("agents.dispute_slash_bps".into(), SLASH_BPS),
            ],
            operators: vec![operator(VALIDATOR, 1, Address::ZERO), operator(OPERATOR, 2, serving_key().address())],
            calls: vec![],
            base_model: Some(BaseModelGenesis { name: "base".into(), base_hash: B256::repeat_byte(0xba) }),
        };
        let mut mem = Mem(BTreeMap::new());
        let e = runtime::EmptyState;
        let mut st = Overlay::new(&e);
        g.apply(&mut st).unwrap();
        mem.apply(st.into_writes());
        let mut c = Chain { mem, height: 0, nonces: BTreeMap::new(), accounts };
        let reg = ModelRegistration {
            name: "m2".into(),
            baseModelHash: B256::repeat_byte(0xba),
            adapterHash: M2_ADAPTER,
            priceInPer1k: 3,
            priceOutPer1k: 5,
            ..Default::default()
        };
        let register = IModelsCalls::register(IModels::registerCall { registration: reg }).abi_encode();
        let tx = c.sign(&key(OTHER), Module::Models.address(), Amount::ZERO, register);
        let propose = IModelsCalls::propose(IModels::proposeCall { id: 2 }).abi_encode();
        let tx2 = c.sign(&key(OTHER), Module::Models.address(), Amount::ZERO, propose);
        c.block_with(vec![tx, tx2], vec![IModelsCalls::approve(IModels::approveCall { ids: vec![2] })]);
        assert!(runtime::models::ModelsRead::is_live(&c.mem, primitives::ModelId(2)).unwrap());
        c
    }

    fn env(&self, number: u64) -> BlockEnv {
        BlockEnv {
            chain_id: CHAIN,
            number,
            timestamp: 1_800_000_000 + number,
            base_fee: 7,
            gas_limit: 30_000_000,
            coinbase: VALIDATOR_REWARD_POOL,
            last_commit: None,
        }
    }

    fn sign(&mut self, k: &SecretKey, to: Address, value: Amount, input: Vec<u8>) -> SignedTransaction {
        let nonce = self.nonces.entry(k.address()).or_default();
        let t = alloy_consensus::TxEip1559 {
            chain_id: CHAIN,
            nonce: *nonce,
            gas_limit: 4_000_000,
            max_fee_per_gas: 100,
            max_priority_fee_per_gas: 1,
            to: alloy_primitives::TxKind::Call(to),
            value: U256::from(value.0),
            access_list: Default::default(),
            input: input.into(),
        };
        *nonce += 1;
        SignedTransaction::decode(&keys::encode_2718(&keys::sign_eip1559(k, t)), CHAIN).unwrap()
    }

    /// One block of these transactions, then `gov_calls` to models from the governance address.
    fn block_with(&mut self, txs: Vec<SignedTransaction>, gov_calls: Vec<IModelsCalls>) -> Vec<Receipt> {
        self.height += 1;
        let env = self.env(self.height);
        let (receipts, done) = self.mem.run_block(&env, &txs, gov_calls);
        assert!(done.iter().all(|ok| *ok), "a governance call failed");
        self.check();
        receipts
    }

    /// The supply equation; inference and agents hold exactly what they report.
    fn check(&self) {
        let mut everyone = self.accounts.clone();
        everyone.extend([TREASURY, VALIDATOR_REWARD_POOL]);
        everyone.extend(SYSTEM_MODULES.iter().map(|m| m.address()));
        everyone.extend(primitives::system::MODULE_ESCROWS);
        let sum: u128 = everyone.iter().map(|a| self.bal(a)).sum();
        let report = runtime::supply_report(&self.mem).unwrap();
        assert_eq!(report.total, Amount(sum), "supply equation at block {}", self.height);
        assert_eq!(report.inference.total(), self.mem.balance(&INFERENCE).unwrap(), "inference holdings");
        assert_eq!(report.agents.total(), self.mem.balance(&AGENTS).unwrap(), "agents holdings");
        assert_eq!(report.agents, self.mem.agent_holdings().unwrap());
    }

    fn bal(&self, a: &Address) -> u128 {
        self.mem.balance(a).unwrap().0
    }

    /// Empty blocks until the next block is `height`.
    fn until(&mut self, height: u64) {
        while self.height + 1 < height {
            self.block_with(vec![], vec![]);
        }
    }

    fn send(&mut self, who: u8, to: Address, value: u128, input: Vec<u8>) -> Receipt {
        let tx = self.sign(&key(who), to, Amount(value), input);
        self.block_with(vec![tx], vec![]).pop().unwrap()
    }

    fn pay(&mut self, who: u8, value: u128, c: IAgentsCalls) -> Receipt {
        let r = self.send(who, AGENTS, value, c.abi_encode());
        assert!(r.success, "reverted: {:?}", IAgentsErrors::abi_decode(&r.revert_data));
        r
    }

    fn ok(&mut self, who: u8, c: IAgentsCalls) -> Receipt {
        self.pay(who, 0, c)
    }

    /// The call reverts, leaves no log and changes no agents or inference state.
    fn refused_raw(&mut self, who: u8, to: Address, value: u128, input: Vec<u8>) -> Bytes {
        let snapshot = |m: &Mem| -> Vec<(Vec<u8>, Vec<u8>)> {
            m.0.iter()
                .filter(|(k, _)| k.starts_with(b"agents/") || k.starts_with(b"inference/"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let before = (snapshot(&self.mem), self.bal(&AGENTS), self.bal(&INFERENCE));
        let r = self.send(who, to, value, input);
        assert!(!r.success, "expected a revert");
        assert!(r.logs.is_empty());
        assert_eq!((snapshot(&self.mem), self.bal(&AGENTS), self.bal(&INFERENCE)), before, "a refusal changes nothing");
        r.revert_data
    }

    fn refused(&mut self, who: u8, c: IAgentsCalls) -> IAgentsErrors {
        let data = self.refused_raw(who, AGENTS, 0, c.abi_encode());
        IAgentsErrors::abi_decode(&data).unwrap_or_else(|_| panic!("not an agents error: {data}"))
    }

    fn refused_by_inference(&mut self, who: u8, c: IAgentsCalls) -> IInferenceErrors {
        let data = self.refused_raw(who, AGENTS, 0, c.abi_encode());
        IInferenceErrors::abi_decode(&data).unwrap_or_else(|_| panic!("not an inference error: {data}"))
    }

    fn view<C: SolCall>(&self, to: Address, c: C) -> C::Return {
        let env = self.env(self.height + 1);
        let out = runtime::call(&self.mem, &env, Address::ZERO, to, Amount::ZERO, &c.abi_encode(), None).unwrap();
        assert!(out.success, "view reverted: {}", out.output);
        C::abi_decode_returns(&out.output).unwrap()
    }

    fn view_error<C: SolCall>(&self, c: C) -> IAgentsErrors {
        let env = self.env(self.height + 1);
        let out = runtime::call(&self.mem, &env, Address::ZERO, AGENTS, Amount::ZERO, &c.abi_encode(), None).unwrap();
        assert!(!out.success);
        IAgentsErrors::abi_decode(&out.output).unwrap()
    }

    fn agent(&self, id: u64) -> primitives::abi::AgentInfo {
        self.view(AGENTS, IAgents::agentCall { id })
    }

    fn task(&self, id: u64) -> primitives::abi::AgentTask {
        self.view(AGENTS, IAgents::taskCall { taskId: id })
    }

    /// Register an agent owned by `OWNER`, operated by `AGENT_OP`; returns its id.
    fn register(&mut self, name: &str) -> u64 {
        let call = IAgents::registerCall {
            name: name.into(),
            description: "answers questions".into(),
            metadataHash: B256::repeat_byte(0x3e),
            operator: addr(AGENT_OP),
        };
        let r = self.ok(OWNER, IAgentsCalls::register(call));
        IAgents::AgentRegistered::decode_log_data(&r.logs[1].data).unwrap().id
    }

    /// Fund agent `id` with `deposit` and grant the serving operator `allowance` of it.
    fn fund(&mut self, id: u64, deposit: u128, allowance: u128) {
        self.pay(CLIENT, deposit, IAgentsCalls::fund(IAgents::fundCall { id }));
        let allow = IAgents::allowCall { id, servingOperator: addr(OPERATOR), amount: allowance };
        self.ok(AGENT_OP, IAgentsCalls::allow(allow));
    }

    /// A receipt the serving operator issues now to agent `id`'s wallet for model `model` (1 or 2).
    fn receipt(&self, id: u64, model: u64, nonce: u64) -> InferenceReceipt {
        let (adapter, pin, pout) = if model == 1 { (B256::ZERO, 7, 11) } else { (M2_ADAPTER, 3, 5) };
        InferenceReceipt {
            requestHash: keccak256(format!("request {nonce}")),
            responseHash: keccak256(format!("response {nonce}")),
            modelId: model,
            adapterHash: adapter,
            inputTokens: 1_234_567,
            outputTokens: 765_432,
            priceInPer1k: pin,
            priceOutPer1k: pout,
            payer: agent_wallet(id),
            operator: addr(OPERATOR),
            nonce,
            issuedAt: self.height,
            retrievalHash: B256::ZERO,
        }
    }

    fn settle_call(rs: &[InferenceReceipt]) -> Vec<u8> {
        let k = serving_key();
        let signatures =
            rs.iter().map(|r| Bytes::from(k.sign_hash(&receipt_signing_hash(r, CHAIN)).as_bytes().to_vec())).collect();
        IInferenceCalls::settle(IInference::settleCall { receipts: rs.to_vec(), signatures }).abi_encode()
    }

    fn settle(&mut self, rs: &[InferenceReceipt]) -> Receipt {
        let r = self.send(OPERATOR, INFERENCE, 0, Self::settle_call(rs));
        assert!(r.success, "settle reverted: {:?}", IInferenceErrors::abi_decode(&r.revert_data));
        r
    }

    fn settle_refused(&mut self, rs: &[InferenceReceipt]) -> IInferenceErrors {
        let data = self.refused_raw(OPERATOR, INFERENCE, 0, Self::settle_call(rs));
        IInferenceErrors::abi_decode(&data).unwrap()
    }
}

fn token(id: u64) -> U256 {
    U256::from(id)
}

#[test]
fn identity_is_an_erc721_token_with_its_refusals() {
    let mut c = Chain::new();
    let bad = IAgents::registerCall {
        name: "x".repeat(65),
        description: String::new(),
        metadataHash: B256::ZERO,
        operator: Address::ZERO,
    };
    assert!(matches!(c.refused(OWNER, IAgentsCalls::register(bad.clone())), IAgentsErrors::InvalidAgent(_)));
    let long = IAgents::registerCall { name: "ok".into(), description: "d".repeat(1025), ..bad };
    assert!(matches!(c.refused(OWNER, IAgentsCalls::register(long)), IAgentsErrors::InvalidAgent(_)));

    let id = c.register("helper");
    assert_eq!(id, 1);
    let a = c.agent(id);
    assert_eq!((a.owner, a.operator, a.wallet), (addr(OWNER), addr(AGENT_OP), agent_wallet(1)));
    assert_eq!(c.view(AGENTS, IAgents::ownerOfCall { tokenId: token(1) }), addr(OWNER));
    assert_eq!(c.view(AGENTS, IAgents::balanceOfCall { owner: addr(OWNER) }), U256::from(1));
    assert_eq!(c.view(AGENTS, IAgents::tokenURICall { tokenId: token(1) }), "openledger://agents/1");
    assert_eq!(c.view(AGENTS, IAgents::agentOfWalletCall { wallet: agent_wallet(1) }), 1);
    for (iface, yes) in [
        ([0x01, 0xff, 0xc9, 0xa7], true),
        ([0x80, 0xac, 0x58, 0xcd], true),
        ([0x5b, 0x5e, 0x13, 0x9f], true),
        ([0xff; 4], false),
    ] {
        assert_eq!(c.view(AGENTS, IAgents::supportsInterfaceCall { interfaceId: iface.into() }), yes);
    }
    assert!(matches!(
        c.view_error(IAgents::ownerOfCall { tokenId: token(9) }),
        IAgentsErrors::ERC721NonexistentToken(_)
    ));
    assert!(matches!(
        c.view_error(IAgents::ownerOfCall { tokenId: U256::MAX }),
        IAgentsErrors::ERC721NonexistentToken(_)
    ));

    let xfer = |from: u8, to: Address| {
        IAgentsCalls::transferFrom(IAgents::transferFromCall { from: addr(from), to, tokenId: token(1) })
    };
    // Not the owner nor approved; the wrong `from`; receivers that cannot act.
    assert!(matches!(c.refused(BUYER, xfer(OWNER, addr(BUYER))), IAgentsErrors::ERC721InsufficientApproval(_)));
    assert!(matches!(c.refused(OWNER, xfer(OTHER, addr(BUYER))), IAgentsErrors::ERC721IncorrectOwner(_)));
    for to in [Address::ZERO, TREASURY, AGENTS, agent_wallet(1)] {
        assert!(matches!(c.refused(OWNER, xfer(OWNER, to)), IAgentsErrors::ERC721InvalidReceiver(_)));
    }
    let approve = |to: Address| IAgentsCalls::approve(IAgents::approveCall { to, tokenId: token(1) });
    assert!(matches!(c.refused(BUYER, approve(addr(BUYER))), IAgentsErrors::ERC721InvalidApprover(_)));
    let all = |operator: Address, approved: bool| {
        IAgentsCalls::setApprovalForAll(IAgents::setApprovalForAllCall { operator, approved })
    };
    assert!(matches!(c.refused(OWNER, all(Address::ZERO, true)), IAgentsErrors::ERC721InvalidOperator(_)));

    // An approved address transfers; the approval clears and the operator becomes the new owner.
    let r = c.ok(OWNER, approve(addr(OTHER)));
    assert!(IAgents::Approval::decode_log_data(&r.logs[0].data).is_ok());
    assert_eq!(c.view(AGENTS, IAgents::getApprovedCall { tokenId: token(1) }), addr(OTHER));
    let r = c.ok(OTHER, xfer(OWNER, addr(BUYER)));
    let t = IAgents::Transfer::decode_log_data(&r.logs[0].data).unwrap();
    assert_eq!((t.from, t.to, t.tokenId), (addr(OWNER), addr(BUYER), token(1)));
    assert_eq!(c.view(AGENTS, IAgents::getApprovedCall { tokenId: token(1) }), Address::ZERO);
    assert_eq!(c.agent(1).operator, addr(BUYER), "the seller's operator no longer acts");
    assert_eq!(c.view(AGENTS, IAgents::balanceOfCall { owner: addr(OWNER) }), U256::ZERO);
    assert!(matches!(
        c.refused(
            AGENT_OP,
            IAgentsCalls::updateMemory(IAgents::updateMemoryCall {
                id: 1,
                root: B256::ZERO,
                blobHash: B256::ZERO,
                size: 1
            })
        ),
        IAgentsErrors::NotAgentOperator(_)
    ));
    // An operator of the owner moves every token; safeTransferFrom is transferFrom.
    c.ok(BUYER, all(addr(OTHER), true));
    assert!(c.view(AGENTS, IAgents::isApprovedForAllCall { owner: addr(BUYER), operator: addr(OTHER) }));
    let safe = IAgents::safeTransferFrom_0Call { from: addr(BUYER), to: addr(OWNER), tokenId: token(1) };
    c.ok(OTHER, IAgentsCalls::safeTransferFrom_0(safe));
    c.ok(BUYER, all(addr(OTHER), false));
    let safe =
        IAgents::safeTransferFrom_1Call { from: addr(OWNER), to: addr(BUYER), tokenId: token(1), data: Bytes::new() };
    assert!(matches!(
        c.refused(OTHER, IAgentsCalls::safeTransferFrom_1(safe.clone())),
        IAgentsErrors::ERC721InsufficientApproval(_)
    ));
    c.ok(OWNER, IAgentsCalls::safeTransferFrom_1(safe));
    assert_eq!(c.view(AGENTS, IAgents::ownerOfCall { tokenId: token(1) }), addr(BUYER));

    // Paging the owner's agents.
    for i in 0..3 {
        c.register(&format!("more {i}"));
    }
    assert_eq!(c.view(AGENTS, IAgents::totalSupplyCall {}), U256::from(4));
    let page = |c: &Chain, offset, limit| c.view(AGENTS, IAgents::agentsOfCall { owner: addr(OWNER), offset, limit });
    let mut all_ids = page(&c, 0, 2);
    all_ids.extend(page(&c, 2, u64::MAX));
    all_ids.sort();
    assert_eq!(all_ids, vec![2, 3, 4]);
    assert!(page(&c, u64::MAX, u64::MAX).is_empty());
}

#[test]
fn allowances_stay_within_the_limits_of_each_period() {
    let mut c = Chain::new();
    let id = c.register("budget");
    let wallet = agent_wallet(id);
    c.pay(CLIENT, 1_000, IAgentsCalls::fund(IAgents::fundCall { id }));
    assert_eq!(c.view(INFERENCE, IInference::escrowOfCall { payer: wallet }), 1_000);
    // Only the owner defunds, to itself.
    let defund = |amount| IAgentsCalls::defund(IAgents::defundCall { id, amount });
    assert!(matches!(c.refused(AGENT_OP, defund(100)), IAgentsErrors::NotAgentOwner(_)));
    assert!(matches!(c.refused_by_inference(OWNER, defund(2_000)), IInferenceErrors::InsufficientEscrow(_)));
    let before = c.bal(&addr(OWNER));
    let r = c.ok(OWNER, defund(100));
    assert_eq!(c.bal(&addr(OWNER)), before + 100 - r.gas_used as u128 * r.effective_gas_price);

    let limits = |per_period, per_op| {
        IAgentsCalls::setLimits(IAgents::setLimitsCall {
            id,
            perPeriod: per_period,
            perOperator: per_op,
            periodBlocks: PERIOD,
            models: vec![],
        })
    };
    assert!(matches!(c.refused(AGENT_OP, limits(300, 200)), IAgentsErrors::NotAgentOwner(_)));
    c.ok(OWNER, limits(300, 200));
    c.until(PERIOD * 2); // the next block starts a period
    let allow = |op: u8, amount| IAgentsCalls::allow(IAgents::allowCall { id, servingOperator: addr(op), amount });
    assert!(matches!(c.refused(OTHER, allow(OPERATOR, 10)), IAgentsErrors::NotAgentOperator(_)));
    c.ok(AGENT_OP, allow(OPERATOR, 150));
    let IAgentsErrors::LimitExceeded(e) = c.refused(AGENT_OP, allow(OPERATOR, 51)) else { panic!() };
    assert_eq!((e.which.as_str(), e.available, e.required), ("operator", 50, 51));
    c.ok(OWNER, allow(OPERATOR, 50));
    // The operator's limit is used; a serving operator that is not bonded is refused by inference.
    assert!(matches!(c.refused_by_inference(AGENT_OP, allow(OTHER, 10)), IInferenceErrors::NotServingOperator(_)));
    let u = c.view(AGENTS, IAgents::periodUsageCall { id, servingOperator: addr(OPERATOR) });
    assert_eq!((u.periodStart, u.total, u.toOperator), (PERIOD * 2, 200, 200));
    // The period's total: lift the per-operator limit, 100 left in the period.
    c.ok(OWNER, limits(300, u128::MAX));
    let IAgentsErrors::LimitExceeded(e) = c.refused(AGENT_OP, allow(OPERATOR, 101)) else { panic!() };
    assert_eq!((e.which.as_str(), e.available), ("period", 100));
    c.ok(AGENT_OP, allow(OPERATOR, 100));
    assert_eq!(c.view(INFERENCE, IInference::allowanceCall { payer: wallet, operator: addr(OPERATOR) }).remaining, 300);
    // A new period starts afresh.
    c.until(PERIOD * 3);
    c.ok(AGENT_OP, allow(OPERATOR, 300));
    assert!(matches!(c.refused(AGENT_OP, allow(OPERATOR, 1)), IAgentsErrors::LimitExceeded(_)));
    assert!(matches!(c.refused_by_inference(OWNER, defund(1_000)), IInferenceErrors::InsufficientEscrow(_)));
    // Releases go through inference's delay.
    c.ok(AGENT_OP, IAgentsCalls::release(IAgents::releaseCall { id, servingOperator: addr(OPERATOR), amount: 100 }));
    let complete = IAgentsCalls::completeRelease(IAgents::completeReleaseCall { id, servingOperator: addr(OPERATOR) });
    assert!(matches!(c.refused_by_inference(AGENT_OP, complete.clone()), IInferenceErrors::ReleaseNotReady(_)));
    c.until(c.height + 3);
    c.ok(AGENT_OP, complete);
    assert_eq!(c.view(INFERENCE, IInference::escrowOfCall { payer: wallet }), 400);
}

#[test]
fn a_freeze_stops_spending_and_receipts_issued_after_it() {
    let mut c = Chain::new();
    let id = c.register("frozen");
    c.fund(id, 10 * ONE_OPEN, 5 * ONE_OPEN);
    let key_hash = B256::repeat_byte(0x4b);
    c.ok(AGENT_OP, IAgentsCalls::bindApiKey(IAgents::bindApiKeyCall { id, keyHash: key_hash }));
    assert_eq!(c.view(INFERENCE, IInference::apiKeyOwnerCall { keyHash: key_hash }), agent_wallet(id));
    let can = |c: &Chain, model| c.view(AGENTS, IAgents::canServeCall { wallet: agent_wallet(id), modelId: model });
    assert!(can(&c, 1).ok);
    assert!(c.view(AGENTS, IAgents::canServeCall { wallet: addr(CLIENT), modelId: 1 }).ok, "not an agent");

    let early = c.receipt(id, 1, 1);
    let freeze = IAgentsCalls::freeze(IAgents::freezeCall { id });
    assert!(matches!(c.refused(AGENT_OP, freeze.clone()), IAgentsErrors::NotAgentOwner(_)));
    c.ok(OWNER, freeze.clone());
    let frozen_at = c.height;
    assert_eq!(c.agent(id).frozenAt, frozen_at);
    assert!(matches!(c.refused(OWNER, freeze), IAgentsErrors::AgentFrozen(_)));
    let r = can(&c, 1);
    assert!(!r.ok && r.reason.contains("frozen"), "{}", r.reason);
    let allow = IAgentsCalls::allow(IAgents::allowCall { id, servingOperator: addr(OPERATOR), amount: 1 });
    assert!(matches!(c.refused(AGENT_OP, allow.clone()), IAgentsErrors::AgentFrozen(_)));
    let bind = IAgentsCalls::bindApiKey(IAgents::bindApiKeyCall { id, keyHash: B256::repeat_byte(1) });
    assert!(matches!(c.refused(AGENT_OP, bind), IAgentsErrors::AgentFrozen(_)));
    // A receipt issued at the freeze's height is refused; one issued before settles.
    let mut late = c.receipt(id, 1, 2);
    late.issuedAt = frozen_at;
    let IInferenceErrors::AgentRefused(e) = c.settle_refused(&[early.clone(), late]) else { panic!() };
    assert_eq!(e.index, U256::from(1));
    c.settle(&[early]);
    // Unfreezing lets it spend again.
    c.ok(OWNER, IAgentsCalls::unfreeze(IAgents::unfreezeCall { id }));
    c.ok(AGENT_OP, allow);
    c.settle(&[c.receipt(id, 1, 3)]);
}

#[test]
fn the_model_allowlist_refuses_receipts_issued_after_it_changed() {
    let mut c = Chain::new();
    let id = c.register("picky");
    c.fund(id, 10 * ONE_OPEN, 5 * ONE_OPEN);
    let set = |models: Vec<u64>| {
        IAgentsCalls::setLimits(IAgents::setLimitsCall {
            id,
            perPeriod: u128::MAX,
            perOperator: u128::MAX,
            periodBlocks: PERIOD,
            models,
        })
    };
    assert!(matches!(c.refused(OWNER, set(vec![1, 1])), IAgentsErrors::InvalidAgent(_)));
    assert!(matches!(c.refused(OWNER, set(vec![9])), IAgentsErrors::InvalidAgent(_)));
    let early_m2 = c.receipt(id, 2, 1);
    c.ok(OWNER, set(vec![1]));
    let since = c.height;
    assert_eq!(c.view(AGENTS, IAgents::limitsCall { id }).modelsSince, since);
    let r = c.view(AGENTS, IAgents::canServeCall { wallet: agent_wallet(id), modelId: 2 });
    assert!(!r.ok && r.reason.contains("allowlist"));
    let late_m2 = c.receipt(id, 2, 2);
    assert!(matches!(c.settle_refused(&[late_m2]), IInferenceErrors::AgentRefused(_)));
    // Issued before the list changed: it settles; a listed model settles.
    c.settle(&[early_m2, c.receipt(id, 1, 3)]);
    // Setting the same list again keeps `modelsSince`.
    c.ok(OWNER, set(vec![1]));
    assert_eq!(c.view(AGENTS, IAgents::limitsCall { id }).modelsSince, since);
}

#[test]
fn a_settled_receipt_records_every_part_of_its_cost() {
    let mut c = Chain::new();
    let id = c.register("payer");
    c.fund(id, 10 * ONE_OPEN, 5 * ONE_OPEN);
    let rs = [c.receipt(id, 1, 1), c.receipt(id, 2, 2)];
    let treasury = c.bal(&TREASURY);
    c.settle(&rs);
    let mut to_treasury = 0;
    for r in &rs {
        let s = c.view(INFERENCE, IInference::settledReceiptCall { receiptHash: receipt_hash(r) });
        let cost = primitives::abi::receipt_cost(r).unwrap();
        assert_eq!((s.payer, s.operator, s.modelId, s.settledAt), (r.payer, addr(OPERATOR), r.modelId, c.height));
        assert_eq!(s.cost, cost);
        assert_eq!(s.ownerPart + s.dataPart + s.servingPart + s.stakersPart + s.treasuryPart, cost);
        assert_eq!(s.ownerPart, cost * 3_000 / 10_000);
        assert_eq!(s.dataPart, 0, "no Datanet versions: the data part goes to the treasury");
        to_treasury += s.treasuryPart;
        if r.modelId == 1 {
            // The base model is the treasury's: its owner part goes there too.
            assert_eq!(s.modelOwner, TREASURY);
            to_treasury += s.ownerPart;
        } else {
            assert_eq!(s.modelOwner, addr(OTHER));
            // m2 is a fine-tune of the base: the base (the treasury's) takes
            // `assets.base_royalty_bps` (10%) of its owner part.
            to_treasury += s.ownerPart * 1_000 / 10_000;
        }
    }
    assert_eq!(c.bal(&TREASURY) - treasury, to_treasury);
    let unknown = c.view(INFERENCE, IInference::settledReceiptCall { receiptHash: B256::repeat_byte(9) });
    assert_eq!(unknown, Default::default());
}

impl Chain {
    /// Client posts a task for agent `agent` (0: an open offer) paying `payment`, due in `blocks`.
    fn post(&mut self, agent: u64, payment: u128, blocks: u64, stake: u128) -> u64 {
        let call = IAgents::postTaskCall {
            agentId: agent,
            specHash: B256::repeat_byte(0x5c),
            deadline: self.height + blocks,
            requiredStake: stake,
            resolver: addr(RESOLVER),
        };
        let r = self.pay(CLIENT, payment, IAgentsCalls::postTask(call));
        IAgents::TaskPosted::decode_log_data(&r.logs[0].data).unwrap().taskId
    }

    fn deliver_call(task: u64, receipts: Vec<B256>) -> IAgentsCalls {
        IAgentsCalls::deliver(IAgents::deliverCall { taskId: task, resultHash: B256::repeat_byte(0x7e), receipts })
    }

    fn accept(&mut self, task: u64, agent: u64) {
        self.ok(AGENT_OP, IAgentsCalls::acceptTask(IAgents::acceptTaskCall { taskId: task, agentId: agent }));
    }
}

fn settle_task(task: u64) -> IAgentsCalls {
    IAgentsCalls::settleTask(IAgents::settleTaskCall { taskId: task })
}

#[test]
fn a_task_is_paid_to_the_current_owner_minus_the_protocol_share() {
    let mut c = Chain::new();
    let id = c.register("worker");
    let other = c.register("other agent");
    c.fund(id, 10 * ONE_OPEN, 5 * ONE_OPEN);
    c.fund(other, 10 * ONE_OPEN, 5 * ONE_OPEN);
    let post = |agent, deadline, resolver| {
        IAgentsCalls::postTask(IAgents::postTaskCall {
            agentId: agent,
            specHash: B256::ZERO,
            deadline,
            requiredStake: 0,
            resolver,
        })
    };
    let h = c.height;
    let bad = |c: &mut Chain, value, call: IAgentsCalls| {
        let data = c.refused_raw(CLIENT, AGENTS, value, call.abi_encode());
        IAgentsErrors::abi_decode(&data).unwrap()
    };
    assert!(matches!(bad(&mut c, 0, post(id, h + 10, addr(RESOLVER))), IAgentsErrors::InvalidTask(_)));
    assert!(matches!(bad(&mut c, 5, post(id, h + 1, addr(RESOLVER))), IAgentsErrors::DeadlinePassed(_)));
    assert!(matches!(bad(&mut c, 5, post(id, h + 10, Address::ZERO)), IAgentsErrors::InvalidTask(_)));
    assert!(matches!(bad(&mut c, 5, post(99, h + 10, addr(RESOLVER))), IAgentsErrors::UnknownAgent(_)));

    let payment = 1_000_000_007u128;
    let task = c.post(id, payment, 30, 0);
    assert_eq!(c.view(AGENTS, IAgents::tasksOfCall { agentId: id, offset: 0, limit: 10 }), vec![task]);
    assert_eq!(c.view(AGENTS, IAgents::holdingsCall {}).taskEscrow, payment);
    let accept = |agent| IAgentsCalls::acceptTask(IAgents::acceptTaskCall { taskId: task, agentId: agent });
    assert!(matches!(c.refused(OTHER, accept(id)), IAgentsErrors::NotAgentOperator(_)));
    assert!(matches!(c.refused(AGENT_OP, accept(other)), IAgentsErrors::InvalidTask(_)));
    assert!(matches!(c.refused(AGENT_OP, Chain::deliver_call(task, vec![])), IAgentsErrors::WrongTaskStatus(_)));
    c.accept(task, id);

    // The agent's own receipts, one of another payer, one unsettled.
    let mine = [c.receipt(id, 1, 1), c.receipt(id, 2, 2)];
    let theirs = c.receipt(other, 1, 1);
    c.settle(&[mine[0].clone(), mine[1].clone(), theirs.clone()]);
    let (h1, h2, foreign) = (receipt_hash(&mine[0]), receipt_hash(&mine[1]), receipt_hash(&theirs));
    let unsettled = receipt_hash(&c.receipt(id, 1, 9));
    for (list, index) in [(vec![h1, foreign], 1u64), (vec![unsettled], 0), (vec![h1, h1], 1)] {
        let IAgentsErrors::BadReceipt(e) = c.refused(AGENT_OP, Chain::deliver_call(task, list)) else { panic!() };
        assert_eq!(e.index, U256::from(index), "{}", e.reason);
    }
    let too_many = vec![h1; primitives::abi::MAX_TASK_RECEIPTS + 1];
    assert!(matches!(c.refused(AGENT_OP, Chain::deliver_call(task, too_many)), IAgentsErrors::InvalidTask(_)));
    c.ok(AGENT_OP, Chain::deliver_call(task, vec![h1, h2]));
    assert_eq!(c.view(AGENTS, IAgents::taskOfReceiptCall { receiptHash: h1 }), task);
    assert_eq!(c.task(task).receipts, vec![h1, h2]);
    // A receipt links one task only.
    let second = c.post(id, 10, 30, 0);
    c.accept(second, id);
    let IAgentsErrors::BadReceipt(e) = c.refused(AGENT_OP, Chain::deliver_call(second, vec![h2])) else { panic!() };
    assert!(e.reason.contains("already"), "{}", e.reason);

    // The token changes hands before the client accepts: the new owner is paid.
    let xfer = IAgents::transferFromCall { from: addr(OWNER), to: addr(BUYER), tokenId: token(id) };
    c.ok(OWNER, IAgentsCalls::transferFrom(xfer));
    let accept_result = IAgentsCalls::acceptResult(IAgents::acceptResultCall { taskId: task });
    assert!(matches!(c.refused(OTHER, accept_result.clone()), IAgentsErrors::NotClient(_)));
    let feedback = |score| {
        IAgentsCalls::feedback(IAgents::feedbackCall { taskId: task, score, commentHash: B256::repeat_byte(0xcc) })
    };
    assert!(matches!(c.refused(CLIENT, feedback(90)), IAgentsErrors::WrongTaskStatus(_)));
    let (buyer, seller, treasury) = (c.bal(&addr(BUYER)), c.bal(&addr(OWNER)), c.bal(&TREASURY));
    let r = c.ok(CLIENT, accept_result);
    let share = payment * SHARE_BPS / 10_000;
    assert_eq!(c.bal(&TREASURY) - treasury, share);
    assert_eq!(c.bal(&addr(BUYER)) - buyer, payment - share);
    assert_eq!(c.bal(&addr(OWNER)), seller);
    let paid = IAgents::TaskPaid::decode_log_data(&r.logs[0].data).unwrap();
    assert_eq!((paid.agentOwner, paid.toAgent, paid.protocolShare), (addr(BUYER), payment - share, share));
    assert_eq!(c.task(task).status, runtime::agents::TASK_PAID);

    // Feedback: the client, once, 0..=100.
    assert!(matches!(c.refused(CLIENT, feedback(101)), IAgentsErrors::InvalidScore(_)));
    c.ok(CLIENT, feedback(90));
    assert!(matches!(c.refused(CLIENT, feedback(80)), IAgentsErrors::FeedbackAlreadyGiven(_)));
    let rep = c.view(AGENTS, IAgents::reputationCall { id });
    assert_eq!((rep.tasksCompleted, rep.feedbackCount, rep.scoreSum), (1, 1, 90));
}

#[test]
fn disputes_pay_the_winner_and_slash_a_losing_agent() {
    let mut c = Chain::new();
    let id = c.register("disputed");
    c.pay(OWNER, 1_000, IAgentsCalls::bond(IAgents::bondCall { id }));
    let dispute = |task| IAgentsCalls::dispute(IAgents::disputeCall { taskId: task, reasonHash: B256::ZERO });
    let resolve =
        |task, wins| IAgentsCalls::resolveDispute(IAgents::resolveDisputeCall { taskId: task, agentWins: wins });

    // Lost: the client gets its payment and 10 % of the bond.
    let lost = c.post(id, 500, 30, 1_000);
    c.accept(lost, id);
    c.ok(AGENT_OP, Chain::deliver_call(lost, vec![]));
    assert!(matches!(c.refused(RESOLVER, resolve(lost, false)), IAgentsErrors::WrongTaskStatus(_)));
    c.ok(CLIENT, dispute(lost));
    assert!(matches!(c.refused(CLIENT, resolve(lost, false)), IAgentsErrors::NotResolver(_)));
    let client = c.bal(&addr(CLIENT));
    let r = c.ok(RESOLVER, resolve(lost, false));
    let refund = IAgents::TaskRefunded::decode_log_data(&r.logs[0].data).unwrap();
    assert_eq!((refund.amount, refund.bondSlashed), (500, 100));
    assert_eq!(c.bal(&addr(CLIENT)) - client, 600);
    assert_eq!(c.agent(id).bond, 900);
    assert_eq!(c.task(lost).status, runtime::agents::TASK_REFUNDED);
    // The bond is now below the required stake of a task like the last.
    let strict = c.post(id, 500, 30, 1_000);
    let accept = IAgentsCalls::acceptTask(IAgents::acceptTaskCall { taskId: strict, agentId: id });
    assert!(matches!(c.refused(AGENT_OP, accept), IAgentsErrors::StakeTooSmall(_)));

    // Won: paid as an accepted result.
    let won = c.post(id, 500, 30, 0);
    c.accept(won, id);
    c.ok(AGENT_OP, Chain::deliver_call(won, vec![]));
    c.ok(CLIENT, dispute(won));
    let owner = c.bal(&addr(OWNER));
    c.ok(RESOLVER, resolve(won, true));
    assert_eq!(c.bal(&addr(OWNER)) - owner, 500 - 500 * SHARE_BPS / 10_000);
    let rep = c.view(AGENTS, IAgents::reputationCall { id });
    assert_eq!((rep.disputesLost, rep.disputesWon, rep.tasksCompleted), (1, 1, 1));

    // The window closes WINDOW blocks after delivery.
    let late = c.post(id, 500, 30, 0);
    c.accept(late, id);
    c.ok(AGENT_OP, Chain::deliver_call(late, vec![]));
    let delivered = c.height;
    c.until(delivered + WINDOW);
    assert!(matches!(c.refused(CLIENT, dispute(late)), IAgentsErrors::WindowClosed(_)));
}

#[test]
fn time_refunds_missed_deadlines_and_unresolved_disputes_and_pays_undisputed_deliveries() {
    let mut c = Chain::new();
    let id = c.register("slow");
    // An open offer nobody delivers: listed until accepted, refunded after its deadline.
    let offer = c.post(0, 700, 8, 0);
    let directed = c.post(id, 300, 50, 0);
    let offer2 = c.post(0, 800, 50, 0);
    let open = |c: &Chain| c.view(AGENTS, IAgents::openTasksCall { offset: 0, limit: 10 });
    assert_eq!(open(&c), vec![offer, offer2]);
    assert_eq!(c.view(AGENTS, IAgents::openTasksCall { offset: 1, limit: 10 }), vec![offer2]);
    c.accept(offer2, id);
    assert_eq!(open(&c), vec![offer]);
    assert_eq!(c.view(AGENTS, IAgents::tasksOfCall { agentId: id, offset: 0, limit: 10 }), vec![directed, offer2]);
    let cancel = |task| IAgentsCalls::cancelTask(IAgents::cancelTaskCall { taskId: task });
    assert!(matches!(c.refused(CLIENT, cancel(offer2)), IAgentsErrors::WrongTaskStatus(_)));
    assert!(matches!(c.refused(OTHER, settle_task(offer)), IAgentsErrors::DeadlineNotPassed(_)));
    c.until(c.task(offer).deadline + 1);
    let client = c.bal(&addr(CLIENT));
    c.ok(OTHER, settle_task(offer));
    assert_eq!(c.bal(&addr(CLIENT)) - client, 700);
    assert!(open(&c).is_empty());
    assert!(matches!(c.refused(OTHER, settle_task(offer)), IAgentsErrors::WrongTaskStatus(_)));

    // The client cancels an open task it posted.
    let client = c.bal(&addr(CLIENT));
    let r = c.ok(CLIENT, cancel(directed));
    assert_eq!(c.bal(&addr(CLIENT)) + r.gas_used as u128 * r.effective_gas_price - client, 300);

    // An undisputed delivery is paid once the window is over.
    c.ok(AGENT_OP, Chain::deliver_call(offer2, vec![]));
    let delivered = c.height;
    assert!(matches!(c.refused(OTHER, settle_task(offer2)), IAgentsErrors::WindowOpen(_)));
    c.until(delivered + WINDOW);
    let owner = c.bal(&addr(OWNER));
    c.ok(OTHER, settle_task(offer2));
    assert_eq!(c.bal(&addr(OWNER)) - owner, 800 - 800 * SHARE_BPS / 10_000);

    // A dispute the resolver never rules on is refunded after the timeout, without a slash.
    c.pay(OWNER, 1_000, IAgentsCalls::bond(IAgents::bondCall { id }));
    let task = c.post(id, 400, 50, 0);
    c.accept(task, id);
    c.ok(AGENT_OP, Chain::deliver_call(task, vec![]));
    c.ok(CLIENT, IAgentsCalls::dispute(IAgents::disputeCall { taskId: task, reasonHash: B256::ZERO }));
    let disputed = c.height;
    c.until(disputed + RESOLVE_TIMEOUT);
    assert!(matches!(c.refused(OTHER, settle_task(task)), IAgentsErrors::WindowOpen(_)));
    let client = c.bal(&addr(CLIENT));
    c.ok(OTHER, settle_task(task));
    assert_eq!(c.bal(&addr(CLIENT)) - client, 400);
    assert_eq!(c.agent(id).bond, 1_000);

    // An accepted task not delivered by its deadline: refunded, and too late to deliver.
    let task = c.post(id, 100, 3, 0);
    c.accept(task, id);
    c.until(c.task(task).deadline + 1);
    assert!(matches!(c.refused(AGENT_OP, Chain::deliver_call(task, vec![])), IAgentsErrors::DeadlinePassed(_)));
    c.ok(OTHER, settle_task(task));
    assert_eq!(c.task(task).status, runtime::agents::TASK_REFUNDED);
    assert_eq!(c.view(AGENTS, IAgents::holdingsCall {}).taskEscrow, 0);
}

#[test]
fn a_bond_unbonds_after_the_delay_and_stays_slashable_until_withdrawn() {
    let mut c = Chain::new();
    let id = c.register("bonded");
    let bond = IAgentsCalls::bond(IAgents::bondCall { id });
    let data = c.refused_raw(AGENT_OP, AGENTS, 10, bond.abi_encode());
    assert!(matches!(IAgentsErrors::abi_decode(&data).unwrap(), IAgentsErrors::NotAgentOwner(_)));
    c.pay(OWNER, 1_000, bond);
    let unbond = |amount| IAgentsCalls::unbond(IAgents::unbondCall { id, amount });
    assert!(matches!(c.refused(OWNER, unbond(1_001)), IAgentsErrors::StakeTooSmall(_)));
    c.ok(OWNER, unbond(600));
    let a = c.agent(id);
    assert_eq!((a.bond, a.unbonding, a.unbondAt), (400, 600, c.height + UNBOND_DELAY));
    let withdraw = IAgentsCalls::withdrawBond(IAgents::withdrawBondCall { id });
    assert!(matches!(c.refused(OWNER, withdraw.clone()), IAgentsErrors::WindowOpen(_)));

    // A dispute lost meanwhile takes 10 % of bond + unbonding, from the bond first.
    let task = c.post(id, 50, 30, 0);
    c.accept(task, id);
    c.ok(AGENT_OP, Chain::deliver_call(task, vec![]));
    c.ok(CLIENT, IAgentsCalls::dispute(IAgents::disputeCall { taskId: task, reasonHash: B256::ZERO }));
    c.ok(RESOLVER, IAgentsCalls::resolveDispute(IAgents::resolveDisputeCall { taskId: task, agentWins: false }));
    let a = c.agent(id);
    assert_eq!((a.bond, a.unbonding), (300, 600));
    c.until(a.unbondAt);
    let owner = c.bal(&addr(OWNER));
    let r = c.ok(OWNER, withdraw.clone());
    assert_eq!(c.bal(&addr(OWNER)) + r.gas_used as u128 * r.effective_gas_price - owner, 600);
    assert!(matches!(c.refused(OWNER, withdraw), IAgentsErrors::InvalidAgent(_)));
    assert_eq!(c.view(AGENTS, IAgents::holdingsCall {}).bonds, 300);
}

#[test]
fn memory_updates_are_bounded_and_readers_are_the_owners_choice() {
    let mut c = Chain::new();
    let id = c.register("memory");
    let update = |size| {
        IAgentsCalls::updateMemory(IAgents::updateMemoryCall {
            id,
            root: B256::repeat_byte(size as u8),
            blobHash: B256::repeat_byte(0xb1),
            size,
        })
    };
    let IAgentsErrors::MemoryUpdateTooLarge(e) = c.refused(AGENT_OP, update(64 * 1024 + 1)) else { panic!() };
    assert_eq!(e.max, 64 * 1024);
    let r = c.ok(AGENT_OP, update(64 * 1024));
    assert_eq!(IAgents::MemoryUpdated::decode_log_data(&r.logs[0].data).unwrap().version, 1);
    c.ok(OWNER, update(7));
    let a = c.agent(id);
    assert_eq!((a.memoryRoot, a.memoryVersion), (B256::repeat_byte(7), 2));
    assert!(matches!(c.refused(OTHER, update(1)), IAgentsErrors::NotAgentOperator(_)));

    let can = |c: &Chain, who: u8| c.view(AGENTS, IAgents::canReadMemoryCall { id, reader: addr(who) });
    assert!(can(&c, OWNER) && can(&c, AGENT_OP) && !can(&c, OTHER));
    let readers =
        |list: Vec<Address>| IAgentsCalls::setMemoryReaders(IAgents::setMemoryReadersCall { id, readers: list });
    assert!(matches!(c.refused(AGENT_OP, readers(vec![addr(OTHER)])), IAgentsErrors::NotAgentOwner(_)));
    assert!(matches!(c.refused(OWNER, readers(vec![addr(OTHER); 33])), IAgentsErrors::InvalidAgent(_)));
    c.ok(OWNER, readers(vec![addr(OTHER)]));
    assert!(can(&c, OTHER) && !can(&c, CLIENT));
    assert_eq!(c.view(AGENTS, IAgents::memoryReadersCall { id }), vec![addr(OTHER)]);
}
