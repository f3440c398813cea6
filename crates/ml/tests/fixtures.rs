//! The `ml` crate against the reference implementations: golden logits,
//! greedy continuations, LoRA gradients and tokenizations that PyTorch,
//! transformers and PEFT computed on the committed fixtures
//! (`crates/ml/fixtures`, made by `scripts/fixtures/make_fixtures.py`).

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use ml::{
    AdapterDtype, BaseGrad, ChatMessage, KvCache, Logits, LoraAdapter, LoraConfig, Model, ModelFiles, SamplingParams,
    SeqStep, Step, Target,
};
use primitives::B256;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn golden(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name).join("golden.json")).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

fn load(name: &str) -> (ModelFiles, Model) {
    let f = ModelFiles::open(&fixture(name)).unwrap();
    let m = Model::from_files(&f).unwrap();
    (f, m)
}

/// Logits of every position through the serving path (paged cache) and the training path.
fn both_paths(m: &Model, adapter: Option<&LoraAdapter>, tokens: &[u32]) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut cache = KvCache::for_tokens(&m.config, tokens.len(), 4);
    let adapters: Vec<&LoraAdapter> = adapter.into_iter().collect();
    let step = Step { seqs: vec![SeqStep { seq: 7, tokens, adapter: adapter.map(|_| 0), logits: Logits::All }] };
    let serve = m.forward(&step, &mut cache, &adapters).unwrap().rows(0).unwrap();
    let vars = adapter.map(|a| a.to_vars().unwrap());
    let t = Tensor::from_slice(tokens, (1, tokens.len()), &Device::Cpu).unwrap();
    let train = m.forward_train(&t, vars.as_ref(), BaseGrad::Frozen, None).unwrap().squeeze(0).unwrap();
    (serve, train.to_vec2::<f32>().unwrap())
}

fn check_logits(name: &str, m: &Model, adapter: Option<&LoraAdapter>, g: &Value) {
    for s in g["sequences"].as_array().unwrap() {
        let toks = ids(&s["input_ids"]);
        let want = rows(&s["logits"]);
        let (serve, train) = both_paths(m, adapter, &toks);
        let (d1, d2) = (max_diff(&serve, &want), max_diff(&train, &want));
        assert!(d1 < 1e-4, "{name}, {} tokens: serving path differs from the reference by {d1}", toks.len());
        assert!(d2 < 1e-4, "{name}, {} tokens: training path differs from the reference by {d2}", toks.len());
    }
}

#[test]
fn llama_logits_match_transformers() {
    let (_, m) = load("tiny-llama");
    check_logits("tiny-llama", &m, None, &golden("tiny-llama"));
}

#[test]
fn qwen2_logits_match_transformers() {
    let (f, m) = load("tiny-qwen2");
    assert!(f.config.qkv_bias && f.config.tie_word_embeddings);
    check_logits("tiny-qwen2", &m, None, &golden("tiny-qwen2"));
}

#[test]
fn peft_adapter_logits_match_peft() {
    let (_, m) = load("tiny-llama");
    let a = LoraAdapter::load_peft(&fixture("peft-adapter"), &m.config).unwrap();
    assert_eq!(a.config.r, 4);
    assert_eq!(a.config.target_modules.len(), 7);
    check_logits("tiny-llama + PEFT adapter", &m, Some(&a), &golden("peft-adapter"));
}

