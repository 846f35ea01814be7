//! Small planes side by side: the kernels of windows with a tap table
//! ([`Taps`]) that compute `L` planes at once, one plane per vector lane.
//!
//! Where an output row holds fewer than 8 windows (small planes, 3-D volumes of a
//! few cells per side, large strides) there is no run of windows along a row for
//! the row kernels to vectorise, and a plane's windows go through the tap table
//! one cell at a time: a chain of compares (or adds) per window, a few cycles
//! a cell. Every plane has the same windows, though, so `L` planes are copied
//! into a cell-major buffer (`L` values per cell, one per plane) and each tap
//! of a window is one load of `L` values and one vector compare (or add): the
//! chains run `L` planes wide.
//!
//! Each lane follows the tap table's order, which is the scalar scan's, so
//! every plane's outputs (and indices: ties and NaN as PyTorch's scan) are
//! bit-identical to the tap-table kernels', whatever lane it lands in. A group
//! that does not fill the lanes repeats its last plane in the rest, whose
//! outputs are dropped.

use super::avg::WindowSum;
use super::windows::Taps;
use crate::element::Element;
use crate::kernels::{dispatch, simd_twins, update_max, MaxElement};
use std::mem::MaybeUninit;

/// Planes computed together for elements of type `T`: one 64-byte register of
/// 32-bit lanes (16), or of 64-bit ones (8); narrower types take 16 too.
pub(crate) const fn lanes_of<T>() -> usize {
    if std::mem::size_of::<T>() >= 8 {
        8
    } else {
        16
    }
}

/// Most cells times lanes the cell-major copy holds: 512 KiB of `f32` or 1 MiB
/// of `f64`, about what the L2 cache keeps beside the planes read.
pub(crate) const INTERLEAVE_CELLS: usize = 1 << 17;

/// Copy the planes of `planes` (`in_vol` cells each, at most `L` of them) into
/// `cells` cell-major: `cells[c][l]` is cell `c` of plane `l`, the last plane
/// repeated in lanes beyond the planes given.
#[inline(always)]
fn interleave<T: Copy, const L: usize>(planes: &[T], in_vol: usize, cells: &mut [[T; L]]) {
    let count = planes.len() / in_vol;
    let sources: [&[T]; L] =
        std::array::from_fn(|l| &planes[l.min(count.saturating_sub(1)) * in_vol..][..in_vol]);
    // Cell by cell, a whole row of lanes stored at once (plane by plane, the
    // compiler made scatters of the strided stores, slower than the sums).
    for (c, cell) in cells.iter_mut().enumerate() {
        *cell = std::array::from_fn(|l| sources[l][c]);
    }
}

/// The cell-major buffer of `L` planes of `in_vol` cells, made from `scratch`.
fn cell_major<T: Copy, const L: usize>(
    scratch: &mut Vec<T>,
    in_vol: usize,
    fill: T,
) -> &mut [[T; L]] {
    scratch.clear();
    scratch.resize(in_vol * L, fill);
    scratch.as_chunks_mut::<L>().0
}

/// Max of every window of `taps` over each plane of `planes` (whole planes of
/// `in_vol` cells) into `values` (`out_vol` per plane, in order), and the flat
/// plane index of each maximum into `indices` unless it is empty; `L` planes a
/// pass (`lanes`: 8 or 16), `scratch` holding their cell-major copy.
#[allow(clippy::too_many_arguments)]
pub(crate) fn max_planes<T: MaxElement>(
    taps: &Taps,
    lanes: usize,
    in_vol: usize,
    out_vol: usize,
    planes: &[T],
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
    scratch: &mut Vec<T>,
) {
    dispatch!(
        max_planes_any,
        max_planes_avx512,
        max_planes_avx2,
        taps,
        lanes,
        in_vol,
        out_vol,
        planes,
        values,
        indices,
        scratch
    )
}

