//! Winograd F(4x4, 3x3) forward pass for 3x3, stride-1, undilated 2-D convolutions.
//!
//! Each 6x6 input patch `d` and 3x3 filter `g` are transformed (`V = B^T d B`,
//! `U = G g G^T`); the 36 element-wise products summed over input channels are 36
//! GEMMs `M[xi] = U[xi] . V[xi]`, and `Y = A^T M A` gives a 4x4 output tile. That is
//! 4x fewer multiplications than direct convolution. Tiles are processed in blocks
//! of one micro-kernel panel (`NR` tiles) so the workspace stays in L2, with the
//! same block decomposition whatever the thread count.

use super::epilogue::Epilogue;
use super::geometry::ConvGeometry;
use crate::alloc::{alloc_uninit, assume_init};
use crate::element::Element;
use crate::error::Result;
#[cfg(target_arch = "x86_64")]
use crate::kernels::Isa;
use crate::kernels::{
    accumulator, dispatch, gemm_rows, packed_a_len, simd_twins, AMatrix, SharedMut, MR,
};
use crate::threads::for_each_task;
use std::mem::MaybeUninit;

/// Output tile edge, input patch edge, and number of transformed points.
const M: usize = 4;
const PATCH: usize = 6;
const POINTS: usize = PATCH * PATCH;
/// Marks a padded cell that reads zero.
const ZERO: usize = usize::MAX;

/// `B^T` (interpolation points 0, -1, 1, -2, 2, infinity); the kernels apply it
/// (and `A^T`) through the factored formulas of [`input_transform`] and
/// [`output_transform`], tested equal to these matrices.
#[cfg(test)]
const BT: [[f64; 6]; 6] = [
    [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];
const G: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];
#[cfg(test)]
const AT: [[f64; 6]; 4] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
    [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
];

/// How the Winograd forward is cut into tasks: the tiles of all images, in
/// order, into blocks of `block` tiles (the lanes of its transforms and the
/// columns of its GEMMs: at most a micro-kernel panel, whole vector registers, so
/// a small image at batch 1 does not pay for a full panel), and each group's
/// output channels into chunks of `channels` (a multiple of the micro-kernel's
/// rows; every chunk transforms its block's inputs again). A task is one block,
/// group and chunk. Neither changes any sum: results are the same for any split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TileBlocks {
    pub block: usize,
    pub channels: usize,
}

impl TileBlocks {
    /// Blocks the tiles are cut into.
    pub fn blocks(&self, geo: &ConvGeometry) -> usize {
        tiles(geo).div_ceil(self.block.max(1))
    }

    /// Chunks each group's output channels are cut into.
    pub fn chunks(&self, geo: &ConvGeometry) -> usize {
        geo.cog().div_ceil(self.channels.max(1)).max(1)
    }

    /// Parallel tasks: blocks x groups x chunks.
    pub fn tasks(&self, geo: &ConvGeometry) -> usize {
        self.blocks(geo) * geo.groups * self.chunks(geo)
    }
}

/// Output tiles of all images.
pub(crate) fn tiles(geo: &ConvGeometry) -> usize {
    let [_, oh, ow] = geo.output;
    geo.n * oh.div_ceil(M) * ow.div_ceil(M)
}

/// Input channels per lane block of [`transform_filters`]: `MR` filters each
/// (a panel's rows), so a block's 36 results are contiguous runs of the packed
/// A operands and its buffers stay in L1/L2.
const FILTER_BLOCK_CHANNELS: usize = 32;
/// Lanes of one block: `(ci, r)` for `FILTER_BLOCK_CHANNELS` input channels
/// and the `MR` rows of a panel.
const FILTER_LANES: usize = FILTER_BLOCK_CHANNELS * MR;
/// Elements of one filter-transform worker's buffer: taps `[9]`, `G g` `[18]`
/// and `U` `[36]`, each `FILTER_LANES` long.
pub(crate) const FILTER_WORKSPACE: usize = (9 + 18 + POINTS) * FILTER_LANES;

