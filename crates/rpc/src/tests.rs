//! Tests against a small in-crate backend holding hand-made blocks:
//!
//! - block 0: genesis, empty;
//! - block 1: tx A (EIP-1559, key 1, two logs at address X) and tx B (legacy, key 2,
//!   one log at address Y);
//! - block 2: tx C (EIP-1559, key 1), failed with revert data 0x01020304;
//! - block 3: empty (the head).
//!
//! The pool holds tx D (EIP-1559, key 2).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Signature, TxKind};
use k256::ecdsa::SigningKey;
use primitives::block::{Header, Receipt, logs_bloom, receipts_root, transactions_root};
use primitives::{Address, B256, Bytes, Log, SignedTransaction, U256, keccak256};
use serde_json::{Value, json};

use crate::client::{ClientError, RpcClient};
use crate::*;

const CHAIN_ID: u64 = 31337;
const GWEI: u128 = 1_000_000_000;
const BASE_FEE: u64 = 1_000_000_000;
const NEXT_BASE_FEE: u64 = 875_000_000;
const TIP: u128 = 1_500_000_000;
const PENDING_NONCE: u64 = 42;
const ADDR_X: Address = Address::repeat_byte(0xaa);
const ADDR_Y: Address = Address::repeat_byte(0xbb);
const SYSTEM: Address = Address::with_last_byte(0x01);
const T1: B256 = B256::repeat_byte(0x01);
const T2: B256 = B256::repeat_byte(0x02);
const T3: B256 = B256::repeat_byte(0x03);

fn key(n: u8) -> SigningKey {
    SigningKey::from_slice(&[n; 32]).unwrap()
}

fn sign<T: SignableTransaction<Signature>>(tx: T, key: &SigningKey) -> SignedTransaction
where
    TxEnvelope: From<alloy_consensus::Signed<T>>,
{
    let h = tx.signature_hash();
    let (sig, recid) = key.sign_prehash_recoverable(h.as_slice()).unwrap();
    let env = TxEnvelope::from(tx.into_signed(Signature::from((sig, recid))));
    SignedTransaction::decode(&env.encoded_2718(), CHAIN_ID).unwrap()
}

fn tx_1559(key: &SigningKey, nonce: u64, max_fee: u128, tip: u128) -> SignedTransaction {
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 100_000,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: tip,
        to: TxKind::Call(SYSTEM),
        value: U256::from(7),
        input: Bytes::from(vec![0xca, 0xfe]),
        ..Default::default()
    };
    sign(tx, key)
}

fn tx_legacy(key: &SigningKey, nonce: u64, gas_price: u128) -> SignedTransaction {
    let tx = TxLegacy {
        chain_id: Some(CHAIN_ID),
        nonce,
        gas_price,
        gas_limit: 50_000,
        to: TxKind::Call(ADDR_Y),
        value: U256::from(1),
        input: Bytes::new(),
    };
    sign(tx, key)
}

fn log(address: Address, topics: &[B256], data: &[u8]) -> Log {
    Log::new_unchecked(address, topics.to_vec(), Bytes::copy_from_slice(data))
}

struct TestBlock {
    header: Header,
    hash: B256,
    txs: Vec<SignedTransaction>,
    receipts: Vec<Receipt>,
}

struct TestBackend {
    blocks: Vec<TestBlock>,
    pool: Vec<SignedTransaction>,
    known: Vec<Address>,
    submitted: Mutex<Vec<Bytes>>,
    receipt_reads: AtomicUsize,
}

impl TestBackend {
    fn new() -> Self {
        let (k1, k2) = (key(1), key(2));
        let a = tx_1559(&k1, 0, 3 * GWEI, GWEI);
        let b = tx_legacy(&k2, 0, 2 * GWEI);
        let c = tx_1559(&k1, 1, 5 * GWEI, 2 * GWEI);
        let d = tx_1559(&k2, 1, 4 * GWEI, GWEI);
        let receipt =
            |t: &SignedTransaction, cumulative: u64, gas: u64, success: bool, logs: Vec<Log>, revert: &[u8]| Receipt {
                tx_type: t.tx_type(),
                success,
                cumulative_gas_used: cumulative,
                gas_used: gas,
                effective_gas_price: t.effective_gas_price(BASE_FEE),
                logs,
                revert_data: Bytes::copy_from_slice(revert),
            };
        let ra =
            receipt(&a, 30_000, 30_000, true, vec![log(ADDR_X, &[T1, T2], b"one"), log(ADDR_X, &[T1], b"two")], &[]);
        let rb = receipt(&b, 51_000, 21_000, true, vec![log(ADDR_Y, &[T3, T2], b"three")], &[]);
        let rc = receipt(&c, 25_000, 25_000, false, vec![], &[1, 2, 3, 4]);
        let bodies = vec![(vec![], vec![]), (vec![a, b], vec![ra, rb]), (vec![c], vec![rc]), (vec![], vec![])];
        let mut blocks: Vec<TestBlock> = Vec::new();
        for (n, (txs, receipts)) in bodies.into_iter().enumerate() {
            let header = Header {
                number: n as u64,
                parent_hash: blocks.last().map_or(B256::ZERO, |b| b.hash),
                base_fee_per_gas: Some(BASE_FEE),
                gas_limit: 30_000_000,
                gas_used: receipts.last().map_or(0, |r: &Receipt| r.cumulative_gas_used),
                timestamp: 1_700_000_000 + n as u64,
                logs_bloom: logs_bloom(receipts.iter().flat_map(|r| r.logs.iter())),
                transactions_root: transactions_root(&txs),
                receipts_root: receipts_root(&receipts),
                state_root: B256::repeat_byte(0x50 + n as u8),
                ..Default::default()
            };
            let hash = header.hash_slow();
            blocks.push(TestBlock { header, hash, txs, receipts });
        }
        let known = vec![blocks[1].txs[0].sender, blocks[1].txs[1].sender];
        TestBackend { blocks, pool: vec![d], known, submitted: Mutex::new(vec![]), receipt_reads: AtomicUsize::new(0) }
    }

    fn tx(&self, block: usize, i: usize) -> &SignedTransaction {
        &self.blocks[block].txs[i]
    }
}

