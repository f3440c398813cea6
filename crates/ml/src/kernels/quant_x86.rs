//! The x86 implementations of the quantized kernels (`quant.rs` documents the
//! arithmetic). Weight rows are laid out as panels of 8 rows, one per 32-bit
//! lane, so that one `vpdpbusd` (or, on AVX2, `maddubs` + `madd`) adds four
//! codes × four activation codes for eight weight rows at once, the
//! activations' four bytes broadcast; a block's exact integer sums of eight
//! rows are then scaled and accumulated by one vector operation each. The
//! kernel code is built three times: AVX2, AVX-VNNI, AVX-512 VNNI (256-bit).
//! Every block's integer sum is exact on every path, so all give the same
//! bits, and the same as the scalar kernel.

use std::arch::x86_64::*;

use super::quant::{GROUP, PANEL_ROWS, Panel, QK, QuantIsa, QuantType, XRow};

/// 32 nibbles in element order: the low nibbles of 16 bytes, then the high ones.
#[target_feature(enable = "avx2")]
unsafe fn nibbles(p: *const u8) -> __m256i {
    // SAFETY: the caller passes 16 readable bytes.
    let t = unsafe { _mm_loadu_si128(p.cast()) };
    let both = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// Eight rows of 32 codes (eight 4-byte words each) → eight vectors, vector
/// `s` holding word `s` of every row, row `w` in lane `w`.
#[target_feature(enable = "avx2")]
#[inline]
fn transpose8(r: [__m256i; 8]) -> [__m256i; 8] {
    let (t0, t1) = (_mm256_unpacklo_epi32(r[0], r[1]), _mm256_unpackhi_epi32(r[0], r[1]));
    let (t2, t3) = (_mm256_unpacklo_epi32(r[2], r[3]), _mm256_unpackhi_epi32(r[2], r[3]));
    let (t4, t5) = (_mm256_unpacklo_epi32(r[4], r[5]), _mm256_unpackhi_epi32(r[4], r[5]));
    let (t6, t7) = (_mm256_unpacklo_epi32(r[6], r[7]), _mm256_unpackhi_epi32(r[6], r[7]));
    // u_q: word q (low 128 bits) and word q + 4 (high) of four rows.
    let (u0, u1) = (_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2));
    let (u2, u3) = (_mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3));
    let (u4, u5) = (_mm256_unpacklo_epi64(t4, t6), _mm256_unpackhi_epi64(t4, t6));
    let (u6, u7) = (_mm256_unpacklo_epi64(t5, t7), _mm256_unpackhi_epi64(t5, t7));
    [
        _mm256_permute2x128_si256(u0, u4, 0x20),
        _mm256_permute2x128_si256(u1, u5, 0x20),
        _mm256_permute2x128_si256(u2, u6, 0x20),
        _mm256_permute2x128_si256(u3, u7, 0x20),
        _mm256_permute2x128_si256(u0, u4, 0x31),
        _mm256_permute2x128_si256(u1, u5, 0x31),
        _mm256_permute2x128_si256(u2, u6, 0x31),
        _mm256_permute2x128_si256(u3, u7, 0x31),
    ]
}

/// Sub-block (32 values) `c` of block `b` as 32 unsigned codes (the panel's; zero without a block).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn codes(ty: QuantType, b: Option<&&[u8]>, c: usize) -> __m256i {
    let Some(b) = b else { return _mm256_setzero_si256() };
    // SAFETY: `b` is one block of `ty` (asserted by the caller).
    unsafe {
        match ty {
            QuantType::Q8_0 => _mm256_xor_si256(_mm256_loadu_si256(b.as_ptr().add(2).cast()), _mm256_set1_epi8(-128)),
            QuantType::Q4_0 => nibbles(b.as_ptr().add(2)),
            QuantType::Q4_1 => nibbles(b.as_ptr().add(4)),
            QuantType::Q4K => {
                let v = _mm256_loadu_si256(b.as_ptr().add(16 + 32 * (c / 2)).cast());
                let v = if c.is_multiple_of(2) { v } else { _mm256_srli_epi16(v, 4) };
                _mm256_and_si256(v, _mm256_set1_epi8(0x0F))
            }
        }
    }
}

