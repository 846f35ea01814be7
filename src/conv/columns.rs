//! The column matrix of a convolution, never materialised whole: which input cell
//! each (tap, output position) reads, tiles of it gathered into a buffer (im2col)
//! and tile gradients folded back onto the input (col2im), with any padding mode.
//!
//! A tile is the output positions `p0 .. p0 + len` of one image (flattened
//! row-major over `(D, H, W)`), and its column matrix has one row per
//! `(input channel, kz, ky, kx)` and one column per position. The padded input
//! is never materialised: per-axis tables say which input cell each
//! `(kernel offset, output coordinate)` pair reads, or that it reads a zero.

use super::geometry::ConvGeometry;
use super::implicit::PlaneElem;
use crate::alloc::alloc_zeroed;
use crate::element::Element;
use crate::error::Result;
use crate::geometry::{PaddingMode, SPATIAL};
use crate::kernels::{dispatch, simd_twins};
use std::ops::Range;

/// Marks a padded cell that reads zero.
const ZERO: usize = usize::MAX;

/// `axes[a][k * out[a] + o]`: input index read by kernel offset `k` at output
/// coordinate `o` along axis `a`, or [`ZERO`].
pub(crate) struct IndexTables {
    axes: [Vec<usize>; SPATIAL],
    /// Per kernel offset along W: the output columns `lo .. hi` whose input index is
    /// simply `o * stride + k * dilation - pad` (inside the input, no mapping), and
    /// that index at `o = lo`.
    identity_w: Vec<(usize, usize, usize)>,
}

impl IndexTables {
    pub(crate) fn new(geo: &ConvGeometry) -> Result<Self> {
        let mut axes: [Vec<usize>; SPATIAL] = Default::default();
        for (a, table) in axes.iter_mut().enumerate() {
            let out_len = geo.output[a];
            *table = alloc_zeroed(geo.kernel[a].saturating_mul(out_len), "index tables")?;
            for k in 0..geo.kernel[a] {
                for o in 0..out_len {
                    // Sizes were validated to fit; compute in i128 so nothing wraps.
                    let padded = o as i128 * geo.stride[a] as i128
                        + k as i128 * geo.dilation[a] as i128
                        - geo.pad_lo[a] as i128;
                    let source = isize::try_from(padded)
                        .ok()
                        .and_then(|i| geo.padding_mode.source_index(i, geo.input[a]));
                    table[k * out_len + o] = source.unwrap_or(ZERO);
                }
            }
        }
        let (ow, stride) = (geo.output[2], geo.stride[2]);
        let identity_w = (0..geo.kernel[2])
            .map(|k| {
                let table = &axes[2][k * ow..(k + 1) * ow];
                let direct = |o: usize| {
                    let padded = (o * stride + k * geo.dilation[2]) as i128 - geo.pad_lo[2] as i128;
                    (0..geo.input[2] as i128).contains(&padded) && table[o] == padded as usize
                };
                let lo = (0..ow).find(|&o| direct(o)).unwrap_or(ow);
                let hi = (lo..ow).find(|&o| !direct(o)).unwrap_or(ow);
                (lo, hi, if lo < hi { table[lo] } else { 0 })
            })
            .collect();
        Ok(Self { axes, identity_w })
    }

    fn row(&self, axis: usize, k: usize, out_len: usize) -> &[usize] {
        &self.axes[axis][k * out_len..(k + 1) * out_len]
    }
}

/// Where the input values of one segment of positions come from.
pub(crate) enum Source<'t> {
    /// Every position reads a padded zero.
    Zeros,
    /// Position `r` reads input cell `first + r * step`.
    Strided { first: usize, step: usize },
    /// Position `r` reads `row_base + table[r]`, or zero where `table[r] == ZERO`.
    Mapped { row_base: usize, table: &'t [usize] },
}

