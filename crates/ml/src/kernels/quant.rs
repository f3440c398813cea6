//! `y = x·Wᵀ` straight from GGUF-quantized weights, kept in memory as the file
//! stores them (ggml's blocks along a row), never widened to f32.
//!
//! What runs is llama.cpp's scheme: each activation row is quantized to 8 bits
//! (per block of 32 as its AVX2 `quantize_row_q8_0` does, `round(x · 127 /
//! max|x|)` ties to even; per super-block of 256 for Q4_K, as its
//! `quantize_row_q8_K_ref`), and every block's product is an exact integer
//! dot product of the weight's and the activation's codes, scaled once:
//! - Q8_0 · Q8_0, Q4_0 · Q8_0 and Q5_0 · Q8_0: `d_w · d_x · Σ q_w q_x`;
//! - Q4_1 · Q8_1 and Q5_1 · Q8_1: `d_w · d_x · Σ q_w q_x + m_w · s_x`, with `s_x = d_x · Σ q_x`;
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
//! Q4_K) each give an exact integer `isum_u`, and the result is one chain
//! `acc = fma(d_w · d_x, isum_u, acc)` over the blocks in ascending order (a
//! multiply, then one fused multiply-add: the vector kernels' float work per
//! block is the integer sum's conversion, the multiply and the fused add),
//! the offset terms (Q4_1's `m_w · s_x`, Q4_K's `(dmin · d_x) · Σ_j m_j Σ
//! q_x`) a second chain `off` with a separate multiply and add, then `acc +
//! off` (Q4_K: `acc − off`). A row's
//! result depends on its own activations and the weight row only: batch-
//! invariant, and independent of the thread count and of the implementation
//! (scalar, AVX2, AVX-VNNI, AVX-512 VNNI).
//!
//! A [`QMatrix`] holds its rows as panels of 8, one row per 32-bit lane,
//! laid out once when it is made (see [`QMatrix`]), so that the vector
//! kernels (`quant_x86.rs`) get the integer sums of a block for 8 rows out of
//! `vpdpbusd` (4 codes × 4 broadcast activation codes per lane) with no
//! horizontal sums and no repacking per call, and the float work is one
//! vector operation per block and 8 rows. The panels hold the same bytes as
//! the file (nibbles still packed two to a byte, scales still f16), only
//! moved, so the matrix takes the file's size (Q4_K 3% more: its 6-bit
//! scales one byte each) and gives the file's bytes back ([`QMatrix::ggml_bytes`]).

use half::f16;

use super::linear::{Out, ROWS_PER_TASK, for_each_task};
use super::{q4k, q5k, q6k};
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
    /// f16 scale, 32 fifth bits (a little-endian u32), 32 nibbles: `x = d · (q − 16)`.
    Q5_0,
    /// f16 scale, f16 minimum, 32 fifth bits, 32 nibbles: `x = d · q + m`.
    Q5_1,
    /// 256 values: f16 `d`, f16 `dmin`, eight 6-bit scales and minimums, 256
    /// nibbles: `x = d · sc_j · q − dmin · m_j` (see `q4k.rs`).
    Q4K,
    /// Q4_K with a fifth bit per code (see `q5k.rs`).
    Q5K,
    /// 256 values: 6-bit codes, sixteen signed 8-bit sub-block scales, f16
    /// `d`: `x = d · sc_j · (q − 32)` (see `q6k.rs`).
    Q6K,
}

impl QuantType {
    /// Every format [`linear_q`] multiplies by directly.
    pub const ALL: [QuantType; 8] = [
        QuantType::Q8_0,
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q4K,
        QuantType::Q5K,
        QuantType::Q6K,
    ];

    /// Values per block.
    pub fn block_values(self) -> usize {
        match self {
            QuantType::Q4K | QuantType::Q5K | QuantType::Q6K => QK_K,
            _ => QK,
        }
    }

    /// Bytes of one block.
    pub fn block_bytes(self) -> usize {
        match self {
            QuantType::Q8_0 => 2 + QK,
            QuantType::Q4_0 => 2 + QK / 2,
            QuantType::Q4_1 => 4 + QK / 2,
            QuantType::Q5_0 => 6 + QK / 2,
            QuantType::Q5_1 => 8 + QK / 2,
            QuantType::Q4K => q4k::BLOCK_BYTES,
            QuantType::Q5K => q5k::BLOCK_BYTES,
            QuantType::Q6K => q6k::BLOCK_BYTES,
        }
    }

    /// The name GGUF tools print ("Q4_1", "Q4_K", ...).
    pub fn name(self) -> &'static str {
        match self {
            QuantType::Q8_0 => "Q8_0",
            QuantType::Q4_0 => "Q4_0",
            QuantType::Q4_1 => "Q4_1",
            QuantType::Q5_0 => "Q5_0",
            QuantType::Q5_1 => "Q5_1",
            QuantType::Q4K => "Q4_K",
            QuantType::Q5K => "Q5_K",
            QuantType::Q6K => "Q6_K",
        }
    }

    /// The dtype a model's hash covers for a tensor of this format: [`Self::name`],
    /// except Q5_K's "Q5K" and Q6_K's "Q6K", the names they had when the node
    /// widened them to f32 at load (hashes of files with such tensors are as
    /// they were).
    pub fn hashed_name(self) -> &'static str {
        match self {
            QuantType::Q5K => "Q5K",
            QuantType::Q6K => "Q6K",
            ty => ty.name(),
        }
    }

    /// Whether codes carry a fifth bit beside their nibbles (Q5_0, Q5_1, Q5_K).
    pub(super) fn fifth_bit(self) -> bool {
        matches!(self, QuantType::Q5_0 | QuantType::Q5_1 | QuantType::Q5K)
    }

    /// Whether values have an offset: `m` (Q4_1, Q5_1) or `dmin · m_j` (Q4_K, Q5_K).
    pub(super) fn has_min(self) -> bool {
        matches!(self, QuantType::Q4_1 | QuantType::Q5_1 | QuantType::Q4K | QuantType::Q5K)
    }

    /// Activation values per block sum the products need (`Σ q_x` over them):
    /// Q6_K's sub-blocks of 16, 32 for the others.
    pub(super) fn sum_values(self) -> usize {
        if self == QuantType::Q6K { 16 } else { QK }
    }
}

