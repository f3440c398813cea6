//! The OpenAI-compatible HTTP API: `GET /v1/models`, `POST /v1/completions`,
//! `POST /v1/chat/completions` (streaming by server-sent events), plus
//! `GET /v1/adapters` (residency, for routers) and `GET /metrics`; and
//! `POST /v1/retrieve` with the chat's `retrieval` field ([`crate::retrieval`]).
//! Request and response shapes follow OpenAI's, so the official clients work
//! unchanged; receipts ride along in an extra `receipt` field (and, when
//! streaming, in the final chunk), with the `attribution` summary when the
//! record is ready within the queue's budget, else a pointer to
//! `GET /v1/attribution/{receipt}` ([`crate::attribution_queue`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use httpapi::{MaybeCaller, error_response};
use ml::{ChatMessage, Finish, SamplingParams};
use primitives::{Address, B256};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::attribution_queue::{AttributionQueue, Job, JobStatus, Outcome, Refusal, Slot, pending_pointer};
use crate::billing::{Billing, BillingError, Usage};
use crate::cache::AdapterCache;
use crate::engine::{Engine, Event, Request, SubmitError};
use crate::ratelimit::{RateLimits, RateRefusal, network_of};
use crate::retrieval::{RetrievalField, Retrieved, Retriever};

/// A model as the API knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    pub id: u64,
    pub name: String,
    pub owner: Address,
    pub live: bool,
    pub has_adapter: bool,
    pub adapter_hash: B256,
    pub base_hash: B256,
    pub price_in_per_1k: u128,
    pub price_out_per_1k: u128,
    pub created: u64,
}

/// The models the node may serve (from the `models` module).
pub trait ModelDirectory: Send + Sync + 'static {
    fn model(&self, id: u64) -> Result<Option<ModelEntry>, String>;
    /// Live models this node serves (on its base model), the base included.
    fn live(&self) -> Result<Vec<ModelEntry>, String>;
}

/// Limits of the API.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_prompt_tokens: usize,
    pub max_output_tokens: usize,
    pub default_max_tokens: usize,
    /// Requests per minute per authenticated caller (by account address); 0 = unlimited.
    pub requests_per_minute: u32,
    /// Requests per minute per anonymous caller, by network address (an IPv4
    /// address or an IPv6 /64); 0 = unlimited. Lower than `requests_per_minute`:
    /// an anonymous caller pays nothing.
    pub anonymous_requests_per_minute: u32,
    /// Most callers each rate-limit table (accounts; anonymous networks) tracks
    /// at once; a new caller beyond it is refused with 429 until some go idle.
    pub max_tracked_callers: usize,
    /// Largest request body of `POST /v1/completions` and `/v1/chat/completions`
    /// (413 beyond it, refused by `Content-Length` before anything is read).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_prompt_tokens: 2048,
            max_output_tokens: 1024,
            default_max_tokens: 128,
            requests_per_minute: 600,
            anonymous_requests_per_minute: 30,
            max_tracked_callers: 100_000,
            max_body_bytes: 1 << 20,
        }
    }
}

/// The request header by which a payer publishes the attribution record of
/// one answer: `OpenLedger-Attribution-Public: true` (any other value, or none,
/// keeps it private to the payer and the serving operator).
pub const ATTRIBUTION_PUBLIC_HEADER: &str = "openledger-attribution-public";

/// Who may read an attribution record (DESIGN, "Verifying and challenging"):
/// the payer and the serving operator, and anyone when the payer opted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordAccess {
    pub payer: Option<Address>,
    pub operator: Option<Address>,
    /// The payer sent [`ATTRIBUTION_PUBLIC_HEADER`]`: true`.
    pub public: bool,
}

impl RecordAccess {
    /// Whether `caller` (`None`: anonymous) may read the record.
    pub fn allows(&self, caller: Option<Address>) -> bool {
        self.public || (caller.is_some() && (caller == self.payer || caller == self.operator))
    }
}

/// Phase two of a paid inference: which contributions influenced it. Run by
/// an [`AttributionQueue`] worker after billing, with the receipt's hash, beside
/// the batch (never while an answer waits more than its budget).
pub trait Attributor: Send + Sync + 'static {
    /// Whether an answer of `model` (with these retrieved rows) has anything to
    /// attribute; when not, its request takes no place in the queue and its
    /// answer carries no attribution. Cheap: asked before anything is reserved.
    fn wants(&self, _model: &ModelEntry, _retrieved: Option<&Retrieved>) -> bool {
        true
    }
    /// Compute, keep and queue for posting the record of an answer (blocking);
    /// returns the summary the client sees, or why there is no record (the
    /// fallback then pays for the answer's data share).
    fn attribute(
        &self,
        model: &ModelEntry,
        receipt_hash: B256,
        prompt: &[u32],
        response: &[u32],
        text: &str,
        access: RecordAccess,
        retrieved: Option<&Retrieved>,
    ) -> Result<Value, String>;
    /// The stored record of a receipt and who may read it, for `GET /v1/attribution/{receipt}`.
    fn record(&self, receipt_hash: B256) -> Option<(Value, RecordAccess)>;
}

