//! OpenAI-style JSON errors: `{"error": {"message", "type", "code"}}`.
//!
//! Every route answers errors through [`error_response`] (or [`ApiError`]), and the
//! server's [`json_errors`] layer rewrites whatever non-JSON error still gets out
//! (axum's own extractor rejections, 405s, 413s) into the same shape, so a client
//! only ever parses one error format. The one exception is an HTML page: the web
//! app's 400 and 404 pages are for people and stay as they are.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The largest non-JSON error body [`json_errors`] reads to turn into a message.
const MAX_PLAIN_ERROR_BYTES: usize = 64 * 1024;

/// An error answer in the OpenAI style:
/// `{"error": {"message": <message>, "type": <kind>, "code": <code>}}` with `status`.
///
/// `kind` is the broad class (`invalid_request_error`, `authentication_error`,
/// `permission_error`, `not_found_error`, `rate_limit_error`, `timeout_error`,
/// `server_error`); `code` is a stable snake_case identifier clients may match on.
pub fn error_response(status: StatusCode, kind: &str, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "message": message.into(), "type": kind, "code": code } });
    (status, axum::Json(body)).into_response()
}

/// An error a handler can return with `?`: converts into [`error_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, code, message: message.into() }
    }

    /// 400 `invalid_request_error`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", code, message)
    }

    /// 403 `permission_error`.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_error", code, message)
    }

    /// 404 `not_found_error`.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found_error", code, message)
    }

    /// 500 `server_error`.
    pub fn internal(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", code, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status, self.kind, self.code, self.message)
    }
}

/// The `type` and `code` the server uses for a bare status.
pub(crate) fn classify(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("invalid_request_error", "bad_request"),
        StatusCode::UNAUTHORIZED => ("authentication_error", "unauthorized"),
        StatusCode::FORBIDDEN => ("permission_error", "forbidden"),
        StatusCode::NOT_FOUND => ("not_found_error", "not_found"),
        StatusCode::METHOD_NOT_ALLOWED => ("invalid_request_error", "method_not_allowed"),
        StatusCode::REQUEST_TIMEOUT => ("timeout_error", "request_timeout"),
        StatusCode::CONFLICT => ("invalid_request_error", "conflict"),
        StatusCode::PAYLOAD_TOO_LARGE => ("invalid_request_error", "payload_too_large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("invalid_request_error", "unsupported_media_type"),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid_request_error", "unprocessable_entity"),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limit_error", "rate_limited"),
        StatusCode::SERVICE_UNAVAILABLE => ("server_error", "unavailable"),
        s if s.is_server_error() => ("server_error", "internal_error"),
        _ => ("invalid_request_error", "error"),
    }
}

/// The fallback of the assembled router: 404 for a path no service serves.
pub(crate) async fn not_found(method: Method, uri: Uri) -> Response {
    let (kind, code) = classify(StatusCode::NOT_FOUND);
    error_response(StatusCode::NOT_FOUND, kind, code, format!("no route for {method} {}", uri.path()))
}

/// 405 for a path that exists under another method.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let (kind, code) = classify(StatusCode::METHOD_NOT_ALLOWED);
    let message = format!("method {method} is not allowed on {}", uri.path());
    error_response(StatusCode::METHOD_NOT_ALLOWED, kind, code, message)
}

/// Whether the answer's content type starts with one of `types`.
fn has_type(headers: &HeaderMap, types: &[&str]) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        let v = v.trim_start().to_ascii_lowercase();
        types.iter().any(|t| v.starts_with(t))
    })
}

/// Middleware: rewrite a 4xx/5xx answer whose body is neither JSON nor an HTML
/// page into the OpenAI error shape, keeping its status and headers (`Allow`, ...)
/// and using its text as the message.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || has_type(response.headers(), &["application/json", "text/html"])
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_PLAIN_ERROR_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text };
    let (kind, code) = classify(status);
    let (new_parts, new_body) = error_response(status, kind, code, message).into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.insert(
        header::CONTENT_TYPE,
        new_parts.headers.get(header::CONTENT_TYPE).cloned().unwrap_or(HeaderValue::from_static("application/json")),
    );
    Response::from_parts(parts, new_body)
}
