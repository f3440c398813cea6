//! Products with quantized weights (`ml::kernels::linear_q`): against a naive
//! loop written from ggml's block layouts (bit for bit: the block products are
//! integer sums, and the loop combines them in the documented order), against
//! the f32 kernels on the dequantized weights (within the activation
//! quantization's error bound), across implementations, thread counts and
//! batches; and quantized GGUF files through the model.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use half::f16;
use ml::kernels::{self, QK, QMatrix, QuantIsa, QuantType, Weights};

fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut r = ml::rng::Rng::new(seed);
    (0..n).map(|_| (r.next_f64() * 2.0 - 1.0) as f32).collect()
}

const TYPES: [(QuantType, GgmlDType); 3] =
    [(QuantType::Q8_0, GgmlDType::Q8_0), (QuantType::Q4_0, GgmlDType::Q4_0), (QuantType::Q4_1, GgmlDType::Q4_1)];

/// (m, k, n): single rows, odd row counts, tiles of 1–4 rows, several tasks.
const SHAPES: [(usize, usize, usize); 7] =
    [(1, 32, 1), (1, 64, 7), (2, 96, 33), (3, 576, 65), (5, 32, 300), (9, 160, 17), (70, 128, 40)];

/// `n × k` seeded weights quantized by candle (ggml's reference quantizers).
fn quantized(ty: (QuantType, GgmlDType), n: usize, k: usize, seed: u64) -> QMatrix {
    let w = Tensor::from_vec(rand_vec(n * k, seed), (n, k), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&w, ty.1).unwrap();
    QMatrix::new(ty.0, n, k, q.data().unwrap().into_owned()).unwrap()
}

fn isas() -> Vec<QuantIsa> {
    [QuantIsa::Avx2, QuantIsa::Scalar].into_iter().filter(|i| i.available()).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// llama.cpp's activation quantization: per block, `d = max|x| / 127`, codes
/// `round(x · 127 / max|x|)` ties to even.
fn q8(xb: &[f32]) -> (Vec<i32>, f32) {
    let amax = xb.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let id = if amax == 0.0 { 0.0 } else { 127.0 / amax };
    (xb.iter().map(|v| (v * id).round_ties_even() as i32).collect(), amax / 127.0)
}

/// One output by the naive loop: codes read byte by byte from ggml's layouts.
fn naive_dot(ty: QuantType, row: &[u8], x: &[f32]) -> f32 {
    let f = |lo: u8, hi: u8| f16::from_bits(u16::from_le_bytes([lo, hi])).to_f32();
    let mut lanes = [0.0f32; 8];
    let mut summ = 0.0f32;
    for (b, blk) in row.chunks_exact(ty.block_bytes()).enumerate() {
        let (xq, dx) = q8(&x[b * QK..(b + 1) * QK]);
        let d = f(blk[0], blk[1]);
        let code = |e: usize| -> i32 {
            match ty {
                QuantType::Q8_0 => blk[2 + e] as i8 as i32,
                QuantType::Q4_0 => (if e < 16 { blk[2 + e] & 15 } else { blk[2 + e - 16] >> 4 }) as i32 - 8,
                QuantType::Q4_1 => (if e < 16 { blk[4 + e] & 15 } else { blk[4 + e - 16] >> 4 }) as i32,
            }
        };
        for (l, lane) in lanes.iter_mut().enumerate() {
            let s: i32 = (4 * l..4 * l + 4).map(|e| code(e) * xq[e]).sum();
            *lane += (d * dx) * s as f32;
        }
        if ty == QuantType::Q4_1 {
            summ += f(blk[2], blk[3]) * (dx * xq.iter().sum::<i32>() as f32);
        }
    }
    let s = [lanes[0] + lanes[4], lanes[1] + lanes[5], lanes[2] + lanes[6], lanes[3] + lanes[7]];
    ((s[0] + s[2]) + (s[1] + s[3])) + summ
}

fn run(isa: QuantIsa, x: &[f32], w: &QMatrix) -> Vec<f32> {
    let mut y = vec![f32::NAN; x.len() / w.cols() * w.rows()];
    kernels::linear_q_with(isa, x, w, &mut y).unwrap();
    y
}

#[test]
fn every_implementation_equals_the_naive_loop_bit_for_bit() {
    for ty in TYPES {
        for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
            let w = quantized(ty, n, k, 100 + s as u64);
            let x = rand_vec(m * k, 1 + s as u64);
            let rb = w.data().len() / n;
            let want: Vec<f32> = (0..m)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .map(|(i, j)| naive_dot(ty.0, &w.data()[j * rb..(j + 1) * rb], &x[i * k..(i + 1) * k]))
                .collect();
            for isa in isas() {
                assert_eq!(bits(&run(isa, &x, &w)), bits(&want), "{:?} {isa:?} {m}x{k}x{n}", ty.0);
            }
        }
    }
}