/// The serving service behind the routes.
pub struct OpenLora {
    pub engine: Engine,
    pub cache: Arc<AdapterCache>,
    pub models: Arc<dyn ModelDirectory>,
    pub billing: Arc<dyn Billing>,
    pub limits: Limits,
    /// Per-caller request rates, taken before a request's body is read.
    pub rate: RateLimits,
    /// Attribution beside the batch: the bounded queue and workers around the
    /// node's [`Attributor`] (`None`: answers carry no attribution).
    pub attributor: Option<Arc<AttributionQueue>>,
    /// Retrieval over Datanets (`POST /v1/retrieve`, the chat's `retrieval` field).
    pub retriever: Option<Arc<dyn Retriever>>,
}

/// The routes, for the node's HTTP server.
pub fn routes(s: Arc<OpenLora>) -> Router {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/adapters", get(adapters))
        .route("/v1/attribution/{receipt}", get(attribution_record))
        .route("/v1/retrieve", post(crate::retrieval::retrieve_route))
        .route("/metrics", get(metrics))
        .with_state(s)
}

pub(crate) fn bad(code: &str, msg: impl Into<String>) -> Response {
    error_response(StatusCode::BAD_REQUEST, "invalid_request_error", code, msg)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn model_json(m: &ModelEntry) -> Value {
    json!({
        "id": format!("m{}", m.id),
        "object": "model",
        "created": m.created,
        "owned_by": m.owner.to_checksum(None),
        "name": m.name,
        "adapter_hash": if m.has_adapter { Some(m.adapter_hash.to_string()) } else { None },
        "price_in_per_1k": m.price_in_per_1k.to_string(),
        "price_out_per_1k": m.price_out_per_1k.to_string(),
    })
}

async fn list_models(State(s): State<Arc<OpenLora>>) -> Response {
    match s.models.live() {
        Ok(v) => Json(json!({"object": "list", "data": v.iter().map(model_json).collect::<Vec<_>>()})).into_response(),
        Err(e) => error_response(StatusCode::SERVICE_UNAVAILABLE, "server_error", "chain_unavailable", e),
    }
}

async fn adapters(State(s): State<Arc<OpenLora>>) -> Response {
    Json(json!({
        "object": "list",
        "budgetBytes": s.cache.budget(),
        "residentBytes": s.cache.resident_bytes(),
        "data": s.cache.residency(),
    }))
    .into_response()
}

/// What `caller` may learn of the attribution record of receipt `h`: the one
/// rule `GET /v1/attribution/{receipt}` and the web app's Playground share.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordView {
    /// The signed record (`{"record", "recordHash", "signature", "signer", "summary"}`).
    Ready(Value),
    /// A record (or its computation) that `caller` may not read.
    Forbidden,
    /// Where its computation is (queued, computing, failed, dropped).
    Status(JobStatus),
    /// This node knows no record of it.
    Unknown,
}

/// The record of `h` as `caller` (`None`: anonymous) may see it: the payer,
/// those acting for it (such as an agent's owner and operator) and the
/// serving operator, or anyone when the payer published it; the same readers
/// for a record and for where its computation is, so a stranger learns no
/// more of a pending record than of a ready one.
pub fn record_view(s: &OpenLora, h: B256, caller: Option<Address>) -> RecordView {
    let Some(q) = &s.attributor else { return RecordView::Unknown };
    let may_read = |access: &RecordAccess| {
        access.allows(caller) || matches!((caller, access.payer), (Some(c), Some(p)) if s.billing.acts_for(c, p))
    };
    match q.attributor().record(h) {
        Some((v, access)) if may_read(&access) => RecordView::Ready(v),
        Some(_) => RecordView::Forbidden,
        None => match q.status(&h) {
            Some((access, _)) if !may_read(&access) => RecordView::Forbidden,
            Some((_, status)) => RecordView::Status(status),
            None => RecordView::Unknown,
        },
    }
}

