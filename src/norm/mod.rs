//! Batch normalisation of `(N, C, *spatial)` arrays (PyTorch's `batch_norm`):
//! the training forward with batch statistics (and the running-statistics
//! update), the eval forward with given statistics, the backward of both, an
//! optional fused ReLU; and ReLU with its backward.
//!
//! The input is read as `(N, C, M)`, `M` the product of the spatial sizes (1 for
//! `(N, C)`): channel `c` is the `N` planes `x[n, c, :]` of `M` contiguous values,
//! cut into pieces of at most [`PIECE`] values. A channel's sums are the sums of
//! its pieces (each in `f64` lane sums, see [`kernels`]) added in piece order, and
//! nothing else: the work may be split into one task per channel (whose pieces are
//! still in cache for the next pass over them) or into tasks of a few pieces (when
//! there are few channels for the threads), and the thread count only changes
//! which worker runs a task, so every result is bit-identical for any number of
//! threads.
//!
//! Statistics: a first mean `m = sum(x) / count`, then from the deviations
//! `d = x - m` (`m` rounded to the element type) the mean `m + sum(d) / count`
//! and the biased variance by the corrected two-pass formula
//! `(sum(d^2) - sum(d)^2 / count) / count`, so an offset of the data costs no
//! accuracy. Sums are in `f64` over partial sums of 16 terms per lane in the
//! element type ([`kernels`]). The element-wise passes compute in the element type with
//! per-channel constants computed in `f64`: `y = x * scale + shift`, PyTorch's
//! form.

mod kernels;
#[cfg(test)]
mod tests;

use crate::alloc::{alloc_uninit, alloc_zeroed, assume_init};
use crate::arrays::{as_slice, standard};
use crate::element::Element;
use crate::error::{value_error, Error, Result};
use crate::geometry::fmt_shape;
use crate::kernels::SharedMut;
use crate::threads::{for_each_chunk_mut, for_each_task, get_num_threads, runs_serially};
use kernels::GradCoefs;
pub use kernels::Wide;
use ndarray::{Array1, ArrayD, ArrayView1, ArrayViewD, ArrayViewMut1, ArrayViewMutD};
use std::ops::Range;

/// The longest piece of a plane a reduction sums as one run (64 KiB of `f32`).
const PIECE: usize = 1 << 14;

/// Values per task when tasks are blocks of pieces rather than channels.
const BLOCK: usize = 1 << 16;

/// Values per task of the element-wise ReLU passes.
const RELU_CHUNK: usize = 1 << 15;

/// The per-channel scale and shift of the normalised values (`None`: 1 and 0).
#[derive(Debug, Clone, Default)]
pub struct Affine<'a, T> {
    pub weight: Option<ArrayView1<'a, T>>,
    pub bias: Option<ArrayView1<'a, T>>,
}

/// Running statistics a training forward updates in place, as PyTorch:
/// `running = (1 - momentum) * running + momentum * batch`, with the unbiased
/// batch variance. Each step is rounded to the element type, as NumPy computes
/// the same update on arrays of that type.
#[derive(Debug)]
pub struct Running<'a, T> {
    pub mean: ArrayViewMut1<'a, T>,
    pub var: ArrayViewMut1<'a, T>,
    /// In `[0, 1]` (PyTorch's cumulative average passes `1 / batches`).
    pub momentum: f64,
}

/// The statistics a forward normalises by.
#[derive(Debug)]
pub enum Stats<'a, T> {
    /// Training: the batch's own mean and biased variance, and the running
    /// statistics to update, if any.
    Batch(Option<Running<'a, T>>),
    /// Eval: given per-channel mean and variance (the running statistics).
    Given {
        mean: ArrayView1<'a, T>,
        var: ArrayView1<'a, T>,
    },
}

