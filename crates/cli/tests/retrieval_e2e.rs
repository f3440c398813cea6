//! Retrieval with attribution on a real dev node: `POST /v1/retrieve` finds
//! a Datanet's rows by BM25 and refuses what it must (bad bounds, unknown
//! Datanets, a private Datanet to a stranger); a chat with `retrieval` on the
//! base model puts the rows in the prompt, its receipt commits to the
//! versions retrieved from, the data part is held (the base model alone would
//! send it to the treasury), the record's retrieval part credits the rows
//! the answer quotes, the node posts it with `postAttributionRetrieved`, and
//! after the challenge window each quoted contribution can claim exactly
//! `floor(hold × ppm / 10^6)`; `attribution verify` recomputes it from public
//! inputs.

mod common;

use std::time::{Duration, Instant};

use alloy_sol_types::SolCall;
use common::*;
use primitives::abi::IInference;
use primitives::system::Module;
use primitives::{B256, Bytes};
use serde_json::{Value, json};

/// The committed base model was trained on the King James Bible: asked for
/// the beginning of Genesis with the verses in its prompt, it repeats them.
const GENESIS: &str = "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters.";
const OTHER: [&str; 3] = [
    "Compost heaps need air: turn them every few weeks and keep them as damp as a wrung-out sponge.",
    "Tomatoes want full sun, deep watering twice a week and a stake before the first truss sets.",
    "A ledger of who contributed which row lets every answer pay the people whose words it used.",
];

/// A view of the inference module (`None` when it reverts: a receipt not settled yet has no hold).
fn view<C: SolCall>(e: &ServingEnv, call: C) -> Option<C::Return> {
    let data = Bytes::from(call.abi_encode());
    let out =
        e.node.client().call("eth_call", json!([{"to": Module::Inference.address(), "data": data}, "latest"])).ok()?;
    Some(C::abi_decode_returns(&hex::decode(out.as_str().unwrap().trim_start_matches("0x")).unwrap()).unwrap())
}

