//! Paying for inference through signed transactions, as a chain would apply
//! them: escrow, allowances and releases, API keys, endpoints, settlement of
//! signed receipts with the exact fee split, attribution (credits, challenge
//! window, finalization, claims), the fallback to reward-per-row accumulators,
//! refusals that change nothing, and a property test of the supply equation
//! and the module's holdings under random operations; then receipts that
//! retrieved rows (receipt version 3): their holds, records crediting the
//! retrieved Datanet versions, the forgeries refused, and a property test of
//! exactly which retrieval records are accepted.

use std::collections::BTreeMap;

use alloy_consensus::TxEip1559;
use alloy_primitives::{TxKind, U256};
use alloy_sol_types::{SolCall, SolError, SolEvent, SolInterface, SolStruct};
use keys::{SecretKey, encode_2718, sign_eip1559};
use primitives::abi::IDatanets::{self, IDatanetsCalls};
use primitives::abi::IInference::{self, IInferenceCalls, IInferenceErrors};
use primitives::abi::IModels::{self, IModelsCalls};
use primitives::abi::IStaking;
use primitives::abi::{
    ContributionAttestation, Credit, DatanetLimits, DatanetVersionRef, InferenceReceipt, ModelRegistration, NonPayable,
    check_retrieved, receipt_hash, receipt_signing_hash, retrieval_hash,
};
use primitives::abi::{IAssets, IShareToken};
use primitives::block::Receipt;
use primitives::rows::{Row, rows_root};
use primitives::system::{Module, SYSTEM_MODULES, TREASURY, VALIDATOR_REWARD_POOL};
use primitives::{Address, Amount, B256, Bytes, ONE_OPEN, SignedTransaction, content_hash, keccak256};
use proptest::prelude::*;
use runtime::assets::{SCALE, model_asset};
use runtime::bank::BankRead;
use runtime::genesis::BaseModelGenesis;
use runtime::inference::licences::MAX_DURATION_BLOCKS;
use runtime::inference::{FALLBACK, FINALIZED, InferenceRead, OPEN, POSTED};
use runtime::{BlockEnv, Genesis, Overlay};

mod common;
use common::Mem;
use common::contracts::{CALL, deployer, proxy, through};

const CHAIN: u64 = 31337;
const NOW: u64 = 1_800_000_000;
const INFERENCE: Address = Module::Inference.address();
const ATTRIBUTION: Address = Module::Attribution.address();
const STAKING: Address = Module::Staking.address();
const GOV: Address = Module::Governance.address();
const RELEASE_DELAY: u64 = 3;
const TIMEOUT: u64 = 30;
const WINDOW: u64 = 8;
const REVEAL: u64 = 12;
const VERDICT: u64 = 12;
const GRACE: u64 = 6;
const PRICE_IN: u128 = 3_000_000_007;
const PRICE_OUT: u128 = 5_000_000_011;
const E18: u128 = 1_000_000_000_000_000_000;

fn key(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i + 1; 32]).unwrap()
}

/// The consensus (ed25519) key of validator `i` (0, 1, 2).
fn validator_key(i: u8) -> keys::ConsensusKey {
    keys::ConsensusKey::dev(&format!("inference test validator {i}"))
}

/// The actors: account keys (funded at genesis) and the operator's serving key.
struct Keys {
    validator: SecretKey,
    operator: SecretKey,
    payer: SecretKey,
    builder: SecretKey,
    alice: SecretKey,
    bob: SecretKey,
    other: SecretKey,
    serving: SecretKey,
}

fn keys() -> Keys {
    Keys {
        validator: key(0),
        operator: key(1),
        payer: key(2),
        builder: key(3),
        alice: key(4),
        bob: key(5),
        other: key(6),
        serving: SecretKey::from_bytes(&[0x5e; 32]).unwrap(),
    }
}

/// Every inference key with its value, and the balances a refusal must not move.
type Snapshot = (Vec<(Vec<u8>, Vec<u8>)>, Vec<Amount>);

/// A chain in memory: genesis, then one block per `block` call, each checked
/// against the supply equation and the inference module's holdings.
struct Chain {
    mem: Mem,
    height: u64,
    nonces: BTreeMap<Address, u64>,
    accounts: Vec<Address>,
}

impl Chain {
    fn new(k: &Keys) -> Chain {
        // Accounts 0..7 act; 7 and 8 are two more validators (three of equal
        // power judge attribution challenges).
        let accounts: Vec<Address> = (0..9).map(|i| key(i).address()).collect();
        let g = Genesis {
            chain_id: CHAIN,
            timestamp: NOW,
            alloc: accounts.iter().map(|a| (*a, Amount::open(100_000))).collect(),
            params: vec![
                // Fees give the treasury nothing, so its balance moves by inference parts only.
                ("fee.treasury_bps".into(), 0),
                ("staking.min_self_bond".into(), 100 * ONE_OPEN),
                ("models.base_price_in_per_1k".into(), 7),
                ("models.base_price_out_per_1k".into(), 11),
                ("inference.release_delay_blocks".into(), RELEASE_DELAY as u128),
                ("inference.attribution_timeout_blocks".into(), TIMEOUT as u128),
                ("inference.challenge_window_blocks".into(), WINDOW as u128),
                ("attribution.reveal_blocks".into(), REVEAL as u128),
                ("attribution.verdict_blocks".into(), VERDICT as u128),
                ("inference.retired_grace_blocks".into(), GRACE as u128),
            ],
            operators: vec![
                runtime::staking::genesis::GenesisOperator {
                    operator: k.validator.address(),
                    role: 1,
                    consensus_key: validator_key(0).public(),
                    serving_key: Address::ZERO,
                    commission_bps: 0,
                    bond: Amount::open(1_000),
                },
                runtime::staking::genesis::GenesisOperator {
                    operator: key(7).address(),
                    role: 1,
                    consensus_key: validator_key(1).public(),
                    serving_key: Address::ZERO,
                    commission_bps: 0,
                    bond: Amount::open(1_000),
                },
                runtime::staking::genesis::GenesisOperator {
                    operator: key(8).address(),
                    role: 1,
                    consensus_key: validator_key(2).public(),
                    serving_key: Address::ZERO,
                    commission_bps: 0,
                    bond: Amount::open(1_000),
                },
                runtime::staking::genesis::GenesisOperator {
                    operator: k.operator.address(),
                    role: 2,
                    consensus_key: B256::ZERO,
                    serving_key: k.serving.address(),
                    commission_bps: 500,
                    bond: Amount::open(1_000),
                },
            ],
            calls: vec![],
            base_model: Some(BaseModelGenesis { name: "openledger-base".into(), base_hash: B256::repeat_byte(0xba) }),
        };
        let mut mem = Mem(BTreeMap::new());
        let e = runtime::EmptyState;
        let mut st = Overlay::new(&e);
        g.apply(&mut st).unwrap();
        mem.apply(st.into_writes());
        let c = Chain { mem, height: 0, nonces: BTreeMap::new(), accounts };
        c.check();
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
        self.sign_kind(k, TxKind::Call(to), value, input)
    }

    fn sign_kind(&mut self, k: &SecretKey, to: TxKind, value: Amount, input: Vec<u8>) -> SignedTransaction {
        let nonce = self.nonces.entry(k.address()).or_default();
        let t = TxEip1559 {
            chain_id: CHAIN,
            nonce: *nonce,
            gas_limit: 4_000_000,
            max_fee_per_gas: 100,
            max_priority_fee_per_gas: 1,
            to,
            value: U256::from(value.0),
            access_list: Default::default(),
            input: input.into(),
        };
        *nonce += 1;
        SignedTransaction::decode(&encode_2718(&sign_eip1559(k, t)), CHAIN).unwrap()
    }

    /// One block with these transactions (each must be includable), then
    /// `gov_calls` to models with the governance address as sender, as an executed
    /// proposal makes them.
    fn block_with(&mut self, txs: Vec<SignedTransaction>, gov_calls: Vec<IModelsCalls>) -> Vec<Receipt> {
        self.height += 1;
        let env = self.env(self.height);
        let (receipts, done) = self.mem.run_block(&env, &txs, gov_calls);
        assert!(done.iter().all(|ok| *ok), "a governance call failed");
        self.check();
        receipts
    }

    fn block(&mut self, txs: Vec<SignedTransaction>) -> Vec<Receipt> {
        self.block_with(txs, vec![])
    }

    /// Empty blocks until the next block is `height`.
    fn until(&mut self, height: u64) {
        while self.height + 1 < height {
            self.block(vec![]);
        }
    }

    fn send(&mut self, k: &SecretKey, to: Address, value: Amount, input: Vec<u8>) -> Receipt {
        let tx = self.sign(k, to, value, input);
        self.block(vec![tx]).pop().unwrap()
    }

    fn inf(&mut self, k: &SecretKey, c: IInferenceCalls) -> Receipt {
        self.send(k, INFERENCE, Amount::ZERO, c.abi_encode())
    }

    /// Like `inf`, but it must succeed.
    fn ok(&mut self, k: &SecretKey, c: IInferenceCalls) -> Receipt {
        let r = self.inf(k, c);
        assert!(r.success, "reverted: {:?}", IInferenceErrors::abi_decode(&r.revert_data));
        r
    }

    /// Like `inf`, but it must fail, change nothing in inference's state or
    /// balances other than the sender's gas, and carry an inference error.
    fn refused(&mut self, k: &SecretKey, c: IInferenceCalls) -> IInferenceErrors {
        let before = self.snapshot(&k.address());
        let r = self.inf(k, c);
        assert!(!r.success, "expected a revert");
        assert!(r.logs.is_empty(), "a failed call leaves no logs");
        assert!(r.gas_used > 0, "gas is charged");
        assert_eq!(self.snapshot(&k.address()), before, "a refused call changes nothing");
        IInferenceErrors::abi_decode(&r.revert_data)
            .unwrap_or_else(|_| panic!("not an inference error: {}", r.revert_data))
    }