impl Backend for TestBackend {
    fn chain_id(&self) -> u64 {
        CHAIN_ID
    }
    fn client_version(&self) -> String {
        "openledger/test".into()
    }
    fn head_number(&self) -> u64 {
        self.blocks.len() as u64 - 1
    }
    fn header(&self, number: u64) -> Option<(Header, B256)> {
        self.blocks.get(number as usize).map(|b| (b.header.clone(), b.hash))
    }
    fn block_number_by_hash(&self, hash: &B256) -> Option<u64> {
        self.blocks.iter().position(|b| b.hash == *hash).map(|n| n as u64)
    }
    fn block_transactions(&self, number: u64) -> Option<Vec<SignedTransaction>> {
        self.blocks.get(number as usize).map(|b| b.txs.clone())
    }
    fn block_receipts(&self, number: u64) -> Option<Vec<Receipt>> {
        self.receipt_reads.fetch_add(1, Ordering::SeqCst);
        self.blocks.get(number as usize).map(|b| b.receipts.clone())
    }
    fn tx_location(&self, hash: &B256) -> Option<(u64, u32)> {
        self.blocks
            .iter()
            .enumerate()
            .find_map(|(n, b)| b.txs.iter().position(|t| t.hash == *hash).map(|i| (n as u64, i as u32)))
    }
    fn pool_transaction(&self, hash: &B256) -> Option<SignedTransaction> {
        self.pool.iter().find(|t| t.hash == *hash).cloned()
    }
    fn account(&self, address: &Address, number: u64) -> Result<(u64, U256), CallError> {
        if number > self.head_number() {
            return Err(CallError::Unavailable("state not available".into()));
        }
        if self.known.contains(address) { Ok((number, U256::from(1000 + number))) } else { Ok((0, U256::ZERO)) }
    }
    fn pending_nonce(&self, _address: &Address) -> u64 {
        PENDING_NONCE
    }
    fn next_base_fee(&self) -> u64 {
        NEXT_BASE_FEE
    }
    fn suggested_tip(&self) -> u128 {
        TIP
    }
    fn submit(&self, raw: Bytes) -> BoxFuture<'_, Result<B256, SubmitError>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.submitted.lock().unwrap().push(raw.clone());
            if raw[..] == [0xff] {
                return Err(SubmitError { message: "nonce too low".into() });
            }
            Ok(keccak256(&raw))
        })
    }
    fn call_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(200)
    }
    fn call(&self, req: &CallRequest, number: u64) -> Result<Bytes, CallError> {
        match &req.data[..] {
            // Slow: past the time cap.
            [0x51] => {
                std::thread::sleep(std::time::Duration::from_millis(1_000));
                Ok(Bytes::new())
            }
            // Echo the gas the call runs with.
            [0x6a] => Ok(Bytes::from(req.gas.unwrap_or(0).to_be_bytes().to_vec())),
            [0xde, 0xad, ..] => Err(CallError::Revert(Bytes::from(vec![1, 2, 3, 4]))),
            [0xee] => Err(CallError::Invalid("insufficient funds for gas * price + value".into())),
            _ => Ok(Bytes::from(vec![number as u8])),
        }
    }
    fn estimate_gas(&self, req: &CallRequest) -> Result<u64, CallError> {
        match &req.data[..] {
            [0xde, 0xad, ..] => Err(CallError::Revert(Bytes::from(vec![9]))),
            d => Ok(21_000 + 16 * d.len() as u64),
        }
    }
    fn code(&self, address: &Address, _number: u64) -> Result<Bytes, CallError> {
        Ok(if *address == SYSTEM { Bytes::from(vec![0xfe]) } else { Bytes::new() })
    }
    fn storage(&self, address: &Address, slot: &U256, _number: u64) -> Result<U256, CallError> {
        Ok(if *address == SYSTEM { *slot + U256::from(1) } else { U256::ZERO })
    }
    fn proof(&self, key: &[u8], number: u64) -> Result<ProofResult, CallError> {
        Ok(ProofResult {
            block_number: number,
            state_root: self.blocks[number as usize].header.state_root,
            key: Bytes::copy_from_slice(key),
            value: (key == b"k").then(|| Bytes::from_static(b"v")),
            proof: Bytes::from_static(&[0xab, 0xcd]),
        })
    }
    fn supply(&self, _number: u64) -> Result<SupplyView, CallError> {
        Err(CallError::Unavailable("the test backend keeps no supply".into()))
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            chain_id: CHAIN_ID,
            head: self.head_number(),
            head_hash: self.blocks.last().unwrap().hash,
            pending_txs: 1,
            queued_txs: 0,
            block_time_ms: Some(500),
            history: 1000,
            version: "openledger/test".into(),
        }
    }
}

struct Fixture {
    tb: Arc<TestBackend>,
    backend: Arc<dyn Backend>,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    let tb = Arc::new(TestBackend::new());
    let backend: Arc<dyn Backend> = tb.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    Fixture { tb, backend, rt }
}

impl Fixture {
    /// Raw body in, parsed answer out (`Null` when there is no answer).
    fn raw(&self, body: &[u8]) -> Value {
        match self.rt.block_on(handle_request(&self.backend, body)) {
            Some(s) => serde_json::from_str(&s).unwrap(),
            None => Value::Null,
        }
    }
    fn request(&self, body: Value) -> Value {
        self.raw(&serde_json::to_vec(&body).unwrap())
    }
    /// Call a method; Ok(result) or Err(error object).
    fn call(&self, method: &str, params: Value) -> Result<Value, Value> {
        let mut r = self.request(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
        assert_eq!(r["jsonrpc"], "2.0");
        assert_eq!(r["id"], 1);
        match r.get_mut("error") {
            Some(e) => Err(e.take()),
            None => Ok(r["result"].take()),
        }
    }
    fn ok(&self, method: &str, params: Value) -> Value {
        self.call(method, params).unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }
    fn err(&self, method: &str, params: Value) -> Value {
        self.call(method, params).expect_err(method)
    }
}

fn hex(b: &[u8]) -> String {
    format!("0x{}", ::hex::encode(b))
}

fn assert_keys(v: &Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
}

#[test]
fn batch_with_good_and_unknown_method() {
    let f = fixture();
    let r = f.request(json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
        {"jsonrpc": "2.0", "id": "x", "method": "eth_foo", "params": []},
    ]));
    let r = r.as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0], json!({"jsonrpc": "2.0", "id": 1, "result": "0x3"}));
    assert_eq!(
        r[1],
        json!({"jsonrpc": "2.0", "id": "x", "error": {"code": -32601, "message": "the method eth_foo does not exist/is not available"}})
    );
}

#[test]
fn parse_error_and_invalid_requests() {
    let f = fixture();
    let s = f.rt.block_on(handle_request(&f.backend, b"{\"jsonrpc\": \"2.0\", \"id\": 1, ")).unwrap();
    assert_eq!(s, r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#);
    assert_eq!(f.raw(b"")["error"]["code"], -32700);
    // Empty and oversized batches.
    let r = f.request(json!([]));
    assert_eq!((r["id"].clone(), r["error"]["code"].clone()), (Value::Null, json!(-32600)));
    let big: Vec<Value> = (0..1001).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "eth_chainId"})).collect();
    assert_eq!(f.request(Value::Array(big))["error"]["code"], -32600);
    let ok: Vec<Value> = (0..1000).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "eth_chainId"})).collect();
    assert_eq!(f.request(Value::Array(ok)).as_array().unwrap().len(), 1000);
    // A batch entry that is not an object, one without a method, a bad version.
    let r = f.request(json!([5, {"id": 2}, {"jsonrpc": "1.0", "id": 3, "method": "eth_chainId"}]));
    assert_eq!(r[0], json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "invalid request"}}));
    assert_eq!((r[1]["id"].clone(), r[1]["error"]["code"].clone()), (json!(2), json!(-32600)));
    assert_eq!(r[2]["error"]["code"], -32600);
    // By-name params are refused; a missing jsonrpc field is tolerated.
    let r = f.request(json!({"jsonrpc": "2.0", "id": 4, "method": "eth_getBalance", "params": {"a": 1}}));
    assert_eq!(r["error"]["code"], -32602);
    assert_eq!(f.request(json!({"id": 5, "method": "eth_chainId"}))["result"], "0x7a69");
    // A non-object, non-array body.
    assert_eq!(f.raw(b"42")["error"]["code"], -32600);
}

#[test]
fn notifications_get_no_answer() {
    let f = fixture();
    assert_eq!(f.request(json!({"jsonrpc": "2.0", "method": "eth_blockNumber"})), Value::Null);
    let r = f.request(json!([
        {"jsonrpc": "2.0", "method": "eth_sendRawTransaction", "params": ["0x0102"]},
        {"jsonrpc": "2.0", "id": 7, "method": "eth_chainId"},
    ]));
    assert_eq!(r, json!([{"jsonrpc": "2.0", "id": 7, "result": "0x7a69"}]));
    // The notification still ran.
    assert_eq!(*f.tb.submitted.lock().unwrap(), vec![Bytes::from(vec![1, 2])]);
    let all = json!([{"jsonrpc": "2.0", "method": "eth_chainId"}, {"jsonrpc": "2.0", "method": "nope"}]);
    assert_eq!(f.request(all), Value::Null);
    // An explicit null id is a call, not a notification.
    assert_eq!(f.request(json!({"jsonrpc": "2.0", "id": null, "method": "eth_chainId"}))["result"], "0x7a69");
}

