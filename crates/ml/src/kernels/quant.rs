//! `y = x·Wᵀ` straight from GGUF-quantized weights, kept in memory as the file
//! stores them (ggml's blocks along a row), never widened to f32.
//!
//! What runs is llama.cpp's scheme: each activation row is quantized to 8 bits
//! (per block of 32 as its AVX2 `quantize_row_q8_0` does, `round(x · 127 /
//! max|x|)` ties to even; per super-block of 256 for Q4_K, as its
//! `quantize_row_q8_K_ref`), and every block's product is an exact integer
//! dot product of the weight's and the activation's codes, scaled once:
//! - Q8_0 · Q8_0 and Q4_0 · Q8_0: `d_w · d_x · Σ q_w q_x`;
//! - Q4_1 · Q8_1: `d_w · d_x · Σ q_w q_x + m_w · s_x`, with `s_x = d_x · Σ q_x`;
//! - Q4_K · Q8_K: `d · d_x · Σ_j sc_j Σ q_w q_x − dmin · d_x · Σ_j m_j Σ q_x`
//!   (`j` the eight sub-blocks of 32; both sums exact integers).
//!
//! Why Q8_K (one f32 scale per 256 activations) for Q4_K rather than our
//! 32-blocks: the whole super-block's product, sub-block scales included, is
//! then one exact integer, scaled once, which is llama.cpp's arithmetic and
//! an eighth of the float work; 32-blocks would round the activations a
//! little more finely but cost a float multiply-add per sub-block and give
//! results llama.cpp does not.
//!
//! Unlike llama.cpp the activations' scales stay f32 (it rounds Q8_0's and
//! Q8_1's to f16): the same work, slightly closer to the f32 path.
//!
//! Order of operations, the same on every path so that the vector and scalar
//! code give the same bits: a row's blocks `u = 0, 1, …` (of 32, or 256 for
//! Q4_K) each give an exact integer `isum_u`; lane `u mod 8` of eight f32 lanes
//! takes `lane += (d_w · d_x) · isum_u` (a multiply, then an add: no fused
//! multiply-add), blocks in ascending order, the block count padded to a
//! multiple of 8 with zero blocks (`+= 0 · 0`); the offset terms (Q4_1's
//! `m_w · s_x`, Q4_K's `(dmin · d_x) · Σ_j m_j Σ q_x`) go to eight other lanes
//! the same way; the result is `hsum8(lanes) ± hsum8(offsets)` in the order of
//! [`super::linear`]'s `hsum8`. A row's result depends on its own activations
//! and the weight row only: batch-invariant, and independent of the thread
//! count and of the implementation (scalar, AVX2, AVX-VNNI, AVX-512 VNNI).
//!
//! The vector paths put the integer sums of eight blocks in one register
//! (`lane = block`) so that the float work, scales included, is one vector
//! operation per eight blocks; weight blocks are first decoded (codes, their
//! magnitudes, scales) into a small per-task buffer that every activation row
//! of the task reuses.

use half::f16;

use super::linear::{Out, ROWS_PER_TASK, for_each_block, hsum8};
use super::q4k;
use crate::MlError;

/// Values per block of Q8_0, Q4_0 and Q4_1 (and of every row's width).
pub const QK: usize = 32;
/// Values per Q4_K super-block.
pub const QK_K: usize = q4k::QK_K;

/// A GGUF (ggml) block format that [`linear_q`] multiplies by directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantType {
    /// f16 scale + 32 signed bytes: `x = d · q`.
    Q8_0,
    /// f16 scale + 32 nibbles: `x = d · (q − 8)`.
    Q4_0,
    /// f16 scale, f16 minimum + 32 nibbles: `x = d · q + m`.
    Q4_1,
    /// 256 values: f16 `d`, f16 `dmin`, eight 6-bit scales and minimums, 256
    /// nibbles: `x = d · sc_j · q − dmin · m_j` (see `q4k.rs`).
    Q4K,
}

impl QuantType {
    /// Values per block.
    pub fn block_values(self) -> usize {
        match self {
            QuantType::Q4K => QK_K,
            _ => QK,
        }
    }

    /// Bytes of one block.
    pub fn block_bytes(self) -> usize {
        match self {
            QuantType::Q8_0 => 2 + QK,
            QuantType::Q4_0 => 2 + QK / 2,
            QuantType::Q4_1 => 4 + QK / 2,
            QuantType::Q4K => q4k::BLOCK_BYTES,
        }
    }