/// A quantized weight matrix `(rows, cols)`, held as panels: rows in groups
/// of 8 (the last padded with zero rows), and for group `g` and block `u` of
/// the row one record at `(g · blocks + u) · record_bytes`:
/// - the codes, word-transposed: 4-byte word `v` of the block's code bytes of
///   the group's row `w` at `(8v + w) · 4` (Q8_0's codes biased by 128 to
///   unsigned bytes; Q4_0/Q4_1's 16 bytes of nibble pairs as they are, so
///   word `v`'s low nibbles are the codes `4v..4v + 4` and its high ones
///   `16 + 4v..`; Q4_K's 128 bytes likewise, word `v`'s low nibbles in
///   sub-block `2(v / 8)` and high ones in the next); Q5_0's 16 nibble bytes
///   as Q4_0's, then a fifth word per row of its fifth bits rearranged: bit
///   `2v + h` of byte `i` is the fifth bit of code `16h + 4v + i` (the code
///   whose nibble is in byte `i`, half `h`, of word `v`), so that step `v`'s
///   bits are one shift and mask of the same bytes; Q5_1 likewise; Q5_K's
///   nibbles as Q4_K's, then 8 words of their fifth bits, word `f` covering
///   nibble words `4f..4f + 4` as Q5_0's fifth word covers its four; Q6_K's codes' low nibbles
///   as Q4_K's nibbles (128 bytes, word `v`'s low nibbles the values `64(v /
///   8) + 4(v mod 8) + i`, its high ones 32 further), then 16 words of their
///   top two bits: byte `i` of word `t` holds, from bit 0, those of word
///   `2t`'s low and high nibble's value, then word `2t + 1`'s;
/// - the 8 rows' f16 scales `d`, then (Q4_1, Q4_K) the 8 offsets `m` / `dmin`;
/// - Q4_K: the 8 rows' sub-block scales as bytes (sub-block `j`, row `w` at
///   `8j + w`), then the minimums the same way; Q6_K: its sixteen signed
///   sub-block scales the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QMatrix {
    ty: QuantType,
    rows: usize,
    cols: usize,
    panels: Vec<u8>,
}

/// Bytes of one row's codes in a block.
pub(super) const fn code_bytes(ty: QuantType) -> usize {
    match ty {
        QuantType::Q8_0 => QK,
        QuantType::Q4_0 | QuantType::Q4_1 => QK / 2,
        QuantType::Q5_0 | QuantType::Q5_1 => QK / 2 + 4,
        QuantType::Q4K => QK_K / 2,
        QuantType::Q5K => QK_K / 2 + QK_K / 8,
        QuantType::Q6K => QK_K / 2 + QK_K / 4,
    }
}

/// Bytes of one panel record (8 rows × one block).
pub(super) const fn record_bytes(ty: QuantType) -> usize {
    let scales = match ty {
        QuantType::Q8_0 | QuantType::Q4_0 | QuantType::Q5_0 => 2,
        QuantType::Q4_1 | QuantType::Q5_1 => 4,
        QuantType::Q4K | QuantType::Q5K => 4 + 16,
        QuantType::Q6K => 2 + 16,
    };
    GROUP * (code_bytes(ty) + scales)
}

/// Where a block's bytes start in ggml's layout: the codes, and the 12 packed Q4_K scales.
fn ggml_codes_at(ty: QuantType) -> usize {
    match ty {
        QuantType::Q8_0 | QuantType::Q4_0 => 2,
        QuantType::Q4_1 => 4,
        QuantType::Q5_0 => 6,
        QuantType::Q5_1 => 8,
        QuantType::Q4K => 16,
        QuantType::Q5K => 48,
        QuantType::Q6K => 0,
    }
}

