//! Datanets end to end through the CLI, the HTTP API and JSON-RPC on a real
//! node: create, contribute from several accounts, curate, version, tombstone,
//! export; and the refusals, each leaving nothing behind.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::{Value, json};

fn data(p: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data").join(p);
    root.to_str().unwrap().to_string()
}

struct Env {
    node: NodeProc,
    _dir: tempfile::TempDir,
}

impl Env {
    fn start() -> Env {
        Self::start_with(&[])
    }
    fn start_with(extra: &[&str]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["--instant"];
        args.extend_from_slice(extra);
        let node = NodeProc::start(&dir.path().join("chain"), &args);
        Env { node, _dir: dir }
    }
    fn args<'a>(&'a self, a: &[&'a str]) -> Vec<String> {
        let mut v: Vec<String> = vec!["--json".into()];
        v.extend(a.iter().map(|s| s.to_string()));
        v.extend(["--rpc".into(), self.node.rpc.clone()]);
        v
    }
    /// Run a command that talks to both APIs.
    fn ok(&self, a: &[&str], http: bool) -> Value {
        let mut v = self.args(a);
        if http {
            v.extend(["--http".into(), self.node.http.clone()]);
        }
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        serde_json::from_str(&cli_ok(&refs)).unwrap()
    }
    fn fail(&self, a: &[&str], http: bool) -> String {
        let mut v = self.args(a);
        if http {
            v.extend(["--http".into(), self.node.http.clone()]);
        }
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        let o = cli(&refs);
        assert!(!o.status.success(), "openledger {a:?} should have failed: {}", String::from_utf8_lossy(&o.stdout));
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    }
    fn balance(&self, i: u32) -> u128 {
        self.node.client().balance(&dev(i).address()).unwrap().to::<u128>()
    }
    fn blobs(&self) -> usize {
        let d = self.node.data_dir.join("blobs");
        walk(&d)
    }
}

fn walk(d: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(d) else { return 0 };
    rd.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum()
}