    /// The name GGUF tools print ("Q4_1", "Q4_K", ...).
    pub fn name(self) -> &'static str {
        match self {
            QuantType::Q8_0 => "Q8_0",
            QuantType::Q4_0 => "Q4_0",
            QuantType::Q4_1 => "Q4_1",
            QuantType::Q4K => "Q4_K",
        }
    }

    /// Whether the weight codes are signed (multiplied as `|w| · (x with w's sign)`).
    fn signed(self) -> bool {
        matches!(self, QuantType::Q8_0 | QuantType::Q4_0)
    }
}

/// A quantized weight matrix `(rows, cols)`: row `r` is `cols / block_values`
/// blocks, contiguous, in ggml's byte layout (little-endian f16 scales).
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
        let bv = ty.block_values();
        if cols == 0 || !cols.is_multiple_of(bv) {
            return Err(MlError::Format(format!(
                "a {} matrix needs rows of a positive multiple of {bv} values, not {cols}",
                ty.name()
            )));
        }
        let want = rows.checked_mul(cols / bv).and_then(|b| b.checked_mul(ty.block_bytes()));
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

    /// `rows × cols` values (row-major) quantized to Q4_K by llama.cpp's
    /// reference quantizer (`quantize_row_q4_K_ref`).
    pub fn quantize_q4k(rows: usize, cols: usize, x: &[f32]) -> Result<QMatrix, MlError> {
        if cols == 0 || !cols.is_multiple_of(QK_K) || rows.checked_mul(cols) != Some(x.len()) {
            return Err(MlError::Config(format!(
                "Q4_K quantization of {} values as {rows} rows of {cols} (a multiple of {QK_K})",
                x.len()
            )));
        }
        let mut data = Vec::with_capacity(x.len() / QK_K * q4k::BLOCK_BYTES);
        for xb in x.chunks_exact(QK_K) {
            q4k::quantize_block(xb, &mut data);
        }
        QMatrix::new(QuantType::Q4K, rows, cols, data)
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
        self.cols / self.ty.block_values() * self.ty.block_bytes()
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
        let (bb, bv) = (self.ty.block_bytes(), self.ty.block_values());
        for (blk, o) in self.row(r).chunks_exact(bb).zip(out.chunks_exact_mut(bv)) {
            if self.ty == QuantType::Q4K {
                q4k::dequantize_block(blk, o);
                continue;
            }
            let mut q = [0i32; QK];
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

/// A 32-block's codes into `q` (Q4_0 centred: `q − 8`), and its scale and offset.
fn decode_block(ty: QuantType, blk: &[u8], q: &mut [i32; QK]) -> (f32, f32) {
    let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
    match ty {
        QuantType::Q8_0 => {
            for (v, &b) in q.iter_mut().zip(&blk[2..2 + QK]) {
                *v = b as i8 as i32;
            }
            (d, 0.0)
        }
        _ => {
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

/// Blocks of a row of `k` values, and that count padded to a multiple of 8.
fn units(ty: QuantType, k: usize) -> (usize, usize) {
    let nu = k / ty.block_values();
    (nu, nu.div_ceil(8) * 8)
}

/// Activation rows quantized to 8 bits: per 32-block (ggml's Q8_0, or Q8_1
/// with the block sums) or per 256-block (Q8_K, with sums per 32), scales in f32.
#[derive(Debug, Default)]
struct Q8Rows {
    q: Vec<i8>,
    /// Scale per block, `nu_pad` per row (zero past the row's blocks).
    d: Vec<f32>,
    /// `d · Σ q` per block (Q4_1 only), `nu_pad` per row.
    s: Vec<f32>,
    /// `Σ q` per 32 values (Q4_K only), `k / 32` per row.
    bs: Vec<i16>,
    k: usize,
    nu_pad: usize,
}

/// One quantized activation row.
#[derive(Clone, Copy)]
pub(super) struct XRow<'a> {
    pub q: &'a [i8],
    pub d: &'a [f32],
    pub s: &'a [f32],
    pub bs: &'a [i16],
}

impl Q8Rows {
    fn fill(&mut self, x: &[f32], k: usize, ty: QuantType) {
        let (nu, nu_pad) = units(ty, k);
        let m = x.len() / k;
        (self.k, self.nu_pad) = (k, nu_pad);
        self.q.resize(x.len(), 0);
        self.d.clear();
        self.d.resize(m * nu_pad, 0.0);
        self.s.clear();
        self.s.resize(if ty == QuantType::Q4_1 { m * nu_pad } else { 0 }, 0.0);
        self.bs.clear();
        self.bs.resize(if ty == QuantType::Q4K { x.len() / QK } else { 0 }, 0);
        let bv = ty.block_values();
        for (i, (xb, qb)) in x.chunks_exact(bv).zip(self.q.chunks_exact_mut(bv)).enumerate() {
            let at = i / nu * nu_pad + i % nu;
            if ty == QuantType::Q4K {
                self.d[at] = q8k_block(xb, qb);
                for (sum, qs) in self.bs[i * 8..i * 8 + 8].iter_mut().zip(qb.chunks_exact(QK)) {
                    *sum = qs.iter().map(|&v| v as i16).sum();
                }
                continue;
            }
            let amax = xb.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            let mut sum = 0i32;
            for (qv, &xv) in qb.iter_mut().zip(xb) {
                // |x · id| ≤ 127 (up to rounding, which `as` saturates): a code fits in i8.
                *qv = (xv * id).round_ties_even() as i8;
                sum += *qv as i32;
            }
            self.d[at] = d;
            if ty == QuantType::Q4_1 {
                self.s[at] = d * sum as f32;
            }
        }
    }

    fn row(&self, r: usize) -> XRow<'_> {
        let (k, np) = (self.k, self.nu_pad);
        XRow {
            q: &self.q[r * k..(r + 1) * k],
            d: &self.d[r * np..(r + 1) * np],
            s: if self.s.is_empty() { &[] } else { &self.s[r * np..(r + 1) * np] },
            bs: if self.bs.is_empty() { &[] } else { &self.bs[r * k / QK..(r + 1) * k / QK] },
        }
    }
}

/// llama.cpp's `quantize_row_q8_K_ref` for one block of 256: codes into `q`, returns the scale.
fn q8k_block(x: &[f32], q: &mut [i8]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        q.fill(0);
        return 0.0;
    }
    let iscale = -127.0 / max;
    for (qv, &v) in q.iter_mut().zip(x) {
        *qv = ((iscale * v).round_ties_even() as i32).clamp(-128, 127) as i8;
    }
    1.0 / iscale
}

thread_local! {
    /// The calling thread's quantized activations, reused across calls.
    static ACTS: std::cell::RefCell<Q8Rows> = std::cell::RefCell::new(Q8Rows::default());
    /// A task's decoded weight rows, reused across calls.
    static DECODED: std::cell::RefCell<Decoded> = std::cell::RefCell::new(Decoded::default());
}

/// Weight rows decoded for the kernels: codes as unsigned bytes (magnitudes
/// for the signed formats, whose signs are kept beside), block scales in f32.
#[derive(Debug, Default)]
struct Decoded {
    codes: Vec<u8>,
    signs: Vec<i8>,
    /// `d` per block, `nu_pad` per row (zero past the row's blocks).
    dw: Vec<f32>,
    /// Q4_1's `m`, Q4_K's `dmin` per block, `nu_pad` per row.
    mw: Vec<f32>,
    /// Q4_K's sub-block scales and minimums, 8 per block.
    sc: Vec<i16>,
    mins: Vec<i16>,
    k: usize,
    nu_pad: usize,
}

/// One decoded weight row.
#[derive(Clone, Copy)]
pub(super) struct WRow<'a> {
    pub codes: &'a [u8],
    pub signs: &'a [i8],
    pub dw: &'a [f32],
    pub mw: &'a [f32],
    pub sc: &'a [i16],
    pub mins: &'a [i16],
}

impl Decoded {
    /// Decode rows `j0..j1` of `w`.
    fn fill(&mut self, isa: QuantIsa, w: &QMatrix, j0: usize, j1: usize) {
        let (ty, k) = (w.ty, w.cols);
        let (nu, nu_pad) = units(ty, k);
        let rows = j1 - j0;
        (self.k, self.nu_pad) = (k, nu_pad);
        self.codes.resize(rows * k, 0);
        self.signs.resize(if ty.signed() { rows * k } else { 0 }, 0);
        self.dw.clear();
        self.dw.resize(rows * nu_pad, 0.0);
        self.mw.clear();
        self.mw.resize(rows * nu_pad, 0.0);
        let q4k_scales = if ty == QuantType::Q4K { rows * nu * 8 } else { 0 };
        self.sc.resize(q4k_scales, 0);
        self.mins.resize(q4k_scales, 0);
        let (bb, bv) = (ty.block_bytes(), ty.block_values());
        for (r, j) in (j0..j1).enumerate() {
            for (u, blk) in w.row(j).chunks_exact(bb).enumerate() {
                let e = r * k + u * bv;
                let signs = if ty.signed() { &mut self.signs[e..e + bv] } else { &mut [][..] };
                decode_codes(isa, ty, blk, &mut self.codes[e..e + bv], signs);
                let at = r * nu_pad + u;
                self.dw[at] = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                if matches!(ty, QuantType::Q4_1 | QuantType::Q4K) {
                    self.mw[at] = f16::from_le_bytes([blk[2], blk[3]]).to_f32();
                }
                if ty == QuantType::Q4K {
                    for jj in 0..8 {
                        let (sc, m) = q4k::scale_min(jj, &blk[4..16]);
                        self.sc[(r * nu + u) * 8 + jj] = sc as i16;
                        self.mins[(r * nu + u) * 8 + jj] = m as i16;
                    }
                }
            }
        }
    }

    fn row(&self, r: usize) -> WRow<'_> {
        let (k, np) = (self.k, self.nu_pad);
        let sub = k / QK;
        WRow {
            codes: &self.codes[r * k..(r + 1) * k],
            signs: if self.signs.is_empty() { &[] } else { &self.signs[r * k..(r + 1) * k] },
            dw: &self.dw[r * np..(r + 1) * np],
            mw: &self.mw[r * np..(r + 1) * np],
            sc: if self.sc.is_empty() { &[] } else { &self.sc[r * sub..(r + 1) * sub] },
            mins: if self.mins.is_empty() { &[] } else { &self.mins[r * sub..(r + 1) * sub] },
        }
    }
}