#[test]
fn block_tags_and_numbers() {
    let f = fixture();
    let who = hex(f.tb.tx(1, 0).sender.as_slice());
    let bal = |tag: Value| f.call("eth_getBalance", json!([who, tag]));
    for tag in ["latest", "pending", "safe", "finalized"] {
        assert_eq!(bal(json!(tag)), Ok(json!("0x3eb")), "{tag}");
    }
    assert_eq!(bal(json!("earliest")), Ok(json!("0x3e8")));
    assert_eq!(bal(json!("0x1")), Ok(json!("0x3e9")));
    assert_eq!(bal(json!({"blockNumber": "0x2"})), Ok(json!("0x3ea")));
    assert_eq!(bal(json!({"blockHash": hex(f.tb.blocks[1].hash.as_slice())})), Ok(json!("0x3e9")));
    assert_eq!(f.ok("eth_getBalance", json!([who])), json!("0x3eb"), "block defaults to latest");
    let e = bal(json!("0x9")).unwrap_err();
    assert_eq!(e, json!({"code": -32000, "message": "header not found"}));
    assert_eq!(bal(json!({"blockHash": hex(&[7; 32])})).unwrap_err()["message"], "header not found");
    let e = bal(json!("newest")).unwrap_err();
    assert_eq!(e["code"], -32602);
    assert!(e["message"].as_str().unwrap().starts_with("invalid argument 1:"), "{e}");
    // Nonces: pending counts the pool.
    assert_eq!(f.ok("eth_getTransactionCount", json!([who, "pending"])), "0x2a");
    assert_eq!(f.ok("eth_getTransactionCount", json!([who, "latest"])), "0x3");
    assert_eq!(f.ok("eth_getTransactionCount", json!([who, "earliest"])), "0x0");
    // Blocks: beyond the head is null, tags resolve.
    assert_eq!(f.ok("eth_getBlockByNumber", json!(["0x9", false])), Value::Null);
    assert_eq!(f.ok("eth_getBlockByNumber", json!(["earliest", false]))["number"], "0x0");
    assert_eq!(f.ok("eth_getBlockByNumber", json!(["latest", false]))["number"], "0x3");
    assert_eq!(f.ok("eth_getBlockByNumber", json!(["pending", false]))["number"], "0x3");
    assert_eq!(f.ok("eth_getBlockByHash", json!([hex(&[7; 32]), false])), Value::Null);
    assert_eq!(f.ok("eth_getBlockTransactionCountByNumber", json!(["0x1"])), "0x2");
    assert_eq!(f.ok("eth_getBlockTransactionCountByNumber", json!(["0x9"])), Value::Null);
    assert_eq!(f.ok("eth_getBlockTransactionCountByHash", json!([hex(f.tb.blocks[2].hash.as_slice())])), "0x1");
    // Missing required argument.
    let e = f.err("eth_getBalance", json!([]));
    assert_eq!(e["code"], -32602);
    assert!(e["message"].as_str().unwrap().contains("argument 0"), "{e}");
}

#[test]
fn simple_methods() {
    let f = fixture();
    assert_eq!(f.ok("web3_clientVersion", json!([])), "openledger/test");
    assert_eq!(f.ok("net_version", json!([])), "31337");
    assert_eq!(f.ok("net_listening", json!([])), true);
    assert_eq!(f.ok("eth_chainId", Value::Null), "0x7a69");
    assert_eq!(f.ok("eth_syncing", json!([])), false);
    assert_eq!(f.ok("eth_accounts", json!([])), json!([]));
    assert_eq!(f.ok("eth_gasPrice", json!([])), json!(format!("{:#x}", NEXT_BASE_FEE as u128 + TIP)));
    assert_eq!(f.ok("eth_maxPriorityFeePerGas", json!([])), json!(format!("{TIP:#x}")));
    assert_eq!(f.ok("eth_getCode", json!([hex(SYSTEM.as_slice()), "latest"])), "0xfe");
    assert_eq!(f.ok("eth_getCode", json!([hex(ADDR_X.as_slice()), "latest"])), "0x");
    assert_eq!(f.err("eth_getCode", json!([hex(ADDR_X.as_slice()), "0x99"]))["message"], "header not found");
    // The slot's value as a 32-byte word (the mock answers slot + 1 at SYSTEM, zero elsewhere).
    let word = |v: u8| format!("0x{}{v:02x}", "0".repeat(62));
    assert_eq!(f.ok("eth_getStorageAt", json!([hex(SYSTEM.as_slice()), "0x4", "latest"])), json!(word(5)));
    assert_eq!(f.ok("eth_getStorageAt", json!([hex(ADDR_X.as_slice()), "0x4", "latest"])), json!(word(0)));
    assert!(
        f.err("eth_getStorageAt", json!([hex(ADDR_X.as_slice()), "0xzz"]))["message"]
            .as_str()
            .unwrap()
            .contains("invalid")
    );
    // State overrides are bounded and checked field by field.
    let call = json!({"to": hex(SYSTEM.as_slice()), "data": "0x"});
    let many: serde_json::Map<String, Value> =
        (0..65u8).map(|i| (hex(Address::repeat_byte(i).as_slice()), json!({"balance": "0x1"}))).collect();
    let e = f.err("eth_call", json!([call, "latest", many]));
    assert!(e["message"].as_str().unwrap().contains("at most 64"), "{e}");
    let both = json!({hex(ADDR_X.as_slice()): {"state": {}, "stateDiff": {}}});
    let e = f.err("eth_call", json!([call, "latest", both]));
    assert!(e["message"].as_str().unwrap().contains("cannot both"), "{e}");
    let unknown = json!({hex(ADDR_X.as_slice()): {"balanse": "0x1"}});
    let e = f.err("eth_call", json!([call, "latest", unknown]));
    assert!(e["message"].as_str().unwrap().contains("unknown field"), "{e}");
    assert_eq!(f.ok("web3_sha3", json!(["0x"])), json!(hex(keccak256([]).as_slice())));
}

