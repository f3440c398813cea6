//! Governance and staking from the pages, on an instant dev node: a passed
//! proposal's page carries `button.gov-execute` with exactly the `execute`
//! call `openledger gov execute` sends (there is no queue call: the contract
//! queues a passed proposal when it tallies); sent through the dev wallet
//! before the timelock it is refused with the decoded `TimelockNotExpired`,
//! after it the proposal runs. An operator's page, given an amount, carries
//! the CLI's `bond` (value: the amount, exactly), `unbond` and `claimRewards`
//! calls; the delegation and the unbonding sent as they are change the stake.
//! Bad amounts are 400 pages.

use std::time::{Duration, Instant};

use alloy_sol_types::SolCall;
use primitives::abi::{IGovernance, IStaking};
use primitives::system::Module;
use primitives::{Address, U256};
use serde_json::{Value, json};

use crate::common::*;
use crate::jobform::{button_tx, fetch, page};

/// One JSON-RPC call to the dev wallet, as wallet.js makes it: the answer.
fn wallet(node: &NodeProc, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let headers = [("content-type", "application/json".to_string())];
    let (_, b) = http_send(&node.http, "POST", "/web/dev-wallet", &headers, body.as_bytes());
    serde_json::from_slice(&b).unwrap()
}

/// What wallet.js does with a button: the dev wallet sends it from dev account
/// `who`; the receipt, or the refusal's message.
fn send(node: &NodeProc, who: u32, tx: &(Address, Vec<u8>, U256)) -> Result<Value, String> {
    let t = json!({"from": format!("{:#x}", dev(who).address()), "to": format!("{:#x}", tx.0),
        "data": format!("0x{}", hex::encode(&tx.1)), "value": format!("{:#x}", tx.2)});
    let sent = wallet(node, "eth_sendTransaction", json!([t]));
    if !sent["error"].is_null() {
        return Err(sent["error"]["message"].as_str().unwrap_or("").to_string());
    }
    let start = Instant::now();
    loop {
        let r = wallet(node, "eth_getTransactionReceipt", json!([sent["result"]]));
        if !r["result"].is_null() {
            assert_eq!(r["result"]["status"], "0x1", "{r}");
            return Ok(r["result"].clone());
        }
        assert!(start.elapsed() < Duration::from_secs(30), "not mined: {sent}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ol(node: &NodeProc, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--rpc", &node.rpc]);
    serde_json::from_str(&cli_ok(&all)).unwrap()
}

