//! Fractional max pooling (Graham, 2014; PyTorch's `fractional_max_pool2d/3d`):
//! windows of a fixed size whose starts follow a pseudo-random sequence drawn per
//! plane. The sequences arrive as tables of window starts (computed in Python,
//! where the arithmetic follows PyTorch's in the input's own dtype).
//!
//! The windows have no constant pitch, so the strided kernels' runs of evenly
//! spaced windows do not apply. The maximum is taken axis by axis instead: every
//! input row's maxima over `k_w` neighbouring cells (a vector loop over the whole
//! row), picked at the plane's column starts, then, per output row, the maximum
//! over the `k_d * k_h` picked rows its windows cover (a vector loop over the
//! output row). This is the scan of the whole window in row-major order cut into
//! its rows: PyTorch's rule (a cell replaces the maximum when larger or NaN) gives
//! the same cell either way, since the first largest cell of the window is the
//! first largest among the rows' first largest cells, and the last NaN of the
//! window is the last NaN of the last row holding one. Planes of 2^32 cells or
//! more (whose offsets do not fit the `u32` lanes) take the scalar scan of
//! [`super::max`].

use super::plan;
use super::windows::Windows;
use super::{max, max_planes, MaxPooled};
use crate::arrays::{shape5, spatial, with_spatial};
use crate::element::Element;
use crate::error::{value_error, Error, Result};
use crate::geometry::{check_rank, checked_product, fmt_dims, AxisWindow, Dims, SPATIAL};
use crate::kernels::{dispatch, simd_twins, update_max, MaxElement};
use crate::storage::MaxStorage;
use ndarray::{Array2, ArrayView2, ArrayView5};
use std::mem::MaybeUninit;

/// The window-start table of [`fractional_max_pool`] from PyTorch's samples:
/// `samples[plane]` holds one sample in `[0, 1)` per axis (axis order; unit axes
/// take none), and along an axis of `n` cells to `o` outputs of `k` cells the
/// starts are `trunc((i + u) a) - trunc(u a)` for `i < o - 1` with
/// `a = (n - k) / (o - 1)`, and `n - k` last, every operation in `U` (the
/// samples' type, as PyTorch computes in the input's type), so the same samples
/// give PyTorch's windows. Computed here rather than in NumPy: its temporaries
/// cost more than the pooling on many small planes.
pub fn window_starts<U: Element>(
    samples: ArrayView2<'_, U>,
    input: Dims,
    output: Dims,
    kernel: Dims,
) -> Result<Array2<i64>> {
    let planes = samples.nrows();
    if samples.ncols() != SPATIAL {
        return value_error!(
            "the samples have {} columns, expected {SPATIAL}",
            samples.ncols()
        );
    }
    let columns: usize = output.iter().sum();
    let mut table = Array2::<i64>::zeros((planes, columns));
    let mut offset = 0;
    for axis in 0..SPATIAL {
        let (n, o, k) = (input[axis], output[axis], kernel[axis]);
        let last = n.saturating_sub(k) as i64;
        let cast = |v: usize| U::from(v).unwrap_or_else(U::nan);
        let alpha = if o > 1 {
            cast(n.saturating_sub(k)) / cast(o - 1)
        } else {
            U::zero()
        };
        for (mut row, sample) in table.outer_iter_mut().zip(samples.column(axis)) {
            let first = (*sample * alpha).to_i64().unwrap_or(i64::MIN);
            for i in 0..o.saturating_sub(1) {
                let at = ((cast(i) + *sample) * alpha).to_i64().unwrap_or(i64::MIN);
                // out-of-range results (a sample outside [0, 1)) are refused by
                // `fractional_max_pool`'s check of the table
                row[offset + i] = at.saturating_sub(first);
            }
            if o > 0 {
                row[offset + o - 1] = last;
            }
        }
        offset += o;
    }
    Ok(table)
}

/// The per-axis windows of plane `plane`: `starts` row `plane` holds the window
/// starts of axis 0, then axis 1, then axis 2 (`output[a]` each).
fn plane_windows(
    input: Dims,
    output: Dims,
    kernel: Dims,
    starts: &ArrayView2<'_, i64>,
    plane: usize,
) -> Windows {
    let row = starts.row(plane);
    let mut offset = 0;
    let axes = [0, 1, 2].map(|axis| {
        let table: Vec<AxisWindow> = (0..output[axis])
            .map(|o| AxisWindow {
                // checked in `fractional_max_pool`: 0 <= start <= input - kernel
                first: row[offset + o] as usize,
                count: kernel[axis],
                padded: kernel[axis],
            })
            .collect();
        offset += output[axis];
        table
    });
    Windows {
        input,
        output,
        step: [1; SPATIAL],
        axes,
        pitch: None,
        interior: None,
        taps: None,
    }
}