#[test]
fn transactions_committed_pooled_and_unknown() {
    let f = fixture();
    let (a, b) = (f.tb.tx(1, 0).clone(), f.tb.tx(1, 1).clone());
    let block1 = hex(f.tb.blocks[1].hash.as_slice());
    let t = f.ok("eth_getTransactionByHash", json!([hex(a.hash.as_slice())]));
    assert_keys(
        &t,
        &[
            "blockHash",
            "blockNumber",
            "transactionIndex",
            "from",
            "to",
            "nonce",
            "gas",
            "value",
            "input",
            "hash",
            "type",
            "chainId",
            "v",
            "r",
            "s",
            "yParity",
            "gasPrice",
            "maxFeePerGas",
            "maxPriorityFeePerGas",
            "accessList",
        ],
    );
    assert_eq!(t["blockHash"], json!(block1));
    assert_eq!(t["blockNumber"], "0x1");
    assert_eq!(t["transactionIndex"], "0x0");
    assert_eq!(t["from"], json!(hex(a.sender.as_slice())));
    assert_eq!(t["to"], json!(hex(SYSTEM.as_slice())));
    assert_eq!(t["type"], "0x2");
    assert_eq!(t["chainId"], "0x7a69");
    assert_eq!(t["value"], "0x7");
    assert_eq!(t["input"], "0xcafe");
    assert_eq!(t["gas"], "0x186a0");
    assert_eq!(t["nonce"], "0x0");
    // min(3 gwei, 1 gwei base + 1 gwei tip)
    assert_eq!(t["gasPrice"], json!(format!("{:#x}", 2 * GWEI)));
    assert_eq!(t["maxFeePerGas"], json!(format!("{:#x}", 3 * GWEI)));
    assert_eq!(t["accessList"], json!([]));
    assert_eq!(t["v"], t["yParity"]);
    assert!(t["v"] == "0x0" || t["v"] == "0x1");
    assert_eq!(t["r"], json!(format!("{:#x}", a.envelope.signature().r())));
    // Legacy: EIP-155 v, no yParity or 1559 fields.
    let t = f.ok("eth_getTransactionByHash", json!([hex(b.hash.as_slice())]));
    assert_eq!(t["type"], "0x0");
    assert_eq!(t["transactionIndex"], "0x1");
    assert_eq!(t["gasPrice"], json!(format!("{:#x}", 2 * GWEI)));
    let v = u64::from_str_radix(&t["v"].as_str().unwrap()[2..], 16).unwrap();
    assert!(v == 35 + 2 * CHAIN_ID || v == 36 + 2 * CHAIN_ID, "{v}");
    for k in ["yParity", "maxFeePerGas", "accessList"] {
        assert!(t.get(k).is_none(), "{k} in a legacy tx");
    }
    // Pooled: block fields null, gasPrice = max fee.
    let d = &f.tb.pool[0];
    let t = f.ok("eth_getTransactionByHash", json!([hex(d.hash.as_slice())]));
    assert_eq!(
        (t["blockHash"].clone(), t["blockNumber"].clone(), t["transactionIndex"].clone()),
        (Value::Null, Value::Null, Value::Null)
    );
    assert_eq!(t["gasPrice"], json!(format!("{:#x}", 4 * GWEI)));
    assert_eq!(t["hash"], json!(hex(d.hash.as_slice())));
    // Unknown: null, not an error. A malformed hash is an error.
    assert_eq!(f.ok("eth_getTransactionByHash", json!([hex(&[9; 32])])), Value::Null);
    assert_eq!(f.err("eth_getTransactionByHash", json!(["0x12"]))["code"], -32602);
    // By block and index.
    let t = f.ok("eth_getTransactionByBlockNumberAndIndex", json!(["0x1", "0x1"]));
    assert_eq!(t["hash"], json!(hex(b.hash.as_slice())));
    assert_eq!(f.ok("eth_getTransactionByBlockHashAndIndex", json!([block1, "0x5"])), Value::Null);
}

#[test]
fn receipts_and_log_indexes() {
    let f = fixture();
    let (a, b, c) = (f.tb.tx(1, 0).clone(), f.tb.tx(1, 1).clone(), f.tb.tx(2, 0).clone());
    let block1 = hex(f.tb.blocks[1].hash.as_slice());
    let r = f.ok("eth_getTransactionReceipt", json!([hex(b.hash.as_slice())]));
    assert_keys(
        &r,
        &[
            "transactionHash",
            "transactionIndex",
            "blockHash",
            "blockNumber",
            "from",
            "to",
            "cumulativeGasUsed",
            "gasUsed",
            "effectiveGasPrice",
            "contractAddress",
            "logs",
            "logsBloom",
            "type",
            "status",
        ],
    );
    assert_eq!(r["transactionHash"], json!(hex(b.hash.as_slice())));
    assert_eq!(r["transactionIndex"], "0x1");
    assert_eq!(r["blockHash"], json!(block1));
    assert_eq!(r["blockNumber"], "0x1");
    assert_eq!(r["from"], json!(hex(b.sender.as_slice())));
    assert_eq!(r["to"], json!(hex(ADDR_Y.as_slice())));
    assert_eq!(r["cumulativeGasUsed"], "0xc738");
    assert_eq!(r["gasUsed"], "0x5208");
    assert_eq!(r["effectiveGasPrice"], json!(format!("{:#x}", 2 * GWEI)));
    assert_eq!(r["contractAddress"], Value::Null);
    assert_eq!(r["type"], "0x0");
    assert_eq!(r["status"], "0x1");
    assert!(r.get("revertReason").is_none());
    assert_eq!(r["logsBloom"].as_str().unwrap().len(), 2 + 512);
    // The one log of the second transaction comes after the two of the first.
    assert_eq!(
        r["logs"],
        json!([{
            "address": hex(ADDR_Y.as_slice()),
            "topics": [hex(T3.as_slice()), hex(T2.as_slice())],
            "data": hex(b"three"),
            "blockNumber": "0x1",
            "blockHash": block1,
            "blockTimestamp": "0x6553f101",
            "transactionHash": hex(b.hash.as_slice()),
            "transactionIndex": "0x1",
            "logIndex": "0x2",
            "removed": false,
        }])
    );
    let r = f.ok("eth_getTransactionReceipt", json!([hex(a.hash.as_slice())]));
    let idx: Vec<&Value> = r["logs"].as_array().unwrap().iter().map(|l| &l["logIndex"]).collect();
    assert_eq!(idx, [&json!("0x0"), &json!("0x1")]);
    assert_eq!(r["type"], "0x2");
    // A failed transaction: status 0, revert data as revertReason.
    let r = f.ok("eth_getTransactionReceipt", json!([hex(c.hash.as_slice())]));
    assert_eq!(r["status"], "0x0");
    assert_eq!(r["revertReason"], "0x01020304");
    assert_eq!(r["logs"], json!([]));
    // Unknown and pooled: null.
    assert_eq!(f.ok("eth_getTransactionReceipt", json!([hex(&[9; 32])])), Value::Null);
    assert_eq!(f.ok("eth_getTransactionReceipt", json!([hex(f.tb.pool[0].hash.as_slice())])), Value::Null);
    // Block receipts carry the same block-wide indexes.
    let all = f.ok("eth_getBlockReceipts", json!(["0x1"]));
    assert_eq!(all[1]["logs"][0]["logIndex"], "0x2");
}

