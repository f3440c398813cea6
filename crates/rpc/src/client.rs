//! A blocking JSON-RPC client for the CLI, tests and benchmarks, over the
//! workspace's HTTP client ([`crate::http`]: ureq, keep-alive, bounded answers).
//! Blocks, transactions, receipts and logs come back as alloy's RPC types
//! ([`crate::types`]), the same ones the server serialises.
//!
//! ```no_run
//! let mut c = rpc::client::RpcClient::new("127.0.0.1:8545");
//! let head = c.block_number()?;
//! # Ok::<(), rpc::client::ClientError>(())
//! ```

use std::time::{Duration, Instant};

use primitives::{Address, B256, U256};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::http::{HttpClient, HttpError, split_url};
use crate::types::{Block, BlockNumberOrTag, Filter, Log, Receipt, Transaction};

/// Default port when the address has none.
pub const DEFAULT_PORT: u16 = 8545;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// No connection could be made.
    #[error("cannot reach the node at {addr}: {reason} — is `openledger up` running?")]
    Unreachable { addr: String, reason: String },
    /// The connection broke or the HTTP exchange failed.
    #[error("transport error talking to the node at {addr}: {reason}")]
    Transport { addr: String, reason: String },
    /// The node answered with a JSON-RPC error.
    #[error("{message} (JSON-RPC error {code})")]
    Rpc { code: i64, message: String, data: Option<Value> },
    /// The answer was not what the method should return.
    #[error("unexpected response: {0}")]
    Response(String),
    /// `wait_receipt` gave up.
    #[error("{0}")]
    Timeout(String),
}

impl ClientError {
    /// Whether the node could not be reached or the connection failed (as opposed
    /// to the node answering with an error).
    pub fn is_transport(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. } | ClientError::Transport { .. })
    }
    /// The JSON-RPC error code, if the node answered with an error.
    pub fn code(&self) -> Option<i64> {
        match self {
            ClientError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A blocking JSON-RPC client; its connection is kept alive between calls.
#[derive(Debug, Clone)]
pub struct RpcClient {
    http: HttpClient,
    path: String,
    next_id: u64,
}

impl From<HttpError> for ClientError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Unreachable { addr, reason } => ClientError::Unreachable { addr, reason },
            HttpError::Transport { addr, reason } | HttpError::Request { addr, reason } => {
                ClientError::Transport { addr, reason }
            }
        }
    }
}

impl RpcClient {
    /// `addr` is "host:port" or "http://host:port[/path]"; without a port, 8545.
    /// Nothing is connected until the first call.
    pub fn new(addr: &str) -> Self {
        let (hostport, path) = split_url(addr, DEFAULT_PORT);
        RpcClient { http: HttpClient::new(&hostport), path, next_id: 1 }
    }

