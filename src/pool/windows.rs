//! The windows of one pooling problem as per-axis tables.
//!
//! A window is the product of its three per-axis windows, so the tables hold
//! `D_out + H_out + W_out` entries instead of one per output element.

use crate::element::Element;
use crate::error::{Error, Result};
use crate::geometry::{adaptive_window, AxisWindow, Dims, PoolParams, SPATIAL};

/// How an average divides the sum of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Divisor {
    /// The window clipped to the padded input (`count_include_pad=True`).
    Padded,
    /// The input cells the window reads (`count_include_pad=False`, adaptive).
    Valid,
    /// A fixed divisor (`divisor_override`).
    Fixed(i64),
}

/// Per-axis windows of a pooling problem on `(D, H, W)` planes.
#[derive(Debug, Clone)]
pub(crate) struct Windows {
    pub input: Dims,
    pub output: Dims,
    /// Distance between the cells of a window (the dilation).
    pub step: Dims,
    pub axes: [Vec<AxisWindow>; SPATIAL],
    /// Distance between the starts of neighbouring windows along the last axis,
    /// for strided windows (their interior windows all have the same shape).
    pub pitch: Option<usize>,
    /// The output columns `lo..hi` whose windows read their full kernel width:
    /// window `ow` there starts at `axes[2][lo].first + (ow - lo) * pitch`, so the
    /// vector kernels can read a run of them at a constant stride.
    pub interior: Option<(usize, usize)>,
    /// Every window's cells, where the row kernels have no run to work on (see
    /// [`Taps`]).
    pub taps: Option<Taps>,
}

/// Most cells a [`Taps`] table lists (256 KiB of offsets, in the L2 cache).
const TAP_LIMIT: usize = 1 << 16;

/// Every window's cells as plane offsets, in output order and, within a window,
/// in the scalar scan's order (so sums and maxima, ties and NaN included, come
/// out as the scan's). Made once per call, for problems whose rows hold fewer
/// than 8 full-width windows (small planes, adaptive pooling) or whose windows
/// are 3 or more cells apart: every plane has the same windows, so a plane then
/// costs one pass over the table instead of a walk of the per-axis tables and a
/// divisor per window, which on thousands of 7x7 planes cost several times the
/// sums themselves (and many small planes go through it side by side, see
/// `super::interleave`).
#[derive(Debug, Clone)]
pub(crate) struct Taps {
    /// Window `o` ends at `offsets[ends[o]]` (and starts where window `o - 1`
    /// ends, the first at 0).
    ends: Vec<u32>,
    offsets: Vec<u32>,
}

impl Taps {
    /// Each window's cells, in output order (every window has at least one).
    #[inline]
    pub fn windows(&self) -> impl Iterator<Item = &[u32]> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let cells = &self.offsets[start as usize..end as usize];
            start = end;
            cells
        })
    }

    /// The cells of all windows together (a cell read by two windows counts
    /// twice).
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// The table's size in bytes.
    pub fn bytes(&self) -> usize {
        (self.ends.len() + self.offsets.len()) * std::mem::size_of::<u32>()
    }
}

/// How the windows of an output row lie along it, for the gradients that add a
/// coefficient per window to each of its cells: where the windows leave no
/// gap between the first cell they read and the last, a row's coefficients can
/// be summed per cell first ([`RowCover::spread`]) and every input row of the
/// window row then takes one vectorised pass, instead of a strided loop per
/// window (which cost several times that on long rows).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowCover {
    /// The first cell the row's windows read.
    pub first: usize,
    /// Cells from `first` to the end of the last window.
    pub span: usize,
    /// Each window starts where the one before ends, cells one apart.
    pub tiled: bool,
    /// Tiled, or overlapping without a gap (starts and ends in order), cells
    /// one apart: every cell of the span is in some window.
    pub gapless: bool,
    /// The windows' common width, if they have one.
    pub uniform: Option<usize>,
    /// The distance between the windows' starts, if it is one for all of them.
    pitch: Option<usize>,
}

