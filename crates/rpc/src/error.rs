//! JSON-RPC error objects and the codes and messages wallets match on.

use serde::Serialize;
use serde_json::Value;

use crate::backend::{CallError, SubmitError};

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid request object (or batch).
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error of the server.
pub const INTERNAL_ERROR: i64 = -32603;
/// go-ethereum's generic server error: refused transactions, missing headers.
pub const SERVER_ERROR: i64 = -32000;
/// A query that would return too much (block range or result count).
pub const LIMIT_EXCEEDED: i64 = -32005;
/// A reverted call (`eth_call`, `eth_estimateGas`), with the revert data in `data`.
pub const EXECUTION_REVERTED: i64 = 3;

/// A JSON-RPC error object: `{"code", "message", "data"?}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into(), data: None }
    }
    pub fn parse_error() -> Self {
        Self::new(PARSE_ERROR, "parse error")
    }
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(INVALID_REQUEST, message)
    }
    /// go-ethereum's wording.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("the method {method} does not exist/is not available"))
    }
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(INTERNAL_ERROR, message)
    }
    pub fn server(message: impl Into<String>) -> Self {
        Self::new(SERVER_ERROR, message)
    }
    pub fn limit(message: impl Into<String>) -> Self {
        Self::new(LIMIT_EXCEEDED, message)
    }
    /// go-ethereum's answer for a block number above the head or an unknown hash.
    pub fn header_not_found() -> Self {
        Self::server("header not found")
    }
    /// Code 3, "execution reverted" (with ": reason" appended when the data is a
    /// Solidity `Error(string)`, as go-ethereum does), and the revert data in hex.
    pub fn revert(data: &[u8]) -> Self {
        let message = match decode_error_string(data) {
            Some(reason) => format!("execution reverted: {reason}"),
            None => "execution reverted".to_string(),
        };
        RpcError { code: EXECUTION_REVERTED, message, data: Some(Value::String(crate::json::hex_data(data))) }
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}

impl From<CallError> for RpcError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Revert(data) => RpcError::revert(&data),
            CallError::Invalid(msg) | CallError::Unavailable(msg) => RpcError::server(msg),
        }
    }
}

impl From<SubmitError> for RpcError {
    fn from(e: SubmitError) -> Self {
        RpcError::server(e.message)
    }
}

/// The reason of a Solidity `Error(string)` revert (selector 0x08c379a0), if `data` is one.
pub fn decode_error_string(data: &[u8]) -> Option<String> {
    const SELECTOR: [u8; 4] = [0x08, 0xc3, 0x79, 0xa0];
    if data.len() < 4 + 64 || data[..4] != SELECTOR {
        return None;
    }
    let body = &data[4..];
    let word = |at: usize| -> Option<usize> {
        let w = body.get(at..at + 32)?;
        if w[..24].iter().any(|b| *b != 0) {
            return None;
        }
        Some(u64::from_be_bytes(w[24..].try_into().ok()?) as usize)
    };
    let offset = word(0)?;
    let len = word(offset)?;
    let start = offset.checked_add(32)?;
    let bytes = body.get(start..start.checked_add(len)?)?;
    String::from_utf8(bytes.to_vec()).ok()
}
