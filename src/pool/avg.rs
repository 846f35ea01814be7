//! Window-sum kernels of one plane, forward and backward: average pooling
//! (strided and adaptive pooling use them with different window tables and
//! divisor rules) and Lp pooling (the same sums of `x^p`, finished by a root;
//! its reduction and backward are in `lp.rs`).
//!
//! The forward pass computes runs of full-width windows `lanes` output columns at
//! a time (every lane sums its cells in the scalar scan order, so the results are
//! those of the scalar loop), border windows one by one.

use super::interleave;
use super::plan::{RowKernel, RowRuns};
use super::windows::{Divisor, RowCover, Windows};
use crate::element::Element;
use crate::geometry::AxisWindow;
use crate::kernels::{dispatch, simd_twins};
use std::marker::PhantomData;
use std::mem::MaybeUninit;

/// What a window sum adds per cell, and how it turns the sum into the output.
pub(crate) trait WindowSum: Copy + Send + Sync {
    type T: Element;

    /// Whether the outputs are finished by [`WindowSum::finish_plane`], once the
    /// plane's sums are all done (`finish` then gives what it takes): a step
    /// that vectorises only as a loop of its own, such as a root.
    const FINISH_PLANE: bool = false;

    /// The term a cell of value `value` adds.
    fn term(self, value: Self::T) -> Self::T;
    /// The factor of windows shaped `(wd, wh, ww)` (shared by a run of them).
    fn factor(self, wd: &AxisWindow, wh: &AxisWindow, ww: &AxisWindow) -> Self::T;
    /// The output of a window whose terms sum to `sum`.
    fn finish(self, sum: Self::T, factor: Self::T) -> Self::T;

