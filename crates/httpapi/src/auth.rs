//! Authentication of callers by address: the one way every route learns who calls it.
//!
//! The wire format is specified in the crate documentation ("Authentication"). In
//! short, a caller sends either
//!
//! - `X-OpenLedger-Auth: v2:<address>:<chain id>:<node>:<unix-seconds>:<nonce>:<body hash>:<0x signature>`,
//!   an EIP-191 `personal_sign` over [`request_message`], or
//! - `Authorization: Bearer <api key>`, resolved by an [`ApiKeyResolver`] from the
//!   blake3 hash of the key ([`api_key_hash`]).
//!
//! The server's [`authenticate`] middleware (installed by [`crate::app`]) checks the
//! headers once per request: the signature, that it was made for this chain and this
//! node ([`Audience`]), the time, that its nonce was not seen before ([`NonceCache`]),
//! and that the body hashes to what was signed. It leaves its verdict in the
//! request's extensions. Handlers then take [`AuthedCaller`] (authentication
//! required) or [`MaybeCaller`] (anonymous allowed); both refuse a request whose
//! credentials are present but wrong with 401 and an OpenAI-style error naming what
//! is wrong.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use alloy_primitives::{Address, B256, Signature, hex};
use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use crate::error::error_response;

pub use keys::request::{
    AUTH_HEADER, AUTH_VERSION, Audience, DEV_CHAIN_ID, MESSAGE_PREFIX, api_key_hash, new_nonce, request_message,
    sign_request, sign_request_with, unix_now,
};

/// How far (in seconds, either way) a signed timestamp may be from the server clock.
/// A nonce is remembered for as long as its timestamp is acceptable.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// Longest nonce accepted (characters of `[A-Za-z0-9_-]`).
pub const MAX_NONCE_LEN: usize = 64;

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
/// with a message naming the problem, except [`AuthError::BodyTooLarge`] (413),
/// [`AuthError::NonceCacheFull`] (503) and [`AuthError::NotInstalled`] (500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "authentication required: send `X-OpenLedger-Auth: v2:<address>:<chain id>:<node>:<unix-seconds>:<nonce>:<body hash>:<0x signature>` \
         (GET /v1/node/auth names this node's chain id and node) or `Authorization: Bearer <api key>`"
    )]
    Missing,
    #[error("malformed {header} header: {reason}")]
    Malformed { header: &'static str, reason: String },
    #[error(
        "X-OpenLedger-Auth format {found} is not accepted: this node speaks {AUTH_VERSION} \
         (`v2:<address>:<chain id>:<node>:<unix-seconds>:<nonce>:<body hash>:<0x signature>`, which binds \
         the chain, the node, a one-time nonce and the body); update the client that signed it"
    )]
    UnsupportedVersion { found: String },
    #[error("the request was signed for chain id {signed}, but this node is on chain id {expected}")]
    WrongChain { signed: u64, expected: u64 },
    #[error(
        "the request was signed for node {signed}, but this is node {expected} (GET /v1/node/auth); \
         a signed request is valid only at the node it names"
    )]
    WrongNode { signed: Address, expected: Address },
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
    #[error("replayed request: nonce {nonce:?} of {address} was already used; sign each request with a fresh nonce")]
    Replayed { address: Address, nonce: String },
    #[error("this node remembers {capacity} recent request nonces and all are in use; retry in a few seconds")]
    NonceCacheFull { capacity: usize },
    #[error("the request body does not match the signed body hash: signed {signed}, received {received}")]
    BodyMismatch { signed: B256, received: B256 },
    #[error("unknown API key: no address is bound to this key")]
    UnknownApiKey,
    #[error("send either X-OpenLedger-Auth or Authorization, not both")]
    Conflicting,
    #[error(
        "the request body is larger than the {limit} bytes this node checks against a signature before a route \
         runs; only streaming upload routes take larger signed bodies"
    )]
    BodyTooLarge { limit: usize },
    #[error("cannot read the request body: {0}")]
    BodyUnreadable(String),
    #[error("authentication layer not installed: serve the router through httpapi::app / httpapi::serve")]
    NotInstalled,
}

