//! Low-level building blocks: the SIMD micro-kernel, panel packing and the packed
//! GEMM driver, plus bounds-checked shared output buffers.

pub mod dot;
pub mod even;
pub mod microkernel;
pub mod pack;
pub mod shared;

pub use dot::{dot_acc_len, DotKernel, DC, DR};
pub use even::CopyEven;
pub use microkernel::{MicroKernel, RowTable, MR};
pub use pack::{
    gemm_indirect, gemm_packed, gemm_rows, pack_a, pack_b, packed_a_len, packed_b_len, Block,
};
pub use shared::SharedMut;

/// Call `$plain(args)`, or its AVX-512 twin `$simd(args)` (the same generic body
/// compiled with `#[target_feature(enable = "avx512f")]`) when the CPU has it.
macro_rules! dispatch {
    ($plain:ident, $simd:ident, $($arg:expr),*) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if $crate::kernels::microkernel::simd_kernel_in_use() {
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
