//! ggml's Q5_K super-block (`block_q5_K`, 176 bytes for 256 values): an f16
//! scale `d`, an f16 `dmin`, the twelve bytes of eight 6-bit sub-block scales
//! and minimums (packed as Q4_K's), 32 bytes `qh` of fifth bits, then 128 bytes
//! `qs` of low nibbles. Value `e` of sub-block `j` (32 values) is
//! `d·sc_j · q − dmin·m_j`, with `q` the nibble of `qs[32(j / 2) + e mod 32]`
//! (low for even `j`, high for odd) and, as its fifth bit, bit `j` of
//! `qh[e mod 32]`. The dequantizer is ggml's `dequantize_row_q5_K`.

use half::f16;

use super::q4k::scale_min;

/// Values per Q5_K super-block.
pub const QK_K: usize = 256;
/// Bytes per Q5_K super-block.
pub const BLOCK_BYTES: usize = 176;

/// The 256 five-bit codes of a block, in value order.
pub fn codes(blk: &[u8], out: &mut [u8; QK_K]) {
    let (qh, qs) = (&blk[16..48], &blk[48..176]);
    for (e, o) in out.iter_mut().enumerate() {
        let (j, l) = (e / 32, e % 32);
        let b = qs[32 * (j / 2) + l];
        let nibble = if j % 2 == 0 { b & 0xF } else { b >> 4 };
        *o = nibble | (((qh[l] >> j) & 1) << 4);
    }
}

/// One block dequantized as `dequantize_row_q5_K` does it: `(d · sc) · q − dmin · m`.
pub fn dequantize_block(blk: &[u8], out: &mut [f32]) {
    let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
    let dmin = f16::from_le_bytes([blk[2], blk[3]]).to_f32();
    let mut q = [0u8; QK_K];
    codes(blk, &mut q);
    for j in 0..8 {
        let (sc, m) = scale_min(j, &blk[4..16]);
        let (d1, m1) = (d * sc as f32, dmin * m as f32);
        for e in 32 * j..32 * j + 32 {
            out[e] = d1 * q[e] as f32 - m1;
        }
    }
}
