//! `infer MODEL PROMPT`: a paid inference through the node's OpenAI-compatible API, streamed.

use std::io::Write;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::httpc::HttpArgs;
use crate::output::Out;

#[derive(clap::Args, Debug)]
pub struct InferArgs {
    /// The model: `m<id>` (m1 is the base model).
    pub model: String,
    pub prompt: String,
    /// The API key (default: $OPENLEDGER_API_KEY, else the dev key of the
    /// node's data dir: `--data-dir`, or the default `up` data dir).
    #[arg(long, env = "OPENLEDGER_API_KEY")]
    pub api_key: Option<String>,
    /// The data dir of the dev node to take the dev API key from (a node
    /// started with `up --data-dir DIR` writes it to `DIR/dev-api-key`).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u64,
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// A plain completion instead of a chat.
    #[arg(long)]
    pub completion: bool,
    /// Print the answer as it is generated.
    #[arg(long)]
    pub stream: bool,
    /// Publish this answer's attribution record (sends `OpenLedger-Attribution-Public: true`):
    /// anyone may then read and verify it; by default only you and the serving operator can.
    #[arg(long)]
    pub public_attribution: bool,
    /// Answer from rows retrieved from these Datanets (ids, or `ID:VERSION`;
    /// the latest version by default), comma-separated: the node puts the best
    /// rows in the prompt, and the contributors of the rows the answer quotes
    /// are paid a share of the answer's data part.
    #[arg(long, value_delimiter = ',')]
    pub retrieve: Vec<String>,
    /// How many rows to retrieve (1 to 64).
    #[arg(long, default_value_t = 4, requires = "retrieve")]
    pub k: u64,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// `openledger retrieve`: the rows of Datanet versions that best match a query.
#[derive(clap::Args)]
pub struct RetrieveArgs {
    /// The query (free text: words, not operators).
    pub query: String,
    /// The Datanets to search (ids, or `ID:VERSION`; the latest version by default), comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub datanets: Vec<String>,
    /// How many rows (1 to 64).
    #[arg(long, default_value_t = 4)]
    pub k: u64,
    /// The API key (default: $OPENLEDGER_API_KEY, else the dev key of the node's data dir).
    #[arg(long, env = "OPENLEDGER_API_KEY")]
    pub api_key: Option<String>,
    /// The data dir of the dev node to take the dev API key from.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// `POST /v1/retrieve`: the rows, best first, with their scores and text.
pub fn retrieve(a: RetrieveArgs, out: Out) -> anyhow::Result<()> {
    let key = api_key(a.api_key.as_deref(), a.data_dir.as_deref())?;
    let datanets = a.datanets.iter().map(|s| datanet_selection(s)).collect::<anyhow::Result<Vec<_>>>()?;
    let body = json!({"query": a.query, "datanets": datanets, "k": a.k});
    let v = answer(&a.http, "/v1/retrieve", &key, &body, false)?;
    out.print(
        || {
            let rows = v["rows"].as_array().map(Vec::as_slice).unwrap_or_default();
            if rows.is_empty() {
                return "no row matches".to_string();
            }
            rows.iter()
                .map(|r| {
                    format!(
                        "[{:.2}] Datanet {} v{}, contribution {} row {}\n  {}",
                        r["score"].as_f64().unwrap_or(0.0),
                        r["datanet"],
                        r["version"],
                        r["contribution"],
                        r["row"],
                        r["text"].as_str().unwrap_or("").replace('\n', "\n  ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
        v.clone(),
    );
    Ok(())
}

/// `ID` or `ID:VERSION` → the API's Datanet selection.
pub fn datanet_selection(s: &str) -> anyhow::Result<Value> {
    let bad = || anyhow::anyhow!("{s:?} is not a Datanet id or ID:VERSION");
    match s.split_once(':') {
        None => Ok(json!(s.trim().parse::<u64>().map_err(|_| bad())?)),
        Some((d, v)) => Ok(json!({"datanet": d.trim().parse::<u64>().map_err(|_| bad())?,
                                  "version": v.trim().parse::<u64>().map_err(|_| bad())?})),
    }
}

/// The key to pay with: `--api-key`/`$OPENLEDGER_API_KEY`, else the dev key
/// of `--data-dir`, else that of the default `up` data dir.
pub fn api_key(api_key: Option<&str>, data_dir: Option<&std::path::Path>) -> anyhow::Result<String> {
    if let Some(k) = api_key {
        return Ok(k.to_string());
    }
    let dir = data_dir.map(std::path::Path::to_path_buf).unwrap_or_else(|| super::home().join("dev"));
    let file = dir.join("dev-api-key");
    match std::fs::read_to_string(&file) {
        Ok(k) => Ok(k.trim().to_string()),
        Err(e) => bail!(
            "no API key: give --api-key or $OPENLEDGER_API_KEY (openledger apikey new), or start a dev node \
             (`openledger up`, which writes its key to {}: {e})",
            file.display()
        ),
    }
}

fn headers(key: &str, public_attribution: bool) -> Vec<(&'static str, String)> {
    let mut headers =
        vec![("Content-Type", "application/json".to_string()), ("Authorization", format!("Bearer {key}"))];
    if public_attribution {
        headers.push(("OpenLedger-Attribution-Public", "true".to_string()));
    }
    headers
}

/// A paid, non-streamed answer: POST `body` to `path` (`/v1/chat/completions` or
/// `/v1/completions`) billed to `key`; the node's answer, with its receipt.
pub fn answer(http: &HttpArgs, path: &str, key: &str, body: &Value, public_attribution: bool) -> anyhow::Result<Value> {
    let bytes = serde_json::to_vec(body)?;
    let (status, resp) = http.request("POST", path, &headers(key, public_attribution), &bytes)?;
    if status != 200 {
        bail!("{status}: {}", super::httpc::error_message(&resp));
    }
    Ok(serde_json::from_slice(&resp)?)
}

/// How long a client waits for an attribution record computed beside the batch.
pub const ATTRIBUTION_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The node answers before its attribution record is ready (it is computed
/// beside the batch): when `answer` (a whole answer, or a stream's final chunk)
/// carries the pending pointer, poll the record as the payer (`key`) until it
/// is ready, printing its progress on stderr, and put its summary where the
/// pointer was. Bounded by [`ATTRIBUTION_WAIT`]; a record that never comes
/// (failed, dropped, too slow) leaves the answer as it is (paid, its receipt
/// valid) with the reason in `attribution.error`.
pub fn await_attribution(http: &HttpArgs, key: &str, answer: &mut Value) -> anyhow::Result<()> {
    let pointer = &answer["attribution"];
    let Some(path) = pointer["record"].as_str().filter(|_| pointer["status"] == "pending").map(str::to_string) else {
        return Ok(());
    };
    let receipt = pointer["receipt"].as_str().unwrap_or("?").to_string();
    let deadline = std::time::Instant::now() + ATTRIBUTION_WAIT;
    let mut shown = String::new();
    let headers = [("Authorization", format!("Bearer {key}"))];
    let why = loop {
        let (status, body) = http.request("GET", &path, &headers, b"")?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match status {
            200 => {
                // A node that keeps no summary beside the record: its hash at least.
                answer["attribution"] = if v["summary"].is_object() {
                    v["summary"].clone()
                } else {
                    json!({"recordHash": v["recordHash"]})
                };
                if !shown.is_empty() {
                    eprintln!("attribution of receipt {receipt}: ready");
                }
                return Ok(());
            }
            202 => {
                let line = match v["position"].as_u64() {
                    Some(n) => format!("queued (position {n})"),
                    None => "computing".to_string(),
                };
                if line != shown {
                    eprintln!("attribution of receipt {receipt}: {line}…");
                    shown = line;
                }
            }
            _ => break format!("{status}: {}", super::httpc::error_message(&body)),
        }
        if std::time::Instant::now() >= deadline {
            break format!(
                "not ready after {} s; read it later with `openledger attribution show {receipt}`",
                ATTRIBUTION_WAIT.as_secs()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    eprintln!("no attribution record for receipt {receipt}: {why}");
    answer["attribution"]["error"] = json!(why);
    Ok(())
}

pub fn infer(a: InferArgs, out: Out) -> anyhow::Result<()> {
    let key = api_key(a.api_key.as_deref(), a.data_dir.as_deref())?;
    let (path, mut body) = if a.completion {
        ("/v1/completions", json!({"model": a.model, "prompt": a.prompt}))
    } else {
        ("/v1/chat/completions", json!({"model": a.model, "messages": [{"role": "user", "content": a.prompt}]}))
    };
    body["max_tokens"] = json!(a.max_tokens);
    body["temperature"] = json!(a.temperature);
    if !a.retrieve.is_empty() {
        if a.completion {
            bail!("--retrieve works with chats, not --completion");
        }
        let datanets = a.retrieve.iter().map(|s| datanet_selection(s)).collect::<anyhow::Result<Vec<_>>>()?;
        body["retrieval"] = json!({"datanets": datanets, "k": a.k});
    }
    body["stream"] = json!(a.stream);
    if a.stream {
        // The usage arrives in a last chunk of its own, as OpenAI sends it.
        body["stream_options"] = json!({"include_usage": true});
    }
    let bytes = serde_json::to_vec(&body)?;
    let headers = headers(&key, a.public_attribution);
    if !a.stream {
        let mut v = answer(&a.http, path, &key, &body, a.public_attribution)?;
        await_attribution(&a.http, &key, &mut v)?;
        let text =
            if a.completion { v["choices"][0]["text"].clone() } else { v["choices"][0]["message"]["content"].clone() };
        out.print(
            || {
                let sources = v["retrieval"]["rows"]
                    .as_array()
                    .map(|rows| {
                        let at = |r: &Value| format!("d{}/c{}/r{}", r["datanet"], r["contribution"], r["row"]);
                        format!("\nretrieved: {}", rows.iter().map(at).collect::<Vec<_>>().join(", "))
                    })
                    .unwrap_or_default();
                format!(
                    "{}{sources}\n\n[{} tokens in, {} out; cost {} base units; receipt {}]{}",
                    text.as_str().unwrap_or(""),
                    v["usage"]["prompt_tokens"],
                    v["usage"]["completion_tokens"],
                    v["receipt"]["cost"].as_str().unwrap_or("?"),
                    v["receipt"]["hash"].as_str().unwrap_or("none"),
                    attribution_line(&v["attribution"])
                )
            },
            v.clone(),
        );
        return Ok(());
    }
    // Streaming: read server-sent events as they arrive.
    let stream = a.http.stream("POST", path, &headers, &bytes)?;
    if stream.status != 200 {
        let status = stream.status;
        let body = stream.read_body(1024 * 1024).context("reading the node's error answer")?;
        bail!("{status}: {}", super::httpc::error_message(&body));
    }
    let mut last = Value::Null;
    for event in stream.events() {
        let event = event.context("reading the answer stream")?;
        if event.data == "[DONE]" {
            break;
        }
        let v: Value = serde_json::from_str(&event.data).context("an event of the answer stream is not JSON")?;
        if !v["error"].is_null() {
            bail!("{}", v["error"]["message"]);
        }
        let piece =
            if a.completion { v["choices"][0]["text"].as_str() } else { v["choices"][0]["delta"]["content"].as_str() };
        if let Some(p) = piece
            && !out.json
        {
            print!("{p}");
            let _ = std::io::stdout().flush();
        }
        last = v;
    }
    await_attribution(&a.http, &key, &mut last)?;
    if out.json {
        out.print(String::new, last);
    } else {
        println!(
            "\n\n[{} tokens out; receipt {}]{}",
            last["usage"]["completion_tokens"],
            last["receipt"]["hash"].as_str().unwrap_or("none"),
            attribution_line(&last["attribution"])
        );
    }
    Ok(())
}

/// The attribution summary as one line after the answer ("" when there is none).
fn attribution_line(a: &Value) -> String {
    let Some(record) = a["recordHash"].as_str() else { return String::new() };
    let credits = a["credits"].as_array().map(Vec::as_slice).unwrap_or_default();
    let shown: Vec<String> = credits
        .iter()
        .map(|c| format!("contribution {} {:.2}%", c["contribution"], c["ppm"].as_f64().unwrap_or(0.0) / 1e4))
        .collect();
    format!(
        "\n[attribution record {record}: {}]",
        if shown.is_empty() { "no contribution credited (the fallback pays)".to_string() } else { shown.join(", ") }
    )
}