impl QMatrix {
    /// Wrap a tensor's bytes (ggml's layout), checking that they are exactly
    /// `rows × cols` values, and lay them out as panels.
    pub fn new(ty: QuantType, rows: usize, cols: usize, data: &[u8]) -> Result<QMatrix, MlError> {
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
        let (nu, bb, rec) = (cols / bv, ty.block_bytes(), record_bytes(ty));
        let mut panels = vec![0u8; rows.div_ceil(GROUP) * nu * rec];
        for (j, row) in data.chunks_exact(nu * bb).enumerate() {
            let (g, w) = (j / GROUP, j % GROUP);
            for (u, blk) in row.chunks_exact(bb).enumerate() {
                pack_block(ty, blk, w, &mut panels[(g * nu + u) * rec..][..rec]);
            }
        }
        Ok(QMatrix { ty, rows, cols, panels })
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
        QMatrix::new(QuantType::Q4K, rows, cols, &data)
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

    /// Bytes held (what a decode step reads).
    pub fn bytes_held(&self) -> usize {
        self.panels.len()
    }

    /// The panels (see the type's docs).
    pub(super) fn panels(&self) -> &[u8] {
        &self.panels
    }

    /// Blocks per row.
    pub(super) fn blocks(&self) -> usize {
        self.cols / self.ty.block_values()
    }

    /// Row `j` in ggml's layout, into `out` (cleared first).
    fn ggml_row(&self, j: usize, out: &mut Vec<u8>) {
        let (ty, nu, rec) = (self.ty, self.blocks(), record_bytes(self.ty));
        let (g, w) = (j / GROUP, j % GROUP);
        out.clear();
        for u in 0..nu {
            unpack_block(ty, &self.panels[(g * nu + u) * rec..][..rec], w, out);
        }
    }

    /// The matrix in ggml's layout: the bytes it was made from.
    pub fn ggml_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rows * self.blocks() * self.ty.block_bytes());
        let mut row = Vec::new();
        for j in 0..self.rows {
            self.ggml_row(j, &mut row);
            out.extend_from_slice(&row);
        }
        out
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
        let mut row = Vec::new();
        self.ggml_row(r, &mut row);
        for (blk, o) in row.chunks_exact(bb).zip(out.chunks_exact_mut(bv)) {
            if self.ty == QuantType::Q4K {
                q4k::dequantize_block(blk, o);
                continue;
            }
            if self.ty == QuantType::Q5K {
                q5k::dequantize_block(blk, o);
                continue;
            }
            if self.ty == QuantType::Q6K {
                q6k::dequantize_block(blk, o);
                continue;
            }
            let mut q = [0i32; QK];
            let (d, m) = decode_block(self.ty, blk, &mut q);
            for (v, &qi) in o.iter_mut().zip(&q) {
                // As ggml: `d · q`, plus the minimum only where the format has one (so a zero keeps its sign).
                *v = if self.ty.has_min() { d * qi as f32 + m } else { d * qi as f32 };
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
        let mut data = Vec::with_capacity(self.rows * self.blocks() * self.ty.block_bytes());
        let mut row = Vec::new();
        for i in 0..self.rows {
            let src = from(i);
            if src >= self.rows {
                return Err(MlError::Config(format!("row permutation names row {src} of {}", self.rows)));
            }
            self.ggml_row(src, &mut row);
            data.extend_from_slice(&row);
        }
        QMatrix::new(self.ty, self.rows, self.cols, &data)
    }
}

/// One ggml block of the group's row `w` into its place in a panel record.
fn pack_block(ty: QuantType, blk: &[u8], w: usize, rec: &mut [u8]) {
    if ty == QuantType::Q6K {
        return pack_q6k(blk, w, rec);
    }
    let (at, cb) = (ggml_codes_at(ty), code_bytes(ty));
    let bias = if ty == QuantType::Q8_0 { 0x80 } else { 0 };
    let stored = nibble_bytes(ty);
    for (v, word) in blk[at..at + stored].chunks_exact(4).enumerate() {
        for (o, &b) in rec[(GROUP * v + w) * 4..][..4].iter_mut().zip(word) {
            *o = b ^ bias;
        }
    }
    if ty.fifth_bit() {
        let words = stored / 4;
        for f in 0..words / 4 {
            for i in 0..4 {
                rec[(GROUP * (words + f) + w) * 4 + i] =
                    (0..8).map(|b| fifth_of(ty, blk, nibble_value(ty, 4 * f + b / 2, b % 2, i)) << b).sum();
            }
        }
    }
    let sc = GROUP * cb;
    rec[sc + 2 * w..sc + 2 * w + 2].copy_from_slice(&blk[..2]);
    if ty.has_min() {
        rec[sc + 16 + 2 * w..sc + 16 + 2 * w + 2].copy_from_slice(&blk[2..4]);
    }
    if matches!(ty, QuantType::Q4K | QuantType::Q5K) {
        for j in 0..8 {
            let (s, m) = q4k::scale_min(j, &blk[4..16]);
            (rec[sc + 32 + GROUP * j + w], rec[sc + 96 + GROUP * j + w]) = (s, m);
        }
    }
}

/// Bytes of a row's nibbles in a block (the panel words before any fifth-bit words).
fn nibble_bytes(ty: QuantType) -> usize {
    match ty {
        QuantType::Q5_0 | QuantType::Q5_1 => QK / 2,
        QuantType::Q5K => QK_K / 2,
        ty => code_bytes(ty),
    }
}

/// The value whose nibble is byte `i`, half `half`, of nibble word `v`.
fn nibble_value(ty: QuantType, v: usize, half: usize, i: usize) -> usize {
    if ty.block_values() == QK { 16 * half + 4 * v + i } else { 64 * (v / 8) + 32 * half + 4 * (v % 8) + i }
}

/// Where a block's fifth bits are, and value `e`'s (0 or 1).
fn fifth_of(ty: QuantType, blk: &[u8], e: usize) -> u8 {
    match ty {
        QuantType::Q5K => (blk[16 + e % 32] >> (e / 32)) & 1,
        _ => {
            let at = if ty == QuantType::Q5_0 { 2 } else { 4 };
            (blk[at + e / 8] >> (e % 8)) & 1
        }
    }
}

/// Set value `e`'s fifth bit in a block being rebuilt (all its fifth bits zero before).
fn set_fifth(ty: QuantType, blk: &mut [u8], e: usize, bit: u8) {
    match ty {
        QuantType::Q5K => blk[16 + e % 32] |= bit << (e / 32),
        _ => {
            let at = if ty == QuantType::Q5_0 { 2 } else { 4 };
            blk[at + e / 8] |= bit << (e % 8);
        }
    }
}

/// Q6_K value `e`'s place in the panel words: (word, byte, top-bits word, bit).
fn q6k_place(e: usize) -> (usize, usize, usize, usize) {
    let (p, r) = (e / 64, e % 64);
    let (half, t) = (r / 32, r % 32);
    let v = 8 * p + t / 4;
    (v, t % 4, QK_K / 8 + v / 2, 4 * (v % 2) + 2 * half)
}

/// A Q6_K block of the group's row `w` into its record (see [`QMatrix`]).
fn pack_q6k(blk: &[u8], w: usize, rec: &mut [u8]) {
    let mut q = [0u8; QK_K];
    q6k::codes(blk, &mut q);
    for (e, &c) in q.iter().enumerate() {
        let (v, i, t, bit) = q6k_place(e);
        let shift = 4 * ((e % 64) / 32);
        rec[(GROUP * v + w) * 4 + i] |= (c & 0xF) << shift;
        rec[(GROUP * t + w) * 4 + i] |= (c >> 4) << bit;
    }
    let sc = GROUP * code_bytes(QuantType::Q6K);
    rec[sc + 2 * w..sc + 2 * w + 2].copy_from_slice(&blk[208..210]);
    for j in 0..16 {
        rec[sc + 16 + GROUP * j + w] = blk[q6k::SCALES_AT + j];
    }
}

/// The inverse of [`pack_block`]: the group's row `w` of a record, appended in ggml's layout.
fn unpack_block(ty: QuantType, rec: &[u8], w: usize, out: &mut Vec<u8>) {
    let (at, cb) = (ggml_codes_at(ty), code_bytes(ty));
    let start = out.len();
    out.resize(start + ty.block_bytes(), 0);
    let blk = &mut out[start..];
    if ty == QuantType::Q6K {
        let mut q = [0u8; QK_K];
        for (e, c) in q.iter_mut().enumerate() {
            let (v, i, t, bit) = q6k_place(e);
            let shift = 4 * ((e % 64) / 32);
            *c = ((rec[(GROUP * v + w) * 4 + i] >> shift) & 0xF) | (((rec[(GROUP * t + w) * 4 + i] >> bit) & 3) << 4);
        }
        q6k::pack_codes(&q, blk);
        let sc = GROUP * cb;
        for j in 0..16 {
            blk[q6k::SCALES_AT + j] = rec[sc + 16 + GROUP * j + w];
        }
        blk[208..210].copy_from_slice(&rec[sc + 2 * w..sc + 2 * w + 2]);
        return;
    }
    let sc = GROUP * cb;
    blk[..2].copy_from_slice(&rec[sc + 2 * w..sc + 2 * w + 2]);
    if ty.has_min() {
        blk[2..4].copy_from_slice(&rec[sc + 16 + 2 * w..sc + 16 + 2 * w + 2]);
    }
    if matches!(ty, QuantType::Q4K | QuantType::Q5K) {
        let (mut s, mut m) = ([0u8; 8], [0u8; 8]);
        for j in 0..8 {
            (s[j], m[j]) = (rec[sc + 32 + GROUP * j + w], rec[sc + 96 + GROUP * j + w]);
        }
        blk[4..16].copy_from_slice(&q4k::pack_scales(&s, &m));
    }
    let bias = if ty == QuantType::Q8_0 { 0x80 } else { 0 };
    let stored = nibble_bytes(ty);
    for (v, word) in blk[at..at + stored].chunks_exact_mut(4).enumerate() {
        for (o, &b) in word.iter_mut().zip(&rec[(GROUP * v + w) * 4..][..4]) {
            *o = b ^ bias;
        }
    }
    if ty.fifth_bit() {
        let words = stored / 4;
        for f in 0..words / 4 {
            for i in 0..4 {
                let byte = rec[(GROUP * (words + f) + w) * 4 + i];
                for b in 0..8 {
                    set_fifth(ty, blk, nibble_value(ty, 4 * f + b / 2, b % 2, i), (byte >> b) & 1);
                }
            }
        }
    }
}

/// A 32-block's codes into `q` (Q4_0 centred: `q − 8`, Q5_0: `q − 16`), and its scale and offset.
fn decode_block(ty: QuantType, blk: &[u8], q: &mut [i32; QK]) -> (f32, f32) {
    let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
    match ty {
        QuantType::Q8_0 => {
            for (v, &b) in q.iter_mut().zip(&blk[2..2 + QK]) {
                *v = b as i8 as i32;
            }
            (d, 0.0)
        }
        QuantType::Q5_0 | QuantType::Q5_1 => {
            let (off, m) =
                if ty == QuantType::Q5_0 { (16, 0.0) } else { (0, f16::from_le_bytes([blk[2], blk[3]]).to_f32()) };
            let at = ggml_codes_at(ty);
            for (j, &b) in blk[at..at + QK / 2].iter().enumerate() {
                q[j] = ((b & 0x0F) | (fifth_of(ty, blk, j) << 4)) as i32 - off;
                q[j + QK / 2] = ((b >> 4) | (fifth_of(ty, blk, j + QK / 2) << 4)) as i32 - off;
            }
            (d, m)
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

/// Activation rows quantized to 8 bits: per 32-block (ggml's Q8_0, or Q8_1
/// with the block sums) or per 256-block (Q8_K, with sums per 32), scales in f32.
#[derive(Debug, Default)]
struct Q8Rows {
    q: Vec<i8>,
    /// Scale per block.
    d: Vec<f32>,
    /// `d · Σ q` per block (Q4_1).
    s: Vec<f32>,
    /// `Σ q` per block (Q8_0, Q4_0, Q5_0), per 32 values (Q4_K) or per 16 (Q6_K).
    sums: Vec<i32>,
    k: usize,
    bv: usize,
    /// Values per sum.
    per: usize,
}

/// One quantized activation row.
#[derive(Clone, Copy)]
pub(super) struct XRow<'a> {
    pub q: &'a [i8],
    pub d: &'a [f32],
    pub s: &'a [f32],
    pub sums: &'a [i32],
}

impl Q8Rows {
    fn fill(&mut self, x: &[f32], k: usize, ty: QuantType) {
        let (bv, per) = (ty.block_values(), ty.sum_values());
        (self.k, self.bv, self.per) = (k, bv, per);
        // Rows past the last readable as codes: a tile reads 16 rows at once
        // (AMX), whatever of them the batch has; their results are dropped.
        self.q.resize(x.len() + (AMX_TILE_ROWS - 1) * k, 0);
        self.d.resize(x.len() / bv, 0.0);
        let offsets = matches!(ty, QuantType::Q4_1 | QuantType::Q5_1);
        self.s.resize(if offsets { x.len() / bv } else { 0 }, 0.0);
        self.sums.resize(x.len() / per, 0);
        for (i, (xb, qb)) in x.chunks_exact(bv).zip(self.q.chunks_exact_mut(bv)).enumerate() {
            if bv == QK_K {
                self.d[i] = q8k_block(xb, qb);
                let n = bv / per;
                for (sum, qs) in self.sums[i * n..(i + 1) * n].iter_mut().zip(qb.chunks_exact(per)) {
                    *sum = qs.iter().map(|&v| v as i32).sum();
                }
                continue;
            }
            let (d, sum) = q8_block(xb, qb);
            self.d[i] = d;
            self.sums[i] = sum;
            if offsets {
                self.s[i] = d * sum as f32;
            }
        }
    }

    fn row(&self, r: usize) -> XRow<'_> {
        let (k, nu) = (self.k, self.k / self.bv);
        XRow {
            q: &self.q[r * k..(r + 1) * k],
            d: &self.d[r * nu..(r + 1) * nu],
            s: if self.s.is_empty() { &[] } else { &self.s[r * nu..(r + 1) * nu] },
            sums: &self.sums[r * k / self.per..(r + 1) * k / self.per],
        }
    }
}

/// llama.cpp's 8-bit quantization of one block of 32: codes into `q`, returns
/// the scale `max |x| / 127` and the codes' sum.
#[inline]
fn q8_block(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    #[cfg(target_arch = "x86_64")]
    if let (Ok(x), Ok(q)) = (<&[f32; QK]>::try_from(x), <&mut [i8; QK]>::try_from(&mut *q)) {
        return q8_block_sse2(x, q);
    }
    q8_block_scalar(x, q)
}

/// [`q8_block`] one value at a time (any block length).
fn q8_block_scalar(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut sum = 0i32;
    for (qv, &xv) in q.iter_mut().zip(x) {
        // |x · id| ≤ 127 (up to rounding, which `as` saturates): a code fits in i8.
        *qv = round_even(xv * id) as i8;
        sum += *qv as i32;
    }
    (d, sum)
}

/// [`q8_block_scalar`]'s bits, four values per instruction (SSE2, which every
/// x86-64 CPU has). It ran one value per `maxss` latency before, and the
/// leader quantizes a product's input while the other threads wait. The same
/// bits: the maximum is order-free and skips NaN as `f32::max` does (`maxps`
/// returns its second operand when either is NaN); `cvtps2dq` rounds ties to
/// even (the rounding mode Rust leaves set) as `round_even` does; a NaN
/// product gives code 0 as `as i8` does; the saturating packs meet only
/// codes within ±127.
#[cfg(target_arch = "x86_64")]
fn q8_block_sse2(x: &[f32; QK], q: &mut [i8; QK]) -> (f32, i32) {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86-64; every load and store is inside the arrays.
    unsafe {
        let v: [__m128; 8] = std::array::from_fn(|j| _mm_loadu_ps(x.as_ptr().add(4 * j)));
        let sign = _mm_set1_ps(-0.0);
        let mut m = _mm_setzero_ps();
        for &vj in &v {
            m = _mm_max_ps(_mm_andnot_ps(sign, vj), m);
        }
        m = _mm_max_ps(_mm_shuffle_ps(m, m, 0b01_00_11_10), m);
        m = _mm_max_ps(_mm_shuffle_ps(m, m, 0b10_11_00_01), m);
        let amax = _mm_cvtss_f32(m);
        let d = amax / 127.0;
        let id = _mm_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
        let mut codes = [_mm_setzero_si128(); 8];
        let mut sum = _mm_setzero_si128();
        for (c, &vj) in codes.iter_mut().zip(&v) {
            let p = _mm_mul_ps(vj, id);
            *c = _mm_and_si128(_mm_cvtps_epi32(p), _mm_castps_si128(_mm_cmpord_ps(p, p)));
            sum = _mm_add_epi32(sum, *c);
        }
        for h in 0..2 {
            let lo = _mm_packs_epi32(codes[4 * h], codes[4 * h + 1]);
            let hi = _mm_packs_epi32(codes[4 * h + 2], codes[4 * h + 3]);
            _mm_storeu_si128(q.as_mut_ptr().add(16 * h).cast(), _mm_packs_epi16(lo, hi));
        }
        sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b01_00_11_10));
        sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0b10_11_00_01));
        (d, _mm_cvtsi128_si32(sum))
    }
}

