//! Window-sum kernels of one plane, forward and backward: average pooling
//! (strided and adaptive pooling use them with different window tables and
//! divisor rules) and Lp pooling (the same sums of `x^p`, finished by a root).
//!
//! The forward pass computes runs of full-width windows `lanes` output columns at
//! a time (every lane sums its cells in the scalar scan order, so the results are
//! those of the scalar loop), border windows one by one.

use super::plan::RowRuns;
use super::windows::{Divisor, Windows};
use crate::element::Element;
use crate::geometry::AxisWindow;
use crate::kernels::{dispatch, simd_twins};
use std::marker::PhantomData;
use std::mem::MaybeUninit;

/// What a window sum adds per cell, and how it turns the sum into the output.
pub(crate) trait WindowSum: Copy + Send + Sync {
    type T: Element;
    /// The term a cell of value `value` adds.
    fn term(self, value: Self::T) -> Self::T;
    /// The factor of windows shaped `(wd, wh, ww)` (shared by a run of them).
    fn factor(self, wd: &AxisWindow, wh: &AxisWindow, ww: &AxisWindow) -> Self::T;
    /// The output of a window whose terms sum to `sum`.
    fn finish(self, sum: Self::T, factor: Self::T) -> Self::T;
}

/// Average pooling: the sum divided by the divisor of `rule`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mean<T> {
    pub rule: Divisor,
    pub element: PhantomData<T>,
}

impl<T: Element> Mean<T> {
    pub fn new(rule: Divisor) -> Self {
        Mean {
            rule,
            element: PhantomData,
        }
    }
}

impl<T: Element> WindowSum for Mean<T> {
    type T = T;

    #[inline(always)]
    fn term(self, value: T) -> T {
        value
    }

    #[inline(always)]
    fn factor(self, wd: &AxisWindow, wh: &AxisWindow, ww: &AxisWindow) -> T {
        Windows::divisor(self.rule, wd, wh, ww)
    }

    #[inline(always)]
    fn finish(self, sum: T, divisor: T) -> T {
        sum / divisor
    }
}

/// Lp pooling as PyTorch computes it: `(scale * sum x^p)^(1/p)`, where `scale`
/// is the kernel volume over the window's taps inside the padded input (1 but for
/// ceil-mode windows hanging over the end, which PyTorch scales up so). `WHOLE`
/// is `p` when it is a whole number from 1 to [`WHOLE_POWERS`] (its power a
/// product, like PyTorch's `pow` for 2 and 3, known when the kernels compile so
/// they vectorise), else 0 (`powf` per cell).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lp<T, const WHOLE: i32> {
    pub p: T,
    pub inv_p: T,
    pub kernel_vol: usize,
}

/// The whole powers computed as products.
pub(crate) const WHOLE_POWERS: i32 = 4;

/// `WHOLE` of [`Lp`] for the norm `p`.
pub(crate) fn whole_power(p: f64) -> i32 {
    if p.fract() == 0.0 && (1.0..=f64::from(WHOLE_POWERS)).contains(&p) {
        p as i32
    } else {
        0
    }
}

impl<T: Element, const WHOLE: i32> Lp<T, WHOLE> {
    pub fn new(p: f64, kernel_vol: usize) -> Self {
        Lp {
            p: T::from(p).unwrap_or_else(T::nan),
            inv_p: T::from(1.0 / p).unwrap_or_else(T::nan),
            kernel_vol,
        }
    }

    /// `x^n` for a whole `n` of 0 to 3, as products.
    #[inline(always)]
    fn product(value: T, n: i32) -> T {
        match n {
            0 => T::one(),
            1 => value,
            2 => value * value,
            _ => value * value * value,
        }
    }

    /// The derivative of `term` over `p`: `x^(p - 1)`.
    #[inline(always)]
    fn term_slope(self, value: T) -> T {
        if WHOLE > 0 {
            Self::product(value, WHOLE - 1)
        } else {
            value.powf(self.p - T::one())
        }
    }
}

