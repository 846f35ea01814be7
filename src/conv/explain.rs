//! What a convolution's plan is and what it costs: the report behind
//! `explain_conv`. For each pass it gives the algorithm [`super::plan`] chose,
//! every other algorithm that could run the layer, and for each an estimate of
//! the multiply-adds the kernels execute (including the padding of their register
//! blocks and, for Winograd, its transforms), the bytes copied into buffers, the
//! buffer bytes held at once and the number of parallel tasks.
//!
//! The estimates are counts from the shapes, not timings: they explain a choice
//! and show what an alternative would do; the choice itself follows the rules in
//! `plan.rs`.

use super::depthwise::padded_plane_len;
use super::geometry::ConvGeometry;
use super::im2col::{Col2imTiles, ColumnTiles};
use super::implicit::{Bands, PhaseShape, Waves};
use super::plan::{self, Forward, InputGrad, WeightGrad};
use super::precision::Precision;
use super::weight_tasks::WeightTasks;
use super::winograd;
use crate::arrays::Shape5;
use crate::element::Element;
use crate::error::Result;
use crate::geometry::{ConvParams, TransposeParams};
use crate::kernels::{isa, packed_a_len, packed_b_len, DC, DR, MR};
use crate::report::{Cost, PassReport, Report};
use crate::threads;

/// The plan of `conv_forward` / `conv_backward` for these shapes and parameters
/// (the same validation as the call, so a bad argument is the same error).
pub fn explain_conv<T: Element>(
    x: Shape5,
    weight: Shape5,
    params: &ConvParams,
    precision: Option<Precision>,
) -> Result<Report> {
    let geo = ConvGeometry::for_conv(x, weight, params)?.with_precision(precision);
    Ok(Report {
        x_shape: x,
        weight_shape: Some(weight),
        out_shape: geo.out_shape(),
        dtype: T::NAME,
        precision: Some(geo.precision.name()),
        isa: isa::active().name(),
        threads: threads::get_num_threads(),
        passes: vec![
            forward_report::<T>(&geo, "forward"),
            input_report::<T>(&geo, "input_grad"),
            weight_report::<T>(&geo),
        ],
    })
}

/// The plan of `conv_transpose_forward` / `conv_transpose_backward`: its forward
/// pass is the adjoint convolution's input gradient and vice versa.
pub fn explain_conv_transpose<T: Element>(
    x: Shape5,
    weight: Shape5,
    params: &TransposeParams,
    precision: Option<Precision>,
) -> Result<Report> {
    let geo = ConvGeometry::for_transpose(x, weight, params)?.with_precision(precision);
    Ok(Report {
        x_shape: x,
        weight_shape: Some(weight),
        out_shape: geo.x_shape(),
        dtype: T::NAME,
        precision: Some(geo.precision.name()),
        isa: isa::active().name(),
        threads: threads::get_num_threads(),
        passes: vec![
            input_report::<T>(&geo, "forward"),
            forward_report::<T>(&geo, "input_grad"),
            weight_report::<T>(&geo),
        ],
    })
}

fn report<P>(
    pass: &'static str,
    geo: &ConvGeometry,
    chosen: P,
    candidates: Vec<P>,
    name: impl Fn(&P) -> String,
    cost: impl Fn(&P) -> Cost,
) -> PassReport
where
    P: PartialEq,
{
    PassReport {
        pass,
        algorithm: name(&chosen),
        cost: cost(&chosen),
        alternatives: candidates
            .iter()
            .filter(|c| **c != chosen)
            .map(|c| (name(c), cost(c)))
            .collect(),
        flops: to_u64(2 * wide(geo.work())),
    }
}

fn forward_report<T: Element>(geo: &ConvGeometry, pass: &'static str) -> PassReport {
    report(
        pass,
        geo,
        plan::forward::<T>(geo),
        plan::forward_candidates::<T>(geo),
        |p| p.name().to_string(),
        |p| forward_cost::<T>(geo, p),
    )
}

