//! Models through signed transactions, as a chain would apply them: the base
//! model at genesis, register → propose → approve by an executed governance
//! proposal, refusals (owner, governance, states, licences, Datanet versions)
//! that change nothing, and the supply equation after every block.

use std::collections::BTreeMap;

use alloy_consensus::TxEip1559;
use alloy_primitives::{TxKind, U256};
use alloy_sol_types::{SolCall, SolError, SolEvent, SolInterface, SolStruct};
use keys::{SecretKey, encode_2718, sign_eip1559};
use primitives::abi::IDatanets::{self, IDatanetsCalls};
use primitives::abi::IGovernance::{self, IGovernanceCalls};
use primitives::abi::IModels::{self, IModelsCalls, IModelsErrors};
use primitives::abi::{
    ContributionAttestation, DatanetLimits, DatanetVersionRef, ModelInfo, ModelRegistration, NonPayable, Unauthorized,
};
use primitives::block::Receipt;
use primitives::rows::{Row, rows_root};
use primitives::system::{Module, SYSTEM_MODULES, TREASURY, VALIDATOR_REWARD_POOL};
use primitives::{Address, Amount, B256, Bytes, ModelId, ONE_OPEN, SignedTransaction};
use proptest::prelude::*;
use runtime::bank::BankRead;
use runtime::genesis::BaseModelGenesis;
use runtime::models::{DRAFT, LIVE, ModelsRead, PROPOSED, RETIRED};
use runtime::{BlockEnv, Genesis, Overlay};

mod common;
use common::Mem;

const CHAIN: u64 = 31337;
const NOW: u64 = 1_800_000_000;
const MODELS: Address = Module::Models.address();
const GOV: Address = Module::Governance.address();

fn key(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i + 1; 32]).unwrap()
}

/// Every key of the models module with its value, and the module's balance.
type ModelsSnapshot = (Vec<(Vec<u8>, Vec<u8>)>, Amount);

/// A chain in memory: genesis, then one block per `block` call, each checked
/// against the supply equation.
struct Chain {
    mem: Mem,
    height: u64,
    nonces: BTreeMap<Address, u64>,
    accounts: Vec<Address>,
}

fn genesis(accounts: &[Address], base_model: Option<BaseModelGenesis>) -> Genesis {
    Genesis {
        chain_id: CHAIN,
        timestamp: NOW,
        alloc: accounts.iter().map(|a| (*a, Amount::open(100_000))).collect(),
        params: vec![
            ("staking.min_self_bond".into(), 100 * ONE_OPEN),
            ("governance.voting_delay".into(), 1),
            ("governance.voting_period".into(), 2),
            ("governance.timelock".into(), 1),
            ("governance.deposit".into(), 10 * ONE_OPEN),
            ("models.base_price_in_per_1k".into(), 7),
            ("models.base_price_out_per_1k".into(), 11),
        ],
        // Account 0 holds all the voting power.
        operators: vec![runtime::staking::genesis::GenesisOperator {
            operator: accounts[0],
            role: 1,
            consensus_key: B256::repeat_byte(1),
            serving_key: Address::ZERO,
            commission_bps: 0,
            bond: Amount::open(1_000),
        }],
        base_model,
        calls: vec![],
    }
}

fn base() -> BaseModelGenesis {
    BaseModelGenesis { name: "openledger-base".into(), base_hash: B256::repeat_byte(0xba) }
}

impl Chain {
    fn new(n: u8, base_model: Option<BaseModelGenesis>) -> Chain {
        let accounts: Vec<Address> = (0..n).map(|i| key(i).address()).collect();
        let mut mem = Mem(BTreeMap::new());
        let e = runtime::EmptyState;
        let mut st = Overlay::new(&e);
        genesis(&accounts, base_model).apply(&mut st).unwrap();
        mem.apply(st.into_writes());
        let c = Chain { mem, height: 0, nonces: BTreeMap::new(), accounts };
        c.check_supply();
        c
    }

    fn env(&self, number: u64) -> BlockEnv {
        BlockEnv {
            chain_id: CHAIN,
            number,
            timestamp: NOW + number,
            base_fee: 7,
            gas_limit: 30_000_000,
            coinbase: VALIDATOR_REWARD_POOL,
            last_commit: None,
        }
    }