impl Source<'_> {
    /// `out[r] += scale * input[r]` for the segment's `out.len()` positions.
    #[inline(always)]
    pub(crate) fn axpy_into<T: Element>(&self, x: &[T], scale: T, out: &mut [T]) {
        match *self {
            Source::Zeros => {}
            Source::Strided { first, step: 1 } => {
                let len = out.len();
                for (o, &v) in out.iter_mut().zip(&x[first..first + len]) {
                    *o += scale * v;
                }
            }
            _ => self.read(x, out.len(), |r, v| out[r] += scale * v),
        }
    }

    /// `input[r] += scale * values[r]`: the adjoint of [`Source::axpy_into`].
    #[inline(always)]
    pub(crate) fn axpy_from<T: Element>(&self, values: &[T], scale: T, x: &mut [T]) {
        match *self {
            Source::Zeros => {}
            Source::Strided { first, step: 1 } => {
                for (o, &v) in x[first..first + values.len()].iter_mut().zip(values) {
                    *o += scale * v;
                }
            }
            Source::Strided { first, step } => {
                for (r, &v) in values.iter().enumerate() {
                    x[first + r * step] += scale * v;
                }
            }
            Source::Mapped { row_base, table } => {
                for (&i, &v) in table.iter().zip(values) {
                    if i != ZERO {
                        x[row_base + i] += scale * v;
                    }
                }
            }
        }
    }

    /// `out[r] = input[r]` for the segment's `out.len()` positions (a contiguous
    /// destination, so the common strides copy whole vectors).
    #[inline(always)]
    pub(crate) fn copy_to<T: PlaneElem>(&self, x: &[T], out: &mut [T]) {
        let len = out.len();
        match *self {
            Source::Zeros => out.fill(T::zero()),
            Source::Strided { first, step: 1 } => T::copy_run(&x[first..first + len], out),
            Source::Strided { first, step: 2 } if len > 0 => {
                // The cell after the last one read, when the input has it, lets
                // the last block be a whole vector.
                let cells = &x[first..(first + 2 * len).min(x.len())];
                <T as PlaneElem>::copy_even(cells, out)
            }
            _ => self.read(x, len, |r, v| out[r] = v),
        }
    }

    /// `sum_r values[r] * input[r]`, in order.
    #[inline(always)]
    pub(crate) fn dot<T: Element>(&self, x: &[T], values: &[T]) -> T {
        let mut sum = T::zero();
        self.read(x, values.len(), |r, v| sum += values[r] * v);
        sum
    }

    /// Fill `out` with the segment's values (any destination stride).
    #[inline(always)]
    fn read<T: PlaneElem>(&self, x: &[T], len: usize, mut put: impl FnMut(usize, T)) {
        match *self {
            Source::Zeros => (0..len).for_each(|r| put(r, T::zero())),
            Source::Strided { first, step } => {
                if step == 1 {
                    x[first..first + len]
                        .iter()
                        .enumerate()
                        .for_each(|(r, &v)| put(r, v));
                } else {
                    (0..len).for_each(|r| put(r, x[first + r * step]));
                }
            }
            Source::Mapped { row_base, table } => {
                table[..len].iter().enumerate().for_each(|(r, &i)| {
                    put(
                        r,
                        if i == ZERO {
                            T::zero()
                        } else {
                            x[row_base + i]
                        },
                    )
                })
            }
        }
    }
}

