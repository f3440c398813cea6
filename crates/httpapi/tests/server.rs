//! The server over real TCP: health, JSON 404/405, authentication by signed request
//! and by API key, body limits and timeouts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::Address;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use httpapi::auth::{BodyReadError, allow_streamed_body, api_key_hash, read_body};
use httpapi::{Audience, AuthedCaller, MaybeCaller, ServerConfig, sign_request, sign_request_with, unix_now};
use keys::SecretKey;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap().to_owned()
    }
    fn error_message(&self) -> String {
        self.json()["error"]["message"].as_str().unwrap().to_owned()
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap().trim(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
async fn send(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, String)], body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw)).await.unwrap().unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))).collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Reply { status, headers, body }
}

fn key() -> SecretKey {
    SecretKey::from_bytes(&[0x42; 32]).unwrap()
}

/// What the streaming test route kept (body lengths).
type Kept = Arc<std::sync::Mutex<Vec<usize>>>;

fn test_routes(kept: Kept) -> Router {
    Router::new()
        .route(
            "/whoami",
            post(|AuthedCaller(a): AuthedCaller, body: Bytes| async move { format!("{a} {}", body.len()) }),
        )
        .route("/whoami", get(|AuthedCaller(a): AuthedCaller| async move { format!("{a}") }))
        .route(
            "/maybe",
            get(|MaybeCaller(a): MaybeCaller| async move { a.map_or("anonymous".to_owned(), |a| a.to_string()) }),
        )
        .route(
            "/upload",
            // Like the ingest route: read the whole body (its hash checked at the
            // end of the stream) before anything is kept.
            put(|AuthedCaller(a): AuthedCaller, axum::extract::State(kept): axum::extract::State<Kept>, body: Body| async move {
                match read_body(body, usize::MAX).await {
                    Ok(b) => {
                        kept.lock().unwrap().push(b.len());
                        format!("{a} {}", b.len()).into_response()
                    }
                    Err(e) => e.into_response(),
                }
            })
            .route_layer(allow_streamed_body()),
        )
        .route("/json", post(|axum::Json(v): axum::Json<Value>| async move { axum::Json(v) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .with_state(kept)
}

async fn start(config: ServerConfig) -> SocketAddr {
    start_keeping(config).await.0
}

async fn start_keeping(config: ServerConfig) -> (SocketAddr, Kept) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let kept = Kept::default();
    tokio::spawn(httpapi::serve_with(listener, test_routes(kept.clone()), config, std::future::pending()));
    (addr, kept)
}

/// A header for the default server's audience (dev chain, zero node), fresh nonce.
fn sign(k: &SecretKey, method: &str, target: &str, body: &[u8], now: u64) -> String {
    sign_request(k, &Audience::default(), method, target, body, now)
}

async fn start_default() -> SocketAddr {
    start(ServerConfig::default()).await
}

fn auth(v: String) -> Vec<(&'static str, String)> {
    vec![("X-OpenLedger-Auth", v)]
}

#[tokio::test]
async fn health() {
    let addr = start_default().await;
    let r = send(addr, "GET", "/health", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "ok");
}

#[tokio::test]
async fn not_found_and_method_not_allowed_are_json() {
    let addr = start_default().await;
    let r = send(addr, "GET", "/nope", &[], b"").await;
    assert_eq!(r.status, 404);
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    let j = r.json();
    assert_eq!(j["error"]["code"], "not_found");
    assert_eq!(j["error"]["type"], "not_found_error");
    assert_eq!(j["error"]["message"], "no route for GET /nope");

    let r = send(addr, "DELETE", "/health", &[], b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.error_code(), "method_not_allowed");
    assert!(r.error_message().contains("DELETE"), "{}", r.text());
}

#[tokio::test]
async fn extractor_rejections_become_json() {
    let addr = start_default().await;
    let r = send(addr, "POST", "/json", &[("Content-Type", "application/json".into())], b"{not json").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");

    let big = vec![b'x'; 3 * 1024 * 1024];
    let r = send(addr, "POST", "/json", &[("Content-Type", "application/json".into())], &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "payload_too_large");
}

#[tokio::test]
async fn good_signature_is_accepted() {
    let addr = start_default().await;
    let k = key();
    let body = b"some body";
    let r = send(addr, "POST", "/whoami", &auth(sign(&k, "POST", "/whoami", body, unix_now())), body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), format!("{} {}", k.address(), body.len()));

    // A query string is part of what is signed.
    let target = "/whoami?x=1&y=%20z";
    let r = send(addr, "GET", target, &auth(sign(&k, "GET", target, b"", unix_now())), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), k.address().to_string());

    // Optional auth: signed and anonymous.
    let r = send(addr, "GET", "/maybe", &auth(sign(&k, "GET", "/maybe", b"", unix_now())), b"").await;
    assert_eq!(r.text(), k.address().to_string());
    let r = send(addr, "GET", "/maybe", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "anonymous");
}

