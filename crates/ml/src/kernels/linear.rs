//! `y = x·Wᵀ` and `dX = dY·W` for a weight `W` stored row-major `(out, in)`.
//!
//! Forward: the output is cut into tasks of (up to) [`ROWS_PER_TASK`] rows ×
//! a block of weight rows, run on the rayon pool; inside a task, register tiles
//! of [`MR`] input rows × [`NR`] weight rows keep `MR·NR` eight-lane accumulators
//! while walking `in` eight at a time, so each weight vector loaded serves `MR`
//! rows and each input vector `NR` outputs. Edge tiles are smaller instances of
//! the same code, so every element sees the same operations in the same order.
//!
//! Backward (`dX = dY·W`): each element `dX[i, c] = Σ_j dY[i, j] · W[j, c]` is one
//! fused multiply-add chain over `j` ascending, tiled as two rows × 32 columns.

use half::bf16;

use super::Isa;
use crate::MlError;

/// Input rows of a forward register tile.
const MR: usize = 4;
/// Weight rows (outputs) of a forward register tile of MR rows.
const NR: usize = 3;
/// Weight rows of a tile of fewer than MR rows: a decode step at batch 1 streams
/// the weights with no reuse, and more rows at once keeps more loads in flight.
/// The tile's shape never changes an element's arithmetic, only how many are
/// computed side by side.
const fn tile_cols(rows: usize) -> usize {
    match rows {
        1 => 8,
        2 => 4,
        _ => NR,
    }
}
/// Input rows of a forward task: bounds the rows streamed per weight block so
/// that they stay in the core's cache while the block is reused.
pub(super) const ROWS_PER_TASK: usize = 64;
/// Below this many multiply-adds a product runs on the calling thread: rayon's
/// hand-off costs more than it saves.
pub(super) const PARALLEL_MIN_MACS: usize = 1 << 16;

/// A weight matrix `(out, in)`, row-major and contiguous, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    F32(&'a [f32]),
    /// bf16 storage, widened to f32 on load (half the bytes to read per decode step).
    Bf16(&'a [bf16]),
}

impl<'a> Weights<'a> {
    /// The stored bytes (what a product reads).
    pub fn bytes(&self) -> &'a [u8] {
        match *self {
            Weights::F32(w) => super::plain_bytes(w),
            Weights::Bf16(w) => super::plain_bytes(w),
        }
    }
}