impl AuthError {
    /// The stable `code` of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_auth",
            AuthError::Malformed { .. } => "malformed_auth",
            AuthError::UnsupportedVersion { .. } => "unsupported_auth_version",
            AuthError::WrongChain { .. } => "wrong_chain",
            AuthError::WrongNode { .. } => "wrong_node",
            AuthError::Expired { .. } => "expired_signature",
            AuthError::BadSignature { .. } => "bad_signature",
            AuthError::Replayed { .. } => "replayed_request",
            AuthError::NonceCacheFull { .. } => "nonce_cache_full",
            AuthError::BodyMismatch { .. } => "body_hash_mismatch",
            AuthError::UnknownApiKey => "unknown_api_key",
            AuthError::Conflicting => "conflicting_auth",
            AuthError::BodyTooLarge { .. } => "signed_body_too_large",
            AuthError::BodyUnreadable(_) => "unreadable_body",
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
            AuthError::BodyUnreadable(_) => {
                error_response(StatusCode::BAD_REQUEST, "invalid_request_error", self.code(), self.to_string())
            }
            AuthError::NonceCacheFull { .. } => {
                error_response(StatusCode::SERVICE_UNAVAILABLE, "server_error", self.code(), self.to_string())
            }
            _ => error_response(StatusCode::UNAUTHORIZED, "authentication_error", self.code(), self.to_string()),
        }
    }
}

fn malformed(header: &'static str, reason: impl Into<String>) -> AuthError {
    AuthError::Malformed { header, reason: reason.into() }
}

fn parse_address(h: &'static str, what: &str, s: &str) -> Result<Address, AuthError> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    if digits.len() != 40 {
        return Err(malformed(h, format!("{what} {s:?} is not 20 bytes of hex")));
    }
    Address::from_str(digits).map_err(|_| malformed(h, format!("{what} {s:?} is not hex")))
}

fn parse_decimal(h: &'static str, what: &str, s: &str) -> Result<u64, AuthError> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(h, format!("{what} {s:?} is not a decimal number")));
    }
    s.parse().map_err(|_| malformed(h, format!("{what} {s:?} is out of range")))
}

/// A parsed `X-OpenLedger-Auth` value (format [`AUTH_VERSION`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeader {
    pub address: Address,
    /// Who the request was signed for.
    pub audience: Audience,
    pub timestamp: u64,
    pub nonce: String,
    /// The blake3 hash of the body the signature binds.
    pub body_hash: B256,
    pub signature: Signature,
}

