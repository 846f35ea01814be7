//! Row kernels for depthwise-style convolutions (at most two output channels per
//! group, e.g. depthwise layers and the input gradient of a first layer; zero
//! padding, unit stride along the last axis).
//!
//! Each worker copies the input plane it works on into rows padded with zeros
//! along the last axis, so every output block of a row reads whole vectors at a
//! constant offset per tap: a block of outputs sums all its taps in registers and
//! is stored once, with no index tables, no clipping and no per-segment dispatch.
//! Rows along the leading axes that fall into the padding are skipped. The
//! per-plane loops are compiled twice (plain and AVX-512).
//!
//! Every output sums the bias, then the taps in (input channel, kernel row, kernel
//! column) order;
//! the weight gradient keeps vector-wide partial sums per tap over a whole output
//! channel (one task per channel, fixed order) and adds them up at the end.

use super::epilogue::{self, Epilogue};
use super::geometry::ConvGeometry;
use crate::element::Element;
use crate::error::Result;
use crate::kernels::{dispatch, simd_twins};
use crate::threads::for_each_chunk_mut;
use std::mem::MaybeUninit;

/// Output columns summed together in registers, and partial sums per tap of the
/// weight gradient.
const BLOCK: usize = 16;

/// Elements of the zero-padded copy of one input plane the row kernels read:
/// `W_out + (k_w - 1) * dilation_w` columns for each of the plane's `D * H` rows
/// (`None` on overflow).
pub(crate) fn padded_plane_len(geo: &ConvGeometry) -> Option<usize> {
    let [_, _, ow] = geo.output;
    let width = (geo.kernel[2].saturating_sub(1))
        .checked_mul(geo.dilation[2])
        .and_then(|reach| reach.checked_add(ow));
    width.and_then(|w| w.checked_mul(geo.input[0] * geo.input[1]))
}

/// The input coordinate read by output coordinate `o` and tap `k` along axis `a`,
/// if it lies inside the input.
fn source(geo: &ConvGeometry, a: usize, o: usize, k: usize) -> Option<usize> {
    (o * geo.stride[a] + k * geo.dilation[a])
        .checked_sub(geo.pad_lo[a])
        .filter(|&i| i < geo.input[a])
}

/// One (output row, kernel row) pair whose input row exists.
#[derive(Clone, Copy)]
struct RowPair {
    /// The first tap of the kernel row.
    tap: usize,
    /// The input row (flattened over `(D, H)`).
    x_row: usize,
    /// The output row (flattened over `(D, H)`).
    row: usize,
}

/// What every plane of one problem shares.
struct Plan {
    /// Every [`RowPair`], in output-row then tap order.
    pairs: Vec<RowPair>,
    /// Padded row length: the columns the outputs of a row read,
    /// `W_out + (k_w - 1) * dilation_w`; input column `j` sits at `j + pad`.
    width: usize,
    pad: usize,
    /// Input rows per plane.
    rows: usize,
    /// Output rows (flattened over `(D, H)`) that no input row reaches: they are
    /// the bias alone.
    empty_rows: Vec<usize>,
    /// Narrow rows: the whole-plane layout of [`Flat`] instead of row blocks.
    flat: Option<Flat>,
    /// With `flat`: where each tap `(ky, kx)` reads the phases (`Flat::tap`).
    tap_offsets: Vec<usize>,
}

/// Small planes of 2-D problems (output rows shorter than two blocks, e.g. 7x7,
/// 14x14 and 28x28 layers), at any stride: the input plane split into its
/// `stride_h x stride_w` phases, each zero-padded on all four sides at a common
/// row pitch, so that every tap is one multiply-add over the contiguous
/// `oh * pitch` outputs of the whole plane at a constant offset into one phase
/// (the `pitch - ow` extra columns of each row are computed and dropped). Row
/// blocks would run their scalar tail on every row of such planes, and strided
/// layers would go tap by tap through index tables.
#[derive(Clone, Copy)]
struct Flat {
    /// Rows of each phase, `oh + (kh - 1) * dilation_h / stride_h`.
    rows: usize,
    /// Row pitch of each phase, `ow + (kw - 1) * dilation_w / stride_w`.
    pitch: usize,
    /// Elements of one phase, with the slack the last taps read past it.
    phase_len: usize,
    /// Outputs computed per plane, `oh * pitch` rounded up to whole blocks.
    len: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    /// Padding above and left of the input.
    pad: [usize; 2],
    /// Output columns.
    ow: usize,
}