/// Max pooling of `x` with windows of `kernel` cells starting, per plane (`N * C`
/// of them, in order), where `starts` says: `starts[plane]` holds the `output[0]`
/// starts of axis 0, then the `output[1]` of axis 1 and the `output[2]` of axis
/// 2; each start must leave the window inside the input. With the flat per-plane
/// indices of the maxima if asked (NaN propagates; ties keep the first cell).
pub fn fractional_max_pool<S: MaxStorage>(
    x: ArrayView5<'_, S>,
    starts: ArrayView2<'_, i64>,
    output: Dims,
    kernel: Dims,
    rank: usize,
    return_indices: bool,
) -> Result<MaxPooled<S>> {
    check_rank(rank)?;
    let shape = shape5(&x);
    let input = spatial(shape);
    let planes = checked_product(&shape[..2])?;
    for axis in 0..SPATIAL {
        if kernel[axis] == 0 || output[axis] == 0 {
            return value_error!(
                "kernel_size {} and output_size {} must be positive",
                fmt_dims(&kernel, rank),
                fmt_dims(&output, rank)
            );
        }
        if output[axis] + kernel[axis] - 1 > input[axis] {
            return value_error!(
                "kernel_size {} is too large for output_size {} from input size {}: output + kernel - 1 must not exceed the input",
                fmt_dims(&kernel, rank),
                fmt_dims(&output, rank),
                fmt_dims(&input, rank)
            );
        }
    }
    let columns: usize = output.iter().sum();
    if starts.dim() != (planes, columns) {
        return value_error!(
            "the window starts have shape {:?}, expected ({planes}, {columns})",
            starts.dim()
        );
    }
    for plane in 0..planes {
        let row = starts.row(plane);
        let mut offset = 0;
        for axis in 0..SPATIAL {
            let last = (input[axis] - kernel[axis]) as i64;
            if let Some(bad) = (0..output[axis])
                .map(|o| row[offset + o])
                .find(|&s| !(0..=last).contains(&s))
            {
                return Err(Error::Value(format!(
                    "a window start {bad} leaves the input along axis {} (size {}, kernel {})",
                    axis + rank - SPATIAL,
                    input[axis],
                    kernel[axis]
                )));
            }
            offset += output[axis];
        }
    }
    let in_vol = input.iter().product::<usize>();
    let work = output.iter().product::<usize>() * kernel.iter().product::<usize>();
    let separable = u32::try_from(in_vol).is_ok();
    max_planes(
        x,
        with_spatial(shape, output),
        plan::PlaneSplit::new(planes, work),
        1,
        return_indices,
        Scratch::default,
        |scratch, p, plane, v, i| {
            if separable {
                let row = starts.row(p);
                let copy;
                let starts = match row.as_slice() {
                    Some(starts) => starts,
                    None => {
                        copy = row.to_vec();
                        &copy
                    }
                };
                let geometry = PlaneGeometry {
                    input,
                    output,
                    kernel,
                    starts,
                };
                separable_plane(&geometry, plane, v, i, scratch);
            } else {
                let windows = plane_windows(input, output, kernel, &starts, p);
                let rows = plan::max_rows::<S::Compute>(&windows, in_vol);
                max::max_plane(&windows, rows, plane, v, i);
            }
        },
    )
}

/// What [`separable_plane`] works in, kept by a task from plane to plane (small
/// planes are many: allocating per plane was a good part of their cost).
pub(crate) struct Scratch<T> {
    /// The picked rows' maxima (`k_d` depth planes of them), then one input
    /// row's sliding maxima.
    values: Vec<T>,
    /// Their plane offsets.
    offsets: Vec<u32>,
    /// The column starts, the depth plane each slot holds, the picked rows of
    /// one output row.
    indices: Vec<usize>,
}

impl<T> Default for Scratch<T> {
    fn default() -> Self {
        Scratch {
            values: Vec::new(),
            offsets: Vec::new(),
            indices: Vec::new(),
        }
    }
}

/// The windows of one plane: `starts` as a row of the window-start table.
struct PlaneGeometry<'a> {
    input: Dims,
    output: Dims,
    kernel: Dims,
    starts: &'a [i64],
}

impl PlaneGeometry<'_> {
    /// The window starts along `axis` (checked to lie in the input).
    fn axis_starts(&self, axis: usize) -> impl Iterator<Item = usize> + '_ {
        let offset: usize = self.output[..axis].iter().sum();
        self.starts[offset..offset + self.output[axis]]
            .iter()
            .map(|&s| s as usize)
    }
}

