//! The blob store on a local directory: round trips, idempotence, corruption,
//! interrupted and oversized streams.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use blobs::{BlobConfig, BlobError, BlobStore};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use primitives::{B256, content_hash};

fn open(dir: &Path) -> BlobStore {
    BlobStore::open(&BlobConfig::local(dir)).unwrap()
}

async fn listed(store: &BlobStore) -> Vec<B256> {
    let mut v: Vec<B256> = store.list().try_collect().await.unwrap();
    v.sort();
    v
}

/// Every regular file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(files(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

/// Wait (a little) for background clean-up to leave no file under `dir`.
async fn assert_no_files_soon(dir: &Path) {
    for _ in 0..100 {
        if files(dir).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("files left behind: {:?}", files(dir));
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn chunks(bytes: &[u8], size: usize) -> Vec<Result<Bytes, std::io::Error>> {
    bytes.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect()
}

#[tokio::test]
async fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bytes = Bytes::from_static(b"hello, ledger");
    let hash = store.put(bytes.clone()).await.unwrap();
    assert_eq!(hash, content_hash(&bytes));
    assert!(store.has(&hash).await.unwrap());
    assert_eq!(store.get(&hash).await.unwrap(), bytes);
    assert_eq!(listed(&store).await, vec![hash]);

    // Stored under the two-level fan-out.
    let hex = hex::encode(hash);
    assert_eq!(blobs::key(&hash), format!("{}/{}/{hex}", &hex[..2], &hex[2..4]));
    assert_eq!(std::fs::read(dir.path().join(blobs::key(&hash))).unwrap(), bytes.as_ref());

    // The empty blob is a blob too.
    let empty = store.put(Bytes::new()).await.unwrap();
    assert_eq!(store.get(&empty).await.unwrap(), Bytes::new());

    store.delete(&hash).await.unwrap();
    assert!(!store.has(&hash).await.unwrap());
    assert!(matches!(store.get(&hash).await, Err(BlobError::NotFound(h)) if h == hash));
    store.delete(&hash).await.unwrap(); // deleting again is fine
    assert_eq!(listed(&store).await, vec![empty]);

    // Reopening sees what was stored.
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.get(&empty).await.unwrap(), Bytes::new());
}

#[tokio::test]
async fn idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).with_part_size(1024);
    let small = Bytes::from(data(100));
    let big = Bytes::from(data(10_000));
    let h_small = store.put(small.clone()).await.unwrap();
    let h_big = store.put(big.clone()).await.unwrap();
    let inode = |h: &B256| std::fs::metadata(dir.path().join(blobs::key(h))).unwrap().ino();
    let (i_small, i_big) = (inode(&h_small), inode(&h_big));

    assert_eq!(store.put(small.clone()).await.unwrap(), h_small);
    assert_eq!(store.put_stream(stream::iter(chunks(&small, 7)), 1 << 20).await.unwrap(), (h_small, 100));
    // A multipart stream of existing content is dropped, not renamed over it.
    assert_eq!(store.put_stream(stream::iter(chunks(&big, 300)), 1 << 20).await.unwrap(), (h_big, 10_000));
    assert_eq!(inode(&h_small), i_small, "an existing blob is not rewritten");
    assert_eq!(inode(&h_big), i_big, "an existing blob is not rewritten");
    assert_eq!(listed(&store).await.len(), 2);
    // Nothing but the two blobs on disk (no staging left).
    assert_eq!(files(dir.path()).len(), 2, "{:?}", files(dir.path()));
}