    fn sign(&mut self, k: &SecretKey, to: Address, value: Amount, input: Vec<u8>) -> SignedTransaction {
        let nonce = self.nonces.entry(k.address()).or_default();
        let t = TxEip1559 {
            chain_id: CHAIN,
            nonce: *nonce,
            gas_limit: 5_000_000,
            max_fee_per_gas: 100,
            max_priority_fee_per_gas: 1,
            to: TxKind::Call(to),
            value: U256::from(value.0),
            access_list: Default::default(),
            input: input.into(),
        };
        *nonce += 1;
        SignedTransaction::decode(&encode_2718(&sign_eip1559(k, t)), CHAIN).unwrap()
    }

    /// One block with these transactions; every one must be includable.
    fn block(&mut self, txs: Vec<SignedTransaction>) -> Vec<Receipt> {
        self.block_with(txs, vec![])
    }

    /// A block whose transactions are followed by `gov_calls` to models with the
    /// governance address as sender (as an executed proposal makes them), each all or nothing.
    fn block_with(&mut self, txs: Vec<SignedTransaction>, gov_calls: Vec<IModelsCalls>) -> Vec<Receipt> {
        self.height += 1;
        let env = self.env(self.height);
        let (receipts, _) = self.mem.run_block(&env, &txs, gov_calls);
        self.check_supply();
        receipts
    }

    fn send(&mut self, k: &SecretKey, to: Address, value: Amount, input: Vec<u8>) -> Receipt {
        let tx = self.sign(k, to, value, input);
        self.block(vec![tx]).pop().unwrap()
    }

    fn models(&mut self, k: &SecretKey, c: IModelsCalls) -> Receipt {
        self.send(k, MODELS, Amount::ZERO, c.abi_encode())
    }

    /// `eth_call` at the head from any address (the governance address included).
    fn view(&self, from: Address, to: Address, input: Vec<u8>) -> runtime::CallOutcome {
        runtime::call(&self.mem, &self.env(self.height + 1), from, to, Amount::ZERO, &input, None).unwrap()
    }

    fn model(&self, id: u64) -> ModelInfo {
        let out = self.view(Address::ZERO, MODELS, IModels::modelCall { id }.abi_encode());
        assert!(out.success, "model({id}) reverted");
        IModels::modelCall::abi_decode_returns(&out.output).unwrap()
    }

    fn live(&self, start: u64, limit: u64) -> Vec<u64> {
        let out = self.view(Address::ZERO, MODELS, IModels::liveModelsCall { start, limit }.abi_encode());
        IModels::liveModelsCall::abi_decode_returns(&out.output).unwrap()
    }

    fn models_of(&self, owner: Address) -> Vec<u64> {
        let out = self.view(Address::ZERO, MODELS, IModels::modelsOfCall { owner }.abi_encode());
        IModels::modelsOfCall::abi_decode_returns(&out.output).unwrap()
    }

    fn model_count(&self) -> u64 {
        let out = self.view(Address::ZERO, MODELS, IModels::modelCountCall {}.abi_encode());
        IModels::modelCountCall::abi_decode_returns(&out.output).unwrap()
    }

    /// Every key of the models module and its balance: what a refused call must not change.
    fn models_state(&self) -> ModelsSnapshot {
        let kv =
            self.mem.0.iter().filter(|(k, _)| k.starts_with(b"models/")).map(|(k, v)| (k.clone(), v.clone())).collect();
        (kv, self.mem.balance(&MODELS).unwrap())
    }

    /// The supply equation: genesis + issued − burned == every balance; models hold nothing.
    fn check_supply(&self) {
        let mut everyone = self.accounts.clone();
        everyone.extend([TREASURY, VALIDATOR_REWARD_POOL]);
        everyone.extend(SYSTEM_MODULES.iter().map(|m| m.address()));
        everyone.extend(primitives::system::MODULE_ESCROWS);
        let sum: u128 = everyone.iter().map(|a| self.mem.balance(a).unwrap().0).sum();
        let report = runtime::supply_report(&self.mem).unwrap();
        assert_eq!(report.total, Amount(sum), "supply equation at block {}", self.height);
        assert_eq!(self.mem.balance(&MODELS).unwrap(), Amount::ZERO, "models hold no funds");
    }

