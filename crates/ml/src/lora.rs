//! LoRA adapters in the PEFT layout: for a target linear layer of shape
//! (out, in), `lora_A` is (r, in), `lora_B` is (out, r), and the layer computes
//! `x Wᵀ + (alpha / r) · x Aᵀ Bᵀ`. Files are `adapter_config.json` and
//! `adapter_model.safetensors` with PEFT's tensor names, so adapters move
//! between this crate and Hugging Face PEFT in both directions.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use primitives::B256;
use primitives::model_hash::{TensorHasher, TensorRef};
use serde::{Deserialize, Serialize};

use crate::MlError;
use crate::config::ModelConfig;
use crate::rng::Rng;
use crate::weights::with_tensor_bytes;

/// The linear layers a LoRA may adapt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Target {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Target {
    pub const ALL: [Target; 7] = [Target::Q, Target::K, Target::V, Target::O, Target::Gate, Target::Up, Target::Down];

    /// PEFT's module name.
    pub fn module(self) -> &'static str {
        match self {
            Target::Q => "q_proj",
            Target::K => "k_proj",
            Target::V => "v_proj",
            Target::O => "o_proj",
            Target::Gate => "gate_proj",
            Target::Up => "up_proj",
            Target::Down => "down_proj",
        }
    }

    /// The module's path under a layer (`self_attn.q_proj`, `mlp.up_proj`).
    pub fn path(self) -> &'static str {
        match self {
            Target::Q => "self_attn.q_proj",
            Target::K => "self_attn.k_proj",
            Target::V => "self_attn.v_proj",
            Target::O => "self_attn.o_proj",
            Target::Gate => "mlp.gate_proj",
            Target::Up => "mlp.up_proj",
            Target::Down => "mlp.down_proj",
        }
    }

    pub fn from_module(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.module() == s)
    }

    /// (out, in) of this layer in a model.
    pub fn shape(self, c: &ModelConfig) -> (usize, usize) {
        let (h, q, kv, i) = (
            c.hidden_size,
            c.num_attention_heads * c.head_dim,
            c.num_key_value_heads * c.head_dim,
            c.intermediate_size,
        );
        match self {
            Target::Q => (q, h),
            Target::K | Target::V => (kv, h),
            Target::O => (h, q),
            Target::Gate | Target::Up => (i, h),
            Target::Down => (h, i),
        }
    }
}

/// The part of PEFT's `adapter_config.json` that determines the computation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub r: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    pub target_modules: Vec<Target>,
}

impl LoraConfig {
    pub fn scale(&self) -> f64 {
        self.lora_alpha / self.r as f64
    }

    /// Rank 0, a rank above a target's smaller side, no targets: refused with the reason.
    pub fn validate(&self, c: &ModelConfig) -> Result<(), MlError> {
        if self.r == 0 {
            return Err(MlError::Config("LoRA rank must be at least 1".into()));
        }
        if self.target_modules.is_empty() {
            return Err(MlError::Config("LoRA needs at least one target module".into()));
        }
        for t in &self.target_modules {
            let (o, i) = t.shape(c);
            if self.r > o.min(i) {
                return Err(MlError::Config(format!(
                    "LoRA rank {} is larger than {} ({o}×{i}) allows (at most {})",
                    self.r,
                    t.module(),
                    o.min(i)
                )));
            }
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            return Err(MlError::Config(format!("lora_dropout {} must be in [0, 1)", self.lora_dropout)));
        }
        Ok(())
    }

    /// PEFT's `adapter_config.json`, canonical (sorted keys, targets in fixed order).
    pub fn to_peft_json(&self, base_model: &str) -> String {
        let mut targets: Vec<Target> = self.target_modules.clone();
        targets.sort();
        targets.dedup();
        let v = serde_json::json!({
            "base_model_name_or_path": base_model,
            "bias": "none",
            "fan_in_fan_out": false,
            "inference_mode": true,
            "init_lora_weights": true,
            "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout,
            "peft_type": "LORA",
            "r": self.r,
            "target_modules": targets.iter().map(|t| t.module()).collect::<Vec<_>>(),
            "task_type": "CAUSAL_LM",
            "use_dora": false,
            "use_rslora": false,
        });
        serde_json::to_string_pretty(&v).expect("json")
    }