#[test]
fn block_shape() {
    let f = fixture();
    let blk = &f.tb.blocks[1];
    let v = f.ok("eth_getBlockByNumber", json!(["0x1", false]));
    assert_keys(
        &v,
        &[
            "number",
            "hash",
            "parentHash",
            "nonce",
            "sha3Uncles",
            "logsBloom",
            "transactionsRoot",
            "stateRoot",
            "receiptsRoot",
            "miner",
            "difficulty",
            "totalDifficulty",
            "extraData",
            "size",
            "gasLimit",
            "gasUsed",
            "timestamp",
            "baseFeePerGas",
            "mixHash",
            "uncles",
            "transactions",
        ],
    );
    assert!(v.get("withdrawals").is_none());
    assert_eq!(v["number"], "0x1");
    assert_eq!(v["hash"], json!(hex(blk.hash.as_slice())));
    assert_eq!(v["parentHash"], json!(hex(f.tb.blocks[0].hash.as_slice())));
    assert_eq!(v["nonce"], "0x0000000000000000");
    assert_eq!(v["difficulty"], "0x0");
    assert_eq!(v["totalDifficulty"], "0x0");
    assert_eq!(v["extraData"], "0x");
    assert_eq!(v["miner"], json!(hex(&[0; 20])));
    assert_eq!(v["gasLimit"], "0x1c9c380");
    assert_eq!(v["gasUsed"], "0xc738");
    assert_eq!(v["baseFeePerGas"], "0x3b9aca00");
    assert_eq!(v["stateRoot"], json!(hex(blk.header.state_root.as_slice())));
    assert_eq!(v["transactionsRoot"], json!(hex(blk.header.transactions_root.as_slice())));
    assert_eq!(v["uncles"], json!([]));
    assert_eq!(v["transactions"], json!([hex(blk.txs[0].hash.as_slice()), hex(blk.txs[1].hash.as_slice())]));
    let size = u64::from_str_radix(&v["size"].as_str().unwrap()[2..], 16).unwrap();
    let raw_len: usize = blk.txs.iter().map(|t| t.raw.len()).sum();
    assert!(size as usize > raw_len + 500, "{size}");
    // The same block by hash, with full transactions.
    let full = f.ok("eth_getBlockByHash", json!([hex(blk.hash.as_slice()), true]));
    assert_eq!(full["number"], "0x1");
    assert_eq!(full["transactions"][1]["hash"], json!(hex(blk.txs[1].hash.as_slice())));
    assert_eq!(full["transactions"][1]["blockHash"], json!(hex(blk.hash.as_slice())));
    assert_eq!(full["transactions"][0]["gasPrice"], json!(format!("{:#x}", 2 * GWEI)));
    // The hash in the answer is the hash of the header it describes.
    assert_eq!(blk.header.hash_slow(), blk.hash);
}

#[test]
fn get_logs_filters() {
    let f = fixture();
    let t = |b: &B256| json!(hex(b.as_slice()));
    let logs = |filter: Value| -> Vec<(String, String)> {
        f.ok("eth_getLogs", json!([filter]))
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["data"].as_str().unwrap().to_string(), l["logIndex"].as_str().unwrap().to_string()))
            .collect()
    };
    let one = (hex(b"one"), "0x0".to_string());
    let two = (hex(b"two"), "0x1".to_string());
    let three = (hex(b"three"), "0x2".to_string());
    let everything = json!({"fromBlock": "earliest", "toBlock": "latest"});
    assert_eq!(logs(everything.clone()), [one.clone(), two.clone(), three.clone()]);
    // Defaults are latest..latest: the head block has no logs.
    assert_eq!(logs(json!({})), []);
    // Position 0 = T1.
    assert_eq!(logs(json!({"fromBlock": "0x0", "topics": [t(&T1)]})), [one.clone(), two.clone()]);
    // Null wildcard at position 0, T2 at position 1 (the log with one topic cannot match).
    assert_eq!(logs(json!({"fromBlock": "0x0", "topics": [null, t(&T2)]})), [one.clone(), three.clone()]);
    // A trailing wildcard still needs the log to have that many topics (go-ethereum).
    assert_eq!(logs(json!({"fromBlock": "0x0", "topics": [t(&T1), null]})), vec![one.clone()]);
    // OR at a position.
    assert_eq!(
        logs(json!({"fromBlock": "0x0", "topics": [[t(&T1), t(&T3)]]})),
        [one.clone(), two.clone(), three.clone()]
    );
    assert_eq!(logs(json!({"fromBlock": "0x0", "topics": [[t(&T3), null]]})).len(), 3);
    // Position matters: T2 never comes first.
    assert_eq!(logs(json!({"fromBlock": "0x0", "topics": [t(&T2)]})), []);
    // Addresses: one or an array.
    assert_eq!(logs(json!({"fromBlock": "0x0", "address": hex(ADDR_Y.as_slice())})), vec![three.clone()]);
    assert_eq!(
        logs(
            json!({"fromBlock": "0x0", "address": [hex(ADDR_X.as_slice()), hex(ADDR_Y.as_slice())], "topics": [null, t(&T2)]})
        ),
        [one.clone(), three.clone()]
    );
    // By block hash.
    assert_eq!(
        logs(json!({"blockHash": hex(f.tb.blocks[1].hash.as_slice()), "topics": [t(&T3)]})),
        vec![three.clone()]
    );
    // The full log object.
    let l = &f.ok("eth_getLogs", json!([{"fromBlock": "0x1", "toBlock": "0x1", "topics": [t(&T3)]}]))[0];
    assert_eq!(l["transactionHash"], json!(hex(f.tb.tx(1, 1).hash.as_slice())));
    assert_eq!(l["transactionIndex"], "0x1");
    assert_eq!(l["removed"], false);
    // Blocks whose bloom cannot match are not read: only block 1 has logs of Y.
    f.tb.receipt_reads.store(0, Ordering::SeqCst);
    logs(json!({"fromBlock": "0x0", "toBlock": "0x3", "address": hex(ADDR_Y.as_slice())}));
    assert_eq!(f.tb.receipt_reads.load(Ordering::SeqCst), 1);
    f.tb.receipt_reads.store(0, Ordering::SeqCst);
    logs(json!({"fromBlock": "0x0", "toBlock": "0x3", "address": hex(&[0x77; 20])}));
    assert_eq!(f.tb.receipt_reads.load(Ordering::SeqCst), 0);
    // Range cap: 10,000 blocks is fine, 10,001 is not.
    assert_eq!(logs(json!({"fromBlock": "0x0", "toBlock": "0x270f"})).len(), 3);
    let e = f.err("eth_getLogs", json!([{"fromBlock": "0x0", "toBlock": "0x2710"}]));
    assert_eq!(e, json!({"code": -32005, "message": "query exceeds max block range 10000"}));
    // Beyond the head: empty.
    assert_eq!(logs(json!({"fromBlock": "0x100", "toBlock": "0x200"})), []);
    // Invalid filters.
    let e = f.err("eth_getLogs", json!([{"fromBlock": "0x0", "blockHash": hex(f.tb.blocks[1].hash.as_slice())}]));
    assert_eq!(e["code"], -32602);
    assert!(e["message"].as_str().unwrap().contains("cannot specify both BlockHash and FromBlock/ToBlock"));
    assert_eq!(f.err("eth_getLogs", json!([{"fromBlock": "0x2", "toBlock": "0x1"}]))["code"], -32602);
    assert_eq!(f.err("eth_getLogs", json!([{"topics": [null, null, null, null, null]}]))["code"], -32602);
    assert_eq!(f.err("eth_getLogs", json!([{"topics": ["0x12"]}]))["code"], -32602);
    assert_eq!(f.err("eth_getLogs", json!([{"blockHash": hex(&[5; 32])}]))["message"], "unknown block");
}

#[test]
fn log_filter_matching() {
    use crate::methods::parse_log_query;
    let q = |v: Value| parse_log_query(&v).unwrap().filter;
    let l = log(ADDR_X, &[T1, T2, T3], b"");
    let h = |b: &B256| hex(b.as_slice());
    assert!(q(json!({})).matches(&l));
    assert!(q(json!({"topics": []})).matches(&l));
    assert!(q(json!({"topics": [null, null, null]})).matches(&l));
    assert!(!q(json!({"topics": [null, null, null, null]})).matches(&l));
    assert!(q(json!({"topics": [h(&T1), [h(&T3), h(&T2)], null]})).matches(&l));
    assert!(!q(json!({"topics": [h(&T1), [h(&T3), h(&T1)]]})).matches(&l));
    assert!(q(json!({"topics": [[], h(&T2)]})).matches(&l), "an empty OR list is a wildcard");
    assert!(!q(json!({"address": hex(ADDR_Y.as_slice())})).matches(&l));
    assert!(q(json!({"address": [hex(ADDR_Y.as_slice()), hex(ADDR_X.as_slice())]})).matches(&l));
    let bloom = logs_bloom(std::iter::once(&l));
    assert!(q(json!({"address": hex(ADDR_X.as_slice()), "topics": [null, h(&T2)]})).bloom_may_match(&bloom));
    assert!(!q(json!({"topics": [h(&B256::repeat_byte(0x44))]})).bloom_may_match(&bloom));
}