#[tokio::test]
async fn corruption_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let hash = store.put(Bytes::from_static(b"the real content")).await.unwrap();
    std::fs::write(dir.path().join(blobs::key(&hash)), b"garbage").unwrap();
    match store.get(&hash).await {
        Err(BlobError::Corrupt { expected, actual }) => {
            assert_eq!(expected, hash);
            assert_eq!(actual, content_hash(b"garbage"));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn stream_round_trip_single_and_multipart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).with_part_size(4096);
    for (n, chunk) in [(0, 10), (1, 1), (4096, 1000), (4097, 4097), (50_000, 333), (50_000, 20_000)] {
        let bytes = data(n).into_iter().map(|b| b ^ (chunk as u8)).collect::<Vec<_>>();
        let (hash, len) = store.put_stream(stream::iter(chunks(&bytes, chunk)), 1 << 20).await.unwrap();
        assert_eq!(hash, content_hash(&bytes), "n={n} chunk={chunk}");
        assert_eq!(len, n as u64);
        assert_eq!(store.get(&hash).await.unwrap(), bytes);
    }
    // Only final blobs remain on disk.
    let on_disk = files(dir.path()).len();
    assert_eq!(on_disk, listed(&store).await.len(), "{:?}", files(dir.path()));
}

#[tokio::test]
async fn crash_mid_stream_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()).with_part_size(1024));
    let sent = data(5000);
    // Five chunks, then a client that never sends the rest.
    let s = stream::iter(chunks(&sent, 1000)).chain(stream::pending());
    let task = tokio::spawn({
        let store = store.clone();
        async move { store.put_stream(s, 1 << 20).await }
    });
    // The multipart upload has written part of the data to a staging file...
    for _ in 0..200 {
        if !files(dir.path()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!files(dir.path()).is_empty(), "the upload has started writing");
    // ...which is not a blob.
    assert!(listed(&store).await.is_empty());
    // The upload dies (its future is dropped).
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(listed(&store).await.is_empty());
    assert!(!store.has(&content_hash(&sent)).await.unwrap());
    assert!(!store.has(&content_hash(&sent[..4000])).await.unwrap());
    // The staging file of the multipart upload is removed too.
    assert_no_files_soon(dir.path()).await;

    // The same for the single-put path (nothing is written before the end).
    let s = stream::iter(chunks(&sent[..500], 100)).chain(stream::pending());
    assert!(tokio::time::timeout(Duration::from_millis(100), store.put_stream(s, 1 << 20)).await.is_err());
    assert!(listed(&store).await.is_empty());
    assert_no_files_soon(dir.path()).await;
}

/// A stream of `n` chunks of `size` bytes that counts how many were pulled.
fn counted(n: usize, size: usize, pulled: Arc<AtomicUsize>) -> impl futures_util::Stream<Item = Result<Bytes, String>> {
    stream::iter(0..n).map(move |i| {
        pulled.fetch_add(1, Ordering::SeqCst);
        Ok(Bytes::from(vec![i as u8; size]))
    })
}

#[tokio::test]
async fn size_limit_enforced_while_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).with_part_size(1024);
    // Multipart path: over the limit in the 11th chunk; the other 89 are never read.
    let pulled = Arc::new(AtomicUsize::new(0));
    let r = store.put_stream(counted(100, 1000, pulled.clone()), 10_500).await;
    assert!(matches!(r, Err(BlobError::TooLarge { limit: 10_500 })), "{r:?}");
    assert_eq!(pulled.load(Ordering::SeqCst), 11);
    assert!(listed(&store).await.is_empty());
    assert_no_files_soon(dir.path()).await;

    // Single-put path.
    let pulled = Arc::new(AtomicUsize::new(0));
    let r = store.put_stream(counted(100, 10, pulled.clone()), 25).await;
    assert!(matches!(r, Err(BlobError::TooLarge { limit: 25 })), "{r:?}");
    assert_eq!(pulled.load(Ordering::SeqCst), 3);

    // Exactly at the limit is fine.
    let pulled = Arc::new(AtomicUsize::new(0));
    let (_, len) = store.put_stream(counted(3, 10, pulled), 30).await.unwrap();
    assert_eq!(len, 30);
}

#[tokio::test]
async fn stream_error_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).with_part_size(1024);
    let s = stream::iter(vec![Ok(Bytes::from(vec![1u8; 3000])), Err("connection reset".to_owned())]);
    let r = store.put_stream(s, 1 << 20).await;
    assert!(matches!(&r, Err(BlobError::Stream(m)) if m == "connection reset"), "{r:?}");
    assert!(listed(&store).await.is_empty());
    assert_no_files_soon(dir.path()).await;
}