    /// Propose `calls` to governance from account 0, vote for, wait, execute; returns the execute receipt.
    fn pass(&mut self, gov: &SecretKey, calls: Vec<(Address, Vec<u8>)>) -> Receipt {
        let r = self.send(
            gov,
            GOV,
            Amount::open(10),
            IGovernanceCalls::propose(IGovernance::proposeCall {
                description: "approve models".into(),
                targets: calls.iter().map(|c| c.0).collect(),
                calldatas: calls.iter().map(|c| Bytes::from(c.1.clone())).collect(),
            })
            .abi_encode(),
        );
        assert!(r.success, "propose: {}", r.revert_data);
        let created = r.logs.iter().find(|l| l.address == GOV).unwrap();
        let id = IGovernance::ProposalCreated::decode_log_data(&created.data).unwrap().id;
        let p = runtime::governance::GovernanceRead::proposal(&self.mem, id).unwrap().unwrap();
        while self.height + 1 < p.voteStart {
            self.block(vec![]);
        }
        let r = self.send(
            gov,
            GOV,
            Amount::ZERO,
            IGovernanceCalls::castVote(IGovernance::castVoteCall { id, support: 1 }).abi_encode(),
        );
        assert!(r.success, "vote: {}", r.revert_data);
        loop {
            let p = runtime::governance::GovernanceRead::proposal(&self.mem, id).unwrap().unwrap();
            if p.state == runtime::governance::QUEUED && self.height + 1 >= p.eta {
                break;
            }
            assert!(p.state == runtime::governance::PENDING || p.state == runtime::governance::QUEUED);
            self.block(vec![]);
        }
        self.send(gov, GOV, Amount::ZERO, IGovernanceCalls::execute(IGovernance::executeCall { id }).abi_encode())
    }
}

fn models_error(r: &Receipt) -> IModelsErrors {
    assert!(!r.success, "expected a revert");
    assert!(r.logs.is_empty(), "a failed call leaves no logs");
    IModelsErrors::abi_decode(&r.revert_data).unwrap_or_else(|_| panic!("not a models error: {}", r.revert_data))
}

fn registration(name: &str, datanets: Vec<(u64, u64)>, price_in: u128, price_out: u128) -> ModelRegistration {
    ModelRegistration {
        name: name.into(),
        baseModelHash: B256::repeat_byte(0xba),
        adapterHash: primitives::content_hash(name.as_bytes()),
        datanets: datanets.into_iter().map(|(d, v)| DatanetVersionRef { datanetId: d, version: v }).collect(),
        hyperparams: Bytes::from_static(b"rank=8 alpha=16 lr=2e-4"),
        metrics: Bytes::from_static(b"loss=1.25"),
        trainingLogHash: B256::repeat_byte(0x10),
        checkpointHashes: vec![B256::repeat_byte(0x21), B256::repeat_byte(0x22)],
        checkpointLearningRates: vec![200_000, 20_000],
        sketchHash: B256::repeat_byte(0x30),
        sketchSeed: 42,
        sketchK: 512,
        priceInPer1k: price_in,
        priceOutPer1k: price_out,
    }
}

fn register(c: ModelRegistration) -> IModelsCalls {
    IModelsCalls::register(IModels::registerCall { registration: c })
}

fn registered_id(r: &Receipt) -> u64 {
    assert!(r.success, "register reverted: {:?}", IModelsErrors::abi_decode(&r.revert_data));
    let l = r.logs.iter().find(|l| l.address == MODELS).unwrap();
    IModels::ModelRegistered::decode_log_data(&l.data).unwrap().id
}

