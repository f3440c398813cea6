//! Model files on disk: a Hugging Face folder (`config.json`, `*.safetensors`,
//! `tokenizer.json`, `tokenizer_config.json`) or a GGUF file. Tensors are kept
//! under their Hugging Face names and layout whatever the source, so an
//! unquantized GGUF written from a folder gives the very same tensors, and so
//! the same model hash (`primitives::model_hash`). GGUF tensors in Q8_0, Q4_0,
//! Q4_1 or Q4_K stay quantized in memory ([`TensorValue::Quant`]) for the kernels
//! that multiply by them directly; other quantizations are dequantized to f32.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{DType, Device, Tensor};
use primitives::B256;
use primitives::model_hash::{TensorHasher, TensorRef};

use crate::MlError;
use crate::config::{Family, ModelConfig};
use crate::kernels::{QMatrix, QuantType};
use crate::tokenizer::TextTokenizer;

/// A tensor as stored in its file (its dtype and shape, which the hash
/// covers with its bytes) and the value the model computes with. The bytes
/// are hashed while the file is read and not kept: a loaded model holds its
/// weights once.
pub struct StoredTensor {
    /// As safetensors spells it ("F32", "BF16", ...) or the GGUF quantization ("Q4_1", ...).
    pub dtype: String,
    pub shape: Vec<usize>,
    pub value: TensorValue,
}

/// What the model computes with: a candle tensor (f32 as loaded, or bf16 for
/// serving), or a matrix kept in its GGUF quantization.
#[derive(Clone)]
pub enum TensorValue {
    Dense(Tensor),
    /// Rows in the model's layout (llama.cpp's q/k permutation undone), blocks as stored.
    Quant(Arc<QMatrix>),
}

impl TensorValue {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            TensorValue::Dense(t) => t.dims().to_vec(),
            TensorValue::Quant(q) => vec![q.rows(), q.cols()],
        }
    }

    /// As a candle tensor: a dense one as it is (shared), a quantized one dequantized to f32.
    pub fn tensor(&self) -> candle_core::Result<Tensor> {
        match self {
            TensorValue::Dense(t) => Ok(t.clone()),
            TensorValue::Quant(q) => Tensor::from_vec(q.dequantize(), (q.rows(), q.cols()), &Device::Cpu),
        }
    }

    /// The tensor, when it is dense f32 (what the fused training block reads in place).
    pub fn f32_dense(&self) -> Option<&Tensor> {
        match self {
            TensorValue::Dense(t) if t.dtype() == DType::F32 => Some(t),
            _ => None,
        }
    }

    /// Bytes held in memory.
    pub fn bytes(&self) -> usize {
        match self {
            TensorValue::Dense(t) => t.elem_count() * t.dtype().size_in_bytes(),
            TensorValue::Quant(q) => q.bytes_held(),
        }
    }
}

/// A loaded base model: configuration, tensors by Hugging Face name, tokenizer and hash.
pub struct ModelFiles {
    pub source: PathBuf,
    pub config: ModelConfig,
    pub tensors: HashMap<String, StoredTensor>,
    pub tokenizer: TextTokenizer,
    /// The base model hash: blake3 over the stored tensors and the tokenizer's hash.
    pub hash: B256,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> MlError + '_ {
    move |e| MlError::Io(format!("{}: {e}", path.display()))
}

fn candle(path: &Path) -> impl Fn(candle_core::Error) -> MlError + '_ {
    move |e| MlError::Format(format!("{}: {e}", path.display()))
}

/// The bytes of a tensor in little-endian order, with the safetensors name of its dtype.
pub fn tensor_bytes(t: &Tensor) -> Result<(String, Vec<u8>), MlError> {
    let t = t.flatten_all()?;
    Ok(match t.dtype() {
        DType::F32 => ("F32".into(), t.to_vec1::<f32>()?.iter().flat_map(|x| x.to_le_bytes()).collect()),
        DType::BF16 => ("BF16".into(), t.to_vec1::<half::bf16>()?.iter().flat_map(|x| x.to_le_bytes()).collect()),
        DType::F16 => ("F16".into(), t.to_vec1::<half::f16>()?.iter().flat_map(|x| x.to_le_bytes()).collect()),
        DType::F64 => ("F64".into(), t.to_vec1::<f64>()?.iter().flat_map(|x| x.to_le_bytes()).collect()),
        other => return Err(MlError::Format(format!("tensor dtype {other:?} is not a weight type"))),
    })
}