/// Whether the whole-plane layout runs `geo` (see [`Flat`]).
pub(crate) fn flat_applies(geo: &ConvGeometry) -> bool {
    Flat::new(geo).is_some()
}

impl Flat {
    /// The input plane (`ih` rows of `iw`) from its phases: the adjoint of
    /// [`Flat::fill`].
    fn read_back<T: Element>(&self, phases: &[T], ih: usize, iw: usize, plane: &mut [T]) {
        let [sh, sw] = self.stride;
        let [top, left] = self.pad;
        for (iy, row) in plane.chunks_exact_mut(iw.max(1)).take(ih).enumerate() {
            let (py, r) = ((iy + top) % sh, (iy + top) / sh);
            for (ix, value) in row.iter_mut().enumerate() {
                let (px, c) = ((ix + left) % sw, (ix + left) / sw);
                *value = if r < self.rows && c < self.pitch {
                    phases[(py * sw + px) * self.phase_len + r * self.pitch + c]
                } else {
                    T::zero()
                };
            }
        }
    }

    /// A `grad_out` plane (`oh` rows of `ow`) at the row pitch, in `grad` (whose
    /// columns past `ow` stay zero: nothing else writes them).
    #[inline(always)]
    fn grad_rows<T: Element>(&self, g_plane: &[T], grad: &mut [T]) {
        for (dst, src) in grad
            .chunks_exact_mut(self.pitch)
            .zip(g_plane.chunks_exact(self.ow))
        {
            dst[..self.ow].copy_from_slice(src);
        }
    }

    fn new(geo: &ConvGeometry) -> Option<Self> {
        let [_, oh, ow] = geo.output;
        if !geo.is_planar()
            || ow >= 2 * BLOCK
            || geo.padding_mode != crate::geometry::PaddingMode::Zeros
        {
            return None;
        }
        let (sh, sw) = (geo.stride[1], geo.stride[2]);
        let reach_h = (geo.kernel[1] - 1).checked_mul(geo.dilation[1])? / sh;
        let reach_w = (geo.kernel[2] - 1).checked_mul(geo.dilation[2])? / sw;
        let rows = oh.checked_add(reach_h)?;
        let pitch = ow.checked_add(reach_w)?;
        // One row of slack past the last row (the last taps of a row read into
        // the next) and a block (the outputs are computed in whole blocks).
        let phase_len = rows
            .checked_add(1)?
            .checked_mul(pitch)?
            .checked_add(BLOCK)?;
        // Small planes only: the phases stay in L1.
        (phase_len.checked_mul(sh.checked_mul(sw)?)? <= 1 << 13).then_some(Flat {
            rows,
            pitch,
            phase_len,
            len: (oh * pitch).next_multiple_of(BLOCK),
            stride: [sh, sw],
            dilation: [geo.dilation[1], geo.dilation[2]],
            pad: [geo.pad_lo[1], geo.pad_lo[2]],
            ow,
        })
    }

    fn buffer_len(&self) -> usize {
        self.phase_len * self.stride[0] * self.stride[1]
    }

    /// Where tap `(ky, kx)` reads the phases: padded input row `r * stride_h +
    /// ky * dilation_h` is row `r + ky * dilation_h / stride_h` of phase row
    /// `ky * dilation_h % stride_h`, and likewise for columns.
    #[inline(always)]
    fn tap(&self, ky: usize, kx: usize) -> usize {
        let (y, x) = (ky * self.dilation[0], kx * self.dilation[1]);
        let [sh, sw] = self.stride;
        let phase = (y % sh) * sw + x % sw;
        phase * self.phase_len + (y / sh) * self.pitch + x / sw
    }