/// Datanets for the tests: 1 "CC-BY-4.0" with versions 1 and 2 closed by a
/// tombstone that made version 3; 2 "CC-BY-NC-4.0" with version 1.
fn datanets(c: &mut Chain, owner: &SecretKey) {
    let attester = SecretKey::from_bytes(&[0xa7; 32]).unwrap();
    let create = |licence: &str| {
        IDatanetsCalls::createDatanet(IDatanets::createDatanetCall {
            name: format!("data {licence}"),
            summary: String::new(),
            description: String::new(),
            tags: vec![],
            dataType: 0,
            licence: licence.into(),
            policy: 0,
            contributorBond: U256::ZERO,
            curators: vec![],
            attesters: vec![attester.address()],
            limits: DatanetLimits {
                maxSubmissionBytes: 0,
                contributorDailyBytes: 0,
                datanetDailyBytes: 0,
                contributorDailyFiles: 0,
            },
        })
        .abi_encode()
    };
    let datanets = Module::Datanets.address();
    for l in ["CC-BY-4.0", "CC-BY-NC-4.0"] {
        assert!(c.send(owner, datanets, Amount::ZERO, create(l)).success);
    }
    let mut leaves_of_first = vec![];
    for (i, datanet) in [(0u64, 1u64), (1, 1), (2, 2)] {
        let rows: Vec<Row> = (0..3).map(|r| Row::Text { text: format!("contribution {i} row {r}") }).collect();
        let leaves: Vec<B256> = rows.iter().map(Row::leaf).collect();
        if i == 0 {
            leaves_of_first = leaves.clone();
        }
        let a = ContributionAttestation {
            datanetId: datanet,
            contributor: owner.address(),
            contentHash: primitives::content_hash(&i.to_be_bytes()),
            rowsRoot: rows_root(&leaves),
            rowCount: 3,
            byteSize: 100,
            qualityBps: 9_000,
            scorerVersion: 1,
            exactDuplicates: 0,
            nearDuplicates: 0,
            findingsHash: B256::repeat_byte(7),
            issuedAt: NOW + c.height,
        };
        let sig = attester.sign_hash(&a.eip712_signing_hash(&Module::Datanets.eip712_domain(CHAIN)));
        let submit = IDatanetsCalls::submitContribution(IDatanets::submitContributionCall {
            attestation: a,
            signature: sig.as_bytes().to_vec().into(),
        });
        assert!(c.send(owner, datanets, Amount::ZERO, submit.abi_encode()).success);
        let approve = IDatanetsCalls::approve(IDatanets::approveCall { contributionId: i + 1 });
        assert!(c.send(owner, datanets, Amount::ZERO, approve.abi_encode()).success);
    }
    let proof = primitives::merkle::prove(&leaves_of_first, 1).unwrap();
    let tomb = IDatanetsCalls::tombstone(IDatanets::tombstoneCall {
        contributionId: 1,
        rowIndex: 1,
        rowLeaf: leaves_of_first[1],
        proof: proof.siblings,
        reason: "consent withdrawn".into(),
    });
    assert!(c.send(owner, datanets, Amount::ZERO, tomb.abi_encode()).success);
    use runtime::datanets::DatanetsRead;
    assert!(c.mem.version(1, 1).unwrap().unwrap().closed && c.mem.version(1, 2).unwrap().unwrap().closed);
    assert!(!c.mem.version(1, 3).unwrap().unwrap().closed && !c.mem.version(2, 1).unwrap().unwrap().closed);
}

#[test]
fn base_model_is_m1_live_and_owned_by_the_treasury() {
    let c = Chain::new(2, Some(base()));
    let m = c.model(1);
    assert_eq!((m.id, m.owner, m.state), (1, TREASURY, LIVE));
    assert_eq!((m.baseModelHash, m.adapterHash), (B256::repeat_byte(0xba), B256::ZERO));
    assert_eq!(m.name, "openledger-base");
    assert!(m.datanets.is_empty() && m.licences.is_empty());
    assert_eq!((m.priceInPer1k, m.priceOutPer1k), (7, 11), "priced by the genesis parameters");
    assert_eq!(c.model_count(), 1);
    assert_eq!(c.live(0, 10), vec![1]);
    assert_eq!(c.models_of(TREASURY), vec![1]);
    // The typed reads inference will use.
    assert!(c.mem.is_live(ModelId(1)).unwrap());
    assert_eq!(c.mem.price(ModelId(1)).unwrap().unwrap(), runtime::models::ModelPrice { in_per_1k: 7, out_per_1k: 11 });
    assert_eq!(c.mem.live_models().unwrap(), vec![ModelId(1)]);
    assert_eq!(ModelId(1).to_string(), "m1");
    // Without a base model the registry starts empty; a base model without a hash is refused.
    let empty = Chain::new(1, None);
    assert_eq!(empty.model_count(), 0);
    assert!(empty.live(0, 10).is_empty());
    let bad = genesis(&[key(0).address()], Some(BaseModelGenesis { name: "x".into(), base_hash: B256::ZERO }));
    let e = runtime::EmptyState;
    assert!(bad.apply(&mut Overlay::new(&e)).is_err());
}