/// `v.round_ties_even()` for the codes' range (|v| < 2^22), without the
/// library call the baseline x86-64 target makes of it: adding 1.5 · 2^23
/// leaves no fraction bits, so the add rounds to the nearest integer, ties to
/// even, and the subtraction is exact. NaN stays NaN.
#[inline]
fn round_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    debug_assert!(v.is_nan() || v.abs() < 4_194_304.0, "{v} is outside the codes' range");
    (v + MAGIC) - MAGIC
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
        *qv = (round_even(iscale * v) as i32).clamp(-128, 127) as i8;
    }
    1.0 / iscale
}

thread_local! {
    /// The calling thread's quantized activations, reused across calls.
    static ACTS: std::cell::RefCell<Vec<Q8Rows>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Weight rows per panel group: one row per 32-bit lane of a 256-bit vector.
pub(super) const GROUP: usize = 8;
/// Weight rows per panel: two groups share each broadcast activation word.
pub(super) const PANEL_ROWS: usize = 2 * GROUP;
/// Activation rows per kernel call: they share every weight load and unpack.
pub(super) const ROW_BLOCK: usize = 4;

/// Activation rows of an AMX tile.
#[cfg(target_arch = "x86_64")]
const AMX_TILE_ROWS: usize = super::quant_x86::amx::TILE_ROWS;
#[cfg(not(target_arch = "x86_64"))]
const AMX_TILE_ROWS: usize = 1;

/// Activation rows a task needs before [`QuantIsa::Amx`] multiplies them with
/// tiles (fewer run the vector kernels, which give the same bits).
pub const AMX_MIN_ROWS: usize = 16;

/// Which implementation [`linear_q_with`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantIsa {
    /// [`QuantIsa::Avx512Vnni`], with Intel AMX tiles for Q8_0, Q4_0 and Q4_1
    /// products of at least [`AMX_MIN_ROWS`] rows (prefill).
    Amx,
    /// AVX2 with AVX-512 VNNI's `vpdpbusd` on 256-bit vectors.
    Avx512Vnni,
    /// AVX2 with AVX-VNNI's (VEX-encoded) `vpdpbusd`.
    AvxVnni,
    /// 256-bit integer AVX2 (with F16C).
    Avx2,
    /// Plain Rust: the same operations in the same order, so the same bits.
    Scalar,
}

