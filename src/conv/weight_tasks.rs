//! How a weight gradient is cut into tasks: blocks of output channels (rows)
//! times blocks of taps, per group. A task sums its block over every image, so
//! each weight is computed by exactly one task in a fixed order (the sizes are
//! chosen by the plan; they change only which task owns a weight, never the
//! order of its sum).

use super::geometry::ConvGeometry;
use crate::element::Element;
use crate::kernels::{dot_acc_len, SharedMut, DC, DR};
use std::ops::Range;

/// The task grid of one weight gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WeightTasks {
    /// Taps per task (a multiple of the dot kernel's [`DC`], except the last).
    pub tap_chunk: usize,
    /// Output channels per task.
    pub row_chunk: usize,
    tap_chunks: usize,
    row_chunks: usize,
}

impl WeightTasks {
    /// Tasks of `tap_chunk` taps by `row_chunk` output channels of `geo`.
    pub fn new(geo: &ConvGeometry, tap_chunk: usize, row_chunk: usize) -> Self {
        let (tap_chunk, row_chunk) = (tap_chunk.max(1), row_chunk.max(1));
        WeightTasks {
            tap_chunk,
            row_chunk,
            tap_chunks: geo.k_len().div_ceil(tap_chunk),
            row_chunks: geo.cog().div_ceil(row_chunk),
        }
    }

    pub fn tasks(&self, geo: &ConvGeometry) -> usize {
        geo.groups * self.row_chunks * self.tap_chunks
    }

    /// How many times each input value is gathered (once per block of rows).
    pub fn row_chunks(&self) -> usize {
        self.row_chunks
    }

    /// Elements of a task's lane sums.
    pub fn sums_len<T: Element>(&self) -> usize {
        self.row_chunk.div_ceil(DR) * self.tap_chunk.div_ceil(DC) * dot_acc_len::<T>()
    }

    /// Group, output channels (within the group) and taps of task `task`.
    pub fn task(&self, geo: &ConvGeometry, task: usize) -> (usize, Range<usize>, Range<usize>) {
        let (k_len, cog) = (geo.k_len(), geo.cog());
        let g = task / (self.row_chunks * self.tap_chunks);
        let (rc, tc) = (
            (task / self.tap_chunks) % self.row_chunks,
            task % self.tap_chunks,
        );
        let taps = tc * self.tap_chunk..((tc + 1) * self.tap_chunk).min(k_len);
        let rows = rc * self.row_chunk..((rc + 1) * self.row_chunk).min(cog);
        (g, rows, taps)
    }

    /// Add up the lane sums of task `task` (dot-kernel blocks, rows then taps)
    /// into its weight gradients.
    ///
    /// # Safety
    /// No other thread may be writing the task's weights (its taps of its output
    /// channels) in `shared` meanwhile.
    pub unsafe fn write_task<T: Element>(
        &self,
        geo: &ConvGeometry,
        task: usize,
        sums: &[T],
        shared: &SharedMut<'_, T>,
    ) {
        let (k_len, cog) = (geo.k_len(), geo.cog());
        let (g, rows, taps) = self.task(geo, task);
        let tap_blocks = taps.len().div_ceil(DC);
        let block = dot_acc_len::<T>();
        for (bi, r0) in rows.clone().step_by(DR).enumerate() {
            for (bj, t0) in taps.clone().step_by(DC).enumerate() {
                let acc = &sums[(bi * tap_blocks + bj) * block..][..block];
                for (r, co) in (r0..rows.end.min(r0 + DR)).enumerate() {
                    let start = (g * cog + co) * k_len + t0;
                    let count = taps.end.min(t0 + DC) - t0;
                    // SAFETY: the caller guarantees nobody else writes these
                    // weights now.
                    let dst = unsafe { shared.range(start, count) };
                    for (c, total) in dst.iter_mut().enumerate() {
                        let lanes = &acc[(r * DC + c) * T::LANES..][..T::LANES];
                        *total = lanes.iter().fold(T::zero(), |s, &v| s + v);
                    }
                }
            }
        }
    }
}
