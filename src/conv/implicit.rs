//! Implicit-GEMM forward for zero-padded 2-D and 3-D convolutions of any stride
//! and dilation: no column matrix is gathered. Each task copies a band of its
//! input once into zero-padded *phase planes* (the input's rows and columns split
//! by their remainder modulo the stride), laid out so that every tap's column-matrix
//! row is one contiguous run of a plane; the micro-kernel then reads those runs in
//! place through a table of row offsets.
//!
//! The GEMM runs over output positions at the planes' row pitch (the output width
//! plus the widest tap shift): the few positions past each output row are computed
//! and dropped. A tap `t` (dilated reach `t * dilation`) of an axis with stride `s`
//! reads phase `(t * dilation) % s` shifted by `(t * dilation) / s` cells, so output
//! `(oh, ow)` of tap `(kh, kw)` is cell `(oh + shift_h, ow + shift_w)` of its plane:
//! one offset per tap, the same for every output position.

use super::epilogue::Epilogue;
use super::geometry::ConvGeometry;
use super::weight_tasks::WeightTasks;
use crate::alloc::{alloc_uninit, alloc_zeroed};
use crate::element::Element;
use crate::error::Result;
use crate::kernels::bf16_gemm::{self, gemm_indirect_bf16, gemm_indirect_f16};
use crate::kernels::convert::{narrow_f16, round_bf16};
use crate::kernels::gemm::Block;
use crate::kernels::{
    copy_blocks, dispatch, dot_acc_len, gemm_indirect, simd_twins, AMatrix, Permute, RowTable,
    SharedMut, DC, DR, MR,
};
use crate::threads::{for_each_chunk_mut, for_each_task};
use std::mem::MaybeUninit;

/// What the plan needs to know of a layer's phase planes: the row pitch, the
/// planes per band (all input channels of a group), and the widest tap shifts
/// along H and W (rows and columns the planes hold beyond the output's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PhaseShape {
    pub pitch: usize,
    pub planes: usize,
    pub max_shift_h: usize,
    pub max_shift_w: usize,
}

impl PhaseShape {
    pub fn of(geo: &ConvGeometry) -> Self {
        let h = AxisPhases::new(geo.kernel[1], geo.dilation[1], geo.stride[1]);
        let w = AxisPhases::new(geo.kernel[2], geo.dilation[2], geo.stride[2]);
        PhaseShape {
            pitch: geo.output[2].saturating_add(w.max_shift),
            planes: geo
                .cig()
                .saturating_mul(geo.kernel[0])
                .saturating_mul(h.phases.len() * w.phases.len()),
            max_shift_h: h.max_shift,
            max_shift_w: w.max_shift,
        }
    }

    /// Elements of the planes of a band of `band` output rows.
    pub fn band_elements(&self, band: usize) -> usize {
        self.planes
            .saturating_mul(band.saturating_add(self.max_shift_h))
            .saturating_mul(self.pitch)
    }
}

/// One axis (H or W) seen through its stride.
struct AxisPhases {
    /// The distinct phases the taps read (`reach % stride`), ascending.
    phases: Vec<usize>,
    /// Per tap: the index of its phase in `phases`, and its shift in cells.
    slot: Vec<usize>,
    shift: Vec<usize>,
    max_shift: usize,
}

impl AxisPhases {
    fn new(kernel: usize, dilation: usize, stride: usize) -> Self {
        let stride = stride.max(1);
        let reach: Vec<usize> = (0..kernel).map(|t| t * dilation).collect();
        let mut phases: Vec<usize> = reach.iter().map(|r| r % stride).collect();
        phases.sort_unstable();
        phases.dedup();
        let slot = reach
            .iter()
            .map(|r| phases.binary_search(&(r % stride)).unwrap_or(0))
            .collect();
        let shift: Vec<usize> = reach.iter().map(|r| r / stride).collect();
        let max_shift = shift.iter().copied().max().unwrap_or(0);
        AxisPhases {
            phases,
            slot,
            shift,
            max_shift,
        }
    }
}

