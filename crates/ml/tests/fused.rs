//! The fused ops of `ml::fused` against the straightforward composition of
//! candle ops (the `BaseGrad::Naive` maths) and against finite differences, on
//! random and odd shapes; the whole model's loss and LoRA gradients on the fast
//! path (`BaseGrad::Frozen`) against the naive path; and independence of the
//! rayon thread count, bit for bit.
//!
//! Tolerances: forwards agree to 1e-5 (absolute, O(1) values, f32); analytic
//! gradients agree with autograd's to 1e-4 relative to the largest entry; a
//! central finite difference (step 1e-2 along a random unit direction, the
//! loss summed in f64) agrees with the analytic directional derivative to 2%
//! (f32 round-off over a 1e-2 step is the limit there, not the maths).

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::{D, DType, Device, Tensor, Var};
use ml::fused;
use ml::rng::Rng;
use ml::{BaseGrad, LoraAdapter, LoraConfig, Model, ModelFiles, Target};

fn randn(rng: &mut Rng, dims: &[usize], scale: f64) -> Tensor {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|_| ((rng.next_f64() * 2.0 - 1.0) * scale) as f32).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

fn vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    vec(a).iter().zip(vec(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// max |a − b| / max |b| (with a floor, so an all-zero gradient compares absolutely).
fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    let scale = vec(b).iter().map(|x| x.abs()).fold(0.0, f32::max).max(1e-3);
    max_abs_diff(a, b) / scale
}

/// Σ y ∘ r in f64: a scalar whose gradient with respect to y is r.
fn probe(y: &Tensor, r: &Tensor) -> f64 {
    vec(y).iter().zip(vec(r)).map(|(a, b)| *a as f64 * b as f64).sum()
}

/// Check the analytic gradients `grads` of `f(inputs) · r` against central
/// differences along one random unit direction per input.
fn finite_difference(
    what: &str,
    inputs: &[Tensor],
    grads: &[Tensor],
    f: &dyn Fn(&[Tensor]) -> Tensor,
    r: &Tensor,
    rng: &mut Rng,
) {
    let eps = 1e-2;
    for (i, g) in grads.iter().enumerate() {
        let dir = randn(rng, inputs[i].dims(), 1.0);
        let norm = vec(&dir).iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let dir = (dir / norm).unwrap();
        let shifted = |s: f64| {
            let mut xs = inputs.to_vec();
            xs[i] = (&inputs[i] + (&dir * s).unwrap()).unwrap();
            probe(&f(&xs), r)
        };
        let numeric = (shifted(eps) - shifted(-eps)) / (2.0 * eps);
        let analytic: f64 = vec(g).iter().zip(vec(&dir)).map(|(a, b)| *a as f64 * b as f64).sum();
        let tol = 2e-2 * analytic.abs().max(numeric.abs()) + 2e-3;
        assert!(
            (numeric - analytic).abs() <= tol,
            "{what}, input {i}: finite difference {numeric} vs analytic {analytic}"
        );
    }
}

/// Gradients of `f(vars) · r` by candle's autograd.
fn grads_of(f: &dyn Fn(&[Tensor]) -> Tensor, inputs: &[Tensor], r: &Tensor) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs.iter().map(|x| Var::from_tensor(x).unwrap()).collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&ts);
    let loss = (&y * r).unwrap().sum_all().unwrap();
    let g = loss.backward().unwrap();
    (y.detach(), vars.iter().map(|v| g.get(v.as_tensor()).expect("a gradient for every input").clone()).collect())
}

