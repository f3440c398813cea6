//! Signing HTTP requests to an OpenLedger node: the client half of the
//! signed-request format whose server half (parsing, verification, nonces,
//! body checks) is `httpapi::auth`. Clients (the CLI, tests, benchmarks) sign
//! with these and need nothing of the HTTP server.
//!
//! A request carries `X-OpenLedger-Auth: v2:<address>:<chain id>:<node>:<unix-seconds>:<nonce>:<body hash>:<0x signature>`,
//! an EIP-191 `personal_sign` over [`request_message`] by the caller's key.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, hex};
use primitives::content_hash;

use crate::SecretKey;

/// The signed-request header (HTTP header names are case-insensitive).
pub const AUTH_HEADER: &str = "x-openledger-auth";

/// The version of the signed-request format this server speaks: the first field of
/// the header. Version 1 (`<address>:<unix-seconds>:<signature>`, no nonce, no
/// node binding, `-` for streamed bodies) is refused with
/// `httpapi::AuthError::UnsupportedVersion`.
pub const AUTH_VERSION: &str = "v2";

/// First line of every signed request message.
pub const MESSAGE_PREFIX: &str = "OpenLedger request v2";

/// The chain id of dev chains (the local-chain convention), used by [`Audience::default`].
pub const DEV_CHAIN_ID: u64 = 31337;

/// Who a signed request is for: the chain and the node. A signature made for one
/// node (or chain) is refused by every other, so a header seen by one node cannot
/// be replayed against another. Clients learn a node's audience from
/// `GET /v1/node/auth` (`httpapi::app` serves it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Audience {
    pub chain_id: u64,
    /// The node's HTTP identity (the node keeps a random one in its data directory).
    pub node: Address,
}

impl Default for Audience {
    /// The dev chain and the zero node: what `httpapi::ServerConfig::default` uses (tests).
    fn default() -> Self {
        Audience { chain_id: DEV_CHAIN_ID, node: Address::ZERO }
    }
}

fn lower_hex_address(a: &Address) -> String {
    format!("0x{}", hex::encode(a))
}

/// The message a signed request signs (EIP-191 `personal_sign`, UTF-8), seven lines
/// joined by `\n` with no trailing newline:
///
/// ```text
/// OpenLedger request v2
/// <chain id, decimal>
/// <node address, 0x + 40 lowercase hex digits>
/// <METHOD> <path-and-query>
/// <unix-seconds>
/// <nonce>
/// <hex blake3 of the body, 64 lowercase digits without 0x>
/// ```
pub fn request_message(
    audience: &Audience,
    method: &str,
    path_and_query: &str,
    timestamp: u64,
    nonce: &str,
    body_hash: &B256,
) -> String {
    format!(
        "{MESSAGE_PREFIX}\n{}\n{}\n{method} {path_and_query}\n{timestamp}\n{nonce}\n{}",
        audience.chain_id,
        lower_hex_address(&audience.node),
        hex::encode(body_hash)
    )
}

/// A fresh nonce: 16 random bytes in hex.
pub fn new_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The `X-OpenLedger-Auth` value for a request to the node `audience` whose
/// signature binds `body` (pass `&[]` for a request without a body), with a fresh
/// nonce: every call gives a header that the node accepts once. `method` is sent as
/// is (use the uppercase name, `GET`); `path_and_query` is the request target
/// exactly as sent (`/v1/blobs/0xab?x=1`); `now` is the current unix time in seconds.
pub fn sign_request(
    key: &SecretKey,
    audience: &Audience,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: u64,
) -> String {
    sign_request_with(key, audience, method, path_and_query, &content_hash(body), now, &new_nonce())
}

/// [`sign_request`] with the body's hash computed by the caller (a large upload
/// hashed while it is read from disk) and a chosen nonce (tests).
pub fn sign_request_with(
    key: &SecretKey,
    audience: &Audience,
    method: &str,
    path_and_query: &str,
    body_hash: &B256,
    now: u64,
    nonce: &str,
) -> String {
    let message = request_message(audience, method, path_and_query, now, nonce, body_hash);
    let signature = key.sign_message(message.as_bytes());
    format!(
        "{AUTH_VERSION}:{}:{}:{}:{now}:{nonce}:{}:0x{}",
        key.address(),
        audience.chain_id,
        lower_hex_address(&audience.node),
        hex::encode(body_hash),
        hex::encode(signature.as_bytes())
    )
}

/// The unix time in seconds by the system clock.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The hash under which an API key is bound to an address: blake3 of its UTF-8 bytes.
pub fn api_key_hash(key: &str) -> B256 {
    content_hash(key.as_bytes())
}