#[test]
fn revert_and_call_errors() {
    let f = fixture();
    let to = hex(SYSTEM.as_slice());
    let e = f.err("eth_call", json!([{"to": to, "data": "0xdead"}, "latest"]));
    assert_eq!(e, json!({"code": 3, "message": "execution reverted", "data": "0x01020304"}));
    let e = f.err("eth_estimateGas", json!([{"to": to, "input": "0xdeadbeef"}]));
    assert_eq!(e, json!({"code": 3, "message": "execution reverted", "data": "0x09"}));
    let e = f.err("eth_call", json!([{"to": to, "data": "0xee"}, "latest"]));
    assert_eq!(e, json!({"code": -32000, "message": "insufficient funds for gas * price + value"}));
    assert_eq!(f.ok("eth_call", json!([{"to": to, "data": "0x01"}, "0x2"])), "0x02");
    assert_eq!(f.ok("eth_call", json!([{"to": to, "input": "0x01"}])), "0x03", "block defaults to latest");
    assert_eq!(f.ok("eth_estimateGas", json!([{"to": to, "input": "0x0102", "maxFeePerGas": "0x1"}])), "0x5228");
    assert_eq!(f.err("eth_call", json!([{"to": to}, "0x10"]))["message"], "header not found");
    let e = f.err("eth_call", json!([{"to": to, "data": "0x01", "input": "0x02"}]));
    assert_eq!(e["code"], -32602);
    // Error(string) reverts read as go-ethereum's "execution reverted: reason".
    let mut data = vec![0x08, 0xc3, 0x79, 0xa0];
    data.extend_from_slice(&U256::from(32).to_be_bytes::<32>());
    data.extend_from_slice(&U256::from(4).to_be_bytes::<32>());
    data.extend_from_slice(b"boom");
    data.extend_from_slice(&[0; 28]);
    let e = RpcError::revert(&data);
    assert_eq!((e.code, e.message.as_str()), (3, "execution reverted: boom"));
    assert_eq!(e.data, Some(json!(hex(&data))));
}

#[test]
fn send_raw_transaction() {
    let f = fixture();
    assert_eq!(f.ok("eth_sendRawTransaction", json!(["0x0102"])), json!(hex(keccak256([1, 2]).as_slice())));
    assert_eq!(f.err("eth_sendRawTransaction", json!(["0xff"])), json!({"code": -32000, "message": "nonce too low"}));
    assert_eq!(f.err("eth_sendRawTransaction", json!(["0xzz"]))["code"], -32602);
    assert_eq!(f.err("eth_sendRawTransaction", json!([]))["code"], -32602);
    // A batch of submissions reaches the backend in order.
    let batch: Vec<Value> = (0..20u8)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [hex(&[0x10, i])]}))
        .collect();
    f.tb.submitted.lock().unwrap().clear();
    let r = f.request(Value::Array(batch));
    assert_eq!(r.as_array().unwrap().len(), 20);
    assert_eq!(r[19]["id"], 19);
    let got: Vec<u8> = f.tb.submitted.lock().unwrap().iter().map(|b| b[1]).collect();
    assert_eq!(got, (0..20).collect::<Vec<u8>>());
}

#[test]
fn fee_history() {
    let f = fixture();
    let v = f.ok("eth_feeHistory", json!(["0x3", "latest", [25.0, 75.0]]));
    assert_eq!(v["oldestBlock"], "0x1");
    assert_eq!(v["baseFeePerGas"], json!(["0x3b9aca00", "0x3b9aca00", "0x3b9aca00", format!("{NEXT_BASE_FEE:#x}")]));
    assert_eq!(v["gasUsedRatio"].as_array().unwrap().len(), 3);
    assert!((v["gasUsedRatio"][0].as_f64().unwrap() - 51_000.0 / 30_000_000.0).abs() < 1e-12);
    // Block 1: tips 1 gwei (30,000 gas) and 1 gwei (legacy 2 gwei - 1 gwei base); block 2: 2 gwei;
    // block 3 is empty: the suggested tip.
    let g = |n: u128| json!(format!("{n:#x}"));
    assert_eq!(v["reward"], json!([[g(GWEI), g(GWEI)], [g(2 * GWEI), g(2 * GWEI)], [g(TIP), g(TIP)]]));
    // Newest below the head: the next base fee is that of the following block; no reward without percentiles.
    let v = f.ok("eth_feeHistory", json!(["0x10", "0x1"]));
    assert_eq!(v["oldestBlock"], "0x0");
    assert_eq!(v["baseFeePerGas"].as_array().unwrap().len(), 3);
    assert!(v.get("reward").is_none());
    assert_eq!(f.err("eth_feeHistory", json!(["0x1", "latest", [50, 10]]))["code"], -32602);
    assert_eq!(f.err("eth_feeHistory", json!(["0x1", "latest", [101]]))["code"], -32602);
    assert_eq!(f.err("eth_feeHistory", json!(["0x1", "0x50"]))["code"], -32000);
    // Gas-weighted percentiles.
    let k = key(3);
    let txs =
        vec![tx_1559(&k, 0, 10 * GWEI, 3 * GWEI), tx_1559(&k, 1, 10 * GWEI, GWEI), tx_1559(&k, 2, 10 * GWEI, 2 * GWEI)];
    let rc = |gas| Receipt {
        tx_type: 2,
        success: true,
        cumulative_gas_used: 0,
        gas_used: gas,
        effective_gas_price: 0,
        logs: vec![],
        revert_data: Bytes::new(),
    };
    let receipts = vec![rc(100), rc(700), rc(200)];
    let r = crate::methods::block_rewards(&txs, &receipts, 0, &[0.0, 50.0, 70.0, 71.0, 90.0, 100.0], 5);
    assert_eq!(r, [GWEI, GWEI, GWEI, 2 * GWEI, 2 * GWEI, 3 * GWEI]);
}

#[test]
fn ol_namespace() {
    let f = fixture();
    let s = f.ok("ol_status", json!([]));
    assert_eq!(
        s,
        json!({
            "chainId": 31337, "head": 3, "headHash": hex(f.tb.blocks[3].hash.as_slice()), "pendingTxs": 1,
            "queuedTxs": 0, "blockTimeMs": 500, "history": 1000, "version": "openledger/test",
        })
    );
    let p = f.ok("ol_getProof", json!([hex(b"k"), "0x2"]));
    assert_eq!(
        p,
        json!({
            "blockNumber": 2, "stateRoot": hex(f.tb.blocks[2].header.state_root.as_slice()), "key": "0x6b",
            "value": "0x76", "proof": "0xabcd",
        })
    );
    assert_eq!(f.ok("ol_getProof", json!([hex(b"x")]))["value"], Value::Null);
    assert_eq!(f.ok("ol_getProof", json!([hex(b"x")]))["blockNumber"], 3);
    assert_eq!(f.err("ol_getProof", json!([hex(b"x"), "0x8"]))["message"], "header not found");
}

// ---- over HTTP ----

async fn start_server() -> (std::net::SocketAddr, Arc<TestBackend>) {
    let tb = Arc::new(TestBackend::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, tb.clone()));
    (addr, tb)
}