/// The only difference from the f32 path on the dequantized weights is the
/// activations' rounding: at most half a step `d_x / 2` per element, so
/// `|y_q − y_f32| ≤ Σ_i |w_i| · d_x(i) / 2` (plus f32 rounding, 1e-5 relative).
/// The same bound holds for every format; the measured error is far inside it.
#[test]
fn products_stay_within_the_activation_rounding_bound_of_the_f32_path() {
    for ty in TYPES {
        let (m, k, n) = (4, 576, 96);
        let w = quantized(ty, n, k, 7);
        let wf = w.dequantize();
        let x = rand_vec(m * k, 8);
        let mut yf = vec![0.0f32; m * n];
        kernels::linear(&x, Weights::F32(&wf), k, &mut yf).unwrap();
        let yq = run(QuantIsa::detect(), &x, &w);
        let mut worst = 0.0f32;
        for i in 0..m {
            for j in 0..n {
                let xr = &x[i * k..(i + 1) * k];
                let bound: f32 = (0..k).map(|c| wf[j * k + c].abs() * q8(&xr[c / QK * QK..][..QK]).1 / 2.0).sum();
                let err = (yq[i * n + j] - yf[i * n + j]).abs();
                assert!(
                    err <= bound * 1.001 + 1e-5 * (1.0 + yf[i * n + j].abs()),
                    "{:?} ({i},{j}): {err} > {bound}",
                    ty.0
                );
                worst = worst.max(err / bound.max(1e-12));
            }
        }
        assert!(worst > 0.0, "{:?}: no activation rounding at all?", ty.0);
    }
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

#[test]
fn results_are_batch_invariant_and_independent_of_the_thread_count() {
    for ty in TYPES {
        let (m, k, n) = (37, 192, 515);
        let w = quantized(ty, n, k, 21);
        let x = rand_vec(m * k, 22);
        for isa in isas() {
            let one = in_pool(1, || run(isa, &x, &w));
            for t in [2, 3] {
                assert_eq!(bits(&in_pool(t, || run(isa, &x, &w))), bits(&one), "{:?} {isa:?}: {t} threads", ty.0);
            }
            // Each row alone, and rows 3..15 placed at 9..21 of another batch.
            for i in [0, 5, 36] {
                let solo = run(isa, &x[i * k..(i + 1) * k], &w);
                assert_eq!(bits(&solo), bits(&one[i * n..(i + 1) * n]), "{:?} {isa:?}: row {i} alone", ty.0);
            }
            let mut x2 = rand_vec(25 * k, 23);
            x2[9 * k..21 * k].copy_from_slice(&x[3 * k..15 * k]);
            let y2 = in_pool(2, || run(isa, &x2, &w));
            assert_eq!(bits(&y2[9 * n..21 * n]), bits(&one[3 * n..15 * n]), "{:?} {isa:?}: moved rows", ty.0);
        }
    }
}

#[test]
fn malformed_matrices_and_shapes_are_errors() {
    let bytes = |ty: QuantType, n: usize, k: usize| vec![0u8; n * k / QK * ty.block_bytes()];
    assert!(QMatrix::new(QuantType::Q4_0, 2, 48, bytes(QuantType::Q4_0, 2, 32)).is_err(), "k not a multiple of 32");
    assert!(QMatrix::new(QuantType::Q4_0, 2, 64, bytes(QuantType::Q4_0, 2, 32)).is_err(), "too few bytes");
    assert!(QMatrix::new(QuantType::Q8_0, usize::MAX / 2, 64, vec![]).is_err(), "overflowing size");
    let w = QMatrix::new(QuantType::Q4_1, 2, 64, bytes(QuantType::Q4_1, 2, 64)).unwrap();
    assert!(kernels::linear_q(&[0.0; 65], &w, &mut [0.0; 2]).is_err(), "x not rows of k");
    assert!(kernels::linear_q(&[0.0; 64], &w, &mut [0.0; 3]).is_err(), "y of the wrong size");
    assert!(w.dequantize_row(2, &mut [0.0; 64]).is_err(), "row out of range");
    assert!(w.permute_rows(|i| i + 1).is_err(), "permutation out of range");
    kernels::linear_q(&[1.0; 64], &w, &mut [0.0; 2]).unwrap();
}

// ---------------------------------------------------------------------------
// Quantized GGUF models

use ml::{KvCache, Logits, LoraAdapter, LoraConfig, Model, ModelFiles, SeqStep, Step, Target};

fn tiny_llama() -> ModelFiles {
    ModelFiles::open(&std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny-llama")).unwrap()
}

/// tiny-llama written as a GGUF quantized to `ty` (its down projection, 176
/// wide, is not whole blocks and stays f32), and the f32 model on exactly the
/// dequantized weights (written back as a Hugging Face folder).
fn quantized_and_dequantized(ty: QuantType, dir: &std::path::Path) -> (Model, Model) {
    let gguf = dir.join(format!("tiny-{}.gguf", ty.name()));
    tiny_llama().write_gguf_as(&gguf, Some(ty)).unwrap();
    let files = ModelFiles::open(&gguf).unwrap();
    assert!(files.tensors["model.layers.0.self_attn.q_proj.weight"].dtype == ty.name());
    assert!(files.tensors["model.layers.0.mlp.down_proj.weight"].dtype == "F32");
    let hf = dir.join(format!("tiny-{}-f32", ty.name()));
    files.write_hf_f32(&hf).unwrap();
    let q = Model::from_files(&files).unwrap();
    assert_eq!(q.quantized_formats(), vec![ty.name()]);
    let f = Model::from_files(&ModelFiles::open(&hf).unwrap()).unwrap();
    assert!(f.quantized_formats().is_empty());
    (q, f)
}

const PROMPT: [u32; 7] = [5, 77, 200, 12, 9, 33, 411];

fn all_logits(m: &Model, adapter: Option<&LoraAdapter>) -> Vec<Vec<f32>> {
    let mut cache = KvCache::for_tokens(&m.config, 16, 4);
    let adapters: Vec<&LoraAdapter> = adapter.into_iter().collect();
    let s = Step { seqs: vec![SeqStep { seq: 0, tokens: &PROMPT, adapter: adapter.map(|_| 0), logits: Logits::All }] };
    m.forward(&s, &mut cache, &adapters).unwrap().rows(0).unwrap()
}

fn max_abs(a: &[Vec<f32>]) -> f32 {
    a.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs()))
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().flatten().zip(b.iter().flatten()).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// Serving logits of the quantized model against the f32 path on the same
/// (dequantized) weights, with a LoRA adapter in f32 beside the base: only the
/// activations' 8-bit rounding separates them. Tolerances, as a fraction of
/// the largest logit: Q8_0 2%, Q4_0 2%, Q4_1 2% (measured here: see the
/// message). And against the original f32 weights, which catches a wrong row
/// order (llama.cpp's q/k permutation) as a gross error: Q8_0 5%, Q4_x 40%.
#[test]
fn quantized_models_serve_close_to_the_f32_path_on_their_weights() {
    let dir = tempfile::tempdir().unwrap();
    let original = Model::from_files(&tiny_llama()).unwrap();
    let cfg = LoraConfig { r: 4, lora_alpha: 8.0, lora_dropout: 0.0, target_modules: Target::ALL.to_vec() };
    let adapter = LoraAdapter::random(cfg, &original.config, 5, 0.05).unwrap();
    let reference = all_logits(&original, None);
    for (ty, vs_original) in [(QuantType::Q8_0, 0.05), (QuantType::Q4_0, 0.4), (QuantType::Q4_1, 0.4)] {
        let (q, f) = quantized_and_dequantized(ty, dir.path());
        for a in [None, Some(&adapter)] {
            let (lq, lf) = (all_logits(&q, a), all_logits(&f, a));
            let (d, scale) = (max_diff(&lq, &lf), max_abs(&lf));
            eprintln!(
                "{}: adapter {}: max |Δlogit| {d:.5} of {scale:.3} ({:.3}%)",
                ty.name(),
                a.is_some(),
                100.0 * d / scale
            );
            assert!(d > 0.0 && d <= 0.05 * scale, "{}: logits differ by {d} (scale {scale})", ty.name());
        }
        let d = max_diff(&all_logits(&q, None), &reference);
        eprintln!("{}: vs the original f32 weights: {d:.4} of {:.3}", ty.name(), max_abs(&reference));
        assert!(d <= vs_original * max_abs(&reference), "{}: {d} from the original model", ty.name());
    }
}

/// A sequence's logits from a quantized model are the same bits alone, in a
/// mixed batch (with an adapter group beside it), and at 1, 2 or 3 threads;
/// training still runs on such a model (its weights dequantized per call).
#[test]
fn quantized_serving_is_batch_invariant_and_training_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (model, dense) = quantized_and_dequantized(QuantType::Q4_1, dir.path());
    let cfg = LoraConfig { r: 2, lora_alpha: 4.0, lora_dropout: 0.0, target_modules: vec![Target::Q, Target::Down] };
    let adapter = LoraAdapter::random(cfg, &model.config, 3, 0.05).unwrap();
    let prompts: Vec<Vec<u32>> =
        (0..9).map(|i| (0..(3 + i % 4)).map(|j| (i * 37 + j * 11) as u32 % 500).collect()).collect();
    let solo = |i: usize| -> Vec<u32> {
        let mut cache = KvCache::for_tokens(&model.config, 64, 4);
        let a = i.is_multiple_of(3).then_some(0);
        let s = Step { seqs: vec![SeqStep { seq: 1, tokens: &prompts[i], adapter: a, logits: Logits::Last }] };
        bits(&model.forward(&s, &mut cache, &[&adapter]).unwrap().last(0).unwrap())
    };
    let batched = || -> Vec<Vec<u32>> {
        let mut cache = KvCache::new(&model.config, 4, 64);
        let seqs = prompts
            .iter()
            .enumerate()
            .map(|(i, p)| SeqStep {
                seq: i as u64,
                tokens: p,
                adapter: i.is_multiple_of(3).then_some(0),
                logits: Logits::Last,
            })
            .collect();
        let o = model.forward(&Step { seqs }, &mut cache, &[&adapter]).unwrap();
        (0..prompts.len()).map(|i| bits(&o.last(i).unwrap())).collect()
    };
    let one = in_pool(1, batched);
    for t in [2, 3] {
        assert_eq!(in_pool(t, batched), one, "{t} threads change the logits");
    }
    for (i, row) in one.iter().enumerate() {
        assert_eq!(&in_pool(2, || solo(i)), row, "sequence {i}: batched logits differ from solo");
    }
    let t = Tensor::from_slice(&PROMPT, (1, PROMPT.len()), &Device::Cpu).unwrap();
    let vars = adapter.to_vars().unwrap();
    let lq = model.forward_train(&t, Some(&vars), ml::BaseGrad::Frozen, None).unwrap();
    let lf = dense.forward_train(&t, Some(&vars), ml::BaseGrad::Frozen, None).unwrap();
    let d = (lq - lf).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(d < 1e-4, "training on the quantized model computes with its dequantized weights: {d}");
}