simd_twins! {
    max_planes_any => max_planes_avx512, max_planes_avx2,
    <T: MaxElement>(
        taps: &Taps,
        lanes: usize,
        in_vol: usize,
        out_vol: usize,
        planes: &[T],
        values: &mut [MaybeUninit<T>],
        indices: &mut [MaybeUninit<i64>],
        scratch: &mut Vec<T>,
    )
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn max_planes_any<T: MaxElement>(
    taps: &Taps,
    lanes: usize,
    in_vol: usize,
    out_vol: usize,
    planes: &[T],
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
    scratch: &mut Vec<T>,
) {
    if lanes >= 16 {
        max_lanes::<T, 16>(taps, in_vol, out_vol, planes, values, indices, scratch);
    } else {
        max_lanes::<T, 8>(taps, in_vol, out_vol, planes, values, indices, scratch);
    }
}

#[inline(always)]
fn max_lanes<T: MaxElement, const L: usize>(
    taps: &Taps,
    in_vol: usize,
    out_vol: usize,
    planes: &[T],
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
    scratch: &mut Vec<T>,
) {
    if in_vol == 0 || out_vol == 0 {
        return;
    }
    let cells = cell_major::<T, L>(scratch, in_vol, T::LOWEST);
    for (g, group) in planes.chunks(L * in_vol).enumerate() {
        interleave(group, in_vol, cells);
        let count = group.len() / in_vol;
        let first = g * L * out_vol;
        for (o, taps) in taps.windows().enumerate() {
            // As the tap-table kernel: from the lowest value, the first cell's index.
            let mut best = [T::LOWEST; L];
            let mut best_at = [taps.first().copied().unwrap_or(0); L];
            for &tap in taps {
                let cell = &cells[tap as usize];
                for l in 0..L {
                    update_max(cell[l], tap, &mut best[l], &mut best_at[l]);
                }
            }
            for l in 0..count {
                values[first + l * out_vol + o].write(best[l]);
            }
            if !indices.is_empty() {
                for l in 0..count {
                    indices[first + l * out_vol + o].write(i64::from(best_at[l]));
                }
            }
        }
    }
}

/// `reduce`'s output of every window of `taps` over each plane of `planes`
/// (whole planes of `in_vol` cells) into `out` (`out_vol` per plane, in
/// order), window `o` finished with `factors[o]`; `L` planes a pass
/// (`lanes`: 8 or 16), `scratch` holding their cell-major copy.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sum_planes<R: WindowSum>(
    taps: &Taps,
    factors: &[R::T],
    reduce: R,
    lanes: usize,
    in_vol: usize,
    planes: &[R::T],
    out: &mut [MaybeUninit<R::T>],
    scratch: &mut Vec<R::T>,
) {
    dispatch!(
        sum_planes_any,
        sum_planes_avx512,
        sum_planes_avx2,
        taps,
        factors,
        reduce,
        lanes,
        in_vol,
        planes,
        out,
        scratch
    )
}