    pub fn from_peft_json(text: &str) -> Result<LoraConfig, MlError> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| MlError::Format(format!("adapter_config.json does not parse: {e}")))?;
        let get = |k: &str| v.get(k);
        if get("peft_type").and_then(|x| x.as_str()).is_some_and(|t| t != "LORA") {
            return Err(MlError::Unsupported(format!("PEFT type {:?}: only LORA", get("peft_type").unwrap())));
        }
        for flag in ["use_dora", "use_rslora", "fan_in_fan_out"] {
            if get(flag).and_then(|x| x.as_bool()) == Some(true) {
                return Err(MlError::Unsupported(format!("adapter_config.json: {flag} is not supported")));
            }
        }
        if get("bias").and_then(|x| x.as_str()).is_some_and(|b| b != "none") {
            return Err(MlError::Unsupported("adapter_config.json: only bias \"none\" is supported".into()));
        }
        let r = get("r").and_then(|x| x.as_u64()).ok_or_else(|| MlError::Format("adapter_config.json: no r".into()))?
            as usize;
        let alpha = get("lora_alpha").and_then(|x| x.as_f64()).unwrap_or(8.0);
        let dropout = get("lora_dropout").and_then(|x| x.as_f64()).unwrap_or(0.0);
        let targets: Vec<Target> = match get("target_modules") {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|t| {
                    let s = t.as_str().unwrap_or("");
                    Target::from_module(s).ok_or_else(|| MlError::Unsupported(format!("LoRA target module {s:?}")))
                })
                .collect::<Result<_, _>>()?,
            Some(serde_json::Value::String(s)) if s == "all-linear" => Target::ALL.to_vec(),
            _ => return Err(MlError::Format("adapter_config.json: target_modules must be a list".into())),
        };
        Ok(LoraConfig { r, lora_alpha: alpha, lora_dropout: dropout, target_modules: targets })
    }
}

/// How a serving node holds adapters' weights (see
/// [`LoraAdapter::with_weights_dtype`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdapterDtype {
    #[default]
    F32,
    Bf16,
    /// int8 per row with an f32 scale (`kernels::quantize_rows_i8`): a quarter
    /// of f32's bytes.
    I8,
}

impl AdapterDtype {
    pub fn name(self) -> &'static str {
        match self {
            AdapterDtype::F32 => "f32",
            AdapterDtype::Bf16 => "bf16",
            AdapterDtype::I8 => "i8",
        }
    }
}

impl std::str::FromStr for AdapterDtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(AdapterDtype::F32),
            "bf16" => Ok(AdapterDtype::Bf16),
            "i8" | "int8" => Ok(AdapterDtype::I8),
            _ => Err(format!("adapter dtype {s:?}: f32, bf16 or i8")),
        }
    }
}

/// One adapted layer: A (r, in) and B (out, r).
#[derive(Clone, Debug)]
pub struct LoraPair {
    pub a: Tensor,
    pub b: Tensor,
    /// Set when the pair is held as int8 ([`AdapterDtype::I8`], a serving
    /// representation): `a` and `b` are then U8 tensors of the int8 values'
    /// bits, both **transposed**, `a` (in, r) and `b` (r, out), so that the
    /// kernels vectorise across outputs (`kernels::linear_i8_t`); these are the
    /// scales of A's `r` rows and of B's `out` rows: a weight is its row's
    /// scale × its value.
    pub scales: Option<Arc<RowScales>>,
}

/// The per-row scales of an int8 [`LoraPair`].
#[derive(Clone, Debug, PartialEq)]
pub struct RowScales {
    pub a: Vec<f32>,
    pub b: Vec<f32>,
}

impl LoraPair {
    /// A pair of dense (f32 or bf16) tensors.
    pub fn dense(a: Tensor, b: Tensor) -> LoraPair {
        LoraPair { a, b, scales: None }
    }