impl RowCover {
    pub fn of(windows: &Windows) -> Self {
        let row = &windows.axes[SPATIAL - 1];
        let unit = windows.step[SPATIAL - 1] == 1;
        let tiled = unit
            && row
                .windows(2)
                .all(|pair| pair[1].first == pair[0].first + pair[0].count);
        let gapless = unit
            && row.windows(2).all(|pair| {
                let end = pair[0].first + pair[0].count;
                pair[0].first <= pair[1].first
                    && pair[1].first <= end
                    && end <= pair[1].first + pair[1].count
            });
        let (first, span) = match (row.first(), row.last()) {
            (Some(a), Some(b)) => (a.first, b.first + b.count - a.first),
            _ => (0, 0),
        };
        let pitch = windows.pitch.filter(|&pitch| {
            pitch > 0
                && row
                    .iter()
                    .enumerate()
                    .all(|(o, w)| w.first == first + o * pitch)
        });
        let uniform = row
            .first()
            .map(|w| w.count)
            .filter(|&width| width > 0 && row.iter().all(|w| w.count == width));
        RowCover {
            first,
            span,
            tiled,
            gapless,
            uniform,
            pitch,
        }
    }

    /// `spread[i]`: the sum of `coefs[o]` over the windows `o` of `row` (the
    /// windows' last axis) that read cell `first + i`, for [`RowCover::gapless`]
    /// windows (`spread` is `span` long). Tiled windows fill their cells;
    /// others add tap by tap: one tap's adds go to distinct cells, so they do
    /// not wait on each other's stores.
    #[inline(always)]
    pub fn spread<T: Element>(&self, row: &[AxisWindow], coefs: &[T], spread: &mut [T]) {
        if self.tiled {
            // Each cell of the span in exactly one window: no zeroing (a zeroed
            // buffer read back at once stalled on the fill's stores).
            for (window, &c) in row.iter().zip(coefs) {
                let at = window.first - self.first;
                spread[at..at + window.count].fill(c);
            }
            return;
        }
        spread.fill(T::zero());
        match (self.uniform, self.pitch) {
            (Some(width), Some(pitch)) => {
                for tap in 0..width {
                    let cells = spread[tap..].iter_mut().step_by(pitch);
                    for (cell, &c) in cells.zip(coefs) {
                        *cell += c;
                    }
                }
            }
            _ => {
                let widest = row.iter().map(|w| w.count).max().unwrap_or(0);
                for tap in 0..widest {
                    for (window, &c) in row.iter().zip(coefs) {
                        if tap < window.count {
                            spread[window.first - self.first + tap] += c;
                        }
                    }
                }
            }
        }
    }
}

/// The run of full-width windows of `row` (see [`Windows::interior`]), if they
/// form one arithmetic run of at least one window.
fn interior(row: &[AxisWindow], full: usize, pitch: usize) -> Option<(usize, usize)> {
    let lo = row.iter().position(|w| w.count == full)?;
    let len = row[lo..].iter().take_while(|w| w.count == full).count();
    let first = row[lo].first;
    let arithmetic = row[lo..lo + len]
        .iter()
        .enumerate()
        .all(|(j, w)| w.first == first + j * pitch);
    arithmetic.then_some((lo, lo + len))
}

fn table(len: usize, window: impl Fn(usize) -> AxisWindow) -> Result<Vec<AxisWindow>> {
    let mut windows = Vec::new();
    windows.try_reserve_exact(len).map_err(|_| {
        Error::Memory(format!(
            "cannot allocate the window table of {len} positions"
        ))
    })?;
    windows.extend((0..len).map(window));
    Ok(windows)
}

impl Windows {
    /// Windows of max or average pooling; `output` must come from
    /// `params.output_dims(input)`.
    pub fn strided(params: &PoolParams, input: Dims, output: Dims) -> Result<Self> {
        let axis = |a: usize| table(output[a], |o| params.window(a, input[a], o));
        let axes = [axis(0)?, axis(1)?, axis(2)?];
        let pitch = params.stride[SPATIAL - 1];
        Ok(Self {
            input,
            output,
            step: params.dilation,
            interior: interior(&axes[2], params.kernel[SPATIAL - 1], pitch),
            axes,
            pitch: Some(pitch),
            taps: None,
        }
        .with_taps())
    }

    /// Windows of adaptive pooling from `input` to `output` cells per axis.
    pub fn adaptive(input: Dims, output: Dims) -> Result<Self> {
        let axis = |a: usize| table(output[a], |o| adaptive_window(o, input[a], output[a]));
        Ok(Self {
            input,
            output,
            step: [1; SPATIAL],
            axes: [axis(0)?, axis(1)?, axis(2)?],
            pitch: None,
            interior: None,
            taps: None,
        }
        .with_taps())
    }

