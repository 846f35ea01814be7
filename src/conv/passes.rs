//! The three passes of a convolution over contiguous buffers, each a sequence of
//! packed GEMMs over tiles of output positions:
//!
//! - forward:         `out[n, g] (cog x P) = W[g] (cog x K) . col(x[n, g]) (K x P)`
//! - backward-input:  `col(grad_x[n, g]) = W[g]^T . grad_out[n, g]`, folded by col2im
//! - backward-weight: `grad_W[g] = sum_n grad_out[n, g] . col(x[n, g])^T`, as
//!   dot products of contiguous rows rather than a GEMM
//!
//! Tiles are cut from the shape alone and every sum has a fixed order, so results do
//! not depend on the thread count.

use super::im2col::{copy_blocks, gather_tap_rows, scatter_tile, IndexTables};
use super::shape::ConvGeometry;
use super::{depthwise, direct, implicit, subpixel, winograd};
use crate::element::Element;
use crate::error::{alloc_uninit, alloc_zeroed, assume_init, Result};
use crate::kernels::{
    dot_acc_len, gemm_packed, gemm_rows, pack_a, pack_b, packed_a_len, packed_b_len, SharedMut, DC,
    DR,
};
use crate::threads::{for_each_chunk_mut, for_each_task};
use std::mem::MaybeUninit;
use std::ops::Range;

/// Taps per backward-weight task at most (a multiple of [`DC`]).
pub(super) const WEIGHT_TAP_CHUNK: usize = 48;
/// Output channels per backward-weight task at most.
const WEIGHT_ROW_CHUNK: usize = 128;
/// Bytes of one row of a backward-weight tile (long rows amortise the loads and
/// stores of the lane sums per kernel call; measured best among 2-24 KiB).
const WEIGHT_TILE_BYTES: usize = 12288;

/// Per-worker buffers: a packed operand, a second one, and the micro-tile.
struct Workspace<T> {
    packed: Vec<T>,
    second: Vec<T>,
    acc: Vec<T>,
}

fn workspace<T: Element>(packed: usize, second: usize) -> impl Fn() -> Workspace<T> + Sync + Send {
    move || Workspace {
        packed: vec![T::zero(); packed],
        second: vec![T::zero(); second],
        acc: crate::kernels::pack::accumulator::<T>(),
    }
}

/// `W[g]` (or its transpose) of every group packed as GEMM A operands.
fn pack_weights<T: Element>(geo: &ConvGeometry, w: &[T], transposed: bool) -> Result<Vec<T>> {
    let (k_len, cog) = (geo.k_len(), geo.cog());
    let (rows, inner) = if transposed {
        (k_len, cog)
    } else {
        (cog, k_len)
    };
    let per_group = packed_a_len(rows, inner);
    let mut packed = alloc_zeroed(per_group * geo.groups, "packed weights")?;
    for (g, dst) in packed
        .chunks_exact_mut(per_group.max(1))
        .enumerate()
        .take(geo.groups)
    {
        let (rs, cs) = if transposed { (1, k_len) } else { (k_len, 1) };
        pack_a(w, g * cog * k_len, rows, inner, rs, cs, dst);
    }
    Ok(packed)
}

/// The forward paths, in order of preference.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ForwardPath {
    Depthwise,
    Direct,
    Winograd,
    Implicit,
    Gather,
}

fn forward_path(geo: &ConvGeometry) -> ForwardPath {
    if depthwise::applies(geo) {
        ForwardPath::Depthwise
    } else if direct::applies(geo) {
        ForwardPath::Direct
    } else if winograd::applies(geo) {
        ForwardPath::Winograd
    } else if implicit::applies(geo) {
        ForwardPath::Implicit
    } else {
        ForwardPath::Gather
    }
}

/// `conv(x, w) + bias` in a new buffer of `N * C_out * P` elements. The Winograd
/// and implicit-GEMM paths write every element once, so their buffer is not
/// zeroed first (`calloc` clears reused heap memory in a serial pass before the
/// parallel work: 2 threads, 3x3 stride-2 forward 6.6 -> 5.5 ms).
pub(crate) fn forward_new<T: Element>(
    geo: &ConvGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
) -> Result<Vec<T>> {
    let len = geo.n * geo.c_out * geo.out_vol();
    if len == 0 {
        // Nothing to compute (no plan is built: its tables grow with the
        // spatial size, which can be huge when the batch is empty).
        return Ok(Vec::new());
    }
    let path = forward_path(geo);
    if geo.k_len() > 0 && matches!(path, ForwardPath::Winograd | ForwardPath::Implicit) {
        let mut out = alloc_uninit::<T>(len, "the output")?;
        forward_uninit(geo, path, x, w, bias, &mut out)?;
        // SAFETY: both paths write every output element (every tile or position
        // of every channel and image).
        return Ok(unsafe { assume_init(out) });
    }
    let mut out = alloc_zeroed(len, "the output")?;
    forward(geo, x, w, bias, &mut out)?;
    Ok(out)
}

