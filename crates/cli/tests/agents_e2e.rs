//! Agents end to end on a real serving dev node, driven through the binary: an
//! agent is registered (its card served over HTTP), funded, limited, allowed to
//! pay the serving operator and given an API key; a client posts a paid task;
//! `agent run --once` answers it with a live model (m1), waits for its receipt
//! to settle and delivers; the client accepts; `agent trail` shows every party
//! paid, to the wei. Refusals: a limit on `agent allow`, a delivery of a receipt
//! the agent did not pay, a frozen agent's key at the serving node, memory
//! blobs read by someone the owner did not allow, malformed and unknown ids.

mod common;

use common::*;
use serde_json::Value;

fn addr(i: u32) -> String {
    format!("{:?}", dev(i).address())
}

fn wei(v: &Value) -> u128 {
    v.as_str().unwrap_or_else(|| panic!("not a decimal string: {v}")).parse().unwrap()
}

fn get_json(e: &ServingEnv, path: &str) -> (u16, Value) {
    let (status, body) = e.node.http_get(path);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Owner: dev 1. Operator: dev 4. Client: dev 2. Outsider: dev 5.
#[test]
fn an_agent_completes_a_paid_task_and_the_trail_pays_everyone() {
    let e = ServingEnv::start();
    let op = format!("{:?}", node::dev_serving_operator().address());
    let meta = e.dir().join("agent.json");
    std::fs::write(&meta, br#"{"capabilities":["shell"],"models":["m1"]}"#).unwrap();
    let reg = e.ok(
        &[
            "agent",
            "register",
            "shell-helper",
            "--description",
            "answers shell questions",
            "--metadata",
            meta.to_str().unwrap(),
            "--operator",
            &addr(4),
            "--dev-account",
            "1",
        ],
        true,
        true,
    );
    let id = reg["id"].as_u64().unwrap();
    let ids = id.to_string();
    assert_eq!(reg["wallet"].as_str().unwrap().to_lowercase(), format!("{:?}", primitives::abi::agent_wallet(id)));

    // The card over HTTP, with the registration file's JSON; bounded, clear refusals.
    let (s, card) = get_json(&e, &format!("/v1/agents/{id}"));
    assert_eq!(s, 200, "{card}");
    assert_eq!(card["agent"]["name"], "shell-helper");
    assert_eq!(card["agent"]["operator"].as_str().unwrap().to_lowercase(), addr(4));
    assert_eq!(card["metadata"]["capabilities"][0], "shell");
    assert_eq!(card["tokenURI"], format!("openledger://agents/{id}"));
    for (path, status, code) in [
        ("/v1/agents/abc", 400, "malformed_id"),
        ("/v1/agents/-1", 400, "malformed_id"),
        ("/v1/agents/99999999999999999999999", 400, "malformed_id"),
        ("/v1/agents/9999", 404, "unknown_agent"),
        ("/v1/tasks/9999", 404, "unknown_task"),
        ("/v1/tasks", 400, "malformed_query"),
        ("/v1/agents", 400, "missing_owner"),
        ("/v1/agents?owner=0xnope", 400, "malformed_owner"),
        ("/v1/tasks?open=true&limit=x", 400, "malformed_query"),
    ] {
        let (s, v) = get_json(&e, path);
        assert_eq!((s, v["error"]["code"].as_str().unwrap_or("")), (status, code), "{path}: {v}");
    }
    let (_, mine) = get_json(&e, &format!("/v1/agents?owner={}", addr(1)));
    assert_eq!(mine["agents"][0]["id"], id);

    // Budget: fund, limit, allow (a limit refusal first), an API key bound to the wallet.
    e.ok(&["agent", "fund", &ids, "10", "--dev-account", "1"], true, false);
    e.ok(
        &[
            "agent",
            "limits",
            &ids,
            "--per-period",
            "5",
            "--per-operator",
            "3",
            "--period-blocks",
            "100000",
            "--models",
            "m1",
            "--dev-account",
            "1",
        ],
        true,
        false,
    );
    let out = e.fail(&["agent", "allow", &ids, &op, "4", "--dev-account", "4"], true, false);
    assert!(out.contains("LimitExceeded"), "{out}");
    e.ok(&["agent", "allow", &ids, &op, "2", "--dev-account", "4"], true, false);
    let key = e.ok(&["agent", "bind-key", &ids, "--dev-account", "4"], true, false);
    let key = key["key"].as_str().unwrap().to_string();

    // A client posts a paid task in the agent's domain; the agent works it.
    let payment = 3 * primitives::ONE_OPEN;
    let t = e.ok(
        &[
            "agent",
            "task",
            "post",
            "--agent",
            &ids,
            "--spec",
            "How do I list hidden files?",
            "--domain",
            "shell",
            "--payment",
            "3",
            "--dev-account",
            "2",
        ],
        true,
        true,
    );
    let task = t["taskId"].as_u64().unwrap().to_string();
    let (s, open) = get_json(&e, &format!("/v1/tasks?agent={id}"));
    assert_eq!(s, 200);
    assert_eq!(open["tasks"][0]["status"], "open");
    let done = e.ok(
        &[
            "agent",
            "run",
            &ids,
            "--domain",
            "shell",
            "--api-key",
            &key,
            "--once",
            "--max-tokens",
            "8",
            "--dev-account",
            "4",
        ],
        true,
        true,
    );
    assert_eq!(done["taskId"].as_u64().unwrap().to_string(), task);
    let receipt = done["receipts"][0].as_str().unwrap().to_string();
    let (_, shown) = get_json(&e, &format!("/v1/tasks/{task}"));
    assert_eq!(shown["status"], "delivered");
    assert_eq!(shown["receipts"][0], receipt.as_str());
    // The result is a public blob.
    let (s, _) = e.node.http_get(&format!("/v1/blobs/{}", shown["resultHash"].as_str().unwrap()));
    assert_eq!(s, 200);
    e.ok(&["agent", "task", "accept-result", &task, "--dev-account", "2"], true, false);

    // The trail, to the wei.
    let trail = e.ok(&["agent", "trail", &task], true, false);
    assert_eq!(trail["status"], "paid");
    assert_eq!(wei(&trail["payment"]), payment);
    let owner = &trail["agentOwner"];
    assert_eq!(owner["address"].as_str().unwrap().to_lowercase(), addr(1));
    assert_eq!(wei(&owner["paid"]) + wei(&owner["protocolShare"]), payment, "{trail}");
    let receipts = trail["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 1);
    let r = &receipts[0];
    assert_eq!(r["payer"].as_str().unwrap().to_lowercase(), format!("{:?}", primitives::abi::agent_wallet(id)));
    let cost = wei(&r["cost"]);
    assert!(cost > 0, "{r}");
    let parts = wei(&r["modelOwner"]["amount"])
        + wei(&r["servingOperator"]["amount"])
        + wei(&r["stakers"])
        + wei(&r["treasury"])
        + wei(&r["data"]["amount"]);
    assert_eq!(parts, cost, "{r}");
    // m1 names no Datanet version: its data part is zero and nothing is held. For a
    // finalized record the credits plus dust plus forfeits would make the data part.
    let d = &r["data"];
    let credited: u128 = d["credits"].as_array().unwrap().iter().map(|c| wei(&c["amount"])).sum();
    assert_eq!(credited, wei(&d["credited"]));
    if d["status"] == "finalized" {
        assert_eq!(credited + wei(&d["dust"]) + wei(&d["forfeited"]), wei(&d["amount"]), "{d}");
    } else {
        assert_eq!(wei(&d["amount"]), 0, "{d}");
    }
    let human = cli_ok(&["agent", "trail", &task, "--rpc", &e.node.rpc]);
    assert!(human.contains("model owner") && human.contains("serving operator"), "{human}");

    // A forged delivery: a receipt paid by someone else (the dev key's payer, dev 0).
    let t2 = e.ok(
        &[
            "agent",
            "task",
            "post",
            "--agent",
            &ids,
            "--spec",
            "again",
            "--domain",
            "shell",
            "--payment",
            "1",
            "--dev-account",
            "2",
        ],
        true,
        true,
    );
    let task2 = t2["taskId"].as_u64().unwrap().to_string();
    e.ok(&["agent", "task", "accept", &task2, "--agent", &ids, "--dev-account", "4"], true, false);
    let other = e.ok(&["infer", "m1", "hi", "--api-key", &e.key, "--max-tokens", "2"], false, true);
    let other = other["receipt"]["hash"].as_str().unwrap().to_string();
    let out = e.fail(
        &["agent", "task", "deliver", &task2, "--result", "x", "--receipt", &other, "--dev-account", "4"],
        true,
        true,
    );
    assert!(out.contains("BadReceipt"), "{out}");

    memory_is_readable_only_as_allowed(&e, id);

    // Frozen: the serving node refuses the agent's key before serving.
    e.ok(&["agent", "freeze", &ids, "--dev-account", "1"], true, false);
    let out = e.fail(&["infer", "m1", "hi", "--api-key", &key, "--max-tokens", "2"], false, true);
    assert!(out.contains("403") && out.contains(&format!("agent {id}")), "{out}");
    e.ok(&["agent", "unfreeze", &ids, "--dev-account", "1"], true, false);
    e.ok(&["infer", "m1", "hi", "--api-key", &key, "--max-tokens", "2"], false, true);

    // The token moves; the operator resets to the new owner.
    e.ok(&["agent", "transfer", &ids, &addr(6), "--dev-account", "1"], true, false);
    let shown = e.ok(&["agent", "show", &ids], true, false);
    assert_eq!(shown["agent"]["owner"].as_str().unwrap().to_lowercase(), addr(6));
    assert_eq!(shown["agent"]["operator"].as_str().unwrap().to_lowercase(), addr(6));
}

/// Memory snapshots: the operator writes, the owner reads, an outsider is
/// refused until the owner names it a reader; uploads are checked too.
fn memory_is_readable_only_as_allowed(e: &ServingEnv, id: u64) {
    let ids = id.to_string();
    let set = e.ok(&["agent", "memory", "set", &ids, "style", "terse", "--dev-account", "4"], true, true);
    let blob = set["blobHash"].as_str().unwrap().to_string();
    let got = e.ok(&["agent", "memory", "get", &ids, "style", "--dev-account", "1"], true, true);
    assert_eq!(got["value"], "terse");
    let path = format!("/v1/blobs/{blob}");
    assert_eq!(e.node.http_get(&path).0, 404, "anonymous");
    let outsider = [(keys::request::AUTH_HEADER, e.node.sign(&dev(5), "GET", &path, b""))];
    assert_eq!(e.node.http_get_with(&path, &outsider).0, 404, "not a reader");
    let out = e.fail(&["agent", "memory", "get", &ids, "--dev-account", "5"], true, true);
    assert!(out.contains("404"), "{out}");
    e.ok(&["agent", "memory", "readers", &ids, &addr(5), "--dev-account", "1"], true, false);
    let reader = [(keys::request::AUTH_HEADER, e.node.sign(&dev(5), "GET", &path, b""))];
    assert_eq!(e.node.http_get_with(&path, &reader).0, 200, "a reader");

    // Uploads: signed, non-empty, a known kind, memory only by the owner or operator.
    let up = |who: u32, q: &str, body: &[u8]| {
        let p = format!("/v1/agents/blobs{q}");
        let h = [(keys::request::AUTH_HEADER, e.node.sign(&dev(who), "POST", &p, body))];
        http_send(&e.node.http, "POST", &p, &h, body).0
    };
    assert_eq!(up(5, &format!("?kind=memory&agent={id}"), b"{}"), 403);
    assert_eq!(up(5, "?kind=secret", b"{}"), 400);
    assert_eq!(up(5, "", b""), 400);
    assert_eq!(up(5, "?kind=memory&agent=x", b"{}"), 400);
    assert_eq!(up(5, "?kind=memory&agent=9999", b"{}"), 404);
    assert_eq!(up(5, "", &vec![b'x'; node::agents_route::MAX_AGENT_BLOB + 1]), 413);
    assert_eq!(http_send(&e.node.http, "POST", "/v1/agents/blobs", &[], b"{}").0, 401);
}

fn repo(p: &str) -> String {
    format!("{}/../../{p}", env!("CARGO_MANIFEST_DIR"))
}

/// A model fine-tuned on a Datanet version (contributor: dev 1), made live by
/// governance; returns (model id, contribution id).
fn fine_tuned_model(e: &ServingEnv) -> (u64, u64) {
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
    let cid = c["contribution"].as_u64().unwrap();
    e.ok(&["curate", "approve", &cid.to_string(), "--dev-account", "0"], true, false);
    let train = ["train", "submit", "--datanet", &format!("{dn}:1"), "--steps", "4", "--batch-size", "2"];
    let j = e.ok(&[&train[..], &["--max-seq-len", "96", "--watch", "--dev-account", "1"]].concat(), false, true);
    assert_eq!(j["status"], "succeeded", "{j}");
    let job = j["id"].as_u64().unwrap_or(1).to_string();
    let reg = e.ok(
        &["model", "propose", "--job", &job, "--price-in", "2", "--price-out", "4", "--dev-account", "1"],
        true,
        true,
    );
    let id = reg["id"].as_u64().unwrap();
    let call = format!("models.approve [{id}]");
    let p = e.ok(&["gov", "propose", "--description", "live", "--call", &call, "--dev-account", "0"], true, false);
    let pid = p["id"].as_u64().unwrap().to_string();
    e.node.advance_to(p["voteStart"].as_u64().unwrap());
    e.ok(&["gov", "vote", &pid, "for", "--dev-account", "0"], true, false);
    e.node.advance_to(p["voteEnd"].as_u64().unwrap() + 2);
    e.ok(&["gov", "execute", &pid, "--dev-account", "0"], true, false);
    (id, cid)
}

/// The trail of a task whose agent paid a fine-tuned model: the receipt's data
/// part goes, through the posted attribution record, to the contributor of the
/// Datanet rows the answer used; every party's part is checked to the wei, the
/// credits against the record's pending credits and the contribution's rewards.
#[test]
fn a_task_on_a_fine_tuned_model_pays_its_data_contributors_through_the_trail() {
    let e = ServingEnv::start();
    let (model, cid) = fine_tuned_model(&e);
    let op = format!("{:?}", node::dev_serving_operator().address());
    // Owner dev 3 (no contributor), operator dev 4, client dev 2.
    let reg = e.ok(&["agent", "register", "shell-2", "--operator", &addr(4), "--dev-account", "3"], true, true);
    let ids = reg["id"].as_u64().unwrap().to_string();
    e.ok(&["agent", "fund", &ids, "10", "--dev-account", "3"], true, false);
    e.ok(&["agent", "allow", &ids, &op, "10", "--dev-account", "4"], true, false);
    let key =
        e.ok(&["agent", "bind-key", &ids, "--dev-account", "4"], true, false)["key"].as_str().unwrap().to_string();
    let post = ["agent", "task", "post", "--agent", &ids, "--spec", "How do I list hidden files?", "--domain", "shell"];
    let t = e.ok(&[&post[..], &["--payment", "2", "--dev-account", "2"]].concat(), true, true);
    let task = t["taskId"].as_u64().unwrap().to_string();
    let mid = format!("m{model}");
    let run = ["agent", "run", &ids, "--domain", "shell", "--api-key", &key, "--model", &mid, "--once"];
    let done = e.ok(&[&run[..], &["--max-tokens", "8", "--dev-account", "4"]].concat(), true, true);
    let receipt = done["receipts"][0].as_str().unwrap().to_string();

    // The node posts the record after settlement: credits pending.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let pending = loop {
        let tr = e.ok(&["agent", "trail", &task], true, false);
        let d = tr["receipts"][0]["data"].clone();
        if d["status"] != "open" {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "no attribution record posted: {d}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(pending["status"], "posted", "{pending}");
    let held = wei(&pending["amount"]);
    assert!(held > 0, "a fine-tuned model's receipt has a data part: {pending}");
    let credits = pending["credits"].as_array().unwrap().clone();
    assert!(credits.iter().any(|c| c["contributionId"] == cid), "the record credits the contribution: {pending}");
    // The record verifies from public inputs; after the challenge window anyone finalizes it.
    assert_eq!(e.ok(&["attribution", "verify", &receipt, "--api-key", &key], true, true)["ok"], true);
    // The record is private to the payer, a wallet no key holds: the agent's owner
    // and operator read it for it, nobody else does.
    let path = format!("/v1/attribution/{receipt}");
    for (who, status) in [(3, 200), (4, 200), (5, 403)] {
        let h = [(keys::request::AUTH_HEADER, e.node.sign(&dev(who), "GET", &path, b""))];
        assert_eq!(e.node.http_get_with(&path, &h).0, status, "dev {who}");
    }
    let head = e.node.client().block_number().unwrap();
    e.node.advance_to(head + 11);
    e.ok(&["gov", "call", &format!("inference.finalizeAttribution {receipt}"), "--dev-account", "5"], true, false);
    e.ok(&["agent", "task", "accept-result", &task, "--dev-account", "2"], true, false);

    let trail = e.ok(&["agent", "trail", &task], true, false);
    assert_eq!(trail["status"], "paid");
    let owner = &trail["agentOwner"];
    assert_eq!(owner["address"].as_str().unwrap().to_lowercase(), addr(3));
    assert_eq!(wei(&owner["paid"]) + wei(&owner["protocolShare"]), 2 * primitives::ONE_OPEN, "{trail}");
    let r = &trail["receipts"][0];
    assert_eq!(r["modelId"], model, "{r}");
    let d = &r["data"];
    assert_eq!(d["status"], "finalized", "{d}");
    assert_eq!(wei(&d["amount"]), held);
    let parts = wei(&r["modelOwner"]["amount"])
        + wei(&r["servingOperator"]["amount"])
        + wei(&r["stakers"])
        + wei(&r["treasury"])
        + held;
    assert_eq!(parts, wei(&r["cost"]), "{r}");
    // Finalized credits are the pending ones, and with the dust make the data part.
    let credited: u128 = d["credits"].as_array().unwrap().iter().map(|c| wei(&c["amount"])).sum();
    assert_eq!(credited + wei(&d["dust"]) + wei(&d["forfeited"]), held, "{d}");
    let key_of = |c: &Value| (c["contributionId"].as_u64().unwrap(), wei(&c["amount"]));
    let mut before: Vec<_> = credits.iter().map(key_of).collect();
    let mut after: Vec<_> = d["credits"].as_array().unwrap().iter().map(key_of).collect();
    before.sort();
    after.sort();
    assert_eq!(before, after, "finalization pays exactly the posted record's credits");
    // The contributor (dev 1) is named, and its contribution can claim exactly its credit.
    let mine = d["credits"].as_array().unwrap().iter().find(|c| c["contributionId"] == cid).unwrap();
    assert_eq!(mine["contributor"].as_str().unwrap().to_lowercase(), addr(1));
    let rewards = e.ok(&["rewards", "show", &cid.to_string()], true, false);
    assert_eq!(wei(&rewards["claimable"]), wei(&mine["amount"]), "{rewards}");
}
