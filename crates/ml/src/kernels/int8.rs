//! `y = x·Wᵀ` for int8 weights held per row with an f32 scale: `W[j, c] =
//! s[j] · q[j, c]`, `q` in −127..=127. What a serving node holds LoRA adapters
//! as when it asks for a quarter of their f32 bytes (`AdapterDtype::I8`).
//!
//! [`linear_i8_t`] takes `W` held transposed, `(k, n)` (A of a LoRA pair as
//! `(in, r)`, B as `(r, out)`), summed in a fixed order of f32 multiplies and
//! adds (never fused: every instruction set rounds alike): four partial sums
//! per output, partial `p` summing `x[i, c] · qᵀ[c, j]` for `c ≡ p (mod 4)` in
//! ascending `c`, then `((p0 + p1) + (p2 + p3)) × s[j]`; vectorised across
//! outputs (AVX-512, AVX2, plain). Four independent chains per output, so a
//! lone row (a decode step's row of an adapter no other row uses) is not
//! bound by the latency of one chain of `k` adds.
//!
//! So a row's result never depends on the other rows, the thread count or the
//! vector width the CPU has: every build gives the same bits (tested).

use super::Isa;
use crate::MlError;

/// Which build of the kernel runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kind {
    fn of(isa: Isa) -> Kind {
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::AvxFma {
            // The AVX-512 build finishes an 8-wide remainder with AVX2.
            if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx2") {
                return Kind::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Kind::Avx2;
            }
        }
        let _ = isa;
        Kind::Plain
    }

    /// Every build this CPU runs (tests compare them all, not only the best).
    #[cfg(test)]
    fn available() -> Vec<Kind> {
        #[allow(unused_mut)]
        let mut kinds = vec![Kind::Plain];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                kinds.push(Kind::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx2") {
                kinds.push(Kind::Avx512);
            }
        }
        kinds
    }
}

#[cfg(target_arch = "x86_64")]
// Index loops on purpose: see the module docs.
#[allow(clippy::needless_range_loop)]
mod x86 {
    //! Index loops over constant bounds only: iterator adapters and closures
    //! would be calls here (they do not inherit the target features), and the
    //! accumulators would leave their registers.
    use std::arch::x86_64::*;

    /// [`super::body_t`] for outputs `from..` in whole registers of `$w`,
    /// `$rows` rows at a time, each output's four partial sums in four
    /// registers; returns the first output it left (fewer than `$w` remain):
    /// one definition for both widths, only the instructions differ.
    macro_rules! linear_t {
        ($name:ident, $feature:literal, $w:literal, $rows:literal, $zero:ident, $set1:ident, $add:ident,
         $mul:ident, $load:ident, $store:ident, $loadq:ident, $widen:ident, $cvt:ident) => {
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $name(x: &[f32], qt: &[i8], s: &[f32], k: usize, y: &mut [f32], from: usize) -> usize {
                let n = s.len();
                let m = x.len() / k;
                assert!(qt.len() == k * n && y.len() == m * n && x.len() == m * k && from <= n);
                let full = from + (n - from) / $w * $w;
                let mut i = 0;
                while i < m {
                    let rows = (m - i).min($rows);
                    let mut o = from;
                    while o < full {
                        let mut acc = [[$zero(); super::PARTIALS]; $rows];
                        // Input c into partial p (= c mod 4, a constant at every
                        // use, so the partials stay in registers). A macro, not a
                        // closure: a closure would not inherit the features.
                        macro_rules! term {
                            ($c:expr, $p:literal) => {
                                let c = $c;
                                // SAFETY: c < k and o + $w <= n, so the $w bytes are
                                // in qt; i + r < m, so x[(i + r) * k + c] is in x.
                                unsafe {
                                    let q = $cvt($widen($loadq(qt.as_ptr().add(c * n + o).cast())));
                                    for r in 0..$rows {
                                        if r < rows {
                                            let xv = $set1(*x.get_unchecked((i + r) * k + c));
                                            acc[r][$p] = $add(acc[r][$p], $mul(xv, q));
                                        }
                                    }
                                }
                            };
                        }
                        let mut c = 0;
                        while c + super::PARTIALS <= k {
                            term!(c, 0);
                            term!(c + 1, 1);
                            term!(c + 2, 2);
                            term!(c + 3, 3);
                            c += super::PARTIALS;
                        }
                        if c < k {
                            term!(c, 0);
                        }
                        if c + 1 < k {
                            term!(c + 1, 1);
                        }
                        if c + 2 < k {
                            term!(c + 2, 2);
                        }
                        for r in 0..$rows {
                            if r < rows {
                                let a = &acc[r];
                                let sum = $add($add(a[0], a[1]), $add(a[2], a[3]));
                                // SAFETY: o + $w <= n, within row i + r of y and within s.
                                unsafe {
                                    let sv = $load(s.as_ptr().add(o));
                                    $store(y.as_mut_ptr().add((i + r) * n + o), $mul(sum, sv));
                                }
                            }
                        }
                        o += $w;
                    }
                    i += rows;
                }
                full
            }
        };
    }

