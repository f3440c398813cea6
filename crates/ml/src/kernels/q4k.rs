//! ggml's Q4_K super-block (`block_q4_K`, 144 bytes for 256 values): an f16
//! scale `d`, an f16 `dmin`, twelve bytes packing eight 6-bit sub-block scales
//! and eight 6-bit sub-block minimums, then 128 bytes of 4-bit codes. Value
//! `e` of sub-block `j` (32 values) is `d·sc_j · q − dmin·m_j`. The codes of
//! sub-blocks `2p` and `2p + 1` share the 32 bytes `qs[32p..32p + 32]`: low
//! nibbles for `2p`, high nibbles for `2p + 1`.
//!
//! The quantizer is llama.cpp's reference `quantize_row_q4_K_ref` (weighted
//! least squares per sub-block, `make_qkx2_quants`), the dequantizer its
//! `dequantize_row_q4_K`, operation for operation.

use half::f16;

/// Values per Q4_K super-block.
pub const QK_K: usize = 256;
/// Bytes per Q4_K super-block.
pub const BLOCK_BYTES: usize = 144;

/// Scale and minimum of sub-block `j` (ggml's `get_scale_min_k4`).
pub fn scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// Eight 6-bit scales and minimums into the 12 bytes [`scale_min`] reads
/// (its inverse: the 96 bits hold the 16 values exactly, so any 12 bytes
/// come back from their values).
pub fn pack_scales(sc: &[u8; 8], m: &[u8; 8]) -> [u8; 12] {
    let mut packed = [0u8; 12];
    for j in 0..8 {
        let (ls, lm) = (sc[j] & 63, m[j] & 63);
        if j < 4 {
            packed[j] |= ls;
            packed[j + 4] |= lm;
        } else {
            packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            packed[j - 4] |= (ls >> 4) << 6;
            packed[j] |= (lm >> 4) << 6;
        }
    }
    packed
}

/// The four parts of a block: `d`, `dmin`, packed scales, codes.
pub fn parts(blk: &[u8]) -> (f32, f32, &[u8], &[u8]) {
    let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
    let dmin = f16::from_le_bytes([blk[2], blk[3]]).to_f32();
    (d, dmin, &blk[4..16], &blk[16..BLOCK_BYTES])
}

/// The 256 codes of a block in element order.
pub fn codes(qs: &[u8], out: &mut [u8]) {
    for p in 0..4 {
        for l in 0..32 {
            out[64 * p + l] = qs[32 * p + l] & 0xF;
            out[64 * p + 32 + l] = qs[32 * p + l] >> 4;
        }
    }
}

/// One block dequantized as `dequantize_row_q4_K` does it (a multiply, then a
/// subtraction: no fused multiply-add).
pub fn dequantize_block(blk: &[u8], out: &mut [f32]) {
    let (d, dmin, scales, qs) = parts(blk);
    let mut q = [0u8; QK_K];
    codes(qs, &mut q);
    for j in 0..8 {
        let (sc, m) = scale_min(j, scales);
        let (d1, m1) = (d * sc as f32, dmin * m as f32);
        for e in 32 * j..32 * j + 32 {
            out[e] = d1 * q[e] as f32 - m1;
        }
    }
}

/// ggml's `nearest_int`: round to nearest, ties to even.
fn nearest_int(v: f32) -> i32 {
    v.round_ties_even() as i32
}

/// ggml's `make_qkx2_quants` for `x.len()` values with `nmax` steps: codes in
/// `l`, returns `(scale, min)` with `x ≈ scale · l − min`.
fn make_qkx2_quants(nmax: i32, x: &[f32], w: &[f32], l: &mut [u8], rmin: f32, rdelta: f32, nstep: i32) -> (f32, f32) {
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let (mut sum_w, mut sum_x) = (w[0], w[0] * x[0]);
    for i in 1..n {
        min = min.min(x[i]);
        max = max.max(x[i]);
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best = 0.0f32;
    for i in 0..n {
        l[i] = nearest_int(iscale * (x[i] - min)).clamp(0, nmax) as u8;
        let diff = scale * l[i] as f32 + min - x[i];
        best += w[i] * (diff * diff);
    }
    let mut laux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let li = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = li as u8;
            let lf = li as f32;
            sum_l += w[i] * lf;
            sum_l2 += w[i] * lf * lf;
            sum_xl += w[i] * lf * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut mad = 0.0f32;
            for i in 0..n {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                mad += w[i] * (diff * diff);
            }
            if mad < best {
                l[..n].copy_from_slice(&laux[..n]);
                best = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// 256 values into one block (`quantize_row_q4_K_ref`), appended to `out`.
pub fn quantize_block(x: &[f32], out: &mut Vec<u8>) {
    let mut l = [0u8; QK_K];
    let (mut scales, mut mins) = ([0.0f32; 8], [0.0f32; 8]);
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let sum_x2: f32 = xs.iter().fold(0.0, |a, v| a + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let w: Vec<f32> = xs.iter().map(|v| av_x + v.abs()).collect();
        (scales[j], mins[j]) = make_qkx2_quants(15, xs, &w, &mut l[32 * j..32 * j + 32], -1.0, 0.1, 20);
        max_scale = max_scale.max(scales[j]);
        max_min = max_min.max(mins[j]);
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let (mut ls, mut lm) = ([0u8; 8], [0u8; 8]);
    for j in 0..8 {
        // `uint8_t ls = nearest_int(...)` in C keeps the low byte; then MIN(63, ·).
        ls[j] = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        lm[j] = (nearest_int(inv_min * mins[j]) as u8).min(63);
    }
    let packed = pack_scales(&ls, &lm);
    let d = f16::from_f32(max_scale / 63.0);
    let dmin = f16::from_f32(max_min / 63.0);
    for j in 0..8 {
        let (sc, m) = scale_min(j, &packed);
        let dj = d.to_f32() * sc as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin.to_f32() * m as f32;
        for e in 32 * j..32 * j + 32 {
            l[e] = nearest_int((x[e] + dm) / dj).clamp(0, 15) as u8;
        }
    }
    out.extend_from_slice(&d.to_le_bytes());
    out.extend_from_slice(&dmin.to_le_bytes());
    out.extend_from_slice(&packed);
    for p in 0..4 {
        out.extend((0..32).map(|i| l[64 * p + i] | (l[64 * p + 32 + i] << 4)));
    }
}