    /// Every inference key and value, and every balance but the sender's, staking's
    /// and the reward pool's (which move by the gas fee).
    fn snapshot(&self, sender: &Address) -> Snapshot {
        let kv = self
            .mem
            .0
            .iter()
            .filter(|(k, _)| k.starts_with(b"inference/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let balances = self
            .everyone()
            .iter()
            .filter(|a| *a != sender && **a != STAKING && **a != VALIDATOR_REWARD_POOL)
            .map(|a| self.mem.balance(a).unwrap())
            .collect();
        (kv, balances)
    }

    fn everyone(&self) -> Vec<Address> {
        let mut v = self.accounts.clone();
        v.extend([TREASURY, VALIDATOR_REWARD_POOL]);
        v.extend(SYSTEM_MODULES.iter().map(|m| m.address()));
        v.extend(primitives::system::MODULE_ESCROWS);
        v
    }

    fn bal(&self, a: &Address) -> u128 {
        self.mem.balance(a).unwrap().0
    }

    /// The supply equation, and the inference balance is exactly what it reports holding.
    fn check(&self) {
        let sum: u128 = self.everyone().iter().map(|a| self.bal(a)).sum();
        let report = runtime::supply_report(&self.mem).unwrap();
        assert_eq!(report.total, Amount(sum), "supply equation at block {}", self.height);
        assert_eq!(report.inference.total(), self.mem.balance(&INFERENCE).unwrap(), "inference holdings");
        assert_eq!(report.inference, self.mem.holdings().unwrap());
        let bonds = runtime::attribution::AttributionRead::bonds(&self.mem).unwrap();
        assert_eq!(bonds, self.mem.balance(&ATTRIBUTION).unwrap(), "attribution holds exactly its bonds");
    }

    /// `eth_call` of an inference view at the head.
    fn view<C: SolCall>(&self, c: C) -> C::Return {
        self.view_at(INFERENCE, c)
    }

    /// `eth_call` of a view of the module at `to`.
    fn view_at<C: SolCall>(&self, to: Address, c: C) -> C::Return {
        let out = runtime::call(
            &self.mem,
            &self.env(self.height + 1),
            Address::ZERO,
            to,
            Amount::ZERO,
            &c.abi_encode(),
            None,
        )
        .unwrap();
        assert!(out.success, "view reverted: {:?}", IInferenceErrors::abi_decode(&out.output));
        C::abi_decode_returns(&out.output).unwrap()
    }

    fn view_error<C: SolCall>(&self, c: C) -> IInferenceErrors {
        IInferenceErrors::abi_decode(&self.view_error_at(INFERENCE, c)).unwrap()
    }

    /// The revert data of a view of the module at `to` that must revert.
    fn view_error_at<C: SolCall>(&self, to: Address, c: C) -> Bytes {
        let env = self.env(self.height + 1);
        let out = runtime::call(&self.mem, &env, Address::ZERO, to, Amount::ZERO, &c.abi_encode(), None).unwrap();
        assert!(!out.success);
        out.output
    }

    fn claimable(&self, id: u64) -> u128 {
        self.view(IInference::claimableCall { contributionId: id })
    }

    fn fee(r: &Receipt) -> u128 {
        r.gas_used as u128 * r.effective_gas_price
    }
}

/// What the world holds after `setup`.
struct World {
    c: Chain,
    k: Keys,
    /// The fine-tuned model, m2, trained on Datanet 1 version 2 and Datanet 2 version 1.
    model: u64,
    adapter: B256,
}

/// Contributions: 1 alice (Datanet 1, 3 rows, version 1), 2 bob (Datanet 1, 5 rows,
/// version 2), 3 bob (Datanet 2, 4 rows, version 1), 4 alice (Datanet 1, 2 rows,
/// version 3, later than the model's). m2 names Datanet 1 v2 (8 live rows) and
/// Datanet 2 v1 (4 live rows), is live, priced PRICE_IN / PRICE_OUT.
/// A model registration on the test base model at the test prices.
fn registration(name: &str, adapter: B256, datanets: Vec<DatanetVersionRef>) -> ModelRegistration {
    ModelRegistration {
        name: name.into(),
        baseModelHash: B256::repeat_byte(0xba),
        adapterHash: adapter,
        datanets,
        hyperparams: Bytes::from_static(b"rank=8"),
        metrics: Bytes::from_static(b"loss=1"),
        trainingLogHash: B256::repeat_byte(0x10),
        checkpointHashes: vec![],
        checkpointLearningRates: vec![],
        sketchHash: B256::ZERO,
        sketchSeed: 0,
        sketchK: 0,
        priceInPer1k: PRICE_IN,
        priceOutPer1k: PRICE_OUT,
    }
}

fn setup() -> World {
    let k = keys();
    let mut c = Chain::new(&k);
    let attester = SecretKey::from_bytes(&[0xa7; 32]).unwrap();
    for name in ["medical", "legal"] {
        create_datanet(&mut c, &k.builder, &attester, name, "CC-BY-4.0");
    }
    let contributions = [(&k.alice, 1u64, 3u32), (&k.bob, 1, 5), (&k.bob, 2, 4)];
    for (i, (who, datanet, n)) in contributions.into_iter().enumerate() {
        contribute(&mut c, &attester, &k.builder, who, datanet, n, i as u64 + 1);
    }
    let adapter = content_hash(b"medical-legal adapter");
    let reg = registration(
        "medical-legal",
        adapter,
        vec![DatanetVersionRef { datanetId: 1, version: 2 }, DatanetVersionRef { datanetId: 2, version: 1 }],
    );
    let models = Module::Models.address();
    let r = c.send(
        &k.builder,
        models,
        Amount::ZERO,
        IModelsCalls::register(IModels::registerCall { registration: reg }).abi_encode(),
    );
    assert!(r.success);
    let model = IModels::ModelRegistered::decode_log_data(&r.logs[0].data).unwrap().id;
    assert_eq!(model, 2);
    let propose = IModelsCalls::propose(IModels::proposeCall { id: model }).abi_encode();
    let tx = c.sign(&k.builder, models, Amount::ZERO, propose);
    c.block_with(vec![tx], vec![IModelsCalls::approve(IModels::approveCall { ids: vec![model] })]);
    assert!(runtime::models::ModelsRead::is_live(&c.mem, primitives::ModelId(model)).unwrap());
    // Contribution 4 arrives after the model was trained: Datanet 1 version 3.
    contribute(&mut c, &attester, &k.builder, &k.alice, 1, 2, 4);
    World { c, k, model, adapter }
}

/// `owner` creates a Datanet under `licence` that trusts `attester`.
fn create_datanet(c: &mut Chain, owner: &SecretKey, attester: &SecretKey, name: &str, licence: &str) {
    let create = IDatanetsCalls::createDatanet(IDatanets::createDatanetCall {
        name: name.into(),
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
    });
    assert!(c.send(owner, Module::Datanets.address(), Amount::ZERO, create.abi_encode()).success);
}

#[allow(clippy::too_many_arguments)]
fn contribute(
    c: &mut Chain,
    attester: &SecretKey,
    curator: &SecretKey,
    who: &SecretKey,
    datanet: u64,
    n: u32,
    id: u64,
) {
    let rows: Vec<Row> = (0..n).map(|r| Row::Text { text: format!("contribution {id} row {r}") }).collect();
    let leaves: Vec<B256> = rows.iter().map(Row::leaf).collect();
    let a = ContributionAttestation {
        datanetId: datanet,
        contributor: who.address(),
        contentHash: content_hash(&id.to_be_bytes()),
        rowsRoot: rows_root(&leaves),
        rowCount: n,
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
    let datanets = Module::Datanets.address();
    assert!(c.send(who, datanets, Amount::ZERO, submit.abi_encode()).success);
    let approve = IDatanetsCalls::approve(IDatanets::approveCall { contributionId: id });
    assert!(c.send(curator, datanets, Amount::ZERO, approve.abi_encode()).success);
}

impl World {
    fn receipt(&self, nonce: u64, input: u64, output: u64) -> InferenceReceipt {
        InferenceReceipt {
            requestHash: keccak256(format!("request {nonce}")),
            responseHash: keccak256(format!("response {nonce}")),
            modelId: self.model,
            adapterHash: self.adapter,
            inputTokens: input,
            outputTokens: output,
            priceInPer1k: PRICE_IN,
            priceOutPer1k: PRICE_OUT,
            payer: self.k.payer.address(),
            operator: self.k.operator.address(),
            nonce,
            issuedAt: self.c.height,
            retrievalHash: B256::ZERO,
        }
    }

    fn fund(&mut self, deposit: u128, allowance: u128) {
        let (payer, op) = (self.k.payer.address(), self.k.operator.address());
        let r = self.c.send(
            &self.k.payer,
            INFERENCE,
            Amount(deposit),
            IInferenceCalls::deposit(IInference::depositCall {}).abi_encode(),
        );
        assert!(r.success);
        let p = clone_key(&self.k.payer);
        self.c.ok(&p, IInferenceCalls::allow(IInference::allowCall { operator: op, amount: allowance }));
        assert_eq!(self.c.view(IInference::escrowOfCall { payer }), deposit - allowance);
    }

    fn settle_signed(&self, rs: &[InferenceReceipt], signer: &SecretKey) -> IInferenceCalls {
        let signatures = rs.iter().map(|r| sign_receipt(signer, r)).collect();
        IInferenceCalls::settle(IInference::settleCall { receipts: rs.to_vec(), signatures })
    }

    fn settle(&mut self, rs: &[InferenceReceipt]) -> Receipt {
        let serving = clone_key(&self.k.serving);
        let call = self.settle_signed(rs, &serving);
        let op = clone_key(&self.k.operator);
        self.c.ok(&op, call)
    }
}

fn clone_key(k: &SecretKey) -> SecretKey {
    SecretKey::from_bytes(&k.to_bytes()).unwrap()
}

fn sign_receipt(k: &SecretKey, r: &InferenceReceipt) -> Bytes {
    k.sign_hash(&receipt_signing_hash(r, CHAIN)).as_bytes().to_vec().into()
}

/// The rule, written out independently: ceil((in × priceIn + out × priceOut) / 1000).
fn cost(r: &InferenceReceipt) -> u128 {
    (r.inputTokens as u128 * r.priceInPer1k + r.outputTokens as u128 * r.priceOutPer1k).div_ceil(1000)
}

/// (owner, data, serving, stakers, treasury) of a cost at the default split.
fn parts(cost: u128) -> [u128; 5] {
    let f = |bps: u128| cost * bps / 10_000;
    let (o, d, s, k) = (f(3_000), f(4_000), f(1_500), f(1_000));
    [o, d, s, k, cost - o - d - s - k]
}

/// The base model's royalty out of a fine-tune's owner part at the default
/// `assets.base_royalty_bps` (10%); m2 is a fine-tune of m1, the treasury's.
fn royalty(owner_part: u128) -> u128 {
    owner_part * 1_000 / 10_000
}

fn settled(r: &Receipt) -> Vec<IInference::ReceiptSettled> {
    r.logs
        .iter()
        .filter(|l| l.address == INFERENCE)
        .filter_map(|l| IInference::ReceiptSettled::decode_log_data(&l.data).ok())
        .collect()
}

fn hold(c: &Chain, h: B256) -> primitives::abi::AttributionHold {
    c.view(IInference::holdCall { receiptHash: h })
}

#[test]
fn settle_splits_exactly_and_refuses_replays_overdrafts_and_forgeries() {
    let mut w = setup();
    let (payer, op, builder) = (w.k.payer.address(), w.k.operator.address(), w.k.builder.address());
    let allowance = 20_000_000_000u128;
    w.fund(10 * ONE_OPEN, allowance);
    let (r1, r2) = (w.receipt(1, 1_234, 567), w.receipt(2, 10, 1));
    let (c1, c2) = (cost(&r1), cost(&r2));
    assert_eq!(c1, (1_234 * PRICE_IN + 567 * PRICE_OUT).div_ceil(1000));
    assert_eq!(primitives::abi::receipt_cost(&r1), Some(c1));

    let before: Vec<u128> = [builder, op, TREASURY, STAKING, INFERENCE].iter().map(|a| w.c.bal(a)).collect();
    let r = w.settle(&[r1.clone(), r2.clone()]);
    let (p1, p2) = (parts(c1), parts(c2));
    for p in [p1, p2] {
        assert!(p.iter().all(|x| *x > 0));
    }
    assert_eq!(p1.iter().sum::<u128>(), c1, "the parts sum to the cost");
    let fee = Chain::fee(&r);
    let after: Vec<u128> = [builder, op, TREASURY, STAKING, INFERENCE].iter().map(|a| w.c.bal(a)).collect();
    let roy = royalty(p1[0]) + royalty(p2[0]);
    assert_eq!(after[0] - before[0], p1[0] + p2[0] - roy, "model owner, less the base model's royalty");
    assert_eq!(after[1] + fee - before[1], p1[2] + p2[2], "serving operator (net of its gas)");
    assert_eq!(after[2] - before[2], p1[4] + p2[4] + roy, "treasury, and the royalty of the base it owns");
    assert_eq!(after[3] - before[3], p1[3] + p2[3] + fee, "staking: stakers' part (and the block's fees)");
    assert_eq!(before[4] - after[4], c1 + c2 - p1[1] - p2[1], "inference keeps only the data parts");
    // Logs: one per receipt, and the stakers' part to pool "serving".
    let logs = settled(&r);
    assert_eq!(logs.len(), 2);
    let (h1, h2) = (receipt_hash(&r1), receipt_hash(&r2));
    assert_eq!(
        (logs[0].receiptHash, logs[0].payer, logs[0].operator, logs[0].modelId, logs[0].cost, logs[0].dataShare),
        (h1, payer, op, w.model, c1, p1[1])
    );
    assert_eq!((logs[1].receiptHash, logs[1].cost, logs[1].dataShare), (h2, c2, p2[1]));
    let dep = r.logs.iter().find_map(|l| IStaking::RewardsDeposited::decode_log_data(&l.data).ok()).unwrap();
    assert_eq!((dep.pool.as_str(), dep.amount), ("serving", U256::from(p1[3] + p2[3])));
    // Holds and allowance.
    let h = hold(&w.c, h1);
    assert_eq!((h.amount, h.modelId, h.operator, h.settledAt, h.status), (p1[1], w.model, op, w.c.height, OPEN));
    let al = w.c.view(IInference::allowanceCall { payer, operator: op });
    assert_eq!((al.remaining, al.pendingRelease, al.lastNonce), (allowance - c1 - c2, 0, 2));
    let t = w.c.mem.holdings().unwrap();
    assert_eq!((t.allowances.0, t.open_holds.0), (allowance - c1 - c2, p1[1] + p2[1]));
    // The receipt digest view matches the primitives helpers.
    let d = w.c.view(IInference::receiptDigestCall { receipt: r1.clone() });
    assert_eq!((d.receiptHash, d.signingHash), (h1, receipt_signing_hash(&r1, CHAIN)));

    // No receipt settles twice.
    let (operator, serving) = (clone_key(&w.k.operator), clone_key(&w.k.serving));
    for r in [&r1, &r2] {
        let call = w.settle_signed(std::slice::from_ref(r), &serving);
        match w.c.refused(&operator, call) {
            IInferenceErrors::NonceReused(e) => assert_eq!((e.payer, e.nonce, e.lastNonce), (payer, r.nonce, 2)),
            e => panic!("{e:?}"),
        }
    }
    // A receipt beyond the allowance reverts the whole batch, the good one included.
    let left = allowance - c1 - c2;
    let (r3, r4) = (w.receipt(3, 100, 100), w.receipt(4, 10_000, 0));
    assert!(cost(&r3) + cost(&r4) > left && cost(&r3) < left);
    let call = w.settle_signed(&[r3.clone(), r4.clone()], &serving);
    match w.c.refused(&operator, call) {
        IInferenceErrors::AllowanceExceeded(e) => {
            assert_eq!((e.payer, e.operator, e.available, e.required), (payer, op, left - cost(&r3), cost(&r4)))
        }
        e => panic!("{e:?}"),
    }
    // A signature by another key than the operator's serving key.
    let call = w.settle_signed(std::slice::from_ref(&r3), &clone_key(&w.k.other));
    assert!(matches!(w.c.refused(&operator, call), IInferenceErrors::BadSignature(e) if e.index == U256::ZERO));
    let mut bad = IInference::settleCall { receipts: vec![r3.clone()], signatures: vec![Bytes::from(vec![1u8; 64])] };
    assert!(matches!(w.c.refused(&operator, IInferenceCalls::settle(bad.clone())), IInferenceErrors::BadSignature(_)));
    bad.signatures = vec![];
    assert!(matches!(w.c.refused(&operator, IInferenceCalls::settle(bad)), IInferenceErrors::InvalidBatch(_)));
    // Prices and adapter must be the model's.
    let mut cheap = r3.clone();
    cheap.priceInPer1k -= 1;
    let call = w.settle_signed(&[cheap], &serving);
    match w.c.refused(&operator, call) {
        IInferenceErrors::PriceMismatch(e) => {
            assert_eq!((e.modelId, e.priceInPer1k, e.priceOutPer1k), (w.model, PRICE_IN, PRICE_OUT))
        }
        e => panic!("{e:?}"),
    }
    let mut other_adapter = r3.clone();
    other_adapter.adapterHash = B256::repeat_byte(9);
    let call = w.settle_signed(&[other_adapter], &serving);
    assert!(matches!(w.c.refused(&operator, call), IInferenceErrors::AdapterMismatch(_)));
    // Only the operator named in the receipt, and only a serving operator, settles.
    let call = w.settle_signed(std::slice::from_ref(&r3), &serving);
    assert!(matches!(w.c.refused(&clone_key(&w.k.payer), call), IInferenceErrors::NotServingOperator(_)));
    let mut foreign = r3.clone();
    foreign.operator = w.k.validator.address();
    let call = w.settle_signed(&[foreign], &serving);
    assert!(matches!(w.c.refused(&operator, call), IInferenceErrors::NotReceiptOperator(_)));
    // Value sent along is refused like any non-payable call.
    let call = w.settle_signed(std::slice::from_ref(&r3), &serving);
    let r = w.c.send(&operator, INFERENCE, Amount(1), call.abi_encode());
    assert!(!r.success && r.revert_data.starts_with(&NonPayable::SELECTOR));
    // The good receipt of the refused batch still settles (nonce 3 was not consumed),
    // and a gap in nonces is allowed.
    w.settle(std::slice::from_ref(&r3));
    let r9 = w.receipt(9, 1, 1);
    w.settle(&[r9]);
    assert_eq!(w.c.view(IInference::allowanceCall { payer, operator: op }).lastNonce, 9);
}

#[test]
fn the_base_model_sends_its_data_part_to_the_treasury_and_retired_models_still_settle() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let mut r = w.receipt(1, 2_000, 1_000);
    (r.modelId, r.adapterHash, r.priceInPer1k, r.priceOutPer1k) = (1, B256::ZERO, 7, 11);
    let c = cost(&r);
    assert_eq!(c, (2_000 * 7 + 1_000 * 11u128).div_ceil(1000));
    let treasury = w.c.bal(&TREASURY);
    let out = w.settle(&[r.clone()]);
    let p = parts(c);
    // The base model is owned by the treasury: it receives the owner and data parts too.
    assert_eq!(w.c.bal(&TREASURY) - treasury, p[0] + p[1] + p[4]);
    assert_eq!(settled(&out)[0].dataShare, 0);
    assert!(matches!(
        w.c.view_error(IInference::holdCall { receiptHash: receipt_hash(&r) }),
        IInferenceErrors::UnknownReceipt(_)
    ));
    // A receipt from the future is refused.
    let mut future = w.receipt(2, 10, 10);
    future.issuedAt = w.c.height + 5;
    let next = w.c.height + 1;
    match w.c.refused(&clone_key(&w.k.operator), w.settle_signed(&[future], &w.k.serving)) {
        IInferenceErrors::ReceiptOutOfTime(e) => assert_eq!(e.notAfter, next, "not after the block it settles in"),
        e => panic!("{e:?}"),
    }
    // Receipts served while m2 was live settle after it is retired, within the grace period.
    let served = w.receipt(2, 10, 10);
    let late = w.receipt(4, 10, 10);
    let builder = clone_key(&w.k.builder);
    let retire = IModelsCalls::retire(IModels::retireCall { id: w.model }).abi_encode();
    assert!(w.c.send(&builder, Module::Models.address(), Amount::ZERO, retire).success);
    let retired = w.c.height;
    let at = w.c.view_at(Module::Models.address(), IModels::retiredAtCall { id: w.model });
    assert_eq!(at, retired);
    w.settle(&[served]);
    // Not one issued after the retirement (a node that kept serving it).
    let after = w.receipt(3, 10, 10);
    match w.c.refused(&clone_key(&w.k.operator), w.settle_signed(&[after], &w.k.serving)) {
        IInferenceErrors::ReceiptOutOfTime(e) => assert_eq!(e.notAfter, retired),
        e => panic!("{e:?}"),
    }
    // Nor, after the grace period, one issued while it was live.
    w.c.until(retired + GRACE + 1);
    assert!(matches!(
        w.c.refused(&clone_key(&w.k.operator), w.settle_signed(&[late], &w.k.serving)),
        IInferenceErrors::ReceiptOutOfTime(_)
    ));
}

/// A model governance never made live is never billable: retiring a draft or a
/// proposed model does not make its receipts settle.
#[test]
fn only_a_model_that_was_live_settles_after_retirement() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let builder = clone_key(&w.k.builder);
    let models = Module::Models.address();
    for propose in [false, true] {
        let reg = registration("never approved", w.adapter, vec![DatanetVersionRef { datanetId: 1, version: 2 }]);
        let call = IModelsCalls::register(IModels::registerCall { registration: reg }).abi_encode();
        let r = w.c.send(&builder, models, Amount::ZERO, call);
        let id = IModels::ModelRegistered::decode_log_data(&r.logs[0].data).unwrap().id;
        if propose {
            let call = IModelsCalls::propose(IModels::proposeCall { id }).abi_encode();
            assert!(w.c.send(&builder, models, Amount::ZERO, call).success);
        }
        let call = IModelsCalls::retire(IModels::retireCall { id }).abi_encode();
        assert!(w.c.send(&builder, models, Amount::ZERO, call).success);
        assert_eq!(w.c.view_at(models, IModels::retiredAtCall { id }), 0, "never retired while live");
        let mut r = w.receipt(w.c.height + 1, 10, 10);
        r.modelId = id;
        match w.c.refused(&clone_key(&w.k.operator), w.settle_signed(&[r], &w.k.serving)) {
            IInferenceErrors::ModelNotServable(e) => assert_eq!((e.modelId, e.state), (id, runtime::models::RETIRED)),
            e => panic!("{e:?}"),
        }
    }
}

#[test]
fn credits_are_pending_then_claimable_exactly() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let r1 = w.receipt(1, 50_000, 20_000);
    w.settle(std::slice::from_ref(&r1));
    let h = receipt_hash(&r1);
    let amount = hold(&w.c, h).amount;
    assert_eq!(amount, parts(cost(&r1))[1]);
    let (operator, alice, bob, other) =
        (clone_key(&w.k.operator), clone_key(&w.k.alice), clone_key(&w.k.bob), clone_key(&w.k.other));
    let post = |credits: Vec<(u64, u32)>| {
        IInferenceCalls::postAttribution(IInference::postAttributionCall {
            receiptHash: h,
            recordHash: B256::repeat_byte(0xcc),
            credits: credits.into_iter().map(|(c, w)| Credit { contributionId: c, weightPpm: w }).collect(),
        })
    };
    // Refused records.
    let bad = |e: IInferenceErrors| matches!(e, IInferenceErrors::BadCredits(_));
    assert!(bad(w.c.refused(&operator, post(vec![(1, 250_000), (2, 349_999), (3, 400_000)]))), "sum ≠ 1e6");
    assert!(bad(w.c.refused(&operator, post(vec![(1, 500_000), (4, 500_000)]))), "4 is in a later version");
    assert!(bad(w.c.refused(&operator, post(vec![(1, 500_000), (99, 500_000)]))), "unknown contribution");
    assert!(bad(w.c.refused(&operator, post(vec![(1, 500_000), (1, 500_000)]))), "credited twice");
    assert!(bad(w.c.refused(&operator, post(vec![(1, 1_000_000), (2, 0)]))), "zero weight");
    let many: Vec<(u64, u32)> = (0..33).map(|i| (i + 1, if i == 0 { 1_000_000 - 32 } else { 1 })).collect();
    match w.c.refused(&operator, post(many)) {
        IInferenceErrors::BadCredits(e) => assert_eq!(e.reason, "at most 32 credits"),
        e => panic!("{e:?}"),
    }
    assert!(matches!(w.c.refused(&other, post(vec![(1, 1_000_000)])), IInferenceErrors::NotSettlingOperator(_)));
    let unknown = IInferenceCalls::postAttribution(IInference::postAttributionCall {
        receiptHash: B256::repeat_byte(1),
        recordHash: B256::ZERO,
        credits: vec![],
    });
    assert!(matches!(w.c.refused(&operator, unknown), IInferenceErrors::UnknownReceipt(_)));

    // A good record: pending, not claimable.
    let weights = [(1u64, 250_000u32), (2, 350_000), (3, 400_000)];
    let r = w.c.ok(&operator, post(weights.to_vec()));
    let posted = IInference::AttributionPosted::decode_log_data(&r.logs[0].data).unwrap();
    assert_eq!((posted.receiptHash, posted.recordHash, posted.credits), (h, B256::repeat_byte(0xcc), 3));
    let posted_at = w.c.height;
    let expect: Vec<u128> = weights.iter().map(|(_, wt)| amount * *wt as u128 / 1_000_000).collect();
    let pc = w.c.view(IInference::pendingCreditsCall { receiptHash: h });
    assert_eq!((pc.contributionIds, pc.amounts.clone()), (vec![1, 2, 3], expect.clone()));
    assert_eq!((hold(&w.c, h).status, hold(&w.c, h).postedAt), (POSTED, posted_at));
    assert_eq!(w.c.claimable(1), 0, "pending credits are not claimable");
    assert!(matches!(w.c.refused(&operator, post(weights.to_vec())), IInferenceErrors::HoldClosed(_)));
    assert!(matches!(
        w.c.refused(&other, IInferenceCalls::expireAttribution(IInference::expireAttributionCall { receiptHash: h })),
        IInferenceErrors::HoldClosed(_)
    ));
    // Finalize only after the challenge window.
    let fin = IInferenceCalls::finalizeAttribution(IInference::finalizeAttributionCall { receiptHash: h });
    match w.c.refused(&other, fin.clone()) {
        IInferenceErrors::ChallengeWindowOpen(e) => assert_eq!(e.until, posted_at + WINDOW),
        e => panic!("{e:?}"),
    }
    w.c.until(posted_at + WINDOW);
    let treasury = w.c.bal(&TREASURY);
    let r = w.c.ok(&other, fin.clone());
    let credited: Vec<(u64, u128)> = r
        .logs
        .iter()
        .filter_map(|l| IInference::Credited::decode_log_data(&l.data).ok())
        .map(|e| (e.contributionId, e.amount))
        .collect();
    assert_eq!(credited, vec![(1, expect[0]), (2, expect[1]), (3, expect[2])]);
    let dust = amount - expect.iter().sum::<u128>();
    assert_eq!(w.c.bal(&TREASURY) - treasury, dust, "rounding dust to the treasury");
    assert_eq!(hold(&w.c, h).status, FINALIZED);
    assert!(matches!(w.c.refused(&other, fin), IInferenceErrors::HoldClosed(_)));
    for (i, id) in [1u64, 2, 3].into_iter().enumerate() {
        assert_eq!(w.c.claimable(id), expect[i]);
        let a = w.c.view(IInference::accruedCall { contributionId: id });
        assert_eq!((a.unclaimed, a.total), (expect[i], expect[i]));
    }
    assert_eq!(w.c.claimable(1) + w.c.claimable(2) + w.c.claimable(3) + dust, amount);
    // Claims: only the contributor.
    let claim = |id: u64| IInferenceCalls::claim(IInference::claimCall { contributionId: id });
    assert!(matches!(w.c.refused(&bob, claim(1)), IInferenceErrors::NotContributor(_)));
    let before = w.c.bal(&alice.address());
    let r = w.c.ok(&alice, claim(1));
    assert_eq!(w.c.bal(&alice.address()) + Chain::fee(&r) - before, expect[0]);
    let ev = IInference::Claimed::decode_log_data(&r.logs[0].data).unwrap();
    assert_eq!((ev.contributionId, ev.contributor, ev.amount), (1, alice.address(), expect[0]));
    assert_eq!(w.c.claimable(1), 0);
    assert_eq!(w.c.view(IInference::accruedCall { contributionId: 1 }).total, expect[0]);
    assert!(matches!(w.c.refused(&alice, claim(1)), IInferenceErrors::NothingToClaim(_)));
    assert!(matches!(w.c.refused(&alice, claim(4)), IInferenceErrors::NothingToClaim(_)));
    assert!(matches!(w.c.refused(&alice, claim(77)), IInferenceErrors::UnknownContribution(_)));
    w.c.ok(&bob, claim(2));
    w.c.ok(&bob, claim(3));
    assert_eq!(w.c.mem.holdings().unwrap().accrued_credits, Amount::ZERO);
}