fn retrieve(e: &ServingEnv, key: &str, body: Value) -> (u16, Value) {
    let auth = [("authorization", format!("Bearer {key}")), ("content-type", "application/json".to_string())];
    let (status, body) = http_send(&e.node.http, "POST", "/v1/retrieve", &auth, body.to_string().as_bytes());
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[test]
fn retrieved_rows_the_answer_quotes_are_paid_to_the_wei_and_verify() {
    let e = ServingEnv::start();
    let key = e.key.clone();
    let rows = [GENESIS, OTHER[0], OTHER[1], OTHER[2]];
    let (dn, ids) = e.datanet("scripture-and-soil", "open", &rows);
    let d: u64 = dn.parse().unwrap();

    // Retrieval alone: the Genesis row first, with its text and a score.
    let (st, found) =
        retrieve(&e, &key, json!({"query": "In the beginning God created the heaven", "datanets": [d], "k": 2}));
    assert_eq!(st, 200, "{found}");
    assert_eq!(found["datanets"], json!([{"datanet": d, "version": 4}]), "the latest version by default");
    let top = &found["rows"][0];
    assert_eq!(top["contribution"], ids[0]);
    assert_eq!(top["text"], GENESIS);
    assert!(top["score"].as_f64().unwrap() > 0.0);
    assert!(found["rows"].as_array().unwrap().len() <= 2);
    // A given version holds only the rows approved by then.
    let (_, v1) =
        retrieve(&e, &key, json!({"query": "tomatoes compost", "datanets": [{"datanet": d, "version": 1}], "k": 4}));
    assert!(v1["rows"].as_array().unwrap().iter().all(|r| r["contribution"] == ids[0]), "{v1}");
    // Refusals, each with a reason.
    for (body, status, needle) in [
        (json!({"query": "x", "datanets": [d], "k": 0}), 400, "k must be"),
        (json!({"query": "x", "datanets": [d], "k": 65}), 400, "k must be"),
        (json!({"query": "", "datanets": [d]}), 400, "query"),
        (json!({"query": "x".repeat(5000), "datanets": [d]}), 400, "query"),
        (json!({"query": "x", "datanets": []}), 400, "1 to"),
        (json!({"query": "x", "datanets": [d, d]}), 400, "twice"),
        (json!({"query": "x", "datanets": [999]}), 404, "does not exist"),
        (json!({"query": "x", "datanets": [{"datanet": d, "version": 9}]}), 404, "no version 9"),
        (json!({"query": "x", "datanets": [d], "extra": 1}), 400, "unknown field"),
    ] {
        let (st, v) = retrieve(&e, &key, body.clone());
        assert_eq!(st, status, "{body}: {v}");
        assert!(v["error"]["message"].as_str().unwrap_or("").contains(needle), "{body}: {v}");
    }
    // The CLI does the same.
    let cli = e.ok(
        &["retrieve", "In the beginning God created", "--datanets", &dn, "--k", "1", "--api-key", &key],
        false,
        true,
    );
    assert_eq!(cli["rows"][0]["contribution"], ids[0], "{cli}");
    let out = e.fail(&["retrieve", "x", "--datanets", "nope", "--api-key", &key], false, true);
    assert!(out.contains("not a Datanet id"), "{out}");
    // Query syntax is text, not operators.
    let (st, _) = retrieve(&e, &key, json!({"query": "beginning AND (earth OR", "datanets": [d]}));
    assert_eq!(st, 200);

    // A private Datanet: its members may retrieve; a stranger may not, even by chat.
    let (private, _) = e.datanet("private-notes", "allow-list", &[OTHER[2]]);
    let (st, v) = retrieve(&e, &key, json!({"query": "ledger", "datanets": [private.parse::<u64>().unwrap()]}));
    assert_eq!(st, 200, "the owner (dev 0, the key's account) reads it: {v}");
    let k3 = e.ok(&["apikey", "new", "--dev-account", "7"], true, false)["key"].as_str().unwrap().to_string();
    let (st, v) = retrieve(&e, &k3, json!({"query": "ledger", "datanets": [private.parse::<u64>().unwrap()]}));
    assert_eq!(st, 403, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("private"), "{v}");
    let out = e.fail(&["infer", "m1", "ledger", "--api-key", &k3, "--retrieve", &private], false, true);
    assert!(out.contains("403") || out.contains("private"), "{out}");

    // A chat with retrieval on the base model. The committed base model is
    // tiny and trained on the King James Bible: it follows no instruction,
    // but it copies its own continuation when its prompt holds it. So while
    // an answer quotes no retrieved row, the test contributes that answer as
    // a row (another contributor) and asks again with every row retrieved.
    // (Rows that share no word with the question are not retrieved: BM25 scores them 0.)
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
    // Streamed, the rows ride on the final chunk with the receipt.
    let streamed = e.ok(
        &["infer", "m1", "In the beginning", "--retrieve", &dn, "--stream", "--max-tokens", "4", "--api-key", &key],
        false,
        true,
    );
    assert_eq!(streamed["retrieval"]["rows"][0]["contribution"], ids[0], "{streamed}");
    assert_ne!(streamed["receipt"]["retrievalHash"], B256::ZERO.to_string());
    let a = chat();
    assert_eq!(a["retrieval"]["rows"][0]["contribution"], ids[0], "the Genesis row ranks first: {a}");
    assert!(a["retrieval"]["rows"][0]["text"].is_null(), "the answer names the rows, not their text again");
    let (a, made) = e.until_an_answer_quotes_a_row(&dn, a, chat);
    let ids: Vec<u64> = ids.into_iter().chain(made).collect();
    let version = 4 + ids.len() as u64 - rows.len() as u64;
    let receipt: B256 = a["receipt"]["hash"].as_str().unwrap().parse().unwrap();
    let want_hash = primitives::abi::retrieval_hash(&[primitives::abi::DatanetVersionRef { datanetId: d, version }]);
    assert_eq!(a["receipt"]["retrievalHash"], want_hash.to_string(), "{}", a["receipt"]);
    let summary = &a["attribution"]["retrieval"];
    let credits = summary["credits"].as_array().unwrap();
    let retrieved: Vec<&Value> =
        a["retrieval"]["rows"].as_array().unwrap().iter().map(|r| &r["contribution"]).collect();
    assert!(credits.iter().all(|c| retrieved.contains(&&c[0])), "only retrieved rows are credited: {a}");
    assert_eq!(credits.iter().map(|c| c[1].as_u64().unwrap()).sum::<u64>(), 1_000_000, "{summary}");
    // A base-model answer credits no training data: the quoted rows take the whole data part.
    assert_eq!(
        a["attribution"]["credits"].as_array().unwrap(),
        &summary["credits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| json!({"contribution": c[0], "ppm": c[1]}))
            .collect::<Vec<_>>()
    );

    // The node settles it (the data part held, though the base model has no Datanets) and posts the record.
    let deadline = Instant::now() + Duration::from_secs(60);
    let hold = loop {
        let h = view(&e, IInference::holdCall { receiptHash: receipt });
        if let Some(h) = h.as_ref().filter(|h| h.status == 2) {
            break h.clone();
        }
        assert!(Instant::now() < deadline, "the record was not posted: {:?}", h.map(|h| h.status));
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(hold.amount > 0);
    assert_eq!(view(&e, IInference::retrievalHashOfCall { receiptHash: receipt }), Some(want_hash));
    // After the challenge window anyone finalizes; the quoted row's contributor
    // can claim exactly its share, the rows it did not quote nothing.
    let head = e.node.client().block_number().unwrap();
    e.node.advance_to(head + 11);
    e.ok(&["gov", "call", &format!("inference.finalizeAttribution {receipt}"), "--dev-account", "5"], true, false);
    let record = e.ok(&["attribution", "show", &receipt.to_string(), "--api-key", &key], true, true);
    let credits = record["record"]["credits"].as_array().unwrap().clone();
    assert_eq!(&credits, summary["credits"].as_array().unwrap());
    for (i, cid) in ids.iter().enumerate() {
        let r = e.ok(&["rewards", "show", &cid.to_string()], true, false);
        let claimable: u128 = r["claimable"].as_str().unwrap().parse().unwrap();
        let ppm = credits.iter().find(|c| c[0] == *cid).map(|c| c[1].as_u64().unwrap() as u128).unwrap_or(0);
        assert_eq!(claimable, hold.amount * ppm / 1_000_000, "contribution {cid} (row {i})");
    }
    // Anyone holding the answer recomputes the record, retrieval part included.
    let v = e.ok(&["attribution", "verify", &receipt.to_string(), "--api-key", &key], true, true);
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["check"] == "retrieval part (byte for byte)" && c["ok"] == true),
        "{v}"
    );
}
