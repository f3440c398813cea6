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
        QuantIsa::Amx | QuantIsa::Avx512Vnni => by_type!(avx512vnni),
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

/// Intel AMX: the integer sums of 16 activation rows × 16 weight rows of a
/// 32-block in one tile instruction (`tdpbsud`: signed activation codes ×
/// unsigned weight codes, exact 32-bit sums), for Q8_0, Q4_0 and Q4_1. The
/// tile's sums go to memory and take the same float steps, in the same order,
/// as the vector kernels' (`quant.rs`): the same bits, whatever the path.
/// Prefill's products (tens or hundreds of rows) are where this pays: the
/// vector kernels spend most of their instructions broadcasting activation
/// words and on one `vpdpbusd` per 32 products, a tile on one per 8,192.
pub(super) mod amx {
    use std::arch::asm;
    use std::arch::x86_64::*;

    use super::super::quant::{GROUP, PANEL_ROWS, QK, QMatrix, QuantType, record_bytes};

    /// Activation rows per tile (a tile's rows).
    pub(in super::super) const TILE_ROWS: usize = 16;
    /// Blocks whose tiles are in flight at once.
    const QUAD: usize = 4;
    /// Bytes of one block's weight tile: 8 rows of 4-code words × 16 weight rows.
    const B_BYTES: usize = (QK / 4) * PANEL_ROWS * 4;

    /// Whether the tile path multiplies `ty`.
    pub(in super::super) fn handles(ty: QuantType) -> bool {
        matches!(ty, QuantType::Q8_0 | QuantType::Q4_0 | QuantType::Q4_1)
    }

    /// Whether this CPU has AMX's tiles and 8-bit products and the kernel
    /// lets this process use them (Linux hands the tile state out on request,
    /// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`). Asked once.
    pub(in super::super) fn usable() -> bool {
        static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *OK.get_or_init(|| {
            // CPUID leaf 7: EDX bit 24 AMX-TILE, bit 25 AMX-INT8.
            let leaf7 = __cpuid_count(7, 0);
            let cpu = leaf7.edx & (3 << 24) == 3 << 24
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("f16c")
                && std::arch::is_x86_feature_detected!("fma");
            cpu && request_tile_state()
        })
    }

    #[cfg(target_os = "linux")]
    fn request_tile_state() -> bool {
        const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
        const XFEATURE_XTILEDATA: i64 = 18;
        let ret: i64;
        // SAFETY: arch_prctl (syscall 158) reads its two integer arguments only;
        // a kernel without AMX support answers with an error.
        unsafe {
            asm!("syscall", inlateout("rax") 158i64 => ret, in("rdi") ARCH_REQ_XCOMP_PERM,
                 in("rsi") XFEATURE_XTILEDATA, lateout("rcx") _, lateout("r11") _, options(nostack));
        }
        ret == 0
    }

    #[cfg(not(target_os = "linux"))]
    fn request_tile_state() -> bool {
        false
    }

    /// The tile configuration: tmm0..3 sums (16 × 16 i32), tmm4 and tmm5 16
    /// activation rows of one block (32 codes), tmm6 and tmm7 one block's
    /// weight tile (8 rows of 16 weight rows × 4 codes).
    #[repr(C, align(64))]
    struct Config([u8; 64]);

    impl Config {
        fn new() -> Config {
            let mut c = Config([0; 64]);
            c.0[0] = 1; // palette 1
            for t in 0..8 {
                let (rows, bytes) = match t {
                    0..4 => (TILE_ROWS, 4 * PANEL_ROWS),
                    4 | 5 => (TILE_ROWS, QK),
                    _ => (QK / 4, 4 * PANEL_ROWS),
                };
                c.0[16 + 2 * t..18 + 2 * t].copy_from_slice(&(bytes as u16).to_le_bytes());
                c.0[48 + t] = rows as u8;
            }
            c
        }
    }

