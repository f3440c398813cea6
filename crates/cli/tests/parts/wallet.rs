//! Writes from the web app on a dev node: the wallet script is served; the
//! create form's review carries `createDatanet`'s calldata (decoded back and
//! compared); the dev wallet sends it and the Datanet exists; a file checked
//! through a signed request whose signature the dev wallet made
//! (`personal_sign`, exactly as wallet.js builds it) is submitted with its
//! bond; the curation queue's approve button approves it, and the
//! rows page tombstones a row. Attacks on the dev wallet: accounts that are not
//! dev accounts, unknown methods, malformed, oversized and non-JSON bodies, and a call
//! that would revert are refused; bad ids and reasons on the write pages are
//! 400 and 404 pages.

use std::time::{Duration, Instant};

use alloy_sol_types::{SolCall, SolEvent};
use primitives::abi::IDatanets;
use primitives::system::Module;
use primitives::{Address, U256};
use serde_json::{Value, json};

use crate::common::*;

fn page(node: &NodeProc, method: &str, path: &str, body: &[u8], status: u16) -> String {
    let headers = [("content-type", "application/x-www-form-urlencoded".to_string())];
    let (s, b) = http_send(&node.http, method, path, &headers, body);
    let text = String::from_utf8_lossy(&b).to_string();
    assert_eq!(s, status, "{method} {path}: {text}");
    text
}

/// One JSON-RPC call to the dev wallet: (HTTP status, answer).
fn wallet(node: &NodeProc, method: &str, params: Value) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let (s, b) = http_send(
        &node.http,
        "POST",
        "/web/dev-wallet",
        &[("content-type", "application/json".into())],
        body.as_bytes(),
    );
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn ok(node: &NodeProc, method: &str, params: Value) -> Value {
    let (s, v) = wallet(node, method, params);
    assert_eq!(s, 200, "{method}: {v}");
    assert!(v["error"].is_null(), "{method}: {v}");
    v["result"].clone()
}

/// The value of attribute `attr` of the element whose opening tag contains `marker`.
fn attr(html: &str, marker: &str, attr: &str) -> String {
    let at = html.find(marker).unwrap_or_else(|| panic!("no {marker} in {html}"));
    let tag = &html[html[..at].rfind('<').unwrap()..];
    let tag = &tag[..tag.find('>').unwrap()];
    let key = format!(" {attr}=\"");
    let v = &tag[tag.find(&key).unwrap_or_else(|| panic!("no {attr} in {tag}")) + key.len()..];
    v[..v.find('"').unwrap()].to_string()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.trim_start_matches("0x")).unwrap()
}