/// A forward's output and the per-channel statistics it normalised by: `mean`
/// and `invstd = 1 / sqrt(var + eps)` (what the backward takes).
#[derive(Debug, Clone)]
pub struct Normalized<T> {
    pub output: ArrayD<T>,
    pub mean: Array1<T>,
    pub invstd: Array1<T>,
}

/// The gradients of batch normalisation with respect to its input, weight and bias
/// (the last two also when the forward had no weight: those of a unit weight and
/// a zero bias).
#[derive(Debug, Clone)]
pub struct BatchNormGrads<T> {
    pub input: ArrayD<T>,
    pub weight: Array1<T>,
    pub bias: Array1<T>,
}

/// An array read as `(N, C, M)`, and its channels cut into pieces.
#[derive(Debug, Clone, Copy)]
struct Planes {
    n: usize,
    c: usize,
    m: usize,
    /// Pieces per plane (at least 1, also for empty planes).
    per_plane: usize,
}

impl Planes {
    fn of(shape: &[usize], name: &str) -> Result<Planes> {
        if shape.len() < 2 {
            return value_error!(
                "{name} must have at least 2 dimensions (N, C, *spatial), got shape {}",
                fmt_shape(shape)
            );
        }
        // The array exists, so the product of its sizes fits.
        let m = shape[2..].iter().product::<usize>();
        Ok(Planes {
            n: shape[0],
            c: shape[1],
            m,
            per_plane: m.div_ceil(PIECE).max(1),
        })
    }

    /// Values per channel.
    fn count(&self) -> usize {
        self.n * self.m
    }

    /// Pieces per channel.
    fn pieces(&self) -> usize {
        self.n * self.per_plane
    }

    /// The flat C-order range of piece `p` of channel `c`.
    fn piece(&self, c: usize, p: usize) -> Range<usize> {
        let (n, k) = (p / self.per_plane, p % self.per_plane);
        let plane = (n * self.c + c) * self.m;
        plane + k * PIECE..plane + self.m.min((k + 1) * PIECE)
    }

    /// Pieces per task when tasks are blocks of pieces.
    fn block(&self) -> usize {
        (BLOCK / self.m.clamp(1, PIECE)).clamp(1, self.pieces().max(1))
    }
}

/// Per-piece sums of a reduction pass: the channel's state and a piece's range.
type ReduceFn<'a, S> = &'a (dyn Fn(&S, Range<usize>) -> [f64; 2] + Sync);
/// What a channel's totals (its pieces' sums added in order) make of its state.
type FoldFn<'a, S> = &'a (dyn Fn(&mut S, [f64; 2]) + Sync);
/// An element-wise pass over one piece, given its channel's state.
type MapFn<'a, S> = &'a (dyn Fn(&S, Range<usize>) + Sync);

/// One pass over every piece of every channel.
enum Step<'a, S> {
    Reduce(ReduceFn<'a, S>, FoldFn<'a, S>),
    Map(MapFn<'a, S>),
}

