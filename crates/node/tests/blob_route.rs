//! `GET /v1/blobs/{hash}` through the node's HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blobs::{BlobAccessPolicy, BlobConfig, BlobStore, PublicBlobs};
use bytes::Bytes;
use httpapi::{Audience, ServerConfig, sign_request, unix_now};
use keys::SecretKey;
use primitives::{Address, B256};
use tokio::net::TcpListener;

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }
    fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)));
        v["error"]["code"].as_str().unwrap().to_owned()
    }
}

/// `GET target` over the workspace's HTTP client (blocking, so off the runtime's threads).
async fn get(addr: SocketAddr, target: &str, headers: &[(&str, String)]) -> Reply {
    let target = target.to_string();
    let owned: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
    let r = tokio::task::spawn_blocking(move || {
        let headers: Vec<(&str, String)> = owned.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let client = rpc::http::HttpClient::new(&addr.to_string()).with_timeout(Duration::from_secs(20));
        client.request("GET", &target, &headers, b"").unwrap()
    })
    .await
    .unwrap();
    Reply { status: r.status, headers: r.headers, body: r.body }
}

async fn start(store: Arc<BlobStore>, policy: Arc<dyn BlobAccessPolicy>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = node::blob_route::routes(store, policy);
    tokio::spawn(httpapi::serve_with(listener, router, ServerConfig::default(), std::future::pending()));
    addr
}

#[tokio::test]
async fn public_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(BlobStore::open(&BlobConfig::local(dir.path())).unwrap());
    let content = Bytes::from_static(b"\x00\x01binary rows\xff");
    let hash = store.put(content.clone()).await.unwrap();
    let addr = start(store.clone(), Arc::new(PublicBlobs)).await;

    for target in [format!("/v1/blobs/{hash}"), format!("/v1/blobs/{}", hex::encode(hash))] {
        let r = get(addr, &target, &[]).await;
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.body, content.as_ref());
        assert_eq!(r.header("content-type").unwrap(), "application/octet-stream");
        assert_eq!(r.header("etag").unwrap(), format!("\"{hash}\""));
        assert!(hash.to_string().starts_with("0x") && hash.to_string().len() == 66);
        let cache = r.header("cache-control").unwrap();
        assert!(cache.contains("immutable") && cache.contains("public"), "{cache}");
    }

    // Revalidation.
    let r = get(addr, &format!("/v1/blobs/{hash}"), &[("If-None-Match", format!("\"{hash}\""))]).await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());

    // Unknown and malformed hashes.
    let unknown = B256::repeat_byte(0x11);
    let r = get(addr, &format!("/v1/blobs/{unknown}"), &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "blob_not_found");
    for bad in ["0x1234", "zz", &format!("{}zz", &hex::encode(hash)[2..])] {
        let r = get(addr, &format!("/v1/blobs/{bad}"), &[]).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.code(), "malformed_hash");
    }

    // Corrupt content is refused, not served.
    std::fs::write(dir.path().join(blobs::key(&hash)), b"tampered").unwrap();
    let r = get(addr, &format!("/v1/blobs/{hash}"), &[]).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.code(), "blob_corrupt");
}

/// Blobs readable only by one member.
struct MembersOnly(Address);

impl BlobAccessPolicy for MembersOnly {
    fn allowed(&self, _hash: &B256, caller: Option<Address>) -> Result<bool, String> {
        Ok(caller == Some(self.0))
    }
}

#[tokio::test]
async fn policy_decides() {
    let member = SecretKey::from_bytes(&[1; 32]).unwrap();
    let outsider = SecretKey::from_bytes(&[2; 32]).unwrap();
    let store = Arc::new(BlobStore::in_memory());
    let hash = store.put(Bytes::from_static(b"private rows")).await.unwrap();
    let addr = start(store, Arc::new(MembersOnly(member.address()))).await;
    let target = format!("/v1/blobs/{hash}");
    let signed = |k: &SecretKey| {
        vec![("X-OpenLedger-Auth", sign_request(k, &Audience::default(), "GET", &target, b"", unix_now()))]
    };

    // Refused exactly as a missing blob is: 404, the same code and message.
    let r = get(addr, &target, &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "blob_not_found");
    let missing = format!("/v1/blobs/{}", B256::repeat_byte(9));
    let m = get(addr, &missing, &[]).await;
    let msg = |r: &Reply| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["error"]["message"].clone();
    assert_eq!(
        msg(&m).as_str().unwrap().replace(&B256::repeat_byte(9).to_string(), "H"),
        msg(&r).as_str().unwrap().replace(&hash.to_string(), "H")
    );

    let r = get(addr, &target, &signed(&outsider)).await;
    assert_eq!(r.status, 404);

    let r = get(addr, &target, &signed(&member)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"private rows");
    assert!(r.header("cache-control").unwrap().starts_with("private"));

    // The policy is asked before the store: an unknown hash is the same 404.
    let r = get(addr, &format!("/v1/blobs/{}", B256::repeat_byte(3)), &[]).await;
    assert_eq!(r.status, 404);

    // Bad credentials are 401, not anonymous.
    let r = get(addr, &target, &[("X-OpenLedger-Auth", "nonsense".into())]).await;
    assert_eq!(r.status, 401);
}

struct Broken;

impl BlobAccessPolicy for Broken {
    fn allowed(&self, _hash: &B256, _caller: Option<Address>) -> Result<bool, String> {
        Err("state unavailable".into())
    }
}

#[tokio::test]
async fn policy_failure_is_500() {
    let store = Arc::new(BlobStore::in_memory());
    let hash = store.put(Bytes::from_static(b"x")).await.unwrap();
    let addr = start(store, Arc::new(Broken)).await;
    let r = get(addr, &format!("/v1/blobs/{hash}"), &[]).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.code(), "policy_error");
}
