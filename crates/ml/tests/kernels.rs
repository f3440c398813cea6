//! `ml::kernels` against the straightforward composition (candle's matmul), on
//! random and odd shapes, f32 and bf16 weights, every implementation this CPU
//! has; and the invariances serving relies on: a row's result does not depend
//! on the other rows of the batch, nor on the number of threads, bit for bit.

use candle_core::{Device, Tensor};
use half::bf16;
use ml::kernels::{self, Isa, Weights};
use ml::{KvCache, Logits, LoraAdapter, LoraConfig, Model, ModelFiles, SeqStep, Step, Target};

/// Seeded uniform values in [-1, 1).
fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut r = ml::rng::Rng::new(seed);
    (0..n).map(|_| (r.next_f64() * 2.0 - 1.0) as f32).collect()
}

fn isas() -> Vec<Isa> {
    [Isa::AvxFma, Isa::Scalar].into_iter().filter(|i| i.available()).collect()
}

/// `x Wᵀ` by candle, for `x [m, k]`, `w (n, k)`.
fn reference(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let xt = Tensor::from_slice(x, (m, k), &Device::Cpu).unwrap();
    let wt = Tensor::from_slice(w, (n, k), &Device::Cpu).unwrap();
    xt.matmul(&wt.t().unwrap()).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn assert_close(got: &[f32], want: &[f32], k: usize, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    // f32 sums of k products of values in [-1, 1] in different orders.
    let tol = 1e-6 * (k as f32) + 1e-6;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}: element {i}: {g} vs {w}");
    }
}

const SHAPES: [(usize, usize, usize); 12] = [
    // (m, k, n)
    (1, 1, 1),
    (1, 5, 3),
    (3, 8, 7),
    (17, 13, 9),
    (1, 384, 1152),
    (3, 389, 25),
    (8, 1024, 40),
    (17, 384, 100),
    (32, 100, 96),
    (33, 7, 200),
    (70, 64, 70),
    (130, 96, 31),
];

#[test]
fn linear_matches_candle_matmul_f32_and_bf16() {
    for isa in isas() {
        for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
            let x = rand_vec(m * k, 1 + s as u64);
            let w = rand_vec(n * k, 100 + s as u64);
            let mut y = vec![f32::NAN; m * n];
            kernels::linear_with(isa, &x, Weights::F32(&w), k, &mut y).unwrap();
            assert_close(&y, &reference(&x, &w, m, n, k), k, &format!("{isa:?} f32 {m}x{k}x{n}"));
            // bf16 storage: the same as f32 arithmetic on the rounded weights.
            let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
            let wr: Vec<f32> = wb.iter().map(|v| v.to_f32()).collect();
            let mut yb = vec![f32::NAN; m * n];
            kernels::linear_with(isa, &x, Weights::Bf16(&wb), k, &mut yb).unwrap();
            assert_close(&yb, &reference(&x, &wr, m, n, k), k, &format!("{isa:?} bf16 {m}x{k}x{n}"));
        }
    }
}

