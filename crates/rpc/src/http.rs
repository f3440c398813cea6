//! The workspace's one blocking HTTP/1.1 client, on `ureq`: the JSON-RPC client
//! ([`crate::client`]), the CLI's calls to the node's HTTP API and its
//! server-sent-event streams, and the end-to-end tests all go through it.
//!
//! Plain `http://` only (the node listens on loopback; no TLS is linked). Every
//! answer body is read with a size bound, every connection and read has a
//! timeout, and redirects are not followed (the node sends none; seeing one is
//! more useful than chasing it). Chunked transfer encoding, keep-alive and
//! `Expect: 100-continue` are ureq's.
//!
//! ```no_run
//! let node = rpc::http::HttpClient::new("127.0.0.1:8080");
//! let answer = node.request("GET", "/v1/health", &[], b"")?;
//! assert_eq!(answer.status, 200);
//! # Ok::<(), rpc::http::HttpError>(())
//! ```

use std::io::{self, BufRead, BufReader, Read};
use std::time::Duration;

use ureq::Agent;
use ureq::http;

/// Largest answer body [`HttpClient::request`] accepts by default (a full
/// `eth_getLogs` answer or a large blob fits well within).
pub const MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;

/// Bodies from this size on are sent with `Expect: 100-continue`, so a server
/// that refuses them (413, 401, ...) answers before the upload rather than
/// closing the connection under it.
const EXPECT_CONTINUE_FROM: usize = 1024 * 1024;

/// Longest line of a server-sent-event stream, and largest event.
const MAX_SSE_LINE: usize = 1024 * 1024;
const MAX_SSE_EVENT: usize = 16 * 1024 * 1024;

/// Why an HTTP exchange failed (an answer with any status is not a failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No connection could be made.
    #[error("cannot reach {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    /// The connection broke, timed out, or the answer was not valid HTTP.
    #[error("HTTP exchange with {addr} failed: {reason}")]
    Transport { addr: String, reason: String },
    /// The request itself is unusable (a bad method, path or header).
    #[error("bad HTTP request to {addr}: {reason}")]
    Request { addr: String, reason: String },
}

/// An answer: status, headers (names in lowercase) and the whole body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An answer whose body is read as it arrives (an event stream, a long download).
pub struct HttpStream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    body: Box<dyn Read + Send>,
}

impl HttpStream {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body, transfer encoding undone, as a reader.
    pub fn into_reader(self) -> Box<dyn Read + Send> {
        self.body
    }

    /// The whole remaining body, at most `max` bytes.
    pub fn read_body(self, max: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.body.take(max + 1).read_to_end(&mut out)?;
        if out.len() as u64 > max {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("answer larger than {max} bytes")));
        }
        Ok(out)
    }

    /// The body as server-sent events.
    pub fn events(self) -> SseEvents<BufReader<Box<dyn Read + Send>>> {
        SseEvents::new(BufReader::with_capacity(64 * 1024, self.body))
    }
}

/// A blocking HTTP client for one server (`http://host:port`), keeping its
/// connections alive between requests. Cloning shares the connection pool.
#[derive(Clone, Debug)]
pub struct HttpClient {
    /// host:port, for messages.
    addr: String,
    /// `http://host:port`, without a trailing slash.
    base: String,
    agent: Agent,
    timeout: Duration,
    max_body: u64,
}

impl HttpClient {
    /// `addr` is "host:port" or "http://host:port[/...]" (any path is ignored;
    /// see [`split_url`]); without a port, 80. Nothing is connected until the
    /// first request. Timeouts: 60 s to connect and for each read or write.
    pub fn new(addr: &str) -> Self {
        let (hostport, _) = split_url(addr, 80);
        Self::build(hostport, Duration::from_secs(60))
    }

