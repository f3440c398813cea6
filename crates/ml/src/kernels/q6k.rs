//! ggml's Q6_K super-block (`block_q6_K`, 210 bytes for 256 values): 128 bytes
//! `ql` of low 4 bits, 64 bytes `qh` of high 2 bits, sixteen signed 8-bit
//! sub-block scales (one per 16 values), then an f16 scale `d`. Value `e` is
//! `d · sc_{e/16} · (q_e − 32)` with the 6-bit code `q_e`. In each half `n`
//! of 128 values, with `l` in 0..32: value `128n + l` takes the low nibble of
//! `ql[64n + l]`, `+ 32` the low nibble of `ql[64n + 32 + l]`, `+ 64` and `+
//! 96` their high nibbles; their top bits are bits 0–1, 2–3, 4–5, 6–7 of
//! `qh[32n + l]`. The dequantizer is ggml's `dequantize_row_q6_K`.

use half::f16;

/// Values per Q6_K super-block.
pub const QK_K: usize = 256;
/// Bytes per Q6_K super-block.
pub const BLOCK_BYTES: usize = 210;
/// Where the sub-block scales start in a block; `d` follows them.
pub const SCALES_AT: usize = 192;

/// The 256 six-bit codes of a block (0..64, not yet centred), in value order.
pub fn codes(blk: &[u8], out: &mut [u8; QK_K]) {
    let (ql, qh) = (&blk[..128], &blk[128..192]);
    for n in 0..2 {
        for l in 0..32 {
            let (a, b, h) = (ql[64 * n + l], ql[64 * n + 32 + l], qh[32 * n + l]);
            out[128 * n + l] = (a & 0xF) | ((h & 3) << 4);
            out[128 * n + 32 + l] = (b & 0xF) | (((h >> 2) & 3) << 4);
            out[128 * n + 64 + l] = (a >> 4) | (((h >> 4) & 3) << 4);
            out[128 * n + 96 + l] = (b >> 4) | (((h >> 6) & 3) << 4);
        }
    }
}

/// The inverse of [`codes`]: the 192 bytes of `ql` and `qh` holding `q`
/// (each below 64), into `out`.
pub fn pack_codes(q: &[u8; QK_K], out: &mut [u8]) {
    let (ql, qh) = out[..192].split_at_mut(128);
    for n in 0..2 {
        for l in 0..32 {
            let [a, b, c, d] = [0, 32, 64, 96].map(|o| q[128 * n + o + l] & 63);
            ql[64 * n + l] = (a & 0xF) | ((c & 0xF) << 4);
            ql[64 * n + 32 + l] = (b & 0xF) | ((d & 0xF) << 4);
            qh[32 * n + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((d >> 4) << 6);
        }
    }
}

/// The block's `d`.
pub fn scale(blk: &[u8]) -> f32 {
    f16::from_le_bytes([blk[208], blk[209]]).to_f32()
}

/// Sub-block `j`'s scale.
pub fn sub_scale(blk: &[u8], j: usize) -> i8 {
    blk[SCALES_AT + j] as i8
}

/// One block dequantized as `dequantize_row_q6_K` does it: `(d · sc) · (q − 32)`.
pub fn dequantize_block(blk: &[u8], out: &mut [f32]) {
    let mut q = [0u8; QK_K];
    codes(blk, &mut q);
    let d = scale(blk);
    for (e, o) in out[..QK_K].iter_mut().enumerate() {
        *o = d * sub_scale(blk, e / 16) as f32 * (q[e] as i32 - 32) as f32;
    }
}
