//! Average-pooling kernels of one plane, forward and backward (strided and
//! adaptive pooling use them with different window tables and divisor rules).
//!
//! The forward pass computes runs of full-width windows `lanes` output columns at
//! a time (every lane sums its cells in the scalar scan order, so the results are
//! those of the scalar loop), border windows one by one.

use super::plan::RowRuns;
use super::windows::{Divisor, Windows};
use crate::element::Element;
use crate::geometry::AxisWindow;
use crate::kernels::{dispatch, simd_twins};
use std::mem::MaybeUninit;

/// Mean of every window of `plane` into `out`: the sum of the input cells the
/// window reads (padding adds zeros) divided by the divisor of `rule`.
pub(crate) fn avg_plane<T: Element>(
    windows: &Windows,
    rows: RowRuns,
    rule: Divisor,
    plane: &[T],
    out: &mut [MaybeUninit<T>],
) {
    dispatch!(
        avg_plane_any,
        avg_plane_avx512,
        avg_plane_avx2,
        windows,
        rows,
        rule,
        plane,
        out
    )
}

simd_twins! {
    avg_plane_any => avg_plane_avx512, avg_plane_avx2,
    <T: Element>(
        windows: &Windows,
        rows: RowRuns,
        rule: Divisor,
        plane: &[T],
        out: &mut [MaybeUninit<T>],
    )
}

#[inline(always)]
fn avg_plane_any<T: Element>(
    windows: &Windows,
    RowRuns { kernel, lo, hi }: RowRuns,
    rule: Divisor,
    plane: &[T],
    out: &mut [MaybeUninit<T>],
) {
    let out_w = windows.output[2];
    let row_windows = &windows.axes[2];
    let lanes = kernel.lanes();
    let pitch = windows.pitch.unwrap_or(1);
    let mut rows = Vec::new();
    let mut out_start = 0;
    for wd in &windows.axes[0] {
        for wh in &windows.axes[1] {
            windows.row_starts(wd, wh, &mut rows);
            let out = &mut out[out_start..out_start + out_w];
            for ow in (0..lo).chain(hi..out_w) {
                let ww = &row_windows[ow];
                out[ow].write(sum_of_window(plane, &rows, ww) / Windows::divisor(rule, wd, wh, ww));
            }
            for start in windows.interior_chunks(lanes) {
                let ww = &row_windows[start];
                let divisor = Windows::divisor(rule, wd, wh, ww);
                let cells = &rows[..];
                let out = &mut out[start..start + lanes];
                match (lanes, pitch) {
                    (16, 1) => avg_chunk::<T, 16>(plane, cells, ww, 1, divisor, out),
                    (16, 2) => avg_chunk::<T, 16>(plane, cells, ww, 2, divisor, out),
                    (16, p) => avg_chunk::<T, 16>(plane, cells, ww, p, divisor, out),
                    (_, 1) => avg_chunk::<T, 8>(plane, cells, ww, 1, divisor, out),
                    (_, 2) => avg_chunk::<T, 8>(plane, cells, ww, 2, divisor, out),
                    (_, p) => avg_chunk::<T, 8>(plane, cells, ww, p, divisor, out),
                }
            }
            out_start += out_w;
        }
    }
}

/// Means of whole planes (the one window of global pooling): `out[p]` is the
/// sum of the `plane_len` cells of plane `p` of `x` divided by `divisor`. Each
/// sum is taken in `L` lane sums (`L` the element type's vector lanes: cell `i`
/// goes to lane `i % L`) added pairwise at the end: a vector add per `L` cells
/// instead of a chain of scalar adds, in an order fixed by the plane's length.
pub(crate) fn plane_means<T: Element>(
    x: &[T],
    plane_len: usize,
    divisor: T,
    out: &mut [MaybeUninit<T>],
) {
    dispatch!(
        plane_means_any,
        plane_means_avx512,
        plane_means_avx2,
        x,
        plane_len,
        divisor,
        out
    )
}

simd_twins! {
    plane_means_any => plane_means_avx512, plane_means_avx2,
    <T: Element>(
        x: &[T],
        plane_len: usize,
        divisor: T,
        out: &mut [MaybeUninit<T>],
    )
}