/// Where each tap's row lies in a task's buffer of phase planes (the same for
/// every task of a layer), for bands of `band` output rows.
struct Layout {
    h: AxisPhases,
    w: AxisPhases,
    /// Output rows per task (the last band of a plane may be shorter).
    band: usize,
    bands: usize,
    /// Row pitch of the planes and of the GEMM's positions.
    pitch: usize,
    plane_len: usize,
    planes: usize,
    /// Offset of column-matrix row `k` (input channel, kd, kh, kw) in the buffer.
    rows: RowTable,
}

impl Layout {
    fn new(geo: &ConvGeometry, band: usize) -> Self {
        let h = AxisPhases::new(geo.kernel[1], geo.dilation[1], geo.stride[1]);
        let w = AxisPhases::new(geo.kernel[2], geo.dilation[2], geo.stride[2]);
        let [kd, kh, kw] = geo.kernel;
        let out_h = geo.output[1];
        let pitch = geo.output[2] + w.max_shift;
        let per_channel = kd * h.phases.len() * w.phases.len();
        let planes = geo.cig() * per_channel;
        let band = band.clamp(1, out_h.max(1));
        let bands = out_h.div_ceil(band).max(1);
        let plane_len = (band + h.max_shift) * pitch;
        let (nh, nw) = (h.phases.len(), w.phases.len());
        let mut rows = Vec::with_capacity(geo.k_len());
        for ci in 0..geo.cig() {
            for d in 0..kd {
                for th in 0..kh {
                    for tw in 0..kw {
                        let plane = ((ci * kd + d) * nh + h.slot[th]) * nw + w.slot[tw];
                        rows.push(plane * plane_len + h.shift[th] * pitch + w.shift[tw]);
                    }
                }
            }
        }
        Layout {
            h,
            w,
            band,
            bands,
            pitch,
            plane_len,
            planes,
            rows: RowTable::new(rows),
        }
    }

    /// Elements of a task's buffer: the planes, then one micro-kernel panel of
    /// zeros that the last positions' whole-panel reads run into.
    fn buffer_len(&self, nr: usize) -> usize {
        self.planes * self.plane_len + nr
    }

    /// Fill the phase planes of output slice `od`, rows `h0 ..` of the whole input
    /// channels in `x_channels` (of one image and group; cells outside the input
    /// are 0) into the start of `buffer`.
    fn fill<E: PlaneElem>(
        &self,
        geo: &ConvGeometry,
        x_channels: &[E],
        od: usize,
        h0: usize,
        buffer: &mut [E],
    ) {
        dispatch!(
            fill_any,
            fill_avx512,
            fill_avx2,
            self,
            geo,
            x_channels,
            od,
            h0,
            buffer
        )
    }
}

simd_twins! {
    fill_any => fill_avx512, fill_avx2,
    <T: PlaneElem>(
        layout: &Layout,
        geo: &ConvGeometry,
        x_channels: &[T],
        od: usize,
        h0: usize,
        buffer: &mut [T],
    )
}

/// What filling phase planes (and gathering column tiles) needs of an element:
/// zero, and copies of runs,
/// of every other cell, and splits into even and odd cells. The float types use
/// their SIMD permutes; bfloat16 bits (`u16`) plain loops, which the compiler
/// vectorises inside `fill`'s SIMD twins.
pub(crate) trait PlaneElem: Copy + Send + Sync + 'static {
    fn zero() -> Self;
    fn fill_zero(out: &mut [Self]);
    fn copy_run(cells: &[Self], out: &mut [Self]);
    fn copy_even(cells: &[Self], out: &mut [Self]);
    fn split_even_odd(cells: &[Self], evens: &mut [Self], odds: &mut [Self]);
}

impl<T: Element> PlaneElem for T {
    #[inline(always)]
    fn zero() -> T {
        T::zero()
    }
    #[inline(always)]
    fn fill_zero(out: &mut [T]) {
        crate::kernels::fill_zero(out);
    }
    #[inline(always)]
    fn copy_run(cells: &[T], out: &mut [T]) {
        copy_blocks(cells, out);
    }
    #[inline(always)]
    fn copy_even(cells: &[T], out: &mut [T]) {
        <T as Permute>::copy_even(cells, out);
    }
    #[inline(always)]
    fn split_even_odd(cells: &[T], evens: &mut [T], odds: &mut [T]) {
        <T as Permute>::split_even_odd(cells, evens, odds);
    }
}

