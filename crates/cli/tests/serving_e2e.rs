//! OpenLoRA end to end on a real dev node: the dev API key works at once; a
//! billed, receipted answer, streamed and not; receipts settle on-chain for
//! exactly the billed amounts; a fine-tuned model goes live through governance
//! and is served with its adapter from the blob store; its answer's attribution
//! record is posted, challenged (and judged right by the dev validator's
//! verifier), finalized, claimed and verified; refusals bill nothing.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy_sol_types::SolEvent;
use common::*;
use primitives::abi::IInference;
use primitives::system::Module;
use serde_json::{Value, json};

fn repo(p: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(p).to_str().unwrap().to_string()
}

type Env = ServingEnv;

/// `eth_call` of an inference view.
fn view<C: alloy_sol_types::SolCall>(e: &Env, c: C) -> C::Return {
    let data = format!("0x{}", hex::encode(c.abi_encode()));
    let out =
        e.node.client().call("eth_call", json!([{"to": Module::Inference.address(), "data": data}, "latest"])).unwrap();
    C::abi_decode_returns(&hex::decode(out.as_str().unwrap().trim_start_matches("0x")).unwrap()).unwrap()
}

impl ServingEnv {
    /// Costs of the ReceiptSettled logs so far.
    fn settled(&self) -> Vec<(String, u128)> {
        let mut c = self.node.client();
        let logs = c
            .call(
                "eth_getLogs",
                json!([{"fromBlock": "0x0", "toBlock": "latest", "address": Module::Inference.address(),
                        "topics": [IInference::ReceiptSettled::SIGNATURE_HASH]}]),
            )
            .unwrap();
        logs.as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let topics: Vec<primitives::B256> =
                    l["topics"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().parse().unwrap()).collect();
                let data = hex::decode(l["data"].as_str().unwrap().trim_start_matches("0x")).unwrap();
                let ev = IInference::ReceiptSettled::decode_raw_log(topics, &data).unwrap();
                (ev.receiptHash.to_string(), ev.cost)
            })
            .collect()
    }
    fn wait_settled(&self, n: usize) -> Vec<(String, u128)> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.settled();
            if s.len() >= n {
                return s;
            }
            assert!(Instant::now() < deadline, "receipts not settled: {s:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn billed_receipted_answers_settle_and_fine_tuned_models_serve() {
    let e = Env::start();
    let key = e.key.clone();
    // A non-streamed chat on the base model.
    let a = e.ok(&["infer", "m1", "In the beginning", "--api-key", &key, "--max-tokens", "12"], false, true);
    assert_eq!(a["object"], "chat.completion");
    assert_eq!(a["usage"]["completion_tokens"], 12);
    let r1 = a["receipt"].clone();
    assert_eq!(r1["inputTokens"], a["usage"]["prompt_tokens"]);
    assert_eq!(r1["payer"].as_str().unwrap().to_lowercase(), format!("{:?}", dev(0).address()).to_lowercase());
    // A streamed completion: the final chunk carries usage and the receipt.
    let s = e.ok(
        &["infer", "m1", "And God said", "--api-key", &key, "--completion", "--stream", "--max-tokens", "9"],
        false,
        true,
    );
    assert_eq!(s["usage"]["completion_tokens"], 9);
    let r2 = s["receipt"].clone();
    assert!(r2["signature"].as_str().unwrap().len() == 132);

    // Both settle on-chain for exactly what was billed.
    let settled = e.wait_settled(2);
    let billed: Vec<(String, u128)> = [&r1, &r2]
        .iter()
        .map(|r| (r["hash"].as_str().unwrap().to_string(), r["cost"].as_str().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(settled, billed);
    let op = node::dev_serving_operator().address();
    let shown =
        e.ok(&["escrow", "show", &format!("{:?}", dev(0).address()), "--operator", &format!("{op:?}")], true, false);
    let remaining: u128 = shown["allowances"][0]["remaining"].as_str().unwrap().parse().unwrap();
    assert_eq!(remaining, 1_000 * primitives::ONE_OPEN - billed.iter().map(|b| b.1).sum::<u128>());
    assert_eq!(shown["allowances"][0]["lastNonce"], 2);

    // Refusals with OpenAI-style errors, nothing billed.
    let out = e.fail(&["infer", "m77", "hi", "--api-key", &key], false, true);
    assert!(out.contains("does not exist"), "{out}");
    let out = e.fail(&["infer", "m1", "hi", "--api-key", "sk-nobody"], false, true);
    assert!(out.contains("401"), "{out}");
    // An account with a key but no allowance.
    let k3 = e.ok(&["apikey", "new", "--dev-account", "3"], true, false);
    let out = e.fail(&["infer", "m1", "hi", "--api-key", k3["key"].as_str().unwrap()], false, true);
    assert!(out.contains("402") && out.contains("allowance"), "{out}");
    e.ok(&["escrow", "deposit", "5", "--dev-account", "3"], true, false);
    e.ok(&["escrow", "allow", &format!("{op:?}"), "5", "--dev-account", "3"], true, false);
    let ok3 = e.ok(&["infer", "m1", "hi", "--api-key", k3["key"].as_str().unwrap(), "--max-tokens", "3"], false, true);
    assert_eq!(ok3["usage"]["completion_tokens"], 3);
    e.ok(&["apikey", "revoke", k3["key"].as_str().unwrap(), "--dev-account", "3"], true, false);
    let out = e.fail(&["infer", "m1", "hi", "--api-key", k3["key"].as_str().unwrap()], false, true);
    assert!(out.contains("401"), "a revoked key is refused: {out}");
    assert_eq!(e.wait_settled(3).len(), 3, "refused requests settled nothing");

    // A fine-tuned model: Datanet version, job, registration, governance, serving.
    let d = e.ok(
        &["datanet", "create", "--from-json", &repo("data/unix-shell/datanet.json"), "--dev-account", "0"],
        true,
        true,
    );
    let dn = d["id"].as_u64().unwrap().to_string();
    let c = e.ok(
        &["contribute", &repo("data/unix-shell/contributor-1.jsonl"), "--datanet", &dn, "--dev-account", "1"],
        true,
        true,
    );
    e.ok(&["curate", "approve", &c["contribution"].as_u64().unwrap().to_string(), "--dev-account", "0"], true, false);
    let j = e.ok(&common::quick_train(&format!("{dn}:1")).iter().map(String::as_str).collect::<Vec<_>>(), false, true);
    assert_eq!(j["status"], "succeeded", "{j}");
    let reg = e.ok(
        &["model", "propose", "--job", "1", "--price-in", "0.002", "--price-out", "0.004", "--dev-account", "1"],
        true,
        true,
    );
    let id = reg["id"].as_u64().unwrap();
    let mid = format!("m{id}");
    // Not live yet: refused.
    let out = e.fail(&["infer", &mid, "hi", "--api-key", &key], false, true);
    assert!(out.contains("not live"), "{out}");
    let p = e.ok(
        &[
            "gov",
            "propose",
            "--description",
            "serve it",
            "--call",
            &format!("models.approve [{id}]"),
            // The treasury's base model in shares: the fine-tune's royalty goes to them.
            "--call",
            "assets.split 1 1000000000000000000000 BASE",
            "--dev-account",
            "0",
        ],
        true,
        false,
    );
    e.node.advance_to(p["voteStart"].as_u64().unwrap());
    e.ok(&["gov", "vote", &p["id"].as_u64().unwrap().to_string(), "for", "--dev-account", "0"], true, false);
    e.node.advance_to(p["voteEnd"].as_u64().unwrap() + 2);
    e.ok(&["gov", "execute", &p["id"].as_u64().unwrap().to_string(), "--dev-account", "0"], true, false);
    // Published (per request), so that account 5 below, not the payer, may read and challenge it.
    let a = e.ok(
        &["infer", &mid, "How do I list hidden files?", "--api-key", &key, "--max-tokens", "6", "--public-attribution"],
        false,
        true,
    );
    assert_eq!(a["model"], mid.as_str());
    assert_eq!(a["receipt"]["adapterHash"], j["output"]["adapterHash"]);
    assert_eq!(a["receipt"]["priceInPer1k"], "2000000000000000");
    // The adapter is resident now, and the 4th receipt settles (with a data-share hold).
    let (_, body) = e.node.http_get("/v1/adapters");
    let ad: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(ad["data"][0]["model"], mid.as_str());
    let s = e.wait_settled(4);
    // The fine-tune's owner part paid the base model its royalty (10%), and
    // the base's shareholders (the treasury holds every share) earned it.
    let h4: primitives::B256 = a["receipt"]["hash"].as_str().unwrap().parse().unwrap();
    let paid = view(&e, IInference::settledReceiptCall { receiptHash: h4 });
    assert!(paid.ownerPart > 0, "{paid:?}");
    let treasury = format!("{:#x}", primitives::system::TREASURY);
    let base = e.ok(&["asset", "info", "--model", "m1", "--holder", &treasury], true, false);
    assert_eq!(base["shareToken"]["symbol"], "BASE", "{base}");
    assert_eq!(
        base["holder"]["earned"],
        (paid.ownerPart / 10).to_string(),
        "the royalty reached the base's shareholders: {base}"
    );
    let receipt = a["receipt"]["hash"].as_str().unwrap().to_string();
    assert_eq!(s[3].0, receipt);
    // Phase two: the answer carried an attribution summary; the node posts the record
    // after settlement; its credits (or the fallback) reach the contribution.
    assert!(a["attribution"]["recordHash"].is_string(), "{a}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let shown = e.ok(&["attribution", "show", &receipt], true, true);
        assert_eq!(shown["recordHash"], a["attribution"]["recordHash"]);
        let hold = e.node.client().call(
            "eth_call",
            json!([{"to": Module::Inference.address(), "data": primitives::Bytes::from(alloy_sol_types::SolCall::abi_encode(&IInference::holdCall { receiptHash: receipt.parse().unwrap() }))}, "latest"]),
        ).unwrap();
        let bytes = hex::decode(hold.as_str().unwrap().trim_start_matches("0x")).unwrap();
        let h = <IInference::holdCall as alloy_sol_types::SolCall>::abi_decode_returns(&bytes).unwrap();
        if h.status != 1 {
            break h;
        }
        assert!(Instant::now() < deadline, "the attribution record was not posted");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.recordHash.to_string(), a["attribution"]["recordHash"].as_str().unwrap());
    let data_share = status.amount;
    let cid = c["contribution"].as_u64().unwrap().to_string();
    // The answer repeats the contribution's rows, so the record credits it.
    assert_eq!(status.status, 2, "a record with credits, pending");
    {
        // Credits pending: finalized once the challenge window (10 blocks in dev) has passed.
        let out = e.fail(
            &["gov", "call", &format!("inference.finalizeAttribution {receipt}"), "--dev-account", "5"],
            true,
            false,
        );
        assert!(out.contains("ChallengeWindowOpen"), "{out}");
        // A challenge of this (right) record: refused while it verifies, then
        // forced; the node reveals the record and prompt, the dev validator's
        // verifier recomputes it and signs "right", the bond is forfeited.
        let out = e.fail(&["attribution", "challenge", &receipt, "--dev-account", "5"], true, true);
        assert!(out.contains("verifies here"), "{out}");
        let ch = e.ok(&["attribution", "challenge", &receipt, "--force", "--dev-account", "5"], true, true);
        assert_eq!(ch["challenge"]["status"], 1, "{ch}");
        assert_eq!(ch["challenge"]["bond"], "10000000000000000000");
        let out = e.fail(&["attribution", "challenge", &receipt, "--force", "--dev-account", "6"], true, true);
        assert!(out.contains("ChallengeExists"), "{out}");
        let deadline = Instant::now() + Duration::from_secs(120);
        let resolved = loop {
            let shown = e.ok(&["attribution", "show", &receipt], true, true);
            if shown["challenge"]["status"].as_u64().unwrap_or(0) >= 3 {
                break shown;
            }
            assert!(Instant::now() < deadline, "the challenge was not judged: {}", shown["challenge"]);
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(
            resolved["challenge"]["status"], 4,
            "a right record: the bond is forfeited: {}",
            resolved["challenge"]
        );
        assert_eq!(resolved["challenge"]["signers"], 1);
        let head = e.node.client().block_number().unwrap();
        e.node.advance_to(head + 11);
        e.ok(&["gov", "call", &format!("inference.finalizeAttribution {receipt}"), "--dev-account", "5"], true, false);
    }
    let r = e.ok(&["rewards", "show", &cid], true, false);
    let claimable: u128 = r["claimable"].as_str().unwrap().parse().unwrap();
    assert!(claimable > 0 && claimable <= data_share, "claimable {claimable} of a data share of {data_share}");
    assert!(claimable + 64 >= data_share, "only rounding dust is lost: {claimable} of {data_share}");
    // Only the contributor claims; it receives exactly the claimable amount.
    let out = e.fail(&["rewards", "claim", &cid, "--dev-account", "2"], true, false);
    assert!(out.contains("NotContributor"), "{out}");
    e.ok(&["rewards", "claim", &cid, "--dev-account", "1"], true, false);
    let after = e.ok(&["rewards", "show", &cid], true, false);
    assert_eq!(after["claimable"], "0");
    // Verification from public inputs.
    let v = e.ok(&["attribution", "verify", &receipt], true, true);
    assert_eq!(v["ok"], true, "{v}");
    // Refusals, each with a reason: a finalized record is no longer
    // challengeable; an unknown receipt has no record; a base model other
    // than the record's cannot verify it.
    let out = e.fail(&["attribution", "challenge", &receipt, "--force", "--dev-account", "6"], true, true);
    assert!(out.contains("ChallengeExists") || out.contains("NotChallengeable"), "{out}");
    let unknown = format!("0x{}", "ab".repeat(32));
    let out = e.fail(&["attribution", "verify", &unknown], true, true);
    assert!(out.contains("no attribution record"), "{out}");
    let out = e.fail(&["attribution", "challenge", &unknown, "--force", "--dev-account", "6"], true, true);
    assert!(out.contains("no attribution record"), "{out}");
    let out =
        e.fail(&["attribution", "verify", &receipt, "--base", &repo("crates/ml/fixtures/tiny-llama")], true, true);
    assert!(out.contains("is not this model's base"), "{out}");
    // The Datanet's owner flags the contribution: it stops earning; only the
    // owner or curators may, and only once.
    let out = e.fail(&["curate", "flag", &cid, "--reason", "duplicated", "--dev-account", "2"], true, false);
    assert!(out.contains("NotCurator"), "{out}");
    let out = e.fail(&["curate", "flag", &cid, "--reason", "stale", "--dev-account", "0"], true, false);
    assert!(out.contains("duplicated, adversarial, unfit"), "{out}");
    e.ok(&["curate", "flag", &cid, "--reason", "duplicated", "--note", "test", "--dev-account", "0"], true, false);
    let out = e.fail(&["curate", "flag", &cid, "--reason", "duplicated", "--dev-account", "0"], true, false);
    assert!(out.contains("NotPending"), "{out}");

    // A licence: the model's owner (account 1) offers 1,000 tokens for 0.5 OPEN;
    // account 0 (the dev key's) buys it once, and its next answer is drawn from it.
    let out = e.fail(
        &["licence", "offer", "--model", &mid, "--price", "0.5", "--tokens", "1000", "--dev-account", "0"],
        true,
        false,
    );
    assert!(out.contains("NotModelOwner"), "{out}");
    let o = e.ok(
        &["licence", "offer", "--model", &mid, "--price", "0.5", "--tokens", "1000", "--dev-account", "1"],
        true,
        false,
    );
    let offer = o["offer"].as_u64().unwrap().to_string();
    let listed = e.ok(&["licence", "list", "--model", &mid], true, false);
    assert_eq!(listed["offers"][0]["tokens"], 1000, "{listed}");
    let b = e.ok(&["licence", "buy", "--offer", &offer, "--dev-account", "0"], true, false);
    let lid = b["licence"].as_u64().unwrap().to_string();
    let allowance = |e: &Env| {
        let shown = e.ok(
            &["escrow", "show", &format!("{:?}", dev(0).address()), "--operator", &format!("{op:?}")],
            true,
            false,
        );
        shown["allowances"][0]["remaining"].as_str().unwrap().to_string()
    };
    let before = allowance(&e);
    let a = e.ok(&["infer", &mid, "How do I list files?", "--api-key", &key, "--max-tokens", "4"], false, true);
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| v.as_str().unwrap().parse().unwrap());
    let tokens = n(&a["receipt"]["inputTokens"]) + n(&a["receipt"]["outputTokens"]);
    let settled = e.wait_settled(5);
    let l = e.ok(&["licence", "show", "--licence", &lid], true, false);
    assert_eq!(l["tokensLeft"].as_u64().unwrap(), 1000 - tokens, "{l}");
    let price = 500_000_000_000_000_000u128;
    let drawn = price * tokens as u128 / 1000;
    assert_eq!(settled[4].1, drawn, "the receipt cost what it drew from the licence");
    assert_eq!(l["amountLeft"], (price - drawn).to_string(), "{l}");
    assert_eq!(allowance(&e), before, "the allowance paid nothing");
    // Not over: nobody closes it yet.
    let out = e.fail(&["licence", "close", "--licence", &lid, "--dev-account", "5"], true, false);
    assert!(out.contains("LicenceNotOver"), "{out}");
}

#[test]
fn anonymous_requests_cost_no_work_and_are_limited_by_network_address() {
    let e = Env::start();
    let metric = |name: &str| -> u64 {
        let (status, body) = e.node.http_get("/metrics");
        assert_eq!(status, 200);
        let text = String::from_utf8(body).unwrap();
        let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let chat = br#"{"model":"m1","messages":[{"role":"user","content":"Hello"}],"max_tokens":2,"temperature":0}"#;
    let post = |headers: &[(&str, String)], body: &[u8]| {
        let mut h = vec![("Content-Type", "application/json".to_string())];
        h.extend_from_slice(headers);
        let (status, resp) = http_send(&e.node.http, "POST", "/v1/chat/completions", &h, body);
        let v: Value = serde_json::from_slice(&resp).unwrap_or(Value::Null);
        (
            status,
            v["error"]["code"].as_str().unwrap_or_default().to_string(),
            String::from_utf8_lossy(&resp).into_owned(),
        )
    };
    let tokenized = metric("openlora_prompts_tokenized_total");
    // The node bills every answer to a payer: an anonymous request is refused
    // before its body is read (a malformed one too: 401, not 400 invalid_json).
    for i in 0..30 {
        let body: &[u8] = if i % 2 == 0 { chat } else { br#"{"model":"m1","messages":"# };
        let (status, code, resp) = post(&[], body);
        assert_eq!((status, code.as_str()), (401, "invalid_api_key"), "{resp}");
    }
    // Past 30 a minute from one network address: 429.
    let (status, code, resp) = post(&[], chat);
    assert_eq!((status, code.as_str()), (429, "rate_limit_exceeded"), "{resp}");
    assert!(resp.contains("127.0.0.1"), "{resp}");
    assert_eq!(metric("openlora_prompts_tokenized_total"), tokenized, "no anonymous prompt was tokenized");
    assert!(metric("openlora_requests_rate_limited_total") >= 1);
    // The dev API key is limited by its own account, not by the address it calls from.
    let (status, _, resp) = post(&[("Authorization", format!("Bearer {}", e.key))], chat);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(metric("openlora_prompts_tokenized_total"), tokenized + 1);
}

/// A node started with `--data-dir` keeps its dev API key there: `infer
/// --data-dir` pays with it; a data dir without one is a clear error.
#[test]
fn infer_takes_the_dev_key_of_a_data_dir() {
    let e = Env::start();
    let data = e.dir().join("chain");
    let a = e.ok(&["infer", "m1", "hi", "--data-dir", data.to_str().unwrap(), "--max-tokens", "2"], false, true);
    assert_eq!(a["usage"]["completion_tokens"], 2);
    let empty = e.dir().join("nothing-here");
    let out = e.fail(&["infer", "m1", "hi", "--data-dir", empty.to_str().unwrap()], false, true);
    assert!(out.contains("no API key") && out.contains("nothing-here"), "{out}");
}

/// `up --base-model` makes that model m1, so it is listed and answered (paid
/// with the dev key) like the committed base would be; the chain keeps it, and
/// `up` on that chain naming another base says that m1 is not that one.
#[test]
fn up_serves_the_base_model_it_is_given_as_m1() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("chain");
    let tiny = repo("crates/ml/fixtures/tiny-llama");
    let node = NodeProc::start_serving(&data, &["--instant", "--base-model", &tiny]);
    let (status, body) = node.http_get("/v1/models");
    assert_eq!(status, 200);
    let models: Value = serde_json::from_slice(&body).unwrap();
    let m1 = models["data"].as_array().unwrap().iter().find(|m| m["id"] == "m1").cloned();
    let m1 = m1.unwrap_or_else(|| panic!("m1 is not served: {models}"));
    assert_eq!(m1["name"], "tiny-llama", "{m1}");
    assert_eq!(m1["adapter_hash"], Value::Null, "m1 is the base itself: {m1}");
    let tiny_hash = ml::ModelFiles::open(std::path::Path::new(&tiny)).unwrap().hash;
    assert_ne!(tiny_hash, node::DEV_BASE_MODEL_HASH);
    let call = primitives::abi::IModels::modelCall { id: 1 };
    let input = format!("0x{}", hex::encode(alloy_sol_types::SolCall::abi_encode(&call)));
    let out =
        node.client().call("eth_call", json!([{"to": Module::Models.address(), "data": input}, "latest"])).unwrap();
    let raw = hex::decode(out.as_str().unwrap().trim_start_matches("0x")).unwrap();
    let info = <primitives::abi::IModels::modelCall as alloy_sol_types::SolCall>::abi_decode_returns(&raw).unwrap();
    let m1_base = info.baseModelHash;
    assert_eq!(m1_base, tiny_hash, "m1's on-chain base hash is the model the node was started with");
    let out = cli(&[
        "--json",
        "infer",
        "m1",
        "hi",
        "--data-dir",
        data.to_str().unwrap(),
        "--max-tokens",
        "2",
        "--http",
        &node.http,
    ]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let a: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(a["usage"]["completion_tokens"], 2, "{a}");
    node.stop();

    // The chain keeps tiny-llama as m1; started on the committed base, `up` says so.
    let log = dir.path().join("up.log");
    let _ = std::fs::remove_file(data.join(node::ENDPOINTS_FILE));
    let child = std::process::Command::new(bin())
        .args([
            "up",
            "--quiet",
            "--instant",
            "--data-dir",
            data.to_str().unwrap(),
            "--base-model",
            &repo("models/base"),
        ])
        .args(["--rpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let node = NodeProc::attach(child, &data);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("this chain's m1 is tiny-llama") && said.contains("`up --reset`"), "{said}");
    let (_, body) = node.http_get("/v1/models");
    let models: Value = serde_json::from_slice(&body).unwrap();
    assert!(models["data"].as_array().unwrap().iter().all(|m| m["id"] != "m1"), "m1 is not this base's: {models}");
    node.stop();
}
