//! End to end through JSON-RPC on a node process the test starts: what a wallet
//! or library does, and what it must be refused.

mod common;

use std::time::Duration;

use alloy_sol_types::{SolCall, SolError, SolEvent};
use common::*;
use primitives::abi::{IBank, IParams, Unauthorized};
use primitives::system::Module;
use primitives::{Address, B256, Bytes, U256};
use rpc::types::{BlockNumberOrTag, Filter, revert_reason};
use serde_json::json;

#[test]
fn transfer_system_call_logs_and_proof() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &["--instant"]);
    let mut c = node.client();
    assert_eq!(c.call("eth_chainId", json!([])).unwrap(), json!("0x7a69"));
    assert_eq!(c.call("net_version", json!([])).unwrap(), json!("31337"));
    let (a, b) = (dev(0), dev(1));
    let bank = Module::Bank.address();

    // A signed EIP-1559 transfer.
    let before_b = c.balance(&b.address()).unwrap();
    let h = c.send_raw(&signed(&a, 0, b.address(), 12345, vec![], 21_000)).unwrap();
    let r = c.wait_receipt(&h, Duration::from_secs(30)).unwrap();
    assert!(r.status());
    assert_eq!(r.gas_used, 21_000);
    assert_eq!(c.balance(&b.address()).unwrap(), before_b + U256::from(12345));
    let tx = c.transaction(&h).unwrap().expect("mined transaction");
    assert_eq!(tx.inner.signer(), a.address());
    assert_eq!(tx.block_number, r.block_number);
    // Read-your-writes: once a receipt is out, "latest" includes its block.
    // (The store holds a block a moment before it becomes the head; the race
    // is narrow, so this asks many times.)
    let mut nonce = 1;
    for _ in 0..40 {
        let h = c.send_raw(&signed(&a, nonce, b.address(), 1, vec![], 21_000)).unwrap();
        nonce += 1;
        let r = c.wait_receipt(&h, Duration::from_secs(30)).unwrap();
        let latest = hex_u(&c.call("eth_blockNumber", json!([])).unwrap()) as u64;
        assert!(latest >= r.block_number.unwrap(), "receipt in block {:?}, latest {latest}", r.block_number);
    }

    // A system-contract call by ABI, and its log through eth_getLogs.
    let data = IBank::transferCall { to: b.address(), amount: U256::from(777u64) }.abi_encode();
    let est = hex_u(
        &c.call("eth_estimateGas", json!([{"from": a.address(), "to": bank, "data": Bytes::from(data.clone())}]))
            .unwrap(),
    );
    let h2 = c.send_raw(&signed(&a, nonce, bank, 0, data, est as u64)).unwrap();
    let r2 = c.wait_receipt(&h2, Duration::from_secs(30)).unwrap();
    assert!(r2.status(), "{r2:?}");
    assert_eq!(u128::from(r2.gas_used), est);
    let from_topic = B256::left_padding_from(a.address().as_slice());
    let transfers = Filter::new().from_block(0).to_block(BlockNumberOrTag::Latest).address(bank);
    let logs = c.logs(&transfers.clone().event_signature(IBank::Transfer::SIGNATURE_HASH).topic1(from_topic)).unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].transaction_hash, Some(h2));
    assert_eq!(U256::from_be_slice(&logs[0].data().data), U256::from(777u64));
    // A non-matching topic finds nothing.
    assert_eq!(c.logs(&transfers.topic1(B256::repeat_byte(9))).unwrap(), vec![]);

    // eth_call of a view, and eth_getCode.
    let out = c.call("eth_call", json!([{"to": bank, "data": Bytes::from(IBank::balanceOfCall { account: b.address() }.abi_encode())}, "latest"])).unwrap();
    let out: Bytes = out.as_str().unwrap().parse().unwrap();
    assert_eq!(IBank::balanceOfCall::abi_decode_returns(&out).unwrap(), c.balance(&b.address()).unwrap());
    assert_ne!(c.call("eth_getCode", json!([bank, "latest"])).unwrap(), json!("0x"));
    assert_eq!(c.call("eth_getCode", json!([a.address(), "latest"])).unwrap(), json!("0x"));

    // A call that fails in execution: code 3 from eth_call, status-0 receipt when mined.
    let set = IParams::setCall { name: "fee.treasury_bps".into(), value: U256::from(5) }.abi_encode();
    let err = c
        .call(
            "eth_call",
            json!([{"from": a.address(), "to": Module::Params.address(), "data": Bytes::from(set.clone())}]),
        )
        .unwrap_err();
    assert_eq!(err.code(), Some(3));
    assert!(err.to_string().contains("execution reverted"), "{err}");
    let h3 = c.send_raw(&signed(&a, nonce + 1, Module::Params.address(), 0, set, 100_000)).unwrap();
    let r3 = c.wait_receipt(&h3, Duration::from_secs(30)).unwrap();
    assert!(!r3.status());
    let reason = revert_reason(&r3).expect("revert data");
    assert_eq!(Unauthorized::abi_decode(&reason).unwrap().caller, a.address());
    assert_eq!(c.nonce(&a.address(), false).unwrap(), nonce + 2);

    // A proof of b's account checked against the header's state root.
    let key = runtime::bank::state_key::account(&b.address());
    let p = c.call("ol_getProof", json!([Bytes::from(key.clone()), "latest"])).unwrap();
    let n = p["blockNumber"].as_u64().unwrap();
    let root = c.block(BlockNumberOrTag::Number(n), false).unwrap().unwrap().header.state_root;
    let value: Bytes = p["value"].as_str().unwrap().parse().unwrap();
    let proof: Bytes = p["proof"].as_str().unwrap().parse().unwrap();
    storage::StateProof::verify_bytes(&root, &key, Some(&value), &proof).unwrap();
    let acct = runtime::bank::Account::decode(&value).unwrap();
    assert_eq!(acct.balance.to_u256(), c.balance(&b.address()).unwrap());
    // The same proof does not verify a different balance, or against another block's root.
    let mut forged = acct;
    forged.balance.0 += 1;
    assert!(storage::StateProof::verify_bytes(&root, &key, Some(&forged.encode()), &proof).is_err());
    let root0 = c.block(BlockNumberOrTag::Earliest, false).unwrap().unwrap().header.state_root;
    assert!(storage::StateProof::verify_bytes(&root0, &key, Some(&value), &proof).is_err());

    // The supply equation's terms; the validator's genesis bond is held by staking.
    let sup = c.call("ol_supply", json!([])).unwrap();
    let genesis_total: u128 = node::dev_genesis().alloc.iter().map(|(_, a)| a.0).sum();
    assert_eq!(sup["total"], json!(genesis_total.to_string()));
    assert_eq!(sup["total"], sup["genesis"]);
    let held: u128 = sup["heldByModules"].as_str().unwrap().parse().unwrap();
    assert!(held >= 1_000 * primitives::ONE_OPEN, "{sup}");
    let at0 = c.call("ol_supply", json!(["0x0"])).unwrap();
    assert_eq!(at0["treasury"], json!("0"));
    assert_eq!(c.call("ol_supply", json!(["0xffffff"])).unwrap_err().code(), Some(-32000));
    node.stop();
}