/// Block `blocks[w]` of each of a group's rows (fewer than 8: the rest zero)
/// into the panel's layout (see `quant::Panel`): `out` holds the block's steps.
///
/// # Safety
/// AVX2 must be available; every block is one block of `ty`, `out` holds `8 × values` bytes.
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn panel_block(ty: QuantType, blocks: &[&[u8]], out: &mut [u8], dw: &mut [f32], mw: &mut [f32]) {
    let bv = ty.block_values();
    assert!(blocks.len() <= GROUP && out.len() >= GROUP * bv && dw.len() >= GROUP && mw.len() >= GROUP);
    assert!(blocks.iter().all(|b| b.len() >= ty.block_bytes()));
    // SAFETY: the lengths are asserted above.
    unsafe {
        // The rows' f16 scales (and offsets), widened 8 at a time (zero for missing rows).
        let (mut d, mut m) = ([0u16; GROUP], [0u16; GROUP]);
        for (w, b) in blocks.iter().enumerate() {
            d[w] = u16::from_le_bytes([b[0], b[1]]);
            if !matches!(ty, QuantType::Q8_0 | QuantType::Q4_0) {
                m[w] = u16::from_le_bytes([b[2], b[3]]);
            }
        }
        _mm256_storeu_ps(dw.as_mut_ptr(), _mm256_cvtph_ps(_mm_loadu_si128(d.as_ptr().cast())));
        _mm256_storeu_ps(mw.as_mut_ptr(), _mm256_cvtph_ps(_mm_loadu_si128(m.as_ptr().cast())));
        for c in 0..bv / QK {
            let r = [
                codes(ty, blocks.first(), c),
                codes(ty, blocks.get(1), c),
                codes(ty, blocks.get(2), c),
                codes(ty, blocks.get(3), c),
                codes(ty, blocks.get(4), c),
                codes(ty, blocks.get(5), c),
                codes(ty, blocks.get(6), c),
                codes(ty, blocks.get(7), c),
            ];
            for (s, v) in transpose8(r).iter().enumerate() {
                _mm256_storeu_si256(out.as_mut_ptr().add((8 * c + s) * 32).cast(), *v);
            }
        }
    }
}

/// One activation row × a panel's rows into `res` (row `w` of the panel in `res[w]`).
///
/// # Safety
/// `isa` is a vector implementation this CPU runs; the panel and the row are of `ty`.
pub(super) unsafe fn panel_dot(isa: QuantIsa, ty: QuantType, p: &Panel, x: XRow, res: &mut [f32; PANEL_ROWS]) {
    let (nu, bv) = (p.nu, ty.block_values());
    assert!(p.groups >= 1 && p.groups <= 2 && x.q.len() >= nu * bv && x.d.len() >= nu);
    assert!(p.codes.len() >= p.groups * nu * bv * GROUP && p.dw.len() >= p.groups * nu * GROUP);
    assert!(p.mw.len() >= p.groups * nu * GROUP && x.sums.len() >= nu * bv / QK);
    match ty {
        QuantType::Q4_1 => assert!(x.s.len() >= nu),
        QuantType::Q4K => assert!(p.sc.len() >= p.groups * nu * 8 * GROUP && p.mins.len() >= p.sc.len()),
        _ => {}
    }
    macro_rules! by_type {
        ($m:ident) => {
            // SAFETY: the caller checked the ISA; the lengths are asserted above.
            unsafe {
                match (ty, p.groups) {
                    (QuantType::Q8_0, 1) => $m::dot::<0, 1>(p, x, res),
                    (QuantType::Q8_0, _) => $m::dot::<0, 2>(p, x, res),
                    (QuantType::Q4_0, 1) => $m::dot::<1, 1>(p, x, res),
                    (QuantType::Q4_0, _) => $m::dot::<1, 2>(p, x, res),
                    (QuantType::Q4_1, 1) => $m::dot::<2, 1>(p, x, res),
                    (QuantType::Q4_1, _) => $m::dot::<2, 2>(p, x, res),
                    (QuantType::Q4K, 1) => $m::dot::<3, 1>(p, x, res),
                    (QuantType::Q4K, _) => $m::dot::<3, 2>(p, x, res),
                }
            }
        };
    }
    match isa {
        QuantIsa::Avx512Vnni => by_type!(avx512vnni),
        QuantIsa::AvxVnni => by_type!(avxvnni),
        QuantIsa::Avx2 | QuantIsa::Scalar => by_type!(avx2),
    }
}