#[test]
fn fallback_pays_versions_by_rows_and_contributions_by_rows() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let r1 = w.receipt(1, 77_777, 33_333);
    w.settle(std::slice::from_ref(&r1));
    let settled_at = w.c.height;
    let h = receipt_hash(&r1);
    let amount = hold(&w.c, h).amount;
    let (operator, other, alice, bob) =
        (clone_key(&w.k.operator), clone_key(&w.k.other), clone_key(&w.k.alice), clone_key(&w.k.bob));
    let expire = IInferenceCalls::expireAttribution(IInference::expireAttributionCall { receiptHash: h });
    match w.c.refused(&other, expire.clone()) {
        IInferenceErrors::NotTimedOut(e) => assert_eq!(e.deadline, settled_at + TIMEOUT),
        e => panic!("{e:?}"),
    }
    w.c.until(settled_at + TIMEOUT);
    let late = IInferenceCalls::postAttribution(IInference::postAttributionCall {
        receiptHash: h,
        recordHash: B256::ZERO,
        credits: vec![Credit { contributionId: 1, weightPpm: 1_000_000 }],
    });
    assert!(matches!(w.c.refused(&operator, late), IInferenceErrors::AttributionTimedOut(_)));
    let treasury = w.c.bal(&TREASURY);
    let r = w.c.ok(&other, expire.clone());
    // Datanet 1 v2 has 8 live rows, Datanet 2 v1 has 4: the hold splits 8 : 4.
    let part1 = amount * 8 / 12;
    let part2 = amount * 4 / 12;
    let (pr1, pr2) = (part1 * E18 / 8, part2 * E18 / 4);
    let (cr1, cr2) = ((pr1 * 8).div_ceil(E18), (pr2 * 4).div_ceil(E18));
    let paid: Vec<(u64, u64, u128)> = r
        .logs
        .iter()
        .filter_map(|l| IInference::FallbackPaid::decode_log_data(&l.data).ok())
        .map(|e| (e.datanetId, e.version, e.amount))
        .collect();
    assert_eq!(paid, vec![(1, 2, cr1), (2, 1, cr2)]);
    assert_eq!(w.c.bal(&TREASURY) - treasury, amount - cr1 - cr2, "rounding remainder to the treasury");
    assert_eq!(hold(&w.c, h).status, FALLBACK);
    assert!(matches!(w.c.refused(&other, expire), IInferenceErrors::HoldClosed(_)));
    assert_eq!(w.c.view(IInference::versionFallbackCall { datanetId: 1, version: 2 }), cr1);
    // Contributions claim pro rata to their rows; the one approved after the model's version gets nothing.
    let want = [pr1 * 3 / E18, pr1 * 5 / E18, pr2 * 4 / E18, 0];
    for (i, id) in [1u64, 2, 3, 4].into_iter().enumerate() {
        assert_eq!(w.c.claimable(id), want[i], "contribution {id}");
    }
    assert!(want[0] > 0 && want[1] > want[0]);
    assert!((want[0] * 5).abs_diff(want[1] * 3) <= 5, "shares follow row counts (3 : 5)");
    // An empty record selects the fallback at once; a second deposit adds only its share.
    let r2 = w.receipt(2, 12_345, 6_789);
    w.settle(std::slice::from_ref(&r2));
    let h2 = receipt_hash(&r2);
    let amount2 = hold(&w.c, h2).amount;
    let empty = IInferenceCalls::postAttribution(IInference::postAttributionCall {
        receiptHash: h2,
        recordHash: B256::repeat_byte(0xee),
        credits: vec![],
    });
    w.c.ok(&operator, empty);
    assert_eq!((hold(&w.c, h2).status, hold(&w.c, h2).recordHash), (FALLBACK, B256::repeat_byte(0xee)));
    let pr1b = (amount2 * 8 / 12) * E18 / 8;
    let pr2b = (amount2 * 4 / 12) * E18 / 4;
    // Alice claims in between: her index moves to what she was paid.
    let before = w.c.bal(&alice.address());
    let r = w.c.ok(&alice, IInferenceCalls::claim(IInference::claimCall { contributionId: 1 }));
    let got1 = (pr1 + pr1b) * 3 / E18;
    assert_eq!(w.c.bal(&alice.address()) + Chain::fee(&r) - before, got1);
    assert_eq!(w.c.claimable(1), 0);
    assert_eq!(w.c.claimable(2), (pr1 + pr1b) * 5 / E18);
    assert_eq!(w.c.claimable(3), (pr2 + pr2b) * 4 / E18);
    assert_eq!(w.c.claimable(4), 0);
    w.c.ok(&bob, IInferenceCalls::claim(IInference::claimCall { contributionId: 2 }));
    w.c.ok(&bob, IInferenceCalls::claim(IInference::claimCall { contributionId: 3 }));
    assert!(matches!(
        w.c.refused(&alice, IInferenceCalls::claim(IInference::claimCall { contributionId: 4 })),
        IInferenceErrors::NothingToClaim(_)
    ));
    // What stays in the pool is rounding only (below one base unit per deposit and contribution).
    assert!(w.c.mem.holdings().unwrap().fallback_pool.0 < 4 + 3);
}

#[test]
fn released_allowance_stays_spendable_until_the_delay_has_passed() {
    let mut w = setup();
    let (payer_k, operator) = (clone_key(&w.k.payer), clone_key(&w.k.operator));
    let (payer, op) = (payer_k.address(), operator.address());
    let r1 = w.receipt(1, 1_000, 1_000);
    let c1 = cost(&r1);
    let allowance = 3 * c1 / 2;
    w.fund(10 * c1, allowance);
    let release = |amount: u128| IInferenceCalls::release(IInference::releaseCall { operator: op, amount });
    let complete = IInferenceCalls::completeRelease(IInference::completeReleaseCall { operator: op });
    assert!(matches!(w.c.refused(&payer_k, complete.clone()), IInferenceErrors::NothingToRelease(_)));
    assert!(matches!(w.c.refused(&payer_k, release(allowance + 1)), IInferenceErrors::InsufficientEscrow(_)));
    assert!(matches!(w.c.refused(&payer_k, release(0)), IInferenceErrors::ZeroAmount(_)));
    // Release all but c1 / 2: the operator can still spend it during the delay.
    let released = allowance - c1 / 2;
    let r = w.c.ok(&payer_k, release(released));
    let asked_at = w.c.height;
    let ev = IInference::ReleaseRequested::decode_log_data(&r.logs[0].data).unwrap();
    assert_eq!((ev.amount, ev.releaseAt), (released, asked_at + RELEASE_DELAY));
    let al = w.c.view(IInference::allowanceCall { payer, operator: op });
    assert_eq!((al.remaining, al.pendingRelease, al.releaseAt), (c1 / 2, released, asked_at + RELEASE_DELAY));
    match w.c.refused(&payer_k, complete.clone()) {
        IInferenceErrors::ReleaseNotReady(e) => assert_eq!(e.releaseAt, asked_at + RELEASE_DELAY),
        e => panic!("{e:?}"),
    }
    // Settlement during the delay takes the allowance first, then the pending release.
    w.settle(&[r1]);
    let al = w.c.view(IInference::allowanceCall { payer, operator: op });
    assert_eq!((al.remaining, al.pendingRelease), (0, allowance - c1));
    let t = w.c.mem.holdings().unwrap();
    assert_eq!((t.allowances.0, t.pending_releases.0), (0, allowance - c1));
    w.c.until(asked_at + RELEASE_DELAY);
    let escrow = w.c.view(IInference::escrowOfCall { payer });
    let r = w.c.ok(&payer_k, complete.clone());
    let ev = IInference::ReleaseCompleted::decode_log_data(&r.logs[0].data).unwrap();
    assert_eq!(ev.amount, allowance - c1);
    assert_eq!(w.c.view(IInference::escrowOfCall { payer }), escrow + allowance - c1);
    let al = w.c.view(IInference::allowanceCall { payer, operator: op });
    assert_eq!((al.remaining, al.pendingRelease, al.releaseAt, al.lastNonce), (0, 0, 0, 1));
    // Nothing is left to spend: the next receipt exceeds the allowance.
    let serving = clone_key(&w.k.serving);
    let call = w.settle_signed(&[w.receipt(2, 1, 0)], &serving);
    assert!(matches!(w.c.refused(&operator, call), IInferenceErrors::AllowanceExceeded(_)));
    // Withdraw the free escrow.
    let escrow = w.c.view(IInference::escrowOfCall { payer });
    let too_much = IInferenceCalls::withdraw(IInference::withdrawCall { amount: escrow + 1 });
    assert!(matches!(w.c.refused(&payer_k, too_much), IInferenceErrors::InsufficientEscrow(_)));
    let before = w.c.bal(&payer);
    let r = w.c.ok(&payer_k, IInferenceCalls::withdraw(IInference::withdrawCall { amount: escrow }));
    assert_eq!(w.c.bal(&payer) + Chain::fee(&r) - before, escrow);
    // Only the settled receipt's data part is left, held for attribution.
    let held = parts(c1)[1];
    let t = w.c.mem.holdings().unwrap();
    assert_eq!(t, runtime::inference::InferenceHoldings { open_holds: Amount(held), ..Default::default() });
    assert_eq!(w.c.bal(&INFERENCE), held);
}

#[test]
fn escrow_and_allowance_refusals() {
    let mut w = setup();
    let (payer, other) = (clone_key(&w.k.payer), clone_key(&w.k.other));
    let r =
        w.c.send(&payer, INFERENCE, Amount::ZERO, IInferenceCalls::deposit(IInference::depositCall {}).abi_encode());
    assert!(matches!(IInferenceErrors::abi_decode(&r.revert_data).unwrap(), IInferenceErrors::ZeroAmount(_)));
    w.fund(1_000, 400);
    // Allowances only for bonded serving operators (not a validator, not anyone).
    for not_serving in [w.k.validator.address(), other.address()] {
        let allow = IInferenceCalls::allow(IInference::allowCall { operator: not_serving, amount: 1 });
        assert!(matches!(w.c.refused(&payer, allow), IInferenceErrors::NotServingOperator(_)));
    }
    let allow = IInferenceCalls::allow(IInference::allowCall { operator: w.k.operator.address(), amount: 601 });
    match w.c.refused(&payer, allow) {
        IInferenceErrors::InsufficientEscrow(e) => assert_eq!((e.available, e.required), (600, 601)),
        e => panic!("{e:?}"),
    }
    // A plain transfer to the module is refused (every call names a function).
    let r = w.c.send(&payer, INFERENCE, Amount(5), vec![]);
    assert!(!r.success);
}

#[test]
fn api_keys_bind_once_and_revoke_by_their_owner() {
    let mut w = setup();
    let (payer, other) = (clone_key(&w.k.payer), clone_key(&w.k.other));
    // The hash the HTTP server looks up: blake3 of the key's UTF-8 bytes (httpapi::auth::api_key_hash).
    let h = content_hash(b"sk-live-123");
    let bind = |h: B256| IInferenceCalls::bindApiKey(IInference::bindApiKeyCall { keyHash: h });
    let revoke = |h: B256| IInferenceCalls::revokeApiKey(IInference::revokeApiKeyCall { keyHash: h });
    assert_eq!(w.c.view(IInference::apiKeyOwnerCall { keyHash: h }), Address::ZERO);
    let r = w.c.ok(&payer, bind(h));
    let ev = IInference::ApiKeyBound::decode_log_data(&r.logs[0].data).unwrap();
    assert_eq!((ev.keyHash, ev.owner), (h, payer.address()));
    assert_eq!(w.c.view(IInference::apiKeyOwnerCall { keyHash: h }), payer.address());
    assert_eq!(w.c.mem.api_key_owner(&h).unwrap(), Some(payer.address()));
    match w.c.refused(&other, bind(h)) {
        IInferenceErrors::KeyTaken(e) => assert_eq!((e.keyHash, e.owner), (h, payer.address())),
        e => panic!("{e:?}"),
    }
    assert!(matches!(w.c.refused(&payer, bind(h)), IInferenceErrors::KeyTaken(_)));
    assert!(matches!(w.c.refused(&payer, bind(B256::ZERO)), IInferenceErrors::BadKeyHash(_)));
    assert!(matches!(w.c.refused(&other, revoke(h)), IInferenceErrors::NotKeyOwner(_)));
    assert!(matches!(w.c.refused(&payer, revoke(content_hash(b"never bound"))), IInferenceErrors::NotKeyOwner(_)));
    w.c.ok(&payer, revoke(h));
    assert_eq!(w.c.view(IInference::apiKeyOwnerCall { keyHash: h }), Address::ZERO);
    // A revoked hash is free again.
    w.c.ok(&other, bind(h));
    assert_eq!(w.c.view(IInference::apiKeyOwnerCall { keyHash: h }), other.address());
}

#[test]
fn serving_operators_register_endpoints() {
    let mut w = setup();
    let (operator, payer) = (clone_key(&w.k.operator), clone_key(&w.k.payer));
    let reg = |url: &str, ids: Vec<u64>| {
        IInferenceCalls::registerEndpoint(IInference::registerEndpointCall { url: url.into(), modelIds: ids })
    };
    assert!(matches!(w.c.refused(&payer, reg("https://a.example", vec![1])), IInferenceErrors::NotServingOperator(_)));
    assert!(matches!(
        w.c.refused(&operator, reg("https://a.example", vec![1, 9])),
        IInferenceErrors::InvalidEndpoint(_)
    ));
    assert!(matches!(
        w.c.refused(&operator, reg("https://a.example", vec![1, 1])),
        IInferenceErrors::InvalidEndpoint(_)
    ));
    assert!(matches!(w.c.refused(&operator, reg("https://a.example", vec![])), IInferenceErrors::InvalidEndpoint(_)));
    assert!(matches!(w.c.refused(&operator, reg("ftp://a.example", vec![1])), IInferenceErrors::InvalidEndpoint(_)));
    w.c.ok(&operator, reg("https://a.example/v1", vec![1, 2]));
    let e = w.c.view(IInference::endpointCall { operator: operator.address() });
    assert_eq!(
        (e.operator, e.url.as_str(), e.modelIds, e.updatedAt),
        (operator.address(), "https://a.example/v1", vec![1, 2], w.c.height)
    );
    w.c.ok(&operator, reg("https://b.example/v1", vec![2]));
    let all = w.c.view(IInference::endpointsCall {});
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].url.as_str(), all[0].modelIds.clone()), ("https://b.example/v1", vec![2]));
    w.c.ok(&operator, IInferenceCalls::removeEndpoint(IInference::removeEndpointCall {}));
    assert!(w.c.view(IInference::endpointsCall {}).is_empty());
    assert!(matches!(
        w.c.refused(&operator, IInferenceCalls::removeEndpoint(IInference::removeEndpointCall {})),
        IInferenceErrors::UnknownEndpoint(_)
    ));
}

#[test]
fn fee_split_parameters_that_overflow_fall_back_to_the_defaults() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    // Governance raises the owner share without lowering another: 9,000 + 4,000 + ... > 10,000.
    let env = w.c.env(w.c.height + 1);
    let writes = {
        let mut st = Overlay::new(&w.c.mem);
        let mut ctx = runtime::CallCtx { env: &env, sender: GOV, value: Amount::ZERO, logs: vec![], calls: vec![] };
        let set = primitives::abi::IParams::IParamsCalls::set(primitives::abi::IParams::setCall {
            name: "inference.split_owner_bps".into(),
            value: U256::from(9_000),
        });
        runtime::params::execute(&mut st, &mut ctx, set).unwrap();
        st.into_writes()
    };
    w.c.mem.apply(writes);
    let r1 = w.receipt(1, 1_000, 1_000);
    let builder = w.c.bal(&w.k.builder.address());
    let out = w.settle(std::slice::from_ref(&r1));
    let p = parts(cost(&r1));
    assert_eq!(w.c.bal(&w.k.builder.address()) - builder, p[0] - royalty(p[0]), "the default owner share");
    assert_eq!(settled(&out)[0].dataShare, p[1]);
}

#[test]
fn a_won_challenge_can_replace_pending_credits() {
    use runtime::inference::InferenceWrite;
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let r1 = w.receipt(1, 4_000, 4_000);
    w.settle(std::slice::from_ref(&r1));
    let h = receipt_hash(&r1);
    let amount = hold(&w.c, h).amount;
    let operator = clone_key(&w.k.operator);
    w.c.ok(
        &operator,
        IInferenceCalls::postAttribution(IInference::postAttributionCall {
            receiptHash: h,
            recordHash: B256::repeat_byte(1),
            credits: vec![Credit { contributionId: 1, weightPpm: 1_000_000 }],
        }),
    );
    // The hook the attribution module's challenges call.
    let env = w.c.env(w.c.height + 1);
    let writes = {
        let mut st = Overlay::new(&w.c.mem);
        let mut ctx = runtime::CallCtx {
            env: &env,
            sender: Module::Attribution.address(),
            value: Amount::ZERO,
            logs: vec![],
            calls: vec![],
        };
        let bad = [Credit { contributionId: 4, weightPpm: 1_000_000 }];
        assert!(st.replace_pending(&mut ctx, &h, B256::repeat_byte(2), &bad).is_err());
        let good = [Credit { contributionId: 2, weightPpm: 600_000 }, Credit { contributionId: 3, weightPpm: 400_000 }];
        st.replace_pending(&mut ctx, &h, B256::repeat_byte(2), &good).unwrap();
        st.into_writes()
    };
    w.c.mem.apply(writes);
    w.c.check();
    let pc = w.c.view(IInference::pendingCreditsCall { receiptHash: h });
    assert_eq!(pc.contributionIds, vec![2, 3]);
    assert_eq!(pc.amounts, vec![amount * 6 / 10, amount * 4 / 10]);
    assert_eq!(hold(&w.c, h).recordHash, B256::repeat_byte(2));
}

// ---------------------------------------------------------------------------
// Challenges of attribution records (the attribution module).

use primitives::abi::IAttribution::{self, IAttributionCalls, IAttributionErrors};