/// One block's codes: unsigned codes (or magnitudes) into `codes`, signed codes into `signs`.
fn decode_codes(isa: QuantIsa, ty: QuantType, blk: &[u8], codes: &mut [u8], signs: &mut [i8]) {
    #[cfg(target_arch = "x86_64")]
    if isa != QuantIsa::Scalar {
        // SAFETY: every vector implementation needs AVX2 (checked by the
        // caller); the slices hold one block each.
        unsafe { super::quant_x86::decode_codes(ty, blk, codes, signs) };
        return;
    }
    let _ = isa;
    if ty == QuantType::Q4K {
        q4k::codes(&blk[16..], codes);
        return;
    }
    let mut q = [0i32; QK];
    decode_block(ty, blk, &mut q);
    for (i, &v) in q.iter().enumerate() {
        if ty.signed() {
            signs[i] = v as i8;
            codes[i] = v.unsigned_abs() as u8;
        } else {
            codes[i] = v as u8;
        }
    }
}

/// Which implementation [`linear_q_with`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantIsa {
    /// AVX2 with AVX-512 VNNI's `vpdpbusd` / `vpdpwssd` on 256-bit vectors.
    Avx512Vnni,
    /// AVX2 with AVX-VNNI's (VEX-encoded) `vpdpbusd` / `vpdpwssd`.
    AvxVnni,
    /// 256-bit integer AVX2 (with F16C).
    Avx2,
    /// Plain Rust: the same operations in the same order, so the same bits.
    Scalar,
}

