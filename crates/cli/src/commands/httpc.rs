//! The node's HTTP API endpoint (uploads, rows, blobs, inference) for the CLI's
//! commands, over the workspace's HTTP client (`rpc::http`).

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rpc::http::{HttpClient, HttpError, HttpStream};

/// How long a request may wait for the node at each step (a training job's
/// answer or an upload's ingest can take minutes).
const TIMEOUT: Duration = Duration::from_secs(300);

/// The node's HTTP API endpoint.
#[derive(clap::Args, Clone, Debug)]
pub struct HttpArgs {
    /// HTTP API of the node (uploads, rows, blobs).
    #[arg(long = "http", env = "OPENLEDGER_HTTP", default_value = "127.0.0.1:8080")]
    pub http: String,
}

impl HttpArgs {
    fn client(&self) -> HttpClient {
        HttpClient::new(&self.http).with_timeout(TIMEOUT)
    }

    fn error(e: HttpError) -> anyhow::Error {
        match e {
            HttpError::Unreachable { addr, reason } => {
                anyhow!("cannot reach the node's HTTP API at {addr}: {reason} — is `openledger up` running?")
            }
            other => other.into(),
        }
    }

    /// Send a request; returns (status, body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let r = self.client().request(method, path, headers, body).map_err(Self::error)?;
        Ok((r.status, r.body))
    }

    /// Send a request and return once the answer's head arrived, its body to be
    /// read as it comes (server-sent events).
    pub fn stream(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> anyhow::Result<HttpStream> {
        self.client().stream(method, path, headers, body).map_err(Self::error)
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