impl QuantIsa {
    /// Every implementation, best first.
    pub const ALL: [QuantIsa; 5] =
        [QuantIsa::Amx, QuantIsa::Avx512Vnni, QuantIsa::AvxVnni, QuantIsa::Avx2, QuantIsa::Scalar];

    /// The implementation [`linear_q`] runs: the best this CPU has, unless the
    /// environment variable `OPENLEDGER_QUANT_ISA` (`amx`, `avx512vnni`, `avxvnni`,
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
            QuantIsa::Amx => "amx",
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
                QuantIsa::Amx => QuantIsa::Avx512Vnni.available() && super::quant_x86::amx::usable(),
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
    linear_q_many_with(QuantIsa::detect(), x, &[w], &mut [y])
}

/// [`linear_q`] with a chosen implementation (tests compare them).
pub fn linear_q_with(isa: QuantIsa, x: &[f32], w: &QMatrix, y: &mut [f32]) -> Result<(), MlError> {
    linear_q_many_with(isa, x, &[w], &mut [y])
}

/// `ys[i] = x·wsᵢᵀ` for several matrices of one input (a layer's q, k and v,
/// or gate and up): the input is quantized once per format and every
/// product's tasks run in one parallel region. Each output is the same bits
/// as [`linear_q`] gives it alone.
pub fn linear_q_many(x: &[f32], ws: &[&QMatrix], ys: &mut [&mut [f32]]) -> Result<(), MlError> {
    linear_q_many_with(QuantIsa::detect(), x, ws, ys)
}