simd_twins! {
    sum_planes_any => sum_planes_avx512, sum_planes_avx2,
    <R: WindowSum>(
        taps: &Taps,
        factors: &[R::T],
        reduce: R,
        lanes: usize,
        in_vol: usize,
        planes: &[R::T],
        out: &mut [MaybeUninit<R::T>],
        scratch: &mut Vec<R::T>,
    )
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sum_planes_any<R: WindowSum>(
    taps: &Taps,
    factors: &[R::T],
    reduce: R,
    lanes: usize,
    in_vol: usize,
    planes: &[R::T],
    out: &mut [MaybeUninit<R::T>],
    scratch: &mut Vec<R::T>,
) {
    if lanes >= 16 {
        sum_lanes::<R, 16>(taps, factors, reduce, in_vol, planes, out, scratch);
    } else {
        sum_lanes::<R, 8>(taps, factors, reduce, in_vol, planes, out, scratch);
    }
}

#[inline(always)]
fn sum_lanes<R: WindowSum, const L: usize>(
    taps: &Taps,
    factors: &[R::T],
    reduce: R,
    in_vol: usize,
    planes: &[R::T],
    out: &mut [MaybeUninit<R::T>],
    scratch: &mut Vec<R::T>,
) {
    let out_vol = factors.len();
    if in_vol == 0 || out_vol == 0 {
        return;
    }
    let zero = <R::T as num_traits::Zero>::zero();
    let cells = cell_major::<R::T, L>(scratch, in_vol, zero);
    for (g, group) in planes.chunks(L * in_vol).enumerate() {
        interleave(group, in_vol, cells);
        let count = group.len() / in_vol;
        let first = g * L * out_vol;
        for (o, (taps, &factor)) in taps.windows().zip(factors).enumerate() {
            // As the tap-table kernel: from zero, the terms in scan order.
            let mut sums = [zero; L];
            for &tap in taps {
                let cell = &cells[tap as usize];
                for l in 0..L {
                    sums[l] += reduce.term(cell[l]);
                }
            }
            for l in 0..count {
                out[first + l * out_vol + o].write(reduce.finish(sums[l], factor));
            }
        }
    }
}

/// Gradient of average pooling over each plane of `grad_in` (whole planes of
/// `in_vol` cells, zeroed) for the windows of `taps`: output gradient `o` of a
/// plane (in `grad_out`, `divisors.len()` per plane) divided by `divisors[o]`
/// is added to every cell of window `o`, window after window in output order
/// (so each cell sums its shares in the order the window-by-window adjoint
/// adds them); `L` planes a pass (`lanes`: 8 or 16), `scratch` holding their
/// cell-major sums.
pub(crate) fn adjoint_planes<T: Element>(
    taps: &Taps,
    divisors: &[T],
    lanes: usize,
    grad_out: &[T],
    grad_in: &mut [T],
    scratch: &mut Vec<T>,
) {
    dispatch!(
        adjoint_planes_any,
        adjoint_planes_avx512,
        adjoint_planes_avx2,
        taps,
        divisors,
        lanes,
        grad_out,
        grad_in,
        scratch
    )
}

simd_twins! {
    adjoint_planes_any => adjoint_planes_avx512, adjoint_planes_avx2,
    <T: Element>(
        taps: &Taps,
        divisors: &[T],
        lanes: usize,
        grad_out: &[T],
        grad_in: &mut [T],
        scratch: &mut Vec<T>,
    )
}

#[inline(always)]
fn adjoint_planes_any<T: Element>(
    taps: &Taps,
    divisors: &[T],
    lanes: usize,
    grad_out: &[T],
    grad_in: &mut [T],
    scratch: &mut Vec<T>,
) {
    if lanes >= 16 {
        adjoint_lanes::<T, 16>(taps, divisors, grad_out, grad_in, scratch);
    } else {
        adjoint_lanes::<T, 8>(taps, divisors, grad_out, grad_in, scratch);
    }
}

#[inline(always)]
fn adjoint_lanes<T: Element, const L: usize>(
    taps: &Taps,
    divisors: &[T],
    grad_out: &[T],
    grad_in: &mut [T],
    scratch: &mut Vec<T>,
) {
    let out_vol = divisors.len();
    let planes = grad_out.len() / out_vol.max(1);
    if out_vol == 0 || planes == 0 {
        return;
    }
    let in_vol = grad_in.len() / planes;
    for (grads, targets) in grad_out
        .chunks(L * out_vol)
        .zip(grad_in.chunks_mut(L * in_vol))
    {
        let count = grads.len() / out_vol;
        let sums = cell_major::<T, L>(scratch, in_vol, T::zero());
        for (o, (taps, &divisor)) in taps.windows().zip(divisors).enumerate() {
            let share: [T; L] =
                std::array::from_fn(|l| grads[l.min(count - 1) * out_vol + o] / divisor);
            for &tap in taps {
                let cell = &mut sums[tap as usize];
                for l in 0..L {
                    cell[l] += share[l];
                }
            }
        }
        for (l, target) in targets.chunks_exact_mut(in_vol).enumerate() {
            for (slot, cell) in target.iter_mut().zip(sums.iter()) {
                *slot += cell[l];
            }
        }
    }
}