    linear_t!(
        linear_t_avx512,
        "avx512f",
        16,
        4,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_add_ps,
        _mm512_mul_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm_loadu_si128,
        _mm512_cvtepi8_epi32,
        _mm512_cvtepi32_ps
    );
    linear_t!(
        linear_t_avx2,
        "avx2",
        8,
        2,
        _mm256_setzero_ps,
        _mm256_set1_ps,
        _mm256_add_ps,
        _mm256_mul_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm_loadl_epi64,
        _mm256_cvtepi8_epi32,
        _mm256_cvtepi32_ps
    );
}

/// `y[i, j] = s[j] · Σ_c x[i, c] · qt[c, j]`: `x` is `[m, k]`, `qt` is `(k, n)`
/// (the int8 matrix `(n, k)` held transposed), `s` is `[n]`, `y` is `[m, n]`.
/// Runs on the calling thread.
pub fn linear_i8_t(x: &[f32], qt: &[i8], s: &[f32], k: usize, y: &mut [f32]) -> Result<(), MlError> {
    linear_i8_t_with(Isa::detect(), x, qt, s, k, y)
}

/// [`linear_i8_t`] with a chosen implementation (tests compare them).
pub fn linear_i8_t_with(isa: Isa, x: &[f32], qt: &[i8], s: &[f32], k: usize, y: &mut [f32]) -> Result<(), MlError> {
    let n = s.len();
    if k == 0 || !x.len().is_multiple_of(k) || qt.len() != k * n {
        return Err(MlError::Config(format!(
            "linear_i8_t: x has {} values, qt {} and s {}: not rows of {k} against ({k}, {n})",
            x.len(),
            qt.len(),
            n
        )));
    }
    let m = x.len() / k;
    if y.len() != m * n {
        return Err(MlError::Config(format!("linear_i8_t: y has {} values, [{m}, {n}] needs {}", y.len(), m * n)));
    }
    if !isa.available() {
        return Err(MlError::Unsupported(format!("{isa:?} kernels on this CPU")));
    }
    linear_t_kind(Kind::of(isa), x, qt, s, k, y);
    Ok(())
}

/// [`linear_i8_t`] on checked shapes with one build: `kind` from
/// [`Kind::of`] or [`Kind::available`], so the CPU has its features.
fn linear_t_kind(kind: Kind, x: &[f32], qt: &[i8], s: &[f32], k: usize, y: &mut [f32]) {
    match kind {
        // SAFETY: Kind::of and Kind::available give these only on CPUs with the features.
        // A rank of 8 (or a remainder of 8 after whole registers of 16) is
        // one AVX2 register, not eight outputs in plain code.
        #[cfg(target_arch = "x86_64")]
        Kind::Avx512 => unsafe {
            let done = x86::linear_t_avx512(x, qt, s, k, y, 0);
            let done = x86::linear_t_avx2(x, qt, s, k, y, done);
            tail_t(x, qt, s, k, done, y)
        },
        #[cfg(target_arch = "x86_64")]
        Kind::Avx2 => unsafe {
            let done = x86::linear_t_avx2(x, qt, s, k, y, 0);
            tail_t(x, qt, s, k, done, y)
        },
        Kind::Plain => body_t(x, qt, s, k, y),
    }
}