/// Run `steps` in order over every channel, with `states[c]` as channel `c`'s
/// state: one task per channel doing every step when there are channels enough
/// for the threads, else each step as its own parallel loop over blocks of pieces
/// (the reductions' per-piece sums kept, then added in piece order per channel,
/// as the per-channel task adds them).
fn run_steps<S: Send + Sync>(
    planes: &Planes,
    states: &mut [S],
    steps: &[Step<'_, S>],
) -> Result<()> {
    let pieces = planes.pieces();
    let work = (planes.c * planes.count()).saturating_mul(steps.len());
    if planes.c >= 4 * get_num_threads() || runs_serially(work) {
        let shared = SharedMut::new(states);
        return for_each_task(
            planes.c,
            work,
            || (),
            |_, c| {
                // SAFETY: task `c` is the only one using state `c`.
                let state = unsafe { &mut shared.range(c, 1)[0] };
                for step in steps {
                    match step {
                        Step::Reduce(reduce, fold) => {
                            let totals = (0..pieces)
                                .map(|p| reduce(state, planes.piece(c, p)))
                                .fold([0.0; 2], add);
                            fold(state, totals);
                        }
                        Step::Map(map) => (0..pieces).for_each(|p| map(state, planes.piece(c, p))),
                    }
                }
            },
        );
    }
    let block = planes.block();
    let blocks = pieces.div_ceil(block);
    // `body(c, pieces)` for every block of pieces of every channel, in parallel.
    let for_each_block = |body: &(dyn Fn(usize, Range<usize>) + Sync)| {
        for_each_task(
            planes.c * blocks,
            work,
            || (),
            |_, task| {
                let (c, b) = (task / blocks, task % blocks);
                body(c, b * block..pieces.min((b + 1) * block));
            },
        )
    };
    let mut sums = alloc_zeroed::<f64>(2 * planes.c * pieces, "per-piece sums")?;
    for step in steps {
        match step {
            Step::Reduce(reduce, fold) => {
                let shared = SharedMut::new(&mut sums);
                let view: &[S] = states;
                for_each_block(&|c, range| {
                    // SAFETY: the task of (c, block) alone writes the sums of its pieces.
                    let slots =
                        unsafe { shared.range(2 * (c * pieces + range.start), 2 * range.len()) };
                    for (slot, p) in slots.chunks_exact_mut(2).zip(range) {
                        slot.copy_from_slice(&reduce(&view[c], planes.piece(c, p)));
                    }
                })?;
                for (c, state) in states.iter_mut().enumerate() {
                    let channel = &sums[2 * c * pieces..2 * (c + 1) * pieces];
                    let totals = channel
                        .chunks_exact(2)
                        .map(|s| [s[0], s[1]])
                        .fold([0.0; 2], add);
                    fold(state, totals);
                }
            }
            Step::Map(map) => {
                let view: &[S] = states;
                for_each_block(&|c, range| range.for_each(|p| map(&view[c], planes.piece(c, p))))?;
            }
        }
    }
    Ok(())
}

fn add(a: [f64; 2], b: [f64; 2]) -> [f64; 2] {
    [a[0] + b[0], a[1] + b[1]]
}

/// `a` as a per-channel vector of `channels` values, or an error naming it.
fn per_channel<'a, T>(
    a: Option<ArrayView1<'a, T>>,
    name: &str,
    channels: usize,
) -> Result<Option<ArrayView1<'a, T>>> {
    match a {
        Some(a) if a.len() != channels => value_error!(
            "{name} must have shape ({channels},) (one value per channel of x), got shape {}",
            fmt_shape(a.shape())
        ),
        a => Ok(a),
    }
}

/// Refuse `b` unless it has the shape of `a`.
fn same_shape(a: &[usize], a_name: &str, b: &[usize], b_name: &str) -> Result<()> {
    if a != b {
        return value_error!(
            "{b_name} has shape {} but {a_name} has shape {}",
            fmt_shape(b),
            fmt_shape(a)
        );
    }
    Ok(())
}

/// The value of channel `c` of an optional per-channel vector, or `default`.
fn value_or<T: Wide>(a: &Option<ArrayView1<'_, T>>, c: usize, default: f64) -> f64 {
    a.as_ref().map_or(default, |a| a[c].wide())
}

/// An owned array of `shape` from a buffer every element of which was written.
fn into_array<T>(shape: &[usize], data: Vec<T>) -> Result<ArrayD<T>> {
    ArrayD::from_shape_vec(shape, data).map_err(|e| Error::Value(format!("internal error: {e}")))
}

/// The per-channel state of a forward.
#[derive(Debug, Clone, Copy, Default)]
struct Forward<T> {
    weight: f64,
    bias: f64,
    mean: f64,
    var: f64,
    invstd: f64,
    scale: T,
    shift: T,
}

