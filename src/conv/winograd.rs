//! Winograd F(4x4, 3x3) forward pass for 3x3, stride-1, undilated 2-D convolutions.
//!
//! Each 6x6 input patch `d` and 3x3 filter `g` are transformed (`V = B^T d B`,
//! `U = G g G^T`); the 36 element-wise products summed over input channels are 36
//! GEMMs `M[xi] = U[xi] . V[xi]`, and `Y = A^T M A` gives a 4x4 output tile. That is
//! 4x fewer multiplications than direct convolution. Tiles are processed in blocks
//! of one micro-kernel panel (`NR` tiles) so the workspace stays in L2, with the
//! same block decomposition whatever the thread count.

use super::geometry::ConvGeometry;
use crate::alloc::alloc_zeroed;
use crate::element::Element;
use crate::error::Result;
use crate::kernels::{accumulator, gemm_packed, pack_a, packed_a_len, SharedMut};
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

/// Blocks of `nr` tiles the tiles of every image are cut into (a micro-kernel
/// panel of tiles each, so small images still fill whole panels); a task is one
/// block of one group.
pub(crate) fn blocks(geo: &ConvGeometry, nr: usize) -> usize {
    let [_, oh, ow] = geo.output;
    (geo.n * oh.div_ceil(M) * ow.div_ceil(M)).div_ceil(nr)
}

fn transpose<T: Copy + Default, const R: usize, const C: usize>(m: &[[T; C]; R]) -> [[T; R]; C] {
    let mut out = [[T::default(); R]; C];
    for (r, row) in m.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[c][r] = v;
        }
    }
    out
}

/// `U = G g G^T` for every filter, packed per group and point as GEMM A operands
/// (`cog x cig`).
fn transform_filters<T: Element>(geo: &ConvGeometry, w: &[T]) -> Result<Vec<T>> {
    let (cig, cog) = (geo.cig(), geo.cog());
    let g_matrix: [[T; 3]; 6] = G.map(|row| row.map(|v| T::from(v).unwrap_or_else(T::zero)));
    let mut u = alloc_zeroed::<T>(geo.c_out * cig * POINTS, "Winograd filters")?;
    for (filter, out) in w.chunks_exact(9).zip(u.chunks_exact_mut(POINTS)) {
        let g = [
            [filter[0], filter[1], filter[2]],
            [filter[3], filter[4], filter[5]],
            [filter[6], filter[7], filter[8]],
        ];
        let gg = small_product_t(&g_matrix, &g); // 6 x 3
        let u_t = small_product_t(&g_matrix, &transpose(&gg)); // (G (G g)^T) = (G g G^T)^T
        for (xi, slot) in out.iter_mut().enumerate() {
            *slot = u_t[xi % PATCH][xi / PATCH];
        }
    }
    // u is [c_out][cig][point]; pack [group][point] as cog x cig matrices.
    let per_point = packed_a_len(cog, cig);
    let mut packed = alloc_zeroed::<T>(geo.groups * POINTS * per_point, "packed Winograd filters")?;
    for g in 0..geo.groups {
        for xi in 0..POINTS {
            let dst = &mut packed[(g * POINTS + xi) * per_point..][..per_point];
            pack_a(
                &u,
                g * cog * cig * POINTS + xi,
                cog,
                cig,
                cig * POINTS,
                POINTS,
                dst,
            );
        }
    }
    Ok(packed)
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
    /// Transformed inputs: `[point][cig][NR]` (one packed B panel per point).
    v: Vec<T>,
    /// GEMM results: `[point][cog][NR]`.
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
    out: &'a SharedMut<'a, MaybeUninit<T>>,
    rows: Vec<usize>,
    cols: Vec<usize>,
    tiles: usize,
    tiles_w: usize,
}

impl<T> Plan<'_, T> {
    /// Whether the patches from padded column `c0` read six consecutive input
    /// columns (no padding, no mapping; their rows may be padding or mapped).
    fn columns_inside(&self, c0: usize) -> bool {
        let first = self.cols[c0];
        first != ZERO && (1..PATCH).all(|i| self.cols[c0 + i] == first + i)
    }
}

/// `out = conv(x, w) + bias` by Winograd F(4x4, 3x3); every element of `out` is
/// written (once).
pub(crate) fn forward<T: Element>(
    geo: &ConvGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    out: &mut [MaybeUninit<T>],
) -> Result<()> {
    let (cig, cog, nr) = (geo.cig(), geo.cog(), T::NR);
    let [_, oh, ow] = geo.output;
    let (tiles_h, tiles_w) = (oh.div_ceil(M), ow.div_ceil(M));
    let tiles = tiles_h * tiles_w;
    let blocks = blocks(geo, nr);
    let filters = transform_filters(geo, w)?;
    let out_shared = SharedMut::new(out);
    let plan = Plan {
        geo,
        x,
        filters: &filters,
        bias,
        out: &out_shared,
        rows: axis_sources(geo, 1, tiles_h),
        cols: axis_sources(geo, 2, tiles_w),
        tiles,
        tiles_w,
    };
    let init = || Workspace {
        patches: vec![T::zero(); POINTS * nr],
        t1: vec![T::zero(); POINTS * nr],
        v: vec![T::zero(); POINTS * cig * nr],
        m: vec![T::zero(); POINTS * cog * nr],
        y: vec![T::zero(); M * M * nr],
        acc: accumulator::<T>(),
        runs: Vec::with_capacity(nr),
        border: Vec::with_capacity(nr),
        out_runs: Vec::with_capacity(nr),
        out_tiles: Vec::with_capacity(nr),
    };
    let tasks = geo.groups * blocks;
    for_each_task(tasks, geo.work() / 4, init, |ws, task| {
        let (group, block) = (task / blocks, task % blocks);
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::isa::avx512() {
            // SAFETY: AVX-512F is available (checked just above).
            unsafe { run_block_avx512(&plan, ws, group, block) };
            return;
        }
        run_block(&plan, ws, group, block);
    })
}