/// `U = G g G^T` for every filter, packed per group and point as GEMM A operands
/// (`cog x cig`): `packed[(g * POINTS + xi) * per_point ..]`. One task per A
/// panel (`MR` output channels) of a group, in parallel; the filters of a block
/// of input channels are the lanes of the arithmetic, laid out as the packed
/// panel is (`ci * MR + r`), so each point's results are copied out as one run
/// (a call at batch 1 would otherwise spend longer here than in its GEMMs).
/// Each value is the same sum in the same order as the matrix product
/// `sum_c G[s][c] (sum_k G[r][k] g[k][c])`, terms added from zero; the rows past
/// `cog` of a last panel transform zero taps, which gives the zeros packing needs.
fn transform_filters<T: Element>(geo: &ConvGeometry, w: &[T]) -> Result<Vec<T>> {
    let (cig, cog) = (geo.cig(), geo.cog());
    let per_point = packed_a_len(cog, cig);
    let panels = cog.div_ceil(MR);
    let mut packed = alloc_uninit::<T>(geo.groups * POINTS * per_point, "Winograd filters")?;
    let shared = SharedMut::new(&mut packed);
    let init = || vec![T::zero(); FILTER_WORKSPACE];
    let work = geo.c_out.saturating_mul(cig).saturating_mul(162);
    for_each_task(geo.groups * panels, work, init, |ws, task| {
        let (g, panel) = (task / panels, task % panels);
        let block = FilterPanel {
            geo,
            w,
            g,
            panel,
            per_point,
            out: &shared,
        };
        #[cfg(target_arch = "x86_64")]
        match crate::kernels::isa::active() {
            // SAFETY: the CPU supports AVX-512F (`active` never exceeds it).
            Isa::Avx512 => unsafe { block.transform_avx512(ws) },
            // SAFETY: the CPU supports AVX2 and FMA (as above).
            Isa::Avx2 => unsafe { block.transform_avx2(ws) },
            Isa::Portable => block.transform(ws),
        }
        #[cfg(not(target_arch = "x86_64"))]
        block.transform(ws);
    })?;
    // SAFETY: every element was written: the tasks cover every (group, panel),
    // their blocks every input channel, and each block all `MR` rows of its
    // channels at every point, which is `groups * POINTS * per_point` elements.
    Ok(unsafe { assume_init(packed) })
}

/// One task of [`transform_filters`]: A panel `panel` of group `g`.
struct FilterPanel<'a, T> {
    geo: &'a ConvGeometry,
    w: &'a [T],
    g: usize,
    panel: usize,
    per_point: usize,
    out: &'a SharedMut<'a, MaybeUninit<T>>,
}

impl<T: Element> FilterPanel<'_, T> {
    /// [`FilterPanel::transform`] compiled for AVX-512, so its lane loops use
    /// 512-bit vectors.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn transform_avx512(&self, ws: &mut [T]) {
        self.transform(ws)
    }

    /// [`FilterPanel::transform`] compiled for AVX2 and FMA.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn transform_avx2(&self, ws: &mut [T]) {
        self.transform(ws)
    }

    /// Transform and pack the panel's filters, a block of input channels at a time.
    #[inline(always)]
    fn transform(&self, ws: &mut [T]) {
        let (cig, cog) = (self.geo.cig(), self.geo.cog());
        let valid = MR.min(cog - self.panel * MR);
        for ci0 in (0..cig).step_by(FILTER_BLOCK_CHANNELS) {
            let channels = FILTER_BLOCK_CHANNELS.min(cig - ci0);
            let lanes = channels * MR;
            // taps[k][ci * MR + r] = tap k of filter (row panel * MR + r, ci0 + ci);
            // rows past `cog` are zero.
            let taps = &mut ws[..9 * FILTER_LANES];
            for r in 0..MR {
                if r >= valid {
                    for k in 0..9 {
                        taps[k * FILTER_LANES..][..lanes]
                            .iter_mut()
                            .skip(r)
                            .step_by(MR)
                            .for_each(|t| *t = T::zero());
                    }
                    continue;
                }
                let row = self.g * cog + self.panel * MR + r;
                let src = &self.w[(row * cig + ci0) * 9..][..channels * 9];
                for (ci, filter) in src.chunks_exact(9).enumerate() {
                    for (k, &v) in filter.iter().enumerate() {
                        taps[k * FILTER_LANES + ci * MR + r] = v;
                    }
                }
            }
            filter_transform(lanes, ws);
            let u = &ws[27 * FILTER_LANES..];
            for xi in 0..POINTS {
                let at = (self.g * POINTS + xi) * self.per_point + (self.panel * cig + ci0) * MR;
                // SAFETY: task (g, panel) is the only writer of A panel `panel` of
                // group g at every point, and each block writes its own input
                // channels' run of it.
                let dst = unsafe { self.out.range(at, lanes) };
                for (d, &v) in dst.iter_mut().zip(&u[xi * FILTER_LANES..][..lanes]) {
                    d.write(v);
                }
            }
        }
    }
}