    /// Reused memory of one task: the panel's weight tiles, one block's sums,
    /// and the running sums of 16 × 16 results.
    #[repr(C, align(64))]
    pub(in super::super) struct Scratch {
        sums: [[[i32; PANEL_ROWS]; TILE_ROWS]; QUAD],
        acc: [[f32; PANEL_ROWS]; TILE_ROWS],
        off: [[f32; PANEL_ROWS]; TILE_ROWS],
        b: Vec<u8>,
    }

    impl Scratch {
        pub(in super::super) fn new() -> Box<Scratch> {
            Box::new(Scratch {
                sums: [[[0; PANEL_ROWS]; TILE_ROWS]; QUAD],
                acc: [[0.0; PANEL_ROWS]; TILE_ROWS],
                off: [[0.0; PANEL_ROWS]; TILE_ROWS],
                b: Vec::new(),
            })
        }
    }

    /// The activations of the rows a tile call reads: codes row-major with
    /// row stride `k` (at least 15 rows readable past the last real one), and
    /// per row and block the scale, `d · Σ q` (Q4_1) and `Σ q`.
    #[derive(Clone, Copy)]
    pub(in super::super) struct Acts<'a> {
        pub q: &'a [i8],
        pub d: &'a [f32],
        pub s: &'a [f32],
        pub sums: &'a [i32],
        pub k: usize,
    }

    /// Load the tile configuration on this thread. Pair with [`release`].
    ///
    /// # Safety
    /// [`usable`] returned true.
    pub(in super::super) unsafe fn configure() {
        let c = Config::new();
        // SAFETY: a valid palette-1 configuration; the caller checked AMX.
        unsafe { asm!("ldtilecfg [{}]", in(reg) c.0.as_ptr(), options(nostack, readonly)) };
    }

    /// Give the tile state back (so that the thread's context switches stay small).
    ///
    /// # Safety
    /// [`usable`] returned true.
    pub(in super::super) unsafe fn release() {
        // SAFETY: as the caller guarantees.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }

    /// Weight rows of groups `g0..g0 + groups` (1 or 2) as one tile per block:
    /// tile row `v` holds, for each of the 16 weight rows, its codes `4v..4v + 4`
    /// (unsigned: Q8_0's biased by 128, as the panels hold them; Q4's nibbles).
    ///
    /// # Safety
    /// AVX2 runs here; the groups are inside `w`.
    #[target_feature(enable = "avx2")]
    pub(in super::super) unsafe fn weight_tiles(w: &QMatrix, g0: usize, groups: usize, s: &mut Scratch) {
        let (ty, nu, rec) = (w.quant_type(), w.blocks(), record_bytes(w.quant_type()));
        assert!((1..=2).contains(&groups) && (g0 + groups) * nu * rec <= w.panels().len());
        s.b.resize(nu * B_BYTES, 0);
        let mask = _mm256_set1_epi8(0x0F);
        for u in 0..nu {
            let dst = &mut s.b[u * B_BYTES..(u + 1) * B_BYTES];
            for g in 0..2 {
                // SAFETY: the records are inside the panels (asserted); each
                // store is 32 bytes inside `dst` (8 rows of 64).
                unsafe {
                    let put = |row: usize, v: __m256i, dst: &mut [u8]| {
                        _mm256_storeu_si256(dst.as_mut_ptr().add(row * 4 * PANEL_ROWS + 32 * g).cast(), v)
                    };
                    if g >= groups {
                        for row in 0..QK / 4 {
                            put(row, _mm256_setzero_si256(), dst);
                        }
                        continue;
                    }
                    let p = w.panels().as_ptr().add(((g0 + g) * nu + u) * rec);
                    if ty == QuantType::Q8_0 {
                        for v in 0..QK / 4 {
                            put(v, _mm256_loadu_si256(p.add(32 * v).cast()), dst);
                        }
                    } else {
                        for v in 0..QK / 8 {
                            let x = _mm256_loadu_si256(p.add(32 * v).cast());
                            put(v, _mm256_and_si256(x, mask), dst);
                            put(QK / 8 + v, _mm256_and_si256(_mm256_srli_epi16(x, 4), mask), dst);
                        }
                    }
                }
            }
        }
    }

    /// Activation rows `a.q[0..]` (16 read, the first `rows` kept) × the weight
    /// tiles in `s` (of groups `g0..g0 + groups` of `w`) into `res`, in the
    /// vector kernels' float order.
    ///
    /// # Safety
    /// [`configure`] ran on this thread; AVX-512 F runs here; `a` holds 16
    /// readable rows of `w.cols()` codes and `rows` rows of scales and sums;
    /// [`weight_tiles`] filled `s` for these groups.
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    pub(in super::super) unsafe fn rows_dot(
        w: &QMatrix,
        g0: usize,
        groups: usize,
        a: Acts,
        rows: usize,
        s: &mut Scratch,
        res: &mut [[f32; PANEL_ROWS]; TILE_ROWS],
    ) {
        let (ty, nu, rec) = (w.quant_type(), w.blocks(), record_bytes(w.quant_type()));
        let cb = if ty == QuantType::Q8_0 { QK } else { QK / 2 };
        assert!(rows <= TILE_ROWS && a.k == w.cols() && a.q.len() >= (TILE_ROWS - 1) * a.k + a.k);
        assert!(a.d.len() >= rows * nu && a.sums.len() >= rows * nu && s.b.len() >= nu * B_BYTES);
        assert!(ty != QuantType::Q4_1 || a.s.len() >= rows * nu);
        assert!((1..=2).contains(&groups) && (g0 + groups) * nu * rec <= w.panels().len());
        let bias = match ty {
            QuantType::Q8_0 => 128,
            QuantType::Q4_0 => 8,
            _ => 0,
        };
        let zero = _mm512_setzero_ps();
        for r in 0..rows {
            // SAFETY: r < 16 rows of 16 lanes.
            unsafe {
                _mm512_storeu_ps(s.acc[r].as_mut_ptr(), zero);
                _mm512_storeu_ps(s.off[r].as_mut_ptr(), zero);
            }
        }
        // Four blocks at a time: four sums tiles in flight (tmm0..3, the
        // activations and weights alternating between tmm4/tmm6 and tmm5/tmm7),
        // stored to `s.sums`, then their float steps with each row's running
        // sums in registers. (Storing the next four's sums to a second buffer
        // while the float steps of these run was slower: 0.96 against 0.84 ms
        // for 256 × 576 × 1536 on two threads.)
        for u0 in (0..nu).step_by(QUAD) {
            let nb = (nu - u0).min(QUAD);
            // SAFETY: the tile loads read 16 rows of 32 codes at stride k from
            // blocks u0.. (inside `a.q`, asserted) and 512 bytes of each block's
            // weight tile; the stores write `s.sums[..nb]`.
            unsafe {
                let at = |b: usize| (a.q.as_ptr().add((u0 + b) * QK), s.b.as_ptr().add((u0 + b) * B_BYTES));
                let c = s.sums.as_mut_ptr();
                if nb == QUAD {
                    let (a0, b0) = at(0);
                    let (a1, b1) = at(1);
                    let (a2, b2) = at(2);
                    let (a3, b3) = at(3);
                    asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "tilezero tmm2",
                        "tilezero tmm3",
                        "tileloadd tmm4, [{a0} + {sa} * 1]",
                        "tileloadd tmm6, [{b0} + {sb} * 1]",
                        "tdpbsud tmm0, tmm4, tmm6",
                        "tileloadd tmm5, [{a1} + {sa} * 1]",
                        "tileloadd tmm7, [{b1} + {sb} * 1]",
                        "tdpbsud tmm1, tmm5, tmm7",
                        "tileloadd tmm4, [{a2} + {sa} * 1]",
                        "tileloadd tmm6, [{b2} + {sb} * 1]",
                        "tdpbsud tmm2, tmm4, tmm6",
                        "tileloadd tmm5, [{a3} + {sa} * 1]",
                        "tileloadd tmm7, [{b3} + {sb} * 1]",
                        "tdpbsud tmm3, tmm5, tmm7",
                        "tilestored [{c} + {sb} * 1], tmm0",
                        "tilestored [{c} + {sb} * 1 + 1024], tmm1",
                        "tilestored [{c} + {sb} * 1 + 2048], tmm2",
                        "tilestored [{c} + {sb} * 1 + 3072], tmm3",
                        a0 = in(reg) a0, a1 = in(reg) a1, a2 = in(reg) a2, a3 = in(reg) a3,
                        b0 = in(reg) b0, b1 = in(reg) b1, b2 = in(reg) b2, b3 = in(reg) b3,
                        sa = in(reg) a.k,
                        sb = in(reg) 4 * PANEL_ROWS,
                        c = in(reg) c,
                        options(nostack),
                    );
                } else {
                    for b in 0..nb {
                        let (ab, bb) = at(b);
                        asm!(
                            "tilezero tmm0",
                            "tileloadd tmm4, [{a} + {sa} * 1]",
                            "tileloadd tmm6, [{b} + {sb} * 1]",
                            "tdpbsud tmm0, tmm4, tmm6",
                            "tilestored [{c} + {sb} * 1], tmm0",
                            a = in(reg) ab,
                            sa = in(reg) a.k,
                            b = in(reg) bb,
                            sb = in(reg) 4 * PANEL_ROWS,
                            c = in(reg) c.add(b),
                            options(nostack),
                        );
                    }
                }
            }
            // The 16 weight rows' scales (and minimums) per block, f16 in the records.
            let mut dw = [zero; QUAD];
            let mut mw = [zero; QUAD];
            for b in 0..nb {
                // SAFETY: the records are inside the panels (asserted).
                unsafe {
                    let f16s = |g: usize, at: usize| {
                        if g < groups {
                            let rec_at = ((g0 + g) * nu + u0 + b) * rec + GROUP * cb + at;
                            _mm_loadu_si128(w.panels().as_ptr().add(rec_at).cast())
                        } else {
                            _mm_setzero_si128()
                        }
                    };
                    let both = |at: usize| _mm512_cvtph_ps(_mm256_set_m128i(f16s(1, at), f16s(0, at)));
                    dw[b] = both(0);
                    if ty == QuantType::Q4_1 {
                        mw[b] = both(16);
                    }
                }
            }
            for r in 0..rows {
                // SAFETY: r < rows ≤ 16; the scales' and sums' indices are inside
                // them (asserted: `rows · nu` of each).
                unsafe {
                    let mut acc = _mm512_loadu_ps(s.acc[r].as_ptr());
                    for (b, &d) in dw.iter().enumerate().take(nb) {
                        let at = r * nu + u0 + b;
                        let mut isum = _mm512_loadu_si512(s.sums[b][r].as_ptr().cast());
                        if bias != 0 {
                            isum = _mm512_sub_epi32(isum, _mm512_set1_epi32(bias * *a.sums.get_unchecked(at)));
                        }
                        let scale = _mm512_mul_ps(d, _mm512_set1_ps(*a.d.get_unchecked(at)));
                        acc = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(isum), acc);
                    }
                    _mm512_storeu_ps(s.acc[r].as_mut_ptr(), acc);
                    if ty == QuantType::Q4_1 {
                        let mut off = _mm512_loadu_ps(s.off[r].as_ptr());
                        for (b, &m) in mw.iter().enumerate().take(nb) {
                            off = _mm512_add_ps(
                                off,
                                _mm512_mul_ps(m, _mm512_set1_ps(*a.s.get_unchecked(r * nu + u0 + b))),
                            );
                        }
                        _mm512_storeu_ps(s.off[r].as_mut_ptr(), off);
                    }
                }
            }
        }
        for (r, out) in res.iter_mut().enumerate().take(rows) {
            // SAFETY: 16 lanes of row r.
            unsafe {
                let y = _mm512_add_ps(_mm512_loadu_ps(s.acc[r].as_ptr()), _mm512_loadu_ps(s.off[r].as_ptr()));
                _mm512_storeu_ps(out.as_mut_ptr(), y);
            }
        }
    }
}