/// Cut a tile into segments (one tap, consecutive positions of one output row, and
/// never crossing a multiple of `align`) and call `visit(tap, j, run, source)` for
/// each, in a fixed order.
#[inline(always)]
pub(crate) fn for_each_segment(
    geo: &ConvGeometry,
    tables: &IndexTables,
    p0: usize,
    len: usize,
    align: usize,
    visit: impl FnMut(usize, usize, usize, Source<'_>),
) {
    for_each_segment_of_taps(geo, tables, 0..geo.k_len(), p0, len, align, visit)
}

/// [`for_each_segment`] restricted to the taps in `taps`.
#[inline(always)]
pub(crate) fn for_each_segment_of_taps(
    geo: &ConvGeometry,
    tables: &IndexTables,
    taps: Range<usize>,
    p0: usize,
    len: usize,
    align: usize,
    mut visit: impl FnMut(usize, usize, usize, Source<'_>),
) {
    let [od, oh, ow] = geo.output;
    let [kd, kh, kw] = geo.kernel;
    let [_, ih, iw] = geo.input;
    let stride_w = geo.stride[2];
    let in_vol = geo.in_vol();
    let start = (p0 / (oh * ow), (p0 / ow) % oh, p0 % ow);
    let kvol = (kd * kh * kw).max(1);
    let channels = taps.start / kvol..taps.end.div_ceil(kvol).min(geo.cig());
    let mut tap = channels.start * kvol;
    for ci in channels {
        let channel_base = ci * in_vol;
        for kz in 0..kd {
            let tz = tables.row(0, kz, od);
            for ky in 0..kh {
                let ty = tables.row(1, ky, oh);
                for kx in 0..kw {
                    if !taps.contains(&tap) {
                        tap += 1;
                        continue;
                    }
                    let tx = tables.row(2, kx, ow);
                    let (lo, hi, first_lo) = tables.identity_w[kx];
                    let (mut oz, mut oy, mut ox) = start;
                    let mut j = 0;
                    while j < len {
                        let mut run = (ow - ox).min(len - j).min(align - j % align);
                        // Split at the borders of the directly-addressed columns so
                        // only the padded border goes through the index table.
                        if ox < lo {
                            run = run.min(lo - ox);
                        } else if ox < hi {
                            run = run.min(hi - ox);
                        }
                        let (iz, iy) = (tz[oz], ty[oy]);
                        let source = if iz == ZERO || iy == ZERO {
                            Source::Zeros
                        } else {
                            let row_base = channel_base + (iz * ih + iy) * iw;
                            if lo <= ox && ox + run <= hi {
                                Source::Strided {
                                    first: row_base + first_lo + (ox - lo) * stride_w,
                                    step: stride_w,
                                }
                            } else {
                                Source::Mapped {
                                    row_base,
                                    table: &tx[ox..ox + run],
                                }
                            }
                        };
                        visit(tap, j, run, source);
                        j += run;
                        ox += run;
                        if ox == ow {
                            ox = 0;
                            oy += 1;
                            if oy == oh {
                                oy = 0;
                                oz += 1;
                            }
                        }
                    }
                    tap += 1;
                }
            }
        }
    }
}

/// The rows `taps` of the column matrix of a tile (`taps.len() x len`, row-major,
/// row `t` at `(t - taps.start) * ld`, `ld >= len`) of one image-group `x_group`;
/// the columns `len..ld` of every row are zeroed.
pub(crate) fn gather_tap_rows<T: Element>(
    geo: &ConvGeometry,
    tables: &IndexTables,
    x_group: &[T],
    taps: Range<usize>,
    (p0, len, ld): (usize, usize, usize),
    dst: &mut [T],
) {
    if ld > len {
        for row in dst.chunks_exact_mut(ld).take(taps.len()) {
            row[len..].fill(T::zero());
        }
    }
    gather_tap_block(geo, tables, x_group, taps, (p0, len, ld), dst)
}

/// As [`gather_tap_rows`], writing only the `len` columns of each row from the
/// start of `dst` (which may start inside a row of a wider matrix: several
/// images' tiles side by side).
pub(crate) fn gather_tap_block<T: PlaneElem>(
    geo: &ConvGeometry,
    tables: &IndexTables,
    x_group: &[T],
    taps: Range<usize>,
    (p0, len, ld): (usize, usize, usize),
    dst: &mut [T],
) {
    dispatch!(
        gather_tap_rows_any,
        gather_tap_rows_avx512,
        gather_tap_rows_avx2,
        geo,
        tables,
        x_group,
        taps,
        (p0, len, ld),
        dst
    )
}

simd_twins! {
    gather_tap_rows_any => gather_tap_rows_avx512, gather_tap_rows_avx2,
    <T: PlaneElem>(
        geo: &ConvGeometry,
        tables: &IndexTables,
        x_group: &[T],
        taps: Range<usize>,
        tile: (usize, usize, usize),
        dst: &mut [T],
    )
}

#[inline(always)]
fn gather_tap_rows_any<T: PlaneElem>(
    geo: &ConvGeometry,
    tables: &IndexTables,
    x_group: &[T],
    taps: Range<usize>,
    (p0, len, ld): (usize, usize, usize),
    dst: &mut [T],
) {
    let first = taps.start;
    if geo.padding_mode == PaddingMode::Zeros {
        let step = geo.stride[2];
        let first_tap = taps.start;
        for_each_zero_padded_run(
            geo,
            tables,
            taps,
            (p0, len),
            #[inline(always)]
            |tap, j, run, body| {
                let seg = &mut dst[(tap - first_tap) * ld + j..][..run];
                match body {
                    Some((offset, count, first)) => {
                        let (left, rest) = seg.split_at_mut(offset);
                        let (middle, right) = rest.split_at_mut(count);
                        T::fill_zero(left);
                        Source::Strided { first, step }.copy_to(x_group, middle);
                        T::fill_zero(right);
                    }
                    None => T::fill_zero(seg),
                }
            },
        );
        return;
    }
    // Inlined so the copies are compiled with the caller's target features.
    for_each_segment_of_taps(
        geo,
        tables,
        taps,
        p0,
        len,
        len.max(1),
        #[inline(always)]
        |tap, j, run, source| {
            source.copy_to(x_group, &mut dst[(tap - first) * ld + j..][..run]);
        },
    );
}

/// For zero padding, without the generic segment walk: call
/// `visit(tap, j, run, body)` for each (tap, output row) piece of the tile
/// (positions `j .. j + run` of the tile), in tap then position order. `body` is
/// `None` when the piece reads only padding, else `(offset, count, first)`: the
/// positions `offset .. offset + count` of the piece read the input from cell
/// `first` at the layer's stride (the run of the per-tap identity columns of the
/// tables) and the others read padding.
#[inline(always)]
fn for_each_zero_padded_run(
    geo: &ConvGeometry,
    tables: &IndexTables,
    taps: Range<usize>,
    (p0, len): (usize, usize),
    mut visit: impl FnMut(usize, usize, usize, Option<(usize, usize, usize)>),
) {
    let [od, oh, ow] = geo.output;
    let [kd, kh, kw] = geo.kernel;
    let [_, ih, iw] = geo.input;
    let (stride, in_vol) = (geo.stride[2], geo.in_vol());
    let start = (p0 / (oh * ow), (p0 / ow) % oh, p0 % ow);
    for tap in taps {
        let (ci, k) = (tap / (kd * kh * kw), tap % (kd * kh * kw));
        let (kz, ky, kx) = (k / (kh * kw), (k / kw) % kh, k % kw);
        let (tz, ty) = (tables.row(0, kz, od), tables.row(1, ky, oh));
        let (lo, hi, first_lo) = tables.identity_w[kx];
        let (mut z, mut y, mut x) = start;
        let mut j = 0;
        while j < len {
            let run = (ow - x).min(len - j);
            let (iz, iy) = (tz[z], ty[y]);
            // The run's columns inside the input: a .. b (none when the run lies
            // wholly in the padding, e.g. left of `lo`).
            let a = lo.clamp(x, x + run);
            let b = hi.clamp(a, x + run);
            if iz == ZERO || iy == ZERO || a == b {
                visit(tap, j, run, None);
            } else {
                let first = ci * in_vol + (iz * ih + iy) * iw + first_lo + (a - lo) * stride;
                visit(tap, j, run, Some((a - x, b - a, first)));
            }
            j += run;
            x += run;
            if x == ow {
                x = 0;
                y += 1;
                if y == oh {
                    y = 0;
                    z += 1;
                }
            }
        }
    }
}

/// Add the column-matrix gradient of a tile (rows `taps`, `taps.len() x len`,
/// row-major) onto the input gradient `grad` of the taps' input channels of one
/// image-group (`taps` whole channels; `grad` starts at the first one); several
/// entries may land on one cell (overlapping windows, and
/// reflected/replicated/circular padding folding back). Entries are added tap
/// by tap, each in position order.
pub(crate) fn scatter_tile<T: Element>(
    geo: &ConvGeometry,
    tables: &IndexTables,
    col: &[T],
    taps: Range<usize>,
    tile: (usize, usize),
    grad: &mut [T],
) {
    dispatch!(
        scatter_tile_any,
        scatter_tile_avx512,
        scatter_tile_avx2,
        geo,
        tables,
        col,
        taps,
        tile,
        grad
    )
}

simd_twins! {
    scatter_tile_any => scatter_tile_avx512, scatter_tile_avx2,
    <T: Element>(
        geo: &ConvGeometry,
        tables: &IndexTables,
        col: &[T],
        taps: Range<usize>,
        tile: (usize, usize),
        grad: &mut [T],
    )
}

#[inline(always)]
fn scatter_tile_any<T: Element>(
    geo: &ConvGeometry,
    tables: &IndexTables,
    col: &[T],
    taps: Range<usize>,
    (p0, len): (usize, usize),
    grad: &mut [T],
) {
    // Cell offsets are within the group: `grad` starts `base` cells into it.
    let first_tap = taps.start;
    let base = first_tap / geo.kernel_vol().max(1) * geo.in_vol();
    // A scale of one is exact, so these are the plain fold-back.
    if geo.padding_mode == PaddingMode::Zeros {
        let step = geo.stride[2];
        for_each_zero_padded_run(
            geo,
            tables,
            taps,
            (p0, len),
            #[inline(always)]
            |tap, j, _, body| {
                if let Some((offset, count, first)) = body {
                    Source::Strided {
                        first: first - base,
                        step,
                    }
                    .axpy_from(
                        &col[(tap - first_tap) * len + j + offset..][..count],
                        T::one(),
                        grad,
                    );
                }
            },
        );
        return;
    }
    for_each_segment_of_taps(
        geo,
        tables,
        taps,
        p0,
        len,
        len.max(1),
        #[inline(always)]
        |tap, j, run, source| {
            let source = match source {
                Source::Zeros => Source::Zeros,
                Source::Strided { first, step } => Source::Strided {
                    first: first - base,
                    step,
                },
                Source::Mapped { row_base, table } => Source::Mapped {
                    row_base: row_base - base,
                    table,
                },
            };
            source.axpy_from(&col[(tap - first_tap) * len + j..][..run], T::one(), grad);
        },
    );
}
