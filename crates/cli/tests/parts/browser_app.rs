//! The web app in a real browser (headless Chromium over WebDriver): every
//! page of a node after `openledger demo` is checked by axe-core and
//! screenshotted.

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
fn every_page_passes_axe_in_a_real_browser() {
    let Some(b) = Browser::start() else { return };
    let e = ServingEnv::start();
    let data_dir = e.node.data_dir.to_str().unwrap().to_string();
    let s = e.ok(&["demo", "--steps", "3", "--answers", "1", "--data-dir", &data_dir], true, true);
    let mut all = pages(&s);
    // The validator set links to its operators' pages.
    b.goto(&format!("http://{}/validators", e.node.http));
    let operator = b.wait_until("document.querySelector('main a[href^=\"/validators/0x\"]').getAttribute('href')", 10);
    all.push(("validator".into(), operator.as_str().unwrap().to_string()));

    let mut report = Vec::new();
    for (width, height, device) in [(1280, 1000, "desktop"), (390, 844, "phone")] {
        b.set_window(width, height);
        for (name, path) in &all {
            b.goto(&format!("http://{}{path}", e.node.http));
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