/// The adapter hash, streamed from the tensors in place, is blake3 over the
/// PEFT tensors' bytes as copied out (`primitives::model_hash::adapter_hash`),
/// for f32 and for another dtype, and it sees a one-bit change.
#[test]
fn an_adapter_hashes_as_its_copied_tensors() {
    use primitives::model_hash::{TensorRef, adapter_hash};
    let (_, m) = load("tiny-llama");
    let a = LoraAdapter::load_peft(&fixture("peft-adapter"), &m.config).unwrap();
    let by_copies = |a: &LoraAdapter| {
        let enc: Vec<_> = a
            .named_tensors()
            .into_iter()
            .map(|(n, t)| {
                let (dtype, bytes) = ml::tensor_bytes(&t).unwrap();
                (n, dtype, t.dims().to_vec(), bytes)
            })
            .collect();
        let cfg = primitives::B256::from(*blake3::hash(a.config.to_peft_json("").as_bytes()).as_bytes());
        adapter_hash(enc.iter().map(|(n, d, s, b)| TensorRef { name: n, dtype: d, shape: s, data: b }), &cfg)
    };
    assert_eq!(a.compute_hash().unwrap(), by_copies(&a));
    assert_eq!(a.hash, by_copies(&a));
    let mut b = a.clone();
    let p = b.layers[1].values_mut().next().unwrap();
    p.b = p.b.to_dtype(candle_core::DType::BF16).unwrap();
    assert_eq!(b.compute_hash().unwrap(), by_copies(&b), "a bf16 tensor is copied and hashed as BF16");
    let mut c = a.clone();
    let p = c.layers[0].values_mut().next().unwrap();
    let mut v = p.a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v[3] = f32::from_bits(v[3].to_bits() ^ 1);
    p.a = Tensor::from_vec(v, p.a.dims(), &Device::Cpu).unwrap();
    assert_ne!(c.compute_hash().unwrap(), a.hash, "one bit changes the hash");
}

fn greedy(m: &Model, f: &ModelFiles, a: Option<&LoraAdapter>, prompt: &[u32], n: usize) -> Vec<u32> {
    let p = SamplingParams { max_tokens: n, ..Default::default() };
    // The fixture's eos is token 2; the reference generated without stopping.
    let mut tok = f.tokenizer.clone();
    tok.eos_token = None;
    let mut cfg = m.clone();
    cfg.config.eos_token_ids.clear();
    ml::generate(&cfg, &tok, a, prompt, &p, |_| true).unwrap().tokens
}

#[test]
fn greedy_continuations_match_transformers_generate() {
    let (f, m) = load("tiny-llama");
    let g = golden("tiny-llama");
    let gen_ = &g["generation"];
    assert_eq!(greedy(&m, &f, None, &ids(&gen_["input_ids"]), 16), ids(&gen_["new_tokens"]));
    let a = LoraAdapter::load_peft(&fixture("peft-adapter"), &m.config).unwrap();
    let gp = &golden("peft-adapter")["generation"];
    assert_eq!(greedy(&m, &f, Some(&a), &ids(&gp["input_ids"]), 16), ids(&gp["new_tokens"]));
    let (fq, mq) = load("tiny-qwen2");
    let gq = &golden("tiny-qwen2")["generation"];
    assert_eq!(greedy(&mq, &fq, None, &ids(&gq["input_ids"]), 16), ids(&gq["new_tokens"]));
}

#[test]
fn lora_gradients_match_peft_backward_in_both_backward_modes() {
    let (_, m) = load("tiny-llama");
    let a = LoraAdapter::load_peft(&fixture("peft-adapter"), &m.config).unwrap();
    let g = golden("peft-adapter");
    let lg = &g["lora_grads"];
    let toks = ids(&lg["input_ids"]);
    let t = Tensor::from_slice(&toks, (1, toks.len()), &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, toks.len()), candle_core::DType::F32, &Device::Cpu).unwrap();
    for mode in [BaseGrad::Frozen, BaseGrad::Naive] {
        let vars = a.to_vars().unwrap();
        let loss = m.loss(&t, &mask, Some(&vars), mode, None).unwrap();
        let lv = loss.to_scalar::<f32>().unwrap();
        assert!((lv as f64 - lg["loss"].as_f64().unwrap()).abs() < 1e-4, "{mode:?}: loss {lv}");
        let grads = loss.backward().unwrap();
        let named: Vec<(String, &candle_core::Var)> = {
            let mut v = Vec::new();
            for (l, layer) in vars.layers.iter().enumerate() {
                for (tg, (va, vb)) in layer {
                    let p = format!("base_model.model.model.layers.{l}.{}", tg.path());
                    v.push((format!("{p}.lora_A.weight"), va));
                    v.push((format!("{p}.lora_B.weight"), vb));
                }
            }
            v
        };
        assert_eq!(named.len(), lg["grads"].as_object().unwrap().len());
        for (name, var) in named {
            let ours = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let want: Vec<f32> =
                lg["grads"][&name].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            let d = ours.iter().zip(&want).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
            let scale = want.iter().map(|x| x.abs()).fold(0.0, f32::max).max(1e-3);
            assert!(d / scale < 1e-3, "{mode:?} {name}: gradient differs by {d} (scale {scale})");
        }
    }
    // sequence_gradients flattens the same numbers in the canonical order.
    let flat = ml::sequence_gradients(&m, &a, &toks, &vec![true; toks.len()]).unwrap();
    assert_eq!(flat.len(), a.parameter_count());
    let first = &lg["grads"]["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"];
    assert!((flat[0] - first[0].as_f64().unwrap() as f32).abs() < 1e-5);
}

