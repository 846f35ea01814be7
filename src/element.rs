//! The floating-point element types the operators are generic over: a kernel
//! [`Scalar`] that has every kernel the operators call.

use crate::kernels::elementary::Elementary;
use crate::kernels::{DotKernel, MaxElement, MicroKernel, Permute, Scalar};

/// `f32` or `f64`: the arithmetic plus the GEMM, dot-product, permute and
/// max-pooling kernels, and the vectorisable `pow` and `cbrt`.
pub trait Element: Scalar + MicroKernel + DotKernel + Permute + MaxElement + Elementary {
    /// NumPy's name for the type, used in messages.
    const NAME: &'static str;
}

impl Element for f32 {
    const NAME: &'static str = "float32";
}

impl Element for f64 {
    const NAME: &'static str = "float64";
}