/// Send through the dev wallet and wait for the receipt.
fn send(node: &NodeProc, from: Address, to: &str, data: &str, value: U256) -> Value {
    let tx = json!({"from": format!("{from:#x}"), "to": to, "data": data, "value": format!("{value:#x}")});
    let hash = ok(node, "eth_sendTransaction", json!([tx]));
    let start = Instant::now();
    loop {
        let r = ok(node, "eth_getTransactionReceipt", json!([hash]));
        if !r.is_null() {
            return r;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{hash} not mined");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Topic `i` of the receipt's log whose first topic is `topic0`, as a number.
fn topic(receipt: &Value, topic0: primitives::B256, i: usize) -> u64 {
    let log = receipt["logs"].as_array().unwrap().iter().find(|l| l["topics"][0] == format!("{topic0:#x}")).unwrap();
    u64::from_str_radix(log["topics"][i].as_str().unwrap().trim_start_matches("0x").trim_start_matches('0'), 16)
        .unwrap_or(0)
}

#[test]
fn the_wallet_creates_uploads_and_curates() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &[]);
    let (owner, contributor) = (dev(1), dev(2));

    let (s, script) = node.http_get("/assets/wallet.js");
    let script = String::from_utf8(script).unwrap();
    assert_eq!(s, 200);
    for want in [
        "window.OpenLedgerWallet",
        "ethereum#initialized",
        "personal_sign",
        "eth_sendTransaction",
        "OpenLedger request v2",
    ] {
        assert!(script.contains(want), "the script lacks {want}");
    }

    // The dev wallet: the chain and the ten dev accounts.
    assert_eq!(ok(&node, "eth_chainId", json!([])), "0x7a69");
    let accounts = ok(&node, "eth_accounts", json!([]));
    assert_eq!(accounts.as_array().unwrap().len(), 10);
    assert_eq!(accounts[1], format!("{:#x}", owner.address()));

    let curator = dev(3).address();
    let id = create_from_the_form(&node, &owner, curator);
    let cid = upload_signed_by_the_dev_wallet(&node, id, &contributor);
    let approve = curate_and_tombstone(&node, id, cid, &owner, curator);
    attack_the_dev_wallet(&node, &owner, &approve);
    bad_input_on_the_write_pages(&node, id, cid);
}

/// Create: the form, the review's calldata (decoded back), sent by the dev wallet; the new Datanet's id.
fn create_from_the_form(node: &NodeProc, owner: &keys::SecretKey, curator: Address) -> u64 {
    let form = page(node, "GET", "/datanets/new", b"", 200);
    for want in ["<label for=\"dn-name\">", "<label for=\"dn-licence\">", "action=\"/datanets/new\""] {
        assert!(form.contains(want), "the form lacks {want}");
    }
    let body = format!(
        "name=Web+garden&summary=From+the+browser&description=Rows+%3Cb%3Eabout%3C%2Fb%3E+soil.&tags=soil%2C+web\
         &licence=CC-BY-4.0&policy=open&bond=1.5&curators={curator:#x}&daily_files=0"
    );
    let review = page(node, "POST", "/datanets/new", body.as_bytes(), 200);
    assert!(review.contains("&lt;b&gt;about"), "the description is escaped");
    assert!(review.contains("<select id=\"wallet-account\""), "{review}");
    assert!(review.contains("id=\"wallet-status\" role=\"status\""), "{review}");
    assert_eq!(attr(&review, "id=\"send-tx\"", "data-to"), format!("{:#x}", Module::Datanets.address()));
    let data = attr(&review, "id=\"send-tx\"", "data-data");
    let call = IDatanets::createDatanetCall::abi_decode(&unhex(&data)).unwrap();
    let attester: Value = serde_json::from_slice(&node.http_get("/v1/node/attester").1).unwrap();
    assert_eq!((call.name.as_str(), call.summary.as_str()), ("Web garden", "From the browser"));
    assert_eq!(call.description, "Rows <b>about</b> soil.");
    assert_eq!(call.tags, vec!["soil".to_string(), "web".to_string()]);
    assert_eq!((call.licence.as_str(), call.policy), ("CC-BY-4.0", 0));
    assert_eq!(call.contributorBond, U256::from(1_500_000_000_000_000_000u128));
    assert_eq!(call.curators, vec![curator]);
    assert_eq!(
        format!("{:#x}", call.attesters[0]),
        attester["attester"].as_str().unwrap().to_lowercase(),
        "{attester}"
    );
    let r = send(node, owner.address(), &format!("{:#x}", Module::Datanets.address()), &data, U256::ZERO);
    assert_eq!(r["status"], "0x1", "{r}");
    let id = topic(&r, IDatanets::DatanetCreated::SIGNATURE_HASH, 1);
    assert_eq!(
        attr(&review, "id=\"send-tx\"", "data-event-topic"),
        format!("{:#x}", IDatanets::DatanetCreated::SIGNATURE_HASH)
    );
    let dn = page(node, "GET", &format!("/datanets/{id}"), b"", 200);
    assert!(dn.contains("Web garden") && dn.contains(&format!("/datanets/{id}/upload")), "{dn}");

    id
}

/// Upload: a signed request made as wallet.js makes it (personal_sign by the dev wallet), then the bond; the contribution.
fn upload_signed_by_the_dev_wallet(node: &NodeProc, id: u64, contributor: &keys::SecretKey) -> u64 {
    let upload = page(node, "GET", &format!("/datanets/{id}/upload"), b"", 200);
    for want in ["<label for=\"upload-file\">", "id=\"upload-check\"", "id=\"upload-findings\"", "id=\"upload-submit\""]
    {
        assert!(upload.contains(want), "the upload page lacks {want}");
    }
    let path = attr(&upload, "id=\"upload-form\"", "data-path");
    let content = b"Compost feeds the soil and the worms that turn it.\n\nMulch keeps the roots cool through a dry July afternoon.\n\nCompost feeds the soil and the worms that turn it.\n";
    let boundary = "openledger-0123456789abcdef";
    let mut multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"soil.txt\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    multipart.extend_from_slice(content);
    multipart.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let aud = node.audience();
    let (now, nonce) = (keys::request::unix_now(), "00112233445566778899aabbccddeeff");
    let hash = primitives::content_hash(&multipart);
    let message = keys::request::request_message(&aud, "POST", &path, now, nonce, &hash);
    let from = format!("{:#x}", contributor.address());
    let sig = ok(node, "personal_sign", json!([format!("0x{}", hex::encode(message.as_bytes())), from]));
    let header = format!(
        "v2:{from}:{}:{:#x}:{now}:{nonce}:{}:{}",
        aud.chain_id,
        aud.node,
        hex::encode(hash),
        sig.as_str().unwrap()
    );
    let (s, b) = http_send(
        &node.http,
        "POST",
        &path,
        &[("x-openledger-auth", header), ("content-type", format!("multipart/form-data; boundary={boundary}"))],
        &multipart,
    );
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    let ingested: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(ingested["report"]["rowCount"], 3, "{ingested}");
    assert_eq!(ingested["report"]["exactDuplicates"], 1, "the per-row findings name the repeated row: {ingested}");
    assert_eq!(ingested["value"], "1500000000000000000");
    let value = U256::from_str_radix(ingested["value"].as_str().unwrap(), 10).unwrap();
    let r = send(
        node,
        contributor.address(),
        ingested["to"].as_str().unwrap(),
        ingested["calldata"].as_str().unwrap(),
        value,
    );
    assert_eq!(r["status"], "0x1", "{r}");
    topic(&r, IDatanets::ContributionSubmitted::SIGNATURE_HASH, 2)
}

/// Curate: the pending row and its approve button (decoded back), sent by the
/// owner; then a tombstone from the rows page. The approve calldata.
fn curate_and_tombstone(node: &NodeProc, id: u64, cid: u64, owner: &keys::SecretKey, curator: Address) -> String {
    let queue = page(node, "GET", &format!("/datanets/{id}/curate"), b"", 200);
    let row = format!("data-contribution=\"{cid}\"");
    assert!(queue.contains(&row), "{queue}");
    for class in ["curate-approve", "curate-reject"] {
        assert!(queue.contains(&format!("class=\"{class}\"")), "{class} in {queue}");
    }
    let approve = attr(&queue, "class=\"curate-approve\"", "data-data");
    assert_eq!(IDatanets::approveCall::abi_decode(&unhex(&approve)).unwrap().contributionId, cid);
    let reject = attr(&queue, "class=\"curate-reject\"", "data-data");
    let reject = IDatanets::rejectCall::abi_decode(&unhex(&reject)).unwrap();
    assert_eq!((reject.contributionId, reject.reason), (cid, 1), "spam by default");
    let queue2 = page(node, "GET", &format!("/datanets/{id}/curate?reject=duplicate&note=seen+before"), b"", 200);
    let reject =
        IDatanets::rejectCall::abi_decode(&unhex(&attr(&queue2, "class=\"curate-reject\"", "data-data"))).unwrap();
    assert_eq!((reject.reason, reject.note.as_str()), (2, "seen before"));
    // A non-curator's approval would revert: the dev wallet refuses it with the chain's reason.
    let tx = json!({"from": format!("{:#x}", dev(5).address()), "to": format!("{:#x}", Module::Datanets.address()), "data": approve});
    let (s, v) = wallet(node, "eth_sendTransaction", json!([tx]));
    assert_eq!(s, 200);
    assert!(v["error"]["message"].as_str().unwrap().contains("NotCurator"), "{v}");
    let r = send(node, owner.address(), &format!("{:#x}", Module::Datanets.address()), &approve, U256::ZERO);
    assert_eq!(r["status"], "0x1", "{r}");
    let queue = page(node, "GET", &format!("/datanets/{id}/curate"), b"", 200);
    assert!(queue.contains("class=\"curate-flag\"") && queue.contains("✓ approved"), "{queue}");
    assert!(attr(&queue, "id=\"curator-note\"", "data-curators").contains(&format!("{curator:#x}")));
    let flag = IDatanets::flagCall::abi_decode(&unhex(&attr(&queue, "class=\"curate-flag\"", "data-data"))).unwrap();
    assert_eq!((flag.contributionId, flag.reason), (cid, 1));

    // Tombstone: the approved contribution's rows, each with its leaf and proof (the chain checks them).
    let rows_path = format!("/datanets/{id}/contributions/{cid}/rows");
    assert_eq!(attr(&queue, "class=\"curate-rows\"", "href"), rows_path);
    let contribution = page(node, "GET", &format!("/datanets/{id}/contributions/{cid}"), b"", 200);
    assert!(contribution.contains(&format!("href=\"{rows_path}\"")), "{contribution}");
    let rows = page(node, "GET", &format!("{rows_path}?reason=off+topic"), b"", 200);
    assert!(rows.contains("Mulch keeps the roots cool"), "an open Datanet's rows are shown: {rows}");
    let marker = "data-row=\"1\"";
    let row1 = &rows[rows.find(marker).unwrap()..];
    let tomb =
        IDatanets::tombstoneCall::abi_decode(&unhex(&attr(row1, "class=\"curate-tombstone\"", "data-data"))).unwrap();
    assert_eq!((tomb.contributionId, tomb.rowIndex, tomb.reason.as_str()), (cid, 1, "off topic"));
    let data = format!("0x{}", hex::encode(tomb.abi_encode()));
    let r = send(node, owner.address(), &format!("{:#x}", Module::Datanets.address()), &data, U256::ZERO);
    assert_eq!(r["status"], "0x1", "{r}");
    let rows = page(node, "GET", &rows_path, b"", 200);
    assert_eq!(rows.matches("✗ tombstoned").count(), 1, "{rows}");
    assert_eq!(rows.matches("class=\"curate-tombstone\"").count(), 2, "{rows}");

    approve
}

fn attack_the_dev_wallet(node: &NodeProc, owner: &keys::SecretKey, approve: &str) {
    let stranger = format!("{:#x}", Address::repeat_byte(0x42));
    let (s, v) = wallet(node, "personal_sign", json!(["0x68656c6c6f", stranger]));
    assert_eq!(s, 403, "{v}");
    let tx = json!({"from": stranger, "to": format!("{:#x}", Module::Datanets.address()), "data": approve});
    assert_eq!(wallet(node, "eth_sendTransaction", json!([tx])).0, 403);
    for method in ["eth_sign", "eth_signTransaction", "eth_sendRawTransaction", "wallet_addEthereumChain", ""] {
        assert_eq!(wallet(node, method, json!([])).0, 400, "{method}");
    }
    let json_type = [("content-type", "application/json".to_string())];
    let (s, _) = http_send(&node.http, "POST", "/web/dev-wallet", &json_type, b"{not json");
    assert_eq!(s, 400);
    // What another site's page could send without a preflight: refused.
    let accounts_call = br#"{"jsonrpc":"2.0","id":1,"method":"eth_accounts","params":[]}"#;
    for t in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let (s, _) =
            http_send(&node.http, "POST", "/web/dev-wallet", &[("content-type", t.to_string())], accounts_call);
        assert_eq!(s, 415, "{t}");
    }
    assert_eq!(http_send(&node.http, "POST", "/web/dev-wallet", &[], accounts_call).0, 415);
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "personal_sign", "params": ["x".repeat(70_000), format!("{:#x}", owner.address())]});
    let (s, _) = http_send(&node.http, "POST", "/web/dev-wallet", &json_type, big.to_string().as_bytes());
    assert_eq!(s, 413);
}