#[tokio::test]
async fn sweep_removes_stale_staging() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let hash = store.put(Bytes::from_static(b"keep me")).await.unwrap();
    // What a killed process could leave: a staged object and an unfinished file.
    std::fs::create_dir_all(dir.path().join("staging")).unwrap();
    let left = [dir.path().join("staging/0123"), dir.path().join(format!("{}#1", blobs::key(&hash)))];
    for f in &left {
        std::fs::write(f, b"partial").unwrap();
    }
    assert_eq!(store.sweep_staging(Duration::from_secs(3600)).await.unwrap(), 0, "too recent");
    // Two hours later, as far as the files' times tell.
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
    for f in &left {
        std::fs::File::options().write(true).open(f).unwrap().set_modified(two_hours_ago).unwrap();
    }
    assert_eq!(store.sweep_staging(Duration::from_secs(3600)).await.unwrap(), 2);
    assert_eq!(files(dir.path()), vec![dir.path().join(blobs::key(&hash))]);
    assert_eq!(store.get(&hash).await.unwrap(), Bytes::from_static(b"keep me"));
}

#[tokio::test]
async fn in_memory_store() {
    let store = BlobStore::in_memory().with_part_size(64);
    let bytes = data(1000);
    let (hash, _) = store.put_stream(stream::iter(chunks(&bytes, 100)), 10_000).await.unwrap();
    assert_eq!(store.get(&hash).await.unwrap(), bytes);
    assert_eq!(listed(&store).await, vec![hash]);
}

#[tokio::test]
async fn s3_without_feature_is_a_clear_error() {
    let cfg: BlobConfig = "s3://bucket?endpoint=http://127.0.0.1:9&allow_http=true".parse().unwrap();
    let r = BlobStore::open(&cfg);
    if cfg!(feature = "s3") {
        // Building the client does not connect.
        assert!(r.is_ok(), "{r:?}");
    } else {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("`s3` feature"), "{e}");
    }
}

/// A fallback that serves from a map (and counts its calls), or lies.
struct Peer {
    blobs: std::collections::HashMap<B256, Bytes>,
    lie: bool,
    calls: AtomicUsize,
}

impl blobs::BlobFallback for Peer {
    fn fetch(&self, hash: &B256) -> Result<Option<Bytes>, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.blobs.get(hash).map(|b| if self.lie { Bytes::from_static(b"not what was asked") } else { b.clone() }))
    }
}

#[tokio::test]
async fn a_missing_blob_comes_from_the_fallback_checked_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bytes = Bytes::from_static(b"an adapter the serving node holds");
    let hash = content_hash(&bytes);
    let peer = Arc::new(Peer { blobs: [(hash, bytes.clone())].into(), lie: false, calls: AtomicUsize::new(0) });
    assert!(store.set_fallback(peer.clone()));
    // Serving others never asks the peers.
    assert!(matches!(store.get_local(&hash).await, Err(BlobError::NotFound(_))));
    assert_eq!(peer.calls.load(Ordering::SeqCst), 0);
    assert_eq!(store.get(&hash).await.unwrap(), bytes);
    assert_eq!(peer.calls.load(Ordering::SeqCst), 1);
    // Kept: the second read is local.
    assert_eq!(store.get_local(&hash).await.unwrap(), bytes);
    assert_eq!(store.get(&hash).await.unwrap(), bytes);
    assert_eq!(peer.calls.load(Ordering::SeqCst), 1);
    // What no source has stays not found.
    let unknown = content_hash(b"nobody has this");
    assert!(matches!(store.get(&unknown).await, Err(BlobError::NotFound(_))));
}

#[tokio::test]
async fn a_fetched_blob_that_does_not_match_its_hash_is_refused_and_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bytes = Bytes::from_static(b"the real rows");
    let hash = content_hash(&bytes);
    let liar = Arc::new(Peer { blobs: [(hash, bytes)].into(), lie: true, calls: AtomicUsize::new(0) });
    store.set_fallback(liar);
    assert!(matches!(store.get(&hash).await, Err(BlobError::Corrupt { .. })));
    assert!(!store.has(&hash).await.unwrap());
    assert!(listed(&store).await.is_empty());
}
