//! The column-matrix algorithms, for any padding mode, stride and dilation: each
//! works on tiles of the column matrix (see [`super::columns`]) so its buffer
//! stays cache-sized, whatever the batch.
//!
//! - forward:         `out[n, g] (cog x P) = W[g] (cog x K) . col(x[n, g]) (K x P)`,
//!   one packed GEMM per gathered tile;
//! - input gradient:  `col(grad_x[n, g]) = W[g]^T . grad_out[n, g]`, folded back
//!   onto the input by col2im, tile by tile in order;
//! - weight gradient: `grad_W[g] = sum_n grad_out[n, g] . col(x[n, g])^T`, one
//!   GEMM per tile and block of taps, `grad_out` rows read in place and the
//!   gathered tap rows transposed into a panel.

use super::columns::{gather_tap_block, gather_tap_rows, scatter_tile, IndexTables};
use super::epilogue::Epilogue;
use super::geometry::ConvGeometry;
use super::weight_tasks::WeightTasks;
use super::weights::{pack_weights, panel_len};
use crate::element::Element;
use crate::error::Result;
use crate::kernels::bf16_gemm::{self, gemm_pairs_bf16};
use crate::kernels::{
    accumulator, gemm_packed, gemm_rows, pack_b, packed_b_len, AMatrix, SharedMut, MR,
};
use crate::threads::{for_each_chunk_mut, for_each_task};
use std::mem::MaybeUninit;

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
        acc: accumulator::<T>(),
    }
}

/// How the im2col forward is cut: `tile_len` output positions and `channels`
/// output channels per task (a multiple of the micro-kernel's rows; each chunk
/// of a tile gathers its columns again), and whether the column matrix is the
/// input itself, read in place (a 1x1, stride-1, unpadded layer) wherever the
/// kernel's whole panels fit inside `x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ColumnTiles {
    pub tile_len: usize,
    pub channels: usize,
    pub in_place: bool,
    /// Row panels outermost (see `gemm_rows`).
    pub rows_outer: bool,
}

/// `out = epilogue(conv(x, w) + bias)` over the column tiles of `tiles`; every
/// element of `out` is written (once).
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<T: Element>(
    geo: &ConvGeometry,
    tiles: ColumnTiles,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    epilogue: &Epilogue<'_, T>,
    out: &mut [MaybeUninit<T>],
) -> Result<()> {
    let ColumnTiles {
        tile_len,
        channels,
        in_place,
        rows_outer,
    } = tiles;
    let (k_len, cig, cog) = (geo.k_len(), geo.cig(), geo.cog());
    let tables = IndexTables::new(geo)?;
    let (p_len, in_vol) = (geo.out_vol(), geo.in_vol());
    let tiles = p_len.div_ceil(tile_len);
    let out_shared = SharedMut::new(out);
    let channels = channels.clamp(1, cog.max(1));
    let chunks = cog.div_ceil(channels).max(1);
    let tasks = geo.n * geo.groups * tiles * chunks;
    // The column tile is gathered row-major (one row per tap, long contiguous runs)
    // in rows of whole micro-kernel panels, which the kernel reads in place.
    let ld = tile_len.next_multiple_of(T::NR);
    let init = workspace::<T>(k_len * ld, 0);
    for_each_task(tasks, geo.work(), init, |ws, task| {
        let (task, chunk) = (task / chunks, task % chunks);
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
        // The chunk's rows of W[g] from output channel c0, read in place.
        let c0 = chunk * channels;
        let rows = channels.min(cog - c0);
        let a = AMatrix::Rows(&w[(g * cog + c0) * k_len..][..rows * k_len], k_len);
        gemm_rows(
            k_len,
            a,
            rows,
            (b, ldb),
            len,
            &mut ws.acc,
            rows_outer,
            |blk| {
                for r in 0..blk.rows {
                    let channel = g * cog + c0 + blk.row0 + r;
                    let at = (n * geo.c_out + channel) * p_len + p0 + blk.col0;
                    // SAFETY: task (n, g, tile, chunk) is the only one writing the
                    // chunk's output rows of group g of image n at positions p0 .. p0 + len.
                    let dst = unsafe { out_shared.range(at, blk.cols) };
                    // SAFETY: `out` is initialised whenever the epilogue reads it
                    // (run_forward).
                    unsafe { epilogue.save_uninit(dst, &mut ws.second) };
                    let b = bias.map_or(T::zero(), |b| b[channel]);
                    dst.iter_mut().zip(blk.row(r)).for_each(|(d, &v)| {
                        d.write(v + b);
                    });
                    // SAFETY: every element of `dst` was just written.
                    unsafe { epilogue.finish_uninit(at, dst, &ws.second) };
                }
            },
        );
    })
}