/// `f(dtype name, little-endian bytes)` of a tensor, the bytes borrowed from
/// its storage when it is a contiguous CPU tensor of f32 on a little-endian
/// machine (an adapter's 19 MB are hashed at every cold load: no copy), else
/// copied by [`tensor_bytes`].
pub fn with_tensor_bytes<R>(t: &Tensor, f: impl FnOnce(&str, &[u8]) -> R) -> Result<R, MlError> {
    #[cfg(target_endian = "little")]
    {
        let (st, l) = t.storage_and_layout();
        if let (candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)), Some((a, b))) =
            (&*st, l.contiguous_offsets())
        {
            // On a little-endian machine these are the values' little-endian bytes.
            return Ok(f("F32", crate::kernels::plain_bytes(&v[a..b])));
        }
    }
    let (dtype, bytes) = tensor_bytes(t)?;
    Ok(f(&dtype, &bytes))
}

/// A dense tensor as the model holds it (f32), and the bytes its hash covers.
fn stored(t: Tensor) -> Result<(StoredTensor, Cow<'static, [u8]>), MlError> {
    let (dtype, bytes) = tensor_bytes(&t)?;
    let shape = t.dims().to_vec();
    let value = TensorValue::Dense(t.to_dtype(DType::F32)?);
    Ok((StoredTensor { dtype, shape, value }, Cow::Owned(bytes)))
}

/// Feed one tensor to the model hash (tensors come in name order).
fn hash_tensor(h: &mut TensorHasher, name: &str, t: &StoredTensor, bytes: &[u8]) -> Result<(), MlError> {
    h.push(TensorRef { name, dtype: &t.dtype, shape: &t.shape, data: bytes }).map_err(MlError::Format)
}

impl ModelFiles {
    /// Open a Hugging Face folder or a `.gguf` file.
    pub fn open(path: &Path) -> Result<ModelFiles, MlError> {
        if path.is_dir() {
            Self::open_hf(path)
        } else if path.extension().and_then(|e| e.to_str()) == Some("gguf") {
            Self::open_gguf(path)
        } else if path.exists() {
            Err(MlError::Unsupported(format!(
                "{}: a model is a Hugging Face folder (config.json, *.safetensors, tokenizer.json) or a .gguf file",
                path.display()
            )))
        } else {
            Err(MlError::NotFound(format!("no model at {}", path.display())))
        }
    }