impl SignedHeader {
    /// Parse `v2:<address>:<chain id>:<node>:<unix-seconds>:<nonce>:<body hash>:<0x signature>`:
    /// 20-byte hex addresses (`0x` optional, checksum not required), decimal chain id
    /// and seconds, a nonce of 1 to [`MAX_NONCE_LEN`] characters of `[A-Za-z0-9_-]`,
    /// the body's blake3 in hex, and the 65-byte signature `r ‖ s ‖ v` in hex (`v`
    /// 27/28 or 0/1). A value of another version is [`AuthError::UnsupportedVersion`].
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        const H: &str = "X-OpenLedger-Auth";
        let value = value.trim();
        let fields: Vec<&str> = value.split(':').collect();
        match fields.first() {
            Some(&v) if v == AUTH_VERSION => {}
            // Version 1 had no version field and started with the address.
            Some(first) if fields.len() == 3 && (first.len() == 40 || first.len() == 42) => {
                return Err(AuthError::UnsupportedVersion { found: "v1".into() });
            }
            Some(v) if v.len() <= 8 && v.starts_with('v') && v[1..].bytes().all(|b| b.is_ascii_digit()) => {
                return Err(AuthError::UnsupportedVersion { found: v.to_string() });
            }
            _ => {
                return Err(malformed(
                    H,
                    "expected v2:<address>:<chain id>:<node>:<unix-seconds>:<nonce>:<body hash>:<0x signature>",
                ));
            }
        }
        let [_, address, chain_id, node, timestamp, nonce, body_hash, signature] = fields[..] else {
            return Err(malformed(
                H,
                format!(
                    "expected 8 fields separated by ':' (v2:<address>:<chain id>:<node>:<unix-seconds>:<nonce>:<body hash>:<0x signature>), got {}",
                    fields.len()
                ),
            ));
        };
        let address = parse_address(H, "address", address)?;
        let chain_id = parse_decimal(H, "chain id", chain_id)?;
        let node = parse_address(H, "node", node)?;
        let timestamp = parse_decimal(H, "timestamp", timestamp)?;
        if nonce.is_empty()
            || nonce.len() > MAX_NONCE_LEN
            || !nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(malformed(H, format!("nonce must be 1 to {MAX_NONCE_LEN} characters of [A-Za-z0-9_-]")));
        }
        let hash_digits = body_hash.strip_prefix("0x").unwrap_or(body_hash);
        if hash_digits.len() != 64 {
            return Err(malformed(H, "body hash must be 32 bytes of hex (the blake3 of the body)"));
        }
        let body_hash = B256::from_str(hash_digits).map_err(|_| malformed(H, "body hash is not hex"))?;
        let digits = signature.strip_prefix("0x").or_else(|| signature.strip_prefix("0X")).unwrap_or(signature);
        if digits.len() != 130 {
            return Err(malformed(H, "signature must be 65 bytes (0x + 130 hex digits: r, s, v)"));
        }
        let bytes = hex::decode(digits).map_err(|_| malformed(H, "signature is not hex"))?;
        let signature =
            Signature::from_raw(&bytes).map_err(|e| malformed(H, format!("signature is not valid: {e}")))?;
        Ok(Self {
            address,
            audience: Audience { chain_id, node },
            timestamp,
            nonce: nonce.to_string(),
            body_hash,
            signature,
        })
    }

    /// Refuse a timestamp more than [`MAX_CLOCK_SKEW_SECS`] from `now`.
    pub fn check_time(&self, now: u64) -> Result<(), AuthError> {
        if self.timestamp.abs_diff(now) > MAX_CLOCK_SKEW_SECS {
            return Err(AuthError::Expired { timestamp: self.timestamp, now });
        }
        Ok(())
    }

    /// Check that the request was signed for `expected`, the time, then that the
    /// signature over [`request_message`] (with the header's body hash) recovers to
    /// the claimed address; returns that address. The body itself and the nonce are
    /// checked by [`authenticate`].
    pub fn verify(
        &self,
        expected: &Audience,
        method: &str,
        path_and_query: &str,
        now: u64,
    ) -> Result<Address, AuthError> {
        if self.audience.chain_id != expected.chain_id {
            return Err(AuthError::WrongChain { signed: self.audience.chain_id, expected: expected.chain_id });
        }
        if self.audience.node != expected.node {
            return Err(AuthError::WrongNode { signed: self.audience.node, expected: expected.node });
        }
        self.check_time(now)?;
        let signed = request_message(expected, method, path_and_query, self.timestamp, &self.nonce, &self.body_hash);
        let recovered = self.signature.recover_address_from_msg(signed.as_bytes()).ok();
        if recovered != Some(self.address) {
            return Err(AuthError::BadSignature { claimed: self.address, recovered, signed });
        }
        Ok(self.address)
    }
}

/// The nonces of accepted signed requests, each kept until its timestamp can no
/// longer be accepted ([`MAX_CLOCK_SKEW_SECS`] after it), so a header is accepted at
/// most once. Memory is bounded: expired nonces are evicted first, and when
/// `capacity` live nonces are held, new requests are refused
/// ([`AuthError::NonceCacheFull`]) rather than the set growing (or a live nonce
/// being forgotten, which would reopen it to replay).
#[derive(Debug)]
pub struct NonceCache {
    capacity: usize,
    inner: Mutex<NonceSet>,
}

#[derive(Debug, Default)]
struct NonceSet {
    live: HashSet<(Address, String)>,
    by_expiry: BTreeSet<(u64, Address, String)>,
}

