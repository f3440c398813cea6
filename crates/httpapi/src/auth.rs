//! Authentication of callers by address: the one way every route learns who calls it.
//!
//! The wire format is specified in the crate documentation ("Authentication"). In
//! short, a caller sends either
//!
//! - `X-OpenLedger-Auth: <address>:<unix-seconds>:<0x signature>`, an EIP-191
//!   `personal_sign` over [`request_message`], or
//! - `Authorization: Bearer <api key>`, resolved by an [`ApiKeyResolver`] from the
//!   blake3 hash of the key ([`api_key_hash`]).
//!
//! The server's [`authenticate`] middleware (installed by [`crate::app`]) checks the
//! headers once per request, buffering the body when the signature binds its hash,
//! and leaves its verdict in the request's extensions. Handlers then take
//! [`AuthedCaller`] (authentication required) or [`MaybeCaller`] (anonymous allowed);
//! both refuse a request whose credentials are present but wrong with 401 and an
//! OpenAI-style error naming what is wrong.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, Signature, hex};
use axum::Extension;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keys::SecretKey;
use primitives::content_hash;

use crate::error::error_response;

/// The signed-request header (HTTP header names are case-insensitive).
pub const AUTH_HEADER: &str = "x-openledger-auth";

/// First line of every signed request message.
pub const MESSAGE_PREFIX: &str = "OpenLedger request";

/// What a signature binds in place of the body hash on streaming upload routes.
pub const UNBOUND_BODY: &str = "-";

/// How far (in seconds, either way) a signed timestamp may be from the server clock.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// The message a signed request signs (EIP-191 `personal_sign`, UTF-8):
///
/// ```text
/// OpenLedger request\n<METHOD> <path-and-query>\n<unix-seconds>\n<hex blake3 of the body>
/// ```
///
/// `body_hash` `None` puts [`UNBOUND_BODY`] (`-`) in the last line (streaming routes
/// only). The hash is 64 lowercase hex digits without `0x`; lines are separated by a
/// single `\n` and there is no trailing newline.
pub fn request_message(method: &str, path_and_query: &str, timestamp: u64, body_hash: Option<&B256>) -> String {
    let body = match body_hash {
        Some(h) => hex::encode(h),
        None => UNBOUND_BODY.to_owned(),
    };
    format!("{MESSAGE_PREFIX}\n{method} {path_and_query}\n{timestamp}\n{body}")
}

/// The `X-OpenLedger-Auth` value for a request whose signature binds `body`
/// (pass `&[]` for a request without a body). `method` is sent as is (use the
/// uppercase name, `GET`); `path_and_query` is the request target exactly as sent
/// (`/v1/blobs/0xab?x=1`); `now` is the current unix time in seconds.
pub fn sign_request(key: &SecretKey, method: &str, path_and_query: &str, body: &[u8], now: u64) -> String {
    let message = request_message(method, path_and_query, now, Some(&content_hash(body)));
    header_value(key, &message, now)
}

/// The `X-OpenLedger-Auth` value for a streaming upload route: the signature binds
/// `-` instead of the body hash, so only the method, path and time are bound.
pub fn sign_request_unbound(key: &SecretKey, method: &str, path_and_query: &str, now: u64) -> String {
    header_value(key, &request_message(method, path_and_query, now, None), now)
}

fn header_value(key: &SecretKey, message: &str, now: u64) -> String {
    let signature = key.sign_message(message.as_bytes());
    format!("{}:{}:0x{}", key.address(), now, hex::encode(signature.as_bytes()))
}

/// The unix time in seconds by the system clock.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The hash under which an API key is bound to an address: blake3 of its UTF-8 bytes.
pub fn api_key_hash(key: &str) -> B256 {
    content_hash(key.as_bytes())
}

/// Maps the blake3 hash of an API key ([`api_key_hash`]) to the address it acts for
/// (the binding lives on-chain; the inference module provides the resolver).
pub trait ApiKeyResolver: Send + Sync {
    fn resolve(&self, key_hash: &B256) -> Option<Address>;
}

