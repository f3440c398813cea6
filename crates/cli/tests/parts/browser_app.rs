//! The web app in a real browser (headless Chromium over WebDriver), on a
//! serving dev node after `openledger demo`, all through the pages:
//! - with a browser wallet (an injected EIP-1193 provider whose key lives
//!   outside the page, [`Wallet`]): create a Datanet, upload a file and see
//!   its per-row findings before bonding, approve it from the curation queue,
//!   start a fine-tune on the new version and watch its curve grow;
//! - chat with a live model in the Playground and see the answer's credits
//!   highlighted;
//! - with the dev account selector: claim what that answer earned a contributor;
//! - then every page is checked by axe-core, at a desktop's and a phone's
//!   width, and screenshotted (`target/browser/screenshots/`).

use serde_json::{Value, json};

use super::browser::{Browser, Wallet};
use crate::common::*;

/// The app's pages with the demo's data in them: each `(name, path)`.
fn pages(s: &Value) -> Vec<(String, String)> {
    let dn = s["datanet"]["id"].as_u64().unwrap();
    let model = s["model"]["id"].as_u64().unwrap();
    let c = &s["contributions"][0];
    let (cid, account, tx) =
        (c["contribution"].as_u64().unwrap(), c["account"].as_str().unwrap(), c["approveTx"].as_str().unwrap());
    let proposal = s["model"]["proposal"].as_u64().unwrap();
    let receipt = s["answers"][0]["receipt"].as_str().unwrap();
    let v: Vec<(&str, String)> = vec![
        ("home", "/".into()),
        ("blocks", "/explorer/blocks".into()),
        ("block", "/explorer/blocks/2".into()),
        ("transaction", format!("/explorer/tx/{tx}")),
        ("account", format!("/explorer/accounts/{account}")),
        ("model", format!("/explorer/models/m{model}")),
        ("datanet-record", format!("/explorer/datanets/d{dn}")),
        ("datanets", "/datanets".into()),
        ("datanet", format!("/datanets/{dn}")),
        ("contribution", format!("/datanets/{dn}/contributions/{cid}")),
        ("governance", "/governance".into()),
        ("proposal", format!("/governance/{proposal}")),
        ("validators", "/validators".into()),
        ("decentralisation", "/validators/decentralisation".into()),
        ("jobs", "/models/jobs".into()),
        ("job", "/models/jobs/1".into()),
        ("new-job", "/models/new".into()),
        ("earnings-form", "/earnings".into()),
        ("earnings", format!("/earnings/{account}")),
        ("playground", "/playground".into()),
        ("answer", format!("/playground/answer/{receipt}")),
        ("assets", "/assets".into()),
        ("not-found", "/explorer/blocks/999999999".into()),
    ];
    v.into_iter().map(|(n, p)| (n.to_string(), p)).collect()
}

/// The innermost elements that stick out of the viewport on the right (not
/// counting what scrolls inside its own box): `tag.class (right edge)`.
const WIDER_THAN_THE_SCREEN: &str = "
  var w = document.documentElement.clientWidth, out = [];
  if (document.documentElement.scrollWidth <= w) return out;
  document.querySelectorAll('main *').forEach(function (e) {
    if (e.closest('.scroll, pre')) return;
    var r = e.getBoundingClientRect();
    if (r.right > w + 1 && !Array.prototype.some.call(e.children, function (c) { return c.getBoundingClientRect().right > w + 1; }))
      out.push(e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).replace(/ /g, '.') : '') + ' (' + Math.round(r.right) + ')');
  });
  return out.slice(0, 5);";

#[test]
fn the_web_app_in_a_real_browser() {
    let Some(b) = Browser::start() else { return };
    let e = ServingEnv::start();
    let data_dir = e.node.data_dir.to_str().unwrap().to_string();
    let s = e.ok(&["demo", "--steps", "3", "--answers", "1", "--data-dir", &data_dir], true, true);
    let base = format!("http://{}", e.node.http);
    let mut all = pages(&s);
    let wallet = Wallet::start(dev(8), &e.node.rpc);
    let (mine, version) = create_upload_curate(&b, &wallet, &base);
    all.extend(fine_tune(&b, &wallet, &base, mine, version));
    assert!(wallet.asked("personal_sign") >= 2, "the upload and the job were signed by the wallet");
    assert!(wallet.asked("eth_sendTransaction") >= 3, "create, bond, approve: sent by the wallet");
    all.push(("my-datanet".into(), format!("/datanets/{mine}")));
    all.push(("curation-queue".into(), format!("/datanets/{mine}/curate")));
    all.push(("upload".into(), format!("/datanets/{mine}/upload")));
    all.push(("new-datanet".into(), "/datanets/new".into()));

    let dn = s["datanet"]["id"].as_u64().unwrap();
    let (answer, credited) = chat(&b, &e, &base, 1, dn);
    all.push(answer);
    claim(&b, &e, &base, credited);
    sweep(&b, &base, all);
}

