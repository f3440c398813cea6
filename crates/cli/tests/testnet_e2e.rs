//! `openledger testnet` as a user drives it: write a one-validator network,
//! start it, send transfers, read commit certificates, then join a second
//! node from the first one's snapshot and watch it follow. (Four validators
//! and their faults are the fault harness's, in `consensus_faults.rs`.)

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{NodeProc, bin, cli_ok, dev, signed};
use primitives::consensus::CommitCertificate;

/// A base port with the ten ports after it free (bound, read, released).
fn free_base() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = l.local_addr().unwrap().port();
        drop(l);
        if base < 60000 && (0..20).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
}

fn start(home: &Path) -> NodeProc {
    let child = Command::new(bin())
        .args(["start", "--data-dir"])
        .arg(home)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    NodeProc::attach(child, home)
}

fn wait_for_height(node: &NodeProc, h: u64) {
    let mut c = node.client();
    let deadline = Instant::now() + Duration::from_secs(120);
    while c.block_number().unwrap_or(0) < h {
        assert!(Instant::now() < deadline, "{} did not reach block {h}", node.rpc);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_testnet_decides_certifies_and_a_node_joins_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_base().to_string();
    let d = dir.path().to_str().unwrap();
    let wrote = cli_ok(&[
        "testnet",
        "--validators",
        "1",
        "--dir",
        d,
        "--base-port",
        &base,
        "--chain-id",
        "31337",
        "--insecure-fast-kdf",
    ]);
    assert!(wrote.contains("node0"), "{wrote}");
    // A second testnet in the same place is refused, not overwritten.
    let again = common::cli(&["testnet", "--dir", d, "--base-port", &base]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a testnet"));

    let v = start(&dir.path().join("node0"));
    let mut c = v.client();
    let to = dev(7).address();
    let before = c.balance(&to).unwrap();
    let k = dev(2);
    let hash = c.send_raw(&signed(&k, 0, to, 5, vec![], 21_000)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let receipt = loop {
        if let Some(r) = c.receipt(&hash).unwrap() {
            break r;
        }
        assert!(Instant::now() < deadline, "the transfer was never decided");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(c.balance(&to).unwrap(), before + primitives::U256::from(5u8));
    let n = receipt.block_number.unwrap();

    // The block's certificate: the one validator's precommit over the block's hash.
    let commit = c.call("ol_getCommit", serde_json::json!([format!("0x{n:x}")])).unwrap();
    let block = c.call("eth_getBlockByNumber", serde_json::json!([format!("0x{n:x}"), false])).unwrap();
    assert_eq!(commit["blockHash"], block["hash"]);
    let cert =
        CommitCertificate::decode(&hex::decode(commit["encoded"].as_str().unwrap().trim_start_matches("0x")).unwrap())
            .unwrap();
    assert_eq!(cert.height, n);
    assert_eq!(cert.signatures.len(), 1);
    // Decided blocks are format 1: "ol" 0x01 and 29 bytes binding the carried certificate (32 in all).
    let extra = block["extraData"].as_str().unwrap();
    assert!(extra.starts_with("0x6f6c01") && extra.len() == 2 + 64, "{extra}");
    assert_eq!(c.call("ol_getCommit", serde_json::json!(["0x0"])).unwrap(), serde_json::Value::Null);

    // The snapshot route refuses what it cannot serve.
    assert_eq!(v.http_get("/v1/snapshot?height=99999999").0, 404);
    assert_eq!(v.http_get("/v1/snapshot?height=x").0, 400);
    assert_eq!(v.http_get("/v1/snapshot?block=1").0, 400);

    // A node joins from node0's snapshot and follows the chain.
    let joined = cli_ok(&["testnet", "--join", "--dir", d, "--snapshot-from", "0", "--insecure-fast-kdf"]);
    assert!(joined.contains("node1 joins from a snapshot at block"), "{joined}");
    let f = start(&dir.path().join("node1"));
    let head = c.block_number().unwrap();
    wait_for_height(&f, head + 2);
    let mut fc = f.client();
    let at = head + 1;
    let a = c.call("eth_getBlockByNumber", serde_json::json!([format!("0x{at:x}"), false])).unwrap();
    let b = fc.call("eth_getBlockByNumber", serde_json::json!([format!("0x{at:x}"), false])).unwrap();
    assert_eq!(a["hash"], b["hash"]);
    assert_eq!(fc.balance(&to).unwrap(), before + primitives::U256::from(5u8));
    // A transaction sent to the follower reaches the validator by gossip and is decided.
    let hash = fc.send_raw(&signed(&k, 1, to, 6, vec![], 21_000)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.receipt(&hash).unwrap().is_none() {
        assert!(Instant::now() < deadline, "a transaction sent to the follower was never decided");
        std::thread::sleep(Duration::from_millis(50));
    }
    f.stop();
    v.stop();
}