impl Chain {
    fn att(&mut self, k: &SecretKey, value: Amount, c: IAttributionCalls) -> Receipt {
        self.send(k, ATTRIBUTION, value, c.abi_encode())
    }

    fn att_ok(&mut self, k: &SecretKey, value: Amount, c: IAttributionCalls) -> Receipt {
        let r = self.att(k, value, c);
        assert!(r.success, "reverted: {:?}", IAttributionErrors::abi_decode(&r.revert_data));
        r
    }

    /// It must fail, leave no logs and change no attribution or inference state.
    fn att_refused(&mut self, k: &SecretKey, value: Amount, c: IAttributionCalls) -> IAttributionErrors {
        let state = |m: &Mem| -> Vec<(Vec<u8>, Vec<u8>)> {
            m.0.iter()
                .filter(|(k, _)| k.starts_with(b"attribution/") || k.starts_with(b"inference/"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let before = state(&self.mem);
        let r = self.att(k, value, c);
        assert!(!r.success, "expected a revert");
        assert!(r.logs.is_empty());
        assert_eq!(state(&self.mem), before, "a refused call changes nothing");
        IAttributionErrors::abi_decode(&r.revert_data)
            .unwrap_or_else(|_| panic!("not an attribution error: {}", r.revert_data))
    }

    fn challenge_of(&self, h: B256) -> primitives::abi::AttributionChallenge {
        let out = runtime::call(
            &self.mem,
            &self.env(self.height + 1),
            Address::ZERO,
            ATTRIBUTION,
            Amount::ZERO,
            &IAttribution::challengeOfCall { receiptHash: h }.abi_encode(),
            None,
        )
        .unwrap();
        assert!(out.success);
        IAttribution::challengeOfCall::abi_decode_returns(&out.output).unwrap()
    }

    fn self_bond(&self, op: &Address) -> U256 {
        runtime::staking::StakingRead::operator(&self.mem, op).unwrap().unwrap().selfBond
    }
}

const BOND: u128 = 10 * ONE_OPEN;
const RECORD: &[u8] = b"{\"credits\":[[1,1000000]],\"version\":1}";

/// A settled receipt whose record (`RECORD`, hash = its blake3) credits contribution 1 alone; returns it.
fn posted(w: &mut World, nonce: u64) -> B256 {
    let r = w.receipt(nonce, 40_000, 40_000);
    w.settle(std::slice::from_ref(&r));
    let h = receipt_hash(&r);
    let op = clone_key(&w.k.operator);
    w.c.ok(
        &op,
        IInferenceCalls::postAttribution(IInference::postAttributionCall {
            receiptHash: h,
            recordHash: content_hash(RECORD),
            credits: vec![Credit { contributionId: 1, weightPpm: 1_000_000 }],
        }),
    );
    h
}

fn challenge(h: B256) -> IAttributionCalls {
    IAttributionCalls::challenge(IAttribution::challengeCall {
        receiptHash: h,
        challengerRecordHash: B256::repeat_byte(9),
    })
}

fn reveal(h: B256, record: &[u8]) -> IAttributionCalls {
    IAttributionCalls::reveal(IAttribution::revealCall {
        receiptHash: h,
        record: Bytes::copy_from_slice(record),
        prompt: Bytes::from(vec![1, 0, 0, 0, 2, 0, 0, 0]),
    })
}

/// `submitVerdict` signed by validators `who` (by index) on chain `CHAIN`.
fn verdict(c: &Chain, h: B256, correct: bool, who: &[u8]) -> IAttributionCalls {
    let opened = c.challenge_of(h).openedAt;
    let d = primitives::abi::verdict_digest(CHAIN, h, opened, correct);
    IAttributionCalls::submitVerdict(IAttribution::submitVerdictCall {
        receiptHash: h,
        recordCorrect: correct,
        consensusKeys: who.iter().map(|i| validator_key(*i).public()).collect(),
        signatures: who.iter().map(|i| Bytes::from(validator_key(*i).sign(d.as_slice()).to_vec())).collect(),
    })
}

fn resolved(r: &Receipt) -> IAttribution::ChallengeResolved {
    r.logs.iter().find_map(|l| IAttribution::ChallengeResolved::decode_log_data(&l.data).ok()).expect("resolved")
}

#[test]
fn a_wrong_record_is_slashed_through_staking_and_its_challenger_rewarded() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let h = posted(&mut w, 1);
    let amount = hold(&w.c, h).amount;
    let (challenger, operator, alice) = (clone_key(&w.k.other), clone_key(&w.k.operator), clone_key(&w.k.alice));
    // Refusals: too small a bond, an unknown receipt.
    match w.c.att_refused(&challenger, Amount(BOND - 1), challenge(h)) {
        IAttributionErrors::BondTooSmall(e) => assert_eq!(e.required, U256::from(BOND)),
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        w.c.att_refused(&challenger, Amount(BOND), challenge(B256::repeat_byte(3))),
        IAttributionErrors::UnknownReceipt(_)
    ));
    let before = w.c.bal(&challenger.address());
    let r = w.c.att_ok(&challenger, Amount(BOND), challenge(h));
    let mut fees = Chain::fee(&r);
    let ch = w.c.challenge_of(h);
    assert_eq!(
        (ch.status, ch.bond, ch.operator, ch.totalPower),
        (1, BOND, operator.address(), U256::from(3_000 * ONE_OPEN))
    );
    assert!(matches!(w.c.att_refused(&alice, Amount(BOND), challenge(h)), IAttributionErrors::ChallengeExists(_)));
    // Credits wait for the verdict, even after the window.
    w.c.until(hold(&w.c, h).postedAt + WINDOW + 1);
    let fin = IInferenceCalls::finalizeAttribution(IInference::finalizeAttributionCall { receiptHash: h });
    assert!(matches!(w.c.refused(&alice, fin.clone()), IInferenceErrors::UnderChallenge(_)));
    // Only the operator reveals, only the record it posted; no verdict before the reveal.
    assert!(matches!(
        w.c.att_refused(&alice, Amount::ZERO, reveal(h, RECORD)),
        IAttributionErrors::NotChallengedOperator(_)
    ));
    assert!(matches!(
        w.c.att_refused(&operator, Amount::ZERO, reveal(h, b"{}")),
        IAttributionErrors::RevealMismatch(_)
    ));
    w.c.att_ok(&operator, Amount::ZERO, reveal(h, RECORD));
    assert_eq!(w.c.challenge_of(h).status, 2);
    // Signatures: by the snapshot's validators only, each once, over the right digest.
    let bad_key = {
        let mut v = verdict(&w.c, h, false, &[0]);
        if let IAttributionCalls::submitVerdict(c) = &mut v {
            c.consensusKeys[0] = keys::ConsensusKey::dev("not a validator").public();
        }
        v
    };
    assert!(matches!(w.c.att_refused(&alice, Amount::ZERO, bad_key), IAttributionErrors::BadVerdictSignature(_)));
    let forged = {
        let mut v = verdict(&w.c, h, true, &[0]);
        if let (IAttributionCalls::submitVerdict(c), IAttributionCalls::submitVerdict(f)) =
            (&mut v, verdict(&w.c, h, false, &[0]))
        {
            c.recordCorrect = false; // a signature of "correct" presented as "wrong"
            assert_ne!(c.signatures, f.signatures);
        }
        v
    };
    assert!(matches!(w.c.att_refused(&alice, Amount::ZERO, forged), IAttributionErrors::BadVerdictSignature(_)));
    // Two of three (exactly 2/3) do not decide; the third does.
    w.c.att_ok(&alice, Amount::ZERO, verdict(&w.c, h, false, &[0, 1]));
    assert_eq!(w.c.challenge_of(h).status, 2, "2/3 is not more than 2/3");
    assert!(matches!(
        w.c.att_refused(&alice, Amount::ZERO, verdict(&w.c, h, false, &[1])),
        IAttributionErrors::BadVerdictSignature(_)
    ));
    let bond_before = w.c.self_bond(&operator.address());
    let treasury = w.c.bal(&TREASURY);
    let r = w.c.att_ok(&challenger, Amount::ZERO, verdict(&w.c, h, false, &[2]));
    fees += Chain::fee(&r);
    let ev = resolved(&r);
    assert_eq!((ev.status, ev.bondReturned), (3, BOND));
    let slashed = bond_before - w.c.self_bond(&operator.address());
    assert_eq!(slashed, bond_before / U256::from(100), "1% of the operator's stake");
    assert_eq!(ev.slashed, slashed);
    let slashed = slashed.to::<u128>();
    let reporter = slashed / 10; // staking.slash_reporter_bps = 10%
    assert_eq!(w.c.bal(&challenger.address()) + fees, before + reporter, "bond back plus the reporter's share");
    // The record's credits are gone; the fallback paid the versions instead.
    assert_eq!(hold(&w.c, h).status, FALLBACK);
    assert!(w.c.bal(&TREASURY) >= treasury + slashed - reporter);
    assert_eq!(w.c.challenge_of(h).status, 3);
    assert!(matches!(w.c.refused(&alice, fin), IInferenceErrors::HoldClosed(_)));
    // The fallback, written out: Datanet 1 v2 has 8 live rows (contribution 1: 3,
    // 2: 5) and Datanet 2 v1 has 4 (contribution 3); each part is split per row.
    let per_row = |part: u128, rows: u128| part * E18 / rows;
    let (d1, d2) = (per_row(amount * 8 / 12, 8), per_row(amount * 4 / 12, 4));
    assert_eq!(
        [w.c.claimable(1), w.c.claimable(2), w.c.claimable(3)],
        [d1 * 3 / E18, d1 * 5 / E18, d2 * 4 / E18],
        "the hold went to the fallback, pro rata to rows"
    );
    assert!(matches!(
        w.c.att_refused(&alice, Amount::ZERO, verdict(&w.c, h, true, &[0])),
        IAttributionErrors::WrongChallengeStatus(_)
    ));
}

#[test]
fn a_right_record_forfeits_the_bond_and_its_credits_stand() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let h = posted(&mut w, 1);
    let amount = hold(&w.c, h).amount;
    let (challenger, operator, alice) = (clone_key(&w.k.other), clone_key(&w.k.operator), clone_key(&w.k.alice));
    let before = w.c.bal(&challenger.address());
    let fees = Chain::fee(&w.c.att_ok(&challenger, Amount(2 * BOND), challenge(h)));
    w.c.att_ok(&operator, Amount::ZERO, reveal(h, RECORD));
    let op_bond = w.c.self_bond(&operator.address());
    let staking = w.c.bal(&STAKING);
    let r = w.c.att_ok(&alice, Amount::ZERO, verdict(&w.c, h, true, &[0, 1, 2]));
    assert_eq!((resolved(&r).status, resolved(&r).bondReturned), (4, 0));
    assert_eq!(w.c.bal(&challenger.address()) + fees, before - 2 * BOND, "the whole bond is forfeited");
    assert!(w.c.bal(&STAKING) >= staking + 2 * BOND, "to the validators' reward pool");
    assert_eq!(w.c.self_bond(&operator.address()), op_bond, "no slash");
    assert_eq!(w.c.mem.balance(&ATTRIBUTION).unwrap(), Amount::ZERO);
    // The credits finalize as posted.
    w.c.until(hold(&w.c, h).postedAt + WINDOW);
    w.c.ok(&alice, IInferenceCalls::finalizeAttribution(IInference::finalizeAttributionCall { receiptHash: h }));
    assert_eq!(w.c.claimable(1), amount);
}

#[test]
fn late_challenges_unrevealed_records_and_lapsed_verdicts() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let (challenger, operator, alice) = (clone_key(&w.k.other), clone_key(&w.k.operator), clone_key(&w.k.alice));
    // A record not posted yet, and one paid by the fallback, cannot be challenged.
    let r = w.receipt(1, 40_000, 40_000);
    w.settle(std::slice::from_ref(&r));
    let open = receipt_hash(&r);
    assert!(matches!(
        w.c.att_refused(&challenger, Amount(BOND), challenge(open)),
        IAttributionErrors::NotChallengeable(_)
    ));
    w.c.ok(
        &operator,
        IInferenceCalls::postAttribution(IInference::postAttributionCall {
            receiptHash: open,
            recordHash: B256::ZERO,
            credits: vec![],
        }),
    );
    assert!(matches!(
        w.c.att_refused(&challenger, Amount(BOND), challenge(open)),
        IAttributionErrors::NotChallengeable(_)
    ));
    // After the window.
    let late = posted(&mut w, 2);
    w.c.until(hold(&w.c, late).postedAt + WINDOW);
    match w.c.att_refused(&challenger, Amount(BOND), challenge(late)) {
        IAttributionErrors::NotChallengeable(e) => assert!(e.reason.contains("window closed"), "{}", e.reason),
        e => panic!("{e:?}"),
    }
    // Not revealed in time: the operator loses.
    let quiet = posted(&mut w, 3);
    let opened = {
        w.c.att_ok(&challenger, Amount(BOND), challenge(quiet));
        w.c.challenge_of(quiet)
    };
    let unrevealed = IAttributionCalls::resolveUnrevealed(IAttribution::resolveUnrevealedCall { receiptHash: quiet });
    match w.c.att_refused(&alice, Amount::ZERO, unrevealed.clone()) {
        IAttributionErrors::RevealOpen(e) => assert_eq!(e.revealBy, opened.revealBy),
        e => panic!("{e:?}"),
    }
    assert_eq!(opened.revealBy, opened.openedAt + REVEAL);
    w.c.until(opened.revealBy + 1);
    assert!(matches!(
        w.c.att_refused(&operator, Amount::ZERO, reveal(quiet, RECORD)),
        IAttributionErrors::RevealClosed(_)
    ));
    let op_bond = w.c.self_bond(&operator.address());
    let r = w.c.att_ok(&alice, Amount::ZERO, unrevealed);
    assert_eq!((resolved(&r).status, resolved(&r).bondReturned), (5, BOND));
    assert!(w.c.self_bond(&operator.address()) < op_bond);
    assert_eq!(hold(&w.c, quiet).status, FALLBACK);
    // Revealed but no verdict in time: the bond goes back and the record stands.
    let lapse = posted(&mut w, 4);
    w.c.att_ok(&challenger, Amount(BOND), challenge(lapse));
    w.c.att_ok(&operator, Amount::ZERO, reveal(lapse, RECORD));
    let by = w.c.challenge_of(lapse).verdictBy;
    assert_eq!(by, w.c.height + VERDICT);
    let lapsed = IAttributionCalls::resolveLapsed(IAttribution::resolveLapsedCall { receiptHash: lapse });
    assert!(matches!(w.c.att_refused(&alice, Amount::ZERO, lapsed.clone()), IAttributionErrors::VerdictOpen(_)));
    w.c.until(by + 1);
    assert!(matches!(
        w.c.att_refused(&alice, Amount::ZERO, verdict(&w.c, lapse, false, &[0, 1, 2])),
        IAttributionErrors::VerdictClosed(_)
    ));
    let treasury = w.c.bal(&TREASURY);
    let r = w.c.att_ok(&alice, Amount::ZERO, lapsed);
    assert_eq!((resolved(&r).status, resolved(&r).bondReturned), (6, BOND));
    // No verdict means the record's credits do not stand: the fallback pays
    // the hold (a record nobody vouched for keeps nothing it was challenged on).
    assert_eq!(hold(&w.c, lapse).status, FALLBACK);
    assert!(r.logs.iter().any(|l| IInference::FallbackPaid::decode_log_data(&l.data).is_ok()), "the fallback paid");
    assert!(w.c.bal(&TREASURY) >= treasury);
    assert!(matches!(
        w.c.refused(
            &alice,
            IInferenceCalls::finalizeAttribution(IInference::finalizeAttributionCall { receiptHash: lapse })
        ),
        IInferenceErrors::HoldClosed(_)
    ));
    // A lapsed challenge is closed: it blocks no other (this one is refused only
    // because nothing is pending any more).
    assert!(matches!(w.c.att_refused(&alice, Amount(BOND), challenge(lapse)), IAttributionErrors::NotChallengeable(_)));
    assert_eq!(w.c.mem.balance(&ATTRIBUTION).unwrap(), Amount::ZERO, "every bond went back");
}

/// The set that judges a challenge is fixed before the challenge exists: a
/// validator that joins in the same block cannot sign its verdict, and the
/// total the verdict is measured against is that same set's.
#[test]
fn a_verdict_is_judged_by_one_validator_set_snapshot() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let h = posted(&mut w, 1);
    let (challenger, operator, alice) = (clone_key(&w.k.other), clone_key(&w.k.operator), clone_key(&w.k.alice));
    // In one block: a new validator with more stake than the other three
    // together bonds, then the challenge opens.
    let newcomer = validator_key(3);
    let join = IStaking::registerOperatorCall {
        role: 1,
        consensusKey: newcomer.public(),
        servingKey: Address::ZERO,
        commissionBps: 0,
    };
    let txs = vec![
        w.c.sign(&alice, STAKING, Amount::open(10_000), join.abi_encode()),
        w.c.sign(&challenger, ATTRIBUTION, Amount(BOND), challenge(h).abi_encode()),
    ];
    let rs = w.c.block(txs);
    assert!(rs.iter().all(|r| r.success));
    let ch = w.c.challenge_of(h);
    assert_eq!(ch.totalPower, U256::from(3_000 * ONE_OPEN), "the three validators before the block");
    w.c.att_ok(&operator, Amount::ZERO, reveal(h, RECORD));
    // The newcomer's signature is not counted by a set it was not in.
    let d = primitives::abi::verdict_digest(CHAIN, h, ch.openedAt, false);
    let alone = IAttributionCalls::submitVerdict(IAttribution::submitVerdictCall {
        receiptHash: h,
        recordCorrect: false,
        consensusKeys: vec![newcomer.public()],
        signatures: vec![Bytes::from(newcomer.sign(d.as_slice()).to_vec())],
    });
    match w.c.att_refused(&alice, Amount::ZERO, alone) {
        IAttributionErrors::BadVerdictSignature(e) => {
            assert!(e.reason.contains("not in the validator set"), "{}", e.reason)
        }
        e => panic!("{e:?}"),
    }
    // The three that were in it decide.
    let r = w.c.att_ok(&alice, Amount::ZERO, verdict(&w.c, h, false, &[0, 1, 2]));
    assert_eq!(resolved(&r).status, 3);
}