/// Pick `value` in the select `css` (the user's choice: it sticks).
fn choose(b: &Browser, css: &str, value: &str) {
    let picked = b.exec(
        "var s = document.querySelector(arguments[0]); s.value = arguments[1];
         s.dispatchEvent(new Event('change', {bubbles: true})); return s.value;",
        json!([css, value]),
    );
    assert_eq!(picked, value, "{css} offers {value}: {}", b.body_text());
}

/// Give the page the test's wallet, and check the page chose it to sign.
fn with_wallet(b: &Browser, wallet: &Wallet) {
    b.inject_wallet(wallet);
    b.wait_until("document.getElementById('wallet-account').value === 'browser'", 10);
}

/// A Datanet created, a file uploaded (findings shown, then bonded) and
/// approved, all signed by the browser wallet: (its id, its new version).
fn create_upload_curate(b: &Browser, wallet: &Wallet, base: &str) -> (u64, u64) {
    b.goto(&format!("{base}/datanets/new"));
    b.type_into("#dn-name", "balcony-herbs");
    b.type_into("#dn-summary", "Growing herbs in pots on a balcony");
    b.type_into("#dn-description", "Notes on basil, thyme and mint in containers.");
    b.click("form.write button[type=submit]");
    b.wait_for("#send-tx", 10);
    with_wallet(b, wallet);
    b.screenshot("flow-datanet-review");
    b.click("#send-tx");
    let href = b.wait_until("document.querySelector('#tx-result a[href^=\"/datanets/\"]').getAttribute('href')", 60);
    let id: u64 = href.as_str().unwrap().trim_start_matches("/datanets/").parse().unwrap();

    // Upload: the findings per row before anything is signed on chain.
    let file = std::env::temp_dir().join(format!("balcony-herbs-{}.txt", std::process::id()));
    std::fs::write(
        &file,
        "Basil on a balcony wants six hours of sun and a pot at least twenty centimetres deep.\n\n\
         Thyme prefers dry soil: water a terracotta pot only when the top three centimetres are dry.\n\n\
         Mint spreads by runners, so give it a pot of its own and pinch the flower buds off.\n",
    )
    .unwrap();
    b.goto(&format!("{base}/datanets/{id}/upload"));
    with_wallet(b, wallet);
    b.type_into("#upload-file", file.to_str().unwrap());
    b.click("#upload-check");
    b.wait_for("#upload-findings tr[data-row]", 60);
    b.wait_until("!document.getElementById('upload-submit').hidden", 10);
    b.screenshot_of("main", "flow-upload-findings");
    b.click("#upload-submit");
    b.wait_until("document.querySelector('#upload-result a')", 60);
    let _ = std::fs::remove_file(&file);

    // Curation: the owner curates; approving makes version 1.
    b.goto(&format!("{base}/datanets/{id}/curate"));
    with_wallet(b, wallet);
    b.screenshot("flow-curation-queue");
    b.click("tr[data-contribution] button.curate-approve");
    b.wait_until("/Approved/.test(document.getElementById('curate-result').textContent)", 60);
    (id, 1)
}

/// Start a fine-tune on `d{dn}@v{version}` from the form (the job request
/// signed by the browser wallet) and watch its loss table grow.
fn fine_tune(b: &Browser, wallet: &Wallet, base: &str, dn: u64, version: u64) -> Vec<(String, String)> {
    b.goto(&format!("{base}/models/new"));
    with_wallet(b, wallet);
    b.type_into("#job-name", "balcony-herbs-tune");
    let option = format!("d{dn}@v{version}");
    let picked = b.exec(
        "var o = document.querySelector('#job-datanets option[value=\"' + arguments[0] + '\"]');
         if (!o) return null; o.selected = true; return o.value;",
        json!([option]),
    );
    assert_eq!(picked, option.as_str(), "the form offers the new version: {}", b.body_text());
    b.type_into("#job-steps", "40");
    b.click("#job-start");
    b.wait_until("/\\/models\\/jobs\\/\\d+$/.test(location.pathname)", 60);
    let path = b.url().split_once("/models/").map(|(_, p)| format!("/models/{p}")).unwrap();
    // The curve moves: the points table grows while the page stays open.
    let points = "document.querySelectorAll('#loss-points tbody tr').length";
    let first = b.wait_until(&format!("document.querySelector('#job-live[data-live=\"true\"]') && {points}"), 120);
    b.wait_until(&format!("{points} > {first}"), 120);
    b.screenshot_of("#job-live", "flow-job-live");
    vec![("my-job".into(), path)]
}

