//! Pooling, forward and backward, on 5-D arrays `(N, C, D, H, W)` (1-D and 2-D
//! problems have unit leading spatial axes): max pooling with indices, max
//! unpooling, average and Lp pooling, adaptive average and max pooling. PyTorch's
//! semantics throughout, with ONNX's per-side and "same" padding and dilated
//! average and Lp pooling.
//!
//! Every function validates its arguments before allocating anything, reads the
//! input in one pass without a padded copy (padding is skipped, not
//! materialised) and runs over `(n, c)` planes in parallel above a work threshold.
//! Indices are flat per plane into the unpadded input, as PyTorch's.

mod avg;
mod explain;
mod fractional;
mod interleave;
mod lp;
mod max;
mod plan;
mod planes;
mod scatter;
mod windows;

use crate::alloc::{alloc_uninit, alloc_zeroed, assume_init, ZeroBits};
use crate::arrays::{
    as_slice, into_array5, shape5, spatial, standard, user_shape, with_spatial, Shape5,
};
use crate::element::Element;
use crate::error::{value_error, Result};
use crate::geometry::{check_rank, checked_product, fmt_dims, Dims, PoolParams, UnpoolParams};
use crate::storage::{MaxStorage, Storage};
use crate::threads::for_each_chunk_mut;
use avg::{Mean, WindowSum};
pub use explain::{explain_pool, Pooling};
pub use fractional::{fractional_max_pool, window_starts};
use interleave::lanes_of;
pub use lp::{lp_pool, lp_pool_backward};
use ndarray::{Array5, ArrayView5};
use plan::{PlaneSplit, RowKernel, TapWork};
use planes::{for_each_output_plane, for_each_target_plane};
use scatter::{Combine, Target};
use std::mem::MaybeUninit;
use std::ops::AddAssign;
use windows::{Divisor, Windows};

/// Options of average pooling beyond the window geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvgOptions {
    /// Whether padded cells count in the divisor (PyTorch's default: true).
    pub count_include_pad: bool,
    /// A fixed divisor replacing the window size (must be nonzero).
    pub divisor_override: Option<i64>,
}

impl Default for AvgOptions {
    fn default() -> Self {
        Self {
            count_include_pad: true,
            divisor_override: None,
        }
    }
}

/// Pooled values and, when requested, the flat per-plane index of each maximum.
#[derive(Debug, Clone)]
pub struct MaxPooled<T> {
    pub values: Array5<T>,
    pub indices: Option<Array5<i64>>,
}

/// `a` must have `expected` shape (compared in the caller's rank).
fn check_shape(
    name: &str,
    actual: Shape5,
    what: &str,
    expected: Shape5,
    rank: usize,
) -> Result<()> {
    if actual != expected {
        return value_error!(
            "{name} has shape {} but {what} has shape {}",
            user_shape(actual, rank),
            user_shape(expected, rank)
        );
    }
    Ok(())
}

/// `input_shape` must have the batch and channel sizes of `grad_out`.
fn check_planes(input_shape: Shape5, grad_out: Shape5, rank: usize) -> Result<()> {
    if input_shape[..2] != grad_out[..2] {
        return value_error!(
            "input_shape {} and grad_out {} differ in batch size or channels",
            user_shape(input_shape, rank),
            user_shape(grad_out, rank)
        );
    }
    checked_product(&input_shape)?;
    Ok(())
}

pub(crate) fn check_adaptive_input(input: Dims, rank: usize) -> Result<()> {
    if input.contains(&0) {
        return value_error!(
            "the input has spatial size {}: adaptive pooling needs at least one element along every axis",
            fmt_dims(&input, rank)
        );
    }
    Ok(())
}

pub(crate) fn check_avg(options: AvgOptions) -> Result<()> {
    if options.divisor_override == Some(0) {
        return value_error!("divisor_override must be nonzero, got 0");
    }
    Ok(())
}