/// The kernel, built for one instruction set: `$feat` its target features;
/// `$vnni` whether `$dpbusd(acc, u8s, i8s)` (4-byte dot products added to
/// 32-bit lanes) is one instruction, whose unsigned operand may then take all
/// 256 values (AVX2's `maddubs` would saturate on Q8_0's biased codes).
macro_rules! kernels {
    ($m:ident, $feat:literal, $vnni:literal, |$c:ident, $a:ident, $b:ident| $dpbusd:expr) => {
        mod $m {
            use std::arch::x86_64::*;

            use super::super::quant::{GROUP, PANEL_ROWS, Panel, QK, XRow};

            #[target_feature(enable = $feat)]
            #[inline]
            fn dpbusd($c: __m256i, $a: __m256i, $b: __m256i) -> __m256i {
                $dpbusd
            }

            /// `acc` + the four-code products of one step (`T` the format as in `dot`).
            #[target_feature(enable = $feat)]
            #[inline]
            fn step<const T: u8>(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
                if T == 0 && !$vnni {
                    // Signed codes, multiplied as |w| · (x with w's sign): no pair saturates.
                    let s = _mm256_xor_si256(w, _mm256_set1_epi8(-128));
                    let p = _mm256_maddubs_epi16(_mm256_sign_epi8(s, s), _mm256_sign_epi8(x, s));
                    _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)))
                } else {
                    dpbusd(acc, w, x)
                }
            }

            /// Formats: T = 0 Q8_0, 1 Q4_0, 2 Q4_1, 3 Q4_K; `G` groups of 8 rows.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn dot<const T: u8, const G: usize>(p: &Panel, x: XRow, res: &mut [f32; PANEL_ROWS]) {
                let nu = p.nu;
                let bv = if T == 3 { 4 * 2 * QK } else { QK };
                let mut acc = [_mm256_setzero_ps(); G];
                let mut off = [_mm256_setzero_ps(); G];
                // SAFETY: every index stays inside the panel and the row (asserted by the caller).
                unsafe {
                    let (xq, codes) = (x.q.as_ptr(), p.codes.as_ptr());
                    let (dw, mw, sc, mins) = (p.dw.as_ptr(), p.mw.as_ptr(), p.sc.as_ptr(), p.mins.as_ptr());
                    macro_rules! word {
                        ($e:expr) => {
                            _mm256_set1_epi32((xq.add($e) as *const i32).read_unaligned())
                        };
                    }
                    macro_rules! panel {
                        ($g:expr, $u:expr, $s:expr) => {
                            _mm256_loadu_si256(codes.add((($g * nu + $u) * bv + 4 * $s) * GROUP).cast())
                        };
                    }
                    macro_rules! lanes_f {
                        ($v:expr, $g:expr, $u:expr) => {
                            _mm256_loadu_ps($v.add(($g * nu + $u) * GROUP))
                        };
                    }
                    macro_rules! lanes_i {
                        ($v:expr, $g:expr, $u:expr, $j:expr) => {
                            _mm256_loadu_si256($v.add((($g * nu + $u) * 8 + $j) * GROUP).cast())
                        };
                    }
                    for u in 0..nu {
                        let mut isum = [_mm256_setzero_si256(); G];
                        let mut msum = [_mm256_setzero_si256(); G];
                        if T == 3 {
                            for j in 0..8 {
                                let mut sub = [_mm256_setzero_si256(); G];
                                for s in 8 * j..8 * j + 8 {
                                    let xv = word!(u * bv + 4 * s);
                                    for g in 0..G {
                                        sub[g] = step::<T>(sub[g], panel!(g, u, s), xv);
                                    }
                                }
                                let bs = _mm256_set1_epi32(x.sums[u * 8 + j]);
                                for g in 0..G {
                                    isum[g] = _mm256_add_epi32(isum[g], _mm256_mullo_epi32(sub[g], lanes_i!(sc, g, u, j)));
                                    msum[g] = _mm256_add_epi32(msum[g], _mm256_mullo_epi32(lanes_i!(mins, g, u, j), bs));
                                }
                            }
                        } else {
                            for s in 0..8 {
                                let xv = word!(u * bv + 4 * s);
                                for g in 0..G {
                                    isum[g] = step::<T>(isum[g], panel!(g, u, s), xv);
                                }
                            }
                            // The codes' bias: Q8_0's 128 (where the sum took biased codes), Q4_0's 8.
                            let bias = if T == 0 && $vnni { 128 } else if T == 1 { 8 } else { 0 };
                            if bias != 0 {
                                let c = _mm256_set1_epi32(bias * x.sums[u]);
                                for g in 0..G {
                                    isum[g] = _mm256_sub_epi32(isum[g], c);
                                }
                            }
                        }
                        let dx = _mm256_set1_ps(x.d[u]);
                        for g in 0..G {
                            let scale = _mm256_mul_ps(lanes_f!(dw, g, u), dx);
                            acc[g] = _mm256_add_ps(acc[g], _mm256_mul_ps(scale, _mm256_cvtepi32_ps(isum[g])));
                            if T == 2 {
                                off[g] = _mm256_add_ps(off[g], _mm256_mul_ps(lanes_f!(mw, g, u), _mm256_set1_ps(x.s[u])));
                            } else if T == 3 {
                                let ms = _mm256_mul_ps(lanes_f!(mw, g, u), dx);
                                off[g] = _mm256_add_ps(off[g], _mm256_mul_ps(ms, _mm256_cvtepi32_ps(msum[g])));
                            }
                        }
                    }
                    for g in 0..G {
                        let y = if T == 3 { _mm256_sub_ps(acc[g], off[g]) } else { _mm256_add_ps(acc[g], off[g]) };
                        _mm256_storeu_ps(res.as_mut_ptr().add(g * GROUP), y);
                    }
                }
            }
        }
    };
}

kernels!(avx2, "avx2,fma,f16c", false, |acc, a, b| _mm256_add_epi32(
    acc,
    _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1))
));
kernels!(avxvnni, "avx2,fma,f16c,avxvnni", true, |acc, a, b| _mm256_dpbusd_avx_epi32(acc, a, b));
kernels!(avx512vnni, "avx2,fma,f16c,avx512vnni,avx512vl", true, |acc, a, b| _mm256_dpbusd_epi32(acc, a, b));
