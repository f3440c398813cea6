//! `model pull`: download the files a model needs from the hub into the cache.
//!
//! One request for the metadata (`GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true`:
//! the commit, and every file's size and hash: sha256 for LFS files, the git
//! blob sha1 otherwise), then for each file missing from `blobs/` one
//! `GET {endpoint}/{repo}/resolve/{commit}/{file}`, redirects followed by hand so
//! the hub's own answer (`X-Repo-Commit`, `X-Linked-Etag`/`ETag`,
//! `X-Linked-Size`) is checked against the metadata before the body is read from
//! wherever it redirects. A download goes to `blobs/<etag>.incomplete` and is
//! resumed from its length with a `Range` request; it is read up to the size
//! the metadata gives and no further, hashed, and only then renamed into
//! `blobs/` and linked from the snapshot.
//!
//! The client is ureq (the workspace's HTTP client) with rustls, not the
//! `hf-hub` crate: `hf-hub` brings reqwest/tokio or its own ureq 2 with a
//! second TLS stack, where this needs four requests' worth of protocol.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sha1::Digest as _;
use ureq::Agent;
use ureq::http::{self, Response};

use crate::HubError;
use crate::cache::{HubCache, check_relative, check_repo};

/// The hub `huggingface_hub` talks to when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Largest metadata answer read (the biggest repositories list a few MB).
const MAX_METADATA_BYTES: u64 = 32 * 1024 * 1024;
/// Redirects followed for one file (the hub sends one, to its CDN).
const MAX_REDIRECTS: usize = 5;

/// Which files of the repository to pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// What a Hugging Face model folder needs: `config.json`, the tokenizer
    /// files and the `*.safetensors` weights (with their index), top level only.
    ModelFolder,
    /// One file, e.g. a `.gguf` of several quantisations.
    File(String),
}

/// Where a pull is, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// Already in the cache: nothing to download.
    Cached { file: &'a str, size: u64 },
    /// `done` of `total` bytes are on disk (a resumed download starts above 0).
    Bytes { file: &'a str, done: u64, total: u64 },
}

/// One file of a pull.
#[derive(Clone, Debug)]
pub struct PulledFile {
    pub name: String,
    pub size: u64,
    /// The blob's name: sha256 (LFS) or git blob sha1.
    pub etag: String,
    /// Bytes fetched by this pull (0: it was in the cache already).
    pub downloaded: u64,
    /// Bytes a previous, interrupted pull had left, continued from.
    pub resumed_from: u64,
}

/// What a pull did.
#[derive(Clone, Debug)]
pub struct PullReport {
    pub repo: String,
    pub revision: String,
    pub commit: String,
    /// What `hf:REPO` now resolves to: the snapshot folder, or the chosen file in it.
    pub path: PathBuf,
    pub files: Vec<PulledFile>,
}

/// How a file's bytes are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Digest {
    /// LFS files: sha256 of the content.
    Sha256,
    /// Files in git: sha1 of `blob <len>\0<content>`.
    GitSha1,
}

/// A file of the repository as the metadata describes it.
#[derive(Clone, Debug)]
struct Sibling {
    name: String,
    size: u64,
    etag: String,
    digest: Digest,
}

#[derive(Deserialize)]
struct RepoInfo {
    sha: Option<String>,
    #[serde(default)]
    siblings: Vec<SiblingJson>,
}

#[derive(Deserialize)]
struct SiblingJson {
    rfilename: String,
    size: Option<u64>,
    #[serde(rename = "blobId")]
    blob_id: Option<String>,
    lfs: Option<LfsJson>,
}

#[derive(Deserialize)]
struct LfsJson {
    sha256: String,
    size: u64,
}

/// A client of one hub endpoint writing into one cache.
pub struct Hub {
    endpoint: String,
    cache: HubCache,
    agent: Agent,
}

