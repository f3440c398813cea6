//! The Models and Earnings sections of the web app on a serving dev node
//! after `openledger demo` (one setup for both: the demo fine-tunes through
//! the node's job API, registers the model, pays for answers, has attribution
//! credit the contributions and claims): the jobs list and the job page with
//! its loss curves, an earnings page with the exact amounts, and the 400 and
//! 404 pages for bad ids and addresses. The Playground and the job form (with
//! the live job page and the wallet buttons) are modules of this binary.

/// A real browser (headless Chromium over WebDriver) and an EIP-1193 wallet.
#[path = "parts/browser.rs"]
mod browser;
/// The app in that browser: axe-core on every page, phone widths, screenshots.
#[path = "parts/browser_app.rs"]
mod browser_app;
mod common;
/// Governance's execute button and the operator page's staking buttons.
#[path = "parts/govstake.rs"]
mod govstake;
/// The job form, the live job page and the wallet buttons (`/models/new`).
#[path = "parts/jobform.rs"]
mod jobform;
/// The Playground (`/playground`): one test binary with the other sections.
#[path = "parts/playground.rs"]
mod playground;
/// Validators' uptime and slashes, and decentralisation over time (dev node and testnet).
#[path = "parts/validators_health.rs"]
mod validators_health;
/// Writes from the browser (the wallet script, the dev wallet, create, upload, curate).
#[path = "parts/wallet.rs"]
mod wallet;

use common::*;
use primitives::Amount;
use rpc::http::{HttpClient, HttpResponse};

fn get(node: &NodeProc, path: &str) -> HttpResponse {
    HttpClient::new(&node.http).request("GET", path, &[], b"").unwrap()
}

/// `GET path`, which must answer `status` with an HTML page; its text.
fn html(node: &NodeProc, path: &str, status: u16) -> String {
    let r = get(node, path);
    let body = r.text();
    assert_eq!(r.status, status, "GET {path}: {body}");
    assert!(r.header("content-type").unwrap_or("").starts_with("text/html"), "GET {path}");
    assert!(body.starts_with("<!DOCTYPE html>"), "GET {path}: {body}");
    body
}

fn assert_has(page: &str, what: &str, wants: &[&str]) {
    for want in wants {
        assert!(page.contains(want), "{what} lacks {want:?}: {page}");
    }
}

/// The numbers of the first `points="x,y x,y ..."` attribute of a polyline.
fn polyline_points(page: &str) -> usize {
    let start = page.find("<polyline").expect("a polyline");
    let attr = &page[start..];
    let attr = &attr[attr.find("points=\"").unwrap() + 8..];
    attr[..attr.find('"').unwrap()].split(' ').count()
}

#[test]
fn jobs_and_earnings_pages_after_the_demo() {
    let e = ServingEnv::start();
    let data_dir = e.node.data_dir.to_str().unwrap().to_string();
    let s = e.ok(&["demo", "--steps", "3", "--answers", "2", "--data-dir", &data_dir], true, true);
    let model = s["model"]["id"].as_u64().unwrap();

    // The jobs list: the demo's job, finished, with its model linked.
    let list = html(&e.node, "/models/jobs", 200);
    assert_has(
        &list,
        "the jobs list",
        &["href=\"/models/jobs/1\"", "✓ succeeded", "100 %", &format!("href=\"/explorer/models/m{model}\"")],
    );
    assert_has(&list, "the navigation", &["href=\"/models/jobs\" aria-current=\"page\"", "href=\"/earnings\""]);

    // The job: its curves drawn from the log (three steps, each with a validation point).
    let job = html(&e.node, "/models/jobs/1", 200);
    assert_has(
        &job,
        "the job page",
        &["✓ succeeded", "training loss", "validation loss", "role=\"img\"", "<title>Training and validation loss"],
    );
    assert_eq!(polyline_points(&job), 3, "one point a step");
    assert_has(&job, "the job page", &["Provenance", "Adapter hash", "Evaluation", "models.approve [", "/datanets/"]);
    assert!(!job.contains("http-equiv=\"refresh\""), "a finished job's page does not reload");

    // A contributor's earnings: exactly what attribution credited and what it claimed.
    let claim = &s["claims"][0];
    let (account, cid) = (claim["account"].as_str().unwrap(), claim["contribution"].as_u64().unwrap());
    let shown = e.ok(&["rewards", "show", &cid.to_string()], true, false);
    assert_ne!(shown["totalAccrued"], "0", "attribution credited the contribution: {shown}");
    let open = |v: &serde_json::Value| format!("{} OPEN", Amount(v.as_str().unwrap().parse().unwrap()));
    let page = html(&e.node, &format!("/earnings/{account}"), 200);
    assert_has(
        &page,
        "the earnings page",
        &[
            &open(&shown["totalAccrued"]),
            &open(&claim["amount"]),
            &format!("/contributions/{cid}\""),
            "Earnings over time",
        ],
    );
    // The serving operator settled the paid answers: its serving parts, by receipt.
    let op = node::dev_serving_operator().address();
    let page = html(&e.node, &format!("/earnings/{op:#x}"), 200);
    assert_has(&page, "the operator's earnings", &["Settled receipts", &format!("href=\"/explorer/models/m{model}\"")]);
    // The model owner neither paid nor served the answers: its owner parts come
    // from its model's history, exactly the demo's sum of `ownerPart`, once each.
    let builder =
        s["earnings"].as_array().unwrap().iter().find(|r| r["role"].as_str().unwrap().starts_with("model builder"));
    let builder = builder.expect("the demo's earnings name the model builder");
    let owner_part: u128 = builder["earned"].as_str().unwrap().parse().unwrap();
    assert!(owner_part > 0, "the demo paid the model owner: {builder}");
    let page = html(&e.node, &format!("/earnings/{}", builder["account"].as_str().unwrap()), 200);
    assert_has(
        &page,
        "the model owner's earnings",
        &[
            &format!("Owner parts of the receipts below: <span class=\"amount\" title=\"{owner_part} base units\">"),
            &format!("{} OPEN", Amount(owner_part)),
            "Settled receipts",
            "read from each model's history",
        ],
    );
    let rows = page.matches(&format!("<td><a href=\"/explorer/models/m{model}\">")).count();
    // The app's answers, and the one the demo's dishonest operator resold.
    let resold = usize::from(s["forgedRecordChallenge"].is_object());
    assert_eq!(rows, s["paidAnswers"].as_u64().unwrap() as usize + resold, "one row a paid answer: {page}");
    // The form leads there.
    let r = get(&e.node, &format!("/earnings?address={account}"));
    assert_eq!((r.status, r.header("location")), (303, Some(format!("/earnings/{}", account.to_lowercase()).as_str())));
    assert_has(&html(&e.node, "/earnings", 200), "the earnings form", &["<label for=\"address\">", "name=\"address\""]);

    // Bad input: clear 400 and 404 pages.
    for (path, status) in [
        ("/models/jobs/abc", 400),
        ("/models/jobs/999999", 404),
        ("/models/jobs/1?x=1", 400),
        ("/models/jobs?limit=x", 400),
        ("/earnings/0x12", 400),
        ("/earnings?address=0xzz", 400),
        ("/earnings/0x0000000000000000000000000000000000000000?before=1", 400),
    ] {
        let page = html(&e.node, path, status);
        assert!(page.contains("role=\"alert\""), "GET {path}: {page}");
    }
}