/// `U = G g G^T` over the first `lanes` lanes of `ws`: taps `[9][FILTER_LANES]`
/// in, `G g` `[18][FILTER_LANES]` and then `U` `[36][FILTER_LANES]` after them.
#[inline(always)]
fn filter_transform<T: Element>(lanes: usize, ws: &mut [T]) {
    let g_matrix: [[T; 3]; 6] = G.map(|row| row.map(|v| T::from(v).unwrap_or_else(T::zero)));
    let (taps, rest) = ws.split_at_mut(9 * FILTER_LANES);
    let (gg, u) = rest.split_at_mut(18 * FILTER_LANES);
    let row = |data: &[T], i: usize| -> [T; FILTER_LANES] {
        let mut out = [T::zero(); FILTER_LANES];
        out[..lanes].copy_from_slice(&data[i * FILTER_LANES..][..lanes]);
        out
    };
    // (G g)[r][c] = sum_k G[r][k] g[k][c], with g[k][c] the tap k * 3 + c.
    for c in 0..3 {
        let (t0, t1, t2) = (row(taps, c), row(taps, 3 + c), row(taps, 6 + c));
        for (r, g_row) in g_matrix.iter().enumerate() {
            let out = &mut gg[(r * 3 + c) * FILTER_LANES..][..lanes];
            for (f, o) in out.iter_mut().enumerate() {
                *o = T::zero() + g_row[0] * t0[f] + g_row[1] * t1[f] + g_row[2] * t2[f];
            }
        }
    }
    // U[r][s] = sum_c G[s][c] (G g)[r][c], at point r * 6 + s.
    for r in 0..6 {
        let (t0, t1, t2) = (row(gg, r * 3), row(gg, r * 3 + 1), row(gg, r * 3 + 2));
        for (s, g_row) in g_matrix.iter().enumerate() {
            let out = &mut u[(r * PATCH + s) * FILTER_LANES..][..lanes];
            for (f, o) in out.iter_mut().enumerate() {
                *o = T::zero() + g_row[0] * t0[f] + g_row[1] * t1[f] + g_row[2] * t2[f];
            }
        }
    }
}

/// Input cell of each padded coordinate `0 .. tiles * M + 2` along one axis, or ZERO.
fn axis_sources(geo: &ConvGeometry, axis: usize, tiles: usize) -> Vec<usize> {
    (0..tiles * M + 2)
        .map(|i| {
            let padded = i as isize - geo.pad_lo[axis] as isize;
            geo.padding_mode
                .source_index(padded, geo.input[axis])
                .unwrap_or(ZERO)
        })
        .collect()
}

struct Workspace<T> {
    /// Input patches `[6][6][NR]`, then their transforms through `t1`.
    patches: Vec<T>,
    t1: Vec<T>,
    /// Transformed inputs: `[point][cig][block]` (one row-major GEMM B per point).
    v: Vec<T>,
    /// GEMM results: `[point][channels][block]`.
    m: Vec<T>,
    /// Output tiles `[4][4][NR]` of one channel.
    y: Vec<T>,
    acc: Vec<T>,
    /// Runs of a block whose patches read consecutive input columns: first lane,
    /// tiles, image, padded top row, input column of the first patch.
    runs: Vec<(usize, usize, usize, usize, usize)>,
    /// Other tiles of a block: lane, image, padded top-left coordinates.
    border: Vec<(usize, usize, usize, usize)>,
    /// Runs of whole-width output tiles: first lane, tiles, image, top-left cell.
    out_runs: Vec<(usize, usize, usize, usize, usize)>,
    /// Narrower output tiles: lane, image, top-left cell.
    out_tiles: Vec<(usize, usize, usize, usize)>,
    /// Residual values of the output run about to be written, when the output
    /// holds them (see `Epilogue::save_uninit`).
    saved: Vec<T>,
}

