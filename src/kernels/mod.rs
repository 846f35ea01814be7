//! The low-level building blocks every operator is made of, independent of the
//! operators themselves (nothing here imports `conv`, `pool` or `element`):
//!
//! - `isa`: which instruction set the kernels run with, detected in one place;
//! - `scalar`: the element types (`f32`, `f64`) as the kernels see them;
//! - `lanes`: the vector-register trait every SIMD kernel body is written over
//!   once, and its AVX-512 implementations;
//! - `microkernel`, `gemm`, `packing`: the register-blocked GEMM micro-kernel,
//!   the drivers that loop it over blocks, and the panels they read;
//! - `dot`: the dot-product kernel of weight gradients;
//! - `permute`: even/odd and four-way splits and interleaves of rows;
//! - `stride2_max`: the stride-2 max-pooling kernel and the shared scan step;
//! - `copy`: short block copies; `shared`: a buffer written by disjoint tasks.

pub mod copy;
pub mod dot;
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
pub use gemm::{accumulator, gemm_indirect, gemm_packed, gemm_rows, Block};
pub use isa::Isa;
pub use microkernel::{MicroKernel, RowTable, MR};
pub use packing::{pack_a, pack_b, packed_a_len, packed_b_len};
pub use permute::Permute;
pub use scalar::Scalar;
pub use shared::SharedMut;
pub use stride2_max::{update_max, Run, Stride2Max};

/// Call `$plain(args)`, or its AVX-512 twin `$simd(args)` (the same generic body
/// compiled with `#[target_feature(enable = "avx512f")]`) when the CPU has it.
macro_rules! dispatch {
    ($plain:ident, $simd:ident, $($arg:expr),*) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if $crate::kernels::isa::avx512() {
                // SAFETY: AVX-512F is available (checked just above).
                unsafe { $simd($($arg),*) }
            } else {
                $plain($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $plain($($arg),*)
        }
    }};
}
pub(crate) use dispatch;
