//! Staking, governance and node keys end to end: a real node started with
//! `--instant` (a block as soon as a transaction arrives; time moves forward by
//! sending 1-wei transfers), driven through the CLI with `--json` and raw RPC.
//!
//! Dev genesis: dev account 0 is the single validator (1,000 OPEN self bond);
//! voting delay 2 blocks, voting period 6, timelock 2, deposit 10 OPEN,
//! proposal threshold 100 OPEN, unbonding 10 blocks.
//!
//! Note: `eth_estimateGas` (which the CLI runs before sending) executes at the
//! head's height while the transaction lands one block later, so the tests
//! move the head to the first height where a height-gated call is valid
//! (e.g. `voteStart` for a vote, `eta` for an execution) before using the CLI.

mod common;

use std::process::Output;

use alloy_sol_types::{SolCall, SolError, SolEvent};
use common::*;
use keys::SecretKey;
use primitives::abi::{IGovernance, IParams, IStaking, Unauthorized};
use primitives::system::{Module, TREASURY};
use primitives::{Address, B256, ONE_OPEN, U256};
use rpc::client::RpcClient;
use rpc::types::{BlockNumberOrTag, Filter, Log, Receipt, revert_reason};
use serde_json::{Value, json};

const STAKING: Address = Module::Staking.address();
const GOVERNANCE: Address = Module::Governance.address();
const PARAMS: Address = Module::Params.address();

struct Chain {
    node: NodeProc,
    c: RpcClient,
    _dir: tempfile::TempDir,
}

impl Chain {
    fn start() -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let node = NodeProc::start(&dir.path().join("chain"), &["--instant"]);
        let c = node.client();
        Chain { node, c, _dir: dir }
    }

    fn rpc(&self) -> &str {
        &self.node.rpc
    }

    /// Run the CLI with `--json` and `--rpc`; it must succeed; its JSON output.
    fn ol(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--rpc", self.rpc()]);
        let out = cli_ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// Run the CLI (human output); it must fail; its stdout and stderr.
    fn ol_fail(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--rpc", self.rpc()]);
        let o: Output = cli(&all);
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(!o.status.success(), "openledger {args:?} should have failed:\n{text}");
        text
    }

    fn head(&mut self) -> u64 {
        self.c.block_number().unwrap()
    }

    /// Sign and send a transaction with a fixed gas limit (no estimation, so a
    /// reverting call is mined with status 0); its receipt.
    fn raw(&mut self, key: &SecretKey, to: Address, value: u128, data: Vec<u8>, gas: u64) -> Receipt {
        let nonce = self.c.nonce(&key.address(), true).unwrap();
        let hash = self.c.send_raw(&signed(key, nonce, to, value, data, gas)).unwrap();
        self.c.wait_receipt(&hash, std::time::Duration::from_secs(30)).unwrap()
    }

    /// Move the head to at least `height` with 1-wei transfers from dev account 9.
    fn advance_to(&mut self, height: u64) {
        let k = dev(9);
        while self.head() < height {
            let r = self.raw(&k, dev(9).address(), 1, vec![], 21_000);
            assert!(r.status());
        }
    }

    fn balance(&mut self, a: Address) -> u128 {
        self.c.balance(&a).unwrap().to::<u128>()
    }

    fn balance_at(&mut self, a: Address, block: u64) -> u128 {
        hex_u(&self.c.call("eth_getBalance", json!([a, format!("{block:#x}")])).unwrap())
    }

    fn view<C: SolCall>(&mut self, to: Address, call: C) -> C::Return {
        let out =
            self.c.call("eth_call", json!([{"to": to, "data": primitives::Bytes::from(call.abi_encode())}, "latest"]));
        let s = out.unwrap_or_else(|e| panic!("{}: {e}", C::SIGNATURE));
        C::abi_decode_returns(&hex::decode(s.as_str().unwrap().trim_start_matches("0x")).unwrap()).unwrap()
    }

    fn receipt(&mut self, hash: &Value) -> Receipt {
        let h: B256 = hash.as_str().unwrap().parse().unwrap();
        self.c.receipt(&h).unwrap().expect("receipt")
    }

    /// What a mined transaction paid in fees.
    fn fee_paid(&mut self, hash: &Value) -> u128 {
        let r = self.receipt(hash);
        u128::from(r.gas_used) * r.effective_gas_price
    }

    /// The treasury's share of a transaction's fee (fee.treasury_bps of the base-fee part).
    fn treasury_fee_share(&mut self, receipt: &Receipt) -> u128 {
        let block = self.c.block(BlockNumberOrTag::Number(mined_in(receipt)), false).unwrap().expect("its block");
        let base_fee = u128::from(block.header.base_fee_per_gas.expect("a base fee"));
        let bps = self.view(PARAMS, IParams::getCall { name: "fee.treasury_bps".into() }).to::<u128>();
        u128::from(receipt.gas_used) * base_fee * bps / 10_000
    }

    fn proposal(&mut self, id: u64) -> IGovernance::proposalReturn {
        self.view(GOVERNANCE, IGovernance::proposalCall { id })
    }

    fn operator(&mut self, op: Address) -> IStaking::operatorInfoReturn {
        self.view(STAKING, IStaking::operatorInfoCall { operator: op })
    }
}