#[test]
fn create_contribute_curate_version_tombstone_export() {
    let e = Env::start();
    let created = e.ok(
        &[
            "datanet",
            "create",
            "--from-json",
            &data("home-gardening/datanet.json"),
            "--bond",
            "1",
            "--dev-account",
            "0",
        ],
        true,
    );
    let id = created["id"].as_u64().unwrap().to_string();
    // Three contributors; the node attests and each signs and bonds with its own key.
    let c1 =
        e.ok(&["contribute", &data("home-gardening/contributor-1.md"), "--datanet", &id, "--dev-account", "1"], true);
    let c1id = c1["contribution"].as_u64().unwrap().to_string();
    assert_eq!(c1["report"]["exactDuplicates"], json!(0));
    let before = e.balance(1);
    e.ok(&["curate", "approve", &c1id, "--dev-account", "0"], false);
    assert_eq!(e.balance(1), before + primitives::ONE_OPEN, "bond returned on approval");
    // A copy of an approved file is flagged as exact duplicates, rejected, and half its bond slashed.
    let dup = e.ok(
        &["contribute", &data("home-gardening/duplicate-of-contributor-1.md"), "--datanet", &id, "--dev-account", "2"],
        true,
    );
    assert_eq!(dup["report"]["exactDuplicates"], dup["report"]["rowCount"]);
    let b2 = e.balance(2);
    let r = e.ok(
        &[
            "curate",
            "reject",
            &dup["contribution"].as_u64().unwrap().to_string(),
            "--reason",
            "duplicate",
            "--dev-account",
            "0",
        ],
        false,
    );
    assert_eq!(r["slashed"], json!((primitives::ONE_OPEN / 2).to_string()));
    assert_eq!(e.balance(2), b2 + primitives::ONE_OPEN / 2);
    // The planted near duplicate (row 9 of contributor-3, of row 16 of contributor-1) is found.
    let c3 =
        e.ok(&["contribute", &data("home-gardening/contributor-3.txt"), "--datanet", &id, "--dev-account", "3"], true);
    assert_eq!(c3["report"]["nearDuplicates"], json!(1), "{}", c3["report"]);
    let flagged: Vec<&Value> =
        c3["report"]["rows"].as_array().unwrap().iter().filter(|r| !r["duplicateOf"].is_null()).collect();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0]["index"], json!(9));
    assert_eq!(
        flagged[0]["duplicateOf"],
        json!(format!("row {c1id}:16")).as_str().map(|_| flagged[0]["duplicateOf"].clone()).unwrap()
    );
    e.ok(&["curate", "approve", &c3["contribution"].as_u64().unwrap().to_string(), "--dev-account", "0"], false);
    // Export: rows hash to the on-chain root (the CLI refuses to write them otherwise).
    let out = e._dir.path().join("v2.jsonl");
    let x = e.ok(&["datanet", "export", &id, "--version", "2", "--out", out.to_str().unwrap()], true);
    assert_eq!(x["verified"], json!(true));
    let lines = std::fs::read_to_string(&out).unwrap().lines().count() as u64;
    let show = e.ok(&["datanet", "show", &id], false);
    let v2 = &show["versions"][1];
    assert_eq!(lines, v2["liveRows"].as_u64().unwrap());
    // Tombstone a row: version 3 without it; versions 1 and 2 closed, roots kept.
    e.ok(&["curate", "tombstone", &c1id, "--row", "4", "--reason", "consent withdrawn", "--dev-account", "0"], true);
    let show = e.ok(&["datanet", "show", &id], false);
    let vs = show["versions"].as_array().unwrap();
    assert_eq!(vs.len(), 3);
    assert_eq!(vs[2]["liveRows"].as_u64().unwrap(), vs[1]["liveRows"].as_u64().unwrap() - 1);
    assert_eq!(vs[0]["closed"], json!(true));
    assert_eq!(vs[1]["closed"], json!(true));
    assert_eq!(vs[1]["root"], v2["root"]);
    let out3 = e._dir.path().join("v3.jsonl");
    e.ok(&["datanet", "export", &id, "--out", out3.to_str().unwrap()], true);
    let v3 = std::fs::read_to_string(&out3).unwrap();
    assert_eq!(v3.lines().count() as u64, lines - 1);
    assert!(!v3.lines().any(|l| l.contains(&format!("\"contribution\":{c1id},")) && l.contains("\"index\":4,")));
    // Reputation and leaderboard.
    let rep = e.ok(&["datanet", "reputation", &dev(2).address().to_string()], false);
    assert_eq!((rep["rejected"].as_u64(), rep["acceptanceBps"].as_u64()), (Some(1), Some(0)));
    let lb = e.ok(&["datanet", "leaderboard", &id], false);
    assert_eq!(lb[0]["contributor"].as_str().unwrap().to_lowercase(), format!("{:#x}", dev(1).address()));
    // eth_getLogs sees every change.
    let logs = e
        .node
        .client()
        .call("eth_getLogs", json!([{"fromBlock": "0x0", "address": primitives::system::Module::Datanets.address()}]))
        .unwrap();
    assert!(logs.as_array().unwrap().len() >= 9);
}

