//! The node's one HTTP server (127.0.0.1:8080, `--http-addr`), and the one way its
//! callers authenticate by address.
//!
//! # The server
//!
//! Each service exposes a `routes(...) -> axum::Router`; the node merges them and
//! hands the result to [`serve`] (or [`serve_with`]). [`app`] wraps the merged router
//! with what every route shares:
//!
//! - `GET /health` → `200 ok` (text);
//! - errors in the OpenAI style, `{"error": {"message", "type", "code"}}`: a JSON 404
//!   for unknown paths, a JSON 405 for a known path under another method, and every
//!   other non-JSON error (axum's extractor rejections, 413, ...) rewritten into the
//!   same shape; routes build their own with [`error_response`] or [`ApiError`];
//! - a default body limit ([`ServerConfig::max_body_bytes`], axum's
//!   `DefaultBodyLimit`, which a route may raise with its own `DefaultBodyLimit`
//!   layer); routes that stream a raw `Body` enforce their own cap (e.g.
//!   `blobs::BlobStore::put_stream`'s `max_bytes`);
//! - a request timeout ([`ServerConfig::request_timeout`], 408 when the handler has
//!   not answered in time; a streamed response body is not bounded by it);
//! - the authentication middleware ([`auth::authenticate`]).
//!
//! [`serve`] and [`serve_with`] give each request its peer's address as
//! `axum::extract::ConnectInfo<std::net::SocketAddr>` (the TCP peer: behind a
//! reverse proxy it is the proxy's address; `X-Forwarded-For` is not trusted).
//!
//! [`serve_with`] also takes a shutdown future: the server stops accepting, lets
//! requests in flight finish, then returns.
//!
//! # Authentication
//!
//! A caller proves an address in one of two ways.
//!
//! **Signed request** (EIP-191), format `v2`. The header
//!
//! ```text
//! X-OpenLedger-Auth: v2:<address>:<chain id>:<node>:<unix-seconds>:<nonce>:<body hash>:<0x signature>
//! ```
//!
//! where `<address>` is the caller's 20-byte address in hex (`0x` prefix; checksum
//! optional), `<chain id>` and `<unix-seconds>` decimal numbers, `<node>` the node's
//! HTTP identity (a 20-byte address; `GET /v1/node/auth` answers
//! `{"version": "v2", "chainId": …, "node": "0x…"}`), `<nonce>` 1 to 64 characters of
//! `[A-Za-z0-9_-]` never used before by this address (16 random bytes in hex), `<body
//! hash>` the blake3 hash of the exact body bytes as 64 lowercase hex digits (for an
//! empty body, the hash of zero bytes, `af1349b9…3262`), and `<0x signature>` the
//! 65-byte `r ‖ s ‖ v` signature in hex (`v` 27/28 or 0/1) that `personal_sign`
//! (EIP-191: keccak256 of `"\x19Ethereum Signed Message:\n" ‖ len ‖ message`) produces
//! over the UTF-8 message of seven lines joined by `\n`, with no trailing newline:
//!
//! ```text
//! OpenLedger request v2
//! <chain id>
//! <node, 0x + 40 lowercase hex digits>
//! <METHOD> <path-and-query>
//! <unix-seconds>
//! <nonce>
//! <body hash>
//! ```
//!
//! - `<METHOD>` is the request method as sent (`GET`, `POST`);
//! - `<path-and-query>` is the request target exactly as sent on the request line,
//!   percent-encoding included (`/v1/blobs/0xab…?x=1`).
//!
//! The server accepts it when it names this node's chain id and node (else
//! `wrong_chain` / `wrong_node`), the timestamp is within ±300 s of its clock, the
//! signature recovers to the claimed address, the body hashes to the signed hash
//! (`body_hash_mismatch`), and the (address, nonce) pair was not accepted before
//! (`replayed_request`). Nonces are remembered until their timestamp leaves the
//! window, in a set bounded by [`ServerConfig::max_remembered_nonces`] (expired ones
//! evicted; when it is full of live ones, signed requests are refused with 503
//! `nonce_cache_full` rather than the set growing or a live nonce being forgotten).
//! So a header is accepted once, at one node, for one body. Version 1 headers
//! (`<address>:<unix-seconds>:<signature>`) are refused with
//! `unsupported_auth_version`. [`sign_request`] builds the header value for the CLI
//! and tests.
//!
//! *Large bodies.* The middleware reads a signed body up to
//! [`ServerConfig::max_signed_body_bytes`] and checks its hash before any route runs.
//! A larger body reaches only routes that opt in with [`auth::allow_streamed_body`]
//! (other routes answer 413 `signed_body_too_large`), as a stream whose hash is
//! checked as it ends: instead of its end it yields an error carrying
//! `body_hash_mismatch`, so such a route reads the body to its end
//! ([`auth::read_body`]) before it stores or signs anything.
//!
//! **API key.** `Authorization: Bearer <key>`: the server hashes the key (blake3 of
//! its UTF-8 bytes, [`auth::api_key_hash`]) and asks the [`ApiKeyResolver`] which
//! address that hash is bound to on-chain ([`NoApiKeys`] until the inference module
//! provides one). Sending both headers is refused.
//!
//! Handlers take [`AuthedCaller`] (401 without valid credentials) or [`MaybeCaller`]
//! (`None` for anonymous callers; present-but-wrong credentials are still 401). A 401
//! body names the problem (`code`: `missing_auth`, `malformed_auth`,
//! `unsupported_auth_version`, `wrong_chain`, `wrong_node`, `expired_signature`,
//! `bad_signature`, `replayed_request`, `body_hash_mismatch`, `unknown_api_key`,
//! `conflicting_auth`).