    /// The phases of `x_plane` (`ih` rows of `iw`), zero outside the input.
    /// `buffer` must have been zero when first filled and written only by this
    /// function since: the cells outside the input are the same for every plane,
    /// so their zeros stay (a worker keeps its buffer for all its planes).
    #[inline(always)]
    fn fill<T: Element>(&self, x_plane: &[T], ih: usize, iw: usize, buffer: &mut [T]) {
        let [sh, sw] = self.stride;
        let [top, left] = self.pad;
        for py in 0..sh {
            for px in 0..sw {
                let phase = &mut buffer[(py * sw + px) * self.phase_len..][..self.phase_len];
                // Phase columns c with left <= c * sw + px < left + iw.
                let c_lo = left.saturating_sub(px).div_ceil(sw);
                let c_hi = (left + iw).saturating_sub(px).div_ceil(sw).min(self.pitch);
                for (r, dst) in phase
                    .chunks_exact_mut(self.pitch)
                    .take(self.rows)
                    .enumerate()
                {
                    let Some(iy) = (r * sh + py).checked_sub(top).filter(|&iy| iy < ih) else {
                        continue;
                    };
                    let src = &x_plane[iy * iw..][..iw];
                    if c_lo >= c_hi {
                        continue;
                    }
                    // Input column of phase column c_lo.
                    let first = c_lo * sw + px - left;
                    if sw == 1 {
                        dst[c_lo..c_hi].copy_from_slice(&src[first..first + (c_hi - c_lo)]);
                    } else {
                        for (d, &v) in dst[c_lo..c_hi]
                            .iter_mut()
                            .zip(src[first..].iter().step_by(sw))
                        {
                            *d = v;
                        }
                    }
                }
            }
        }
    }
}

impl Plan {
    fn new(geo: &ConvGeometry) -> Self {
        let [od, oh, ow] = geo.output;
        let [kd, kh, kw] = geo.kernel;
        let [id, ih, _] = geo.input;
        let mut pairs = Vec::new();
        for z in 0..od {
            for y in 0..oh {
                for kz in 0..kd {
                    let Some(iz) = source(geo, 0, z, kz) else {
                        continue;
                    };
                    for ky in 0..kh {
                        if let Some(iy) = source(geo, 1, y, ky) {
                            pairs.push(RowPair {
                                tap: (kz * kh + ky) * kw,
                                x_row: iz * ih + iy,
                                row: z * oh + y,
                            });
                        }
                    }
                }
            }
        }
        let mut reached = vec![false; od * oh];
        for pair in &pairs {
            reached[pair.row] = true;
        }
        let empty_rows = (0..od * oh).filter(|&row| !reached[row]).collect();
        let width = ow + (kw - 1) * geo.dilation[2];
        Self {
            pairs,
            width,
            pad: geo.pad_lo[2],
            rows: id * ih,
            empty_rows,
            flat: Flat::new(geo),
            tap_offsets: Flat::new(geo)
                .map(|flat| {
                    let (kh, kw) = (geo.kernel[1], geo.kernel[2]);
                    (0..kh * kw).map(|t| flat.tap(t / kw, t % kw)).collect()
                })
                .unwrap_or_default(),
        }
    }

    fn padded_len(&self) -> usize {
        match self.flat {
            Some(flat) => flat.buffer_len(),
            None => self.rows * self.width,
        }
    }

    /// A forward worker's buffers: the padded plane, then the sums of one row
    /// (of the whole plane when flat).
    fn workspace_len(&self, ow: usize) -> usize {
        self.padded_len() + self.flat.map_or(ow, |flat| flat.len)
    }