async fn attribution_record(
    State(s): State<Arc<OpenLora>>,
    axum::extract::Path(receipt): axum::extract::Path<String>,
    MaybeCaller(caller): MaybeCaller,
) -> Response {
    let Ok(h) = receipt.parse::<B256>() else {
        return bad("invalid_receipt", format!("{receipt:?} is not a receipt hash (0x + 64 hex digits)"));
    };
    let unknown = || {
        error_response(
            StatusCode::NOT_FOUND,
            "not_found_error",
            "unknown_receipt",
            format!("this node has no attribution record for receipt {h}"),
        )
    };
    let status = match record_view(&s, h, caller) {
        RecordView::Ready(v) => return Json(v).into_response(),
        RecordView::Unknown => return unknown(),
        RecordView::Status(status) => status,
        RecordView::Forbidden => {
            return error_response(
                StatusCode::FORBIDDEN,
                "permission_error",
                "record_forbidden",
                format!(
                    "the attribution record of receipt {h} is readable by its payer (or those acting for it, such as \
                 an agent's owner and operator) and the serving operator{} \
                 (the payer publishes a record by sending `OpenLedger-Attribution-Public: true` with the request)",
                    match caller {
                        Some(a) => format!(", not by {a}"),
                        None => ": authenticate as one of them".into(),
                    }
                ),
            );
        }
    };
    let no_record = |code: &str, what: &str, why: &str| {
        error_response(
            StatusCode::NOT_FOUND,
            "not_found_error",
            code,
            format!(
                "the attribution of receipt {h} {what} ({why}): no record will be posted for it, so once \
                 `inference.attribution_timeout_blocks` have passed after the receipt settled, its data share \
                 goes to the fallback (the model's Datanet versions pro rata to their live rows; the treasury \
                 for a model without Datanet versions)"
            ),
        )
    };
    let pending = |v: Value| {
        let mut r = (StatusCode::ACCEPTED, Json(v)).into_response();
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    };
    match status {
        JobStatus::Queued { position } => {
            pending(json!({"status": "pending", "receipt": h.to_string(), "position": position}))
        }
        JobStatus::Computing => pending(json!({"status": "computing", "receipt": h.to_string()})),
        JobStatus::Failed(e) => no_record("attribution_failed", "failed on this node", &e),
        JobStatus::Dropped(e) => no_record("attribution_dropped", "was dropped", &e),
    }
}

async fn metrics(State(s): State<Arc<OpenLora>>) -> Response {
    let mut r = s.engine.metrics.render().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StopField {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PromptField {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The fields both endpoints share (unknown fields are ignored, as OpenAI does).
#[derive(Deserialize)]
struct CommonParams {
    model: String,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u64>,
    #[serde(default)]
    stop: Option<StopField>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    n: Option<u64>,
    /// vLLM's extension: generate `max_tokens` whatever the model says (benchmarks).
    #[serde(default)]
    ignore_eos: bool,
}

#[derive(Deserialize)]
struct CompletionBody {
    #[serde(flatten)]
    common: CommonParams,
    prompt: PromptField,
}

#[derive(Deserialize)]
struct ChatBody {
    #[serde(flatten)]
    common: CommonParams,
    messages: Vec<ChatMessageIn>,
    /// Retrieve Datanet rows for the last user message and answer from them.
    #[serde(default)]
    retrieval: Option<RetrievalField>,
}

#[derive(Deserialize)]
struct ChatMessageIn {
    role: String,
    #[serde(default)]
    content: Value,
}

fn message_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        // [{"type": "text", "text": "..."}]
        Value::Array(parts) => parts
            .iter()
            .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                (Some("text"), Some(t)) => Ok(t.to_string()),
                _ => Err("only text content parts are supported".to_string()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join("")),
        _ => Err("message content must be a string or a list of text parts".into()),
    }
}

fn parse_model_id(s: &str) -> Option<u64> {
    s.strip_prefix('m').and_then(|n| n.parse().ok()).filter(|_| !s.starts_with("m0") || s == "m0")
}

/// What a request resolves to before generation.
struct Prepared {
    model: ModelEntry,
    prompt: Vec<u32>,
    params: SamplingParams,
    stream: bool,
    include_usage: bool,
}

// An HTTP answer is the error here, as in axum's handlers: boxing it would buy nothing.
#[allow(clippy::result_large_err)]
fn prepare(s: &OpenLora, c: &CommonParams, prompt_text: Result<String, Response>) -> Result<Prepared, Response> {
    let id = parse_model_id(&c.model).ok_or_else(|| {
        error_response(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!("the model `{}` does not exist: models are named m<id> (GET /v1/models)", c.model),
        )
    })?;
    let model = s
        .models
        .model(id)
        .map_err(|e| error_response(StatusCode::SERVICE_UNAVAILABLE, "server_error", "chain_unavailable", e))?
        .ok_or_else(|| {
            error_response(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
                format!("the model `{}` does not exist", c.model),
            )
        })?;
    if !model.live {
        return Err(error_response(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_live",
            format!("the model `{}` is not live (only governance makes a model live)", c.model),
        ));
    }
    if model.base_hash != s.engine.model.hash {
        return Err(error_response(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_served",
            format!("`{}` is an adapter for another base model than this node serves", c.model),
        ));
    }
    if c.n.is_some_and(|n| n != 1) {
        return Err(bad("invalid_n", "only n = 1 is supported"));
    }
    let max_tokens = c.max_completion_tokens.or(c.max_tokens).unwrap_or(s.limits.default_max_tokens as u64);
    if max_tokens == 0 || max_tokens > s.limits.max_output_tokens as u64 {
        return Err(bad(
            "invalid_max_tokens",
            format!("max_tokens must be between 1 and {}", s.limits.max_output_tokens),
        ));
    }
    let temperature = c.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(bad("invalid_temperature", "temperature must be between 0 and 2"));
    }
    let top_p = c.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(bad("invalid_top_p", "top_p must be in (0, 1]"));
    }
    let stop = match &c.stop {
        None => vec![],
        Some(StopField::One(s)) => vec![s.clone()],
        Some(StopField::Many(v)) if v.len() <= 4 => v.clone(),
        Some(StopField::Many(_)) => return Err(bad("invalid_stop", "at most 4 stop sequences")),
    };
    let text = prompt_text?;
    s.engine.metrics.prompts_tokenized.fetch_add(1, Ordering::Relaxed);
    let prompt = s.engine.tokenizer.encode(&text, false).map_err(|e| bad("invalid_prompt", e.to_string()))?;
    if prompt.is_empty() {
        return Err(bad("invalid_prompt", "the prompt is empty"));
    }
    let ctx = s.engine.model.config.max_position_embeddings;
    let max_prompt = s.limits.max_prompt_tokens.min(ctx.saturating_sub(1));
    if prompt.len() > max_prompt {
        return Err(bad(
            "context_length_exceeded",
            format!("the prompt has {} tokens; the maximum is {max_prompt}", prompt.len()),
        ));
    }
    let params = SamplingParams {
        temperature: temperature as f32,
        top_k: c.top_k.unwrap_or(0) as usize,
        top_p: top_p as f32,
        seed: c.seed.unwrap_or_else(|| now() ^ rand_seed()),
        max_tokens: (max_tokens as usize).min(ctx - prompt.len()),
        stop,
        ignore_eos: c.ignore_eos,
    };
    Ok(Prepared {
        model,
        prompt,
        params,
        stream: c.stream,
        include_usage: c.stream_options.as_ref().is_some_and(|o| o.include_usage),
    })
}

