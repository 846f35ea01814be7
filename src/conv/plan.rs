//! The one place that decides how a convolution runs. From the validated
//! [`ConvGeometry`] of a call (and its element type) it chooses, for each pass,
//! the algorithm, the cut into parallel tasks and the size of the per-task
//! buffers; the algorithm modules only execute what it chose, and
//! [`super::explain`] reports it to users (`explain_conv`).
//!
//! Every algorithm has two kinds of rules here:
//! - *can run*: what its implementation supports (padding mode, strides, kernel
//!   shape, rank) and bounds on its buffers, so that a huge dilation or padding
//!   never sizes one;
//! - *pays*: the measured preferences that pick among those that can run, tried
//!   in a fixed order (the measurements are in `docs/performance.md`).
//!
//! | pass            | tried in order                                          |
//! |-----------------|---------------------------------------------------------|
//! | forward         | depthwise rows / direct (<= 2 output channels per group), Winograd, implicit GEMM, im2col GEMM |
//! | input gradient  | direct, the adjoint's forward (stride 1), sub-pixel, col2im |
//! | weight gradient | depthwise rows / direct, phase planes, im2col dot products |
//!
//! Under `precision="highest"` ([`super::precision`]) Winograd cannot run, so
//! every pass sums its products directly.
//!
//! Plans depend on the shape, the element type and (for their cuts into tasks:
//! the weight gradient's task grid, chunks of channels, images per column tile)
//! the thread count, never on the data; every choice computes the same sums in
//! the same order for any thread count.

use super::depthwise;
use super::geometry::ConvGeometry;
use super::im2col::{Col2imTiles, ColumnTiles};
use super::implicit::{Bands, PhaseShape, Waves};
use super::weight_tasks::WeightTasks;
use super::winograd::{self, TileBlocks};
use crate::element::Element;
use crate::error::{value_error, Result};
use crate::geometry::{PaddingMode, SPATIAL};
use crate::kernels::{DC, MR};
use crate::threads::get_num_threads;
use std::sync::Mutex;

// ------------------------------------------------------------------ budgets

/// Elements of a column-matrix tile one worker gathers at a time (with a group's
/// packed weights it stays in L2).
const COL_TILE_ELEMENTS: usize = 1 << 17;
/// Tiles are whole numbers of micro-kernel column panels (48 f32 / 24 f64 columns).
const TILE_ALIGN: usize = 48;
/// Parallel tasks per thread from which a forward pass is not cut further
/// along its output channels (uneven tasks even out among that many).
const TASKS_PER_THREAD: usize = 4;
/// Output channels per task at least when a forward pass is cut along them
/// (each task prepares its input operand again: transforms or gathers).
const MIN_TASK_CHANNELS: usize = 32;
/// Elements of one task's phase planes in the implicit-GEMM forward, unless a
/// single output row needs more (about a column tile's size).
const BAND_ELEMENTS: usize = 1 << 17;
/// Reduction lengths up to which the implicit forward GEMM runs row panels
/// outermost (short columns: re-reading a B panel from L2 is cheap, and the
/// output is written as a few long streams).
const ROWS_OUTER_MAX_K: usize = 256;
/// Transformed-filter elements one Winograd call may hold at most (16 MiB of f32;
/// very wide layers take another algorithm).
const WINOGRAD_MAX_FILTER_ELEMENTS: usize = 1 << 22;
/// Input and output channels per group from which Winograd's 36 GEMMs amortise
/// its transforms.
const WINOGRAD_MIN_CHANNELS: usize = 16;
/// Output tiles (of all images) from which the Winograd filter transform is
/// amortised.
const WINOGRAD_MIN_TILES: usize = 32;
/// Input channels per group from which the sub-pixel input gradient fills the
/// micro-kernel's rows (they are its GEMM's rows).
const SUBPIXEL_MIN_CHANNELS: usize = 16;
/// Taps per weight-gradient task at most (a multiple of the dot kernel's `DC`).
const WEIGHT_TAP_CHUNK: usize = 48;
/// Output channels per weight-gradient task at most (the phase-plane dot
/// kernel's lane sums: 24 vectors per 4 x 6 block).
const WEIGHT_ROW_CHUNK: usize = 128;
/// Output channels per task of the GEMM weight gradient at most: every block of
/// rows gathers its tap rows again, so all of a deep layer's rows share one
/// gather (its sums are one value per weight).
const WEIGHT_GEMM_ROW_CHUNK: usize = 1024;
/// Bytes of one row of a gathered weight-gradient tile (long rows amortise the
/// loads and stores of the lane sums per kernel call).
const WEIGHT_TILE_BYTES: usize = 12288;
/// Positions of the images put side by side in one weight-gradient tile at most
/// (planes under half of it are combined: measured on 7x7 and 14x14 layers,
/// longer tiles gained nothing).
const WEIGHT_SIDE_BY_SIDE: usize = 256;
/// Filter elements per group from which column tiles put several images side
/// by side ([`shares_tiles`]): as many as a column tile holds (unit tests share
/// tiles on their small shapes too, from a few thousand).
const SHARED_MIN_FILTERS: usize = if cfg!(test) {
    1 << 12
} else {
    COL_TILE_ELEMENTS
};
/// Bytes of phase planes (and padded `grad_out` rows) the phase-plane weight
/// gradient prepares at once.
const WAVE_BYTES: usize = 4 << 20;
/// Elements of one chunk's phase planes at most in the weight gradient (long
/// rows amortise the dot kernel's lane sums).
const WEIGHT_BAND_ELEMENTS: usize = 1 << 19;
/// Multiply-adds below which the weight gradient keeps the gather (unit tests run
/// the phase planes on their small shapes too).
const WEIGHT_MIN_WORK: usize = if cfg!(test) { 1 } else { 1 << 24 };
/// Bytes of lane sums the phase-plane weight gradient may keep (one set per weight).
const SUMS_BYTES: usize = 16 << 20;
/// Bytes of lane sums per output position of a plane at most for the phase-plane
/// weight gradient: every band of a plane loads and stores the sums of its
/// weights, so a small plane with many weights spends its time on them (measured
/// crossover against the gather over 7x7 to 56x56 planes, 32 to 128 channels,
/// batch 1 to 32: 1.2 MB of sums from 8x8-16x16 planes, 4.7 MB from 20x20-28x28,
/// 9.4 MB from 28x28-32x32).
const SUMS_BYTES_PER_POSITION: usize = 10 << 10;

