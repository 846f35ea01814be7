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

use super::im2col::{copy_blocks, copy_even};
use super::shape::ConvGeometry;
use crate::element::Element;
use crate::error::{alloc_zeroed, Result};
use crate::geometry::PaddingMode;
use crate::kernels::{dispatch, gemm_indirect, MicroKernel, RowTable, SharedMut};
use crate::threads::for_each_task;

/// Elements of one task's phase planes at most, unless a single output row needs
/// more (about the size of a column tile: the planes and a group's packed weights
/// stay in L2).
const BAND_ELEMENTS: usize = 1 << 17;

/// Whether the implicit GEMM serves this forward: zero padding, an output with
/// several rows (1-D layers gather whole rows already), more than one tap, and
/// positions past the output rows costing at most a quarter of the work.
pub(crate) fn applies(geo: &ConvGeometry) -> bool {
    let w = AxisPhases::new(geo.kernel[2], geo.dilation[2], geo.stride[2]);
    let out_w = geo.output[2];
    geo.padding_mode == PaddingMode::Zeros
        && geo.output[1] > 1
        && geo.kernel_vol() > 1
        && geo.k_len() > 0
        && out_w > 0
        && w.max_shift * 4 <= out_w
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

/// How a forward is cut into tasks and where each tap's row lies in a task's
/// buffer (the same for every task).
struct Plan {
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

impl Plan {
    fn new(geo: &ConvGeometry) -> Self {
        let h = AxisPhases::new(geo.kernel[1], geo.dilation[1], geo.stride[1]);
        let w = AxisPhases::new(geo.kernel[2], geo.dilation[2], geo.stride[2]);
        let [kd, kh, kw] = geo.kernel;
        let out_h = geo.output[1];
        let pitch = geo.output[2] + w.max_shift;
        let per_channel = kd * h.phases.len() * w.phases.len();
        let planes = geo.cig() * per_channel;
        let row_cost = planes.saturating_mul(pitch).max(1);
        let band = (BAND_ELEMENTS / row_cost)
            .saturating_sub(h.max_shift)
            .clamp(1, out_h.max(1));
        let bands = out_h.div_ceil(band).max(1);
        let band = out_h.div_ceil(bands).max(1);
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
        Plan {
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
    fn buffer_len<T: MicroKernel>(&self) -> usize {
        self.planes * self.plane_len + T::NR
    }

    /// Fill the phase planes of output slice `od`, rows `h0 ..` from the input
    /// channels `x_group` of one image and group (cells outside the input are 0).
    fn fill<T: Element>(
        &self,
        geo: &ConvGeometry,
        x_group: &[T],
        od: usize,
        h0: usize,
        buffer: &mut [T],
    ) {
        dispatch!(fill_any, fill_avx512, self, geo, x_group, od, h0, buffer)
    }
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fill_avx512<T: Element>(
    plan: &Plan,
    geo: &ConvGeometry,
    x_group: &[T],
    od: usize,
    h0: usize,
    buffer: &mut [T],
) {
    fill_any(plan, geo, x_group, od, h0, buffer)
}

#[inline(always)]
fn fill_any<T: Element>(
    plan: &Plan,
    geo: &ConvGeometry,
    x_group: &[T],
    od: usize,
    h0: usize,
    buffer: &mut [T],
) {
    {
        let [in_d, in_h, in_w] = geo.input;
        let [sd, sh, sw] = geo.stride;
        let (kd, pitch) = (geo.kernel[0], plan.pitch);
        let plane_vol = in_h * in_w;
        let mut planes = buffer[..plan.planes * plan.plane_len].chunks_exact_mut(plan.plane_len);
        for ci in 0..geo.cig() {
            for d in 0..kd {
                // Input slice of this (od, kd), if inside the input.
                let id = (od * sd + d * geo.dilation[0])
                    .checked_sub(geo.pad_lo[0])
                    .filter(|&id| id < in_d);
                for &ph in &plan.h.phases {
                    for &pw in &plan.w.phases {
                        let Some(plane) = planes.next() else { return };
                        let Some(id) = id else {
                            plane.fill(T::zero());
                            continue;
                        };
                        let slice = &x_group[(ci * in_d + id) * plane_vol..][..plane_vol];
                        // Columns c whose input column c * sw + pw - pad lies inside.
                        let pad_w = geo.pad_lo[2];
                        let c_lo = pad_w.saturating_sub(pw).div_ceil(sw).min(pitch);
                        let c_hi = (in_w + pad_w)
                            .saturating_sub(pw)
                            .div_ceil(sw)
                            .clamp(c_lo, pitch);
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
                                1 => copy_blocks(cells, out),
                                2 => copy_even(cells, out),
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
}

/// `out = conv(x, w) + bias` through the implicit GEMM; `weights` are the packed
/// `W[g]` A operands of every group (`w_panel` elements each).
pub(crate) fn forward<T: Element>(
    geo: &ConvGeometry,
    x: &[T],
    weights: &[T],
    w_panel: usize,
    bias: Option<&[T]>,
    out: &mut [T],
) -> Result<()> {
    let plan = Plan::new(geo);
    let (k_len, cig, cog) = (geo.k_len(), geo.cig(), geo.cog());
    let [out_d, out_h, out_w] = geo.output;
    let (p_len, in_vol, pitch) = (geo.out_vol(), geo.in_vol(), plan.pitch);
    let buffer_len = plan.buffer_len::<T>();
    // Checked once here, so the workers' buffers cannot fail to allocate.
    drop(alloc_zeroed::<T>(buffer_len, "implicit GEMM planes")?);
    let init = || {
        (
            vec![T::zero(); buffer_len],
            crate::kernels::pack::accumulator::<T>(),
        )
    };
    let out_shared = SharedMut::new(out);
    let tasks = geo.n * geo.groups * out_d * plan.bands;
    for_each_task(tasks, geo.work(), init, |(buffer, acc), task| {
        let band_index = task % plan.bands;
        let od = (task / plan.bands) % out_d;
        let image_group = task / (plan.bands * out_d);
        let (n, g) = (image_group / geo.groups, image_group % geo.groups);
        let h0 = band_index * plan.band;
        let rows_here = plan.band.min(out_h - h0);
        let x_group = &x[(n * geo.c_in + g * cig) * in_vol..][..cig * in_vol];
        plan.fill(geo, x_group, od, h0, buffer);
        let cols = (rows_here - 1) * pitch + out_w;
        let a = &weights[g * w_panel..(g + 1) * w_panel];
        gemm_indirect(k_len, a, cog, buffer, &plan.rows, cols, acc, |blk| {
            for r in 0..blk.rows {
                let channel = g * cog + blk.row0 + r;
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
                        // SAFETY: task (n, g, od, band) is the only one writing output
                        // rows h0 .. h0 + rows_here of slice od of image n, group g.
                        let dst = unsafe { out_shared.range(at, len) };
                        copy_blocks(&values[q - blk.col0..][..len], dst);
                        if let Some(bias) = bias {
                            dst.iter_mut().for_each(|v| *v += bias[channel]);
                        }
                    }
                    q = row_end;
                }
            }
        });
    })
}