impl<T: Wide> Forward<T> {
    /// `invstd`, and the `scale` and `shift` of `y = x * scale + shift`, from the
    /// mean and variance.
    fn finish(&mut self, eps: f64) {
        self.invstd = 1.0 / (self.var + eps).sqrt();
        let scale = self.weight * self.invstd;
        self.scale = T::narrow(scale);
        self.shift = T::narrow(self.bias - self.mean * scale);
    }
}

/// Batch normalisation of `x` (`(N, C, *spatial)`, any layout) per channel:
/// `y = (x - mean) / sqrt(var + eps) * weight + bias`, then `max(y, 0)` when
/// `relu`. With [`Stats::Batch`] the mean and biased variance are the batch's
/// (more than one value per channel needed) and the running statistics, if
/// given, are updated after the output is computed (a refused call changes
/// nothing).
pub fn batch_norm<T: Wide>(
    x: ArrayViewD<'_, T>,
    stats: Stats<'_, T>,
    affine: Affine<'_, T>,
    eps: f64,
    relu: bool,
) -> Result<Normalized<T>> {
    let planes = Planes::of(x.shape(), "x")?;
    let channels = planes.c;
    let weight = per_channel(affine.weight, "weight", channels)?;
    let bias = per_channel(affine.bias, "bias", channels)?;
    if !(eps.is_finite() && eps > 0.0) {
        return value_error!("eps must be a finite number > 0, got {eps}");
    }
    let mut states: Vec<Forward<T>> = (0..channels)
        .map(|c| Forward {
            weight: value_or(&weight, c, 1.0),
            bias: value_or(&bias, c, 0.0),
            ..Forward::default()
        })
        .collect();
    let training = match &stats {
        Stats::Batch(running) => {
            if planes.count() <= 1 {
                return value_error!(
                    "training needs more than 1 value per channel (N times the spatial size), got x of shape {}",
                    fmt_shape(x.shape())
                );
            }
            if let Some(running) = running {
                per_channel(Some(running.mean.view()), "running_mean", channels)?;
                per_channel(Some(running.var.view()), "running_var", channels)?;
                if !(0.0..=1.0).contains(&running.momentum) {
                    return value_error!("momentum must be in [0, 1], got {}", running.momentum);
                }
            }
            true
        }
        Stats::Given { mean, var } => {
            per_channel(Some(mean.view()), "running_mean", channels)?;
            per_channel(Some(var.view()), "running_var", channels)?;
            for (c, state) in states.iter_mut().enumerate() {
                (state.mean, state.var) = (mean[c].wide(), var[c].wide());
                state.finish(eps);
            }
            false
        }
    };
    let shape = x.shape().to_vec();
    let x = standard(x)?;
    let xs = as_slice(&x)?;
    let mut out = alloc_uninit::<T>(xs.len(), "the output")?;
    {
        let out = SharedMut::new(&mut out);
        let count = planes.count() as f64;
        let sums = |_: &Forward<T>, r: Range<usize>| kernels::moments(&xs[r], T::zero());
        let set_mean = |s: &mut Forward<T>, t: [f64; 2]| s.mean = t[0] / count;
        // The deviations from the first mean rounded to `T`: their mean corrects
        // the first mean, and the corrected two-pass formula takes them.
        let deviations =
            |s: &Forward<T>, r: Range<usize>| kernels::moments(&xs[r], T::narrow(s.mean));
        let set_var = |s: &mut Forward<T>, t: [f64; 2]| {
            s.mean = T::narrow(s.mean).wide() + t[0] / count;
            let var = (t[1] - t[0] * t[0] / count) / count;
            s.var = if var < 0.0 { 0.0 } else { var }; // rounding only; NaN stays
            s.finish(eps);
        };
        let normalize = |s: &Forward<T>, r: Range<usize>| {
            // SAFETY: pieces are disjoint, and each is mapped by one task.
            let o = unsafe { out.range(r.start, r.len()) };
            kernels::affine(&xs[r], o, s.scale, s.shift, relu);
        };
        let steps = if training {
            vec![
                Step::Reduce(&sums, &set_mean),
                Step::Reduce(&deviations, &set_var),
                Step::Map(&normalize),
            ]
        } else {
            vec![Step::Map(&normalize)]
        };
        run_steps(&planes, &mut states, &steps)?;
    }
    // SAFETY: the pieces of all channels cover every element, and the map step
    // writes each of its pieces in full.
    let out = unsafe { assume_init(out) };
    if let Stats::Batch(Some(running)) = stats {
        update_running(running, &states, planes.count() as f64);
    }
    Ok(Normalized {
        output: into_array(&shape, out)?,
        mean: states.iter().map(|s| T::narrow(s.mean)).collect(),
        invstd: states.iter().map(|s| T::narrow(s.invstd)).collect(),
    })
}