// -------------------------------------------------------------------- plans

/// How the forward pass runs (also the input gradient of a stride-1 layer, as
/// its adjoint's forward, and a transposed convolution's input gradient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forward {
    /// The output has no elements.
    Empty,
    /// No input channels: the output is the bias.
    BiasOnly,
    /// Row kernels over zero-padded input rows, one task per output plane.
    DepthwiseRows,
    /// Tap by tap into each output plane, one task per plane.
    Direct,
    /// Winograd F(4x4, 3x3): one task per block of tiles, group and chunk of
    /// output channels.
    Winograd(TileBlocks),
    /// Implicit GEMM over phase planes, one task per band of output rows.
    ImplicitGemm(Bands),
    /// Packed GEMM over gathered column tiles, one task per tile.
    Im2col(ColumnTiles),
}

/// How the input gradient runs.
#[derive(Debug, Clone)]
pub(crate) enum InputGrad {
    /// Nothing flows back: the gradient is zero.
    Zero,
    /// Each output channel's taps folded back, one task per (image, group).
    Direct,
    /// Small strided depthwise planes: taps added into the input's phases, one
    /// task per input plane.
    DepthwiseRows,
    /// The forward pass of the adjoint convolution `geometry` (flipped,
    /// channel-swapped filters), run as `forward` plans it.
    Adjoint {
        geometry: Box<ConvGeometry>,
        forward: Forward,
    },
    /// One implicit GEMM per stride phase, one task per (image, group, block
    /// of `channels` input channels).
    SubPixel { channels: usize },
    /// Transposed GEMM per column tile and col2im, one task per (block of
    /// images, group, block of input channels).
    Col2im(Col2imTiles),
}

/// How the weight gradient runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightGrad {
    /// No weights, or nothing to sum: the gradient is zero.
    Zero,
    /// Row kernels' lane sums per tap, one task per output channel.
    DepthwiseRows,
    /// Tap by tap, one task per output channel.
    Direct,
    /// Dot products over phase planes, prepared in waves.
    PhasePlanes(Waves),
    /// A GEMM per tile of gathered tap rows (`tile` positions of each of
    /// `images` images side by side) and block of taps.
    Im2colGemm {
        tasks: WeightTasks,
        tile: usize,
        images: usize,
    },
}

impl Forward {
    /// The algorithm's name as users see it.
    pub fn name(&self) -> &'static str {
        match self {
            Forward::Empty => "none",
            Forward::BiasOnly => "bias_only",
            Forward::DepthwiseRows => "depthwise_rows",
            Forward::Direct => "direct",
            Forward::Winograd(_) => "winograd",
            Forward::ImplicitGemm(_) => "implicit_gemm",
            Forward::Im2col(_) => "im2col_gemm",
        }
    }
}

impl InputGrad {
    pub fn name(&self) -> String {
        match self {
            InputGrad::Zero => "none".into(),
            InputGrad::Direct => "direct".into(),
            InputGrad::DepthwiseRows => "depthwise_rows".into(),
            InputGrad::Adjoint { forward, .. } => format!("adjoint_{}", forward.name()),
            InputGrad::SubPixel { .. } => "sub_pixel".into(),
            InputGrad::Col2im(_) => "col2im".into(),
        }
    }
}