#[test]
fn backward_input_matches_candle_matmul() {
    for isa in isas() {
        for (s, &(m, k, n)) in SHAPES.iter().enumerate() {
            let dy = rand_vec(m * n, 7 + s as u64);
            let w = rand_vec(n * k, 300 + s as u64);
            let want: Vec<f32> = Tensor::from_slice(&dy, (m, n), &Device::Cpu)
                .unwrap()
                .matmul(&Tensor::from_slice(&w, (n, k), &Device::Cpu).unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let mut dx = vec![f32::NAN; m * k];
            kernels::linear_backward_input_with(isa, &dy, Weights::F32(&w), k, &mut dx).unwrap();
            assert_close(&dx, &want, n, &format!("{isa:?} backward f32 {m}x{k}x{n}"));
            let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
            let wr: Vec<f32> = wb.iter().map(|v| v.to_f32()).collect();
            let want_b: Vec<f32> = Tensor::from_slice(&dy, (m, n), &Device::Cpu)
                .unwrap()
                .matmul(&Tensor::from_slice(&wr, (n, k), &Device::Cpu).unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            kernels::linear_backward_input_with(isa, &dy, Weights::Bf16(&wb), k, &mut dx).unwrap();
            assert_close(&dx, &want_b, n, &format!("{isa:?} backward bf16 {m}x{k}x{n}"));
        }
    }
}

/// Every row of a 32-row product, computed alone and inside other batches,
/// is the same bits (f32 and bf16, the bf16 path widening its block in the
/// batched case and not for one row).
#[test]
fn rows_are_batch_invariant() {
    for isa in isas() {
        for &(k, n) in &[(384usize, 1152usize), (1024, 384), (389, 77), (13, 5)] {
            let m = 32;
            let x = rand_vec(m * k, k as u64);
            let w = rand_vec(n * k, n as u64);
            let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
            for weights in [Weights::F32(&w), Weights::Bf16(&wb)] {
                let mut all = vec![0.0f32; m * n];
                kernels::linear_with(isa, &x, weights, k, &mut all).unwrap();
                for i in 0..m {
                    let mut one = vec![0.0f32; n];
                    kernels::linear_with(isa, &x[i * k..(i + 1) * k], weights, k, &mut one).unwrap();
                    assert_eq!(
                        one.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        all[i * n..(i + 1) * n].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "{isa:?} {k}x{n}: row {i} alone differs from row {i} in a batch of {m}"
                    );
                }
                // A different batch around the same rows: rows 5..17 of other inputs.
                let mut x2 = rand_vec(20 * k, 99);
                x2[5 * k..17 * k].copy_from_slice(&x[..12 * k]);
                let mut y2 = vec![0.0f32; 20 * n];
                kernels::linear_with(isa, &x2, weights, k, &mut y2).unwrap();
                assert_eq!(
                    y2[5 * n..17 * n].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    all[..12 * n].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{isa:?} {k}x{n}: rows moved within another batch differ"
                );
            }
        }
    }
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let (m, k, n) = (96, 389, 515);
    let x = rand_vec(m * k, 5);
    let w = rand_vec(n * k, 6);
    let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
    let dy = rand_vec(m * n, 8);
    let run = |threads: usize, team: bool| {
        let products = || {
            let mut y = vec![0.0f32; m * n];
            let mut yb = vec![0.0f32; m * n];
            let mut dx = vec![0.0f32; m * k];
            kernels::linear(&x, Weights::F32(&w), k, &mut y).unwrap();
            kernels::linear(&x, Weights::Bf16(&wb), k, &mut yb).unwrap();
            kernels::linear_backward_input(&dy, Weights::F32(&w), k, &mut dx).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            (bits(&y), bits(&yb), bits(&dx))
        };
        // As a model step runs them: regions of one team of the pool's threads.
        in_pool(threads, || if team { kernels::with_team(products) } else { products() })
    };
    let one = run(1, false);
    for t in [2, 3] {
        assert!(run(t, false) == one, "{t} threads give other bits than 1 thread");
        assert!(run(t, true) == one, "{t} threads as a team give other bits than 1 thread");
    }
}

#[test]
fn implementations_agree() {
    // The scalar fallback and the vector paths compute the same sums (not the same bits).
    let (m, k, n) = (5, 777, 33);
    let x = rand_vec(m * k, 11);
    let w = rand_vec(n * k, 12);
    let mut b = vec![0.0f32; m * n];
    kernels::linear_with(Isa::Scalar, &x, Weights::F32(&w), k, &mut b).unwrap();
    for isa in isas() {
        let mut a = vec![0.0f32; m * n];
        kernels::linear_with(isa, &x, Weights::F32(&w), k, &mut a).unwrap();
        assert_close(&a, &b, k, &format!("{isa:?} vs scalar"));
    }
}

#[test]
fn vector_ops_match_plain_loops() {
    for len in [0usize, 1, 7, 8, 9, 64, 65, 130] {
        let a = rand_vec(len, len as u64 + 1);
        let b = rand_vec(len, len as u64 + 1000);
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((kernels::dot(&a, &b) - want).abs() <= 1e-5 * (1.0 + len as f32), "dot {len}");
        let mut y = b.clone();
        kernels::axpy(0.5, &a, &mut y);
        for i in 0..len {
            assert!((y[i] - (b[i] + 0.5 * a[i])).abs() <= 1e-6, "axpy {len} at {i}");
        }
    }
    let x = rand_vec(3 * 10, 4);
    let w = rand_vec(10, 5);
    let mut out = vec![0.0; 30];
    kernels::rms_norm_rows(&x, &w, 1e-5, &mut out);
    for r in 0..3 {
        let row = &x[r * 10..(r + 1) * 10];
        let rms = (row.iter().map(|v| v * v).sum::<f32>() / 10.0 + 1e-5).sqrt();
        for i in 0..10 {
            assert!((out[r * 10 + i] - row[i] / rms * w[i]).abs() < 1e-5);
        }
    }
    let mut g = vec![-2.0f32, 0.0, 3.0];
    kernels::silu_mul_in_place(&mut g, &[1.0, 5.0, 2.0]);
    let silu = |v: f32| v / (1.0 + (-v).exp());
    assert_eq!(g, vec![silu(-2.0), 0.0, silu(3.0) * 2.0]);
    assert_eq!(kernels::argmax_rows(&[1.0, 3.0, 3.0, 0.0, -1.0, -2.0], 3), vec![1, 0]);
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let mut y = vec![0.0f32; 4];
    let w = vec![0.0f32; 6];
    assert!(kernels::linear(&[0.0; 5], Weights::F32(&w), 3, &mut y).is_err(), "x not rows of k");
    assert!(kernels::linear(&[0.0; 6], Weights::F32(&w), 3, &mut [0.0; 3]).is_err(), "y of the wrong size");
    assert!(kernels::linear(&[0.0; 6], Weights::F32(&w), 0, &mut y).is_err(), "k = 0");
    assert!(kernels::linear_backward_input(&[0.0; 3], Weights::F32(&w), 3, &mut y).is_err());
    let mut ok = vec![0.0f32; 4];
    kernels::linear(&[0.0; 6], Weights::F32(&w), 3, &mut ok).unwrap();
}

fn tiny_llama() -> (ModelFiles, Model) {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny-llama");
    let f = ModelFiles::open(&p).unwrap();
    let m = Model::from_files(&f).unwrap();
    (f, m)
}

/// The serving forward: a sequence's logits in a batch with others (and
/// with an adapter group beside it) equal its logits alone, bit for bit,
/// for f32 and bf16 weights, at 1 and 2 threads.
#[test]
fn serving_logits_are_batch_invariant_and_thread_independent() {
    let (_, f32_model) = tiny_llama();
    let cfg = LoraConfig { r: 2, lora_alpha: 4.0, lora_dropout: 0.0, target_modules: vec![Target::Q, Target::V] };
    let adapter = LoraAdapter::random(cfg, &f32_model.config, 3, 0.05).unwrap();
    let bf = f32_model.clone().into_bf16_weights().unwrap();
    assert!(bf.linear_weight_bytes() * 2 == f32_model.linear_weight_bytes());
    let prompts: Vec<Vec<u32>> =
        (0..9).map(|i| (0..(3 + i % 4)).map(|j| (i * 37 + j * 11) as u32 % 250).collect()).collect();
    for model in [&f32_model, &bf] {
        let solo = |i: usize, a: Option<usize>| -> Vec<u32> {
            let mut cache = KvCache::for_tokens(&model.config, 64, 4);
            let s = Step { seqs: vec![SeqStep { seq: 1, tokens: &prompts[i], adapter: a, logits: Logits::Last }] };
            let o = model.forward(&s, &mut cache, &[&adapter]).unwrap();
            o.last(0).unwrap().iter().map(|v| v.to_bits()).collect()
        };
        let batched = || -> Vec<Vec<u32>> {
            let mut cache = KvCache::new(&model.config, 4, 64);
            let s = Step {
                seqs: prompts
                    .iter()
                    .enumerate()
                    .map(|(i, p)| SeqStep {
                        seq: i as u64,
                        tokens: p,
                        adapter: (i % 3 == 0).then_some(0),
                        logits: Logits::Last,
                    })
                    .collect(),
            };
            let o = model.forward(&s, &mut cache, &[&adapter]).unwrap();
            (0..prompts.len()).map(|i| o.last(i).unwrap().iter().map(|v| v.to_bits()).collect()).collect()
        };
        let one = in_pool(1, batched);
        assert_eq!(in_pool(2, batched), one, "the thread count changes the logits");
        for (i, row) in one.iter().enumerate() {
            assert_eq!(&solo(i, (i % 3 == 0).then_some(0)), row, "sequence {i}: batched logits differ from solo");
        }
    }
}

/// bf16 weights: logits close to f32's (the weights are rounded to 8 bits of
/// mantissa, nothing else changes); training still runs on such a model.
#[test]
fn bf16_weights_stay_close_to_f32() {
    let (_, m) = tiny_llama();
    let bf = m.clone().into_bf16_weights().unwrap();
    let toks = [5u32, 77, 200, 12, 9, 33];
    let run = |model: &Model| {
        let mut cache = KvCache::for_tokens(&model.config, 16, 4);
        let s = Step { seqs: vec![SeqStep { seq: 0, tokens: &toks, adapter: None, logits: Logits::All }] };
        model.forward(&s, &mut cache, &[]).unwrap().rows(0).unwrap()
    };
    let (a, b) = (run(&m), run(&bf));
    let scale = a.iter().flatten().map(|v| v.abs()).fold(0.0f32, f32::max);
    let diff = a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(diff > 0.0, "bf16 weights changed nothing: were they converted?");
    assert!(diff < 0.02 * scale.max(1.0), "bf16 logits differ by {diff} (scale {scale})");
    let t = Tensor::from_slice(&toks, (1, toks.len()), &Device::Cpu).unwrap();
    let lt = bf.forward_train(&t, None, ml::BaseGrad::Frozen, None).unwrap();
    assert_eq!(lt.dims(), &[1, toks.len(), m.config.vocab_size]);
}
