//! The model configuration, read from a Hugging Face `config.json` (or from a
//! GGUF file's metadata). One definition covers the Llama family: Llama,
//! Mistral, Qwen2 (q/k/v biases) and SmolLM (a Llama).

use serde::{Deserialize, Serialize};

use crate::MlError;

/// Which member of the family: it decides the details that `config.json` leaves implicit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Llama,
    Mistral,
    Qwen2,
}

/// RoPE frequency scaling, as `config.json`'s `rope_scaling` spells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RopeScaling {
    /// Positions divided by `factor`.
    Linear { factor: f64 },
    /// Llama 3's piecewise rescaling of the frequencies.
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max_position_embeddings: usize },
}

/// What the model code needs; every field has the meaning Hugging Face gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub max_position_embeddings: usize,
    pub rope_theta: f64,
    pub rope_scaling: Option<RopeScaling>,
    pub rms_norm_eps: f64,
    pub tie_word_embeddings: bool,
    /// Biases on q, k and v (Qwen2 always; Llama when `attention_bias`).
    pub qkv_bias: bool,
    /// Bias on o (Llama's `attention_bias` covers it too).
    pub o_bias: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

#[derive(Deserialize)]
struct HfConfig {
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default)]
    num_key_value_heads: Option<usize>,
    #[serde(default)]
    head_dim: Option<usize>,
    #[serde(default = "default_max_pos")]
    max_position_embeddings: usize,
    #[serde(default = "default_theta")]
    rope_theta: f64,
    #[serde(default)]
    rope_scaling: Option<serde_json::Value>,
    /// transformers 5 keeps theta and scaling here.
    #[serde(default)]
    rope_parameters: Option<serde_json::Value>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    hidden_act: Option<String>,
    #[serde(default)]
    bos_token_id: Option<serde_json::Value>,
    #[serde(default)]
    eos_token_id: Option<serde_json::Value>,
    #[serde(default)]
    sliding_window: Option<serde_json::Value>,
    #[serde(default)]
    use_sliding_window: Option<bool>,
}