/// The maxima of the windows of `geometry` over `plane` (fewer than 2^32 cells)
/// into `values`, and their flat plane indices into `indices` unless it is empty.
fn separable_plane<T: MaxElement>(
    geometry: &PlaneGeometry<'_>,
    plane: &[T],
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
    scratch: &mut Scratch<T>,
) {
    dispatch!(
        separable_plane_any,
        separable_plane_avx512,
        separable_plane_avx2,
        geometry,
        plane,
        values,
        indices,
        scratch
    )
}

simd_twins! {
    separable_plane_any => separable_plane_avx512, separable_plane_avx2,
    <T: MaxElement>(
        geometry: &PlaneGeometry<'_>,
        plane: &[T],
        values: &mut [MaybeUninit<T>],
        indices: &mut [MaybeUninit<i64>],
        scratch: &mut Scratch<T>,
    )
}

#[inline(always)]
fn separable_plane_any<T: MaxElement>(
    geometry: &PlaneGeometry<'_>,
    plane: &[T],
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
    scratch: &mut Scratch<T>,
) {
    let [_, height, width] = geometry.input;
    let [_, _, out_w] = geometry.output;
    let [kd, kh, kw] = geometry.kernel;
    // The window maxima of every row of `kd` depth planes at the column starts,
    // with their plane offsets (`u32`: the plane has fewer than 2^32 cells).
    // Depth plane `d` lives in slot `d % kd`, so the `kd` planes of a window are
    // in distinct slots and a plane stays until a later window no longer needs
    // it (the starts never decrease along an axis; a plane evicted and needed
    // again would be computed again). Every slot is written before it is read.
    let slot_len = height * out_w;
    let row_len = width + 1 - kw;
    let Scratch {
        values: value_buf,
        offsets: offset_buf,
        indices: index_buf,
    } = scratch;
    value_buf.resize(kd * slot_len + row_len, T::LOWEST);
    let (picked, row_max) = value_buf[..kd * slot_len + row_len].split_at_mut(kd * slot_len);
    offset_buf.resize(kd * slot_len + row_len, 0);
    let (picked_at, row_tap) = offset_buf[..kd * slot_len + row_len].split_at_mut(kd * slot_len);
    // The column starts, the depth plane each slot holds (`usize::MAX`: none),
    // and the picked rows of one output row.
    index_buf.clear();
    index_buf.extend(geometry.axis_starts(2));
    index_buf.resize(out_w + kd + kd * kh, usize::MAX);
    let (columns, rest) = index_buf.split_at_mut(out_w);
    // `fractional_max_pool` checked every start to leave the window inside the
    // input: a column start is at most `width - kw`.
    assert!(
        columns.iter().all(|&column| column < row_len),
        "a column start leaves the row"
    );
    let (held, sources) = rest.split_at_mut(kd);
    let mut out_start = 0;
    for first_d in geometry.axis_starts(0) {
        for d in first_d..first_d + kd {
            let slot = d % kd;
            if held[slot] == d {
                continue;
            }
            held[slot] = d;
            let best = &mut picked[slot * slot_len..][..slot_len];
            let best_at = &mut picked_at[slot * slot_len..][..slot_len];
            for (h, (best, best_at)) in best
                .chunks_exact_mut(out_w)
                .zip(best_at.chunks_exact_mut(out_w))
                .enumerate()
            {
                let row = (d * height + h) * width;
                sliding_max(&plane[row..row + width], kw, row_max, row_tap);
                // Below 2^32: a cell of the plane.
                let base = row as u32;
                for ((&column, best), best_at) in columns.iter().zip(best).zip(best_at) {
                    // SAFETY: every column is below `row_len` (asserted above),
                    // the length of `row_max` and `row_tap`. Unchecked: two
                    // checks per picked cell were a good part of a small plane.
                    let (value, tap) = unsafe {
                        (
                            *row_max.get_unchecked(column),
                            *row_tap.get_unchecked(column),
                        )
                    };
                    *best = value;
                    *best_at = base + column as u32 + tap;
                }
            }
        }
        // Each output row: the picked rows its windows cover, in scan order.
        for first_h in geometry.axis_starts(1) {
            let mut count = 0;
            for d in first_d..first_d + kd {
                let slot = (d % kd) * slot_len;
                for h in first_h..first_h + kh {
                    sources[count] = slot + h * out_w;
                    count += 1;
                }
            }
            let out = &mut values[out_start..out_start + out_w];
            let at: &mut [MaybeUninit<i64>] = if indices.is_empty() {
                &mut []
            } else {
                &mut indices[out_start..out_start + out_w]
            };
            rows_max(picked, picked_at, &sources[..count], out, at);
            out_start += out_w;
        }
    }
}

/// Starts of the `L`-wide chunks covering `0..n` (`n >= L`): every `L`-th
/// column, the last chunk flush with the end (overlapping the one before it:
/// recomputing a column gives the same value).
#[inline(always)]
fn chunks<const L: usize>(n: usize) -> impl Iterator<Item = usize> {
    (0..n - L).step_by(L).chain(std::iter::once(n - L))
}

