//! Tokenizers (the `tokenizers` crate, pure Rust, no downloads) and chat
//! templates rendered with `minijinja` the way Hugging Face renders them.

use std::path::Path;

use candle_core::quantized::gguf_file;
use primitives::B256;
use serde::{Deserialize, Serialize};

use crate::MlError;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// A model's tokenizer with what generation needs around it.
#[derive(Clone)]
pub struct TextTokenizer {
    pub inner: tokenizers::Tokenizer,
    /// The `tokenizer.json` text: what a GGUF embeds and what the hash covers.
    pub json: String,
    /// blake3 of `json`'s bytes.
    pub hash: B256,
    /// The Jinja chat template, if the model has one.
    pub chat_template: Option<String>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub pad_token: Option<String>,
    /// `tokenizer_config.json` as found (kept so a folder can be written back unchanged).
    pub config_json: Option<String>,
}

fn token_string(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(str::to_string),
        _ => None,
    }
}

fn template_from(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
        serde_json::Value::Array(a) => a
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .or_else(|| a.first())
            .and_then(|t| t.get("template"))
            .and_then(|t| t.as_str())
            .map(str::to_string),
        _ => None,
    }
}

impl TextTokenizer {
    /// Build from `tokenizer.json` text and an optional `tokenizer_config.json` text.
    pub fn from_json(json: String, config_json: Option<String>) -> Result<TextTokenizer, MlError> {
        let inner = tokenizers::Tokenizer::from_bytes(json.as_bytes())
            .map_err(|e| MlError::Tokenizer(format!("tokenizer.json does not load: {e}")))?;
        let hash = B256::from(*blake3::hash(json.as_bytes()).as_bytes());
        let mut t = TextTokenizer {
            inner,
            json,
            hash,
            chat_template: None,
            bos_token: None,
            eos_token: None,
            pad_token: None,
            config_json: None,
        };
        if let Some(cj) = config_json {
            let v: serde_json::Value = serde_json::from_str(&cj)
                .map_err(|e| MlError::Tokenizer(format!("tokenizer_config.json does not parse: {e}")))?;
            t.chat_template = template_from(v.get("chat_template"));
            t.bos_token = token_string(v.get("bos_token"));
            t.eos_token = token_string(v.get("eos_token"));
            t.pad_token = token_string(v.get("pad_token"));
            t.config_json = Some(cj);
        }
        Ok(t)
    }

    /// `tokenizer.json` and, if present, `tokenizer_config.json` (and its chat template).
    pub fn from_hf_dir(dir: &Path) -> Result<TextTokenizer, MlError> {
        let p = dir.join("tokenizer.json");
        let json = std::fs::read_to_string(&p)
            .map_err(|e| MlError::NotFound(format!("{}: {e} (a model folder needs tokenizer.json)", p.display())))?;
        let cp = dir.join("tokenizer_config.json");
        let config = std::fs::read_to_string(&cp).ok();
        let mut t = Self::from_json(json, config)?;
        if t.chat_template.is_none() {
            // Newer folders keep the template in its own file.
            if let Ok(tpl) = std::fs::read_to_string(dir.join("chat_template.jinja")) {
                t.chat_template = Some(tpl);
            }
        }
        Ok(t)
    }