    /// `self` with its [`Taps`] table where the row kernels would have no run of
    /// 8 windows at most 2 cells apart, the plane has fewer than 2^32 cells, the table fits
    /// [`TAP_LIMIT`] and no window is empty (else as it is: the scalar scan).
    fn with_taps(mut self) -> Self {
        // Runs of windows 3 or more cells apart have a table too: their
        // strided lanes gather, and many small planes of them interleave.
        let runs = self.interior.is_some_and(|(lo, hi)| hi - lo >= 8)
            && self.pitch.is_none_or(|pitch| pitch <= 2);
        let total = self.out_vol().checked_mul(self.max_window_vol());
        if runs
            || u32::try_from(self.in_vol()).is_err()
            || total.is_none_or(|total| total > TAP_LIMIT)
        {
            return self;
        }
        let step_w = self.step[SPATIAL - 1];
        let mut offsets = Vec::with_capacity(total.unwrap_or(0));
        let mut ends = Vec::with_capacity(self.out_vol());
        let mut rows = Vec::new();
        for wd in &self.axes[0] {
            for wh in &self.axes[1] {
                self.row_starts(wd, wh, &mut rows);
                for ww in &self.axes[2] {
                    let start = offsets.len();
                    for &row in &rows {
                        // Below 2^32: a cell of the plane (checked above).
                        offsets.extend((0..ww.count).map(|c| (row + ww.first + c * step_w) as u32));
                    }
                    if offsets.len() == start {
                        return self;
                    }
                    // At most TAP_LIMIT.
                    ends.push(offsets.len() as u32);
                }
            }
        }
        self.taps = Some(Taps { ends, offsets });
        self
    }

    pub fn in_vol(&self) -> usize {
        self.input.iter().product()
    }

    pub fn out_vol(&self) -> usize {
        self.output.iter().product()
    }

    /// Whether there is one window and it reads every cell of the plane (global
    /// pooling, or a kernel the size of the unpadded input).
    pub fn is_whole_plane(&self) -> bool {
        (0..SPATIAL).all(|axis| match self.axes[axis].as_slice() {
            [only] => only.first == 0 && only.count == self.input[axis],
            _ => false,
        })
    }

    /// The divisor of the first window under `rule` (of the only window when
    /// [`Windows::is_whole_plane`]).
    pub fn first_divisor<T: Element>(&self, rule: Divisor) -> T {
        let empty = AxisWindow {
            first: 0,
            count: 0,
            padded: 0,
        };
        let first = |axis: usize| self.axes[axis].first().copied().unwrap_or(empty);
        Self::divisor(rule, &first(0), &first(1), &first(2))
    }

    /// Input cells the largest window reads: the per-element cost of a plane.
    pub fn max_window_vol(&self) -> usize {
        self.axes
            .iter()
            .map(|t| t.iter().map(|w| w.count).max().unwrap_or(0))
            .fold(1usize, usize::saturating_mul)
    }

    /// Plane index of the start of every input row the windows of output row
    /// `(wd, wh)` read, in scan order, into `rows` (cleared first).
    pub fn row_starts(&self, wd: &AxisWindow, wh: &AxisWindow, rows: &mut Vec<usize>) {
        let [_, in_h, in_w] = self.input;
        let [step_d, step_h, _] = self.step;
        rows.clear();
        for a in 0..wd.count {
            for b in 0..wh.count {
                rows.push(((wd.first + a * step_d) * in_h + wh.first + b * step_h) * in_w);
            }
        }
    }

    /// Chunks of `lanes` interior output columns: the start of each, the last one
    /// moved back to end at the interior's end (it overlaps its neighbour, which
    /// recomputes a few outputs instead of leaving a scalar tail). Empty when the
    /// interior is narrower than `lanes`.
    pub fn interior_chunks(&self, lanes: usize) -> impl Iterator<Item = usize> {
        let (lo, hi) = self.interior.unwrap_or((0, 0));
        let len = hi - lo;
        let count = if lanes > 0 && len >= lanes {
            len.div_ceil(lanes)
        } else {
            0
        };
        (0..count).map(move |i| (lo + i * lanes).min(hi - lanes))
    }

    /// The divisor of the window `(wd, wh, ww)` under `rule`.
    pub fn divisor<T: Element>(
        rule: Divisor,
        wd: &AxisWindow,
        wh: &AxisWindow,
        ww: &AxisWindow,
    ) -> T {
        let cells = match rule {
            Divisor::Fixed(value) => return T::from(value).unwrap_or_else(T::nan),
            Divisor::Padded => [wd.padded, wh.padded, ww.padded],
            Divisor::Valid => [wd.count, wh.count, ww.count],
        };
        // A usize product (an integer divisor converted once, as PyTorch); wider
        // integers convert to floats in software, which dominated small windows.
        let product = cells.iter().fold(1usize, |acc, &c| acc.saturating_mul(c));
        T::from(product).unwrap_or_else(T::infinity)
    }
}
