//! A small blocking HTTP/1.1 client for the node's HTTP API (uploads, rows,
//! blobs): one request per connection, Content-Length or chunked answers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

/// The node's HTTP API endpoint.
#[derive(clap::Args, Clone, Debug)]
pub struct HttpArgs {
    /// HTTP API of the node (uploads, rows, blobs).
    #[arg(long = "http", env = "OPENLEDGER_HTTP", default_value = "127.0.0.1:8080")]
    pub http: String,
}

impl HttpArgs {
    fn addr(&self) -> String {
        let a = self.http.trim_start_matches("http://").trim_end_matches('/');
        a.split('/').next().unwrap_or(a).to_string()
    }

    /// Send a request; returns (status, body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let addr = self.addr();
        let mut s = TcpStream::connect(&addr)
            .with_context(|| format!("cannot reach the node's HTTP API at {addr} — is `openledger up` running?"))?;
        s.set_read_timeout(Some(Duration::from_secs(300)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        // A server may answer (413, 401, ...) and close before reading a large body:
        // keep its answer rather than the broken pipe.
        let wrote = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
        let mut raw = Vec::new();
        let read = s.read_to_end(&mut raw);
        if raw.is_empty() {
            wrote?;
            read?;
        }
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| anyhow!("malformed HTTP answer"))?;
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut body = raw[split + 4..].to_vec();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("malformed status line"))?;
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            body = dechunk(&body)?;
        }
        Ok((status, body))
    }
}

impl HttpArgs {
    /// Who requests to this node must be signed for: its chain id and HTTP identity
    /// (`GET /v1/node/auth`).
    pub fn audience(&self) -> anyhow::Result<keys::request::Audience> {
        let (status, body) = self.request("GET", "/v1/node/auth", &[], b"")?;
        if status != 200 {
            bail!("GET /v1/node/auth: {status}: {} (is the node older than this CLI?)", error_message(&body));
        }
        let v: serde_json::Value = serde_json::from_slice(&body).context("the node's /v1/node/auth answer")?;
        if v["version"] != keys::request::AUTH_VERSION {
            bail!("the node speaks signed-request format {}, this CLI {}", v["version"], keys::request::AUTH_VERSION);
        }
        let chain_id = v["chainId"].as_u64().ok_or_else(|| anyhow!("/v1/node/auth: no chainId"))?;
        let node = v["node"].as_str().ok_or_else(|| anyhow!("/v1/node/auth: no node"))?.parse()?;
        Ok(keys::request::Audience { chain_id, node })
    }

    /// The `X-OpenLedger-Auth` header of a request signed by `key` for this node
    /// (its chain and identity, a fresh nonce, the body's hash).
    pub fn auth_header(
        &self,
        key: &keys::SecretKey,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> anyhow::Result<(&'static str, String)> {
        let audience = self.audience()?;
        Ok((
            keys::request::AUTH_HEADER,
            keys::request::sign_request(key, &audience, method, path, body, keys::request::unix_now()),
        ))
    }
}

fn dechunk(mut b: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").ok_or_else(|| anyhow!("bad chunk"))?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..line_end])?.split(';').next().unwrap_or("").trim(), 16)?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// The message of an OpenAI-style error body, or the body itself.
pub fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// A multipart/form-data body with one file field named `file`.
pub fn multipart_file(file_name: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("openledger-{:x}", rand_boundary(content));
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            file_name.replace('"', "")
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn rand_boundary(content: &[u8]) -> u64 {
    // Any value absent from the content works; a hash of it plus the time is.
    let h = primitives::content_hash(content);
    u64::from_be_bytes(h[..8].try_into().unwrap())
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}
