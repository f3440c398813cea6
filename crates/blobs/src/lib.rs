//! Content-addressed storage of files and row sets.
//!
//! A blob is named by the blake3 hash of its bytes ([`primitives::content_hash`]),
//! stored under the key `ab/cd/<64 hex digits>` (the first two bytes of the hash as
//! a two-level fan-out, so no directory holds more than a few thousand entries).
//! Storage goes through the [`object_store`] crate: a local directory by default
//! ([`BlobConfig::Local`], `LocalFileSystem` with fsync), any S3-compatible bucket by
//! configuration ([`BlobConfig::S3`], behind this crate's `s3` feature: build with
//! `--features blobs/s3`, or `features = ["s3"]` in a dependent's `Cargo.toml`).
//!
//! # Guarantees
//!
//! - **Atomic**: a half-written blob is never visible under its final name.
//!   [`BlobStore::put`] is one `put` of the object store, which is atomic on every
//!   backend: `LocalFileSystem::put_opts` (object_store 0.14.2, `src/local.rs`)
//!   writes a staging file `<final>#<n>` in the same directory (hidden from `list`)
//!   and publishes it with `rename(2)`, and S3's single PUT is atomic.
//!   [`BlobStore::put_stream`] does not know the name until the last byte, so it
//!   writes small streams (up to the part size, 8 MiB by default) from memory with
//!   the same single `put`, and larger ones by a multipart upload to a staging key
//!   `staging/<random>`, then, once the upload is complete and its stored size
//!   verified, renames it to its final name (local: `rename(2)`; S3: a server-side
//!   copy, itself atomic, then a delete of the staging key).
//! - **Crash-safe**: an upload interrupted at any point (the future dropped, the
//!   process killed) leaves no blob under a final name. What it may leave is
//!   invisible garbage: local staging files, or on S3 an incomplete multipart upload
//!   or a `staging/` object; [`BlobStore::sweep_staging`] removes the stale ones (on
//!   S3, also configure a lifecycle rule that aborts incomplete multipart uploads).
//! - **Verified reads**: [`BlobStore::get`] re-hashes what it reads and refuses
//!   content that does not match its name ([`BlobError::Corrupt`]).
//! - **Idempotent writes**: storing content that is already present does not
//!   rewrite it.
//!
//! # Access
//!
//! [`BlobAccessPolicy`] decides who may read a blob (the node provides the real
//! one; [`PublicBlobs`] lets everyone read). This crate knows no HTTP: the node
//! serves `GET /v1/blobs/{hash}` (`node::blob_route`) over the store and a policy.

mod access;
mod config;

use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use primitives::{B256, content_hash};

pub use access::{BlobAccessPolicy, PublicBlobs, parse_hash};
pub use config::BlobConfig;

/// Streams larger than this go through a multipart upload; smaller ones are held in
/// memory and written with one atomic put.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// S3 refuses multipart parts below 5 MiB (except the last).
#[cfg(feature = "s3")]
const MIN_S3_PART_SIZE: usize = 5 * 1024 * 1024;

/// Parts of one upload in flight at once (memory per upload ≈ (this + 1) × part size).
const MAX_PARTS_IN_FLIGHT: usize = 2;

/// Key prefix of streamed uploads before they get their final name.
const STAGING_PREFIX: &str = "staging";

/// What can go wrong with a blob.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob {0} not found")]
    NotFound(B256),
    #[error("blob {expected} is corrupt: its stored content hashes to {actual}")]
    Corrupt { expected: B256, actual: B256 },
    #[error("blob larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("upload stream failed: {0}")]
    Stream(String),
    #[error("upload incomplete: {sent} bytes sent but {stored} stored")]
    Incomplete { sent: u64, stored: u64 },
    #[error("blob store configuration: {0}")]
    Config(String),
    #[error("blob store: {0}")]
    Store(#[from] object_store::Error),
    #[error("blob store I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// A content-addressed blob store over an [`ObjectStore`].
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    part_size: usize,
    min_part_size: usize,
    /// The directory of a local store (for [`BlobStore::sweep_staging`]).
    local_root: Option<PathBuf>,
    describe: String,
    /// Where [`BlobStore::get`] looks for a blob this store lacks (set once).
    fallback: std::sync::OnceLock<Arc<dyn BlobFallback>>,
}

/// Another place blobs can be read from when this store lacks one: a
/// validator's verifier fetching a model's artefacts or a Datanet's rows
/// from the serving node that holds them. Blocking; called off the async
/// runtime. What it returns is checked against the hash before it is stored.
pub trait BlobFallback: Send + Sync {
    /// The bytes named `hash`, `Ok(None)` if no source has them.
    fn fetch(&self, hash: &B256) -> Result<Option<Bytes>, String>;
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore").field("store", &self.describe).field("part_size", &self.part_size).finish()
    }
}