/// The paths that write every output element once, into `out`.
fn forward_uninit<T: Element>(
    geo: &ConvGeometry,
    path: ForwardPath,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    out: &mut [MaybeUninit<T>],
) -> Result<()> {
    if path == ForwardPath::Winograd {
        return winograd::forward(geo, x, w, bias, out);
    }
    let weights = pack_weights(geo, w, false)?;
    let panel = packed_a_len(geo.cog(), geo.k_len());
    implicit::forward(geo, x, &weights, panel, bias, out)
}

/// `out = conv(x, w) + bias`; `out` holds `N * C_out * P` elements.
pub(crate) fn forward<T: Element>(
    geo: &ConvGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) -> Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    if geo.k_len() == 0 {
        // No input channels: the output is the bias (no plan is built; a kernel of
        // 2^40 taps over no channels would take forever to walk).
        out.fill(T::zero());
        return bias.map_or(Ok(()), |bias| add_bias(geo.out_vol(), bias, out));
    }
    match forward_path(geo) {
        ForwardPath::Depthwise => return depthwise::forward(geo, x, w, bias, out),
        ForwardPath::Direct => return direct::forward(geo, x, w, bias, out),
        path @ (ForwardPath::Winograd | ForwardPath::Implicit) => {
            let len = out.len();
            // SAFETY: `MaybeUninit<T>` has the layout of `T`, and these paths only
            // ever write initialised values through this view.
            let out = unsafe {
                std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<MaybeUninit<T>>(), len)
            };
            return forward_uninit(geo, path, x, w, bias, out);
        }
        ForwardPath::Gather => {}
    }
    let (k_len, cig, cog) = (geo.k_len(), geo.cig(), geo.cog());
    let tables = IndexTables::new(geo)?;
    let (p_len, in_vol, tile_len, tiles) =
        (geo.out_vol(), geo.in_vol(), geo.tile_len(), geo.tiles());
    let weights = pack_weights(geo, w, false)?;
    let w_panel = packed_a_len(cog, k_len);
    let out_shared = SharedMut::new(out);
    let tasks = geo.n * geo.groups * tiles;
    // The column tile is gathered row-major (one row per tap, long contiguous runs)
    // in rows of whole micro-kernel panels, which the kernel reads in place.
    let ld = tile_len.next_multiple_of(T::NR);
    let init = workspace::<T>(k_len * ld, 0);
    // A 1x1, stride-1, unpadded layer's column matrix is its input itself (one row
    // of positions per channel), which the kernel can read in place.
    let in_place = geo.kernel_vol() == 1
        && geo.stride == [1; 3]
        && geo.pad_lo == [0; 3]
        && geo.output == geo.input
        && geo.in_vol() >= T::NR;
    for_each_task(tasks, geo.work(), init, |ws, task| {
        let (image_group, tile) = (task / tiles, task % tiles);
        let (n, g) = (image_group / geo.groups, image_group % geo.groups);
        let p0 = tile * tile_len;
        let len = tile_len.min(p_len - p0);
        let x_at = (n * geo.c_in + g * cig) * in_vol;
        // The kernel reads whole panels: in place only while the last one of the
        // last channel row stays inside `x` (its extra columns are dropped).
        let readable = x_at + p0 + cig.saturating_sub(1) * in_vol + len.next_multiple_of(T::NR);
        let (b, ldb) = if in_place && readable <= x.len() {
            (&x[x_at + p0..], in_vol)
        } else {
            let x_group = &x[x_at..][..cig * in_vol];
            gather_tap_rows(
                geo,
                &tables,
                x_group,
                0..k_len,
                (p0, len, ld),
                &mut ws.packed,
            );
            (&ws.packed[..], ld)
        };
        let a = &weights[g * w_panel..(g + 1) * w_panel];
        gemm_rows(k_len, a, cog, b, ldb, len, &mut ws.acc, |blk| {
            for r in 0..blk.rows {
                let channel = g * cog + blk.row0 + r;
                // SAFETY: task (n, g, tile) is the only one writing output rows of
                // group g of image n at positions p0 .. p0 + len.
                let dst = unsafe {
                    out_shared.range((n * geo.c_out + channel) * p_len + p0 + blk.col0, blk.cols)
                };
                copy_blocks(blk.row(r), dst);
                if let Some(bias) = bias {
                    dst.iter_mut().for_each(|v| *v += bias[channel]);
                }
            }
        });
    })
}

