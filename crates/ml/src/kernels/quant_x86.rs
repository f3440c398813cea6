//! The x86 implementations of the quantized kernels (`quant.rs` documents the
//! arithmetic): the same code built three times, for AVX2 (`maddubs` + `madd`
//! make the 4-byte dot products), AVX-VNNI and AVX-512 VNNI (`vpdpbusd` does,
//! in one instruction; `vpdpwssd` applies Q4_K's sub-block scales). Every
//! block's integer sum is exact on every path, so all three give the same
//! bits, and the same as the scalar kernel.

use std::arch::x86_64::*;

use super::quant::{QK, QK_K, QuantIsa, QuantType, WRow, XRow};

/// One block's codes (see `quant::decode_codes`); needs AVX2.
///
/// # Safety
/// AVX2 must be available; `codes` (and `signs` for Q8_0 / Q4_0) hold the block's values.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn decode_codes(ty: QuantType, blk: &[u8], codes: &mut [u8], signs: &mut [i8]) {
    let nib = _mm256_set1_epi8(0x0F);
    // SAFETY (all loads and stores): `blk` is one block of `ty`, `codes` and
    // `signs` hold its values; the lengths are asserted where they differ by format.
    unsafe {
        match ty {
            QuantType::Q8_0 | QuantType::Q4_0 => {
                assert!(codes.len() >= QK && signs.len() >= QK && blk.len() >= ty.block_bytes());
                let s = if ty == QuantType::Q8_0 {
                    _mm256_loadu_si256(blk.as_ptr().add(2).cast())
                } else {
                    _mm256_sub_epi8(nibbles(blk.as_ptr().add(2)), _mm256_set1_epi8(8))
                };
                _mm256_storeu_si256(signs.as_mut_ptr().cast(), s);
                // |−128| wraps to −128, which is 128 as the unsigned byte `maddubs` reads.
                _mm256_storeu_si256(codes.as_mut_ptr().cast(), _mm256_sign_epi8(s, s));
            }
            QuantType::Q4_1 => {
                assert!(codes.len() >= QK && blk.len() >= 4 + QK / 2);
                _mm256_storeu_si256(codes.as_mut_ptr().cast(), nibbles(blk.as_ptr().add(4)));
            }
            QuantType::Q4K => {
                assert!(codes.len() >= QK_K && blk.len() >= 16 + QK_K / 2);
                for p in 0..4 {
                    let b = _mm256_loadu_si256(blk.as_ptr().add(16 + 32 * p).cast());
                    let o = codes.as_mut_ptr().add(64 * p);
                    _mm256_storeu_si256(o.cast(), _mm256_and_si256(b, nib));
                    _mm256_storeu_si256(o.add(32).cast(), _mm256_and_si256(_mm256_srli_epi16(b, 4), nib));
                }
            }
        }
    }
}

