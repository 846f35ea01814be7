//! How a pooling call runs, decided once per call from its windows: the kernel
//! of each output row's interior (the windows that read their full kernel
//! width, evenly spaced) and the cut of the `(n, c)` planes into parallel tasks.
//! Border windows always take the scalar scan; planes are independent and each
//! is computed serially in a fixed order, so results do not depend on the
//! thread count.

use super::windows::Windows;
use crate::kernels::MaxElement;
use crate::threads;

/// Element visits one parallel task should cover at least: planes are grouped so
/// that many tiny planes do not become many tiny tasks.
const TASK_WORK: usize = 1 << 14;

/// The cells a group of small planes gathers for one kernel call (window sums,
/// Lp pooling's passes): enough that the per-call setup and the partial
/// registers of 49-cell planes stop mattering, few enough to stay in cache.
/// On (64,512,7,7), 2x2, 2 threads: Lp p = 1.5 forward 1.83-1.93 -> 1.30 ms,
/// its backward 4.0 -> 2.6 ms.
pub(crate) const GROUP_CELLS: usize = 4096;

/// The kernel of the interior windows of every output row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowKernel {
    /// Every window through the scalar scan (no interior of at least 8 windows).
    Scalar,
    /// Runs of `lanes` (16 or 8) neighbouring windows computed together: every
    /// lane follows the scalar scan order, so the compiler makes vector compares
    /// (or adds) and blends of them.
    Lanes(usize),
    /// Runs of `lanes` windows two columns apart through the hand-written SIMD
    /// max kernel (`kernels::stride2_max`), in registers of its own width.
    Stride2Simd(usize),
    /// One window over the whole plane (global average pooling): a vector
    /// reduction of each contiguous plane, many planes per task.
    PlaneSum,
    /// Every window through the table of its cells ([`super::windows::Taps`]),
    /// where the rows have no run for the vector kernels.
    Taps,
    /// The tap table over `lanes` planes at once, one per vector lane (see
    /// [`super::interleave`]).
    Interleaved(usize),
}

impl RowKernel {
    /// Windows computed per chunk of the interior (0: none).
    pub fn lanes(self) -> usize {
        match self {
            RowKernel::Scalar
            | RowKernel::PlaneSum
            | RowKernel::Taps
            | RowKernel::Interleaved(_) => 0,
            RowKernel::Lanes(lanes) | RowKernel::Stride2Simd(lanes) => lanes,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RowKernel::Scalar => "scalar",
            RowKernel::Lanes(16) => "vector_runs_16",
            RowKernel::Lanes(_) => "vector_runs_8",
            RowKernel::Stride2Simd(_) => "stride2_simd",
            RowKernel::PlaneSum => "plane_sum",
            RowKernel::Taps => "tap_table",
            RowKernel::Interleaved(_) => "interleaved_planes",
        }
    }
}

/// The output columns `lo..hi` of every row that the row kernel computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowRuns {
    pub kernel: RowKernel,
    pub lo: usize,
    pub hi: usize,
}

/// How the `(n, c)` planes are cut into tasks: `per_task` planes each, for
/// `work` element visits in all (the pool runs only above a threshold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlaneSplit {
    pub per_task: usize,
    pub work: usize,
}

impl PlaneSplit {
    /// The split of `planes` planes that cost `plane_work` element visits each.
    pub fn new(planes: usize, plane_work: usize) -> Self {
        PlaneSplit {
            per_task: (TASK_WORK / plane_work.max(1)).max(1),
            work: planes.saturating_mul(plane_work),
        }
    }

    pub fn tasks(&self, planes: usize) -> usize {
        planes.div_ceil(self.per_task)
    }

    /// Planes a kernel call takes at once: small ones in groups of up to
    /// [`GROUP_CELLS`] cells (within a task), larger ones one by one; a whole
    /// task for the interleaved kernels, which cut it into lanes themselves.
    pub fn group(&self, in_vol: usize, kernel: RowKernel) -> usize {
        if let RowKernel::Interleaved(_) = kernel {
            return self.per_task;
        }
        self.per_task.min((GROUP_CELLS / in_vol.max(1)).max(1))
    }

