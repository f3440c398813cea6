//! The web app as a person drives it: a dev node (`openledger up`), a
//! transfer, system-contract calls (a Datanet created through the CLI, a bank
//! transfer and a failing models call sent as raw transactions), then the
//! Explorer's pages over HTTP: the decoded call and events, the exact amount,
//! the revert's error, links between pages, and where the search box leads.
//! A second test attacks the pages with what a browser should never send.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use alloy_sol_types::SolCall;
use common::*;
use primitives::abi::{IBank, IModels};
use primitives::system::Module;
use primitives::{Address, B256};
use rpc::http::{HttpClient, HttpResponse};

fn get(node: &NodeProc, path: &str) -> HttpResponse {
    HttpClient::new(&node.http).request("GET", path, &[], b"").unwrap()
}

/// `GET path`, which must answer 200 with an HTML page; its text.
fn page(node: &NodeProc, path: &str) -> String {
    let r = get(node, path);
    let body = r.text();
    assert_eq!(r.status, 200, "GET {path}: {body}");
    assert!(r.header("content-type").unwrap_or("").starts_with("text/html"), "GET {path}");
    assert!(body.starts_with("<!DOCTYPE html>"), "GET {path}: {body}");
    body
}

/// Send `raw` and wait for its receipt; the hash.
fn send(node: &NodeProc, raw: &[u8]) -> B256 {
    let mut c = node.client();
    let h = c.send_raw(raw).unwrap();
    c.wait_receipt(&h, Duration::from_secs(30)).unwrap();
    h
}

fn next_nonce(node: &NodeProc, a: &Address) -> u64 {
    node.client().nonce(a, true).unwrap()
}

/// Where the search box sends `q` (a 303's Location).
fn search(node: &NodeProc, q: &str) -> String {
    let r = get(node, &format!("/explorer/search?q={q}"));
    assert_eq!(r.status, 303, "search {q}: {}", r.text());
    r.header("location").unwrap().to_string()
}

#[test]
fn the_explorer_shows_transfers_and_decoded_system_calls() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(&dir.path().join("chain"), &["--instant"]);
    let (alice, bob) = (dev(1), Address::repeat_byte(0xb0));

    // A transfer of 1.5 OPEN and one base unit: shown exactly.
    let value = 1_500_000_000_000_000_001u128;
    let transfer = send(&node, &signed(&alice, next_nonce(&node, &alice.address()), bob, value, vec![], 21_000));
    let tx = page(&node, &format!("/explorer/tx/{transfer}"));
    assert!(tx.contains("1.500000000000000001 OPEN"), "{tx}");
    assert!(tx.contains("✓ success") && tx.contains("A transfer of OPEN."), "{tx}");
    let bob_href = format!("/explorer/accounts/{bob:#x}");
    assert!(tx.contains(&bob_href) && tx.contains(&format!("/explorer/accounts/{:#x}", alice.address())), "{tx}");
    let block = node.client().receipt(&transfer).unwrap().unwrap().block_number.unwrap();
    assert!(tx.contains(&format!("href=\"/explorer/blocks/{block}\"")), "{tx}");
    let block_page = page(&node, &format!("/explorer/blocks/{block}"));
    assert!(block_page.contains(&format!("/explorer/tx/{transfer}")), "{block_page}");
    let account = page(&node, &bob_href);
    assert!(account.contains("1.500000000000000001 OPEN") && account.contains(&format!("/explorer/tx/{transfer}")));
    assert!(account.contains("History") && account.contains("received") && !account.contains("Older"), "{account}");

    // A Datanet created through the CLI: the call and its event decoded, with argument names.
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/home-gardening/datanet.json");
    let created: serde_json::Value = serde_json::from_str(&cli_ok(&[
        "--json",
        "datanet",
        "create",
        "--from-json",
        data.to_str().unwrap(),
        "--dev-account",
        "0",
        "--rpc",
        &node.rpc,
        "--http",
        &node.http,
    ]))
    .unwrap();
    let (id, hash) = (created["id"].as_u64().unwrap(), created["hash"].as_str().unwrap().to_string());
    let tx = page(&node, &format!("/explorer/tx/{hash}"));
    for want in
        ["datanets.createDatanet", "createDatanet(", "home-gardening", "CC0-1.0", "DatanetCreated", "contributorBond"]
    {
        assert!(tx.contains(want), "the createDatanet page lacks {want:?}: {tx}");
    }
    assert_eq!(search(&node, &format!("d{id}")), format!("/explorer/datanets/d{id}"));
    let datanet = page(&node, &format!("/explorer/datanets/d{id}"));
    assert!(datanet.contains("home-gardening") && datanet.contains("/explorer/accounts/"), "{datanet}");

    // A bank transfer through the bank's ERC-20 face: function, named arguments and the Transfer event.
    let call =
        IBank::transferCall { to: bob, amount: primitives::U256::from(2u128 * primitives::ONE_OPEN) }.abi_encode();
    let bank =
        send(&node, &signed(&alice, next_nonce(&node, &alice.address()), Module::Bank.address(), 0, call, 200_000));
    let tx = page(&node, &format!("/explorer/tx/{bank}"));
    for want in ["bank.transfer", "transfer(address,uint256)", ">to ", ">amount ", "2 OPEN", "Transfer", "indexed"] {
        assert!(tx.contains(want), "the bank transfer page lacks {want:?}: {tx}");
    }

    // A call that fails in execution: status and the module's custom error by name.
    let call = IModels::proposeCall { id: 999 }.abi_encode();
    let failed =
        send(&node, &signed(&alice, next_nonce(&node, &alice.address()), Module::Models.address(), 0, call, 200_000));
    let tx = page(&node, &format!("/explorer/tx/{failed}"));
    assert!(tx.contains("✗ failed") && tx.contains("UnknownModel") && tx.contains("models.propose"), "{tx}");

    // The home page lists the newest blocks and transactions, with the chain id.
    let home = page(&node, "/");
    assert!(home.contains("31337") && home.contains(&format!("/explorer/tx/{failed}")), "{home}");
    assert!(home.contains("datanets.createDatanet") && home.contains("/assets/style.css"), "{home}");
    // Every page has the viewport for phones, a skip link, labelled navigation and a labelled search box.
    for want in ["name=\"viewport\"", "href=\"#main\"", "aria-label=\"Sections\"", "<label for=\"q\">", "id=\"q\""] {
        assert!(home.contains(want), "the page shell lacks {want:?}");
    }
    let css = get(&node, "/assets/style.css");
    assert_eq!((css.status, css.header("content-type")), (200, Some("text/css; charset=utf-8")));

    // Search: a number, a tx hash, a block hash, an address, the base model.
    assert_eq!(search(&node, &block.to_string()), format!("/explorer/blocks/{block}"));
    assert_eq!(search(&node, &transfer.to_string()), format!("/explorer/tx/{transfer}"));
    let block_hash = node.client().receipt(&transfer).unwrap().unwrap().block_hash.unwrap();
    assert_eq!(search(&node, &block_hash.to_string()), format!("/explorer/blocks/{block}"));
    assert_eq!(search(&node, &bob.to_checksum(None)), bob_href);
    assert_eq!(search(&node, "m1"), "/explorer/models/m1");
    let m1 = get(&node, "/explorer/models/m1");
    assert!(m1.status == 200 && m1.text().contains("Model m1") || m1.status == 404, "{}", m1.text());
    let list = page(&node, "/explorer/blocks?limit=2");
    assert!(list.contains("Older blocks"), "{list}");
}