    fn build(addr: String, timeout: Duration) -> Self {
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_connect(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            .user_agent(concat!("openledger/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        HttpClient { base: format!("http://{addr}"), addr, agent, timeout, max_body: MAX_RESPONSE_BYTES }
    }

    /// How long to wait for connecting and for each read or write.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        let max_body = self.max_body;
        HttpClient { max_body, ..Self::build(self.addr, timeout) }
    }

    /// The largest body [`request`](Self::request) reads (default [`MAX_RESPONSE_BYTES`]).
    pub fn with_max_body(mut self, max: u64) -> Self {
        self.max_body = max;
        self
    }

    /// "host:port" of the server.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The timeout for connecting and each read or write.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Send a request and read the whole answer (at most the client's body bound).
    /// `path` is the request target ("/v1/x?y=z"); `headers` are added as given.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<HttpResponse, HttpError> {
        let s = self.stream(method, path, headers, body)?;
        let (status, headers) = (s.status, s.headers.clone());
        let body = s.read_body(self.max_body).map_err(|e| self.transport(&e))?;
        Ok(HttpResponse { status, headers, body })
    }

    /// Send a request and return as soon as the answer's head has arrived; the
    /// body is read as it comes (see [`HttpStream::events`]).
    pub fn stream(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<HttpStream, HttpError> {
        let bad = |reason: String| HttpError::Request { addr: self.addr.clone(), reason };
        let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
        let mut req = http::Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        if body.len() >= EXPECT_CONTINUE_FROM && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("expect")) {
            req = req.header("Expect", "100-continue");
        }
        let req = req.body(body).map_err(|e| bad(e.to_string()))?;
        let resp = self.agent.run(req).map_err(|e| match e {
            // ureq cannot read an answer sent while the body was still going out
            // (a server refusing a large upload mid-way): say what probably happened.
            ureq::Error::Io(io)
                if body.len() >= EXPECT_CONTINUE_FROM
                    && matches!(io.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset) =>
            {
                HttpError::Transport {
                    addr: self.addr.clone(),
                    reason: format!(
                        "the server closed the connection during the {}-byte upload (it may refuse bodies this large)",
                        body.len()
                    ),
                }
            }
            e => self.error(e),
        })?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = resp.into_body().into_with_config().limit(u64::MAX).reader();
        Ok(HttpStream { status, headers, body: Box::new(body) })
    }

    fn transport(&self, e: &io::Error) -> HttpError {
        // ureq wraps its own errors (limits, protocol) in io::Error::other.
        let reason = match e.get_ref().and_then(|inner| inner.downcast_ref::<ureq::Error>()) {
            Some(u) => reason(u),
            None => io_reason(e),
        };
        HttpError::Transport { addr: self.addr.clone(), reason }
    }

    fn error(&self, e: ureq::Error) -> HttpError {
        let addr = self.addr.clone();
        match &e {
            ureq::Error::HostNotFound => HttpError::Unreachable { addr, reason: "cannot resolve the host name".into() },
            ureq::Error::ConnectionFailed => HttpError::Unreachable { addr, reason: "connection failed".into() },
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
                HttpError::Unreachable { addr, reason: "timed out connecting".into() }
            }
            ureq::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
                HttpError::Unreachable { addr, reason: "connection refused".into() }
            }
            ureq::Error::Http(_) | ureq::Error::BadUri(_) => HttpError::Request { addr, reason: e.to_string() },
            _ => HttpError::Transport { addr, reason: reason(&e) },
        }
    }
}

fn reason(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => io_reason(io),
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::BodyExceedsLimit(n) => format!("answer larger than {n} bytes"),
        other => other.to_string(),
    }
}

fn io_reason(e: &io::Error) -> String {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        ConnectionAborted => "connection aborted".into(),
        BrokenPipe => "broken pipe".into(),
        TimedOut | WouldBlock => "timed out".into(),
        UnexpectedEof => "connection closed by the server".into(),
        _ => e.to_string(),
    }
}

/// Split "host:port", "http://host:port/path" or "host" into ("host:port", "/path"),
/// adding `default_port` when there is none. IPv6 hosts keep their brackets.
pub fn split_url(addr: &str, default_port: u16) -> (String, String) {
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
    let hostport = if has_port { hostport.to_string() } else { format!("{hostport}:{default_port}") };
    (hostport, path.to_string())
}

