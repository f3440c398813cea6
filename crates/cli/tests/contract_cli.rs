//! `openledger contract …` against a real node, as a new user drives it: deploy
//! OpenZeppelin's ERC-20 from its committed artifact, read and move balances,
//! see reverts named, trace a transaction — no cast, jq or npm.

mod common;

use std::process::Output;

use alloy_primitives::TxKind;
use alloy_sol_types::{SolCall, sol};
use common::*;
use primitives::{Address, U256};
use serde_json::Value;

sol! {
    function fail(uint256 code) external view;
    function forward(address target, bytes calldata data) external payable returns (bytes memory result);
}

fn artifact(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/out").join(format!("{name}.json"));
    p.to_str().unwrap().to_string()
}

/// `contract ARGS… --rpc NODE` (a signer, where needed, is in `args`).
fn with_rpc<'a>(node: &'a NodeProc, args: &[&'a str]) -> Vec<&'a str> {
    [&["contract"], args, &["--rpc", node.rpc.as_str()]].concat()
}

fn contract(node: &NodeProc, args: &[&str]) -> Output {
    cli(&with_rpc(node, args))
}

fn contract_ok(node: &NodeProc, args: &[&str]) -> String {
    cli_ok(&with_rpc(node, args))
}

/// The command fails cleanly (exit 1, no panic); its error message.
fn contract_err(node: &NodeProc, args: &[&str]) -> String {
    let o = contract(node, args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "contract {args:?} should fail:\n{}\n{err}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn json_of(node: &NodeProc, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&contract_ok(node, &all)).unwrap()
}

fn balance(node: &NodeProc, token: &str, who: Address) -> String {
    contract_ok(node, &["call", token, "balanceOf(address)(uint256)", &who.to_string()]).trim().to_string()
}

const SUPPLY: &str = "1000000000000000000000";

#[test]
fn deploy_call_send_and_trace_an_erc20() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &["--instant"]);
    let (me, bob) = (dev(0).address(), dev(1).address());
    let tt = artifact("TestToken");

    let d = json_of(&node, &["deploy", &tt, "Test", "TST", SUPPLY, "--dev-account", "0"]);
    assert_eq!(d["status"], "0x1");
    assert_eq!(d["contract"], "TestToken");
    assert!(d["gasUsed"].as_u64().unwrap() > 100_000, "{d}");
    let token: Address = d["contractAddress"].as_str().unwrap().parse().unwrap();
    assert_eq!(token, me.create(0));
    let token = token.to_checksum(None);

    // The human form names the address, and --quiet prints only it (for `$(…)`).
    let human = contract_ok(&node, &["deploy", &tt, "Other", "OTH", "5", "--dev-account", "0"]);
    assert!(human.starts_with(&format!("TestToken deployed at {}\n", me.create(1).to_checksum(None))), "{human}");
    assert!(human.contains("gas"), "{human}");
    let quiet = contract_ok(&node, &["deploy", &tt, "Q", "Q", "1", "--quiet", "--dev-account", "0"]);
    assert_eq!(quiet, format!("{}\n", me.create(2).to_checksum(None)));

    assert_eq!(balance(&node, &token, me), SUPPLY);
    assert_eq!(contract_ok(&node, &["call", &token, "totalSupply()(uint256)"]).trim(), SUPPLY);
    // By name through the artifact, and several outputs as JSON.
    assert_eq!(contract_ok(&node, &["call", &token, "name", "--abi", &tt]), "\"Test\"\n");
    let v = json_of(&node, &["call", &token, "symbol()(string)"]);
    assert_eq!(v["outputs"], serde_json::json!(["TST"]));

    // A transfer moves the balance, and its receipt shows the Transfer log.
    let sent = contract_ok(
        &node,
        &["send", &token, "transfer(address,uint256)", &bob.to_string(), "250", "--dev-account", "0"],
    );
    assert!(sent.starts_with("transfer(address,uint256): mined 0x"), "{sent}");
    assert!(sent.contains("status 1 (success), 1 log"), "{sent}");
    assert_eq!(balance(&node, &token, bob), "250");
    assert_eq!(balance(&node, &token, me), "999999999999999999750");

    // Amounts with a unit, through --abi by name, as JSON.
    let s =
        json_of(&node, &["send", &token, "transfer", &bob.to_string(), "1OPEN", "--abi", &tt, "--dev-account", "0"]);
    assert_eq!((s["status"].as_str(), s["logs"].as_u64()), (Some("0x1"), Some(1)));
    assert_eq!(balance(&node, &token, bob), "1000000000000000250");

    // The trace of that transfer: the top CALL to the token, decoded with --abi.
    let hash = s["hash"].as_str().unwrap();
    let quiet = contract_ok(
        &node,
        &["send", &token, "transfer(address,uint256)", &bob.to_string(), "0", "-q", "--dev-account", "0"],
    );
    assert_eq!(quiet.trim().len(), 66, "{quiet}");
    assert!(contract_ok(&node, &["trace", quiet.trim()]).starts_with("CALL "));
    let plain = contract_ok(&node, &["trace", hash]);
    let top = plain.lines().next().unwrap();
    assert!(top.starts_with(&format!("CALL {} → {token} 0xa9059cbb gas used ", me.to_checksum(None))), "{plain}");
    let named = contract_ok(&node, &["trace", hash, "--abi", &tt]);
    assert!(named.contains(&format!("transfer({}, 1000000000000000000)", bob.to_checksum(None))), "{named}");

    // Uniswap v2's npm artifacts (an older compiler's ABI, no contractName) deploy the same way.
    let uni = |n: &str| artifact(&format!("uniswap/{n}"));
    let deploy_q = |args: &[&str]| -> String {
        let mut all = vec!["deploy"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--quiet", "--dev-account", "0"]);
        contract_ok(&node, &all).trim().to_string()
    };
    let weth = deploy_q(&[&uni("WETH9")]);
    let factory = deploy_q(&[&uni("UniswapV2Factory"), &me.to_string()]);
    let router = deploy_q(&[&uni("UniswapV2Router02"), &factory, &weth]);
    let fee_to_setter = contract_ok(&node, &["call", &factory, "feeToSetter", "--abi", &uni("UniswapV2Factory")]);
    assert_eq!(fee_to_setter.trim(), me.to_checksum(None));
    assert_eq!(contract_ok(&node, &["call", &router, "WETH()(address)"]).trim(), weth);
}

#[test]
fn bad_input_and_reverts_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &["--instant"]);
    let tt = artifact("TestToken");
    let bob = dev(1).address().to_string();

    // Deploy: argument count (with the signature), types, value, bytecode.
    let e = contract_err(&node, &["deploy", &tt, "Test", "TST", "--dev-account", "0"]);
    assert!(
        e.contains(
            "TestToken's constructor(string name_, string symbol_, uint256 initialSupply) takes 3 arguments, got 2"
        ),
        "{e}"
    );
    let e = contract_err(&node, &["deploy", &tt, "Test", "TST", "lots", "--dev-account", "0"]);
    assert!(e.contains("argument 3 (uint256 initialSupply)") && e.contains("\"lots\" is not an integer"), "{e}");
    let e = contract_err(&node, &["deploy", &tt, "Test", "TST", "1", "--value", "1", "--dev-account", "0"]);
    assert!(e.contains("not payable"), "{e}");
    let iface = dir.path().join("IFace.json");
    std::fs::write(&iface, r#"{"abi": [], "bytecode": "0x"}"#).unwrap();
    let e = contract_err(&node, &["deploy", iface.to_str().unwrap(), "--dev-account", "0"]);
    assert!(e.contains("has no bytecode"), "{e}");

    let token = contract_ok(&node, &["deploy", &tt, "Test", "TST", SUPPLY, "--quiet", "--dev-account", "0"]);
    let token = token.trim();

    // Call: argument count, a bad address as an argument and as the target, a bad signature.
    let e = contract_err(&node, &["call", token, "balanceOf(address)(uint256)"]);
    assert!(e.contains("balanceOf(address) takes 1 argument, got 0"), "{e}");
    let e = contract_err(&node, &["call", token, "balanceOf(address)(uint256)", "0x1234"]);
    assert!(e.contains("argument 1 (address)") && e.contains("\"0x1234\" is not an address"), "{e}");
    let e = contract_err(&node, &["call", "0xnothex", "totalSupply()(uint256)"]);
    assert!(e.contains("the contract's address") && e.contains("\"0xnothex\" is not an address"), "{e}");
    let e = contract_err(&node, &["call", token, "totalSupply(uint25)(uint256)"]);
    assert!(e.contains("bad signature"), "{e}");
    let nobody = "0x00000000000000000000000000000000000000ee";
    let e = contract_err(&node, &["call", nobody, "totalSupply()(uint256)"]);
    assert!(e.contains("there is no contract at"), "{e}");

    // A call that reverts with OpenZeppelin 5's custom error: the data always, the name with --abi.
    let transfer = ["call", token, "transfer(address,uint256)", &bob, "5", "--from", &bob];
    let e = contract_err(&node, &transfer);
    assert!(e.contains("transfer(address,uint256) reverted: unknown error 0xe450d38c"), "{e}");
    assert!(e.contains("revert data: 0xe450d38c") && e.contains("give --abi"), "{e}");
    let e = contract_err(&node, &[&transfer[..], &["--abi", &tt]].concat());
    assert!(
        e.contains(&format!("ERC20InsufficientBalance(sender: {}, balance: 0, needed: 5)", dev(1).address())),
        "{e}"
    );

    // Sending it is refused before anything is sent, with the same name.
    let e = contract_err(
        &node,
        &["send", token, "transfer(address,uint256)", &bob, "5", "--abi", &tt, "--dev-account", "1"],
    );
    assert!(e.contains("refused by the node (nothing sent): ERC20InsufficientBalance("), "{e}");
    let e = contract_err(&node, &["send", token, "transfer", &bob, "5", "--dev-account", "1"]);
    assert!(e.contains("give --abi ARTIFACT.json to call by name"), "{e}");
}