fn addr(i: u32) -> String {
    dev(i).address().to_checksum(None)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn num(v: &Value) -> u128 {
    match v {
        Value::String(t) => t.parse().unwrap_or_else(|_| panic!("not a number: {v}")),
        Value::Number(n) => n.as_u64().unwrap() as u128,
        _ => panic!("not a number: {v}"),
    }
}

fn open(n: u128) -> u128 {
    n * ONE_OPEN
}

/// The logs of event `E` emitted by `address` among a receipt's (or an `eth_getLogs` answer's) logs.
fn events<E: SolEvent>(logs: &[Log], address: Address) -> Vec<E> {
    logs.iter()
        .filter(|l| l.address() == address && l.topic0() == Some(&E::SIGNATURE_HASH))
        .map(|l| E::decode_raw_log(l.topics().iter().copied(), &l.data().data).unwrap())
        .collect()
}

/// The block a receipt's transaction was mined in.
fn mined_in(r: &Receipt) -> u64 {
    r.block_number.expect("a mined receipt names its block")
}

/// The revert data of a status-0 receipt.
fn revert_of(r: &Receipt) -> Vec<u8> {
    assert!(!r.status(), "expected a failed transaction: {r:?}");
    revert_reason(r).expect("revert data").to_vec()
}

/// A status-0 receipt whose revert data is the custom error `E`; the decoded error.
fn reverted_with<E: SolError>(r: &Receipt) -> E {
    let d = revert_of(r);
    assert_eq!(d[..4], E::SELECTOR, "expected {} but the revert data is 0x{}", E::SIGNATURE, hex::encode(&d));
    E::abi_decode(&d).unwrap()
}

/// Propose through the CLI; (id, voteStart, voteEnd).
fn propose(ch: &Chain, from: u32, args: &[&str]) -> (u64, u64, u64) {
    let dev_account = from.to_string();
    let mut all = vec!["gov", "propose", "--dev-account", &dev_account];
    all.extend_from_slice(args);
    let v = ch.ol(&all);
    assert_eq!(v["status"], "0x1");
    (num(&v["id"]) as u64, num(&v["voteStart"]) as u64, num(&v["voteEnd"]) as u64)
}

/// Vote for, with the voting window open at the head, through the CLI.
fn vote_for(ch: &mut Chain, id: u64, from: u32, vote_start: u64) -> u128 {
    ch.advance_to(vote_start);
    let v = ch.ol(&["gov", "vote", &id.to_string(), "for", "--dev-account", &from.to_string()]);
    num(&v["weight"])
}

#[test]
fn parameter_change_waits_for_its_timelock() {
    let mut ch = Chain::start();
    let (id, start, end) = propose(
        &ch,
        0,
        &["--description", "mint 1 OPEN per block", "--set-param", "staking.issuance_per_block=1000000000000000000"],
    );
    assert_eq!(id, 1);
    assert_eq!(end, start + 5);
    let p = ch.ol(&["gov", "show", "1"]);
    assert_eq!(p["state"], "pending");
    assert_eq!(num(&p["deposit"]), open(10));
    assert_eq!(p["calls"][0]["target"], json!(PARAMS));
    assert!(
        s(&p["calls"][0]["call"]).contains("params.set(\"staking.issuance_per_block\", 1000000000000000000)"),
        "{p}"
    );
    // Not reachable yet: `wait` gives up after its timeout.
    let out = ch.ol_fail(&["gov", "wait", "1", "--state", "queued", "--timeout", "1"]);
    assert!(out.contains("timed out"), "{out}");

    assert_eq!(vote_for(&mut ch, id, 0, start), open(1000));
    ch.advance_to(end); // tallied at the end of block voteEnd
    let w = ch.ol(&["gov", "wait", "1", "--state", "queued", "--timeout", "5"]);
    assert_eq!(w["state"], "queued");
    let p = ch.ol(&["gov", "show", "1"]);
    assert_eq!(p["state"], "queued");
    assert_eq!(num(&p["eta"]) as u64, end + 2);
    assert_eq!(num(&p["forVotes"]), open(1000));
    let eta = end + 2;

    // Before the timelock: the CLI refuses by name, and a mined attempt reverts.
    let out = ch.ol_fail(&["gov", "execute", "1", "--no-wait", "--dev-account", "0"]);
    assert!(out.contains("TimelockNotExpired"), "{out}");
    let r = ch.raw(&dev(0), GOVERNANCE, 0, IGovernance::executeCall { id }.abi_encode(), 500_000);
    let e: IGovernance::TimelockNotExpired = reverted_with(&r);
    assert_eq!((e.id, e.eta, e.height), (id, eta, mined_in(&r)));
    assert_eq!(ch.proposal(id).state, runtime::governance::QUEUED);
    let params = ch.ol(&["query", "params"]);
    assert_eq!(params["staking.issuance_per_block"], "0");

    ch.advance_to(eta);
    let x = ch.ol(&["gov", "execute", "1", "--dev-account", "0"]);
    assert_eq!(x["status"], "0x1");
    let r = ch.receipt(&x["hash"]);
    let changed: Vec<IParams::ParamChanged> = events(r.inner.logs(), PARAMS);
    assert_eq!(changed.len(), 1);
    let changed = &changed[0];
    assert_eq!((changed.name.as_str(), changed.newValue), ("staking.issuance_per_block", U256::from(ONE_OPEN)));
    let params = ch.ol(&["query", "params"]);
    assert_eq!(params["staking.issuance_per_block"], "1000000000000000000");
    // From the execution's block on, every block mints 1 OPEN for the validators.
    let exec_block = mined_in(&r);
    ch.advance_to(exec_block + 3);
    let supply = ch.ol(&["query", "supply"]);
    assert_eq!(num(&supply["issued"]), open((ch.head() - exec_block + 1) as u128), "{supply}");
    assert_eq!(ch.ol(&["gov", "show", "1"])["state"], "executed");
    let list = ch.ol(&["gov", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["state"], "executed");
    assert_eq!(list[0]["description"], "mint 1 OPEN per block");
    // Executed once only.
    let out = ch.ol_fail(&["gov", "execute", "1", "--dev-account", "0"]);
    assert!(out.contains("NotQueued") && out.contains("executed"), "{out}");
}

/// On `up --instant` nothing seals without transactions: the README's lines,
/// pasted as written, still work, because a wait for blocks on an idle dev
/// node seals them (`anvil_mine`) instead of timing out.
#[test]
fn governance_waits_seal_blocks_on_an_idle_instant_dev_node() {
    let ch = Chain::start();
    let (id, start, _) = propose(&ch, 0, &["--description", "a signal", "--set-param", "governance.deposit=1"]);
    let head = |ch: &Chain| ch.node.client().block_number().unwrap();
    assert!(head(&ch) + 1 < start, "voting opens in a later block");
    let v = ch.ol(&["gov", "vote", &id.to_string(), "for", "--dev-account", "0"]);
    assert_eq!(v["status"], "0x1");
    let w = ch.ol(&["gov", "wait", &id.to_string(), "--state", "queued", "--timeout", "60"]);
    assert_eq!(w["state"], "queued");
    let x = ch.ol(&["gov", "execute", &id.to_string(), "--dev-account", "0"]);
    assert_eq!(x["status"], "0x1");
    assert_eq!(ch.ol(&["gov", "show", &id.to_string()])["state"], "executed");
}

#[test]
fn treasury_spend_moves_exactly_the_amount() {
    let mut ch = Chain::start();
    // Fees accrue to the treasury; top it up with a plain transfer too.
    let r = ch.raw(&dev(8), TREASURY, 5 * ONE_OPEN, vec![], 21_000);
    assert!(r.status());
    assert!(ch.balance(TREASURY) >= 5 * ONE_OPEN);

    let call = format!("governance.spendTreasury {} 1", addr(7));
    let (id, start, end) = propose(&ch, 0, &["--description", "grant", "--call", &call]);
    let p = ch.ol(&["gov", "show", &id.to_string()]);
    assert!(s(&p["calls"][0]["call"]).starts_with("governance.spendTreasury("), "{p}");
    // A second proposal asks for more than the treasury holds.
    let greedy = format!("governance.spendTreasury {} 1000000OPEN", addr(7));
    let (id2, start2, end2) = propose(&ch, 0, &["--description", "too much", "--call", &greedy]);
    vote_for(&mut ch, id, 0, start);
    vote_for(&mut ch, id2, 0, start2);
    ch.advance_to(end.max(end2) + 2);

    // Its execution fails as a whole, naming the failed call and why; it stays queued.
    let out = ch.ol_fail(&["gov", "execute", &id2.to_string(), "--dev-account", "0"]);
    assert!(out.contains("ProposalCallFailed(index: 0, reason: InsufficientBalance("), "{out}");
    let r = ch.raw(&dev(0), GOVERNANCE, 0, IGovernance::executeCall { id: id2 }.abi_encode(), 500_000);
    let e: IGovernance::ProposalCallFailed = reverted_with(&r);
    assert_eq!(e.index, U256::ZERO);
    assert_eq!(e.reason[..4], primitives::abi::InsufficientBalance::SELECTOR);
    assert_eq!(ch.ol(&["gov", "show", &id2.to_string()])["state"], "queued");

    let before = ch.head();
    let x = ch.ol(&["gov", "execute", &id.to_string(), "--dev-account", "0"]);
    let r = ch.receipt(&x["hash"]);
    let block = mined_in(&r);
    assert_eq!(block, before + 1);
    let to7 = dev(7).address();
    assert_eq!(ch.balance_at(to7, block) - ch.balance_at(to7, before), 1);
    // The treasury paid 1 wei and received its share of the execute transaction's fee, nothing else.
    let fee_share = ch.treasury_fee_share(&r);
    assert_eq!(ch.balance_at(TREASURY, block) + 1, ch.balance_at(TREASURY, before) + fee_share);
    let spent: Vec<IGovernance::TreasurySpent> = events(r.inner.logs(), GOVERNANCE);
    assert_eq!(spent.len(), 1);
    assert_eq!((spent[0].to, spent[0].amount), (to7, U256::from(1)));
    assert_eq!(ch.ol(&["gov", "show", &id.to_string()])["state"], "executed");
}

#[test]
fn failed_quorum_burns_the_deposit() {
    let mut ch = Chain::start();
    // Dev 1 delegates 200 OPEN to the validator: voting power 200 of 2,200 (the validator's
    // 1,000, the dev serving operator's 1,000 and the delegation; below the 25% quorum).
    let op = addr(0);
    let d = ch.ol(&["stake", "delegate", &op, "200", "--dev-account", "1"]);
    assert_eq!(d["kind"], "delegation");
    // `delegate` is for other people's operators.
    let out = ch.ol_fail(&["stake", "delegate", &op, "1", "--dev-account", "0"]);
    assert!(out.contains("self bond"), "{out}");
    let pw = ch.ol(&["stake", "power", &addr(1)]);
    assert_eq!((num(&pw["power"]), num(&pw["totalPower"])), (open(200), open(2200)));
    let show = ch.ol(&["stake", "show", &op]);
    assert_eq!(num(&show["delegated"]), open(200));
    let stakers = show["stakers"].as_array().unwrap();
    assert!(
        stakers.iter().any(|x| x["account"] == json!(dev(1).address()) && num(&x["amount"]) == open(200)),
        "{show}"
    );
    let r = ch.ol(&["stake", "rewards", &op, &addr(1)]);
    assert_eq!(num(&r["stake"]), open(200));

    let bal0 = ch.balance(dev(1).address());
    let v = ch.ol(&["gov", "propose", "--description", "a signal nobody else cares about", "--dev-account", "1"]);
    let id = num(&v["id"]) as u64;
    let (start, end) = (num(&v["voteStart"]) as u64, num(&v["voteEnd"]) as u64);
    let fee_propose = ch.fee_paid(&v["hash"]);
    assert_eq!(ch.balance(dev(1).address()), bal0 - fee_propose - open(10)); // deposit held
    ch.advance_to(start);
    let vote = ch.ol(&["gov", "vote", &id.to_string(), "for", "--dev-account", "1"]);
    assert_eq!(num(&vote["weight"]), open(200));
    let fee_vote = ch.fee_paid(&vote["hash"]);
    ch.advance_to(end);

    let p = ch.ol(&["gov", "show", &id.to_string()]);
    assert_eq!(p["state"], "defeated");
    assert_eq!(num(&p["forVotes"]), open(200));
    assert_eq!(num(&p["totalPowerAtSnapshot"]), open(2200));
    // Without quorum the deposit is burned (a proposal that only occupies a
    // slot costs its deposit): gas and the 10 OPEN were spent.
    assert_eq!(ch.balance(dev(1).address()), bal0 - fee_propose - fee_vote - open(10));
    // Waiting for "queued" now fails at once; executing is refused by name.
    let out = ch.ol_fail(&["gov", "wait", &id.to_string(), "--state", "queued", "--timeout", "30"]);
    assert!(out.contains("can no longer"), "{out}");
    let out = ch.ol_fail(&["gov", "execute", &id.to_string(), "--dev-account", "1"]);
    assert!(out.contains("NotQueued") && out.contains("defeated"), "{out}");

    // Vetoed (veto votes above 33.4% of the votes): the deposit is burned, not returned.
    let burned0 = num(&ch.ol(&["query", "supply"])["burned"]);
    let (id, start, end) = propose(&ch, 0, &["--description", "a bad idea"]);
    ch.advance_to(start);
    let v = ch.ol(&["gov", "vote", &id.to_string(), "veto", "--dev-account", "0"]);
    assert_eq!(v["support"], "veto");
    ch.advance_to(end);
    let p = ch.ol(&["gov", "show", &id.to_string()]);
    assert_eq!(p["state"], "vetoed");
    assert_eq!(num(&p["vetoVotes"]), open(1000));
    assert_eq!(num(&ch.ol(&["query", "supply"])["burned"]), burned0 + open(10));
}

/// Two validators must not share a consensus key (Cosmos SDK refuses a
/// duplicate with ErrValidatorPubKeyExists): a validator could otherwise claim
/// another's key, or the set would count one signer twice.
#[test]

fn consensus_keys_are_unique() {
    let ch = Chain::start();
    let taken = keys::ConsensusKey::dev("validator-0").public().to_string();
    let out = ch.ol_fail(&[
        "stake",
        "register",
        "--role",
        "validator",
        "--bond",
        "100",
        "--consensus-key",
        &taken,
        "--dev-account",
        "4",
    ]);
    assert!(out.contains("InvalidKey") || out.contains("AlreadyRegistered"), "{out}");
    // The same through a rotation.
    ch.ol(&[
        "stake",
        "register",
        "--role",
        "validator",
        "--bond",
        "100",
        "--consensus-key",
        &keys::ConsensusKey::dev("validator-5").public().to_string(),
        "--dev-account",
        "5",
    ]);
    let rotate = format!("staking.rotateConsensusKey {taken}");
    let out = ch.ol_fail(&["gov", "call", &rotate, "--dev-account", "5"]);
    assert!(out.contains("InvalidKey"), "{out}");
}

#[test]
fn slash_through_governance() {
    let mut ch = Chain::start();
    let (op, del, reporter) = (dev(4).address(), dev(5).address(), dev(6).address());
    let ck = keys::ConsensusKey::dev("validator-4").public();
    let reg = ch.ol(&[
        "stake",
        "register",
        "--role",
        "validator",
        "--bond",
        "200",
        "--consensus-key",
        &ck.to_string(),
        "--commission-bps",
        "1000",
        "--dev-account",
        "4",
    ]);
    assert_eq!(reg["status"], "0x1");
    ch.ol(&["stake", "delegate", &addr(4), "100", "--dev-account", "5"]);
    let vals = ch.ol(&["stake", "validators"]);
    assert_eq!(vals["validators"].as_array().unwrap().len(), 2, "{vals}");

    let call = format!("staking.slash {} 100000 5 \"double sign\" {}", addr(4), addr(6));
    let (id, start, end) = propose(&ch, 0, &["--description", "slash validator 4", "--call", &call]);
    // A pending unbonding is slashable too while in its cooldown.
    let u = ch.ol(&["stake", "unbond", &addr(4), "20", "--dev-account", "5"]);
    let release = num(&u["releaseHeight"]) as u64;
    assert_eq!(vote_for(&mut ch, id, 0, start), open(1000));
    ch.advance_to(end + 2);
    let (treasury0, reporter0) = (ch.balance(TREASURY), ch.balance(reporter));
    let x = ch.ol(&["gov", "execute", &id.to_string(), "--dev-account", "0"]);
    let r = ch.receipt(&x["hash"]);
    let block = mined_in(&r);
    assert!(block < release, "execution at {block} should precede the unbonding's release at {release}");

    // 10% of the self bond (20), of the delegation (8 of 80) and of the unbonding (2 of 20).
    let show = ch.ol(&["stake", "show", &addr(4)]);
    assert_eq!(num(&show["selfBond"]), open(180));
    assert_eq!(num(&show["delegated"]), open(72));
    assert_eq!(show["jailed"], true);
    assert_eq!(num(&show["jailedUntil"]) as u64, block + 5);
    let human = cli_ok(&["stake", "show", &addr(4), "--rpc", ch.rpc()]);
    assert!(human.contains(&format!("jailed until block {}", block + 5)), "{human}");
    let ub = ch.ol(&["stake", "unbondings", &addr(5)]);
    assert_eq!(num(&ub["unbondings"][0]["amount"]), open(18));
    assert_eq!(num(&ch.ol(&["stake", "power", &addr(5)])["power"]), open(72));
    assert_eq!(num(&ch.ol(&["stake", "rewards", &addr(4), &addr(5)])["stake"]), open(72));

    // The Slashed log, found with eth_getLogs.
    let slashed = Filter::new()
        .from_block(0)
        .to_block(BlockNumberOrTag::Latest)
        .address(STAKING)
        .event_signature(IStaking::Slashed::SIGNATURE_HASH)
        .topic1(op.into_word());
    let logs = ch.c.logs(&slashed).unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].block_number, Some(block));
    let ev = &events::<IStaking::Slashed>(&logs, STAKING)[0];
    assert_eq!(ev.operator, op);
    assert_eq!(ev.amount, U256::from(open(30)));
    assert_eq!((ev.fractionPpm, ev.jailedUntil), (100_000, block + 5));
    assert_eq!((ev.reason.as_str(), ev.reporter), ("double sign", reporter));

    // The reporter got staking.slash_reporter_bps (10%) of it, the treasury the rest.
    assert_eq!(ch.balance(reporter) - reporter0, open(3));
    let fee_share = ch.treasury_fee_share(&r);
    assert_eq!(ch.balance(TREASURY) - treasury0, open(27) + fee_share);

    // Jailed: out of the validator set, and cannot leave jail yet.
    let vals = ch.ol(&["stake", "validators"]);
    let ops: Vec<&Value> = vals["validators"].as_array().unwrap().iter().map(|v| &v["operator"]).collect();
    assert_eq!(ops, [&json!(dev(0).address())], "{vals}");
    let earlier = ch.ol(&["stake", "validators", "--height", &(block - 1).to_string()]);
    assert_eq!(earlier["validators"].as_array().unwrap().len(), 2, "{earlier}");
    let out = ch.ol_fail(&["stake", "unjail", "--dev-account", "4"]);
    assert!(out.contains("OperatorJailed"), "{out}");
    // The delegator's slashed voting power is also gone from its checkpoints.
    assert_eq!(num(&ch.ol(&["stake", "power", &addr(4)])["power"]), open(180));
    let _ = del;
}