/// Send raw HTTP bytes, read the whole answer (the request asks for Connection: close).
fn raw_http(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn header_of<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next().unwrap();
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_round_trip() {
    let (addr, tb) = start_server().await;
    let a = tb.tx(1, 0).clone();
    let url = format!("http://{addr}");
    tokio::task::spawn_blocking(move || {
        let mut c = RpcClient::new(&url);
        assert_eq!(c.block_number().unwrap(), 3);
        assert_eq!(c.chain_id().unwrap(), CHAIN_ID);
        assert_eq!(c.balance(&a.sender).unwrap(), U256::from(1003));
        assert_eq!(c.nonce(&a.sender, true).unwrap(), PENDING_NONCE);
        assert_eq!(c.nonce(&a.sender, false).unwrap(), 3);
        assert_eq!(c.send_raw(&[1, 2, 3]).unwrap(), keccak256([1, 2, 3]));
        let e = c.send_raw(&[0xff]).unwrap_err();
        assert_eq!(e, ClientError::Rpc { code: -32000, message: "nonce too low".into(), data: None });
        assert_eq!(e.to_string(), "nonce too low (JSON-RPC error -32000)");
        assert_eq!(c.receipt(&B256::repeat_byte(9)).unwrap(), None);
        let r = c.wait_receipt(&a.hash, Duration::from_secs(5)).unwrap();
        assert_eq!(r.inner.logs()[1].log_index, Some(1));
        let e = c.wait_receipt(&B256::repeat_byte(9), Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, ClientError::Timeout(_)), "{e}");
        let e = c.call("eth_nope", json!([])).unwrap_err();
        assert_eq!(e.code(), Some(-32601));
        let e = c.call("eth_call", json!([{"to": hex(SYSTEM.as_slice()), "data": "0xdead"}])).unwrap_err();
        assert_eq!(
            e,
            ClientError::Rpc { code: 3, message: "execution reverted".into(), data: Some(json!("0x01020304")) }
        );
        let out =
            c.batch(&[("eth_chainId", json!([])), ("eth_nope", json!([])), ("eth_blockNumber", Value::Null)]).unwrap();
        assert_eq!(out[0], Ok(json!("0x7a69")));
        assert_eq!(out[1].as_ref().unwrap_err().code(), Some(-32601));
        assert_eq!(out[2], Ok(json!("0x3")));
        // Many calls over the one keep-alive connection.
        for _ in 0..200 {
            assert_eq!(c.block_number().unwrap(), 3);
        }
        // A large answer (full block) parses.
        let b = c.call("eth_getBlockByNumber", json!(["0x1", true])).unwrap();
        assert_eq!(b["transactions"].as_array().unwrap().len(), 2);
    })
    .await
    .unwrap();
}

