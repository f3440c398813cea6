//! Blobs this node lacks, read from its peers' HTTP APIs (`GET /v1/blobs/{hash}`).
//!
//! A validator's verifier recomputes a challenged record with the model's
//! adapter and the rows of the Datanet versions it was trained on; those
//! live in the blob store of the node that trained and serves the model. The
//! blob route serves a live model's artefacts and a public Datanet's rows to
//! anyone, and an allow-list Datanet's rows to validators while a challenge
//! is open: so requests are signed (`X-OpenLedger-Auth`) with the validator's
//! operator key when it has one. The store checks every fetched blob against
//! its hash before keeping it ([`blobs::BlobStore::get`]); the blob route
//! itself reads only locally, so an outside request never makes this node ask
//! its peers.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use primitives::B256;
use rpc::http::HttpClient;

/// Largest blob fetched from a peer (the largest artefact a job writes is far below).
pub const MAX_PEER_BLOB_BYTES: u64 = 1 << 30;

/// How long one peer may take to answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a hash no peer had is not asked for again (a page asking for a
/// blob nobody holds costs the peers nothing more meanwhile).
const MISS_TTL: Duration = Duration::from_secs(60);

/// Most misses remembered; beyond, the oldest are forgotten.
const MAX_MISSES: usize = 4096;

/// Peers' blob routes, asked in order.
pub struct PeerBlobs {
    peers: Vec<Peer>,
    signer: Option<keys::SecretKey>,
    /// Hashes no peer had, and when that was learnt.
    misses: Mutex<std::collections::VecDeque<(B256, Instant)>>,
}

struct Peer {
    client: HttpClient,
    /// Who requests to it are signed for (`GET /v1/node/auth`), learnt once.
    audience: Mutex<Option<keys::request::Audience>>,
}

impl PeerBlobs {
    /// `peers` are `host:port` or `http://host:port` of the peers' HTTP APIs.
    pub fn new(peers: &[String], signer: Option<keys::SecretKey>) -> PeerBlobs {
        let peers = peers
            .iter()
            .map(|p| Peer {
                client: HttpClient::new(p).with_timeout(PEER_TIMEOUT).with_max_body(MAX_PEER_BLOB_BYTES),
                audience: Mutex::new(None),
            })
            .collect();
        PeerBlobs { peers, signer, misses: Mutex::new(Default::default()) }
    }

    fn fetch_from(&self, peer: &Peer, hash: &B256) -> Result<Option<Bytes>, String> {
        let path = format!("/v1/blobs/{hash}");
        let mut headers = Vec::new();
        if let Some(key) = &self.signer {
            let audience = peer.audience()?;
            let value = keys::request::sign_request(key, &audience, "GET", &path, b"", keys::request::unix_now());
            headers.push((keys::request::AUTH_HEADER, value));
        }
        let answer = peer.client.request("GET", &path, &headers, b"").map_err(|e| e.to_string())?;
        match answer.status {
            200 => Ok(Some(Bytes::from(answer.body))),
            // Not there, or not for us: the next peer may have it.
            401 | 403 | 404 => Ok(None),
            s => Err(format!("{}: GET {path}: {s}: {}", peer.client.addr(), answer.text())),
        }
    }
}

impl Peer {
    fn audience(&self) -> Result<keys::request::Audience, String> {
        if let Some(a) = *self.audience.lock().unwrap() {
            return Ok(a);
        }
        let answer = self.client.request("GET", "/v1/node/auth", &[], b"").map_err(|e| e.to_string())?;
        if answer.status != 200 {
            return Err(format!("{}: GET /v1/node/auth: {}", self.client.addr(), answer.status));
        }
        let v: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|e| e.to_string())?;
        let chain_id = v["chainId"].as_u64().ok_or("/v1/node/auth: no chainId")?;
        let node = v["node"].as_str().and_then(|s| s.parse().ok()).ok_or("/v1/node/auth: no node")?;
        let a = keys::request::Audience { chain_id, node };
        *self.audience.lock().unwrap() = Some(a);
        Ok(a)
    }
}

impl blobs::BlobFallback for PeerBlobs {
    fn fetch(&self, hash: &B256) -> Result<Option<Bytes>, String> {
        {
            let mut misses = self.misses.lock().unwrap();
            while misses.front().is_some_and(|(_, at)| at.elapsed() > MISS_TTL) {
                misses.pop_front();
            }
            if misses.iter().any(|(h, _)| h == hash) {
                return Ok(None);
            }
        }
        let mut errors = Vec::new();
        for peer in &self.peers {
            match self.fetch_from(peer, hash) {
                Ok(Some(bytes)) => {
                    tracing::info!(blob = %hash, peer = peer.client.addr(), bytes = bytes.len(), "fetched a missing blob");
                    return Ok(Some(bytes));
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        let mut misses = self.misses.lock().unwrap();
        if misses.len() == MAX_MISSES {
            misses.pop_front();
        }
        misses.push_back((*hash, Instant::now()));
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::extract::Path;
    use axum::routing::get;
    use blobs::BlobFallback;

    use super::*;

    /// A peer holding one blob, counting the requests it gets.
    async fn peer(held: Bytes, asked: Arc<AtomicUsize>) -> String {
        let hash = primitives::content_hash(&held);
        let app = Router::new().route(
            "/v1/blobs/{hash}",
            get(move |Path(h): Path<String>| {
                let (held, asked) = (held.clone(), asked.clone());
                async move {
                    asked.fetch_add(1, Ordering::SeqCst);
                    if h == hash.to_string() { Ok(held) } else { Err(axum::http::StatusCode::NOT_FOUND) }
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        format!("127.0.0.1:{}", addr.port())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blob_comes_from_the_peer_that_has_it_and_a_miss_is_not_asked_again_at_once() {
        let (a, b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let held = Bytes::from_static(b"rows of a Datanet version");
        let hash = primitives::content_hash(&held);
        let peers =
            vec![peer(Bytes::from_static(b"something else"), a.clone()).await, peer(held.clone(), b.clone()).await];
        let blobs = Arc::new(PeerBlobs::new(&peers, None));
        let p = blobs.clone();
        let got = tokio::task::spawn_blocking(move || p.fetch(&hash)).await.unwrap().unwrap();
        assert_eq!(got, Some(held));
        assert_eq!((a.load(Ordering::SeqCst), b.load(Ordering::SeqCst)), (1, 1));
        // Nobody has this one: both peers are asked once, then not again for a while.
        let unknown = primitives::content_hash(b"nobody holds this");
        for _ in 0..3 {
            let p = blobs.clone();
            assert_eq!(tokio::task::spawn_blocking(move || p.fetch(&unknown)).await.unwrap().unwrap(), None);
        }
        assert_eq!((a.load(Ordering::SeqCst), b.load(Ordering::SeqCst)), (2, 2));
    }
}