/// [`linear_q_many`] with a chosen implementation.
pub fn linear_q_many_with(isa: QuantIsa, x: &[f32], ws: &[&QMatrix], ys: &mut [&mut [f32]]) -> Result<(), MlError> {
    linear_q_many_warming(isa, x, ws, ys, &[], 0, &|_| {})
}

/// [`linear_q_many_with`] with `extra` more tasks, `run_extra(0..extra)`, in
/// the same parallel region: work that reads other memory (an adapter's
/// weights) beside the products' arithmetic. `run_extra` must not touch `ys`;
/// each of its tasks runs once, right after one of the products' tasks and on
/// its thread: product task `t` takes extra tasks `t·extra/own .. (t+1)·extra/own`.
/// `reads` is empty (no hints) or says what memory each extra task reads
/// (`reads[e]`); the product task then prefetches it a few lines per panel
/// while it computes, so that memory is in that core's cache when the extra
/// tasks run and its loads overlapped arithmetic. Hints only: the results are
/// the same bits as without.
pub fn linear_q_many_warming(
    isa: QuantIsa,
    x: &[f32],
    ws: &[&QMatrix],
    ys: &mut [&mut [f32]],
    reads: &[&[&[u8]]],
    extra: usize,
    run_extra: &(dyn Fn(usize) + Sync),
) -> Result<(), MlError> {
    if ws.len() != ys.len() {
        return Err(MlError::Config(format!("quantized linear: {} matrices and {} outputs", ws.len(), ys.len())));
    }
    if !reads.is_empty() && reads.len() != extra {
        return Err(MlError::Config(format!("quantized linear: {} extra tasks, memory of {}", extra, reads.len())));
    }
    let Some(k) = ws.first().map(|w| w.cols) else {
        (0..extra).for_each(run_extra);
        return Ok(());
    };
    if !x.len().is_multiple_of(k) {
        return Err(MlError::Config(format!("quantized linear: x has {} values, not rows of {k}", x.len())));
    }
    let m = x.len() / k;
    for (w, y) in ws.iter().zip(ys.iter()) {
        if w.cols != k {
            return Err(MlError::Config(format!("quantized linear: rows of {} and {k} values from one input", w.cols)));
        }
        if y.len() != m * w.rows {
            let n = w.rows;
            return Err(MlError::Config(format!(
                "quantized linear: y has {} values, [{m}, {n}] needs {}",
                y.len(),
                m * n
            )));
        }
    }
    if !isa.available() {
        return Err(MlError::Unsupported(format!("{isa:?} kernels on this CPU")));
    }
    if m == 0 {
        (0..extra).for_each(run_extra);
        return Ok(());
    }
    // One quantization of x per format among the matrices (usually one).
    let mut types: Vec<QuantType> = ws.iter().map(|w| w.ty).collect();
    types.sort_by_key(|t| t.block_bytes());
    types.dedup();
    let outs: Vec<Out> = ys.iter_mut().map(|y| Out(y.as_mut_ptr())).collect();
    let threads = rayon::current_num_threads().max(1);
    let run = |all: &[Q8Rows]| {
        // Tasks: (matrix, rows, weight rows), each matrix's weight rows per task a
        // multiple of the panel, enough tasks to keep every thread busy.
        let mut tasks = Vec::new();
        let mut macs = 0;
        for (wi, w) in ws.iter().enumerate() {
            let n = w.rows;
            let nb = n.div_ceil(4 * threads).clamp(16, 256).div_ceil(PANEL_ROWS) * PANEL_ROWS;
            for r0 in (0..m).step_by(ROWS_PER_TASK) {
                for c0 in (0..n).step_by(nb) {
                    tasks.push((wi, (r0, (r0 + ROWS_PER_TASK).min(m)), (c0, (c0 + nb).min(n))));
                }
            }
            macs += m * n * k / 4;
        }
        // Each product task takes its share of the extra tasks (with no
        // product task, matrices of no rows, they run alone).
        let own = tasks.len();
        if own == 0 {
            (0..extra).for_each(run_extra);
            return;
        }
        let macs = if extra > 0 { macs.max(super::linear::PARALLEL_MIN_MACS) } else { macs };
        for_each_task(own, macs, |t| {
            let (wi, rows, cols) = tasks[t];
            let (w, out, n) = (ws[wi], outs[wi], ws[wi].rows);
            let acts = &all[types.iter().position(|&ty| ty == w.ty).expect("every format quantized")];
            let mine = t * extra / own..(t + 1) * extra / own;
            let hints = if reads.is_empty() {
                Vec::new()
            } else {
                mine.clone().flat_map(|e| reads[e].iter().copied()).collect()
            };
            let mut warmer = Warmer::new(hints);
            if isa == QuantIsa::Scalar {
                let mut row = Vec::new();
                for j in cols.0..cols.1 {
                    w.ggml_row(j, &mut row);
                    for i in rows.0..rows.1 {
                        let v = scalar_dot(w.ty, &row, acts.row(i));
                        // SAFETY: (i, j) is inside y (checked above) and written by this task only.
                        unsafe { store(out, i * n + j, v) };
                    }
                }
            } else {
                panel_task(isa, w, acts, rows, cols, out, n, &mut warmer);
            }
            mine.for_each(run_extra);
        });
    };
    let fill = |all: &mut Vec<Q8Rows>| {
        all.resize_with(types.len(), Q8Rows::default);
        for (a, &ty) in all.iter_mut().zip(&types) {
            a.fill(x, k, ty);
        }
    };
    ACTS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut all) => {
            fill(&mut all);
            run(&all[..types.len()]);
        }
        // Re-entered on this thread (a rayon worker running another product while it waits).
        Err(_) => {
            let mut all = Vec::new();
            fill(&mut all);
            run(&all);
        }
    });
    Ok(())
}

