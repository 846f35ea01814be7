//! The 5-D arrays `(N, C, D, H, W)` every operator works on: their shapes,
//! messages about them in the caller's rank, C-ordered access to views of any
//! layout, and owned results built from flat buffers.

use crate::alloc::{alloc_zeroed, ZeroBits};
use crate::error::{Error, Result};
use crate::geometry::{fmt_shape, SPATIAL};
use ndarray::{Array, Array5, ArrayView, ArrayView5, CowArray, Dimension};

/// A 5-D shape `(N, C, D, H, W)`.
pub type Shape5 = [usize; 5];

/// The shape of a 5-D view.
pub fn shape5<T>(a: &ArrayView5<'_, T>) -> Shape5 {
    let s = a.shape();
    [s[0], s[1], s[2], s[3], s[4]]
}

/// The spatial part `(D, H, W)` of a 5-D shape.
pub fn spatial(shape: Shape5) -> [usize; SPATIAL] {
    [shape[2], shape[3], shape[4]]
}

/// `shape` with its spatial part replaced by `dims`.
pub fn with_spatial(shape: Shape5, dims: [usize; SPATIAL]) -> Shape5 {
    [shape[0], shape[1], dims[0], dims[1], dims[2]]
}

/// A 5-D shape as the caller sees it at `rank`: `(N, C, *spatial[rank])`.
pub fn user_shape(shape: Shape5, rank: usize) -> String {
    let tail = &shape[5 - rank.clamp(1, SPATIAL)..];
    fmt_shape(&[&shape[..2], tail].concat())
}

/// An owned 5-D array from a flat C-ordered buffer of exactly `shape`'s length.
pub fn into_array5<T>(shape: Shape5, data: Vec<T>) -> Result<Array5<T>> {
    Array5::from_shape_vec(shape, data).map_err(|e| Error::Value(format!("internal error: {e}")))
}

/// `a` in C order: borrowed when it already is, else copied into a buffer allocated
/// fallibly (a broadcast view of 2**40 elements gives `Error::Memory`, not an abort).
pub fn standard<'a, T: ZeroBits, D: Dimension>(
    a: ArrayView<'a, T, D>,
) -> Result<CowArray<'a, T, D>> {
    if a.is_standard_layout() {
        return Ok(CowArray::from(a));
    }
    let buffer = alloc_zeroed::<T>(a.len(), "a C-contiguous copy of an input")?;
    let mut copy = Array::from_shape_vec(a.raw_dim(), buffer)
        .map_err(|e| Error::Value(format!("internal error: {e}")))?;
    copy.assign(&a);
    Ok(CowArray::from(copy))
}

/// The elements of a C-ordered array as one slice.
pub fn as_slice<'a, T, D: Dimension>(a: &'a CowArray<'_, T, D>) -> Result<&'a [T]> {
    a.as_slice()
        .ok_or_else(|| Error::Value("internal error: standard layout without a slice".into()))
}