fn input_report<T: Element>(geo: &ConvGeometry, pass: &'static str) -> PassReport {
    report(
        pass,
        geo,
        Candidate(plan::input_grad::<T>(geo)),
        plan::input_grad_candidates::<T>(geo)
            .into_iter()
            .map(Candidate)
            .collect(),
        |p| p.0.name(),
        |p| input_cost::<T>(geo, &p.0),
    )
}

fn weight_report<T: Element>(geo: &ConvGeometry) -> PassReport {
    report(
        "weight_grad",
        geo,
        plan::weight_grad::<T>(geo),
        plan::weight_grad_candidates::<T>(geo),
        |p| p.name().to_string(),
        |p| weight_cost::<T>(geo, p),
    )
}

/// Input-gradient plans compared by algorithm (an adjoint's geometry is a
/// function of the layer's).
struct Candidate(InputGrad);

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.0.name() == other.0.name()
    }
}

// ------------------------------------------------------------------ arithmetic

/// Counts are products of sizes that fit `usize` one by one; their products
/// are taken in `u128` and reported saturated to `u64`.
fn wide(v: usize) -> u128 {
    v as u128
}

fn to_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn round_up(v: usize, multiple: usize) -> u128 {
    wide(v.div_ceil(multiple.max(1))) * wide(multiple.max(1))
}

fn bytes<T>(elements: u128) -> u64 {
    to_u64(elements * wide(std::mem::size_of::<T>()))
}

/// Elements of the per-axis index tables of the column walks.
fn tables(geo: &ConvGeometry) -> u128 {
    (0..3)
        .map(|a| wide(geo.kernel[a]) * wide(geo.output[a]))
        .sum()
}

/// A pass of `tasks` tasks and `work` multiply-adds: whether it runs serially,
/// and how many workers hold a buffer.
fn workers(tasks: u128, work: usize) -> (bool, u128) {
    let serial = tasks <= 1 || threads::runs_serially(work);
    let workers = if serial {
        1
    } else {
        tasks.min(wide(threads::get_num_threads()))
    };
    (serial, workers)
}

/// Sum over the tiles of a `len`-long range cut into `tile`-long tiles of each
/// tile's length rounded up to `multiple` (a GEMM computes whole panels).
fn padded_tiles(len: usize, tile: usize, multiple: usize) -> u128 {
    tiled(len, tile, |t| round_up(t, multiple))
}

/// Sum over the tiles of a `len`-long range cut into `tile`-long tiles of
/// `size(tile length)`.
fn tiled(len: usize, tile: usize, size: impl Fn(usize) -> u128) -> u128 {
    if len == 0 {
        return 0;
    }
    let tile = tile.max(1);
    let (full, rest) = (len / tile, len % tile);
    wide(full) * size(tile) + if rest > 0 { size(rest) } else { 0 }
}

/// Columns the micro-kernel computes for a GEMM of `cols` columns: whole panels,
/// and the last one in whole vector registers.
fn gemm_cols<T: Element>(cols: usize) -> u128 {
    let nr = T::NR;
    wide(cols / nr * nr) + round_up(cols % nr, T::LANES)
}

/// [`gemm_cols`] summed over the GEMMs of `tile`-long tiles of `len` columns.
fn tiled_gemm_cols<T: Element>(len: usize, tile: usize) -> u128 {
    tiled(len, tile, gemm_cols::<T>)
}

/// Images side by side in a column tile of `tile_len` positions (several only
/// when the tile holds a whole plane), and the columns the micro-kernel computes
/// over all images' tiles.
fn column_tiles<T: Element>(geo: &ConvGeometry, tile_len: usize, images: usize) -> (usize, u128) {
    let p_len = geo.out_vol();
    let tile_len = tile_len.max(1);
    let images = if tile_len >= p_len { images.max(1) } else { 1 };
    let cols = tiled(geo.n, images, |count| {
        tiled_gemm_cols::<T>(count * p_len, count * tile_len)
    });
    (images, cols)
}

fn cost(macs: u128, copied: u64, workspace: u64, tasks: u128, serial: bool) -> Cost {
    Cost {
        ops: to_u64(macs),
        copied_bytes: copied,
        workspace_bytes: workspace,
        tasks: to_u64(tasks),
        serial,
    }
}