    fn open_hf(dir: &Path) -> Result<ModelFiles, MlError> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(io(&cfg_path))?;
        let config = ModelConfig::from_hf_json(&text)?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(MlError::NotFound(format!("{}: no *.safetensors files", dir.display())));
        }
        let mut loaded = BTreeMap::new();
        for f in &files {
            for (name, t) in candle_core::safetensors::load(f, &Device::Cpu).map_err(candle(f))? {
                if loaded.insert(name.clone(), t).is_some() {
                    return Err(MlError::Format(format!("{}: tensor {name} is in two files", dir.display())));
                }
            }
        }
        let tokenizer = TextTokenizer::from_hf_dir(dir)?;
        let (mut tensors, mut h) = (HashMap::new(), TensorHasher::new());
        for (name, t) in loaded {
            let (st, bytes) = stored(t)?;
            hash_tensor(&mut h, &name, &st, &bytes)?;
            tensors.insert(name, st);
        }
        let hash = h.finish(&tokenizer.hash);
        let m = ModelFiles { source: dir.to_path_buf(), config, tensors, tokenizer, hash };
        m.check_tensors()?;
        Ok(m)
    }

    fn open_gguf(path: &Path) -> Result<ModelFiles, MlError> {
        let mut f = std::fs::File::open(path).map_err(io(path))?;
        let content = gguf_file::Content::read(&mut f).map_err(candle(path))?;
        let config = config_from_gguf(&content)?;
        let tokenizer = TextTokenizer::from_gguf(&content)?;
        let permuted = config.family == Family::Llama || config.family == Family::Mistral;
        // In the hash's order (by Hugging Face name), each tensor's bytes hashed and dropped as it is read.
        let mut named: Vec<(String, &String, &gguf_file::TensorInfo)> = content
            .tensor_infos
            .iter()
            // Others (e.g. rope_freqs.weight) are derived from the config, not weights we compute with.
            .filter_map(|(g, info)| hf_name(g).map(|n| (n, g, info)))
            .collect();
        named.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let (mut tensors, mut h) = (HashMap::new(), TensorHasher::new());
        for (name, gname, info) in named {
            let q = content
                .tensor(&mut f, gname, &Device::Cpu)
                .map_err(|e| MlError::Format(format!("{}: tensor {gname}: {e}", path.display())))?;
            let heads = if name.ends_with("q_proj.weight") || name.ends_with("q_proj.bias") {
                Some(config.num_attention_heads)
            } else if name.ends_with("k_proj.weight") || name.ends_with("k_proj.bias") {
                Some(config.num_key_value_heads)
            } else {
                None
            };
            let heads = if permuted { heads } else { None };
            let (st, bytes) = gguf_tensor(&q, info.ggml_dtype, heads)
                .map_err(|e| MlError::Format(format!("{}: tensor {gname}: {e}", path.display())))?;
            hash_tensor(&mut h, &name, &st, &bytes)?;
            tensors.insert(name, st);
        }
        let hash = h.finish(&tokenizer.hash);
        let m = ModelFiles { source: path.to_path_buf(), config, tensors, tokenizer, hash };
        m.check_tensors()?;
        Ok(m)
    }

    /// Every tensor the model needs, with the shape its configuration implies.
    fn check_tensors(&self) -> Result<(), MlError> {
        let c = &self.config;
        let (h, q, kv, i) = (
            c.hidden_size,
            c.num_attention_heads * c.head_dim,
            c.num_key_value_heads * c.head_dim,
            c.intermediate_size,
        );
        let mut want: Vec<(String, Vec<usize>)> =
            vec![("model.embed_tokens.weight".into(), vec![c.vocab_size, h]), ("model.norm.weight".into(), vec![h])];
        if !c.tie_word_embeddings {
            want.push(("lm_head.weight".into(), vec![c.vocab_size, h]));
        }
        for l in 0..c.num_hidden_layers {
            let p = format!("model.layers.{l}");
            want.push((format!("{p}.input_layernorm.weight"), vec![h]));
            want.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
            want.push((format!("{p}.self_attn.q_proj.weight"), vec![q, h]));
            want.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, h]));
            want.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, h]));
            want.push((format!("{p}.self_attn.o_proj.weight"), vec![h, q]));
            want.push((format!("{p}.mlp.gate_proj.weight"), vec![i, h]));
            want.push((format!("{p}.mlp.up_proj.weight"), vec![i, h]));
            want.push((format!("{p}.mlp.down_proj.weight"), vec![h, i]));
            if c.qkv_bias {
                want.push((format!("{p}.self_attn.q_proj.bias"), vec![q]));
                want.push((format!("{p}.self_attn.k_proj.bias"), vec![kv]));
                want.push((format!("{p}.self_attn.v_proj.bias"), vec![kv]));
            }
            if c.o_bias {
                want.push((format!("{p}.self_attn.o_proj.bias"), vec![h]));
            }
        }
        for (name, shape) in want {
            match self.tensors.get(&name) {
                None => {
                    return Err(MlError::Format(format!("{}: tensor {name} is missing", self.source.display())));
                }
                Some(t) if t.value.dims() != shape => {
                    return Err(MlError::Format(format!(
                        "{}: tensor {name} has shape {:?}, the configuration implies {shape:?}",
                        self.source.display(),
                        t.value.dims()
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The f32 tensor the model computes with.
    /// Write these weights as a Hugging Face folder, every tensor in f32 (GGUF
    /// quantizations dequantized): what a Python peer loads to run the same model.
    pub fn write_hf_f32(&self, dir: &Path) -> Result<(), MlError> {
        let mut tensors = HashMap::new();
        for (name, t) in &self.tensors {
            tensors.insert(name.clone(), t.value.tensor()?.to_dtype(candle_core::DType::F32)?);
        }
        write_hf_folder(dir, &self.config, &tensors, &self.tokenizer)
    }

    /// A dense tensor (norms, biases; any weight of an unquantized model).
    pub fn get(&self, name: &str) -> Result<&Tensor, MlError> {
        match &self.stored(name)?.value {
            TensorValue::Dense(t) => Ok(t),
            TensorValue::Quant(q) => Err(MlError::Format(format!(
                "tensor {name} is {}-quantized where a dense tensor is needed",
                q.quant_type().name()
            ))),
        }
    }

    /// A weight matrix as it is held: dense or quantized.
    pub fn weight(&self, name: &str) -> Result<TensorValue, MlError> {
        Ok(self.stored(name)?.value.clone())
    }

    fn stored(&self, name: &str) -> Result<&StoredTensor, MlError> {
        self.tensors.get(name).ok_or_else(|| MlError::Format(format!("tensor {name} is missing")))
    }

    /// Write the model as an unquantized GGUF file (f32, llama.cpp names and q/k
    /// layout), with the Hugging Face tokenizer embedded as
    /// `tokenizer.huggingface.json`, so that opening it gives the same hash.
    pub fn write_gguf(&self, path: &Path) -> Result<(), MlError> {
        self.write_gguf_as(path, None)
    }

    /// [`ModelFiles::write_gguf`], with every weight matrix whose rows hold whole
    /// blocks quantized to `quantize` (by ggml's reference quantizers: candle's
    /// for Q8_0, Q4_0 and Q4_1, ours for Q4_K); norms, biases and matrices of
    /// other widths keep their dtype (f32 when they were quantized). Under
    /// Q4_K (Q5_K, Q6_K), matrices whose rows are whole 32-blocks but not
    /// 256-blocks are written in Q5_0 (Q5_1, Q8_0), as llama-quantize falls back for them. Quantized tensors of the source
    /// are dequantized first, so this also converts between quantizations.
    pub fn write_gguf_as(&self, path: &Path, quantize: Option<QuantType>) -> Result<(), MlError> {
        let c = &self.config;
        let arch = match c.family {
            Family::Llama | Family::Mistral => "llama",
            Family::Qwen2 => "qwen2",
        };
        let permuted = arch == "llama";
        let mut qt: Vec<(String, QTensor)> = Vec::new();
        let mut names: Vec<&String> = self.tensors.keys().collect();
        names.sort();
        for name in names {
            let st = &self.tensors[name];
            let gname = gguf_name(name).ok_or_else(|| MlError::Format(format!("no GGUF name for tensor {name}")))?;
            let mut v = st.value.tensor()?;
            if permuted {
                if name.ends_with("q_proj.weight") || name.ends_with("q_proj.bias") {
                    v = permute_rope(&v, c.num_attention_heads)?;
                } else if name.ends_with("k_proj.weight") || name.ends_with("k_proj.bias") {
                    v = permute_rope(&v, c.num_key_value_heads)?;
                }
            }
            let whole = |ty: QuantType| v.rank() == 2 && v.dims()[1].is_multiple_of(ty.block_values());
            let quantize_to = match quantize {
                Some(QuantType::Q4K) if !whole(QuantType::Q4K) => Some(QuantType::Q5_0),
                Some(QuantType::Q5K) if !whole(QuantType::Q5K) => Some(QuantType::Q5_1),
                Some(QuantType::Q6K) if !whole(QuantType::Q6K) => Some(QuantType::Q8_0),
                q => q,
            };
            let quantize_to = quantize_to.filter(|&ty| whole(ty) && name.ends_with(".weight"));
            let dt = match (quantize_to, st.dtype.as_str()) {
                (Some(ty), _) => ggml_type(ty),
                (None, "F32") => GgmlDType::F32,
                (None, "F16") => GgmlDType::F16,
                (None, "BF16") => GgmlDType::BF16,
                // A quantized tensor that the target quantization cannot hold.
                (None, _) if quantize.is_some() => GgmlDType::F32,
                (None, other) => return Err(MlError::Unsupported(format!("writing {other} tensors to GGUF"))),
            };
            let v = match dt {
                GgmlDType::F16 => v.to_dtype(DType::F16)?,
                GgmlDType::BF16 => v.to_dtype(DType::BF16)?,
                _ => v.to_dtype(DType::F32)?,
            };
            let q = if quantize_to == Some(QuantType::Q4K) {
                let (rows, cols) = v.dims2()?;
                let m = QMatrix::quantize_q4k(rows, cols, &v.flatten_all()?.to_vec1::<f32>()?)?;
                qtensor_from_ggml(GgmlDType::Q4K, &m.ggml_bytes(), vec![rows, cols], &Device::Cpu)?
            } else {
                QTensor::quantize(&v, dt)?
            };
            qt.push((gname, q));
        }
        use gguf_file::Value as V;
        let k = |s: &str| format!("{arch}.{s}");
        let mut meta: Vec<(String, V)> = vec![
            ("general.architecture".into(), V::String(arch.into())),
            ("general.name".into(), V::String("openledger".into())),
            (k("context_length"), V::U32(c.max_position_embeddings as u32)),
            (k("embedding_length"), V::U32(c.hidden_size as u32)),
            (k("block_count"), V::U32(c.num_hidden_layers as u32)),
            (k("feed_forward_length"), V::U32(c.intermediate_size as u32)),
            (k("attention.head_count"), V::U32(c.num_attention_heads as u32)),
            (k("attention.head_count_kv"), V::U32(c.num_key_value_heads as u32)),
            (k("attention.key_length"), V::U32(c.head_dim as u32)),
            (k("attention.value_length"), V::U32(c.head_dim as u32)),
            (k("rope.dimension_count"), V::U32(c.head_dim as u32)),
            (k("attention.layer_norm_rms_epsilon"), V::F32(c.rms_norm_eps as f32)),
            (k("rope.freq_base"), V::F32(c.rope_theta as f32)),
            (k("vocab_size"), V::U32(c.vocab_size as u32)),
            ("tokenizer.huggingface.json".into(), V::String(self.tokenizer.json.clone())),
        ];
        if c.rope_scaling.is_some() {
            return Err(MlError::Unsupported("writing GGUF for a model with rope_scaling".into()));
        }
        // f32 written as f32 keeps the exact rms_norm_eps / theta only when they are f32-exact;
        // the original values go along so that a round trip is exact.
        meta.push(("openledger.config_json".into(), V::String(c.to_hf_json().to_string())));
        if let Some(t) = &self.tokenizer.chat_template {
            meta.push(("tokenizer.chat_template".into(), V::String(t.clone())));
        }
        let meta_refs: Vec<(&str, &V)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let t_refs: Vec<(&str, &QTensor)> = qt.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tmp = path.with_extension("gguf.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        gguf_file::write(&mut f, &meta_refs, &t_refs)?;
        f.flush().map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        let _ = f.stream_position();
        std::fs::rename(&tmp, path).map_err(io(path))?;
        Ok(())
    }
}

/// The ggml type of a block format.
pub fn ggml_type(ty: QuantType) -> GgmlDType {
    match ty {
        QuantType::Q8_0 => GgmlDType::Q8_0,
        QuantType::Q4_0 => GgmlDType::Q4_0,
        QuantType::Q4_1 => GgmlDType::Q4_1,
        QuantType::Q5_0 => GgmlDType::Q5_0,
        QuantType::Q5_1 => GgmlDType::Q5_1,
        QuantType::Q5K => GgmlDType::Q5K,
        QuantType::Q4K => GgmlDType::Q4K,
        QuantType::Q6K => GgmlDType::Q6K,
    }
}

/// One GGUF tensor as the model holds it: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K matrices
/// kept quantized, anything else dequantized. `heads` undoes llama.cpp's q/k
/// row permutation.
fn gguf_tensor(q: &QTensor, dtype: GgmlDType, heads: Option<usize>) -> Result<(StoredTensor, Cow<'_, [u8]>), MlError> {
    let kept = QuantType::ALL.into_iter().find(|&t| ggml_type(t) == dtype);
    let shape = q.shape().dims().to_vec();
    if let (Some(ty), &[rows, cols]) = (kept, shape.as_slice()) {
        let bytes = q.data()?;
        let mut m = QMatrix::new(ty, rows, cols, &bytes)?;
        if let Some(h) = heads {
            let half = rows / h.max(1) / 2;
            if h == 0 || half == 0 || rows != h * 2 * half {
                return Err(MlError::Format(format!("{rows} rows do not split into {h} heads of rotary pairs")));
            }
            // Inverse of llama.cpp's `reshape(h, 2, half).swapaxes(1, 2)`, as `unpermute_rope` does.
            m = m.permute_rows(|i| {
                let (head, w) = (i / (2 * half), i % (2 * half));
                head * 2 * half + (w % half) * 2 + w / half
            })?;
        }
        let dtype = ty.hashed_name().into();
        return Ok((StoredTensor { dtype, shape, value: TensorValue::Quant(Arc::new(m)) }, bytes));
    }
    let mut value = q.dequantize(&Device::Cpu)?;
    if let Some(h) = heads {
        value = unpermute_rope(&value, h)?;
    }
    match dtype {
        GgmlDType::F32 => stored(value),
        GgmlDType::F16 => stored(value.to_dtype(DType::F16)?),
        GgmlDType::BF16 => stored(value.to_dtype(DType::BF16)?),
        // Other quantizations: dequantized for computing, hashed as the file holds them.
        quant => Ok((
            StoredTensor { dtype: format!("{quant:?}").to_uppercase(), shape, value: TensorValue::Dense(value) },
            q.data()?,
        )),
    }
}

fn config_from_gguf(content: &gguf_file::Content) -> Result<ModelConfig, MlError> {
    let md = &content.metadata;
    if let Some(gguf_file::Value::String(j)) = md.get("openledger.config_json") {
        return ModelConfig::from_hf_json(j);
    }
    let arch = match md.get("general.architecture") {
        Some(gguf_file::Value::String(s)) => s.clone(),
        _ => return Err(MlError::Format("GGUF without general.architecture".into())),
    };
    let family = match arch.as_str() {
        "llama" => Family::Llama,
        "qwen2" => Family::Qwen2,
        other => {
            return Err(MlError::Unsupported(format!(
                "GGUF architecture {other:?} is not a Llama-family decoder (llama, qwen2)"
            )));
        }
    };
    let u = |k: &str| -> Result<usize, MlError> {
        md.get(&format!("{arch}.{k}"))
            .ok_or_else(|| MlError::Format(format!("GGUF metadata {arch}.{k} is missing")))?
            .to_u32()
            .map(|v| v as usize)
            .or_else(|_| md[&format!("{arch}.{k}")].to_u64().map(|v| v as usize))
            .map_err(|e| MlError::Format(format!("GGUF metadata {arch}.{k}: {e}")))
    };
    let f =
        |k: &str, d: f64| md.get(&format!("{arch}.{k}")).and_then(|v| v.to_f32().ok()).map(|v| v as f64).unwrap_or(d);
    let heads = u("attention.head_count")?;
    let hidden = u("embedding_length")?;
    let vocab = match u("vocab_size") {
        Ok(v) => v,
        Err(_) => match md.get("tokenizer.ggml.tokens") {
            Some(gguf_file::Value::Array(a)) => a.len(),
            _ => return Err(MlError::Format("GGUF has neither vocab_size nor tokenizer.ggml.tokens".into())),
        },
    };
    let tied = !content.tensor_infos.contains_key("output.weight");
    let has_bias = content.tensor_infos.contains_key("blk.0.attn_q.bias");
    let eos = md.get("tokenizer.ggml.eos_token_id").and_then(|v| v.to_u32().ok());
    let bos = md.get("tokenizer.ggml.bos_token_id").and_then(|v| v.to_u32().ok());
    let cfg = ModelConfig {
        family,
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: u("feed_forward_length")?,
        num_hidden_layers: u("block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: u("attention.head_count_kv").unwrap_or(heads),
        head_dim: u("attention.key_length").unwrap_or(hidden / heads.max(1)),
        max_position_embeddings: u("context_length").unwrap_or(2048),
        rope_theta: f("rope.freq_base", 10_000.0),
        rope_scaling: None,
        rms_norm_eps: f("attention.layer_norm_rms_epsilon", 1e-5),
        tie_word_embeddings: tied,
        qkv_bias: has_bias,
        o_bias: content.tensor_infos.contains_key("blk.0.attn_output.bias"),
        bos_token_id: bos,
        eos_token_ids: eos.into_iter().collect(),
    };
    cfg.validate()?;
    Ok(cfg)
}

/// llama.cpp names of the whole-model tensors and Hugging Face's.
const GGUF_MODEL_NAMES: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];

/// llama.cpp names of a decoder layer's parts (`blk.L.<part>.<kind>`) and
/// Hugging Face's (`model.layers.L.<part>.<kind>`).
const GGUF_LAYER_PARTS: [(&str, &str); 9] = [
    ("attn_norm", "input_layernorm"),
    ("ffn_norm", "post_attention_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// llama.cpp tensor names → Hugging Face names.
fn hf_name(g: &str) -> Option<String> {
    if let Some(&(_, h)) = GGUF_MODEL_NAMES.iter().find(|(gg, _)| *gg == g) {
        return Some(h.into());
    }
    let rest = g.strip_prefix("blk.")?;
    let (layer, tail) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, kind) = tail.rsplit_once('.')?;
    let &(_, hf) = GGUF_LAYER_PARTS.iter().find(|(gp, _)| *gp == part)?;
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// Hugging Face names → llama.cpp names.
fn gguf_name(h: &str) -> Option<String> {
    if let Some(&(g, _)) = GGUF_MODEL_NAMES.iter().find(|(_, hh)| *hh == h) {
        return Some(g.into());
    }
    let rest = h.strip_prefix("model.layers.")?;
    let (layer, tail) = rest.split_once('.')?;
    let (part, kind) = tail.rsplit_once('.')?;
    let &(g, _) = GGUF_LAYER_PARTS.iter().find(|(_, hp)| *hp == part)?;
    Some(format!("blk.{layer}.{g}.{kind}"))
}

/// llama.cpp's permutation of q/k rows for interleaved RoPE:
/// `w.reshape(h, 2, d/h/2, ...).swapaxes(1, 2).reshape(w.shape)`.
fn permute_rope(w: &Tensor, heads: usize) -> Result<Tensor, MlError> {
    let dims = w.dims().to_vec();
    let rows = dims[0];
    let rest: usize = dims[1..].iter().product();
    let half = rows / heads / 2;
    Ok(w.reshape((heads, 2, half, rest))?.transpose(1, 2)?.contiguous()?.reshape(dims)?)
}

/// The inverse of [`permute_rope`].
fn unpermute_rope(w: &Tensor, heads: usize) -> Result<Tensor, MlError> {
    let dims = w.dims().to_vec();
    let rows = dims[0];
    let rest: usize = dims[1..].iter().product();
    let half = rows / heads / 2;
    Ok(w.reshape((heads, half, 2, rest))?.transpose(1, 2)?.contiguous()?.reshape(dims)?)
}

/// Write a Hugging Face folder: `config.json`, `model.safetensors`, tokenizer files.
pub fn write_hf_folder(
    dir: &Path,
    config: &ModelConfig,
    tensors: &HashMap<String, Tensor>,
    tokenizer: &TextTokenizer,
) -> Result<(), MlError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let p = dir.join("config.json");
    std::fs::write(&p, serde_json::to_string_pretty(&config.to_hf_json()).expect("json")).map_err(io(&p))?;
    let p = dir.join("model.safetensors");
    candle_core::safetensors::save(tensors, &p).map_err(candle(&p))?;
    tokenizer.write_hf_files(dir)
}

/// The safetensors bytes of a set of named tensors (sorted by name: canonical).
pub fn safetensors_bytes(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>, MlError> {
    let mut v: Vec<(&String, &Tensor)> = tensors.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    safetensors::tensor::serialize(v, None).map_err(|e| MlError::Format(format!("safetensors: {e}")))
}