#[test]
fn tokenizer_and_chat_template_match_transformers() {
    let f = ModelFiles::open(&fixture("tiny-llama")).unwrap();
    let g = golden("tiny-llama");
    let t = &g["tokenization"];
    for case in t["texts"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(f.tokenizer.encode(text, false).unwrap(), ids(&case["ids"]), "{text:?}");
        assert!(!f.tokenizer.decode(&ids(&case["ids"])).unwrap().replace("<|im_start|>", "").is_empty());
    }
    let chat = &t["chat"];
    let msgs: Vec<ChatMessage> = serde_json::from_value(chat["messages"].clone()).unwrap();
    let rendered = f.tokenizer.apply_chat_template(&msgs, true).unwrap();
    assert_eq!(rendered, chat["rendered"].as_str().unwrap());
    assert_eq!(f.tokenizer.encode(&rendered, false).unwrap(), ids(&chat["ids"]));
}

#[test]
fn gguf_written_from_safetensors_hashes_the_same_and_computes_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["tiny-llama", "tiny-qwen2"] {
        let (f, m) = load(name);
        let p = dir.path().join(format!("{name}.gguf"));
        f.write_gguf(&p).unwrap();
        let g = ModelFiles::open(&p).unwrap();
        assert_eq!(g.hash, f.hash, "{name}: the GGUF must hash as the safetensors it came from");
        assert_eq!(g.config, f.config);
        let gm = Model::from_files(&g).unwrap();
        let toks = [5u32, 77, 300, 12, 9];
        let (a, _) = both_paths(&m, None, &toks);
        let (b, _) = both_paths(&gm, None, &toks);
        assert_eq!(max_diff(&a, &b), 0.0, "{name}");
        // A quantized GGUF hashes as what it is.
        let q = dir.path().join(format!("{name}-q8.gguf"));
        write_q8(&f, &p, &q);
        let gq = ModelFiles::open(&q).unwrap();
        assert_ne!(gq.hash, f.hash);
    }
}