impl WeightGrad {
    pub fn name(&self) -> &'static str {
        match self {
            WeightGrad::Zero => "none",
            WeightGrad::DepthwiseRows => "depthwise_rows",
            WeightGrad::Direct => "direct",
            WeightGrad::PhasePlanes(_) => "phase_planes",
            WeightGrad::Im2colGemm { .. } => "im2col_gemm",
        }
    }
}

// ------------------------------------------------------------------ choices

// ---------------------------------------------------------------- overrides

/// The passes a plan can be overridden for, in the order of the override table.
pub const PASSES: [&str; 3] = ["forward", "input_grad", "weight_grad"];

/// Algorithms forced per pass (by name, as reports show them), for measuring
/// the alternatives the rules did not choose (`bench --all-algorithms`). A forced
/// algorithm that cannot run a layer is ignored for it; results stay correct
/// whichever algorithm runs.
static OVERRIDES: Mutex<[Option<String>; 3]> = Mutex::new([None, None, None]);

/// Force `algorithm` for `pass` in every later call (`None`: back to the rules).
pub fn set_override(pass: &str, algorithm: Option<&str>) -> Result<()> {
    let Some(index) = PASSES.iter().position(|&p| p == pass) else {
        return value_error!("pass must be one of {PASSES:?}, got {pass:?}");
    };
    let mut overrides = OVERRIDES.lock().unwrap_or_else(|e| e.into_inner());
    overrides[index] = algorithm.map(str::to_string);
    Ok(())
}

/// The candidate named by the override of pass `index`, if one is set and can run.
fn overridden<P>(index: usize, candidates: Vec<P>, name: impl Fn(&P) -> String) -> Option<P> {
    let overrides = OVERRIDES.lock().unwrap_or_else(|e| e.into_inner());
    let wanted = overrides[index].as_deref()?;
    candidates.into_iter().find(|c| name(c) == wanted)
}

/// The forward plan of `geo`: the rules' choice, unless overridden.
pub(crate) fn forward<T: Element>(geo: &ConvGeometry) -> Forward {
    let chosen = forward_by_rules::<T>(geo);
    if matches!(chosen, Forward::Empty | Forward::BiasOnly) {
        return chosen;
    }
    overridden(0, forward_candidates::<T>(geo), |p| p.name().to_string()).unwrap_or(chosen)
}

/// The input-gradient plan of `geo`: the rules' choice, unless overridden.
pub(crate) fn input_grad<T: Element>(geo: &ConvGeometry) -> InputGrad {
    let chosen = input_grad_by_rules::<T>(geo);
    if matches!(chosen, InputGrad::Zero) {
        return chosen;
    }
    overridden(1, input_grad_candidates::<T>(geo), InputGrad::name).unwrap_or(chosen)
}

/// The weight-gradient plan of `geo`: the rules' choice, unless overridden.
pub(crate) fn weight_grad<T: Element>(geo: &ConvGeometry) -> WeightGrad {
    let chosen = weight_grad_by_rules::<T>(geo);
    if matches!(chosen, WeightGrad::Zero) {
        return chosen;
    }
    overridden(2, weight_grad_candidates::<T>(geo), |p| {
        p.name().to_string()
    })
    .unwrap_or(chosen)
}

/// The bands of the native 16-bit forward of `geo` (an implicit GEMM on
/// `vdpbf16ps`, or on float16 planes widened in the kernel), or `None` where the
/// float32 plan should run on widened inputs: wherever the float32 plan is a GEMM
/// (implicit, or im2col, including 1x1 layers) or Winograd, and the implicit
/// GEMM can run. The bfloat16 kernel's doubled rate outweighs copying the input
/// into planes, and Winograd's fewer multiplies on widened float32 operands
/// (3x3 stride 1: 1.0-2.2x slower than the bfloat16 implicit GEMM on 14x14 to
/// 112x112 planes, docs/lowp.md); depthwise and direct plans keep the float32
/// path (no GEMM to speed up).
pub(crate) fn forward_bf16(geo: &ConvGeometry) -> Option<Bands> {
    match forward::<f32>(geo) {
        Forward::ImplicitGemm(bands) => Some(bands),
        Forward::Im2col(_) | Forward::Winograd(_) if implicit_can_run(geo) => Some(bands(geo)),
        _ => None,
    }
}

/// The bands of the float16 forward that widens its planes in the kernel: as
/// [`forward_bf16`] but Winograd layers keep Winograd (the float16 kernel runs at
/// the float32 rate, so Winograd's fewer multiplies win).
pub(crate) fn forward_f16(geo: &ConvGeometry) -> Option<Bands> {
    match forward::<f32>(geo) {
        Forward::Winograd(_) => None,
        _ => forward_bf16(geo),
    }
}