#[inline(always)]
fn plane_means_any<T: Element>(x: &[T], plane_len: usize, divisor: T, out: &mut [MaybeUninit<T>]) {
    for (slot, plane) in out.iter_mut().zip(x.chunks_exact(plane_len.max(1))) {
        let sum = if T::LANES >= 16 {
            lane_sum::<T, 16>(plane)
        } else {
            lane_sum::<T, 8>(plane)
        };
        slot.write(sum / divisor);
    }
}

#[inline(always)]
fn lane_sum<T: Element, const L: usize>(plane: &[T]) -> T {
    let mut sums = [T::zero(); L];
    let mut chunks = plane.chunks_exact(L);
    for chunk in &mut chunks {
        for (s, &v) in sums.iter_mut().zip(chunk) {
            *s += v;
        }
    }
    // The remainder through a zero-padded copy, so the lane sums stay one
    // fixed-length vector (a loop of the remainder's length kept them in memory).
    let mut tail = [T::zero(); L];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    for (s, &v) in sums.iter_mut().zip(&tail) {
        *s += v;
    }
    let mut width = L;
    while width > 1 {
        width /= 2;
        for j in 0..width {
            sums[j] += sums[j + width];
        }
    }
    sums[0]
}

/// Gradient of [`plane_means`]: every cell of plane `p` of `grad_in` gets
/// `grad_out[p] / divisor` (added to zero, as the general adjoint does).
pub(crate) fn plane_means_backward<T: Element>(
    grad_out: &[T],
    plane_len: usize,
    divisor: T,
    grad_in: &mut [MaybeUninit<T>],
) {
    for (plane, &g) in grad_in.chunks_exact_mut(plane_len.max(1)).zip(grad_out) {
        let value = T::zero() + g / divisor;
        plane.iter_mut().for_each(|cell| {
            cell.write(value);
        });
    }
}

/// Sum of one window whose rows start at `rows` (plane indices of column 0).
fn sum_of_window<T: Element>(plane: &[T], rows: &[usize], ww: &AxisWindow) -> T {
    let mut sum = T::zero();
    for &row in rows {
        for &value in &plane[row + ww.first..][..ww.count] {
            sum += value;
        }
    }
    sum
}

/// Means of `L` full-width windows shaped like `ww`, the `j`-th starting
/// `j * pitch` columns after it (all of them share `divisor`).
#[inline(always)]
fn avg_chunk<T: Element, const L: usize>(
    plane: &[T],
    rows: &[usize],
    ww: &AxisWindow,
    pitch: usize,
    divisor: T,
    out: &mut [MaybeUninit<T>],
) {
    let span = (L - 1) * pitch + 1;
    let mut sum = [T::zero(); L];
    for &row in rows {
        for c in 0..ww.count {
            let cells = &plane[row + ww.first + c..][..span];
            for j in 0..L {
                sum[j] += cells[j * pitch];
            }
        }
    }
    for (slot, &s) in out.iter_mut().zip(&sum) {
        slot.write(s / divisor);
    }
}

/// Gradient of [`avg_plane`]: each output gradient divided by its window's divisor
/// is added to every input cell of the window (overlapping windows accumulate, in
/// output order).
pub(crate) fn avg_backward_plane<T: Element>(
    windows: &Windows,
    rule: Divisor,
    grad_out: &[T],
    grad_in: &mut [T],
) {
    let [_, in_h, in_w] = windows.input;
    let mut o = 0;
    for wd in &windows.axes[0] {
        for wh in &windows.axes[1] {
            for ww in &windows.axes[2] {
                let share = grad_out[o] / Windows::divisor::<T>(rule, wd, wh, ww);
                for id in wd.first..wd.first + wd.count {
                    for ih in wh.first..wh.first + wh.count {
                        let row_start = (id * in_h + ih) * in_w + ww.first;
                        for cell in &mut grad_in[row_start..row_start + ww.count] {
                            *cell += share;
                        }
                    }
                }
                o += 1;
            }
        }
    }
}