fn num(v: &Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn a_passed_proposal_executes_and_stake_moves_from_the_pages() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &["--instant"]);

    // A proposal passes through the CLI's vote; the contract queues it at the tally.
    let p = ol(
        &node,
        &[
            "gov",
            "propose",
            "--dev-account",
            "0",
            "--description",
            "mint 1 OPEN per block",
            "--set-param",
            "staking.issuance_per_block=1000000000000000000",
        ],
    );
    let (id, start, end) = (num(&p["id"]), num(&p["voteStart"]), num(&p["voteEnd"]));
    let path = format!("/governance/{id}");
    assert!(!page(&node, &path).contains("gov-execute"), "nothing to execute while pending");
    node.advance_to(start);
    ol(&node, &["gov", "vote", &id.to_string(), "for", "--dev-account", "0"]);
    assert!(!page(&node, &path).contains("gov-execute"), "nothing to execute while voting");
    node.advance_to(end);
    let shown = ol(&node, &["gov", "show", &id.to_string()]);
    assert_eq!(shown["state"], "queued", "{shown}");
    let eta = num(&shown["eta"]);

    // Queued: the page's button is `gov execute`'s call, and no queue or vote button.
    let queued = page(&node, &path);
    for want in ["<p id=\"gov-result\" role=\"status\"", "id=\"wallet-account\"", "openledger gov execute"] {
        assert!(queued.contains(want), "{want}: {queued}");
    }
    assert!(!queued.contains("gov-queue") && !queued.contains("vote-for"), "{queued}");
    let tx = button_tx(&queued, "class=\"gov-execute\"");
    assert_eq!((tx.0, tx.2), (Module::Governance.address(), U256::ZERO));
    assert_eq!(tx.1, IGovernance::executeCall { id }.abi_encode());
    // Before the timelock the wallet refuses it with the chain's error, decoded.
    assert!(node.client().block_number().unwrap() + 1 < eta);
    let refused = send(&node, 1, &tx).unwrap_err();
    assert!(refused.contains("TimelockNotExpired") && refused.contains(&format!("eta={eta}")), "{refused}");
    node.advance_to(eta - 1);
    send(&node, 1, &tx).unwrap();
    assert_eq!(ol(&node, &["gov", "show", &id.to_string()])["state"], "executed");
    assert_eq!(ol(&node, &["query", "params"])["staking.issuance_per_block"], "1000000000000000000");
    let done = page(&node, &path);
    assert!(done.contains("executed") && !done.contains("gov-execute"), "{done}");

    // Staking: the operator page's form, then its buttons for 2.5 OPEN.
    let op = dev(0).address();
    let op_path = format!("/validators/{op:#x}");
    let form = page(&node, &op_path);
    for want in ["<label for=\"stake-amount\">", "name=\"amount\"", "<p id=\"stake-result\" role=\"status\""] {
        assert!(form.contains(want), "{want}: {form}");
    }
    assert!(!form.contains("stake-delegate"), "no amount, no delegation: {form}");
    let claim = button_tx(&form, "class=\"stake-claim\"");
    assert_eq!(
        claim,
        (Module::Staking.address(), IStaking::claimRewardsCall { operator: op }.abi_encode(), U256::ZERO)
    );
    let with = page(&node, &format!("{op_path}?amount=2.5"));
    let amount = U256::from(2_500_000_000_000_000_000u128);
    let delegate = button_tx(&with, "class=\"stake-delegate\"");
    assert_eq!(delegate, (Module::Staking.address(), IStaking::bondCall { operator: op }.abi_encode(), amount));
    let undelegate = button_tx(&with, "class=\"stake-undelegate\"");
    let unbond = IStaking::unbondCall { operator: op, amount }.abi_encode();
    assert_eq!(undelegate, (Module::Staking.address(), unbond, U256::ZERO));
    // 18 decimals, exactly.
    let tiny = page(&node, &format!("{op_path}?amount=0.000000000000000001"));
    assert_eq!(button_tx(&tiny, "class=\"stake-delegate\"").2, U256::from(1u64));

    // Sent by dev 1: a delegation of exactly 2.5 OPEN, then its unbonding; the claim pays.
    send(&node, 1, &delegate).unwrap();
    let stake = |node: &NodeProc| {
        let s = ol(node, &["stake", "show", &format!("{op:#x}")]);
        let me = json!(dev(1).address());
        let found = s["stakers"].as_array().unwrap().iter().find(|x| x["account"] == me).map(|x| x["amount"].clone());
        found.map(|a| a.as_str().map(|t| t.parse::<u128>().unwrap()).or(a.as_u64().map(u128::from)).unwrap())
    };
    assert_eq!(stake(&node), Some(2_500_000_000_000_000_000));
    let r = send(&node, 1, &claim).unwrap();
    assert_eq!(r["to"], json!(format!("{:#x}", Module::Staking.address())));
    send(&node, 1, &undelegate).unwrap();
    assert_eq!(stake(&node).unwrap_or(0), 0, "all of it unbonding");

    // Bad amounts: 400 pages that say why, never a button.
    for bad in ["abc", "-1", "0", "1.0000000000000000001", "1e18", "1.2.3", "99999999999999999999999"] {
        let (status, body) = fetch(&node, &format!("{op_path}?amount={bad}"));
        assert_eq!(status, 400, "amount={bad}: {body}");
        assert!(body.contains("role=\"alert\"") && body.contains("amount"), "amount={bad}: {body}");
    }
    let (status, _) = fetch(&node, &format!("{op_path}?amount=1&amount=2"));
    assert_eq!(status, 400, "one amount");
}