#[test]
fn refusals_are_named_and_change_nothing() {
    let mut ch = Chain::start();
    let (d0, d3) = (dev(0).address(), dev(3).address());
    let gas = 500_000;

    // Unbonding stake one does not have.
    let info0 = ch.operator(d0);
    let r = ch.raw(
        &dev(3),
        STAKING,
        0,
        IStaking::unbondCall { operator: d0, amount: U256::from(ONE_OPEN) }.abi_encode(),
        gas,
    );
    let e: IStaking::InsufficientStake = reverted_with(&r);
    assert_eq!((e.available, e.requested), (U256::ZERO, U256::from(ONE_OPEN)));
    let out = ch.ol_fail(&["stake", "unbond", &addr(0), "1", "--dev-account", "3"]);
    assert!(out.contains("InsufficientStake(available: 0, requested: 1000000000000000000)"), "{out}");
    assert_eq!(ch.operator(d0).selfBond, info0.selfBond);
    assert!(ch.view(STAKING, IStaking::unbondingsCall { account: d3 }).amounts.is_empty());

    // Privileged functions called by someone other than governance.
    let treasury0 = ch.balance(TREASURY);
    let slash =
        IStaking::slashCall { operator: d0, fractionPpm: 100_000, jailBlocks: 5, reason: "nope".into(), reporter: d3 };
    for (to, data) in [
        (STAKING, slash.abi_encode()),
        (GOVERNANCE, IGovernance::spendTreasuryCall { to: d3, amount: U256::from(1) }.abi_encode()),
        (PARAMS, IParams::setCall { name: "governance.deposit".into(), value: U256::from(1) }.abi_encode()),
    ] {
        let r = ch.raw(&dev(3), to, 0, data, gas);
        let e: Unauthorized = reverted_with(&r);
        assert_eq!(e.caller, d3);
    }
    for call in [
        format!("staking.slash {} 100000 5 nope {}", addr(0), addr(3)),
        format!("governance.spendTreasury {} 1", addr(3)),
        "params.set governance.deposit 1".to_string(),
    ] {
        let out = ch.ol_fail(&["gov", "call", &call, "--dev-account", "3"]);
        assert!(out.contains(&format!("Unauthorized(caller: {})", addr(3))), "{call}: {out}");
    }
    let info = ch.operator(d0);
    assert_eq!((info.selfBond, info.jailedUntil), (info0.selfBond, 0));
    assert_eq!(ch.ol(&["query", "params"])["governance.deposit"], "10000000000000000000");
    assert!(ch.balance(TREASURY) >= treasury0); // only fees came in

    // Dev 2 delegates so that it has voting power at the snapshots below.
    ch.ol(&["stake", "delegate", &addr(0), "150", "--dev-account", "2"]);

    // Voting before the period opens.
    let (id, start, end) = propose(&ch, 0, &["--description", "text only"]);
    // The CLI estimates in the next block's environment (where its transaction would land),
    // so it refuses before sending anything; then the same vote mined there fails too.
    let out = ch.ol_fail(&["gov", "vote", &id.to_string(), "for", "--no-wait", "--dev-account", "0"]);
    assert!(out.contains("VotingClosed"), "{out}");
    let r = ch.raw(&dev(0), GOVERNANCE, 0, IGovernance::castVoteCall { id, support: 1 }.abi_encode(), gas);
    let e: IGovernance::VotingClosed = reverted_with(&r);
    assert_eq!((e.id, e.voteStart, e.voteEnd), (id, start, end));
    assert!(e.height < start);
    assert!(!ch.view(GOVERNANCE, IGovernance::hasVotedCall { id, voter: d0 }));

    // Voting twice.
    assert_eq!(vote_for(&mut ch, id, 0, start), open(1000));
    let r = ch.raw(&dev(0), GOVERNANCE, 0, IGovernance::castVoteCall { id, support: 0 }.abi_encode(), gas);
    let e: IGovernance::AlreadyVoted = reverted_with(&r);
    assert_eq!((e.id, e.voter), (id, d0));
    let out = ch.ol_fail(&["gov", "vote", &id.to_string(), "against", "--dev-account", "0"]);
    assert!(out.contains("AlreadyVoted"), "{out}");
    let p = ch.proposal(id);
    assert_eq!((p.forVotes, p.againstVotes), (U256::from(open(1000)), U256::ZERO));

    // Executing before the timelock (the head is at voteEnd: tallied, queued, eta two blocks later).
    ch.advance_to(end);
    let p = ch.proposal(id);
    assert_eq!(p.state, runtime::governance::QUEUED);
    assert!(ch.head() + 1 < p.eta);
    let r = ch.raw(&dev(3), GOVERNANCE, 0, IGovernance::executeCall { id }.abi_encode(), gas);
    let e: IGovernance::TimelockNotExpired = reverted_with(&r);
    assert_eq!((e.eta, e.height), (p.eta, p.eta - 1));
    assert_eq!(ch.proposal(id).state, runtime::governance::QUEUED);

    // Voting after the period closed.
    let r = ch.raw(&dev(2), GOVERNANCE, 0, IGovernance::castVoteCall { id, support: 0 }.abi_encode(), gas);
    let e: IGovernance::VotingClosed = reverted_with(&r);
    assert!(e.height > end);
    let out = ch.ol_fail(&["gov", "vote", &id.to_string(), "against", "--dev-account", "2"]);
    assert!(out.contains("VotingClosed"), "{out}");
    assert_eq!(ch.proposal(id).againstVotes, U256::ZERO);

    // Cancelling one block too late: the transaction would land where the vote has
    // started, so the CLI's preflight (run in the next block's environment) refuses it
    // and nothing is sent; the same call mined there reverts with the same error.
    let (id2, start2, _) = propose(&ch, 0, &["--description", "to be cancelled too late"]);
    ch.advance_to(start2 - 1);
    let bal = ch.balance(d0);
    let out = ch.ol_fail(&["gov", "cancel", &id2.to_string(), "--dev-account", "0"]);
    assert!(out.contains("VotingStarted"), "{out}");
    assert_eq!(ch.balance(d0), bal, "a refused preflight sends nothing");
    let r = ch.raw(&dev(0), GOVERNANCE, 0, IGovernance::cancelCall { id: id2 }.abi_encode(), gas);
    let _: IGovernance::VotingStarted = reverted_with(&r);
    assert_eq!(ch.proposal(id2).state, runtime::governance::ACTIVE);
    // Cancelling in time returns the deposit.
    let (id3, _, _) = propose(&ch, 0, &["--description", "cancelled in time"]);
    let bal = ch.balance(d0);
    let c = ch.ol(&["gov", "cancel", &id3.to_string(), "--dev-account", "0"]);
    assert_eq!(ch.balance(d0), bal + open(10) - ch.fee_paid(&c["hash"]));
    assert_eq!(ch.ol(&["gov", "show", &id3.to_string()])["state"], "canceled");
    // Someone else cannot cancel.
    let out = ch.ol_fail(&["gov", "cancel", &id2.to_string(), "--dev-account", "3"]);
    assert!(out.contains("NotProposer"), "{out}");
}

