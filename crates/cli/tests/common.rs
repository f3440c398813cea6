//! Starting and stopping a real `openledger` process for end-to-end tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use alloy_consensus::TxEip1559;
use alloy_primitives::TxKind;
use keys::SecretKey;
use primitives::{Address, B256, Bytes, U256};
use rpc::client::RpcClient;

pub const GWEI: u128 = 1_000_000_000;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_openledger"))
}

/// A node process; killed on drop.
pub struct NodeProc {
    pub child: Child,
    pub rpc: String,
    /// The HTTP API's address.
    pub http: String,
    pub data_dir: PathBuf,
}

impl NodeProc {
    /// `openledger up --no-serve` on ports the operating system picks
    /// (`127.0.0.1:0`), read back from the node's endpoints file: no two tests
    /// can race for a port. Without serving, the dev node sends no setup
    /// transactions of its own, so tests own every nonce.
    pub fn start(data_dir: &Path, extra: &[&str]) -> NodeProc {
        let mut all = vec!["--no-serve"];
        all.extend_from_slice(extra);
        Self::start_up(data_dir, &all)
    }

    /// `openledger up` serving models (OpenLoRA, the dev escrow and API key).
    pub fn start_serving(data_dir: &Path, extra: &[&str]) -> NodeProc {
        Self::start_up(data_dir, extra)
    }