/// `B^T d` for one column `d` of a patch (the interpolation points 0, -1, 1, -2,
/// 2, infinity), with the usual shared sub-expressions: 12 additions and 8
/// multiplications instead of 22 multiply-adds.
#[inline(always)]
fn input_transform<T: Element>(d: [T; PATCH]) -> [T; PATCH] {
    let (two, four, five) = (
        T::one() + T::one(),
        T::from(4.0).unwrap_or_else(T::zero),
        T::from(5.0).unwrap_or_else(T::zero),
    );
    let a = d[4] - four * d[2];
    let b = d[3] - four * d[1];
    let c = d[4] - d[2];
    let e = two * (d[3] - d[1]);
    [
        four * d[0] - five * d[2] + d[4],
        a + b,
        a - b,
        c + e,
        c - e,
        four * d[1] - five * d[3] + d[5],
    ]
}

/// `A^T m` for one column `m` of a transformed tile.
#[inline(always)]
fn output_transform<T: Element>(m: [T; PATCH]) -> [T; M] {
    let (two, four, eight) = (
        T::one() + T::one(),
        T::from(4.0).unwrap_or_else(T::zero),
        T::from(8.0).unwrap_or_else(T::zero),
    );
    let (a, b) = (m[1] + m[2], m[1] - m[2]);
    let (c, d) = (m[3] + m[4], m[3] - m[4]);
    [
        m[0] + a + c,
        b + two * d,
        a + four * c,
        b + eight * d + m[5],
    ]
}

/// Apply `f` to every lane of the runs `src_at(0..6)` of `width` values, writing
/// its `R` results to the runs `dst_at(0..R)`: a transform of a whole block of tiles
/// at once, the tiles being the SIMD lanes (chunks of `L` lanes kept in
/// registers).
#[inline(always)]
fn transform_lanes<T: Element, const L: usize, const R: usize>(
    src: &[T],
    src_at: impl Fn(usize) -> usize,
    dst: &mut [T],
    dst_at: impl Fn(usize) -> usize,
    width: usize,
    f: impl Fn([T; PATCH]) -> [T; R],
) {
    for offset in (0..width - width % L).step_by(L) {
        // Fixed-size copies: no bounds checks left in the lane loop, which the
        // compiler then turns into whole-register arithmetic.
        let mut input = [[T::zero(); L]; PATCH];
        for (k, values) in input.iter_mut().enumerate() {
            values.copy_from_slice(&src[src_at(k) + offset..][..L]);
        }
        let mut out = [[T::zero(); L]; R];
        for i in 0..L {
            let column = f(std::array::from_fn(|k| input[k][i]));
            for (o, v) in out.iter_mut().zip(column) {
                o[i] = v;
            }
        }
        for (r, values) in out.iter().enumerate() {
            dst[dst_at(r) + offset..][..L].copy_from_slice(values);
        }
    }
    for lane in width - width % L..width {
        let column = f(std::array::from_fn(|k| src[src_at(k) + lane]));
        for (r, v) in column.into_iter().enumerate() {
            dst[dst_at(r) + lane] = v;
        }
    }
}

/// [`transform_lanes`] with 64-byte chunks (16 `f32` or 8 `f64` lanes).
#[inline(always)]
fn transform<T: Element, const R: usize>(
    src: &[T],
    src_at: impl Fn(usize) -> usize,
    dst: &mut [T],
    dst_at: impl Fn(usize) -> usize,
    width: usize,
    f: impl Fn([T; PATCH]) -> [T; R],
) {
    if std::mem::size_of::<T>() == 4 {
        transform_lanes::<T, 16, R>(src, src_at, dst, dst_at, width, f)
    } else {
        transform_lanes::<T, 8, R>(src, src_at, dst, dst_at, width, f)
    }
}

/// Everything the per-block routine reads.
struct Plan<'a, T> {
    geo: &'a ConvGeometry,
    x: &'a [T],
    filters: &'a [T],
    bias: Option<&'a [T]>,
    epilogue: &'a Epilogue<'a, T>,
    out: &'a SharedMut<'a, MaybeUninit<T>>,
    rows: Vec<usize>,
    cols: Vec<usize>,
    tiles: usize,
    tiles_w: usize,
    /// Tiles per block and output channels per chunk (see [`TileBlocks`]).
    block: usize,
    channels: usize,
}