fn default_max_pos() -> usize {
    2048
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_eps() -> f64 {
    1e-6
}

fn token_ids(v: &Option<serde_json::Value>) -> Vec<u32> {
    match v {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect(),
        _ => vec![],
    }
}

impl ModelConfig {
    /// Parse a Hugging Face `config.json`; refuses architectures outside the Llama family.
    pub fn from_hf_json(text: &str) -> Result<ModelConfig, MlError> {
        let c: HfConfig =
            serde_json::from_str(text).map_err(|e| MlError::Config(format!("config.json does not parse: {e}")))?;
        let arch = c.architectures.first().cloned().unwrap_or_default();
        let model_type = c.model_type.clone().unwrap_or_default();
        let family = match (model_type.as_str(), arch.as_str()) {
            ("llama", _) | (_, "LlamaForCausalLM") => Family::Llama,
            ("mistral", _) | (_, "MistralForCausalLM") => Family::Mistral,
            ("qwen2", _) | (_, "Qwen2ForCausalLM") => Family::Qwen2,
            _ => {
                return Err(MlError::Unsupported(format!(
                    "architecture {:?} (model_type {:?}) is not a Llama-family decoder; supported: \
                     LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM (SmolLM is a Llama)",
                    arch, model_type
                )));
            }
        };
        if let Some(act) = &c.hidden_act
            && act != "silu"
        {
            return Err(MlError::Unsupported(format!("hidden_act {act:?}: only silu (SwiGLU) is supported")));
        }
        if family == Family::Mistral
            && c.sliding_window
                .as_ref()
                .and_then(|v| v.as_u64())
                .is_some_and(|w| (w as usize) < c.max_position_embeddings)
            && c.use_sliding_window != Some(false)
        {
            return Err(MlError::Unsupported(
                "a sliding attention window shorter than the context is not supported".into(),
            ));
        }
        let mut rope_theta = c.rope_theta;
        let mut scaling = c.rope_scaling.clone();
        if let Some(rp) = &c.rope_parameters {
            if let Some(t) = rp.get("rope_theta").and_then(|t| t.as_f64()) {
                rope_theta = t;
            }
            let ty = rp.get("rope_type").and_then(|t| t.as_str()).unwrap_or("default");
            if ty != "default" && scaling.is_none() {
                scaling = Some(rp.clone());
            }
        }
        let rope_scaling = match &scaling {
            None | Some(serde_json::Value::Null) => None,
            Some(v) if v.get("rope_type").and_then(|t| t.as_str()) == Some("default") => None,
            Some(v) => Some(parse_rope_scaling(v)?),
        };
        let kv = c.num_key_value_heads.unwrap_or(c.num_attention_heads);
        let head_dim = c.head_dim.unwrap_or(c.hidden_size / c.num_attention_heads.max(1));
        let cfg = ModelConfig {
            family,
            vocab_size: c.vocab_size,
            hidden_size: c.hidden_size,
            intermediate_size: c.intermediate_size,
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: c.num_attention_heads,
            num_key_value_heads: kv,
            head_dim,
            max_position_embeddings: c.max_position_embeddings,
            rope_theta,
            rope_scaling,
            rms_norm_eps: c.rms_norm_eps,
            tie_word_embeddings: c.tie_word_embeddings,
            qkv_bias: family == Family::Qwen2 || c.attention_bias,
            o_bias: family != Family::Qwen2 && c.attention_bias,
            bos_token_id: token_ids(&c.bos_token_id).first().copied(),
            eos_token_ids: token_ids(&c.eos_token_id),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Shapes that fit together; a clear error instead of a panic deep in a matmul.
    pub fn validate(&self) -> Result<(), MlError> {
        let bad = |m: String| Err(MlError::Config(m));
        if self.vocab_size == 0 || self.hidden_size == 0 || self.num_hidden_layers == 0 {
            return bad("vocab_size, hidden_size and num_hidden_layers must be positive".into());
        }
        if self.num_attention_heads == 0 || self.num_key_value_heads == 0 {
            return bad("attention heads must be positive".into());
        }
        if !self.num_attention_heads.is_multiple_of(self.num_key_value_heads) {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return bad(format!("head_dim {} must be even and positive (RoPE rotates pairs)", self.head_dim));
        }
        Ok(())
    }

    /// The Hugging Face `config.json` this configuration round-trips through.
    pub fn to_hf_json(&self) -> serde_json::Value {
        let (arch, ty) = match self.family {
            Family::Llama => ("LlamaForCausalLM", "llama"),
            Family::Mistral => ("MistralForCausalLM", "mistral"),
            Family::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
        };
        let mut v = serde_json::json!({
            "architectures": [arch],
            "model_type": ty,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "max_position_embeddings": self.max_position_embeddings,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "hidden_act": "silu",
            "torch_dtype": "float32",
        });
        if self.family != Family::Qwen2 {
            v["attention_bias"] = serde_json::json!(self.qkv_bias);
        }
        if let Some(b) = self.bos_token_id {
            v["bos_token_id"] = serde_json::json!(b);
        }
        match self.eos_token_ids.as_slice() {
            [] => {}
            [e] => v["eos_token_id"] = serde_json::json!(e),
            many => v["eos_token_id"] = serde_json::json!(many),
        }
        match &self.rope_scaling {
            None => {}
            Some(RopeScaling::Linear { factor }) => {
                v["rope_scaling"] = serde_json::json!({"rope_type": "linear", "factor": factor})
            }
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            }) => {
                v["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": factor,
                    "low_freq_factor": low_freq_factor, "high_freq_factor": high_freq_factor,
                    "original_max_position_embeddings": original_max_position_embeddings})
            }
        }
        v
    }

    /// Query heads per key-value head.
    pub fn gqa_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }

    /// The inverse RoPE frequencies, `head_dim / 2` of them, after scaling.
    pub fn inv_freqs(&self) -> Vec<f64> {
        let half = self.head_dim / 2;
        let base: Vec<f64> =
            (0..half).map(|i| 1.0 / self.rope_theta.powf((2 * i) as f64 / self.head_dim as f64)).collect();
        match &self.rope_scaling {
            None => base,
            Some(RopeScaling::Linear { factor }) => base.into_iter().map(|f| f / factor).collect(),
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            }) => {
                let old = *original_max_position_embeddings as f64;
                let low_wavelen = old / low_freq_factor;
                let high_wavelen = old / high_freq_factor;
                base.into_iter()
                    .map(|f| {
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen < high_wavelen {
                            f
                        } else if wavelen > low_wavelen {
                            f / factor
                        } else {
                            let smooth = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect()
            }
        }
    }

    /// Parameters of the base model (embeddings and head counted once when tied).
    pub fn parameter_count(&self) -> usize {
        let h = self.hidden_size;
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let attn = h * q + 2 * h * kv + q * h + if self.qkv_bias { q + 2 * kv } else { 0 };
        let mlp = 3 * h * self.intermediate_size;
        let layer = attn + mlp + 2 * h;
        let emb = self.vocab_size * h;
        emb + if self.tie_word_embeddings { 0 } else { emb } + self.num_hidden_layers * layer + h
    }
}