#[test]
fn node_keys_create_list_and_rotate_on_chain() {
    let ch = Chain::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node-keys");
    let dir_s = dir.to_str().unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "node secret\n").unwrap();
    let pw_s = pw.to_str().unwrap();
    let new_key = |kind: &str, d: &str| -> Value {
        let out = cli_ok(&[
            "--json",
            "keys",
            "node",
            "new",
            kind,
            "--dir",
            d,
            "--kdf",
            "insecure-test",
            "--password-file",
            pw_s,
        ]);
        serde_json::from_str(&out).unwrap()
    };
    let c0 = new_key("consensus", dir_s);
    let s0 = new_key("serving", dir_s);
    let a0 = new_key("attester", dir_s);
    assert_eq!((c0["kind"].clone(), c0["curve"].clone()), (json!("consensus"), json!("ed25519")));
    let c0_key: B256 = s(&c0["publicKey"]).parse().unwrap();
    let s0_addr: Address = s(&s0["address"]).parse().unwrap();
    assert!(a0["address"].is_string());
    // Never twice.
    let o =
        cli(&["keys", "node", "new", "consensus", "--dir", dir_s, "--kdf", "insecure-test", "--password-file", pw_s]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));

    // The list shows public identities only.
    let nk = keys::NodeKeys::open(&dir).unwrap();
    let secrets = [
        hex::encode(nk.load_consensus("node secret").unwrap().seed()),
        hex::encode(nk.load_secp(keys::NodeKeyKind::Serving, "node secret").unwrap().to_bytes()),
        hex::encode(nk.load_secp(keys::NodeKeyKind::Attester, "node secret").unwrap().to_bytes()),
    ];
    let list_out = cli_ok(&["--json", "keys", "node", "list", "--dir", dir_s]);
    let human_out = cli_ok(&["keys", "node", "list", "--dir", dir_s]);
    for secret in &secrets {
        assert!(!list_out.to_lowercase().contains(secret) && !human_out.to_lowercase().contains(secret));
    }
    assert!(!list_out.contains("ciphertext") && !list_out.contains("crypto"));
    let list: Value = serde_json::from_str(&list_out).unwrap();
    let kinds: Vec<&str> = list.as_array().unwrap().iter().map(|e| s(&e["kind"])).collect();
    assert_eq!(kinds, ["consensus", "serving", "attester"]);
    assert_eq!(list[0]["publicKey"], c0["publicKey"]);
    assert_eq!(list[1]["address"], s0["address"]);

    // Rotating the consensus key of the dev validator: the file, and the key on chain.
    let before = ch.ol(&["stake", "show", &addr(0)]);
    assert_eq!(before["consensusKey"], json!(keys::ConsensusKey::dev("validator-0").public()));
    let rot = ch.ol(&[
        "keys",
        "node",
        "rotate",
        "consensus",
        "--dir",
        dir_s,
        "--kdf",
        "insecure-test",
        "--password-file",
        pw_s,
        "--operator-dev-account",
        "0",
    ]);
    assert_eq!(rot["status"], "0x1");
    let c1_key: B256 = s(&rot["publicKey"]).parse().unwrap();
    assert_ne!(c1_key, c0_key);
    assert_eq!(rot["previous"], json!(c0_key.to_string()));
    assert_eq!(ch.ol(&["stake", "show", &addr(0)])["consensusKey"], json!(c1_key));
    assert_eq!(nk.load_consensus("node secret").unwrap().public(), c1_key);
    let old = nk.previous(keys::NodeKeyKind::Consensus).unwrap();
    assert_eq!(old.len(), 1);
    let name = old[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with("consensus.") && name.ends_with(".old.json"), "{name}");
    // The validator set from the next snapshot on carries the new key.
    let vals = ch.ol(&["stake", "validators"]);
    assert_eq!(vals["validators"][0]["consensusKey"], json!(c1_key));

    // A wrong password rotates nothing.
    let bad = tmp.path().join("bad");
    std::fs::write(&bad, "nope\n").unwrap();
    let out = ch.ol_fail(&[
        "keys",
        "node",
        "rotate",
        "consensus",
        "--dir",
        dir_s,
        "--kdf",
        "insecure-test",
        "--password-file",
        bad.to_str().unwrap(),
        "--operator-dev-account",
        "0",
    ]);
    assert!(out.to_lowercase().contains("password"), "{out}");
    assert_eq!(ch.ol(&["stake", "show", &addr(0)])["consensusKey"], json!(c1_key));
    assert_eq!(nk.previous(keys::NodeKeyKind::Consensus).unwrap().len(), 1);

    // An account that is not an operator cannot register a serving key; the file stays.
    let out = ch.ol_fail(&[
        "keys",
        "node",
        "rotate",
        "serving",
        "--dir",
        dir_s,
        "--kdf",
        "insecure-test",
        "--password-file",
        pw_s,
        "--operator-dev-account",
        "5",
    ]);
    assert!(out.contains("NotOperator"), "{out}");
    assert_eq!(nk.identity(keys::NodeKeyKind::Serving).unwrap(), Some(keys::NodeKeyId::Secp256k1(s0_addr)));
    assert!(nk.previous(keys::NodeKeyKind::Serving).unwrap().is_empty());

    // The attester key rotates as a file only.
    let rot = cli_ok(&[
        "--json",
        "keys",
        "node",
        "rotate",
        "attester",
        "--dir",
        dir_s,
        "--kdf",
        "insecure-test",
        "--password-file",
        pw_s,
    ]);
    let rot: Value = serde_json::from_str(&rot).unwrap();
    assert_ne!(rot["address"], a0["address"]);
    assert_eq!(nk.previous(keys::NodeKeyKind::Attester).unwrap().len(), 1);

    // Registering a validator with the keys of a node keys directory.
    let dir2 = tmp.path().join("node-keys-2");
    let d2 = dir2.to_str().unwrap();
    let c2 = new_key("consensus", d2);
    let s2 = new_key("serving", d2);
    let reg = ch.ol(&[
        "stake",
        "register",
        "--role",
        "validator",
        "--bond",
        "150",
        "--node-key-dir",
        d2,
        "--commission-bps",
        "300",
        "--dev-account",
        "8",
    ]);
    assert_eq!(reg["status"], "0x1");
    let show = ch.ol(&["stake", "show", &addr(8)]);
    assert_eq!(show["consensusKey"], c2["publicKey"]);
    assert_eq!(s(&show["servingKey"]).to_lowercase(), s(&s2["address"]).to_lowercase());
    assert_eq!((show["role"].clone(), show["commissionBps"].clone()), (json!("validator"), json!(300)));
    assert_eq!(num(&show["selfBond"]), open(150));
    // Rotating its serving key registers the new address.
    let rot = ch.ol(&[
        "keys",
        "node",
        "rotate",
        "serving",
        "--dir",
        d2,
        "--kdf",
        "insecure-test",
        "--password-file",
        pw_s,
        "--operator-dev-account",
        "8",
    ]);
    let show = ch.ol(&["stake", "show", &addr(8)]);
    assert_eq!(s(&show["servingKey"]).to_lowercase(), s(&rot["address"]).to_lowercase());
    assert_ne!(rot["address"], s2["address"]);
}

