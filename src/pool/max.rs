//! The max-pooling kernel of one plane (strided, adaptive and global pooling all
//! use it with different window tables).

use super::windows::Windows;
use crate::element::Element;

/// Max of every window of `plane` into `values`, and the flat index (into the
/// plane) of each maximum into `indices` unless it is empty.
///
/// PyTorch's rule, in scan order (row-major over the window): a cell replaces the
/// maximum when it is larger or NaN. So ties keep the first cell, a NaN always
/// wins (and a later NaN replaces an earlier one), and a window of -inf keeps its
/// first cell. Padded cells are never read, which is the same as -inf padding.
pub(crate) fn max_plane<T: Element>(
    windows: &Windows,
    plane: &[T],
    values: &mut [T],
    indices: &mut [i64],
) {
    let [_, in_h, in_w] = windows.input;
    let [step_d, step_h, step_w] = windows.step;
    let with_indices = !indices.is_empty();
    let mut out = 0;
    for wd in &windows.axes[0] {
        for wh in &windows.axes[1] {
            let first_row = wd.first * in_h + wh.first;
            for ww in &windows.axes[2] {
                let mut best = T::neg_infinity();
                let mut best_at = first_row * in_w + ww.first;
                for a in 0..wd.count {
                    let depth_row = (wd.first + a * step_d) * in_h + wh.first;
                    for b in 0..wh.count {
                        let row_start = (depth_row + b * step_h) * in_w + ww.first;
                        let taps = plane[row_start..].iter().step_by(step_w).take(ww.count);
                        for (c, &value) in taps.enumerate() {
                            if value > best || value.is_nan() {
                                best = value;
                                best_at = row_start + c * step_w;
                            }
                        }
                    }
                }
                values[out] = best;
                if with_indices {
                    // A plane index fits i64: the plane is part of an allocated array.
                    indices[out] = best_at as i64;
                }
                out += 1;
            }
        }
    }
}