/// [`run_block`] compiled for AVX-512, so its tile loops use 512-bit vectors.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_block_avx512<T: Element>(
    plan: &Plan<'_, T>,
    ws: &mut Workspace<T>,
    group: usize,
    block: usize,
) {
    run_block(plan, ws, group, block)
}

/// One block of `NR` tiles of one image and group: transform, 36 GEMMs, inverse.
#[inline(always)]
fn run_block<T: Element>(plan: &Plan<'_, T>, ws: &mut Workspace<T>, g: usize, block: usize) {
    let geo = plan.geo;
    let (cig, cog, nr) = (geo.cig(), geo.cog(), T::NR);
    let [_, oh, ow] = geo.output;
    let [_, ih, iw] = geo.input;
    let (in_vol, out_vol) = (ih * iw, oh * ow);
    let first = block * nr;
    let count = nr.min(geo.n * plan.tiles - first);
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
                nr,
                input_transform,
            );
        }
        for r in 0..PATCH {
            transform(
                &ws.t1,
                |c| (r * PATCH + c) * nr,
                &mut ws.v,
                |s| ((r * PATCH + s) * cig + ci) * nr,
                nr,
                input_transform,
            );
        }
    }
    // 2. M[point] = U[point] . V[point].
    let per_point = packed_a_len(cog, cig);
    for xi in 0..POINTS {
        let a = &plan.filters[(g * POINTS + xi) * per_point..][..per_point];
        let b = &ws.v[xi * cig * nr..][..cig * nr];
        let m = &mut ws.m[xi * cog * nr..][..cog * nr];
        gemm_packed(cig, a, cog, b, count, &mut ws.acc, |blk| {
            for r in 0..blk.rows {
                let dst = (blk.row0 + r) * nr + blk.col0;
                m[dst..dst + blk.cols].copy_from_slice(blk.row(r));
            }
        });
    }
    // 3. Y = A^T M A, cropped to the output, plus bias.
    for co in 0..cog {
        let channel = g * cog + co;
        let offset = plan.bias.map_or(T::zero(), |b| b[channel]);
        for c in 0..PATCH {
            transform(
                &ws.m,
                |k| ((k * PATCH + c) * cog + co) * nr,
                &mut ws.t1,
                |r| (r * PATCH + c) * nr,
                nr,
                output_transform,
            );
        }
        for r in 0..M {
            transform(
                &ws.t1,
                |c| (r * PATCH + c) * nr,
                &mut ws.y,
                |s| (r * M + s) * nr,
                nr,
                output_transform,
            );
        }
        for &(j0, len, n, r0, c0) in &ws.out_runs {
            for r in 0..M.min(oh - r0) {
                let start = (n * geo.c_out + channel) * out_vol + (r0 + r) * ow + c0;
                // SAFETY: task (g, block) is the only writer of the output tiles
                // of its block (each tile belongs to one block) in group g.
                let dst = unsafe { plan.out.range(start, M * len) };
                let rows = std::array::from_fn(|s| &ws.y[(r * M + s) * nr + j0..][..len]);
                T::interleave4(rows, offset, dst);
            }
        }
        for &(j, n, r0, c0) in &ws.out_tiles {
            let width = M.min(ow - c0);
            for r in 0..M.min(oh - r0) {
                let start = (n * geo.c_out + channel) * out_vol + (r0 + r) * ow + c0;
                // SAFETY: as for the runs above.
                let dst = unsafe { plan.out.range(start, width) };
                for (s, slot) in dst.iter_mut().enumerate() {
                    slot.write(ws.y[(r * M + s) * nr + j] + offset);
                }
            }
        }
    }
}

/// `left (R x C) . right (C x I)` for small fixed-size matrices.
fn small_product_t<T: Element, const R: usize, const C: usize, const I: usize>(
    left: &[[T; C]; R],
    right: &[[T; I]; C],
) -> [[T; I]; R] {
    let mut out = [[T::zero(); I]; R];
    for (out_row, left_row) in out.iter_mut().zip(left) {
        for (&c, right_row) in left_row.iter().zip(right) {
            for (o, &r) in out_row.iter_mut().zip(right_row) {
                *o += c * r;
            }
        }
    }
    out
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
