//! `y = x·Wᵀ` straight from GGUF-quantized weights, kept in memory as the file
//! stores them (ggml's blocks of 32 values along a row), never widened to f32.
//!
//! What runs is llama.cpp's scheme: each activation row is quantized per block
//! of 32 to 8 bits (`round(x · 127 / max|x|)`, ties to even, as its AVX2
//! `quantize_row_q8_0` does), and every block's product is an exact integer dot
//! product of the weight's and the activation's codes, scaled once:
//! - Q8_0 · Q8_0 and Q4_0 · Q8_0: `d_w · d_x · Σ q_w q_x`;
//! - Q4_1 · Q8_1: `d_w · d_x · Σ q_w q_x + m_w · s_x`, with `s_x = d_x · Σ q_x`.
//!
//! Unlike llama.cpp the activations' scales stay f32 (it rounds them to f16):
//! the same work, slightly closer to the f32 path.
//!
//! Order of operations, the same on every path so that the vector and scalar
//! code give the same bits: a block's 32 products fall in eight lanes of four
//! consecutive elements (lane `l` holds elements `4l..4l+4`, where AVX2's
//! `maddubs` + `madd` put them); each lane's integer sum is exact; then per
//! block and lane `lane += (d_w · d_x) · sum` (a multiply, then an add: no fused
//! multiply-add, so the scalar path rounds the same), blocks in ascending
//! order; the eight lanes summed in the order of [`super::linear`]'s `hsum8`;
//! Q4_1's `m_w · s_x` terms summed apart in block order and added last. A row's
//! result depends on its own activations and the weight row only: batch-
//! invariant, and independent of the thread count (rows of the output are cut
//! into tasks exactly as for f32 weights).

use half::f16;

use super::linear::{Out, ROWS_PER_TASK, for_each_block, hsum8};
use crate::MlError;

/// Values per quantization block of the formats here.
pub const QK: usize = 32;

/// A GGUF (ggml) block format that [`linear_q`] multiplies by directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantType {
    /// f16 scale + 32 signed bytes: `x = d · q`.
    Q8_0,
    /// f16 scale + 32 nibbles: `x = d · (q − 8)`.
    Q4_0,
    /// f16 scale, f16 minimum + 32 nibbles: `x = d · q + m`.
    Q4_1,
}

impl QuantType {
    /// Bytes of one block of [`QK`] values.
    pub fn block_bytes(self) -> usize {
        match self {
            QuantType::Q8_0 => 2 + QK,
            QuantType::Q4_0 => 2 + QK / 2,
            QuantType::Q4_1 => 4 + QK / 2,
        }
    }

    /// The name GGUF tools print ("Q4_1", ...).
    pub fn name(self) -> &'static str {
        match self {
            QuantType::Q8_0 => "Q8_0",
            QuantType::Q4_0 => "Q4_0",
            QuantType::Q4_1 => "Q4_1",
        }
    }

    /// Whether the activations need their block sums (`s_x`).
    fn with_sums(self) -> bool {
        self == QuantType::Q4_1
    }
}

/// A quantized weight matrix `(rows, cols)`: row `r` is `cols / 32` blocks,
/// contiguous, in ggml's byte layout (little-endian f16 scales).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QMatrix {
    ty: QuantType,
    rows: usize,
    cols: usize,
    data: Vec<u8>,
}

impl QMatrix {
    /// Wrap a tensor's bytes, checking that they are exactly `rows × cols` values.
    pub fn new(ty: QuantType, rows: usize, cols: usize, data: Vec<u8>) -> Result<QMatrix, MlError> {
        if cols == 0 || !cols.is_multiple_of(QK) {
            return Err(MlError::Format(format!(
                "a {} matrix needs rows of a positive multiple of {QK} values, not {cols}",
                ty.name()
            )));
        }
        let want = rows.checked_mul(cols / QK).and_then(|b| b.checked_mul(ty.block_bytes()));
        if want != Some(data.len()) {
            return Err(MlError::Format(format!(
                "a {} matrix of {rows} × {cols} has {} bytes, not {}",
                ty.name(),
                want.map_or("too many".into(), |w| w.to_string()),
                data.len()
            )));
        }
        Ok(QMatrix { ty, rows, cols, data })
    }

