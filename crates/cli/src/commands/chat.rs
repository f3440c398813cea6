//! `chat MODEL`: talk to a registered model on this machine. The model record
//! comes from the chain; its adapter from the node's blob store (checked
//! against the record's adapter hash); the base model from a local folder or
//! GGUF file whose hash must equal the record's base model hash.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail};
use ml::{ChatMessage, LoraAdapter, Model, ModelFiles, SamplingParams};
use primitives::B256;
use serde_json::{Value, json};

use super::RpcArgs;
use super::httpc::HttpArgs;
use super::model::{model_info, parse_model};
use crate::output::Out;

#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    /// The model: `m<id>`.
    pub model: String,
    /// The base model's folder or GGUF file, or hf:ORG/NAME from the Hugging Face
    /// cache (default: the committed models/base).
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Ask one question and exit (default: an interactive session on stdin).
    #[arg(long)]
    pub prompt: Option<String>,
    /// A system message to start the conversation with.
    #[arg(long)]
    pub system: Option<String>,
    #[arg(long, default_value_t = 128)]
    pub max_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub rpc: RpcArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

fn fetch_blob(http: &HttpArgs, hash: &str) -> anyhow::Result<Vec<u8>> {
    let (status, body) = http.request("GET", &format!("/v1/blobs/{hash}"), &[], b"")?;
    if status != 200 {
        bail!("blob {hash}: HTTP {status}: {}", super::httpc::error_message(&body));
    }
    if format!("{}", primitives::content_hash(&body)) != hash {
        bail!("blob {hash}: the node sent bytes with another hash");
    }
    Ok(body)
}

/// Load the base model and, for a fine-tuned model, its adapter.
pub fn load(
    model: &str,
    base: Option<PathBuf>,
    rpc: &RpcArgs,
    http: &HttpArgs,
) -> anyhow::Result<(Model, ModelFiles, Option<LoraAdapter>, u64)> {
    let id = parse_model(model)?;
    let info = model_info(rpc, id)?;
    if info.state == 3 {
        bail!("m{id} is retired");
    }
    let base_path = super::base_model(base)?
        .ok_or_else(|| anyhow!("no base model on this machine: give --base DIR (a folder or .gguf file)"))?;
    let files = ModelFiles::open(&base_path)?;
    if files.hash != info.baseModelHash {
        bail!(
            "m{id} is an adapter for base model {}, but {} has hash {}: give --base with the right model",
            info.baseModelHash,
            base_path.display(),
            files.hash
        );
    }
    let model_ = Model::from_files(&files)?; // weights as stored, as the node serves them
    let adapter = if info.adapterHash == B256::ZERO {
        None
    } else {
        let m: Value = serde_json::from_slice(&info.metrics)
            .map_err(|_| anyhow!("m{id}: the record's metrics do not name its artefacts"))?;
        let a = &m["artefacts"];
        let (cfg, weights) = match (a["adapterConfig"].as_str(), a["adapterModel"].as_str()) {
            (Some(c), Some(w)) => (c.to_string(), w.to_string()),
            _ => bail!("m{id}: the record does not name its adapter blobs"),
        };
        let cfg = String::from_utf8(fetch_blob(http, &cfg)?)?;
        let weights = fetch_blob(http, &weights)?;
        let ad = LoraAdapter::from_parts(ml::LoraConfig::from_peft_json(&cfg)?, &weights, &model_.config)?;
        if ad.hash != info.adapterHash {
            bail!("m{id}: the adapter's hash {} is not the registered {}", ad.hash, info.adapterHash);
        }
        Some(ad)
    };
    Ok((model_, files, adapter, id))
}

pub fn run(a: ChatArgs, out: Out) -> anyhow::Result<()> {
    let (model, files, adapter, id) = load(&a.model, a.base.clone(), &a.rpc, &a.http)?;
    let tok = &files.tokenizer;
    let params = SamplingParams {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        seed: a.seed,
        max_tokens: a.max_tokens,
        stop: vec![],
        ignore_eos: false,
    };
    let mut history: Vec<ChatMessage> = Vec::new();
    if let Some(s) = &a.system {
        history.push(ChatMessage { role: "system".into(), content: s.clone() });
    }
    let answer = |history: &mut Vec<ChatMessage>, question: String, stream: bool| -> anyhow::Result<Value> {
        history.push(ChatMessage { role: "user".into(), content: question });
        let prompt = if tok.chat_template.is_some() {
            tok.apply_chat_template(history, true)?
        } else {
            history.iter().map(|m| format!("{}: {}\n", m.role, m.content)).collect::<String>() + "assistant: "
        };
        let ids = tok.encode(&prompt, false)?;
        let g = ml::generate(&model, tok, adapter.as_ref(), &ids, &params, |piece| {
            if stream {
                print!("{piece}");
                let _ = std::io::stdout().flush();
            }
            true
        })?;
        if stream {
            println!();
        }
        history.push(ChatMessage { role: "assistant".into(), content: g.text.clone() });
        Ok(json!({
            "model": format!("m{id}"),
            "text": g.text,
            "finishReason": g.finish,
            "usage": {"promptTokens": g.prompt_tokens, "completionTokens": g.tokens.len()},
        }))
    };
    match a.prompt {
        Some(p) => {
            let v = answer(&mut history, p, !out.json)?;
            if out.json {
                out.print(String::new, v);
            }
        }
        None => {
            eprintln!("chatting with m{id} (empty line or Ctrl-D to end)");
            let stdin = std::io::stdin();
            loop {
                eprint!("> ");
                let mut line = String::new();
                if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
                    break;
                }
                answer(&mut history, line.trim().to_string(), true)?;
            }
        }
    }
    Ok(())
}
