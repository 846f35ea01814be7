//! ferroconv: multithreaded CPU convolution and pooling, forward and backward,
//! in 1D, 2D and 3D, for `f32` and `f64`; and the batch normalisation and ReLU
//! between them.
//!
//! The core is pure Rust over `ndarray` views. Every operator works on 5-D arrays
//! `(N, C, D, H, W)`: 1-D and 2-D data are 3-D data with unit leading spatial axes,
//! so one code path serves every rank. The Python binding layer (feature `python`)
//! is a thin wrapper in `python` that borrows NumPy arrays,
//! releases the GIL and calls the functions re-exported here.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// Every unsafe block says why it is sound, and an unsafe fn's body is no licence
// for unmarked unsafe operations.
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

pub mod alloc;
pub mod arrays;
pub mod conv;
pub mod element;
pub mod error;
pub mod geometry;
pub mod kernels;
pub mod norm;
pub mod pool;
pub mod report;
pub mod storage;
pub mod threads;

#[cfg(feature = "python")]
pub mod python;

pub use conv::{
    conv_backward, conv_backward_with, conv_forward, conv_forward_fused, conv_transpose_backward,
    conv_transpose_backward_with, conv_transpose_forward, conv_transpose_forward_fused,
    explain_conv, explain_conv_transpose, process_precision, set_process_precision, Activation,
    ConvGrads, Fused, Needs, Precision, ResidualArg,
};
pub use element::Element;
pub use error::{Error, Result};
pub use geometry::{
    ConvParams, PaddingMode, PoolPadding, PoolParams, TransposeParams, UnpoolParams,
};
pub use norm::{
    batch_norm, batch_norm_backward, relu, relu_backward, relu_inplace, Affine, BatchNormGrads,
    Normalized, Running, Stats,
};
pub use pool::{
    adaptive_avg_pool, adaptive_avg_pool_backward, adaptive_max_pool, avg_pool, avg_pool_backward,
    explain_pool, max_pool, max_pool_backward, max_unpool, max_unpool_backward, AvgOptions,
    MaxPooled, Pooling,
};
pub use storage::Storage;