/// The hash is computed while the files are read, tensor by tensor in name
/// order: a model split over two safetensors files hashes as the one file,
/// and a tensor named in two files is a clear error (it used to overwrite).
#[test]
fn split_safetensors_hash_as_one_and_a_tensor_in_two_files_is_refused() {
    let src = fixture("tiny-llama");
    let want = ModelFiles::open(&src).unwrap().hash;
    let all = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() && p.extension().and_then(|x| x.to_str()) != Some("safetensors") {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    // Interleaved, so each file holds names from all over the order.
    let part = |odd: usize| -> std::collections::HashMap<String, Tensor> {
        names.iter().enumerate().filter(|(i, _)| i % 2 == odd).map(|(_, n)| ((*n).clone(), all[*n].clone())).collect()
    };
    candle_core::safetensors::save(&part(0), dir.path().join("a.safetensors")).unwrap();
    candle_core::safetensors::save(&part(1), dir.path().join("b.safetensors")).unwrap();
    assert_eq!(ModelFiles::open(dir.path()).unwrap().hash, want);
    let dup: std::collections::HashMap<String, Tensor> = [(names[0].clone(), all[names[0]].clone())].into();
    candle_core::safetensors::save(&dup, dir.path().join("c.safetensors")).unwrap();
    let err = ModelFiles::open(dir.path()).err().expect("a tensor in two files").to_string();
    assert!(err.contains("is in two files"), "{err}");
}

/// Rewrite a GGUF with its 2-D tensors in Q8_0.
fn write_q8(_f: &ModelFiles, src: &std::path::Path, dst: &std::path::Path) {
    use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
    let mut r = std::fs::File::open(src).unwrap();
    let c = gguf_file::Content::read(&mut r).unwrap();
    let mut ts = Vec::new();
    let mut names: Vec<&String> = c.tensor_infos.keys().collect();
    names.sort();
    for n in names {
        let t = c.tensor(&mut r, n, &Device::Cpu).unwrap().dequantize(&Device::Cpu).unwrap();
        let q = if t.rank() == 2 && t.dims()[1].is_multiple_of(32) {
            QTensor::quantize(&t, GgmlDType::Q8_0).unwrap()
        } else {
            QTensor::quantize(&t, GgmlDType::F32).unwrap()
        };
        ts.push((n.clone(), q));
    }
    let md: Vec<(&str, &gguf_file::Value)> = c.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tr: Vec<(&str, &QTensor)> = ts.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut w = std::fs::File::create(dst).unwrap();
    gguf_file::write(&mut w, &md, &tr).unwrap();
}

/// A rank-2 adapter on `targets` whose B is a ramp (`i / n − shift`), so it
/// changes the output (an initialised adapter's B is zero).
fn ramped_adapter(m: &Model, targets: Vec<Target>, seed: u64, shift: f64) -> LoraAdapter {
    let cfg = LoraConfig { r: 2, lora_alpha: 4.0, lora_dropout: 0.0, target_modules: targets };
    let mut a = LoraAdapter::init(cfg, &m.config, seed).unwrap();
    for layer in &mut a.layers {
        for p in layer.values_mut() {
            let n = p.b.elem_count();
            let ramp = Tensor::arange(0u32, n as u32, &Device::Cpu).unwrap().to_dtype(candle_core::DType::F32).unwrap();
            p.b = ((ramp / n as f64).unwrap() - shift).unwrap().reshape(p.b.dims()).unwrap();
        }
    }
    a
}

/// A prefill of several sequences, each with its own adapter (or none), gives
/// every sequence the very logits, bit for bit, of its run alone, whatever the
/// thread count: the low-rank products run rows in parallel, each row alone.
#[test]
fn mixed_adapter_logits_are_bit_identical_to_solo_runs_at_any_thread_count() {
    let (_, m) = load("tiny-llama");
    let peft = LoraAdapter::load_peft(&fixture("peft-adapter"), &m.config).unwrap();
    let other = ramped_adapter(&m, Target::ALL.to_vec(), 5, 0.25);
    let adapters = [&peft, &other];
    let prompts: Vec<(Vec<u32>, Option<usize>)> =
        vec![(vec![10, 20, 30], Some(1)), (vec![7, 8], None), (vec![300, 301, 302, 303], Some(0)), (vec![44], Some(1))];
    let run = |threads: usize, batch: &[usize]| -> Vec<Vec<f32>> {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
            let mut cache = KvCache::for_tokens(&m.config, 64, 8);
            let s = Step {
                seqs: batch
                    .iter()
                    .map(|&i| SeqStep {
                        seq: i as u64,
                        tokens: &prompts[i].0,
                        adapter: prompts[i].1,
                        logits: Logits::All,
                    })
                    .collect(),
            };
            let o = m.forward(&s, &mut cache, &adapters).unwrap();
            (0..batch.len()).map(|k| o.rows(k).unwrap().concat()).collect()
        })
    };
    let solo: Vec<Vec<f32>> = (0..prompts.len()).map(|i| run(1, &[i]).remove(0)).collect();
    for threads in [1, 2, 3] {
        let all = run(threads, &[0, 1, 2, 3]);
        for (i, l) in all.iter().enumerate() {
            let same = l.iter().zip(&solo[i]).all(|(a, b)| a.to_bits() == b.to_bits()) && l.len() == solo[i].len();
            assert!(same, "sequence {i} at {threads} threads differs from its solo run");
        }
    }
    // The adapters matter: sequence 0 without its adapter gives other logits.
    let plain = {
        let mut cache = KvCache::for_tokens(&m.config, 64, 8);
        let s = Step { seqs: vec![SeqStep { seq: 0, tokens: &prompts[0].0, adapter: None, logits: Logits::All }] };
        m.forward(&s, &mut cache, &[]).unwrap().rows(0).unwrap().concat()
    };
    assert_ne!(plain, solo[0]);
}