impl NonceCache {
    /// A cache holding at most `capacity` live nonces.
    pub fn new(capacity: usize) -> Self {
        NonceCache { capacity, inner: Mutex::new(NonceSet::default()) }
    }

    /// How many nonces are held now (expired ones included until the next check).
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remember `address`'s `nonce` of a request signed at `timestamp`; refuse it if
    /// it is held already, or if the cache is full of live nonces.
    pub fn check_and_insert(&self, address: Address, nonce: &str, timestamp: u64, now: u64) -> Result<(), AuthError> {
        let mut set = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(first) = set.by_expiry.first() {
            if first.0 >= now {
                break;
            }
            let (_, a, n) = set.by_expiry.pop_first().expect("first exists");
            set.live.remove(&(a, n));
        }
        let key = (address, nonce.to_string());
        if set.live.contains(&key) {
            return Err(AuthError::Replayed { address, nonce: nonce.to_string() });
        }
        if set.live.len() >= self.capacity {
            return Err(AuthError::NonceCacheFull { capacity: self.capacity });
        }
        set.by_expiry.insert((timestamp.saturating_add(MAX_CLOCK_SKEW_SECS), address, key.1.clone()));
        set.live.insert(key);
        Ok(())
    }
}

/// Marker extension: the route reads its body as a stream, so a signed body larger
/// than the middleware checks up front reaches it, checked at the end of the stream
/// instead. Install it with [`allow_streamed_body`].
#[derive(Debug, Clone, Copy)]
pub struct StreamedBodyAllowed;

/// The layer a streaming upload route adds (`.route_layer(allow_streamed_body())`)
/// so that [`AuthedCaller`]/[`MaybeCaller`] accept a signed body larger than
/// [`crate::ServerConfig::max_signed_body_bytes`]. Such a body's hash is checked as
/// it ends: the stream yields an error carrying [`AuthError::BodyMismatch`] instead
/// of its end, so the route must read it to its end ([`read_body`]) before it stores
/// or signs anything.
pub fn allow_streamed_body() -> Extension<StreamedBodyAllowed> {
    Extension(StreamedBodyAllowed)
}

/// The verdict of [`authenticate`], left in the request's extensions.
#[derive(Debug, Clone)]
enum AuthOutcome {
    Anonymous,
    /// `checked_at_end`: the body was too large to check before the route; its
    /// stream checks the hash as it ends.
    Caller {
        address: Address,
        checked_at_end: bool,
    },
    Failed(AuthError),
}

/// State of the [`authenticate`] middleware.
#[derive(Clone)]
pub struct AuthState {
    pub resolver: Arc<dyn ApiKeyResolver>,
    /// The largest body the middleware reads to check it before the route runs.
    pub max_signed_body_bytes: usize,
    /// This node: signatures made for another chain or node are refused.
    pub audience: Audience,
    /// Nonces of accepted signed requests.
    pub nonces: Arc<NonceCache>,
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
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
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
        Some(address) => AuthOutcome::Caller { address, checked_at_end: false },
        None => AuthOutcome::Failed(AuthError::UnknownApiKey),
    }
}

type BodyStream = axum::body::BodyDataStream;

/// A body stream that hashes what passes and, at its end, yields
/// [`AuthError::BodyMismatch`] instead of ending when the hash is not the signed one.
struct CheckedStream {
    /// Chunks read (and hashed) before the route ran.
    prefix: VecDeque<Bytes>,
    inner: BodyStream,
    hasher: Option<blake3::Hasher>,
    signed: B256,
}

impl Stream for CheckedStream {
    type Item = Result<Bytes, axum::BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(chunk) = this.prefix.pop_front() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        if this.hasher.is_none() {
            return Poll::Ready(None);
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(h) = this.hasher.as_mut() {
                    h.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.hasher = None;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                let received = B256::from(*this.hasher.take().expect("checked above").finalize().as_bytes());
                if received == this.signed {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(Box::new(AuthError::BodyMismatch { signed: this.signed, received }))))
                }
            }
        }
    }
}

/// What reading a signed body up front found.
enum SignedBody {
    /// The whole body, hashed.
    Whole(Bytes, B256),
    /// More than the limit: the body as a stream checked at its end.
    Streamed(Body),
}