/// How the input gradient is computed.
enum InputPath {
    /// Nothing flows back (the gradient stays zero).
    Zero,
    Direct,
    /// The forward pass of this adjoint convolution, with flipped filters.
    Adjoint(ConvGeometry),
    /// Sub-pixel or im2col GEMMs.
    Gemm,
}

fn input_path(geo: &ConvGeometry) -> InputPath {
    if geo.n == 0 || geo.c_in == 0 || geo.in_vol() == 0 || geo.c_out == 0 || geo.out_vol() == 0 {
        return InputPath::Zero;
    }
    let adjoint = geo.stride_one_adjoint();
    // A depthwise convolution's adjoint is depthwise again (row kernels).
    let depthwise_adjoint = depthwise::applies(geo) && geo.cog() == 1;
    if direct::applies(geo) && !(depthwise_adjoint && adjoint.is_some()) {
        return InputPath::Direct;
    }
    // The adjoint is a forward convolution; through the im2col GEMM it would
    // gather C_out * K values per position for C_in output rows while col2im
    // scatters C_in * K for C_in * K rows, so with fewer input than output channels
    // col2im is cheaper (16 -> 32 3x3x3: 109 vs 132 ms) unless the adjoint runs on
    // a path without a gather (implicit GEMM: 78 ms).
    match adjoint.filter(|a| {
        winograd::applies(a) || direct::applies(a) || implicit::applies(a) || geo.cig() >= geo.cog()
    }) {
        Some(adjoint) => InputPath::Adjoint(adjoint),
        None => InputPath::Gemm,
    }
}

/// `conv_backward_input(grad_out, w)` in a new buffer. A stride-1 zero-padded
/// convolution's input gradient is itself a convolution (of grad_out with the
/// flipped, channel-swapped filters), so it takes the fast forward paths
/// (Winograd for 3x3) through [`forward_new`], which writes every element (no
/// zeroing pass first); the other paths add into a zero-filled buffer.
pub(crate) fn backward_input_new<T: Element>(
    geo: &ConvGeometry,
    grad_out: &[T],
    w: &[T],
) -> Result<Vec<T>> {
    let adjoint = match input_path(geo) {
        InputPath::Adjoint(adjoint) => adjoint,
        path => {
            let mut grad_x = alloc_zeroed(geo.n * geo.c_in * geo.in_vol(), "grad_input")?;
            match path {
                InputPath::Direct => direct::backward_input(geo, grad_out, w, &mut grad_x)?,
                InputPath::Gemm => backward_input_gemm(geo, grad_out, w, &mut grad_x)?,
                InputPath::Zero | InputPath::Adjoint(_) => {}
            }
            return Ok(grad_x);
        }
    };
    let flipped = flip_weights(geo, w)?;
    forward_new(&adjoint, grad_out, &flipped, None)
}

/// `grad_x = conv_backward_input(grad_out, w)` by the sub-pixel GEMMs or the
/// im2col GEMM and col2im; `grad_x` must be zero-filled.
fn backward_input_gemm<T: Element>(
    geo: &ConvGeometry,
    grad_out: &[T],
    w: &[T],
    grad_x: &mut [T],
) -> Result<()> {
    if subpixel::applies(geo) {
        return subpixel::backward_input(geo, grad_out, w, grad_x);
    }
    let tables = IndexTables::new(geo)?;
    let (k_len, cig, cog) = (geo.k_len(), geo.cig(), geo.cog());
    let (p_len, tile_len, tiles) = (geo.out_vol(), geo.tile_len(), geo.tiles());
    let weights = pack_weights(geo, w, true)?;
    let w_panel = packed_a_len(k_len, cog);
    // One task per (image, group): their input-gradient blocks are disjoint, and
    // inside a task the tiles are folded back in order.
    let group_len = cig * geo.in_vol();
    let init = workspace::<T>(packed_b_len(cog, tile_len, T::NR), k_len * tile_len);
    for_each_chunk_mut(
        grad_x,
        group_len,
        geo.work(),
        init,
        |ws, image_group, grad_group| {
            let (n, g) = (image_group / geo.groups, image_group % geo.groups);
            let a = &weights[g * w_panel..(g + 1) * w_panel];
            for tile in 0..tiles {
                let p0 = tile * tile_len;
                let len = tile_len.min(p_len - p0);
                pack_b(
                    grad_out,
                    (n * geo.c_out + g * cog) * p_len + p0,
                    cog,
                    len,
                    p_len,
                    1,
                    &mut ws.packed,
                );
                let col = &mut ws.second;
                gemm_packed(cog, a, k_len, &ws.packed, len, &mut ws.acc, |blk| {
                    for r in 0..blk.rows {
                        let dst = (blk.row0 + r) * len + blk.col0;
                        col[dst..dst + blk.cols].copy_from_slice(blk.row(r));
                    }
                });
                scatter_tile(geo, &tables, col, p0, len, grad_group);
            }
        },
    )
}