#[tokio::test]
async fn missing_credentials_are_refused() {
    let addr = start_default().await;
    let r = send(addr, "GET", "/whoami", &[], b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "missing_auth");
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    assert!(r.error_message().contains("X-OpenLedger-Auth"));
}

#[tokio::test]
async fn wrong_address_is_refused() {
    let addr = start_default().await;
    let k = key();
    let other = SecretKey::from_bytes(&[0x43; 32]).unwrap();
    let v = sign(&k, "GET", "/whoami", b"", unix_now());
    let mut fields: Vec<String> = v.split(':').map(str::to_owned).collect();
    fields[1] = other.address().to_string();
    let forged = fields.join(":");
    let r = send(addr, "GET", "/whoami", &auth(forged), b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "bad_signature");
    let m = r.error_message();
    assert!(m.contains(&format!("recovers to {}", k.address())), "{m}");
    assert!(m.contains(&format!("claims {}", other.address())), "{m}");
}

#[tokio::test]
async fn tampered_path_is_refused() {
    let addr = start_default().await;
    let k = key();
    let r = send(addr, "GET", "/whoami?x=2", &auth(sign(&k, "GET", "/whoami?x=1", b"", unix_now())), b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "bad_signature");
    assert!(r.error_message().contains("GET /whoami?x=2"), "{}", r.error_message());

    // Same path, other method.
    let r = send(addr, "POST", "/whoami", &auth(sign(&k, "GET", "/whoami", b"", unix_now())), b"").await;
    assert_eq!(r.error_code(), "bad_signature");
}

#[tokio::test]
async fn tampered_body_is_refused() {
    let addr = start_default().await;
    let k = key();
    let v = sign(&k, "POST", "/whoami", b"pay 1", unix_now());
    let r = send(addr, "POST", "/whoami", &auth(v.clone()), b"pay 9").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "body_hash_mismatch");
    // Editing the signed hash in the header to match breaks the signature.
    let mut fields: Vec<String> = v.split(':').map(str::to_owned).collect();
    fields[6] = alloy_primitives::hex::encode(primitives::content_hash(b"pay 9"));
    let r = send(addr, "POST", "/whoami", &auth(fields.join(":")), b"pay 9").await;
    assert_eq!(r.error_code(), "bad_signature");
}

#[tokio::test]
async fn expired_timestamp_is_refused() {
    let addr = start_default().await;
    let k = key();
    for when in [unix_now() - 301, unix_now() + 400] {
        let r = send(addr, "GET", "/whoami", &auth(sign(&k, "GET", "/whoami", b"", when)), b"").await;
        assert_eq!(r.status, 401);
        assert_eq!(r.error_code(), "expired_signature");
        assert!(r.error_message().contains("at most 300 s"), "{}", r.error_message());
    }
}

#[tokio::test]
async fn malformed_header_is_refused() {
    let addr = start_default().await;
    let k = key();
    let good = sign(&k, "GET", "/whoami", b"", unix_now());
    for bad in ["garbage".to_owned(), good.replacen(':', ";", 2), format!("{good}00")] {
        let r = send(addr, "GET", "/whoami", &auth(bad.clone()), b"").await;
        assert_eq!(r.status, 401, "{bad}");
        assert_eq!(r.error_code(), "malformed_auth", "{bad}");
        assert!(r.error_message().contains("X-OpenLedger-Auth"));
    }
    // Wrong credentials are refused even where anonymous callers are welcome.
    let r = send(addr, "GET", "/maybe", &auth("garbage".into()), b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "malformed_auth");
    // Both kinds of credentials at once.
    let headers = vec![("X-OpenLedger-Auth", good), ("Authorization", "Bearer k".into())];
    let r = send(addr, "GET", "/whoami", &headers, b"").await;
    assert_eq!(r.error_code(), "conflicting_auth");
}

