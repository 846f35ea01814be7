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
use crate::kernels::{accumulator, copy_blocks, gemm_packed, gemm_rows, AMatrix, SharedMut, MR};
use crate::threads::for_each_task;
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

/// How the im2col forward is cut: `tile_len` output positions of each of
/// `images` images side by side and `channels` output channels per task (a
/// multiple of the micro-kernel's rows; each chunk of a tile gathers its columns
/// again), and whether the column matrix is the input itself, read in place (a
/// 1x1, stride-1, unpadded layer of one image per tile) wherever the kernel's
/// whole panels fit inside `x`. Images share a tile only when a whole plane is
/// one tile (small planes): one GEMM then covers `images x positions` columns,
/// so the filters are streamed once per tile rather than once per image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ColumnTiles {
    pub tile_len: usize,
    pub images: usize,
    pub channels: usize,
    pub in_place: bool,
    /// Row panels outermost (see `gemm_rows`).
    pub rows_outer: bool,
}

/// Images per tile of a plane of `p_len` positions cut into tiles of `tile_len`:
/// several only when a tile holds the whole plane.
fn images_per_tile(tile_len: usize, images: usize, p_len: usize) -> usize {
    if tile_len >= p_len {
        images.max(1)
    } else {
        1
    }
}

/// Split columns `col0 .. col0 + cols` of a tile of images side by side, each
/// `len` columns wide, into runs inside one image: `visit(image, position,
/// offset in the block, run length)`, in column order.
#[inline(always)]
fn image_runs(
    col0: usize,
    cols: usize,
    len: usize,
    mut visit: impl FnMut(usize, usize, usize, usize),
) {
    let mut c = col0;
    while c < col0 + cols {
        let (i, j) = (c / len, c % len);
        let run = (len - j).min(col0 + cols - c);
        visit(i, j, c - col0, run);
        c += run;
    }
}

/// `out = epilogue(conv(x, w) + bias)` over the column tiles of `tiles`; every
/// element of `out` is written (once). Each output is the same in-order sum over
/// the reduction whichever tile, image block or task computes it.
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
        images,
        channels,
        in_place,
        rows_outer,
    } = tiles;
    let (k_len, cig, cog) = (geo.k_len(), geo.cig(), geo.cog());
    let tables = IndexTables::new(geo)?;
    let (p_len, in_vol) = (geo.out_vol(), geo.in_vol());
    let tiles = p_len.div_ceil(tile_len);
    let images = images_per_tile(tile_len, images, p_len);
    let blocks = geo.n.div_ceil(images);
    let out_shared = SharedMut::new(out);
    let channels = channels.clamp(1, cog.max(1));
    let chunks = cog.div_ceil(channels).max(1);
    let tasks = blocks * geo.groups * tiles * chunks;
    // The column tile is gathered row-major (one row per tap, long contiguous runs;
    // the images' columns side by side) in rows of whole micro-kernel panels,
    // which the kernel reads in place.
    let ld = (tile_len * images).next_multiple_of(T::NR);
    let init = workspace::<T>(k_len * ld, 0);
    for_each_task(tasks, geo.work(), init, |ws, task| {
        let (task, chunk) = (task / chunks, task % chunks);
        let (block_group, tile) = (task / tiles, task % tiles);
        let (block, g) = (block_group / geo.groups, block_group % geo.groups);
        let n0 = block * images;
        let count = images.min(geo.n - n0);
        let p0 = tile * tile_len;
        let len = tile_len.min(p_len - p0);
        let total = len * count;
        let x_at = |n: usize| (n * geo.c_in + g * cig) * in_vol;
        // The kernel reads whole panels: in place only while the last one of the
        // last channel row stays inside `x` (its extra columns are dropped).
        let readable = x_at(n0) + p0 + cig.saturating_sub(1) * in_vol + len.next_multiple_of(T::NR);
        let (b, ldb) = if in_place && count == 1 && readable <= x.len() {
            (&x[x_at(n0) + p0..], in_vol)
        } else {
            let x_group = |n: usize| &x[x_at(n)..][..cig * in_vol];
            if count == 1 {
                gather_tap_rows(
                    geo,
                    &tables,
                    x_group(n0),
                    0..k_len,
                    (p0, len, ld),
                    &mut ws.packed,
                );
            } else {
                for i in 0..count {
                    let dst = &mut ws.packed[i * len..];
                    gather_tap_block(geo, &tables, x_group(n0 + i), 0..k_len, (p0, len, ld), dst);
                }
                for row in ws.packed.chunks_exact_mut(ld).take(k_len) {
                    row[total..].fill(T::zero());
                }
            }
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
            total,
            &mut ws.acc,
            rows_outer,
            |blk| {
                for r in 0..blk.rows {
                    let channel = g * cog + c0 + blk.row0 + r;
                    let bias = bias.map_or(T::zero(), |b| b[channel]);
                    let values = blk.row(r);
                    image_runs(blk.col0, blk.cols, len, |i, j, from, run| {
                        let at = ((n0 + i) * geo.c_out + channel) * p_len + p0 + j;
                        // SAFETY: task (block, g, tile, chunk) is the only one writing the
                        // chunk's output rows of group g of the block's images at
                        // positions p0 .. p0 + len.
                        let dst = unsafe { out_shared.range(at, run) };
                        // SAFETY: `out` is initialised whenever the epilogue reads it
                        // (run_forward).
                        unsafe { epilogue.save_uninit(dst, &mut ws.second) };
                        dst.iter_mut()
                            .zip(&values[from..][..run])
                            .for_each(|(d, &v)| {
                                d.write(v + bias);
                            });
                        // SAFETY: every element of `dst` was just written.
                        unsafe { epilogue.finish_uninit(at, dst, &ws.second) };
                    });
                }
            },
        );
    })
}