impl<T> Plan<'_, T> {
    /// Whether the patches from padded column `c0` read six consecutive input
    /// columns (no padding, no mapping; their rows may be padding or mapped).
    fn columns_inside(&self, c0: usize) -> bool {
        let first = self.cols[c0];
        first != ZERO && (1..PATCH).all(|i| self.cols[c0 + i] == first + i)
    }
}

/// `out = epilogue(conv(x, w) + bias)` by Winograd F(4x4, 3x3); every element of
/// `out` is written (once).
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<T: Element>(
    geo: &ConvGeometry,
    split: TileBlocks,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    epilogue: &Epilogue<'_, T>,
    out: &mut [MaybeUninit<T>],
) -> Result<()> {
    let (cig, nr) = (geo.cig(), T::NR);
    let [_, oh, ow] = geo.output;
    let (tiles_h, tiles_w) = (oh.div_ceil(M), ow.div_ceil(M));
    let tiles = tiles_h * tiles_w;
    let (blocks, chunks) = (split.blocks(geo), split.chunks(geo));
    let channels = split.channels.clamp(1, geo.cog().max(1));
    let block = split.block.clamp(1, nr);
    let filters = transform_filters(geo, w)?;
    let out_shared = SharedMut::new(out);
    let plan = Plan {
        geo,
        x,
        filters: &filters,
        bias,
        epilogue,
        out: &out_shared,
        rows: axis_sources(geo, 1, tiles_h),
        cols: axis_sources(geo, 2, tiles_w),
        tiles,
        tiles_w,
        block,
        channels,
    };
    let init = || Workspace {
        patches: vec![T::zero(); POINTS * nr],
        t1: vec![T::zero(); POINTS * nr],
        v: vec![T::zero(); POINTS * cig * block],
        m: vec![T::zero(); POINTS * channels * block],
        y: vec![T::zero(); M * M * nr],
        acc: accumulator::<T>(),
        runs: Vec::with_capacity(nr),
        border: Vec::with_capacity(nr),
        out_runs: Vec::with_capacity(nr),
        out_tiles: Vec::with_capacity(nr),
        saved: Vec::new(),
    };
    let tasks = geo.groups * blocks * chunks;
    for_each_task(tasks, geo.work() / 4, init, |ws, task| {
        let (group, rest) = (task / (blocks * chunks), task % (blocks * chunks));
        let (block, chunk) = (rest / chunks, rest % chunks);
        let task = Task {
            group,
            block,
            chunk,
        };
        dispatch!(run_block, run_block_avx512, run_block_avx2, &plan, ws, task)
    })
}

/// One task: a block of tiles of one group, for one chunk of its output channels.
#[derive(Clone, Copy)]
struct Task {
    group: usize,
    block: usize,
    chunk: usize,
}

