//! CPU kernels for inference (and the frozen-linear backward): `y = x·Wᵀ` and
//! `dX = dY·W` for weights stored row-major `(out, in)` in f32 or bf16, `y = x·Wᵀ`
//! for GGUF-quantized weights (`quant.rs`: Q8_0, Q4_0, Q4_1, Q4_K; x86
//! vector code in `quant_x86.rs`, the Q4_K format in `q4k.rs`), and the
//! small vector operations of a decode step (dot, axpy, RMSNorm, SwiGLU, argmax).
//!
//! Why our own instead of candle's matmul: a decode step multiplies a handful
//! of rows by every weight matrix, where candle's per-call overhead and its
//! blocking for large products dominate; and serving needs results that are
//! **batch-invariant**. Every output element here is computed by one fixed
//! sequence of operations over its own input row and weight row (eight-lane
//! partial sums over `in` in ascending order, then one fixed horizontal sum),
//! whatever the number of rows, the other rows, the tile the element falls in,
//! or the number of threads. So a sequence decodes to the same bits alone or in
//! a mixed batch of 32, which OpenLoRA's mixed-batch tests compare token for token.
//!
//! Vector units are chosen at run time ([`Isa::detect`]): AVX + FMA (256-bit,
//! on every x86-64 CPU since 2013; bf16 widened with SSE2 unpacks, so AVX2 is
//! not needed), else a portable scalar path. An AVX-512F version of the
//! product tiles was measured on this machine's Zen 4 (which runs 512-bit
//! operations as two 256-bit halves) at 0.92–1.17× the AVX one, noise, so it
//! is not here; a CPU with two 512-bit FMA units would want it back.
//!
//! The binary is never built with `-C target-cpu=native`, so it runs on any
//! x86-64 (and non-x86) machine. The two paths round differently (fused
//! multiply-add or not); one machine always takes the same path, so
//! invariance holds per machine.

mod int8;
mod linear;
mod q4k;
mod q5k;
mod q6k;
mod quant;
#[cfg(target_arch = "x86_64")]
mod quant_x86;
pub(crate) mod team;
mod vector;

pub use int8::{linear_i8_t, linear_i8_t_with, quantize_rows_i8, transpose_i8};
pub use linear::{Weights, linear, linear_backward_input, linear_backward_input_with, linear_with};
pub use quant::{
    QK, QK_K, QMatrix, QuantIsa, QuantType, linear_q, linear_q_many, linear_q_many_warming, linear_q_many_with,
    linear_q_with,
};
pub use team::with_team;
pub use vector::{add_in_place, argmax_rows, attend, axpy, dot, exp_in_place, rms_norm_rows, silu_mul_in_place};

/// Numbers with no padding, every bit pattern a value: what [`plain_bytes`] may view.
pub trait Plain: Copy + sealed::Sealed {}
mod sealed {
    pub trait Sealed {}
}
macro_rules! plain {
    ($($t:ty),*) => {$(impl sealed::Sealed for $t {} impl Plain for $t {})*};
}
plain!(u8, i8, f32, half::bf16);

/// The in-memory bytes of a slice of plain numbers (little-endian values on a
/// little-endian machine): what is hashed, prefetched or written as is.
pub fn plain_bytes<T: Plain>(v: &[T]) -> &[u8] {
    // SAFETY: `T` is one of the sealed plain types: no padding, so every byte
    // is initialised, and u8 has no alignment.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// Which implementation the kernels run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// 256-bit AVX with fused multiply-add.
    AvxFma,
    /// Plain Rust, for CPUs without AVX + FMA (and for comparison in tests).
    Scalar,
}

impl Isa {
    /// The best implementation this CPU runs, detected once.
    pub fn detect() -> Isa {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx") && std::arch::is_x86_feature_detected!("fma") {
                    return Isa::AvxFma;
                }
            }
            Isa::Scalar
        })
    }

    /// Whether this CPU can run `self` (so tests can try every available path).
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::AvxFma => Isa::detect() == Isa::AvxFma,
        }
    }
}

/// One line for benchmark reports: which kernels run here.
pub fn describe() -> String {
    let dense = match Isa::detect() {
        Isa::AvxFma => "AVX+FMA (run-time dispatch; bf16 widened with SSE2)",
        Isa::Scalar => "scalar (no AVX+FMA on this CPU)",
    };
    let quant = match QuantIsa::detect() {
        QuantIsa::Amx => "AVX2 + AVX-512 VNNI (256-bit), AMX tiles for Q8_0/Q4_0/Q4_1 products of 16+ rows",
        QuantIsa::Avx512Vnni => "AVX2 + AVX-512 VNNI (256-bit)",
        QuantIsa::AvxVnni => "AVX2 + AVX-VNNI",
        QuantIsa::Avx2 => "AVX2",
        QuantIsa::Scalar => "scalar",
    };
    format!("{dense}; quantized weights: {quant}")
}
