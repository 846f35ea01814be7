//! Average-pooling kernels of one plane, forward and backward (strided and
//! adaptive pooling use them with different window tables and divisor rules).

use super::windows::{Divisor, Windows};
use crate::element::Element;

/// Mean of every window of `plane` into `out`: the sum of the input cells the
/// window reads (padding adds zeros) divided by the divisor of `rule`.
pub(crate) fn avg_plane<T: Element>(windows: &Windows, rule: Divisor, plane: &[T], out: &mut [T]) {
    let [_, in_h, in_w] = windows.input;
    let mut o = 0;
    for wd in &windows.axes[0] {
        for wh in &windows.axes[1] {
            for ww in &windows.axes[2] {
                let mut sum = T::zero();
                for id in wd.first..wd.first + wd.count {
                    for ih in wh.first..wh.first + wh.count {
                        let row_start = (id * in_h + ih) * in_w + ww.first;
                        for &value in &plane[row_start..row_start + ww.count] {
                            sum += value;
                        }
                    }
                }
                out[o] = sum / Windows::divisor::<T>(rule, wd, wh, ww);
                o += 1;
            }
        }
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
