//! The filters in the forms the algorithms read: packed as GEMM A operands, and
//! flipped with their channels swapped (the filters of the adjoint convolution).

use super::geometry::ConvGeometry;
use crate::alloc::{alloc_zeroed, ZeroBits};
use crate::element::Element;
use crate::error::Result;
use crate::kernels::{pack_a_panel, packed_a_len, MR};
use crate::threads::for_each_chunk_mut;

/// `W[g]^T` (`k_len x cog`) of every group packed as GEMM A operands, one panel
/// set of [`panel_len`] elements per group (col2im's input gradient; the other
/// GEMMs read `W[g]`'s rows in place).
pub(crate) fn pack_weights<T: Element>(geo: &ConvGeometry, w: &[T]) -> Result<Vec<T>> {
    let (k_len, cog) = (geo.k_len(), geo.cog());
    let per_group = panel_len(geo);
    let mut packed = alloc_zeroed(per_group * geo.groups, "packed weights")?;
    let panels = k_len.div_ceil(MR).max(1);
    // A deep layer's weights are megabytes: packing them on one thread would
    // take as long as a small-plane layer's whole product (its rows are packed
    // once per call, then read by every task), so panels are packed in parallel.
    let panel = (cog * MR).max(1);
    let work = packed.len();
    for_each_chunk_mut(&mut packed, panel, work, Vec::<()>::new, |_, i, dst| {
        let (g, p) = (i / panels, i % panels);
        pack_a_panel(w, g * cog * k_len, k_len, (1, k_len), p, dst);
    })?;
    Ok(packed)
}

/// Elements of one group's packed weights (see [`pack_weights`]).
pub(crate) fn panel_len(geo: &ConvGeometry) -> usize {
    packed_a_len(geo.k_len(), geo.cog())
}

/// `w'[g * cig + ci, co, k] = w[g * cog + co, ci, K - 1 - k]`: the filters of the
/// adjoint convolution, shape `(C_in, C_out / groups, *kernel)`.
pub(crate) fn flip_weights<T: ZeroBits + Send + Sync>(
    geo: &ConvGeometry,
    w: &[T],
) -> Result<Vec<T>> {
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