/// The fused op `fast` against the candle composition `naive`: forward,
/// gradients of every input, and finite differences of the fused gradients.
fn check_op(
    what: &str,
    inputs: &[Tensor],
    fast: &dyn Fn(&[Tensor]) -> Tensor,
    naive: &dyn Fn(&[Tensor]) -> Tensor,
    rng: &mut Rng,
) {
    let yn = naive(inputs);
    let r = randn(rng, yn.dims(), 1.0);
    let (yf, gf) = grads_of(fast, inputs, &r);
    let (yn, gn) = grads_of(naive, inputs, &r);
    let d = max_abs_diff(&yf, &yn);
    assert!(d < 1e-5, "{what}: forward differs by {d}");
    for (i, (a, b)) in gf.iter().zip(&gn).enumerate() {
        let d = rel_diff(a, b);
        assert!(d < 1e-4, "{what}: gradient of input {i} differs by {d} (relative)");
    }
    finite_difference(what, inputs, &gf, fast, &r, rng);
}

// ---------------------------------------------------------------------------
// The candle compositions (the same maths as `model_train.rs`'s naive path).

fn naive_rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Tensor {
    let ms = x.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
    x.broadcast_div(&(ms + eps).unwrap().sqrt().unwrap()).unwrap().broadcast_mul(w).unwrap()
}

/// On `[b, t, h, d]`, with `cos`, `sin` `[t, d/2]`.
fn naive_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let x = x.transpose(1, 2).unwrap();
    let hd = x.dim(D::Minus1).unwrap();
    let cos = Tensor::cat(&[cos, cos], 1).unwrap();
    let sin = Tensor::cat(&[sin, sin], 1).unwrap();
    let x1 = x.narrow(D::Minus1, 0, hd / 2).unwrap();
    let x2 = x.narrow(D::Minus1, hd / 2, hd / 2).unwrap();
    let rot = Tensor::cat(&[&x2.neg().unwrap(), &x1], D::Minus1).unwrap();
    let y = (x.broadcast_mul(&cos).unwrap() + rot.broadcast_mul(&sin).unwrap()).unwrap();
    y.transpose(1, 2).unwrap().contiguous().unwrap()
}

/// On `[b, t, heads, d]` / `[b, t, kv_heads, d]`.
fn naive_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
    let (b, t, nh, d) = q.dims4().unwrap();
    let nkv = k.dim(2).unwrap();
    let n = nh / nkv;
    let rep = |x: &Tensor| {
        let x = x.transpose(1, 2).unwrap();
        x.unsqueeze(2)
            .unwrap()
            .broadcast_as((b, nkv, n, t, d))
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((b, nh, t, d))
            .unwrap()
    };
    let q = q.transpose(1, 2).unwrap().contiguous().unwrap();
    let (k, v) = (rep(k), rep(v));
    let mask: Vec<f32> =
        (0..t).flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })).collect();
    let mask = Tensor::from_vec(mask, (t, t), &Device::Cpu).unwrap();
    let att = (q.matmul(&k.t().unwrap().contiguous().unwrap()).unwrap() * (1.0 / (d as f64).sqrt())).unwrap();
    let att = candle_nn::ops::softmax(&att.broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
    att.matmul(&v).unwrap().transpose(1, 2).unwrap().contiguous().unwrap()
}

fn naive_cross_entropy(h: &Tensor, head: &Tensor, targets: &[u32], weights: &[f32]) -> Tensor {
    let logits = h.matmul(&head.t().unwrap()).unwrap();
    let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
    let t = Tensor::from_slice(targets, (targets.len(), 1), &Device::Cpu).unwrap();
    let nll = lsm.gather(&t, 1).unwrap().squeeze(1).unwrap().neg().unwrap();
    let w = Tensor::from_slice(weights, weights.len(), &Device::Cpu).unwrap();
    (nll * w).unwrap().sum_all().unwrap()
}