/// Finalize the record of `receipt` (sealing blocks while its challenge window
/// is open), then claim what it credited `contribution` from the Earnings page,
/// signing with the contributor's dev account in the selector.
fn claim(b: &Browser, e: &ServingEnv, base: &str, (receipt, contribution): (String, u64)) {
    let mut c = e.node.client();
    let k = dev(0);
    let finalize = primitives::abi::IInference::finalizeAttributionCall { receiptHash: receipt.parse().unwrap() };
    let to = primitives::system::Module::Inference.address();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    // The node posts the record on its next settlement round: wait for it
    // without sealing blocks, which would run out its attribution timeout.
    let hold = primitives::abi::IInference::holdCall { receiptHash: receipt.parse().unwrap() };
    let hold = format!("0x{}", hex::encode(alloy_sol_types::SolCall::abi_encode(&hold)));
    loop {
        // The call reverts (UnknownReceipt) until the receipt settles.
        let status = match c.call("eth_call", json!([{"to": to, "data": hold}, "latest"])) {
            Ok(out) => {
                let out = hex::decode(out.as_str().unwrap().trim_start_matches("0x")).unwrap();
                let hold =
                    <primitives::abi::IInference::holdCall as alloy_sol_types::SolCall>::abi_decode_returns(&out);
                hold.unwrap().status
            }
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "the receipt {receipt} did not settle in 180 s: {e}");
                0
            }
        };
        assert!(
            status <= runtime::inference::records::POSTED,
            "the record of {receipt} was not posted (status {status})"
        );
        if status == runtime::inference::records::POSTED {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the record of {receipt} was not posted in 180 s");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Then seal blocks while its challenge window is open.
    loop {
        let n = c.nonce(&k.address(), true).unwrap();
        let data = alloy_sol_types::SolCall::abi_encode(&finalize);
        let h = c.send_raw(&signed(&k, n, to, 0, data, 1_000_000)).unwrap();
        if c.wait_receipt(&h, std::time::Duration::from_secs(30)).unwrap().status() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the record of {receipt} was not finalized");
        c.call("anvil_mine", json!(["0x1"])).unwrap();
    }
    let view = primitives::abi::IDatanets::contributionCall { contributionId: contribution };
    let data = format!("0x{}", hex::encode(alloy_sol_types::SolCall::abi_encode(&view)));
    let datanets = primitives::system::Module::Datanets.address();
    let out = c.call("eth_call", json!([{"to": datanets, "data": data}, "latest"])).unwrap();
    let out = hex::decode(out.as_str().unwrap().trim_start_matches("0x")).unwrap();
    let got =
        <primitives::abi::IDatanets::contributionCall as alloy_sol_types::SolCall>::abi_decode_returns(&out).unwrap();
    let contributor = format!("{:#x}", got.contributor);
    b.goto(&format!("{base}/earnings/{contributor}"));
    choose(b, "#wallet-account", &format!("dev:{contributor}"));
    let button = format!("tr[data-contribution=\"{contribution}\"] button.claim");
    b.screenshot("flow-earnings");
    b.click(&button);
    b.wait_until("/Claimed|Done/.test(document.getElementById('claim-result').textContent)", 60);
    // The chain agrees: nothing left to claim.
    let view = primitives::abi::IInference::claimableCall { contributionId: contribution };
    let data = format!("0x{}", hex::encode(alloy_sol_types::SolCall::abi_encode(&view)));
    let left = c.call("eth_call", json!([{"to": to, "data": data}, "latest"])).unwrap();
    let left = primitives::U256::from_str_radix(left.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(left, primitives::U256::ZERO, "contribution {contribution} was claimed");
}

/// The Playground: paste the API key, pick the model, ask with retrieval from
/// Datanet `dn`; the answer streams in and its credits appear under it, spans
/// highlighted per contribution. While an answer quotes no row, its text
/// becomes a row of `dn` (as `ServingEnv::until_an_answer_quotes_a_row` does)
/// and the question is asked again.
/// The committed base model (m1) is tiny and trained on the King James Bible:
/// it follows no instruction, but copies its own continuation when its prompt
/// holds it (see `retrieval_e2e`).
const QUESTION: &str = "In the beginning God created the heaven";

fn chat(b: &Browser, e: &ServingEnv, base: &str, model: u64, dn: u64) -> ((String, String), (String, u64)) {
    for round in 0..3 {
        // A fresh page each round: the page keeps the conversation, which would change the prompt.
        b.goto(&format!("{base}/playground"));
        b.type_into("#pg-key", &e.key);
        let pick = "var s = document.getElementById('pg-model'); s.value = arguments[0]; return s.value;";
        b.exec(pick, json!([format!("m{model}")]));
        b.type_into("#pg-datanets", &dn.to_string());
        b.type_into("#pg-max", "24");
        b.type_into("#pg-temperature", "0");
        b.type_into("#pg-prompt", QUESTION);
        b.click("#pg-send");
        // The answer, then its settled fee split and the record.
        let last = "document.querySelector('#pg-answers .answer-credits')";
        b.wait_until(last, 60);
        b.wait_until(&format!("{last}.getAttribute('data-pending') === 'false'"), 90);
        let receipt = b.exec(&format!("return {last}.getAttribute('data-receipt');"), json!([]));
        let marks = b.exec(&format!("return {last}.querySelectorAll('mark').length;"), json!([]));
        if marks.as_u64().unwrap_or(0) > 0 {
            assert!(b.text("#pg-answers").contains("Fee split"), "{}", b.body_text());
            b.screenshot_of("#pg-answers article", "flow-playground-answer");
            let receipt = receipt.as_str().unwrap().to_string();
            let credited = b.exec(&format!("return {last}.querySelector('mark').getAttribute('title');"), json!([]));
            let contribution = credited.as_str().and_then(|t| t.strip_prefix("from contribution ")).unwrap();
            let contribution = contribution.split(',').next().unwrap().trim().parse().unwrap();
            return (("answer-with-credits".into(), format!("/playground/answer/{receipt}")), (receipt, contribution));
        }
        let text =
            b.exec(&format!("return {last}.closest('article').querySelector('.answer-text').textContent;"), json!([]));
        eprintln!("round {round}: {text}");
        let file = e.dir().join(format!("browser-answer-{round}.txt"));
        // With the question's words, so that BM25 retrieves the row for it (a row sharing no word scores 0).
        std::fs::write(&file, format!("{QUESTION} {}", text.as_str().unwrap())).unwrap();
        let who = (5 + round).to_string();
        let c = e.ok(
            &["contribute", file.to_str().unwrap(), "--datanet", &dn.to_string(), "--dev-account", &who],
            true,
            true,
        );
        e.ok(
            &["curate", "approve", &c["contribution"].as_u64().unwrap().to_string(), "--dev-account", "0"],
            true,
            false,
        );
    }
    panic!("no answer quoted a retrieved row: {}", b.body_text());
}

/// Every page in `all`, at a desktop's width with axe-core and at a phone's
/// width, screenshotted: all problems are reported together.
fn sweep(b: &Browser, base: &str, mut all: Vec<(String, String)>) {
    // The validator set links to its operators' pages.
    b.goto(&format!("{base}/validators"));
    let operator = b.wait_until("document.querySelector('main a[href^=\"/validators/0x\"]').getAttribute('href')", 10);
    all.push(("validator".into(), operator.as_str().unwrap().to_string()));

    let mut report = Vec::new();
    for (width, height, device) in [(1280, 1000, "desktop"), (390, 844, "phone")] {
        b.set_window(width, height);
        for (name, path) in &all {
            b.goto(&format!("{base}{path}"));
            b.wait_for("main", 10);
            let title = b.exec("return document.title;", json!([]));
            assert!(title.as_str().is_some_and(|t| !t.is_empty()), "{path}: a page title");
            b.screenshot(&format!("{device}-{name}"));
            if device == "desktop" {
                report.extend(b.axe().into_iter().map(|v| format!("{path}: {v}")));
            } else {
                // Readable on a phone: the page itself never scrolls sideways (wide tables scroll in their own box).
                let over = b.exec(WIDER_THAN_THE_SCREEN, json!([]));
                if over.as_array().is_some_and(|a| !a.is_empty()) {
                    report.push(format!("{path}: wider than a {width} px phone screen: {over}"));
                }
            }
        }
    }
    assert!(report.is_empty(), "{} problem(s) in the browser:\n{}", report.len(), report.join("\n"));
}