/// A resolver that knows no keys: every `Authorization: Bearer` is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoApiKeys;

impl ApiKeyResolver for NoApiKeys {
    fn resolve(&self, _key_hash: &B256) -> Option<Address> {
        None
    }
}

/// A fixed table of key hashes (tests, static configuration).
impl ApiKeyResolver for HashMap<B256, Address> {
    fn resolve(&self, key_hash: &B256) -> Option<Address> {
        self.get(key_hash).copied()
    }
}

impl<T: ApiKeyResolver + ?Sized> ApiKeyResolver for Arc<T> {
    fn resolve(&self, key_hash: &B256) -> Option<Address> {
        (**self).resolve(key_hash)
    }
}

/// Why a request's credentials were refused. Answers 401 (`authentication_error`)
/// with a message naming the problem; [`AuthError::NotInstalled`] answers 500.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "authentication required: send `X-OpenLedger-Auth: <address>:<unix-seconds>:<0x signature>` \
         or `Authorization: Bearer <api key>`"
    )]
    Missing,
    #[error("malformed {header} header: {reason}")]
    Malformed { header: &'static str, reason: String },
    #[error(
        "request signature expired: timestamp {timestamp} is {} s from the server clock ({now}); \
         at most {MAX_CLOCK_SKEW_SECS} s allowed",
        timestamp.abs_diff(*now)
    )]
    Expired { timestamp: u64, now: u64 },
    #[error(
        "bad signature: it {} but the header claims {claimed}; the server verified the message {signed:?}",
        match recovered { Some(a) => format!("recovers to {a}"), None => "recovers to no address".to_owned() }
    )]
    BadSignature { claimed: Address, recovered: Option<Address>, signed: String },
    #[error("unknown API key: no address is bound to this key")]
    UnknownApiKey,
    #[error(
        "the signature binds \"-\" instead of the body hash, which only streaming upload routes accept; \
         sign the hex blake3 of the body"
    )]
    UnboundBody,
    #[error("send either X-OpenLedger-Auth or Authorization, not both")]
    Conflicting,
    #[error("the request body is larger than the {limit} bytes a signature can bind here; streaming routes take \"-\"")]
    BodyTooLarge { limit: usize },
    #[error("authentication layer not installed: serve the router through httpapi::app / httpapi::serve")]
    NotInstalled,
}

impl AuthError {
    /// The stable `code` of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_auth",
            AuthError::Malformed { .. } => "malformed_auth",
            AuthError::Expired { .. } => "expired_signature",
            AuthError::BadSignature { .. } => "bad_signature",
            AuthError::UnknownApiKey => "unknown_api_key",
            AuthError::UnboundBody => "unbound_body",
            AuthError::Conflicting => "conflicting_auth",
            AuthError::BodyTooLarge { .. } => "signed_body_too_large",
            AuthError::NotInstalled => "auth_not_installed",
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        match self {
            AuthError::NotInstalled => {
                tracing::error!("{self}");
                error_response(StatusCode::INTERNAL_SERVER_ERROR, "server_error", self.code(), self.to_string())
            }
            AuthError::BodyTooLarge { .. } => {
                error_response(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", self.code(), self.to_string())
            }
            _ => error_response(StatusCode::UNAUTHORIZED, "authentication_error", self.code(), self.to_string()),
        }
    }
}

fn malformed(header: &'static str, reason: impl Into<String>) -> AuthError {
    AuthError::Malformed { header, reason: reason.into() }
}

/// A parsed `X-OpenLedger-Auth` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedHeader {
    pub address: Address,
    pub timestamp: u64,
    pub signature: Signature,
}