    /// How long to wait for connecting and for each read (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.with_timeout(timeout);
        self
    }

    /// "host:port" of the node.
    pub fn addr(&self) -> &str {
        self.http.addr()
    }

    /// Call `method` with `params` (an array, or null for none) and return its result.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let params = if params.is_null() { json!([]) } else { params };
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answer = self.post(&serde_json::to_vec(&body).expect("JSON serialises"))?;
        match answer {
            Value::Object(_) => Self::outcome(answer),
            other => Err(ClientError::Response(format!("want a JSON-RPC response object, got {other}"))),
        }
    }

    /// Send several calls in one batch; the results come back in call order.
    pub fn batch(&mut self, calls: &[(&str, Value)]) -> Result<Vec<Result<Value, ClientError>>, ClientError> {
        let first = self.next_id;
        self.next_id += calls.len() as u64;
        let body: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (m, p))| {
                let p = if p.is_null() { json!([]) } else { p.clone() };
                json!({"jsonrpc": "2.0", "id": first + i as u64, "method": m, "params": p})
            })
            .collect();
        let answer = self.post(&serde_json::to_vec(&body).expect("JSON serialises"))?;
        let Value::Array(answers) = answer else {
            // A whole-batch error (e.g. too large) comes back as one object.
            return Err(Self::outcome(answer).err().unwrap_or_else(|| ClientError::Response("want an array".into())));
        };
        let mut out: Vec<Option<Result<Value, ClientError>>> = calls.iter().map(|_| None).collect();
        for a in answers {
            let idx = a.get("id").and_then(Value::as_u64).and_then(|id| id.checked_sub(first)).map(|i| i as usize);
            if let Some(slot) = idx.and_then(|i| out.get_mut(i)) {
                *slot = Some(Self::outcome(a));
            }
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(ClientError::Response("no answer for this call in the batch".into()))))
            .collect())
    }

    fn outcome(mut answer: Value) -> Result<Value, ClientError> {
        if let Some(e) = answer.get_mut("error").filter(|e| !e.is_null()) {
            return Err(ClientError::Rpc {
                code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: e.get("message").and_then(Value::as_str).unwrap_or("").to_string(),
                data: e.get_mut("data").map(Value::take).filter(|d| !d.is_null()),
            });
        }
        Ok(answer.get_mut("result").map(Value::take).unwrap_or(Value::Null))
    }

    /// POST a body and parse the JSON answer.
    fn post(&mut self, body: &[u8]) -> Result<Value, ClientError> {
        let headers = [("Content-Type", "application/json".to_string()), ("Accept", "application/json".to_string())];
        let answer = self.http.request("POST", &self.path, &headers, body)?;
        if answer.status != 200 {
            let text = String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]).trim().to_string();
            let reason = format!("HTTP {} {text}", answer.status);
            return Err(ClientError::Transport { addr: self.addr().to_string(), reason });
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| ClientError::Response(format!("invalid JSON from the node: {e}")))
    }

    /// The head block number.
    pub fn block_number(&mut self) -> Result<u64, ClientError> {
        let v = self.call("eth_blockNumber", json!([]))?;
        parse_u64(&v)
    }

    pub fn chain_id(&mut self) -> Result<u64, ClientError> {
        let v = self.call("eth_chainId", json!([]))?;
        parse_u64(&v)
    }

    /// Balance at the head, in base units.
    pub fn balance(&mut self, addr: &Address) -> Result<U256, ClientError> {
        let v = self.call("eth_getBalance", json!([addr_hex(addr), "latest"]))?;
        let s = v.as_str().ok_or_else(|| ClientError::Response(format!("want a hex quantity, got {v}")))?;
        let h = s.strip_prefix("0x").ok_or_else(|| ClientError::Response(format!("want a hex quantity, got {s}")))?;
        U256::from_str_radix(h, 16).map_err(|e| ClientError::Response(format!("bad quantity {s}: {e}")))
    }

    /// The account's nonce at the head, or counting the pool when `pending`.
    pub fn nonce(&mut self, addr: &Address, pending: bool) -> Result<u64, ClientError> {
        let tag = if pending { "pending" } else { "latest" };
        let v = self.call("eth_getTransactionCount", json!([addr_hex(addr), tag]))?;
        parse_u64(&v)
    }

    /// `eth_sendRawTransaction`: the transaction hash once the node has it durably.
    pub fn send_raw(&mut self, raw: &[u8]) -> Result<B256, ClientError> {
        let v = self.call("eth_sendRawTransaction", json!([format!("0x{}", hex::encode(raw))]))?;
        v.as_str()
            .and_then(|s| s.parse::<B256>().ok())
            .ok_or_else(|| ClientError::Response(format!("want a transaction hash, got {v}")))
    }

    /// Call `method` and read its result as `T` (e.g. `Option<Block>`: `null` is `None`).
    pub fn call_as<T: DeserializeOwned>(&mut self, method: &str, params: Value) -> Result<T, ClientError> {
        let v = self.call(method, params)?;
        parse_answer(method, v)
    }

    /// A block by number or tag, its transactions as hashes or (`full`) as objects;
    /// `None` if there is no such block.
    pub fn block(&mut self, block: BlockNumberOrTag, full: bool) -> Result<Option<Block>, ClientError> {
        self.call_as("eth_getBlockByNumber", json!([block, full]))
    }

    /// A transaction, mined or pooled; `None` if the node does not know it.
    pub fn transaction(&mut self, hash: &B256) -> Result<Option<Transaction>, ClientError> {
        self.call_as("eth_getTransactionByHash", json!([hash]))
    }

    /// The receipt, or `None` while the transaction is not in a block.
    pub fn receipt(&mut self, hash: &B256) -> Result<Option<Receipt>, ClientError> {
        self.call_as("eth_getTransactionReceipt", json!([hash]))
    }

    /// `eth_getLogs`: the logs matching `filter`.
    pub fn logs(&mut self, filter: &Filter) -> Result<Vec<Log>, ClientError> {
        self.call_as("eth_getLogs", json!([filter]))
    }

    /// Poll for the receipt until it appears or `timeout` passes.
    pub fn wait_receipt(&mut self, hash: &B256, timeout: Duration) -> Result<Receipt, ClientError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(r) = self.receipt(hash)? {
                return Ok(r);
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return Err(ClientError::Timeout(format!(
                    "no receipt for transaction {hash:#x} after {:.1}s",
                    timeout.as_secs_f64()
                )));
            }
            std::thread::sleep(pause.min(timeout - elapsed));
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

/// Read the result of `method` (from [`RpcClient::call`] or a [`RpcClient::batch`]
/// answer) as `T`; an answer of the wrong shape is a [`ClientError::Response`].
pub fn parse_answer<T: DeserializeOwned>(method: &str, v: Value) -> Result<T, ClientError> {
    serde_json::from_value(v).map_err(|e| ClientError::Response(format!("{method}: {e}")))
}

fn addr_hex(a: &Address) -> String {
    format!("0x{}", hex::encode(a.as_slice()))
}

fn parse_u64(v: &Value) -> Result<u64, ClientError> {
    v.as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(|| ClientError::Response(format!("want a hex quantity, got {v}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let c = RpcClient::new("127.0.0.1:8545");
        assert_eq!((c.addr(), c.path.as_str()), ("127.0.0.1:8545", "/"));
        let c = RpcClient::new("http://localhost:9000/");
        assert_eq!((c.addr(), c.path.as_str()), ("localhost:9000", "/"));
        let c = RpcClient::new("http://example.invalid/rpc");
        assert_eq!((c.addr(), c.path.as_str()), ("example.invalid:8545", "/rpc"));
        let c = RpcClient::new("[::1]:8546");
        assert_eq!(c.addr(), "[::1]:8546");
    }

    #[test]
    fn unreachable_names_the_address() {
        // Bind then drop a listener so the port is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut c = RpcClient::new(&format!("127.0.0.1:{port}"));
        let e = c.block_number().unwrap_err();
        assert!(e.is_transport());
        assert_eq!(
            e.to_string(),
            format!("cannot reach the node at 127.0.0.1:{port}: connection refused — is `openledger up` running?")
        );
    }
}