impl Hub {
    /// `endpoint` is `https://host[:port]` or `http://…` (a mirror, a test server).
    pub fn new(endpoint: &str, cache: HubCache) -> Result<Hub, HubError> {
        let endpoint = endpoint.trim().trim_end_matches('/').to_string();
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(HubError::BadSpec {
                spec: endpoint,
                why: "the hub endpoint (HF_ENDPOINT) is an http:// or https:// URL".into(),
            });
        }
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let agent = Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .timeout_per_write(Some(Duration::from_secs(60)))
            .user_agent(concat!("openledger/", env!("CARGO_PKG_VERSION"), "; hf_hub-compatible"))
            .build()
            .new_agent();
        Ok(Hub { endpoint, cache, agent })
    }

    /// `$HF_ENDPOINT` (default <https://huggingface.co>) into [`HubCache::from_env`].
    pub fn from_env() -> Result<Hub, HubError> {
        let endpoint = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.trim().is_empty());
        Hub::new(endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT), HubCache::from_env())
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn cache(&self) -> &HubCache {
        &self.cache
    }

    /// Pull `what` of `repo` at `revision` into the cache. Files already there
    /// are not fetched again; an interrupted download continues where it stopped.
    pub fn pull(
        &self,
        repo: &str,
        revision: &str,
        what: &Selection,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PullReport, HubError> {
        check_repo(repo)?;
        let (commit, siblings) = self.metadata(repo, revision)?;
        let chosen = select(repo, &siblings, what)?;
        let mut files = Vec::new();
        for s in &chosen {
            files.push(self.fetch(repo, &commit, s, progress)?);
        }
        self.cache.write_ref(repo, revision, &commit)?;
        let snap = self.cache.snapshot_dir(repo, &commit);
        let path = match what {
            Selection::ModelFolder => snap,
            Selection::File(f) => snap.join(f),
        };
        Ok(PullReport { repo: repo.into(), revision: revision.into(), commit, path, files })
    }

    /// The commit `revision` is at and the repository's files.
    fn metadata(&self, repo: &str, revision: &str) -> Result<(String, Vec<Sibling>), HubError> {
        let url = format!("{}/api/models/{repo}/revision/{}?blobs=true", self.endpoint, encode(revision, false));
        let resp = self.send(&url, 0)?;
        let status = resp.status().as_u16();
        let code = header(&resp, "x-error-code").unwrap_or_default();
        let detail = header(&resp, "x-error-message").unwrap_or_default();
        let body = read_bounded(resp, MAX_METADATA_BYTES)
            .map_err(|reason| HubError::Transport { url: url.clone(), reason })?;
        match status {
            200 => {}
            404 if code == "RevisionNotFound" => {
                return Err(HubError::RevisionNotFound {
                    repo: repo.into(),
                    revision: revision.into(),
                    endpoint: self.endpoint.clone(),
                });
            }
            401 | 403 | 404 => {
                let detail =
                    if detail.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {detail}") };
                return Err(HubError::RepoNotFound { repo: repo.into(), endpoint: self.endpoint.clone(), detail });
            }
            _ => {
                let detail = if detail.is_empty() { snippet(&body) } else { detail };
                return Err(HubError::Status { url, status, detail });
            }
        }
        let meta = |why: String| HubError::Metadata { repo: repo.into(), why };
        let info: RepoInfo = serde_json::from_slice(&body).map_err(|e| meta(format!("not the hub's JSON: {e}")))?;
        let commit = info.sha.filter(|s| crate::cache::is_commit(s)).ok_or_else(|| meta("no commit hash".into()))?;
        let siblings = info.siblings.into_iter().map(|s| sibling(s).map_err(meta)).collect::<Result<_, _>>()?;
        Ok((commit.to_ascii_lowercase(), siblings))
    }

    /// One GET with an optional `Range: bytes=<from>-`, no redirect followed.
    fn send(&self, url: &str, from: u64) -> Result<Response<ureq::Body>, HubError> {
        let mut req = http::Request::builder().method("GET").uri(url);
        if from > 0 {
            req = req.header("Range", format!("bytes={from}-"));
        }
        let req = req.body(()).map_err(|e| HubError::Transport { url: url.into(), reason: e.to_string() })?;
        self.agent.run(req).map_err(|e| {
            let unreachable = match &e {
                ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
                ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
                _ => false,
            };
            let mut reason = transport_reason(&e);
            if unreachable {
                reason += "; is the hub reachable from this machine? ($HF_ENDPOINT names another hub or a mirror)";
            }
            HubError::Transport { url: url.into(), reason }
        })
    }

    /// The body of `file` from byte `from`, after checking the hub's headers.
    fn open(&self, repo: &str, commit: &str, f: &Sibling, from: u64) -> Result<Response<ureq::Body>, HubError> {
        let mut url = format!("{}/{repo}/resolve/{commit}/{}", self.endpoint, encode(&f.name, true));
        let mut from_hub = true;
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.send(&url, from)?;
            if from_hub {
                check_headers(&resp, f, commit)?;
            }
            if !resp.status().is_redirection() {
                return Ok(resp);
            }
            let location = header(&resp, "location").ok_or_else(|| HubError::Status {
                url: url.clone(),
                status: resp.status().as_u16(),
                detail: "a redirect without Location".into(),
            })?;
            let next = join_url(&url, &location).ok_or_else(|| HubError::Refused {
                file: f.name.clone(),
                why: format!("the hub redirected to {location:?}, which is not an http(s) URL"),
            })?;
            // A redirect within the hub (a renamed repository) still speaks for the hub.
            from_hub = from_hub && next.starts_with(&self.endpoint) && next.contains("/resolve/");
            url = next;
        }
        Err(HubError::Refused { file: f.name.clone(), why: format!("more than {MAX_REDIRECTS} redirects") })
    }

    /// Make `f` a blob of the cache (downloading what is missing) and link it.
    fn fetch(
        &self,
        repo: &str,
        commit: &str,
        f: &Sibling,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PulledFile, HubError> {
        let blob = self.cache.blob_path(repo, &f.etag);
        let mut done =
            PulledFile { name: f.name.clone(), size: f.size, etag: f.etag.clone(), downloaded: 0, resumed_from: 0 };
        if std::fs::metadata(&blob).map(|m| m.is_file() && m.len() == f.size).unwrap_or(false) {
            progress(Progress::Cached { file: &f.name, size: f.size });
            self.cache.link(repo, commit, &f.name, &f.etag)?;
            return Ok(done);
        }
        let dir = blob.parent().expect("a blob has a directory");
        std::fs::create_dir_all(dir).map_err(|err| HubError::Io { path: dir.into(), err })?;
        let part = dir.join(format!("{}.incomplete", f.etag));
        let io = |err| HubError::Io { path: part.clone(), err };
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&part).map_err(io)?;
        let mut have = file.metadata().map_err(io)?.len();
        if have > f.size {
            file.set_len(0).map_err(io)?;
            have = 0;
        }
        let mut hasher = Hasher::new(f.digest, f.size);
        hash_prefix(&mut file, have, &mut hasher).map_err(io)?;
        done.resumed_from = have;
        progress(Progress::Bytes { file: &f.name, done: have, total: f.size });
        if have < f.size {
            done.downloaded = self.download(repo, commit, f, &part, &mut file, &mut hasher, &mut have, progress)?;
            if have == 0 {
                done.resumed_from = 0; // the server would not resume: started over
            }
        }
        file.sync_all().map_err(io)?;
        drop(file);
        let got = hasher.finish();
        if got != f.etag {
            let _ = std::fs::remove_file(&part);
            let algo = if f.digest == Digest::Sha256 { "sha256" } else { "the git blob sha1" };
            return Err(HubError::HashMismatch { file: f.name.clone(), algo, expected: f.etag.clone(), got });
        }
        std::fs::rename(&part, &blob).map_err(|err| HubError::Io { path: blob.clone(), err })?;
        self.cache.link(repo, commit, &f.name, &f.etag)?;
        Ok(done)
    }

    /// Append the rest of `f` (from `*have`) to `file`, hashing as it goes; at
    /// most the size the metadata gives. Returns the bytes fetched.
    fn download(
        &self,
        repo: &str,
        commit: &str,
        f: &Sibling,
        part: &Path,
        file: &mut File,
        hasher: &mut Hasher,
        have: &mut u64,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<u64, HubError> {
        let io = |err| HubError::Io { path: part.to_path_buf(), err };
        let refused = |why: String| HubError::Refused { file: f.name.clone(), why };
        let resp = self.open(repo, commit, f, *have)?;
        match resp.status().as_u16() {
            206 if *have > 0 => {
                let start = header(&resp, "content-range").and_then(|r| range_start(&r));
                if start != Some(*have) {
                    return Err(refused(format!("asked for bytes from {} and got another range", *have)));
                }
            }
            200 | 206 => {
                if *have > 0 {
                    // The server sent the whole file: start over.
                    file.set_len(0).map_err(io)?;
                    *hasher = Hasher::new(f.digest, f.size);
                    *have = 0;
                }
            }
            status => {
                let detail = header(&resp, "x-error-message").unwrap_or_default();
                return Err(HubError::Status {
                    url: format!("{}/{repo}/resolve/{commit}/{}", self.endpoint, f.name),
                    status,
                    detail,
                });
            }
        }
        let want = f.size - *have;
        if let Some(len) = header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok())
            && len != want
        {
            return Err(refused(format!(
                "the server announced {len} bytes where the hub's metadata leaves {want} (of {}): refused",
                f.size
            )));
        }
        file.seek(SeekFrom::Start(*have)).map_err(io)?;
        let mut body = resp.into_body().into_with_config().limit(u64::MAX).reader().take(want + 1);
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = file.sync_all();
                    return Err(refused(format!(
                        "the download stopped at {} of {} bytes ({}): run the pull again to resume it",
                        *have,
                        f.size,
                        io_reason(&e)
                    )));
                }
            };
            if got + n as u64 > want {
                drop(body);
                let _ = std::fs::remove_file(part);
                return Err(refused(format!(
                    "the server sent more than the {} bytes the hub's metadata gives: refused and discarded",
                    f.size
                )));
            }
            file.write_all(&buf[..n]).map_err(io)?;
            hasher.update(&buf[..n]);
            got += n as u64;
            *have += n as u64;
            progress(Progress::Bytes { file: &f.name, done: *have, total: f.size });
        }
        if got < want {
            let _ = file.sync_all();
            return Err(refused(format!(
                "the server closed the download at {} of {} bytes: run the pull again to resume it",
                *have, f.size
            )));
        }
        Ok(got)
    }
}