fn parse_rope_scaling(v: &serde_json::Value) -> Result<RopeScaling, MlError> {
    let ty = v.get("rope_type").or_else(|| v.get("type")).and_then(|t| t.as_str()).unwrap_or("");
    let f = |k: &str| v.get(k).and_then(|x| x.as_f64());
    match ty {
        "default" => Err(MlError::Unsupported("rope_scaling type \"default\" with parameters".into())),
        "linear" => Ok(RopeScaling::Linear {
            factor: f("factor").ok_or_else(|| MlError::Config("linear rope_scaling needs factor".into()))?,
        }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: f("factor").ok_or_else(|| MlError::Config("llama3 rope_scaling needs factor".into()))?,
            low_freq_factor: f("low_freq_factor").unwrap_or(1.0),
            high_freq_factor: f("high_freq_factor").unwrap_or(4.0),
            original_max_position_embeddings: v
                .get("original_max_position_embeddings")
                .and_then(|x| x.as_u64())
                .unwrap_or(8192) as usize,
        }),
        other => Err(MlError::Unsupported(format!("rope_scaling type {other:?}; supported: linear, llama3"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_other_architectures_and_bad_shapes() {
        let gpt2 = r#"{"architectures":["GPT2LMHeadModel"],"model_type":"gpt2","vocab_size":10,"hidden_size":8,
            "intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2}"#;
        let e = ModelConfig::from_hf_json(gpt2).unwrap_err().to_string();
        assert!(e.contains("not a Llama-family"), "{e}");
        let bad = r#"{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,
            "num_hidden_layers":1,"num_attention_heads":3,"num_key_value_heads":2}"#;
        assert!(ModelConfig::from_hf_json(bad).is_err());
    }

    #[test]
    fn qwen2_has_qkv_biases_and_round_trips() {
        let q = r#"{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","vocab_size":10,"hidden_size":8,
            "intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,
            "tie_word_embeddings":true,"eos_token_id":[3,4]}"#;
        let c = ModelConfig::from_hf_json(q).unwrap();
        assert!(c.qkv_bias && !c.o_bias && c.tie_word_embeddings);
        assert_eq!(c.eos_token_ids, vec![3, 4]);
        let back = ModelConfig::from_hf_json(&c.to_hf_json().to_string()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn llama3_scaling_keeps_high_frequencies() {
        let mut c = ModelConfig::from_hf_json(
            r#"{"model_type":"llama","vocab_size":10,"hidden_size":64,"intermediate_size":16,
            "num_hidden_layers":1,"num_attention_heads":1,"rope_theta":500000.0,
            "rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
            "original_max_position_embeddings":8192}}"#,
        )
        .unwrap();
        let scaled = c.inv_freqs();
        c.rope_scaling = None;
        let plain = c.inv_freqs();
        assert_eq!(scaled[0], plain[0]);
        assert!((scaled[31] - plain[31] / 8.0).abs() < 1e-12);
    }
}
