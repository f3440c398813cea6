//! The web app's Playground on a serving dev node: the page lists the live
//! base model with the chat form and its script; an answer got through the
//! API with the dev key (retrieving a Datanet's rows, so the base model's
//! answer has a record) has its credits rendered by the node: the receipt,
//! the highlighted spans and their contributions, the fee split once
//! settled; the node recomputes the record and says it matches. Attacks: a
//! malformed or unknown receipt is a 400 or 404 page, a private record is
//! not shown (nor verified) for an anonymous browser, as the API would not.

use std::time::{Duration, Instant};

use crate::common::*;
use rpc::http::{HttpClient, HttpResponse};

/// The committed base model was trained on the King James Bible: with the
/// verses in its prompt it repeats them (see retrieval_e2e).
const GENESIS: &str = "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters.";
const SOIL: &str = "Tomatoes want full sun, deep watering twice a week and a stake before the first truss sets.";

fn send(node: &NodeProc, method: &str, path: &str, key: Option<&str>) -> HttpResponse {
    let auth: Vec<(&str, String)> = key.map(|k| ("authorization", format!("Bearer {k}"))).into_iter().collect();
    HttpClient::new(&node.http).request(method, path, &auth, b"").unwrap()
}

/// `method path` must answer `status` with HTML; its text.
fn html(node: &NodeProc, method: &str, path: &str, key: Option<&str>, status: u16) -> String {
    let r = send(node, method, path, key);
    let body = r.text();
    assert_eq!(r.status, status, "{method} {path}: {body}");
    assert!(r.header("content-type").unwrap_or("").starts_with("text/html"), "{method} {path}");
    body
}

fn assert_has(page: &str, what: &str, wants: &[&str]) {
    for want in wants {
        assert!(page.contains(want), "{what} lacks {want:?}: {page}");
    }
}

