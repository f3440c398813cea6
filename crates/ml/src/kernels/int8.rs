//! `y = x·Wᵀ` for int8 weights held per row with an f32 scale: `W[j, c] =
//! s[j] · q[j, c]`, `q` in −127..=127. What a serving node holds LoRA adapters
//! as when it asks for a quarter of their f32 bytes (`AdapterDtype::I8`).
//!
//! Two layouts, each summed in a fixed order of f32 multiplies and adds
//! (never fused: every instruction set rounds alike):
//! - [`linear_i8`], `W` row-major `(n, k)` with long rows (A of a LoRA pair,
//!   `(r, in)`): sixteen lanes, lane `l` summing `q[j, c] · x[i, c]` for
//!   `c ≡ l (mod 16)` in ascending `c` (the last `k mod 16` values go to lanes
//!   0, 1, …), the lanes then added pairwise (8, 4, 2, 1 apart), then × `s[j]`.
//!   AVX-512 keeps the sixteen lanes in one register, AVX2 in two, the plain
//!   build in an array: the same operations on every lane.
//! - [`linear_i8_t`], `W` held transposed `(k, n)` with short rows (B of a
//!   LoRA pair, `(r, out)`): `Σ_c x[i, c] · qᵀ[c, j]` in ascending `c`, then
//!   × `s[j]`, vectorised across outputs by the compiler.
//!
//! So a row's result never depends on the other rows, the thread count or the
//! vector width the CPU has: every build gives the same bits (tested).

use super::Isa;
use crate::MlError;

/// Input rows that go through the weights together.
const ROWS: usize = 4;

const LANES: usize = 16;

/// `y[i, j] = s[j] · Σ_c x[i, c] · q[j, c]`: `x` is `[m, k]`, `q` is `(n, k)`,
/// `s` is `[n]`, `y` is `[m, n]`, all row-major. Runs on the calling thread.
pub fn linear_i8(x: &[f32], q: &[i8], s: &[f32], k: usize, y: &mut [f32]) -> Result<(), MlError> {
    linear_i8_with(Isa::detect(), x, q, s, k, y)
}

/// [`linear_i8`] with a chosen implementation (tests compare them).
pub fn linear_i8_with(isa: Isa, x: &[f32], q: &[i8], s: &[f32], k: usize, y: &mut [f32]) -> Result<(), MlError> {
    let n = s.len();
    if k == 0 || !x.len().is_multiple_of(k) || q.len() != n * k {
        return Err(MlError::Config(format!(
            "linear_i8: x has {} values, q {} and s {n}: not rows of {k} against ({n}, {k})",
            x.len(),
            q.len()
        )));
    }
    let m = x.len() / k;
    if y.len() != m * n {
        return Err(MlError::Config(format!("linear_i8: y has {} values, [{m}, {n}] needs {}", y.len(), m * n)));
    }
    if !isa.available() {
        return Err(MlError::Unsupported(format!("{isa:?} kernels on this CPU")));
    }
    let kind = Kind::of(isa);
    for (xb, yb) in x.chunks(ROWS * k).zip(y.chunks_mut(ROWS * n)) {
        match xb.len() / k {
            4 => rows::<4>(kind, xb, q, s, k, yb),
            3 => rows::<3>(kind, xb, q, s, k, yb),
            2 => rows::<2>(kind, xb, q, s, k, yb),
            _ => rows::<1>(kind, xb, q, s, k, yb),
        }
    }
    Ok(())
}

/// Which build of the lane sums runs.
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
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kind::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Kind::Avx2;
            }
        }
        let _ = isa;
        Kind::Plain
    }
}

type Lanes = [f32; LANES];
/// Weight rows whose lane sums are kept side by side (independent chains).
const COLS: usize = 4;

/// `R` input rows against every weight row, `COLS` weight rows at a time.
fn rows<const R: usize>(kind: Kind, xb: &[f32], q: &[i8], s: &[f32], k: usize, yb: &mut [f32]) {
    let n = s.len();
    let xs: [&[f32]; R] = std::array::from_fn(|r| &xb[r * k..(r + 1) * k]);
    let mut j = 0;
    while j < n {
        if j + COLS <= n {
            let qs: [&[i8]; COLS] = std::array::from_fn(|c| &q[(j + c) * k..(j + c + 1) * k]);
            let mut acc = [[[0f32; LANES]; COLS]; R];
            lanes::<R, COLS>(kind, xs, qs, &mut acc);
            for (r, a) in acc.iter_mut().enumerate() {
                for (c, l) in a.iter_mut().enumerate() {
                    yb[r * n + j + c] = finish(l, xs[r], qs[c]) * s[j + c];
                }
            }
            j += COLS;
        } else {
            let qs = [&q[j * k..(j + 1) * k]];
            let mut acc = [[[0f32; LANES]; 1]; R];
            lanes::<R, 1>(kind, xs, qs, &mut acc);
            for (r, a) in acc.iter_mut().enumerate() {
                yb[r * n + j] = finish(&mut a[0], xs[r], qs[0]) * s[j];
            }
            j += 1;
        }
    }
}