    /// A and B as f32 tensors (an int8 pair's values times their scales).
    pub fn to_f32(&self) -> Result<(Tensor, Tensor), MlError> {
        let Some(sc) = &self.scales else {
            return Ok((self.a.to_dtype(DType::F32)?, self.b.to_dtype(DType::F32)?));
        };
        let (inp, r) = self.a.dims2()?;
        let out = sc.b.len();
        let a_bits: Vec<u8> = self.a.flatten_all()?.to_vec1()?;
        let b_bits: Vec<u8> = self.b.flatten_all()?.to_vec1()?;
        // Held transposed: A (in, r), B (r, out).
        let a_q: Vec<i8> = a_bits.iter().map(|&v| v as i8).collect();
        let b_q: Vec<i8> = b_bits.iter().map(|&v| v as i8).collect();
        let (a_q, b_q) = (crate::kernels::transpose_i8(&a_q, inp, r), crate::kernels::transpose_i8(&b_q, r, out));
        let a: Vec<f32> = a_q.iter().enumerate().map(|(i, &v)| v as f32 * sc.a[i / inp]).collect();
        let b: Vec<f32> = b_q.iter().enumerate().map(|(i, &v)| v as f32 * sc.b[i / r]).collect();
        Ok((Tensor::from_vec(a, (r, inp), &Device::Cpu)?, Tensor::from_vec(b, (out, r), &Device::Cpu)?))
    }

    /// The pair held as `dtype`.
    fn held_as(&self, dtype: AdapterDtype) -> Result<LoraPair, MlError> {
        let (a, b) = match (&self.scales, dtype) {
            (None, AdapterDtype::F32) => (self.a.to_dtype(DType::F32)?, self.b.to_dtype(DType::F32)?),
            (None, AdapterDtype::Bf16) => (self.a.to_dtype(DType::BF16)?, self.b.to_dtype(DType::BF16)?),
            (Some(_), AdapterDtype::I8) => return Ok(self.clone()),
            _ => self.to_f32()?,
        };
        match dtype {
            AdapterDtype::F32 => Ok(LoraPair::dense(a, b)),
            AdapterDtype::Bf16 => Ok(LoraPair::dense(a.to_dtype(DType::BF16)?, b.to_dtype(DType::BF16)?)),
            AdapterDtype::I8 => {
                let ((r, inp), (out, _)) = (a.dims2()?, b.dims2()?);
                // Both are f32 here: their values read in place, not copied out.
                with_tensor_bytes(&a, |_, a| {
                    with_tensor_bytes(&b, |_, b| LoraPair::i8_from_rows(&f32s(a), (r, inp), &f32s(b), out))
                })??
            }
        }
    }

    /// An int8 pair from A `(r, inp)` and B `(out, r)`, row-major f32 values:
    /// each row quantized with its scale (`kernels::quantize_rows_i8`), both
    /// held transposed, A as `(inp, r)` and B as `(r, out)`.
    fn i8_from_rows(a: &[f32], (r, inp): (usize, usize), b: &[f32], out: usize) -> Result<LoraPair, MlError> {
        Self::i8_pair(i8_transposed(a, r, inp), i8_transposed(b, out, r), (r, inp, out))
    }

    /// An int8 pair from A and B as [`i8_transposed`] makes them.
    fn i8_pair(
        (a, sa): (Vec<u8>, Vec<f32>),
        (b, sb): (Vec<u8>, Vec<f32>),
        (r, inp, out): (usize, usize, usize),
    ) -> Result<LoraPair, MlError> {
        Ok(LoraPair {
            a: Tensor::from_vec(a, (inp, r), &Device::Cpu)?,
            b: Tensor::from_vec(b, (r, out), &Device::Cpu)?,
            scales: Some(Arc::new(RowScales { a: sa, b: sb })),
        })
    }
}

/// A row-major `(rows, k)` f32 matrix as int8 rows with their scales
/// (`kernels::quantize_rows_i8`), held transposed `(k, rows)` as bytes.
fn i8_transposed(w: &[f32], rows: usize, k: usize) -> (Vec<u8>, Vec<f32>) {
    let (q, s) = crate::kernels::quantize_rows_i8(w, k);
    (crate::kernels::transpose_i8(&q, rows, k).into_iter().map(|x| x as u8).collect(), s)
}