#[test]
fn register_propose_and_approve_many_through_a_proposal() {
    let (gov_key, builder, other) = (key(0), key(1), key(2));
    let mut c = Chain::new(3, Some(base()));
    datanets(&mut c, &other);
    // Three drafts, one per Datanet version that is open to training.
    let mut ids = vec![];
    for (i, dv) in [vec![(1, 3)], vec![(1, 3), (2, 1)], vec![]].into_iter().enumerate() {
        let price = if dv.iter().any(|(d, _)| *d == 2) { 0 } else { 1_000 + i as u128 };
        let r = c.models(&builder, register(registration(&format!("medical-{i}"), dv, price, 2 * price)));
        let id = registered_id(&r);
        let ev = IModels::ModelRegistered::decode_log_data(&r.logs[0].data).unwrap();
        assert_eq!(
            (ev.owner, ev.adapterHash),
            (builder.address(), primitives::content_hash(format!("medical-{i}").as_bytes()))
        );
        ids.push(id);
    }
    assert_eq!(ids, vec![2, 3, 4], "ids follow the base model m1");
    let m = c.model(3);
    assert_eq!((m.owner, m.state, m.createdAt), (builder.address(), DRAFT, c.height - 1));
    assert_eq!(
        m.datanets,
        vec![DatanetVersionRef { datanetId: 1, version: 3 }, DatanetVersionRef { datanetId: 2, version: 1 }]
    );
    assert_eq!(m.licences, vec!["CC-BY-4.0".to_string(), "CC-BY-NC-4.0".to_string()], "licences travel");
    assert_eq!(m.hyperparams, Bytes::from_static(b"rank=8 alpha=16 lr=2e-4"));
    assert_eq!(m.hyperparamsHash, primitives::content_hash(b"rank=8 alpha=16 lr=2e-4"));
    assert_eq!(m.metricsHash, primitives::content_hash(b"loss=1.25"));
    assert_eq!((m.checkpointLearningRates.clone(), m.sketchSeed, m.sketchK), (vec![200_000, 20_000], 42, 512));
    assert_eq!(c.models_of(builder.address()), ids);
    // The owner proposes each.
    for id in &ids {
        let r = c.models(&builder, IModelsCalls::propose(IModels::proposeCall { id: *id }));
        assert!(r.success);
        assert_eq!(IModels::ModelProposed::decode_log_data(&r.logs[0].data).unwrap().id, *id);
        assert_eq!(c.model(*id).state, PROPOSED);
    }
    // Only governance approves: an account is refused, the governance address is not (eth_call).
    let approve = IModelsCalls::approve(IModels::approveCall { ids: ids.clone() });
    let r = c.models(&builder, approve.clone());
    assert!(!r.success);
    assert_eq!(Unauthorized::abi_decode(&r.revert_data).unwrap().caller, builder.address());
    assert!(c.view(GOV, MODELS, approve.abi_encode()).success);
    // A real proposal: propose, vote, wait out the vote and the timelock, execute.
    let r = c.pass(&gov_key, vec![(MODELS, approve.abi_encode())]);
    assert!(r.success, "execute: {}", r.revert_data);
    let approved: Vec<u64> = r
        .logs
        .iter()
        .filter(|l| l.address == MODELS)
        .map(|l| IModels::ModelApproved::decode_log_data(&l.data).unwrap().id)
        .collect();
    assert_eq!(approved, ids);
    for id in &ids {
        assert_eq!(c.model(*id).state, LIVE);
        assert!(c.mem.is_live(ModelId(*id)).unwrap());
    }
    assert_eq!(c.live(0, 100), vec![1, 2, 3, 4]);
    assert_eq!(c.live(2, 2), vec![2, 3], "paged by id");
    assert_eq!(c.live(4, 2), vec![4]);
    assert!(c.live(5, 2).is_empty());
    // Retire: by the owner, and by governance (eth_call); retired models leave the live list.
    let r = c.models(&builder, IModelsCalls::retire(IModels::retireCall { id: 3 }));
    assert!(r.success);
    assert_eq!(IModels::ModelRetired::decode_log_data(&r.logs[0].data).unwrap().id, 3);
    assert_eq!(c.model(3).state, RETIRED);
    assert_eq!(c.live(0, 100), vec![1, 2, 4]);
    assert!(c.view(GOV, MODELS, IModelsCalls::retire(IModels::retireCall { id: 4 }).abi_encode()).success);
    assert!(matches!(
        models_error(&c.models(&builder, IModelsCalls::retire(IModels::retireCall { id: 3 }))),
        IModelsErrors::AlreadyRetired(_)
    ));
    assert!(matches!(
        models_error(&c.models(
            &builder,
            IModelsCalls::setPrice(IModels::setPriceCall { id: 3, priceInPer1k: 1, priceOutPer1k: 1 })
        )),
        IModelsErrors::AlreadyRetired(_)
    ));
    // Repricing by the owner; the base model (the treasury's) only by governance.
    let r =
        c.models(&builder, IModelsCalls::setPrice(IModels::setPriceCall { id: 2, priceInPer1k: 5, priceOutPer1k: 9 }));
    assert!(r.success);
    let ev = IModels::ModelRepriced::decode_log_data(&r.logs[0].data).unwrap();
    assert_eq!((ev.id, ev.priceInPer1k, ev.priceOutPer1k), (2, 5, 9));
    assert_eq!(c.mem.price(ModelId(2)).unwrap().unwrap(), runtime::models::ModelPrice { in_per_1k: 5, out_per_1k: 9 });
    let reprice_base = IModelsCalls::setPrice(IModels::setPriceCall { id: 1, priceInPer1k: 1, priceOutPer1k: 2 });
    assert!(matches!(models_error(&c.models(&builder, reprice_base.clone())), IModelsErrors::NotOwner(_)));
    let r = c.pass(&gov_key, vec![(MODELS, reprice_base.abi_encode())]);
    assert!(r.success);
    assert_eq!((c.model(1).priceInPer1k, c.model(1).priceOutPer1k), (1, 2));
}

