//! Low-level building blocks: strided matrix views and the GEMM entry point.

pub mod gemm;

pub use gemm::{gemm, MatMut, MatRef, SharedMut};