/// 32 nibbles in element order: the low nibbles of 16 bytes, then the high ones.
#[target_feature(enable = "avx2")]
unsafe fn nibbles(p: *const u8) -> __m256i {
    // SAFETY: the caller passes 16 readable bytes.
    let t = unsafe { _mm_loadu_si128(p.cast()) };
    let both = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// One decoded weight row · one quantized activation row (see `quant::dot`).
///
/// # Safety
/// `isa` is a vector implementation this CPU runs; the rows are `k` values of `ty`.
pub(super) unsafe fn dot(isa: QuantIsa, ty: QuantType, w: WRow, x: XRow, k: usize) -> f32 {
    let nu = k / ty.block_values();
    let nu_pad = nu.div_ceil(8) * 8;
    assert!(w.codes.len() >= k && x.q.len() >= k && w.dw.len() >= nu_pad && x.d.len() >= nu_pad);
    match ty {
        QuantType::Q8_0 | QuantType::Q4_0 => assert!(w.signs.len() >= k),
        QuantType::Q4_1 => assert!(w.mw.len() >= nu_pad && x.s.len() >= nu_pad),
        QuantType::Q4K => assert!(w.mw.len() >= nu_pad && w.sc.len() >= 8 * nu && x.bs.len() >= 8 * nu),
    }
    macro_rules! by_type {
        ($m:ident) => {
            // SAFETY: the caller checked the ISA; the lengths are asserted above.
            unsafe {
                match ty {
                    QuantType::Q8_0 | QuantType::Q4_0 => $m::dot::<0>(w, x, nu, nu_pad),
                    QuantType::Q4_1 => $m::dot::<1>(w, x, nu, nu_pad),
                    QuantType::Q4K => $m::dot::<2>(w, x, nu, nu_pad),
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

/// The kernels, built for one instruction set: `$feat` its target features,
/// `$dpbusd(acc, u8s, i8s)` adds 4-byte dot products to 32-bit lanes,
/// `$dpwssd(acc, a, b)` pairs of 16-bit products.
macro_rules! kernels {
    ($m:ident, $feat:literal, |$c:ident, $a:ident, $b:ident| $dpbusd:expr, |$c2:ident, $a2:ident, $b2:ident| $dpwssd:expr) => {
        mod $m {
            use std::arch::x86_64::*;

            use super::super::quant::{QK, QK_K, WRow, XRow};

            #[target_feature(enable = $feat)]
            #[inline]
            fn dpbusd($c: __m256i, $a: __m256i, $b: __m256i) -> __m256i {
                $dpbusd
            }

            #[target_feature(enable = $feat)]
            #[inline]
            fn dpwssd($c2: __m256i, $a2: __m256i, $b2: __m256i) -> __m256i {
                $dpwssd
            }

            /// Lane `t` of the result: the sum of the lanes of `v[t]` (exact).
            #[target_feature(enable = $feat)]
            #[inline]
            fn reduce8(v: &[__m256i; 8]) -> __m256i {
                let a0 = _mm256_hadd_epi32(v[0], v[1]);
                let a1 = _mm256_hadd_epi32(v[2], v[3]);
                let a2 = _mm256_hadd_epi32(v[4], v[5]);
                let a3 = _mm256_hadd_epi32(v[6], v[7]);
                let b0 = _mm256_hadd_epi32(a0, a1);
                let b1 = _mm256_hadd_epi32(a2, a3);
                _mm256_add_epi32(_mm256_permute2x128_si256(b0, b1, 0x20), _mm256_permute2x128_si256(b0, b1, 0x31))
            }

            /// The integer sums of block `u` in eight lanes (T: 0 signed 32-blocks,
            /// 1 Q4_1, 2 Q4_K), and Q4_K's minimum sums in four.
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn block<const T: u8>(w: WRow, x: XRow, u: usize) -> (__m256i, __m256i) {
                let z = _mm256_setzero_si256();
                // SAFETY: block u is inside both rows (the caller's bounds).
                unsafe {
                    match T {
                        0 => {
                            let e = u * QK;
                            let a = _mm256_loadu_si256(w.codes.as_ptr().add(e).cast());
                            let s = _mm256_loadu_si256(w.signs.as_ptr().add(e).cast());
                            let xv = _mm256_loadu_si256(x.q.as_ptr().add(e).cast());
                            // |w| · (x with w's sign): an unsigned × signed product.
                            (dpbusd(z, a, _mm256_sign_epi8(xv, s)), z)
                        }
                        1 => {
                            let e = u * QK;
                            let a = _mm256_loadu_si256(w.codes.as_ptr().add(e).cast());
                            let xv = _mm256_loadu_si256(x.q.as_ptr().add(e).cast());
                            (dpbusd(z, a, xv), z)
                        }
                        _ => {
                            let e = u * QK_K;
                            let mut acc = z;
                            for j in 0..8 {
                                let a = _mm256_loadu_si256(w.codes.as_ptr().add(e + QK * j).cast());
                                let xv = _mm256_loadu_si256(x.q.as_ptr().add(e + QK * j).cast());
                                // Pairs of nibble × code: at most 2 · 15 · 128, no saturation.
                                let p = _mm256_maddubs_epi16(a, xv);
                                acc = dpwssd(acc, p, _mm256_set1_epi16(w.sc[8 * u + j]));
                            }
                            let mins = _mm_loadu_si128(w.mins.as_ptr().add(8 * u).cast());
                            let bs = _mm_loadu_si128(x.bs.as_ptr().add(8 * u).cast());
                            (acc, _mm256_set_m128i(_mm_setzero_si128(), _mm_madd_epi16(mins, bs)))
                        }
                    }
                }
            }

            /// See `quant::dot`; the caller checked the lengths.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn dot<const T: u8>(w: WRow, x: XRow, nu: usize, nu_pad: usize) -> f32 {
                let mut lanes = _mm256_setzero_ps();
                let mut offs = _mm256_setzero_ps();
                // SAFETY: blocks below nu are inside both rows; scales are read up to nu_pad.
                unsafe {
                    for g in (0..nu_pad).step_by(8) {
                        let mut v = [_mm256_setzero_si256(); 8];
                        let mut mv = [_mm256_setzero_si256(); 8];
                        for t in 0..8.min(nu - g.min(nu)) {
                            (v[t], mv[t]) = block::<T>(w, x, g + t);
                        }
                        let dx = _mm256_loadu_ps(x.d.as_ptr().add(g));
                        let scale = _mm256_mul_ps(_mm256_loadu_ps(w.dw.as_ptr().add(g)), dx);
                        lanes = _mm256_add_ps(lanes, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(reduce8(&v))));
                        if T == 1 {
                            let m = _mm256_mul_ps(
                                _mm256_loadu_ps(w.mw.as_ptr().add(g)),
                                _mm256_loadu_ps(x.s.as_ptr().add(g)),
                            );
                            offs = _mm256_add_ps(offs, m);
                        } else if T == 2 {
                            let ms = _mm256_mul_ps(_mm256_loadu_ps(w.mw.as_ptr().add(g)), dx);
                            offs = _mm256_add_ps(offs, _mm256_mul_ps(ms, _mm256_cvtepi32_ps(reduce8(&mv))));
                        }
                    }
                    let (l, o) = (crate::kernels::linear::avx_hsum(lanes), crate::kernels::linear::avx_hsum(offs));
                    if T == 2 { l - o } else { l + o }
                }
            }
        }
    };
}

kernels!(
    avx2,
    "avx2,fma,f16c",
    |acc, a, b| _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1))),
    |acc, a, b| _mm256_add_epi32(acc, _mm256_madd_epi16(a, b))
);
kernels!(avxvnni, "avx2,fma,f16c,avxvnni", |acc, a, b| _mm256_dpbusd_avx_epi32(acc, a, b), |acc, a, b| {
    _mm256_dpwssd_avx_epi32(acc, a, b)
});
kernels!(avx512vnni, "avx2,fma,f16c,avx512vnni,avx512vl", |acc, a, b| _mm256_dpbusd_epi32(acc, a, b), |acc, a, b| {
    _mm256_dpwssd_epi32(acc, a, b)
});