async fn read_signed_body(
    body: Body,
    announced: Option<u64>,
    limit: usize,
    signed: B256,
) -> Result<SignedBody, AuthError> {
    let mut stream = body.into_data_stream();
    let mut hasher = blake3::Hasher::new();
    let mut chunks = VecDeque::new();
    // An announced oversize body is not read here at all: a streaming route may
    // refuse it by its length before reading any of it.
    if announced.is_some_and(|n| n > limit as u64) {
        let checked = CheckedStream { prefix: chunks, inner: stream, hasher: Some(hasher), signed };
        return Ok(SignedBody::Streamed(Body::from_stream(checked)));
    }
    let mut total = 0usize;
    loop {
        match stream.next().await {
            None => break,
            Some(Err(e)) => return Err(AuthError::BodyUnreadable(e.to_string())),
            Some(Ok(chunk)) => {
                hasher.update(&chunk);
                total += chunk.len();
                chunks.push_back(chunk);
                if total > limit {
                    let checked = CheckedStream { prefix: chunks, inner: stream, hasher: Some(hasher), signed };
                    return Ok(SignedBody::Streamed(Body::from_stream(checked)));
                }
            }
        }
    }
    let mut whole = Vec::with_capacity(total);
    for c in chunks {
        whole.extend_from_slice(&c);
    }
    Ok(SignedBody::Whole(whole.into(), B256::from(*hasher.finalize().as_bytes())))
}

/// Middleware: check the request's credentials once and leave the verdict for the
/// extractors. A signed request is checked in this order: format version, chain and
/// node, time, signature; then the body is read up to
/// [`AuthState::max_signed_body_bytes`] and its hash compared with the signed one
/// (a larger body goes on as a stream checked at its end); then the nonce is
/// remembered, refusing one already seen. Credentials never refuse a request here:
/// routes that do not authenticate ignore them, and the extractors refuse wrong ones.
pub async fn authenticate(State(state): State<AuthState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let signed = single_header(&parts.headers, AUTH_HEADER);
    let bearer = single_header(&parts.headers, "authorization");
    let (outcome, body) = match (signed, bearer) {
        (Err(e), _) | (_, Err(e)) => (AuthOutcome::Failed(e), body),
        (Ok(None), Ok(None)) => (AuthOutcome::Anonymous, body),
        (Ok(Some(_)), Ok(Some(_))) => (AuthOutcome::Failed(AuthError::Conflicting), body),
        (Ok(None), Ok(Some(value))) => (bearer_outcome(value, &*state.resolver), body),
        (Ok(Some(value)), Ok(None)) => {
            let checked = match SignedHeader::parse(value) {
                Err(e) => Err(e),
                Ok(h) => h
                    .verify(&state.audience, parts.method.as_str(), path_and_query(&parts.uri), unix_now())
                    .map(|a| (h, a)),
            };
            match checked {
                Err(e) => (AuthOutcome::Failed(e), body),
                Ok((h, address)) => match read_signed_body(
                    body,
                    content_length(&parts.headers),
                    state.max_signed_body_bytes,
                    h.body_hash,
                )
                .await
                {
                    Err(e) => return e.into_response(),
                    Ok(SignedBody::Whole(bytes, received)) if received != h.body_hash => {
                        let e = AuthError::BodyMismatch { signed: h.body_hash, received };
                        (AuthOutcome::Failed(e), Body::from(bytes))
                    }
                    Ok(read) => {
                        let (body, checked_at_end) = match read {
                            SignedBody::Whole(bytes, _) => (Body::from(bytes), false),
                            SignedBody::Streamed(body) => (body, true),
                        };
                        match state.nonces.check_and_insert(address, &h.nonce, h.timestamp, unix_now()) {
                            Ok(()) => (AuthOutcome::Caller { address, checked_at_end }, body),
                            Err(e) => (AuthOutcome::Failed(e), body),
                        }
                    }
                },
            }
        }
    };
    parts.extensions.insert(outcome);
    parts.extensions.insert(SignedBodyLimit(state.max_signed_body_bytes));
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
        AuthOutcome::Caller { checked_at_end: true, .. } if parts.extensions.get::<StreamedBodyAllowed>().is_none() => {
            // Only streaming routes promise to read a body to its end before acting.
            Err(AuthError::BodyTooLarge { limit: parts.extensions.get::<SignedBodyLimit>().map_or(0, |l| l.0) })
        }
        AuthOutcome::Caller { address, .. } => Ok(Some(address)),
    }
}