// ---------------------------------------------------------------- estimates

fn forward_cost<T: Element>(geo: &ConvGeometry, plan: &Forward) -> Cost {
    let (n, groups, cig, cog) = (wide(geo.n), wide(geo.groups), geo.cig(), geo.cog());
    let work = wide(geo.work());
    let planes = n * wide(geo.c_out);
    let nr = T::NR;
    match *plan {
        Forward::Empty => cost(0, 0, 0, 0, true),
        Forward::BiasOnly => {
            let (serial, _) = workers(planes, geo.n * geo.c_out * geo.out_vol());
            cost(0, 0, 0, planes, serial)
        }
        Forward::DepthwiseRows => {
            let padded = wide(padded_plane_len(geo).unwrap_or(usize::MAX));
            let (serial, workers) = workers(planes, geo.work());
            let buffer = padded + wide(geo.output[2]);
            cost(
                work,
                bytes::<T>(planes * wide(cig) * padded),
                bytes::<T>(workers * buffer),
                planes,
                serial,
            )
        }
        Forward::Direct => {
            let (serial, _) = workers(planes, geo.work());
            cost(work, 0, to_u64(tables(geo) * 8), planes, serial)
        }
        Forward::Winograd(split) => {
            // Lanes computed: each block's tiles in whole vector registers.
            let tiles = padded_tiles(winograd::tiles(geo), split.block, T::LANES);
            let chunks = wide(split.chunks(geo));
            let (cig, cog) = (wide(cig), wide(cog));
            // 36 GEMMs per block; the input transform of a 6x6 patch (repeated
            // for every chunk of output channels) and the output transform of a
            // 4x4 tile take about 120 and 60 multiply-adds.
            let macs = groups
                * tiles
                * (36 * round_up(geo.cog(), MR) * cig + 120 * cig * chunks + 60 * cog);
            let tasks = wide(split.tasks(geo));
            let (serial, workers) = workers(tasks, geo.work() / 4);
            // The packed transformed filters (written in place, one transform
            // buffer per worker), and per worker: patches and their first
            // transform (36 x NR each), transformed inputs and GEMM results at
            // the block's width, output tiles and the micro-tile.
            let filters = groups * 36 * wide(packed_a_len(geo.cog(), geo.cig()))
                + workers * wide(winograd::FILTER_WORKSPACE);
            let channels = wide(split.channels.clamp(1, geo.cog().max(1)));
            let per_worker = wide(2 * 36 * nr)
                + wide(36 * split.block.clamp(1, nr)) * (cig + channels)
                + wide(16 * nr + MR * nr);
            cost(
                macs,
                bytes::<T>(groups * tiles * 36 * (cig + cog)),
                bytes::<T>(filters + workers * per_worker),
                tasks,
                serial,
            )
        }
        Forward::ImplicitGemm(Bands { band, channels, .. }) => {
            let phases = PhaseShape::of(geo);
            let [out_d, out_h, out_w] = geo.output;
            let bands = out_h.div_ceil(band.max(1)).max(1);
            let last = out_h.saturating_sub(band * (bands - 1)).max(1);
            let cols = |rows: usize| (rows.saturating_sub(1) * phases.pitch).saturating_add(out_w);
            let positions =
                wide(bands - 1) * gemm_cols::<T>(cols(band)) + gemm_cols::<T>(cols(last));
            let chunks = n * groups * wide(out_d);
            // Every chunk of output channels of a band fills its planes.
            let channel_chunks = wide(geo.cog().div_ceil(channels.max(1)).max(1));
            let tasks = chunks * wide(bands) * channel_chunks;
            let planes_len = wide(phases.band_elements(band));
            let (serial, workers) = workers(tasks, geo.work());
            let packed = groups * wide(packed_a_len(cog, geo.k_len()));
            cost(
                chunks * round_up(cog, MR) * wide(geo.k_len()) * positions,
                bytes::<T>(tasks * planes_len),
                bytes::<T>(packed + workers * (planes_len + wide(nr + MR * nr))),
                tasks,
                serial,
            )
        }
        Forward::Im2col(ColumnTiles {
            tile_len,
            images,
            channels,
            in_place,
            ..
        }) => {
            let k_len = wide(geo.k_len());
            let tiles = wide(geo.out_vol().div_ceil(tile_len.max(1)));
            let (images, positions) = column_tiles::<T>(geo, tile_len, images);
            let blocks = wide(geo.n.div_ceil(images));
            let channel_chunks = wide(geo.cog().div_ceil(channels.max(1)).max(1));
            let tasks = blocks * groups * tiles * channel_chunks;
            let (serial, workers) = workers(tasks, geo.work());
            // Every chunk of output channels of a tile gathers its columns.
            let gathered = if in_place && images == 1 {
                0
            } else {
                n * groups * channel_chunks * k_len * wide(geo.out_vol())
            };
            let packed = groups * wide(packed_a_len(cog, geo.k_len()));
            let per_worker = k_len * round_up(tile_len * images, nr) + wide(MR * nr);
            cost(
                groups * round_up(cog, MR) * k_len * positions,
                bytes::<T>(gathered),
                bytes::<T>(packed + workers * per_worker) + to_u64(tables(geo) * 8),
                tasks,
                serial,
            )
        }
    }
}