#[test]
fn approve_is_all_or_nothing_and_refuses_drafts() {
    let (gov_key, builder) = (key(0), key(1));
    let mut c = Chain::new(2, Some(base()));
    let a = registered_id(&c.models(&builder, register(registration("a", vec![], 1, 1))));
    let b = registered_id(&c.models(&builder, register(registration("b", vec![], 1, 1))));
    assert!(c.models(&builder, IModelsCalls::propose(IModels::proposeCall { id: a })).success);
    // b is still a draft: the whole approve fails, a stays proposed.
    let before = c.models_state();
    let approve = IModelsCalls::approve(IModels::approveCall { ids: vec![a, b] });
    let r = c.pass(&gov_key, vec![(MODELS, approve.abi_encode())]);
    assert!(!r.success);
    let failed = IGovernance::ProposalCallFailed::abi_decode(&r.revert_data).unwrap();
    match IModelsErrors::abi_decode(&failed.reason).unwrap() {
        IModelsErrors::InvalidTransition(e) => assert_eq!((e.id, e.from, e.to), (b, DRAFT, LIVE)),
        e => panic!("{e:?}"),
    }
    assert_eq!(c.models_state(), before, "nothing approved");
    assert_eq!(c.model(a).state, PROPOSED);
    // The live base model and unknown ids are refused as well.
    let out = c.view(GOV, MODELS, IModelsCalls::approve(IModels::approveCall { ids: vec![1] }).abi_encode());
    assert!(matches!(IModelsErrors::abi_decode(&out.output).unwrap(), IModelsErrors::InvalidTransition(_)));
    let out = c.view(GOV, MODELS, IModelsCalls::approve(IModels::approveCall { ids: vec![99] }).abi_encode());
    assert!(matches!(IModelsErrors::abi_decode(&out.output).unwrap(), IModelsErrors::UnknownModel(_)));
    // Proposing twice is refused.
    assert!(matches!(
        models_error(&c.models(&builder, IModelsCalls::propose(IModels::proposeCall { id: a }))),
        IModelsErrors::InvalidTransition(_)
    ));
}