fn rope_tables(t: usize, half: usize) -> (Vec<f32>, Vec<f32>) {
    let mut cos = Vec::new();
    let mut sin = Vec::new();
    for p in 0..t {
        for i in 0..half {
            let a = p as f32 * 10000f32.powf(-((2 * i) as f32) / (2 * half) as f32);
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    (cos, sin)
}

// ---------------------------------------------------------------------------
// Each op

#[test]
fn rms_norm_matches_candle_and_finite_differences() {
    let mut rng = Rng::new(1);
    for dims in [vec![1, 1, 8], vec![2, 7, 16], vec![3, 5, 33], vec![130, 24]] {
        let n = *dims.last().unwrap();
        let x = randn(&mut rng, &dims, 2.0);
        // The weight is a variable here, so its gradient is checked too.
        let w = (randn(&mut rng, &[n], 0.5) + 1.0).unwrap();
        check_op(
            &format!("rms-norm {dims:?}"),
            &[x, w],
            &|a| fused::rms_norm(&a[0], &a[1], 1e-5).unwrap(),
            &|a| naive_rms_norm(&a[0], &a[1], 1e-5),
            &mut rng,
        );
    }
}

#[test]
fn rms_norm_gives_a_frozen_weight_no_gradient() {
    let mut rng = Rng::new(2);
    let x = Var::from_tensor(&randn(&mut rng, &[3, 8], 1.0)).unwrap();
    let w = randn(&mut rng, &[8], 1.0);
    let g = fused::rms_norm(x.as_tensor(), &w, 1e-5).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(g.get(x.as_tensor()).is_some());
    assert!(g.get(&w).is_none());
}

#[test]
fn rope_matches_candle_and_finite_differences() {
    let mut rng = Rng::new(3);
    for (b, t, h, d) in [(1, 1, 1, 8), (2, 7, 3, 16), (1, 5, 2, 64), (2, 3, 1, 2)] {
        let (cos, sin) = rope_tables(t, d / 2);
        let cos_t = Tensor::from_slice(&cos, (t, d / 2), &Device::Cpu).unwrap();
        let sin_t = Tensor::from_slice(&sin, (t, d / 2), &Device::Cpu).unwrap();
        let (cos, sin) = (Arc::new(cos), Arc::new(sin));
        let x = randn(&mut rng, &[b, t, h, d], 1.0);
        check_op(
            &format!("rope {:?}", (b, t, h, d)),
            &[x],
            &|a| fused::rope(&a[0], cos.clone(), sin.clone()).unwrap(),
            &|a| naive_rope(&a[0], &cos_t, &sin_t),
            &mut rng,
        );
    }
}

#[test]
fn attention_matches_candle_and_finite_differences() {
    let mut rng = Rng::new(4);
    // (batch, time, heads, kv heads, head_dim): t = 1 and odd t, GQA groups 1, 3 and 2.
    for (b, t, nh, nkv, d) in [(1, 1, 1, 1, 8), (2, 7, 3, 1, 16), (1, 9, 6, 2, 8), (2, 5, 4, 4, 16), (1, 33, 4, 2, 8)] {
        let q = randn(&mut rng, &[b, t, nh, d], 1.0);
        let k = randn(&mut rng, &[b, t, nkv, d], 1.0);
        let v = randn(&mut rng, &[b, t, nkv, d], 1.0);
        check_op(
            &format!("attention {:?}", (b, t, nh, nkv, d)),
            &[q, k, v],
            &|a| fused::causal_attention(&a[0], &a[1], &a[2]).unwrap(),
            &|a| naive_attention(&a[0], &a[1], &a[2]),
            &mut rng,
        );
    }
}

#[test]
fn attention_refuses_shapes_that_do_not_fit() {
    let mut rng = Rng::new(5);
    let q = randn(&mut rng, &[1, 4, 3, 8], 1.0);
    let k = randn(&mut rng, &[1, 4, 2, 8], 1.0);
    let e = fused::causal_attention(&q, &k, &k).unwrap_err().to_string();
    assert!(e.contains("not a multiple"), "{e}");
}

#[test]
fn swiglu_matches_candle_and_finite_differences() {
    let mut rng = Rng::new(6);
    for dims in [vec![1], vec![7, 13], vec![2, 3, 5000]] {
        let g = randn(&mut rng, &dims, 3.0);
        let u = randn(&mut rng, &dims, 1.0);
        check_op(
            &format!("swiglu {dims:?}"),
            &[g, u],
            &|a| fused::swiglu(&a[0], &a[1]).unwrap(),
            &|a| (a[0].silu().unwrap() * &a[1]).unwrap(),
            &mut rng,
        );
    }
}

#[test]
fn add_matches_candle() {
    let mut rng = Rng::new(14);
    for dims in [vec![1], vec![3, 70000]] {
        let x = randn(&mut rng, &dims, 1.0);
        let y = randn(&mut rng, &dims, 1.0);
        check_op(
            &format!("add {dims:?}"),
            &[x, y],
            &|a| fused::add(&a[0], &a[1]).unwrap(),
            &|a| (&a[0] + &a[1]).unwrap(),
            &mut rng,
        );
    }
}

#[test]
fn linear_cross_entropy_matches_candle_and_finite_differences() {
    let mut rng = Rng::new(7);
    // Active rows across the 256-row block boundary (330 rows, 264 of them
    // weighted), vocabularies that are no round number.
    for (rows, hidden, vocab) in [(1, 8, 5), (7, 16, 37), (130, 16, 301), (330, 8, 64)] {
        let head = randn(&mut rng, &[vocab, hidden], 0.5);
        let targets: Vec<u32> = (0..rows).map(|_| rng.below(vocab as u64) as u32).collect();
        // Some rows masked out; the rest weighted 1 / count (a masked mean).
        let mask: Vec<f32> = (0..rows).map(|i| if i % 5 == 3 { 0.0 } else { 1.0 }).collect();
        let count: f32 = mask.iter().sum();
        let weights: Vec<f32> = mask.iter().map(|m| m / count).collect();
        let h = randn(&mut rng, &[rows, hidden], 1.0);
        let r = Tensor::new(1f32, &Device::Cpu).unwrap();
        let fast = |a: &[Tensor]| fused::linear_cross_entropy(&a[0], &head, &targets, &weights).unwrap();
        let naive = |a: &[Tensor]| naive_cross_entropy(&a[0], &head, &targets, &weights);
        let (lf, gf) = grads_of(&fast, std::slice::from_ref(&h), &r);
        let (ln, gn) = grads_of(&naive, std::slice::from_ref(&h), &r);
        let what = format!("cross-entropy {:?}", (rows, hidden, vocab));
        let d = (lf.to_scalar::<f32>().unwrap() - ln.to_scalar::<f32>().unwrap()).abs();
        assert!(d < 1e-5, "{what}: loss differs by {d}");
        assert!(rel_diff(&gf[0], &gn[0]) < 1e-4, "{what}: dH differs by {}", rel_diff(&gf[0], &gn[0]));
        // Masked rows get exactly no gradient.
        if rows > 3 {
            assert!(gf[0].get(3).unwrap().to_vec1::<f32>().unwrap().iter().all(|&x| x == 0.0), "{what}: masked row");
        }
        finite_difference(&what, std::slice::from_ref(&h), &gf, &fast, &r, &mut rng);
        // The rows' NLLs without gradients: the same numbers the loss sums.
        let nll = fused::linear_nll_rows(&h, &head, &targets, &weights).unwrap();
        let again: f64 = nll.iter().zip(&weights).map(|(n, w)| *n as f64 * *w as f64).sum();
        assert!((again - lf.to_scalar::<f32>().unwrap() as f64).abs() < 1e-5, "{what}: nll rows {again}");
    }
}

#[test]
fn linear_cross_entropy_scales_by_the_incoming_gradient_and_refuses_bad_targets() {
    let mut rng = Rng::new(8);
    let head = randn(&mut rng, &[11, 4], 1.0);
    let h = Var::from_tensor(&randn(&mut rng, &[3, 4], 1.0)).unwrap();
    let w = [0.5f32, 0.25, 0.25];
    let g1 = fused::linear_cross_entropy(h.as_tensor(), &head, &[1, 2, 3], &w).unwrap().backward().unwrap();
    let g3 =
        (fused::linear_cross_entropy(h.as_tensor(), &head, &[1, 2, 3], &w).unwrap() * 3.0).unwrap().backward().unwrap();
    let (a, b) = (g1.get(h.as_tensor()).unwrap(), g3.get(h.as_tensor()).unwrap());
    assert!(max_abs_diff(&(a * 3.0).unwrap(), b) < 1e-6);
    let e = fused::linear_cross_entropy(h.as_tensor(), &head, &[1, 11, 3], &w).unwrap_err().to_string();
    assert!(e.contains("outside the vocabulary"), "{e}");
}

#[test]
fn frozen_linear_matches_matmul_on_views_with_an_offset() {
    let mut rng = Rng::new(9);
    let big = randn(&mut rng, &[9, 12], 1.0);
    let w = randn(&mut rng, &[5, 12], 1.0);
    // Rows 2..9: contiguous with a start offset; and a transposed (strided) view.
    let tall = randn(&mut rng, &[12, 7], 1.0);
    for x in [big.narrow(0, 2, 7).unwrap(), tall.t().unwrap()] {
        // The view itself (a variable would be a fresh contiguous copy).
        let want = x.matmul(&w.t().unwrap()).unwrap();
        assert!(max_abs_diff(&fused::frozen_linear(&x, &w).unwrap(), &want) < 1e-5);
        let r = randn(&mut rng, &[x.dim(0).unwrap(), 5], 1.0);
        let inputs = std::slice::from_ref(&x);
        let (yf, gf) = grads_of(&|a| fused::frozen_linear(&a[0], &w).unwrap(), inputs, &r);
        let (yn, gn) = grads_of(&|a| a[0].matmul(&w.t().unwrap()).unwrap(), inputs, &r);
        assert!(max_abs_diff(&yf, &yn) < 1e-5);
        assert!(rel_diff(&gf[0], &gn[0]) < 1e-5);
    }
    // A rank-3 input keeps its leading dimensions.
    let x3 = randn(&mut rng, &[2, 3, 12], 1.0);
    assert_eq!(fused::frozen_linear(&x3, &w).unwrap().dims(), &[2, 3, 5]);
}

#[test]
fn lora_linear_matches_candle_and_finite_differences() {
    let mut rng = Rng::new(10);
    // (rows, in, out, r): one row, odd sizes, a rank larger than typical.
    for (dims, n_in, n_out, r) in [(vec![1, 8], 8, 5, 1), (vec![2, 7, 12], 12, 9, 3), (vec![130, 16], 16, 24, 8)] {
        let w = randn(&mut rng, &[n_out, n_in], 0.5);
        let x = randn(&mut rng, &dims, 1.0);
        let a = randn(&mut rng, &[r, n_in], 0.5);
        let b = randn(&mut rng, &[n_out, r], 0.5);
        check_op(
            &format!("lora-linear {dims:?} → {n_out}, r {r}"),
            &[x, a, b],
            &|t| fused::lora_linear(&t[0], &w, &t[1], &t[2], 1.5).unwrap(),
            &|t| {
                let base = t[0].broadcast_matmul(&w.t().unwrap()).unwrap();
                let d =
                    t[0].broadcast_matmul(&t[1].t().unwrap()).unwrap().broadcast_matmul(&t[2].t().unwrap()).unwrap();
                (base + (d * 1.5).unwrap()).unwrap()
            },
            &mut rng,
        );
    }
}

// ---------------------------------------------------------------------------
// The whole model

fn fixture(name: &str) -> Model {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    Model::from_files(&ModelFiles::open(&dir).unwrap()).unwrap()
}

fn adapter(m: &Model) -> LoraAdapter {
    let cfg = LoraConfig {
        r: 4,
        lora_alpha: 8.0,
        lora_dropout: 0.0,
        target_modules: vec![Target::Q, Target::K, Target::V, Target::O, Target::Gate, Target::Up, Target::Down],
    };
    // B non-zero, so every LoRA pair changes the forward and A gets gradients too.
    LoraAdapter::random(cfg, &m.config, 11, 0.05).unwrap()
}

/// A `[2, 7]` batch, the second row with a padded tail (mask 0).
fn batch(m: &Model) -> (Tensor, Tensor) {
    let mut rng = Rng::new(12);
    let v = m.config.vocab_size as u64;
    let toks: Vec<u32> = (0..14).map(|_| rng.below(v) as u32).collect();
    let mask: Vec<f32> = (0..14).map(|i| if i >= 11 { 0.0 } else { 1.0 }).collect();
    (Tensor::from_vec(toks, (2, 7), &Device::Cpu).unwrap(), Tensor::from_vec(mask, (2, 7), &Device::Cpu).unwrap())
}

fn loss_and_grads(m: &Model, a: &LoraAdapter, toks: &Tensor, mask: &Tensor, mode: BaseGrad) -> (f32, Vec<Vec<f32>>) {
    let vars = a.to_vars().unwrap();
    let loss = m.loss(toks, mask, Some(&vars), mode, None).unwrap();
    let g = loss.backward().unwrap();
    for v in vars.all() {
        // A gradient that carried a graph would keep the whole step alive in the optimiser's moments.
        assert!(!g.get(v.as_tensor()).unwrap().track_op(), "{mode:?}: a LoRA gradient carries a graph");
    }
    let grads = vars.all().iter().map(|v| vec(g.get(v.as_tensor()).expect("every LoRA var has a gradient"))).collect();
    (loss.to_scalar::<f32>().unwrap(), grads)
}

#[test]
fn fast_path_loss_and_lora_gradients_equal_the_naive_path() {
    for name in ["tiny-llama", "tiny-qwen2"] {
        let m = fixture(name);
        let a = adapter(&m);
        let (toks, mask) = batch(&m);
        let (lf, gf) = loss_and_grads(&m, &a, &toks, &mask, BaseGrad::Frozen);
        let (ln, gn) = loss_and_grads(&m, &a, &toks, &mask, BaseGrad::Naive);
        assert!((lf - ln).abs() < 1e-5, "{name}: loss {lf} vs {ln}");
        assert_eq!(gf.len(), gn.len());
        for (i, (x, y)) in gf.iter().zip(&gn).enumerate() {
            let scale = y.iter().map(|v| v.abs()).fold(0.0, f32::max).max(1e-6);
            let d = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
            assert!(d / scale < 1e-4, "{name}: LoRA var {i}: gradient differs by {d} (scale {scale})");
        }
        // The fast path's logits (forward_train) agree too.
        let vars = a.to_vars().unwrap();
        let xf = m.forward_train(&toks, Some(&vars), BaseGrad::Frozen, None).unwrap();
        let xn = m.forward_train(&toks, Some(&vars), BaseGrad::Naive, None).unwrap();
        assert!(max_abs_diff(&xf, &xn) < 1e-4, "{name}: logits differ by {}", max_abs_diff(&xf, &xn));
    }
}

#[test]
fn sequence_nll_equals_the_naive_log_softmax() {
    let m = fixture("tiny-llama");
    let a = adapter(&m);
    let vars = a.to_vars().unwrap();
    let (toks, mask) = batch(&m);
    let got = m.sequence_nll(&toks, &mask, Some(&vars)).unwrap();
    let logits = m.forward_train(&toks, Some(&vars), BaseGrad::Naive, None).unwrap();
    let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap().to_vec3::<f32>().unwrap();
    let t = toks.to_vec2::<u32>().unwrap();
    let mk = mask.to_vec2::<f32>().unwrap();
    for s in 0..2 {
        let mut sum = 0f64;
        let mut cnt = 0f64;
        for i in 0..6 {
            sum -= lsm[s][i][t[s][i + 1] as usize] as f64 * mk[s][i + 1] as f64;
            cnt += mk[s][i + 1] as f64;
        }
        assert!((got[s].0 - sum).abs() < 1e-4, "row {s}: nll sum {} vs {sum}", got[s].0);
        assert_eq!(got[s].1, cnt);
    }
}

#[test]
fn loss_and_gradients_do_not_depend_on_the_thread_count() {
    let m = fixture("tiny-llama");
    let a = adapter(&m);
    // Long enough that every op splits its work across threads.
    let mut rng = Rng::new(13);
    let toks: Vec<u32> = (0..3 * 150).map(|_| rng.below(m.config.vocab_size as u64) as u32).collect();
    let toks = Tensor::from_vec(toks, (3, 150), &Device::Cpu).unwrap();
    let mask = Tensor::ones((3, 150), DType::F32, &Device::Cpu).unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let (l, g) = loss_and_grads(&m, &a, &toks, &mask, BaseGrad::Frozen);
            let flat =
                ml::sequence_gradients(&m, &a, &toks.get(0).unwrap().to_vec1::<u32>().unwrap(), &[true; 150]).unwrap();
            (l.to_bits(), g.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>(), flat)
        })
    };
    let (l1, g1, s1) = run(1);
    let (l2, g2, s2) = run(2);
    let (l3, g3, _) = run(3);
    assert_eq!(l1, l2, "loss with 1 and 2 threads");
    assert_eq!(l1, l3, "loss with 1 and 3 threads");
    assert!(g1 == g2 && g1 == g3, "LoRA gradients differ between thread counts");
    assert!(s1.iter().zip(&s2).all(|(a, b)| a.to_bits() == b.to_bits()), "sequence_gradients differ");
}

