//! The filters in the forms the algorithms read: packed as GEMM A operands, and
//! flipped with their channels swapped (the filters of the adjoint convolution).

use super::geometry::ConvGeometry;
use crate::alloc::alloc_zeroed;
use crate::element::Element;
use crate::error::Result;
use crate::kernels::{pack_a_panel, packed_a_len, MR};
use crate::threads::for_each_chunk_mut;

/// `W[g]` (or its transpose) of every group packed as GEMM A operands, one panel
/// set of [`panel_len`] elements per group.
pub(crate) fn pack_weights<T: Element>(
    geo: &ConvGeometry,
    w: &[T],
    transposed: bool,
) -> Result<Vec<T>> {
    let (k_len, cog) = (geo.k_len(), geo.cog());
    let (rows, inner) = if transposed {
        (k_len, cog)
    } else {
        (cog, k_len)
    };
    let per_group = packed_a_len(rows, inner);
    let mut packed = alloc_zeroed(per_group * geo.groups, "packed weights")?;
    let (rs, cs) = if transposed { (1, k_len) } else { (k_len, 1) };
    let panels = rows.div_ceil(MR);
    // A deep layer's weights are megabytes: packing them on one thread would
    // take as long as a small-plane layer's whole product (its rows are packed
    // once per call, then read by every task), so panels are packed in parallel.
    let panel = (inner * MR).max(1);
    for_each_chunk_mut(
        &mut packed,
        panel,
        per_group * geo.groups,
        Vec::<()>::new,
        |_, i, dst| {
            let (g, p) = (i / panels.max(1), i % panels.max(1));
            pack_a_panel(w, g * cog * k_len, rows, (rs, cs), p, dst);
        },
    )?;
    Ok(packed)
}

/// Elements of one group's packed weights (`transposed` as in [`pack_weights`]).
pub(crate) fn panel_len(geo: &ConvGeometry, transposed: bool) -> usize {
    if transposed {
        packed_a_len(geo.k_len(), geo.cog())
    } else {
        packed_a_len(geo.cog(), geo.k_len())
    }
}

/// `w'[g * cig + ci, co, k] = w[g * cog + co, ci, K - 1 - k]`: the filters of the
/// adjoint convolution, shape `(C_in, C_out / groups, *kernel)`.
pub(crate) fn flip_weights<T: Element>(geo: &ConvGeometry, w: &[T]) -> Result<Vec<T>> {
    let (cig, cog, kvol) = (geo.cig(), geo.cog(), geo.kernel_vol());
    let mut flipped = alloc_zeroed(w.len(), "flipped weights")?;
    // One row of the flipped filters (an input channel's `cog` filters) per
    // chunk, in parallel: a deep layer's filters are megabytes, flipped on
    // every input-gradient call.
    let row = (cog * kvol).max(1);
    let work = flipped.len();
    for_each_chunk_mut(&mut flipped, row, work, Vec::<()>::new, |_, index, dst| {
        let (g, ci) = (index / cig.max(1), index % cig.max(1));
        for (co, filter) in dst.chunks_exact_mut(kvol.max(1)).enumerate() {
            let src = &w[((g * cog + co) * cig + ci) * kvol..][..kvol];
            filter
                .iter_mut()
                .zip(src.iter().rev())
                .for_each(|(d, &v)| *d = v);
        }
    })?;
    Ok(flipped)
}