/// `best[j]`: the maximum of `cells[j..j + k]` (PyTorch's scan: ties keep the
/// first cell, NaN wins), `tap[j]` its offset from `j`; in chunks as wide as
/// the row allows (small planes' rows are short).
#[inline(always)]
fn sliding_max<T: MaxElement>(cells: &[T], k: usize, best: &mut [T], tap: &mut [u32]) {
    match best.len() {
        n if n >= 16 => sliding_chunks::<T, 16>(cells, k, best, tap),
        n if n >= 8 => sliding_chunks::<T, 8>(cells, k, best, tap),
        n if n >= 4 => sliding_chunks::<T, 4>(cells, k, best, tap),
        n => {
            for j in 0..n {
                let (mut b, mut t) = (cells[j], 0u32);
                for c in 1..k {
                    update_max(cells[j + c], c as u32, &mut b, &mut t);
                }
                best[j] = b;
                tap[j] = t;
            }
        }
    }
}

#[inline(always)]
fn sliding_chunks<T: MaxElement, const L: usize>(
    cells: &[T],
    k: usize,
    best: &mut [T],
    tap: &mut [u32],
) {
    for j in chunks::<L>(best.len()) {
        let mut b = [T::LOWEST; L];
        b.copy_from_slice(&cells[j..j + L]);
        let mut t = [0u32; L];
        for c in 1..k {
            let next = &cells[j + c..j + c + L];
            for l in 0..L {
                update_max(next[l], c as u32, &mut b[l], &mut t[l]);
            }
        }
        best[j..j + L].copy_from_slice(&b);
        tap[j..j + L].copy_from_slice(&t);
    }
}

/// The maxima over the picked rows starting at `sources` (in scan order), column
/// by column, into `values` (and their plane offsets into `indices` unless
/// empty); in chunks as wide as the row allows.
#[inline(always)]
fn rows_max<T: MaxElement>(
    picked: &[T],
    picked_at: &[u32],
    sources: &[usize],
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
) {
    let Some((&first, rest)) = sources.split_first() else {
        return;
    };
    match values.len() {
        n if n >= 16 => rows_chunks::<T, 16>(picked, picked_at, sources, values, indices),
        n if n >= 8 => rows_chunks::<T, 8>(picked, picked_at, sources, values, indices),
        n if n >= 4 => rows_chunks::<T, 4>(picked, picked_at, sources, values, indices),
        n => {
            for o in 0..n {
                let (mut b, mut t) = (picked[first + o], picked_at[first + o]);
                for &source in rest {
                    update_max(picked[source + o], picked_at[source + o], &mut b, &mut t);
                }
                values[o].write(b);
                if let Some(slot) = indices.get_mut(o) {
                    slot.write(i64::from(t));
                }
            }
        }
    }
}

/// [`rows_max`] for rows of at least `L` columns (`sources` not empty). The
/// lanes remember which source row won (a constant per row, which keeps the
/// selects in vector registers), its offset is looked up at the end.
#[inline(always)]
fn rows_chunks<T: MaxElement, const L: usize>(
    picked: &[T],
    picked_at: &[u32],
    sources: &[usize],
    values: &mut [MaybeUninit<T>],
    indices: &mut [MaybeUninit<i64>],
) {
    assert!(
        sources
            .iter()
            .all(|&s| s.saturating_add(values.len()) <= picked_at.len()),
        "a picked row ends past the table"
    );
    let first = sources[0];
    for j in chunks::<L>(values.len()) {
        let (mut b, mut t) = ([T::LOWEST; L], [0u32; L]);
        b.copy_from_slice(&picked[first + j..][..L]);
        for (s, &source) in sources.iter().enumerate().skip(1) {
            let v = &picked[source + j..][..L];
            for l in 0..L {
                update_max(v[l], s as u32, &mut b[l], &mut t[l]);
            }
        }
        for (slot, &value) in values[j..j + L].iter_mut().zip(&b) {
            slot.write(value);
        }
        if !indices.is_empty() {
            for (l, (slot, &s)) in indices[j..j + L].iter_mut().zip(&t).enumerate() {
                // SAFETY: `t` holds positions in `sources` (0, or `s` of the
                // enumeration above), and `source + j + l < source +
                // values.len() <= picked_at.len()` for every source (asserted
                // on entry; `chunks` keeps `j + L <= values.len()`). Unchecked:
                // a lookup per output is on the hot path of small planes.
                let offset =
                    unsafe { *picked_at.get_unchecked(*sources.get_unchecked(s as usize) + j + l) };
                slot.write(i64::from(offset));
            }
        }
    }
}
