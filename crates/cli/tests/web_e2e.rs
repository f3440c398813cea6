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

/// Run the CLI with `--json` against the node's RPC (and its HTTP API for
/// the commands that upload: `datanet create`, `contribute`); its JSON output.
fn ol(node: &NodeProc, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--rpc", &node.rpc]);
    if matches!(args, ["contribute", ..] | ["datanet", "create", ..]) {
        all.extend_from_slice(&["--http", &node.http]);
    }
    let out = cli_ok(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

fn repo_file(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel).to_str().unwrap().to_string()
}

fn assert_has(page: &str, what: &str, wants: &[&str]) {
    for want in wants {
        assert!(page.contains(want), "the {what} page lacks {want:?}: {page}");
    }
}

#[test]
fn the_datanets_section_shows_a_datanet_its_versions_and_contributions() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(&dir.path().join("chain"), &["--instant"]);
    let created = ol(
        &node,
        &["datanet", "create", "--from-json", &repo_file("data/home-gardening/datanet.json"), "--dev-account", "0"],
    );
    let id = created["id"].as_u64().unwrap();
    let ids = id.to_string();
    let c = ol(
        &node,
        &["contribute", &repo_file("data/home-gardening/contributor-1.md"), "--datanet", &ids, "--dev-account", "1"],
    );
    let cid = c["contribution"].as_u64().unwrap();
    let rows = c["report"]["rowCount"].as_u64().unwrap();
    let contributor = format!("/explorer/accounts/{:#x}", dev(1).address());

    // Pending: listed with its status, contributor and a link to its record.
    let dn = page(&node, &format!("/datanets/{id}"));
    let record = format!("/datanets/{id}/contributions/{cid}");
    assert_has(&dn, "Datanet", &["home-gardening", "CC0-1.0", "pending", &record, &contributor, "No version yet"]);
    // The description is the owner's text in paragraphs, never markup.
    assert_has(&dn, "Datanet", &["<p class=\"text\"># Home gardening</p>", "<p class=\"text\">Practical advice"]);
    ol(&node, &["curate", "approve", &cid.to_string(), "--dev-account", "0"]);

    // Approved: a version with its Merkle root and rows.
    let dn = page(&node, &format!("/datanets/{id}"));
    assert_has(&dn, "Datanet", &["approved", "v1", &format!("<td class=\"num\">{rows}</td>")]);
    let list = page(&node, "/datanets");
    assert_has(&list, "Datanets", &[&format!("href=\"/datanets/{id}\""), "home-gardening", "aria-current=\"page\""]);
    let rec = page(&node, &record);
    assert_has(&rec, "contribution", &["approved", &contributor, "Rows Merkle root", "scorer v", "home-gardening"]);
    // The version's Merkle root is the one the CLI reads.
    let shown = ol(&node, &["datanet", "show", &ids]);
    let root = shown["versions"][0]["root"].as_str().unwrap_or_else(|| panic!("{shown}"));
    assert!(dn.contains(root), "the Datanet page lacks the root {root}: {dn}");
    // The Explorer's record page and decoded Datanet ids lead here too.
    assert!(page(&node, &format!("/explorer/datanets/d{id}")).contains(&format!("href=\"/datanets/{id}\"")));
    // The last page of contributions is empty but still a page; bad ids are 400s, unknown ones 404s.
    assert!(page(&node, &format!("/datanets/{id}?offset=100&limit=5")).contains("No contribution on this page"));
    for (path, want) in [
        (format!("/datanets/{id}/contributions/{}", cid + 1), 404),
        (format!("/datanets/{}/contributions/{cid}", id + 1), 404),
        (format!("/datanets/{id}/contributions/x"), 400),
        ("/datanets/999".into(), 404),
        ("/datanets/-1".into(), 400),
        (format!("/datanets/{id}?offset=abc"), 400),
        (format!("/datanets/{id}?sort=name"), 400),
        ("/datanets?limit=0x10".into(), 400),
    ] {
        let r = get(&node, &path);
        assert_eq!(r.status, want, "GET {path}: {}", r.text());
        assert!(r.text().starts_with("<!DOCTYPE html>") && r.text().contains("role=\"alert\""), "GET {path}");
    }
}

#[test]
fn the_governance_section_shows_proposals_validators_and_stakers() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(&dir.path().join("chain"), &["--instant"]);
    let validator = dev(0).address();
    let v = format!("{validator:#x}");
    ol(&node, &["stake", "delegate", &v, "50", "--dev-account", "1"]);
    ol(&node, &["stake", "unbond", &v, "5", "--dev-account", "1"]);
    let grantee = Address::repeat_byte(0x77);
    let call = format!("governance.spendTreasury {grantee:#x} 1");
    let description = "A small grant <script>alert(1)</script>\n\nSecond paragraph.";
    let p = ol(&node, &["gov", "propose", "--description", description, "--call", &call, "--dev-account", "0"]);
    let id = p["id"].as_u64().unwrap();
    node.advance_to(p["voteStart"].as_u64().unwrap());
    ol(&node, &["gov", "vote", &id.to_string(), "for", "--dev-account", "0"]);

    let list = page(&node, "/governance");
    assert_has(&list, "proposals", &[&format!("href=\"/governance/{id}\""), "active", "A small grant"]);
    let prop = page(&node, &format!("/governance/{id}"));
    assert_has(
        &prop,
        "proposal",
        &[
            "governance.spendTreasury",
            "spendTreasury(address,uint256)",
            "&lt;script&gt;",
            "<p class=\"text\">Second paragraph.</p>",
            "100.00 %",
            "closes in",
            &format!("/explorer/accounts/{grantee:#x}"),
        ],
    );
    assert!(!prop.contains("<script>"), "{prop}");

    // The dev chain's one validator holds all the power: a Nakamoto coefficient of 1.
    let vals = page(&node, "/validators");
    assert_has(
        &vals,
        "validators",
        &["Nakamoto coefficient", "<strong>1</strong>", &format!("/validators/{v}"), "active"],
    );
    assert_has(&vals, "validators", &["100.00 %", "1000 OPEN"]);
    let op = page(&node, &format!("/validators/{v}"));
    let staker = format!("/explorer/accounts/{:#x}", dev(1).address());
    assert_has(&op, "operator", &["validator", "besides its self bond: 1.", &staker, "45 OPEN", "5 OPEN", "1000 OPEN"]);
    for (path, want) in [
        ("/governance/999".to_string(), 404),
        ("/governance/x".into(), 400),
        ("/governance?before=-1".into(), 400),
        ("/governance/1?x=1".into(), 400),
        (format!("/validators/{:#x}", Address::repeat_byte(0x55)), 404),
        ("/validators/0x1234".into(), 400),
        ("/validators?limit=5".into(), 400),
        (format!("/validators/{v}?limit=huge"), 400),
    ] {
        let r = get(&node, &path);
        assert_eq!(r.status, want, "GET {path}: {}", r.text());
        assert!(r.text().starts_with("<!DOCTYPE html>") && r.text().contains("role=\"alert\""), "GET {path}");
    }
    // A huge staker page size is clamped, not refused.
    assert_eq!(get(&node, &format!("/validators/{v}?limit=1000000")).status, 200);
}