#[test]
fn a_flagged_contribution_stops_earning() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let r = w.receipt(1, 40_000, 40_000);
    w.settle(std::slice::from_ref(&r));
    let h = receipt_hash(&r);
    let amount = hold(&w.c, h).amount;
    let (operator, builder, alice) = (clone_key(&w.k.operator), clone_key(&w.k.builder), clone_key(&w.k.alice));
    w.c.ok(
        &operator,
        IInferenceCalls::postAttribution(IInference::postAttributionCall {
            receiptHash: h,
            recordHash: B256::repeat_byte(5),
            credits: vec![
                Credit { contributionId: 1, weightPpm: 600_000 },
                Credit { contributionId: 2, weightPpm: 400_000 },
            ],
        }),
    );
    let datanets = Module::Datanets.address();
    let flag = |reason: u8| {
        IDatanetsCalls::flag(IDatanets::flagCall {
            contributionId: 1,
            reason,
            note: "copied from contribution 2".into(),
        })
    };
    // Only the Datanet's owner or curators (or governance) flag; reasons 1..=3.
    assert!(!w.c.send(&alice, datanets, Amount::ZERO, flag(1).abi_encode()).success);
    assert!(!w.c.send(&builder, datanets, Amount::ZERO, flag(0).abi_encode()).success);
    let v2 = runtime::datanets::DatanetsRead::version(&w.c.mem, 1, 2).unwrap().unwrap().liveRows;
    assert!(w.c.send(&builder, datanets, Amount::ZERO, flag(1).abi_encode()).success);
    assert!(!w.c.send(&builder, datanets, Amount::ZERO, flag(1).abi_encode()).success, "flags once");
    let after = runtime::datanets::DatanetsRead::version(&w.c.mem, 1, 2).unwrap().unwrap();
    assert_eq!((after.liveRows, after.closed), (v2 - 3, true), "its 3 rows stop counting");
    assert_eq!(runtime::datanets::DatanetsRead::flagged(&w.c.mem, 1).unwrap(), vec![1]);
    // Its pending credit goes to the treasury at finalization; the other stands.
    w.c.until(hold(&w.c, h).postedAt + WINDOW);
    let treasury = w.c.bal(&TREASURY);
    let r =
        w.c.ok(&alice, IInferenceCalls::finalizeAttribution(IInference::finalizeAttributionCall { receiptHash: h }));
    let forfeited: Vec<(u64, u128)> = r
        .logs
        .iter()
        .filter_map(|l| IInference::CreditForfeited::decode_log_data(&l.data).ok())
        .map(|e| (e.contributionId, e.amount))
        .collect();
    let a1 = amount * 6 / 10;
    assert_eq!(forfeited, vec![(1, a1)]);
    assert_eq!(w.c.claimable(1), 0);
    assert_eq!(w.c.claimable(2), amount * 4 / 10);
    assert_eq!(w.c.bal(&TREASURY) - treasury, amount - amount * 4 / 10);
    // New records may not credit it.
    let r2 = w.receipt(2, 40_000, 40_000);
    w.settle(std::slice::from_ref(&r2));
    let bad = IInferenceCalls::postAttribution(IInference::postAttributionCall {
        receiptHash: receipt_hash(&r2),
        recordHash: B256::repeat_byte(6),
        credits: vec![Credit { contributionId: 1, weightPpm: 1_000_000 }],
    });
    assert!(matches!(w.c.refused(&operator, bad), IInferenceErrors::BadCredits(_)));
}

// ---------------------------------------------------------------------------
// Property: random deposits, allowances, releases, settlements, attributions
// and claims keep the supply equation and the module's holdings exact.

#[derive(Clone, Debug)]
enum Op {
    Deposit {
        who: usize,
        units: u64,
    },
    Withdraw {
        who: usize,
        units: u64,
    },
    Allow {
        who: usize,
        units: u64,
        to_operator: bool,
    },
    Release {
        who: usize,
        units: u64,
    },
    CompleteRelease {
        who: usize,
    },
    /// Receipts of (payer, input, output, nonce step: 0 replays the last nonce).
    Settle {
        receipts: Vec<(usize, u64, u64, u64)>,
        base_model: bool,
    },
    Post {
        pick: usize,
        credits: Vec<(u64, u32)>,
    },
    PostEmpty {
        pick: usize,
    },
    Finalize {
        pick: usize,
    },
    Expire {
        pick: usize,
    },
    Claim {
        contribution: u64,
        by_owner: bool,
    },
    Challenge {
        pick: usize,
        extra: u64,
    },
    Reveal {
        pick: usize,
        right_bytes: bool,
    },
    /// Signed by validators `signers` (a bit set over the three).
    Verdict {
        pick: usize,
        correct: bool,
        signers: u8,
    },
    ResolveUnrevealed {
        pick: usize,
    },
    ResolveLapsed {
        pick: usize,
    },
    Flag {
        contribution: u64,
    },
    /// Buy offer 1 (volume) or 2 (time) of m2.
    BuyLicence {
        who: usize,
        offer: u64,
    },
    CloseLicence {
        pick: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0usize..2;
    let units = 1u64..2_000;
    prop_oneof![
        2 => (who.clone(), units.clone()).prop_map(|(who, units)| Op::Deposit { who, units }),
        1 => (who.clone(), units.clone()).prop_map(|(who, units)| Op::Withdraw { who, units }),
        2 => (who.clone(), units.clone(), proptest::bool::weighted(0.9))
            .prop_map(|(who, units, to_operator)| Op::Allow { who, units, to_operator }),
        1 => (who.clone(), units).prop_map(|(who, units)| Op::Release { who, units }),
        1 => who.clone().prop_map(|who| Op::CompleteRelease { who }),
        4 => (proptest::collection::vec((who, 0u64..400_000, 0u64..200_000, prop_oneof![6 => 1u64..3, 1 => Just(0u64)]), 1..4), proptest::bool::weighted(0.2))
            .prop_map(|(receipts, base_model)| Op::Settle { receipts, base_model }),
        4 => (any::<usize>(), proptest::collection::vec((prop_oneof![8 => 1u64..4, 1 => 4u64..6], 1u32..1_000), 1..4))
            .prop_map(|(pick, credits)| Op::Post { pick, credits }),
        1 => any::<usize>().prop_map(|pick| Op::PostEmpty { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Finalize { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Expire { pick }),
        2 => (1u64..5, proptest::bool::weighted(0.9)).prop_map(|(contribution, by_owner)| Op::Claim { contribution, by_owner }),
        5 => (any::<usize>(), 0u64..3).prop_map(|(pick, extra)| Op::Challenge { pick, extra }),
        5 => (any::<usize>(), proptest::bool::weighted(0.9)).prop_map(|(pick, right_bytes)| Op::Reveal { pick, right_bytes }),
        5 => (any::<usize>(), any::<bool>(), 1u8..8).prop_map(|(pick, correct, signers)| Op::Verdict { pick, correct, signers }),
        1 => any::<usize>().prop_map(|pick| Op::ResolveUnrevealed { pick }),
        1 => any::<usize>().prop_map(|pick| Op::ResolveLapsed { pick }),
        1 => (1u64..5).prop_map(|contribution| Op::Flag { contribution }),
        2 => (0usize..2, 1u64..3).prop_map(|(who, offer)| Op::BuyLicence { who, offer }),
        1 => any::<usize>().prop_map(|pick| Op::CloseLicence { pick }),
    ]
}

/// Scale credit weights so they sum to exactly 1,000,000 (the last takes the remainder).
fn normalise(credits: &[(u64, u32)]) -> Vec<Credit> {
    let total: u64 = credits.iter().map(|c| c.1 as u64).sum();
    let mut out: Vec<Credit> = credits
        .iter()
        .map(|(id, w)| Credit { contributionId: *id, weightPpm: (*w as u64 * 1_000_000 / total) as u32 })
        .collect();
    let sum: u32 = out.iter().map(|c| c.weightPpm).sum();
    out.last_mut().unwrap().weightPpm += 1_000_000 - sum;
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn supply_and_holdings_stay_exact(blocks in proptest::collection::vec((proptest::collection::vec(op(), 0..8), 0u64..6), 4..24)) {
        let mut w = setup();
        let payers = [clone_key(&w.k.payer), clone_key(&w.k.other)];
        let (operator, serving) = (clone_key(&w.k.operator), clone_key(&w.k.serving));
        let contributors = [clone_key(&w.k.alice), clone_key(&w.k.bob), clone_key(&w.k.bob), clone_key(&w.k.alice)];
        let op_addr = operator.address();
        let unit = 1_000_000_000_000u128;
        // Both payers start with escrow and an allowance; the operations move it around.
        for p in &payers {
            let r = w.c.send(p, INFERENCE, Amount::open(1_000), IInferenceCalls::deposit(IInference::depositCall {}).abi_encode());
            prop_assert!(r.success);
            w.c.ok(p, IInferenceCalls::allow(IInference::allowCall { operator: op_addr, amount: 20 * ONE_OPEN }));
        }
        // Two licence offers of m2: a volume one and a time one.
        let builder = clone_key(&w.k.builder);
        let offers = [(5 * ONE_OPEN + 1, 0u64, 900_001u64), (3 * ONE_OPEN + 7, 6, 0)];
        for (price, blocks, tokens) in offers {
            w.c.ok(&builder, IInferenceCalls::offerLicence(IInference::offerLicenceCall { modelId: w.model, price, durationBlocks: blocks, tokens, commercial: true }));
        }
        let mut licences: Vec<u64> = vec![];
        let mut next_nonce = [1u64; 2];
        let mut holds: Vec<B256> = vec![];
        let mut outcomes: BTreeMap<(String, bool), u32> = BTreeMap::new();
        for (ops, skip) in blocks {
            // Empty blocks in between, so delays, timeouts and windows pass.
            w.c.until(w.c.height + 1 + skip);
            let mut txs = vec![];
            let mut kinds = vec![];
            // Challenge operations pick among the holds they can apply to (as of
            // the block's start), so they are exercised, not mostly refused.
            let posted: Vec<B256> = holds
                .iter()
                .copied()
                .filter(|h| w.c.mem.hold(h).unwrap().unwrap().status == POSTED)
                .filter(|h| runtime::attribution::AttributionRead::challenge(&w.c.mem, h).unwrap().is_none())
                .collect();
            let in_state = |st: u8| -> Vec<B256> {
                holds.iter().copied().filter(|h| runtime::attribution::AttributionRead::challenge(&w.c.mem, h).unwrap().is_some_and(|c| c.status == st)).collect()
            };
            let (awaiting_reveal, awaiting_verdict) = (in_state(1), in_state(2));
            let pick_in = |v: &Vec<B256>, pick: usize| if v.is_empty() { None } else { Some(v[pick % v.len()]) };
            for o in ops {
                let (k, call) = match o {
                    Op::Deposit { who, units } => {
                        kinds.push("deposit".to_string());
                        txs.push(w.c.sign(&payers[who], INFERENCE, Amount(units as u128 * unit), IInferenceCalls::deposit(IInference::depositCall {}).abi_encode()));
                        continue;
                    }
                    Op::Withdraw { who, units } => (&payers[who], IInferenceCalls::withdraw(IInference::withdrawCall { amount: units as u128 * unit })),
                    Op::Allow { who, units, to_operator } => {
                        let to = if to_operator { op_addr } else { w.k.validator.address() };
                        (&payers[who], IInferenceCalls::allow(IInference::allowCall { operator: to, amount: units as u128 * unit }))
                    }
                    Op::Release { who, units } => (&payers[who], IInferenceCalls::release(IInference::releaseCall { operator: op_addr, amount: units as u128 * unit / 3 })),
                    Op::CompleteRelease { who } => (&payers[who], IInferenceCalls::completeRelease(IInference::completeReleaseCall { operator: op_addr })),
                    Op::Settle { receipts, base_model } => {
                        let mut rs = vec![];
                        for (who, input, output, step) in receipts {
                            let nonce = if step == 0 { next_nonce[who].saturating_sub(1) } else { next_nonce[who] + step - 1 };
                            // Optimistic: a refused batch leaves a gap, which is allowed.
                            next_nonce[who] = next_nonce[who].max(nonce + 1);
                            let mut r = w.receipt(nonce, input, output);
                            r.payer = payers[who].address();
                            if base_model {
                                (r.modelId, r.adapterHash, r.priceInPer1k, r.priceOutPer1k) = (1, B256::ZERO, 7, 11);
                            }
                            rs.push(r);
                        }
                        (&operator, w.settle_signed(&rs, &serving))
                    }
                    Op::Post { pick, credits } if !holds.is_empty() => {
                        let h = holds[pick % holds.len()];
                        // The record's bytes are the receipt hash, so a reveal can match it.
                        (&operator, IInferenceCalls::postAttribution(IInference::postAttributionCall { receiptHash: h, recordHash: content_hash(h.as_slice()), credits: normalise(&credits) }))
                    }
                    Op::PostEmpty { pick } if !holds.is_empty() => {
                        let h = holds[pick % holds.len()];
                        (&operator, IInferenceCalls::postAttribution(IInference::postAttributionCall { receiptHash: h, recordHash: h, credits: vec![] }))
                    }
                    Op::Finalize { pick } if !holds.is_empty() => {
                        (&payers[0], IInferenceCalls::finalizeAttribution(IInference::finalizeAttributionCall { receiptHash: holds[pick % holds.len()] }))
                    }
                    Op::Expire { pick } if !holds.is_empty() => {
                        (&payers[1], IInferenceCalls::expireAttribution(IInference::expireAttributionCall { receiptHash: holds[pick % holds.len()] }))
                    }
                    Op::Claim { contribution, by_owner } => {
                        let k = if by_owner { &contributors[contribution as usize - 1] } else { &payers[0] };
                        (k, IInferenceCalls::claim(IInference::claimCall { contributionId: contribution }))
                    }
                    Op::Challenge { pick, extra } if !posted.is_empty() => {
                        let h = pick_in(&posted, pick).unwrap();
                        kinds.push("challenge".into());
                        txs.push(w.c.sign(&payers[1], ATTRIBUTION, Amount(BOND + extra as u128 * ONE_OPEN), challenge(h).abi_encode()));
                        continue;
                    }
                    Op::Reveal { pick, right_bytes } if !awaiting_reveal.is_empty() => {
                        let h = pick_in(&awaiting_reveal, pick).unwrap();
                        let bytes = if right_bytes { h.to_vec() } else { b"forged".to_vec() };
                        kinds.push("reveal".into());
                        txs.push(w.c.sign(&operator, ATTRIBUTION, Amount::ZERO, reveal(h, &bytes).abi_encode()));
                        continue;
                    }
                    Op::Verdict { pick, correct, signers } if !awaiting_verdict.is_empty() => {
                        let h = pick_in(&awaiting_verdict, pick).unwrap();
                        let who: Vec<u8> = (0..3u8).filter(|i| signers & (1 << i) != 0).collect();
                        kinds.push("verdict".into());
                        txs.push(w.c.sign(&payers[0], ATTRIBUTION, Amount::ZERO, verdict(&w.c, h, correct, &who).abi_encode()));
                        continue;
                    }
                    Op::ResolveUnrevealed { pick } if !awaiting_reveal.is_empty() => {
                        let h = pick_in(&awaiting_reveal, pick).unwrap();
                        kinds.push("resolveUnrevealed".into());
                        let c = IAttributionCalls::resolveUnrevealed(IAttribution::resolveUnrevealedCall { receiptHash: h });
                        txs.push(w.c.sign(&payers[0], ATTRIBUTION, Amount::ZERO, c.abi_encode()));
                        continue;
                    }
                    Op::ResolveLapsed { pick } if !awaiting_verdict.is_empty() => {
                        let h = pick_in(&awaiting_verdict, pick).unwrap();
                        kinds.push("resolveLapsed".into());
                        let c = IAttributionCalls::resolveLapsed(IAttribution::resolveLapsedCall { receiptHash: h });
                        txs.push(w.c.sign(&payers[0], ATTRIBUTION, Amount::ZERO, c.abi_encode()));
                        continue;
                    }
                    Op::Flag { contribution } => {
                        kinds.push("flag".into());
                        let c = IDatanetsCalls::flag(IDatanets::flagCall { contributionId: contribution, reason: 1, note: String::new() });
                        txs.push(w.c.sign(&w.k.builder, Module::Datanets.address(), Amount::ZERO, c.abi_encode()));
                        continue;
                    }
                    Op::BuyLicence { who, offer } => {
                        kinds.push("buyLicence".into());
                        let call = IInferenceCalls::buyLicence(IInference::buyLicenceCall { offerId: offer });
                        txs.push(w.c.sign(&payers[who], INFERENCE, Amount(offers[offer as usize - 1].0), call.abi_encode()));
                        continue;
                    }
                    Op::CloseLicence { pick } if !licences.is_empty() => {
                        (&payers[1], IInferenceCalls::closeLicence(IInference::closeLicenceCall { licenceId: licences[pick % licences.len()] }))
                    }
                    _ => continue,
                };
                kinds.push(format!("{call:?}").split('(').next().unwrap().to_string());
                txs.push(w.c.sign(k, INFERENCE, Amount::ZERO, call.abi_encode()));
            }
            // `block` checks the supply equation and balance == holdings after it.
            for (r, kind) in w.c.block(txs).into_iter().zip(kinds) {
                *outcomes.entry((kind.clone(), r.success)).or_default() += 1;
                if !r.success {
                    prop_assert!(r.logs.is_empty());
                    if std::env::var("INFERENCE_TRACE").is_ok() && ["challenge", "reveal", "verdict"].contains(&kind.as_str()) {
                        eprintln!("{kind}: {:?}", IAttributionErrors::abi_decode(&r.revert_data));
                    }
                    continue;
                }
                for l in r.logs.iter().filter_map(|l| IInference::LicenceBought::decode_log_data(&l.data).ok()) {
                    licences.push(l.licenceId);
                }
                for s in settled(&r) {
                    let idx = payers.iter().position(|p| p.address() == s.payer).unwrap();
                    let nonce = w.c.view(IInference::allowanceCall { payer: s.payer, operator: op_addr }).lastNonce;
                    next_nonce[idx] = next_nonce[idx].max(nonce + 1);
                    if s.dataShare > 0 {
                        holds.push(s.receiptHash);
                    }
                }
            }
            // Every kind of holding equals the records it sums.
            let t = w.c.mem.holdings().unwrap();
            let (mut free, mut allowed, mut pending) = (0u128, 0u128, 0u128);
            for p in &payers {
                free += w.c.mem.escrow(&p.address()).unwrap().0;
                let a = w.c.mem.allowance(&p.address(), &op_addr).unwrap();
                allowed += a.remaining;
                pending += a.pendingRelease;
            }
            prop_assert_eq!((t.free_escrow.0, t.allowances.0, t.pending_releases.0), (free, allowed, pending));
            let (mut open, mut posted) = (0u128, 0u128);
            for h in &holds {
                let hr = w.c.mem.hold(h).unwrap().unwrap();
                match hr.status {
                    OPEN => open += hr.amount,
                    POSTED => posted += hr.amount,
                    _ => {}
                }
            }
            prop_assert_eq!((t.open_holds.0, t.pending_attributions.0), (open, posted));
            let accrued: u128 = (1..=4).map(|id| w.c.mem.contribution_account(id).unwrap().accrued).sum();
            prop_assert_eq!(t.accrued_credits.0, accrued);
            let prepaid: u128 = licences.iter().map(|id| w.c.view(IInference::licenceCall { licenceId: *id }).amountLeft).sum();
            prop_assert_eq!(t.licences.0, prepaid);
            let claimable: u128 = (1..=4).map(|id| w.c.claimable(id)).sum();
            prop_assert!(claimable <= t.accrued_credits.0 + t.fallback_pool.0, "claims never exceed what is held");
        }
        if std::env::var("INFERENCE_TRACE").is_ok() {
            eprintln!("{outcomes:?}");
        }
        // Solvency: every contribution claims everything it is owed.
        for id in 1..=4u64 {
            if w.c.claimable(id) > 0 {
                let k = clone_key(&contributors[id as usize - 1]);
                w.c.ok(&k, IInferenceCalls::claim(IInference::claimCall { contributionId: id }));
                prop_assert_eq!(w.c.claimable(id), 0);
            }
        }
        prop_assert_eq!(w.c.mem.holdings().unwrap().accrued_credits, Amount::ZERO);
    }
}

/// Filling the open-challenge slots to block challenges costs far more than
/// it gains: the least bond doubles for every 32 open challenges.
#[test]
fn challenge_bonds_grow_with_open_challenges() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let challenger = clone_key(&w.k.other);
    let required = |c: &Chain| c.view_at(ATTRIBUTION, IAttribution::challengeBondCall {});
    assert_eq!(required(&w.c), U256::from(BOND));
    // 33 records posted in one block, so all are within their challenge window.
    let rs: Vec<InferenceReceipt> = (1..=33).map(|n| w.receipt(n, 1_000, 1_000)).collect();
    w.settle(&rs);
    let op = clone_key(&w.k.operator);
    let hs: Vec<B256> = rs.iter().map(receipt_hash).collect();
    let posts: Vec<_> = hs
        .iter()
        .map(|h| {
            let c = IInferenceCalls::postAttribution(IInference::postAttributionCall {
                receiptHash: *h,
                recordHash: content_hash(RECORD),
                credits: vec![Credit { contributionId: 1, weightPpm: 1_000_000 }],
            });
            w.c.sign(&op, INFERENCE, Amount::ZERO, c.abi_encode())
        })
        .collect();
    assert!(w.c.block(posts).iter().all(|r| r.success));
    let txs: Vec<_> =
        hs[..32].iter().map(|h| w.c.sign(&challenger, ATTRIBUTION, Amount(BOND), challenge(*h).abi_encode())).collect();
    assert!(w.c.block(txs).iter().all(|r| r.success));
    assert_eq!(required(&w.c), U256::from(2 * BOND));
    match w.c.att_refused(&challenger, Amount(BOND), challenge(hs[32])) {
        IAttributionErrors::BondTooSmall(e) => assert_eq!(e.required, U256::from(2 * BOND)),
        e => panic!("{e:?}"),
    }
    w.c.att_ok(&challenger, Amount(2 * BOND), challenge(hs[32]));
}

// Retrieval-augmented answers: a receipt's `retrievalHash` names the Datanet
// versions its answer retrieved rows from.

fn refs(list: &[(u64, u64)]) -> Vec<DatanetVersionRef> {
    list.iter().map(|(d, v)| DatanetVersionRef { datanetId: *d, version: *v }).collect()
}

fn credits(list: &[(u64, u32)]) -> Vec<Credit> {
    list.iter().map(|(c, w)| Credit { contributionId: *c, weightPpm: *w }).collect()
}

fn post_plain(h: B256, list: &[(u64, u32)]) -> IInferenceCalls {
    IInferenceCalls::postAttribution(IInference::postAttributionCall {
        receiptHash: h,
        recordHash: content_hash(RECORD),
        credits: credits(list),
    })
}

fn post_retrieved(h: B256, list: &[(u64, u32)], retrieved: &[(u64, u64)]) -> IInferenceCalls {
    IInferenceCalls::postAttributionRetrieved(IInference::postAttributionRetrievedCall {
        receiptHash: h,
        recordHash: content_hash(RECORD),
        credits: credits(list),
        retrieved: refs(retrieved),
    })
}

fn expire(h: B256) -> IInferenceCalls {
    IInferenceCalls::expireAttribution(IInference::expireAttributionCall { receiptHash: h })
}

fn finalize(h: B256) -> IInferenceCalls {
    IInferenceCalls::finalizeAttribution(IInference::finalizeAttributionCall { receiptHash: h })
}

fn fallback_paid(r: &Receipt) -> Vec<(u64, u64, u128)> {
    r.logs
        .iter()
        .filter_map(|l| IInference::FallbackPaid::decode_log_data(&l.data).ok())
        .map(|e| (e.datanetId, e.version, e.amount))
        .collect()
}

impl World {
    /// A receipt of the base model m1 (no Datanet versions) whose answer
    /// retrieved rows from `retrieved` (none: a plain answer).
    fn base_receipt(&self, nonce: u64, retrieved: &[(u64, u64)]) -> InferenceReceipt {
        let mut r = self.receipt(nonce, 50_000_000, 20_000_000);
        (r.modelId, r.adapterHash, r.priceInPer1k, r.priceOutPer1k) = (1, B256::ZERO, 7, 11);
        r.retrievalHash = retrieval_hash(&refs(retrieved));
        r
    }

    fn retrieval_hash_of(&self, h: B256) -> B256 {
        self.c.view(IInference::retrievalHashOfCall { receiptHash: h })
    }
}

/// A funded world whose one settled receipt is a base-model answer that
/// retrieved from `retrieved`: the world, the receipt's hash and its hold.
fn settled_retrieval(retrieved: &[(u64, u64)]) -> (World, B256, u128) {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let r = w.base_receipt(1, retrieved);
    w.settle(std::slice::from_ref(&r));
    let h = receipt_hash(&r);
    let amount = hold(&w.c, h).amount;
    (w, h, amount)
}

#[test]
fn a_receipt_that_retrieved_holds_its_data_part_even_on_the_base_model() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let plain = w.base_receipt(1, &[]);
    let retrieving = w.base_receipt(2, &[(1, 2)]);
    assert_eq!(plain.retrievalHash, B256::ZERO);
    let treasury = w.c.bal(&TREASURY);
    let out = w.settle(&[plain.clone(), retrieving.clone()]);
    let (p1, p2) = (parts(cost(&plain)), parts(cost(&retrieving)));
    // m1 is the treasury's: it takes the owner and treasury parts of both, and
    // the data part of the plain answer only.
    assert_eq!(w.c.bal(&TREASURY) - treasury, p1[0] + p1[1] + p1[4] + p2[0] + p2[4]);
    assert_eq!(settled(&out).iter().map(|s| s.dataShare).collect::<Vec<_>>(), vec![0, p2[1]]);
    let h = receipt_hash(&retrieving);
    let held = hold(&w.c, h);
    assert_eq!((held.amount, held.modelId, held.status), (p2[1], 1, OPEN));
    assert_eq!(w.c.view(IInference::settledReceiptCall { receiptHash: h }).dataPart, p2[1]);
    assert_eq!(w.retrieval_hash_of(h), retrieval_hash(&refs(&[(1, 2)])));
    assert_eq!(w.retrieval_hash_of(receipt_hash(&plain)), B256::ZERO);
    assert_eq!(w.c.mem.holdings().unwrap().open_holds, Amount(p2[1]));
    // No record before the timeout: the fallback over m1's Datanet versions,
    // which are none, is the treasury.
    w.c.until(held.settledAt + TIMEOUT);
    let treasury = w.c.bal(&TREASURY);
    let r = w.c.ok(&clone_key(&w.k.other), expire(h));
    assert_eq!(fallback_paid(&r), vec![]);
    assert_eq!(w.c.bal(&TREASURY) - treasury, p2[1]);
    assert_eq!(hold(&w.c, h).status, FALLBACK);
    let t = w.c.mem.holdings().unwrap();
    assert_eq!((t.open_holds, t.fallback_pool), (Amount::ZERO, Amount::ZERO));
}

#[test]
fn credits_on_a_retrieved_version_are_paid_to_the_wei() {
    let (mut w, h, amount) = settled_retrieval(&[(1, 2)]);
    let (operator, other, alice, bob) =
        (clone_key(&w.k.operator), clone_key(&w.k.other), clone_key(&w.k.alice), clone_key(&w.k.bob));
    // Contributions 1 (alice, version 1) and 2 (bob, version 2) are in Datanet 1 version 2.
    let weights = [(1u64, 333_333u32), (2, 666_667)];
    let out = w.c.ok(&operator, post_retrieved(h, &weights, &[(1, 2)]));
    let posted = IInference::AttributionPosted::decode_log_data(&out.logs[0].data).unwrap();
    assert_eq!((posted.receiptHash, posted.recordHash, posted.credits), (h, content_hash(RECORD), 2));
    let posted_at = w.c.height;
    let expect: Vec<u128> = weights.iter().map(|(_, p)| amount * *p as u128 / 1_000_000).collect();
    let pc = w.c.view(IInference::pendingCreditsCall { receiptHash: h });
    assert_eq!((pc.contributionIds, pc.amounts), (vec![1, 2], expect.clone()));
    assert_eq!(hold(&w.c, h).status, POSTED);
    assert!(matches!(w.c.refused(&operator, post_retrieved(h, &weights, &[(1, 2)])), IInferenceErrors::HoldClosed(_)));
    w.c.until(posted_at + WINDOW);
    let treasury = w.c.bal(&TREASURY);
    let out = w.c.ok(&other, finalize(h));
    let credited: Vec<(u64, u128)> = out
        .logs
        .iter()
        .filter_map(|l| IInference::Credited::decode_log_data(&l.data).ok())
        .map(|e| (e.contributionId, e.amount))
        .collect();
    assert_eq!(credited, vec![(1, expect[0]), (2, expect[1])]);
    let dust = amount - expect[0] - expect[1];
    assert!(dust > 0, "these weights leave rounding dust");
    assert_eq!(w.c.bal(&TREASURY) - treasury, dust, "the dust, and only it, to the treasury");
    for (k, id, want) in [(&alice, 1u64, expect[0]), (&bob, 2, expect[1])] {
        assert_eq!(w.c.claimable(id), want);
        let before = w.c.bal(&k.address());
        let r = w.c.ok(k, IInferenceCalls::claim(IInference::claimCall { contributionId: id }));
        assert_eq!(w.c.bal(&k.address()) + Chain::fee(&r) - before, want, "contribution {id}");
    }
    assert_eq!(w.c.mem.holdings().unwrap().accrued_credits, Amount::ZERO);
    // Each block above checked the supply equation and the module's holdings.
    let report = runtime::supply_report(&w.c.mem).unwrap();
    assert_eq!(report.inference.total(), Amount(w.c.bal(&INFERENCE)));
}

#[test]
fn forged_retrieval_records_are_refused() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    let r = w.base_receipt(1, &[(1, 2)]);
    // Receipts may sign versions that do not exist; no record can then name them.
    let ghost_version = w.base_receipt(2, &[(1, 2), (1, 9)]);
    let ghost_datanet = w.base_receipt(3, &[(7, 1)]);
    let plain = w.receipt(4, 50_000, 20_000);
    w.settle(&[r.clone(), ghost_version.clone(), ghost_datanet.clone(), plain.clone()]);
    let h = receipt_hash(&r);
    let (operator, other) = (clone_key(&w.k.operator), clone_key(&w.k.other));
    let one = [(1u64, 1_000_000u32)];
    // Another version than the receipt signed, or one more.
    for forged in [&[(1u64, 3u64)][..], &[(1, 2), (2, 1)], &[(1, 1)]] {
        match w.c.refused(&operator, post_retrieved(h, &one, forged)) {
            IInferenceErrors::RetrievalMismatch(e) => {
                assert_eq!((e.receiptHash, e.expected, e.got), (h, r.retrievalHash, retrieval_hash(&refs(forged))))
            }
            e => panic!("{e:?}"),
        }
    }
    // Lists that are not canonical, whatever they hash to.
    let bad_retrieved = |e: IInferenceErrors| match e {
        IInferenceErrors::BadRetrieved(e) => e.reason,
        e => panic!("{e:?}"),
    };
    let nine: Vec<(u64, u64)> = (1..=9).map(|d| (d, 1)).collect();
    let lists: [(&[(u64, u64)], &str); 5] = [
        (&[], "1 to 8 retrieved Datanet versions, not 0"),
        (&[(1, 2), (1, 2)], "strictly increase"),
        (&[(1, 2), (1, 1)], "strictly increase"),
        (&nine, "1 to 8 retrieved Datanet versions, not 9"),
        (&[(1, 0), (1, 2)], "version 0"),
    ];
    for (list, why) in lists {
        let reason = bad_retrieved(w.c.refused(&operator, post_retrieved(h, &one, list)));
        assert!(reason.contains(why), "{reason}");
    }
    // A contribution of a Datanet neither trained on nor retrieved (3, Datanet 2),
    // and one approved after the retrieved version (4, Datanet 1 version 3).
    for (list, id) in [(vec![(1u64, 500_000u32), (3, 500_000)], 3u64), (vec![(4, 1_000_000)], 4)] {
        match w.c.refused(&operator, post_retrieved(h, &list, &[(1, 2)])) {
            IInferenceErrors::BadCredits(e) => assert_eq!(
                e.reason,
                format!("contribution {id} is not approved in the model's or the retrieved Datanet versions")
            ),
            e => panic!("{e:?}"),
        }
    }
    // A plain record on the same hold credits the model's versions only (m1 has none).
    match w.c.refused(&operator, post_plain(h, &one)) {
        IInferenceErrors::BadCredits(e) => {
            assert_eq!(e.reason, "contribution 1 is not approved in the model's Datanet versions")
        }
        e => panic!("{e:?}"),
    }
    // Versions that do not exist, though the receipt signed them.
    let reason =
        bad_retrieved(w.c.refused(&operator, post_retrieved(receipt_hash(&ghost_version), &one, &[(1, 2), (1, 9)])));
    assert_eq!(reason, "Datanet 1 has no version 9");
    let reason = bad_retrieved(w.c.refused(&operator, post_retrieved(receipt_hash(&ghost_datanet), &one, &[(7, 1)])));
    assert_eq!(reason, "Datanet 7 has no version 1");
    // Retrieval claimed for a receipt that retrieved nothing.
    match w.c.refused(&operator, post_retrieved(receipt_hash(&plain), &[(3, 1_000_000)], &[(2, 1)])) {
        IInferenceErrors::RetrievalMismatch(e) => assert_eq!(e.expected, B256::ZERO),
        e => panic!("{e:?}"),
    }
    // Only the settling operator posts.
    assert!(matches!(
        w.c.refused(&other, post_retrieved(h, &one, &[(1, 2)])),
        IInferenceErrors::NotSettlingOperator(_)
    ));
    // The receipt's own list is accepted (nothing above changed the hold); an
    // empty retrieval record selects the fallback, which for m1 is the treasury.
    w.c.ok(&operator, post_retrieved(h, &one, &[(1, 2)]));
    let treasury = w.c.bal(&TREASURY);
    let ghost = receipt_hash(&ghost_datanet);
    let amount = hold(&w.c, ghost).amount;
    assert!(matches!(w.c.refused(&operator, post_retrieved(ghost, &[], &[(7, 1)])), IInferenceErrors::BadRetrieved(_)));
    w.c.ok(&operator, post_plain(ghost, &[]));
    assert_eq!((hold(&w.c, ghost).status, w.c.bal(&TREASURY) - treasury), (FALLBACK, amount));
    // After the timeout, no record at all.
    let settled_at = hold(&w.c, h).settledAt;
    w.c.until(settled_at + TIMEOUT);
    match w.c.refused(&operator, post_retrieved(receipt_hash(&ghost_version), &[], &[(1, 2), (1, 9)])) {
        IInferenceErrors::AttributionTimedOut(e) => assert_eq!(e.deadline, settled_at + TIMEOUT),
        e => panic!("{e:?}"),
    }
}

