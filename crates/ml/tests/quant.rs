//! Products with quantized weights (`ml::kernels::linear_q`): against a naive
//! loop written from ggml's block layouts (bit for bit: the block products are
//! integer sums, and the loop combines them in the documented order), against
//! the f32 kernels on the dequantized weights (within the activation
//! quantization's error bound), across implementations, thread counts and
//! batches; and quantized GGUF files through the model.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use half::f16;
use ml::kernels::{self, QK, QK_K, QMatrix, QuantIsa, QuantType, Weights};
use std::sync::atomic::{AtomicU32, Ordering};

fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut r = ml::rng::Rng::new(seed);
    (0..n).map(|_| (r.next_f64() * 2.0 - 1.0) as f32).collect()
}

const TYPES: [QuantType; 8] = QuantType::ALL;

/// A 256-block format (activations as Q8_K).
fn k_quant(ty: QuantType) -> bool {
    ty.block_values() == QK_K
}

/// (m, k, n) for the 32-block formats: single rows, odd row counts, weight
/// rows not a multiple of the panel's 8 or 16, several tasks; and for the AMX
/// tiles (16 rows at once, blocks four at a time): 16 and 17 rows, rows of
/// 1 to 5 blocks, a last panel of one group.
const SHAPES: [(usize, usize, usize); 12] = [
    (1, 32, 1),
    (1, 64, 7),
    (2, 96, 33),
    (3, 576, 65),
    (5, 32, 300),
    (9, 160, 17),
    (70, 128, 40),
    (4, 544, 9),
    (16, 32, 16),
    (17, 160, 24),
    (33, 96, 9),
    (48, 576, 40),
];
/// The same for Q4_K (rows of 1, 2, 3 and 9 super-blocks).
const SHAPES_K: [(usize, usize, usize); 6] =
    [(1, 256, 1), (2, 512, 7), (3, 768, 33), (5, 256, 300), (9, 2304, 17), (70, 256, 40)];

fn shapes(ty: QuantType) -> &'static [(usize, usize, usize)] {
    if k_quant(ty) { &SHAPES_K } else { &SHAPES }
}

/// `n × k` seeded weights quantized by ggml's reference quantizers (candle's
/// for the 32-block formats, ours for Q4_K).
fn quantized(ty: QuantType, n: usize, k: usize, seed: u64) -> QMatrix {
    let v = rand_vec(n * k, seed);
    let dt = match ty {
        QuantType::Q4K => return QMatrix::quantize_q4k(n, k, &v).unwrap(),
        ty => ml::weights::ggml_type(ty),
    };
    let w = Tensor::from_vec(v, (n, k), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&w, dt).unwrap();
    QMatrix::new(ty, n, k, &q.data().unwrap()).unwrap()
}