/// Bad input on the write pages: 400 and 404 pages, never a panic.
fn bad_input_on_the_write_pages(node: &NodeProc, id: u64, cid: u64) {
    for (path, status) in [
        ("/datanets/abc/upload", 400),
        ("/datanets/999999/upload", 404),
        ("/datanets/999999/curate", 404),
        (&format!("/datanets/{id}/curate?reject=rude") as &str, 400),
        (&format!("/datanets/{id}/curate?x=1"), 400),
        (&format!("/datanets/{id}/upload?x=1"), 400),
        ("/datanets/new?x=1", 400),
        (&format!("/datanets/{id}/contributions/999/rows"), 404),
        (&format!("/datanets/{id}/contributions/x/rows"), 400),
        (&format!("/datanets/{id}/contributions/{cid}/rows?offset=-1"), 400),
    ] {
        let p = page(node, "GET", path, b"", status);
        assert!(p.contains("role=\"alert\""), "{path}: {p}");
    }
    for bad in [
        "name=&licence=MIT",
        "name=x&licence=MIT&policy=secret",
        "name=x&licence=MIT&bond=lots",
        "name=x&licence=MIT&curators=0x12",
        "name=x&licence=MIT&who=me",
    ] {
        page(node, "POST", "/datanets/new", bad.as_bytes(), 400);
    }
    let huge = format!("name={}", "a".repeat(20_000));
    assert!(matches!(http_send(&node.http, "POST", "/datanets/new", &[], huge.as_bytes()).0, 400 | 413));
}
