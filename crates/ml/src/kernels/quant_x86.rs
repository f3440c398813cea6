//! The x86 implementations of the quantized kernels (`quant.rs` documents the
//! arithmetic and the panel layout `QMatrix` holds). A panel is 8 weight rows,
//! one per 32-bit lane, so that one `vpdpbusd` (or, on AVX2, `maddubs` +
//! `madd`) adds four codes × four activation codes for eight weight rows at
//! once, the activations' four bytes broadcast; 4-bit codes are unpacked in
//! the register (a mask and a shift give two steps from one load); a block's
//! exact integer sums of eight rows are then converted, scaled and
//! accumulated by a fused multiply-add. The kernel code is built three times: AVX2,
//! AVX-VNNI, AVX-512 VNNI (256-bit). Every block's integer sum is exact on
//! every path, so all give the same bits, and the same as the scalar kernel.

use super::quant::{PANEL_ROWS, QMatrix, QuantIsa, QuantType, ROW_BLOCK, XRow, record_bytes};

/// Activation rows `xs` (1, 2 or 4) × the weight rows of groups `g0..g0 +
/// groups` (at most 2) of `w`, row `r` into `res[r]` (group `g0`'s row `w`
/// in `res[r][w]`).
///
/// # Safety
/// `isa` is a vector implementation this CPU runs; every row of `xs` is quantized for `w`'s format and width.
pub(super) unsafe fn panel_dot(
    isa: QuantIsa,
    w: &QMatrix,
    g0: usize,
    groups: usize,
    xs: &[XRow],
    res: &mut [[f32; PANEL_ROWS]; ROW_BLOCK],
) {
    let (ty, nu) = (w.quant_type(), w.blocks());
    let (rec, bv) = (record_bytes(ty), ty.block_values());
    assert!((1..=2).contains(&groups) && (g0 + groups) * nu * rec <= w.panels().len());
    assert!(matches!(xs.len(), 1 | 2 | 4));
    for x in xs {
        assert!(x.q.len() >= nu * bv && x.d.len() >= nu && x.sums.len() >= nu * bv / ty.sum_values());
        assert!(!matches!(ty, QuantType::Q4_1 | QuantType::Q5_1) || x.s.len() >= nu);
    }
    // SAFETY: the groups' records are inside the panels (asserted above).
    let p = unsafe { w.panels().as_ptr().add(g0 * nu * rec) };
    let [r0, r1, r2, r3] = res;
    macro_rules! rows {
        ($m:ident, $t:literal, $g:literal) => {
            // SAFETY: the caller checked the ISA; the lengths are asserted above.
            unsafe {
                match *xs {
                    [a] => $m::dot::<$t, $g, 1>(p, nu, [a], [r0]),
                    [a, b] => $m::dot::<$t, $g, 2>(p, nu, [a, b], [r0, r1]),
                    [a, b, c, d] => $m::dot::<$t, $g, 4>(p, nu, [a, b, c, d], [r0, r1, r2, r3]),
                    _ => unreachable!("asserted above"),
                }
            }
        };
    }
    macro_rules! by_type {
        ($m:ident) => {
            match (ty, groups) {
                (QuantType::Q8_0, 1) => rows!($m, 0, 1),
                (QuantType::Q8_0, _) => rows!($m, 0, 2),
                (QuantType::Q4_0, 1) => rows!($m, 1, 1),
                (QuantType::Q4_0, _) => rows!($m, 1, 2),
                (QuantType::Q4_1, 1) => rows!($m, 2, 1),
                (QuantType::Q4_1, _) => rows!($m, 2, 2),
                (QuantType::Q5_0, 1) => rows!($m, 4, 1),
                (QuantType::Q5_0, _) => rows!($m, 4, 2),
                (QuantType::Q5_1, 1) => rows!($m, 6, 1),
                (QuantType::Q5_1, _) => rows!($m, 6, 2),
                (QuantType::Q5K, 1) => rows!($m, 7, 1),
                (QuantType::Q5K, _) => rows!($m, 7, 2),
                (QuantType::Q6K, 1) => rows!($m, 5, 1),
                (QuantType::Q6K, _) => rows!($m, 5, 2),
                (QuantType::Q4K, 1) => rows!($m, 3, 1),
                (QuantType::Q4K, _) => rows!($m, 3, 2),
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

            use super::super::quant::{GROUP, PANEL_ROWS, QK, XRow};

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

            /// Formats: T = 0 Q8_0, 1 Q4_0, 2 Q4_1, 3 Q4_K, 4 Q5_0, 5 Q6_K, 6 Q5_1,
            /// 7 Q5_K; `G` groups of 8 rows,
            /// `p` the first group's first record, `nu` blocks per row; `R`
            /// activation rows, each into its `res`, every weight load and
            /// unpack shared by them. Each integer sum runs as two chains
            /// (even and odd steps, or low and high nibbles) so that the
            /// `vpdpbusd` latency overlaps; the sums are exact, so the split
            /// changes no bit.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn dot<const T: u8, const G: usize, const R: usize>(
                p: *const u8,
                nu: usize,
                xs: [XRow; R],
                res: [&mut [f32; PANEL_ROWS]; R],
            ) {
                // Q4_K's arithmetic (sub-block scales and minimums), with or without fifth bits.
                let k4 = T == 3 || T == 7;
                // Fifth bits beside the nibbles (Q5_0, Q5_1, Q5_K).
                let five = T == 4 || T == 6 || T == 7;
                let cb = match T {
                    0 => QK,
                    3 => 4 * QK,
                    4 | 6 => QK / 2 + 4,
                    5 => 6 * QK,
                    7 => 5 * QK,
                    _ => QK / 2,
                };
                let rec = GROUP
                    * (cb + match T {
                        0 | 1 | 4 => 2,
                        2 | 6 => 4,
                        3 | 7 => 20,
                        _ => 18,
                    });
                let bv = if T == 3 || T == 5 || T == 7 { 8 * QK } else { QK };
                let bit4 = _mm256_set1_epi8(0x10);
                let mask = _mm256_set1_epi8(0x0F);
                let z = _mm256_setzero_si256();
                let mut acc = [[_mm256_setzero_ps(); R]; G];
                let mut off = [[_mm256_setzero_ps(); R]; G];
                // SAFETY: every index stays inside the groups' records and the rows (asserted by the caller).
                unsafe {
                    for u in 0..nu {
                        // (Loops, not `array::from_fn`: its closure would not inline into this function.)
                        let mut blk = [p; G];
                        for (g, b) in blk.iter_mut().enumerate() {
                            *b = p.add((g * nu + u) * rec);
                        }
                        let mut xb = [std::ptr::null::<i8>(); R];
                        for (r, b) in xb.iter_mut().enumerate() {
                            *b = xs[r].q.as_ptr().add(u * bv);
                        }
                        macro_rules! word {
                            ($r:expr, $e:expr) => {
                                _mm256_set1_epi32((xb[$r].add($e) as *const i32).read_unaligned())
                            };
                        }
                        macro_rules! load {
                            ($g:expr, $v:expr) => {
                                _mm256_loadu_si256(blk[$g].add(32 * $v).cast())
                            };
                        }
                        macro_rules! halves {
                            ($v:expr) => {
                                (_mm256_and_si256($v, mask), _mm256_and_si256(_mm256_srli_epi16($v, 4), mask))
                            };
                        }
                        macro_rules! half_f {
                            ($g:expr, $at:expr) => {
                                _mm256_cvtph_ps(_mm_loadu_si128(blk[$g].add($at).cast()))
                            };
                        }
                        macro_rules! bytes_i {
                            ($g:expr, $at:expr) => {
                                _mm256_cvtepu8_epi32(_mm_loadl_epi64(blk[$g].add($at).cast()))
                            };
                        }
                        let mut isum = [[z; R]; G];
                        let mut msum = [[z; R]; G];
                        if T == 5 {
                            // Word v as Q4_K's (the codes' low nibbles), their top two bits
                            // in word 32 + v / 2: bits 4(v mod 2) + 0..2 for the low nibbles'
                            // values, + 2..4 for the high ones'. Each sub-block of 16 is four
                            // steps; its sum less 32 · Σ q_x (the codes' bias) times its scale.
                            let top = _mm256_set1_epi8(0x30);
                            for h in 0..4 {
                                for half in 0..2 {
                                    let (mut lo, mut hi) = ([[z; R]; G], [[z; R]; G]);
                                    for t in 4 * half..4 * half + 4 {
                                        let v = 8 * h + t;
                                        for g in 0..G {
                                            let (l, h4) = halves!(load!(g, v));
                                            let hw = load!(g, 32 + v / 2);
                                            let (tl, th) = if v % 2 == 0 {
                                                (_mm256_slli_epi16(hw, 4), _mm256_slli_epi16(hw, 2))
                                            } else {
                                                (hw, _mm256_srli_epi16(hw, 2))
                                            };
                                            let l = _mm256_or_si256(l, _mm256_and_si256(tl, top));
                                            let h4 = _mm256_or_si256(h4, _mm256_and_si256(th, top));
                                            for r in 0..R {
                                                lo[g][r] = step::<T>(lo[g][r], l, word!(r, 64 * h + 4 * t));
                                                hi[g][r] = step::<T>(hi[g][r], h4, word!(r, 64 * h + 32 + 4 * t));
                                            }
                                        }
                                    }
                                    for (j, sub) in [(4 * h + half, lo), (4 * h + 2 + half, hi)] {
                                        for g in 0..G {
                                            let sc = _mm256_cvtepi8_epi32(_mm_loadl_epi64(blk[g].add(GROUP * cb + 16 + GROUP * j).cast()));
                                            for r in 0..R {
                                                let bias = _mm256_set1_epi32(32 * xs[r].sums[u * 16 + j]);
                                                let centred = _mm256_sub_epi32(sub[g][r], bias);
                                                isum[g][r] = _mm256_add_epi32(isum[g][r], _mm256_mullo_epi32(centred, sc));
                                            }
                                        }
                                    }
                                }
                            }
                        } else if k4 {
                                // Word v of the codes: sub-block 2(v / 8) in its low nibbles, the next in its high;
                                // Q5_K's fifth bits for them are bits 2(v mod 4), + 1 of word 32 + v / 4.
                            for h in 0..4 {
                                let (mut lo, mut hi) = ([[z; R]; G], [[z; R]; G]);
                                let mut fifth = [z; G];
                                for t in 0..8 {
                                    for g in 0..G {
                                        let (mut l, mut h4) = halves!(load!(g, 8 * h + t));
                                        if five {
                                            if t % 4 == 0 {
                                                fifth[g] = load!(g, 32 + 2 * h + t / 4);
                                            }
                                            l = _mm256_or_si256(l, _mm256_and_si256(_mm256_slli_epi16(fifth[g], 4), bit4));
                                            fifth[g] = _mm256_srli_epi16(fifth[g], 1);
                                            h4 = _mm256_or_si256(h4, _mm256_and_si256(_mm256_slli_epi16(fifth[g], 4), bit4));
                                            fifth[g] = _mm256_srli_epi16(fifth[g], 1);
                                        }
                                        for r in 0..R {
                                            lo[g][r] = step::<T>(lo[g][r], l, word!(r, 64 * h + 4 * t));
                                            hi[g][r] = step::<T>(hi[g][r], h4, word!(r, 64 * h + 32 + 4 * t));
                                        }
                                    }
                                }
                                for (j, sub) in [(2 * h, lo), (2 * h + 1, hi)] {
                                    for g in 0..G {
                                        let sc = bytes_i!(g, GROUP * cb + 32 + GROUP * j);
                                        let mn = bytes_i!(g, GROUP * cb + 96 + GROUP * j);
                                        for r in 0..R {
                                            let bs = _mm256_set1_epi32(xs[r].sums[u * 8 + j]);
                                            isum[g][r] = _mm256_add_epi32(isum[g][r], _mm256_mullo_epi32(sub[g][r], sc));
                                            msum[g][r] = _mm256_add_epi32(msum[g][r], _mm256_mullo_epi32(mn, bs));
                                        }
                                    }
                                }
                            }
                        } else {
                            // The codes' bias (Q8_0's 128 where the sum takes biased codes,
                            // Q4_0's 8, Q5_0's 16) times the block's activation sum starts each
                            // sum, so that no subtraction follows.
                            let bias = if T == 0 && $vnni { 128 } else if T == 1 { 8 } else if T == 4 { 16 } else { 0 };
                            if bias != 0 {
                                for r in 0..R {
                                    let c = _mm256_set1_epi32(-bias * xs[r].sums[u]);
                                    for g in 0..G {
                                        isum[g][r] = c;
                                    }
                                }
                            }
                            // A second chain per sum (even and odd steps) only when fewer than four
                            // sums run at once; with more, their chains already hide the latency.
                            let mut odd = [[z; R]; G];
                            macro_rules! odd {
                                ($g:expr, $r:expr) => {
                                    *(if R * G >= 4 { &mut isum[$g][$r] } else { &mut odd[$g][$r] })
                                };
                            }
                            if T == 0 {
                                for s in (0..8).step_by(2) {
                                    for g in 0..G {
                                        let (w0, w1) = (load!(g, s), load!(g, s + 1));
                                        for r in 0..R {
                                            isum[g][r] = step::<T>(isum[g][r], w0, word!(r, 4 * s));
                                            odd!(g, r) = step::<T>(odd!(g, r), w1, word!(r, 4 * s + 4));
                                        }
                                    }
                                }
                            } else {
                                // Word v: the codes 4v.. in its low nibbles, 16 + 4v.. in its high ones;
                                // Q5_0's and Q5_1's fifth bits for them are bits 2v and 2v + 1 of word 4's bytes.
                                let mut fifth = [z; G];
                                if five {
                                    for (g, f) in fifth.iter_mut().enumerate() {
                                        *f = load!(g, 4);
                                    }
                                }
                                for v in 0..4 {
                                    for g in 0..G {
                                        let (mut l, mut h4) = halves!(load!(g, v));
                                        if five {
                                            // Bit 0 of each byte to bit 4 (a 16-bit shift by 4 moves no
                                            // bit across bytes into bit 4), then on to the next bits.
                                            l = _mm256_or_si256(l, _mm256_and_si256(_mm256_slli_epi16(fifth[g], 4), bit4));
                                            fifth[g] = _mm256_srli_epi16(fifth[g], 1);
                                            h4 = _mm256_or_si256(h4, _mm256_and_si256(_mm256_slli_epi16(fifth[g], 4), bit4));
                                            fifth[g] = _mm256_srli_epi16(fifth[g], 1);
                                        }
                                        for r in 0..R {
                                            isum[g][r] = step::<T>(isum[g][r], l, word!(r, 4 * v));
                                            odd!(g, r) = step::<T>(odd!(g, r), h4, word!(r, 16 + 4 * v));
                                        }
                                    }
                                }
                            }
                            if R * G < 4 {
                                for r in 0..R {
                                    for g in 0..G {
                                        isum[g][r] = _mm256_add_epi32(isum[g][r], odd[g][r]);
                                    }
                                }
                            }
                        }
                        for g in 0..G {
                            let dw = half_f!(g, GROUP * cb);
                            let mw = if T == 2 || T == 6 || k4 { half_f!(g, GROUP * cb + 16) } else { _mm256_setzero_ps() };
                            for r in 0..R {
                                let dx = _mm256_set1_ps(xs[r].d[u]);
                                let scale = _mm256_mul_ps(dw, dx);
                                acc[g][r] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum[g][r]), acc[g][r]);
                                if T == 2 || T == 6 {
                                    off[g][r] = _mm256_add_ps(off[g][r], _mm256_mul_ps(mw, _mm256_set1_ps(xs[r].s[u])));
                                } else if k4 {
                                    let ms = _mm256_mul_ps(mw, dx);
                                    off[g][r] = _mm256_add_ps(off[g][r], _mm256_mul_ps(ms, _mm256_cvtepi32_ps(msum[g][r])));
                                }
                            }
                        }
                    }
                    for (r, out) in res.into_iter().enumerate() {
                        for g in 0..G {
                            let (a, o) = (acc[g][r], off[g][r]);
                            let y = if k4 { _mm256_sub_ps(a, o) } else { _mm256_add_ps(a, o) };
                            _mm256_storeu_ps(out.as_mut_ptr().add(g * GROUP), y);
                        }
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