#[test]
fn refusals_at_submission_and_rpc_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &["--instant"]);
    let mut c = node.client();
    let a = dev(0);
    let to = dev(1).address();
    let height = c.block_number().unwrap();
    let bal = c.balance(&a.address()).unwrap();
    let poor = keys::SecretKey::from_bytes(&[9u8; 32]).unwrap();
    let wrong_chain = keys::encode_2718(&keys::sign_eip1559(
        &a,
        alloy_consensus::TxEip1559 {
            chain_id: 1,
            gas_limit: 21_000,
            max_fee_per_gas: 20 * GWEI,
            to: alloy_primitives::TxKind::Call(to),
            ..Default::default()
        },
    ));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xde, 0xad, 0xbe, 0xef], "rlp"),
        (wrong_chain, "invalid chain id for signer"),
        (signed(&a, 5000, to, 1, vec![], 21_000), "nonce too high"),
        (signed(&poor, 0, to, 1, vec![], 21_000), "insufficient funds for gas * price + value"),
        (signed(&a, 0, to, 1, vec![], 20_999), "intrinsic gas too low"),
        (signed(&a, 0, to, 1, vec![0xab; 140 * 1024], 5_000_000), "oversized data"),
    ];
    for (raw, want) in cases {
        let e = c.send_raw(&raw).unwrap_err();
        assert_eq!(e.code(), Some(-32000), "{e}");
        assert!(e.to_string().contains(want), "wanted {want:?}, got {e}");
    }
    // Nonce too low after one is mined.
    let h = c.send_raw(&signed(&a, 0, to, 1, vec![], 21_000)).unwrap();
    c.wait_receipt(&h, Duration::from_secs(30)).unwrap();
    let e = c.send_raw(&signed(&a, 0, to, 2, vec![], 21_000)).unwrap_err();
    assert!(e.to_string().contains("nonce too low"), "{e}");
    // Only the one good transaction changed anything.
    assert_eq!(c.block_number().unwrap(), height + 1);
    let fee = c.receipt(&h).unwrap().unwrap().effective_gas_price * 21_000;
    assert_eq!(c.balance(&a.address()).unwrap(), bal - U256::from(fee + 1));
    // JSON-RPC errors.
    let e = c.call("eth_noSuchMethod", json!([])).unwrap_err();
    assert_eq!(e.code(), Some(-32601));
    let e = c.call("eth_getBalance", json!(["0x1234"])).unwrap_err();
    assert_eq!(e.code(), Some(-32602));
    let e = c.call("eth_sendRawTransaction", json!([42])).unwrap_err();
    assert_eq!(e.code(), Some(-32602));
    // Unknown transaction and receipt are null, not errors.
    assert_eq!(c.call("eth_getTransactionReceipt", json!([B256::repeat_byte(1)])).unwrap(), json!(null));
    assert_eq!(c.call("eth_getBlockByNumber", json!(["0xffffff", false])).unwrap(), json!(null));
    // Malformed JSON over plain HTTP.
    let json_type = [("Content-Type", "application/json".to_string())];
    let (_, resp) = http_send(&node.rpc, "POST", "/", &json_type, b"{not json");
    let resp = String::from_utf8(resp).unwrap();
    assert!(resp.contains("-32700"), "{resp}");
    let _ = Address::ZERO;
    node.stop();
}

