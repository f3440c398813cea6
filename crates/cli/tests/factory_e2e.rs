//! ModelFactory end to end on a real node, through the CLI, the HTTP API and
//! JSON-RPC: a Datanet version, a training job (queued, trained, evaluated,
//! artefacts in the blob store), its model registered and proposed, made live
//! by a governance proposal; and the refusals.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::{Value, json};

fn repo(p: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(p).to_str().unwrap().to_string()
}

struct Env {
    node: NodeProc,
    _dir: tempfile::TempDir,
}

impl Env {
    fn start() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let base = repo("crates/ml/fixtures/tiny-llama");
        let node = NodeProc::start(&dir.path().join("chain"), &["--instant", "--base-model", &base]);
        Env { node, _dir: dir }
    }
    fn full(&self, a: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec!["--json".into()];
        v.extend(a.iter().map(|s| s.to_string()));
        v
    }
    fn with(&self, a: &[&str], rpc: bool, http: bool) -> Vec<String> {
        let mut v = self.full(a);
        if rpc {
            v.extend(["--rpc".into(), self.node.rpc.clone()]);
        }
        if http {
            v.extend(["--http".into(), self.node.http.clone()]);
        }
        v
    }
    fn ok(&self, a: &[&str], rpc: bool, http: bool) -> Value {
        let v = self.with(a, rpc, http);
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        serde_json::from_str(&cli_ok(&refs)).unwrap()
    }
    fn fail(&self, a: &[&str], rpc: bool, http: bool) -> String {
        let v = self.with(a, rpc, http);
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        let o = cli(&refs);
        assert!(!o.status.success(), "openledger {a:?} should have failed: {}", String::from_utf8_lossy(&o.stdout));
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    }
}