/// The object key of a blob: `ab/cd/<64 lowercase hex digits>`.
pub fn key(hash: &B256) -> String {
    let h = hex::encode(hash);
    format!("{}/{}/{h}", &h[..2], &h[2..4])
}

fn path_of(hash: &B256) -> Path {
    Path::from(key(hash))
}

/// The hash named by a blob key, or `None` for any other key (staging objects, strays).
fn hash_of_key(key: &str) -> Option<B256> {
    let mut parts = key.split('/');
    let (a, b, h) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || h.len() != 64 || a != &h[..2] || b != &h[2..4] {
        return None;
    }
    if !h.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(h, &mut out).ok()?;
    Some(B256::from(out))
}

/// A multipart upload under a staging key.
struct Staged {
    path: Path,
    writer: WriteMultipart,
}

impl Staged {
    async fn abort(self) {
        if let Err(e) = self.writer.abort().await {
            tracing::debug!(path = %self.path, error = %e, "aborting a staged upload failed");
        }
    }
}

async fn abort(staged: Option<Staged>) {
    if let Some(staged) = staged {
        staged.abort().await;
    }
}

impl BlobStore {
    /// Open the store `cfg` describes (a local directory is created if missing).
    pub fn open(cfg: &BlobConfig) -> Result<BlobStore, BlobError> {
        match cfg {
            BlobConfig::Local { dir } => {
                std::fs::create_dir_all(dir)?;
                let root = dir.canonicalize()?;
                let fs = LocalFileSystem::new_with_prefix(&root)?.with_fsync(true);
                Ok(BlobStore {
                    store: Arc::new(fs),
                    part_size: DEFAULT_PART_SIZE,
                    min_part_size: 1,
                    describe: format!("local directory {}", root.display()),
                    local_root: Some(root),
                    fallback: Default::default(),
                })
            }
            BlobConfig::S3 { .. } => Self::open_s3(cfg),
        }
    }