impl QuantIsa {
    /// Every implementation, best first.
    pub const ALL: [QuantIsa; 4] = [QuantIsa::Avx512Vnni, QuantIsa::AvxVnni, QuantIsa::Avx2, QuantIsa::Scalar];

    /// The implementation [`linear_q`] runs: the best this CPU has, unless the
    /// environment variable `OPENLEDGER_QUANT_ISA` (`avx512vnni`, `avxvnni`,
    /// `avx2`, `scalar`) names one it has. Decided once.
    pub fn detect() -> QuantIsa {
        static ISA: std::sync::OnceLock<QuantIsa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            let forced = std::env::var("OPENLEDGER_QUANT_ISA").ok().and_then(|v| {
                QuantIsa::ALL.into_iter().find(|i| i.name().eq_ignore_ascii_case(v.trim()) && i.available())
            });
            forced.unwrap_or_else(|| QuantIsa::ALL.into_iter().find(|i| i.available()).unwrap_or(QuantIsa::Scalar))
        })
    }

    /// The name `OPENLEDGER_QUANT_ISA` takes.
    pub fn name(self) -> &'static str {
        match self {
            QuantIsa::Avx512Vnni => "avx512vnni",
            QuantIsa::AvxVnni => "avxvnni",
            QuantIsa::Avx2 => "avx2",
            QuantIsa::Scalar => "scalar",
        }
    }

    /// Whether this CPU can run `self`.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma") && has!("f16c");
            match self {
                QuantIsa::Scalar => true,
                QuantIsa::Avx2 => avx2,
                QuantIsa::AvxVnni => avx2 && has!("avxvnni"),
                QuantIsa::Avx512Vnni => avx2 && has!("avx512vnni") && has!("avx512vl"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == QuantIsa::Scalar
        }
    }
}