/// `grad_x = conv_backward_input(grad_out, w)` by the transposed GEMM of each
/// tile of `tile_len` positions and col2im; `grad_x` must be zero-filled.
pub(crate) fn backward_input<T: Element>(
    geo: &ConvGeometry,
    tile_len: usize,
    grad_out: &[T],
    w: &[T],
    grad_x: &mut [T],
) -> Result<()> {
    let tables = IndexTables::new(geo)?;
    let (k_len, cig, cog) = (geo.k_len(), geo.cig(), geo.cog());
    let p_len = geo.out_vol();
    let tiles = p_len.div_ceil(tile_len);
    let weights = pack_weights(geo, w)?;
    let w_panel = panel_len(geo);
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
                gemm_packed(
                    cog,
                    AMatrix::Packed(a),
                    k_len,
                    &ws.packed,
                    len,
                    &mut ws.acc,
                    |blk| {
                        for r in 0..blk.rows {
                            let dst = (blk.row0 + r) * len + blk.col0;
                            col[dst..dst + blk.cols].copy_from_slice(blk.row(r));
                        }
                    },
                );
                scatter_tile(geo, &tables, col, p0, len, grad_group);
            }
        },
    )
}

/// `grad_w = conv_backward_weight(grad_out, x)`, shape `(C_out, C_in/groups, *kernel)`,
/// over position tiles of `tile` elements of `images` images side by side.
///
/// For each tile, `grad_W[g] (rows x taps) += grad_out tile (rows x P) .
/// col(x)^T (P x taps)`: one GEMM per block of `NR` taps, whose A is the
/// `grad_out` rows read in place (or, when several images share a tile (small
/// planes), copied side by side) and whose B panel is the tile's gathered tap
/// rows transposed (`P x NR`, about one multiply-add in `rows` per element). A
/// task of `tasks` owns a block of (output channels x taps) of one group and
/// sums it over all images and tiles in order: each weight is a chain of FMAs
/// over a tile's positions, the tiles' sums added in order, whatever the
/// thread count.
pub(crate) fn backward_weight<T: Element>(
    geo: &ConvGeometry,
    tasks: &WeightTasks,
    (tile, images): (usize, usize),
    grad_out: &[T],
    x: &[T],
    grad_w: &mut [T],
) -> Result<()> {
    let (cig, cog, k_len) = (geo.cig(), geo.cog(), geo.k_len());
    let (p_len, in_vol) = (geo.out_vol(), geo.in_vol());
    let tables = IndexTables::new(geo)?;
    // Side by side only when a whole plane is one tile.
    let images = if tile >= p_len { images.max(1) } else { 1 };
    let row_len = tile * images;
    let side_len = if images > 1 {
        tasks.row_chunk * row_len
    } else {
        0
    };
    let sums_len = tasks.row_chunk * tasks.tap_chunk;
    let init = || {
        let ws = workspace::<T>(tasks.tap_chunk * row_len, row_len * T::NR)();
        (ws, vec![T::zero(); side_len], vec![T::zero(); sums_len])
    };
    let shared = SharedMut::new(grad_w);
    for_each_task(
        tasks.tasks(geo),
        geo.work(),
        init,
        |(ws, g_side, sums), task| {
            let (g, rows, taps) = tasks.task(geo, task);
            let (n_rows, n_taps) = (rows.len(), taps.len());
            let sums = &mut sums[..n_rows * n_taps];
            sums.fill(T::zero());
            let x_group = |n: usize| &x[(n * geo.c_in + g * cig) * in_vol..][..cig * in_vol];
            let g_rows = |n: usize| &grad_out[(n * geo.c_out + g * cog) * p_len..][..cog * p_len];
            for n0 in (0..geo.n).step_by(images) {
                let count = images.min(geo.n - n0);
                for p0 in (0..p_len).step_by(tile) {
                    let len = tile.min(p_len - p0);
                    let total = len * count;
                    let col = &mut ws.packed[..n_taps * total];
                    for i in 0..count {
                        let at = (p0, len, total);
                        gather_tap_block(
                            geo,
                            &tables,
                            x_group(n0 + i),
                            taps.clone(),
                            at,
                            &mut col[i * len..],
                        );
                    }
                    // The tile's grad_out rows: in place for one image, else the
                    // images' rows copied side by side.
                    let a = if count == 1 {
                        AMatrix::Rows(&g_rows(n0)[rows.start * p_len + p0..], p_len)
                    } else {
                        for (r, co) in rows.clone().enumerate() {
                            for i in 0..count {
                                let src = &g_rows(n0 + i)[co * p_len + p0..][..len];
                                g_side[r * total + i * len..][..len].copy_from_slice(src);
                            }
                        }
                        AMatrix::Rows(&g_side[..n_rows * total], total)
                    };
                    for t0 in (0..n_taps).step_by(T::NR) {
                        let width = T::NR.min(n_taps - t0);
                        // B: the block's tap rows transposed into one packed panel
                        // (columns past `width` zero).
                        let panel = &mut ws.second[..total * T::NR];
                        for (p, step) in panel.chunks_exact_mut(T::NR).enumerate() {
                            for (j, slot) in step.iter_mut().enumerate() {
                                *slot = if j < width {
                                    col[(t0 + j) * total + p]
                                } else {
                                    T::zero()
                                };
                            }
                        }
                        gemm_packed(total, a, n_rows, panel, width, &mut ws.acc, |blk| {
                            for r in 0..blk.rows {
                                let at = (blk.row0 + r) * n_taps + t0 + blk.col0;
                                for (sum, &v) in sums[at..at + blk.cols].iter_mut().zip(blk.row(r))
                                {
                                    *sum += v;
                                }
                            }
                        });
                    }
                }
            }
            for (r, co) in rows.clone().enumerate() {
                let start = (g * cog + co) * k_len + taps.start;
                // SAFETY: this task is the only one writing taps `taps` of the output
                // channels `rows` of group `g`.
                let dst = unsafe { shared.range(start, n_taps) };
                dst.copy_from_slice(&sums[r * n_taps..][..n_taps]);
            }
        },
    )
}