/// The files of `what`, or why there are none.
fn select(repo: &str, siblings: &[Sibling], what: &Selection) -> Result<Vec<Sibling>, HubError> {
    match what {
        Selection::File(name) => {
            check_relative(name)?;
            let f = siblings.iter().find(|s| &s.name == name).ok_or_else(|| {
                HubError::NoModelFiles(format!("{repo} has no file {name:?}{}", list_ggufs(siblings)))
            })?;
            Ok(vec![f.clone()])
        }
        Selection::ModelFolder => {
            let chosen: Vec<Sibling> = siblings.iter().filter(|s| model_file(&s.name)).cloned().collect();
            let has = |pred: &dyn Fn(&str) -> bool| chosen.iter().any(|s| pred(&s.name));
            if !has(&|n| n == "config.json") || !has(&|n| n.ends_with(".safetensors")) {
                return Err(HubError::NoModelFiles(format!(
                    "{repo} is not a Hugging Face model folder (config.json and *.safetensors at its top level){}",
                    list_ggufs(siblings)
                )));
            }
            Ok(chosen)
        }
    }
}

/// Files of a model folder that the node reads (the top level only: `onnx/`,
/// `runs/` and the like are not needed).
fn model_file(name: &str) -> bool {
    const NAMED: [&str; 7] = [
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "model.safetensors.index.json",
        "chat_template.jinja",
    ];
    !name.contains('/') && (NAMED.contains(&name) || name.ends_with(".safetensors"))
}