impl Weights<'_> {
    pub fn len(&self) -> usize {
        match self {
            Weights::F32(w) => w.len(),
            Weights::Bf16(w) => w.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per element.
    fn elem(&self) -> usize {
        match self {
            Weights::F32(_) => 4,
            Weights::Bf16(_) => 2,
        }
    }

    fn ptr(&self) -> *const u8 {
        match self {
            Weights::F32(w) => w.as_ptr().cast(),
            Weights::Bf16(w) => w.as_ptr().cast(),
        }
    }

    fn get(&self, i: usize) -> f32 {
        match self {
            Weights::F32(w) => w[i],
            Weights::Bf16(w) => w[i].to_f32(),
        }
    }
}

/// A raw output pointer shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
pub(super) struct Out(pub(super) *mut f32);
// SAFETY: every task writes a disjoint set of elements (its own rows × columns),
// and the borrow of the output slice outlives the parallel loop.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

fn shape_error(what: &str, detail: String) -> MlError {
    MlError::Config(format!("{what}: {detail}"))
}

/// `y = x·Wᵀ`: `x` is `[m, k]`, `w` is `(n, k)`, `y` is `[m, n]`, all row-major;
/// `m` and `n` follow from the lengths. f32 accumulation; batch-invariant and
/// independent of the thread count (see the module docs of [`crate::kernels`]).
pub fn linear(x: &[f32], w: Weights, k: usize, y: &mut [f32]) -> Result<(), MlError> {
    linear_with(Isa::detect(), x, w, k, y)
}

/// [`linear`] with a chosen implementation (tests compare them).
pub fn linear_with(isa: Isa, x: &[f32], w: Weights, k: usize, y: &mut [f32]) -> Result<(), MlError> {
    if k == 0 || !x.len().is_multiple_of(k) || !w.len().is_multiple_of(k) {
        return Err(shape_error("linear", format!("x has {} and W {} values, not rows of {k}", x.len(), w.len())));
    }
    let (m, n) = (x.len() / k, w.len() / k);
    if y.len() != m * n {
        return Err(shape_error("linear", format!("y has {} values, [{m}, {n}] needs {}", y.len(), m * n)));
    }
    if !isa.available() {
        return Err(MlError::Unsupported(format!("{isa:?} kernels on this CPU")));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let threads = rayon::current_num_threads().max(1);
    // Weight rows per task: a multiple of NR, enough tasks to keep every thread busy.
    let nb = (n.div_ceil(4 * threads)).clamp(24, 96).div_ceil(24) * 24;
    let out = Out(y.as_mut_ptr());
    for_each_block((m, ROWS_PER_TASK), (n, nb), m * n * k, |(r0, r1), (c0, c1)| {
        // SAFETY: rows r0..r1 and columns c0..c1 are inside x, w and y (checked
        // above), and no other task writes these elements of y.
        unsafe { forward_block(isa, x, w, k, n, out, r0, r1, c0, c1) }
    });
    Ok(())
}

/// Run `f(rows, cols)` over the grid of `(rows, row_block)` × `(cols, col_block)`
/// blocks (the last of each shorter), in parallel (on the step's team, else
/// rayon) when the product's `macs` (multiply-adds) are worth it. Each block
/// is computed alone, so the result does not depend on how the blocks are
/// scheduled.
pub(super) fn for_each_block(
    (rows, row_block): (usize, usize),
    (cols, col_block): (usize, usize),
    macs: usize,
    f: impl Fn((usize, usize), (usize, usize)) + Sync,
) {
    let col_blocks = cols.div_ceil(col_block);
    for_each_task(rows.div_ceil(row_block) * col_blocks, macs, |t| {
        let (rb, cb) = (t / col_blocks, t % col_blocks);
        f((rb * row_block, ((rb + 1) * row_block).min(rows)), (cb * col_block, ((cb + 1) * col_block).min(cols)))
    });
}

/// Run `f(0..tasks)`, in parallel (on the step's team, else rayon) when the
/// `macs` (multiply-adds) of all of them are worth it. Each task is computed
/// alone, so the result does not depend on how the tasks are scheduled.
pub(super) fn for_each_task(tasks: usize, macs: usize, f: impl Fn(usize) + Sync) {
    if macs < PARALLEL_MIN_MACS || tasks == 1 {
        (0..tasks).for_each(&f);
    } else {
        super::team::for_each(tasks, &f);
    }
}

/// Rows `r0..r1` × outputs `c0..c1` of `y` (row stride `n`).
#[allow(clippy::too_many_arguments)]
unsafe fn forward_block(
    isa: Isa,
    x: &[f32],
    w: Weights,
    k: usize,
    n: usize,
    y: Out,
    r0: usize,
    r1: usize,
    c0: usize,
    c1: usize,
) {
    // bf16 weights used by many rows are widened once per task into an f32
    // copy of the block (exact: a bf16 is an f32 with a shorter mantissa, so the
    // results are the same bits as widening at every load, only cheaper).
    if let (Weights::Bf16(wb), true) = (w, r1 - r0 >= WIDEN_MIN_ROWS) {
        WIDENED.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            buf.extend(wb[c0 * k..c1 * k].iter().map(|v| v.to_f32()));
            // SAFETY: as for the caller; the block's rows are now rows 0.. of buf.
            unsafe { forward_tiles(isa, x, Weights::F32(&buf), c0, k, n, y, r0, r1, c0, c1) }
        });
        return;
    }
    // SAFETY: as for the caller.
    unsafe { forward_tiles(isa, x, w, 0, k, n, y, r0, r1, c0, c1) }
}

/// Rows of a task from which its bf16 weight block is widened first.
const WIDEN_MIN_ROWS: usize = 8;