#[test]
fn mixed_adapter_batches_equal_solo_runs() {
    let (_, m) = load("tiny-llama");
    let peft = LoraAdapter::load_peft(&fixture("peft-adapter"), &m.config).unwrap();
    let other = ramped_adapter(&m, vec![Target::Q, Target::V], 9, 0.5);
    let adapters = [&peft, &other];
    let prompts: Vec<(Vec<u32>, Option<usize>)> = vec![
        (vec![10, 20, 30, 40, 50], Some(0)),
        (vec![7, 8], None),
        (vec![300, 301, 302, 303, 304, 305, 306, 307, 308], Some(1)),
        (vec![44, 81, 263], Some(0)),
    ];
    let solo: Vec<Vec<u32>> = prompts
        .iter()
        .map(|(p, a)| {
            let mut cache = KvCache::for_tokens(&m.config, 64, 4);
            let mut out = vec![];
            let mut input = p.clone();
            let ads: Vec<&LoraAdapter> = adapters.to_vec();
            for _ in 0..8 {
                let s = Step { seqs: vec![SeqStep { seq: 1, tokens: &input, adapter: *a, logits: Logits::Last }] };
                let o = m.forward(&s, &mut cache, &ads).unwrap();
                let t = ml::argmax(&o.last(0).unwrap());
                out.push(t);
                input = vec![t];
            }
            out
        })
        .collect();
    // All four in one batch, with staggered joins: sequence 3 joins at step 2.
    let mut cache = KvCache::new(&m.config, 4, 64);
    let mut inputs: Vec<Vec<u32>> = prompts.iter().map(|p| p.0.clone()).collect();
    let mut outs: Vec<Vec<u32>> = vec![vec![]; 4];
    for step in 0..10 {
        let active: Vec<usize> = (0..4).filter(|&i| (i != 3 || step >= 2) && outs[i].len() < 8).collect();
        if active.is_empty() {
            break;
        }
        let s = Step {
            seqs: active
                .iter()
                .map(|&i| SeqStep { seq: i as u64, tokens: &inputs[i], adapter: prompts[i].1, logits: Logits::Last })
                .collect(),
        };
        let o = m.forward(&s, &mut cache, &adapters).unwrap();
        for (k, &i) in active.iter().enumerate() {
            let t = ml::argmax(&o.last(k).unwrap());
            outs[i].push(t);
            inputs[i] = vec![t];
        }
    }
    assert_eq!(outs, solo);
    // The adapters really change the output: the same prompt without its adapter differs.
    let base0 = {
        let mut cache = KvCache::for_tokens(&m.config, 64, 4);
        let s = Step { seqs: vec![SeqStep { seq: 1, tokens: &prompts[2].0, adapter: None, logits: Logits::Last }] };
        ml::argmax(&m.forward(&s, &mut cache, &[]).unwrap().last(0).unwrap())
    };
    let with1 = {
        let mut cache = KvCache::for_tokens(&m.config, 64, 4);
        let s = Step { seqs: vec![SeqStep { seq: 1, tokens: &prompts[2].0, adapter: Some(1), logits: Logits::Last }] };
        m.forward(&s, &mut cache, &adapters).unwrap().last(0).unwrap()
    };
    let without1 = {
        let mut cache = KvCache::for_tokens(&m.config, 64, 4);
        let s = Step { seqs: vec![SeqStep { seq: 1, tokens: &prompts[2].0, adapter: None, logits: Logits::Last }] };
        m.forward(&s, &mut cache, &[]).unwrap().last(0).unwrap()
    };
    assert!(with1.iter().zip(&without1).any(|(a, b)| (a - b).abs() > 1e-3), "adapter 1 changes nothing");
    let _ = base0;
    for i in 0..4 {
        cache.free_seq(i);
    }
    assert_eq!(cache.free_blocks(), cache.total_blocks());
}