fn divisor_rule(options: AvgOptions) -> Divisor {
    match (options.divisor_override, options.count_include_pad) {
        (Some(value), _) => Divisor::Fixed(value),
        (None, true) => Divisor::Padded,
        (None, false) => Divisor::Valid,
    }
}

/// Max over the windows of `windows` for every plane of `x` (16-bit planes are
/// widened and their maxima rounded back plane by plane, in cache: exact;
/// integer planes are compared as they are).
fn max_over<S: MaxStorage>(
    x: ArrayView5<'_, S>,
    out_shape: Shape5,
    windows: impl FnOnce() -> Result<Windows>,
    return_indices: bool,
) -> Result<MaxPooled<S>> {
    let windows = if checked_product(&out_shape)? > 0 {
        Some(windows()?)
    } else {
        None
    };
    let Some(windows) = windows else {
        let split = PlaneSplit::new(0, 0);
        return max_planes(
            x,
            out_shape,
            split,
            1,
            return_indices,
            || (),
            |_, _, _, _, _| {},
        );
    };
    let rows = plan::max_rows::<S::Compute>(&windows, windows.in_vol());
    let planes = checked_product(&out_shape[..2])?;
    let lanes = lanes_of::<S::Compute>();
    let rows = plan::interleaved(rows, &windows, planes, lanes, TapWork::Maxima);
    let work = windows.out_vol().saturating_mul(windows.max_window_vol());
    let split = PlaneSplit::new(planes, work).for_kernel(rows.kernel);
    if let (RowKernel::Interleaved(lanes), Some(taps)) = (rows.kernel, &windows.taps) {
        let (in_vol, out_vol) = (windows.in_vol(), windows.out_vol());
        return max_planes(
            x,
            out_shape,
            split,
            split.group(in_vol, rows.kernel),
            return_indices,
            Vec::new,
            |scratch, _, planes, v, i| {
                interleave::max_planes(taps, lanes, in_vol, out_vol, planes, v, i, scratch);
            },
        );
    }
    max_planes(
        x,
        out_shape,
        split,
        1,
        return_indices,
        || (),
        |_, _, plane, v, i| {
            max::max_plane(&windows, rows, plane, v, i);
        },
    )
}

/// The maxima (and indices, if asked) of every plane of `x` into a new
/// `out_shape` result, `group` planes a call (a divisor of `split.per_task`):
/// `plane_max(workspace, p, planes, values, indices)` must write every value
/// (and index) of the planes from `p` on, given in the compute type (whole
/// planes, `group` of them or the fewer left at the end); `workspace` is made
/// by `init` once per task.
fn max_planes<S: MaxStorage, W>(
    x: ArrayView5<'_, S>,
    out_shape: Shape5,
    split: PlaneSplit,
    group: usize,
    return_indices: bool,
    init: impl Fn() -> W + Sync + Send,
    plane_max: impl Fn(&mut W, usize, &[S::Compute], &mut [MaybeUninit<S::Compute>], &mut [MaybeUninit<i64>])
        + Sync
        + Send,
) -> Result<MaxPooled<S>> {
    let len = checked_product(&out_shape)?;
    let mut values = alloc_uninit::<S>(len, "the output")?;
    let mut indices = if return_indices {
        alloc_uninit::<i64>(len, "indices")?
    } else {
        Vec::new()
    };
    if len > 0 {
        let x = standard(x)?;
        let x = as_slice(&x)?;
        let out_vol = out_shape[2..].iter().product::<usize>();
        let in_vol = x.len() / checked_product(&out_shape[..2])?.max(1);
        let group = group.max(1);
        let groups = PlaneSplit {
            per_task: (split.per_task / group).max(1),
            work: split.work,
        };
        for_each_output_plane(
            &mut values,
            &mut indices,
            out_vol.saturating_mul(group),
            groups,
            init,
            |workspace, g, v, i| {
                let (first, count) = (g * group, v.len() / out_vol.max(1));
                S::through_compute(
                    &x[first * in_vol..(first + count) * in_vol],
                    v,
                    |planes, v| {
                        plane_max(workspace, first, planes, v, i);
                    },
                );
            },
        )?;
    }
    // SAFETY: `plane_max` writes every output (and index, when requested) of its
    // plane (through `through_compute`, which writes what its body wrote), and the
    // planes cover both buffers; when `len` is 0 there is nothing.
    let (values, indices) = unsafe { (assume_init(values), assume_init(indices)) };
    Ok(MaxPooled {
        values: into_array5(out_shape, values)?,
        indices: if return_indices {
            Some(into_array5(out_shape, indices)?)
        } else {
            None
        },
    })
}

