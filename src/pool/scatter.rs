//! Scatter by indices into zero-filled planes: the backward pass of max pooling
//! (accumulate) and max-unpooling (assign). Every index is checked before it is
//! used, so a bad index is an error, never an out-of-bounds write.

use super::plan::PlaneSplit;
use super::planes::for_each_target_plane;
use crate::error::{value_error, Result};
use crate::geometry::{fmt_dims, SPATIAL};
use std::ops::AddAssign;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a scatter does with a value at its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Combine {
    /// `target[i] += value` (gradients of overlapping windows accumulate).
    Add,
    /// `target[i] = value` (the last of repeated indices wins).
    Assign,
}

/// Where a scatter writes, for messages.
pub(crate) struct Target<'a> {
    /// What the planes are, e.g. "input" or "output".
    pub name: &'a str,
    pub spatial: [usize; SPATIAL],
    pub rank: usize,
    /// The argument that sets the planes' size, named in errors.
    pub set_by: &'a str,
}

/// For every plane `p`: `target[p][indices[p][o]] (+)= values[p][o]` in order of
/// `o`. `values` and `indices` hold `planes * source_len` elements and `target`
/// `planes * target_len` (zero-filled).
pub(crate) fn scatter<T: Copy + Send + Sync + AddAssign>(
    values: &[T],
    indices: &[i64],
    source_len: usize,
    target: &mut [T],
    info: Target<'_>,
    combine: Combine,
) -> Result<()> {
    let target_len: usize = info.spatial.iter().product();
    if source_len == 0 {
        return Ok(());
    }
    // Flat position of the first bad index; the minimum over tasks is the first one
    // overall, whatever order the tasks ran in.
    let first_bad = AtomicUsize::new(usize::MAX);
    let limit = i64::try_from(target_len).unwrap_or(i64::MAX);
    if target_len == 0 {
        // Every plane is empty: any index at all is out of range.
        if !indices.is_empty() {
            first_bad.store(0, Ordering::Relaxed);
        }
    } else {
        let split = PlaneSplit::new(target.len() / target_len.max(1), source_len);
        for_each_target_plane(
            target,
            target_len,
            split,
            || (),
            |_, plane, target| {
                let offset = plane * source_len;
                let values = &values[offset..offset + source_len];
                let indices = &indices[offset..offset + source_len];
                for (o, (&value, &index)) in values.iter().zip(indices).enumerate() {
                    if !(0..limit).contains(&index) {
                        first_bad.fetch_min(offset + o, Ordering::Relaxed);
                        return;
                    }
                    let cell = &mut target[index as usize];
                    match combine {
                        Combine::Add => *cell += value,
                        Combine::Assign => *cell = value,
                    }
                }
            },
        )?;
    }
    checked(
        indices,
        first_bad.into_inner(),
        source_len,
        target_len,
        &info,
    )
}

/// Ok, or the error for the first index out of range: `indices[bad]` (`usize::MAX`:
/// none), at a position of a plane of `per_plane` indices, into planes of `len`
/// elements.
fn checked(
    indices: &[i64],
    bad: usize,
    per_plane: usize,
    len: usize,
    info: &Target<'_>,
) -> Result<()> {
    if bad == usize::MAX {
        return Ok(());
    }
    let (plane, o) = (bad / per_plane, bad % per_plane);
    value_error!(
        "indices holds {} at position {o} of plane {plane}, but a plane of the {} has {len} elements (spatial size {} from {}): every index must be in [0, {len})",
        indices[bad],
        info.name,
        fmt_dims(&info.spatial, info.rank),
        info.set_by
    )
}

/// For every plane `p`: `out[p][o] = source[p][indices[p][o]]`, the adjoint of
/// [`scatter`] (max unpooling's gradient). `indices` and `out` hold
/// `planes * out_len` elements and `source` `planes * source_len`; every index is
/// checked before it is read.
pub(crate) fn gather<T: Copy + Send + Sync>(
    source: &[T],
    indices: &[i64],
    out: &mut [T],
    out_len: usize,
    info: Target<'_>,
) -> Result<()> {
    let source_len: usize = info.spatial.iter().product();
    if out_len == 0 || out.is_empty() {
        return Ok(());
    }
    let first_bad = AtomicUsize::new(usize::MAX);
    let limit = i64::try_from(source_len).unwrap_or(i64::MAX);
    let split = PlaneSplit::new(out.len() / out_len, out_len);
    for_each_target_plane(
        out,
        out_len,
        split,
        || (),
        |_, plane, out| {
            let offset = plane * out_len;
            let indices = &indices[offset..offset + out_len];
            let source = &source[plane * source_len..(plane + 1) * source_len];
            for (o, (slot, &index)) in out.iter_mut().zip(indices).enumerate() {
                if !(0..limit).contains(&index) {
                    first_bad.fetch_min(offset + o, Ordering::Relaxed);
                    return;
                }
                *slot = source[index as usize];
            }
        },
    )?;
    checked(indices, first_bad.into_inner(), out_len, source_len, &info)
}
