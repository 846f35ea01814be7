//! Input gradient of a strided, zero-padded 1-D or 2-D convolution by sub-pixel
//! decomposition: no column matrix and no col2im scatter.
//!
//! Along an axis with stride `s`, input cell `i` receives `grad_out[o] * w[t]`
//! exactly when `o * s + t * dilation == i + pad`, so the cells are split by
//! `(i + pad) % s` into `s` *phases*: the cells `i = a * s + r - pad` of phase `r`
//! see only the taps whose dilated reach is `r` modulo `s`, tap `t` reading
//! `grad_out[a - (t * dilation) / s]`. Each phase is thus a stride-1 correlation of
//! `grad_out` (zero-padded) with a sub-kernel of taps: one implicit GEMM
//! (`grad_x phase (C_in x cells) = W_phase^T (C_in x C_out * taps) . grad_out`)
//! whose B rows are runs of one padded copy of `grad_out`, shared by all phases.
//! Every input cell is written once, by its phase's GEMM.

use super::geometry::ConvGeometry;
use crate::alloc::{alloc_uninit, alloc_zeroed};
use crate::element::Element;
use crate::error::Result;
use crate::kernels::{accumulator, copy_blocks, gemm_indirect, AMatrix, RowTable, SharedMut};
use crate::threads::{for_each_chunk_mut, for_each_task};

/// One phase of one axis: cells `a * stride + r - pad` for `a` in `a0 .. a1`, and
/// the taps (with their shifts) that reach them.
struct AxisPhase {
    r: usize,
    a0: usize,
    a1: usize,
    taps: Vec<(usize, usize)>,
}

/// An axis split by its stride, and the length of the padded `grad_out` along it.
struct AxisSplit {
    stride: usize,
    pad: usize,
    max_shift: usize,
    padded_len: usize,
    phases: Vec<AxisPhase>,
}

impl AxisSplit {
    fn new(geo: &ConvGeometry, axis: usize) -> Self {
        let (input, output) = (geo.input[axis], geo.output[axis]);
        let (stride, dilation, pad) = (
            geo.stride[axis].max(1),
            geo.dilation[axis],
            geo.pad_lo[axis],
        );
        let max_shift = (geo.kernel[axis].saturating_sub(1) * dilation) / stride;
        // Only the phases some tap reaches have cells to compute (at most one per
        // tap: a stride of 2^40 must not mean 2^40 phases), in ascending order.
        let mut reached: Vec<usize> = (0..geo.kernel[axis])
            .map(|t| (t * dilation) % stride)
            .collect();
        reached.sort_unstable();
        reached.dedup();
        let phases: Vec<AxisPhase> = reached
            .into_iter()
            .map(|r| AxisPhase {
                r,
                a0: pad.saturating_sub(r).div_ceil(stride),
                a1: (input + pad).saturating_sub(r).div_ceil(stride),
                taps: (0..geo.kernel[axis])
                    .filter(|&t| (t * dilation) % stride == r)
                    .map(|t| (t, (t * dilation) / stride))
                    .collect(),
            })
            .filter(|p| p.a1 > p.a0 && !p.taps.is_empty())
            .collect();
        let reach = phases.iter().map(|p| p.a1).max().unwrap_or(0).max(output);
        AxisSplit {
            stride,
            pad,
            max_shift,
            padded_len: reach + max_shift,
            phases,
        }
    }
}

/// One 2-D phase: its weights and where its B rows start.
struct Phase<'a, T> {
    h: &'a AxisPhase,
    w: &'a AxisPhase,
    /// `W_phase[g]^T` (C_in/g x C_out/g * taps, row-major) of every group, one
    /// after the other: the GEMM reads its rows in place.
    weights: Vec<T>,
    rows: RowTable,
}

