//! The Hugging Face cache on disk, laid out as `huggingface_hub` lays it out,
//! so a model pulled here is found by Python tools and the other way round:
//!
//! ```text
//! $HF_HOME/hub/models--ORG--NAME/
//!   blobs/<etag>              file contents, named by sha256 (LFS) or git blob sha1
//!   blobs/<etag>.incomplete   a download in progress (resumed from its length)
//!   refs/main                 the commit `main` pointed at when pulled
//!   snapshots/<commit>/<file> relative symlinks into ../../blobs
//! ```

use std::path::{Component, Path, PathBuf};

use crate::HubError;

/// The prefix that names a model in the cache wherever a base model path is accepted.
pub const SPEC_PREFIX: &str = "hf:";

/// The hub cache directory (`$HF_HOME/hub` and its siblings' rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubCache {
    root: PathBuf,
}

/// `hf:ORG/NAME[@REV][/FILE]`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// `ORG/NAME`.
    pub repo: String,
    /// A branch or tag (a file under `refs/`) or a commit; default `main`.
    pub revision: String,
    /// A file inside the snapshot (e.g. one `.gguf` of several).
    pub file: Option<String>,
}

impl ModelSpec {
    /// Parse `hf:ORG/NAME[@REV][/FILE]`; `None` if `s` does not start with `hf:`.
    pub fn parse(s: &str) -> Option<Result<ModelSpec, HubError>> {
        let rest = s.strip_prefix(SPEC_PREFIX)?;
        let bad = |why: &str| HubError::BadSpec { spec: s.to_string(), why: why.to_string() };
        let mut parts = rest.splitn(3, '/');
        let (org, name) = match (parts.next(), parts.next()) {
            (Some(o), Some(n)) if !o.is_empty() && !n.is_empty() => (o, n),
            _ => return Some(Err(bad("expected hf:ORG/NAME, e.g. hf:HuggingFaceTB/SmolLM2-135M-Instruct"))),
        };
        let (name, revision) = match name.split_once('@') {
            Some((n, r)) if !n.is_empty() && !r.is_empty() => (n, r.to_string()),
            Some(_) => return Some(Err(bad("a revision follows the name: hf:ORG/NAME@REV"))),
            None => (name, "main".to_string()),
        };
        let repo = format!("{org}/{name}");
        let parsed = check_repo(&repo).and_then(|()| {
            let file = parts.next().map(|f| check_relative(f).map(|()| f.to_string())).transpose()?;
            Ok(ModelSpec { repo, revision, file })
        });
        Some(parsed.map_err(|e| match e {
            HubError::BadSpec { why, .. } => bad(&why),
            other => other,
        }))
    }
}

/// A repository id the hub accepts: `ORG/NAME` of letters, digits, `-`, `_`, `.`.
pub fn check_repo(repo: &str) -> Result<(), HubError> {
    let bad = |why: &str| HubError::BadSpec { spec: repo.to_string(), why: why.to_string() };
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() != 2 {
        return Err(bad("a model repository is ORG/NAME"));
    }
    for p in parts {
        let ok_chars = p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if p.is_empty() || p.len() > 96 || !ok_chars || p.starts_with('.') || p.contains("..") {
            return Err(bad("ORG and NAME are letters, digits, '-', '_' and '.'"));
        }
    }
    Ok(())
}

/// A file name from the hub, used under the snapshot directory: relative,
/// no `..`, no empty or `.` parts.
pub fn check_relative(file: &str) -> Result<(), HubError> {
    let bad = || HubError::BadSpec { spec: file.to_string(), why: "not a plain relative file name".into() };
    if file.is_empty() || file.contains('\\') || file.contains('\0') || file.split('/').any(|c| c.is_empty()) {
        return Err(bad());
    }
    if Path::new(file).components().all(|c| matches!(c, Component::Normal(_))) { Ok(()) } else { Err(bad()) }
}

/// A revision name used as a file under `refs/` (branches may hold `/`).
fn check_revision(rev: &str) -> Result<(), HubError> {
    check_relative(rev).map_err(|_| HubError::BadSpec { spec: rev.to_string(), why: "not a usable revision".into() })
}