/// [`backward_weight`] of a bfloat16 layer on the `vdpbf16ps` kernel, on the
/// bits of bfloat16 `grad_out` and `x`: the A rows are `grad_out` rows read in
/// place as pairs of adjacent positions; each tap row of a tile is gathered in
/// bfloat16, so its 32-bit words are already pairs of adjacent positions, and
/// the block's rows of words transposed into one panel. Sums in float32 into
/// `grad_w`. A tile of an odd length gets one zero position (in copies of its
/// `grad_out` rows, so nothing past a row is read). Needs
/// [`bf16_gemm::available`].
pub(crate) fn backward_weight_bf16(
    geo: &ConvGeometry,
    tasks: &WeightTasks,
    (tile, images): (usize, usize),
    grad_out: &[u16],
    x: &[u16],
    grad_w: &mut [f32],
) -> Result<()> {
    let (cig, cog, k_len) = (geo.cig(), geo.cog(), geo.k_len());
    let (p_len, in_vol) = (geo.out_vol(), geo.in_vol());
    let tables = IndexTables::new(geo)?;
    let images = if tile >= p_len { images.max(1) } else { 1 };
    let row_len = (tile * images).next_multiple_of(2);
    let sums_len = tasks.row_chunk * tasks.tap_chunk;
    let nrb = bf16_gemm::NRB;
    let init = || {
        (
            vec![0u16; tasks.tap_chunk * row_len],
            vec![0u32; row_len / 2 * nrb],
            vec![0u16; tasks.row_chunk * row_len],
            vec![0.0f32; MR * nrb],
            vec![0.0f32; sums_len],
        )
    };
    let shared = SharedMut::new(grad_w);
    for_each_task(
        tasks.tasks(geo),
        geo.work(),
        init,
        |(col, panel, g_side, acc, sums), task| {
            let (g, rows, taps) = tasks.task(geo, task);
            let (n_rows, n_taps) = (rows.len(), taps.len());
            let sums = &mut sums[..n_rows * n_taps];
            sums.fill(0.0);
            let x_group = |n: usize| &x[(n * geo.c_in + g * cig) * in_vol..][..cig * in_vol];
            let g_rows = |n: usize| &grad_out[(n * geo.c_out + g * cog) * p_len..][..cog * p_len];
            for n0 in (0..geo.n).step_by(images) {
                let count = images.min(geo.n - n0);
                for p0 in (0..p_len).step_by(tile) {
                    let len = tile.min(p_len - p0);
                    let total = len * count;
                    let even = total.next_multiple_of(2);
                    let col = &mut col[..n_taps * even];
                    for i in 0..count {
                        let at = (p0, len, even);
                        gather_tap_block(
                            geo,
                            &tables,
                            x_group(n0 + i),
                            taps.clone(),
                            at,
                            &mut col[i * len..],
                        );
                    }
                    if even > total {
                        col.chunks_exact_mut(even).for_each(|row| row[total] = 0);
                    }
                    // A: the tile's grad_out rows, in place for one image of an
                    // even length, else copied side by side with a zero pad.
                    let a: (&[u16], usize) = if count == 1 && total == even {
                        (&g_rows(n0)[rows.start * p_len + p0..], p_len)
                    } else {
                        for (r, co) in rows.clone().enumerate() {
                            let row = &mut g_side[r * even..][..even];
                            for i in 0..count {
                                row[i * len..][..len]
                                    .copy_from_slice(&g_rows(n0 + i)[co * p_len + p0..][..len]);
                            }
                            row[total..].fill(0);
                        }
                        (&g_side[..n_rows * even], even)
                    };
                    let pairs = even / 2;
                    for t0 in (0..n_taps).step_by(nrb) {
                        let width = nrb.min(n_taps - t0);
                        // B: word q of tap row t is the pair of positions
                        // (2q, 2q + 1); the block's rows of words transposed into
                        // one panel (columns past `width` zero).
                        let panel = &mut panel[..pairs * nrb];
                        for j in 0..nrb {
                            if j < width {
                                let row = &col[(t0 + j) * even..][..even];
                                for (q, pair) in row.chunks_exact(2).enumerate() {
                                    panel[q * nrb + j] =
                                        u32::from(pair[0]) | (u32::from(pair[1]) << 16);
                                }
                            } else {
                                (0..pairs).for_each(|q| panel[q * nrb + j] = 0);
                            }
                        }
                        gemm_pairs_bf16(pairs, a, n_rows, panel, width, acc, |blk| {
                            for r in 0..blk.rows {
                                let at = (blk.row0 + r) * n_taps + t0 + blk.col0;
                                for (sum, &v) in sums[at..at + blk.cols].iter_mut().zip(blk.row(r))
                                {
                                    *sum += v;
                                }
                            }
                        });
                    }
                }
            }
            for (r, co) in rows.clone().enumerate() {
                let start = (g * cog + co) * k_len + taps.start;
                // SAFETY: this task is the only one writing taps `taps` of the output
                // channels `rows` of group `g`.
                let dst = unsafe { shared.range(start, n_taps) };
                dst.copy_from_slice(&sums[r * n_taps..][..n_taps]);
            }
        },
    )
}