/// Partial sums per output of [`linear_i8_t`].
const PARTIALS: usize = 4;

/// Outputs `from..n` of some rows, as [`body_t`] computes them.
fn tail_t(x: &[f32], qt: &[i8], s: &[f32], k: usize, from: usize, y: &mut [f32]) {
    let n = s.len();
    for (xr, yr) in x.chunks_exact(k).zip(y.chunks_exact_mut(n)) {
        for j in from..n {
            let mut p = [0f32; PARTIALS];
            for c in 0..k {
                p[c % PARTIALS] += xr[c] * qt[c * n + j] as f32;
            }
            yr[j] = ((p[0] + p[1]) + (p[2] + p[3])) * s[j];
        }
    }
}

/// [`linear_i8_t`] in plain Rust: the definition the vector builds follow.
fn body_t(x: &[f32], qt: &[i8], s: &[f32], k: usize, y: &mut [f32]) {
    let n = s.len();
    let mut p = vec![0f32; PARTIALS * n];
    for (xr, yr) in x.chunks_exact(k).zip(y.chunks_exact_mut(n)) {
        p.fill(0.0);
        for (c, (&xc, qc)) in xr.iter().zip(qt.chunks_exact(n)).enumerate() {
            let pc = &mut p[c % PARTIALS * n..(c % PARTIALS + 1) * n];
            for (acc, &q) in pc.iter_mut().zip(qc) {
                *acc += xc * q as f32;
            }
        }
        let (p01, p23) = p.split_at(2 * n);
        let (p0, p1) = p01.split_at(n);
        let (p2, p3) = p23.split_at(n);
        for j in 0..n {
            yr[j] = ((p0[j] + p1[j]) + (p2[j] + p3[j])) * s[j];
        }
    }
}

/// Int8 rows of a row-major `(n, k)` matrix with their scales: each row scaled
/// by its largest magnitude / 127 and rounded to the nearest, ties to even (by
/// adding 1.5 · 2^23, exact for |x| ≤ 127, and reading the integer from the
/// low mantissa bits: plain f32 adds and integer ops that vectorise, where
/// `f32::round` is a library call on baseline x86-64); an all-zero row gets
/// scale 0, a NaN value 0.
pub fn quantize_rows_i8(w: &[f32], k: usize) -> (Vec<i8>, Vec<f32>) {
    let k = k.max(1);
    let mut q = vec![0i8; w.len() / k * k];
    let mut s = Vec::with_capacity(w.len() / k);
    for (row, qr) in w.chunks_exact(k).zip(q.chunks_exact_mut(k)) {
        s.push(quantize_row(row, qr));
    }
    (q, s)
}

/// One row of [`quantize_rows_i8`] into `q`; its scale.
fn quantize_row(row: &[f32], q: &mut [i8]) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    // The largest magnitude, eight lanes at a time (a comparison, so NaN is skipped).
    let mut lanes = [0f32; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            let a = c[l].abs();
            lanes[l] = if a > lanes[l] { a } else { lanes[l] };
        }
    }
    let max = chunks.remainder().iter().chain(&lanes).fold(0f32, |m, v| if v.abs() > m { v.abs() } else { m });
    let scale = max / 127.0;
    if scale == 0.0 {
        q.fill(0);
        return scale;
    }
    for (d, &v) in q.iter_mut().zip(row) {
        let x = v / scale;
        // NaN to 0, then clamp: selects and min/max, which vectorise.
        let x = if x.is_nan() { 0.0 } else { x.clamp(-127.0, 127.0) };
        // x + 1.5 · 2^23 has the rounded integer in its low mantissa bits:
        // take it as an integer difference of the bits (a saturating
        // float-to-int cast would not vectorise).
        *d = ((x + MAGIC).to_bits().wrapping_sub(MAGIC.to_bits())) as i8;
    }
    scale
}

