//! A small blocking JSON-RPC client over `std::net::TcpStream`, for the CLI,
//! tests and benchmarks: HTTP/1.1 with keep-alive (one connection, reopened once
//! if the server closed it), `Content-Length` and chunked responses.
//!
//! ```no_run
//! let mut c = rpc::client::RpcClient::new("127.0.0.1:8545");
//! let head = c.block_number()?;
//! # Ok::<(), rpc::client::ClientError>(())
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use primitives::{Address, B256, U256};
use serde_json::{Value, json};

/// Default port when the address has none.
pub const DEFAULT_PORT: u16 = 8545;
/// Largest response accepted (a full `eth_getLogs` answer fits well within).
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
const MAX_HEADER_LINE: usize = 16 * 1024;

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

/// A blocking JSON-RPC client holding one keep-alive connection.
#[derive(Debug)]
pub struct RpcClient {
    /// host:port as given, for messages and the Host header.
    addr: String,
    path: String,
    conn: Option<BufReader<TcpStream>>,
    next_id: u64,
    timeout: Duration,
}

/// An I/O failure, and whether resending on a fresh connection is safe
/// (nothing of the answer was read: a stale keep-alive connection).
struct IoFail {
    reason: String,
    retryable: bool,
}

fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        ConnectionAborted => "connection aborted".into(),
        BrokenPipe => "broken pipe".into(),
        TimedOut | WouldBlock => "timed out".into(),
        UnexpectedEof => "connection closed by the node".into(),
        _ => e.to_string(),
    }
}

impl RpcClient {
    /// `addr` is "host:port" or "http://host:port[/path]"; without a port, 8545.
    /// Nothing is connected until the first call.
    pub fn new(addr: &str) -> Self {
        let rest = addr.trim();
        let rest = rest.strip_prefix("http://").unwrap_or(rest);
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let has_port = match hostport.rfind(':') {
            Some(i) => !hostport[i..].contains(']') && hostport[i + 1..].parse::<u16>().is_ok(),
            None => false,
        };
        let addr = if has_port { hostport.to_string() } else { format!("{hostport}:{DEFAULT_PORT}") };
        RpcClient { addr, path: path.to_string(), conn: None, next_id: 1, timeout: Duration::from_secs(60) }
    }

    /// How long to wait for connecting and for each read (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// "host:port" of the node.
    pub fn addr(&self) -> &str {
        &self.addr
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

    /// POST a body and parse the JSON answer, reconnecting once if a reused
    /// connection turns out to be closed.
    fn post(&mut self, body: &[u8]) -> Result<Value, ClientError> {
        let mut attempt = 0;
        let (status, bytes) = loop {
            attempt += 1;
            let reused = self.conn.is_some();
            if !reused {
                self.conn = Some(self.connect()?);
            }
            match self.exchange(body) {
                Ok(r) => break r,
                Err(f) => {
                    self.conn = None;
                    if f.retryable && reused && attempt == 1 {
                        continue;
                    }
                    return Err(ClientError::Transport { addr: self.addr.clone(), reason: f.reason });
                }
            }
        };
        if status != 200 {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).trim().to_string();
            return Err(ClientError::Transport { addr: self.addr.clone(), reason: format!("HTTP {status} {text}") });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Response(format!("invalid JSON from the node: {e}")))
    }