#[test]
fn refusals_change_nothing() {
    let (builder, stranger, owner) = (key(1), key(2), key(3));
    let mut c = Chain::new(4, Some(base()));
    datanets(&mut c, &owner);
    let id = registered_id(&c.models(&builder, register(registration("mine", vec![(1, 3)], 10, 20))));
    let refused = |c: &mut Chain, who: &SecretKey, call: IModelsCalls| -> IModelsErrors {
        let before = c.models_state();
        let e = models_error(&c.models(who, call));
        assert_eq!(c.models_state(), before, "a refused call changes nothing");
        e
    };
    // Not the owner.
    for call in [
        IModelsCalls::propose(IModels::proposeCall { id }),
        IModelsCalls::retire(IModels::retireCall { id }),
        IModelsCalls::setPrice(IModels::setPriceCall { id, priceInPer1k: 0, priceOutPer1k: 0 }),
    ] {
        match refused(&mut c, &stranger, call) {
            IModelsErrors::NotOwner(e) => assert_eq!(e.caller, stranger.address()),
            e => panic!("{e:?}"),
        }
    }
    // Non-commercial licence with a price, at registration and on repricing; free is fine.
    match refused(&mut c, &builder, register(registration("nc", vec![(1, 3), (2, 1)], 1, 0))) {
        IModelsErrors::NonCommercialLicence(e) => assert_eq!((e.datanetId, e.licence.as_str()), (2, "CC-BY-NC-4.0")),
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        refused(&mut c, &builder, register(registration("nc", vec![(2, 1)], 0, 1))),
        IModelsErrors::NonCommercialLicence(_)
    ));
    let free = registered_id(&c.models(&builder, register(registration("nc", vec![(2, 1)], 0, 0))));
    assert!(matches!(
        refused(
            &mut c,
            &builder,
            IModelsCalls::setPrice(IModels::setPriceCall { id: free, priceInPer1k: 0, priceOutPer1k: 3 })
        ),
        IModelsErrors::NonCommercialLicence(_)
    ));
    // Unknown Datanets and versions; versions closed by the tombstone.
    for (d, v) in [(9, 1), (1, 4), (1, 0)] {
        match refused(&mut c, &builder, register(registration("x", vec![(d, v)], 0, 0))) {
            IModelsErrors::UnknownDatanetVersion(e) => assert_eq!((e.datanetId, e.version), (d, v)),
            e => panic!("{e:?}"),
        }
    }
    for v in [1, 2] {
        match refused(&mut c, &builder, register(registration("x", vec![(1, v)], 0, 0))) {
            IModelsErrors::VersionClosed(e) => assert_eq!((e.datanetId, e.version), (1, v)),
            e => panic!("{e:?}"),
        }
    }
    // Malformed registrations.
    let mut r = registration("x", vec![(1, 3), (1, 3)], 0, 0);
    assert!(matches!(refused(&mut c, &builder, register(r.clone())), IModelsErrors::InvalidModel(_)));
    r.datanets.pop();
    r.checkpointLearningRates.pop();
    assert!(matches!(refused(&mut c, &builder, register(r.clone())), IModelsErrors::InvalidModel(_)));
    for bad in [
        ModelRegistration { name: "  ".into(), ..registration("x", vec![], 0, 0) },
        ModelRegistration { baseModelHash: B256::ZERO, ..registration("x", vec![], 0, 0) },
        ModelRegistration { hyperparams: vec![0u8; 8 * 1024 + 1].into(), ..registration("x", vec![], 0, 0) },
    ] {
        assert!(matches!(refused(&mut c, &builder, register(bad)), IModelsErrors::InvalidModel(_)));
    }
    // Unknown model ids.
    assert!(matches!(
        refused(&mut c, &builder, IModelsCalls::propose(IModels::proposeCall { id: 99 })),
        IModelsErrors::UnknownModel(_)
    ));
    assert!(!c.view(Address::ZERO, MODELS, IModels::modelCall { id: 0 }.abi_encode()).success);
    // Models take no value.
    let before = c.models_state();
    let r = c.send(&builder, MODELS, Amount::open(1), IModelsCalls::propose(IModels::proposeCall { id }).abi_encode());
    assert!(!r.success);
    assert_eq!(&r.revert_data[..], &NonPayable::SELECTOR[..]);
    assert_eq!(c.models_state(), before);
    // The draft is untouched by all of the above.
    let m = c.model(id);
    assert_eq!((m.state, m.priceInPer1k, m.priceOutPer1k), (DRAFT, 10, 20));
    assert_eq!(c.model_count(), 3);
}