#[test]
fn call_encoder_and_proposal_errors() {
    let ch = Chain::start();
    // Unknown function, wrong arity, bad argument, unknown parameter, out-of-range value: refused before sending.
    let cases: [(&[&str], &str); 6] = [
        (&["--call", "staking.bogus 1"], "has no function \"bogus\""),
        (&["--call", "governance.spendTreasury 0x01"], "takes 2 arguments"),
        (&["--call", "governance.spendTreasury notanaddress 1"], "not an address"),
        (&["--set-param", "nope=1"], "no parameter \"nope\""),
        (&["--set-param", "governance.quorum_bps=0"], "outside the allowed range"),
        (&["--raw", "0x0000000000000000000000000000000000000001:0x00"], "TargetNotSystem"),
    ];
    for (args, expect) in cases {
        let mut all = vec!["gov", "propose", "--description", "x", "--dev-account", "0"];
        all.extend_from_slice(args);
        let out = ch.ol_fail(&all);
        assert!(out.contains(expect), "{args:?}: {out}");
    }
    // Below the proposal threshold (dev 3 has no stake).
    let out = ch.ol_fail(&["gov", "propose", "--description", "x", "--dev-account", "3"]);
    assert!(out.contains("BelowProposalThreshold(power: 0"), "{out}");
    assert_eq!(ch.ol(&["gov", "list"]), json!([]));

    // Every kind of argument, several calls, and raw calldata, shown back decoded.
    let raw = format!(
        "params:0x{}",
        hex::encode(IParams::setCall { name: "governance.timelock".into(), value: U256::from(3) }.abi_encode())
    );
    let v = ch.ol(&[
        "gov",
        "propose",
        "--description",
        "many calls",
        "--set-param",
        "governance.deposit=12OPEN",
        "--call",
        "staking.depositRewards 0 validators",
        "--call",
        "bank.transfer treasury 5wei",
        "--raw",
        &raw,
        "--dev-account",
        "0",
    ]);
    let p = ch.ol(&["gov", "show", &v["id"].to_string()]);
    let calls: Vec<&str> = p["calls"].as_array().unwrap().iter().map(|c| s(&c["call"])).collect();
    assert_eq!(
        calls,
        vec![
            "params.set(\"governance.deposit\", 12000000000000000000)",
            "staking.depositRewards(0, \"validators\")",
            &format!("bank.transfer({}, 5)", TREASURY.to_checksum(None)),
            "params.set(\"governance.timelock\", 3)",
        ]
    );
}