/// The forward plan the rules choose for `geo`.
fn forward_by_rules<T: Element>(geo: &ConvGeometry) -> Forward {
    if geo.n * geo.c_out * geo.out_vol() == 0 {
        // No plan is built: tables grow with the spatial size, which can be huge
        // when the batch is empty.
        Forward::Empty
    } else if geo.k_len() == 0 {
        // A kernel of 2^40 taps over no channels would take forever to walk.
        Forward::BiasOnly
    } else if few_output_channels(geo) {
        if depthwise_rows_can_run(geo) {
            Forward::DepthwiseRows
        } else {
            Forward::Direct
        }
    } else if winograd_can_run(geo) && winograd_pays(geo) {
        Forward::Winograd(tile_blocks::<T>(geo))
    } else if implicit_can_run(geo) && implicit_forward_pays(geo) && !shares_tiles(geo) {
        Forward::ImplicitGemm(bands(geo))
    } else {
        Forward::Im2col(column_tiles::<T>(geo))
    }
}

/// The input-gradient plan the rules choose for `geo`.
fn input_grad_by_rules<T: Element>(geo: &ConvGeometry) -> InputGrad {
    if geo.n == 0 || geo.c_in == 0 || geo.in_vol() == 0 || geo.c_out == 0 || geo.out_vol() == 0 {
        return InputGrad::Zero;
    }
    let adjoint = geo.stride_one_adjoint();
    // A depthwise layer's adjoint is depthwise again, and runs on the row kernels.
    let depthwise_adjoint = geo.cog() == 1 && depthwise_rows_can_run(geo) && adjoint.is_some();
    if few_output_channels(geo) && !depthwise_adjoint {
        return if depthwise::flat_applies(geo) {
            InputGrad::DepthwiseRows
        } else {
            InputGrad::Direct
        };
    }
    // Through the im2col GEMM the adjoint would gather C_out * K values per
    // position for C_in output rows while col2im scatters C_in * K for C_in * K
    // rows: with fewer input than output channels col2im is cheaper, unless the
    // adjoint runs on a path without a gather.
    if let Some(adjoint) = adjoint {
        let plan = forward_by_rules::<T>(&adjoint);
        if !matches!(plan, Forward::Im2col(_)) || geo.cig() >= geo.cog() {
            return InputGrad::Adjoint {
                geometry: Box::new(adjoint),
                forward: plan,
            };
        }
    }
    if subpixel_can_run(geo) && subpixel_pays(geo) {
        subpixel(geo)
    } else {
        InputGrad::Col2im(col2im_tiles(geo))
    }
}

/// The weight-gradient plan the rules choose for `geo`.
fn weight_grad_by_rules<T: Element>(geo: &ConvGeometry) -> WeightGrad {
    if geo.c_out == 0
        || geo.cig() == 0
        || geo.n == 0
        || geo.out_vol() == 0
        || geo.in_vol() == 0
        || geo.k_len() == 0
    {
        return WeightGrad::Zero;
    }
    if few_output_channels(geo) {
        return if depthwise_rows_can_run(geo) {
            WeightGrad::DepthwiseRows
        } else {
            WeightGrad::Direct
        };
    }
    if phase_planes_can_run::<T>(geo) && phase_planes_pay::<T>(geo) {
        WeightGrad::PhasePlanes(waves::<T>(geo))
    } else {
        im2col_weight::<T>(geo)
    }
}

/// Every forward plan that can run `geo` (the chosen one among them), for reports.
pub(crate) fn forward_candidates<T: Element>(geo: &ConvGeometry) -> Vec<Forward> {
    match forward_by_rules::<T>(geo) {
        trivial @ (Forward::Empty | Forward::BiasOnly) => vec![trivial],
        _ => {
            let mut all = Vec::new();
            if depthwise_rows_can_run(geo) {
                all.push(Forward::DepthwiseRows);
            }
            all.push(Forward::Direct);
            if winograd_can_run(geo) {
                all.push(Forward::Winograd(tile_blocks::<T>(geo)));
            }
            if implicit_can_run(geo) {
                all.push(Forward::ImplicitGemm(bands(geo)));
            }
            all.push(Forward::Im2col(column_tiles::<T>(geo)));
            all
        }
    }
}

/// Every input-gradient plan that can run `geo`, for reports.
pub(crate) fn input_grad_candidates<T: Element>(geo: &ConvGeometry) -> Vec<InputGrad> {
    match input_grad_by_rules::<T>(geo) {
        InputGrad::Zero => vec![InputGrad::Zero],
        _ => {
            let mut all = vec![InputGrad::Direct];
            if depthwise::flat_applies(geo) {
                all.push(InputGrad::DepthwiseRows);
            }
            if let Some(adjoint) = geo.stride_one_adjoint() {
                all.push(InputGrad::Adjoint {
                    forward: forward_by_rules::<T>(&adjoint),
                    geometry: Box::new(adjoint),
                });
            }
            if subpixel_can_run(geo) {
                all.push(subpixel(geo));
            }
            all.push(InputGrad::Col2im(col2im_tiles(geo)));
            all
        }
    }
}