#[test]
fn peft_files_round_trip_with_the_same_hash() {
    let (_, m) = load("tiny-llama");
    let a = LoraAdapter::load_peft(&fixture("peft-adapter"), &m.config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    a.save_peft(dir.path(), "tiny-llama").unwrap();
    let b = LoraAdapter::load_peft(dir.path(), &m.config).unwrap();
    assert_eq!(a.hash, b.hash);
    // Changing one weight changes the hash.
    let mut c = b.clone();
    let p = c.layers[0].get_mut(&Target::Q).unwrap();
    p.a = (&p.a * 1.001).unwrap();
    assert_ne!(c.compute_hash().unwrap(), a.hash);
}

/// An adapter loaded straight into the dtype a cache holds (`load_peft_as`:
/// an f32 file bound for int8 is hashed and quantized from its bytes) is what
/// loading it as f32 and converting gives: the same hash, the same weights and
/// scales, bit for bit; a bf16 file takes the general path to the same end.
/// Files that do not fit the base are refused with the tensor named.
#[test]
fn loading_straight_into_a_held_dtype_matches_converting_after() {
    let (_, m) = load("tiny-llama");
    let f32_dir = fixture("peft-adapter");
    let bf16_dir = tempfile::tempdir().unwrap();
    let a = LoraAdapter::load_peft(&f32_dir, &m.config).unwrap();
    a.with_weights_dtype(AdapterDtype::Bf16).unwrap().save_peft(bf16_dir.path(), "tiny-llama").unwrap();
    let bits = |t: &Tensor| -> Vec<u32> {
        t.to_dtype(candle_core::DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    for dir in [f32_dir.as_path(), bf16_dir.path()] {
        for dtype in [AdapterDtype::F32, AdapterDtype::Bf16, AdapterDtype::I8] {
            let direct = LoraAdapter::load_peft_as(dir, &m.config, dtype).unwrap();
            let after = LoraAdapter::load_peft(dir, &m.config).unwrap().with_weights_dtype(dtype).unwrap();
            assert_eq!(direct.hash, after.hash, "{dtype:?} from {}", dir.display());
            assert_eq!(direct.byte_size(), after.byte_size());
            for (x, y) in direct.layers.iter().zip(&after.layers) {
                assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
                for (p, q) in x.values().zip(y.values()) {
                    assert_eq!(
                        (p.a.dtype(), p.b.dtype(), p.a.dims(), p.b.dims()),
                        (q.a.dtype(), q.b.dtype(), q.a.dims(), q.b.dims())
                    );
                    assert_eq!(p.scales, q.scales);
                    let ((pa, pb), (qa, qb)) = (p.to_f32().unwrap(), q.to_f32().unwrap());
                    assert_eq!((bits(&pa), bits(&pb)), (bits(&qa), bits(&qb)));
                }
            }
        }
    }
    // The f32 file's own hash whichever way it is held.
    assert_eq!(LoraAdapter::load_peft_as(&f32_dir, &m.config, AdapterDtype::I8).unwrap().hash, a.hash);
    // A tensor missing, one too many, one of the wrong shape, a truncated file.
    let cfg = std::fs::read_to_string(f32_dir.join("adapter_config.json")).unwrap();
    let cfg = LoraConfig::from_peft_json(&cfg).unwrap();
    let mut named: std::collections::HashMap<String, Tensor> = a.named_tensors().into_iter().collect();
    let bytes = |named: &std::collections::HashMap<String, Tensor>| {
        let d = tempfile::tempdir().unwrap();
        candle_core::safetensors::save(named, d.path().join("a.safetensors")).unwrap();
        std::fs::read(d.path().join("a.safetensors")).unwrap()
    };
    let refused = |b: &[u8]| {
        [AdapterDtype::F32, AdapterDtype::I8]
            .map(|d| LoraAdapter::from_parts_as(cfg.clone(), b, &m.config, d).unwrap_err().to_string())
    };
    let first = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".to_string();
    let t = named.remove(&first).unwrap();
    for e in refused(&bytes(&named)) {
        assert!(e.contains(&format!("{first} is missing")), "{e}");
    }
    named.insert(first.clone(), Tensor::zeros((cfg.r, 3), candle_core::DType::F32, &Device::Cpu).unwrap());
    for e in refused(&bytes(&named)) {
        assert!(e.contains("another base model"), "{e}");
    }
    named.insert(first, t);
    named.insert(
        "base_model.model.lm_head.lora_A.weight".into(),
        Tensor::zeros((2, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    for e in refused(&bytes(&named)) {
        assert!(e.contains("lm_head.lora_A.weight matches no layer"), "{e}");
    }
    let whole = std::fs::read(f32_dir.join("adapter_model.safetensors")).unwrap();
    for e in refused(&whole[..whole.len() - 3]) {
        assert!(e.contains("adapter_model.safetensors"), "{e}");
    }
}

#[test]
fn a_held_form_file_reads_back_as_held_and_refuses_what_is_not_it() {
    let (_, m) = load("tiny-llama");
    let held = LoraAdapter::load_peft_as(&fixture("peft-adapter"), &m.config, AdapterDtype::I8).unwrap();
    let file = held.to_held_file().unwrap();
    let back = LoraAdapter::from_held_file(&file, &m.config, &held.hash).unwrap();
    assert_eq!((back.hash, &back.config, back.byte_size()), (held.hash, &held.config, held.byte_size()));
    for (x, y) in back.layers.iter().zip(&held.layers) {
        assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
        for (p, r) in x.values().zip(y.values()) {
            assert_eq!((p.a.dims(), p.b.dims()), (r.a.dims(), r.b.dims()));
            let u8s = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<u8>().unwrap();
            assert_eq!((u8s(&p.a), u8s(&p.b)), (u8s(&r.a), u8s(&r.b)));
            assert_eq!(p.scales, r.scales);
        }
    }
    // Only int8 adapters have a held form.
    let dense = LoraAdapter::load_peft(&fixture("peft-adapter"), &m.config).unwrap();
    assert!(dense.to_held_file().unwrap_err().to_string().contains("int8 adapters only"));
    let err = |b: &[u8], model: &ml::ModelConfig, hash: &B256| {
        LoraAdapter::from_held_file(b, model, hash).unwrap_err().to_string()
    };
    // Another adapter asked for; a file for another base model.
    assert!(err(&file, &m.config, &B256::repeat_byte(7)).contains("was asked for"));
    let mut wider = m.config.clone();
    wider.intermediate_size += 16;
    let other = err(&file, &wider, &held.hash);
    assert!(other.contains("tensor 0.down_proj.a is U8 [176, 4], U8 [192, 4] expected"), "{other}");
    let mut deeper = m.config.clone();
    deeper.num_hidden_layers += 1;
    assert!(err(&file, &deeper, &held.hash).contains("the config needs"));
    // Damage anywhere: a flipped byte in the body, a truncated file, another format.
    let mut flipped = file.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 1;
    assert!(err(&flipped, &m.config, &held.hash).contains("checksum mismatch"));
    assert!(err(&file[..file.len() - 1], &m.config, &held.hash).contains("checksum mismatch"));
    assert!(err(&file[..20], &m.config, &held.hash).contains("not a held-form file"));
    assert!(err(b"", &m.config, &held.hash).contains("not a held-form file"));
}

#[test]
fn refusals_are_clear_errors() {
    let (_, m) = load("tiny-llama");
    let (_, q) = load("tiny-qwen2");
    let rank0 = LoraConfig { r: 0, lora_alpha: 1.0, lora_dropout: 0.0, target_modules: vec![Target::Q] };
    assert!(LoraAdapter::init(rank0, &m.config, 1).unwrap_err().to_string().contains("rank must be at least 1"));
    let big = LoraConfig { r: 65, lora_alpha: 1.0, lora_dropout: 0.0, target_modules: vec![Target::Q] };
    assert!(LoraAdapter::init(big, &m.config, 1).unwrap_err().to_string().contains("larger than"));
    // An adapter for one base refused on another of other shape.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"model_type":"llama","vocab_size":512,"hidden_size":32,
        "intermediate_size":64,"num_hidden_layers":2,"num_attention_heads":2,"num_key_value_heads":1}"#,
    )
    .unwrap();
    let other: ml::ModelConfig =
        ml::ModelConfig::from_hf_json(&std::fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
    let e = LoraAdapter::load_peft(&fixture("peft-adapter"), &other).unwrap_err().to_string();
    assert!(e.contains("another base model") || e.contains("larger than"), "{e}");
    // Sequence beyond the context.
    let long = vec![1u32; m.config.max_position_embeddings + 1];
    let mut cache = KvCache::for_tokens(&m.config, long.len(), 16);
    let s = Step { seqs: vec![SeqStep { seq: 0, tokens: &long, adapter: None, logits: Logits::Last }] };
    assert!(matches!(m.forward(&s, &mut cache, &[]), Err(ml::MlError::ContextFull { .. })));
    // Token outside the vocabulary.
    let s = Step { seqs: vec![SeqStep { seq: 0, tokens: &[600], adapter: None, logits: Logits::Last }] };
    assert!(m.forward(&s, &mut cache, &[]).unwrap_err().to_string().contains("outside the vocabulary"));
    // A full cache refuses and leaves the cache as it was.
    let mut small = KvCache::new(&m.config, 4, 1);
    let s = Step { seqs: vec![SeqStep { seq: 0, tokens: &[1, 2, 3, 4, 5], adapter: None, logits: Logits::Last }] };
    assert!(matches!(m.forward(&s, &mut small, &[]), Err(ml::MlError::KvFull { .. })));
    assert_eq!(small.free_blocks(), 1);
    // Missing model, non-model file.
    assert!(matches!(ModelFiles::open(std::path::Path::new("/nonexistent/model")), Err(ml::MlError::NotFound(_))));
    let _ = q;
}

/// `Model::embed` is the mean of the final normed hidden states: recover each
/// position's state from the embeddings of successive prefixes and check that it
/// gives the serving path's logits through the (tied) head.
#[test]
fn embed_mean_pools_the_final_normed_hidden_states() {
    let (_, m) = load("tiny-qwen2");
    assert!(m.config.tie_word_embeddings);
    let tokens: Vec<u32> = (0..6u32).map(|i| (i * 37 + 11) % m.config.vocab_size as u32).collect();
    let mut cache = KvCache::for_tokens(&m.config, tokens.len(), 4);
    let step = Step { seqs: vec![SeqStep { seq: 1, tokens: &tokens, adapter: None, logits: Logits::All }] };
    let logits = m.forward(&step, &mut cache, &[]).unwrap().rows(0).unwrap();
    let head = m.embeddings().unwrap().to_vec2::<f32>().unwrap();
    let means: Vec<Vec<f32>> = (1..=tokens.len()).map(|n| m.embed(&tokens[..n]).unwrap()).collect();
    assert!(means.iter().all(|v| v.len() == m.config.hidden_size && v.iter().all(|x| x.is_finite())));
    let mut via_embed = Vec::new();
    for i in 0..tokens.len() {
        let state: Vec<f32> = (0..m.config.hidden_size)
            .map(|j| (i + 1) as f32 * means[i][j] - if i == 0 { 0.0 } else { i as f32 * means[i - 1][j] })
            .collect();
        via_embed.push(head.iter().map(|row| row.iter().zip(&state).map(|(a, b)| a * b).sum()).collect::<Vec<f32>>());
    }
    assert!(max_diff(&logits, &via_embed) < 1e-3, "{}", max_diff(&logits, &via_embed));
    assert_eq!(m.embed(&tokens).unwrap(), means[tokens.len() - 1], "deterministic");
    assert!(m.embed(&[]).is_err());
}