/// `grad_x = conv_backward_input(grad_out, w)` (overwrites every cell of
/// `grad_x`, which must be zero-filled: cells no tap reaches stay zero), one
/// task per (image, group, block of `channels` input channels).
pub(crate) fn backward_input<T: Element>(
    geo: &ConvGeometry,
    channels: usize,
    grad_out: &[T],
    w: &[T],
    grad_x: &mut [T],
) -> Result<()> {
    let (sh, sw) = (AxisSplit::new(geo, 1), AxisSplit::new(geo, 2));
    let (cig, cog) = (geo.cig(), geo.cog());
    let [_, kh, kw] = geo.kernel;
    let [_, in_h, in_w] = geo.input;
    let [_, out_h, out_w] = geo.output;
    let (gh, gw) = (sh.padded_len, sw.padded_len);
    let plane = gh * gw;
    let mut phases = Vec::new();
    for ph in &sh.phases {
        for pw in &sw.phases {
            let k = cog * ph.taps.len() * pw.taps.len();
            // W_phase[g]^T: row (g, ci), column (co, tap_h, tap_w); a deep
            // layer's rows are megabytes, gathered in parallel.
            let mut weights = alloc_zeroed::<T>(geo.groups * cig * k, "sub-pixel weights")?;
            let work = weights.len();
            for_each_chunk_mut(
                &mut weights,
                k.max(1),
                work,
                Vec::<()>::new,
                |_, row, dst| {
                    let (g, ci) = (row / cig, row % cig);
                    let mut column = 0;
                    for co in 0..cog {
                        let filter = ((g * cog + co) * cig + ci) * kh * kw;
                        for &(th, _) in &ph.taps {
                            for &(tw, _) in &pw.taps {
                                dst[column] = w[filter + th * kw + tw];
                                column += 1;
                            }
                        }
                    }
                },
            )?;
            let mut rows = Vec::with_capacity(k);
            for co in 0..cog {
                for &(_, shift_h) in &ph.taps {
                    for &(_, shift_w) in &pw.taps {
                        let row = ph.a0 + sh.max_shift - shift_h;
                        let col = pw.a0 + sw.max_shift - shift_w;
                        rows.push(co * plane + row * gw + col);
                    }
                }
            }
            phases.push(Phase {
                h: ph,
                w: pw,
                weights,
                rows: RowTable::new(rows),
            });
        }
    }
    let padded_len = cog * plane + T::NR;
    // Checked once here, so the workers' buffers cannot fail to allocate.
    drop(alloc_uninit::<T>(padded_len, "padded grad_output")?);
    let (in_plane, p_len) = (in_h * in_w, out_h * out_w);
    let channels = channels.clamp(1, cig.max(1));
    let chunks = cig.div_ceil(channels).max(1);
    let init = || {
        (
            vec![T::zero(); padded_len],
            vec![T::zero(); channels * in_plane],
            accumulator::<T>(),
        )
    };
    let shared = SharedMut::new(grad_x);
    let tasks = geo.n * geo.groups * chunks;
    for_each_task(tasks, geo.work(), init, |(padded, cells, acc), task| {
        let (image_group, chunk) = (task / chunks, task % chunks);
        let c0 = chunk * channels;
        let cc = channels.min(cig - c0);
        // SAFETY: task (image, group, chunk) is the only one writing the
        // chunk's input channels of the group of the image.
        let grad_group =
            unsafe { shared.range((image_group * cig + c0) * in_plane, cc * in_plane) };
        let (n, g) = (image_group / geo.groups, image_group % geo.groups);
        let gy = &grad_out[(n * geo.c_out + g * cog) * p_len..][..cog * p_len];
        // grad_out of the group, `max_shift` zero rows and columns before it
        // and zeros after it.
        for (co, dst) in padded[..cog * plane].chunks_exact_mut(plane).enumerate() {
            for (b, row) in dst.chunks_exact_mut(gw).enumerate() {
                match b.checked_sub(sh.max_shift).filter(|&o| o < out_h) {
                    Some(o) => {
                        row[..sw.max_shift].fill(T::zero());
                        let cells = &gy[co * p_len + o * out_w..][..out_w];
                        copy_blocks(cells, &mut row[sw.max_shift..sw.max_shift + out_w]);
                        row[sw.max_shift + out_w..].fill(T::zero());
                    }
                    None => row.fill(T::zero()),
                }
            }
        }
        // Each phase's GEMM writes its cells (channel-major, then rows) into
        // `cells`; one pass then interleaves the phases into grad_x rows.
        let mut base = 0;
        for phase in &phases {
            let (ph, pw) = (phase.h, phase.w);
            let (rows_h, cells_w) = (ph.a1 - ph.a0, pw.a1 - pw.a0);
            let phase_len = rows_h * cells_w;
            let cols = (rows_h - 1) * gw + cells_w;
            let k = phase.rows.rows().len();
            let a = &phase.weights[(g * cig + c0) * k..][..cc * k];
            let out = &mut cells[base * cc..][..cc * phase_len];
            gemm_indirect(
                k,
                AMatrix::Rows(a, k),
                cc,
                padded,
                &phase.rows,
                cols,
                acc,
                false,
                |blk| {
                    let end = blk.col0 + blk.cols;
                    for r in 0..blk.rows {
                        let target = &mut out[(blk.row0 + r) * phase_len..][..phase_len];
                        let values = blk.row(r);
                        // Positions col0 .. end, one row of the padded pitch at a time.
                        let mut q = blk.col0;
                        while q < end {
                            let (row, col) = (q / gw, q % gw);
                            let row_end = end.min((row + 1) * gw);
                            let valid_end = row_end.min(row * gw + cells_w);
                            if q < valid_end {
                                copy_blocks(
                                    &values[q - blk.col0..valid_end - blk.col0],
                                    &mut target[row * cells_w + col..][..valid_end - q],
                                );
                            }
                            q = row_end;
                        }
                    }
                },
            );
            base += phase_len;
        }
        let mut base = 0;
        let mut skip = false;
        for (index, phase) in phases.iter().enumerate() {
            let (ph, pw) = (phase.h, phase.w);
            let (rows_h, cells_w) = (ph.a1 - ph.a0, pw.a1 - pw.a0);
            let phase_len = rows_h * cells_w;
            let first_w = pw.a0 * sw.stride + pw.r - sw.pad;
            if std::mem::take(&mut skip) {
                // Interleaved with the phase before it.
                base += phase_len;
                continue;
            }
            // Stride 2 along W with this phase on the even input columns and the
            // next one (same rows) on the odd ones: each grad_x row is one
            // AVX-512 interleave of the two runs instead of strided stores.
            let partner = phases.get(index + 1).filter(|next| {
                let next_first = next.w.a0 * sw.stride + next.w.r - sw.pad;
                sw.stride == 2 && std::ptr::eq(next.h, ph) && first_w + next_first == 1
            });
            if let Some(next) = partner {
                let next_cells = next.w.a1 - next.w.a0;
                let next_len = rows_h * next_cells;
                let (even_cells, odd_cells) = if first_w == 0 {
                    (cells_w, next_cells)
                } else {
                    (next_cells, cells_w)
                };
                for (ci, target) in grad_group.chunks_exact_mut(in_plane).enumerate() {
                    let this = &cells[base * cc + ci * phase_len..][..phase_len];
                    let other = &cells[(base + phase_len) * cc + ci * next_len..][..next_len];
                    let (evens, odds) = if first_w == 0 {
                        (this, other)
                    } else {
                        (other, this)
                    };
                    for j in 0..rows_h {
                        let i_h = (ph.a0 + j) * sh.stride + ph.r - sh.pad;
                        T::interleave(
                            &evens[j * even_cells..][..even_cells],
                            &odds[j * odd_cells..][..odd_cells],
                            &mut target[i_h * in_w..][..in_w],
                        );
                    }
                }
                skip = true;
                base += phase_len;
                continue;
            }
            for (ci, target) in grad_group.chunks_exact_mut(in_plane).enumerate() {
                let source = &cells[base * cc + ci * phase_len..][..phase_len];
                for (j, run) in source.chunks_exact(cells_w).enumerate() {
                    let i_h = (ph.a0 + j) * sh.stride + ph.r - sh.pad;
                    let row = &mut target[i_h * in_w + first_w..];
                    for (cell, &value) in row.iter_mut().step_by(sw.stride).zip(run) {
                        *cell = value;
                    }
                }
            }
            base += phase_len;
        }
    })
}
