//! The element types every kernel is generic over: IEEE floats with the
//! arithmetic the kernels use. `crate::element::Element` adds the kernel traits
//! on top of this, so no kernel depends on the operators above it.

use crate::alloc::ZeroBits;
use num_traits::Float;
use std::fmt::Debug;
use std::iter::Sum;
use std::ops::AddAssign;

/// `f32` or `f64` as the kernels see them.
pub trait Scalar:
    Float + AddAssign + Sum + Default + Debug + Send + Sync + ZeroBits + 'static
{
}

impl Scalar for f32 {}
impl Scalar for f64 {}