#[test]
fn delegation_rewards_unbonding_and_withdrawal() {
    let mut ch = Chain::start();
    let (op, d1) = (addr(0), dev(1).address());
    ch.ol(&["stake", "delegate", &op, "500", "--dev-account", "1"]);
    let h_delegated = ch.head();
    // 15 OPEN for the validators' pool (stake 1,500): 10 to the self bond, 5 to the
    // delegation of which 5% commission (0.25) goes to the operator.
    let d = ch.ol(&["stake", "deposit-rewards", "15", "--pool", "validators", "--dev-account", "2"]);
    assert_eq!((d["pool"].clone(), num(&d["amount"])), (json!("validators"), open(15)));
    // Fees of every block also go to the pool: a little more than that, never less.
    let close = |got: u128, want: u128| got >= want && got < want + ONE_OPEN / 100;
    let r = ch.ol(&["stake", "rewards", &op, &addr(1)]);
    assert!(close(num(&r["pendingRewards"]), open(475) / 100), "{r}");
    let r = ch.ol(&["stake", "rewards", &op]);
    assert!(close(num(&r["pendingRewards"]), open(1025) / 100), "{r}");
    // The serving pool has the dev serving operator's bond: a deposit there reaches it, not the validators.
    let serving_op = format!("{:?}", node::dev_serving_operator().address());
    let before = num(&ch.ol(&["stake", "rewards", &serving_op])["pendingRewards"]);
    ch.ol(&["stake", "deposit-rewards", "1", "--pool", "serving", "--dev-account", "2"]);
    let after = num(&ch.ol(&["stake", "rewards", &serving_op])["pendingRewards"]);
    assert!(after - before <= open(1) && after - before > open(1) - 1_000_000, "the only serving stake earns it all");

    // Claiming pays exactly what the RewardsClaimed event says.
    let bal = ch.balance(d1);
    let c = ch.ol(&["stake", "claim", &op, "--dev-account", "1"]);
    let claimed = num(&c["amount"]);
    assert!(close(claimed, open(475) / 100), "{c}");
    assert_eq!(ch.balance(d1), bal + claimed - ch.fee_paid(&c["hash"]));
    assert!(num(&ch.ol(&["stake", "rewards", &op, &addr(1)])["pendingRewards"]) < ONE_OPEN / 100);

    // Unbond 100: withdrawable after 10 blocks, nothing before.
    let u = ch.ol(&["stake", "unbond", &op, "100", "--dev-account", "1"]);
    let (release, at) = (num(&u["releaseHeight"]) as u64, num(&u["blockNumber"]) as u64);
    assert_eq!(release, at + 10);
    let ub = ch.ol(&["stake", "unbondings", &addr(1)]);
    assert_eq!(ub["unbondings"][0]["ready"], false);
    assert_eq!(num(&ub["unbondings"][0]["amount"]), open(100));
    let out = ch.ol_fail(&["stake", "withdraw", "--dev-account", "1"]);
    assert!(out.contains(&format!("released at block {release}")), "{out}");
    assert_eq!(num(&ch.ol(&["stake", "power", &addr(1)])["power"]), open(400));
    assert_eq!(num(&ch.ol(&["stake", "power", &addr(1), "--height", &h_delegated.to_string()])["power"]), open(500));
    assert_eq!(num(&ch.ol(&["stake", "power", &addr(1), "--height", &(h_delegated - 1).to_string()])["power"]), 0);
    ch.advance_to(release);
    let bal = ch.balance(d1);
    let w = ch.ol(&["stake", "withdraw", "--dev-account", "1"]);
    assert_eq!(num(&w["amount"]), open(100));
    assert_eq!(ch.balance(d1), bal + open(100) - ch.fee_paid(&w["hash"]));
    assert!(ch.ol(&["stake", "unbondings", &addr(1)])["unbondings"].as_array().unwrap().is_empty());

    // Commission changes, within bounds.
    ch.ol(&["stake", "set-commission", "700", "--dev-account", "0"]);
    assert_eq!(ch.ol(&["stake", "show", &op])["commissionBps"], 700);
    let out = ch.ol_fail(&["stake", "set-commission", "20000", "--dev-account", "0"]);
    assert!(out.contains("above 10000"), "{out}");
    // Not an operator: nothing to unjail, no commission to set.
    let out = ch.ol_fail(&["stake", "set-commission", "100", "--dev-account", "3"]);
    assert!(out.contains("NotOperator"), "{out}");
    let out = ch.ol_fail(&["stake", "unjail", "--dev-account", "0"]);
    assert!(out.contains("NotJailed"), "{out}");
    // Registering twice is refused; a validator needs a consensus key.
    let out = ch.ol_fail(&[
        "stake",
        "register",
        "--role",
        "serving",
        "--bond",
        "100",
        "--serving-key",
        &addr(0),
        "--dev-account",
        "0",
    ]);
    assert!(out.contains("AlreadyRegistered"), "{out}");
    let out = ch.ol_fail(&["stake", "register", "--role", "validator", "--bond", "100", "--dev-account", "3"]);
    assert!(out.contains("consensus key"), "{out}");
    let out = ch.ol_fail(&[
        "stake",
        "register",
        "--role",
        "serving",
        "--bond",
        "10",
        "--serving-key",
        &addr(3),
        "--dev-account",
        "3",
    ]);
    assert!(out.contains("BelowMinimumBond"), "{out}");
    // A serving operator.
    let reg = ch.ol(&[
        "stake",
        "register",
        "--role",
        "serving",
        "--bond",
        "100",
        "--serving-key",
        &addr(3),
        "--dev-account",
        "3",
    ]);
    assert_eq!(reg["role"], "serving");
    assert_eq!(ch.ol(&["stake", "show", &addr(3)])["role"], "serving");
}