fn input_cost<T: Element>(geo: &ConvGeometry, plan: &InputGrad) -> Cost {
    let (n, groups, cig, cog) = (wide(geo.n), wide(geo.groups), geo.cig(), geo.cog());
    let work = wide(geo.work());
    let nr = T::NR;
    match plan {
        InputGrad::Zero => cost(0, 0, 0, 0, true),
        InputGrad::DepthwiseRows => {
            let planes = n * wide(geo.c_in);
            let (serial, workers) = workers(planes, geo.work());
            let buffer = wide(padded_plane_len(geo).unwrap_or(usize::MAX));
            cost(work, 0, bytes::<T>(workers * buffer), planes, serial)
        }
        InputGrad::Direct => {
            let tasks = n * groups;
            let (serial, _) = workers(tasks, geo.work());
            cost(work, 0, to_u64(tables(geo) * 8), tasks, serial)
        }
        InputGrad::Adjoint { geometry, forward } => {
            let inner = forward_cost::<T>(geometry, forward);
            let flipped = bytes::<T>(wide(geo.c_out) * wide(cig) * wide(geo.kernel_vol()));
            Cost {
                copied_bytes: inner.copied_bytes.saturating_add(flipped),
                workspace_bytes: inner.workspace_bytes.saturating_add(flipped),
                ..inner
            }
        }
        &InputGrad::SubPixel { channels } => {
            let tasks = n * groups * wide(geo.cig().div_ceil(channels.max(1)).max(1));
            let (serial, workers) = workers(tasks, geo.work());
            // grad_out of a group padded by the widest tap shift along H and W,
            // and the cells of every phase before they are interleaved.
            let shift = |axis: usize| {
                geo.kernel[axis]
                    .saturating_sub(1)
                    .saturating_mul(geo.dilation[axis])
                    / geo.stride[axis].max(1)
            };
            let padded = wide(cog)
                * wide(geo.output[1].saturating_add(shift(1)))
                * wide(geo.output[2].saturating_add(shift(2)));
            let cells = wide(cig) * wide(geo.in_vol());
            cost(
                work * round_up(cig, MR) / wide(cig.max(1)),
                bytes::<T>(tasks * (padded + cells)),
                bytes::<T>(workers * (padded + cells + wide(nr + MR * nr))),
                tasks,
                serial,
            )
        }
        &InputGrad::Col2im(Col2imTiles {
            tile_len,
            images,
            channels,
        }) => {
            let k_len = geo.k_len();
            let (images, positions) = column_tiles::<T>(geo, tile_len, images);
            let chunks = geo.cig().div_ceil(channels.max(1)).max(1);
            let tasks = wide(geo.n.div_ceil(images)) * groups * wide(chunks);
            let (serial, workers) = workers(tasks, geo.work());
            let cols = tile_len.saturating_mul(images);
            let per_worker = wide(packed_b_len(cog, cols, nr))
                + wide(k_len.min(channels.saturating_mul(geo.kernel_vol()))) * wide(cols)
                + wide(MR * nr);
            let packed = groups * wide(packed_a_len(k_len, cog));
            // Every chunk of input channels copies the tile's grad_out rows; the
            // column matrix is written once.
            let copied =
                n * groups * (wide(chunks) * wide(cog) + wide(k_len)) * wide(geo.out_vol());
            cost(
                groups * round_up(k_len, MR) * wide(cog) * positions,
                bytes::<T>(copied),
                bytes::<T>(packed + workers * per_worker) + to_u64(tables(geo) * 8),
                tasks,
                serial,
            )
        }
    }
}