    pub fn quant_type(&self) -> QuantType {
        self.ty
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The stored bytes (what a decode step reads).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    fn row_bytes(&self) -> usize {
        self.cols / QK * self.ty.block_bytes()
    }

    fn row(&self, r: usize) -> &[u8] {
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }

    /// Row `r` dequantized into `out` (`cols` values), as ggml dequantizes it.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<(), MlError> {
        if r >= self.rows || out.len() != self.cols {
            return Err(MlError::Config(format!(
                "row {r} of a {} × {} matrix into {} values",
                self.rows,
                self.cols,
                out.len()
            )));
        }
        let bb = self.ty.block_bytes();
        let mut q = [0i32; QK];
        for (blk, o) in self.row(r).chunks_exact(bb).zip(out.chunks_exact_mut(QK)) {
            let (d, m) = decode_block(self.ty, blk, &mut q);
            for (v, &qi) in o.iter_mut().zip(&q) {
                *v = d * qi as f32 + m;
            }
        }
        Ok(())
    }

    /// Every row dequantized, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.rows * self.cols];
        for (r, o) in out.chunks_exact_mut(self.cols).enumerate() {
            self.dequantize_row(r, o).expect("row in range, of cols values");
        }
        out
    }

    /// The matrix with its rows reordered: row `i` of the result is row `from(i)` of this one.
    /// (Blocks run along rows, so a row permutation moves whole byte ranges.)
    pub fn permute_rows(&self, from: impl Fn(usize) -> usize) -> Result<QMatrix, MlError> {
        let mut data = Vec::with_capacity(self.data.len());
        for i in 0..self.rows {
            let src = from(i);
            if src >= self.rows {
                return Err(MlError::Config(format!("row permutation names row {src} of {}", self.rows)));
            }
            data.extend_from_slice(self.row(src));
        }
        QMatrix::new(self.ty, self.rows, self.cols, data)
    }
}

/// A block's codes into `q` (Q4_0 centred: `q − 8`), and its scale and offset.
fn decode_block(ty: QuantType, blk: &[u8], q: &mut [i32; QK]) -> (f32, f32) {
    let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
    match ty {
        QuantType::Q8_0 => {
            for (v, &b) in q.iter_mut().zip(&blk[2..2 + QK]) {
                *v = b as i8 as i32;
            }
            (d, 0.0)
        }
        QuantType::Q4_0 | QuantType::Q4_1 => {
            let (nib, off, m) = if ty == QuantType::Q4_0 {
                (&blk[2..2 + QK / 2], 8, 0.0)
            } else {
                (&blk[4..4 + QK / 2], 0, f16::from_le_bytes([blk[2], blk[3]]).to_f32())
            };
            for (j, &b) in nib.iter().enumerate() {
                q[j] = (b & 0x0F) as i32 - off;
                q[j + QK / 2] = (b >> 4) as i32 - off;
            }
            (d, m)
        }
    }
}

/// Activation rows quantized per block of 32 to 8 bits (ggml's Q8_0, or Q8_1
/// with the block sums), scales in f32.
#[derive(Debug, Default)]
struct Q8Rows {
    q: Vec<i8>,
    /// Scale per block.
    d: Vec<f32>,
    /// `d · Σ q` per block (Q8_1 only).
    s: Vec<f32>,
}

impl Q8Rows {
    fn fill(&mut self, x: &[f32], with_sums: bool) {
        let blocks = x.len() / QK;
        self.q.resize(x.len(), 0);
        self.d.resize(blocks, 0.0);
        self.s.resize(if with_sums { blocks } else { 0 }, 0.0);
        for (b, (xb, qb)) in x.chunks_exact(QK).zip(self.q.chunks_exact_mut(QK)).enumerate() {
            let amax = xb.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            let mut sum = 0i32;
            for (qv, &xv) in qb.iter_mut().zip(xb) {
                // |x · id| ≤ 127 (up to rounding, which `as` saturates): a code fits in i8.
                *qv = (xv * id).round_ties_even() as i8;
                sum += *qv as i32;
            }
            self.d[b] = d;
            if with_sums {
                self.s[b] = d * sum as f32;
            }
        }
    }
}

thread_local! {
    /// The calling thread's quantized activations, reused across calls.
    static ACTS: std::cell::RefCell<Q8Rows> = std::cell::RefCell::new(Q8Rows::default());
}

/// Which implementation [`linear_q_with`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantIsa {
    /// 256-bit integer AVX2 (with F16C for the block scales).
    Avx2,
    /// Plain Rust: the same operations in the same order, so the same bits.
    Scalar,
}