/// Average over the windows of `windows` for every plane of `x` (16-bit planes
/// are widened and their means rounded back once, plane by plane, in cache).
fn avg_over<S: Storage>(
    x: ArrayView5<'_, S>,
    out_shape: Shape5,
    windows: impl FnOnce() -> Result<Windows>,
    rule: Divisor,
) -> Result<Array5<S>> {
    window_sums(
        x,
        out_shape,
        windows,
        Mean::<S::Compute>::new(rule),
        Some(rule),
    )
}

/// `reduce`'s output for the windows of `windows` over every plane of `x`: one
/// pass over each window's cells. `plane_rule`, for averages, lets one window over
/// a whole plane take the plane reduction.
fn window_sums<S: Storage, R: WindowSum<T = S::Compute>>(
    x: ArrayView5<'_, S>,
    out_shape: Shape5,
    windows: impl FnOnce() -> Result<Windows>,
    reduce: R,
    plane_rule: Option<Divisor>,
) -> Result<Array5<S>> {
    let len = checked_product(&out_shape)?;
    let mut out = alloc_uninit::<S>(len, "the output")?;
    if len > 0 {
        let windows = windows()?;
        let x = standard(x)?;
        let x = as_slice(&x)?;
        let (in_vol, out_vol) = (windows.in_vol(), windows.out_vol());
        let planes = len / out_vol.max(1);
        let (rows, split) = plan::sums_plan::<S::Compute>(&windows, planes, plane_rule.is_some());
        if let (RowKernel::PlaneSum, Some(rule)) = (rows.kernel, plane_rule) {
            // One window over each whole plane (global pooling): a reduction of
            // each contiguous plane, a chunk of planes per task.
            let divisor = windows.first_divisor::<S::Compute>(rule);
            let per_task = split.per_task;
            for_each_chunk_mut(
                &mut out,
                per_task,
                split.work,
                || (),
                |_, task, chunk| {
                    let first = task * per_task;
                    let x = &x[first * in_vol..(first + chunk.len()) * in_vol];
                    S::through_compute(x, chunk, |x, chunk| {
                        avg::plane_means(x, in_vol, divisor, chunk);
                    });
                },
            )?;
            // SAFETY: the chunks cover the buffer and `plane_means` writes every
            // slot of its chunk (one per plane of its part of `x`).
            return into_array5(out_shape, unsafe { assume_init(out) });
        }
        // Small planes in groups, a kernel call each (tasks as for single
        // planes: one a group cost more in scheduling than it saved).
        let (per_task, group) = (split.per_task, split.group(in_vol, rows.kernel));
        for_each_chunk_mut(
            &mut out,
            per_task.saturating_mul(out_vol),
            split.work,
            || avg::PlaneScratch::new(&windows, reduce),
            |scratch, task, chunk| {
                for (g, out) in chunk.chunks_mut(group * out_vol).enumerate() {
                    let first = task * per_task + g * group;
                    let x = &x[first * in_vol..(first + out.len() / out_vol) * in_vol];
                    S::through_compute(x, out, |planes, out| {
                        avg::avg_planes(&windows, rows, reduce, planes, out, scratch);
                    });
                }
            },
        )?;
    }
    // SAFETY: `avg_planes` writes every output of its planes, and the groups
    // cover the buffer; when `len` is 0 there is nothing.
    into_array5(out_shape, unsafe { assume_init(out) })
}