#[test]
fn a_fine_tuned_model_credits_retrieved_and_training_data_and_falls_back_to_its_versions() {
    let mut w = setup();
    w.fund(ONE_OPEN, ONE_OPEN / 2);
    // m2 was trained on Datanet 1 version 2 and Datanet 2 version 1; its answers retrieved from Datanet 1 version 3.
    let mut r1 = w.receipt(1, 50_000, 20_000);
    let mut r2 = w.receipt(2, 77_777, 33_333);
    r1.retrievalHash = retrieval_hash(&refs(&[(1, 3)]));
    r2.retrievalHash = r1.retrievalHash;
    w.settle(&[r1.clone(), r2.clone()]);
    let (h1, h2) = (receipt_hash(&r1), receipt_hash(&r2));
    let operator = clone_key(&w.k.operator);
    // Contribution 4 (Datanet 1 version 3) came after m2's training data: only
    // the retrieved version lets a record credit it.
    let mixed = [(3u64, 700_000u32), (4, 300_000)];
    assert!(matches!(w.c.refused(&operator, post_plain(h1, &mixed)), IInferenceErrors::BadCredits(_)));
    let amount = hold(&w.c, h1).amount;
    w.c.ok(&operator, post_retrieved(h1, &mixed, &[(1, 3)]));
    let pc = w.c.view(IInference::pendingCreditsCall { receiptHash: h1 });
    assert_eq!(
        (pc.contributionIds, pc.amounts),
        (vec![3, 4], vec![amount * 700_000 / 1_000_000, amount * 300_000 / 1_000_000])
    );
    // No record for r2: the fallback is m2's, by its versions' live rows (8 : 4).
    w.c.until(hold(&w.c, h2).settledAt + TIMEOUT);
    let amount2 = hold(&w.c, h2).amount;
    let treasury = w.c.bal(&TREASURY);
    let out = w.c.ok(&clone_key(&w.k.other), expire(h2));
    let paid = fallback_paid(&out);
    assert_eq!(paid.iter().map(|(d, v, _)| (*d, *v)).collect::<Vec<_>>(), vec![(1, 2), (2, 1)]);
    let (pr1, pr2) = ((amount2 * 8 / 12) * E18 / 8, (amount2 * 4 / 12) * E18 / 4);
    assert_eq!(paid[0].2, (pr1 * 8).div_ceil(E18));
    assert_eq!(paid[1].2, (pr2 * 4).div_ceil(E18));
    assert_eq!(w.c.bal(&TREASURY) - treasury + paid[0].2 + paid[1].2, amount2);
}

#[test]
fn a_retrieval_record_found_wrong_on_the_base_model_goes_to_the_treasury() {
    let (mut w, h, amount) = settled_retrieval(&[(1, 2)]);
    let (operator, challenger, alice) = (clone_key(&w.k.operator), clone_key(&w.k.other), clone_key(&w.k.alice));
    w.c.ok(&operator, post_retrieved(h, &[(1, 1_000_000)], &[(1, 2)]));
    w.c.att_ok(&challenger, Amount(BOND), challenge(h));
    let opened = w.c.challenge_of(h);
    w.c.until(opened.revealBy + 1);
    // Not revealed: the record is wrong, replaced by the fallback over m1's versions (none).
    let pool = w.c.mem.holdings().unwrap().fallback_pool;
    let out = w.c.att_ok(
        &alice,
        Amount::ZERO,
        IAttributionCalls::resolveUnrevealed(IAttribution::resolveUnrevealedCall { receiptHash: h }),
    );
    assert_eq!(resolved(&out).status, 5);
    assert_eq!(fallback_paid(&out), vec![]);
    assert_eq!(hold(&w.c, h).status, FALLBACK);
    let t = w.c.mem.holdings().unwrap();
    assert_eq!((t.pending_attributions, t.fallback_pool), (Amount::ZERO, pool));
    assert_eq!(w.c.claimable(1), 0);
    assert_eq!(w.c.view(IInference::versionFallbackCall { datanetId: 1, version: 2 }), 0);
    // The hold left the module for the treasury (the supply check of every block holds).
    assert!(amount > 0);
}