impl SignedHeader {
    /// Parse `<address>:<unix-seconds>:<0x signature>`: a 20-byte hex address (`0x`
    /// optional, checksum not required), decimal seconds, and the 65-byte signature
    /// `r ‖ s ‖ v` in hex (`v` 27/28 or 0/1).
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        const H: &str = "X-OpenLedger-Auth";
        let mut it = value.trim().splitn(3, ':');
        let (Some(address), Some(timestamp), Some(signature)) = (it.next(), it.next(), it.next()) else {
            return Err(malformed(H, "expected <address>:<unix-seconds>:<0x signature>"));
        };
        let address = {
            let digits = address.strip_prefix("0x").or_else(|| address.strip_prefix("0X")).unwrap_or(address);
            if digits.len() != 40 {
                return Err(malformed(H, format!("address {address:?} is not 20 bytes of hex")));
            }
            Address::from_str(digits).map_err(|_| malformed(H, format!("address {address:?} is not hex")))?
        };
        if timestamp.is_empty() || timestamp.len() > 20 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(H, format!("timestamp {timestamp:?} is not unix seconds")));
        }
        let timestamp: u64 =
            timestamp.parse().map_err(|_| malformed(H, format!("timestamp {timestamp:?} is out of range")))?;
        let digits = signature.strip_prefix("0x").or_else(|| signature.strip_prefix("0X")).unwrap_or(signature);
        if digits.len() != 130 {
            return Err(malformed(H, "signature must be 65 bytes (0x + 130 hex digits: r, s, v)"));
        }
        let bytes = hex::decode(digits).map_err(|_| malformed(H, "signature is not hex"))?;
        let signature =
            Signature::from_raw(&bytes).map_err(|e| malformed(H, format!("signature is not valid: {e}")))?;
        Ok(Self { address, timestamp, signature })
    }

    /// Refuse a timestamp more than [`MAX_CLOCK_SKEW_SECS`] from `now`.
    pub fn check_time(&self, now: u64) -> Result<(), AuthError> {
        if self.timestamp.abs_diff(now) > MAX_CLOCK_SKEW_SECS {
            return Err(AuthError::Expired { timestamp: self.timestamp, now });
        }
        Ok(())
    }

    /// Check the time, then that the signature over [`request_message`] recovers to
    /// the claimed address; returns that address.
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        body_hash: Option<&B256>,
        now: u64,
    ) -> Result<Address, AuthError> {
        self.check_time(now)?;
        let signed = request_message(method, path_and_query, self.timestamp, body_hash);
        let recovered = self.signature.recover_address_from_msg(signed.as_bytes()).ok();
        if recovered != Some(self.address) {
            return Err(AuthError::BadSignature { claimed: self.address, recovered, signed });
        }
        Ok(self.address)
    }
}

/// Marker extension: the route accepts signatures that bind `-` instead of the body
/// hash. Install it on a streaming upload route with [`allow_unbound_body`].
#[derive(Debug, Clone, Copy)]
pub struct UnboundBodyAllowed;

/// The layer a streaming upload route adds (`.route_layer(allow_unbound_body())`)
/// so that [`AuthedCaller`]/[`MaybeCaller`] accept `-` signatures on it.
pub fn allow_unbound_body() -> Extension<UnboundBodyAllowed> {
    Extension(UnboundBodyAllowed)
}

/// The verdict of [`authenticate`], left in the request's extensions.
#[derive(Debug, Clone)]
enum AuthOutcome {
    Anonymous,
    Caller { address: Address, unbound_body: bool },
    Failed(AuthError),
}

/// State of the [`authenticate`] middleware.
#[derive(Clone)]
pub struct AuthState {
    pub resolver: Arc<dyn ApiKeyResolver>,
    /// The largest body the middleware buffers to check a signature that binds its hash.
    pub max_signed_body_bytes: usize,
}

fn single_header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, AuthError> {
    let label = if name == AUTH_HEADER { "X-OpenLedger-Auth" } else { "Authorization" };
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(malformed(label, "sent more than once"));
    }
    first.to_str().map(Some).map_err(|_| malformed(label, "not visible ASCII"))
}

fn path_and_query(uri: &Uri) -> &str {
    uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v: &HeaderValue| v.to_str().ok()).and_then(|v| v.parse().ok())
}