/// Gradient of [`avg_over`] with respect to its input of shape `input_shape`.
fn avg_backward_over<T: Element>(
    grad_out: ArrayView5<'_, T>,
    input_shape: Shape5,
    windows: impl FnOnce() -> Result<Windows>,
    rule: Divisor,
) -> Result<Array5<T>> {
    let len = checked_product(&input_shape)?;
    if len == 0 || grad_out.is_empty() {
        return into_array5(input_shape, alloc_zeroed::<T>(len, "grad_input")?);
    }
    let windows = windows()?;
    let grad_out = standard(grad_out)?;
    let grad_out = as_slice(&grad_out)?;
    let (in_vol, out_vol) = (windows.in_vol(), windows.out_vol());
    let planes = len / in_vol.max(1);
    if plan::avg_rows(&windows, true).kernel == RowKernel::PlaneSum {
        // Global pooling: each plane's cells all get its one gradient, whole
        // planes per task, into a buffer that needs no zeroing first.
        let split = PlaneSplit::new(planes, in_vol);
        let divisor = windows.first_divisor::<T>(rule);
        let mut grad_in = alloc_uninit::<T>(len, "grad_input")?;
        let per_task = split.per_task;
        let chunk_len = per_task.saturating_mul(in_vol);
        for_each_chunk_mut(
            &mut grad_in,
            chunk_len,
            split.work,
            || (),
            |_, task, chunk| {
                let first = task * per_task;
                let grads = &grad_out[first..first + chunk.len() / in_vol.max(1)];
                avg::plane_means_backward(grads, in_vol, divisor, chunk);
            },
        )?;
        // SAFETY: the chunks (whole planes) cover the buffer and
        // `plane_means_backward` writes every cell of each of its planes.
        return into_array5(input_shape, unsafe { assume_init(grad_in) });
    }
    let mut grad_in = alloc_zeroed::<T>(len, "grad_input")?;
    let split = PlaneSplit::new(planes, out_vol.saturating_mul(windows.max_window_vol()));
    let rows = plan::interleaved(
        plan::avg_rows(&windows, false),
        &windows,
        planes,
        lanes_of::<T>(),
        TapWork::Adjoint,
    );
    if let (RowKernel::Interleaved(lanes), Some(taps)) = (rows.kernel, &windows.taps) {
        // Many small planes: `lanes` at a time, a task's planes a call.
        let divisors: Vec<T> = avg::window_shapes(&windows)
            .map(|(wd, wh, ww)| Windows::divisor(rule, wd, wh, ww))
            .collect();
        let split = split.for_kernel(rows.kernel);
        let group = split.group(in_vol, rows.kernel);
        let groups = PlaneSplit {
            per_task: 1,
            work: split.work,
        };
        for_each_target_plane(
            &mut grad_in,
            group.saturating_mul(in_vol),
            groups,
            Vec::new,
            |scratch, index, g| {
                let (first, count) = (index * group, g.len() / in_vol);
                let grads = &grad_out[first * out_vol..(first + count) * out_vol];
                interleave::adjoint_planes(taps, &divisors, lanes, grads, g, scratch);
            },
        )?;
        return into_array5(input_shape, grad_in);
    }
    let cover = windows::RowCover::of(&windows);
    for_each_target_plane(
        &mut grad_in,
        in_vol,
        split,
        avg::BackwardScratch::default,
        |scratch, p, g| {
            let grad_plane = &grad_out[p * out_vol..(p + 1) * out_vol];
            avg::avg_backward_plane(&windows, &cover, rule, grad_plane, g, scratch);
        },
    )?;
    into_array5(input_shape, grad_in)
}