fn weight_cost<T: Element>(geo: &ConvGeometry, plan: &WeightGrad) -> Cost {
    let (n, groups, cig, cog) = (wide(geo.n), wide(geo.groups), geo.cig(), geo.cog());
    let work = wide(geo.work());
    let blocks = |tasks: &WeightTasks| wide(tasks.sums_len::<T>()) * wide(tasks.tasks(geo));
    match plan {
        WeightGrad::Zero => cost(0, 0, 0, 0, true),
        WeightGrad::DepthwiseRows => {
            let tasks = wide(geo.c_out);
            let padded = wide(padded_plane_len(geo).unwrap_or(usize::MAX));
            let (serial, workers) = workers(tasks, geo.work());
            let per_worker = padded + wide(cig) * wide(geo.kernel_vol()) * 16;
            cost(
                work,
                bytes::<T>(n * wide(geo.c_out) * wide(cig) * padded),
                bytes::<T>(workers * per_worker),
                tasks,
                serial,
            )
        }
        WeightGrad::Direct => {
            let tasks = wide(geo.c_out);
            let (serial, _) = workers(tasks, geo.work());
            cost(work, 0, to_u64(tables(geo) * 8), tasks, serial)
        }
        WeightGrad::PhasePlanes(Waves {
            band,
            chunks_per_wave,
            tasks,
        }) => {
            let phases = PhaseShape::of(geo);
            let [out_d, out_h, out_w] = geo.output;
            let band = *band;
            let bands = out_h.div_ceil(band.max(1)).max(1);
            let last = out_h.saturating_sub(band * (bands - 1)).max(1);
            let cols =
                |rows: usize| wide((rows.saturating_sub(1) * phases.pitch).saturating_add(out_w));
            let positions = n * wide(out_d) * (wide(bands - 1) * cols(band) + cols(last));
            let chunk_len =
                wide(phases.band_elements(band)) + wide(cog) * wide(band) * wide(phases.pitch);
            let chunks = n * groups * wide(out_d) * wide(bands);
            let (serial, _) = workers(wide(tasks.tasks(geo)), geo.work());
            cost(
                groups * round_up(cog, DR) * round_up(geo.k_len(), DC) * positions,
                bytes::<T>(chunks * chunk_len),
                bytes::<T>(wide(*chunks_per_wave) * chunk_len + blocks(tasks)),
                wide(tasks.tasks(geo)),
                serial,
            )
        }
        WeightGrad::Im2colGemm {
            tasks,
            tile,
            images,
        } => {
            let count = wide(tasks.tasks(geo));
            let (serial, workers) = workers(count, geo.work());
            let gathered =
                n * groups * wide(tasks.row_chunks()) * wide(geo.k_len()) * wide(geo.out_vol());
            let row = wide(*tile) * wide(*images);
            let rows = if *images > 1 {
                wide(tasks.row_chunk) * row
            } else {
                0
            };
            // gathered tap rows, their transposed panel, side-by-side grad_out
            // rows, and the task's sums
            let per_worker = wide(tasks.tap_chunk) * row
                + row * wide(T::NR)
                + rows
                + wide(tasks.row_chunk) * wide(tasks.tap_chunk);
            cost(
                n * groups
                    * round_up(cog, MR)
                    * round_up(geo.k_len(), T::LANES)
                    * wide(geo.out_vol()),
                bytes::<T>(gathered),
                bytes::<T>(workers * per_worker) + to_u64(tables(geo) * 8),
                count,
                serial,
            )
        }
    }
}