impl<T: Element, const WHOLE: i32> WindowSum for Lp<T, WHOLE> {
    type T = T;

    #[inline(always)]
    fn term(self, value: T) -> T {
        match WHOLE {
            4 => {
                let square = value * value;
                square * square
            }
            1..=3 => Self::product(value, WHOLE),
            _ => value.powf(self.p),
        }
    }

    #[inline(always)]
    fn factor(self, wd: &AxisWindow, wh: &AxisWindow, ww: &AxisWindow) -> T {
        let taps = Windows::divisor::<T>(Divisor::Padded, wd, wh, ww);
        let kernel_vol = T::from(self.kernel_vol).unwrap_or_else(T::infinity);
        if taps == kernel_vol {
            T::one()
        } else {
            kernel_vol / taps
        }
    }

    #[inline(always)]
    fn finish(self, sum: T, scale: T) -> T {
        let value = sum * scale;
        // Roots with a cheap exact form (a general powf per output would dominate
        // the pass); like pow, a negative sum has no real root but for p = 1.
        match WHOLE {
            1 => value,
            2 => value.sqrt(),
            3 if value < T::zero() => T::nan(),
            3 => value.cbrt(),
            4 => value.sqrt().sqrt(),
            _ => value.powf(self.inv_p),
        }
    }
}

/// Output of every window of `plane` into `out`: `reduce`'s finish of the sum of
/// its terms over the input cells the window reads (padding adds nothing).
pub(crate) fn avg_plane<R: WindowSum>(
    windows: &Windows,
    rows: RowRuns,
    reduce: R,
    plane: &[R::T],
    out: &mut [MaybeUninit<R::T>],
) {
    dispatch!(
        avg_plane_any,
        avg_plane_avx512,
        avg_plane_avx2,
        windows,
        rows,
        reduce,
        plane,
        out
    )
}

simd_twins! {
    avg_plane_any => avg_plane_avx512, avg_plane_avx2,
    <R: WindowSum>(
        windows: &Windows,
        rows: RowRuns,
        reduce: R,
        plane: &[R::T],
        out: &mut [MaybeUninit<R::T>],
    )
}

#[inline(always)]
fn avg_plane_any<R: WindowSum>(
    windows: &Windows,
    RowRuns { kernel, lo, hi }: RowRuns,
    reduce: R,
    plane: &[R::T],
    out: &mut [MaybeUninit<R::T>],
) {
    let out_w = windows.output[2];
    let step_w = windows.step[2];
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
                let sum = sum_of_window(reduce, plane, &rows, ww, step_w);
                out[ow].write(reduce.finish(sum, reduce.factor(wd, wh, ww)));
            }
            for start in windows.interior_chunks(lanes) {
                let ww = &row_windows[start];
                let run = SumRun {
                    rows: &rows,
                    first: ww.first,
                    count: ww.count,
                    step: step_w,
                    factor: reduce.factor(wd, wh, ww),
                };
                let out = &mut out[start..start + lanes];
                match (lanes, pitch) {
                    (16, 1) => run.chunk::<R, 16>(reduce, plane, 1, out),
                    (16, 2) => run.chunk::<R, 16>(reduce, plane, 2, out),
                    (16, p) => run.chunk::<R, 16>(reduce, plane, p, out),
                    (_, 1) => run.chunk::<R, 8>(reduce, plane, 1, out),
                    (_, 2) => run.chunk::<R, 8>(reduce, plane, 2, out),
                    (_, p) => run.chunk::<R, 8>(reduce, plane, p, out),
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

/// Sum of the terms of one window whose rows start at `rows` (plane indices of
/// column 0), its cells `step` apart along the row.
fn sum_of_window<R: WindowSum>(
    reduce: R,
    plane: &[R::T],
    rows: &[usize],
    ww: &AxisWindow,
    step: usize,
) -> R::T {
    let mut sum = <R::T as num_traits::Zero>::zero();
    for &row in rows {
        for &value in plane[row + ww.first..].iter().step_by(step).take(ww.count) {
            sum += reduce.term(value);
        }
    }
    sum
}

/// `L` full-width windows of one output row: their rows, the first window's first
/// cell and cell count along the row, the distance between its cells and the
/// factor all of them share.
struct SumRun<'a, T> {
    rows: &'a [usize],
    first: usize,
    count: usize,
    step: usize,
    factor: T,
}

impl<T: Element> SumRun<'_, T> {
    /// Outputs of `L` windows shaped like the run's, the `j`-th starting
    /// `j * pitch` columns after the first.
    #[inline(always)]
    fn chunk<R: WindowSum<T = T>, const L: usize>(
        &self,
        reduce: R,
        plane: &[T],
        pitch: usize,
        out: &mut [MaybeUninit<T>],
    ) {
        let span = (L - 1) * pitch + 1;
        let mut sum = [T::zero(); L];
        for &row in self.rows {
            for c in 0..self.count {
                let cells = &plane[row + self.first + c * self.step..][..span];
                for j in 0..L {
                    sum[j] += reduce.term(cells[j * pitch]);
                }
            }
        }
        for (slot, &s) in out.iter_mut().zip(&sum) {
            slot.write(reduce.finish(s, self.factor));
        }
    }
}