/// One output's sum from its lanes: the last `k mod 16` values into lanes 0,
/// 1, …, then the lanes pairwise (8, 4, 2, 1 apart).
#[inline]
fn finish(a: &mut Lanes, x: &[f32], q: &[i8]) -> f32 {
    let full = q.len() / LANES * LANES;
    for c in full..q.len() {
        a[c - full] += x[c] * q[c] as f32;
    }
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            a[l] += a[l + w];
        }
    }
    a[0]
}

/// Every (row, weight row)'s sixteen lane sums over the first `k - k mod 16` values.
#[inline]
fn lanes<const R: usize, const J: usize>(kind: Kind, xs: [&[f32]; R], qs: [&[i8]; J], out: &mut [[Lanes; J]; R]) {
    match kind {
        // SAFETY: Kind::of chose these only on CPUs with the features.
        #[cfg(target_arch = "x86_64")]
        Kind::Avx512 => unsafe { x86::lanes_avx512(xs, qs, out) },
        #[cfg(target_arch = "x86_64")]
        Kind::Avx2 => unsafe { x86::lanes_avx2(xs, qs, out) },
        Kind::Plain => lanes_plain(xs, qs, out),
    }
}

fn lanes_plain<const R: usize, const J: usize>(xs: [&[f32]; R], qs: [&[i8]; J], out: &mut [[Lanes; J]; R]) {
    let full = qs[0].len() / LANES * LANES;
    for c in (0..full).step_by(LANES) {
        for (x, o) in xs.iter().zip(out.iter_mut()) {
            for (q, a) in qs.iter().zip(o.iter_mut()) {
                for l in 0..LANES {
                    a[l] += x[c + l] * q[c + l] as f32;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
// Index loops on purpose: see the module docs.
#[allow(clippy::needless_range_loop)]
mod x86 {
    //! Index loops over constant bounds only: iterator adapters and closures
    //! would be calls here (they do not inherit the target features), and the
    //! accumulators would leave their registers.
    use super::{LANES, Lanes};
    use std::arch::x86_64::*;

    /// [`super::lanes_plain`] with each sixteen lanes in one 512-bit register.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn lanes_avx512<const R: usize, const J: usize>(
        xs: [&[f32]; R],
        qs: [&[i8]; J],
        out: &mut [[Lanes; J]; R],
    ) {
        let k = qs[0].len();
        for j in 0..J {
            assert!(qs[j].len() == k);
        }
        for r in 0..R {
            assert!(xs[r].len() == k);
        }
        let full = k / LANES * LANES;
        let mut acc = [[_mm512_setzero_ps(); J]; R];
        let mut qv = [_mm512_setzero_ps(); J];
        let mut c = 0;
        while c < full {
            // SAFETY (every load): c + 16 <= full <= k, the length of each q and x.
            unsafe {
                for j in 0..J {
                    qv[j] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(qs[j].as_ptr().add(c).cast())));
                }
                for r in 0..R {
                    let xv = _mm512_loadu_ps(xs[r].as_ptr().add(c));
                    for j in 0..J {
                        acc[r][j] = _mm512_add_ps(acc[r][j], _mm512_mul_ps(xv, qv[j]));
                    }
                }
            }
            c += LANES;
        }
        for r in 0..R {
            for j in 0..J {
                // SAFETY: out[r][j] holds 16 f32.
                unsafe { _mm512_storeu_ps(out[r][j].as_mut_ptr(), acc[r][j]) };
            }
        }
    }

    /// [`super::body_t`] `$w` outputs at a time (one register), four rows at a
    /// time, each output's sum in a register over ascending `c`: one
    /// definition for both widths, only the instructions differ.
    macro_rules! linear_t {
        ($name:ident, $feature:literal, $w:literal, $zero:ident, $set1:ident, $add:ident, $mul:ident,
         $load:ident, $store:ident, $loadq:ident, $widen:ident, $cvt:ident) => {
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $name(x: &[f32], qt: &[i8], s: &[f32], k: usize, y: &mut [f32]) {
                let n = s.len();
                let m = x.len() / k;
                assert!(qt.len() == k * n && y.len() == m * n && x.len() == m * k);
                let full = n / $w * $w;
                let mut i = 0;
                while i < m {
                    let rows = (m - i).min(4);
                    let mut o = 0;
                    while o < full {
                        let mut acc = [$zero(); 4];
                        for c in 0..k {
                            // SAFETY: c < k and o + $w <= n, so the $w bytes are in
                            // qt; i + r < m, so x[(i + r) * k + c] is in x.
                            unsafe {
                                // (No closure: it would not inherit the features.)
                                let q = $cvt($widen($loadq(qt.as_ptr().add(c * n + o).cast())));
                                for r in 0..4 {
                                    if r < rows {
                                        let xv = $set1(*x.get_unchecked((i + r) * k + c));
                                        acc[r] = $add(acc[r], $mul(xv, q));
                                    }
                                }
                            }
                        }
                        for r in 0..4 {
                            if r < rows {
                                // SAFETY: o + $w <= n, within row i + r of y and within s.
                                unsafe {
                                    let sv = $load(s.as_ptr().add(o));
                                    $store(y.as_mut_ptr().add((i + r) * n + o), $mul(acc[r], sv));
                                }
                            }
                        }
                        o += $w;
                    }
                    super::tail_t(&x[i * k..(i + rows) * k], qt, s, k, full, &mut y[i * n..(i + rows) * n]);
                    i += rows;
                }
            }
        };
    }

    linear_t!(
        linear_t_avx512,
        "avx512f",
        16,
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

    /// [`super::lanes_plain`] with lanes 0–7 and 8–15 in two 256-bit registers.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn lanes_avx2<const R: usize, const J: usize>(
        xs: [&[f32]; R],
        qs: [&[i8]; J],
        out: &mut [[Lanes; J]; R],
    ) {
        let k = qs[0].len();
        for j in 0..J {
            assert!(qs[j].len() == k);
        }
        for r in 0..R {
            assert!(xs[r].len() == k);
        }
        let full = k / LANES * LANES;
        let mut lo = [[_mm256_setzero_ps(); J]; R];
        let mut hi = [[_mm256_setzero_ps(); J]; R];
        let mut qlo = [_mm256_setzero_ps(); J];
        let mut qhi = [_mm256_setzero_ps(); J];
        let mut c = 0;
        while c < full {
            // SAFETY (every load): c + 16 <= full <= k, the length of each q and x.
            unsafe {
                for j in 0..J {
                    let p = qs[j].as_ptr().add(c);
                    qlo[j] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p.cast())));
                    qhi[j] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p.add(8).cast())));
                }
                for r in 0..R {
                    let x0 = _mm256_loadu_ps(xs[r].as_ptr().add(c));
                    let x1 = _mm256_loadu_ps(xs[r].as_ptr().add(c + 8));
                    for j in 0..J {
                        lo[r][j] = _mm256_add_ps(lo[r][j], _mm256_mul_ps(x0, qlo[j]));
                        hi[r][j] = _mm256_add_ps(hi[r][j], _mm256_mul_ps(x1, qhi[j]));
                    }
                }
            }
            c += LANES;
        }
        for r in 0..R {
            for j in 0..J {
                // SAFETY: out[r][j] holds 16 f32.
                unsafe {
                    _mm256_storeu_ps(out[r][j].as_mut_ptr(), lo[r][j]);
                    _mm256_storeu_ps(out[r][j].as_mut_ptr().add(8), hi[r][j]);
                }
            }
        }
    }
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
    match Kind::of(isa) {
        // SAFETY: Kind::of chose these only on CPUs with the features.
        #[cfg(target_arch = "x86_64")]
        Kind::Avx512 => unsafe { x86::linear_t_avx512(x, qt, s, k, y) },
        #[cfg(target_arch = "x86_64")]
        Kind::Avx2 => unsafe { x86::linear_t_avx2(x, qt, s, k, y) },
        Kind::Plain => body_t(x, qt, s, k, y),
    }
    Ok(())
}

