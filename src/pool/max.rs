//! The max-pooling kernel of one plane (strided, adaptive and global pooling all
//! use it with different window tables).
//!
//! PyTorch's rule, in scan order (row-major over the window): a cell replaces the
//! maximum when it is larger or NaN. So ties keep the first cell, a NaN always
//! wins (and a later NaN replaces an earlier one), and a window of -inf keeps its
//! first cell. Padded cells are never read, which is the same as -inf padding.

use super::windows::Windows;
use crate::element::Element;
use crate::geometry::AxisWindow;

/// Neighbouring windows of the same shape processed together: their running
/// maxima are independent, so the processor overlaps their updates instead of
/// waiting on one compare-and-select chain per window.
const LANES: usize = 4;

/// Max of every window of `plane` into `values`, and the flat index (into the
/// plane) of each maximum into `indices` unless it is empty.
pub(crate) fn max_plane<T: Element>(
    windows: &Windows,
    plane: &[T],
    values: &mut [T],
    indices: &mut [i64],
) {
    let [_, in_h, in_w] = windows.input;
    let out_w = windows.output[2];
    let row_windows = &windows.axes[2];
    let mut out_start = 0;
    for wd in &windows.axes[0] {
        for wh in &windows.axes[1] {
            let rows = Rows {
                windows,
                wd,
                wh,
                in_h,
                in_w,
            };
            let mut ow = 0;
            while ow < out_w {
                let out = out_start + ow;
                match windows.pitch {
                    Some(pitch) if same_shape(&row_windows[ow..], pitch) => {
                        let (best, best_at) = rows.max_of_group(plane, &row_windows[ow], pitch);
                        values[out..out + LANES].copy_from_slice(&best);
                        if !indices.is_empty() {
                            indices[out..out + LANES].copy_from_slice(&best_at);
                        }
                        ow += LANES;
                    }
                    _ => {
                        let (best, best_at) = rows.max_of_window(plane, &row_windows[ow]);
                        values[out] = best;
                        if !indices.is_empty() {
                            indices[out] = best_at;
                        }
                        ow += 1;
                    }
                }
            }
            out_start += out_w;
        }
    }
}

/// Whether the next `LANES` windows exist and are the same window shifted by
/// `pitch` each (true for the interior windows of strided pooling).
fn same_shape(windows: &[AxisWindow], pitch: usize) -> bool {
    windows.len() >= LANES
        && windows[..LANES]
            .iter()
            .enumerate()
            .all(|(j, w)| w.count == windows[0].count && w.first == windows[0].first + j * pitch)
}

/// PyTorch's step, written as selects rather than a branch (random data would
/// mispredict it about once per window): the non-short-circuit `|` keeps the
/// compiler from branching on the first comparison.
#[inline(always)]
fn update<T: Element>(value: T, at: i64, best: &mut T, best_at: &mut i64) {
    let take = (value > *best) | value.is_nan();
    *best = if take { value } else { *best };
    *best_at = if take { at } else { *best_at };
}

/// The input rows that the windows of one output row read.
struct Rows<'a> {
    windows: &'a Windows,
    wd: &'a AxisWindow,
    wh: &'a AxisWindow,
    in_h: usize,
    in_w: usize,
}

impl Rows<'_> {
    /// Plane index of the start of every input row, in scan order.
    fn starts(&self) -> impl Iterator<Item = usize> + '_ {
        let [step_d, step_h, _] = self.windows.step;
        (0..self.wd.count).flat_map(move |a| {
            (0..self.wh.count).map(move |b| {
                ((self.wd.first + a * step_d) * self.in_h + self.wh.first + b * step_h) * self.in_w
            })
        })
    }

    /// Plane index of the first cell of a window starting at column `first`.
    fn first_cell(&self, first: usize) -> i64 {
        // Plane indices fit i64: the plane is part of an allocated array.
        ((self.wd.first * self.in_h + self.wh.first) * self.in_w + first) as i64
    }

    fn max_of_window<T: Element>(&self, plane: &[T], ww: &AxisWindow) -> (T, i64) {
        let step_w = self.windows.step[2];
        let mut best = T::neg_infinity();
        let mut best_at = self.first_cell(ww.first);
        for row_start in self.starts() {
            let start = row_start + ww.first;
            let cells = plane[start..].iter().step_by(step_w).take(ww.count);
            for (c, &value) in cells.enumerate() {
                update(value, (start + c * step_w) as i64, &mut best, &mut best_at);
            }
        }
        (best, best_at)
    }

    /// `LANES` windows shaped like `ww`, the `j`-th shifted by `j * pitch`.
    fn max_of_group<T: Element>(
        &self,
        plane: &[T],
        ww: &AxisWindow,
        pitch: usize,
    ) -> ([T; LANES], [i64; LANES]) {
        let step_w = self.windows.step[2];
        let mut best = [T::neg_infinity(); LANES];
        let mut best_at = [0i64; LANES];
        for (j, at) in best_at.iter_mut().enumerate() {
            *at = self.first_cell(ww.first + j * pitch);
        }
        for row_start in self.starts() {
            for c in 0..ww.count {
                let start = row_start + ww.first + c * step_w;
                let cells = &plane[start..start + (LANES - 1) * pitch + 1];
                for j in 0..LANES {
                    let at = start + j * pitch;
                    update(cells[j * pitch], at as i64, &mut best[j], &mut best_at[j]);
                }
            }
        }
        (best, best_at)
    }
}