/// `y = x·Wᵀ` for quantized `w` `(n, k)`: `x` is `[m, k]`, `y` is `[m, n]`, row-major.
pub fn linear_q(x: &[f32], w: &QMatrix, y: &mut [f32]) -> Result<(), MlError> {
    linear_q_with(QuantIsa::detect(), x, w, y)
}

/// Weight rows decoded at once: few enough to stay in the core's first-level cache.
const DECODE_ROWS: usize = 8;

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
            let task = |dec: &mut Decoded| {
                for j0 in (c0..c1).step_by(DECODE_ROWS) {
                    let j1 = (j0 + DECODE_ROWS).min(c1);
                    dec.fill(isa, w, j0, j1);
                    for i in r0..r1 {
                        let xr = acts.row(i);
                        for j in j0..j1 {
                            let v = dot(isa, w.ty, dec.row(j - j0), xr, k);
                            // SAFETY: (i, j) is inside y (checked above) and
                            // written by this task only.
                            unsafe { store(out, i * n + j, v) };
                        }
                    }
                }
            };
            DECODED.with(|cell| match cell.try_borrow_mut() {
                Ok(mut dec) => task(&mut dec),
                Err(_) => task(&mut Decoded::default()),
            });
        });
    };
    ACTS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut acts) => {
            acts.fill(x, k, w.ty);
            run(&acts);
        }
        // Re-entered on this thread (a rayon worker running another product while it waits).
        Err(_) => {
            let mut acts = Q8Rows::default();
            acts.fill(x, k, w.ty);
            run(&acts);
        }
    });
    Ok(())
}

/// `y[at] = v` through the shared output pointer (a function, so that closures
/// capture the whole `Out`, which is `Sync`, not its raw pointer).
///
/// # Safety
/// `at` is inside the output, and no other task writes it.
unsafe fn store(out: Out, at: usize, v: f32) {
    // SAFETY: as the caller guarantees.
    unsafe { *out.0.add(at) = v };
}

/// One decoded weight row · one quantized activation row of `k` values.
fn dot(isa: QuantIsa, ty: QuantType, w: WRow, x: XRow, k: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if isa != QuantIsa::Scalar {
        // SAFETY: `isa` is available (checked by the caller); the rows are
        // `k` values of format `ty`, decoded and quantized as the kernels expect.
        return unsafe { super::quant_x86::dot(isa, ty, w, x, k) };
    }
    let _ = isa;
    scalar_dot(ty, w, x, k)
}

/// The portable kernel, in the order of the module docs.
fn scalar_dot(ty: QuantType, w: WRow, x: XRow, k: usize) -> f32 {
    let (nu, nu_pad) = units(ty, k);
    let bv = ty.block_values();
    let mut lanes = [0.0f32; 8];
    let mut offs = [0.0f32; 8];
    for u in 0..nu_pad {
        let (isum, msum) = if u < nu { scalar_block(ty, w, x, u * bv) } else { (0, 0) };
        lanes[u % 8] += (w.dw[u] * x.d[u]) * isum as f32;
        match ty {
            QuantType::Q4_1 => offs[u % 8] += w.mw[u] * x.s[u],
            QuantType::Q4K => offs[u % 8] += (w.mw[u] * x.d[u]) * msum as f32,
            _ => {}
        }
    }
    if ty == QuantType::Q4K { hsum8(&lanes) - hsum8(&offs) } else { hsum8(&lanes) + hsum8(&offs) }
}

/// The exact integer sums of the block from value `e`: `Σ q_w q_x` (Q4_K: `Σ_j
/// sc_j Σ q_w q_x`), and Q4_K's `Σ_j m_j Σ q_x`.
fn scalar_block(ty: QuantType, w: WRow, x: XRow, e: usize) -> (i32, i32) {
    let prod = |a: usize, b: usize| -> i32 {
        if ty.signed() {
            (a..b).map(|i| w.signs[i] as i32 * x.q[i] as i32).sum()
        } else {
            (a..b).map(|i| w.codes[i] as i32 * x.q[i] as i32).sum()
        }
    };
    if ty != QuantType::Q4K {
        return (prod(e, e + QK), 0);
    }
    let sub = e / QK;
    let mut isum = 0;
    let mut msum = 0;
    for j in 0..8 {
        isum += w.sc[sub + j] as i32 * prod(e + QK * j, e + QK * (j + 1));
        msum += w.mins[sub + j] as i32 * x.bs[sub + j] as i32;
    }
    (isum, msum)
}