#[test]
fn batched_per_sequence_gradients_equal_one_pass_per_sequence() {
    let m = fixture("tiny-llama");
    let a = adapter(&m);
    let v = m.config.vocab_size as u64;
    let mut rng = Rng::new(21);
    // Lengths that differ (so rows are padded), masks with prompt parts off.
    let rows: Vec<(Vec<u32>, Vec<bool>)> = [9usize, 23, 4, 17, 2]
        .iter()
        .map(|&n| {
            let toks: Vec<u32> = (0..n).map(|_| rng.below(v) as u32).collect();
            let mask: Vec<bool> = (0..n).map(|i| i >= n / 3 && i > 0).collect();
            (toks, mask)
        })
        .collect();
    let refs: Vec<(&[u32], &[bool])> = rows.iter().map(|(t, k)| (t.as_slice(), k.as_slice())).collect();
    let single: Vec<Vec<f32>> = rows.iter().map(|(t, k)| ml::sequence_gradients(&m, &a, t, k).unwrap()).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| ml::batch_sequence_gradients(&m, &a, &refs).unwrap())
    };
    let batched = run(1);
    assert_eq!(batched.len(), rows.len());
    for (q, (b, s)) in batched.iter().zip(&single).enumerate() {
        assert_eq!(b.len(), a.parameter_count());
        let norm = s.iter().map(|x| x * x).sum::<f32>().sqrt();
        let diff = b.iter().zip(s).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt();
        assert!(norm > 0.0, "sequence {q} has a gradient");
        assert!(diff <= 1e-4 * norm, "sequence {q}: batched differs from alone by {diff} (norm {norm})");
    }
    // Like every fused op, the result does not depend on the thread count.
    for threads in [2, 3] {
        let other = run(threads);
        assert!(
            other.iter().flatten().zip(batched.iter().flatten()).all(|(x, y)| x.to_bits() == y.to_bits()),
            "batched gradients differ with {threads} threads"
        );
    }
    // A sequence without targets is refused, not a division by zero.
    let none = vec![false; 5];
    let bad = [refs[0], (&rows[1].0[..5], none.as_slice())];
    assert!(ml::batch_sequence_gradients(&m, &a, &bad).is_err());
}