    /// Copy the rows of `x_plane` into `padded` with zeros around them.
    #[inline(always)]
    fn pad_rows<T: Element>(&self, x_plane: &[T], iw: usize, padded: &mut [T]) {
        let pad = self.pad.min(self.width);
        let cols = iw.min(self.width - pad);
        for (dst, src) in padded
            .chunks_exact_mut(self.width)
            .zip(x_plane.chunks_exact(iw.max(1)))
            .take(self.rows)
        {
            dst[..pad].fill(T::zero());
            dst[pad..pad + cols].copy_from_slice(&src[..cols]);
            dst[pad + cols..].fill(T::zero());
        }
    }
}

/// `out = epilogue(conv(x, w) + bias)`, one task per output plane (every element
/// of `out` is written).
pub(crate) fn forward<T: Element>(
    geo: &ConvGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    epilogue: &Epilogue<'_, T>,
    out: &mut [MaybeUninit<T>],
) -> Result<()> {
    let plan = Plan::new(geo);
    let p_len = geo.out_vol();
    let init = || vec![T::zero(); plan.workspace_len(geo.output[2])];
    epilogue::planes(
        epilogue,
        out,
        p_len,
        geo.work(),
        init,
        |padded, plane_index, plane| {
            dispatch!(
                forward_plane,
                forward_plane_avx512,
                forward_plane_avx2,
                geo,
                &plan,
                x,
                w,
                bias,
                plane_index,
                padded,
                plane
            )
        },
    )
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_plane<T: Element>(
    geo: &ConvGeometry,
    plan: &Plan,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    plane_index: usize,
    workspace: &mut [T],
    plane: &mut [T],
) {
    let (kvol, in_vol, ow, cig) = (geo.kernel_vol(), geo.in_vol(), geo.output[2], geo.cig());
    let (n, channel) = (plane_index / geo.c_out, plane_index % geo.c_out);
    let group = channel / geo.cog();
    let (padded, before) = workspace.split_at_mut(plan.padded_len());
    if let Some(flat) = plan.flat {
        // The same sums in the same order as the row blocks: the bias, then every
        // tap of every input channel (a tap on a padding row adds a zero).
        let sums = &mut before[..flat.len];
        sums.fill(bias.map_or(T::zero(), |b| b[channel]));
        for ci in 0..cig {
            let x_plane = &x[(n * geo.c_in + group * cig + ci) * in_vol..][..in_vol];
            flat.fill(x_plane, geo.input[1], geo.input[2], padded);
            let taps = &w[(channel * cig + ci) * kvol..][..kvol];
            // A block of outputs sums every tap in registers, then is stored once.
            for (b, block) in sums.chunks_exact_mut(BLOCK).enumerate() {
                let mut acc = [T::zero(); BLOCK];
                acc.copy_from_slice(block);
                for (&weight, &offset) in taps.iter().zip(&plan.tap_offsets) {
                    let src = &padded[offset + b * BLOCK..][..BLOCK];
                    for i in 0..BLOCK {
                        acc[i] += weight * src[i];
                    }
                }
                block.copy_from_slice(&acc);
            }
        }
        for (out_row, sum_row) in plane.chunks_exact_mut(ow).zip(sums.chunks(flat.pitch)) {
            out_row.copy_from_slice(&sum_row[..flat.ow]);
        }
        return;
    }
    let before = &mut before[..ow];
    // Every other row is written whole by its first input channel's blocks.
    let start = bias.map_or(T::zero(), |b| b[channel]);
    for &row in &plan.empty_rows {
        plane[row * ow..][..ow].fill(start);
    }
    before.fill(start);
    for ci in 0..cig {
        plan.pad_rows(
            &x[(n * geo.c_in + group * cig + ci) * in_vol..][..in_vol],
            geo.input[2],
            padded,
        );
        let rows = Rows {
            taps: &w[(channel * cig + ci) * kvol..][..kvol],
            padded,
            width: plan.width,
            kw: geo.kernel[2],
            dilation: geo.dilation[2],
        };
        for group in plan.pairs.chunk_by(|a, b| a.row == b.row) {
            let out = &mut plane[group[0].row * ow..][..ow];
            // The sums continue from the row's values before this channel (blocks
            // may overlap, so they are read from a copy; before the first channel
            // every row holds the bias).
            if ci > 0 {
                before.copy_from_slice(out);
            }
            if ow >= BLOCK {
                rows.blocks::<BLOCK>(group, before, out);
            } else if ow >= BLOCK / 2 {
                rows.blocks::<{ BLOCK / 2 }>(group, before, out);
            } else {
                for (o, value) in out.iter_mut().enumerate() {
                    *value = rows.sum::<1, 1>(group, before, [o])[0][0];
                }
            }
        }
    }
}

/// The taps of one (output channel, input channel) pair over the padded rows of
/// the input plane.
struct Rows<'a, T> {
    taps: &'a [T],
    padded: &'a [T],
    width: usize,
    kw: usize,
    dilation: usize,
}