/// Max pooling of `x (N, C, D, H, W)`, as PyTorch's `max_pool3d` (and `max_pool1d`,
/// `max_pool2d` with unit leading axes), with the indices of the maxima if asked;
/// floats or integers.
pub fn max_pool<T: MaxStorage>(
    x: ArrayView5<'_, T>,
    params: &PoolParams,
    return_indices: bool,
) -> Result<MaxPooled<T>> {
    let shape = shape5(&x);
    let input = spatial(shape);
    let output = params.output_dims(input)?;
    let windows = || Windows::strided(params, input, output);
    max_over(x, with_spatial(shape, output), windows, return_indices)
}

/// Gradient of max pooling (strided, adaptive or global) with respect to its input
/// of shape `input_shape`: each output gradient is added at its index.
pub fn max_pool_backward<T: Element>(
    grad_out: ArrayView5<'_, T>,
    indices: ArrayView5<'_, i64>,
    input_shape: Shape5,
    rank: usize,
) -> Result<Array5<T>> {
    check_rank(rank)?;
    let out_shape = shape5(&grad_out);
    check_shape("indices", shape5(&indices), "grad_out", out_shape, rank)?;
    check_planes(input_shape, out_shape, rank)?;
    let mut grad_in = alloc_zeroed::<T>(checked_product(&input_shape)?, "grad_input")?;
    let (grad_out, indices) = (standard(grad_out)?, standard(indices)?);
    let target = Target {
        name: "input",
        spatial: spatial(input_shape),
        rank,
        set_by: "input_shape, which must be the forward input's shape",
    };
    let source_len = spatial(out_shape).iter().product();
    scatter::scatter(
        as_slice(&grad_out)?,
        as_slice(&indices)?,
        source_len,
        &mut grad_in,
        target,
        Combine::Add,
    )?;
    into_array5(input_shape, grad_in)
}

/// Gradient of max unpooling with respect to its input `x`: `grad_out` read at
/// `indices` (the shape of `x`), plane by plane — the adjoint of the scatter.
/// Only moves values, so any element type (an integer `grad_out` too).
pub fn max_unpool_backward<T: Copy + Send + Sync + ZeroBits>(
    grad_out: ArrayView5<'_, T>,
    indices: ArrayView5<'_, i64>,
    rank: usize,
) -> Result<Array5<T>> {
    check_rank(rank)?;
    let (out_shape, in_shape) = (shape5(&grad_out), shape5(&indices));
    if out_shape[..2] != in_shape[..2] {
        return value_error!(
            "grad_out has {} images of {} channels but indices has {} of {}",
            out_shape[0],
            out_shape[1],
            in_shape[0],
            in_shape[1]
        );
    }
    let mut grad_x = alloc_zeroed::<T>(checked_product(&in_shape)?, "grad_x")?;
    let (grad_out, indices) = (standard(grad_out)?, standard(indices)?);
    let source = Target {
        name: "unpooled output",
        spatial: spatial(out_shape),
        rank,
        set_by: "grad_out",
    };
    scatter::gather(
        as_slice(&grad_out)?,
        as_slice(&indices)?,
        &mut grad_x,
        spatial(in_shape).iter().product(),
        source,
    )?;
    into_array5(in_shape, grad_x)
}

/// Max unpooling, as PyTorch's `max_unpool3d`: zeros of the output size with each
/// value of `x` written at its index (a repeated index keeps the last value).
/// Only moves values, so floats or integers.
pub fn max_unpool<T: Copy + Send + Sync + ZeroBits + AddAssign>(
    x: ArrayView5<'_, T>,
    indices: ArrayView5<'_, i64>,
    params: &UnpoolParams,
) -> Result<Array5<T>> {
    let shape = shape5(&x);
    check_shape("indices", shape5(&indices), "x", shape, params.rank)?;
    let output = params.output_dims(spatial(shape))?;
    let out_shape = with_spatial(shape, output);
    let mut out = alloc_zeroed::<T>(checked_product(&out_shape)?, "the output")?;
    let (x, indices) = (standard(x)?, standard(indices)?);
    let target = Target {
        name: "output",
        spatial: output,
        rank: params.rank,
        set_by: "output_size, or the default unpooled size",
    };
    let source_len = spatial(shape).iter().product();
    scatter::scatter(
        as_slice(&x)?,
        as_slice(&indices)?,
        source_len,
        &mut out,
        target,
        Combine::Assign,
    )?;
    into_array5(out_shape, out)
}