impl HubCache {
    /// The cache at `root` (the directory that holds `models--*`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HubCache { root: root.into() }
    }

    /// Where `huggingface_hub` looks: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
    /// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(p) = var("HF_HUB_CACHE") {
            return HubCache::new(p);
        }
        let home = var("HF_HOME").unwrap_or_else(|| {
            var("XDG_CACHE_HOME")
                .or_else(|| var("HOME").map(|h| h.join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"))
                .join("huggingface")
        });
        HubCache::new(home.join("hub"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `models--ORG--NAME`.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.join(format!("models--{}", repo.replace('/', "--")))
    }

    pub fn blob_path(&self, repo: &str, etag: &str) -> PathBuf {
        self.repo_dir(repo).join("blobs").join(etag)
    }

    pub fn snapshot_dir(&self, repo: &str, commit: &str) -> PathBuf {
        self.repo_dir(repo).join("snapshots").join(commit)
    }

    /// The commit `revision` names: a commit itself, or the content of `refs/<revision>`.
    pub fn commit_of(&self, repo: &str, revision: &str) -> Result<Option<String>, HubError> {
        if is_commit(revision) && self.snapshot_dir(repo, revision).is_dir() {
            return Ok(Some(revision.to_string()));
        }
        check_revision(revision)?;
        let p = self.repo_dir(repo).join("refs").join(revision);
        match std::fs::read_to_string(&p) {
            Ok(s) if is_commit(s.trim()) => Ok(Some(s.trim().to_string())),
            Ok(_) => Err(HubError::Cache(format!("{} does not hold a commit hash", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(HubError::Io { path: p, err }),
        }
    }

    /// Record that `revision` points at `commit` (nothing to do for a commit).
    pub fn write_ref(&self, repo: &str, revision: &str, commit: &str) -> Result<(), HubError> {
        if revision == commit {
            return Ok(());
        }
        check_revision(revision)?;
        let p = self.repo_dir(repo).join("refs").join(revision);
        let dir = p.parent().expect("refs/<rev> has a parent");
        std::fs::create_dir_all(dir).map_err(|err| HubError::Io { path: dir.into(), err })?;
        std::fs::write(&p, commit).map_err(|err| HubError::Io { path: p, err })
    }

    /// Point `snapshots/<commit>/<file>` at `blobs/<etag>` (a relative symlink,
    /// as `huggingface_hub` makes; a copy where symlinks are not available).
    pub fn link(&self, repo: &str, commit: &str, file: &str, etag: &str) -> Result<PathBuf, HubError> {
        check_relative(file)?;
        let dest = self.snapshot_dir(repo, commit).join(file);
        let dir = dest.parent().expect("a snapshot file has a parent");
        std::fs::create_dir_all(dir).map_err(|err| HubError::Io { path: dir.into(), err })?;
        let io = |err| HubError::Io { path: dest.clone(), err };
        if dest.symlink_metadata().is_ok() {
            std::fs::remove_file(&dest).map_err(io)?;
        }
        #[cfg(unix)]
        {
            let depth = file.split('/').count() + 1;
            let target = PathBuf::from("../".repeat(depth)).join("blobs").join(etag);
            std::os::unix::fs::symlink(target, &dest).map_err(io)?;
        }
        #[cfg(not(unix))]
        std::fs::copy(self.blob_path(repo, etag), &dest).map(|_| ()).map_err(io)?;
        Ok(dest)
    }

    /// What `hf:ORG/NAME[@REV][/FILE]` names in the cache: the snapshot folder
    /// (a Hugging Face model folder), the one `.gguf` in it, or the named file.
    /// Never touches the network: a model not pulled yet is an error that says
    /// how to pull it.
    pub fn resolve(&self, spec: &ModelSpec) -> Result<PathBuf, HubError> {
        let not_pulled = || HubError::NotInCache {
            repo: spec.repo.clone(),
            revision: spec.revision.clone(),
            cache: self.root.clone(),
        };
        let commit = self.commit_of(&spec.repo, &spec.revision)?.ok_or_else(not_pulled)?;
        let snap = self.snapshot_dir(&spec.repo, &commit);
        if let Some(f) = &spec.file {
            let p = snap.join(f);
            return if p.exists() {
                Ok(p)
            } else {
                Err(HubError::Cache(format!(
                    "{} is not in the cached snapshot of {} ({}): pull it with `openledger model pull {} --file {f}`",
                    f,
                    spec.repo,
                    snap.display(),
                    spec.repo
                )))
            };
        }
        if snap.join("config.json").is_file() {
            return Ok(snap);
        }
        let ggufs: Vec<PathBuf> = std::fs::read_dir(&snap)
            .map_err(|_| not_pulled())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("gguf") && p.exists())
            .collect();
        match ggufs.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(HubError::Cache(format!(
                "the cached snapshot {} of {} holds neither config.json nor a .gguf file",
                snap.display(),
                spec.repo
            ))),
            many => Err(HubError::Cache(format!(
                "the cached snapshot of {} holds several .gguf files ({}): name one, hf:{}/FILE",
                spec.repo,
                many.iter().filter_map(|p| p.file_name()?.to_str()).collect::<Vec<_>>().join(", "),
                spec.repo
            ))),
        }
    }
}

/// A 40-hex-digit git commit hash.
pub fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A base model path as the CLI and `openledger.toml` take it: `hf:ORG/NAME…`
/// resolved in the cache of the environment ([`HubCache::from_env`]), any
/// other path returned as it is.
pub fn resolve_model_path(p: &Path) -> Result<PathBuf, HubError> {
    match p.to_str().and_then(ModelSpec::parse) {
        Some(spec) => HubCache::from_env().resolve(&spec?),
        None => Ok(p.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let s = ModelSpec::parse("hf:HuggingFaceTB/SmolLM2-135M-Instruct").unwrap().unwrap();
        assert_eq!(
            (s.repo.as_str(), s.revision.as_str(), s.file),
            ("HuggingFaceTB/SmolLM2-135M-Instruct", "main", None)
        );
        let s = ModelSpec::parse("hf:a/b@v1.0/sub/m.gguf").unwrap().unwrap();
        assert_eq!((s.repo.as_str(), s.revision.as_str(), s.file.as_deref()), ("a/b", "v1.0", Some("sub/m.gguf")));
        assert!(ModelSpec::parse("models/base").is_none());
        for bad in ["hf:", "hf:onlyname", "hf:a/", "hf:a/b@", "hf:../b", "hf:a/b/../../x", "hf:a b/c", "hf:a/b//x"] {
            assert!(ModelSpec::parse(bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn resolves_a_pulled_snapshot_and_says_how_to_pull_otherwise() {
        let dir = std::env::temp_dir().join(format!("hub-cache-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = HubCache::new(&dir);
        let spec = ModelSpec::parse("hf:org/tiny").unwrap().unwrap();
        let e = cache.resolve(&spec).unwrap_err().to_string();
        assert!(e.contains("openledger model pull org/tiny"), "{e}");

        let commit = "a".repeat(40);
        let blob = cache.blob_path("org/tiny", &"b".repeat(40));
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, "{}").unwrap();
        let linked = cache.link("org/tiny", &commit, "config.json", &"b".repeat(40)).unwrap();
        assert_eq!(std::fs::read_to_string(&linked).unwrap(), "{}");
        cache.write_ref("org/tiny", "main", &commit).unwrap();
        assert_eq!(cache.resolve(&spec).unwrap(), cache.snapshot_dir("org/tiny", &commit));
        // By commit too, and a nested file links back to the same blobs.
        let by_commit = ModelSpec::parse(&format!("hf:org/tiny@{commit}")).unwrap().unwrap();
        assert_eq!(cache.resolve(&by_commit).unwrap(), cache.snapshot_dir("org/tiny", &commit));
        let nested = cache.link("org/tiny", &commit, "sub/config.json", &"b".repeat(40)).unwrap();
        assert_eq!(std::fs::read_to_string(nested).unwrap(), "{}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