/// `running = (1 - momentum) * running + momentum * batch` per channel, with the
/// unbiased variance, each product and sum rounded to `T`.
fn update_running<T: Wide>(mut running: Running<'_, T>, states: &[Forward<T>], count: f64) {
    let keep = T::narrow(1.0 - running.momentum);
    let take = T::narrow(running.momentum);
    let unbias = count / (count - 1.0);
    for (c, s) in states.iter().enumerate() {
        running.mean[c] = keep * running.mean[c] + take * T::narrow(s.mean);
        running.var[c] = keep * running.var[c] + take * T::narrow(s.var * unbias);
    }
}

/// The per-channel state of a backward.
#[derive(Debug, Clone, Copy, Default)]
struct Backward<T> {
    weight: f64,
    mean: f64,
    invstd: f64,
    sum_g: f64,
    dot: f64,
    coefs: Option<GradCoefs<T>>,
}

/// The gradients of [`batch_norm`] from `grad_out` and the forward's input `x`,
/// `weight` and statistics (`mean` and `invstd` as [`Normalized`] returns them).
/// `training`: the statistics were the batch's (so they depend on `x`); else they
/// were constants. `relu_output`: the forward's output when it had a fused ReLU,
/// whose zeros mask `grad_out`.
pub fn batch_norm_backward<T: Wide>(
    grad_out: ArrayViewD<'_, T>,
    x: ArrayViewD<'_, T>,
    weight: Option<ArrayView1<'_, T>>,
    mean: ArrayView1<'_, T>,
    invstd: ArrayView1<'_, T>,
    training: bool,
    relu_output: Option<ArrayViewD<'_, T>>,
) -> Result<BatchNormGrads<T>> {
    let planes = Planes::of(x.shape(), "x")?;
    same_shape(x.shape(), "x", grad_out.shape(), "grad_out")?;
    if let Some(y) = &relu_output {
        same_shape(x.shape(), "x", y.shape(), "relu_output")?;
    }
    let channels = planes.c;
    let weight = per_channel(weight, "weight", channels)?;
    let mean = per_channel(Some(mean), "mean", channels)?;
    let invstd = per_channel(Some(invstd), "invstd", channels)?;
    let mut states: Vec<Backward<T>> = (0..channels)
        .map(|c| Backward {
            weight: value_or(&weight, c, 1.0),
            mean: value_or(&mean, c, 0.0),
            invstd: value_or(&invstd, c, 1.0),
            ..Backward::default()
        })
        .collect();
    let shape = x.shape().to_vec();
    let (x, grad_out) = (standard(x)?, standard(grad_out)?);
    let (xs, gs) = (as_slice(&x)?, as_slice(&grad_out)?);
    let relu_output = relu_output.map(standard).transpose()?;
    let ys = relu_output.as_ref().map(as_slice).transpose()?;
    let mut out = alloc_uninit::<T>(xs.len(), "the input gradient")?;
    {
        let out = SharedMut::new(&mut out);
        let count = planes.count() as f64;
        let sums = |s: &Backward<T>, r: Range<usize>| {
            kernels::grad_sums(
                &gs[r.clone()],
                &xs[r.clone()],
                ys.map(|y| &y[r]),
                T::narrow(s.mean),
            )
        };
        let set_coefs = |s: &mut Backward<T>, t: [f64; 2]| {
            (s.sum_g, s.dot) = (t[0], t[1]);
            let centred = training.then(|| {
                let k = s.dot * s.invstd * s.invstd / count;
                (T::narrow(s.mean), T::narrow(k), T::narrow(s.sum_g / count))
            });
            s.coefs = Some(GradCoefs {
                scale: T::narrow(s.invstd * s.weight),
                centred,
            });
        };
        let grad_input = |s: &Backward<T>, r: Range<usize>| {
            // SAFETY: pieces are disjoint, and each is mapped by one task.
            let o = unsafe { out.range(r.start, r.len()) };
            if let Some(coefs) = s.coefs {
                kernels::grad_input(&gs[r.clone()], &xs[r.clone()], ys.map(|y| &y[r]), coefs, o);
            }
        };
        run_steps(
            &planes,
            &mut states,
            &[Step::Reduce(&sums, &set_coefs), Step::Map(&grad_input)],
        )?;
    }
    // SAFETY: the reduction set every channel's coefficients before the map step,
    // which writes each of its pieces in full; the pieces cover every element.
    let out = unsafe { assume_init(out) };
    Ok(BatchNormGrads {
        input: into_array(&shape, out)?,
        weight: states.iter().map(|s| T::narrow(s.dot * s.invstd)).collect(),
        bias: states.iter().map(|s| T::narrow(s.sum_g)).collect(),
    })
}

