//! The JSON-RPC server of an OpenLedger node: the Ethereum `eth_`/`net_`/`web3_`
//! subset that wallets and libraries (MetaMask, ethers, viem, web3.py) use, plus
//! the `ol_` namespace, over HTTP POST at `/` (axum), and a small blocking client.
//!
//! - Transport: JSON-RPC 2.0, single requests and batches (at most
//!   [`MAX_BATCH`] entries, of which at most [`MAX_BATCH_HEAVY`] execute code or
//!   scan blocks), bodies up to [`MAX_BODY_BYTES`] (larger: HTTP 413 with a
//!   JSON-RPC error, code -32600), any Content-Type. Notifications (no `id`) are
//!   run but get no answer (a lone notification gets HTTP 204). CORS is open
//!   (`Access-Control-Allow-Origin: *`) and `OPTIONS` preflights get 204, for
//!   browser wallets.
//! - Shapes and error messages follow go-ethereum (notes/eth-rpc-conventions.md):
//!   minimal-hex quantities, even-hex data, `null` for unknown blocks,
//!   transactions and receipts; -32000 with go-ethereum's message for refused
//!   transactions and missing headers; code 3 "execution reverted" with the revert
//!   data for reverted calls; -32005 for `eth_getLogs` over more than
//!   [`MAX_LOG_BLOCK_RANGE`] blocks or [`MAX_LOG_RESULTS`] logs.
//! - Block parameters: hex numbers, the tags `latest`/`pending`/`safe`/`finalized`
//!   (the head) and `earliest` (0), block hashes, and EIP-1898 objects.
//! - The `ol_` methods answer numbers as plain JSON numbers, not hex:
//!   `ol_status` → `{chainId, head, headHash, pendingTxs, queuedTxs, blockTimeMs,
//!   history, version}`; `ol_getProof(keyHex, block?)` → `{blockNumber, stateRoot,
//!   key, value (hex or null), proof (hex)}`, checked by `storage::StateProof::verify_bytes`;
//!   `ol_supply(block?)` → the supply equation's terms `{blockNumber, total, genesis, issued,
//!   burned, treasury, rewardPool, heldByModules}` as decimal strings of base units;
//!   `ol_getHistory(subject, {before?, limit?}?)` with `subject` an address or
//!   `{"datanet"|"model"|"contribution": id}` → `{entries: [{blockNumber,
//!   transactionIndex, transactionHash, logIndex (null for the transaction itself),
//!   roles (["sender"|"recipient"|"log"]), cursor}], next (cursor or null),
//!   indexedFrom, indexedTo}`, newest first; `limit` defaults to and is clamped at
//!   100 (`primitives::history::MAX_HISTORY_PAGE`); pass `next` as `before` for the
//!   next page.
//! - Blocks, transactions, receipts and logs are `alloy-rpc-types-eth`'s types
//!   ([`types`]), serialised by their serde; receipts of failed transactions carry
//!   their revert data as `revertReason` (Besu's field) in the receipt's extra fields.
//!
//! The node side is the [`Backend`] trait; [`client::RpcClient`] is the blocking
//! client used by the CLI, tests and benchmarks.

pub mod backend;
pub mod client;
mod error;
pub mod http;
mod json;
mod methods;
mod params;
#[cfg(test)]
mod tests;
pub mod types;

pub use backend::*;
pub use error::RpcError;
pub use methods::{MAX_FEE_HISTORY_BLOCKS, MAX_LOG_BLOCK_RANGE, MAX_LOG_RESULTS};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::params::Params;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
/// Most entries of one batch.
pub const MAX_BATCH: usize = 1000;
/// Most entries of one batch that execute code or scan blocks
/// ([`methods::HEAVY_METHODS`]); the ones past it are answered with a
/// limit error, so one request cannot queue a thousand executions.
pub const MAX_BATCH_HEAVY: usize = 50;

/// Serve JSON-RPC on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, backend: Arc<dyn Backend>) -> std::io::Result<()> {
    serve_until(listener, backend, std::future::pending()).await
}

/// Serve JSON-RPC on `listener` until `shutdown` completes; then stop
/// accepting connections, let requests in flight finish, and return.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    backend: Arc<dyn Backend>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(backend)).with_graceful_shutdown(shutdown).await
}

/// The HTTP routes: `POST /` (JSON-RPC) and `OPTIONS /` (CORS preflight); any
/// other path or method gets 404/405 with a JSON-RPC error (-32600).
pub fn router(backend: Arc<dyn Backend>) -> Router {
    Router::new()
        .route("/", post(rpc_handler).options(preflight))
        .fallback(not_rpc)
        .method_not_allowed_fallback(not_rpc)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(cors))
        .with_state(backend)
}

async fn rpc_handler(
    State(backend): State<Arc<dyn Backend>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    // A body that cannot be read (over MAX_BODY_BYTES: 413) keeps its HTTP status
    // but is answered in JSON-RPC, like every other refusal, not with axum's text.
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let message = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                format!("request body too large: at most {MAX_BODY_BYTES} bytes")
            } else {
                format!("unreadable request body: {}", rejection.body_text())
            };
            let json = to_json(&RpcResponse::new(Value::Null, Err(RpcError::invalid_request(message))));
            return (rejection.status(), [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], json)
                .into_response();
        }
    };
    match handle_request(&backend, &body).await {
        Some(json) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], json).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// Any other path or method: refused in JSON-RPC (404 or 405 kept), so a client