/// `who`: an account's index, or `None` for the model's owner (when an account owns it).
#[derive(Clone, Debug)]
enum Op {
    Register {
        who: usize,
        price: u128,
        value: u64,
    },
    Propose {
        who: Option<usize>,
        id: u64,
    },
    Retire {
        who: Option<usize>,
        id: u64,
    },
    SetPrice {
        who: Option<usize>,
        id: u64,
        price: u128,
        value: u64,
    },
    Approve {
        who: usize,
        ids: Vec<u64>,
    },
    /// Governance's approve or retire, as an executed proposal would call them.
    GovApprove {
        ids: Vec<u64>,
    },
    GovRetire {
        id: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0usize..3;
    let maybe = proptest::option::weighted(0.3, 0usize..3);
    let id = 0u64..8;
    prop_oneof![
        3 => (who.clone(), 0u128..1_000, prop_oneof![4 => Just(0u64), 1 => 1u64..3])
            .prop_map(|(who, price, value)| Op::Register { who, price, value }),
        3 => (maybe.clone(), id.clone()).prop_map(|(who, id)| Op::Propose { who, id }),
        1 => (maybe.clone(), id.clone()).prop_map(|(who, id)| Op::Retire { who, id }),
        1 => (maybe, id.clone(), 0u128..1_000, 0u64..2)
            .prop_map(|(who, id, price, value)| Op::SetPrice { who, id, price, value }),
        1 => (who, proptest::collection::vec(id.clone(), 0..4)).prop_map(|(who, ids)| Op::Approve { who, ids }),
        3 => proptest::collection::vec(id.clone(), 1..3).prop_map(|ids| Op::GovApprove { ids }),
        1 => id.prop_map(|id| Op::GovRetire { id }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Whatever is called (value sent to non-payable functions included), the
    /// supply equation holds after every block (checked by `Chain::block`), the
    /// models module holds nothing, and the live list is exactly the live records.
    #[test]
    fn supply_holds_and_models_hold_nothing(blocks in proptest::collection::vec(proptest::collection::vec(op(), 1..8), 2..8)) {
        let ks: Vec<SecretKey> = (0..3).map(key).collect();
        let mut c = Chain::new(3, Some(base()));
        for ops in blocks {
            let owner = |c: &Chain, who: Option<usize>, id: u64| {
                who.unwrap_or_else(|| {
                    let o = c.mem.model(ModelId(id)).unwrap().map(|m| m.owner);
                    ks.iter().position(|k| Some(k.address()) == o).unwrap_or(0)
                })
            };
            let mut txs = vec![];
            let mut gov_calls = vec![];
            for o in ops {
                let (who, value, call) = match o {
                    Op::GovApprove { ids } => {
                        gov_calls.push(IModelsCalls::approve(IModels::approveCall { ids }));
                        continue;
                    }
                    Op::GovRetire { id } => {
                        gov_calls.push(IModelsCalls::retire(IModels::retireCall { id }));
                        continue;
                    }
                    Op::Register { who, price, value } => (who, value, register(registration("p", vec![], price, price))),
                    Op::Propose { who, id } => (owner(&c, who, id), 0, IModelsCalls::propose(IModels::proposeCall { id })),
                    Op::Retire { who, id } => (owner(&c, who, id), 0, IModelsCalls::retire(IModels::retireCall { id })),
                    Op::SetPrice { who, id, price, value } => {
                        let call = IModelsCalls::setPrice(IModels::setPriceCall { id, priceInPer1k: price, priceOutPer1k: price });
                        (owner(&c, who, id), value, call)
                    }
                    Op::Approve { who, ids } => (who, 0, IModelsCalls::approve(IModels::approveCall { ids })),
                };
                txs.push(c.sign(&ks[who], MODELS, Amount(value as u128), call.abi_encode()));
            }
            for r in c.block_with(txs, gov_calls) {
                if !r.success {
                    prop_assert!(r.logs.is_empty());
                }
            }
            let live: Vec<ModelId> = (1..=c.mem.model_count().unwrap())
                .map(ModelId)
                .filter(|id| c.mem.model(*id).unwrap().unwrap().state == LIVE)
                .collect();
            prop_assert_eq!(c.mem.live_models().unwrap(), live);
        }
    }
}