#[test]
fn train_register_and_approve_through_governance() {
    let e = Env::start();
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
    let version = format!("{dn}:1");

    // Refused before queueing, with the reason.
    let out = e.fail(&["train", "submit", "--datanet", &format!("{dn}:9"), "--dev-account", "1"], false, true);
    assert!(out.contains("has no version 9"), "{out}");
    let out = e.fail(&["train", "submit", "--datanet", &version, "--rank", "0", "--dev-account", "1"], false, true);
    assert!(out.contains("rank must be at least 1"), "{out}");
    let out =
        e.fail(&["train", "submit", "--datanet", &version, "--max-seq-len", "4096", "--dev-account", "1"], false, true);
    assert!(out.contains("beyond the base model's context"), "{out}");
    let out = e.fail(&["train", "submit", "--datanet", "7:1", "--dev-account", "1"], false, true);
    assert!(out.contains("Datanet 7 does not exist"), "{out}");

    // A job: queued, trained, evaluated, its artefacts stored by content hash.
    let j = e.ok(
        &[
            "train",
            "submit",
            "--datanet",
            &version,
            "--name",
            "shell-helper",
            "--steps",
            "6",
            "--batch-size",
            "4",
            "--max-seq-len",
            "96",
            "--rank",
            "4",
            "--learning-rate",
            "0.01",
            "--watch",
            "--dev-account",
            "1",
        ],
        false,
        true,
    );
    assert_eq!(j["status"], "succeeded", "{j}");
    let m = &j["output"]["metrics"];
    assert_eq!(m["steps"], 6);
    assert!(m["validation"]["loss"].as_f64().unwrap().is_finite());
    assert!(m["validation"]["exactMatch"].is_number(), "prompt/completion rows are scored: {m}");
    let adapter_blob = j["artefacts"]["adapterModel"].as_str().unwrap().to_string();
    // Not live: the job's owner's only (deny by default; 404 as for a missing blob).
    let path = format!("/v1/blobs/{adapter_blob}");
    assert_eq!(e.node.http_get(&path).0, 404);
    let auth = e.node.sign(&dev(1), "GET", &path, b"");
    let (status, body) = e.node.http_get_with(&path, &[(keys::request::AUTH_HEADER, auth)]);
    assert_eq!(status, 200);
    assert_eq!(format!("{}", primitives::content_hash(&body)), adapter_blob);
    let listed = e.ok(&["train", "list"], false, true);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    // Its history: every training step, and the validation loss at ten evenly
    // spaced points (here: every step of six), the last one the final metric's.
    let (status, body) = e.node.http_get("/v1/jobs/1/history");
    assert_eq!(status, 200);
    let h: Value = serde_json::from_slice(&body).unwrap();
    let steps = |k: &str| h[k].as_array().unwrap().iter().map(|p| p["step"].as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(steps("train"), vec![1, 2, 3, 4, 5, 6], "{h}");
    assert_eq!(steps("validation"), vec![1, 2, 3, 4, 5, 6], "{h}");
    assert!(h["train"][0]["loss"].as_f64().unwrap().is_finite() && h["train"][0]["lr"].is_number());
    let last = h["validation"][5]["validationLoss"].as_f64().unwrap();
    assert!((last - m["validation"]["loss"].as_f64().unwrap()).abs() < 1e-9, "{h} vs {m}");
    assert_eq!(h["next"], Value::Null);
    // Pages: after step 4, two points at a time.
    let (_, body) = e.node.http_get("/v1/jobs/1/history?since=4&limit=2");
    let page: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(page["train"].as_array().unwrap().len() + page["validation"].as_array().unwrap().len(), 2);
    assert_eq!(page["next"], 5);
    // Bad queries are refused; an unknown job is 404; a huge limit is clamped.
    for q in ["since=-1", "limit=x", "since=1&junk=2", "since=99999999999999999999999"] {
        assert_eq!(e.node.http_get(&format!("/v1/jobs/1/history?{q}")).0, 400, "{q}");
    }
    assert_eq!(e.node.http_get("/v1/jobs/77/history").0, 404);
    assert_eq!(e.node.http_get("/v1/jobs/1/history?limit=18446744073709551615").0, 200);

    // Register (draft) and propose; only governance makes it live.
    let reg = e.ok(&["model", "propose", "--job", "1", "--dev-account", "1"], true, true);
    let id = reg["id"].as_u64().unwrap();
    let mid = format!("m{id}");
    let shown = e.ok(&["model", "show", &mid], true, false);
    assert_eq!(shown["state"], "proposed");
    assert_eq!(shown["adapterHash"], j["output"]["adapterHash"]);
    assert_eq!(shown["licences"][0], "CC0-1.0");
    assert_eq!(shown["sketchK"], 256);
    assert_eq!(shown["checkpointHashes"].as_array().unwrap().len(), 3);
    // Non-owners are refused by name.
    let out = e.fail(&["model", "retire", &mid, "--dev-account", "2"], true, false);
    assert!(out.contains("NotOwner"), "{out}");
    let out = e.fail(&["model", "price", &mid, "--in", "1", "--out", "1", "--dev-account", "2"], true, false);
    assert!(out.contains("NotOwner"), "{out}");
    // Approving directly is for governance only.
    let out = e.fail(&["gov", "call", &format!("models.approve [{id}]"), "--dev-account", "1"], true, false);
    assert!(out.contains("Unauthorized"), "{out}");

    let p = e.ok(
        &[
            "gov",
            "propose",
            "--description",
            "Make the shell helper live",
            "--call",
            &format!("models.approve [{id}]"),
            "--dev-account",
            "0",
        ],
        true,
        false,
    );
    let pid = p["id"].as_u64().unwrap().to_string();
    let start = p["voteStart"].as_u64().unwrap();
    let end = p["voteEnd"].as_u64().unwrap();
    e.node.advance_to(start);
    e.ok(&["gov", "vote", &pid, "for", "--dev-account", "0"], true, false);
    e.node.advance_to(end + 2);
    let x = e.ok(&["gov", "execute", &pid, "--dev-account", "0"], true, false);
    assert_eq!(x["status"], "0x1");
    let shown = e.ok(&["model", "show", &mid], true, false);
    assert_eq!(shown["state"], "live");
    // Chat with it: the adapter comes from the node's blob store, checked against the record.
    let base = repo("crates/ml/fixtures/tiny-llama");
    let a = e.ok(
        &["chat", &mid, "--base", &base, "--prompt", "How do I list hidden files?", "--max-tokens", "8"],
        true,
        true,
    );
    assert_eq!(a["model"], mid.as_str());
    assert!(a["usage"]["completionTokens"].as_u64().unwrap() > 0, "{a}");
    // The wrong base model is refused by hash.
    let out = e.fail(&["chat", &mid, "--base", &repo("crates/ml/fixtures/tiny-qwen2"), "--prompt", "hi"], true, true);
    assert!(out.contains("is an adapter for base model"), "{out}");
    let all = e.ok(&["model", "list"], true, false);
    assert!(all.as_array().unwrap().iter().any(|m| m["id"] == mid.as_str() && m["state"] == "live"));
}

/// `POST /v1/jobs` signed by dev account `who`: (status, JSON answer).
fn submit(node: &NodeProc, who: u32, spec: Value) -> (u16, Value) {
    let body = serde_json::to_vec(&spec).unwrap();
    let auth = node.sign(&dev(who), "POST", "/v1/jobs", &body);
    let (status, resp) = http_send(
        &node.http,
        "POST",
        "/v1/jobs",
        &[("Content-Type", "application/json".into()), (keys::request::AUTH_HEADER, auth)],
        &body,
    );
    (status, serde_json::from_slice(&resp).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&resp))))
}