/// Where `name`'s tensor info starts in a GGUF file: its name, then dims and type.
fn tensor_info_at(bytes: &[u8], name: &str) -> usize {
    let pat = [&(name.len() as u64).to_le_bytes()[..], name.as_bytes()].concat();
    bytes.windows(pat.len()).position(|w| w == pat).expect("tensor info in the file") + pat.len()
}

/// Broken GGUF files are errors that name the problem, never panics.
#[test]
fn malformed_quantized_gguf_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.gguf");
    tiny_llama().write_gguf_as(&good, Some(QuantType::Q4_0)).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let info = tensor_info_at(&bytes, "blk.0.attn_q.weight");
    let n_dims = u32::from_le_bytes(bytes[info..info + 4].try_into().unwrap()) as usize;
    assert_eq!(n_dims, 2);
    let type_at = info + 4 + 8 * n_dims;
    let open = |name: &str, b: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, b).unwrap();
        match ModelFiles::open(&p) {
            Ok(_) => panic!("{name}: opened"),
            Err(e) => {
                eprintln!("{name}: {e}");
                e.to_string()
            }
        }
    };
    // An unknown ggml type.
    let mut b = bytes.clone();
    b[type_at..type_at + 4].copy_from_slice(&99u32.to_le_bytes());
    let e = open("unknown-type.gguf", &b);
    assert!(e.contains("99") || e.to_lowercase().contains("dtype"), "{e}");
    // Data cut short: the last tensors' bytes are missing.
    let e = open("truncated.gguf", &bytes[..bytes.len() - 100]);
    assert!(e.contains("bad model file"), "{e}");
    // A row width that is not whole blocks (64 → 48 values a row).
    let mut b = bytes.clone();
    b[info + 4..info + 12].copy_from_slice(&48u64.to_le_bytes());
    let e = open("partial-block.gguf", &b);
    assert!(e.contains("attn_q"), "{e}");
    // A shape the configuration does not imply (64 → 96 rows: more bytes than it has).
    let mut b = bytes.clone();
    b[info + 12..info + 20].copy_from_slice(&96u64.to_le_bytes());
    let e = open("wrong-rows.gguf", &b);
    assert!(e.contains("q_proj") || e.contains("attn_q"), "{e}");
}