/// Little-endian f32 bytes as values: borrowed where they are aligned (as
/// candle's storage and safetensors' data are), else copied.
fn f32s(bytes: &[u8]) -> std::borrow::Cow<'_, [f32]> {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: every bit pattern is an f32; align_to only puts whole,
        // aligned values in the middle part.
        let (head, mid, tail) = unsafe { bytes.align_to::<f32>() };
        if head.is_empty() && tail.is_empty() {
            return std::borrow::Cow::Borrowed(mid);
        }
    }
    std::borrow::Cow::Owned(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// An adapter's weights: per layer, per target.
#[derive(Clone, Debug)]
pub struct LoraAdapter {
    pub config: LoraConfig,
    pub layers: Vec<BTreeMap<Target, LoraPair>>,
    /// blake3 over the PEFT tensors and the canonical config (`primitives::adapter_hash`).
    pub hash: B256,
}

/// What closes an adapter's hash: the content hash of its canonical config.
fn config_hash(config: &LoraConfig) -> B256 {
    B256::from(*blake3::hash(config.to_peft_json("").as_bytes()).as_bytes())
}

fn peft_name(layer: usize, t: Target, ab: &str) -> String {
    format!("base_model.model.model.layers.{layer}.{}.lora_{ab}.weight", t.path())
}

impl LoraAdapter {
    /// Fresh trainable weights as PEFT initialises them: A uniform in
    /// ±1/sqrt(in) (kaiming-uniform with a = sqrt 5), B zero. Seeded.
    pub fn init(config: LoraConfig, model: &ModelConfig, seed: u64) -> Result<LoraAdapter, MlError> {
        config.validate(model)?;
        let mut rng = Rng::new(seed);
        let mut layers = Vec::with_capacity(model.num_hidden_layers);
        for _ in 0..model.num_hidden_layers {
            let mut m = BTreeMap::new();
            for &t in &Target::ALL {
                if !config.target_modules.contains(&t) {
                    continue;
                }
                let (out, inp) = t.shape(model);
                let bound = 1.0 / (inp as f64).sqrt();
                let a: Vec<f32> = (0..config.r * inp).map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32).collect();
                let a = Tensor::from_vec(a, (config.r, inp), &Device::Cpu)?;
                let b = Tensor::zeros((out, config.r), DType::F32, &Device::Cpu)?;
                m.insert(t, LoraPair::dense(a, b));
            }
            layers.push(m);
        }
        let mut ad = LoraAdapter { config, layers, hash: B256::ZERO };
        ad.hash = ad.compute_hash()?;
        Ok(ad)
    }

    /// An adapter with both A and B random (uniform, B in ±`b_scale`), seeded:
    /// for benchmarks and tests that need adapters which change the output.
    pub fn random(config: LoraConfig, model: &ModelConfig, seed: u64, b_scale: f64) -> Result<LoraAdapter, MlError> {
        let mut a = Self::init(config, model, seed)?;
        let mut rng = Rng::new(seed ^ 0xB5EED);
        for layer in &mut a.layers {
            for p in layer.values_mut() {
                let dims = p.b.dims().to_vec();
                let v: Vec<f32> =
                    (0..p.b.elem_count()).map(|_| ((rng.next_f64() * 2.0 - 1.0) * b_scale) as f32).collect();
                p.b = Tensor::from_vec(v, dims, &Device::Cpu)?;
            }
        }
        a.hash = a.compute_hash()?;
        Ok(a)
    }

    /// The tensors under PEFT's names.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        for (l, m) in self.layers.iter().enumerate() {
            for (t, p) in m {
                v.push((peft_name(l, *t, "A"), p.a.clone()));
                v.push((peft_name(l, *t, "B"), p.b.clone()));
            }
        }
        v
    }

    /// Parameters in the canonical order (layer, target, A then B): the order of
    /// every flattened gradient and projection.
    pub fn parameter_count(&self) -> usize {
        self.layers.iter().flat_map(|m| m.values()).map(|p| p.a.elem_count() + p.b.elem_count()).sum()
    }

    /// Bytes its weights take as held (4 per parameter in f32, 2 in bf16, 1 in
    /// int8 plus 4 per row for the scales).
    pub fn byte_size(&self) -> usize {
        let bytes = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        let scales = |p: &LoraPair| p.scales.as_ref().map_or(0, |s| 4 * (s.a.len() + s.b.len()));
        self.layers.iter().flat_map(|m| m.values()).map(|p| bytes(&p.a) + bytes(&p.b) + scales(p)).sum()
    }

    /// The same adapter with its weights held as `dtype`: a serving
    /// representation (bf16 halves the bytes a decode step reads per distinct
    /// adapter and the cache's share of each, int8 quarters them). The hash
    /// stays the one of the adapter as loaded: it names what was published
    /// (an int8 adapter's own tensors are its values' bits, not PEFT's).
    pub fn with_weights_dtype(&self, dtype: AdapterDtype) -> Result<LoraAdapter, MlError> {
        let layers = self
            .layers
            .iter()
            .map(|m| m.iter().map(|(t, p)| Ok((*t, p.held_as(dtype)?))).collect::<Result<BTreeMap<_, _>, MlError>>())
            .collect::<Result<_, _>>()?;
        Ok(LoraAdapter { config: self.config.clone(), layers, hash: self.hash })
    }

    pub fn compute_hash(&self) -> Result<B256, MlError> {
        // Streamed in name order, each tensor's bytes read in place: the same
        // hash as `adapter_hash` over copies of them (tested).
        let mut named = self.named_tensors();
        named.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut h = TensorHasher::new();
        for (n, t) in &named {
            with_tensor_bytes(t, |dtype, data| h.push(TensorRef { name: n, dtype, shape: t.dims(), data }))?
                .map_err(MlError::Format)?;
        }
        Ok(h.finish(&config_hash(&self.config)))
    }

    /// Write `adapter_config.json` and `adapter_model.safetensors`.
    pub fn save_peft(&self, dir: &Path, base_model: &str) -> Result<(), MlError> {
        std::fs::create_dir_all(dir).map_err(|e| MlError::Io(format!("{}: {e}", dir.display())))?;
        let p = dir.join("adapter_config.json");
        std::fs::write(&p, self.config.to_peft_json(base_model))
            .map_err(|e| MlError::Io(format!("{}: {e}", p.display())))?;
        let map: HashMap<String, Tensor> = self.named_tensors().into_iter().collect();
        let p = dir.join("adapter_model.safetensors");
        let tmp = dir.join("adapter_model.safetensors.tmp");
        candle_core::safetensors::save(&map, &tmp).map_err(|e| MlError::Io(format!("{}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, &p).map_err(|e| MlError::Io(format!("{}: {e}", p.display())))?;
        Ok(())
    }

    /// Load a PEFT adapter folder for a model with configuration `model`.
    pub fn load_peft(dir: &Path, model: &ModelConfig) -> Result<LoraAdapter, MlError> {
        Self::load_peft_as(dir, model, AdapterDtype::F32)
    }

    /// [`LoraAdapter::load_peft`] holding the weights as `dtype` ([`LoraAdapter::from_parts_as`]).
    pub fn load_peft_as(dir: &Path, model: &ModelConfig, dtype: AdapterDtype) -> Result<LoraAdapter, MlError> {
        let p = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&p).map_err(|e| MlError::NotFound(format!("{}: {e}", p.display())))?;
        let config = LoraConfig::from_peft_json(&text)?;
        let p = dir.join("adapter_model.safetensors");
        let bytes = std::fs::read(&p).map_err(|e| MlError::NotFound(format!("{}: {e}", p.display())))?;
        Self::from_parts_as(config, &bytes, model, dtype)
    }

    /// Build from a config and the bytes of `adapter_model.safetensors`, checking every shape.
    pub fn from_parts(config: LoraConfig, safetensors: &[u8], model: &ModelConfig) -> Result<LoraAdapter, MlError> {
        Self::from_parts_as(config, safetensors, model, AdapterDtype::F32)
    }

    /// [`LoraAdapter::from_parts`] holding the weights as `dtype`: the same
    /// checks, hash and values as `from_parts` then
    /// [`LoraAdapter::with_weights_dtype`] (tested), but an f32 file bound
    /// for int8 is hashed and quantized straight from its bytes, never built
    /// as f32 tensors: what an adapter cache on a quantized base does on
    /// every cold load.
    pub fn from_parts_as(
        config: LoraConfig,
        safetensors: &[u8],
        model: &ModelConfig,
        dtype: AdapterDtype,
    ) -> Result<LoraAdapter, MlError> {
        config.validate(model)?;
        let st = safetensors::SafeTensors::deserialize(safetensors)
            .map_err(|e| MlError::Format(format!("adapter_model.safetensors: {e}")))?;
        // PEFT may or may not keep the adapter name in the tensor names.
        let views: HashMap<String, safetensors::tensor::TensorView<'_>> = st
            .tensors()
            .into_iter()
            .map(|(k, v)| (k.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B."), v))
            .collect();
        // Every tensor the config needs, in its shape, and no other.
        let mut wanted = std::collections::HashSet::new();
        for l in 0..model.num_hidden_layers {
            for &t in &config.target_modules {
                let (out, inp) = t.shape(model);
                for (ab, shape) in [("A", [config.r, inp]), ("B", [out, config.r])] {
                    let n = peft_name(l, t, ab);
                    let v = views.get(&n).ok_or_else(|| MlError::Format(format!("adapter tensor {n} is missing")))?;
                    if v.shape() != shape {
                        return Err(MlError::Format(format!(
                            "adapter tensor {n} has shape {:?}, the base model needs {:?} \
                             (is this adapter for another base model?)",
                            v.shape(),
                            (shape[0], shape[1])
                        )));
                    }
                    wanted.insert(n);
                }
            }
        }
        if let Some(extra) = views.keys().find(|k| !wanted.contains(*k)) {
            return Err(MlError::Format(format!("adapter tensor {extra} matches no layer of this base model")));
        }
        let view = |l: usize, t: Target, ab: &str| &views[&peft_name(l, t, ab)];
        if dtype == AdapterDtype::I8 && views.values().all(|v| v.dtype() == safetensors::Dtype::F32) {
            // Straight from the bytes, one tensor at a time in the hash's
            // (name) order: each is hashed, then quantized while in cache.
            let mut names: Vec<&String> = views.keys().collect();
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            let mut h = TensorHasher::new();
            let mut held = HashMap::with_capacity(names.len());
            for n in names {
                let v = &views[n];
                h.push(TensorRef { name: n, dtype: "F32", shape: v.shape(), data: v.data() })
                    .map_err(MlError::Format)?;
                held.insert(n.as_str(), i8_transposed(&f32s(v.data()), v.shape()[0], v.shape()[1]));
            }
            let mut layers = Vec::with_capacity(model.num_hidden_layers);
            for l in 0..model.num_hidden_layers {
                let mut m = BTreeMap::new();
                for &t in &config.target_modules {
                    let (out, inp) = t.shape(model);
                    let mut take = |ab| held.remove(peft_name(l, t, ab).as_str()).expect("every tensor was checked");
                    let (a, b) = (take("A"), take("B"));
                    m.insert(t, LoraPair::i8_pair(a, b, (config.r, inp, out))?);
                }
                layers.push(m);
            }
            let hash = h.finish(&config_hash(&config));
            return Ok(LoraAdapter { config, layers, hash });
        }
        let mut layers = Vec::with_capacity(model.num_hidden_layers);
        for l in 0..model.num_hidden_layers {
            let mut m = BTreeMap::new();
            for &t in &config.target_modules {
                use candle_core::safetensors::Load;
                let load = |v: &safetensors::tensor::TensorView<'_>| -> Result<Tensor, MlError> {
                    let t =
                        v.load(&Device::Cpu).map_err(|e| MlError::Format(format!("adapter_model.safetensors: {e}")))?;
                    Ok(t.to_dtype(DType::F32)?)
                };
                m.insert(t, LoraPair::dense(load(view(l, t, "A"))?, load(view(l, t, "B"))?));
            }
            layers.push(m);
        }
        let mut ad = LoraAdapter { config, layers, hash: B256::ZERO };
        ad.hash = ad.compute_hash()?;
        if dtype == AdapterDtype::F32 { Ok(ad) } else { ad.with_weights_dtype(dtype) }
    }

    /// Trainable copies of the weights (candle `Var`s), in the canonical order.
    pub fn to_vars(&self) -> Result<LoraVars, MlError> {
        let mut layers = Vec::with_capacity(self.layers.len());
        for m in &self.layers {
            let mut lm = BTreeMap::new();
            for (t, p) in m {
                lm.insert(*t, (Var::from_tensor(&p.a.copy()?)?, Var::from_tensor(&p.b.copy()?)?));
            }
            layers.push(lm);
        }
        Ok(LoraVars { config: self.config.clone(), layers })
    }
}

/// An adapter's weights as trainable variables.
pub struct LoraVars {
    pub config: LoraConfig,
    pub layers: Vec<BTreeMap<Target, (Var, Var)>>,
}

impl LoraVars {
    /// Every variable in the canonical order (layer, target, A then B).
    pub fn all(&self) -> Vec<&Var> {
        self.layers.iter().flat_map(|m| m.values().flat_map(|(a, b)| [a, b])).collect()
    }

    /// A snapshot as an adapter (weights copied, hash computed).
    pub fn to_adapter(&self) -> Result<LoraAdapter, MlError> {
        let mut layers = Vec::with_capacity(self.layers.len());
        for m in &self.layers {
            let mut lm = BTreeMap::new();
            for (t, (a, b)) in m {
                lm.insert(*t, LoraPair::dense(a.as_tensor().copy()?, b.as_tensor().copy()?));
            }
            layers.push(lm);
        }
        let mut ad = LoraAdapter { config: self.config.clone(), layers, hash: B256::ZERO };
        ad.hash = ad.compute_hash()?;
        Ok(ad)
    }
}

/// The first bytes of a held-form file ([`LoraAdapter::to_held_file`]).
const HELD_MAGIC: &[u8; 8] = b"OLHELD01";

impl LoraAdapter {
    /// The adapter as the serving cache holds it (int8 pairs only), as one
    /// file: [`HELD_MAGIC`], the blake3 of the rest, then a safetensors body
    /// (per layer and target, A and B's int8 bits held transposed and their row
    /// scales; the config and adapter hash in its metadata). Reading it back
    /// ([`Self::from_held_file`]) skips what a cold load from the PEFT file
    /// costs beyond reading a quarter of its bytes: hashing every f32 tensor
    /// and quantizing it.
    pub fn to_held_file(&self) -> Result<Vec<u8>, MlError> {
        use safetensors::tensor::TensorView;
        let mut parts: Vec<(String, TensorView<'_>)> = Vec::new();
        let view = |dtype, shape: Vec<usize>, data| {
            TensorView::new(dtype, shape, data).map_err(|e| MlError::Format(format!("held adapter: {e}")))
        };
        // Dense tensors are read through candle's storage: only int8 pairs are held here.
        let mut bits: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
        for (l, m) in self.layers.iter().enumerate() {
            for (t, p) in m {
                if p.scales.is_none() {
                    return Err(MlError::Unsupported("a held-form file holds int8 adapters only".into()));
                }
                for (ab, w) in [("a", &p.a), ("b", &p.b)] {
                    bits.push((
                        format!("{l}.{}.{ab}", t.module()),
                        w.flatten_all()?.to_vec1::<u8>()?,
                        w.dims().to_vec(),
                    ));
                }
            }
        }
        for (name, data, shape) in &bits {
            parts.push((name.clone(), view(safetensors::Dtype::U8, shape.clone(), data)?));
        }
        for (l, m) in self.layers.iter().enumerate() {
            for (t, p) in m {
                let sc = p.scales.as_ref().expect("checked above");
                for (ab, s) in [("sa", &sc.a), ("sb", &sc.b)] {
                    let data = crate::kernels::plain_bytes(s);
                    parts.push((
                        format!("{l}.{}.{ab}", t.module()),
                        view(safetensors::Dtype::F32, vec![s.len()], data)?,
                    ));
                }
            }
        }
        let meta = HashMap::from([
            ("config".to_string(), serde_json::to_string(&self.config).expect("json")),
            ("hash".to_string(), format!("{:#x}", self.hash)),
            ("dtype".to_string(), AdapterDtype::I8.name().to_string()),
        ]);
        let body =
            safetensors::serialize(parts, Some(meta)).map_err(|e| MlError::Format(format!("held adapter: {e}")))?;
        let mut out = Vec::with_capacity(8 + 32 + body.len());
        out.extend_from_slice(HELD_MAGIC);
        out.extend_from_slice(blake3::hash(&body).as_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// An adapter from its held-form file, checked: the checksum, the format,
    /// the adapter hash it claims (`expected`: the hash the chain or the
    /// caller has for it), a config the base `model` takes, and every tensor
    /// of that config in its shape, and no other. Any mismatch is an error
    /// (the caller loads from the source instead).
    pub fn from_held_file(bytes: &[u8], model: &ModelConfig, expected: &B256) -> Result<LoraAdapter, MlError> {
        let bad = |why: String| MlError::Format(format!("held adapter: {why}"));
        if bytes.len() < 40 || &bytes[..8] != HELD_MAGIC {
            return Err(bad("not a held-form file".into()));
        }
        let body = &bytes[40..];
        if blake3::hash(body).as_bytes() != &bytes[8..40] {
            return Err(bad("checksum mismatch (a damaged file)".into()));
        }
        let (_, meta) = safetensors::SafeTensors::read_metadata(body).map_err(|e| bad(e.to_string()))?;
        let info = meta.metadata().as_ref().ok_or_else(|| bad("no metadata".into()))?;
        let field = |k: &str| info.get(k).ok_or_else(|| bad(format!("no {k} in the metadata")));
        if field("dtype")? != AdapterDtype::I8.name() {
            return Err(bad(format!("dtype {:?}, only i8 is held", field("dtype")?)));
        }
        let hash: B256 = field("hash")?.parse().map_err(|_| bad("a malformed hash".into()))?;
        if hash != *expected {
            return Err(bad(format!("holds adapter {hash}, {expected} was asked for")));
        }
        let config: LoraConfig = serde_json::from_str(field("config")?).map_err(|e| bad(format!("config: {e}")))?;
        config.validate(model)?;
        let st = safetensors::SafeTensors::deserialize(body).map_err(|e| bad(e.to_string()))?;
        let targets: std::collections::BTreeSet<Target> = config.target_modules.iter().copied().collect();
        let wanted = 4 * model.num_hidden_layers * targets.len();
        if st.len() != wanted {
            return Err(bad(format!("{} tensors, the config needs {wanted}", st.len())));
        }
        let r = config.r;
        let mut layers = Vec::with_capacity(model.num_hidden_layers);
        for l in 0..model.num_hidden_layers {
            let mut m = BTreeMap::new();
            for &t in &config.target_modules {
                let (out, inp) = t.shape(model);
                let get = |ab: &str, dtype, shape: &[usize]| {
                    let name = format!("{l}.{}.{ab}", t.module());
                    let v = st.tensor(&name).map_err(|_| bad(format!("tensor {name} is missing")))?;
                    if v.dtype() != dtype || v.shape() != shape {
                        return Err(bad(format!(
                            "tensor {name} is {:?} {:?}, {dtype:?} {shape:?} expected",
                            v.dtype(),
                            v.shape()
                        )));
                    }
                    Ok(v.data())
                };
                let u8s = |ab, shape: &[usize]| get(ab, safetensors::Dtype::U8, shape).map(<[u8]>::to_vec);
                let scales = |ab, n: usize| get(ab, safetensors::Dtype::F32, &[n]).map(|d| f32s(d).into_owned());
                let a = (u8s("a", &[inp, r])?, scales("sa", r)?);
                let b = (u8s("b", &[r, out])?, scales("sb", out)?);
                m.insert(t, LoraPair::i8_pair(a, b, (r, inp, out))?);
            }
            layers.push(m);
        }
        Ok(LoraAdapter { config, layers, hash })
    }
}