/// One server-sent event: its `event` name (`None` for the default, "message")
/// and its `data` lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// The events of a `text/event-stream` body, as the HTML standard parses them:
/// lines end in LF, CRLF or CR; `field: value` lines (one space after the colon
/// dropped) build an event that a blank line dispatches; `:` lines are comments;
/// `id` and `retry` are ignored; an event cut off by the end of the stream is
/// dropped. Lines and events are bounded in size.
pub struct SseEvents<R> {
    r: R,
    line: Vec<u8>,
    /// A CR ended the last line: a LF right after it belongs to it.
    after_cr: bool,
    done: bool,
}

impl<R: BufRead> SseEvents<R> {
    pub fn new(r: R) -> Self {
        SseEvents { r, line: Vec::new(), after_cr: false, done: false }
    }

    /// The next line without its terminator; `None` at the end of the stream.
    fn next_line(&mut self) -> io::Result<Option<String>> {
        self.line.clear();
        loop {
            let buf = self.r.fill_buf()?;
            if buf.is_empty() {
                return Ok(if self.line.is_empty() {
                    None
                } else {
                    Some(String::from_utf8_lossy(&self.line).into_owned())
                });
            }
            if self.after_cr && buf[0] == b'\n' {
                self.r.consume(1);
                self.after_cr = false;
                continue;
            }
            self.after_cr = false;
            match buf.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    self.line.extend_from_slice(&buf[..i]);
                    self.after_cr = buf[i] == b'\r';
                    self.r.consume(i + 1);
                    return Ok(Some(String::from_utf8_lossy(&self.line).into_owned()));
                }
                None => {
                    let n = buf.len();
                    self.line.extend_from_slice(buf);
                    self.r.consume(n);
                }
            }
            if self.line.len() > MAX_SSE_LINE {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "event-stream line too long"));
            }
        }
    }

    fn next_event(&mut self) -> io::Result<Option<SseEvent>> {
        let (mut event, mut data, mut has_data) = (None, String::new(), false);
        while let Some(line) = self.next_line()? {
            if line.is_empty() {
                if has_data {
                    return Ok(Some(SseEvent { event, data }));
                }
                event = None;
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "" => {} // a comment
                "data" => {
                    if has_data {
                        data.push('\n');
                    }
                    data.push_str(value);
                    has_data = true;
                    if data.len() > MAX_SSE_EVENT {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "event-stream event too large"));
                    }
                }
                "event" => event = Some(value.to_string()),
                _ => {}
            }
        }
        Ok(None)
    }
}

impl<R: BufRead> Iterator for SseEvents<R> {
    type Item = io::Result<SseEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_event().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &[u8]) -> Vec<SseEvent> {
        SseEvents::new(text).collect::<io::Result<Vec<_>>>().unwrap()
    }

    fn data(d: &str) -> SseEvent {
        SseEvent { event: None, data: d.into() }
    }

    #[test]
    fn sse_fields_comments_and_line_ends() {
        let got = events(b": hello\n\ndata: {\"a\":1}\n\nevent: usage\r\ndata:x\r\ndata:  y\r\n\r\ndata\rid: 3\rretry: 5\r\rdata: cut");
        assert_eq!(
            got,
            vec![
                data("{\"a\":1}"),
                SseEvent { event: Some("usage".into()), data: "x\n y".into() },
                data(""),
                // "data: cut" has no blank line after it: dropped.
            ]
        );
    }

    #[test]
    fn sse_reads_through_tiny_reads() {
        // A reader that hands out one byte at a time, as a slow network may.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let text = b"data: one\r\n\r\ndata: two\r\n\r\n";
        let got: Vec<_> =
            SseEvents::new(BufReader::with_capacity(1, Trickle(text))).collect::<io::Result<_>>().unwrap();
        assert_eq!(got, vec![data("one"), data("two")]);
    }

    #[test]
    fn sse_bounds_lines() {
        let long = vec![b'a'; MAX_SSE_LINE + 10];
        let mut it = SseEvents::new(&long[..]);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn urls() {
        assert_eq!(split_url("127.0.0.1:8545", 8545), ("127.0.0.1:8545".into(), "/".into()));
        assert_eq!(split_url("http://localhost:9000/", 8545), ("localhost:9000".into(), "/".into()));
        assert_eq!(split_url("http://example.invalid/rpc", 8545), ("example.invalid:8545".into(), "/rpc".into()));
        assert_eq!(split_url("[::1]:8546", 8545).0, "[::1]:8546");
    }
}