fn list_ggufs(siblings: &[Sibling]) -> String {
    let ggufs: Vec<&str> = siblings.iter().map(|s| s.name.as_str()).filter(|n| n.ends_with(".gguf")).collect();
    if ggufs.is_empty() {
        String::new()
    } else {
        format!("; its GGUF files: {} (choose one with --file)", ggufs.join(", "))
    }
}

fn sibling(s: SiblingJson) -> Result<Sibling, String> {
    check_relative(&s.rfilename).map_err(|_| format!("a file name the cache cannot hold: {:?}", s.rfilename))?;
    let (etag, size, digest) = match (s.lfs, s.blob_id, s.size) {
        (Some(l), _, _) => (l.sha256.to_ascii_lowercase(), l.size, Digest::Sha256),
        (None, Some(b), Some(size)) => (b.to_ascii_lowercase(), size, Digest::GitSha1),
        _ => return Err(format!("no size and hash for {:?} (is HF_ENDPOINT a Hugging Face hub?)", s.rfilename)),
    };
    let len = if digest == Digest::Sha256 { 64 } else { 40 };
    if etag.len() != len || !etag.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{:?} has a malformed hash {etag:?}", s.rfilename));
    }
    Ok(Sibling { name: s.rfilename, size, etag, digest })
}

/// The hub's answer for a file must agree with the metadata it gave.
fn check_headers(resp: &Response<ureq::Body>, f: &Sibling, commit: &str) -> Result<(), HubError> {
    let refused = |why: String| HubError::Refused { file: f.name.clone(), why };
    if let Some(c) = header(resp, "x-repo-commit")
        && !c.eq_ignore_ascii_case(commit)
    {
        return Err(refused(format!("the hub answered for commit {c}, not {commit}")));
    }
    let etag = header(resp, "x-linked-etag").or_else(|| header(resp, "etag")).map(|e| normalize_etag(&e));
    if let Some(e) = etag
        && (e.len() == 40 || e.len() == 64)
        && e.bytes().all(|b| b.is_ascii_hexdigit())
        && !e.eq_ignore_ascii_case(&f.etag)
    {
        return Err(refused(format!("the hub's ETag {e} is not the metadata's {}", f.etag)));
    }
    if let Some(s) = header(resp, "x-linked-size").and_then(|s| s.parse::<u64>().ok())
        && s != f.size
    {
        return Err(refused(format!("the hub gives its size as {s}, the metadata as {}", f.size)));
    }
    Ok(())
}