/// A validator whose self bond fell below staking.min_self_bond leaves the
/// validator set, but its stake still counts in the validators' reward pool:
/// it keeps earning validator rewards (and diluting the active validators')
/// without validating.
#[test]

fn validators_outside_the_set_earn_nothing() {
    let mut ch = Chain::start();
    let ck = keys::ConsensusKey::dev("validator-4").public().to_string();
    ch.ol(&["stake", "register", "--role", "validator", "--bond", "100", "--consensus-key", &ck, "--dev-account", "4"]);
    ch.ol(&["stake", "unbond", &addr(4), "1", "--dev-account", "4"]);
    let next = ch.head() + 1;
    ch.advance_to(next);
    let vals = ch.ol(&["stake", "validators"]);
    assert_eq!(vals["validators"].as_array().unwrap().len(), 1, "{vals}");
    // What it earned while it was active (fee shares of earlier blocks) stays;
    // nothing of a deposit made after it dropped below the minimum reaches it.
    let before = num(&ch.ol(&["stake", "rewards", &addr(4)])["pendingRewards"]);
    ch.ol(&["stake", "deposit-rewards", "10", "--pool", "validators", "--dev-account", "2"]);
    let r = ch.ol(&["stake", "rewards", &addr(4)]);
    assert_eq!(num(&r["pendingRewards"]), before, "{r}");
}

