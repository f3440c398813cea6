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

fn repo(p: &str) -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(p).to_str().unwrap().to_string()
}

/// `openledger --json ARGS [--rpc R] [--http H]` against one node; its JSON answer.
fn ol(node: &NodeProc, args: &[&str], rpc: bool, http: bool) -> serde_json::Value {
    let mut v = vec!["--json"];
    v.extend_from_slice(args);
    if rpc {
        v.extend(["--rpc", node.rpc.as_str()]);
    }
    if http {
        v.extend(["--http", node.http.as_str()]);
    }
    let o = common::cli(&v);
    assert!(
        o.status.success(),
        "openledger {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Four validators, each serving and verifying. A model trained and served on
/// node0 answers a paid request; its attribution record is challenged; every
/// validator's verifier recomputes it (nodes 1 to 3 fetch the adapter and the
/// Datanet's rows from node0's blob route, checked against their hashes),
/// signs the verdict with its consensus key, and the chain decides it by the
/// set's power.
#[test]
fn challenge_verdicts_are_signed_by_the_validators_verifiers() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_base().to_string();
    let d = dir.path().to_str().unwrap();
    let wrote: serde_json::Value = serde_json::from_str(&cli_ok(&[
        "--json",
        "testnet",
        "--validators",
        "4",
        "--dir",
        d,
        "--base-port",
        &base,
        "--insecure-fast-kdf",
    ]))
    .unwrap();
    let serving0 = wrote["serving"][0].as_str().unwrap().to_string();
    let nodes: Vec<NodeProc> = (0..4).map(|i| start(&dir.path().join(format!("node{i}")))).collect();
    let n0 = &nodes[0];
    wait_for_height(n0, 2);

    // The app: escrow, an allowance for node0's serving operator, an API key.
    ol(n0, &["escrow", "deposit", "50", "--dev-account", "0"], true, false);
    ol(n0, &["escrow", "allow", &serving0, "50", "--dev-account", "0"], true, false);
    let key = ol(n0, &["apikey", "new", "--dev-account", "0"], true, false)["key"].as_str().unwrap().to_string();
    // Governance power is stake: the app's owner delegates to every validator
    // (keeping their power equal), enough to propose and reach quorum alone.
    for op in wrote["operators"].as_array().unwrap() {
        ol(n0, &["stake", "delegate", op.as_str().unwrap(), "1500", "--dev-account", "0"], true, false);
    }
    // A Datanet, a contribution, a fine-tune on node0, governance makes it live.
    let dn = ol(
        n0,
        &["datanet", "create", "--from-json", &repo("data/unix-shell/datanet.json"), "--dev-account", "0"],
        true,
        true,
    );
    let dn = dn["id"].as_u64().unwrap().to_string();
    let c = ol(
        n0,
        &["contribute", &repo("data/unix-shell/contributor-1.jsonl"), "--datanet", &dn, "--dev-account", "1"],
        true,
        true,
    );
    ol(n0, &["curate", "approve", &c["contribution"].as_u64().unwrap().to_string(), "--dev-account", "0"], true, false);
    let job =
        ol(n0, &common::quick_train(&format!("{dn}:1")).iter().map(String::as_str).collect::<Vec<_>>(), false, true);
    assert_eq!(job["status"], "succeeded", "{job}");
    let reg = ol(
        n0,
        &["model", "propose", "--job", "1", "--price-in", "0.002", "--price-out", "0.004", "--dev-account", "1"],
        true,
        true,
    );
    let id = reg["id"].as_u64().unwrap();
    let call = format!("models.approve [{id}]");
    let p =
        ol(n0, &["gov", "propose", "--description", "serve it", "--call", &call, "--dev-account", "0"], true, false);
    let pid = p["id"].as_u64().unwrap().to_string();
    ol(n0, &["gov", "vote", &pid, "for", "--dev-account", "0"], true, false);
    ol(n0, &["gov", "wait", &pid, "--state", "queued"], true, false);
    ol(n0, &["gov", "execute", &pid, "--dev-account", "0"], true, false);

    // A paid, published answer; its record is posted after settlement.
    let mid = format!("m{id}");
    let a = ol(
        n0,
        &["infer", &mid, "How do I list hidden files?", "--api-key", &key, "--max-tokens", "6", "--public-attribution"],
        false,
        true,
    );
    let receipt = a["receipt"]["hash"].as_str().unwrap().to_string();
    assert!(a["attribution"]["recordHash"].is_string(), "{a}");
    // Settled, then its record posted: the hold moves from "no record" (1) to "credits pending" (2).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        use alloy_sol_types::SolCall;
        use primitives::abi::IInference;
        let call = IInference::holdCall { receiptHash: receipt.parse().unwrap() }.abi_encode();
        let to = primitives::system::Module::Inference.address();
        let status = match n0
            .client()
            .call("eth_call", serde_json::json!([{"to": to, "data": primitives::Bytes::from(call)}, "latest"]))
        {
            // Not settled yet: the receipt is unknown.
            Err(_) => 0,
            Ok(out) => {
                let bytes = hex::decode(out.as_str().unwrap().trim_start_matches("0x")).unwrap();
                IInference::holdCall::abi_decode_returns(&bytes).unwrap().status
            }
        };
        if status == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the record was never posted (hold status {status})");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Challenged by an account that is neither payer nor operator; judged by the validators.
    let ch = ol(n0, &["attribution", "challenge", &receipt, "--force", "--dev-account", "5"], true, true);
    assert_eq!(ch["challenge"]["status"], 1, "{ch}");
    let deadline = Instant::now() + Duration::from_secs(180);
    let judged = loop {
        let shown = ol(n0, &["attribution", "show", &receipt], true, true);
        if shown["challenge"]["status"].as_u64().unwrap_or(0) >= 3 {
            break shown;
        }
        assert!(Instant::now() < deadline, "the challenge was not judged: {}", shown["challenge"]);
        std::thread::sleep(Duration::from_millis(250));
    };
    // A right record: the challenger's bond is forfeited, by more than two thirds of the power.
    assert_eq!(judged["challenge"]["status"], 4, "{}", judged["challenge"]);
    let signers = judged["challenge"]["signers"].as_u64().unwrap();
    assert!(signers >= 3, "verdicts from {signers} validators: more than two thirds of four are needed");
    // Nodes 1 to 3 ingested nothing: what their verifiers needed (the Datanet's
    // rows, the model's artefacts) came from node0, and they keep it.
    let names = |i: usize| -> Vec<String> {
        walk(&dir.path().join(format!("node{i}/blobs")))
            .iter()
            .map(|p| p.rsplit('/').next().unwrap().to_string())
            .collect()
    };
    let held = names(0);
    let fetched = (1..4).filter(|i| {
        let theirs = names(*i);
        !theirs.is_empty() && theirs.iter().all(|b| held.contains(b))
    });
    assert!(fetched.count() >= 2, "the blobs a verdict needs did not reach the other validators");
    for n in nodes {
        n.stop();
    }
}

/// Every file under `d`.
fn walk(d: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path().display().to_string());
        }
    }
    out
}