/// Rows `r0..r1` × weight rows `c0..c1` of the output (row stride `n`), panel by panel.
#[allow(clippy::too_many_arguments)]
fn panel_task(
    isa: QuantIsa,
    w: &QMatrix,
    acts: &Q8Rows,
    (r0, r1): (usize, usize),
    (c0, c1): (usize, usize),
    out: Out,
    n: usize,
    warmer: &mut Warmer,
) {
    // Tasks start at multiples of PANEL_ROWS, so every panel is whole groups.
    debug_assert!(c0.is_multiple_of(GROUP));
    #[cfg(target_arch = "x86_64")]
    if isa == QuantIsa::Amx && r1 - r0 >= AMX_MIN_ROWS && super::quant_x86::amx::handles(w.ty) {
        return amx_task(w, acts, (r0, r1), (c0, c1), out, n, warmer);
    }
    let per = warmer.left.div_ceil((c1 - c0).div_ceil(PANEL_ROWS) * (r1 - r0).div_ceil(ROW_BLOCK));
    // Up to four activation rows at a time share every weight load and unpack;
    // three rows left: the last repeated as a fourth, whose result is dropped.
    // Made once per task, not per panel.
    let blocks: Vec<(usize, usize, [XRow; ROW_BLOCK])> = (r0..r1)
        .step_by(ROW_BLOCK)
        .map(|i| {
            let left = r1 - i;
            let take = if left >= 3 { ROW_BLOCK } else { left };
            let mut xs = [acts.row(i); ROW_BLOCK];
            for (r, x) in xs.iter_mut().enumerate().skip(1) {
                *x = acts.row(i + r.min(left - 1));
            }
            (i, take, xs)
        })
        .collect();
    for j0 in (c0..c1).step_by(PANEL_ROWS) {
        let j1 = (j0 + PANEL_ROWS).min(c1);
        for &(i, take, ref xs) in &blocks {
            warmer.take(per);
            let left = r1 - i;
            let mut res = [[0.0f32; PANEL_ROWS]; ROW_BLOCK];
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` is a vector implementation this CPU runs (checked by
            // the caller); the rows are quantized for `w`'s format and width.
            unsafe {
                super::quant_x86::panel_dot(isa, w, j0 / GROUP, (j1 - j0).div_ceil(GROUP), &xs[..take], &mut res)
            };
            for (r, row) in res.iter().enumerate().take(left.min(ROW_BLOCK)) {
                for (j, &v) in (j0..j1).zip(row) {
                    // SAFETY: (i + r, j) is inside y (checked by the caller) and written by this task only.
                    unsafe { store(out, (i + r) * n + j, v) };
                }
            }
        }
    }
}

/// [`panel_task`] on AMX tiles: per panel of 16 weight rows, its weight tiles
/// made once, then 16 activation rows at a time.
#[cfg(target_arch = "x86_64")]
fn amx_task(
    w: &QMatrix,
    acts: &Q8Rows,
    (r0, r1): (usize, usize),
    (c0, c1): (usize, usize),
    out: Out,
    n: usize,
    warmer: &mut Warmer,
) {
    use super::quant_x86::amx;
    let (k, nu) = (w.cols, w.blocks());
    let per = warmer.left.div_ceil((c1 - c0).div_ceil(PANEL_ROWS) * (r1 - r0).div_ceil(AMX_TILE_ROWS));
    let mut scratch = amx::Scratch::new();
    // SAFETY: the caller runs `QuantIsa::Amx` only where it is available,
    // which includes `amx::usable()`.
    unsafe { amx::configure() };
    for j0 in (c0..c1).step_by(PANEL_ROWS) {
        let j1 = (j0 + PANEL_ROWS).min(c1);
        let (g0, groups) = (j0 / GROUP, (j1 - j0).div_ceil(GROUP));
        // SAFETY: AVX2 is part of the AMX implementation; the groups are the matrix's.
        unsafe { amx::weight_tiles(w, g0, groups, &mut scratch) };
        for i in (r0..r1).step_by(AMX_TILE_ROWS) {
            warmer.take(per);
            let rows = (r1 - i).min(AMX_TILE_ROWS);
            let a = amx::Acts {
                q: &acts.q[i * k..],
                d: &acts.d[i * nu..],
                s: if acts.s.is_empty() { &[] } else { &acts.s[i * nu..] },
                sums: &acts.sums[i * nu..],
                k,
            };
            let mut res = [[0.0f32; PANEL_ROWS]; AMX_TILE_ROWS];
            // SAFETY: configured above; the codes are padded to 16 readable rows
            // past any row (`Q8Rows::fill`); the weight tiles are these groups'.
            unsafe { amx::rows_dot(w, g0, groups, a, rows, &mut scratch, &mut res) };
            for (r, row) in res.iter().enumerate().take(rows) {
                for (j, &v) in (j0..j1).zip(row) {
                    // SAFETY: (i + r, j) is inside y (checked by the caller) and written by this task only.
                    unsafe { store(out, (i + r) * n + j, v) };
                }
            }
        }
    }
    // SAFETY: as for `configure`.
    unsafe { amx::release() };
}

/// The cache line the warm-up hints cover.
const LINE: usize = 64;

/// The memory a product task warms: its slices' 64-byte lines, handed to the
/// prefetcher a few at a time.
struct Warmer<'a> {
    warm: Vec<&'a [u8]>,
    /// The slice and line within it of the next line.
    slice: usize,
    line: usize,
    left: usize,
}

impl<'a> Warmer<'a> {
    fn new(warm: Vec<&'a [u8]>) -> Warmer<'a> {
        let left = warm.iter().map(|w| w.len().div_ceil(LINE)).sum();
        Warmer { warm, slice: 0, line: 0, left }
    }

    /// Prefetch the next `k` lines (fewer at the end of the share).
    fn take(&mut self, k: usize) {
        let mut k = k.min(self.left);
        self.left -= k;
        while k > 0 && self.slice < self.warm.len() {
            let s = self.warm[self.slice];
            let n = s.len().div_ceil(LINE);
            while k > 0 && self.line < n {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: a prefetch is a hint: it reads nothing into the program
                // and cannot fault; the address is inside `s` anyway.
                unsafe {
                    use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
                    _mm_prefetch::<_MM_HINT_T1>(s.as_ptr().add(self.line * LINE).cast());
                }
                self.line += 1;
                k -= 1;
            }
            if self.line >= n {
                self.slice += 1;
                self.line = 0;
            }
        }
    }
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

/// The portable kernel, from the stored bytes, in the order of the module docs.
fn scalar_dot(ty: QuantType, wr: &[u8], x: XRow) -> f32 {
    let (bb, bv) = (ty.block_bytes(), ty.block_values());
    let (mut acc, mut off) = (0.0f32, 0.0f32);
    for (u, blk) in wr.chunks_exact(bb).enumerate() {
        let xq = &x.q[u * bv..(u + 1) * bv];
        // (Q6_K's `d` is at the block's end: read below.)
        let dw = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
        if matches!(ty, QuantType::Q4K | QuantType::Q5K) {
            let (_, dmin, scales, qs) = q4k::parts(blk);
            let mut q = [0u8; QK_K];
            if ty == QuantType::Q5K {
                q5k::codes(blk, &mut q);
            } else {
                q4k::codes(qs, &mut q);
            }
            let (mut isum, mut msum) = (0i32, 0i32);
            for j in 0..8 {
                let (sc, m) = q4k::scale_min(j, scales);
                let dot: i32 = (32 * j..32 * j + 32).map(|e| q[e] as i32 * xq[e] as i32).sum();
                isum += sc as i32 * dot;
                msum += m as i32 * x.sums[u * 8 + j];
            }
            acc = (dw * x.d[u]).mul_add(isum as f32, acc);
            off += (dmin * x.d[u]) * msum as f32;
            continue;
        }
        if ty == QuantType::Q6K {
            let mut q = [0u8; QK_K];
            q6k::codes(blk, &mut q);
            let mut isum = 0i32;
            for j in 0..16 {
                let dot: i32 = (16 * j..16 * j + 16).map(|e| q[e] as i32 * xq[e] as i32).sum();
                isum += q6k::sub_scale(blk, j) as i32 * (dot - 32 * x.sums[u * 16 + j]);
            }
            acc = (q6k::scale(blk) * x.d[u]).mul_add(isum as f32, acc);
            continue;
        }
        let mut q = [0i32; QK];
        let (_, mw) = decode_block(ty, blk, &mut q);
        let isum: i32 = q.iter().zip(xq).map(|(&a, &b)| a * b as i32).sum();
        acc = (dw * x.d[u]).mul_add(isum as f32, acc);
        if matches!(ty, QuantType::Q4_1 | QuantType::Q5_1) {
            off += mw * x.s[u];
        }
    }
    if matches!(ty, QuantType::Q4K | QuantType::Q5K) { acc - off } else { acc + off }
}

#[cfg(test)]
mod tests {
    use super::{QK, q8_block, q8_block_scalar, round_even};

    /// The vector quantizer gives the scalar one's bits: random blocks at many
    /// scales, ties, zeros, one huge value, NaN and infinities.
    #[test]
    fn block_quantizers_agree() {
        let mut r = crate::rng::Rng::new(5);
        let mut blocks: Vec<[f32; QK]> = Vec::new();
        for scale in [1e-30f32, 1e-3, 0.5, 1.0, 7.0, 1e4, 3e38] {
            for _ in 0..200 {
                blocks.push(std::array::from_fn(|_| ((r.next_f64() * 2.0 - 1.0) as f32) * scale));
            }
        }
        // Exact ties once scaled: amax 127 makes id 1.
        blocks.push(std::array::from_fn(|j| if j == 0 { 127.0 } else { j as f32 - 16.5 }));
        blocks.push([0.0; QK]);
        blocks.push(std::array::from_fn(|j| if j % 2 == 0 { -0.0 } else { 0.0 }));
        let mut b: [f32; QK] = std::array::from_fn(|j| j as f32);
        b[3] = f32::NAN;
        blocks.push(b);
        b[3] = f32::INFINITY;
        blocks.push(b);
        b[5] = f32::NEG_INFINITY;
        blocks.push(b);
        blocks.push([f32::NAN; QK]);
        for x in &blocks {
            let (mut a, mut s) = ([0i8; QK], [0i8; QK]);
            let (da, sa) = q8_block(x, &mut a);
            let (ds, ss) = q8_block_scalar(x, &mut s);
            assert_eq!((da.to_bits(), sa, a), (ds.to_bits(), ss, s), "{x:?}");
        }
    }

    #[test]
    fn round_even_is_round_ties_even_over_the_codes_range() {
        let mut vs: Vec<f32> = (-1300..=1300).map(|i| i as f32 / 10.0).collect();
        vs.extend((-130..=130).map(|i| i as f32 + 0.5));
        vs.extend([0.49999997, -0.49999997, 126.99999, -127.00001, f32::MIN_POSITIVE, -0.0]);
        for v in vs {
            assert_eq!(round_even(v), v.round_ties_even(), "{v}");
        }
        assert!(round_even(f32::NAN).is_nan());
    }
}