    /// The split for `kernel`: tasks of whole sets of lanes for the interleaved
    /// kernels (a task of fewer planes would leave lanes idle), as it is for
    /// the others.
    pub fn for_kernel(self, kernel: RowKernel) -> Self {
        match kernel {
            RowKernel::Interleaved(lanes) => PlaneSplit {
                per_task: self.per_task.div_ceil(lanes).saturating_mul(lanes),
                work: self.work,
            },
            _ => self,
        }
    }

    /// Whether the tasks run on the calling thread.
    pub fn serial(&self, planes: usize) -> bool {
        self.tasks(planes) <= 1 || threads::runs_serially(self.work)
    }
}

/// The interior runs `lanes` windows at a time: 16 when at least 16 wide, else 8
/// when at least 8, else none.
fn interior_runs(windows: &Windows, allowed: bool) -> (usize, usize, usize) {
    match windows.interior {
        Some((lo, hi)) if allowed && hi - lo >= 16 => (16, lo, hi),
        Some((lo, hi)) if allowed && hi - lo >= 8 => (8, lo, hi),
        _ => (0, 0, 0),
    }
}

/// Largest window whose maximum goes through the table of its cells. The
/// table saves the per-window walk, which dominates small windows; a large
/// window's maximum is a long chain of compares either way, and there the scan
/// of its contiguous row pieces, with no offsets to load, was as fast or faster
/// (measured on adaptive max pooling: the two met at about 7x7 windows).
const MAX_TAP_WINDOW: usize = 48;

/// Where the rows have no run: the table of the windows' cells if the windows
/// have one (and, for maxima, are at most `max_window` cells), else the scalar
/// scan.
fn scalar_or_taps(windows: &Windows, max_window: usize) -> RowKernel {
    if windows.taps.is_some() && windows.max_window_vol() <= max_window {
        RowKernel::Taps
    } else {
        RowKernel::Scalar
    }
}

/// The row kernel of max pooling over planes of `plane_len` cells. A lane
/// remembers its winning tap as a `u32` offset, so planes beyond 2^32 cells take
/// the scalar scan; windows two columns apart take the SIMD kernel where the CPU
/// has one and the run fills its registers.
pub(crate) fn max_rows<T: MaxElement>(windows: &Windows, plane_len: usize) -> RowRuns {
    let (lanes, lo, hi) = interior_runs(windows, u32::try_from(plane_len).is_ok());
    let kernel = if lanes == 0 {
        scalar_or_taps(windows, MAX_TAP_WINDOW)
    } else if windows.pitch == Some(2) && lanes.is_multiple_of(T::MAX_LANES) && T::has_stride2_max()
    {
        RowKernel::Stride2Simd(lanes)
    } else {
        RowKernel::Lanes(lanes)
    };
    RowRuns { kernel, lo, hi }
}

/// What a pass does per tap of a window, which decides where interleaving pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TapWork {
    /// Forward sums: the scalar table adds a tap in a cycle or so.
    Sums,
    /// Maxima: a compare-and-select chain, several cycles a tap.
    Maxima,
    /// The average's adjoint: a read-modify-write of the cell.
    Adjoint,
}

