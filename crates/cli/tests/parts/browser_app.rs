//! The web app in a real browser (headless Chromium over WebDriver), on a
//! serving dev node after `openledger demo`: a user chats with the live model
//! and sees its answer's credits highlighted; then every page is checked by
//! axe-core, at a desktop's and a phone's width, and screenshotted
//! (`target/browser/screenshots/`).

use serde_json::{Value, json};

use super::browser::Browser;
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
    let dn = s["datanet"]["id"].as_u64().unwrap();
    all.extend(chat(&b, &e, &base, 1, dn));
    sweep(&b, &base, all);
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

fn chat(b: &Browser, e: &ServingEnv, base: &str, model: u64, dn: u64) -> Vec<(String, String)> {
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
            return vec![("answer-with-credits".into(), format!("/playground/answer/{}", receipt.as_str().unwrap()))];
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
