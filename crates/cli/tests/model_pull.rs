//! `openledger model pull` against a loopback server that speaks the Hugging
//! Face hub's file API (the metadata endpoint, `resolve` with its headers and a
//! redirect to a "CDN" for LFS files, Range requests), serving the committed
//! `models/base` as repository `test/tiny`; then `--base-model hf:test/tiny`.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use common::*;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use sha1::Digest as _;

const REPO: &str = "test/tiny";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// How the fake hub misbehaves for one file.
#[derive(Clone, Debug)]
enum Fault {
    /// Send this many bytes of the body, then drop the connection (once).
    CutAfter(usize),
    /// Send the file with one byte changed.
    Corrupt,
    /// Send bytes for ever, with no Content-Length.
    Endless,
    /// Announce a Content-Length larger than the file.
    Oversized,
}

struct HubFile {
    bytes: Vec<u8>,
    /// sha256 for LFS files, else None (a file kept in git).
    lfs: Option<String>,
    git_sha1: String,
}

#[derive(Default)]
struct Hub {
    files: Vec<(String, HubFile)>,
    faults: HashMap<String, Fault>,
    /// (path, Range header) of every request.
    log: Vec<(String, Option<String>)>,
}

type Shared = Arc<Mutex<Hub>>;

fn repo_path(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

fn git_sha1(b: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", b.len()).as_bytes());
    h.update(b);
    hex::encode(h.finalize())
}

fn sha256(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

impl Hub {
    /// models/base as it would sit on the hub: the weights in LFS, the rest in git.
    fn tiny() -> Hub {
        let mut files = Vec::new();
        for name in [
            "README.md",
            "bootstrap.json",
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
        ] {
            let bytes = std::fs::read(repo_path("models/base").join(name)).unwrap();
            let lfs = name.ends_with(".safetensors").then(|| sha256(&bytes));
            files.push((name.to_string(), HubFile { git_sha1: git_sha1(&bytes), lfs, bytes }));
        }
        Hub { files, ..Default::default() }
    }

    fn file(&self, name: &str) -> Option<&HubFile> {
        self.files.iter().find(|(n, _)| n == name).map(|(_, f)| f)
    }

    fn metadata(&self) -> Value {
        let siblings: Vec<Value> = self
            .files
            .iter()
            .map(|(n, f)| match &f.lfs {
                Some(sha) => json!({"rfilename": n, "size": f.bytes.len(), "blobId": f.git_sha1,
                                    "lfs": {"sha256": sha, "size": f.bytes.len(), "pointerSize": 132}}),
                None => json!({"rfilename": n, "size": f.bytes.len(), "blobId": f.git_sha1}),
            })
            .collect();
        json!({"id": REPO, "modelId": REPO, "sha": COMMIT, "siblings": siblings})
    }
}

fn status(code: StatusCode, headers: &[(&str, String)]) -> Response {
    let mut r = Response::builder().status(code);
    for (k, v) in headers {
        r = r.header(*k, v.as_str());
    }
    r.body(Body::empty()).unwrap()
}

/// The body of `name` from the Range in `headers`, with the fault set for it.
fn serve_bytes(hub: &mut Hub, name: &str, headers: &HeaderMap, mut extra: Vec<(&'static str, String)>) -> Response {
    let fault = hub.faults.get(name).cloned();
    if let Some(Fault::CutAfter(_)) = fault {
        hub.faults.remove(name); // only once
    }
    let mut bytes = hub.file(name).unwrap().bytes.clone();
    if let Some(Fault::Corrupt) = fault {
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
    }
    let total = bytes.len();
    let from = headers
        .get(header::RANGE)
        .and_then(|r| r.to_str().ok()?.strip_prefix("bytes=")?.strip_suffix('-')?.parse::<usize>().ok());
    let (code, body) = match from {
        Some(f) if f >= total => return status(StatusCode::RANGE_NOT_SATISFIABLE, &[]),
        Some(f) => {
            extra.push(("content-range", format!("bytes {f}-{}/{total}", total - 1)));
            (StatusCode::PARTIAL_CONTENT, bytes[f..].to_vec())
        }
        None => (StatusCode::OK, bytes),
    };
    let mut r = Response::builder().status(code);
    for (k, v) in &extra {
        r = r.header(*k, v.as_str());
    }
    let len = body.len();
    let body = match fault {
        Some(Fault::CutAfter(n)) => {
            let first = body[..n.min(len)].to_vec();
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                vec![Ok(first), Err(std::io::Error::other("connection cut by the test"))];
            r = r.header(header::CONTENT_LENGTH, len);
            Body::from_stream(futures_util::stream::iter(chunks))
        }
        Some(Fault::Endless) => {
            Body::from_stream(futures_util::stream::repeat_with(|| Ok::<_, std::io::Error>(vec![b'x'; 64 * 1024])))
        }
        Some(Fault::Oversized) => {
            // The whole file, then a connection kept open for the bytes announced.
            r = r.header(header::CONTENT_LENGTH, len + 1000);
            let rest = futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>();
            Body::from_stream(futures_util::stream::iter(vec![Ok(body)]).chain(rest))
        }
        _ => Body::from(body),
    };
    r.body(body).unwrap()
}

async fn handle(State(hub): State<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let mut hub = hub.lock().unwrap();
    let range = req.headers().get(header::RANGE).and_then(|r| r.to_str().ok()).map(str::to_string);
    hub.log.push((path.clone(), range));
    let not_found = |code: &str| {
        status(
            StatusCode::NOT_FOUND,
            &[("x-error-code", code.into()), ("x-error-message", "Repository not found".into())],
        )
    };
    if let Some(rest) = path.strip_prefix("/api/models/") {
        return match rest.strip_prefix(REPO).and_then(|r| r.strip_prefix("/revision/")) {
            Some("main") => Response::new(Body::from(hub.metadata().to_string())),
            Some(_) => not_found("RevisionNotFound"),
            None => not_found("RepoNotFound"),
        };
    }
    if let Some(name) = path.strip_prefix("/cdn/") {
        return serve_bytes(&mut hub, name, req.headers(), vec![]);
    }
    let Some(name) = path.strip_prefix(&format!("/{REPO}/resolve/{COMMIT}/")) else {
        return not_found("EntryNotFound");
    };
    let Some(f) = hub.file(name) else { return not_found("EntryNotFound") };
    let mut headers = vec![("x-repo-commit", COMMIT.to_string())];
    match &f.lfs {
        // As the hub does for LFS files: the metadata in headers, the bytes from the CDN.
        Some(sha) => {
            headers.push(("x-linked-etag", format!("\"{sha}\"")));
            headers.push(("x-linked-size", f.bytes.len().to_string()));
            headers.push(("location", format!("/cdn/{name}")));
            status(StatusCode::FOUND, &headers)
        }
        None => {
            headers.push(("etag", format!("\"{}\"", f.git_sha1)));
            serve_bytes(&mut hub, name, req.headers(), headers)
        }
    }
}

/// The fake hub on a loopback port, serving until the test ends.
fn start_hub() -> (String, Shared) {
    let hub: Shared = Arc::new(Mutex::new(Hub::tiny()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(handle).with_state(hub.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    (format!("http://{addr}"), hub)
}

struct Env {
    endpoint: String,
    hub: Shared,
    home: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let (endpoint, hub) = start_hub();
        Env { endpoint, hub, home: tempfile::tempdir().unwrap() }
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args).env("HF_HOME", self.home.path()).env("HF_ENDPOINT", &self.endpoint).env("RUST_LOG", "warn");
        c.env_remove("HF_HUB_CACHE");
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    fn pull(&self) -> Result<Value, String> {
        let o = self.run(&["--json", "model", "pull", REPO]);
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        if o.status.success() { Ok(serde_json::from_slice(&o.stdout).unwrap()) } else { Err(text) }
    }
    fn repo_dir(&self) -> PathBuf {
        self.home.path().join("hub/models--test--tiny")
    }
    fn set_fault(&self, file: &str, f: Fault) {
        self.hub.lock().unwrap().faults.insert(file.into(), f);
    }
    fn clear_faults(&self) {
        self.hub.lock().unwrap().faults.clear();
    }
    fn file_requests(&self) -> Vec<(String, Option<String>)> {
        self.hub.lock().unwrap().log.iter().filter(|(p, _)| !p.starts_with("/api/")).cloned().collect()
    }
    fn sha256_of_weights(&self) -> String {
        self.hub.lock().unwrap().file("model.safetensors").unwrap().lfs.clone().unwrap()
    }
}

fn file<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {report}"))
}

fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(d) => d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => vec![],
    };
    v.sort();
    v
}

#[test]
fn pull_lays_out_the_cache_then_is_a_no_op_and_the_node_uses_it() {
    let e = Env::new();
    // Before a pull, hf: names nothing, and says what to do; nothing was downloaded.
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    let o = e.run(&["up", "--quiet", "--data-dir", chain.to_str().unwrap(), "--base-model", "hf:test/tiny"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("run `openledger model pull test/tiny` first"), "{err}");
    assert!(!chain.exists(), "a refused start writes nothing");
    assert!(e.hub.lock().unwrap().log.is_empty(), "resolving hf: never touches the network");

    let r = e.pull().unwrap();
    assert_eq!(r["commit"], COMMIT);
    let names: Vec<&str> = r["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"],
        "only what a model needs"
    );
    let repo = e.repo_dir();
    assert_eq!(std::fs::read_to_string(repo.join("refs/main")).unwrap(), COMMIT);
    let snap = repo.join("snapshots").join(COMMIT);
    assert_eq!(PathBuf::from(r["path"].as_str().unwrap()), snap);
    let weights = e.sha256_of_weights();
    assert!(ls(&repo.join("blobs")).contains(&weights), "LFS blobs are named by sha256");
    let config_blob = git_sha1(&std::fs::read(repo_path("models/base/config.json")).unwrap());
    assert!(ls(&repo.join("blobs")).contains(&config_blob), "git files by their blob sha1");
    for name in names {
        let link = std::fs::read_link(snap.join(name)).unwrap();
        assert!(link.starts_with("../../blobs"), "{name} -> {}", link.display());
        assert_eq!(
            std::fs::read(snap.join(name)).unwrap(),
            std::fs::read(repo_path("models/base").join(name)).unwrap()
        );
    }
    // The weights came from the CDN the hub redirected to.
    assert!(e.file_requests().iter().any(|(p, _)| p == "/cdn/model.safetensors"));

    // Again: nothing is fetched.
    let before = e.file_requests().len();
    let again = e.pull().unwrap();
    assert_eq!(again["downloadedBytes"], 0, "{again}");
    assert_eq!(e.file_requests().len(), before, "a second pull downloads nothing");
    let o = e.run(&["model", "pull", REPO]);
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(stderr.contains("model.safetensors: in the cache"), "{stderr}");
    assert!(stdout.contains("nothing downloaded") && stdout.contains("--base-model hf:test/tiny"), "{stdout}");

    // The node starts on it (serving loads the base model at start), and a chat
    // with m1 from the cache passes the check that its hash is m1's base hash.
    let child = e
        .cmd(&["up", "--quiet", "--instant", "--data-dir", chain.to_str().unwrap(), "--base-model", "hf:test/tiny"])
        .args(["--rpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let node = NodeProc::attach(child, &chain);
    let o = e.run(&[
        "--json",
        "chat",
        "m1",
        "--base",
        "hf:test/tiny",
        "--prompt",
        "In the beginning",
        "--max-tokens",
        "4",
        "--rpc",
        &node.rpc,
        "--http",
        &node.http,
    ]);
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    node.stop();
}

#[test]
fn an_interrupted_download_resumes_with_a_range_request() {
    let e = Env::new();
    e.set_fault("model.safetensors", Fault::CutAfter(1 << 20));
    let err = e.pull().unwrap_err();
    assert!(err.contains("model.safetensors") && err.contains("run the pull again to resume"), "{err}");
    let part = e.repo_dir().join("blobs").join(format!("{}.incomplete", e.sha256_of_weights()));
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0, "the bytes received are kept");
    assert!(!e.repo_dir().join("refs/main").exists(), "an unfinished pull names no snapshot");

    let r = e.pull().unwrap();
    let w = file(&r, "model.safetensors");
    let size = w["size"].as_u64().unwrap();
    assert_eq!(w["resumedFrom"], kept, "{r}");
    assert_eq!(w["downloaded"].as_u64().unwrap(), size - kept);
    assert!(
        e.file_requests().contains(&("/cdn/model.safetensors".into(), Some(format!("bytes={kept}-")))),
        "{:?}",
        e.file_requests()
    );
    assert!(!part.exists());
    let snap = e.repo_dir().join("snapshots").join(COMMIT);
    assert_eq!(
        std::fs::read(snap.join("model.safetensors")).unwrap(),
        std::fs::read(repo_path("models/base/model.safetensors")).unwrap()
    );
}

#[test]
fn a_corrupt_file_is_refused_and_left_nowhere() {
    let e = Env::new();
    e.set_fault("model.safetensors", Fault::Corrupt);
    let err = e.pull().unwrap_err();
    assert!(err.contains("model.safetensors: sha256 of the download is"), "{err}");
    assert!(err.contains(&e.sha256_of_weights()) && err.contains("discarded"), "{err}");
    let blobs = ls(&e.repo_dir().join("blobs"));
    assert!(blobs.iter().all(|b| !b.starts_with(&e.sha256_of_weights())), "{blobs:?}");
    assert!(!e.repo_dir().join("snapshots").join(COMMIT).join("model.safetensors").exists());
    // A good copy later goes in as usual.
    e.clear_faults();
    e.pull().unwrap();

    // A git file's blob sha1 is checked too.
    let e = Env::new();
    e.set_fault("tokenizer.json", Fault::Corrupt);
    let err = e.pull().unwrap_err();
    assert!(err.contains("tokenizer.json: the git blob sha1 of the download is"), "{err}");
}

#[test]
fn answers_are_bounded_by_the_metadata() {
    let e = Env::new();
    e.set_fault("config.json", Fault::Endless);
    let err = e.pull().unwrap_err();
    assert!(err.contains("config.json") && err.contains("sent more than"), "{err}");
    e.set_fault("config.json", Fault::Oversized);
    let err = e.pull().unwrap_err();
    assert!(err.contains("config.json") && err.contains("announced"), "{err}");
    let config_blob = git_sha1(&std::fs::read(repo_path("models/base/config.json")).unwrap());
    assert!(!ls(&e.repo_dir().join("blobs")).contains(&config_blob), "nothing unchecked enters the cache");
}

#[test]
fn missing_repositories_and_files_are_named() {
    let e = Env::new();
    let o = e.run(&["model", "pull", "test/absent"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("no model repository test/absent at"), "{err}");
    let o = e.run(&["model", "pull", REPO, "--revision", "v9"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("has no revision \"v9\""));
    let o = e.run(&["model", "pull", REPO, "--file", "model-q8.gguf"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("test/tiny has no file \"model-q8.gguf\""));
    let o = e.run(&["model", "pull", "SmolLM2"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("a model repository is ORG/NAME"));
    let o = e.run(&["model", "pull", "../etc"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("ORG and NAME are letters, digits"));
    // One file on its own, resolved as hf:ORG/NAME/FILE.
    let o = e.run(&["--json", "model", "pull", REPO, "--file", "config.json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["spec"], "hf:test/tiny/config.json");
    assert!(r["path"].as_str().unwrap().ends_with(&format!("snapshots/{COMMIT}/config.json")));
}