/// pointed at the wrong URL reads why instead of an empty body.
async fn not_rpc(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let status = if uri.path() == "/" { StatusCode::METHOD_NOT_ALLOWED } else { StatusCode::NOT_FOUND };
    let message = format!("JSON-RPC is served by POST / (not {method} {})", uri.path());
    let json = to_json(&RpcResponse::new(Value::Null, Err(RpcError::invalid_request(message))));
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], json).into_response()
}

async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn cors(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    res
}

/// One JSON-RPC response object.
#[derive(Serialize)]
struct RpcResponse {
    jsonrpc: &'static str,
    id: Value,
    #[serde(flatten)]
    outcome: Outcome,
}

#[derive(Serialize)]
enum Outcome {
    #[serde(rename = "result")]
    Result(Value),
    #[serde(rename = "error")]
    Error(RpcError),
}

impl RpcResponse {
    fn new(id: Value, r: Result<Value, RpcError>) -> Self {
        let outcome = match r {
            Ok(v) => Outcome::Result(v),
            Err(e) => Outcome::Error(e),
        };
        RpcResponse { jsonrpc: "2.0", id, outcome }
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("JSON values always serialise")
}

/// Answer one HTTP body: a request or a batch. `None` when there is nothing to
/// answer (notifications only). Usable in-process, without HTTP.
pub async fn handle_request(backend: &Arc<dyn Backend>, body: &[u8]) -> Option<String> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Some(to_json(&RpcResponse::new(Value::Null, Err(RpcError::parse_error()))));
    };
    match v {
        Value::Array(entries) => {
            if entries.is_empty() {
                return Some(to_json(&RpcResponse::new(Value::Null, Err(RpcError::invalid_request("empty batch")))));
            }
            if entries.len() > MAX_BATCH {
                let msg = format!("batch too large: {} entries, at most {MAX_BATCH}", entries.len());
                return Some(to_json(&RpcResponse::new(Value::Null, Err(RpcError::invalid_request(msg)))));
            }
            let mut heavy = 0usize;
            let futs: Vec<_> = entries
                .into_iter()
                .map(|e| {
                    let is_heavy =
                        e.get("method").and_then(Value::as_str).is_some_and(|m| methods::HEAVY_METHODS.contains(&m));
                    heavy += is_heavy as usize;
                    let over = is_heavy && heavy > MAX_BATCH_HEAVY;
                    Box::pin(handle_entry(backend.clone(), e, over))
                })
                .collect();
            let answers: Vec<RpcResponse> = join_in_order(futs).await.into_iter().flatten().collect();
            (!answers.is_empty()).then(|| to_json(&answers))
        }
        v => handle_entry(backend.clone(), v, false).await.map(|r| to_json(&r)),
    }
}

/// One request object; `None` for a notification. `over_budget`: it is past
/// its batch's share of heavy calls, refused without running.
async fn handle_entry(backend: Arc<dyn Backend>, v: Value, over_budget: bool) -> Option<RpcResponse> {
    let Value::Object(mut o) = v else {
        return Some(RpcResponse::new(Value::Null, Err(RpcError::invalid_request("invalid request"))));
    };
    let id = o.remove("id");
    let notification = id.is_none();
    let id = id.unwrap_or(Value::Null);
    if !matches!(id, Value::Null | Value::Number(_) | Value::String(_)) {
        return Some(RpcResponse::new(Value::Null, Err(RpcError::invalid_request("invalid request: bad id"))));
    }
    let result = match request_parts(&mut o) {
        Ok(_) if over_budget => Err(RpcError::limit(format!(
            "batch too heavy: at most {MAX_BATCH_HEAVY} calls of {} per batch",
            methods::HEAVY_METHODS.join(", ")
        ))),
        Ok((method, params)) => methods::dispatch(backend, method, params).await,
        Err(e) => Err(e),
    };
    (!notification).then(|| RpcResponse::new(id, result))
}

fn request_parts(o: &mut Map<String, Value>) -> Result<(String, Params), RpcError> {
    if let Some(v) = o.get("jsonrpc")
        && v != "2.0"
    {
        return Err(RpcError::invalid_request("invalid request: jsonrpc must be \"2.0\""));
    }
    let method = match o.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(RpcError::invalid_request("invalid request: missing method")),
    };
    Ok((method, Params::new(o.remove("params"))?))
}

/// Await futures concurrently, polling them in index order (so a batch's
/// transactions reach the backend in the order they were sent), and return their
/// outputs in that order.
async fn join_in_order<F: Future + Unpin>(mut futs: Vec<F>) -> Vec<F::Output> {
    let mut outs: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futs.iter_mut().zip(outs.iter_mut()) {
            if out.is_none() {
                match Pin::new(f).poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outs.into_iter().map(|o| o.expect("every future completed")).collect()
}