/// Gradient of [`avg_plane`] for averages: each output gradient divided by its
/// window's divisor is added to every input cell of the window (overlapping
/// windows accumulate, in output order).
pub(crate) fn avg_backward_plane<T: Element>(
    windows: &Windows,
    rule: Divisor,
    grad_out: &[T],
    grad_in: &mut [T],
) {
    let step_w = windows.step[2];
    let mut rows = Vec::new();
    let mut o = 0;
    for wd in &windows.axes[0] {
        for wh in &windows.axes[1] {
            windows.row_starts(wd, wh, &mut rows);
            for ww in &windows.axes[2] {
                let share = grad_out[o] / Windows::divisor::<T>(rule, wd, wh, ww);
                for &row in &rows {
                    let start = row + ww.first;
                    if step_w == 1 {
                        for cell in &mut grad_in[start..start + ww.count] {
                            *cell += share;
                        }
                    } else {
                        for cell in grad_in[start..].iter_mut().step_by(step_w).take(ww.count) {
                            *cell += share;
                        }
                    }
                }
                o += 1;
            }
        }
    }
}

/// Gradient of [`avg_plane`] for Lp pooling with respect to its input `x`: the
/// window's sum `s = scale * sum x^p` recomputed, then every cell of the window
/// gets `grad * scale * s^(1/p - 1) * x^(p - 1)`, and nothing where `s` is 0 (as
/// PyTorch, whose ReLU masks that gradient).
pub(crate) fn lp_backward_plane<T: Element, const WHOLE: i32>(
    windows: &Windows,
    lp: Lp<T, WHOLE>,
    x: &[T],
    grad_out: &[T],
    grad_in: &mut [T],
) {
    let step_w = windows.step[2];
    let mut rows = Vec::new();
    let mut o = 0;
    for wd in &windows.axes[0] {
        for wh in &windows.axes[1] {
            windows.row_starts(wd, wh, &mut rows);
            for ww in &windows.axes[2] {
                let scale = lp.factor(wd, wh, ww);
                let total = sum_of_window(lp, x, &rows, ww, step_w) * scale;
                if total != T::zero() {
                    let root = lp.finish(total, T::one());
                    let coefficient = grad_out[o] * scale * (root / total);
                    for &row in &rows {
                        let start = row + ww.first;
                        for c in 0..ww.count {
                            let at = start + c * step_w;
                            grad_in[at] += coefficient * lp.term_slope(x[at]);
                        }
                    }
                }
                o += 1;
            }
        }
    }
}
