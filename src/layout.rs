//! C-contiguous access to arrays of any memory layout, without aborting on huge copies.

use crate::error::{alloc_zeroed, Error, Result, ZeroBits};
use ndarray::{Array, ArrayView, CowArray, Dimension};

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