fn bearer_outcome(value: &str, resolver: &dyn ApiKeyResolver) -> AuthOutcome {
    let value = value.trim();
    let key = match value.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
        _ => return AuthOutcome::Failed(malformed("Authorization", "expected `Bearer <api key>`")),
    };
    if key.is_empty() {
        return AuthOutcome::Failed(malformed("Authorization", "empty API key"));
    }
    match resolver.resolve(&api_key_hash(key)) {
        Some(address) => AuthOutcome::Caller { address, unbound_body: false },
        None => AuthOutcome::Failed(AuthError::UnknownApiKey),
    }
}

/// Middleware: check the request's credentials once and leave the verdict for the
/// extractors. A signature is first checked against the `-` message (no body read);
/// otherwise the body is buffered (up to [`AuthState::max_signed_body_bytes`], else
/// 413), hashed, checked against the body-bound message and handed on unchanged.
/// Credentials never refuse a request here: routes that do not authenticate ignore
/// them, and the extractors refuse wrong ones.
pub async fn authenticate(State(state): State<AuthState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let signed = single_header(&parts.headers, AUTH_HEADER);
    let bearer = single_header(&parts.headers, "authorization");
    let (outcome, body) = match (signed, bearer) {
        (Err(e), _) | (_, Err(e)) => (AuthOutcome::Failed(e), body),
        (Ok(None), Ok(None)) => (AuthOutcome::Anonymous, body),
        (Ok(Some(_)), Ok(Some(_))) => (AuthOutcome::Failed(AuthError::Conflicting), body),
        (Ok(None), Ok(Some(value))) => (bearer_outcome(value, &*state.resolver), body),
        (Ok(Some(value)), Ok(None)) => match SignedHeader::parse(value) {
            Err(e) => (AuthOutcome::Failed(e), body),
            Ok(signed) => {
                let now = unix_now();
                let method = parts.method.as_str();
                let target = path_and_query(&parts.uri);
                if let Err(e) = signed.check_time(now) {
                    (AuthOutcome::Failed(e), body)
                } else if signed.verify(method, target, None, now).is_ok() {
                    (AuthOutcome::Caller { address: signed.address, unbound_body: true }, body)
                } else {
                    let limit = state.max_signed_body_bytes;
                    if content_length(&parts.headers).is_some_and(|n| n > limit as u64) {
                        return AuthError::BodyTooLarge { limit }.into_response();
                    }
                    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
                        return AuthError::BodyTooLarge { limit }.into_response();
                    };
                    let outcome = match signed.verify(method, target, Some(&content_hash(&bytes)), now) {
                        Ok(address) => AuthOutcome::Caller { address, unbound_body: false },
                        Err(e) => AuthOutcome::Failed(e),
                    };
                    (outcome, Body::from(bytes))
                }
            }
        },
    };
    parts.extensions.insert(outcome);
    next.run(Request::from_parts(parts, body)).await
}

fn caller_of(parts: &Parts) -> Result<Option<Address>, AuthError> {
    let outcome = match parts.extensions.get::<AuthOutcome>() {
        Some(outcome) => outcome.clone(),
        None if parts.headers.contains_key(AUTH_HEADER) || parts.headers.contains_key(header::AUTHORIZATION) => {
            return Err(AuthError::NotInstalled);
        }
        None => AuthOutcome::Anonymous,
    };
    match outcome {
        AuthOutcome::Anonymous => Ok(None),
        AuthOutcome::Failed(e) => Err(e),
        AuthOutcome::Caller { unbound_body: true, .. } if parts.extensions.get::<UnboundBodyAllowed>().is_none() => {
            Err(AuthError::UnboundBody)
        }
        AuthOutcome::Caller { address, .. } => Ok(Some(address)),
    }
}

/// Extractor: the authenticated caller's address. Refuses anonymous requests and
/// wrong credentials with 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthedCaller(pub Address);

/// Extractor: the caller's address if the request carries credentials, `None` for
/// an anonymous request. Wrong credentials are still refused with 401 (never
/// silently treated as anonymous).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeCaller(pub Option<Address>);