#[tokio::test]
async fn large_signed_bodies_are_checked_at_the_end_of_the_stream() {
    let (addr, kept) = start_keeping(ServerConfig { max_signed_body_bytes: 1000, ..ServerConfig::default() }).await;
    let k = key();
    let body = vec![7u8; 100_000];
    let r = send(addr, "PUT", "/upload", &auth(sign(&k, "PUT", "/upload", &body, unix_now())), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), format!("{} {}", k.address(), body.len()));
    assert_eq!(*kept.lock().unwrap(), vec![body.len()]);

    // One byte changed near the end: the route sees the error where the stream
    // would end, and keeps nothing.
    let mut other = body.clone();
    other[99_999] = 8;
    let r = send(addr, "PUT", "/upload", &auth(sign(&k, "PUT", "/upload", &body, unix_now())), &other).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.error_code(), "body_hash_mismatch");
    assert_eq!(kept.lock().unwrap().len(), 1, "nothing kept from a body that was not signed");

    // Small bodies are checked before the route runs, on streaming routes too.
    let r = send(addr, "PUT", "/upload", &auth(sign(&k, "PUT", "/upload", b"abc", unix_now())), b"abd").await;
    assert_eq!(r.error_code(), "body_hash_mismatch");
    assert_eq!(kept.lock().unwrap().len(), 1);
}

/// `PUT /upload` with a chunked body (no Content-Length): the middleware reads a
/// prefix before it knows the body is too large to check up front.
async fn put_chunked(addr: SocketAddr, auth_value: String, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /upload HTTP/1.1\r\nHost: test\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nX-OpenLedger-Auth: {auth_value}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(700) {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.unwrap();
        s.write_all(chunk).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw)).await.unwrap().unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Reply { status, headers: vec![], body }
}

#[tokio::test]
async fn chunked_signed_bodies_are_checked_too() {
    let (addr, kept) = start_keeping(ServerConfig { max_signed_body_bytes: 1000, ..ServerConfig::default() }).await;
    let k = key();
    let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let r = put_chunked(addr, sign(&k, "PUT", "/upload", &body, unix_now()), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), format!("{} {}", k.address(), body.len()));
    let mut other = body.clone();
    other[10] ^= 1; // in the prefix the middleware read before streaming
    let r = put_chunked(addr, sign(&k, "PUT", "/upload", &body, unix_now()), &other).await;
    assert_eq!(r.error_code(), "body_hash_mismatch", "{}", r.text());
    let small = b"tiny".to_vec();
    let r = put_chunked(addr, sign(&k, "PUT", "/upload", &small, unix_now()), b"tinY").await;
    assert_eq!(r.error_code(), "body_hash_mismatch", "{}", r.text());
    assert_eq!(*kept.lock().unwrap(), vec![body.len()]);
}

#[tokio::test]
async fn read_body_reports_the_mismatch() {
    // The error type a streaming route matches on.
    let e = BodyReadError::TooLarge { limit: 3 };
    assert_eq!(e.clone().into_response().status(), 413);
    let body = Body::from(vec![1u8; 10]);
    assert!(matches!(read_body(body, 3).await, Err(BodyReadError::TooLarge { limit: 3 })));
}