/// `rows` with the tap table run over `lanes` planes at once
/// ([`RowKernel::Interleaved`]) where that pays: the windows have a table, there
/// are planes to fill more than one lane, the cell-major copy of `lanes` planes
/// fits [`super::interleave::INTERLEAVE_CELLS`], and the windows read enough
/// cells for the copy (about a move per cell) to be repaid: as many taps as
/// cells for [`TapWork::Sums`], a quarter as many for [`TapWork::Maxima`], and
/// for [`TapWork::Adjoint`] as [`adjoint_repays`] estimates. On 7x7 planes, 2x2
/// windows (36 taps), forward averages were up to 25 % slower interleaved,
/// maxima with indices 1.6-3x faster, the adjoint 2.5-3x.
///
/// Windows 3 or more cells apart have a table even where their rows have runs
/// for the row kernels, whose lanes then gather: maxima interleave there
/// (3-4x faster on (32,85,21,73) 2x4 stride (2,4)), while sums and the adjoint
/// keep the row kernels (20-60 % slower interleaved: windows that tile their
/// rows read each cell once, and the row pass adds it once).
pub(crate) fn interleaved(
    rows: RowRuns,
    windows: &Windows,
    planes: usize,
    lanes: usize,
    work: TapWork,
) -> RowRuns {
    let Some(taps) = &windows.taps else {
        return rows;
    };
    let in_vol = windows.in_vol();
    let repaid = match work {
        TapWork::Sums => taps.len() >= in_vol,
        TapWork::Maxima => taps.len().saturating_mul(4) >= in_vol,
        TapWork::Adjoint => adjoint_repays(windows, taps.len()),
    };
    let pays = planes >= 2
        && in_vol.saturating_mul(lanes) <= super::interleave::INTERLEAVE_CELLS
        && repaid;
    let replaces = match rows.kernel {
        RowKernel::Taps | RowKernel::Scalar => true,
        RowKernel::Lanes(_) => match work {
            TapWork::Maxima => true,
            // Sums replace the gathering lanes where windows overlap (a
            // quarter more taps than cells), not where they tile their rows.
            TapWork::Sums => taps.len() / 5 * 4 > in_vol,
            TapWork::Adjoint => false,
        },
        _ => false,
    };
    if pays && replaces {
        RowRuns {
            kernel: RowKernel::Interleaved(lanes),
            lo: 0,
            hi: 0,
        }
    } else {
        rows
    }
}

/// Whether the interleaved adjoint beats the window-by-window one, in rough
/// cycles per plane fitted to both on 7x7, 28x28 and 9x9x9 planes: the window
/// walk costs about 30 a window and 8 an input row it reads; interleaved, a
/// cell costs about 5 (zeroing, the copy out) and a tap a quarter. (Windows
/// that tile 28x28 planes, 4x4 each: 3150 against 4200, window by window;
/// 2x2 windows on 7x7 planes: three times as fast interleaved.)
fn adjoint_repays(windows: &Windows, taps: usize) -> bool {
    let count = |axis: usize| {
        windows.axes[axis]
            .iter()
            .map(|w| w.count)
            .max()
            .unwrap_or(0)
    };
    let rows = count(0).saturating_mul(count(1));
    let walk = windows
        .out_vol()
        .saturating_mul(rows.saturating_mul(8).saturating_add(30));
    walk > windows.in_vol().saturating_mul(5).saturating_add(taps / 4)
}

/// The plan of window sums over `planes` planes of `T`: the row kernel (one
/// window over a whole plane takes the plane reduction when `plane_sums`
/// allows it; many small planes interleave) and the split of the planes into
/// tasks.
pub(crate) fn sums_plan<T>(
    windows: &Windows,
    planes: usize,
    plane_sums: bool,
) -> (RowRuns, PlaneSplit) {
    let rows = avg_rows(windows, plane_sums);
    let lanes = super::interleave::lanes_of::<T>();
    let rows = interleaved(rows, windows, planes, lanes, TapWork::Sums);
    let work = windows.out_vol().saturating_mul(windows.max_window_vol());
    (rows, PlaneSplit::new(planes, work).for_kernel(rows.kernel))
}

/// The row kernel of window sums; one window over a whole plane takes the plane
/// reduction when `plane_sums` (averages) allows it.
pub(crate) fn avg_rows(windows: &Windows, plane_sums: bool) -> RowRuns {
    if plane_sums && windows.is_whole_plane() {
        return RowRuns {
            kernel: RowKernel::PlaneSum,
            lo: 0,
            hi: 0,
        };
    }
    let (lanes, lo, hi) = interior_runs(windows, true);
    let kernel = if lanes == 0 {
        scalar_or_taps(windows, usize::MAX)
    } else {
        RowKernel::Lanes(lanes)
    };
    RowRuns { kernel, lo, hi }
}
