//! Account histories through a node process: `ol_getHistory` pages newest
//! first with cursors, clamps its limit, refuses bad parameters with JSON-RPC
//! errors, answers the same after a restart, and the Explorer's account page
//! pages the same history with `?before=` links.

mod common;

use std::time::Duration;

use alloy_sol_types::SolCall;
use common::*;
use primitives::abi::IBank;
use primitives::system::Module;
use primitives::{Address, B256, U256};
use rpc::client::ClientError;
use serde_json::{Value, json};

/// Every entry of `subject`'s history, following `next` with pages of `limit`.
fn all_pages(node: &NodeProc, subject: Value, limit: u64) -> Vec<Value> {
    let mut c = node.client();
    let (mut out, mut before) = (vec![], Value::Null);
    loop {
        let page = c.call("ol_getHistory", json!([subject, {"before": before, "limit": limit}])).unwrap();
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() as u64 <= limit, "{page}");
        out.extend(entries.iter().cloned());
        match &page["next"] {
            Value::Null => return out,
            next => before = next.clone(),
        }
    }
}

fn hashes(entries: &[Value]) -> Vec<B256> {
    entries.iter().map(|e| e["transactionHash"].as_str().unwrap().parse().unwrap()).collect()
}

#[test]
fn history_pages_limits_errors_restart_and_the_account_page() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(&dir.path().join("chain"), &["--instant"]);
    let mut c = node.client();
    let (sender, to) = (dev(3), Address::repeat_byte(0x5e));
    let mut sent = vec![];
    for nonce in 0..5 {
        let h = c.send_raw(&signed(&sender, nonce, to, 1 + nonce as u128, vec![], 21_000)).unwrap();
        c.wait_receipt(&h, Duration::from_secs(30)).unwrap();
        sent.push(h);
    }
    // A bank transfer by ABI: the recipient is named by its Transfer event, not by the transaction.
    let call = IBank::transferCall { to, amount: U256::from(9u64) }.abi_encode();
    let by_abi = c.send_raw(&signed(&sender, 5, Module::Bank.address(), 0, call, 100_000)).unwrap();
    assert!(c.wait_receipt(&by_abi, Duration::from_secs(30)).unwrap().status());

    let entries = all_pages(&node, json!(to), 2);
    assert_eq!(entries.len(), 6, "{entries:?}");
    assert_eq!(entries[0]["roles"], json!(["log"]));
    assert_eq!(entries[0]["logIndex"], json!(0));
    let mut expect = sent.clone();
    expect.push(by_abi);
    expect.reverse();
    assert_eq!(hashes(&entries), expect);
    assert!(entries[1..].iter().all(|e| e["roles"] == json!(["recipient"]) && e["logIndex"].is_null()));
    // The sender's side: its six transactions, and the bank call's event.
    let mine = all_pages(&node, json!(sender.address()), 100);
    assert_eq!(mine.iter().filter(|e| e["roles"] == json!(["sender"])).count(), 6);

    // Limits are clamped, not refused; other subjects parse.
    let one = c.call("ol_getHistory", json!([to, {"limit": 0}])).unwrap();
    assert_eq!(one["entries"].as_array().unwrap().len(), 1);
    let big = c.call("ol_getHistory", json!([to, {"limit": "0xffffffff"}])).unwrap();
    assert_eq!(big["entries"].as_array().unwrap().len(), 6);
    assert!(big["next"].is_null() && big["indexedFrom"] == json!(0));
    for s in [json!({"datanet": 1}), json!({"model": "0x1"}), json!({"contribution": 7})] {
        assert!(c.call("ol_getHistory", json!([s])).unwrap()["entries"].is_array());
    }
    // Bad parameters: JSON-RPC errors, and the node keeps answering.
    for bad in [
        json!([]),
        json!(["0x12"]),
        json!([{"datanet": "x"}]),
        json!([{"block": 1}]),
        json!([{"datanet": 1, "model": 2}]),
        json!([to, {"before": "nine"}]),
        json!([to, {"before": 9}]),
        json!([to, {"limit": -1}]),
        json!([to, {"after": "1-0-0"}]),
        json!([to, {}, 3]),
    ] {
        match c.call("ol_getHistory", bad.clone()) {
            Err(ClientError::Rpc { code: -32602, .. }) => {}
            other => panic!("{bad}: {other:?}"),
        }
    }

    // The account page shows the same history, newest first, paged with ?before=.
    let href = format!("/explorer/accounts/{to:#x}");
    let (status, body) = node.http_get(&href);
    let body = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Transfer") && body.contains(&format!("/explorer/tx/{by_abi}")), "{body}");
    assert!(!body.contains("Older"), "{body}");
    let (status, body) = node.http_get(&format!("{href}?before={}", entries[2]["cursor"].as_str().unwrap()));
    let body = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(&format!("/explorer/tx/{by_abi}")) && body.contains(&format!("/explorer/tx/{}", sent[0])));
    assert!(body.contains("Newest"), "{body}");
    assert_eq!(node.http_get(&format!("{href}?before=x")).0, 400);

    // A restarted node answers the same from its data directory.
    let data_dir = node.data_dir.clone();
    node.stop();
    let node = NodeProc::start(&data_dir, &["--instant"]);
    assert_eq!(all_pages(&node, json!(to), 4), entries);
}