#[test]
fn playground_chats_and_shows_who_is_credited() {
    let e = ServingEnv::start();
    let key = e.key.clone();

    // The page: the live base model, a labelled form, the answers region and the script.
    let page = html(&e.node, "GET", "/playground", None, 200);
    assert_has(
        &page,
        "the Playground",
        &[
            "<option value=\"m1\">",
            "<label for=\"pg-key\">",
            "<label for=\"pg-prompt\">",
            "<label for=\"pg-model\">",
            "<label for=\"pg-datanets\">",
            "aria-live=\"polite\"",
            "<script src=\"/assets/playground.js\" defer>",
            "href=\"/playground\" aria-current=\"page\"",
            "dev-api-key",
        ],
    );
    let script = send(&e.node, "GET", "/assets/playground.js", None);
    assert_eq!(script.status, 200);
    assert!(script.header("content-type").unwrap_or("").starts_with("text/javascript"));
    assert_has(&script.text(), "the script", &["/v1/chat/completions", "stream: true", "?fragment=1"]);

    // An answer through the API with the dev key, from retrieved rows. While it
    // quotes no row, its text becomes a row and the question is asked again.
    let (dn, _) = e.datanet("scripture-and-soil", "open", &[GENESIS, SOIL]);
    let chat = || {
        e.ok(
            &["infer", "m1", "In the beginning God created the heaven", "--retrieve", &dn, "--k", "64"]
                .into_iter()
                .chain(["--max-tokens", "24", "--api-key", &key])
                .collect::<Vec<_>>(),
            false,
            true,
        )
    };
    let (a, _) = e.until_an_answer_quotes_a_row(&dn, chat(), chat);
    let receipt = a["receipt"]["hash"].as_str().unwrap().to_string();
    let credited = a["attribution"]["credits"][0]["contribution"].as_u64().unwrap();
    let path = format!("/playground/answer/{receipt}");

    // The credits, as the payer sees them once the receipt has settled and its
    // record is posted (a verdict is judged against the posted hash: one judged
    // before the post is judged again after it, so the burst below waits).
    let deadline = Instant::now() + Duration::from_secs(60);
    let credits = loop {
        let f = html(&e.node, "GET", &format!("{path}?fragment=1"), Some(&key), 200);
        if f.contains("data-pending=\"false\"") && f.contains("Record posted") {
            break f;
        }
        assert!(Instant::now() < deadline, "the receipt did not settle and its record was not posted: {f}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!credits.starts_with("<!DOCTYPE"), "a fragment, not a page");
    assert_has(
        &credits,
        "the credits",
        &[
            &receipt,
            "<mark class=\"c",
            &format!("/datanets/{dn}/contributions/{credited}\">contribution {credited}</a>"),
            "Fee split",
            "Serving operator",
            "Treasury",
            "OPEN",
            "100.00 %",
            "/explorer/tx/0x",
            "openledger attribution challenge",
            "/verify\"",
        ],
    );
    // The same without the script: a page of its own.
    let own = html(&e.node, "GET", &path, Some(&key), 200);
    assert!(own.starts_with("<!DOCTYPE html>") && own.contains(&receipt));

    // The node recomputes the record and says it matches. A burst of
    // verifications is judged one at a time and gets one verdict.
    let burst: Vec<String> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..6)
            .map(|_| sc.spawn(|| html(&e.node, "POST", &format!("{path}/verify?fragment=1"), Some(&key), 200)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(burst.windows(2).all(|w| w[0] == w[1]), "one verdict for one record");
    let verdict = html(&e.node, "POST", &format!("{path}/verify?fragment=1"), Some(&key), 200);
    assert_eq!(verdict, burst[0], "the kept verdict");
    assert_has(&verdict, "the verdict", &["The record matches", "signature", "retrieval part (byte for byte)"]);
    assert!(!verdict.contains("✗"), "{verdict}");
    // A record that verifies offers no challenge: it would forfeit the bond (the CLI's --force is named).
    assert_has(
        &verdict,
        "the verdict",
        &[
            "a challenge would most likely forfeit the bond of",
            &format!("openledger attribution challenge {receipt} --force"),
        ],
    );
    assert!(!verdict.contains("id=\"challenge\"") && !verdict.contains("data-to="), "{verdict}");
    // The Playground's page has the wallet a mismatch's challenge button needs.
    assert!(page.contains("<select id=\"wallet-account\""), "{page}");

    // Attacks: a malformed receipt is a 400 page, an unknown one a 404 page.
    html(&e.node, "GET", "/playground/answer/0x1234", None, 400);
    html(&e.node, "GET", "/playground/answer/%FF%FE", None, 400);
    html(&e.node, "GET", &format!("/playground/answer/0x{}", "ab".repeat(32)), None, 404);
    html(&e.node, "POST", &format!("/playground/answer/0x{}/verify", "ab".repeat(32)), None, 404);
    html(&e.node, "GET", &format!("{path}?fragment=1&x=1"), None, 400);
    html(&e.node, "GET", "/playground?receipt=nope", None, 400);
    // The record was not published: an anonymous browser sees the chain's
    // part only, as `GET /v1/attribution/{receipt}` would show it nothing.
    let (api, _) = e.node.http_get(&format!("/v1/attribution/{receipt}"));
    assert_eq!(api, 403);
    let anonymous = html(&e.node, "GET", &format!("{path}?fragment=1"), None, 200);
    assert!(anonymous.contains("private") && anonymous.contains("Fee split"), "{anonymous}");
    assert!(!anonymous.contains("<mark") && !anonymous.contains("/verify\""), "{anonymous}");
    let refused = html(&e.node, "POST", &format!("{path}/verify"), None, 404);
    assert!(refused.contains("not public") && !refused.contains("matches"), "{refused}");
    // A key of another account is no better than none.
    let other = e.ok(&["apikey", "new", "--dev-account", "7"], true, false)["key"].as_str().unwrap().to_string();
    let stranger = html(&e.node, "GET", &format!("{path}?fragment=1"), Some(&other), 200);
    assert!(!stranger.contains("<mark"), "{stranger}");

    // A published record is anyone's to read and verify.
    let published = e.ok(
        &["infer", "m1", "In the beginning God created", "--retrieve", &dn, "--k", "64", "--max-tokens", "8"]
            .into_iter()
            .chain(["--public-attribution", "--api-key", &key])
            .collect::<Vec<_>>(),
        false,
        true,
    );
    let public = published["receipt"]["hash"].as_str().unwrap().to_string();
    let (api, _) = e.node.http_get(&format!("/v1/attribution/{public}"));
    assert_eq!(api, 200, "the API shows it to anyone");
    let shown = html(&e.node, "GET", &format!("/playground/answer/{public}?fragment=1"), None, 200);
    assert_has(
        &shown,
        "a published record, anonymously",
        &["Record <span class=\"mono wrap\">0x", "The answer, with the spans", "/verify\""],
    );

    // The stream as the page's script reads it: `data:` events whose deltas
    // make the answer, the receipt on the final chunk, then `[DONE]`; its
    // receipt has credits to show (for the base model without retrieval: the
    // chain's part, and why there is no record).
    let body = serde_json::json!({"model": "m1", "stream": true, "max_tokens": 4,
        "messages": [{"role": "user", "content": "In the beginning"}]});
    let headers = [("authorization", format!("Bearer {key}")), ("content-type", "application/json".to_string())];
    let (st, sse) = http_send(&e.node.http, "POST", "/v1/chat/completions", &headers, body.to_string().as_bytes());
    assert_eq!(st, 200);
    let events: Vec<String> = String::from_utf8(sse)
        .unwrap()
        .split("\n\n")
        .filter_map(|ev| ev.lines().find_map(|l| l.strip_prefix("data:")).map(|d| d.trim().to_string()))
        .collect();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let last: serde_json::Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    let streamed = last["receipt"]["hash"].as_str().expect("the final chunk carries the receipt").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let plain = loop {
        // Billed here and not settled yet, it is already known (settling), so
        // at most the moment its settlement is in flight answers 404.
        let r = send(&e.node, "GET", &format!("/playground/answer/{streamed}?fragment=1"), Some(&key));
        let f = r.text();
        assert!(r.status == 200 || r.status == 404, "{f}");
        if r.status == 200 && f.contains("data-pending=\"false\"") {
            break f;
        }
        assert!(Instant::now() < deadline, "the streamed receipt did not settle: {f}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_has(&plain, "a base-model answer's credits", &[&streamed, "No attribution record", "Fee split", "Treasury"]);
    assert!(!plain.contains("/verify\""), "nothing to verify: {plain}");

    // The page's receipt form leads to the same answer.
    let r = send(&e.node, "GET", &format!("/playground?receipt={receipt}"), None);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some(path.as_str()));
}