impl<T: Element> Rows<'_, T> {
    /// Every output of the row in blocks of `B`, `GROUP` blocks at a time (their
    /// sums are independent chains the processor overlaps); the last blocks are
    /// moved back to end at the row's end and recompute a few outputs to the same
    /// values.
    #[inline(always)]
    fn blocks<const B: usize>(&self, group: &[RowPair], before: &[T], out: &mut [T]) {
        let ow = out.len();
        let blocks = ow.div_ceil(B);
        for first in (0..blocks).step_by(GROUP) {
            let at: [usize; GROUP] =
                std::array::from_fn(|i| ((first + i).min(blocks - 1) * B).min(ow - B));
            let sums = self.sum::<B, GROUP>(group, before, at);
            for (&c, values) in at.iter().zip(&sums) {
                out[c..c + B].copy_from_slice(values);
            }
        }
    }

    /// The `B` outputs from each column of `at` of the output row of `group`,
    /// continuing the sums in `before`.
    #[inline(always)]
    fn sum<const B: usize, const M: usize>(
        &self,
        group: &[RowPair],
        before: &[T],
        at: [usize; M],
    ) -> [[T; B]; M] {
        let mut acc = [[T::zero(); B]; M];
        for (block, &c) in acc.iter_mut().zip(&at) {
            block.copy_from_slice(&before[c..c + B]);
        }
        for pair in group {
            let row = &self.padded[pair.x_row * self.width..][..self.width];
            for kx in 0..self.kw {
                let weight = self.taps[pair.tap + kx];
                let shift = kx * self.dilation;
                for (block, &c) in acc.iter_mut().zip(&at) {
                    let src = &row[c + shift..][..B];
                    for i in 0..B {
                        block[i] += weight * src[i];
                    }
                }
            }
        }
        acc
    }
}

/// Blocks of a row computed together.
const GROUP: usize = 4;

simd_twins! {
    forward_plane => forward_plane_avx512, forward_plane_avx2,
    <T: Element>(
        geo: &ConvGeometry,
        plan: &Plan,
        x: &[T],
        w: &[T],
        bias: Option<&[T]>,
        plane_index: usize,
        workspace: &mut [T],
        plane: &mut [T],
    )
}

/// `grad_x = conv_backward_input(grad_out, w)` of a problem the whole-plane
/// layout runs (strided small planes; see [`Flat`]), one task per input plane:
/// every tap of every output channel of its group adds `w * grad_out` into the
/// phases the forward pass reads, at the tap's offset (in output channel, then
/// tap order, so the sums do not depend on the thread count), and the phases are
/// read back into the input plane. Every element of `grad_x` is written.
pub(crate) fn backward_input<T: Element>(
    geo: &ConvGeometry,
    grad_out: &[T],
    w: &[T],
    grad_x: &mut [T],
) -> Result<()> {
    let plan = Plan::new(geo);
    let Some(flat) = plan.flat else {
        return crate::error::value_error!(
            "the whole-plane depthwise layout cannot run this layer"
        );
    };
    let plan = &plan;
    for_each_chunk_mut(
        grad_x,
        geo.in_vol(),
        geo.work(),
        || {
            (
                vec![T::zero(); flat.buffer_len()],
                vec![T::zero(); flat.len],
            )
        },
        |(phases, grad), plane_index, gx| {
            dispatch!(
                input_plane,
                input_plane_avx512,
                input_plane_avx2,
                geo,
                plan,
                grad_out,
                w,
                plane_index,
                phases,
                grad,
                gx
            )
        },
    )
}