/// Every weight-gradient plan that can run `geo`, for reports.
pub(crate) fn weight_grad_candidates<T: Element>(geo: &ConvGeometry) -> Vec<WeightGrad> {
    match weight_grad_by_rules::<T>(geo) {
        WeightGrad::Zero => vec![WeightGrad::Zero],
        _ => {
            let mut all = Vec::new();
            if depthwise_rows_can_run(geo) {
                all.push(WeightGrad::DepthwiseRows);
            }
            all.push(WeightGrad::Direct);
            if phase_planes_can_run::<T>(geo) {
                all.push(WeightGrad::PhasePlanes(waves::<T>(geo)));
            }
            all.push(im2col_weight::<T>(geo));
            all
        }
    }
}

// -------------------------------------------------------------------- rules

/// At most two output channels per group (depthwise layers, and the input
/// gradient of a first layer): a GEMM would use one row in eight of its
/// micro-kernel, so the tap-by-tap paths are chosen.
fn few_output_channels(geo: &ConvGeometry) -> bool {
    geo.cog() <= 2
}

/// Row kernels: small 2-D planes at any stride (the whole-plane layout), or zero
/// padding, unit stride along W, and padded rows not much longer than the data
/// (each worker copies a padded plane; an absurd padding or dilation would not
/// fit).
fn depthwise_rows_can_run(geo: &ConvGeometry) -> bool {
    let data = geo.in_vol().saturating_add(geo.out_vol());
    depthwise::flat_applies(geo)
        || (geo.padding_mode == PaddingMode::Zeros
            && geo.stride[SPATIAL - 1] == 1
            && depthwise::padded_plane_len(geo)
                .is_some_and(|len| len <= data.saturating_mul(4).saturating_add(1 << 12)))
}

/// Winograd F(4x4, 3x3): 3x3 2-D kernels at unit stride and dilation, an output
/// of at least one tile, transformed filters within their budget, and a
/// precision that allows its transforms' rounding.
fn winograd_can_run(geo: &ConvGeometry) -> bool {
    geo.precision.allows_transforms()
        && geo.kernel == [1, 3, 3]
        && geo.is_planar()
        && geo.stride == [1; SPATIAL]
        && geo.dilation == [1; SPATIAL]
        && geo.output[1] >= 4
        && geo.output[2] >= 4
        && geo.c_out.saturating_mul(geo.cig()).saturating_mul(36) <= WINOGRAD_MAX_FILTER_ELEMENTS
}

/// Enough channels for the 36 GEMMs to amortise the input and output
/// transforms, and enough tiles for them to amortise the filter transform: it
/// writes and the GEMMs read 36 values per filter tap pair whatever the batch,
/// so with few tiles (a 14x14 image at batch 1 has 16) it costs more than the
/// multiply-adds Winograd saves (3x3 256->256 14x14 N=1: 2.2 ms against 1.2 ms
/// by implicit GEMM, `bench --suite networks --all-algorithms`).
fn winograd_pays(geo: &ConvGeometry) -> bool {
    geo.cig() >= WINOGRAD_MIN_CHANNELS
        && geo.cog() >= WINOGRAD_MIN_CHANNELS
        && winograd::tiles(geo) >= WINOGRAD_MIN_TILES
}

/// Implicit GEMM: zero padding, and phase planes bounded by the output (their
/// extra rows and columns are the widest tap shifts, which a huge dilation
/// would otherwise make huge).
fn implicit_can_run(geo: &ConvGeometry) -> bool {
    let phases = PhaseShape::of(geo);
    geo.padding_mode == PaddingMode::Zeros
        && geo.k_len() > 0
        && geo.output[2] > 0
        && phases.max_shift_w <= geo.output[2]
        && phases.max_shift_h <= geo.output[1]
}

/// More than one tap (a 1x1 layer's column matrix is its input, read in place by
/// the im2col GEMM), and the positions computed past each output row costing at
/// most a quarter of the work.
fn implicit_pays(geo: &ConvGeometry) -> bool {
    geo.kernel_vol() > 1 && PhaseShape::of(geo).max_shift_w.saturating_mul(4) <= geo.output[2]
}