#[test]
fn a_reverted_nested_call_is_traced_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &["--instant"]);
    let probe_json = artifact("Probe");
    let probe: Address =
        contract_ok(&node, &["deploy", &probe_json, "-q", "--dev-account", "0"]).trim().parse().unwrap();
    // A transaction that reverts inside: sent with a fixed gas limit, as no preflight would let it through.
    let inner = failCall { code: U256::from(9u64) }.abi_encode();
    let data = forwardCall { target: probe, data: inner.into() }.abi_encode();
    let mut c = node.client();
    let k = dev(2);
    let raw = signed_kind(&k, 0, TxKind::Call(probe), 0, data, 200_000);
    let h = c.send_raw(&raw).unwrap();
    let r = c.wait_receipt(&h, std::time::Duration::from_secs(60)).unwrap();
    assert!(!r.status());
    let t = contract_ok(&node, &["trace", &h.to_string(), "--abi", &probe_json]);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 2, "{t}");
    let p = probe.to_checksum(None);
    assert!(lines[0].starts_with(&format!("CALL {} → {p} forward({p}, 0x", k.address().to_checksum(None))), "{t}");
    assert!(lines[0].contains("error: execution reverted"), "{t}");
    assert!(lines[1].starts_with(&format!("  CALL {p} → {p} fail(9) gas used ")), "{t}");
    assert!(lines[1].contains(&format!("error: execution reverted (Failed(code: 9, caller: {p})")), "{t}");
    let e = contract_err(&node, &["trace", "0x1111111111111111111111111111111111111111111111111111111111111111"]);
    assert!(e.contains("not found"), "{e}");
}