// [`run_block`] compiled per instruction set, so its tile loops use its vectors.
simd_twins! {
    run_block => run_block_avx512, run_block_avx2,
    <T: Element>(plan: &Plan<'_, T>, ws: &mut Workspace<T>, task: Task)
}

/// One block of tiles of one group, for one chunk of its output channels:
/// transform, 36 GEMMs, inverse.
#[inline(always)]
fn run_block<T: Element>(plan: &Plan<'_, T>, ws: &mut Workspace<T>, task: Task) {
    let geo = plan.geo;
    let g = task.group;
    let (cig, cog, nr) = (geo.cig(), geo.cog(), T::NR);
    let [_, oh, ow] = geo.output;
    let [_, ih, iw] = geo.input;
    let (in_vol, out_vol) = (ih * iw, oh * ow);
    let first = task.block * plan.block;
    let count = plan.block.min(geo.n * plan.tiles - first);
    // Lanes the transforms run over: the block's tiles in whole vector registers
    // (the lanes past `count` hold zero patches and are never written out).
    let width = count.next_multiple_of(T::LANES).min(nr);
    // Row stride of the transformed inputs and GEMM results: the block's width.
    let ld = plan.block;
    let c0 = task.chunk * plan.channels;
    let rows = plan.channels.min(cog - c0);
    // Image and top-left output cell of tile j of the block.
    let origin = |j: usize| {
        let (n, tile) = ((first + j) / plan.tiles, (first + j) % plan.tiles);
        (n, (tile / plan.tiles_w) * M, (tile % plan.tiles_w) * M)
    };
    // Runs of neighbouring tiles whose patches read consecutive input columns
    // (each patch row split into the lanes four columns at a time), and the other
    // tiles (mapped one cell at a time); lanes past `count` stay zero.
    ws.runs.clear();
    ws.border.clear();
    let mut j = 0;
    while j < count {
        let (n, r0, c0) = origin(j);
        if !plan.columns_inside(c0) {
            ws.border.push((j, n, r0, c0));
            j += 1;
            continue;
        }
        let mut len = 1;
        while j + len < count {
            let (n2, r2, c2) = origin(j + len);
            if n2 != n || r2 != r0 || c2 != c0 + len * M || !plan.columns_inside(c2) {
                break;
            }
            len += 1;
        }
        ws.runs.push((j, len, n, r0, plan.cols[c0]));
        j += len;
    }
    // Output runs: neighbouring whole-width tiles of one tile row (written a row
    // of 4 * len cells at a time), and the narrower tiles of the right edge.
    ws.out_runs.clear();
    ws.out_tiles.clear();
    for j in 0..count {
        let (n, r0, c0) = origin(j);
        if c0 + M > ow {
            ws.out_tiles.push((j, n, r0, c0));
            continue;
        }
        match ws.out_runs.last_mut() {
            Some((j0, len, n0, r, c))
                if *n0 == n && *r == r0 && *c + M * *len == c0 && *j0 + *len == j =>
            {
                *len += 1
            }
            _ => ws.out_runs.push((j, 1, n, r0, c0)),
        }
    }
    for point in ws.patches.chunks_exact_mut(nr) {
        point[count..].fill(T::zero());
    }
    // 1. V[point][ci][j] = B^T d B for the patch of tile j of channel ci.
    for ci in 0..cig {
        let channel = g * cig + ci;
        for &(j0, len, n, r0, first_col) in &ws.runs {
            let plane = &plan.x[(n * geo.c_in + channel) * in_vol..][..in_vol];
            for r in 0..PATCH {
                let mut columns = ws.patches[r * PATCH * nr..][..PATCH * nr].chunks_exact_mut(nr);
                let src_row = plan.rows[r0 + r];
                if src_row == ZERO {
                    columns.for_each(|column| column[j0..j0 + len].fill(T::zero()));
                    continue;
                }
                let row = &plane[src_row * iw + first_col..][..M * (len - 1) + PATCH];
                let mut next = || columns.next().map(|column| &mut column[j0..j0 + len]);
                let (Some(c0), Some(c1), Some(c2), Some(c3), Some(c4), Some(c5)) =
                    (next(), next(), next(), next(), next(), next())
                else {
                    unreachable!("a patch row has {PATCH} columns")
                };
                // Columns 0-3 are the four phases of the row; columns 4 and 5 are
                // columns 0 and 1 of the next tile.
                T::split4(row, [&mut *c0, &mut *c1, c2, c3]);
                c4[..len - 1].copy_from_slice(&c0[1..]);
                c5[..len - 1].copy_from_slice(&c1[1..]);
                c4[len - 1] = row[M * len];
                c5[len - 1] = row[M * len + 1];
            }
        }
        for &(j, n, r0, c0) in &ws.border {
            let plane = &plan.x[(n * geo.c_in + channel) * in_vol..][..in_vol];
            for r in 0..PATCH {
                let src_row = plan.rows[r0 + r];
                for c in 0..PATCH {
                    let src_col = if src_row == ZERO {
                        ZERO
                    } else {
                        plan.cols[c0 + c]
                    };
                    ws.patches[(r * PATCH + c) * nr + j] = if src_col == ZERO {
                        T::zero()
                    } else {
                        plane[src_row * iw + src_col]
                    };
                }
            }
        }
        // t1[r][c] = sum_k BT[r][k] d[k][c]; V[r][s] = sum_c t1[r][c] BT[s][c].
        for c in 0..PATCH {
            transform(
                &ws.patches,
                |k| (k * PATCH + c) * nr,
                &mut ws.t1,
                |r| (r * PATCH + c) * nr,
                width,
                input_transform,
            );
        }
        for r in 0..PATCH {
            transform(
                &ws.t1,
                |c| (r * PATCH + c) * nr,
                &mut ws.v,
                |s| ((r * PATCH + s) * cig + ci) * ld,
                width,
                input_transform,
            );
        }
    }
    // 2. M[point] = U[point] . V[point] for the chunk's rows of U (whole A
    // panels: the chunk starts at a multiple of MR).
    let per_point = packed_a_len(cog, cig);
    for xi in 0..POINTS {
        let a = &plan.filters[(g * POINTS + xi) * per_point + c0 * cig..]
            [..rows.next_multiple_of(MR) * cig];
        let b = &ws.v[xi * cig * ld..][..cig * ld];
        let m = &mut ws.m[xi * rows * ld..][..rows * ld];
        gemm_rows(
            cig,
            AMatrix::Packed(a),
            rows,
            (b, ld),
            count,
            &mut ws.acc,
            false,
            |blk| {
                for r in 0..blk.rows {
                    let dst = (blk.row0 + r) * ld + blk.col0;
                    m[dst..dst + blk.cols].copy_from_slice(blk.row(r));
                }
            },
        );
    }
    // 3. Y = A^T M A, cropped to the output, plus bias.
    for co in 0..rows {
        let channel = g * cog + c0 + co;
        let offset = plan.bias.map_or(T::zero(), |b| b[channel]);
        for c in 0..PATCH {
            transform(
                &ws.m,
                |k| ((k * PATCH + c) * rows + co) * ld,
                &mut ws.t1,
                |r| (r * PATCH + c) * nr,
                width,
                output_transform,
            );
        }
        for r in 0..M {
            transform(
                &ws.t1,
                |c| (r * PATCH + c) * nr,
                &mut ws.y,
                |s| (r * M + s) * nr,
                width,
                output_transform,
            );
        }
        for &(j0, len, n, r0, c0) in &ws.out_runs {
            for r in 0..M.min(oh - r0) {
                let start = (n * geo.c_out + channel) * out_vol + (r0 + r) * ow + c0;
                // SAFETY: task (g, block, chunk) is the only writer of the output
                // tiles of its block (each tile belongs to one block) in the
                // chunk's channels of group g.
                let dst = unsafe { plan.out.range(start, M * len) };
                // SAFETY: `out` is initialised whenever the epilogue reads it
                // (run_forward).
                unsafe { plan.epilogue.save_uninit(dst, &mut ws.saved) };
                let rows = std::array::from_fn(|s| &ws.y[(r * M + s) * nr + j0..][..len]);
                T::interleave4(rows, offset, dst);
                // SAFETY: interleave4 wrote every element of `dst`.
                unsafe { plan.epilogue.finish_uninit(start, dst, &ws.saved) };
            }
        }
        for &(j, n, r0, c0) in &ws.out_tiles {
            let width = M.min(ow - c0);
            for r in 0..M.min(oh - r0) {
                let start = (n * geo.c_out + channel) * out_vol + (r0 + r) * ow + c0;
                // SAFETY: as for the runs above.
                let dst = unsafe { plan.out.range(start, width) };
                // SAFETY: as for the runs above.
                unsafe { plan.epilogue.save_uninit(dst, &mut ws.saved) };
                for (s, slot) in dst.iter_mut().enumerate() {
                    slot.write(ws.y[(r * M + s) * nr + j] + offset);
                }
                // SAFETY: every element of `dst` was just written.
                unsafe { plan.epilogue.finish_uninit(start, dst, &ws.saved) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factored_transforms_are_the_matrices() {
        let columns = [
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            [-0.5, 0.25, 7.0, -3.0, 0.0, 11.0],
            [1e3, -2e-3, 0.125, 9.0, -6.5, 2.0],
        ];
        for d in columns {
            let want: Vec<f64> = BT
                .iter()
                .map(|row| row.iter().zip(&d).map(|(a, b)| a * b).sum())
                .collect();
            let got = input_transform(d);
            let want_out: Vec<f64> = AT
                .iter()
                .map(|row| row.iter().zip(&d).map(|(a, b)| a * b).sum())
                .collect();
            let got_out = output_transform(d);
            for (g, w) in got.iter().zip(&want).chain(got_out.iter().zip(&want_out)) {
                assert!((g - w).abs() <= 1e-9 * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
    }
}