/// Outputs `from..n` of some rows, as [`body_t`] computes them.
fn tail_t(x: &[f32], qt: &[i8], s: &[f32], k: usize, from: usize, y: &mut [f32]) {
    let n = s.len();
    for (xr, yr) in x.chunks_exact(k).zip(y.chunks_exact_mut(n)) {
        for j in from..n {
            let mut acc = 0f32;
            for c in 0..k {
                acc += xr[c] * qt[c * n + j] as f32;
            }
            yr[j] = acc * s[j];
        }
    }
}

/// [`linear_i8_t`] in plain Rust: the definition the vector builds follow.
fn body_t(x: &[f32], qt: &[i8], s: &[f32], k: usize, y: &mut [f32]) {
    let n = s.len();
    let mut blocks_x = x.chunks_exact(ROWS * k);
    let mut blocks_y = y.chunks_exact_mut(ROWS * n);
    for (xb, yb) in (&mut blocks_x).zip(&mut blocks_y) {
        yb.fill(0.0);
        let [y0, y1, y2, y3]: [&mut [f32]; ROWS] = {
            let (y0, r) = yb.split_at_mut(n);
            let (y1, r) = r.split_at_mut(n);
            let (y2, y3) = r.split_at_mut(n);
            [y0, y1, y2, y3]
        };
        for (c, qc) in qt.chunks_exact(n).enumerate() {
            let (x0, x1, x2, x3) = (xb[c], xb[k + c], xb[2 * k + c], xb[3 * k + c]);
            for ((((q, a0), a1), a2), a3) in
                qc.iter().zip(y0.iter_mut()).zip(y1.iter_mut()).zip(y2.iter_mut()).zip(y3.iter_mut())
            {
                let q = *q as f32;
                *a0 += x0 * q;
                *a1 += x1 * q;
                *a2 += x2 * q;
                *a3 += x3 * q;
            }
        }
        for yr in [y0, y1, y2, y3] {
            for (acc, &sj) in yr.iter_mut().zip(s) {
                *acc *= sj;
            }
        }
    }
    for (xr, yr) in blocks_x.remainder().chunks_exact(k).zip(blocks_y.into_remainder().chunks_exact_mut(n)) {
        yr.fill(0.0);
        for (&xc, qc) in xr.iter().zip(qt.chunks_exact(n)) {
            for (acc, &q) in yr.iter_mut().zip(qc) {
                *acc += xc * q as f32;
            }
        }
        for (acc, &sj) in yr.iter_mut().zip(s) {
            *acc *= sj;
        }
    }
}