/// One input plane of [`backward_input`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn input_plane<T: Element>(
    geo: &ConvGeometry,
    plan: &Plan,
    grad_out: &[T],
    w: &[T],
    plane_index: usize,
    phases: &mut [T],
    grad: &mut [T],
    gx: &mut [T],
) {
    let Some(flat) = plan.flat else { return };
    let p_len = geo.out_vol();
    let (cig, cog, kvol) = (geo.cig(), geo.cog(), geo.kernel_vol());
    let [ih, iw] = [geo.input[1], geo.input[2]];
    let (n, ci) = (plane_index / geo.c_in, plane_index % geo.c_in);
    let (group, local) = (ci / cig, ci % cig);
    phases.fill(T::zero());
    for co in group * cog..(group + 1) * cog {
        let g_plane = &grad_out[(n * geo.c_out + co) * p_len..][..p_len];
        flat.grad_rows(g_plane, &mut grad[..]);
        let taps = &w[(co * cig + local) * kvol..][..kvol];
        for (&weight, &offset) in taps.iter().zip(&plan.tap_offsets) {
            let dst = &mut phases[offset..][..flat.len];
            for (d, &g) in dst.iter_mut().zip(grad.iter()) {
                *d += weight * g;
            }
        }
    }
    flat.read_back(phases, ih, iw, gx);
}

simd_twins! {
    input_plane => input_plane_avx512, input_plane_avx2,
    <T: Element>(
        geo: &ConvGeometry,
        plan: &Plan,
        grad_out: &[T],
        w: &[T],
        plane_index: usize,
        phases: &mut [T],
        grad: &mut [T],
        gx: &mut [T],
    )
}

/// Per-worker buffers of the weight gradient: a padded input plane and the
/// partial sums of every tap.
struct WeightWorkspace<T> {
    padded: Vec<T>,
    lanes: Vec<T>,
    /// A `grad_out` plane at the flat layout's row pitch (zero past each row).
    grad: Vec<T>,
}

/// `grad_w = conv_backward_weight(grad_out, x)`, one task per output channel.
pub(crate) fn backward_weight<T: Element>(
    geo: &ConvGeometry,
    grad_out: &[T],
    x: &[T],
    grad_w: &mut [T],
) -> Result<()> {
    let kvol = geo.kernel_vol();
    let plan = Plan::new(geo);
    for_each_chunk_mut(
        grad_w,
        geo.cig() * kvol,
        geo.work(),
        || WeightWorkspace {
            padded: vec![T::zero(); plan.padded_len()],
            lanes: vec![T::zero(); geo.cig() * kvol * BLOCK],
            grad: vec![T::zero(); plan.flat.map_or(0, |flat| flat.len)],
        },
        |ws, channel, taps| {
            dispatch!(
                weight_channel,
                weight_channel_avx512,
                weight_channel_avx2,
                geo,
                &plan,
                grad_out,
                x,
                channel,
                ws,
                taps
            )
        },
    )
}