/// `w'[g * cig + ci, co, k] = w[g * cog + co, ci, K - 1 - k]`: the filters of the
/// adjoint convolution, shape `(C_in, C_out / groups, *kernel)`.
fn flip_weights<T: Element>(geo: &ConvGeometry, w: &[T]) -> Result<Vec<T>> {
    let (cig, cog, kvol) = (geo.cig(), geo.cog(), geo.kernel_vol());
    let mut flipped = alloc_zeroed(w.len(), "flipped weights")?;
    for g in 0..geo.groups {
        for co in 0..cog {
            for ci in 0..cig {
                let src = &w[((g * cog + co) * cig + ci) * kvol..][..kvol];
                let dst = &mut flipped[((g * cig + ci) * cog + co) * kvol..][..kvol];
                dst.iter_mut()
                    .zip(src.iter().rev())
                    .for_each(|(d, &v)| *d = v);
            }
        }
    }
    Ok(flipped)
}

/// `grad_w = conv_backward_weight(grad_out, x)`, shape `(C_out, C_in/groups, *kernel)`.
///
/// Every element of `grad_W[g]` is a long dot product over images and positions of
/// a `grad_out` row and a column-matrix row, both contiguous, so they run as
/// [`DotKernel`] blocks with nothing packed. A task owns a block of (output
/// channels x taps) of one group and sums it over all images and tiles in order:
/// each element is computed by exactly one task in a fixed order, so the result
/// does not depend on the thread count (which only sets how taps are split).
pub(crate) fn backward_weight<T: Element>(
    geo: &ConvGeometry,
    grad_out: &[T],
    x: &[T],
    grad_w: &mut [T],
) -> Result<()> {
    if grad_w.is_empty()
        || geo.n == 0
        || geo.out_vol() == 0
        || geo.in_vol() == 0
        || geo.k_len() == 0
    {
        // No weights, or no product to sum (the gradient stays zero).
        return Ok(());
    }
    if depthwise::applies(geo) {
        return depthwise::backward_weight(geo, grad_out, x, grad_w);
    }
    if direct::applies(geo) {
        return direct::backward_weight(geo, grad_out, x, grad_w);
    }
    let (cig, cog) = (geo.cig(), geo.cog());
    let (p_len, in_vol) = (geo.out_vol(), geo.in_vol());
    if implicit::weight_applies::<T>(geo) {
        return implicit::backward_weight(geo, grad_out, x, grad_w);
    }
    let tables = IndexTables::new(geo)?;
    let shape = WeightTasks::new(geo);
    // Equal tiles of at most the budget (a short last tile would run at a
    // fraction of a vector per step).
    let max_tile = (WEIGHT_TILE_BYTES / std::mem::size_of::<T>()).max(1);
    let tile = p_len
        .div_ceil(p_len.div_ceil(max_tile).max(1))
        .next_multiple_of(T::LANES)
        .clamp(1, p_len.max(1));
    let block = dot_acc_len::<T>();
    let sums_len = shape.sums_len::<T>();
    let init = workspace::<T>(shape.tap_chunk * tile, sums_len);
    let shared = SharedMut::new(grad_w);
    for_each_task(shape.tasks(geo), geo.work(), init, |ws, task| {
        let (g, rows, taps) = shape.task(geo, task);
        let tap_blocks = taps.len().div_ceil(DC);
        let sums = &mut ws.second[..sums_len];
        sums.fill(T::zero());
        for n in 0..geo.n {
            let x_group = &x[(n * geo.c_in + g * cig) * in_vol..][..cig * in_vol];
            let g_rows = &grad_out[(n * geo.c_out + g * cog) * p_len..][..cog * p_len];
            for p0 in (0..p_len).step_by(tile) {
                let len = tile.min(p_len - p0);
                let col = &mut ws.packed[..taps.len() * len];
                gather_tap_rows(geo, &tables, x_group, taps.clone(), (p0, len, len), col);
                for (bi, r0) in rows.clone().step_by(DR).enumerate() {
                    // Rows past the end repeat the last one; their sums are dropped.
                    let a: [&[T]; DR] = std::array::from_fn(|i| {
                        let co = (r0 + i).min(rows.end - 1);
                        &g_rows[co * p_len + p0..][..len]
                    });
                    for (bj, t0) in (0..taps.len()).step_by(DC).enumerate() {
                        let b: [&[T]; DC] = std::array::from_fn(|i| {
                            let t = (t0 + i).min(taps.len() - 1);
                            &col[t * len..][..len]
                        });
                        let acc = &mut sums[(bi * tap_blocks + bj) * block..][..block];
                        T::dot_block(len, a, b, acc);
                    }
                }
            }
        }
        // SAFETY: this task is the only one writing taps `taps` of the output
        // channels `rows` of group `g`.
        unsafe { shape.write_task(geo, task, sums, &shared) };
    })
}