thread_local! {
    /// A task's widened weight block, reused across calls.
    static WIDENED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The register tiles of rows r0..r1 × outputs c0..c1; weight row `j` is row
/// `j - w_row0` of `w`.
#[allow(clippy::too_many_arguments)]
unsafe fn forward_tiles(
    isa: Isa,
    x: &[f32],
    w: Weights,
    w_row0: usize,
    k: usize,
    n: usize,
    y: Out,
    r0: usize,
    r1: usize,
    c0: usize,
    c1: usize,
) {
    let mut i = r0;
    while i < r1 {
        let mr = (r1 - i).min(MR);
        let mut j = c0;
        while j < c1 {
            let nr = (c1 - j).min(tile_cols(mr));
            // SAFETY (for the callee): rows i..i+mr of x, rows j..j+nr of w and
            // the tile of y are in bounds.
            let xp = unsafe { x.as_ptr().add(i * k) };
            let wp = unsafe { w.ptr().add((j - w_row0) * k * w.elem()) };
            let yp = unsafe { y.0.add(i * n + j) };
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::AvxFma => unsafe { avx::tile_dispatch(matches!(w, Weights::Bf16(_)), mr, nr, xp, wp, k, yp, n) },
                _ => unsafe { scalar_tile(xp, w, j - w_row0, k, yp, n, mr, nr) },
            }
            j += nr;
        }
        i += mr;
    }
}

/// The portable tile: the same eight lanes and horizontal-sum order as the AVX
/// path, without fused multiply-add.
#[allow(clippy::too_many_arguments)]
unsafe fn scalar_tile(x: *const f32, w: Weights, j0: usize, k: usize, y: *mut f32, ldy: usize, mr: usize, nr: usize) {
    for i in 0..mr {
        // SAFETY: the caller checked that row i of the tile is in x.
        let xr = unsafe { std::slice::from_raw_parts(x.add(i * k), k) };
        for j in 0..nr {
            let base = (j0 + j) * k;
            let mut lanes = [0.0f32; 8];
            for (c, xv) in xr.iter().enumerate() {
                lanes[c % 8] += xv * w.get(base + c);
            }
            // SAFETY: the tile of y is in bounds.
            unsafe { *y.add(i * ldy + j) = hsum8(&lanes) };
        }
    }
}

/// The horizontal sum of eight lanes in the order the AVX path uses.
pub(super) fn hsum8(l: &[f32; 8]) -> f32 {
    let s = [l[0] + l[4], l[1] + l[5], l[2] + l[6], l[3] + l[7]];
    let t = [s[0] + s[2], s[1] + s[3]];
    t[0] + t[1]
}

/// `dX = dY·W`: `dy` is `[m, n]`, `w` is `(n, k)`, `dx` is `[m, k]`, row-major
/// (the input gradient of `y = x·Wᵀ` for a frozen `W`). Every element is one
/// multiply-add chain over `n` in ascending order: batch-invariant and
/// independent of the thread count.
pub fn linear_backward_input(dy: &[f32], w: Weights, k: usize, dx: &mut [f32]) -> Result<(), MlError> {
    linear_backward_input_with(Isa::detect(), dy, w, k, dx)
}

/// Columns of `dX` per backward task.
const BWD_COLS: usize = 64;
/// Rows of `dX` per backward task.
const BWD_ROWS: usize = 32;