    fn start_up(data_dir: &Path, extra: &[&str]) -> NodeProc {
        let _ = std::fs::remove_file(data_dir.join(node::ENDPOINTS_FILE));
        let mut cmd = Command::new(bin());
        cmd.args(["up", "--quiet", "--data-dir"])
            .arg(data_dir)
            .args(["--rpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(extra);
        cmd.env("RUST_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::inherit());
        let child = cmd.spawn().expect("spawn openledger");
        Self::attach(child, data_dir)
    }

    /// Wait until `child`, a node using `data_dir`, has written its endpoints and
    /// answers JSON-RPC; fail at once if it exits.
    pub fn attach(mut child: Child, data_dir: &Path) -> NodeProc {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("node exited before answering: {status}");
            }
            if let Some(ep) = node::Endpoints::read(data_dir) {
                let rpc = ep.rpc.to_string();
                let http = ep.http.map(|a| a.to_string()).unwrap_or_default();
                let node = NodeProc { child, rpc: rpc.clone(), http, data_dir: data_dir.to_path_buf() };
                let mut c = RpcClient::new(&rpc);
                while Instant::now() < deadline {
                    if c.chain_id().is_ok() {
                        return node;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                panic!("node did not answer on {rpc}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("node wrote no endpoints in {}", data_dir.display());
    }

    pub fn client(&self) -> RpcClient {
        RpcClient::new(&self.rpc)
    }

    /// Seal blocks (instant mode) with 1-wei transfers of dev account 9 until the head reaches `h`.
    pub fn advance_to(&self, h: u64) {
        let mut c = self.client();
        let k = dev(9);
        while c.block_number().unwrap() < h {
            let n = c.nonce(&k.address(), true).unwrap();
            let hash = c.send_raw(&signed(&k, n, dev(8).address(), 1, vec![], 21_000)).unwrap();
            while c.receipt(&hash).unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// `GET path` on the node's HTTP API: (status, body bytes).
    pub fn http_get(&self, path: &str) -> (u16, Vec<u8>) {
        http_send(&self.http, "GET", path, &[], b"")
    }

    /// `GET path` with extra headers (`(name, value)`): (status, body bytes).
    pub fn http_get_with(&self, path: &str, headers: &[(&str, String)]) -> (u16, Vec<u8>) {
        http_send(&self.http, "GET", path, headers, b"")
    }

    /// What signed requests to this node must name (`GET /v1/node/auth`).
    pub fn audience(&self) -> keys::request::Audience {
        audience(&self.http)
    }

    /// An `X-OpenLedger-Auth` value signed by `key` for this node (fresh nonce).
    pub fn sign(&self, key: &SecretKey, method: &str, path: &str, body: &[u8]) -> String {
        keys::request::sign_request(key, &self.audience(), method, path, body, keys::request::unix_now())
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        unsafe_term(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_term(pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn dev(i: u32) -> SecretKey {
    keys::derive_account(keys::DEV_MNEMONIC, i).unwrap()
}

pub fn signed(k: &SecretKey, nonce: u64, to: Address, value: u128, input: Vec<u8>, gas: u64) -> Vec<u8> {
    signed_kind(k, nonce, TxKind::Call(to), value, input, gas)
}

/// [`signed`] to any target: `TxKind::Create` deploys `input`.
pub fn signed_kind(k: &SecretKey, nonce: u64, to: TxKind, value: u128, input: Vec<u8>, gas: u64) -> Vec<u8> {
    keys::encode_2718(&keys::sign_eip1559(
        k,
        TxEip1559 {
            chain_id: 31337,
            nonce,
            gas_limit: gas,
            max_fee_per_gas: 20 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to,
            value: U256::from(value),
            access_list: Default::default(),
            input: Bytes::from(input),
        },
    ))
}

/// Run the CLI and return its output.
pub fn cli(args: &[&str]) -> Output {
    Command::new(bin()).args(args).env("RUST_LOG", "warn").output().expect("run openledger")
}

pub fn cli_ok(args: &[&str]) -> String {
    let o = cli(args);
    assert!(
        o.status.success(),
        "openledger {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

pub fn hex_u(v: &serde_json::Value) -> u128 {
    u128::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// One request to the HTTP API at `http` over the workspace's HTTP client:
/// (status, body bytes; chunked answers undone).
pub fn http_send(http: &str, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, Vec<u8>) {
    let r = rpc::http::HttpClient::new(http).request(method, path, headers, body).unwrap();
    (r.status, r.body)
}

/// What signed requests to the node whose HTTP API is at `http` must name.
pub fn audience(http: &str) -> keys::request::Audience {
    let (status, body) = http_send(http, "GET", "/v1/node/auth", &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["version"], "v2");
    keys::request::Audience {
        chain_id: v["chainId"].as_u64().unwrap(),
        node: v["node"].as_str().unwrap().parse().unwrap(),
    }
}

/// A serving dev node (`up` with OpenLoRA) and its dev API key, driven
/// through the CLI (`--json`).
pub struct ServingEnv {
    pub node: NodeProc,
    pub key: String,
    _dir: tempfile::TempDir,
}

impl ServingEnv {
    pub fn start() -> ServingEnv {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("chain");
        let node = NodeProc::start_serving(&data, &["--instant"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        let key = loop {
            if let Ok(k) = std::fs::read_to_string(data.join("dev-api-key")) {
                break k.trim().to_string();
            }
            assert!(Instant::now() < deadline, "no dev API key written");
            std::thread::sleep(Duration::from_millis(50));
        };
        ServingEnv { node, key, _dir: dir }
    }
    pub fn run(&self, a: &[&str], rpc: bool, http: bool) -> std::process::Output {
        let mut v: Vec<String> = vec!["--json".into()];
        v.extend(a.iter().map(|s| s.to_string()));
        if rpc {
            v.extend(["--rpc".into(), self.node.rpc.clone()]);
        }
        if http {
            v.extend(["--http".into(), self.node.http.clone()]);
        }
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        cli(&refs)
    }
    pub fn ok(&self, a: &[&str], rpc: bool, http: bool) -> serde_json::Value {
        let o = self.run(a, rpc, http);
        assert!(
            o.status.success(),
            "openledger {a:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }
    pub fn fail(&self, a: &[&str], rpc: bool, http: bool) -> String {
        let o = self.run(a, rpc, http);
        assert!(!o.status.success(), "openledger {a:?} should fail: {}", String::from_utf8_lossy(&o.stdout));
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    }
    /// A Datanet of `rows` (one contribution per row, by dev accounts 1, 2, ...), all approved.
    /// Ask `chat` until its answer quotes a retrieved row of Datanet `dn`
    /// (retrieval credits in its attribution summary): while it quotes none,
    /// its text becomes a row (contributed by dev accounts 5, 6, 7 and
    /// approved by account 0) and the question is asked again. The answer,
    /// and the contributions made on the way.
    pub fn until_an_answer_quotes_a_row(
        &self,
        dn: &str,
        mut a: serde_json::Value,
        chat: impl Fn() -> serde_json::Value,
    ) -> (serde_json::Value, Vec<u64>) {
        let mut made = vec![];
        for round in 0..3u32 {
            if a["attribution"]["retrieval"]["credits"].as_array().is_some_and(|c| !c.is_empty()) {
                break;
            }
            assert!(round < 2, "no answer quoted a retrieved row: {a}");
            let file = self.dir().join(format!("answer-{round}.txt"));
            std::fs::write(&file, a["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
            let who = (5 + round).to_string();
            let c =
                self.ok(&["contribute", file.to_str().unwrap(), "--datanet", dn, "--dev-account", &who], true, true);
            let cid = c["contribution"].as_u64().unwrap();
            self.ok(&["curate", "approve", &cid.to_string(), "--dev-account", "0"], true, false);
            made.push(cid);
            a = chat();
        }
        (a, made)
    }

    pub fn datanet(&self, name: &str, policy: &str, rows: &[&str]) -> (String, Vec<u64>) {
        let spec = self.dir().join(format!("{name}.json"));
        std::fs::write(&spec, serde_json::json!({"name": name, "licence": "CC0-1.0", "policy": policy}).to_string())
            .unwrap();
        let d =
            self.ok(&["datanet", "create", "--from-json", spec.to_str().unwrap(), "--dev-account", "0"], true, true);
        let dn = d["id"].as_u64().unwrap().to_string();
        let mut ids = Vec::new();
        for (i, text) in rows.iter().enumerate() {
            let who = (i + 1).to_string();
            if policy != "open" {
                let member = dev(i as u32 + 1).address().to_string();
                self.ok(&["datanet", "members", &dn, "--add", &member, "--dev-account", "0"], true, false);
            }
            let file = self.dir().join(format!("{name}-{i}.txt"));
            std::fs::write(&file, text).unwrap();
            let c =
                self.ok(&["contribute", file.to_str().unwrap(), "--datanet", &dn, "--dev-account", &who], true, true);
            let cid = c["contribution"].as_u64().unwrap();
            self.ok(&["curate", "approve", &cid.to_string(), "--dev-account", "0"], true, false);
            ids.push(cid);
        }
        (dn, ids)
    }
    /// A scratch directory that lives as long as the node.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }
}

/// `train submit` of a four-step fine-tune on Datanet version `version`
/// ("D:V") by dev account 1, watched to its end: the tests' quick job.
pub fn quick_train(version: &str) -> Vec<String> {
    ["train", "submit", "--datanet", version, "--steps", "4", "--batch-size", "2", "--max-seq-len", "96"]
        .into_iter()
        .chain(["--watch", "--dev-account", "1"])
        .map(String::from)
        .collect()
}

/// A registration of a fine-tune (a made-up adapter, no Datanets, 1 base unit
/// per 1K tokens) on the base model whose hash is `base`.
pub fn adapter_registration(name: &str, base: B256) -> primitives::abi::ModelRegistration {
    primitives::abi::ModelRegistration {
        name: name.into(),
        baseModelHash: base,
        adapterHash: B256::repeat_byte(0xad),
        datanets: vec![],
        hyperparams: Bytes::from_static(b"rank=8"),
        metrics: Bytes::from_static(b"loss=1"),
        trainingLogHash: B256::repeat_byte(0x10),
        checkpointHashes: vec![],
        checkpointLearningRates: vec![],
        sketchHash: B256::ZERO,
        sketchSeed: 0,
        sketchK: 0,
        priceInPer1k: 1,
        priceOutPer1k: 1,
    }
}