/// The implicit forward: more than one tap, and the positions computed past
/// each output row (the widest tap shift) at most half the row. Small planes
/// pass (a 7x7 output of a 3x3 layer computes 9 positions per 7): there the
/// alternative, a gathered column tile, costs more than the extra positions
/// (ResNet's 512->512 7x7 layers: 1.7 against 2.1 ms at N=1, 7.4 against 8.5 at
/// N=8). The stricter [`implicit_pays`] still guards the phase-plane weight
/// gradient.
fn implicit_forward_pays(geo: &ConvGeometry) -> bool {
    geo.kernel_vol() > 1 && PhaseShape::of(geo).max_shift_w.saturating_mul(2) <= geo.output[2]
}

/// Sub-pixel input gradient: zero-padded 1-D and 2-D layers with a stride above
/// 1, and a padded `grad_out` bounded by the output along each axis.
fn subpixel_can_run(geo: &ConvGeometry) -> bool {
    let shifts_fit = (1..SPATIAL).all(|axis| {
        let reach = geo.kernel[axis]
            .saturating_sub(1)
            .saturating_mul(geo.dilation[axis]);
        reach / geo.stride[axis].max(1) <= geo.output[axis]
    });
    shifts_fit
        && geo.padding_mode == PaddingMode::Zeros
        && geo.stride[1..] != [1, 1]
        && geo.is_planar()
        && geo.k_len() > 0
        && geo.cog() > 0
}

/// Enough input channels to fill the micro-kernel's rows, and planes that fill
/// at least half a column tile: each task multiplies all of a phase's filters
/// by one image's `grad_out`, so on smaller planes col2im, whose tiles put
/// several images side by side, streams the filters fewer times.
fn subpixel_pays(geo: &ConvGeometry) -> bool {
    geo.cig() >= SUBPIXEL_MIN_CHANNELS && !shares_tiles(geo)
}

/// Phase-plane weight gradient: where the implicit GEMM can run, with one set of
/// lane sums per weight within its budget.
fn phase_planes_can_run<T: Element>(geo: &ConvGeometry) -> bool {
    implicit_can_run(geo) && sums_bytes::<T>(geo) <= SUMS_BYTES
}

/// Bytes of the phase-plane weight gradient's lane sums (one vector per weight).
fn sums_bytes<T: Element>(geo: &ConvGeometry) -> usize {
    geo.c_out
        .saturating_mul(geo.k_len())
        .saturating_mul(T::LANES * std::mem::size_of::<T>())
}

/// Where the implicit forward pays, and
/// - the output has several rows (a 1-D chunk is one long row whose `grad_out`
///   every task re-reads);
/// - the column matrix would copy each input cell at least 4 times (kernel
///   volume / stride volume; below that the gather is as cheap and its tasks
///   share no data);
/// - at most 16 tasks' worth of taps, as every task re-reads the chunk's
///   `grad_out` rows;
/// - enough work to amortise the waves' two parallel phases;
/// - planes large enough for the lane sums ([`SUMS_BYTES_PER_POSITION`]).
fn phase_planes_pay<T: Element>(geo: &ConvGeometry) -> bool {
    let stride_vol = geo.stride.iter().fold(1usize, |v, &s| v.saturating_mul(s));
    implicit_pays(geo)
        && geo.output[1] > 1
        && geo.kernel_vol() >= stride_vol.saturating_mul(4)
        && geo.k_len() <= 16 * WEIGHT_TAP_CHUNK
        && geo.work() >= WEIGHT_MIN_WORK
        && (cfg!(test)
            || geo.out_vol().saturating_mul(SUMS_BYTES_PER_POSITION) >= sums_bytes::<T>(geo))
}

// ------------------------------------------------------------------- splits

/// Output positions a column tile holds at most: about [`COL_TILE_ELEMENTS`]
/// over the reduction length, in whole micro-kernel panels.
fn tile_budget(geo: &ConvGeometry) -> usize {
    let per_budget = (COL_TILE_ELEMENTS / geo.k_len().max(1)).clamp(TILE_ALIGN, 4096);
    per_budget / TILE_ALIGN * TILE_ALIGN
}

/// Output positions per column tile: a fixed function of the shape (never of the
/// thread count), so every reduction has the same order on any machine load.
pub(crate) fn tile_len(geo: &ConvGeometry) -> usize {
    tile_budget(geo).min(geo.out_vol()).max(1)
}

/// Images of `geo` one column tile can hold side by side: as many whole
/// planes as fit in the [`tile_budget`] (1 for planes over half of it).
fn images_fit(geo: &ConvGeometry) -> usize {
    (tile_budget(geo) / geo.out_vol().max(1)).clamp(1, geo.n.max(1))
}

