//! The low-level building blocks every operator is made of, independent of the
//! operators themselves (nothing here imports `conv`, `pool` or `element`):
//!
//! - `isa`: which instruction set the kernels run with, detected and capped in
//!   one place;
//! - `scalar`: the element types (`f32`, `f64`) as the kernels see them;
//! - `lanes`: the vector-register trait every SIMD kernel body is written over
//!   once, and its AVX-512 and AVX2 implementations;
//! - `microkernel`, `gemm`, `packing`: the register-blocked GEMM micro-kernel,
//!   the drivers that loop it over blocks, and the panels they read;
//! - `dot`: the dot-product kernel of weight gradients;
//! - `permute`: even/odd and four-way splits and interleaves of rows;
//! - `stride2_max`: the element types of max pooling (floats and integers), the
//!   stride-2 max-pooling kernel and the shared scan step;
//! - `copy`: short block copies; `shared`: a buffer written by disjoint tasks;
//! - `elementary`: `pow` and `cbrt` as arithmetic that vectorises.

pub mod bf16_gemm;
pub mod convert;
pub mod copy;
pub mod dot;
pub mod elementary;
pub mod gemm;
pub mod isa;
// Only x86-64 implements the lane traits so far; elsewhere every kernel is portable.
#[cfg(target_arch = "x86_64")]
pub(crate) mod lanes;
pub mod microkernel;
pub mod packing;
pub mod permute;
pub mod scalar;
pub mod shared;
pub mod stride2_max;

pub use copy::{copy_blocks, fill_zero};
pub use dot::{dot_acc_len, DotKernel, DC, DR};
pub use gemm::{accumulator, gemm_indirect, gemm_packed, gemm_rows, AMatrix, Block};
pub use isa::Isa;
pub use microkernel::{MicroKernel, RowTable, MR};
pub use packing::{pack_a, pack_a_panel, pack_b, packed_a_len, packed_b_len};
pub use permute::Permute;
pub use scalar::Scalar;
pub use shared::SharedMut;
pub use stride2_max::{update_max, MaxElement, Run};

/// Call `$plain(args)`, or one of its SIMD twins (the same generic body compiled
/// with `#[target_feature]`, see [`simd_twins`]) on the path [`isa::active`] picks:
/// `$avx512` for AVX-512F, `$avx2` for AVX2+FMA.
macro_rules! dispatch {
    ($plain:ident, $avx512:ident, $avx2:ident, $($arg:expr),*) => {{
        #[cfg(target_arch = "x86_64")]
        {
            match $crate::kernels::isa::active() {
                // SAFETY: the CPU supports AVX-512F (`active` never exceeds it).
                $crate::kernels::Isa::Avx512 => unsafe { $avx512($($arg),*) },
                // SAFETY: the CPU supports AVX2 and FMA (as above).
                $crate::kernels::Isa::Avx2 => unsafe { $avx2($($arg),*) },
                $crate::kernels::Isa::Portable => $plain($($arg),*),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $plain($($arg),*)
        }
    }};
}
pub(crate) use dispatch;

/// [`dispatch`] for a body whose first generic parameter is an
/// [`elementary::Fma`] strategy (the others are passed as `[_, ...]` and
/// inferred): the SIMD twins run it fused (their FMA instructions), the portable
/// body unfused (an x86-64 baseline has no FMA instruction; `mul_add` would be a
/// libm call), or fused on aarch64, whose baseline has one.
macro_rules! dispatch_fma {
    ($plain:ident, $avx512:ident, $avx2:ident, [$($g:tt),*], $($arg:expr),*) => {{
        #[cfg(target_arch = "x86_64")]
        {
            use $crate::kernels::elementary::{Fused, Unfused};
            match $crate::kernels::isa::active() {
                // SAFETY: the CPU supports AVX-512F (`active` never exceeds it).
                $crate::kernels::Isa::Avx512 => unsafe { $avx512::<Fused, $($g),*>($($arg),*) },
                // SAFETY: the CPU supports AVX2 and FMA (as above).
                $crate::kernels::Isa::Avx2 => unsafe { $avx2::<Fused, $($g),*>($($arg),*) },
                $crate::kernels::Isa::Portable => $plain::<Unfused, $($g),*>($($arg),*),
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            $plain::<$crate::kernels::elementary::Fused, $($g),*>($($arg),*)
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            $plain::<$crate::kernels::elementary::Unfused, $($g),*>($($arg),*)
        }
    }};
}
pub(crate) use dispatch_fma;

/// Define `$avx512` and `$avx2`, the twins [`dispatch`] calls: the function
/// `$body` (generic over an element type `$t`, or a few parameters, best
/// `#[inline(always)]` so its loops are compiled inside the twin) compiled with
/// AVX-512F, and with AVX2+FMA, so the compiler vectorises its loops for each
/// instruction set.
macro_rules! simd_twins {
    ($body:ident => $avx512:ident, $avx2:ident,
     <$($t:ident: $bound:path),+>($($arg:ident: $ty:ty),* $(,)?)) => {
        /// The generic body compiled for AVX-512F.
        ///
        /// # Safety
        /// The CPU must support AVX-512F.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx512<$($t: $bound),+>($($arg: $ty),*) {
            $body::<$($t),+>($($arg),*)
        }

        /// The generic body compiled for AVX2 and FMA.
        ///
        /// # Safety
        /// The CPU must support AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx2<$($t: $bound),+>($($arg: $ty),*) {
            $body::<$($t),+>($($arg),*)
        }
    };
    // The same with one const generic parameter after the type parameters.
    ($body:ident => $avx512:ident, $avx2:ident,
     <$($t:ident: $bound:path),+; const $c:ident: $cty:ty>($($arg:ident: $ty:ty),* $(,)?)) => {
        /// The generic body compiled for AVX-512F.
        ///
        /// # Safety
        /// The CPU must support AVX-512F.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx512<$($t: $bound),+, const $c: $cty>($($arg: $ty),*) {
            $body::<$($t),+, $c>($($arg),*)
        }

        /// The generic body compiled for AVX2 and FMA.
        ///
        /// # Safety
        /// The CPU must support AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx2<$($t: $bound),+, const $c: $cty>($($arg: $ty),*) {
            $body::<$($t),+, $c>($($arg),*)
        }
    };
}
pub(crate) use simd_twins;