/// The client's typed answers hold what the server sent: each re-serialises to the
/// server's JSON, and the fields read back as the fixture's values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reads_typed_answers() {
    use crate::types::{Block, BlockNumberOrTag, Filter, revert_reason};
    let (addr, tb) = start_server().await;
    tokio::task::spawn_blocking(move || {
        let mut c = RpcClient::new(&format!("http://{addr}"));
        let same = |c: &mut RpcClient, typed: Value, method: &str, params: Value| {
            assert_eq!(typed, c.call(method, params).unwrap(), "{method}");
        };
        let blk = &tb.blocks[1];
        for full in [false, true] {
            let b = c.block(BlockNumberOrTag::Number(1), full).unwrap().expect("block 1");
            assert_eq!((b.header.hash, b.header.number, b.header.base_fee_per_gas), (blk.hash, 1, Some(BASE_FEE)));
            assert_eq!(b.transactions.hashes().collect::<Vec<_>>(), vec![blk.txs[0].hash, blk.txs[1].hash]);
            same(&mut c, serde_json::to_value(&b).unwrap(), "eth_getBlockByNumber", json!(["0x1", full]));
        }
        assert_eq!(c.block(BlockNumberOrTag::Latest, false).unwrap().unwrap().header.number, 3);
        assert_eq!(c.block(BlockNumberOrTag::Number(99), false).unwrap(), None);
        let (a, legacy, failed, pooled) = (tb.tx(1, 0), tb.tx(1, 1), tb.tx(2, 0), &tb.pool[0]);
        for t in [a, legacy, failed, pooled] {
            let got = c.transaction(&t.hash).unwrap().expect("known transaction");
            assert_eq!((got.inner.tx_hash(), got.inner.signer()), (&t.hash, t.sender));
            same(&mut c, serde_json::to_value(&got).unwrap(), "eth_getTransactionByHash", json!([t.hash]));
        }
        assert_eq!(c.transaction(&pooled.hash).unwrap().unwrap().block_number, None);
        assert_eq!(c.transaction(&B256::repeat_byte(9)).unwrap(), None);
        for t in [a, legacy, failed] {
            let r = c.receipt(&t.hash).unwrap().expect("mined");
            same(&mut c, serde_json::to_value(&r).unwrap(), "eth_getTransactionReceipt", json!([t.hash]));
        }
        let r = c.receipt(&failed.hash).unwrap().unwrap();
        assert!(!r.status());
        assert_eq!(revert_reason(&r), Some(Bytes::from(vec![1, 2, 3, 4])));
        let r = c.receipt(&legacy.hash).unwrap().unwrap();
        assert!(r.status());
        assert_eq!((r.gas_used, r.effective_gas_price, r.from, r.to), (21_000, 2 * GWEI, legacy.sender, Some(ADDR_Y)));
        assert_eq!(revert_reason(&r), None);
        let logs = c.logs(&Filter::new().from_block(0).address(ADDR_X).event_signature(T1).topic1(T2)).unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(
            (logs[0].transaction_hash, logs[0].log_index, logs[0].data().data.as_ref()),
            (Some(a.hash), Some(0), &b"one"[..])
        );
        let all = c.logs(&Filter::new().from_block(0).to_block(BlockNumberOrTag::Latest)).unwrap();
        assert_eq!(all.len(), 3);
        same(&mut c, serde_json::to_value(&all).unwrap(), "eth_getLogs", json!([{"fromBlock": "0x0"}]));
        // An answer of the wrong shape is a clear error, not a panic.
        let e = c.call_as::<Option<Block>>("eth_chainId", json!([])).unwrap_err();
        assert!(matches!(&e, ClientError::Response(m) if m.starts_with("eth_chainId: ")), "{e}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_cors_preflight_and_limits() {
    let (addr, _tb) = start_server().await;
    tokio::task::spawn_blocking(move || {
        // Preflight.
        let r = raw_http(
            addr,
            b"OPTIONS / HTTP/1.1\r\nHost: x\r\nOrigin: http://wallet\r\nAccess-Control-Request-Method: POST\r\n\
              Access-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.1 204"), "{r}");
        assert_eq!(header_of(&r, "access-control-allow-origin"), Some("*"));
        assert_eq!(header_of(&r, "access-control-allow-headers"), Some("content-type"));
        assert_eq!(header_of(&r, "access-control-allow-methods"), Some("POST, OPTIONS"));
        // POST without a Content-Type.
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#;
        let req = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        let r = raw_http(addr, req.as_bytes());
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert_eq!(header_of(&r, "access-control-allow-origin"), Some("*"));
        assert_eq!(header_of(&r, "content-type"), Some("application/json"));
        assert!(r.ends_with(r#"{"jsonrpc":"2.0","id":1,"result":"0x7a69"}"#), "{r}");
        // Malformed JSON: HTTP 200 with a parse error.
        let req = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{oops";
        let r = raw_http(addr, req.as_bytes());
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(r.ends_with(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#), "{r}");
        // A lone notification: 204.
        let body = r#"{"jsonrpc":"2.0","method":"eth_chainId"}"#;
        let req = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        assert!(raw_http(addr, req.as_bytes()).starts_with("HTTP/1.1 204"));
        // Another method or path: 405 / 404 with a JSON-RPC error (found by
        // `bench fuzz`: the answers were empty).
        for (req, status, message) in [
            ("GET / HTTP/1.1", "405", "JSON-RPC is served by POST / (not GET /)"),
            ("POST /rpc HTTP/1.1", "404", "JSON-RPC is served by POST / (not POST /rpc)"),
        ] {
            let r = raw_http(addr, format!("{req}\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
            assert!(r.starts_with(&format!("HTTP/1.1 {status}")), "{r}");
            assert_eq!(header_of(&r, "content-type"), Some("application/json"));
            assert!(
                r.ends_with(&format!(r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":-32600,"message":"{message}"}}}}"#)),
                "{r}"
            );
        }
        // Over 5 MiB: 413.
        let n = MAX_BODY_BYTES + 1;
        let mut req = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n").into_bytes();
        req.extend(std::iter::repeat_n(b' ', n));
        let r = raw_http(addr, &req);
        assert!(r.starts_with("HTTP/1.1 413"), "{}", &r[..r.len().min(200)]);
        assert_eq!(header_of(&r, "access-control-allow-origin"), Some("*"));
        // ... answered in JSON-RPC (found by `bench fuzz`: it was axum's plain text).
        assert_eq!(header_of(&r, "content-type"), Some("application/json"));
        assert!(
            r.ends_with(&format!(
                r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":-32600,"message":"request body too large: at most {MAX_BODY_BYTES} bytes"}}}}"#
            )),
            "{}",
            &r[..r.len().min(400)]
        );
        // Just under the cap is read (and is not valid JSON).
        let n = MAX_BODY_BYTES;
        let mut req = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n").into_bytes();
        req.extend(std::iter::repeat_n(b' ', n - 1));
        req.push(b'[');
        let r = raw_http(addr, &req);
        assert!(r.contains("-32700"), "{}", &r[..r.len().min(200)]);
    })
    .await
    .unwrap();
}

/// A fake node: answers the first request chunked and then closes the connection,
/// so the client's next call finds its keep-alive connection dead and reconnects.
#[test]
fn client_chunked_and_reconnect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let read_request = |s: &mut TcpStream| -> Value {
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut byte).unwrap();
                buf.push(byte[0]);
            }
            let head = String::from_utf8(buf).unwrap();
            let len: usize = header_of(&head, "content-length").unwrap().parse().unwrap();
            let mut body = vec![0; len];
            s.read_exact(&mut body).unwrap();
            serde_json::from_slice(&body).unwrap()
        };
        let mut connections = 0;
        for conn in listener.incoming().take(2) {
            let mut s = conn.unwrap();
            connections += 1;
            let req = read_request(&mut s);
            let body = format!(r#"{{"jsonrpc":"2.0","id":{},"result":"0x10"}}"#, req["id"]);
            let (a, b) = body.split_at(10);
            if connections == 1 {
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n\
                     {:x};ext=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\nX-Trailer: t\r\n\r\n",
                    a.len(),
                    b.len()
                );
                s.write_all(resp.as_bytes()).unwrap();
                // Close the keep-alive connection, and say so.
                drop(s);
                closed_tx.send(()).unwrap();
            } else {
                let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                s.write_all(resp.as_bytes()).unwrap();
            }
        }
        connections
    });
    let mut c = RpcClient::new(&addr.to_string()).with_timeout(Duration::from_secs(10));
    assert_eq!(c.block_number().unwrap(), 16);
    closed.recv_timeout(Duration::from_secs(10)).expect("the server closed the first connection");
    assert_eq!(c.block_number().unwrap(), 16);
    assert_eq!(server.join().unwrap(), 2);
}

/// Calls run with at most the RPC gas cap and within the time cap; a batch
/// carries at most `MAX_BATCH_HEAVY` executing calls.
#[test]
fn calls_are_capped_in_gas_time_and_per_batch() {
    let f = fixture();
    let to = SYSTEM;
    let cap = crate::methods::RPC_GAS_CAP;
    let gas_of = |v: Value| u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(
        gas_of(f.ok("eth_call", json!([{"to": to.to_string(), "data": "0x6a", "gas": "0xffffffffffff"}, "latest"]))),
        cap
    );
    assert_eq!(gas_of(f.ok("eth_call", json!([{"to": to.to_string(), "data": "0x6a"}, "latest"]))), cap);
    assert_eq!(
        gas_of(f.ok("eth_call", json!([{"to": to.to_string(), "data": "0x6a", "gas": "0x5208"}, "latest"]))),
        21_000
    );
    let e = f.err("eth_call", json!([{"to": to.to_string(), "data": "0x51"}, "latest"]));
    assert!(e["message"].as_str().unwrap().starts_with("execution aborted (timeout"), "{e}");
    let n = crate::MAX_BATCH_HEAVY + 3;
    let batch: Vec<Value> = (0..n)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "eth_call", "params": [{"to": to.to_string(), "data": "0x01"}, "latest"]}))
        .chain(std::iter::once(json!({"jsonrpc": "2.0", "id": "cheap", "method": "eth_blockNumber", "params": []})))
        .collect();
    let r = f.request(Value::Array(batch));
    let r = r.as_array().unwrap();
    assert_eq!(r.len(), n + 1);
    let limited = r.iter().filter(|x| x["error"]["code"] == json!(crate::error::LIMIT_EXCEEDED)).count();
    assert_eq!(limited, 3, "the heavy calls past the batch's share are refused");
    assert!(r[..crate::MAX_BATCH_HEAVY].iter().all(|x| x.get("result").is_some()));
    assert_eq!(r[n]["result"], "0x3", "cheap calls are not counted");
}

/// An estimate for a transaction with an access list includes the list's gas.
#[test]
fn estimates_include_the_access_list() {
    let f = fixture();
    let to = SYSTEM.to_string();
    let plain = f.ok("eth_estimateGas", json!([{"to": to, "input": "0x0102"}]));
    let list =
        json!([{"address": to, "storageKeys": [format!("0x{}", "00".repeat(32)), format!("0x{}", "11".repeat(32))]}]);
    let with = f.ok("eth_estimateGas", json!([{"to": to, "input": "0x0102", "accessList": list}]));
    let n = |v: Value| u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(n(with), n(plain) + 2_400 + 2 * 1_900);
    let e = f.err("eth_estimateGas", json!([{"to": to, "accessList": "nope"}]));
    assert_eq!(e["code"], -32602);
}

/// A node that is not a dev chain refuses the mining methods with a reason;
/// malformed counts, a timestamp and an interval are refused before any work.
#[test]
fn mining_methods_are_refused_off_a_dev_chain_and_checked() {
    let f = fixture();
    for m in ["evm_mine", "anvil_mine", "hardhat_mine"] {
        let e = f.err(m, json!([]));
        assert!(e["message"].as_str().unwrap().contains("dev-chain methods"), "{m}: {e}");
    }
    let e = f.err("evm_mine", json!([1_800_000_000]));
    assert!(e["message"].as_str().unwrap().contains("timestamp"), "{e}");
    let e = f.err("anvil_mine", json!(["0x2", "0x3"]));
    assert!(e["message"].as_str().unwrap().contains("interval"), "{e}");
    for bad in [json!(["0x0"]), json!(["0x101"]), json!(["two"]), json!(["0x1", "0x0", 3])] {
        let e = f.err("anvil_mine", bad.clone());
        assert_eq!(e["code"], -32602, "{bad}: {e}");
    }
}