#[test]
fn bad_input_gets_clear_400_and_404_pages_never_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(&dir.path().join("chain"), &["--instant"]);
    let long = "a".repeat(5000);
    let cases: Vec<(String, u16)> = vec![
        ("/explorer/tx/0x1234".into(), 400),
        (format!("/explorer/tx/0x{}", "zz".repeat(32)), 400),
        (format!("/explorer/tx/0x{}", "ab".repeat(32)), 404),
        ("/explorer/blocks/99999999999999999999999999".into(), 400),
        ("/explorer/blocks/18446744073709551615".into(), 404),
        ("/explorer/blocks/-1".into(), 400),
        (format!("/explorer/blocks/0x{}", "cd".repeat(32)), 404),
        ("/explorer/accounts/0xnothex".into(), 400),
        ("/explorer/accounts/%ff%fe".into(), 400),
        ("/explorer/models/m99999999999999999999".into(), 400),
        ("/explorer/models/m424242".into(), 404),
        ("/explorer/datanets/d77".into(), 404),
        ("/explorer/datanets/x".into(), 400),
        ("/explorer/blocks?limit=99999999999999999999".into(), 400),
        ("/explorer/blocks?limit=abc".into(), 400),
        ("/explorer/blocks?page=2".into(), 400),
        ("/explorer/blocks?before=0".into(), 404),
        (format!("/explorer/search?q={long}"), 400),
        (format!("/explorer/search?q=1&pad={long}"), 400),
        ("/explorer/search?q=%zz".into(), 400),
        ("/explorer/search?q=".into(), 400),
        ("/explorer/search?q=hello+world".into(), 400),
        ("/explorer/search?q=m".into(), 400),
        ("/explorer/search?q=123456789012".into(), 404),
        (format!("/explorer/search?q=0x{}", "ef".repeat(32)), 404),
        ("/explorer/search?q=1&q=2".into(), 400),
    ];
    for (path, want) in &cases {
        let r = get(&node, path);
        assert_eq!(r.status, *want, "GET {}: {}", &path[..path.len().min(120)], r.text());
        let html = r.header("content-type").unwrap_or("").starts_with("text/html");
        assert!(html && r.text().starts_with("<!DOCTYPE html>"), "GET {path}: not an HTML error page: {}", r.text());
        assert!(r.text().contains("role=\"alert\""), "GET {path}: the page does not say what was wrong");
    }
    // Huge but valid page sizes are clamped, not refused.
    let r = get(&node, "/explorer/blocks?limit=1000000");
    assert_eq!(r.status, 200);
    // The node still answers after all of it.
    assert_eq!(get(&node, "/").status, 200);
}
