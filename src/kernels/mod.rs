//! Low-level building blocks: the SIMD micro-kernel, panel packing and the packed
//! GEMM driver, plus bounds-checked shared output buffers.

pub mod microkernel;
pub mod pack;
pub mod shared;

pub use microkernel::{MicroKernel, MR};
pub use pack::{gemm_packed, pack_a, pack_b, packed_a_len, packed_b_len, Block};
pub use shared::SharedMut;