/// Every implementation this CPU runs (each forced in turn).
fn isas() -> Vec<QuantIsa> {
    QuantIsa::ALL.into_iter().filter(|i| i.available()).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// llama.cpp's activation quantization for the 32-block formats: per block,
/// `d = max|x| / 127`, codes `round(x · 127 / max|x|)` ties to even.
fn q8(xb: &[f32]) -> (Vec<i32>, f32) {
    let amax = xb.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let id = if amax == 0.0 { 0.0 } else { 127.0 / amax };
    (xb.iter().map(|v| (v * id).round_ties_even() as i32).collect(), amax / 127.0)
}

/// llama.cpp's `quantize_row_q8_K_ref` for one block of 256.
fn q8k(xb: &[f32]) -> (Vec<i32>, f32) {
    let mut max = 0.0f32;
    for &v in xb {
        if v.abs() > max.abs() {
            max = v;
        }
    }
    if max == 0.0 {
        return (vec![0; QK_K], 0.0);
    }
    let iscale = -127.0 / max;
    (xb.iter().map(|v| ((iscale * v).round_ties_even() as i32).min(127)).collect(), 1.0 / iscale)
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

/// Q4_K sub-block `j`'s 6-bit scale and minimum, read from the 12 packed bytes.
fn q4k_scale_min(s: &[u8], j: usize) -> (i32, i32) {
    if j < 4 {
        ((s[j] & 63) as i32, (s[j + 4] & 63) as i32)
    } else {
        (((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4)) as i32, ((s[j + 4] >> 4) | ((s[j] >> 6) << 4)) as i32)
    }
}

/// One output by the naive loop: codes read byte by byte from ggml's layouts,
/// each block's integer sums, then the chains of the documented order.
fn naive_dot(ty: QuantType, row: &[u8], x: &[f32]) -> f32 {
    let (mut acc, mut off) = (0.0f32, 0.0f32);
    for (u, blk) in row.chunks_exact(ty.block_bytes()).enumerate() {
        if ty == QuantType::Q6K {
            // ql, qh, sixteen i8 scales, d; value 128n + 32c + l: nibble c / 2 of ql[64n + 32(c % 2) + l],
            // top bits 2c..2c + 2 of qh[32n + l].
            let (xq, dx) = q8k(&x[u * QK_K..(u + 1) * QK_K]);
            let mut isum = 0i32;
            for j in 0..16 {
                let code = |e: usize| -> i32 {
                    let (n, c, l) = (e / 128, e % 128 / 32, e % 32);
                    let lo = (blk[64 * n + 32 * (c % 2) + l] >> (4 * (c / 2))) & 15;
                    let hi = (blk[128 + 32 * n + l] >> (2 * c)) & 3;
                    (lo | (hi << 4)) as i32 - 32
                };
                isum += (blk[192 + j] as i8 as i32) * (16 * j..16 * j + 16).map(|e| code(e) * xq[e]).sum::<i32>();
            }
            acc = (f16_at(blk, 208) * dx).mul_add(isum as f32, acc);
            continue;
        }
        if ty == QuantType::Q4K || ty == QuantType::Q5K {
            // Q5_K: qh[32] at 16, then the nibbles; value 32j + e's fifth bit is bit j of qh[e].
            let qs = if ty == QuantType::Q5K { 48 } else { 16 };
            let (xq, dx) = q8k(&x[u * QK_K..(u + 1) * QK_K]);
            let (mut isum, mut msum) = (0i32, 0i32);
            for j in 0..8 {
                let (sc, m) = q4k_scale_min(&blk[4..16], j);
                let code = |e: usize| -> i32 {
                    let b = blk[qs + 32 * (j / 2) + e];
                    let fifth = if ty == QuantType::Q5K { ((blk[16 + e] >> j) & 1) << 4 } else { 0 };
                    ((if j % 2 == 0 { b & 15 } else { b >> 4 }) | fifth) as i32
                };
                isum += sc * (0..32).map(|e| code(e) * xq[32 * j + e]).sum::<i32>();
                msum += m * xq[32 * j..32 * j + 32].iter().sum::<i32>();
            }
            acc = (f16_at(blk, 0) * dx).mul_add(isum as f32, acc);
            off += (f16_at(blk, 2) * dx) * msum as f32;
            continue;
        }
        let (xq, dx) = q8(&x[u * QK..(u + 1) * QK]);
        let code = |e: usize| -> i32 {
            match ty {
                QuantType::Q8_0 => blk[2 + e] as i8 as i32,
                QuantType::Q4_0 => (if e < 16 { blk[2 + e] & 15 } else { blk[2 + e - 16] >> 4 }) as i32 - 8,
                QuantType::Q5_0 => {
                    let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
                    let nibble = if e < 16 { blk[6 + e] & 15 } else { blk[6 + e - 16] >> 4 };
                    (nibble as u32 | ((qh >> e) & 1) << 4) as i32 - 16
                }
                QuantType::Q5_1 => {
                    let qh = u32::from_le_bytes([blk[4], blk[5], blk[6], blk[7]]);
                    let nibble = if e < 16 { blk[8 + e] & 15 } else { blk[8 + e - 16] >> 4 };
                    (nibble as u32 | ((qh >> e) & 1) << 4) as i32
                }
                _ => (if e < 16 { blk[4 + e] & 15 } else { blk[4 + e - 16] >> 4 }) as i32,
            }
        };
        let isum: i32 = (0..QK).map(|e| code(e) * xq[e]).sum();
        acc = (f16_at(blk, 0) * dx).mul_add(isum as f32, acc);
        if ty == QuantType::Q4_1 || ty == QuantType::Q5_1 {
            off += f16_at(blk, 2) * (dx * xq.iter().sum::<i32>() as f32);
        }
    }
    if ty == QuantType::Q4K || ty == QuantType::Q5K { acc - off } else { acc + off }
}

fn run(isa: QuantIsa, x: &[f32], w: &QMatrix) -> Vec<f32> {
    let mut y = vec![f32::NAN; x.len() / w.cols() * w.rows()];
    kernels::linear_q_with(isa, x, w, &mut y).unwrap();
    y
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

/// Exact: every block's product is an integer sum, and the loop combines
/// them in the documented order, so each implementation (each forced in turn)
/// gives the naive loop's bits, at 1, 2 and 3 threads.
#[test]
fn every_implementation_equals_the_naive_loop_bit_for_bit() {
    for ty in TYPES {
        for (s, &(m, k, n)) in shapes(ty).iter().enumerate() {
            let w = quantized(ty, n, k, 100 + s as u64);
            let mut x = rand_vec(m * k, 1 + s as u64);
            // An all-zero block (scale 0) in the first row.
            x[..QK.min(k)].fill(0.0);
            let data = w.ggml_bytes();
            let rb = data.len() / n;
            let want: Vec<f32> = (0..m)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .map(|(i, j)| naive_dot(ty, &data[j * rb..(j + 1) * rb], &x[i * k..(i + 1) * k]))
                .collect();
            for isa in isas() {
                for t in [1, 2, 3] {
                    let got = in_pool(t, || run(isa, &x, &w));
                    assert_eq!(bits(&got), bits(&want), "{ty:?} {isa:?} {m}x{k}x{n}, {t} threads");
                }
            }
        }
    }
}

/// Where the CPU has AMX (Linux lists `amx_tile` and `amx_int8`), the tile
/// path is available, so that the tests above run it: a failed request for
/// the tile state or a wrong CPUID bit would otherwise drop it silently.
#[test]
fn amx_is_used_where_the_cpu_has_it() {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    if cfg!(target_os = "linux") && has("amx_tile") && has("amx_int8") && has("avx512f") && has("avx512_vnni") {
        assert!(QuantIsa::Amx.available(), "this CPU has AMX, the kernels do not use it");
    } else {
        eprintln!("no AMX on this CPU: the tile path is not tested here");
    }
}

/// The only difference from the f32 path on the dequantized weights is the
/// activations' rounding: at most half a step `d_x / 2` per element, so
/// `|y_q − y_f32| ≤ Σ_i |w_i| · d_x(i) / 2` (plus f32 rounding, 1e-5 relative).
/// The same bound holds for every format (Q4_K's `d_x` is per 256 values);
/// the measured error is far inside it.
#[test]
fn products_stay_within_the_activation_rounding_bound_of_the_f32_path() {
    for ty in TYPES {
        let (m, k, n) = (4, if k_quant(ty) { 768 } else { 576 }, 96);
        let w = quantized(ty, n, k, 7);
        let wf = w.dequantize();
        let x = rand_vec(m * k, 8);
        let mut yf = vec![0.0f32; m * n];
        kernels::linear(&x, Weights::F32(&wf), k, &mut yf).unwrap();
        let bv = ty.block_values();
        for isa in isas() {
            let yq = in_pool(2, || run(isa, &x, &w));
            let mut worst = 0.0f32;
            for i in 0..m {
                for j in 0..n {
                    let xr = &x[i * k..(i + 1) * k];
                    let dx = |c: usize| {
                        let xb = &xr[c / bv * bv..][..bv];
                        if k_quant(ty) { q8k(xb).1.abs() } else { q8(xb).1 }
                    };
                    let bound: f32 = (0..k).map(|c| wf[j * k + c].abs() * dx(c) / 2.0).sum();
                    let err = (yq[i * n + j] - yf[i * n + j]).abs();
                    assert!(
                        err <= bound * 1.001 + 1e-5 * (1.0 + yf[i * n + j].abs()),
                        "{ty:?} {isa:?} ({i},{j}): {err} > {bound}"
                    );
                    worst = worst.max(err / bound.max(1e-12));
                }
            }
            assert!(worst > 0.0, "{ty:?}: no activation rounding at all?");
        }
    }
}

/// A row's result is the same bits alone, inside batches of 8 and 32 (at any
/// position), with rows moved, and at 1, 2 or 3 threads, on every implementation.
#[test]
fn results_are_batch_invariant_and_independent_of_the_thread_count() {
    for ty in TYPES {
        let (m, k, n) = (37, if k_quant(ty) { 512 } else { 192 }, 515);
        let w = quantized(ty, n, k, 21);
        let x = rand_vec(m * k, 22);
        for isa in isas() {
            let one = in_pool(1, || run(isa, &x, &w));
            for t in [2, 3] {
                assert_eq!(bits(&in_pool(t, || run(isa, &x, &w))), bits(&one), "{ty:?} {isa:?}: {t} threads");
                // The same products as regions of a team (a model step's way).
                let team = in_pool(t, || ml::kernels::with_team(|| [run(isa, &x, &w), run(isa, &x, &w)]));
                for y in &team {
                    assert_eq!(bits(y), bits(&one), "{ty:?} {isa:?}: {t} threads as a team");
                }
            }
            for i in [0, 5, 36] {
                let solo = in_pool(1 + i % 3, || run(isa, &x[i * k..(i + 1) * k], &w));
                assert_eq!(bits(&solo), bits(&one[i * n..(i + 1) * n]), "{ty:?} {isa:?}: row {i} alone");
            }
            // Rows 0..8 as a batch of 8; rows 3..35 as a batch of 32.
            for (from, len, t) in [(0, 8, 2), (3, 32, 3)] {
                let y = in_pool(t, || run(isa, &x[from * k..(from + len) * k], &w));
                assert_eq!(bits(&y), bits(&one[from * n..(from + len) * n]), "{ty:?} {isa:?}: batch of {len}");
            }
            let mut x2 = rand_vec(25 * k, 23);
            x2[9 * k..21 * k].copy_from_slice(&x[3 * k..15 * k]);
            let y2 = in_pool(2, || run(isa, &x2, &w));
            assert_eq!(bits(&y2[9 * n..21 * n]), bits(&one[3 * n..15 * n]), "{ty:?} {isa:?}: moved rows");
        }
    }
}

// ---------------------------------------------------------------------------
// The Q4_K format

/// A block built by hand: d = 0.5, dmin = 0.25, sub-block j's scale `j + 1`
/// and minimum `2j` except sub-blocks 4..8, whose 6-bit values need their top
/// bits (scale 40 + j, minimum 50 + j); code of value e = e mod 16.
fn hand_block() -> (Vec<u8>, Vec<f32>) {
    let (sc, mn): (Vec<u8>, Vec<u8>) = (0..8u8).map(|j| if j < 4 { (j + 1, 2 * j) } else { (40 + j, 50 + j) }).unzip();
    let mut s = [0u8; 12];
    for j in 0..4 {
        s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        s[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
        s[j + 8] = (sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4);
    }
    let mut blk = Vec::new();
    blk.extend_from_slice(&f16::from_f32(0.5).to_le_bytes());
    blk.extend_from_slice(&f16::from_f32(0.25).to_le_bytes());
    blk.extend_from_slice(&s);
    for p in 0..4 {
        blk.extend((0..32).map(|l| ((64 * p + l) % 16) as u8 | ((((64 * p + 32 + l) % 16) as u8) << 4)));
    }
    // Every value is a multiple of 1/4 below 2^10: exact in f32 whichever way it is computed.
    let want = (0..QK_K).map(|e| 0.5 * sc[e / 32] as f32 * (e % 16) as f32 - 0.25 * mn[e / 32] as f32).collect();
    (blk, want)
}

#[test]
fn q4k_dequantizes_a_hand_built_block_by_the_spec() {
    let (blk, want) = hand_block();
    assert_eq!(blk.len(), 144);
    let w = QMatrix::new(QuantType::Q4K, 1, QK_K, &blk).unwrap();
    assert_eq!(w.dequantize(), want);
    assert_eq!(want[32 * 5 + 7], 0.5 * 45.0 * 7.0 - 0.25 * 55.0);
}

/// Our dequantizer against candle's port of `dequantize_row_q4_K`, bit for
/// bit, on blocks from our quantizer and on random bytes (any f16 scales).
#[test]
fn q4k_dequantization_matches_ggml_bit_for_bit() {
    let (rows, cols) = (7, 3 * QK_K);
    let mut mats = vec![quantized(QuantType::Q4K, rows, cols, 5)];
    let mut r = ml::rng::Rng::new(9);
    let mut bytes: Vec<u8> = (0..rows * 3 * 144).map(|_| (r.next_f64() * 256.0) as u8).collect();
    for b in bytes.chunks_exact_mut(144) {
        // Finite, modest scales (random f16 bits could be NaN or infinite).
        b[..2].copy_from_slice(&f16::from_f32(r.next_f64() as f32 * 0.01).to_le_bytes());
        b[2..4].copy_from_slice(&f16::from_f32(r.next_f64() as f32 * 0.01).to_le_bytes());
    }
    mats.push(QMatrix::new(QuantType::Q4K, rows, cols, &bytes).unwrap());
    for w in mats {
        let q = candle_core::quantized::ggml_file::qtensor_from_ggml(
            GgmlDType::Q4K,
            &w.ggml_bytes(),
            vec![rows, cols],
            &Device::Cpu,
        )
        .unwrap();
        let theirs = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(bits(&w.dequantize()), bits(&theirs));
    }
}

/// The 32-block formats' and Q6_K's dequantizer against candle's ports of
/// ggml's, bit for bit, on random bytes (every code, fifth bit, top bits and
/// signed sub-block scale) with finite scales.
#[test]
fn block_dequantization_matches_ggml_bit_for_bit() {
    let mut r = ml::rng::Rng::new(31);
    for ty in [
        QuantType::Q8_0,
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q5K,
        QuantType::Q6K,
    ] {
        let (rows, cols) = (9, 4 * ty.block_values());
        let mut bytes: Vec<u8> = (0..rows * 4 * ty.block_bytes()).map(|_| (r.next_f64() * 256.0) as u8).collect();
        for b in bytes.chunks_exact_mut(ty.block_bytes()) {
            let d_at = if ty == QuantType::Q6K { 208 } else { 0 };
            b[d_at..d_at + 2].copy_from_slice(&f16::from_f32((r.next_f64() as f32 - 0.5) * 0.02).to_le_bytes());
            if matches!(ty, QuantType::Q4_1 | QuantType::Q5_1 | QuantType::Q5K) {
                b[2..4].copy_from_slice(&f16::from_f32((r.next_f64() as f32 - 0.5) * 0.02).to_le_bytes());
            }
        }
        let w = QMatrix::new(ty, rows, cols, &bytes).unwrap();
        let dt = ml::weights::ggml_type(ty);
        let q =
            candle_core::quantized::ggml_file::qtensor_from_ggml(dt, &bytes, vec![rows, cols], &Device::Cpu).unwrap();
        let theirs = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(bits(&w.dequantize()), bits(&theirs), "{ty:?}");
    }
}

/// The panels a matrix is held as give back the file's bytes exactly, for
/// every format, any bytes (every bit of Q4_K's packed 6-bit scales
/// included) and row counts that leave the last group of 8 partly empty;
/// and they hold no more than the file (Q4_K, Q5_K: their sub-block scales a byte each).
#[test]
fn panels_give_back_the_stored_bytes_exactly() {
    let mut r = ml::rng::Rng::new(77);
    for ty in TYPES {
        for rows in [1, 7, 8, 9, 17] {
            let cols = 2 * ty.block_values();
            let n = rows * 2 * ty.block_bytes();
            let bytes: Vec<u8> = (0..n).map(|_| (r.next_f64() * 256.0) as u8).collect();
            let w = QMatrix::new(ty, rows, cols, &bytes).unwrap();
            assert_eq!(w.ggml_bytes(), bytes, "{ty:?}, {rows} rows");
            let per_row = w.bytes_held() as f64 / rows.div_ceil(8) as f64 / 8.0;
            let limit = if matches!(ty, QuantType::Q4K | QuantType::Q5K) { 1.03 } else { 1.0 };
            assert!(per_row <= limit * (2 * ty.block_bytes()) as f64, "{ty:?}: {per_row} bytes a row");
            let back = w.permute_rows(|i| rows - 1 - i).unwrap().permute_rows(|i| rows - 1 - i).unwrap();
            assert_eq!(back, w, "{ty:?}: a permutation and its inverse");
        }
    }
}

/// Our quantizer: every value within one quantization step of its sub-block
/// (the range `[min(0, min x), max x] / 15`, doubled for the 6-bit rounding
/// of the scales), and closer on average than candle's older Q4_K quantizer.
#[test]
fn q4k_quantizer_stays_within_a_step() {
    let (rows, cols) = (16, 2 * QK_K);
    let x: Vec<f32> =
        rand_vec(rows * cols, 3).iter().enumerate().map(|(i, v)| v * (1.0 + (i / 32 % 5) as f32)).collect();
    let ours = QMatrix::quantize_q4k(rows, cols, &x).unwrap().dequantize();
    for (xs, ds) in x.chunks_exact(32).zip(ours.chunks_exact(32)) {
        let lo = xs.iter().fold(0.0f32, |a, &v| a.min(v));
        let hi = xs.iter().fold(f32::MIN, |a, &v| a.max(v));
        let step = (hi - lo) / 15.0;
        for (a, b) in xs.iter().zip(ds) {
            assert!((a - b).abs() <= 2.0 * step, "{a} → {b} (step {step})");
        }
    }
    let t = Tensor::from_vec(x.clone(), (rows, cols), &Device::Cpu).unwrap();
    let candle = QTensor::quantize(&t, GgmlDType::Q4K).unwrap().dequantize(&Device::Cpu).unwrap();
    let candle = candle.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let sq = |d: &[f32]| x.iter().zip(d).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
    eprintln!("Q4_K squared error: ours {}, candle's {}", sq(&ours), sq(&candle));
    assert!(sq(&ours) <= sq(&candle), "ours {} > candle's {}", sq(&ours), sq(&candle));
}

#[test]
fn malformed_matrices_and_shapes_are_errors() {
    let bytes = |ty: QuantType, n: usize, k: usize| vec![0u8; n * k / QK * ty.block_bytes()];
    assert!(QMatrix::new(QuantType::Q4_0, 2, 48, &bytes(QuantType::Q4_0, 2, 32)).is_err(), "k not a multiple of 32");
    assert!(QMatrix::new(QuantType::Q4_0, 2, 64, &bytes(QuantType::Q4_0, 2, 32)).is_err(), "too few bytes");
    assert!(QMatrix::new(QuantType::Q8_0, usize::MAX / 2, 64, &[]).is_err(), "overflowing size");
    let w = QMatrix::new(QuantType::Q4_1, 2, 64, &bytes(QuantType::Q4_1, 2, 64)).unwrap();
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
    quantized_pair(&tiny_llama(), ty, dir, "model.layers.0.mlp.down_proj.weight", "F32")
}

/// `source` written as a GGUF quantized to `ty` (checking that `odd`, a
/// matrix of other widths, is stored as `odd_dtype`), and the f32 model on
/// the dequantized weights.
fn quantized_pair(
    source: &ModelFiles,
    ty: QuantType,
    dir: &std::path::Path,
    odd: &str,
    odd_dtype: &str,
) -> (Model, Model) {
    let gguf = dir.join(format!("m-{}.gguf", ty.name()));
    source.write_gguf_as(&gguf, Some(ty)).unwrap();
    let files = ModelFiles::open(&gguf).unwrap();
    assert_eq!(files.tensors["model.layers.0.self_attn.q_proj.weight"].dtype, ty.hashed_name());
    assert_eq!(files.tensors[odd].dtype, odd_dtype);
    let hf = dir.join(format!("m-{}-f32", ty.name()));
    files.write_hf_f32(&hf).unwrap();
    let q = Model::from_files(&files).unwrap();
    let mut formats = vec![ty.name()];
    if odd_dtype != "F32" {
        formats.push(odd_dtype);
    }
    formats.sort();
    let mut got = q.quantized_formats();
    got.sort();
    assert_eq!(got, formats);
    let f = Model::from_files(&ModelFiles::open(&hf).unwrap()).unwrap();
    assert!(f.quantized_formats().is_empty());
    (q, f)
}

/// tiny-llama's tokenizer and shape, 256 wide (so that Q4_K's super-blocks
/// fit its rows), intermediate 320 (whole 32-blocks, not 256-blocks), seeded weights.
fn wide_llama(dir: &std::path::Path) -> ModelFiles {
    let src = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny-llama");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    cfg["hidden_size"] = 256.into();
    cfg["intermediate_size"] = 320.into();
    cfg["head_dim"] = 64.into();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let (h, i, v, q, kv) = (256, 320, 512, 4 * 64, 2 * 64);
    let mut shapes = vec![("model.embed_tokens.weight".to_string(), vec![v, h]), ("lm_head.weight".into(), vec![v, h])];
    shapes.push(("model.norm.weight".into(), vec![h]));
    for l in 0..2 {
        let p = format!("model.layers.{l}");
        for (n, s) in [
            ("input_layernorm.weight", vec![h]),
            ("post_attention_layernorm.weight", vec![h]),
            ("self_attn.q_proj.weight", vec![q, h]),
            ("self_attn.k_proj.weight", vec![kv, h]),
            ("self_attn.v_proj.weight", vec![kv, h]),
            ("self_attn.o_proj.weight", vec![h, q]),
            ("mlp.gate_proj.weight", vec![i, h]),
            ("mlp.up_proj.weight", vec![i, h]),
            ("mlp.down_proj.weight", vec![h, i]),
        ] {
            shapes.push((format!("{p}.{n}"), s));
        }
    }
    let tensors: std::collections::HashMap<String, Tensor> = shapes
        .into_iter()
        .enumerate()
        .map(|(s, (name, shape))| {
            let count = shape.iter().product();
            let vals: Vec<f32> = if name.ends_with("norm.weight") {
                vec![1.0; count]
            } else {
                rand_vec(count, 1000 + s as u64).iter().map(|x| x * 0.12).collect()
            };
            (name, Tensor::from_vec(vals, shape, &Device::Cpu).unwrap())
        })
        .collect();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    ModelFiles::open(dir).unwrap()
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
/// the largest logit: Q8_0 2%, Q4_0 2%, Q4_1 2%, Q5_0 2%, Q5_1 2% (measured here: see
/// the message). And against the original f32 weights, which catches a wrong row
/// order (llama.cpp's q/k permutation) as a gross error: Q8_0 5%, Q4_x and Q5_x 40%.
#[test]
fn quantized_models_serve_close_to_the_f32_path_on_their_weights() {
    let dir = tempfile::tempdir().unwrap();
    let original = Model::from_files(&tiny_llama()).unwrap();
    let cfg = LoraConfig { r: 4, lora_alpha: 8.0, lora_dropout: 0.0, target_modules: Target::ALL.to_vec() };
    let adapter = LoraAdapter::random(cfg, &original.config, 5, 0.05).unwrap();
    let reference = all_logits(&original, None);
    let formats = [
        (QuantType::Q8_0, 0.05),
        (QuantType::Q4_0, 0.4),
        (QuantType::Q4_1, 0.4),
        (QuantType::Q5_0, 0.4),
        (QuantType::Q5_1, 0.4),
    ];
    for (ty, vs_original) in formats {
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
    // A node serves from the stored blocks and trains and computes gradients
    // (attribution's) on a copy dequantized once (`into_f32_weights`): the very
    // bits of the f32 model on the dequantized weights, as a verifier loads them.
    let once = model.clone().into_f32_weights().unwrap();
    assert!(once.quantized_formats().is_empty());
    let flat = |x: Tensor| bits(&x.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    let lo = once.forward_train(&t, Some(&vars), ml::BaseGrad::Frozen, None).unwrap();
    let lf = dense.forward_train(&t, Some(&vars), ml::BaseGrad::Frozen, None).unwrap();
    assert_eq!(flat(lo), flat(lf), "the dense copy trains as the dequantized f32 model");
    let mask: Vec<bool> = (0..PROMPT.len()).map(|i| i > 0).collect();
    assert_eq!(
        bits(&ml::sequence_gradients(&once, &adapter, &PROMPT, &mask).unwrap()),
        bits(&ml::sequence_gradients(&dense, &adapter, &PROMPT, &mask).unwrap()),
        "the dense copy's gradients are the dequantized f32 model's"
    );
}

/// Adapters held as bf16 or int8 (as a serving node holds them on a quantized
/// base) serve batch-invariantly: a sequence's logits are the same bits alone
/// and in a mixed-adapter batch, at 1–3 threads; bf16 gives the same bits as
/// the f32 path on the bf16-rounded adapter (the kernels widen bf16 exactly);
/// and either rounding moves the logits less than the 4-bit base's own
/// quantization does.
/// One step over every prompt, prompt `i` with adapter `i mod 3`: the logits
/// `logits` asks for, row by row (one per prompt for `Last`).
fn mixed_step(model: &Model, prompts: &[Vec<u32>], ads: &[LoraAdapter], logits: Logits) -> Vec<Vec<f32>> {
    let refs: Vec<&LoraAdapter> = ads.iter().collect();
    let mut cache = KvCache::new(&model.config, 8, 64);
    let seqs = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| SeqStep { seq: i as u64, tokens: p, adapter: Some(i % 3), logits })
        .collect();
    let o = model.forward(&Step { seqs }, &mut cache, &refs).unwrap();
    (0..prompts.len()).flat_map(|i| o.rows(i).unwrap()).collect()
}

#[test]
fn held_adapters_serve_batch_invariantly_and_close_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    let (model, dense) = quantized_and_dequantized(QuantType::Q4_1, dir.path());
    let cfg = LoraConfig { r: 4, lora_alpha: 8.0, lora_dropout: 0.0, target_modules: Target::ALL.to_vec() };
    let f32s: Vec<LoraAdapter> =
        (0..3).map(|s| LoraAdapter::random(cfg.clone(), &model.config, 11 + s, 0.05).unwrap()).collect();
    assert_eq!(model.default_adapter_dtype(), ml::AdapterDtype::I8, "a quantized base serves int8 adapters");
    assert_eq!(dense.default_adapter_dtype(), ml::AdapterDtype::F32, "a dense base serves f32 adapters");
    let prompts: Vec<Vec<u32>> =
        (0..6).map(|i| (0..(3 + i % 3)).map(|j| (i * 41 + j * 13) as u32 % 500).collect()).collect();
    let batched_on = |model: &Model, ads: &[LoraAdapter]| mixed_step(model, &prompts, ads, Logits::Last);
    let batched = |ads: &[LoraAdapter]| batched_on(&model, ads);
    let full = in_pool(2, || batched(&f32s));
    let unquantized = in_pool(2, || batched_on(&dense, &f32s));
    let base = max_diff(&full, &unquantized);
    for dtype in [ml::AdapterDtype::Bf16, ml::AdapterDtype::I8] {
        let held: Vec<LoraAdapter> = f32s.iter().map(|a| a.with_weights_dtype(dtype).unwrap()).collect();
        let (f32_bytes, bytes) = (f32s[0].byte_size(), held[0].byte_size());
        match dtype {
            ml::AdapterDtype::Bf16 => assert_eq!(2 * bytes, f32_bytes, "bf16 halves the bytes"),
            _ => {
                // A byte per weight and an f32 scale per row of A and of B.
                let rows: usize =
                    f32s[0].layers.iter().flat_map(|m| m.values()).map(|p| p.a.dims()[0] + p.b.dims()[0]).sum();
                assert_eq!(bytes, f32_bytes / 4 + 4 * rows, "int8 bytes");
            }
        }
        assert_eq!(held[0].hash, f32s[0].hash, "the hash names the adapter as published");
        let one = in_pool(1, || batched(&held));
        for t in [2, 3] {
            let other = in_pool(t, || batched(&held));
            assert!(other.iter().zip(&one).all(|(a, b)| bits(a) == bits(b)), "{t} threads change {dtype:?} logits");
        }
        for (i, row) in one.iter().enumerate() {
            let solo = in_pool(2, || {
                let mut cache = KvCache::for_tokens(&model.config, 64, 4);
                let s = Step {
                    seqs: vec![SeqStep { seq: 1, tokens: &prompts[i], adapter: Some(0), logits: Logits::Last }],
                };
                model.forward(&s, &mut cache, &[&held[i % 3]]).unwrap().last(0).unwrap()
            });
            assert_eq!(bits(&solo), bits(row), "{dtype:?}: sequence {i}: alone and in the mixed batch");
        }
        let widened: Vec<LoraAdapter> =
            held.iter().map(|a| a.with_weights_dtype(ml::AdapterDtype::F32).unwrap()).collect();
        let through_f32 = in_pool(2, || batched(&widened));
        if dtype == ml::AdapterDtype::Bf16 {
            assert!(
                through_f32.iter().zip(&one).all(|(a, b)| bits(a) == bits(b)),
                "bf16 kernels = f32 on the rounded values"
            );
        } else {
            // Another summation order than the f32 kernels', the same values.
            let d = max_diff(&through_f32, &one);
            assert!(d <= 1e-4 * max_abs(&one), "int8 kernels vs f32 on the widened values: {d}");
        }
        let d = max_diff(&one, &full);
        eprintln!("{dtype:?} adapters: max |Δlogit| {d:.5}; the Q4_1 base's own: {base:.5} (of {:.3})", max_abs(&full));
        assert!(d > 0.0 && d <= base, "{dtype:?} adapters move the logits by {d}, the base's rounding {base}");
    }
}

/// By hand, on a real model: how far adapters held as bf16 and int8 move the
/// logits of a GGUF base (`OPENLEDGER_GGUF=path/to/model.gguf`), against how far
/// the base's own quantization moves them (f32 adapters on the dequantized
/// weights). Three random r-16 adapters on all seven targets, B in ±0.05 (as
/// `bench serve`), six prompts, every position's logits.
/// `OPENLEDGER_GGUF=$PWD/bench/.llama/models/SmolLM2-135M-Instruct.Q4_1.gguf cargo test --release -p ml --test quant -- --ignored held_adapters_on_a_real_model --nocapture`
#[test]
#[ignore = "needs a GGUF model: OPENLEDGER_GGUF"]
fn held_adapters_on_a_real_model() {
    let Some(path) = std::env::var_os("OPENLEDGER_GGUF") else {
        eprintln!("OPENLEDGER_GGUF not set: nothing to measure");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files = ModelFiles::open(std::path::Path::new(&path)).unwrap();
    let q = Model::from_files(&files).unwrap();
    files.write_hf_f32(&dir.path().join("f32")).unwrap();
    let dense = Model::from_files(&ModelFiles::open(&dir.path().join("f32")).unwrap()).unwrap();
    let cfg = LoraConfig { r: 16, lora_alpha: 32.0, lora_dropout: 0.0, target_modules: Target::ALL.to_vec() };
    let f32s: Vec<LoraAdapter> =
        (0..8).map(|s| LoraAdapter::random(cfg.clone(), &q.config, 100 + s, 0.05).unwrap()).collect();
    let vocab = q.config.vocab_size as u32;
    let prompts: Vec<Vec<u32>> =
        (0..6u32).map(|i| (0..24u32).map(|j| (i * 7919 + j * 104_729) % vocab).collect()).collect();
    let run = |model: &Model, ads: &[LoraAdapter]| mixed_step(model, &prompts, ads, Logits::All);
    let rms = |a: &[Vec<f32>], b: &[Vec<f32>]| {
        let (mut s, mut n) = (0f64, 0usize);
        for (x, y) in a.iter().zip(b) {
            for (u, v) in x.iter().zip(y) {
                s += ((u - v) as f64).powi(2);
                n += 1;
            }
        }
        (s / n as f64).sqrt()
    };
    let argmax = |v: &[f32]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap();
    let agree = |a: &[Vec<f32>], b: &[Vec<f32>]| a.iter().zip(b).filter(|(x, y)| argmax(x) == argmax(y)).count();
    let full = run(&q, &f32s);
    let reference = run(&dense, &f32s);
    let base = max_diff(&full, &reference);
    eprintln!(
        "{}: the base's own quantization: max |Δlogit| {base:.4}, rms {:.4}, same argmax {}/{} (max |logit| {:.2})",
        std::path::Path::new(&path).display(),
        rms(&full, &reference),
        agree(&full, &reference),
        full.len(),
        max_abs(&reference)
    );
    for dtype in [ml::AdapterDtype::Bf16, ml::AdapterDtype::I8] {
        let held: Vec<LoraAdapter> = f32s.iter().map(|a| a.with_weights_dtype(dtype).unwrap()).collect();
        let got = run(&q, &held);
        let d = max_diff(&got, &full);
        eprintln!(
            "{dtype:?} adapters vs f32 adapters on the same base: max |Δlogit| {d:.4}, rms {:.4}, same argmax {}/{}",
            rms(&got, &full),
            agree(&got, &full),
            full.len()
        );
        assert!(d <= base, "{dtype:?} adapters move the logits by {d}, the base's quantization by {base}");
    }
    // Decode steps of 8 sequences (after a 24-token prefill), one adapter for all,
    // three or eight, as adapters are held: milliseconds per step (median of 20).
    // Eight groups of one row over the same adapter's memory split the cost of
    // eight distinct adapters into the single-row arithmetic and their bytes.
    for dtype in [ml::AdapterDtype::F32, ml::AdapterDtype::Bf16, ml::AdapterDtype::I8] {
        let held: Vec<LoraAdapter> = f32s.iter().map(|a| a.with_weights_dtype(dtype).unwrap()).collect();
        let same: Vec<&LoraAdapter> = (0..8).map(|_| &held[0]).collect();
        let own: Vec<&LoraAdapter> = held.iter().collect();
        for (distinct, refs) in [(1usize, &own), (3, &own), (8, &own), (8, &same)] {
            let mut cache = KvCache::new(&q.config, 8, 64);
            let seqs = (0..8)
                .map(|i| SeqStep {
                    seq: i as u64,
                    tokens: &prompts[i % 6],
                    adapter: Some(i % distinct),
                    logits: Logits::Last,
                })
                .collect();
            q.forward(&Step { seqs }, &mut cache, refs).unwrap();
            let (mut times, mut prof) = (Vec::new(), ml::OpProfile::default());
            for t in 0..20u32 {
                let toks: Vec<[u32; 1]> = (0..8).map(|i| [(t * 31 + i * 7) % vocab]).collect();
                let seqs = (0..8)
                    .map(|i| SeqStep {
                        seq: i as u64,
                        tokens: &toks[i],
                        adapter: Some(i % distinct),
                        logits: Logits::Last,
                    })
                    .collect();
                let s = std::time::Instant::now();
                q.forward_profiled(&Step { seqs }, &mut cache, refs, &mut prof).unwrap();
                times.push(s.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            eprintln!(
                "{dtype:?} adapters, {distinct} groups (one adapter's memory: {}): decode step of 8 p50 {:.2} ms (adapter work outside the base products' region {:.2} ms on average)",
                std::ptr::eq(refs[0], refs[7]),
                times[10],
                prof.lora * 1e3 / prof.steps.max(1) as f64
            );
        }
    }
    // A cold load for an int8 cache: PEFT files read, parsed, hashed and
    // held as int8, by loading as f32 then converting, and straight from the
    // bytes as the serving cache does (median of 9, one thread).
    let peft = dir.path().join("peft");
    f32s[0].save_peft(&peft, "x").unwrap();
    let median = |f: &dyn Fn() -> LoraAdapter| {
        let mut t: Vec<f64> = (0..9)
            .map(|_| {
                let s = std::time::Instant::now();
                let a = f();
                let e = s.elapsed().as_secs_f64() * 1e3;
                assert_eq!(a.hash, f32s[0].hash);
                e
            })
            .collect();
        t.sort_by(f64::total_cmp);
        t[4]
    };
    let after =
        median(&|| LoraAdapter::load_peft(&peft, &q.config).unwrap().with_weights_dtype(ml::AdapterDtype::I8).unwrap());
    let straight = median(&|| LoraAdapter::load_peft_as(&peft, &q.config, ml::AdapterDtype::I8).unwrap());
    eprintln!(
        "cold load of an r-16 adapter on all seven targets into int8: load then convert {after:.1} ms, straight from the bytes {straight:.1} ms"
    );
}

/// A Q4_K GGUF (its 320-wide down projection falls back to Q5_0, as
/// llama-quantize does), a Q5_K one (falling back to Q5_1) and a Q6_K one
/// (falling back to Q8_0) serve close to the f32 path on their dequantized
/// weights (tolerance, of the largest logit: Q4_K 2% as for the 32-block
/// formats, Q5_K and Q6_K 3%; measured: see the message),
/// with an f32 LoRA adapter beside the base, and a sequence's logits are the
/// same bits alone and in a batch, at 1, 2 and 3 threads.
#[test]
fn k_quant_models_serve_close_to_the_f32_path_and_batch_invariantly() {
    let dir = tempfile::tempdir().unwrap();
    let source = wide_llama(&dir.path().join("wide"));
    k_quant_model_serves(&source, dir.path(), QuantType::Q4K, "Q5_0", 0.02);
    // Q6_K's weights are finer, but its activations are Q8_K's too (one scale
    // per 256, as llama.cpp multiplies it), whose rounding is what separates
    // the paths: measured 1.7% without the adapter, 2.2% with it.
    k_quant_model_serves(&source, dir.path(), QuantType::Q6K, "Q8_0", 0.03);
    // Q5_K: measured 1.9% without the adapter, 1.6% with it.
    k_quant_model_serves(&source, dir.path(), QuantType::Q5K, "Q5_1", 0.03);
}

fn k_quant_model_serves(source: &ModelFiles, dir: &std::path::Path, ty: QuantType, fallback: &str, tolerance: f32) {
    let (q, f) = quantized_pair(source, ty, dir, "model.layers.0.mlp.down_proj.weight", fallback);
    let cfg = LoraConfig { r: 4, lora_alpha: 8.0, lora_dropout: 0.0, target_modules: Target::ALL.to_vec() };
    let adapter = LoraAdapter::random(cfg, &q.config, 5, 0.05).unwrap();
    for a in [None, Some(&adapter)] {
        let (lq, lf) = (all_logits(&q, a), all_logits(&f, a));
        let (d, scale) = (max_diff(&lq, &lf), max_abs(&lf));
        eprintln!("{ty:?}: adapter {}: max |Δlogit| {d:.5} of {scale:.3} ({:.3}%)", a.is_some(), 100.0 * d / scale);
        assert!(d > 0.0 && d <= tolerance * scale, "{ty:?}: logits differ by {d} (scale {scale})");
    }
    let mut rows = Vec::new();
    for t in [1, 2, 3] {
        let batched = in_pool(t, || {
            let mut cache = KvCache::new(&q.config, 4, 64);
            let prompts: Vec<Vec<u32>> =
                (0..5).map(|i| (0..4 + i).map(|j| (i * 31 + j * 7) as u32 % 500).collect()).collect();
            let seqs = prompts
                .iter()
                .enumerate()
                .map(|(i, p)| SeqStep {
                    seq: i as u64,
                    tokens: p,
                    adapter: (i % 2 == 0).then_some(0),
                    logits: Logits::Last,
                })
                .collect();
            let o = q.forward(&Step { seqs }, &mut cache, &[&adapter]).unwrap();
            (0..5).map(|i| bits(&o.last(i).unwrap())).collect::<Vec<_>>()
        });
        rows.push(batched);
    }
    assert!(rows.iter().all(|r| r == &rows[0]), "thread counts change {ty:?} logits");
    let tokens: Vec<u32> = (0..4 + 3).map(|j| (3 * 31 + j * 7) as u32 % 500).collect();
    let mut cache = KvCache::for_tokens(&q.config, 64, 4);
    let s = Step { seqs: vec![SeqStep { seq: 9, tokens: &tokens, adapter: None, logits: Logits::Last }] };
    let solo = bits(&q.forward(&s, &mut cache, &[&adapter]).unwrap().last(0).unwrap());
    assert_eq!(solo, rows[0][3], "sequence 3: alone differs from batched");
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

/// Timings of the quantized kernels at SmolLM2-135M's shapes (run by hand:
/// `cargo test --release -p ml --test quant -- --ignored --nocapture timings`;
/// `OPENLEDGER_TIMINGS=Q8_0:8:Avx512Vnni` times one format at one row count on
/// one implementation, for `perf`).
#[test]
#[ignore]
fn timings() {
    let only = std::env::var("OPENLEDGER_TIMINGS").ok();
    let only = only.as_deref().map(|s| s.split(':').collect::<Vec<_>>());
    let only = only.as_deref().map(|v| (v[0], v.get(1).copied().unwrap_or("*"), v.get(2).copied().unwrap_or("*")));
    let pick = |want: &str, got: String| want == "*" || want == got;
    for ty in [
        QuantType::Q4_1,
        QuantType::Q8_0,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q4K,
        QuantType::Q5K,
        QuantType::Q6K,
    ] {
        if only.is_some_and(|(t, _, _)| !pick(t, format!("{ty:?}"))) {
            continue;
        }
        let (n, k) = (1536, if k_quant(ty) { 1536 } else { 576 });
        let w = quantized(ty, n, k, 1);
        let wf = w.dequantize();
        for m in [1, 8, 32] {
            if only.is_some_and(|(_, r, _)| !pick(r, m.to_string())) {
                continue;
            }
            let x = rand_vec(m * k, 2);
            let mut y = vec![0.0f32; m * n];
            // Longer when one is picked, so that `perf` has samples enough.
            let reps = 2000 / m * if only.is_some() { 20 } else { 1 };
            let t = std::time::Instant::now();
            for _ in 0..reps {
                kernels::linear(&x, Weights::F32(&wf), k, &mut y).unwrap();
            }
            let f = t.elapsed().as_secs_f64() / reps as f64 * 1e6;
            let mut line = format!("{ty:?} m={m:2}: f32 {f:7.1} µs");
            for isa in isas() {
                if only.is_some_and(|(_, _, i)| !pick(i, format!("{isa:?}"))) {
                    continue;
                }
                let t = std::time::Instant::now();
                for _ in 0..reps {
                    kernels::linear_q_with(isa, &x, &w, &mut y).unwrap();
                }
                let q = t.elapsed().as_secs_f64() / reps as f64 * 1e6;
                line += &format!("  {isa:?} {q:7.1} µs ({:.2}×)", f / q);
            }
            eprintln!("{line}");
        }
    }
}

/// Write a model as a Q4_K GGUF for the benchmarks (run by hand, in release:
/// `OPENLEDGER_Q4K_SRC=in.gguf OPENLEDGER_Q4K_OUT=out.gguf cargo test --release
/// -p ml --test quant -- --ignored write_q4k_gguf`).
#[test]
#[ignore]
fn write_q4k_gguf() {
    let (src, out) = (std::env::var("OPENLEDGER_Q4K_SRC").unwrap(), std::env::var("OPENLEDGER_Q4K_OUT").unwrap());
    ModelFiles::open(std::path::Path::new(&src))
        .unwrap()
        .write_gguf_as(std::path::Path::new(&out), Some(QuantType::Q4K))
        .unwrap();
}

/// Several matrices of one input in one call (a layer's q, k and v): each
/// output is the bits `linear_q` gives it alone, with one format or mixed
/// (a llama.cpp Q4_K_M file mixes them), at 1, 2 and 3 threads; mismatched
/// widths and counts are errors.
#[test]
fn products_of_one_input_together_equal_each_alone() {
    let (m, k) = (5, 512);
    let x = rand_vec(m * k, 31);
    let sets: [&[(QuantType, usize)]; 3] = [
        &[(QuantType::Q4_1, 40), (QuantType::Q4_1, 17), (QuantType::Q4_1, 8)],
        &[(QuantType::Q4K, 33), (QuantType::Q8_0, 16), (QuantType::Q4_0, 9), (QuantType::Q4K, 3)],
        &[(QuantType::Q8_0, 300)],
    ];
    let memory = vec![7u8; 1 << 20];
    let warm_bytes: [&[u8]; 4] = [&memory[..63], &[], &memory[100..5100], &memory[..]];
    for (s, set) in sets.iter().enumerate() {
        let ws: Vec<QMatrix> =
            set.iter().enumerate().map(|(i, &(ty, n))| quantized(ty, n, k, 200 + 10 * s as u64 + i as u64)).collect();
        for isa in isas() {
            let alone: Vec<Vec<f32>> = ws.iter().map(|w| run(isa, &x, w)).collect();
            for t in [1, 2, 3] {
                let mut ys: Vec<Vec<f32>> = ws.iter().map(|w| vec![f32::NAN; m * w.rows()]).collect();
                let refs: Vec<&QMatrix> = ws.iter().collect();
                let mut outs: Vec<&mut [f32]> = ys.iter_mut().map(|y| &mut y[..]).collect();
                in_pool(t, || kernels::linear_q_many_with(isa, &x, &refs, &mut outs)).unwrap();
                for (i, (y, a)) in ys.iter().zip(&alone).enumerate() {
                    assert_eq!(bits(y), bits(a), "set {s}, matrix {i}, {isa:?}, {t} threads");
                }
                // Extra tasks in the same region (fewer, as many and more than
                // the products' own): each runs once, the products are the same.
                for extra in [0, 1, 7, 200] {
                    let ran: Vec<AtomicU32> = (0..extra).map(|_| AtomicU32::new(0)).collect();
                    let mut ys: Vec<Vec<f32>> = ws.iter().map(|w| vec![f32::NAN; m * w.rows()]).collect();
                    let mut outs: Vec<&mut [f32]> = ys.iter_mut().map(|y| &mut y[..]).collect();
                    let bump = |i: usize| {
                        ran[i].fetch_add(1, Ordering::Relaxed);
                    };
                    in_pool(t, || kernels::linear_q_many_warming(isa, &x, &refs, &mut outs, &[], extra, &bump))
                        .unwrap();
                    assert!(ran.iter().all(|r| r.load(Ordering::Relaxed) == 1), "{extra} extra tasks, {t} threads");
                    for (i, (y, a)) in ys.iter().zip(&alone).enumerate() {
                        assert_eq!(bits(y), bits(a), "set {s}, matrix {i}, {extra} extra tasks, {t} threads");
                    }
                    // With the memory each extra task reads (then run by the
                    // product tasks, after them): slices of odd lengths, an
                    // empty one, more lines than the products have panels.
                    for slices in [&warm_bytes[..1], &warm_bytes[..]] {
                        let warm: Vec<&[&[u8]]> = (0..extra).map(|e| &slices[..(e + 1).min(slices.len())]).collect();
                        let warm = &warm[..];
                        ran.iter().for_each(|r| r.store(0, Ordering::Relaxed));
                        let mut ys: Vec<Vec<f32>> = ws.iter().map(|w| vec![f32::NAN; m * w.rows()]).collect();
                        let mut outs: Vec<&mut [f32]> = ys.iter_mut().map(|y| &mut y[..]).collect();
                        in_pool(t, || kernels::linear_q_many_warming(isa, &x, &refs, &mut outs, warm, extra, &bump))
                            .unwrap();
                        assert!(ran.iter().all(|r| r.load(Ordering::Relaxed) == 1), "{extra} extra tasks, warming");
                        for (i, (y, a)) in ys.iter().zip(&alone).enumerate() {
                            assert_eq!(bits(y), bits(a), "set {s}, matrix {i}, {extra} extra tasks, warming");
                        }
                    }
                }
            }
        }
    }
    let (a, b) = (quantized(QuantType::Q4_1, 8, 64, 1), quantized(QuantType::Q4_1, 8, 96, 2));
    let x = rand_vec(2 * 64, 3);
    let (mut y1, mut y2) = (vec![0.0; 16], vec![0.0; 16]);
    assert!(kernels::linear_q_many(&x, &[&a, &b], &mut [&mut y1, &mut y2]).is_err(), "rows of different widths");
    assert!(kernels::linear_q_many(&x, &[&a, &a], &mut [&mut y1]).is_err(), "two matrices, one output");
    assert!(kernels::linear_q_many(&x, &[&a], &mut [&mut y1[..15]]).is_err(), "a short output");
    let reads: [&[&[u8]]; 1] = [&[&[0u8; 64]]];
    let isa = kernels::QuantIsa::detect();
    let err = kernels::linear_q_many_warming(isa, &x, &[&a], &mut [&mut y1], &reads, 2, &|_| {}).unwrap_err();
    assert!(err.to_string().contains("2 extra tasks, memory of 1"), "{err}");
}

/// By hand (issue 23's offset-format probe): one real layer of each GGUF in
/// `OPENLEDGER_PROBE_GGUF` (comma-separated), our product against the exact
/// product of the dequantized weights with the same 8-bit activations (which
/// must agree to f32 rounding) and with the unrounded activations.
#[test]
#[ignore]
fn probe_real_layers() {
    let Ok(files) = std::env::var("OPENLEDGER_PROBE_GGUF") else { return };
    for path in files.split(',') {
        let mf = ModelFiles::open(std::path::Path::new(path)).unwrap();
        for name in ["model.layers.3.mlp.up_proj.weight", "model.layers.3.self_attn.q_proj.weight"] {
            let ml::weights::TensorValue::Quant(w) = &mf.tensors[name].value else { panic!("{name} is not quantized") };
            let (n, k) = (w.rows(), w.cols());
            let wf = w.dequantize();
            let mut r = ml::rng::Rng::new(3);
            let m = 16;
            let mut x: Vec<f32> = (0..m * k).map(|_| (r.next_f64() * 2.0 - 1.0) as f32 * 1.7).collect();
            for i in 0..m {
                for c in [7, 100, 301] {
                    x[i * k + c] *= 30.0;
                }
            }
            let mut y = vec![0.0f32; m * n];
            kernels::linear_q(&x, w, &mut y).unwrap();
            let bv = w.quant_type().block_values();
            let (mut e_formula, mut e_exact, mut norm) = (0.0f64, 0.0f64, 0.0f64);
            for i in 0..m {
                let xr = &x[i * k..(i + 1) * k];
                let mut xq = vec![0.0f64; k];
                for b in 0..k / bv {
                    let xb = &xr[b * bv..(b + 1) * bv];
                    let (q, d) = if bv == QK_K { q8k(xb) } else { q8(xb) };
                    for (o, &qi) in xq[b * bv..(b + 1) * bv].iter_mut().zip(&q) {
                        *o = d as f64 * qi as f64;
                    }
                }
                for j in 0..n {
                    let wr = &wf[j * k..(j + 1) * k];
                    let rounded: f64 = wr.iter().zip(&xq).map(|(&a, &b)| a as f64 * b).sum();
                    let exact: f64 = wr.iter().zip(xr).map(|(&a, &b)| a as f64 * b as f64).sum();
                    let got = y[i * n + j] as f64;
                    e_formula += (got - rounded).powi(2);
                    e_exact += (got - exact).powi(2);
                    norm += exact.powi(2);
                }
            }
            let c = (m * n) as f64;
            eprintln!(
                "{path} {name} {:?}: rms vs same rounded activations {:.3e}, vs exact {:.4}, rms y {:.3}",
                w.quant_type(),
                (e_formula / c).sqrt(),
                (e_exact / c).sqrt(),
                (norm / c).sqrt()
            );
        }
    }
}