    fn connect(&self) -> Result<BufReader<TcpStream>, ClientError> {
        let unreachable = |reason: String| ClientError::Unreachable { addr: self.addr.clone(), reason };
        let addrs = self.addr.to_socket_addrs().map_err(|e| unreachable(format!("cannot resolve the address: {e}")))?;
        let mut last = "no address to connect to".to_string();
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    s.set_read_timeout(Some(self.timeout)).map_err(|e| unreachable(io_reason(&e)))?;
                    s.set_write_timeout(Some(self.timeout)).map_err(|e| unreachable(io_reason(&e)))?;
                    return Ok(BufReader::with_capacity(64 * 1024, s));
                }
                Err(e) => last = io_reason(&e),
            }
        }
        Err(unreachable(last))
    }

    /// One request/response on the open connection: (status, body).
    fn exchange(&mut self, body: &[u8]) -> Result<(u16, Vec<u8>), IoFail> {
        let conn = self.conn.as_mut().expect("connected");
        let mut req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json\r\n\
             Content-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            self.path,
            self.addr,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        conn.get_mut().write_all(&req).map_err(|e| IoFail { reason: io_reason(&e), retryable: true })?;
        let (status, keep_alive, bytes) = read_response(conn)?;
        if !keep_alive {
            self.conn = None;
        }
        Ok((status, bytes))
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

    /// The receipt, or `None` while the transaction is not in a block.
    pub fn receipt(&mut self, hash: &B256) -> Result<Option<Value>, ClientError> {
        let v = self.call("eth_getTransactionReceipt", json!([format!("{hash:#x}")]))?;
        Ok((!v.is_null()).then_some(v))
    }

    /// Poll for the receipt until it appears or `timeout` passes.
    pub fn wait_receipt(&mut self, hash: &B256, timeout: Duration) -> Result<Value, ClientError> {
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

fn addr_hex(a: &Address) -> String {
    format!("0x{}", hex::encode(a.as_slice()))
}

fn parse_u64(v: &Value) -> Result<u64, ClientError> {
    v.as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(|| ClientError::Response(format!("want a hex quantity, got {v}")))
}

/// Read one HTTP/1.1 response: (status, keep the connection, body).
fn read_response(r: &mut BufReader<TcpStream>) -> Result<(u16, bool, Vec<u8>), IoFail> {
    let fail = |reason: String| IoFail { reason, retryable: false };
    loop {
        // The status line; EOF or a reset here means a stale keep-alive connection.
        let line = match read_line(r) {
            Ok(Some(l)) => l,
            Ok(None) => {
                return Err(IoFail { reason: "connection closed by the node".into(), retryable: true });
            }
            Err(e) => {
                let retryable = matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe
                );
                return Err(IoFail { reason: io_reason(&e), retryable });
            }
        };
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|_| version.starts_with("HTTP/1."))
            .ok_or_else(|| fail(format!("not an HTTP response: {line:?}")))?;
        let mut keep_alive = version == "HTTP/1.1";
        let mut length: Option<usize> = None;
        let mut chunked = false;
        loop {
            let h = read_line(r)
                .map_err(|e| fail(io_reason(&e)))?
                .ok_or_else(|| fail("connection closed in the response headers".into()))?;
            if h.is_empty() {
                break;
            }
            let Some((name, value)) = h.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => {
                    length = Some(value.parse().map_err(|_| fail(format!("bad Content-Length {value:?}")))?);
                }
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                "connection" => {
                    let v = value.to_ascii_lowercase();
                    if v.contains("close") {
                        keep_alive = false;
                    } else if v.contains("keep-alive") {
                        keep_alive = true;
                    }
                }
                _ => {}
            }
        }
        if (100..200).contains(&status) {
            continue; // 100 Continue and friends: the real answer follows.
        }
        let body = if status == 204 || status == 304 {
            Vec::new()
        } else if chunked {
            read_chunked(r).map_err(fail)?
        } else if let Some(n) = length {
            if n > MAX_RESPONSE_BYTES {
                return Err(fail(format!("response too large ({n} bytes)")));
            }
            let mut buf = vec![0u8; n];
            r.read_exact(&mut buf).map_err(|e| fail(io_reason(&e)))?;
            buf
        } else {
            keep_alive = false;
            let mut buf = Vec::new();
            r.by_ref().take(MAX_RESPONSE_BYTES as u64 + 1).read_to_end(&mut buf).map_err(|e| fail(io_reason(&e)))?;
            if buf.len() > MAX_RESPONSE_BYTES {
                return Err(fail("response too large".into()));
            }
            buf
        };
        return Ok((status, keep_alive, body));
    }
}

fn read_chunked(r: &mut BufReader<TcpStream>) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r).map_err(|e| io_reason(&e))?.ok_or("connection closed in a chunked body")?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(r).map_err(|e| io_reason(&e))?.ok_or("connection closed in chunk trailers")?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_RESPONSE_BYTES {
            return Err("response too large".into());
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).map_err(|e| io_reason(&e))?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).map_err(|e| io_reason(&e))?;
        if &crlf != b"\r\n" {
            return Err("chunk not followed by CRLF".into());
        }
    }
}

/// One CRLF- (or LF-) terminated line without its terminator; `None` at EOF.
fn read_line(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.by_ref().take(MAX_HEADER_LINE as u64).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if n as u64 >= MAX_HEADER_LINE as u64 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "HTTP header line too long"));
        }
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed mid-line"));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "non-UTF-8 header"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let c = RpcClient::new("127.0.0.1:8545");
        assert_eq!((c.addr.as_str(), c.path.as_str()), ("127.0.0.1:8545", "/"));
        let c = RpcClient::new("http://localhost:9000/");
        assert_eq!((c.addr.as_str(), c.path.as_str()), ("localhost:9000", "/"));
        let c = RpcClient::new("http://example.invalid/rpc");
        assert_eq!((c.addr.as_str(), c.path.as_str()), ("example.invalid:8545", "/rpc"));
        let c = RpcClient::new("[::1]:8546");
        assert_eq!(c.addr, "[::1]:8546");
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