/// Int8 rows of a row-major `(n, k)` matrix with their scales: each row scaled
/// by its largest magnitude / 127 and rounded to the nearest, ties to even (by
/// adding and subtracting 1.5 · 2^23, exact for |x| ≤ 127: plain f32 adds that
/// vectorise, where `f32::round` is a library call on baseline x86-64); an
/// all-zero row gets scale 0, a NaN value 0.
pub fn quantize_rows_i8(w: &[f32], k: usize) -> (Vec<i8>, Vec<f32>) {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    let k = k.max(1);
    let mut q = vec![0i8; w.len() / k * k];
    let mut s = Vec::with_capacity(w.len() / k);
    for (row, qr) in w.chunks_exact(k).zip(q.chunks_exact_mut(k)) {
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
        s.push(scale);
        if scale == 0.0 {
            continue;
        }
        for (d, &v) in qr.iter_mut().zip(row) {
            let x = (v / scale).clamp(-127.0, 127.0);
            *d = ((x + MAGIC) - MAGIC) as i32 as i8;
        }
    }
    (q, s)
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
    fn the_row_major_kernel_matches_a_naive_loop_on_every_isa() {
        for (m, n, k) in [(1, 5, 16), (3, 7, 37), (4, 16, 576), (9, 16, 1536), (6, 2, 15), (5, 3, 1)] {
            let x = seeded(m * k, 1 + k as u64);
            let w = seeded(n * k, 2 + n as u64);
            let (q, s) = quantize_rows_i8(&w, k);
            let mut plain = vec![0f32; m * n];
            linear_i8_with(Isa::Scalar, &x, &q, &s, k, &mut plain).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let want: f64 =
                        (0..k).map(|c| x[i * k + c] as f64 * q[j * k + c] as f64).sum::<f64>() * s[j] as f64;
                    let got = plain[i * n + j] as f64;
                    assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "[{i},{j}] {got} vs {want}");
                }
            }
            if Isa::AvxFma.available() {
                let mut fast = vec![0f32; m * n];
                linear_i8_with(Isa::AvxFma, &x, &q, &s, k, &mut fast).unwrap();
                assert_eq!(
                    fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    plain.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{m}x{n}x{k}"
                );
            }
            let mut one = vec![0f32; n];
            linear_i8(&x[(m - 1) * k..], &q, &s, k, &mut one).unwrap();
            let mut all = vec![0f32; m * n];
            linear_i8(&x, &q, &s, k, &mut all).unwrap();
            assert_eq!(one, all[(m - 1) * n..]);
        }
        let mut y = vec![0f32; 4];
        assert!(linear_i8(&[1.0; 6], &[1; 5], &[1.0; 2], 3, &mut y).is_err());
        linear_i8(&[1.0, 2.0, 3.0], &[1, 2, 3, -1, -2, -3], &[0.5, 2.0], 3, &mut y[..2]).unwrap();
        assert_eq!(&y[..2], &[7.0, -28.0]);
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
            if Isa::AvxFma.available() {
                let mut fast = vec![0f32; m * n];
                linear_i8_t_with(Isa::AvxFma, &x, &qt, &s, k, &mut fast).unwrap();
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