/// A row-major `(rows, cols)` matrix transposed, `(cols, rows)`.
pub fn transpose_i8(q: &[i8], rows: usize, cols: usize) -> Vec<i8> {
    let mut t = vec![0i8; rows * cols];
    for (r, row) in q.chunks_exact(cols).enumerate().take(rows) {
        for (c, &v) in row.iter().enumerate() {
            t[c * rows + r] = v;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(n: usize, seed: u64) -> Vec<f32> {
        let mut st = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                ((st >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn the_transposed_kernel_matches_a_naive_loop_on_every_isa() {
        for (m, n, k) in [
            (1, 5, 16),
            (3, 33, 4),
            (8, 576, 16),
            (5, 1536, 16),
            (2, 7, 1),
            (9, 16, 1536),
            (4, 16, 37),
            (6, 8, 576),
            (5, 32, 100),
            (1, 48, 7),
            (3, 16, 2),
            (7, 24, 576),
            (2, 12, 33),
            (5, 40, 9),
        ] {
            let x = seeded(m * k, 3 + k as u64);
            let w = seeded(n * k, 4 + n as u64);
            let (q, s) = quantize_rows_i8(&w, k);
            // (n, k) -> (k, n)
            let qt: Vec<i8> = (0..k * n).map(|i| q[(i % n) * k + i / n]).collect();
            let mut plain = vec![0f32; m * n];
            linear_i8_t_with(Isa::Scalar, &x, &qt, &s, k, &mut plain).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let want: f64 =
                        (0..k).map(|c| x[i * k + c] as f64 * q[j * k + c] as f64).sum::<f64>() * s[j] as f64;
                    let got = plain[i * n + j] as f64;
                    assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "[{i},{j}] {got} vs {want}");
                }
            }
            // Every build the CPU runs, not only the best: the same bits.
            for kind in Kind::available() {
                let mut fast = vec![0f32; m * n];
                linear_t_kind(kind, &x, &qt, &s, k, &mut fast);
                assert_eq!(
                    fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    plain.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
            }
            // The last row alone gives the bits it gets in the batch (the
            // batch's rows go four at a time, a lone row by itself).
            let mut one = vec![0f32; n];
            linear_i8_t(&x[(m - 1) * k..], &qt, &s, k, &mut one).unwrap();
            let mut all = vec![0f32; m * n];
            linear_i8_t(&x, &qt, &s, k, &mut all).unwrap();
            assert_eq!(one, all[(m - 1) * n..]);
        }
        let mut y = vec![0f32; 4];
        assert!(linear_i8_t(&[1.0; 6], &[1; 5], &[1.0; 2], 3, &mut y).is_err());
        linear_i8_t(&[1.0, 2.0], &[1, -1, 3, 0], &[0.5, 2.0], 2, &mut y[..2]).unwrap();
        assert_eq!(&y[..2], &[3.5, -2.0]);
    }

    #[test]
    fn quantized_rows_are_within_half_a_step() {
        let w = seeded(4 * 100, 9);
        let (q, s) = quantize_rows_i8(&w, 100);
        for (j, row) in w.chunks_exact(100).enumerate() {
            assert!(q[j * 100..(j + 1) * 100].iter().any(|&v| v.abs() == 127), "the largest value maps to ±127");
            for (c, &v) in row.iter().enumerate() {
                assert!((q[j * 100 + c] as f32 * s[j] - v).abs() <= 0.5 * s[j] * 1.0001);
            }
        }
        let (q, s) = quantize_rows_i8(&[0.0; 8], 4);
        assert_eq!((q, s), (vec![0; 8], vec![0.0, 0.0]));
        // Ties to even, NaN to 0.
        let (q, _) = quantize_rows_i8(&[127.0, 2.5, -2.5, 3.5, f32::NAN, -127.0, 0.49, 1.5], 8);
        assert_eq!(q, vec![127, 2, -2, 4, 0, -127, 0, 2]);
        assert_eq!(transpose_i8(&[1, 2, 3, 4, 5, 6], 2, 3), vec![1, 4, 2, 5, 3, 6]);
    }
}