pub mod auth;
mod error;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tokio::net::TcpListener;

pub use auth::{
    ApiKeyResolver, Audience, AuthError, AuthedCaller, MaybeCaller, NoApiKeys, sign_request, sign_request_with,
    unix_now,
};
pub use error::{ApiError, error_response};

/// Where the HTTP server listens by default (`--http-addr`).
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";

/// Settings shared by every route.
#[derive(Clone)]
pub struct ServerConfig {
    /// Default limit of bodies read by axum's extractors (`Bytes`, `Json`, ...).
    pub max_body_bytes: usize,
    /// Largest body the authentication middleware buffers to check a body-bound signature.
    pub max_signed_body_bytes: usize,
    /// Time a handler has to produce its response head.
    pub request_timeout: Duration,
    /// Resolves `Authorization: Bearer` keys to addresses.
    pub api_keys: Arc<dyn ApiKeyResolver>,
    /// This node's chain id and HTTP identity: signed requests must name them.
    pub audience: Audience,
    /// Most nonces of signed requests remembered at once (each for the ±300 s
    /// window); beyond it signed requests are refused (503) until some expire.
    pub max_remembered_nonces: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
            max_signed_body_bytes: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(300),
            api_keys: Arc::new(NoApiKeys),
            audience: Audience::default(),
            max_remembered_nonces: 100_000,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_signed_body_bytes", &self.max_signed_body_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("audience", &self.audience)
            .field("max_remembered_nonces", &self.max_remembered_nonces)
            .finish_non_exhaustive()
    }
}

/// The full application: the services' merged `router` plus `/health`,
/// `GET /v1/node/auth` (what a signed request must name), the JSON 404/405
/// fallbacks, error rewriting, body limit, timeout and authentication.
///
/// Panics if `router` already has a `/health` or `/v1/node/auth` route.
pub fn app(router: Router, config: &ServerConfig) -> Router {
    let auth_state = auth::AuthState {
        resolver: config.api_keys.clone(),
        max_signed_body_bytes: config.max_signed_body_bytes,
        audience: config.audience,
        nonces: Arc::new(auth::NonceCache::new(config.max_remembered_nonces)),
    };
    let audience = config.audience;
    let node_auth = move || async move {
        axum::Json(serde_json::json!({
            "version": auth::AUTH_VERSION,
            "chainId": audience.chain_id,
            "node": format!("{:#x}", audience.node),
        }))
    };
    router
        .route("/health", get(|| async { "ok" }))
        .route("/v1/node/auth", get(node_auth))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn_with_state(auth_state, auth::authenticate))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn_with_state(config.request_timeout, timeout))
}

async fn timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error_response(
            StatusCode::REQUEST_TIMEOUT,
            "timeout_error",
            "request_timeout",
            format!("the request was not answered within {} s", limit.as_secs_f64()),
        ),
    }
}

/// Serve `router` (wrapped by [`app`] with the default [`ServerConfig`]) on
/// `listener` until an I/O error.
pub async fn serve(listener: TcpListener, router: Router) -> io::Result<()> {
    serve_with(listener, router, ServerConfig::default(), std::future::pending()).await
}

/// Serve `router` wrapped by [`app`] with `config`; when `shutdown` completes, stop
/// accepting connections, let requests in flight finish, and return.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP server listening");
    }
    // Connection info gives routes the peer's address (`ConnectInfo<SocketAddr>`),
    // e.g. for rate limits of anonymous callers.
    axum::serve(listener, app(router, &config).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