/// The dev node is quiet when its ports open: its set-up (account 0's escrow,
/// allowance and API key) is in the genesis, so a wallet that sends from
/// account 0 with nonce 0 the moment :8545 answers is accepted, and the API
/// key file already exists and works.
#[test]
fn the_dev_node_sends_nothing_from_account_0_when_its_ports_open() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start_serving(dir.path(), &["--instant"]);
    let mut c = node.client();
    let k = dev(0);
    assert_eq!(c.nonce(&k.address(), true).unwrap(), 0, "nothing pending from account 0");
    let hash = c.send_raw(&signed(&k, 0, dev(1).address(), 1, vec![], 21_000)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while c.receipt(&hash).unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the transfer was not mined");
        std::thread::sleep(Duration::from_millis(20));
    }
    let key = std::fs::read_to_string(dir.path().join("dev-api-key")).unwrap();
    // The key is bound at genesis to account 0, with the 1,000 OPEN allowance.
    let owner = c
        .call(
            "eth_call",
            json!([{"to": Module::Inference.address(), "data": Bytes::from(primitives::abi::IInference::apiKeyOwnerCall {
                keyHash: keys::request::api_key_hash(key.trim()),
            }.abi_encode())}, "latest"]),
        )
        .unwrap();
    let owner = hex::decode(owner.as_str().unwrap().trim_start_matches("0x")).unwrap();
    assert_eq!(Address::from_slice(&owner[12..32]), k.address());
    // And it works at once on the OpenAI routes.
    let (status, _) =
        http_send(&node.http, "GET", "/v1/models", &[("Authorization", format!("Bearer {}", key.trim()))], b"");
    assert_eq!(status, 200);
}

/// The dev node mines on request as Hardhat and Anvil do, so a dev chain in
/// instant mode advances without transactions.
#[test]
fn the_dev_node_mines_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &["--instant"]);
    let mut c = node.client();
    let h = c.block_number().unwrap();
    assert_eq!(c.call("evm_mine", json!([])).unwrap(), json!("0x0"));
    assert_eq!(c.block_number().unwrap(), h + 1);
    assert_eq!(c.call("anvil_mine", json!(["0x5"])).unwrap(), serde_json::Value::Null);
    assert_eq!(c.block_number().unwrap(), h + 6);
    c.call("hardhat_mine", json!([])).unwrap();
    assert_eq!(c.block_number().unwrap(), h + 7);
    let e = c.call("anvil_mine", json!(["0x1000"])).unwrap_err();
    assert_eq!(e.code(), Some(-32602), "{e}");
    assert_eq!(c.block_number().unwrap(), h + 7, "a refused call mines nothing");
}