#[test]
fn refusals_store_nothing_and_lose_no_bond() {
    let e = Env::start();
    let id = e.ok(
        &[
            "datanet",
            "create",
            "--from-json",
            &data("unix-shell/datanet.json"),
            "--bond",
            "1",
            "--daily-files",
            "2",
            "--dev-account",
            "0",
        ],
        true,
    )["id"]
        .as_u64()
        .unwrap()
        .to_string();
    let tmp = e._dir.path();
    let blobs0 = e.blobs();
    let bal0 = e.balance(4);
    let write = |name: &str, bytes: &[u8]| {
        let p = tmp.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    // Wrong type, invalid UTF-8, empty file, oversize file.
    let cases = [
        (write("notes.pdf", b"%PDF-1.4"), "unsupported"),
        (write("bad.txt", b"fine line\n\xff\xfe broken"), "UTF-8"),
        (write("empty.txt", b""), "empty"),
        (write("big.txt", &vec![b'a'; 6_000_000]), "at most 5000000 bytes"),
    ];
    for (f, want) in &cases {
        let out = e.fail(&["contribute", f, "--datanet", &id, "--dev-account", "4"], true);
        assert!(out.to_lowercase().contains(&want.to_lowercase()), "{f}: wanted {want:?} in {out}");
    }
    assert_eq!(e.blobs(), blobs0, "a refused upload stores nothing");
    assert_eq!(e.balance(4), bal0, "a refused upload costs nothing");
    // Unattested and forged attestations are refused on-chain.
    let ok = e.ok(
        &["contribute", &data("unix-shell/contributor-1.jsonl"), "--datanet", &id, "--dev-account", "4", "--dry-run"],
        true,
    );
    let calldata: primitives::Bytes = ok["calldata"].as_str().unwrap().parse().unwrap();
    let mut forged = calldata.to_vec();
    let n = forged.len();
    forged[n - 40] ^= 1; // inside the signature
    let r = send_raw_call(&e, 4, &forged, primitives::ONE_OPEN);
    assert!(!r.status());
    // Rate limit: 2 files per contributor per day on this Datanet.
    e.ok(&["contribute", &data("unix-shell/contributor-1.jsonl"), "--datanet", &id, "--dev-account", "4"], true);
    e.ok(&["contribute", &data("unix-shell/contributor-2.jsonl"), "--datanet", &id, "--dev-account", "4"], true);
    let out =
        e.fail(&["contribute", &data("unix-shell/contributor-4.md"), "--datanet", &id, "--dev-account", "4"], true);
    assert!(out.contains("LimitExceeded"), "{out}");
    // Approval by a non-curator, double approval, withdrawal after approval; withdrawal before review returns the bond.
    let cs = e.ok(&["datanet", "contributions", &id], false);
    let c1 = cs[0]["id"].as_u64().unwrap().to_string();
    let c2 = cs[1]["id"].as_u64().unwrap().to_string();
    assert!(e.fail(&["curate", "approve", &c1, "--dev-account", "5"], false).contains("NotCurator"));
    e.ok(&["curate", "approve", &c1, "--dev-account", "0"], false);
    assert!(e.fail(&["curate", "approve", &c1, "--dev-account", "0"], false).contains("NotPending"));
    let b = e.balance(4);
    let w = e.ok(&["gov", "call", &format!("datanets.withdraw {c2}"), "--dev-account", "4"], false);
    let fee = e.node.client().receipt(&w["hash"].as_str().unwrap().parse().unwrap()).unwrap().unwrap();
    let paid = u128::from(fee.gas_used) * fee.effective_gas_price;
    assert_eq!(e.balance(4), b + primitives::ONE_OPEN - paid, "withdrawal before review returns the whole bond");
    assert!(
        e.fail(&["gov", "call", &format!("datanets.withdraw {c1}"), "--dev-account", "4"], false)
            .contains("NotPending")
    );
    // An allow-list Datanet refuses outsiders before storing anything.
    let spec = tmp.join("closed.json");
    std::fs::write(&spec, r#"{"name":"closed","licence":"CC0-1.0","policy":"allow-list"}"#).unwrap();
    let closed = e.ok(&["datanet", "create", "--from-json", spec.to_str().unwrap(), "--dev-account", "0"], true)["id"]
        .as_u64()
        .unwrap()
        .to_string();
    let blobs1 = e.blobs();
    let out = e
        .fail(&["contribute", &data("unix-shell/contributor-3.csv"), "--datanet", &closed, "--dev-account", "6"], true);
    assert!(out.contains("not a member"), "{out}");
    assert_eq!(e.blobs(), blobs1);
    // A member contributes; its blobs are readable by members and the owner, not by
    // outsiders (refused as if missing: 404).
    let outsider =
        e.fail(&["datanet", "members", &closed, "--add", &dev(6).address().to_string(), "--dev-account", "6"], false);
    assert!(outsider.contains("NotOwner"), "{outsider}");
    e.ok(&["datanet", "members", &closed, "--add", &dev(6).address().to_string(), "--dev-account", "0"], false);
    let c =
        e.ok(&["contribute", &data("unix-shell/contributor-3.csv"), "--datanet", &closed, "--dev-account", "6"], true);
    assert!(c["contribution"].as_u64().is_some());
    let rows_blob = c["report"]["rowsBlob"].as_str().unwrap().to_string();
    assert_eq!(blob_status(&e.node.http, &rows_blob, None), 404, "anonymous");
    assert_eq!(blob_status(&e.node.http, &rows_blob, Some(7)), 404, "outsider");
    assert_eq!(blob_status(&e.node.http, &rows_blob, Some(6)), 200, "member");
    assert_eq!(blob_status(&e.node.http, &rows_blob, Some(0)), 200, "owner");
    // After a restart the node places every contribution's blobs again before serving them.
    let data_dir = e.node.data_dir.clone();
    let Env { node, _dir } = e;
    node.kill9();
    let node = NodeProc::start(&data_dir, &["--instant"]);
    assert_eq!(blob_status(&node.http, &rows_blob, Some(7)), 404, "outsider after restart");
    assert_eq!(blob_status(&node.http, &rows_blob, None), 404, "anonymous after restart");
    let mut member = 0;
    for _ in 0..50 {
        member = blob_status(&node.http, &rows_blob, Some(6));
        if member == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100)); // the start-up sync
    }
    assert_eq!(member, 200, "member after restart");
    drop(_dir);
}