/// How the weight gradient is cut into tasks: blocks of output channels (rows)
/// times blocks of taps, per group; a task sums its block over every image.
pub(super) struct WeightTasks {
    tap_chunk: usize,
    row_chunk: usize,
    tap_chunks: usize,
    row_chunks: usize,
}

impl WeightTasks {
    pub fn new(geo: &ConvGeometry) -> Self {
        let (k_len, cog) = (geo.k_len(), geo.cog());
        // About four tasks per thread, in whole blocks of taps.
        let threads = crate::threads::get_num_threads().max(1);
        let tap_chunk = k_len
            .div_ceil(4 * threads)
            .next_multiple_of(DC)
            .clamp(DC, WEIGHT_TAP_CHUNK);
        let row_chunk = cog.clamp(1, WEIGHT_ROW_CHUNK);
        WeightTasks {
            tap_chunk,
            row_chunk,
            tap_chunks: k_len.div_ceil(tap_chunk),
            row_chunks: cog.div_ceil(row_chunk),
        }
    }

    pub fn tasks(&self, geo: &ConvGeometry) -> usize {
        geo.groups * self.row_chunks * self.tap_chunks
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

/// `grad_b[c] = sum over images and positions of grad_out[n, c, ...]`.
pub(crate) fn backward_bias<T: Element>(
    n: usize,
    channels: usize,
    positions: usize,
    grad_out: &[T],
    grad_b: &mut [T],
) -> Result<()> {
    let work = n * channels * positions;
    for_each_chunk_mut(
        grad_b,
        1,
        work,
        || (),
        |_, c, total| {
            let mut sum = T::zero();
            for image in 0..n {
                let plane = &grad_out[(image * channels + c) * positions..][..positions];
                sum += lane_sum(plane);
            }
            total[0] = sum;
        },
    )
}

/// Sum of `values` over 16 interleaved partial sums (combined in a fixed order),
/// so the additions vectorise instead of waiting on one another: the 3x3 stride-2
/// layer's bias gradient took 0.37 ms on 2 threads as one running sum.
fn lane_sum<T: Element>(values: &[T]) -> T {
    const LANES: usize = 16;
    let mut lanes = [T::zero(); LANES];
    let mut blocks = values.chunks_exact(LANES);
    for block in &mut blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            *lane += v;
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(blocks.remainder()) {
        *lane += v;
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            let upper = lanes[i + width];
            lanes[i] += upper;
        }
    }
    lanes[0]
}

/// `out[n, c, ...] += bias[c]`.
pub(crate) fn add_bias<T: Element>(positions: usize, bias: &[T], out: &mut [T]) -> Result<()> {
    if positions == 0 || bias.is_empty() {
        return Ok(());
    }
    let channels = bias.len();
    for_each_chunk_mut(
        out,
        positions,
        out.len(),
        || (),
        |_, plane, values| {
            let b = bias[plane % channels];
            values.iter_mut().for_each(|v| *v += b);
        },
    )
}