#[inline(always)]
fn weight_channel<T: Element>(
    geo: &ConvGeometry,
    plan: &Plan,
    grad_out: &[T],
    x: &[T],
    channel: usize,
    ws: &mut WeightWorkspace<T>,
    taps: &mut [T],
) {
    let (in_vol, p_len, ow, cig) = (geo.in_vol(), geo.out_vol(), geo.output[2], geo.cig());
    let (kw, dilation, kvol) = (geo.kernel[2], geo.dilation[2], geo.kernel_vol());
    let group = channel / geo.cog();
    ws.lanes.fill(T::zero());
    if let Some(flat) = plan.flat {
        let kh = geo.kernel[1];
        for n in 0..geo.n {
            let g_plane = &grad_out[(n * geo.c_out + channel) * p_len..][..p_len];
            flat.grad_rows(g_plane, &mut ws.grad);
            for ci in 0..cig {
                let x_plane = &x[(n * geo.c_in + group * cig + ci) * in_vol..][..in_vol];
                flat.fill(x_plane, geo.input[1], geo.input[2], &mut ws.padded);
                for ky in 0..kh {
                    for kx in 0..kw {
                        let at = flat.tap(ky, kx);
                        let lanes = &mut ws.lanes[(ci * kvol + ky * kw + kx) * BLOCK..][..BLOCK];
                        dot_lanes(lanes, &ws.grad, &ws.padded[at..][..flat.len]);
                    }
                }
            }
        }
        for (total, acc) in taps.iter_mut().zip(ws.lanes.chunks_exact(BLOCK)) {
            *total = acc.iter().fold(T::zero(), |s, &v| s + v);
        }
        return;
    }
    for n in 0..geo.n {
        let g_plane = &grad_out[(n * geo.c_out + channel) * p_len..][..p_len];
        for ci in 0..cig {
            let x_plane = &x[(n * geo.c_in + group * cig + ci) * in_vol..][..in_vol];
            plan.pad_rows(x_plane, geo.input[2], &mut ws.padded);
            for pair in &plan.pairs {
                let g_row = &g_plane[pair.row * ow..][..ow];
                let row = &ws.padded[pair.x_row * plan.width..][..plan.width];
                let lanes = &mut ws.lanes[(ci * kvol + pair.tap) * BLOCK..][..kw * BLOCK];
                for (kx, acc) in lanes.chunks_exact_mut(BLOCK).enumerate() {
                    dot_lanes(acc, g_row, &row[kx * dilation..][..ow]);
                }
            }
        }
    }
    for (total, acc) in taps.iter_mut().zip(ws.lanes.chunks_exact(BLOCK)) {
        *total = acc.iter().fold(T::zero(), |s, &v| s + v);
    }
}

/// `acc[i % BLOCK] += a[i] * b[i]` (the tail of fewer than `BLOCK` elements in
/// blocks of 8, then one by one): a dot product in vector-wide partial sums.
#[inline(always)]
fn dot_lanes<T: Element>(acc: &mut [T], a: &[T], b: &[T]) {
    let acc: &mut [T; BLOCK] = match acc.try_into() {
        Ok(acc) => acc,
        Err(_) => return,
    };
    // A local copy stays in registers (the compiler would otherwise store every
    // lane back after each step).
    let mut sums = *acc;
    let mut a_blocks = a.chunks_exact(BLOCK);
    let mut b_blocks = b.chunks_exact(BLOCK);
    for (x, y) in (&mut a_blocks).zip(&mut b_blocks) {
        for i in 0..BLOCK {
            sums[i] += x[i] * y[i];
        }
    }
    let (a_rest, b_rest) = (a_blocks.remainder(), b_blocks.remainder());
    let half = if a_rest.len().min(b_rest.len()) >= BLOCK / 2 {
        for i in 0..BLOCK / 2 {
            sums[i] += a_rest[i] * b_rest[i];
        }
        BLOCK / 2
    } else {
        0
    };
    for (i, (&x, &y)) in a_rest.iter().zip(b_rest).enumerate().skip(half) {
        sums[i] += x * y;
    }
    *acc = sums;
}

simd_twins! {
    weight_channel => weight_channel_avx512, weight_channel_avx2,
    <T: Element>(
        geo: &ConvGeometry,
        plan: &Plan,
        grad_out: &[T],
        x: &[T],
        channel: usize,
        ws: &mut WeightWorkspace<T>,
        taps: &mut [T],
    )
}