/// `W/"abc"` → `abc`.
fn normalize_etag(e: &str) -> String {
    e.trim().trim_start_matches("W/").trim_matches('"').to_string()
}

fn header(resp: &Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// `bytes 100-199/200` → 100.
fn range_start(content_range: &str) -> Option<u64> {
    content_range.trim().strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

/// An absolute redirect target from `location`, relative to `base`.
fn join_url(base: &str, location: &str) -> Option<String> {
    if location.starts_with("https://") || location.starts_with("http://") {
        return Some(location.to_string());
    }
    if !location.starts_with('/') {
        return None;
    }
    let scheme_end = base.find("://")? + 3;
    let host_end = base[scheme_end..].find('/').map(|i| scheme_end + i).unwrap_or(base.len());
    Some(format!("{}{location}", &base[..host_end]))
}

/// Percent-encode a path (keeping `/` when `keep_slash`).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn read_bounded(resp: Response<ureq::Body>, max: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    resp.into_body()
        .into_with_config()
        .limit(u64::MAX)
        .reader()
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| io_reason(&e))?;
    if out.len() as u64 > max {
        return Err(format!("an answer larger than {max} bytes"));
    }
    Ok(out)
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(200).collect::<String>().trim().to_string()
}

fn transport_reason(e: &ureq::Error) -> String {
    match e {
        ureq::Error::HostNotFound => "cannot resolve the host name".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::Io(io) => io_reason(io),
        other => other.to_string(),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<ureq::Error>()) {
        Some(u) => transport_reason(u),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => "connection closed".into(),
        None => e.to_string(),
    }
}

/// sha256 or git blob sha1, fed as bytes arrive.
enum Hasher {
    Sha256(sha2::Sha256),
    GitSha1(sha1::Sha1),
}

impl Hasher {
    fn new(d: Digest, size: u64) -> Hasher {
        match d {
            Digest::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Digest::GitSha1 => {
                let mut h = sha1::Sha1::new();
                h.update(format!("blob {size}\0").as_bytes());
                Hasher::GitSha1(h)
            }
        }
    }
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::GitSha1(h) => h.update(b),
        }
    }
    fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::GitSha1(h) => hex::encode(h.finalize()),
        }
    }
}

/// Feed the first `len` bytes of `file` (a partial download) to `h`.
fn hash_prefix(file: &mut File, len: u64, h: &mut Hasher) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut r = (&mut *file).take(len);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_sha1_is_gits() {
        // `printf 'hello\n' | git hash-object --stdin`
        let mut h = Hasher::new(Digest::GitSha1, 6);
        h.update(b"hello\n");
        assert_eq!(h.finish(), "ce013625030ba8dba906f756967f9e9ca394464a");
    }

    #[test]
    fn urls_and_headers() {
        assert_eq!(
            join_url("https://hub.test/a/resolve/x/f", "/b/resolve/x/f").unwrap(),
            "https://hub.test/b/resolve/x/f"
        );
        assert_eq!(join_url("http://127.0.0.1:9/a", "https://cdn.test/z").unwrap(), "https://cdn.test/z");
        assert!(join_url("http://h/a", "ftp://x").is_none());
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(encode("sub dir/m.gguf", true), "sub%20dir/m.gguf");
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
    }

    #[test]
    fn selects_what_a_model_folder_needs() {
        let s = |n: &str| Sibling { name: n.into(), size: 1, etag: "0".repeat(40), digest: Digest::GitSha1 };
        let all = [
            s("config.json"),
            s("model.safetensors"),
            s("tokenizer.json"),
            s("onnx/model.safetensors"),
            s("README.md"),
            s("m-q8.gguf"),
        ];
        let got: Vec<String> =
            select("a/b", &all, &Selection::ModelFolder).unwrap().into_iter().map(|f| f.name).collect();
        assert_eq!(got, ["config.json", "model.safetensors", "tokenizer.json"]);
        let only_gguf = [s("README.md"), s("m-q8.gguf"), s("m-f16.gguf")];
        let e = select("a/b", &only_gguf, &Selection::ModelFolder).unwrap_err().to_string();
        assert!(e.contains("m-q8.gguf, m-f16.gguf (choose one with --file)"), "{e}");
        assert_eq!(select("a/b", &only_gguf, &Selection::File("m-f16.gguf".into())).unwrap()[0].name, "m-f16.gguf");
    }
}