impl QuantIsa {
    /// The best implementation this CPU runs, detected once.
    pub fn detect() -> QuantIsa {
        static ISA: std::sync::OnceLock<QuantIsa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("f16c")
                {
                    return QuantIsa::Avx2;
                }
            }
            QuantIsa::Scalar
        })
    }

    /// Whether this CPU can run `self`.
    pub fn available(self) -> bool {
        match self {
            QuantIsa::Scalar => true,
            QuantIsa::Avx2 => QuantIsa::detect() == QuantIsa::Avx2,
        }
    }
}

/// `y = x·Wᵀ` for quantized `w` `(n, k)`: `x` is `[m, k]`, `y` is `[m, n]`, row-major.
pub fn linear_q(x: &[f32], w: &QMatrix, y: &mut [f32]) -> Result<(), MlError> {
    linear_q_with(QuantIsa::detect(), x, w, y)
}

/// [`linear_q`] with a chosen implementation (tests compare them).
pub fn linear_q_with(isa: QuantIsa, x: &[f32], w: &QMatrix, y: &mut [f32]) -> Result<(), MlError> {
    let (k, n) = (w.cols, w.rows);
    if !x.len().is_multiple_of(k) {
        return Err(MlError::Config(format!("quantized linear: x has {} values, not rows of {k}", x.len())));
    }
    let m = x.len() / k;
    if y.len() != m * n {
        return Err(MlError::Config(format!("quantized linear: y has {} values, [{m}, {n}] needs {}", y.len(), m * n)));
    }
    if !isa.available() {
        return Err(MlError::Unsupported(format!("{isa:?} kernels on this CPU")));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let out = Out(y.as_mut_ptr());
    let run = |acts: &Q8Rows| {
        let threads = rayon::current_num_threads().max(1);
        // Weight rows per task: enough tasks to keep every thread busy, few enough to amortise them.
        let nb = n.div_ceil(4 * threads).clamp(16, 256);
        for_each_block((m, ROWS_PER_TASK), (n, nb), m * n * k / 4, |(r0, r1), (c0, c1)| {
            for j in c0..c1 {
                let wr = w.row(j);
                let mut i = r0;
                while i < r1 {
                    let rows = (r1 - i).min(4);
                    // SAFETY: rows i..i+rows × column j are inside y (checked
                    // above) and written by this task only.
                    unsafe { tile(isa, w.ty, wr, acts, k, i, rows, out, n, j) };
                    i += rows;
                }
            }
        });
    };
    ACTS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut acts) => {
            acts.fill(x, w.ty.with_sums());
            run(&acts);
        }
        // Re-entered on this thread (a rayon worker running another product while it waits).
        Err(_) => {
            let mut acts = Q8Rows::default();
            acts.fill(x, w.ty.with_sums());
            run(&acts);
        }
    });
    Ok(())
}

/// Rows `i..i+rows` (≤ 4) of the output × weight row `j` (bytes `wr`).
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    isa: QuantIsa,
    ty: QuantType,
    wr: &[u8],
    acts: &Q8Rows,
    k: usize,
    i: usize,
    rows: usize,
    y: Out,
    n: usize,
    j: usize,
) {
    let nb = k / QK;
    let s_of = |r: usize| if ty.with_sums() { &acts.s[r * nb..(r + 1) * nb] } else { &[][..] };
    match isa {
        #[cfg(target_arch = "x86_64")]
        QuantIsa::Avx2 => {
            let mut res = [0.0f32; 4];
            // SAFETY: AVX2 and F16C are available (checked by the caller); the
            // rows are inside the activations.
            unsafe { avx2::tile(ty, wr, acts, nb, i, rows, &mut res) };
            for (r, v) in res[..rows].iter().enumerate() {
                // SAFETY: as for the caller.
                unsafe { *y.0.add((i + r) * n + j) = *v };
            }
        }
        _ => {
            for r in i..i + rows {
                let v = scalar_dot(ty, wr, &acts.q[r * k..(r + 1) * k], &acts.d[r * nb..(r + 1) * nb], s_of(r));
                // SAFETY: as for the caller.
                unsafe { *y.0.add(r * n + j) = v };
            }
        }
    }
}