/// `max(x, 0)` element-wise (NaN kept), in parallel chunks.
pub fn relu<T: Element>(x: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
    elementwise(x, None)
}

/// The gradient of ReLU: `grad_out` where `output` (ReLU's output, or its
/// input) is positive, else 0.
pub fn relu_backward<T: Element>(
    grad_out: ArrayViewD<'_, T>,
    output: ArrayViewD<'_, T>,
) -> Result<ArrayD<T>> {
    same_shape(output.shape(), "output", grad_out.shape(), "grad_out")?;
    elementwise(output, Some(grad_out))
}

/// `max(x, 0)` in place, for a writeable array of any layout.
pub fn relu_inplace<T: Element>(mut x: ArrayViewMutD<'_, T>) -> Result<()> {
    match x.as_slice_memory_order_mut() {
        Some(values) => for_each_chunk_mut(
            values,
            RELU_CHUNK,
            values.len(),
            || (),
            |_, _, run| {
                run.iter_mut().for_each(|v| {
                    if *v <= T::zero() {
                        *v = T::zero();
                    }
                });
            },
        ),
        None => {
            x.mapv_inplace(|v| if v <= T::zero() { T::zero() } else { v });
            Ok(())
        }
    }
}

/// [`kernels::relu_run`] over all of `x` (and `grad`) into a new array.
fn elementwise<T: Element>(
    x: ArrayViewD<'_, T>,
    grad: Option<ArrayViewD<'_, T>>,
) -> Result<ArrayD<T>> {
    let shape = x.shape().to_vec();
    let x = standard(x)?;
    let xs = as_slice(&x)?;
    let grad = grad.map(standard).transpose()?;
    let gs = grad.as_ref().map(as_slice).transpose()?;
    let mut out = alloc_uninit::<T>(xs.len(), "the output")?;
    for_each_chunk_mut(
        &mut out,
        RELU_CHUNK,
        xs.len(),
        || (),
        |_, i, run| {
            let range = i * RELU_CHUNK..i * RELU_CHUNK + run.len();
            kernels::relu_run(&xs[range.clone()], gs.map(|g| &g[range]), run);
        },
    )?;
    // SAFETY: the chunks cover the buffer and `relu_run` writes each in full.
    let out = unsafe { assume_init(out) };
    into_array(&shape, out)
}