/// HTTP status of `GET /v1/blobs/{hash}`, signed by dev account `who` if any.
fn blob_status(http: &str, hash: &str, who: Option<u32>) -> u16 {
    let path = format!("/v1/blobs/{hash}");
    let mut headers = Vec::new();
    if let Some(i) = who {
        let h = keys::request::sign_request(&dev(i), &audience(http), "GET", &path, b"", keys::request::unix_now());
        headers.push((keys::request::AUTH_HEADER, h));
    }
    http_send(http, "GET", &path, &headers, b"").0
}

/// Send `data` to the datanets contract from dev account `i` with `value`, without preflight.
fn send_raw_call(e: &Env, i: u32, data: &[u8], value: u128) -> rpc::types::Receipt {
    let mut c = e.node.client();
    let k = dev(i);
    let nonce = c.nonce(&k.address(), true).unwrap();
    let raw = keys::encode_2718(&keys::sign_eip1559(
        &k,
        alloy_consensus::TxEip1559 {
            chain_id: 31337,
            nonce,
            gas_limit: 2_000_000,
            max_fee_per_gas: 20 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to: alloy_primitives::TxKind::Call(primitives::system::Module::Datanets.address()),
            value: primitives::U256::from(value),
            access_list: Default::default(),
            input: data.to_vec().into(),
        },
    ));
    let h = c.send_raw(&raw).unwrap();
    c.wait_receipt(&h, std::time::Duration::from_secs(30)).unwrap()
}

#[test]
fn a_crash_mid_upload_leaves_no_blob_and_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("chain");
    let node = NodeProc::start(&data_dir, &["--instant"]);
    let args = |a: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["--json".into()];
        v.extend(a.iter().map(|s| s.to_string()));
        v.extend(["--rpc".into(), node.rpc.clone(), "--http".into(), node.http.clone()]);
        v
    };
    let a = args(&["datanet", "create", "--name", "crash", "--licence", "CC0-1.0", "--dev-account", "0"]);
    cli_ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let blobs_before = walk(&data_dir.join("blobs"));
    // Start an upload, send half of it, and kill the node without warning.
    let path = "/v1/datanets/1/contributions";
    let content = "a useful paragraph about shell pipelines and redirection\n\n".repeat(20_000);
    let (ctype, body) = {
        let boundary = "crash-boundary";
        let mut b =
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n\r\n")
                .into_bytes();
        b.extend_from_slice(content.as_bytes());
        b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={boundary}"), b)
    };
    let auth = node.sign(&dev(1), "POST", path, &body);
    let mut s = std::net::TcpStream::connect(&node.http).unwrap();
    use std::io::Write;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{}: {auth}\r\n\
         Expect: 100-continue\r\n\r\n",
        body.len(),
        keys::request::AUTH_HEADER
    )
    .unwrap();
    s.flush().unwrap();
    // The server answers `100 Continue` when the route starts reading the body:
    // the upload was admitted and is in progress.
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        std::io::Read::read_exact(&mut s, &mut byte).expect("an interim answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 100"), "the upload was not taken: {head}");
    s.write_all(&body[..body.len() / 2]).unwrap();
    s.flush().unwrap();
    node.kill9();
    drop(s);
    // Restart: nothing of the upload is visible, on disk or on chain.
    let node = NodeProc::start(&data_dir, &["--instant"]);
    assert_eq!(walk(&data_dir.join("blobs")), blobs_before, "no partial blob");
    let mut c = node.client();
    let out = c
        .call("eth_call", json!([{"to": primitives::system::Module::Datanets.address(), "data": primitives::Bytes::from(alloy_sol_types::SolCall::abi_encode(&primitives::abi::IDatanets::contributionsOfCall { id: 1, offset: 0, limit: 256 }))}, "latest"]))
        .unwrap();
    let ids = <primitives::abi::IDatanets::contributionsOfCall as alloy_sol_types::SolCall>::abi_decode_returns(
        &out.as_str().unwrap().parse::<primitives::Bytes>().unwrap(),
    )
    .unwrap();
    assert!(ids.is_empty(), "no on-chain record");
}