/// A CLI command that must wait for a block: started, and returned once it
/// says on stderr that it waits (it has not failed instead).
struct WaitingCli {
    child: std::process::Child,
    /// The rest of its stderr, read on (so the pipe never fills).
    stderr: std::thread::JoinHandle<String>,
}

impl WaitingCli {
    fn start(args: &[&str]) -> WaitingCli {
        use std::io::BufRead;
        let mut child = std::process::Command::new(bin())
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run openledger");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = String::new();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("waiting") => break,
                Some(Ok(line)) => seen.push_str(&line),
                _ => panic!("openledger {args:?} ended without waiting: {seen}, {:?}", child.wait_with_output()),
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "openledger {args:?} waits instead of failing");
        let stderr = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
        WaitingCli { child, stderr }
    }

    /// Its stdout, once it has succeeded.
    fn finish(self) -> String {
        let out = self.child.wait_with_output().unwrap();
        let err = self.stderr.join().unwrap();
        assert!(out.status.success(), "failed: {}\n{err}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8(out.stdout).unwrap()
    }
}

/// A vote sent right after `gov propose`, before voting opens, waits for the
/// voting period's first block and lands there, as the README's commands run
/// one after another (`--no-wait` refuses at once instead: see above).
#[test]
fn a_vote_before_voting_opens_waits_for_it() {
    let mut ch = Chain::start();
    let (id, start, end) = propose(&ch, 0, &["--description", "text only"]);
    assert!(ch.head() + 1 < start, "voting opens later than the next block");
    let rpc = ch.rpc().to_string();
    let voter =
        WaitingCli::start(&["--json", "gov", "vote", &id.to_string(), "for", "--dev-account", "0", "--rpc", &rpc]);
    // The instant-mode chain moves only with transactions: move it to the block before voting opens.
    ch.advance_to(start - 1);
    let v = serde_json::from_str::<Value>(&voter.finish()).unwrap();
    assert_eq!(v["status"], "0x1", "{v}");
    let mined = mined_in(&ch.receipt(&v["hash"]));
    assert!((start..=end).contains(&mined), "mined in block {mined}, voting {start}..={end}");
    assert!(num(&v["weight"]) > 0);

    // Queued, an execution sent before the timelock ends waits for it the same way.
    ch.advance_to(end);
    assert_eq!(ch.proposal(id).state, runtime::governance::QUEUED, "tallied at the end of voting");
    let eta = ch.proposal(id).eta;
    assert!(ch.head() + 1 < eta, "the timelock ends later than the next block");
    let rpc = ch.rpc().to_string();
    let executor =
        WaitingCli::start(&["--json", "gov", "execute", &id.to_string(), "--dev-account", "0", "--rpc", &rpc]);
    ch.advance_to(eta - 1);
    executor.finish();
    assert_eq!(ch.proposal(id).state, runtime::governance::EXECUTED);
}