/// [`linear_backward_input`] with a chosen implementation.
pub fn linear_backward_input_with(isa: Isa, dy: &[f32], w: Weights, k: usize, dx: &mut [f32]) -> Result<(), MlError> {
    if k == 0 || !w.len().is_multiple_of(k) {
        return Err(shape_error("linear backward", format!("W has {} values, not rows of {k}", w.len())));
    }
    let n = w.len() / k;
    if n == 0 || !dy.len().is_multiple_of(n) {
        return Err(shape_error("linear backward", format!("dY has {} values, not rows of {n}", dy.len())));
    }
    let m = dy.len() / n;
    if dx.len() != m * k {
        return Err(shape_error("linear backward", format!("dX has {} values, [{m}, {k}] needs {}", dx.len(), m * k)));
    }
    if !isa.available() {
        return Err(MlError::Unsupported(format!("{isa:?} kernels on this CPU")));
    }
    if m == 0 {
        return Ok(());
    }
    let out = Out(dx.as_mut_ptr());
    for_each_block((m, BWD_ROWS), (k, BWD_COLS), m * n * k, |(r0, r1), (c0, c1)| {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the block is inside dy, w and dx; tasks write disjoint blocks.
            Isa::AvxFma => unsafe { avx::backward_block(dy, w, n, k, out, r0, r1, c0, c1) },
            _ => {
                for i in r0..r1 {
                    for c in c0..c1 {
                        let mut acc = 0.0f32;
                        for j in 0..n {
                            acc += dy[i * n + j] * w.get(j * k + c);
                        }
                        // SAFETY: as above.
                        unsafe { *out.0.add(i * k + c) = acc };
                    }
                }
            }
        }
    });
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    use super::{MR, NR, Out, Weights};

    /// Eight weights from `p` (f32, or bf16 widened: a bf16 is the top half of an f32).
    #[target_feature(enable = "avx,fma")]
    #[inline]
    unsafe fn load_w<const BF: bool>(p: *const u8) -> __m256 {
        unsafe {
            if BF {
                let v = _mm_loadu_si128(p.cast());
                let z = _mm_setzero_si128();
                let lo = _mm_castsi128_ps(_mm_unpacklo_epi16(z, v));
                let hi = _mm_castsi128_ps(_mm_unpackhi_epi16(z, v));
                _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1)
            } else {
                _mm256_loadu_ps(p.cast())
            }
        }
    }

    /// The lanes summed as `hsum8` of the scalar path sums them.
    #[target_feature(enable = "avx,fma")]
    #[inline]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let t = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)))
    }

    /// One register tile: `R` rows of x (stride k) × `C` weight rows (stride k).
    #[target_feature(enable = "avx,fma")]
    unsafe fn tile<const R: usize, const C: usize, const BF: bool>(
        x: *const f32,
        w: *const u8,
        k: usize,
        y: *mut f32,
        ldy: usize,
    ) {
        let es = if BF { 2 } else { 4 };
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        let full = k / 8;
        unsafe {
            for c in 0..full {
                let mut wv = [_mm256_setzero_ps(); C];
                for (j, v) in wv.iter_mut().enumerate() {
                    let p = w.add((j * k + c * 8) * es);
                    // The same place in the next tile's weight rows, which follow
                    // these in memory: the hardware prefetcher loses track at every
                    // short row, this keeps the stream going (a hint only: it
                    // cannot change a result, nor fault past the end).
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(C * k * es).cast());
                    *v = load_w::<BF>(p);
                }
                for (i, a) in acc.iter_mut().enumerate() {
                    let xv = _mm256_loadu_ps(x.add(i * k + c * 8));
                    for j in 0..C {
                        a[j] = _mm256_fmadd_ps(xv, wv[j], a[j]);
                    }
                }
            }
            let rem = k - full * 8;
            if rem > 0 {
                // The last partial chunk, zero-padded: 0·0 leaves an accumulator unchanged.
                let mut wv = [_mm256_setzero_ps(); C];
                for (j, v) in wv.iter_mut().enumerate() {
                    let mut buf = [0u8; 32];
                    std::ptr::copy_nonoverlapping(w.add((j * k + full * 8) * es), buf.as_mut_ptr(), rem * es);
                    *v = load_w::<BF>(buf.as_ptr());
                }
                for (i, a) in acc.iter_mut().enumerate() {
                    let mut buf = [0.0f32; 8];
                    std::ptr::copy_nonoverlapping(x.add(i * k + full * 8), buf.as_mut_ptr(), rem);
                    let xv = _mm256_loadu_ps(buf.as_ptr());
                    for j in 0..C {
                        a[j] = _mm256_fmadd_ps(xv, wv[j], a[j]);
                    }
                }
            }
            for (i, a) in acc.iter().enumerate() {
                for (j, v) in a.iter().enumerate() {
                    *y.add(i * ldy + j) = hsum(*v);
                }
            }
        }
    }

    macro_rules! dispatch {
        ($bf:expr, $mr:expr, $nr:expr, $args:tt; $(($r:literal, $c:literal)),*) => {
            match ($bf, $mr, $nr) {
                $(
                    (false, $r, $c) => tile::<$r, $c, false> $args,
                    (true, $r, $c) => tile::<$r, $c, true> $args,
                )*
                _ => unreachable!("tile sizes are at most MR × NR"),
            }
        };
    }

    /// The tile of `mr` ≤ MR rows × `nr` ≤ NR weight rows.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx,fma")]
    pub(super) unsafe fn tile_dispatch(
        bf: bool,
        mr: usize,
        nr: usize,
        x: *const f32,
        w: *const u8,
        k: usize,
        y: *mut f32,
        ldy: usize,
    ) {
        const _: () = assert!(MR == 4 && NR == 3, "the dispatch table lists the tile sizes");
        unsafe {
            dispatch!(bf, mr, nr, (x, w, k, y, ldy);
                (1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7), (1, 8),
                (2, 1), (2, 2), (2, 3), (2, 4), (3, 1), (3, 2), (3, 3), (4, 1), (4, 2), (4, 3))
        }
    }

    /// Rows r0..r1 × columns c0..c1 of dX = dY·W (dY `[m, n]`, W `(n, k)`).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx,fma")]
    pub(super) unsafe fn backward_block(
        dy: &[f32],
        w: Weights,
        n: usize,
        k: usize,
        dx: Out,
        r0: usize,
        r1: usize,
        c0: usize,
        c1: usize,
    ) {
        unsafe {
            match w {
                Weights::F32(_) => backward_block_t::<false>(dy, w.ptr(), n, k, dx, r0, r1, c0, c1),
                Weights::Bf16(_) => backward_block_t::<true>(dy, w.ptr(), n, k, dx, r0, r1, c0, c1),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx,fma")]
    unsafe fn backward_block_t<const BF: bool>(
        dy: &[f32],
        w: *const u8,
        n: usize,
        k: usize,
        dx: Out,
        r0: usize,
        r1: usize,
        c0: usize,
        c1: usize,
    ) {
        let es = if BF { 2 } else { 4 };
        unsafe {
            let mut i = r0;
            while i < r1 {
                let rows = (r1 - i).min(2);
                let mut c = c0;
                // 32 columns (four vectors) at a time, then single vectors, then scalars:
                // every element is the same fused multiply-add chain over j.
                while c + 32 <= c1 {
                    bwd_tile::<4, BF>(dy, w, es, n, k, dx, i, rows, c);
                    c += 32;
                }
                while c + 8 <= c1 {
                    bwd_tile::<1, BF>(dy, w, es, n, k, dx, i, rows, c);
                    c += 8;
                }
                while c < c1 {
                    for r in i..i + rows {
                        let mut acc = 0.0f32;
                        for j in 0..n {
                            let wv = if BF {
                                half::bf16::from_bits(*(w.add((j * k + c) * 2) as *const u16)).to_f32()
                            } else {
                                *(w.add((j * k + c) * 4) as *const f32)
                            };
                            acc = dy[r * n + j].mul_add(wv, acc);
                        }
                        *dx.0.add(r * k + c) = acc;
                    }
                    c += 1;
                }
                i += rows;
            }
        }
    }

    /// `rows` (1 or 2) rows × `V` vectors of columns from column `c`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx,fma")]
    #[inline]
    unsafe fn bwd_tile<const V: usize, const BF: bool>(
        dy: &[f32],
        w: *const u8,
        es: usize,
        n: usize,
        k: usize,
        dx: Out,
        i: usize,
        rows: usize,
        c: usize,
    ) {
        unsafe {
            let mut a0 = [_mm256_setzero_ps(); V];
            let mut a1 = [_mm256_setzero_ps(); V];
            for j in 0..n {
                let mut wv = [_mm256_setzero_ps(); V];
                for (q, v) in wv.iter_mut().enumerate() {
                    *v = load_w::<BF>(w.add((j * k + c + q * 8) * es));
                }
                let b0 = _mm256_set1_ps(dy[i * n + j]);
                for q in 0..V {
                    a0[q] = _mm256_fmadd_ps(b0, wv[q], a0[q]);
                }
                if rows == 2 {
                    let b1 = _mm256_set1_ps(dy[(i + 1) * n + j]);
                    for q in 0..V {
                        a1[q] = _mm256_fmadd_ps(b1, wv[q], a1[q]);
                    }
                }
            }
            for q in 0..V {
                _mm256_storeu_ps(dx.0.add(i * k + c + q * 8), a0[q]);
                if rows == 2 {
                    _mm256_storeu_ps(dx.0.add((i + 1) * k + c + q * 8), a1[q]);
                }
            }
        }
    }
}