#[tokio::test]
async fn a_header_is_accepted_once() {
    let addr = start_default().await;
    let k = key();
    let v = sign(&k, "POST", "/whoami", b"pay 1", unix_now());
    let r = send(addr, "POST", "/whoami", &auth(v.clone()), b"pay 1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(addr, "POST", "/whoami", &auth(v), b"pay 1").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "replayed_request");
    // The same nonce under another key is another request.
    let other = SecretKey::from_bytes(&[0x43; 32]).unwrap();
    let h = primitives::content_hash(b"");
    let a = sign_request_with(&k, &Audience::default(), "GET", "/whoami", &h, unix_now(), "same");
    let b = sign_request_with(&other, &Audience::default(), "GET", "/whoami", &h, unix_now(), "same");
    assert_eq!(send(addr, "GET", "/whoami", &auth(a), b"").await.status, 200);
    assert_eq!(send(addr, "GET", "/whoami", &auth(b), b"").await.status, 200);
}

#[tokio::test]
async fn the_nonce_set_is_bounded_and_refuses_when_full() {
    let addr = start(ServerConfig { max_remembered_nonces: 2, ..ServerConfig::default() }).await;
    let k = key();
    for _ in 0..2 {
        let r = send(addr, "GET", "/whoami", &auth(sign(&k, "GET", "/whoami", b"", unix_now())), b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = send(addr, "GET", "/whoami", &auth(sign(&k, "GET", "/whoami", b"", unix_now())), b"").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.error_code(), "nonce_cache_full");
    // API keys and anonymous routes are not affected.
    assert_eq!(send(addr, "GET", "/maybe", &[], b"").await.status, 200);
}

#[tokio::test]
async fn signed_for_another_chain_or_node_is_refused() {
    let node = Audience { chain_id: 7, node: Address::repeat_byte(0x11) };
    let addr = start(ServerConfig { audience: node, ..ServerConfig::default() }).await;
    let k = key();
    // What to sign for, from the node itself.
    let r = send(addr, "GET", "/v1/node/auth", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["chainId"], 7);
    assert_eq!(r.json()["version"], "v2");
    let named: Address = r.json()["node"].as_str().unwrap().parse().unwrap();
    assert_eq!(named, node.node);

    let ok = sign_request(&k, &node, "GET", "/whoami", b"", unix_now());
    assert_eq!(send(addr, "GET", "/whoami", &auth(ok), b"").await.status, 200);
    let other_chain = sign_request(&k, &Audience { chain_id: 8, ..node }, "GET", "/whoami", b"", unix_now());
    let r = send(addr, "GET", "/whoami", &auth(other_chain), b"").await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "wrong_chain"));
    assert!(r.error_message().contains("chain id 8"), "{}", r.error_message());
    let other_node =
        sign_request(&k, &Audience { node: Address::repeat_byte(0x22), ..node }, "GET", "/whoami", b"", unix_now());
    let r = send(addr, "GET", "/whoami", &auth(other_node), b"").await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "wrong_node"));
}

#[tokio::test]
async fn version_1_headers_get_a_clear_error() {
    let addr = start_default().await;
    let k = key();
    let now = unix_now();
    let message = format!(
        "OpenLedger request\nGET /whoami\n{now}\n{}",
        alloy_primitives::hex::encode(primitives::content_hash(b""))
    );
    let v1 = format!(
        "{}:{now}:0x{}",
        k.address(),
        alloy_primitives::hex::encode(k.sign_message(message.as_bytes()).as_bytes())
    );
    let r = send(addr, "GET", "/whoami", &auth(v1), b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "unsupported_auth_version");
    assert!(r.error_message().contains("v2"), "{}", r.error_message());
}

#[tokio::test]
async fn signed_body_limit() {
    let addr = start(ServerConfig { max_signed_body_bytes: 1000, ..ServerConfig::default() }).await;
    let k = key();
    let body = vec![1u8; 1001];
    let v = sign(&k, "POST", "/whoami", &body, unix_now());
    let r = send(addr, "POST", "/whoami", &auth(v), &body).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "signed_body_too_large");
}

#[tokio::test]
async fn bearer_api_key() {
    let who = Address::repeat_byte(0xab);
    let table: HashMap<_, _> = [(api_key_hash("sk-live-123"), who)].into();
    let addr = start(ServerConfig { api_keys: Arc::new(table), ..ServerConfig::default() }).await;

    let r = send(addr, "GET", "/whoami", &[("Authorization", "Bearer sk-live-123".into())], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), who.to_string());

    let r = send(addr, "POST", "/whoami", &[("Authorization", "Bearer sk-live-123".into())], b"xyz").await;
    assert_eq!(r.text(), format!("{who} 3"));

    let r = send(addr, "GET", "/whoami", &[("Authorization", "Bearer sk-wrong".into())], b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "unknown_api_key");

    let r = send(addr, "GET", "/whoami", &[("Authorization", "Basic abc".into())], b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "malformed_auth");
}

#[tokio::test]
async fn no_api_keys_by_default() {
    let addr = start_default().await;
    let r = send(addr, "GET", "/whoami", &[("Authorization", "Bearer sk-live-123".into())], b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "unknown_api_key");
}

#[tokio::test]
async fn request_timeout() {
    let addr = start(ServerConfig { request_timeout: Duration::from_millis(200), ..ServerConfig::default() }).await;
    let r = send(addr, "GET", "/slow", &[], b"").await;
    assert_eq!(r.status, 408);
    assert_eq!(r.error_code(), "request_timeout");
}

#[tokio::test]
async fn graceful_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(httpapi::serve_with(listener, Router::new(), ServerConfig::default(), async {
        let _ = rx.await;
    }));
    assert_eq!(send(addr, "GET", "/health", &[], b"").await.status, 200);
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}