fn rand_seed() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0x5eed);
    N.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
}

fn billing_error(e: BillingError) -> Response {
    match e {
        BillingError::Unauthenticated(m) => {
            error_response(StatusCode::UNAUTHORIZED, "authentication_error", "invalid_api_key", m)
        }
        BillingError::InsufficientAllowance(m) => {
            error_response(StatusCode::PAYMENT_REQUIRED, "insufficient_quota", "insufficient_allowance", m)
        }
        BillingError::Unavailable(m) => {
            error_response(StatusCode::SERVICE_UNAVAILABLE, "server_error", "billing_unavailable", m)
        }
        BillingError::Refused(m) => error_response(StatusCode::FORBIDDEN, "permission_error", "payer_refused", m),
    }
}

fn submit_error(e: SubmitError) -> Response {
    match e {
        SubmitError::QueueFull(_) => {
            let mut r = error_response(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "queue_full", e.to_string());
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        SubmitError::TooLong { .. } => bad("context_length_exceeded", e.to_string()),
        SubmitError::Invalid(m) => bad("invalid_request", m),
        SubmitError::Stopped => {
            let mut r =
                error_response(StatusCode::SERVICE_UNAVAILABLE, "server_error", "engine_stopped", e.to_string());
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}

fn finish_reason(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "stop",
        Finish::Length => "length",
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Completion,
    Chat,
}

/// Whether the request publishes its attribution record ([`ATTRIBUTION_PUBLIC_HEADER`]).
fn attribution_public(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(ATTRIBUTION_PUBLIC_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Before any work on a generation request: take one request from the caller's
/// rate limit (its account, or for an anonymous caller its network address),
/// refuse an anonymous caller when billing needs a payer, then read a body of at most [`Limits::max_body_bytes`] (an announced larger
/// one is refused before any of it is read). Parsing, the chat template and
/// tokenization all come after.
pub(crate) async fn admit(
    s: &OpenLora,
    caller: Option<Address>,
    request: axum::extract::Request,
) -> Result<(axum::http::HeaderMap, axum::body::Bytes), Response> {
    let (parts, body) = request.into_parts();
    let (refused, who, per_minute) = match caller {
        Some(a) => (
            s.rate.accounts.take(&a, s.limits.requests_per_minute, s.limits.max_tracked_callers),
            a.to_string(),
            s.limits.requests_per_minute,
        ),
        None => {
            // Served without connection info (not through `httpapi::serve`):
            // every anonymous caller shares one bucket, never none.
            let ip = parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| network_of(c.0.ip()))
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
            let per_minute = s.limits.anonymous_requests_per_minute;
            (
                s.rate.networks.take(&ip, per_minute, s.limits.max_tracked_callers),
                format!("anonymous callers from {ip}"),
                per_minute,
            )
        }
    };
    if let Err(refusal) = refused {
        s.engine.metrics.rejected.fetch_add(1, Ordering::Relaxed);
        s.engine.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
        let wait = refusal.retry_after();
        let (code, msg) = match refusal {
            RateRefusal::Exhausted { .. } => (
                "rate_limit_exceeded",
                format!(
                    "more than {per_minute} requests per minute for {who}{}; retry in {wait} s",
                    if caller.is_none() { " (authenticate with an API key for a higher limit)" } else { "" }
                ),
            ),
            RateRefusal::TooManyCallers { capacity, .. } => (
                "too_many_callers",
                format!("this node is tracking the rates of {capacity} active callers, its most; retry in {wait} s"),
            ),
        };
        let mut r = error_response(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", code, msg);
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Err(r);
    }
    if caller.is_none() && s.billing.requires_payer() {
        s.engine.metrics.rejected.fetch_add(1, Ordering::Relaxed);
        return Err(billing_error(BillingError::Unauthenticated(
            "an API key is required: `Authorization: Bearer <key>` (or a signed request)".into(),
        )));
    }
    let max = s.limits.max_body_bytes;
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("the request body is larger than this node's limit of {max} bytes"),
        )
    };
    let announced = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    match httpapi::auth::read_body(body, max).await {
        Ok(b) => Ok((parts.headers, b)),
        Err(httpapi::auth::BodyReadError::TooLarge { .. }) => Err(too_large()),
        Err(e) => Err(e.into_response()),
    }
}

async fn completions(State(s): State<Arc<OpenLora>>, caller: MaybeCaller, request: axum::extract::Request) -> Response {
    let (headers, body) = match admit(&s, caller.0, request).await {
        Ok(read) => read,
        Err(r) => return r,
    };
    let b: CompletionBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad("invalid_json", format!("the request body does not parse: {e}")),
    };
    let text = match &b.prompt {
        PromptField::One(p) => Ok(p.clone()),
        PromptField::Many(v) if v.len() == 1 => Ok(v[0].clone()),
        PromptField::Many(_) => Err(bad("invalid_prompt", "exactly one prompt per request is supported")),
    };
    generate(s, caller, attribution_public(&headers), &b.common, text, &body, Kind::Completion, None).await
}

async fn chat_completions(
    State(s): State<Arc<OpenLora>>,
    caller: MaybeCaller,
    request: axum::extract::Request,
) -> Response {
    let (headers, body) = match admit(&s, caller.0, request).await {
        Ok(read) => read,
        Err(r) => return r,
    };
    let b: ChatBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad("invalid_json", format!("the request body does not parse: {e}")),
    };
    let msgs = match chat_messages(&b.messages) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let (msgs, retrieved) = match &b.retrieval {
        None => (msgs, None),
        Some(field) => {
            let Some(query) = crate::retrieval::query_of(&msgs) else {
                return bad("invalid_messages", "retrieval needs a user message to retrieve for");
            };
            match crate::retrieval::run(&s, caller.0, query, field).await {
                Ok(found) => {
                    let (msgs, found) = fit_passages(&s, &b.common, &msgs, found);
                    (msgs, Some(found))
                }
                Err(r) => return r,
            }
        }
    };
    let text = chat_prompt(&s, &msgs);
    generate(s, caller, attribution_public(&headers), &b.common, text, &body, Kind::Chat, retrieved).await
}

/// The request's messages, checked (roles; text content only).
#[allow(clippy::result_large_err)] // the error is the HTTP answer, as in `prepare`
fn chat_messages(messages: &[ChatMessageIn]) -> Result<Vec<ChatMessage>, Response> {
    if messages.is_empty() {
        return Err(bad("invalid_messages", "messages must not be empty"));
    }
    let mut msgs = Vec::with_capacity(messages.len());
    for m in messages {
        if !matches!(m.role.as_str(), "system" | "user" | "assistant" | "developer") {
            return Err(bad("invalid_role", format!("unsupported message role {:?}", m.role)));
        }
        let role = if m.role == "developer" { "system".to_string() } else { m.role.clone() };
        msgs.push(ChatMessage { role, content: message_text(&m.content).map_err(|e| bad("invalid_content", e))? });
    }
    Ok(msgs)
}

/// The prompt of a conversation: the model's chat template, or `role: content` lines.
#[allow(clippy::result_large_err)] // the error is the HTTP answer, as in `prepare`
fn chat_prompt(s: &OpenLora, msgs: &[ChatMessage]) -> Result<String, Response> {
    let tok = &s.engine.tokenizer;
    if tok.chat_template.is_some() {
        tok.apply_chat_template(msgs, true).map_err(|e| bad("chat_template", e.to_string()))
    } else {
        Ok(msgs.iter().map(|m| format!("{}: {}\n", m.role, m.content)).collect::<String>() + "assistant: ")
    }
}

/// The conversation with as many retrieved passages (best first) as leave the
/// answer room: the prompt may take the context less the tokens the request
/// asks for (at most half of it). Passages left out are not in the record.
fn fit_passages(
    s: &OpenLora,
    c: &CommonParams,
    msgs: &[ChatMessage],
    mut found: Retrieved,
) -> (Vec<ChatMessage>, Retrieved) {
    let ctx = s.engine.model.config.max_position_embeddings;
    let max_prompt = s.limits.max_prompt_tokens.min(ctx.saturating_sub(1));
    let wanted = c.max_completion_tokens.or(c.max_tokens).unwrap_or(s.limits.default_max_tokens as u64) as usize;
    let budget = max_prompt.saturating_sub(wanted.min(max_prompt / 2));
    loop {
        let with = crate::retrieval::with_passages(msgs, &found);
        let fits = chat_prompt(s, &with)
            .ok()
            .and_then(|t| s.engine.tokenizer.encode(&t, false).ok())
            .is_some_and(|t| t.len() <= budget);
        if fits || found.passages.is_empty() {
            return (with, found);
        }
        found.passages.pop();
    }
}

async fn generate(
    s: Arc<OpenLora>,
    caller: MaybeCaller,
    public_record: bool,
    common: &CommonParams,
    text: Result<String, Response>,
    raw_body: &[u8],
    kind: Kind,
    retrieved: Option<Retrieved>,
) -> Response {
    let p = match prepare(&s, common, text) {
        Ok(p) => p,
        Err(r) => {
            s.engine.metrics.rejected.fetch_add(1, Ordering::Relaxed);
            return r;
        }
    };
    // Before anything is reserved: a place for the answer's attribution, or 503.
    let slot = match attribution_slot(&s, &p.model, retrieved.as_ref()) {
        Ok(slot) => slot,
        Err(r) => {
            s.engine.metrics.rejected.fetch_add(1, Ordering::Relaxed);
            return r;
        }
    };
    let payer = caller.0;
    // Reserve the most this request can cost before generating anything.
    let reservation = match s.billing.reserve(payer, &p.model, p.prompt.len(), p.params.max_tokens) {
        Ok(r) => crate::billing::Reservation {
            // An answer whose retrieval found nothing quotes nothing: no hash.
            retrieval_hash: retrieved
                .as_ref()
                .filter(|r| !r.passages.is_empty())
                .map(Retrieved::hash)
                .unwrap_or_default(),
            ..r
        },
        Err(e) => {
            s.engine.metrics.rejected.fetch_add(1, Ordering::Relaxed);
            return billing_error(e);
        }
    };
    let adapter = if p.model.has_adapter {
        let cache = s.cache.clone();
        let id = p.model.id;
        match tokio::task::spawn_blocking(move || cache.get(id)).await {
            Ok(Ok(a)) => Some(a),
            Ok(Err(e)) => {
                s.billing.release(reservation);
                return error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    "adapter_unavailable",
                    e.to_string(),
                );
            }
            Err(e) => {
                s.billing.release(reservation);
                return error_response(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal", e.to_string());
            }
        }
    } else {
        None
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let rx = match s.engine.submit(Request {
        prompt: p.prompt.clone(),
        adapter,
        params: p.params.clone(),
        cancel: cancel.clone(),
    }) {
        Ok(rx) => rx,
        Err(e) => {
            s.billing.release(reservation);
            s.engine.metrics.rejected.fetch_add(1, Ordering::Relaxed);
            return submit_error(e);
        }
    };
    let request_hash = primitives::content_hash(raw_body);
    let id = format!("{}-{}", if kind == Kind::Chat { "chatcmpl" } else { "cmpl" }, &request_hash.to_string()[2..26]);
    let created = now();
    let model_name = format!("m{}", p.model.id);
    let ctx = GenCtx {
        s: s.clone(),
        reservation: Some(reservation),
        request_hash,
        prompt_tokens: p.prompt.len(),
        prompt: p.prompt.clone(),
        public_record,
        delivered: 0,
        text: String::new(),
        retrieved,
        slot,
    };
    if !p.stream {
        return whole(ctx, rx, kind, id, created, model_name).await;
    }
    stream(ctx, rx, kind, id, created, model_name, p.include_usage)
}

/// A generation in flight: bills what was delivered, also when the client goes away.
struct GenCtx {
    s: Arc<OpenLora>,
    reservation: Option<crate::billing::Reservation>,
    request_hash: B256,
    prompt: Vec<u32>,
    /// The payer published the attribution record ([`ATTRIBUTION_PUBLIC_HEADER`]).
    public_record: bool,
    prompt_tokens: usize,
    delivered: usize,
    text: String,
    /// The rows a retrieval put in the prompt.
    retrieved: Option<Retrieved>,
    /// The answer's place in the attribution queue (none: nothing to attribute).
    slot: Option<Slot>,
}

/// An answer's attribution job, queued: its receipt and where the outcome arrives.
type Pending = (B256, tokio::sync::oneshot::Receiver<Outcome>);

/// A place in the attribution queue for an answer that will be attributed
/// (none for one that will not), or the 503 that refuses the request when the
/// queue is full: no answer is served whose record could not be computed.
#[allow(clippy::result_large_err)] // the error is the HTTP answer, as in `prepare`
fn attribution_slot(s: &OpenLora, model: &ModelEntry, retrieved: Option<&Retrieved>) -> Result<Option<Slot>, Response> {
    let Some(q) = &s.attributor else { return Ok(None) };
    if !q.attributor().wants(model, retrieved) {
        return Ok(None);
    }
    let (code, msg, retry_after) = match q.admit() {
        Ok(slot) => return Ok(Some(slot)),
        Err(Refusal::Full { capacity, retry_after }) => (
            "attribution_queue_full",
            format!(
                "this node is attributing as many answers as its queue holds ({capacity}); nothing was reserved \
                 or charged: retry in {retry_after} s"
            ),
            retry_after,
        ),
        Err(Refusal::Stopping) => ("node_stopping", "this node is stopping; nothing was charged".to_string(), 5),
    };
    let mut r = error_response(StatusCode::SERVICE_UNAVAILABLE, "server_error", code, msg);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    Err(r)
}

/// The answer's attribution: the summary when its record is ready within the
/// queue's budget, else the pointer to `GET /v1/attribution/{receipt}`; null
/// when there is nothing to attribute or the computation failed (as before).
async fn attribution_of(s: &OpenLora, pending: Option<Pending>) -> Value {
    let (Some(q), Some((h, rx))) = (&s.attributor, pending) else { return Value::Null };
    match tokio::time::timeout(q.budget(), rx).await {
        Ok(Ok(Ok(summary))) => summary,
        Ok(_) => Value::Null,
        Err(_) => pending_pointer(&h),
    }
}

impl GenCtx {
    /// Bill what was delivered; the receipt, and (for a complete answer whose
    /// tokens are known) its attribution job, queued.
    fn settle(
        &mut self,
        completion_tokens: usize,
        text: &str,
        tokens: Option<&[u32]>,
    ) -> (Option<Value>, Option<Pending>) {
        let Some(r) = self.reservation.take() else { return (None, None) };
        let model = r.model.clone();
        let usage = Usage { prompt_tokens: self.prompt_tokens, completion_tokens };
        let receipt = match self.s.billing.bill(r, usage, self.request_hash, primitives::content_hash(text.as_bytes()))
        {
            Ok(receipt) => receipt,
            Err(e) => {
                tracing::error!("billing failed: {e}");
                None
            }
        };
        let hash = receipt.as_ref().and_then(|v| v["hash"].as_str()).and_then(|h| h.parse::<B256>().ok());
        let party = |k: &str| receipt.as_ref().and_then(|v| v[k].as_str()).and_then(|a| a.parse::<Address>().ok());
        let access = RecordAccess { payer: party("payer"), operator: party("operator"), public: self.public_record };
        // Without a receipt or the answer's tokens there is nothing to attribute:
        // the slot, dropped with this context, frees its place.
        let pending = match (self.slot.take(), hash, tokens) {
            (Some(slot), Some(h), Some(t)) => {
                let job = Job {
                    model,
                    receipt_hash: h,
                    prompt: self.prompt.clone(),
                    response: t.to_vec(),
                    text: text.to_string(),
                    access,
                    retrieved: self.retrieved.clone(),
                };
                Some((h, AttributionQueue::enqueue(slot, job)))
            }
            _ => None,
        };
        (receipt, pending)
    }
}

impl Drop for GenCtx {
    fn drop(&mut self) {
        // A client that disconnected pays only for the tokens it was sent.
        if self.reservation.is_some() {
            let (n, t) = (self.delivered, std::mem::take(&mut self.text));
            let _ = self.settle(n, &t, None);
        }
    }
}

fn usage_json(prompt: usize, completion: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

async fn whole(
    mut ctx: GenCtx,
    rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
    kind: Kind,
    id: String,
    created: u64,
    model: String,
) -> Response {
    let o = match crate::engine::collect(rx).await {
        Ok(o) => o,
        Err(e) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "generation_failed", e),
    };
    ctx.delivered = o.completion_tokens;
    let last_token = std::time::Instant::now();
    // Billing signs (blocking work); attribution runs beside, waited for within its budget.
    let (receipt, pending) = tokio::task::block_in_place(|| ctx.settle(o.completion_tokens, &o.text, Some(&o.tokens)));
    let attribution = attribution_of(&ctx.s, pending).await;
    ctx.s.engine.metrics.final_chunk_delay.observe(last_token.elapsed());
    let choice = match kind {
        Kind::Chat => json!({
            "index": 0,
            "message": {"role": "assistant", "content": o.text},
            "logprobs": null,
            "finish_reason": finish_reason(o.finish),
        }),
        Kind::Completion => {
            json!({"index": 0, "text": o.text, "logprobs": null, "finish_reason": finish_reason(o.finish)})
        }
    };
    Json(json!({
        "id": id,
        "object": if kind == Kind::Chat { "chat.completion" } else { "text_completion" },
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": usage_json(o.prompt_tokens, o.completion_tokens),
        "receipt": receipt,
        "attribution": attribution,
        "retrieval": ctx.retrieved.as_ref().map(|r| r.to_json(false)),
    }))
    .into_response()
}

fn stream(
    ctx: GenCtx,
    rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
    kind: Kind,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
) -> Response {
    struct St {
        ctx: GenCtx,
        rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
        first: bool,
        done: bool,
        /// The usage chunk, sent after the finish chunk when the client asked for it.
        usage_chunk: Option<SseEvent>,
    }
    let object = if kind == Kind::Chat { "chat.completion.chunk" } else { "text_completion" };
    let retrieval = ctx.retrieved.as_ref().map(|r| r.to_json(false));
    // As OpenAI does: with `stream_options.include_usage` every chunk has
    // `"usage": null` and one last chunk with no choices carries the usage;
    // without it no chunk has a usage field. The receipt and the attribution
    // summary ride on the finish chunk (and on the usage chunk).
    let chunk = move |choices: Vec<Value>, usage: Option<Value>, extra: Option<(Value, Value)>| {
        let mut v = json!({"id": id, "object": object, "created": created, "model": model, "choices": choices});
        if include_usage {
            v["usage"] = usage.unwrap_or(Value::Null);
        }
        if let Some((receipt, attribution)) = extra {
            v["receipt"] = receipt;
            v["attribution"] = attribution;
            if let Some(r) = &retrieval {
                v["retrieval"] = r.clone();
            }
        }
        SseEvent::default().data(v.to_string())
    };
    let st = St { ctx, rx, first: true, done: false, usage_chunk: None };
    let s = futures_util::stream::unfold(st, move |mut st| {
        let chunk = chunk.clone();
        async move {
            if let Some(u) = st.usage_chunk.take() {
                return Some((Ok(u), st));
            }
            if st.done {
                return None;
            }
            if st.first && kind == Kind::Chat {
                st.first = false;
                let c = chunk(
                    vec![
                        json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}),
                    ],
                    None,
                    None,
                );
                return Some((Ok::<_, std::convert::Infallible>(c), st));
            }
            match st.rx.recv().await {
                Some(Event::Text(t, n)) => {
                    st.ctx.delivered = n;
                    st.ctx.text.push_str(&t);
                    let c = match kind {
                        Kind::Chat => {
                            json!({"index": 0, "delta": {"content": t}, "logprobs": null, "finish_reason": null})
                        }
                        Kind::Completion => json!({"index": 0, "text": t, "logprobs": null, "finish_reason": null}),
                    };
                    Some((Ok(chunk(vec![c], None, None)), st))
                }
                Some(Event::Done(o)) => {
                    st.ctx.delivered = o.completion_tokens;
                    let last_token = std::time::Instant::now();
                    let (receipt, pending) =
                        tokio::task::block_in_place(|| st.ctx.settle(o.completion_tokens, &o.text, Some(&o.tokens)));
                    let attribution = attribution_of(&st.ctx.s, pending).await;
                    st.ctx.s.engine.metrics.final_chunk_delay.observe(last_token.elapsed());
                    let c = match kind {
                        Kind::Chat => {
                            json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish_reason(o.finish)})
                        }
                        Kind::Completion => {
                            json!({"index": 0, "text": "", "logprobs": null, "finish_reason": finish_reason(o.finish)})
                        }
                    };
                    let extra = (receipt.unwrap_or(Value::Null), attribution);
                    st.done = true;
                    if include_usage {
                        let usage = usage_json(o.prompt_tokens, o.completion_tokens);
                        st.usage_chunk = Some(chunk(vec![], Some(usage), Some(extra.clone())));
                    }
                    Some((Ok(chunk(vec![c], None, Some(extra))), st))
                }
                Some(Event::Error(e)) => {
                    st.done = true;
                    let v = json!({"error": {"message": e, "type": "server_error", "code": "generation_failed"}});
                    Some((Ok(SseEvent::default().data(v.to_string())), st))
                }
                None => None,
            }
        }
    });
    let done = futures_util::stream::once(async { Ok(SseEvent::default().data("[DONE]")) });
    use futures_util::StreamExt;
    Sse::new(s.chain(done)).keep_alive(KeepAlive::default()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_go_to_the_payer_and_the_operator_unless_published() {
        let (payer, operator, other) = (Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3));
        let private = RecordAccess { payer: Some(payer), operator: Some(operator), public: false };
        assert!(private.allows(Some(payer)));
        assert!(private.allows(Some(operator)));
        assert!(!private.allows(Some(other)));
        assert!(!private.allows(None));
        // No known payer (anonymous billing): only the operator, never "anyone equal to None".
        let unknown = RecordAccess { payer: None, operator: Some(operator), public: false };
        assert!(!unknown.allows(None));
        assert!(unknown.allows(Some(operator)));
        let published = RecordAccess { public: true, ..private };
        assert!(published.allows(None) && published.allows(Some(other)));

        let mut h = axum::http::HeaderMap::new();
        assert!(!attribution_public(&h));
        h.insert(ATTRIBUTION_PUBLIC_HEADER, "TRUE".parse().unwrap());
        assert!(attribution_public(&h));
        h.insert(ATTRIBUTION_PUBLIC_HEADER, "yes".parse().unwrap());
        assert!(!attribution_public(&h), "only `true` publishes");
    }
}