#[test]
fn jobs_name_only_the_served_base_model_and_owners_have_quotas() {
    // The node's default base model (models/base, m1 at genesis).
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(&dir.path().join("chain"), &["--instant"]);
    let run = |a: &[&str], rpc: bool, http: bool| -> Value {
        let mut v: Vec<String> = vec!["--json".into()];
        v.extend(a.iter().map(|s| s.to_string()));
        if rpc {
            v.extend(["--rpc".into(), node.rpc.clone()]);
        }
        if http {
            v.extend(["--http".into(), node.http.clone()]);
        }
        serde_json::from_str(&cli_ok(&v.iter().map(String::as_str).collect::<Vec<_>>())).unwrap()
    };
    let d = run(
        &["datanet", "create", "--from-json", &repo("data/unix-shell/datanet.json"), "--dev-account", "0"],
        true,
        true,
    );
    let dn = d["id"].as_u64().unwrap();
    let c = run(
        &[
            "contribute",
            &repo("data/unix-shell/contributor-1.jsonl"),
            "--datanet",
            &dn.to_string(),
            "--dev-account",
            "1",
        ],
        true,
        true,
    );
    run(&["curate", "approve", &c["contribution"].as_u64().unwrap().to_string(), "--dev-account", "0"], true, false);
    // Long jobs, so that none ends while the quota is being tested.
    let spec = |base: Option<&str>| {
        let mut s = json!({"datanets": [{"datanet": dn, "version": 1}], "steps": 4000, "maxSeqLen": 64});
        if let Some(b) = base {
            s["baseModel"] = b.into();
        }
        s
    };

    // Paths, real or not, are refused the same way, without touching the disk.
    let base_dir = repo("models/base");
    let mut path_answers = std::collections::BTreeSet::new();
    for name in ["/etc/passwd", "../x", "/nonexistent/model", base_dir.as_str(), "models/base", "m999", "0x1234"] {
        let (status, r) = submit(&node, 1, spec(Some(name)));
        assert_eq!(status, 400, "{name}: {r}");
        assert_eq!(r["error"]["code"], "unknown_base_model", "{name}: {r}");
        let m = r["error"]["message"].as_str().unwrap();
        assert!(m.contains("m1") && m.contains(&node::DEV_BASE_MODEL_HASH.to_string()), "{m}");
        if name.contains('/') {
            path_answers.insert(m.replace(&format!("{name:?}"), "NAME"));
        }
    }
    // Existing and missing paths get the same answer: nothing about the disk leaks.
    assert_eq!(path_answers.len(), 1, "{path_answers:?}");
    // The served base by model id, by hash, and by default.
    let hash = node::DEV_BASE_MODEL_HASH.to_string();
    for base in [Some("m1"), Some(hash.as_str()), None] {
        let (status, r) = submit(&node, 1, spec(base));
        assert_eq!(status, 201, "{base:?}: {r}");
    }
    // The CLI names it by id too.
    let j = run(
        &[
            "train",
            "submit",
            "--datanet",
            &format!("{dn}:1"),
            "--base-model",
            "m1",
            "--steps",
            "4000",
            "--dev-account",
            "1",
        ],
        false,
        true,
    );
    assert_eq!(j["spec"]["baseModel"], "m1");

    // Dev account 1 has 4 jobs queued or running, the default quota: the fifth is refused...
    let (status, r) = submit(&node, 1, spec(None));
    assert_eq!(status, 429, "{r}");
    assert_eq!(r["error"]["code"], "job_quota");
    assert_eq!(r["error"]["type"], "rate_limit_error");
    assert!(r["error"]["message"].as_str().unwrap().contains("already has 4 jobs"), "{r}");
    // ...while another owner's is accepted.
    let (status, r) = submit(&node, 2, spec(None));
    assert_eq!(status, 201, "{r}");
    // Steps count too: one job may not queue more than the owner's step quota.
    let mut big = spec(None);
    big["steps"] = 20_001.into();
    let (status, r) = submit(&node, 3, big);
    assert_eq!(status, 429, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("training steps"), "{r}");
    // Cancelling frees a place.
    run(&["train", "cancel", "2", "--dev-account", "1"], false, true);
    let (status, r) = submit(&node, 1, spec(None));
    assert_eq!(status, 201, "{r}");
}