/// Average pooling, as PyTorch's `avg_pool3d`, with ONNX's dilation: the divisor
/// counts the window's taps inside the padded input (`count_include_pad`) or
/// inside the input.
pub fn avg_pool<T: Storage>(
    x: ArrayView5<'_, T>,
    params: &PoolParams,
    options: AvgOptions,
) -> Result<Array5<T>> {
    check_avg(options)?;
    let shape = shape5(&x);
    let input = spatial(shape);
    let output = params.output_dims(input)?;
    let windows = || Windows::strided(params, input, output);
    avg_over(
        x,
        with_spatial(shape, output),
        windows,
        divisor_rule(options),
    )
}

/// Gradient of [`avg_pool`] with respect to its input of shape `input_shape`.
pub fn avg_pool_backward<T: Element>(
    grad_out: ArrayView5<'_, T>,
    input_shape: Shape5,
    params: &PoolParams,
    options: AvgOptions,
) -> Result<Array5<T>> {
    check_avg(options)?;
    let input = spatial(input_shape);
    let output = params.output_dims(input)?;
    let out_shape = shape5(&grad_out);
    let expected = with_spatial(input_shape, output);
    check_shape(
        "grad_out",
        out_shape,
        "the output of the pooling",
        expected,
        params.rank,
    )?;
    let windows = || Windows::strided(params, input, output);
    avg_backward_over(grad_out, input_shape, windows, divisor_rule(options))
}

/// Adaptive average pooling to `output` cells per axis (PyTorch's
/// `adaptive_avg_pool3d`); a zero output size gives an empty result.
pub fn adaptive_avg_pool<T: Storage>(
    x: ArrayView5<'_, T>,
    output: Dims,
    rank: usize,
) -> Result<Array5<T>> {
    check_rank(rank)?;
    let shape = shape5(&x);
    let input = spatial(shape);
    check_adaptive_input(input, rank)?;
    let windows = || Windows::adaptive(input, output);
    avg_over(x, with_spatial(shape, output), windows, Divisor::Valid)
}

/// Gradient of [`adaptive_avg_pool`] with respect to its input of shape
/// `input_shape` (the output size is that of `grad_out`).
pub fn adaptive_avg_pool_backward<T: Element>(
    grad_out: ArrayView5<'_, T>,
    input_shape: Shape5,
    rank: usize,
) -> Result<Array5<T>> {
    check_rank(rank)?;
    let out_shape = shape5(&grad_out);
    check_planes(input_shape, out_shape, rank)?;
    let input = spatial(input_shape);
    check_adaptive_input(input, rank)?;
    let windows = || Windows::adaptive(input, spatial(out_shape));
    avg_backward_over(grad_out, input_shape, windows, Divisor::Valid)
}

/// Adaptive max pooling to `output` cells per axis (PyTorch's
/// `adaptive_max_pool3d`), with the indices of the maxima if asked; floats or
/// integers.
pub fn adaptive_max_pool<T: MaxStorage>(
    x: ArrayView5<'_, T>,
    output: Dims,
    rank: usize,
    return_indices: bool,
) -> Result<MaxPooled<T>> {
    check_rank(rank)?;
    let shape = shape5(&x);
    let input = spatial(shape);
    check_adaptive_input(input, rank)?;
    let windows = || Windows::adaptive(input, output);
    max_over(x, with_spatial(shape, output), windows, return_indices)
}

#[cfg(test)]
mod tests;