/// How the col2im input gradient is cut: `tile_len` output positions of each of
/// `images` images side by side (several only when a whole plane is one tile)
/// and `channels` input channels per task (a multiple of the micro-kernel's rows
/// unless all of a group's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Col2imTiles {
    pub tile_len: usize,
    pub images: usize,
    pub channels: usize,
}

/// `grad_x = conv_backward_input(grad_out, w)` by the transposed GEMM of each
/// tile (`col = W[g]^T . grad_out tile`, the tile's images side by side, so the
/// filters are streamed once per tile) and col2im; `grad_x` must be zero-filled.
/// A task is (block of images, group, block of input channels): it computes the
/// column-matrix rows of its channels and folds each image's tiles back in
/// order, tap by tap, so every cell receives the same additions in the same
/// order whatever the cut.
pub(crate) fn backward_input<T: Element>(
    geo: &ConvGeometry,
    tiles: Col2imTiles,
    grad_out: &[T],
    w: &[T],
    grad_x: &mut [T],
) -> Result<()> {
    let tables = IndexTables::new(geo)?;
    let (cig, cog, kvol) = (geo.cig(), geo.cog(), geo.kernel_vol());
    let (p_len, in_vol) = (geo.out_vol(), geo.in_vol());
    let tile_len = tiles.tile_len.max(1);
    let n_tiles = p_len.div_ceil(tile_len);
    let images = images_per_tile(tile_len, tiles.images, p_len);
    let blocks = geo.n.div_ceil(images);
    // Every chunk's rows (`channels * kvol` of them) start on a panel of the
    // packed A: whole panels of channels, unless one chunk takes them all.
    let channels = match tiles.channels {
        c if c >= cig => cig.max(1),
        c => c.max(1).next_multiple_of(MR).min(cig),
    };
    let chunks = cig.div_ceil(channels).max(1);
    let weights = pack_weights(geo, w)?;
    let w_panel = panel_len(geo);
    let ld = (tile_len * images).next_multiple_of(T::NR);
    let init = workspace::<T>(cog * ld, channels * kvol * tile_len * images);
    let shared = SharedMut::new(grad_x);
    let tasks = blocks * geo.groups * chunks;
    for_each_task(tasks, geo.work(), init, |ws, task| {
        let (block_group, chunk) = (task / chunks, task % chunks);
        let (block, g) = (block_group / geo.groups, block_group % geo.groups);
        let (n0, c0) = (block * images, chunk * channels);
        let (count, cc) = (images.min(geo.n - n0), channels.min(cig - c0));
        let taps = c0 * kvol..(c0 + cc) * kvol;
        let a = &weights[g * w_panel + taps.start * cog..(g + 1) * w_panel];
        for tile in 0..n_tiles {
            let p0 = tile * tile_len;
            let len = tile_len.min(p_len - p0);
            let total = len * count;
            // B: the tile's grad_out rows, the images' side by side, zero past
            // the last column of each row.
            for (co, row) in ws.packed.chunks_exact_mut(ld).take(cog).enumerate() {
                for i in 0..count {
                    let src = ((n0 + i) * geo.c_out + g * cog + co) * p_len + p0;
                    copy_blocks(&grad_out[src..][..len], &mut row[i * len..][..len]);
                }
                row[total..].fill(T::zero());
            }
            // The chunk's column-matrix rows, image by image (`taps x len` each).
            let col = &mut ws.second[..taps.len() * total];
            let image_len = taps.len() * len;
            gemm_rows(
                cog,
                AMatrix::Packed(a),
                taps.len(),
                (&ws.packed, ld),
                total,
                &mut ws.acc,
                false,
                |blk| {
                    for r in 0..blk.rows {
                        let values = blk.row(r);
                        image_runs(blk.col0, blk.cols, len, |i, j, from, run| {
                            let dst = i * image_len + (blk.row0 + r) * len + j;
                            col[dst..][..run].copy_from_slice(&values[from..][..run]);
                        });
                    }
                },
            );
            for (i, image_col) in col.chunks_exact(image_len.max(1)).enumerate() {
                let at = (((n0 + i) * geo.groups + g) * cig + c0) * in_vol;
                // SAFETY: task (block, g, chunk) is the only one writing the
                // chunk's input channels of group g of the block's images.
                let grad = unsafe { shared.range(at, cc * in_vol) };
                scatter_tile(geo, &tables, image_col, taps.clone(), (p0, len), grad);
            }
        }
    })
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