/// The middleware's limit, for the 413 message of [`caller_of`].
#[derive(Debug, Clone, Copy)]
struct SignedBodyLimit(usize);

/// Read a request body of at most `limit` bytes to its end, so that a signed body
/// streamed past the middleware has its hash checked ([`allow_streamed_body`]).
/// Streaming routes call this (or read the stream to its end themselves) before they
/// store or sign anything.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyReadError> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| match auth_error_in(&e) {
            Some(a) => BodyReadError::Auth(a),
            None => BodyReadError::Unreadable(e.to_string()),
        })?;
        if out.len() + chunk.len() > limit {
            return Err(BodyReadError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.into())
}

fn auth_error_in(e: &(dyn std::error::Error + 'static)) -> Option<AuthError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(a) = err.downcast_ref::<AuthError>() {
            return Some(a.clone());
        }
        cur = err.source();
    }
    None
}

/// Why [`read_body`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyReadError {
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The body is not what the caller signed (the request must have no effect).
    #[error(transparent)]
    Auth(AuthError),
    #[error("cannot read the request body: {0}")]
    Unreadable(String),
}

impl IntoResponse for BodyReadError {
    fn into_response(self) -> Response {
        match self {
            BodyReadError::Auth(e) => e.into_response(),
            BodyReadError::TooLarge { .. } => error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "payload_too_large",
                self.to_string(),
            ),
            BodyReadError::Unreadable(_) => {
                error_response(StatusCode::BAD_REQUEST, "invalid_request_error", "unreadable_body", self.to_string())
            }
        }
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
    use keys::SecretKey;
    use primitives::content_hash;

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[7u8; 32]).unwrap()
    }

    fn aud() -> Audience {
        Audience { chain_id: 31337, node: Address::repeat_byte(0xee) }
    }

    #[test]
    fn message_layout() {
        let h = content_hash(b"");
        assert_eq!(
            request_message(&aud(), "GET", "/v1/x?a=1", 1_700_000_000, "n1", &h),
            format!(
                "OpenLedger request v2\n31337\n0x{}\nGET /v1/x?a=1\n1700000000\nn1\n{}",
                "ee".repeat(20),
                hex::encode(h)
            )
        );
    }

    #[test]
    fn sign_then_verify() {
        let k = key();
        let v = sign_request_with(&k, &aud(), "POST", "/v1/echo", &content_hash(b"hello"), 1000, "abc");
        let parts: Vec<&str> = v.split(':').collect();
        assert_eq!(parts.len(), 8);
        assert_eq!(parts[0], "v2");
        assert_eq!(parts[4], "1000");
        assert_eq!(parts[5], "abc");
        assert_eq!(parts[7].len(), 132);
        let h = SignedHeader::parse(&v).unwrap();
        assert_eq!(h.address, k.address());
        assert_eq!(h.body_hash, content_hash(b"hello"));
        assert_eq!(h.verify(&aud(), "POST", "/v1/echo", 1100), Ok(k.address()));
        assert!(matches!(h.verify(&aud(), "POST", "/v1/echo", 1301), Err(AuthError::Expired { .. })));
        assert!(h.verify(&aud(), "POST", "/v1/echo", 1300).is_ok());
        assert!(h.verify(&aud(), "POST", "/v1/echo", 700).is_ok());
        assert!(matches!(h.verify(&aud(), "PUT", "/v1/echo", 1000), Err(AuthError::BadSignature { .. })));
        let other_chain = Audience { chain_id: 1, ..aud() };
        assert!(matches!(h.verify(&other_chain, "POST", "/v1/echo", 1000), Err(AuthError::WrongChain { .. })));
        let other_node = Audience { node: Address::repeat_byte(1), ..aud() };
        assert!(matches!(h.verify(&other_node, "POST", "/v1/echo", 1000), Err(AuthError::WrongNode { .. })));
        // The header's audience fields are signed: editing them breaks the signature.
        let forged = v.replacen(&format!(":0x{}:", "ee".repeat(20)), &format!(":0x{}:", "01".repeat(20)), 1);
        let f = SignedHeader::parse(&forged).unwrap();
        assert!(matches!(f.verify(&other_node, "POST", "/v1/echo", 1000), Err(AuthError::BadSignature { .. })));
        // Fresh nonces.
        assert_ne!(sign_request(&k, &aud(), "GET", "/", b"", 1), sign_request(&k, &aud(), "GET", "/", b"", 1));
    }

    #[test]
    fn parse_refusals() {
        let k = key();
        let good = sign_request_with(&k, &aud(), "GET", "/", &content_hash(b""), 1, "n");
        let f: Vec<&str> = good.split(':').collect();
        let with = |i: usize, v: &str| {
            let mut g = f.clone();
            g[i] = v;
            g.join(":")
        };
        for bad in [
            "".to_string(),
            "nonsense".to_string(),
            f[..7].join(":"),
            with(1, "0x1234"),
            with(2, "-1"),
            with(3, "0xzz"),
            with(4, "1e3"),
            with(5, ""),
            with(5, "a b"),
            with(5, &"n".repeat(65)),
            with(6, "00"),
            with(7, "0x1234"),
        ] {
            assert!(matches!(SignedHeader::parse(&bad), Err(AuthError::Malformed { .. })), "{bad:?}");
        }
        // Version 1 headers and unknown versions get their own error.
        let v1 = format!("{}:1:{}", k.address(), f[7]);
        assert_eq!(SignedHeader::parse(&v1), Err(AuthError::UnsupportedVersion { found: "v1".into() }));
        assert_eq!(SignedHeader::parse(&with(0, "v3")), Err(AuthError::UnsupportedVersion { found: "v3".into() }));
        // Surrounding whitespace is fine.
        assert_eq!(SignedHeader::parse(&format!(" {good} ")).unwrap(), SignedHeader::parse(&good).unwrap());
    }

    #[test]
    fn nonces_once_expire_and_cap() {
        let c = NonceCache::new(2);
        let a = Address::repeat_byte(1);
        c.check_and_insert(a, "x", 1000, 1000).unwrap();
        assert!(matches!(c.check_and_insert(a, "x", 1000, 1001), Err(AuthError::Replayed { .. })));
        // Another address may use the same nonce.
        c.check_and_insert(Address::repeat_byte(2), "x", 1000, 1001).unwrap();
        assert!(matches!(c.check_and_insert(a, "y", 1000, 1001), Err(AuthError::NonceCacheFull { capacity: 2 })));
        // Still remembered at the last second its timestamp is accepted...
        assert!(matches!(c.check_and_insert(a, "x", 1000, 1300), Err(AuthError::Replayed { .. })));
        // ...and evicted after it, which frees room.
        c.check_and_insert(a, "y", 1301, 1301).unwrap();
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn bearer() {
        let mut table = HashMap::new();
        table.insert(api_key_hash("sk-test"), Address::repeat_byte(9));
        assert!(matches!(
            bearer_outcome("Bearer sk-test", &table),
            AuthOutcome::Caller { address, checked_at_end: false } if address == Address::repeat_byte(9)
        ));
        assert!(matches!(bearer_outcome("bearer  sk-test ", &table), AuthOutcome::Caller { .. }));
        assert!(matches!(bearer_outcome("Bearer nope", &table), AuthOutcome::Failed(AuthError::UnknownApiKey)));
        assert!(matches!(bearer_outcome("Basic abc", &table), AuthOutcome::Failed(AuthError::Malformed { .. })));
        assert!(matches!(bearer_outcome("Bearer sk-test", &NoApiKeys), AuthOutcome::Failed(AuthError::UnknownApiKey)));
    }
}
