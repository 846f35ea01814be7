//! The max-pooling kernel of one plane (strided, adaptive and global pooling all
//! use it with different window tables).
//!
//! PyTorch's rule, in scan order (row-major over the window): a cell replaces the
//! maximum when it is larger or NaN. So ties keep the first cell, a NaN always
//! wins (and a later NaN replaces an earlier one), and a window of -inf keeps its
//! first cell. Padded cells are never read, which is the same as -inf padding.
//! Integers (see [`MaxElement`]) follow the same scan without NaN; a window of
//! the type's minimum keeps its first cell.
//!
//! Runs of full-width windows (the interior of strided pooling) are computed
//! `lanes` output columns at a time: every lane follows the same scan order, the
//! cells of one tap are read at a constant stride, and a lane remembers the offset
//! of its winning tap (one `u32` select per tap), so the compiler turns the chunk
//! into vector compares and blends. Border windows use the scalar scan.

use super::plan::{RowKernel, RowRuns};
use super::windows::Windows;
use crate::geometry::AxisWindow;
use crate::kernels::{dispatch, simd_twins, update_max, MaxElement, Run};
use std::mem::MaybeUninit;

/// Max of every window of `plane` into `values`, and the flat index (into the
/// plane) of each maximum into `indices` unless it is empty; the interior of
/// every row is computed as `rows` says.
pub(crate) fn max_plane<T: MaxElement>(
    windows: &Windows,
    rows: RowRuns,
    plane: &[T],
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
) {
    dispatch!(
        max_plane_any,
        max_plane_avx512,
        max_plane_avx2,
        windows,
        rows,
        plane,
        values,
        indices
    )
}

simd_twins! {
    max_plane_any => max_plane_avx512, max_plane_avx2,
    <T: MaxElement>(
        windows: &Windows,
        rows: RowRuns,
        plane: &[T],
        values: &mut [MaybeUninit<T>],
        indices: &mut [MaybeUninit<i64>],
    )
}

#[inline(always)]
fn max_plane_any<T: MaxElement>(
    windows: &Windows,
    RowRuns { kernel, lo, hi }: RowRuns,
    plane: &[T],
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
) {
    if let (RowKernel::Taps, Some(taps)) = (kernel, &windows.taps) {
        for (o, cells) in taps.windows().enumerate() {
            // As `max_of_window`: from the lowest value, the first cell's index.
            let mut best = T::LOWEST;
            let mut best_at = cells.first().copied().unwrap_or(0);
            for &cell in cells {
                update_max(plane[cell as usize], cell, &mut best, &mut best_at);
            }
            values[o].write(best);
            if let Some(slot) = indices.get_mut(o) {
                slot.write(i64::from(best_at));
            }
        }
        return;
    }
    let out_w = windows.output[2];
    let step_w = windows.step[2];
    let row_windows = &windows.axes[2];
    let lanes = kernel.lanes();
    let stride2 = matches!(kernel, RowKernel::Stride2Simd(_));
    let pitch = windows.pitch.unwrap_or(1);
    let mut rows = Vec::new();
    let mut out_start = 0;
    for wd in &windows.axes[0] {
        for wh in &windows.axes[1] {
            windows.row_starts(wd, wh, &mut rows);
            let out = &mut values[out_start..out_start + out_w];
            let at: &mut [MaybeUninit<i64>] = if indices.is_empty() {
                &mut []
            } else {
                &mut indices[out_start..out_start + out_w]
            };
            for ow in (0..lo).chain(hi..out_w) {
                let (best, best_at) = max_of_window(plane, &rows, &row_windows[ow], step_w);
                out[ow].write(best);
                if let Some(slot) = at.get_mut(ow) {
                    slot.write(best_at);
                }
            }
            for start in windows.interior_chunks(lanes) {
                let run = Run {
                    rows: &rows,
                    first: row_windows[start].first,
                    count: row_windows[start].count,
                    step: step_w,
                };
                let at = if at.is_empty() {
                    &mut []
                } else {
                    &mut at[start..start + lanes]
                };
                let out = &mut out[start..start + lanes];
                match (lanes, pitch) {
                    (16, 1) => run.max_chunk::<T, 16>(plane, 1, stride2, out, at),
                    (16, 2) => run.max_chunk::<T, 16>(plane, 2, stride2, out, at),
                    (16, p) => run.max_chunk::<T, 16>(plane, p, stride2, out, at),
                    (_, 1) => run.max_chunk::<T, 8>(plane, 1, stride2, out, at),
                    (_, 2) => run.max_chunk::<T, 8>(plane, 2, stride2, out, at),
                    (_, p) => run.max_chunk::<T, 8>(plane, p, stride2, out, at),
                }
            }
            out_start += out_w;
        }
    }
}

/// Max of one window whose rows start at `rows` (plane indices of column 0).
#[inline(never)]
fn max_of_window<T: MaxElement>(
    plane: &[T],
    rows: &[usize],
    ww: &AxisWindow,
    step_w: usize,
) -> (T, i64) {
    let mut best = T::LOWEST;
    // Plane indices fit i64: the plane is part of an allocated array.
    let mut best_at = (rows.first().copied().unwrap_or(0) + ww.first) as i64;
    for &row in rows {
        let start = row + ww.first;
        let cells = plane[start..].iter().step_by(step_w).take(ww.count);
        for (c, &value) in cells.enumerate() {
            update_max(value, (start + c * step_w) as i64, &mut best, &mut best_at);
        }
    }
    (best, best_at)
}

impl Run<'_> {
    /// `L` neighbouring windows, the `j`-th starting `j * pitch` columns after the
    /// first (`pitch` is a constant after inlining for the common strides); windows
    /// two columns apart go through the SIMD kernel when the plan chose it
    /// (`stride2`).
    #[inline(always)]
    fn max_chunk<T: MaxElement, const L: usize>(
        &self,
        plane: &[T],
        pitch: usize,
        stride2: bool,
        values: &mut [MaybeUninit<T>],
        indices: &mut [MaybeUninit<i64>],
    ) {
        if pitch == 2 && stride2 {
            // The plan chose the SIMD kernel: one register of windows after another.
            let lanes = T::MAX_LANES;
            for part in 0..L / lanes {
                let at = if indices.is_empty() {
                    &mut []
                } else {
                    &mut indices[part * lanes..][..lanes]
                };
                let out = &mut values[part * lanes..][..lanes];
                T::stride2_max(plane, self, self.first + 2 * lanes * part, out, at);
            }
            return;
        }
        let span = (L - 1) * pitch + 1;
        let mut best = [T::LOWEST; L];
        // Offsets of the winning taps; the plane length fits u32 (checked by the
        // caller), so every offset does.
        let mut best_at = [self.rows.first().copied().unwrap_or(0) as u32; L];
        for &row in self.rows {
            for c in 0..self.count {
                let offset = row + c * self.step;
                let cells = &plane[offset + self.first..][..span];
                let tap = offset as u32;
                for j in 0..L {
                    update_max(cells[j * pitch], tap, &mut best[j], &mut best_at[j]);
                }
            }
        }
        for (slot, &value) in values.iter_mut().zip(&best) {
            slot.write(value);
        }
        if !indices.is_empty() {
            for (j, (slot, &at)) in indices.iter_mut().zip(&best_at).enumerate() {
                slot.write((at as usize + self.first + j * pitch) as i64);
            }
        }
    }
}