    #[cfg(feature = "s3")]
    fn open_s3(cfg: &BlobConfig) -> Result<BlobStore, BlobError> {
        use object_store::aws::AmazonS3Builder;
        let BlobConfig::S3 { bucket, endpoint, region, access_key, secret_key, allow_http } = cfg else {
            unreachable!("open_s3 is only called for S3 configurations")
        };
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_allow_http(*allow_http);
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
            if region.is_none() && std::env::var_os("AWS_REGION").is_none() {
                builder = builder.with_region("us-east-1");
            }
        }
        if let Some(region) = region {
            builder = builder.with_region(region);
        }
        if let Some(access_key) = access_key {
            builder = builder.with_access_key_id(access_key);
        }
        if let Some(secret_key) = secret_key {
            builder = builder.with_secret_access_key(secret_key);
        }
        let s3 = builder.build()?;
        Ok(BlobStore {
            store: Arc::new(s3),
            part_size: DEFAULT_PART_SIZE,
            min_part_size: MIN_S3_PART_SIZE,
            local_root: None,
            describe: format!(
                "S3 bucket {bucket}{}",
                endpoint.as_ref().map(|e| format!(" at {e}")).unwrap_or_default()
            ),
            fallback: Default::default(),
        })
    }

    #[cfg(not(feature = "s3"))]
    fn open_s3(_cfg: &BlobConfig) -> Result<BlobStore, BlobError> {
        Err(BlobError::Config(
            "this build has no S3 support: rebuild with the `s3` feature of the `blobs` crate \
             (cargo build --features blobs/s3)"
                .into(),
        ))
    }

    /// A store in memory (tests of other crates; nothing is persisted).
    pub fn in_memory() -> BlobStore {
        BlobStore::from_object_store(Arc::new(InMemory::new()), "memory")
    }

    /// A store over any object store (whose `put` must be atomic, as all of
    /// object_store's are).
    pub fn from_object_store(store: Arc<dyn ObjectStore>, describe: impl Into<String>) -> BlobStore {
        BlobStore {
            store,
            part_size: DEFAULT_PART_SIZE,
            min_part_size: 1,
            local_root: None,
            describe: describe.into(),
            fallback: Default::default(),
        }
    }

    /// Use parts of `bytes` for streamed uploads (at least 5 MiB on S3; smaller
    /// values are raised to that).
    pub fn with_part_size(mut self, bytes: usize) -> BlobStore {
        self.part_size = bytes.max(self.min_part_size).max(1);
        self
    }

    /// Store `bytes`; returns their hash. An existing blob is not rewritten.
    pub async fn put(&self, bytes: Bytes) -> Result<B256, BlobError> {
        let hash = content_hash(&bytes);
        self.put_named(&hash, bytes).await?;
        Ok(hash)
    }

    /// Write `bytes`, already hashed to `hash`, unless that blob exists.
    async fn put_named(&self, hash: &B256, bytes: Bytes) -> Result<(), BlobError> {
        let path = path_of(hash);
        if self.exists(&path).await? {
            return Ok(());
        }
        // One atomic put (see the crate docs: LocalFileSystem stages then renames).
        self.store.put(&path, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// Store the concatenation of a stream's chunks, hashing while writing; returns
    /// the hash and the length. The stream is refused ([`BlobError::TooLarge`]) as
    /// soon as more than `max_bytes` have arrived, without reading the rest, and
    /// ([`BlobError::Stream`]) on its first error. The blob becomes visible under its
    /// name only once complete and verified; dropping the future at any point leaves
    /// no blob (see the crate docs).
    pub async fn put_stream<S, E>(&self, stream: S, max_bytes: u64) -> Result<(B256, u64), BlobError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: fmt::Display,
    {
        let mut stream = std::pin::pin!(stream);
        let mut hasher = blake3::Hasher::new();
        let mut total = 0u64;
        // Chunks held in memory until they exceed one part.
        let mut held: Vec<Bytes> = Vec::new();
        let mut held_len = 0usize;
        let mut staged: Option<Staged> = None;

        while let Some(item) = stream.next().await {
            let chunk = match item {
                Ok(chunk) => chunk,
                Err(e) => {
                    abort(staged).await;
                    return Err(BlobError::Stream(e.to_string()));
                }
            };
            total += chunk.len() as u64;
            if total > max_bytes {
                abort(staged).await;
                return Err(BlobError::TooLarge { limit: max_bytes });
            }
            hasher.update(&chunk);
            if let Some(upload) = staged.as_mut() {
                if let Err(e) = upload.writer.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await {
                    abort(staged).await;
                    return Err(e.into());
                }
                upload.writer.put(chunk);
            } else {
                held_len += chunk.len();
                held.push(chunk);
                if held_len > self.part_size {
                    let path = Path::from(format!("{STAGING_PREFIX}/{:032x}", rand::random::<u128>()));
                    let upload = self.store.put_multipart(&path).await?;
                    let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
                    for chunk in held.drain(..) {
                        writer.put(chunk);
                    }
                    staged = Some(Staged { path, writer });
                }
            }
        }

        let hash = B256::from(*hasher.finalize().as_bytes());
        match staged {
            None => {
                let bytes = if held.len() == 1 {
                    held.pop().unwrap_or_default()
                } else {
                    let mut all = Vec::with_capacity(held_len);
                    held.iter().for_each(|c| all.extend_from_slice(c));
                    Bytes::from(all)
                };
                self.put_named(&hash, bytes).await?;
            }
            Some(upload) => self.publish(upload, &hash, total).await?,
        }
        Ok((hash, total))
    }

    /// Complete a staged upload, check its size, and give it its final name (or drop
    /// it if that blob already exists).
    async fn publish(&self, staged: Staged, hash: &B256, sent: u64) -> Result<(), BlobError> {
        let Staged { path, writer } = staged;
        // `finish` aborts the upload itself when it fails.
        writer.finish().await?;
        let result = async {
            let stored = self.store.head(&path).await?.size;
            if stored != sent {
                return Err(BlobError::Incomplete { sent, stored });
            }
            let final_path = path_of(hash);
            if self.exists(&final_path).await? {
                return Ok(false);
            }
            self.store.rename(&path, &final_path).await?;
            Ok(true)
        }
        .await;
        if !matches!(result, Ok(true))
            && let Err(e) = self.store.delete(&path).await
        {
            tracing::debug!(%path, error = %e, "removing a staging object failed");
        }
        result.map(|_| ())
    }

    async fn exists(&self, path: &Path) -> Result<bool, BlobError> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Read blobs this store lacks from `fallback` (once; later calls are ignored
    /// and return `false`). Only [`BlobStore::get`] consults it.
    pub fn set_fallback(&self, fallback: Arc<dyn BlobFallback>) -> bool {
        self.fallback.set(fallback).is_ok()
    }

    /// The blob named `hash`, from this store or else from its fallback (then
    /// kept here): re-hashed, [`BlobError::Corrupt`] if its content does not
    /// match, [`BlobError::NotFound`] if neither has it. Serving a blob to
    /// others must use [`BlobStore::get_local`], so that a request for an
    /// unknown hash never makes this node ask its peers.
    pub async fn get(&self, hash: &B256) -> Result<Bytes, BlobError> {
        match self.get_local(hash).await {
            Err(BlobError::NotFound(_)) => {}
            other => return other,
        }
        let Some(fallback) = self.fallback.get().cloned() else { return Err(BlobError::NotFound(*hash)) };
        let h = *hash;
        let fetched = tokio::task::spawn_blocking(move || fallback.fetch(&h))
            .await
            .map_err(|e| BlobError::Stream(format!("fetching blob {h}: {e}")))?;
        let bytes = match fetched {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(BlobError::NotFound(*hash)),
            Err(e) => {
                tracing::warn!(blob = %hash, "fetching a missing blob failed: {e}");
                return Err(BlobError::NotFound(*hash));
            }
        };
        let actual = content_hash(&bytes);
        if actual != *hash {
            tracing::warn!(expected = %hash, %actual, "a fetched blob does not match its hash: dropped");
            return Err(BlobError::Corrupt { expected: *hash, actual });
        }
        self.put_named(hash, bytes.clone()).await?;
        Ok(bytes)
    }

    /// The blob named `hash` from this store only, re-hashed: [`BlobError::Corrupt`]
    /// if its content does not match, [`BlobError::NotFound`] if there is none.
    pub async fn get_local(&self, hash: &B256) -> Result<Bytes, BlobError> {
        let read = async { self.store.get(&path_of(hash)).await?.bytes().await };
        let bytes = match read.await {
            Ok(bytes) => bytes,
            Err(object_store::Error::NotFound { .. }) => return Err(BlobError::NotFound(*hash)),
            Err(e) => return Err(e.into()),
        };
        let actual = content_hash(&bytes);
        if actual != *hash {
            tracing::error!(expected = %hash, %actual, store = %self.describe, "corrupt blob");
            return Err(BlobError::Corrupt { expected: *hash, actual });
        }
        Ok(bytes)
    }

    /// Whether a blob named `hash` is stored (its content is not checked).
    pub async fn has(&self, hash: &B256) -> Result<bool, BlobError> {
        self.exists(&path_of(hash)).await
    }

    /// Remove the blob named `hash`; removing a missing blob is not an error.
    pub async fn delete(&self, hash: &B256) -> Result<(), BlobError> {
        match self.store.delete(&path_of(hash)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The hashes of all stored blobs (in no particular order). Staging objects and
    /// unfinished uploads are never listed.
    pub fn list(&self) -> BoxStream<'static, Result<B256, BlobError>> {
        self.store
            .list(None)
            .map_err(BlobError::from)
            .try_filter_map(|meta| async move { Ok(hash_of_key(meta.location.as_ref())) })
            .boxed()
    }

    /// Remove what interrupted uploads left behind and is older than `older_than`:
    /// staging objects and, in a local directory, unfinished staging files. Returns
    /// how many were removed. Run it at start-up or now and then.
    pub async fn sweep_staging(&self, older_than: Duration) -> Result<usize, BlobError> {
        let cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
        if let Some(root) = self.local_root.clone() {
            return tokio::task::spawn_blocking(move || sweep_local(&root, cutoff))
                .await
                .map_err(|e| BlobError::Io(std::io::Error::other(e)))?
                .map_err(BlobError::from);
        }
        let cutoff_secs = cutoff.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let staging = Path::from(STAGING_PREFIX);
        let stale: Vec<Path> = self
            .store
            .list(Some(&staging))
            .try_filter_map(|meta| async move {
                Ok((meta.last_modified.timestamp() < cutoff_secs).then_some(meta.location))
            })
            .try_collect()
            .await?;
        for path in &stale {
            self.store.delete(path).await?;
        }
        Ok(stale.len())
    }
}

/// In a local store, the files interrupted uploads leave: everything under
/// `staging/`, and object_store's `<name>#<n>` staging files anywhere.
fn sweep_local(root: &FsPath, cutoff: SystemTime) -> std::io::Result<usize> {
    fn walk(dir: &FsPath, in_staging: bool, cutoff: SystemTime, removed: &mut usize) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                walk(&path, in_staging, cutoff, removed)?;
            } else if kind.is_file() {
                let unfinished = entry.file_name().to_string_lossy().contains('#');
                let old = entry.metadata()?.modified().map(|m| m < cutoff).unwrap_or(false);
                if (in_staging || unfinished) && old {
                    match std::fs::remove_file(&path) {
                        Ok(()) => *removed += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }
    let mut removed = 0;
    walk(&root.join(STAGING_PREFIX), true, cutoff, &mut removed)?;
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() && entry.file_name() != STAGING_PREFIX {
            walk(&entry.path(), false, cutoff, &mut removed)?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout() {
        let h = content_hash(b"abc");
        let k = key(&h);
        let hex = hex::encode(h);
        assert_eq!(k, format!("{}/{}/{hex}", &hex[..2], &hex[2..4]));
        assert_eq!(hash_of_key(&k), Some(h));
        assert_eq!(hash_of_key(&format!("zz/{}/{hex}", &hex[2..4])), None);
        assert_eq!(hash_of_key(&format!("staging/{hex}")), None);
        assert_eq!(hash_of_key(&k.to_uppercase()), None);
        assert_eq!(hash_of_key(&format!("{k}/x")), None);
    }
}