    /// From a GGUF file: the embedded `tokenizer.huggingface.json` when there is
    /// one, else a byte-level BPE built from `tokenizer.ggml.tokens` and `merges`.
    pub fn from_gguf(content: &gguf_file::Content) -> Result<TextTokenizer, MlError> {
        let md = &content.metadata;
        let s = |k: &str| match md.get(k) {
            Some(gguf_file::Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let mut t = if let Some(json) = s("tokenizer.huggingface.json") {
            Self::from_json(json, None)?
        } else {
            let model = s("tokenizer.ggml.model").unwrap_or_default();
            if model != "gpt2" {
                return Err(MlError::Unsupported(format!(
                    "GGUF tokenizer model {model:?}: only byte-level BPE (\"gpt2\") or an embedded \
                     tokenizer.huggingface.json is supported"
                )));
            }
            Self::from_json(bpe_json_from_gguf(md)?, None)?
        };
        t.chat_template = s("tokenizer.chat_template").or(t.chat_template);
        let tok = |k: &str| md.get(k).and_then(|v| v.to_u32().ok()).and_then(|id| t.inner.id_to_token(id));
        t.bos_token = t.bos_token.clone().or_else(|| tok("tokenizer.ggml.bos_token_id"));
        t.eos_token = t.eos_token.clone().or_else(|| tok("tokenizer.ggml.eos_token_id"));
        Ok(t)
    }

    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, MlError> {
        Ok(self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| MlError::Tokenizer(format!("encoding: {e}")))?
            .get_ids()
            .to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String, MlError> {
        self.inner.decode(ids, true).map_err(|e| MlError::Tokenizer(format!("decoding: {e}")))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The ids that end generation: the configuration's and the tokenizer's end-of-sequence tokens.
    pub fn eos_ids(&self, from_config: &[u32]) -> Vec<u32> {
        let mut v: Vec<u32> = from_config.to_vec();
        if let Some(id) = self.eos_token.as_deref().and_then(|t| self.token_id(t)) {
            v.push(id);
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Render the chat template (Hugging Face's `apply_chat_template`): the
    /// template sees `messages`, `add_generation_prompt`, `bos_token`, `eos_token`
    /// and `raise_exception`, with Python string methods available.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, MlError> {
        let tpl = self
            .chat_template
            .as_deref()
            .ok_or_else(|| MlError::Unsupported("this model has no chat template; use a completion instead".into()))?;
        let mut env = minijinja::Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_template("chat", tpl).map_err(|e| MlError::Template(e.to_string()))?;
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.clone().unwrap_or_default(),
            eos_token => self.eos_token.clone().unwrap_or_default(),
        };
        env.get_template("chat").and_then(|t| t.render(ctx)).map_err(|e| MlError::Template(e.to_string()))
    }

    /// Write `tokenizer.json` (and `tokenizer_config.json`) into a model folder.
    pub fn write_hf_files(&self, dir: &Path) -> Result<(), MlError> {
        let w = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| MlError::Io(format!("{}: {e}", p.display())))
        };
        w("tokenizer.json", &self.json)?;
        let cfg = match &self.config_json {
            Some(c) => c.clone(),
            None => serde_json::to_string_pretty(&serde_json::json!({
                "bos_token": self.bos_token, "eos_token": self.eos_token, "pad_token": self.pad_token,
                "chat_template": self.chat_template,
            }))
            .expect("json"),
        };
        w("tokenizer_config.json", &cfg)
    }
}

fn bpe_json_from_gguf(md: &std::collections::HashMap<String, gguf_file::Value>) -> Result<String, MlError> {
    let strings = |k: &str| -> Result<Vec<String>, MlError> {
        match md.get(k) {
            Some(gguf_file::Value::Array(a)) => {
                a.iter().map(|v| v.to_string().cloned().map_err(|e| MlError::Tokenizer(format!("{k}: {e}")))).collect()
            }
            _ => Err(MlError::Tokenizer(format!("GGUF metadata {k} is missing"))),
        }
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges = strings("tokenizer.ggml.merges").unwrap_or_default();
    let types: Vec<i32> = match md.get("tokenizer.ggml.token_type") {
        Some(gguf_file::Value::Array(a)) => a.iter().map(|v| v.to_i32().unwrap_or(1)).collect(),
        _ => vec![1; tokens.len()],
    };
    let vocab: serde_json::Map<String, serde_json::Value> =
        tokens.iter().enumerate().map(|(i, t)| (t.clone(), serde_json::json!(i))).collect();
    // Token type 3 = control (llama.cpp): special tokens matched before BPE.
    let added: Vec<serde_json::Value> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| types.get(*i) == Some(&3))
        .map(|(i, t)| {
            serde_json::json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let j = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges},
    });
    Ok(j.to_string())
}
