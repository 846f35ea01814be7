//! The floating-point element types the core is generic over.

use crate::error::ZeroBits;
use crate::kernels::{CopyEven, DotKernel, MicroKernel};
use crate::pool::Stride2Max;
use num_traits::Float;
use std::fmt::Debug;
use std::iter::Sum;
use std::ops::AddAssign;

/// `f32` or `f64`: the arithmetic the kernels need plus the GEMM and dot-product
/// micro-kernels.
pub trait Element:
    Float
    + AddAssign
    + Sum
    + Default
    + Debug
    + Send
    + Sync
    + MicroKernel
    + DotKernel
    + CopyEven
    + Stride2Max
    + ZeroBits
    + 'static
{
    /// NumPy's name for the type, used in messages.
    const NAME: &'static str;
}

impl Element for f32 {
    const NAME: &'static str = "float32";
}

impl Element for f64 {
    const NAME: &'static str = "float64";
}
