//! The drivers that run a per-plane kernel over every `(n, c)` plane, as many
//! planes per task as the plan's [`PlaneSplit`] says, in parallel when the work
//! is large. Planes are independent and each is computed serially in a fixed
//! order, so results do not depend on the thread count.

use super::plan::PlaneSplit;
use crate::alloc::ZeroBits;
use crate::error::Result;
use crate::threads::for_each_chunk_mut;
use std::mem::MaybeUninit;

/// Run `body(workspace, plane, values, indices)` for every output plane:
/// `values` is that plane's `out_vol` outputs and `indices` its `out_vol`
/// indices, or empty when `indices` is empty (not requested); `workspace` is
/// made by `init` once per task and handed to each of its planes in turn
/// (scratch that small planes, thousands per call, would otherwise allocate
/// each time).
pub(crate) fn for_each_output_plane<V, I, W, F>(
    values: &mut [V],
    indices: &mut [I],
    out_vol: usize,
    split: PlaneSplit,
    init: impl Fn() -> W + Sync + Send,
    body: F,
) -> Result<()>
where
    V: Send,
    I: Send,
    F: Fn(&mut W, usize, &mut [V], &mut [I]) + Sync + Send,
{
    if out_vol == 0 || values.is_empty() {
        return Ok(());
    }
    let index_planes: Box<dyn Iterator<Item = &mut [I]>> = if indices.is_empty() {
        Box::new(std::iter::repeat_with(|| &mut [][..]))
    } else {
        Box::new(indices.chunks_mut(out_vol))
    };
    let mut jobs: Vec<(usize, &mut [V], &mut [I])> = values
        .chunks_mut(out_vol)
        .zip(index_planes)
        .enumerate()
        .map(|(plane, (v, i))| (plane, v, i))
        .collect();
    for_each_chunk_mut(
        &mut jobs,
        split.per_task,
        split.work,
        init,
        |workspace, _, chunk| {
            for (plane, values, indices) in chunk.iter_mut() {
                body(workspace, *plane, values, indices);
            }
        },
    )
}

/// Run `body(workspace, plane, target)` for every plane of `target`, which
/// holds planes of `plane_len` elements (e.g. an input gradient being
/// accumulated); `workspace` is made by `init` once per task and handed to each
/// of its planes in turn.
pub(crate) fn for_each_target_plane<T, W, F>(
    target: &mut [T],
    plane_len: usize,
    split: PlaneSplit,
    init: impl Fn() -> W + Sync + Send,
    body: F,
) -> Result<()>
where
    T: Send,
    F: Fn(&mut W, usize, &mut [T]) + Sync + Send,
{
    if plane_len == 0 || target.is_empty() {
        return Ok(());
    }
    let per_task = split.per_task;
    for_each_chunk_mut(
        target,
        per_task.saturating_mul(plane_len),
        split.work,
        init,
        |workspace, task, chunk| {
            for (i, plane) in chunk.chunks_mut(plane_len).enumerate() {
                body(workspace, task * per_task + i, plane);
            }
        },
    )
}

/// [`for_each_target_plane`] over a buffer not yet written: each plane is
/// zeroed by the task that then runs `body` on it (in cache, and in parallel:
/// zeroing the whole buffer first was a serial pass over memory).
pub(crate) fn for_each_zeroed_target_plane<T, W, F>(
    target: &mut [MaybeUninit<T>],
    plane_len: usize,
    split: PlaneSplit,
    init: impl Fn() -> W + Sync + Send,
    body: F,
) -> Result<()>
where
    T: ZeroBits + Send,
    F: Fn(&mut W, usize, &mut [T]) + Sync + Send,
{
    for_each_target_plane(target, plane_len, split, init, |workspace, index, plane| {
        // SAFETY: all-zero bytes are a valid `T` (`ZeroBits`), so after the
        // fill every element is initialised, and `MaybeUninit<T>` has the
        // layout of `T`.
        let plane = unsafe {
            std::ptr::write_bytes(plane.as_mut_ptr(), 0, plane.len());
            &mut *(plane as *mut [MaybeUninit<T>] as *mut [T])
        };
        body(workspace, index, plane);
    })
}