/// One weight row · one quantized activation row, in the order of the module docs.
fn scalar_dot(ty: QuantType, wr: &[u8], xq: &[i8], xd: &[f32], xs: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut summ = 0.0f32;
    let mut q = [0i32; QK];
    for (b, blk) in wr.chunks_exact(ty.block_bytes()).enumerate() {
        let (dw, mw) = decode_block(ty, blk, &mut q);
        let xb = &xq[b * QK..(b + 1) * QK];
        let scale = dw * xd[b];
        for (l, lane) in lanes.iter_mut().enumerate() {
            let s: i32 = (4 * l..4 * l + 4).map(|e| q[e] * xb[e] as i32).sum();
            *lane += scale * s as f32;
        }
        if ty.with_sums() {
            summ += mw * xs[b];
        }
    }
    hsum8(&lanes) + summ
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Q8Rows, QK, QuantType};

    /// An f16 at `p` (little-endian) as f32.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn f16_at(p: *const u8) -> f32 {
        unsafe {
            let bits = u16::from_le_bytes([*p, *p.add(1)]);
            _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
        }
    }

    /// 32 nibbles in element order: the low nibbles of 16 bytes, then the high ones.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn nibbles(p: *const u8) -> __m256i {
        unsafe {
            let t = _mm_loadu_si128(p.cast());
            let both = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
            _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
        }
    }

    /// Weight codes of one block (signed for Q8_0 / Q4_0, unsigned for Q4_1), scale, offset.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn block<const T: u8>(p: *const u8) -> (__m256i, f32, f32) {
        unsafe {
            match T {
                0 => (_mm256_loadu_si256(p.add(2).cast()), f16_at(p), 0.0),
                1 => (_mm256_sub_epi8(nibbles(p.add(2)), _mm256_set1_epi8(8)), f16_at(p), 0.0),
                _ => (nibbles(p.add(4)), f16_at(p), f16_at(p.add(2))),
            }
        }
    }

    /// `rows` (≤ 4) activation rows from row `i` against one weight row.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn tile_t<const T: u8, const R: usize>(wr: &[u8], acts: &Q8Rows, nb: usize, i: usize, res: &mut [f32; 4]) {
        let bb = match T {
            0 => QuantType::Q8_0.block_bytes(),
            1 => QuantType::Q4_0.block_bytes(),
            _ => QuantType::Q4_1.block_bytes(),
        };
        unsafe {
            let ones = _mm256_set1_epi16(1);
            let mut acc = [_mm256_setzero_ps(); R];
            let mut summ = [0.0f32; R];
            for b in 0..nb {
                let (wq, dw, mw) = block::<T>(wr.as_ptr().add(b * bb));
                // Signed × signed through maddubs (unsigned × signed): |w| × (x with w's sign).
                // No pair saturates: |w| ≤ 128 and |x| ≤ 127, so a pair is at most 32,512.
                let aw = if T == 2 { wq } else { _mm256_sign_epi8(wq, wq) };
                for r in 0..R {
                    let row = i + r;
                    let xv = _mm256_loadu_si256(acts.q.as_ptr().add(row * nb * QK + b * QK).cast());
                    let xs = if T == 2 { xv } else { _mm256_sign_epi8(xv, wq) };
                    let p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xs), ones);
                    let scale = _mm256_set1_ps(dw * acts.d[row * nb + b]);
                    acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(scale, _mm256_cvtepi32_ps(p)));
                    if T == 2 {
                        summ[r] += mw * acts.s[row * nb + b];
                    }
                }
            }
            for r in 0..R {
                res[r] = crate::kernels::linear::avx_hsum(acc[r]) + summ[r];
            }
        }
    }

    /// [`tile_t`] for the block format and row count.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn tile(
        ty: QuantType,
        wr: &[u8],
        acts: &Q8Rows,
        nb: usize,
        i: usize,
        rows: usize,
        res: &mut [f32; 4],
    ) {
        macro_rules! by_rows {
            ($t:literal) => {
                match rows {
                    1 => tile_t::<$t, 1>(wr, acts, nb, i, res),
                    2 => tile_t::<$t, 2>(wr, acts, nb, i, res),
                    3 => tile_t::<$t, 3>(wr, acts, nb, i, res),
                    _ => tile_t::<$t, 4>(wr, acts, nb, i, res),
                }
            };
        }
        unsafe {
            match ty {
                QuantType::Q8_0 => by_rows!(0),
                QuantType::Q4_0 => by_rows!(1),
                QuantType::Q4_1 => by_rows!(2),
            }
        }
    }
}