/// Whether column tiles put several images side by side: planes of at most
/// half a tile, a batch of more than one, and filters per group of at least a
/// column tile's elements ([`SHARED_MIN_FILTERS`]). Smaller filters stay in L2 beside a tile, so a GEMM
/// per image reads them from there and sharing only adds a gather (3x3 s2
/// 64->128 from 16x16 at batch 16: implicit GEMM 0.9 ms, shared tiles 1.2 ms);
/// larger ones are streamed from memory once per GEMM (256->512 from 4x4:
/// implicit GEMM 2.9 ms, shared tiles 1.25 ms; sub-pixel input gradient 4.8 ms,
/// shared col2im 1.8 ms). A fixed function of the shape, which the choice of
/// algorithm may follow.
pub(crate) fn shares_tiles(geo: &ConvGeometry) -> bool {
    images_fit(geo) > 1 && geo.cog().saturating_mul(geo.k_len()) >= SHARED_MIN_FILTERS
}

/// Images side by side in one column tile: planes of at most half the
/// [`tile_budget`] (where [`shares_tiles`]) put equal groups of images together, so one GEMM covers
/// `images x positions` columns and streams the filters once per tile instead
/// of once per image (a 2x2 plane of a 512-channel 3x3 layer alone is a GEMM of
/// 4 columns over 9.4 MB of filters). A batch that fits one tile is one group
/// (its output channels are cut among the threads). A larger batch is cut into
/// the fewest groups, at least as many as the budget needs, whose task count
/// keeps every thread busy to the end (as [`row_chunk`] counts): the threads
/// then multiply the same filters by different images at the same time, one
/// pass over the filters serving them all, instead of splitting the filters
/// and passing over them once per group (32 images of a 2x2 512-channel layer
/// on two threads: 3 groups x 2 channel chunks 6.5 ms, 4 groups 4.0 ms).
/// Which images share a tile never changes a sum (each column is its own chain
/// of FMAs), so this may follow the thread count.
pub(crate) fn tile_images(geo: &ConvGeometry) -> usize {
    if !shares_tiles(geo) {
        return 1;
    }
    let (n, most) = (geo.n.max(1), images_fit(geo));
    let threads = get_num_threads().max(1);
    let fewest = n.div_ceil(most);
    if fewest == 1 {
        return n;
    }
    (fewest..=n)
        .map(|blocks| n.div_ceil(blocks))
        .find(|&images| {
            let tasks = n.div_ceil(images) * geo.groups;
            tasks.is_multiple_of(threads) || tasks >= TASKS_PER_THREAD * threads
        })
        .unwrap_or(n.div_ceil(fewest))
}

/// Column tiles of the im2col forward; a 1x1, stride-1, unpadded layer's column
/// matrix is its input itself (one row of positions per channel), read in place.
fn column_tiles<T: Element>(geo: &ConvGeometry) -> ColumnTiles {
    let (tile_len, images) = (tile_len(geo), tile_images(geo));
    let tasks = geo.n.div_ceil(images) * geo.groups * geo.out_vol().div_ceil(tile_len);
    let channels = channel_chunk(geo, tasks);
    ColumnTiles {
        tile_len,
        images,
        channels,
        in_place: images == 1
            && geo.kernel_vol() == 1
            && geo.stride == [1; SPATIAL]
            && geo.pad_lo == [0; SPATIAL]
            && geo.output == geo.input
            && geo.in_vol() >= T::NR,
        // Whichever operand the loop order re-reads should be the smaller one:
        // the filters (`channels x k`) when a task has more output channels than
        // positions (deep layers on small images), else the column tile.
        rows_outer: channels.min(geo.cog()) > (tile_len * images).next_multiple_of(T::NR),
    }
}

/// Tiles of the col2im input gradient: as the forward's ([`tile_len`],
/// [`tile_images`]), with input channels cut as [`channel_chunk`] cuts output
/// channels (a task computes its channels' rows of the column matrix and folds
/// them back).
fn col2im_tiles(geo: &ConvGeometry) -> Col2imTiles {
    let images = tile_images(geo);
    Col2imTiles {
        tile_len: tile_len(geo),
        images,
        channels: row_chunk(geo.cig(), geo.n.div_ceil(images) * geo.groups),
    }
}

/// Output channels per task of a forward pass that has `tasks` tasks when each
/// takes all the output channels of its group (a small image at batch 1 has a
/// task or two). With fewer tasks than [`TASKS_PER_THREAD`] per thread, they
/// are cut into the fewest chunks that keep every thread busy to the end (a
/// task count that is a multiple of the thread count, or that many tasks), in
/// whole micro-kernel row panels of at least [`MIN_TASK_CHANNELS`]: every chunk
/// prepares its input operand again, so more chunks than that cost time. Which
/// task computes an output never changes its sums, so this may follow the
/// thread count.
fn channel_chunk(geo: &ConvGeometry, tasks: usize) -> usize {
    row_chunk(geo.cog(), tasks)
}

/// The sub-pixel input gradient's GEMM rows are input channels: blocks of them
/// give a batch-1 layer a task per thread.
fn subpixel(geo: &ConvGeometry) -> InputGrad {
    InputGrad::SubPixel {
        channels: row_chunk(geo.cig(), geo.n * geo.groups),
    }
}