/// Datanet versions a property case draws from: every version of the two
/// Datanets, and one that does not exist (Datanet 2 has only version 1).
const VERSIONS: [(u64, u64); 5] = [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)];
/// Each contribution's (Datanet, approval version); 5 does not exist.
const APPROVED_IN: [(u64, u64, u64); 4] = [(1, 1, 1), (2, 1, 2), (3, 2, 1), (4, 1, 3)];

/// Why a retrieval record on a base-model receipt that signed `signed` must
/// be refused, as the rules state them; `None` if it must be accepted.
fn retrieval_refusal(signed: &[(u64, u64)], posted: &[(u64, u64)], cs: &[Credit]) -> Option<&'static str> {
    if check_retrieved(&refs(posted)).is_err() {
        return Some("BadRetrieved");
    }
    if retrieval_hash(&refs(posted)) != retrieval_hash(&refs(signed)) {
        return Some("RetrievalMismatch");
    }
    if posted.iter().any(|v| !VERSIONS[..4].contains(v)) {
        return Some("BadRetrieved");
    }
    for (i, c) in cs.iter().enumerate() {
        let twice = cs[..i].iter().any(|p| p.contributionId == c.contributionId);
        let in_scope = APPROVED_IN
            .iter()
            .any(|(id, d, a)| *id == c.contributionId && posted.iter().any(|(pd, pv)| pd == d && a <= pv));
        if twice || !in_scope {
            return Some("BadCredits");
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    /// A retrieval record is accepted exactly when the rules allow it, and an
    /// accepted one pays each credit `floor(hold × ppm / 1e6)` and the dust to
    /// the treasury.
    #[test]
    fn retrieval_records_are_accepted_exactly_when_the_rules_allow(
        existing in proptest::sample::subsequence(VERSIONS[..4].to_vec(), 1..=3),
        ghost in proptest::bool::weighted(0.1),
        perturb in prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        extra in 0usize..5,
        raw in proptest::collection::vec((prop_oneof![8 => 1u64..5, 1 => Just(5u64)], 1u32..1_000), 1..3),
    ) {
        // Mostly versions that exist; sometimes one that does not (it sorts last).
        let mut signed = existing;
        if ghost {
            signed.push(VERSIONS[4]);
        }
        let (mut w, h, amount) = settled_retrieval(&signed);
        // What the operator posts: the signed list, reversed, with a version
        // added (kept in order), or with its first repeated.
        let mut posted = signed.clone();
        match perturb {
            1 => posted.reverse(),
            2 => {
                posted.push(VERSIONS[extra]);
                posted.sort();
            }
            3 => posted.insert(0, signed[0]),
            _ => {}
        }
        let cs = normalise(&raw);
        let operator = clone_key(&w.k.operator);
        let call = IInferenceCalls::postAttributionRetrieved(IInference::postAttributionRetrievedCall {
            receiptHash: h,
            recordHash: content_hash(RECORD),
            credits: cs.clone(),
            retrieved: refs(&posted),
        });
        match retrieval_refusal(&signed, &posted, &cs) {
            Some(want) => {
                let e = w.c.refused(&operator, call);
                let got = match e {
                    IInferenceErrors::BadRetrieved(_) => "BadRetrieved",
                    IInferenceErrors::RetrievalMismatch(_) => "RetrievalMismatch",
                    IInferenceErrors::BadCredits(_) => "BadCredits",
                    e => panic!("{e:?}"),
                };
                prop_assert_eq!(got, want, "signed {:?}, posted {:?}, credits {:?}", signed, posted, cs);
            }
            None => {
                w.c.ok(&operator, call);
                w.c.until(w.c.height + 1 + WINDOW);
                let treasury = w.c.bal(&TREASURY);
                let out = w.c.ok(&clone_key(&w.k.other), finalize(h));
                let credited: Vec<u128> = out
                    .logs
                    .iter()
                    .filter_map(|l| IInference::Credited::decode_log_data(&l.data).ok())
                    .map(|e| e.amount)
                    .collect();
                let want: Vec<u128> = cs.iter().map(|c| amount * c.weightPpm as u128 / 1_000_000).collect();
                prop_assert_eq!(&credited, &want);
                prop_assert_eq!(w.c.bal(&TREASURY) - treasury, amount - want.iter().sum::<u128>());
            }
        }
    }
}

// ---- revenue shares: a split model's owner part reaches its shareholders ----

const ASSETS: Address = Module::Assets.address();

impl World {
    /// The builder splits the model into `supply` shares; the share token.
    fn split(&mut self, supply: U256) -> Address {
        let call = IAssets::splitCall { assetId: model_asset(self.model), supply, symbol: "MED".into() };
        assert!(self.c.send(&self.k.builder, ASSETS, Amount::ZERO, call.abi_encode()).success);
        self.c.view_at(ASSETS, IAssets::shareTokenCall { assetId: model_asset(self.model) })
    }

    /// Deploy a forwarding proxy (`common::contracts`) from the builder; counted in the supply check.
    fn deploy_proxy(&mut self) -> Address {
        let nonce = self.c.mem.account(&self.k.builder.address()).unwrap().nonce;
        let tx = self.c.sign_kind(&self.k.builder, TxKind::Create, Amount::ZERO, deployer(&proxy(CALL, false)));
        assert!(self.c.block(vec![tx])[0].success);
        let p = self.k.builder.address().create(nonce);
        self.c.accounts.push(p);
        p
    }

    /// Settle `n` receipts from nonce `first`; the owner part they carry (less the base's royalty).
    fn settle_owner_part(&mut self, first: u64, n: u64) -> u128 {
        let rs: Vec<_> = (first..first + n).map(|i| self.receipt(i, 1_000 + 37 * i, 200 + 11 * i)).collect();
        self.settle(&rs);
        rs.iter().map(|r| parts(cost(r))[0] - royalty(parts(cost(r))[0])).sum()
    }

    fn earned(&self, token: Address, holder: Address) -> U256 {
        self.c.view_at(token, IShareToken::earnedCall { holder })
    }
}

#[test]
fn a_split_models_owner_part_reaches_its_shareholders_pro_rata() {
    let mut w = setup();
    let (builder, alice) = (w.k.builder.address(), w.k.alice.address());
    let asset = model_asset(w.model);
    let supply = U256::from(1_000u64) * U256::from(E18);
    let split =
        |supply: U256, symbol: &str| IAssets::splitCall { assetId: asset, supply, symbol: symbol.into() }.abi_encode();
    // Only the owner splits, once, into a valid supply with a plain symbol.
    let r = w.c.send(&w.k.alice, ASSETS, Amount::ZERO, split(supply, "MED"));
    assert_eq!(
        r.revert_data.as_ref(),
        IAssets::NotAssetOwner { assetId: asset, caller: alice, owner: builder }.abi_encode()
    );
    assert!(!w.c.send(&w.k.builder, ASSETS, Amount::ZERO, split(U256::ZERO, "MED")).success);
    // A supply past 10^18 shares would let the index overflow 256 bits: refused.
    let huge = runtime::assets::MAX_SUPPLY + U256::from(1u64);
    let r = w.c.send(&w.k.builder, ASSETS, Amount::ZERO, split(huge, "MED"));
    assert_eq!(r.revert_data.as_ref(), IAssets::InvalidShareSupply { supply: huge }.abi_encode());
    assert!(!w.c.send(&w.k.builder, ASSETS, Amount::ZERO, split(supply, "no spaces")).success);
    // A Datanet has no earnings of its own to share; an asset that does not exist is unknown.
    let datanet = runtime::assets::datanet_asset(1);
    let call = IAssets::splitCall { assetId: datanet, supply, symbol: "DATA".into() }.abi_encode();
    let r = w.c.send(&w.k.builder, ASSETS, Amount::ZERO, call);
    assert_eq!(r.revert_data.as_ref(), IAssets::NothingToShare { assetId: datanet }.abi_encode());
    let nothing = runtime::assets::datanet_asset(77);
    let call = IAssets::splitCall { assetId: nothing, supply, symbol: "DATA".into() }.abi_encode();
    let r = w.c.send(&w.k.builder, ASSETS, Amount::ZERO, call);
    assert_eq!(r.revert_data.as_ref(), IAssets::UnknownAsset { assetId: nothing }.abi_encode());
    let token = w.split(supply);
    assert_eq!(token, primitives::system::share_token_address(1));
    assert!(!w.c.send(&w.k.builder, ASSETS, Amount::ZERO, split(supply, "MED")).success, "a model splits once");
    assert_eq!(w.c.view_at(token, IShareToken::balanceOfCall { account: builder }), supply);
    assert_eq!(w.c.view_at(token, IShareToken::decimalsCall {}), 18);

    // A quarter to alice, then receipts settle: the owner part goes to the index.
    let quarter = supply / U256::from(4u64);
    let tr = IShareToken::transferCall { to: alice, value: quarter };
    assert!(w.c.send(&w.k.builder, token, Amount::ZERO, tr.abi_encode()).success);
    w.fund(10 * ONE_OPEN, 9 * ONE_OPEN);
    let before = w.c.bal(&builder);
    let owner_part = w.settle_owner_part(1, 2);
    assert_eq!(w.c.bal(&builder), before, "the owner is paid through its shares");
    let acc = U256::from(owner_part) * SCALE / supply;
    let share = |bal: U256| bal * acc / SCALE;
    assert_eq!(w.earned(token, builder), share(supply - quarter));
    assert_eq!(w.earned(token, alice), share(quarter));
    // Alice claims exactly her part; the module keeps the rest for the others.
    let a0 = w.c.bal(&alice);
    let r = w.c.send(&w.k.alice, token, Amount::ZERO, IShareToken::claimCall {}.abi_encode());
    assert!(r.success);
    assert_eq!(w.c.bal(&alice) + Chain::fee(&r) - a0, share(quarter).to::<u128>());
    assert_eq!(w.earned(token, alice), U256::ZERO);
    assert_eq!(w.c.bal(&ASSETS), owner_part - share(quarter).to::<u128>());
    // Moving shares later does not move what was earned before.
    let tr = IShareToken::transferCall { to: alice, value: supply / U256::from(2u64) };
    assert!(w.c.send(&w.k.builder, token, Amount::ZERO, tr.abi_encode()).success);
    assert_eq!(w.earned(token, builder), share(supply - quarter));
    // Shares cannot go where nobody could move them.
    for to in [Address::ZERO, ASSETS, token] {
        let tr = IShareToken::transferCall { to, value: U256::from(1u64) };
        assert!(!w.c.send(&w.k.alice, token, Amount::ZERO, tr.abi_encode()).success, "{to}");
    }
    w.c.check();
}

#[test]
fn shares_held_by_a_contract_earn_only_once_it_opts_in_and_nothing_is_lost() {
    let mut w = setup();
    let builder = w.k.builder.address();
    let supply = U256::from(100u64) * U256::from(E18);
    let token = w.split(supply);
    let pool = w.deploy_proxy();
    let half = supply / U256::from(2u64);
    let tr = IShareToken::transferCall { to: pool, value: half };
    assert!(w.c.send(&w.k.builder, token, Amount::ZERO, tr.abi_encode()).success);
    assert!(!w.c.view_at(ASSETS, IAssets::earningCall { account: pool }));
    assert_eq!(w.c.view_at(token, IShareToken::earningSupplyCall {}), half);

    // A contract's shares do not earn: the earning half takes the whole owner part.
    w.fund(10 * ONE_OPEN, 9 * ONE_OPEN);
    let p1 = w.settle_owner_part(1, 3);
    let acc1 = U256::from(p1) * SCALE / half;
    assert_eq!(w.earned(token, builder), half * acc1 / SCALE);
    assert_eq!(w.earned(token, pool), U256::ZERO);

    // The contract opts in through its own code, and its next settlement (a claim) counts it.
    let opt_in = through(ASSETS, IAssets::setEarningCall { on: true }.abi_encode());
    assert!(w.c.send(&w.k.builder, pool, Amount::ZERO, opt_in).success);
    let claim = through(token, IShareToken::claimCall {}.abi_encode());
    assert!(w.c.send(&w.k.builder, pool, Amount::ZERO, claim.clone()).success);
    assert_eq!(w.c.view_at(token, IShareToken::earningSupplyCall {}), supply);
    let dust1 = U256::from(p1) * SCALE - acc1 * half;
    let p2 = w.settle_owner_part(4, 2);
    let acc2 = (U256::from(p2) * SCALE + dust1) / supply;
    assert_eq!(w.earned(token, pool), half * acc2 / SCALE);
    let before = w.c.bal(&pool);
    assert!(w.c.send(&w.k.builder, pool, Amount::ZERO, claim).success);
    assert_eq!(U256::from(w.c.bal(&pool) - before), half * acc2 / SCALE);
    w.c.check();
}

#[derive(Clone, Debug)]
enum ShareOp {
    /// (from, to, fraction of from's balance in ppm)
    Transfer(usize, usize, u32),
    Claim(usize),
    Settle(u64),
    /// The contract opts in or out (takes effect at its next settlement).
    ContractEarning(bool),
}

fn share_op() -> impl Strategy<Value = ShareOp> {
    prop_oneof![
        (0..4usize, 0..4usize, 0..=1_000_000u32).prop_map(|(f, t, p)| ShareOp::Transfer(f, t, p)),
        (0..4usize).prop_map(ShareOp::Claim),
        (1..4u64).prop_map(ShareOp::Settle),
        any::<bool>().prop_map(ShareOp::ContractEarning),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    /// Random transfers, claims, settlements and opt-ins: shares are
    /// conserved, the earning supply is exactly the earning holders'
    /// balances, the module holds exactly what it owes (claimable + dust +
    /// rounding below one wei per settlement), and the supply equation holds.
    #[test]
    fn share_accounting_is_exact(ops in proptest::collection::vec(share_op(), 1..14)) {
        let mut w = setup();
        let supply = U256::from(1_000u64) * U256::from(E18) + U256::from(7u64);
        let token = w.split(supply);
        let pool = w.deploy_proxy();
        let keys = [clone_key(&w.k.builder), clone_key(&w.k.alice), clone_key(&w.k.bob)];
        let holders = [keys[0].address(), keys[1].address(), keys[2].address(), pool];
        w.fund(100 * ONE_OPEN, 90 * ONE_OPEN);
        let (mut nonce, mut deposited, mut claimed, mut settlements) = (1u64, 0u128, 0u128, 0u64);
        for op in ops {
            match op {
                ShareOp::Transfer(f, t, ppm) => {
                    let bal: U256 = w.c.view_at(token, IShareToken::balanceOfCall { account: holders[f] });
                    let value = bal * U256::from(ppm) / U256::from(1_000_000u32);
                    let inner = IShareToken::transferCall { to: holders[t], value }.abi_encode();
                    let r = if f == 3 {
                        w.c.send(&keys[0], pool, Amount::ZERO, through(token, inner))
                    } else {
                        w.c.send(&keys[f], token, Amount::ZERO, inner)
                    };
                    prop_assert!(r.success, "{r:?}");
                    settlements += 2;
                }
                ShareOp::Claim(h) => {
                    let want: U256 = w.earned(token, holders[h]);
                    let before = w.c.bal(&holders[h]);
                    let inner = IShareToken::claimCall {}.abi_encode();
                    let r = if h == 3 {
                        w.c.send(&keys[0], pool, Amount::ZERO, through(token, inner))
                    } else {
                        w.c.send(&keys[h], token, Amount::ZERO, inner)
                    };
                    prop_assert!(r.success);
                    let fee = if h == 3 { 0 } else { Chain::fee(&r) };
                    prop_assert_eq!(U256::from(w.c.bal(&holders[h]) + fee - before), want);
                    claimed += want.to::<u128>();
                    settlements += 1;
                }
                ShareOp::Settle(n) => {
                    deposited += w.settle_owner_part(nonce, n);
                    nonce += n;
                }
                ShareOp::ContractEarning(on) => {
                    let inner = IAssets::setEarningCall { on }.abi_encode();
                    prop_assert!(w.c.send(&keys[0], pool, Amount::ZERO, through(ASSETS, inner)).success);
                }
            }
            let t = runtime::assets::AssetsRead::share_token(&w.c.mem, 1).unwrap().unwrap();
            let hs: Vec<_> = holders.iter().map(|h| runtime::assets::AssetsRead::holder(&w.c.mem, 1, h).unwrap()).collect();
            prop_assert_eq!(hs.iter().map(|h| h.balance).fold(U256::ZERO, |a, b| a + b), supply);
            let earning: U256 = hs.iter().filter(|h| h.earning).map(|h| h.balance).fold(U256::ZERO, |a, b| a + b);
            prop_assert_eq!(t.earningSupply, earning);
            let owed: U256 = holders.iter().map(|h| w.earned(token, *h)).fold(U256::ZERO, |a, b| a + b);
            // Deposits made while no share earned were paid to the owner instead: held counts what was deposited.
            prop_assert_eq!(U256::from(w.c.bal(&ASSETS)), t.held);
            prop_assert!(t.held <= U256::from(deposited - claimed));
            prop_assert!(owed <= t.held, "the holders are never owed more than the module holds");
            let slack = U256::from(settlements + holders.len() as u64 + 1);
            prop_assert!(t.held - owed <= slack, "rounding: below a wei per settlement and holder, and dust / SCALE");
            w.c.check();
        }
    }
}

#[test]
fn models_and_datanets_are_erc721_tokens_whose_transfer_moves_the_owner() {
    let mut w = setup();
    let (builder, alice, bob) = (w.k.builder.address(), w.k.alice.address(), w.k.bob.address());
    let (model, datanet) = (model_asset(w.model), runtime::assets::datanet_asset(1));
    assert_eq!(w.c.view_at(ASSETS, IAssets::ownerOfCall { tokenId: model }), builder);
    assert_eq!(w.c.view_at(ASSETS, IAssets::ownerOfCall { tokenId: datanet }), builder);
    let owned = |w: &World, a: Address| -> U256 { w.c.view_at(ASSETS, IAssets::balanceOfCall { owner: a }) };
    let builder_had = owned(&w, builder);
    assert_eq!(builder_had, U256::from(3u64), "one model and two Datanets");

    // Only the owner, an approved address or an operator moves a token.
    let move_ =
        |from: Address, to: Address, token: U256| IAssets::transferFromCall { from, to, tokenId: token }.abi_encode();
    let r = w.c.send(&w.k.alice, ASSETS, Amount::ZERO, move_(builder, bob, model));
    assert_eq!(
        r.revert_data.as_ref(),
        IAssets::ERC721InsufficientApproval { operator: alice, tokenId: model }.abi_encode()
    );
    assert!(
        w.c.send(&w.k.builder, ASSETS, Amount::ZERO, IAssets::approveCall { to: alice, tokenId: model }.abi_encode())
            .success
    );
    assert!(w.c.send(&w.k.alice, ASSETS, Amount::ZERO, move_(builder, bob, model)).success);
    assert_eq!(w.c.view_at(ASSETS, IAssets::ownerOfCall { tokenId: model }), bob);
    assert_eq!(
        w.c.view_at(ASSETS, IAssets::getApprovedCall { tokenId: model }),
        Address::ZERO,
        "a transfer clears the approval"
    );
    assert_eq!(runtime::models::ModelsRead::model(&w.c.mem, primitives::ModelId(w.model)).unwrap().unwrap().owner, bob);
    let of_bob: Vec<u64> = w.c.view_at(Module::Models.address(), IModels::modelsOfCall { owner: bob });
    assert_eq!(of_bob, vec![w.model]);
    assert_eq!(owned(&w, builder), builder_had - U256::from(1u64));

    // The new owner holds the model's rights, and its earnings (the model is not split).
    let price = |id| {
        IModelsCalls::setPrice(IModels::setPriceCall { id, priceInPer1k: PRICE_IN, priceOutPer1k: PRICE_OUT })
            .abi_encode()
    };
    assert!(!w.c.send(&w.k.builder, Module::Models.address(), Amount::ZERO, price(w.model)).success);
    assert!(w.c.send(&w.k.bob, Module::Models.address(), Amount::ZERO, price(w.model)).success);
    w.fund(10 * ONE_OPEN, 9 * ONE_OPEN);
    let before = w.c.bal(&bob);
    let owner_part = w.settle_owner_part(1, 2);
    assert_eq!(w.c.bal(&bob) - before, owner_part);

    // An operator moves a Datanet; its curation goes with it.
    let op = IAssets::setApprovalForAllCall { operator: alice, approved: true };
    assert!(w.c.send(&w.k.builder, ASSETS, Amount::ZERO, op.abi_encode()).success);
    assert!(w.c.send(&w.k.alice, ASSETS, Amount::ZERO, move_(builder, alice, datanet)).success);
    assert_eq!(runtime::datanets::DatanetsRead::datanet(&w.c.mem, 1).unwrap().unwrap().owner, alice);
    assert_eq!(runtime::datanets::DatanetsRead::datanets_of(&w.c.mem, &alice).unwrap(), vec![1]);

    // Nowhere nobody could act from; safe transfers refuse contracts (no receiver hook).
    for to in [Address::ZERO, ASSETS, primitives::system::share_token_address(1)] {
        assert!(!w.c.send(&w.k.alice, ASSETS, Amount::ZERO, move_(alice, to, datanet)).success, "{to}");
    }
    let pool = w.deploy_proxy();
    let safe = IAssets::safeTransferFrom_0Call { from: alice, to: pool, tokenId: datanet };
    let r = w.c.send(&w.k.alice, ASSETS, Amount::ZERO, safe.abi_encode());
    assert_eq!(r.revert_data.as_ref(), IAssets::ERC721InvalidReceiver { receiver: pool }.abi_encode());
    assert!(
        w.c.send(&w.k.alice, ASSETS, Amount::ZERO, move_(alice, pool, datanet)).success,
        "transferFrom reaches a contract"
    );
    let gone = runtime::assets::datanet_asset(99);
    let e = w.c.view_error_at(ASSETS, IAssets::ownerOfCall { tokenId: gone });
    assert_eq!(e.as_ref(), IAssets::ERC721NonexistentToken { tokenId: gone }.abi_encode());
    assert!(w.c.view_at(ASSETS, IAssets::supportsInterfaceCall { interfaceId: [0x80, 0xac, 0x58, 0xcd].into() }));
    w.c.check();
}

#[test]
fn a_fine_tune_pays_its_base_a_royalty_that_reaches_the_base_shareholders() {
    let mut w = setup();
    let (alice, bob) = (w.k.alice.address(), w.k.bob.address());
    let models = Module::Models.address();
    // Alice registers a base model (no adapter); the builder a fine-tune of it.
    let base_hash = B256::repeat_byte(0xbb);
    let base_reg = ModelRegistration { baseModelHash: base_hash, ..registration("alice-base", B256::ZERO, vec![]) };
    let r = w.c.send(
        &w.k.alice,
        models,
        Amount::ZERO,
        IModelsCalls::register(IModels::registerCall { registration: base_reg }).abi_encode(),
    );
    let base = IModels::ModelRegistered::decode_log_data(&r.logs[0].data).unwrap().id;
    let tune_reg =
        ModelRegistration { baseModelHash: base_hash, ..registration("builder-tune", content_hash(b"tune"), vec![]) };
    let r = w.c.send(
        &w.k.builder,
        models,
        Amount::ZERO,
        IModelsCalls::register(IModels::registerCall { registration: tune_reg }).abi_encode(),
    );
    let tune = IModels::ModelRegistered::decode_log_data(&r.logs[0].data).unwrap().id;
    let propose = w.c.sign(
        &w.k.builder,
        models,
        Amount::ZERO,
        IModelsCalls::propose(IModels::proposeCall { id: tune }).abi_encode(),
    );
    w.c.block_with(vec![propose], vec![IModelsCalls::approve(IModels::approveCall { ids: vec![tune] })]);

    // Alice splits her base and sells a fifth to bob.
    let supply = U256::from(10u64) * U256::from(E18);
    let split = IAssets::splitCall { assetId: model_asset(base), supply, symbol: "BASE".into() };
    assert!(w.c.send(&w.k.alice, ASSETS, Amount::ZERO, split.abi_encode()).success);
    let token: Address = w.c.view_at(ASSETS, IAssets::shareTokenCall { assetId: model_asset(base) });
    let fifth = supply / U256::from(5u64);
    assert!(
        w.c.send(&w.k.alice, token, Amount::ZERO, IShareToken::transferCall { to: bob, value: fifth }.abi_encode())
            .success
    );

    // Receipts of the fine-tune: its owner gets the owner part less the royalty; the base's shareholders the royalty.
    w.fund(10 * ONE_OPEN, 9 * ONE_OPEN);
    let rs: Vec<_> = (1..=3u64)
        .map(|i| {
            let mut r = w.receipt(i, 900 + i, 300 + i);
            (r.modelId, r.adapterHash) = (tune, content_hash(b"tune"));
            r
        })
        .collect();
    let builder0 = w.c.bal(&w.k.builder.address());
    w.settle(&rs);
    let roy: u128 = rs.iter().map(|r| royalty(parts(cost(r))[0])).sum();
    let own: u128 = rs.iter().map(|r| parts(cost(r))[0]).sum::<u128>() - roy;
    assert!(roy > 0);
    assert_eq!(w.c.bal(&w.k.builder.address()) - builder0, own);
    let acc = U256::from(roy) * SCALE / supply;
    assert_eq!(w.earned(token, alice), (supply - fifth) * acc / SCALE);
    assert_eq!(w.earned(token, bob), fifth * acc / SCALE);
    w.c.check();
}

// ---- licences ----

/// Licence events of a receipt.
fn drawn(r: &Receipt) -> Vec<IInference::LicenceDrawn> {
    r.logs
        .iter()
        .filter(|l| l.address == INFERENCE)
        .filter_map(|l| IInference::LicenceDrawn::decode_log_data(&l.data).ok())
        .collect()
}

impl World {
    /// The model's owner offers a licence; its id.
    fn offer(&mut self, price: u128, blocks: u64, tokens: u64) -> u64 {
        let b = clone_key(&self.k.builder);
        let call = IInference::offerLicenceCall {
            modelId: self.model,
            price,
            durationBlocks: blocks,
            tokens,
            commercial: true,
        };
        let r = self.c.ok(&b, IInferenceCalls::offerLicence(call));
        IInference::LicenceOffered::decode_log_data(&r.logs[0].data).unwrap().offerId
    }

    fn buy(&mut self, offer: u64, value: u128) -> Receipt {
        let p = clone_key(&self.k.payer);
        self.c.send(
            &p,
            INFERENCE,
            Amount(value),
            IInferenceCalls::buyLicence(IInference::buyLicenceCall { offerId: offer }).abi_encode(),
        )
    }

    fn licence(&self, id: u64) -> primitives::abi::Licence {
        self.c.view(IInference::licenceCall { licenceId: id })
    }
}

#[test]
fn a_volume_licence_pays_its_receipts_at_its_rate_to_the_wei() {
    let mut w = setup();
    // An allowance of one base unit: only the licence can pay.
    w.fund(10 * ONE_OPEN, 1);
    let p = clone_key(&w.k.payer);
    let price = 7 * ONE_OPEN + 3;
    let tokens = 1_000_003;
    // Only the owner offers, with a price and a bound.
    let stranger = IInferenceCalls::offerLicence(IInference::offerLicenceCall {
        modelId: w.model,
        price,
        durationBlocks: 0,
        tokens,
        commercial: true,
    });
    assert!(matches!(w.c.refused(&p, stranger), IInferenceErrors::NotModelOwner(_)));
    let b = clone_key(&w.k.builder);
    for (price, blocks, tokens) in [(0, 0, 5), (5, 0, 0), (5, MAX_DURATION_BLOCKS + 1, 0)] {
        let c = IInferenceCalls::offerLicence(IInference::offerLicenceCall {
            modelId: w.model,
            price,
            durationBlocks: blocks,
            tokens,
            commercial: true,
        });
        assert!(matches!(w.c.refused(&b, c), IInferenceErrors::InvalidLicenceTerms(_)));
    }
    let offer = w.offer(price, 0, tokens);
    // The price exactly, or nothing.
    for wrong in [price - 1, price + 1] {
        let r = w.buy(offer, wrong);
        assert!(!r.success);
        assert!(matches!(IInferenceErrors::abi_decode(&r.revert_data).unwrap(), IInferenceErrors::WrongPayment(_)));
    }
    let inference_before = w.c.bal(&INFERENCE);
    let r = w.buy(offer, price);
    assert!(r.success);
    let id = IInference::LicenceBought::decode_log_data(&r.logs[0].data).unwrap().licenceId;
    assert_eq!(w.c.bal(&INFERENCE), inference_before + price);
    assert_eq!(w.c.mem.holdings().unwrap().licences.0, price);
    w.c.check();
    // A second purchase while this one is active is refused.
    let again = w.buy(offer, price);
    assert!(matches!(IInferenceErrors::abi_decode(&again.revert_data).unwrap(), IInferenceErrors::LicenceHeld(_)));

    // Receipts draw floor(left × n / tokensLeft); the last takes what is left.
    let sizes = [(1_000, 333), (250_000, 1), (7, 0), (400_000, 3_331)];
    let mut rs = vec![];
    let (mut left, mut tokens_left, mut expected) = (price, tokens, vec![]);
    for (i, (input, output)) in sizes.iter().enumerate() {
        let r = w.receipt(i as u64 + 1, *input, *output);
        let n = input + output;
        let d = (U256::from(left) * U256::from(n) / U256::from(tokens_left)).to::<u128>();
        left -= d;
        tokens_left -= n;
        expected.push(d);
        rs.push(r);
    }
    let owner_before = w.c.bal(&w.k.builder.address());
    let r = w.settle(&rs);
    let got: Vec<u128> = drawn(&r).iter().map(|d| d.amount).collect();
    assert_eq!(got, expected);
    let costs: Vec<u128> = settled(&r).iter().map(|s| s.cost).collect();
    assert_eq!(costs, expected, "a covered receipt's cost is its draw");
    // The draws are split as any cost: the owner part (less the base royalty) to
    // the owner, the data part held for attribution.
    let owner: u128 = expected
        .iter()
        .map(|c| {
            let o = parts(*c)[0];
            o - royalty(o)
        })
        .sum();
    assert_eq!(w.c.bal(&w.k.builder.address()), owner_before + owner);
    for (s, c) in settled(&r).iter().zip(&expected) {
        assert_eq!(hold(&w.c, s.receiptHash).amount, parts(*c)[1]);
    }
    let l = w.licence(id);
    assert_eq!((l.amountLeft, l.tokensLeft), (left, tokens_left));
    assert_eq!(
        w.c.view(IInference::allowanceCall { payer: p.address(), operator: w.k.operator.address() }).remaining,
        1
    );
    w.c.check();

    // More tokens than are left: not covered, and there is no allowance.
    let big = w.receipt(10, tokens_left, 1);
    let op = clone_key(&w.k.operator);
    let call = w.settle_signed(&[big], &clone_key(&w.k.serving));
    assert!(matches!(w.c.refused(&op, call), IInferenceErrors::AllowanceExceeded(_)));
    // Exactly what is left: it draws the rest, and the draws sum to the price.
    let last = w.receipt(11, tokens_left - 5, 5);
    let r = w.settle(&[last]);
    assert_eq!(drawn(&r)[0].amount, left);
    assert_eq!(expected.iter().sum::<u128>() + left, price, "the draws sum to the price");
    assert_eq!(w.c.mem.holdings().unwrap().licences.0, 0);
    // Used up: anyone closes it (nothing left to pay), and the payer buys again.
    let over = w.licence(id);
    assert_eq!(over.tokensLeft, 0);
    let r = w.buy(offer, price);
    assert!(r.success, "a used-up licence is closed by the next purchase");
    assert!(w.licence(id).closed);
    w.c.check();
}

#[test]
fn a_time_licence_vests_by_block_and_pays_out_what_is_left_when_it_ends() {
    let mut w = setup();
    w.fund(10 * ONE_OPEN, 1);
    let price = 1_000 * ONE_OPEN + 1;
    let offer = w.offer(price, 10, 0);
    assert!(w.buy(offer, price).success);
    let id = w.c.view(IInference::licenceOfCall { holder: w.k.payer.address(), modelId: w.model });
    let l = w.licence(id);
    assert_eq!(l.end, l.start + 10);
    // Three blocks later a receipt draws three tenths; a second in the same block nothing.
    w.c.until(l.start + 3);
    let (a, b) = (w.receipt(1, 50, 50), w.receipt(2, 5_000_000, 9));
    let r = w.settle(&[a, b]);
    let d: Vec<u128> = drawn(&r).iter().map(|d| d.amount).collect();
    let first = price * 3 / 10;
    assert_eq!(d, vec![first, 0]);
    // Closing before the end is refused, by anyone.
    let other = clone_key(&w.k.other);
    let close = IInferenceCalls::closeLicence(IInference::closeLicenceCall { licenceId: id });
    assert!(matches!(w.c.refused(&other, close.clone()), IInferenceErrors::LicenceNotOver(_)));
    // After the end, a receipt issued during the licence draws all that is left.
    let during = w.receipt(3, 1, 1);
    w.c.until(l.end + 1);
    let r = w.settle(&[during]);
    assert_eq!(drawn(&r)[0].amount, price - first);
    w.c.check();

    // A second licence ends unused: closing pays it out as a receipt without an operator.
    assert!(w.buy(offer, price).success, "an ended licence is closed by the next purchase");
    let id2 = w.c.view(IInference::licenceOfCall { holder: w.k.payer.address(), modelId: w.model });
    assert_ne!(id2, id);
    let end = w.licence(id2).end;
    w.c.until(end);
    let (owner0, treasury0, op0) =
        (w.c.bal(&w.k.builder.address()), w.c.bal(&TREASURY), w.c.bal(&w.k.operator.address()));
    let r = w.c.ok(&other, IInferenceCalls::closeLicence(IInference::closeLicenceCall { licenceId: id2 }));
    let [o, d, _, _, _] = parts(price);
    assert_eq!(w.c.bal(&w.k.builder.address()) - owner0, o - royalty(o));
    assert_eq!(w.c.bal(&w.k.operator.address()), op0, "no operator served it");
    let fallback: u128 = fallback_paid(&r).iter().map(|f| f.2).sum();
    assert!(fallback > 0 && fallback <= d, "the data part goes to the model's versions by rows");
    assert!(w.c.bal(&TREASURY) > treasury0);
    assert!(w.licence(id2).closed);
    assert_eq!(w.c.view(IInference::licenceOfCall { holder: w.k.payer.address(), modelId: w.model }), 0);
    assert!(matches!(
        w.c.refused(&other, IInferenceCalls::closeLicence(IInference::closeLicenceCall { licenceId: id2 })),
        IInferenceErrors::LicenceNotOver(_)
    ));
    w.c.check();
}

#[test]
fn a_licence_of_a_retired_model_returns_what_is_left_to_its_holder() {
    let mut w = setup();
    let price = 9 * ONE_OPEN;
    let offer = w.offer(price, 0, 1_000);
    assert!(w.buy(offer, price).success);
    let id = w.c.view(IInference::licenceOfCall { holder: w.k.payer.address(), modelId: w.model });
    let b = clone_key(&w.k.builder);
    let retire = IModelsCalls::retire(IModels::retireCall { id: w.model });
    assert!(w.c.send(&b, Module::Models.address(), Amount::ZERO, retire.abi_encode()).success);
    // No new licences of a retired model, no purchases of its offers.
    let c = IInferenceCalls::offerLicence(IInference::offerLicenceCall {
        modelId: w.model,
        price,
        durationBlocks: 5,
        tokens: 0,
        commercial: true,
    });
    assert!(matches!(w.c.refused(&b, c), IInferenceErrors::ModelNotServable(_)));
    let close = IInferenceCalls::closeLicence(IInference::closeLicenceCall { licenceId: id });
    // Within the grace period it is not over; after it, only the holder takes it back.
    let p = clone_key(&w.k.payer);
    assert!(matches!(w.c.refused(&p, close.clone()), IInferenceErrors::LicenceNotOver(_)));
    w.c.until(w.c.height + GRACE + 2);
    let other = clone_key(&w.k.other);
    assert!(matches!(w.c.refused(&other, close.clone()), IInferenceErrors::LicenceNotOver(_)));
    let before = w.c.bal(&p.address());
    let r = w.c.inf(&p, close);
    assert!(r.success);
    assert_eq!(w.c.bal(&p.address()) + Chain::fee(&r), before + price);
    w.c.check();
}

#[test]
fn a_model_trained_on_non_commercial_data_offers_no_licence() {
    let mut w = setup();
    let attester = SecretKey::from_bytes(&[0xa7; 32]).unwrap();
    let b = clone_key(&w.k.builder);
    create_datanet(&mut w.c, &b, &attester, "research", "CC-BY-NC-4.0");
    let alice = clone_key(&w.k.alice);
    contribute(&mut w.c, &attester, &b, &alice, 3, 2, 5);
    let mut reg =
        registration("research", content_hash(b"nc adapter"), vec![DatanetVersionRef { datanetId: 3, version: 1 }]);
    (reg.priceInPer1k, reg.priceOutPer1k) = (0, 0);
    let r = w.c.send(
        &b,
        Module::Models.address(),
        Amount::ZERO,
        IModelsCalls::register(IModels::registerCall { registration: reg }).abi_encode(),
    );
    assert!(r.success);
    let id = IModels::ModelRegistered::decode_log_data(&r.logs[0].data).unwrap().id;
    for commercial in [true, false] {
        let c = IInferenceCalls::offerLicence(IInference::offerLicenceCall {
            modelId: id,
            price: ONE_OPEN,
            durationBlocks: 5,
            tokens: 0,
            commercial,
        });
        assert!(matches!(w.c.refused(&b, c), IInferenceErrors::NonCommercialModel(_)));
    }
}