impl<S: Send + Sync> FromRequestParts<S> for AuthedCaller {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        caller_of(parts)?.map(AuthedCaller).ok_or(AuthError::Missing)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeCaller {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        caller_of(parts).map(MaybeCaller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[7u8; 32]).unwrap()
    }

    #[test]
    fn message_layout() {
        let h = content_hash(b"");
        assert_eq!(
            request_message("GET", "/v1/x?a=1", 1_700_000_000, Some(&h)),
            format!("OpenLedger request\nGET /v1/x?a=1\n1700000000\n{}", hex::encode(h))
        );
        assert_eq!(request_message("PUT", "/up", 5, None), "OpenLedger request\nPUT /up\n5\n-");
    }

    #[test]
    fn sign_then_verify() {
        let k = key();
        let v = sign_request(&k, "POST", "/v1/echo", b"hello", 1000);
        let parts: Vec<&str> = v.split(':').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1], "1000");
        assert_eq!(parts[2].len(), 132);
        let h = SignedHeader::parse(&v).unwrap();
        assert_eq!(h.address, k.address());
        assert_eq!(h.verify("POST", "/v1/echo", Some(&content_hash(b"hello")), 1100), Ok(k.address()));
        assert!(matches!(
            h.verify("POST", "/v1/echo", Some(&content_hash(b"hellO")), 1100),
            Err(AuthError::BadSignature { .. })
        ));
        assert!(matches!(h.verify("POST", "/v1/echo", None, 1100), Err(AuthError::BadSignature { .. })));
        assert!(matches!(
            h.verify("POST", "/v1/echo", Some(&content_hash(b"hello")), 1301),
            Err(AuthError::Expired { .. })
        ));
        assert!(h.verify("POST", "/v1/echo", Some(&content_hash(b"hello")), 1300).is_ok());
        assert!(h.verify("POST", "/v1/echo", Some(&content_hash(b"hello")), 700).is_ok());

        let u = SignedHeader::parse(&sign_request_unbound(&k, "PUT", "/up", 1000)).unwrap();
        assert_eq!(u.verify("PUT", "/up", None, 1000), Ok(k.address()));
    }

    #[test]
    fn parse_refusals() {
        let k = key();
        let good = sign_request(&k, "GET", "/", b"", 1);
        let (addr, rest) = good.split_once(':').unwrap();
        let (_, sig) = rest.split_once(':').unwrap();
        for bad in [
            "",
            "nonsense",
            &format!("{addr}:1"),
            &format!("0x1234:1:{sig}"),
            &format!("{addr}:-1:{sig}"),
            &format!("{addr}:1e3:{sig}"),
            &format!("{addr}:1:0x1234"),
            &format!("{addr}:1:{}z", &sig[..sig.len() - 1]),
        ] {
            assert!(matches!(SignedHeader::parse(bad), Err(AuthError::Malformed { .. })), "{bad:?}");
        }
        // Without 0x prefixes, and with surrounding whitespace, it still parses.
        let bare = format!(" {}:1:{} ", &addr[2..], &sig[2..]);
        assert_eq!(SignedHeader::parse(&bare).unwrap(), SignedHeader::parse(&good).unwrap());
    }

    #[test]
    fn bearer() {
        let mut table = HashMap::new();
        table.insert(api_key_hash("sk-test"), Address::repeat_byte(9));
        assert!(matches!(
            bearer_outcome("Bearer sk-test", &table),
            AuthOutcome::Caller { address, unbound_body: false } if address == Address::repeat_byte(9)
        ));
        assert!(matches!(bearer_outcome("bearer  sk-test ", &table), AuthOutcome::Caller { .. }));
        assert!(matches!(bearer_outcome("Bearer nope", &table), AuthOutcome::Failed(AuthError::UnknownApiKey)));
        assert!(matches!(bearer_outcome("Basic abc", &table), AuthOutcome::Failed(AuthError::Malformed { .. })));
        assert!(matches!(bearer_outcome("Bearer sk-test", &NoApiKeys), AuthOutcome::Failed(AuthError::UnknownApiKey)));
    }
}