/// A multipart body with one file field, as the CLI sends it.
fn upload_body(content: &str) -> (String, Vec<u8>) {
    let boundary = "edge-boundary";
    let mut b =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n\r\n")
            .into_bytes();
    b.extend_from_slice(content.as_bytes());
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(body)));
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

#[test]
fn signed_requests_are_bound_to_node_nonce_and_body() {
    let e = Env::start();
    e.ok(&["datanet", "create", "--name", "edge", "--licence", "CC0-1.0", "--dev-account", "0"], true);
    let path = "/v1/datanets/1/contributions";
    let (ctype, body) = upload_body("Pipes join commands.\n\nRedirection sends output to a file.\n");
    let (_, other_body) = upload_body("Pipes join commands.\n\nRedirection sends output to /dev/null.\n");
    let aud = e.node.audience();
    assert_eq!(aud.chain_id, 31337);
    let send = |auth: String, body: &[u8]| {
        http_send(
            &e.node.http,
            "POST",
            path,
            &[("Content-Type", ctype.clone()), (keys::request::AUTH_HEADER, auth)],
            body,
        )
    };
    let before = e.blobs();

    // A body other than the one signed: refused, nothing stored, nothing attested.
    let (status, resp) = send(e.node.sign(&dev(1), "POST", path, &body), &other_body);
    assert_eq!((status, error_code(&resp).as_str()), (401, "body_hash_mismatch"), "{}", String::from_utf8_lossy(&resp));
    assert!(!String::from_utf8_lossy(&resp).contains("attestation"));
    // Signed for another chain, or another node.
    let now = keys::request::unix_now();
    let for_chain =
        keys::request::sign_request(&dev(1), &keys::request::Audience { chain_id: 1, ..aud }, "POST", path, &body, now);
    let (status, resp) = send(for_chain, &body);
    assert_eq!((status, error_code(&resp).as_str()), (401, "wrong_chain"));
    let elsewhere = keys::request::Audience { node: primitives::Address::repeat_byte(0x5a), ..aud };
    let (status, resp) = send(keys::request::sign_request(&dev(1), &elsewhere, "POST", path, &body, now), &body);
    assert_eq!((status, error_code(&resp).as_str()), (401, "wrong_node"));
    // The old header format gets a clear error, not a bad-signature puzzle.
    let v1_message = format!("OpenLedger request\nPOST {path}\n{now}\n-");
    let v1 = format!(
        "{}:{now}:0x{}",
        dev(1).address(),
        alloy_primitives::hex::encode(dev(1).sign_message(v1_message.as_bytes()).as_bytes())
    );
    let (status, resp) = send(v1, &body);
    assert_eq!((status, error_code(&resp).as_str()), (401, "unsupported_auth_version"));
    assert!(String::from_utf8_lossy(&resp).contains("v2"));
    assert_eq!(e.blobs(), before, "no refused upload stored anything");

    // The good upload works; the same header again is a replay.
    let good = e.node.sign(&dev(1), "POST", path, &body);
    let (status, resp) = send(good.clone(), &body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
    let r: Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(r["attestation"]["contributor"].as_str().unwrap().to_lowercase(), format!("{:#x}", dev(1).address()));
    let stored = e.blobs();
    assert!(stored > before);
    let (status, resp) = send(good.clone(), &body);
    assert_eq!((status, error_code(&resp).as_str()), (401, "replayed_request"));

    // A header one node accepted is refused by another node of the same chain.
    let other = Env::start();
    other.ok(&["datanet", "create", "--name", "edge", "--licence", "CC0-1.0", "--dev-account", "0"], true);
    assert_ne!(other.node.audience().node, aud.node);
    let (status, resp) = http_send(
        &other.node.http,
        "POST",
        path,
        &[("Content-Type", ctype.clone()), (keys::request::AUTH_HEADER, good)],
        &body,
    );
    assert_eq!((status, error_code(&resp).as_str()), (401, "wrong_node"));
    assert_eq!(e.blobs(), stored);
}

#[test]
fn a_large_upload_is_checked_against_its_signed_hash_before_anything_is_stored() {
    // Bodies above the 8 MB the server checks up front reach the ingest route as
    // a stream; raise the governed submission limit so one gets that far.
    let e = Env::start();
    let p = e.ok(
        &[
            "gov",
            "propose",
            "--description",
            "large uploads",
            "--call",
            "params.set datanets.max_submission_bytes 16000000",
            "--dev-account",
            "0",
        ],
        false,
    );
    let pid = p["id"].as_u64().unwrap().to_string();
    e.node.advance_to(p["voteStart"].as_u64().unwrap());
    e.ok(&["gov", "vote", &pid, "for", "--dev-account", "0"], false);
    e.node.advance_to(p["voteEnd"].as_u64().unwrap() + 2);
    assert_eq!(e.ok(&["gov", "execute", &pid, "--dev-account", "0"], false)["status"], "0x1");
    e.ok(&["datanet", "create", "--name", "big", "--licence", "CC0-1.0", "--dev-account", "0"], true);

    let path = "/v1/datanets/1/contributions";
    let paragraph = "Pipes join commands; redirection sends output to a file.\n\n";
    let (ctype, body) = upload_body(&paragraph.repeat(9_000_000 / paragraph.len()));
    assert!(body.len() > 8 * 1024 * 1024);
    let mut tampered = body.clone();
    let at = tampered.len() - 100; // near the end: only the end of the stream can tell
    tampered[at] = b'X';
    let before = e.blobs();
    let (status, resp) = http_send(
        &e.node.http,
        "POST",
        path,
        &[("Content-Type", ctype), (keys::request::AUTH_HEADER, e.node.sign(&dev(1), "POST", path, &body))],
        &tampered,
    );
    assert_eq!((status, error_code(&resp).as_str()), (401, "body_hash_mismatch"), "{}", String::from_utf8_lossy(&resp));
    assert_eq!(e.blobs(), before, "nothing stored from a body that was not signed");
}

#[test]
fn contributors_past_their_daily_quota_on_this_node_are_refused_before_anything_is_stored() {
    // Two uploads or 1,500 bytes per contributor per UTC day on this node.
    let e = Env::start_with(&["--ingest-daily-files", "2", "--ingest-daily-bytes", "1500"]);
    e.ok(&["datanet", "create", "--name", "quota", "--licence", "CC0-1.0", "--dev-account", "0"], true);
    e.ok(&["datanet", "create", "--name", "other", "--licence", "CC0-1.0", "--dev-account", "0"], true);
    let upload = |who: u32, datanet: u32, content: &str| {
        let path = format!("/v1/datanets/{datanet}/contributions");
        let (ctype, body) = upload_body(content);
        let auth = e.node.sign(&dev(who), "POST", &path, &body);
        let (status, resp) = http_send(
            &e.node.http,
            "POST",
            &path,
            &[("Content-Type", ctype), (keys::request::AUTH_HEADER, auth)],
            &body,
        );
        (status, String::from_utf8_lossy(&resp).into_owned())
    };
    let refused = |(status, resp): (u16, String), code: &str, limit: &str| {
        assert_eq!((status, error_code(resp.as_bytes()).as_str()), (429, code), "{resp}");
        let v: Value = serde_json::from_str(&resp).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(limit) && msg.contains("per UTC day") && msg.contains("resets at 00:00 UTC"), "{msg}");
        assert!(!resp.contains("attestation"));
    };

    // Files: two uploads (to two Datanets: the quota is the node's), then 429.
    assert_eq!(upload(1, 1, "Pipes join commands.\n\nRedirection sends output to a file.\n").0, 200);
    assert_eq!(upload(1, 2, "Globs expand to file names.\n\nQuotes keep words together.\n").0, 200);
    let before = e.blobs();
    refused(
        upload(1, 1, "Aliases shorten long commands.\n\nFunctions group them.\n"),
        "daily_files_quota",
        "of its 2 uploads",
    );
    assert_eq!(e.blobs(), before, "nothing stored for a refused upload");

    // Bytes: ~1,000 bytes go in; another ~1,000 would pass 1,500 and is refused by its length.
    let text = |topic: &str| format!("{topic} {}\n", "is a shell feature worth a paragraph of notes. ".repeat(20));
    assert_eq!(upload(2, 1, &text("Job control")).0, 200);
    let before = e.blobs();
    refused(upload(2, 1, &text("Here documents")), "daily_bytes_quota", "of its 1500 bytes per UTC day");
    assert_eq!(e.blobs(), before, "nothing stored for a refused upload");

    // Another contributor is unaffected.
    let (status, resp) = upload(3, 1, &text("Here documents"));
    assert_eq!(status, 200, "{resp}");
    assert!(e.blobs() > before);
}
