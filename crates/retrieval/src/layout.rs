//! The index directory: metadata file, temporary build directories, atomic rename.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::RetrievalError;

/// Name of the metadata file, written last into a complete index.
pub(crate) const META_FILE: &str = "retrieval.json";
/// What `format` says in every index this crate writes.
pub(crate) const FORMAT: &str = "openledger-retrieval-bm25";
/// Bumped whenever the schema, tokeniser or scoring changes.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// `retrieval.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Meta {
    pub format: String,
    pub version: u32,
    pub n_docs: u64,
    pub last_row: Option<(u64, u32)>,
}

pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RetrievalError + 'a {
    move |source| RetrievalError::Io { op, path: path.to_path_buf(), source }
}

fn not_an_index(path: &Path, reason: impl Into<String>) -> RetrievalError {
    RetrievalError::NotAnIndex { path: path.to_path_buf(), reason: reason.into() }
}

impl Meta {
    pub(crate) fn new(n_docs: u64, last_row: Option<(u64, u32)>) -> Meta {
        Meta { format: FORMAT.into(), version: FORMAT_VERSION, n_docs, last_row }
    }

    /// Write the metadata file into `dir` and sync it.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), RetrievalError> {
        let path = dir.join(META_FILE);
        let bytes = serde_json::to_vec(self).expect("metadata serialises");
        let mut f = fs::File::create(&path).map_err(io_err("create", &path))?;
        std::io::Write::write_all(&mut f, &bytes).map_err(io_err("write", &path))?;
        f.sync_all().map_err(io_err("sync", &path))
    }

    /// Read and check the metadata file of `dir`.
    pub(crate) fn read(dir: &Path) -> Result<Meta, RetrievalError> {
        let path = dir.join(META_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(not_an_index(
                    dir,
                    format!("no {META_FILE} (not an index, or a build that did not finish)"),
                ));
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let meta: Meta =
            serde_json::from_slice(&bytes).map_err(|e| not_an_index(dir, format!("{META_FILE} is unreadable: {e}")))?;
        if meta.format != FORMAT {
            return Err(not_an_index(dir, format!("format is {:?}, expected {FORMAT:?}", meta.format)));
        }
        if meta.version != FORMAT_VERSION {
            return Err(not_an_index(
                dir,
                format!(
                    "format version {} (this build reads version {FORMAT_VERSION}); rebuild the index",
                    meta.version
                ),
            ));
        }
        Ok(meta)
    }
}

/// Check that `dir` may receive a new index (absent, or an empty directory),
/// remove leftovers of earlier interrupted builds next to it, and make the
/// temporary directory to build in.
pub(crate) fn prepare(dir: &Path) -> Result<PathBuf, RetrievalError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(RetrievalError::NotEmpty { path: dir.to_path_buf() });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("read", dir)(e)),
    }
    let (parent, name) = split(dir)?;
    fs::create_dir_all(&parent).map_err(io_err("create", &parent))?;
    let prefix = temp_prefix(&name);
    for entry in fs::read_dir(&parent).map_err(io_err("read", &parent))?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(io_err("remove leftover", &path))?;
        }
    }
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let tmp = parent.join(format!("{prefix}{}-{nanos}", std::process::id()));
    fs::create_dir(&tmp).map_err(io_err("create", &tmp))?;
    Ok(tmp)
}

/// Move the finished index at `tmp` to `dir` (an empty `dir` is replaced).
pub(crate) fn publish(tmp: &Path, dir: &Path) -> Result<(), RetrievalError> {
    if dir.exists() {
        // Empty (checked in `prepare`): rename(2) would replace it, but say so plainly.
        fs::remove_dir(dir).map_err(io_err("replace empty", dir))?;
    }
    fs::rename(tmp, dir).map_err(io_err("rename into place", dir))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Make the rename durable; a failure here only weakens crash safety.
        let _ = fs::File::open(parent).and_then(|f| f.sync_all());
    }
    Ok(())
}

/// Copy the tantivy files of `from` into `to` (not our metadata, not tantivy's locks).
pub(crate) fn copy_segments(from: &Path, to: &Path) -> Result<(), RetrievalError> {
    for entry in fs::read_dir(from).map_err(io_err("read", from))? {
        let entry = entry.map_err(io_err("read", from))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == META_FILE || name.ends_with(".lock") {
            continue;
        }
        let src = entry.path();
        if !entry.file_type().map_err(io_err("stat", &src))?.is_file() {
            continue;
        }
        fs::copy(&src, to.join(&*name)).map_err(io_err("copy", &src))?;
    }
    Ok(())
}

fn split(dir: &Path) -> Result<(PathBuf, String), RetrievalError> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).ok_or_else(|| RetrievalError::Io {
        op: "name",
        path: dir.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "index path has no final component"),
    })?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}
