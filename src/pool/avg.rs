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
use crate::kernels::dispatch;
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
        windows,
        rows,
        rule,
        plane,
        out
    )
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avg_plane_avx512<T: Element>(
    windows: &Windows,
    rows: RowRuns,
    rule: Divisor,
    plane: &[T],
    out: &mut [MaybeUninit<T>],
) {
    avg_plane_any(windows, rows, rule, plane, out)
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