/// [`channel_chunk`] for a GEMM of `rows` rows.
fn row_chunk(rows: usize, tasks: usize) -> usize {
    let rows = rows.max(1);
    let threads = get_num_threads().max(1);
    let tasks = tasks.max(1);
    let most = rows.div_ceil(MIN_TASK_CHANNELS).max(1);
    let chunks = (1..=most)
        .find(|&c| (tasks * c).is_multiple_of(threads) || tasks * c >= TASKS_PER_THREAD * threads)
        .unwrap_or(most);
    rows.div_ceil(chunks).next_multiple_of(MR).min(rows)
}

/// Winograd blocks: the tiles of all images cut into blocks of equal width (in
/// whole vector registers, at most a micro-kernel panel), then output channels
/// cut as [`channel_chunk`] says.
fn tile_blocks<T: Element>(geo: &ConvGeometry) -> TileBlocks {
    let tiles = winograd::tiles(geo).max(1);
    let blocks = tiles.div_ceil(T::NR);
    let block = tiles.div_ceil(blocks).next_multiple_of(T::LANES).min(T::NR);
    let tasks = tiles.div_ceil(block) * geo.groups;
    TileBlocks {
        block,
        channels: channel_chunk(geo, tasks),
    }
}

/// Output rows per band of phase planes of at most `budget` elements (bands of
/// equal height; at least one row).
fn band_rows(geo: &ConvGeometry, budget: usize) -> usize {
    let phases = PhaseShape::of(geo);
    let out_h = geo.output[1];
    let row_cost = phases.planes.saturating_mul(phases.pitch).max(1);
    let band = (budget / row_cost)
        .saturating_sub(phases.max_shift_h)
        .clamp(1, out_h.max(1));
    let bands = out_h.div_ceil(band).max(1);
    out_h.div_ceil(bands).max(1)
}

fn bands(geo: &ConvGeometry) -> Bands {
    let band = band_rows(geo, BAND_ELEMENTS);
    let tasks = geo.n * geo.groups * geo.output[0] * geo.output[1].div_ceil(band);
    Bands {
        band,
        channels: channel_chunk(geo, tasks),
        rows_outer: geo.k_len() <= ROWS_OUTER_MAX_K,
    }
}

/// The task grid of a weight gradient: about four tasks per thread, in whole
/// blocks of the dot kernel's taps.
fn weight_tasks(geo: &ConvGeometry, row_chunk: usize) -> WeightTasks {
    let threads = get_num_threads().max(1);
    let tap_chunk = geo
        .k_len()
        .div_ceil(4 * threads)
        .next_multiple_of(DC)
        .clamp(DC, WEIGHT_TAP_CHUNK);
    WeightTasks::new(geo, tap_chunk, geo.cog().clamp(1, row_chunk))
}

fn waves<T: Element>(geo: &ConvGeometry) -> Waves {
    let phases = PhaseShape::of(geo);
    let band = band_rows(geo, WEIGHT_BAND_ELEMENTS);
    let out_h = geo.output[1];
    let bands = out_h.div_ceil(band).max(1);
    let chunk_len = phases
        .band_elements(band)
        .saturating_add(geo.cog().saturating_mul(band).saturating_mul(phases.pitch));
    let chunks = geo.n * geo.groups * geo.output[0] * bands;
    let per_wave = (WAVE_BYTES / chunk_len.saturating_mul(std::mem::size_of::<T>()).max(1))
        .clamp(1, chunks.max(1));
    Waves {
        band,
        chunks_per_wave: per_wave,
        tasks: weight_tasks(geo, WEIGHT_ROW_CHUNK),
    }
}

/// Equal position tiles of at most the row budget (the GEMM's reduction
/// length); planes under half of [`WEIGHT_SIDE_BY_SIDE`] put equal groups of
/// images side by side instead (a 7x7 plane alone is a reduction too short to
/// pay for storing and adding each block's sums). Sizes depend on the geometry
/// only, so the order of every sum is the same for any thread count.
fn im2col_weight<T: Element>(geo: &ConvGeometry) -> WeightGrad {
    let p_len = geo.out_vol();
    let max_tile = (WEIGHT_TILE_BYTES / std::mem::size_of::<T>()).max(1);
    let tile = p_len
        .div_ceil(p_len.div_ceil(max_tile).max(1))
        .next_multiple_of(T::LANES)
        .clamp(1, p_len.max(1));
    let most = (WEIGHT_SIDE_BY_SIDE / p_len.max(1)).clamp(1, geo.n.max(1));
    let images = geo.n.max(1).div_ceil(geo.n.max(1).div_ceil(most));
    WeightGrad::Im2colGemm {
        tasks: weight_tasks(geo, WEIGHT_GEMM_ROW_CHUNK),
        tile,
        images,
    }
}