    /// The outputs from what `finish` gave for every window of the plane (used
    /// when [`WindowSum::FINISH_PLANE`]).
    fn finish_plane(self, finished: &[Self::T], out: &mut [MaybeUninit<Self::T>]) {
        for (slot, &value) in out.iter_mut().zip(finished) {
            slot.write(value);
        }
    }
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

/// The buffers [`avg_planes`] works in, kept from plane to plane by a task (on
/// thousands of small planes, allocating them per plane cost as much as the
/// sums).
pub(crate) struct PlaneScratch<T> {
    /// What `finish` gave, where [`WindowSum::FINISH_PLANE`].
    finished: Vec<T>,
    /// The flat starts of a window row's input rows.
    rows: Vec<usize>,
    /// Every window's factor in output order, where the windows have a tap
    /// table (the same for every plane: computed once).
    factors: Vec<T>,
    /// The cell-major copy of the planes the interleaved kernel sums.
    cells: Vec<T>,
}

impl<T: Element> PlaneScratch<T> {
    /// Scratch for the planes of `windows` summed by `reduce`.
    pub fn new<R: WindowSum<T = T>>(windows: &Windows, reduce: R) -> Self {
        let factors = if windows.taps.is_some() {
            window_shapes(windows)
                .map(|(wd, wh, ww)| reduce.factor(wd, wh, ww))
                .collect()
        } else {
            Vec::new()
        };
        PlaneScratch {
            finished: Vec::new(),
            rows: Vec::new(),
            factors,
            cells: Vec::new(),
        }
    }
}

/// Output of every window of each plane of `planes` (whole planes of
/// `windows.in_vol()` cells, one or a group of small ones) into `out` (their
/// `windows.out_vol()` outputs each, in order): `reduce`'s finish of the sum of
/// its terms over the input cells the window reads (padding adds nothing).
/// One kernel call and one finishing pass for the group: on planes of 49 cells
/// those cost more, called per plane, than the sums.
pub(crate) fn avg_planes<R: WindowSum>(
    windows: &Windows,
    rows: RowRuns,
    reduce: R,
    planes: &[R::T],
    out: &mut [MaybeUninit<R::T>],
    scratch: &mut PlaneScratch<R::T>,
) {
    let finished = &mut scratch.finished;
    finished.clear();
    let target = if R::FINISH_PLANE {
        finished.reserve(out.len());
        &mut finished.spare_capacity_mut()[..out.len()]
    } else {
        &mut *out
    };
    let row_starts = &mut scratch.rows;
    let factors = &scratch.factors[..];
    if let (RowKernel::Interleaved(lanes), Some(taps)) = (rows.kernel, &windows.taps) {
        let in_vol = windows.in_vol();
        interleave::sum_planes(
            taps,
            factors,
            reduce,
            lanes,
            in_vol,
            planes,
            target,
            &mut scratch.cells,
        );
    } else {
        dispatch!(
            avg_planes_any,
            avg_planes_avx512,
            avg_planes_avx2,
            windows,
            rows,
            reduce,
            planes,
            target,
            row_starts,
            factors
        );
    }
    if R::FINISH_PLANE {
        // SAFETY: `avg_planes_any` wrote every output of every plane (the
        // windows cover each, as `window_sums` relies on too) into the first
        // `out.len()` elements of the capacity.
        unsafe { finished.set_len(out.len()) };
        reduce.finish_plane(finished, out);
    }
}

simd_twins! {
    avg_planes_any => avg_planes_avx512, avg_planes_avx2,
    <R: WindowSum>(
        windows: &Windows,
        rows: RowRuns,
        reduce: R,
        planes: &[R::T],
        out: &mut [MaybeUninit<R::T>],
        row_starts: &mut Vec<usize>,
        factors: &[R::T],
    )
}

#[inline(always)]
fn avg_planes_any<R: WindowSum>(
    windows: &Windows,
    rows: RowRuns,
    reduce: R,
    planes: &[R::T],
    out: &mut [MaybeUninit<R::T>],
    row_starts: &mut Vec<usize>,
    factors: &[R::T],
) {
    let (in_vol, out_vol) = (windows.in_vol().max(1), windows.out_vol().max(1));
    let planes = planes.chunks(in_vol).zip(out.chunks_mut(out_vol));
    if let (RowKernel::Taps, Some(taps), true) =
        (rows.kernel, &windows.taps, factors.len() == out_vol)
    {
        // The tap loop on its own: inside the general plane kernel, looped over
        // planes, it ran out of registers and reloaded its pointers per cell.
        for (plane, out) in planes {
            for ((slot, cells), &factor) in out.iter_mut().zip(taps.windows()).zip(factors) {
                let mut sum = <R::T as num_traits::Zero>::zero();
                for &cell in cells {
                    sum += reduce.term(plane[cell as usize]);
                }
                slot.write(reduce.finish(sum, factor));
            }
        }
        return;
    }
    for (plane, out) in planes {
        avg_plane_any(windows, rows, reduce, plane, out, row_starts);
    }
}

#[inline(always)]
fn avg_plane_any<R: WindowSum>(
    windows: &Windows,
    RowRuns { kernel, lo, hi }: RowRuns,
    reduce: R,
    plane: &[R::T],
    out: &mut [MaybeUninit<R::T>],
    rows: &mut Vec<usize>,
) {
    // (Planes with a tap table: `avg_planes_any` runs those itself.)
    let out_w = windows.output[2];
    let step_w = windows.step[2];
    let row_windows = &windows.axes[2];
    let lanes = kernel.lanes();
    let pitch = windows.pitch.unwrap_or(1);
    let mut out_start = 0;
    for wd in &windows.axes[0] {
        for wh in &windows.axes[1] {
            windows.row_starts(wd, wh, rows);
            let out = &mut out[out_start..out_start + out_w];
            for ow in (0..lo).chain(hi..out_w) {
                let ww = &row_windows[ow];
                let sum = sum_of_window(reduce, plane, rows, ww, step_w);
                out[ow].write(reduce.finish(sum, reduce.factor(wd, wh, ww)));
            }
            for start in windows.interior_chunks(lanes) {
                let ww = &row_windows[start];
                let run = SumRun {
                    rows,
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

/// The per-axis windows of every window, in output order.
pub(crate) fn window_shapes(
    windows: &Windows,
) -> impl Iterator<Item = (&AxisWindow, &AxisWindow, &AxisWindow)> {
    let [depth, height, width] = &windows.axes;
    depth.iter().flat_map(move |wd| {
        height
            .iter()
            .flat_map(move |wh| width.iter().map(move |ww| (wd, wh, ww)))
    })
}

/// Sum of the terms of one window whose rows start at `rows` (plane indices of
/// column 0), its cells `step` apart along the row.
pub(crate) fn sum_of_window<R: WindowSum>(
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

/// Fewest windows in a row for [`avg_backward_plane`]'s row pass.
const ROW_PASS_MIN_WINDOWS: usize = 8;

/// What [`avg_backward_plane`] works in, kept by a task from plane to plane.
pub(crate) struct BackwardScratch<T> {
    /// A window row's shares, their sums per cell, its input rows.
    shares: Vec<T>,
    spread: Vec<T>,
    rows: Vec<usize>,
}

impl<T> Default for BackwardScratch<T> {
    fn default() -> Self {
        BackwardScratch {
            shares: Vec::new(),
            spread: Vec::new(),
            rows: Vec::new(),
        }
    }
}

/// Gradient of [`avg_planes`] for averages: each output gradient divided by its
/// window's divisor is added to every input cell of the window. Where a row's
/// windows leave no gap ([`RowCover`]) the shares are summed per cell first and
/// each input row takes one pass; else window by window (overlapping windows
/// accumulate in output order).
pub(crate) fn avg_backward_plane<T: Element>(
    windows: &Windows,
    cover: &RowCover,
    rule: Divisor,
    grad_out: &[T],
    grad_in: &mut [T],
    scratch: &mut BackwardScratch<T>,
) {
    dispatch!(
        avg_backward_plane_any,
        avg_backward_plane_avx512,
        avg_backward_plane_avx2,
        windows,
        cover,
        rule,
        grad_out,
        grad_in,
        scratch
    )
}

simd_twins! {
    avg_backward_plane_any => avg_backward_plane_avx512, avg_backward_plane_avx2,
    <T: Element>(
        windows: &Windows,
        cover: &RowCover,
        rule: Divisor,
        grad_out: &[T],
        grad_in: &mut [T],
        scratch: &mut BackwardScratch<T>,
    )
}

#[inline(always)]
fn avg_backward_plane_any<T: Element>(
    windows: &Windows,
    cover: &RowCover,
    rule: Divisor,
    grad_out: &[T],
    grad_in: &mut [T],
    scratch: &mut BackwardScratch<T>,
) {
    let step_w = windows.step[2];
    // Rows of a few windows (small planes) stay window by window: the row
    // pass's setup per window row cost more than it saved there.
    if cover.gapless && windows.axes[2].len() >= ROW_PASS_MIN_WINDOWS {
        let BackwardScratch {
            shares,
            spread,
            rows,
        } = scratch;
        let row_windows = &windows.axes[2];
        spread.resize(cover.span, T::zero());
        let (first, span) = (cover.first, cover.span);
        let mut o = 0;
        for wd in &windows.axes[0] {
            for wh in &windows.axes[1] {
                shares.clear();
                shares.extend(
                    row_windows
                        .iter()
                        .zip(&grad_out[o..o + row_windows.len()])
                        .map(|(ww, &g)| g / Windows::divisor::<T>(rule, wd, wh, ww)),
                );
                cover.spread(row_windows, shares, &mut spread[..span]);
                windows.row_starts(wd, wh, rows);
                for &row in rows.iter() {
                    let cells = &mut grad_in[row + first..row + first + span];
                    for (cell, &share) in cells.iter_mut().zip(spread.iter()) {
                        *cell += share;
                    }
                }
                o += row_windows.len();
            }
        }
        return;
    }
    for_each_window(windows, |o, [wd, wh, ww], rows| {
        let share = grad_out[o] / Windows::divisor::<T>(rule, wd, wh, ww);
        for &row in rows {
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
    });
}

/// Every window of `windows` in output order: `visit(o, [wd, wh, ww], rows)`,
/// `o` the index of its output in the plane and `rows` the plane indices of
/// its rows' column 0.
pub(crate) fn for_each_window(
    windows: &Windows,
    mut visit: impl FnMut(usize, [&AxisWindow; 3], &[usize]),
) {
    let mut rows = Vec::new();
    let mut o = 0;
    for wd in &windows.axes[0] {
        for wh in &windows.axes[1] {
            windows.row_starts(wd, wh, &mut rows);
            for ww in &windows.axes[2] {
                visit(o, [wd, wh, ww], &rows);
                o += 1;
            }
        }
    }
}