impl PlaneElem for u16 {
    #[inline(always)]
    fn zero() -> u16 {
        0
    }
    #[inline(always)]
    fn fill_zero(out: &mut [u16]) {
        out.fill(0);
    }
    #[inline(always)]
    fn copy_run(cells: &[u16], out: &mut [u16]) {
        let len = out.len();
        out.copy_from_slice(&cells[..len]);
    }
    #[inline(always)]
    fn copy_even(cells: &[u16], out: &mut [u16]) {
        for (k, o) in out.iter_mut().enumerate() {
            *o = cells[2 * k];
        }
    }
    #[inline(always)]
    fn split_even_odd(cells: &[u16], evens: &mut [u16], odds: &mut [u16]) {
        for (k, e) in evens.iter_mut().enumerate() {
            *e = cells[2 * k];
        }
        for (k, o) in odds.iter_mut().enumerate() {
            *o = cells[2 * k + 1];
        }
    }
}

#[inline(always)]
fn fill_any<T: PlaneElem>(
    layout: &Layout,
    geo: &ConvGeometry,
    x_channels: &[T],
    od: usize,
    h0: usize,
    buffer: &mut [T],
) {
    let [in_d, in_h, in_w] = geo.input;
    let [sd, sh, sw] = geo.stride;
    let (kd, pitch) = (geo.kernel[0], layout.pitch);
    let plane_vol = in_h * in_w;
    let pad_w = geo.pad_lo[2];
    // Columns c of phase pw whose input column c * sw + pw - pad lies inside.
    let column_range = |pw: usize| {
        let c_lo = pad_w.saturating_sub(pw).div_ceil(sw).min(pitch);
        let c_hi = (in_w + pad_w)
            .saturating_sub(pw)
            .div_ceil(sw)
            .clamp(c_lo, pitch);
        (c_lo, c_hi)
    };
    // Stride 2 with both column phases: the two planes are filled together.
    let pairs = sw == 2 && layout.w.phases == [0, 1];
    let columns = [column_range(0), column_range(1)];
    let mut planes = buffer.chunks_exact_mut(layout.plane_len);
    for ci in 0..x_channels.len() / (in_d * plane_vol).max(1) {
        for d in 0..kd {
            // Input slice of this (od, kd), if inside the input.
            let id = (od * sd + d * geo.dilation[0])
                .checked_sub(geo.pad_lo[0])
                .filter(|&id| id < in_d);
            for &ph in &layout.h.phases {
                if pairs {
                    let (Some(p0), Some(p1)) = (planes.next(), planes.next()) else {
                        return;
                    };
                    let Some(id) = id else {
                        p0.fill(T::zero());
                        p1.fill(T::zero());
                        continue;
                    };
                    let slice = &x_channels[(ci * in_d + id) * plane_vol..][..plane_vol];
                    // Phase pw reads input columns 2c + pw - pad: the even ones
                    // when pw and pad have the same parity. Each plane's first
                    // column inside the input reads column 0 (even) or 1 (odd),
                    // so one split of the input row fills both.
                    let ((even, (e_lo, e_hi)), (odd, (o_lo, o_hi))) = if pad_w.is_multiple_of(2) {
                        ((p0, columns[0]), (p1, columns[1]))
                    } else {
                        ((p1, columns[1]), (p0, columns[0]))
                    };
                    let rows = even
                        .chunks_exact_mut(pitch)
                        .zip(odd.chunks_exact_mut(pitch));
                    for (a, (row_e, row_o)) in rows.enumerate() {
                        let ih = ((h0 + a) * sh + ph)
                            .checked_sub(geo.pad_lo[1])
                            .filter(|&ih| ih < in_h);
                        let Some(ih) = ih else {
                            row_e.fill(T::zero());
                            row_o.fill(T::zero());
                            continue;
                        };
                        row_e[..e_lo].fill(T::zero());
                        row_e[e_hi..].fill(T::zero());
                        row_o[..o_lo].fill(T::zero());
                        row_o[o_hi..].fill(T::zero());
                        <T as PlaneElem>::split_even_odd(
                            &slice[ih * in_w..][..in_w],
                            &mut row_e[e_lo..e_hi],
                            &mut row_o[o_lo..o_hi],
                        );
                    }
                    continue;
                }
                for &pw in &layout.w.phases {
                    let Some(plane) = planes.next() else { return };
                    let Some(id) = id else {
                        plane.fill(T::zero());
                        continue;
                    };
                    let slice = &x_channels[(ci * in_d + id) * plane_vol..][..plane_vol];
                    let (c_lo, c_hi) = column_range(pw);
                    for (a, row) in plane.chunks_exact_mut(pitch).enumerate() {
                        let ih = ((h0 + a) * sh + ph)
                            .checked_sub(geo.pad_lo[1])
                            .filter(|&ih| ih < in_h);
                        let Some(ih) = ih.filter(|_| c_lo < c_hi) else {
                            // Outside the input (or no column of this phase is in).
                            row.fill(T::zero());
                            continue;
                        };
                        row[..c_lo].fill(T::zero());
                        row[c_hi..].fill(T::zero());
                        let first = ih * in_w + c_lo * sw + pw - pad_w;
                        let out = &mut row[c_lo..c_hi];
                        let cells = &slice[first..];
                        match sw {
                            1 => T::copy_run(cells, out),
                            2 => <T as PlaneElem>::copy_even(cells, out),
                            _ => {
                                for (c, o) in out.iter_mut().enumerate() {
                                    *o = cells[c * sw];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// How the implicit-GEMM forward is cut and ordered: `band` output rows per task,
/// `channels` output channels per task (a multiple of the micro-kernel's rows;
/// each chunk of a band fills its phase planes again), and whether the GEMM runs
/// row panels outermost (the output written as `MR` long streams, B panels
/// re-read from L2) instead of column panels outermost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bands {
    pub band: usize,
    pub channels: usize,
    pub rows_outer: bool,
}

/// `out = epilogue(conv(x, w) + bias)` through the implicit GEMM; the filters `w`
/// are the A operand, read in place (`W[g]` is `c_out / groups` rows of `k_len`). Every
/// element of `out` is written (once).
pub(crate) fn forward<T: Element>(
    geo: &ConvGeometry,
    bands: Bands,
    x: &[T],
    w: &[T],
    (bias, epilogue): (Option<&[T]>, &Epilogue<'_, T>),
    out: &mut [MaybeUninit<T>],
) -> Result<()> {
    let rows_outer = bands.rows_outer;
    let gemm = |op: TaskGemm<'_, T, T, T>, store: &mut dyn FnMut(&Block<'_, T>)| {
        let a = AMatrix::Rows(op.a, op.k);
        gemm_indirect(
            op.k, a, op.rows, op.b, op.table, op.cols, op.acc, rows_outer, store,
        );
    };
    let emit = |dst: &mut [MaybeUninit<T>], src: &[T], b: T, at: usize, saved: &mut Vec<T>| {
        // SAFETY: `out` is initialised whenever the epilogue reads it (run_forward).
        unsafe { epilogue.save_uninit(dst, saved) };
        dst.iter_mut().zip(src).for_each(|(d, &v)| {
            d.write(v + b);
        });
        // SAFETY: every element of `dst` was just written.
        unsafe { epilogue.finish_uninit(at, dst, saved) };
    };
    forward_with(geo, bands, (x, w, T::NR), bias, out, gemm, emit)
}

/// [`forward`] of bfloat16 `x` and `w` (their bits) on the `vdpbf16ps` kernel:
/// each output is the float32 sum plus bias, through the epilogue (which must
/// not read `out`: no residual in it), rounded once into bfloat16 `out`. Needs
/// [`bf16_gemm::available`].
pub(crate) fn forward_bf16(
    geo: &ConvGeometry,
    bands: Bands,
    x: &[u16],
    w: &[u16],
    (bias, epilogue): (Option<&[f32]>, &Epilogue<'_, f32>),
    out: &mut [MaybeUninit<u16>],
) -> Result<()> {
    debug_assert!(!epilogue.reads_out());
    let rows_outer = bands.rows_outer;
    let gemm = |op: TaskGemm<'_, u16, u16, f32>, store: &mut dyn FnMut(&Block<'_, f32>)| {
        let a = (op.a, op.k);
        gemm_indirect_bf16(
            op.k,
            a,
            op.rows,
            (op.b, op.table),
            op.cols,
            op.acc,
            rows_outer,
            store,
        );
    };
    // Runs are at most a tile wide: rounded inline (a dispatched call per run
    // would cost more than the run).
    let emit =
        |dst: &mut [MaybeUninit<u16>], src: &[f32], b: f32, at: usize, row: &mut Vec<f32>| {
            if epilogue.is_none() {
                for (d, &v) in dst.iter_mut().zip(src) {
                    d.write(round_bf16(v + b));
                }
                return;
            }
            row.clear();
            row.extend(src.iter().map(|&v| v + b));
            epilogue.finish(at, row, &[]);
            for (d, &v) in dst.iter_mut().zip(row.iter()) {
                d.write(round_bf16(v));
            }
        };
    forward_with(geo, bands, (x, w, bf16_gemm::NRB), bias, out, gemm, emit)
}

/// [`forward`] of float16 `x` (its bits) with float32 `w` on the AVX-512 kernel
/// that widens the float16 planes in registers: the float32 path's sums
/// exactly, rounded once into float16 `out` in the store. Needs
/// [`bf16_gemm::f16_available`].
pub(crate) fn forward_f16(
    geo: &ConvGeometry,
    bands: Bands,
    x: &[u16],
    w: &[f32],
    (bias, epilogue): (Option<&[f32]>, &Epilogue<'_, f32>),
    out: &mut [MaybeUninit<u16>],
) -> Result<()> {
    debug_assert!(!epilogue.reads_out());
    let rows_outer = bands.rows_outer;
    let gemm = |op: TaskGemm<'_, f32, u16, f32>, store: &mut dyn FnMut(&Block<'_, f32>)| {
        let a = (op.a, op.k);
        gemm_indirect_f16(
            op.k,
            a,
            op.rows,
            (op.b, op.table),
            op.cols,
            op.acc,
            rows_outer,
            store,
        );
    };
    let emit =
        |dst: &mut [MaybeUninit<u16>], src: &[f32], b: f32, at: usize, row: &mut Vec<f32>| {
            row.clear();
            row.extend(src.iter().map(|&v| v + b));
            epilogue.finish(at, row, &[]);
            narrow_f16(row, dst);
        };
    forward_with(geo, bands, (x, w, bf16_gemm::NRF), bias, out, gemm, emit)
}

/// The operands of one task's GEMM: `rows` filter rows of `k` in `a`, the phase
/// planes `b` with their row table, `cols` positions, the micro-tile `acc`.
struct TaskGemm<'a, A, E, T> {
    k: usize,
    a: &'a [A],
    rows: usize,
    b: &'a [E],
    table: &'a RowTable,
    cols: usize,
    acc: &'a mut [T],
}

/// The task loop of [`forward`] over planes of `E` (`x` and `w` in `E`, tiles of
/// `nr` columns), sums in `T`, output in `O`: `gemm(operands, store)` multiplies
/// one task's filters by its planes and hands each block to `store`, and
/// `emit(dst, sums, bias, at, scratch)` writes a run of sums (output position `at`)
/// into its place `dst` of the output.
#[allow(clippy::too_many_arguments)]
fn forward_with<T: Element, A: Sync, E: PlaneElem, O: Send>(
    geo: &ConvGeometry,
    bands: Bands,
    (x, w, nr): (&[E], &[A], usize),
    bias: Option<&[T]>,
    out: &mut [MaybeUninit<O>],
    gemm: impl Fn(TaskGemm<'_, A, E, T>, &mut dyn FnMut(&Block<'_, T>)) + Sync,
    emit: impl Fn(&mut [MaybeUninit<O>], &[T], T, usize, &mut Vec<T>) + Sync,
) -> Result<()> {
    let layout = Layout::new(geo, bands.band);
    let (k_len, cig, cog) = (geo.k_len(), geo.cig(), geo.cog());
    let [out_d, out_h, out_w] = geo.output;
    let (p_len, in_vol, pitch) = (geo.out_vol(), geo.in_vol(), layout.pitch);
    let buffer_len = layout.buffer_len(nr);
    // Checked once here, so the workers' buffers cannot fail to allocate.
    drop(alloc_uninit::<E>(buffer_len, "implicit GEMM planes")?);
    let init = || {
        (
            vec![E::zero(); buffer_len],
            vec![T::zero(); MR * nr],
            Vec::new(),
        )
    };
    let out_shared = SharedMut::new(out);
    let channels = bands.channels.clamp(1, cog.max(1));
    let chunks = cog.div_ceil(channels).max(1);
    let tasks = geo.n * geo.groups * out_d * layout.bands * chunks;
    for_each_task(tasks, geo.work(), init, |(buffer, acc, saved), task| {
        let (task, chunk) = (task / chunks, task % chunks);
        let band_index = task % layout.bands;
        let od = (task / layout.bands) % out_d;
        let image_group = task / (layout.bands * out_d);
        let (n, g) = (image_group / geo.groups, image_group % geo.groups);
        let h0 = band_index * layout.band;
        let rows_here = layout.band.min(out_h - h0);
        let x_group = &x[(n * geo.c_in + g * cig) * in_vol..][..cig * in_vol];
        layout.fill(geo, x_group, od, h0, buffer);
        let cols = (rows_here - 1) * pitch + out_w;
        // The chunk's rows of W[g]: whole A panels from output channel c0.
        let c0 = chunk * channels;
        let rows = channels.min(cog - c0);
        let operands = TaskGemm {
            k: k_len,
            a: &w[(g * cog + c0) * k_len..][..rows * k_len],
            rows,
            b: buffer,
            table: &layout.rows,
            cols,
            acc,
        };
        gemm(operands, &mut |blk| {
            for r in 0..blk.rows {
                let channel = g * cog + c0 + blk.row0 + r;
                let values = blk.row(r);
                let plane_at = (n * geo.c_out + channel) * p_len + od * out_h * out_w;
                // Positions col0 .. col0 + cols, one output row (of `pitch`) at a time.
                let end = blk.col0 + blk.cols;
                let mut q = blk.col0;
                while q < end {
                    let (row, ow) = (q / pitch, q % pitch);
                    let row_end = end.min((row + 1) * pitch);
                    let valid_end = row_end.min(row * pitch + out_w);
                    if q < valid_end {
                        let len = valid_end - q;
                        let at = plane_at + (h0 + row) * out_w + ow;
                        // SAFETY: task (n, g, od, band, chunk) is the only one writing
                        // output rows h0 .. h0 + rows_here of slice od of image n in
                        // the chunk's channels of group g.
                        let dst = unsafe { out_shared.range(at, len) };
                        let src = &values[q - blk.col0..][..len];
                        let b = bias.map_or(T::zero(), |b| b[channel]);
                        emit(dst, src, b, at, saved);
                    }
                    q = row_end;
                }
            }
        });
    })
}

/// How the phase-plane weight gradient is cut: `band` output rows per chunk
/// (image, group, slice, band), `chunks_per_wave` chunks prepared at once, and the
/// tasks that add each wave to their lane sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waves {
    pub band: usize,
    pub chunks_per_wave: usize,
    pub tasks: WeightTasks,
}

/// `grad_w = sum_n grad_out[n] . col(x[n])^T` as dot products of contiguous rows
/// with no gather: the input comes as the forward's phase planes (each tap's row a
/// run of a plane) and `grad_out` as rows at the planes' pitch, zero past each
/// output row (so the dropped positions add nothing). The planes of a *wave* of
/// (image, group, slice, band) chunks are prepared in parallel, then every task
/// (a block of output channels x taps of a group) adds the wave's chunks to its
/// lane sums in chunk order: the same order for any thread count.
pub(crate) fn backward_weight<T: Element>(
    geo: &ConvGeometry,
    waves: &Waves,
    grad_out: &[T],
    x: &[T],
    grad_w: &mut [T],
) -> Result<()> {
    let layout = Layout::new(geo, waves.band);
    let (cig, cog) = (geo.cig(), geo.cog());
    let [out_d, out_h, out_w] = geo.output;
    let (p_len, in_vol, pitch, band) = (geo.out_vol(), geo.in_vol(), layout.pitch, layout.band);
    let planes_len = layout.planes * layout.plane_len;
    let chunk_len = planes_len + cog * band * pitch;
    let chunks = geo.n * geo.groups * out_d * layout.bands;
    let per_wave = waves.chunks_per_wave.clamp(1, chunks.max(1));
    let mut wave = alloc_zeroed::<T>(per_wave * chunk_len, "weight-gradient planes")?;
    let shape = &waves.tasks;
    let (tasks, sums_len) = (shape.tasks(geo), shape.sums_len::<T>());
    let mut sums = alloc_zeroed::<T>(tasks * sums_len, "weight-gradient sums")?;
    // Chunk `c` is (image, group, output slice, band of output rows), in order.
    let locate = |c: usize| {
        let (band_index, od) = (c % layout.bands, (c / layout.bands) % out_d);
        let image_group = c / (layout.bands * out_d);
        let h0 = band_index * band;
        (
            image_group / geo.groups,
            image_group % geo.groups,
            od,
            h0,
            band.min(out_h - h0),
        )
    };
    let block = dot_acc_len::<T>();
    for first in (0..chunks).step_by(per_wave) {
        let count = per_wave.min(chunks - first);
        // Pieces of the wave filled in parallel: the planes of one input channel,
        // or the padded rows of one output channel, of one chunk.
        let pieces = cig + cog;
        let channel_len = planes_len / cig.max(1);
        let shared = SharedMut::new(&mut wave[..count * chunk_len]);
        let fill_work = count.saturating_mul(chunk_len);
        for_each_task(
            count * pieces,
            fill_work,
            || (),
            |_, piece| {
                let (i, part) = (piece / pieces, piece % pieces);
                let (n, g, od, h0, rows_here) = locate(first + i);
                if part < cig {
                    let x_channel = &x[(n * geo.c_in + g * cig + part) * in_vol..][..in_vol];
                    // SAFETY: piece (i, part) is the only one writing channel `part`'s
                    // planes of chunk i.
                    let planes =
                        unsafe { shared.range(i * chunk_len + part * channel_len, channel_len) };
                    layout.fill(geo, x_channel, od, h0, planes);
                    return;
                }
                let co = part - cig;
                let gy = &grad_out[(n * geo.c_out + g * cog + co) * p_len + od * out_h * out_w..];
                // SAFETY: piece (i, part) is the only one writing output channel co's
                // rows of chunk i.
                let channel = unsafe {
                    shared.range(i * chunk_len + planes_len + co * band * pitch, band * pitch)
                };
                for (j, row) in channel.chunks_exact_mut(pitch).enumerate() {
                    if j < rows_here {
                        copy_blocks(&gy[(h0 + j) * out_w..][..out_w], &mut row[..out_w]);
                        row[out_w..].fill(T::zero());
                    } else {
                        row.fill(T::zero());
                    }
                }
            },
        )?;
        let wave = &wave[..];
        let work = geo.work() / chunks.max(1) * count;
        for_each_chunk_mut(
            &mut sums,
            sums_len,
            work,
            || (),
            |_, task, task_sums| {
                let (g, rows, taps) = shape.task(geo, task);
                let tap_blocks = taps.len().div_ceil(DC);
                for i in 0..count {
                    let (_, chunk_group, _, _, rows_here) = locate(first + i);
                    if chunk_group != g {
                        continue;
                    }
                    let len = (rows_here - 1) * pitch + out_w;
                    let (planes, gy) = wave[i * chunk_len..][..chunk_len].split_at(planes_len);
                    for (bi, r0) in rows.clone().step_by(DR).enumerate() {
                        // Rows past the end repeat the last one; their sums are dropped.
                        let a: [&[T]; DR] = std::array::from_fn(|r| {
                            let co = (r0 + r).min(rows.end - 1);
                            &gy[co * band * pitch..][..len]
                        });
                        for (bj, t0) in (0..taps.len()).step_by(DC).enumerate() {
                            let b: [&[T]; DC] = std::array::from_fn(|c| {
                                let tap = taps.start + (t0 + c).min(taps.len() - 1);
                                &planes[layout.rows.rows()[tap]..][..len]
                            });
                            let acc = &mut task_sums[(bi * tap_blocks + bj) * block..][..block];
                            T::dot_block(len, a, b, acc);
                        }
                    }
                }
            },
        )?;
    }
    let shared = SharedMut::new(grad_w);
    for (task, task_sums) in sums.chunks_exact(sums_len.max(1)).enumerate().take(tasks) {
        // SAFETY: the tasks are written one after another on this thread.
        unsafe { shape.write_task(geo, task, task_sums, &shared) };
    }
    Ok(())
}
