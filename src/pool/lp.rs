//! Lp pooling, forward and backward, as PyTorch's `lp_pool{1,2,3}d` with
//! ONNX's `LpPool` padding and dilation: `(sum over the window of x^p)^(1/p)`.
//!
//! PyTorch computes it as `avg_pool(x^p) * kernel_volume`, then the root; this
//! is the same sum except for a ceil-mode window hanging over the end of the
//! input, which PyTorch's average divides by its clipped size and so scales up
//! by `kernel_volume / clipped size`: kept, for parity. `x^p` keeps the sign of
//! odd powers (PyTorch's `x.pow(p)`, not ONNX's `|x|^p`), so a negative sum
//! has no real root for most `p` and gives NaN, as in PyTorch.
//!
//! How the powers are computed depends on `p`:
//!
//! - whole `p` from 1 to 6: `x^p` a product inside the window sums (known when
//!   the kernels compile, so they vectorise; at most three, within about two
//!   units in the last place, an error the root divides by `p`), the root a
//!   square root (twice for 4) or, in a pass over the plane's sums,
//!   `kernels::elementary::cbrt` (3) or `powers` (5, 6);
//! - `p` = 1/2, -1/2, -1, -2 (which PyTorch's `pow` also takes apart): square
//!   roots, reciprocals and products inside the sums, likewise their roots;
//! - any other `p`: `x^p` in one pass over the plane (each cell once, however
//!   many windows read it; small planes in groups) and the root `s^(1/p)` in
//!   one pass over its sums, both `kernels::elementary::powers`, loops that
//!   vectorise; for the gradient `x^(p - 1)` too
//!   (`kernels::elementary::powers_and_slopes`: `x^p / x` where normal).
//!
//! Special values are C's `pow`'s (the module documentation of
//! `kernels::elementary`), term by term and for the root:
//!
//! - `x = +-0` adds `0^p`: 0 for `p > 0` (signed for odd whole `p`), `inf`
//!   for `p < 0`; `x = +-inf` adds `inf` (`-inf` for odd whole `p` and
//!   `x = -inf`) for `p > 0`, 0 for `p < 0`; NaN adds NaN;
//! - a finite negative `x` adds `-|x|^p` for odd whole `p`, `|x|^p` for even
//!   whole `p`, NaN for any other `p`; subnormal `x` are exact inputs;
//! - a term or a sum too large for the type is infinite (`inf - inf` is NaN);
//! - sums start from +0 (a window of -0 sums to +0);
//! - the root of a finite negative sum is NaN unless `1/p` is an odd whole
//!   number (`p = 1`, `p = -1`); of `-inf`, `inf` (`pow(-inf, 1/p)`, also for
//!   p = 3's cube root); of 0, 0 (`p > 0`) or `inf`; of `inf`, `inf` or 0.
//!
//! NumPy's and PyTorch's `pow` differ from C's only at `p = +-0.5`, which they
//! take as a square root: `x = -inf` then gives NaN there, `inf` (or 0) here.
//! The gradient adds nothing for a window whose sum is 0 (as PyTorch, whose
//! ReLU masks it), even where `x^(p - 1)` is infinite. Each output is computed
//! serially, in a fixed order, so results do not depend on the thread count.

use super::avg::{self, WindowSum};
use super::plan::{self, PlaneSplit, RowRuns};
use super::planes::for_each_zeroed_target_plane;
use super::windows::{Divisor, RowCover, Windows};
use super::{check_shape, window_sums};
use crate::alloc::{alloc_uninit, alloc_zeroed, assume_init};
use crate::arrays::{as_slice, into_array5, shape5, spatial, standard, with_spatial, Shape5};
use crate::element::Element;
use crate::error::{value_error, Result};
use crate::geometry::{checked_product, AxisWindow, PoolParams};
use crate::kernels::elementary::{cbrt, pow, powers, powers_and_slopes, Fma, Power};
use crate::kernels::{dispatch, dispatch_fma, simd_twins};
use crate::storage::Storage;
use crate::threads::for_each_chunk_mut;
use ndarray::{Array5, ArrayView5};
use std::mem::MaybeUninit;

/// `norm_type` must be a finite nonzero number (PyTorch maps the infinities
/// to max pooling of `|x|`, which the Python layer does).
fn check_norm(p: f64) -> Result<()> {
    if p == 0.0 || !p.is_finite() {
        return value_error!("norm_type must be a finite nonzero number here, got {p}");
    }
    Ok(())
}

fn kernel_volume(params: &PoolParams) -> usize {
    params
        .kernel
        .iter()
        .fold(1usize, |acc, &k| acc.saturating_mul(k))
}

/// Lp pooling of `x (N, C, D, H, W)` with norm `p`.
pub fn lp_pool<T: Storage>(x: ArrayView5<'_, T>, params: &PoolParams, p: f64) -> Result<Array5<T>> {
    check_norm(p)?;
    let shape = shape5(&x);
    let input = spatial(shape);
    let output = params.output_dims(input)?;
    let windows = || Windows::strided(params, input, output);
    let out_shape = with_spatial(shape, output);
    let volume = kernel_volume(params);
    macro_rules! sums {
        ($norm:expr) => {
            window_sums(
                x,
                out_shape,
                windows,
                Lp::<T::Compute, { $norm }>::new(p, volume),
                None,
            )
        };
    }
    match norm_kind(p) {
        1 => sums!(1),
        2 => sums!(2),
        3 => sums!(3),
        4 => sums!(4),
        5 => sums!(5),
        6 => sums!(6),
        HALF => sums!(HALF),
        MINUS_HALF => sums!(MINUS_HALF),
        MINUS_ONE => sums!(MINUS_ONE),
        MINUS_TWO => sums!(MINUS_TWO),
        _ => lp_general(x, out_shape, windows, p, volume),
    }
}

/// Lp pooling with a [`GENERAL`] norm, over groups of planes: the powers of a
/// group's cells in one pass, their scaled sums plane by plane (the `p = 1`
/// kernel: `sum * scale`, no root), the roots of the group's sums in one pass.
/// Per plane, the passes of a plane of 49 cells cost more than their powers:
/// setup and a partial register each (planes of 2^12 cells or more are a
/// group of one). Each output is its plane's, computed in a fixed order, so
/// the grouping (and the thread count) does not change a bit of it.
fn lp_general<S: Storage>(
    x: ArrayView5<'_, S>,
    out_shape: Shape5,
    windows: impl FnOnce() -> Result<Windows>,
    p: f64,
    volume: usize,
) -> Result<Array5<S>> {
    let len = checked_product(&out_shape)?;
    let mut out = alloc_uninit::<S>(len, "the output")?;
    if len > 0 {
        let windows = windows()?;
        let (in_vol, out_vol) = (windows.in_vol(), windows.out_vol());
        let x = standard(x)?;
        let x = as_slice(&x)?;
        let planes = len / out_vol;
        let (rows, split) = plan::sums_plan::<S::Compute>(&windows, planes, false);
        let group = split.group(in_vol, rows.kernel);
        let general = Lp::<S::Compute, GENERAL>::new(p, volume);
        let sums = Lp::<S::Compute, 1>::new(1.0, volume);
        let init = || {
            (
                avg::PlaneScratch::new(&windows, sums),
                Vec::<S::Compute>::new(),
                Vec::<S::Compute>::new(),
            )
        };
        let per_task = split.per_task;
        for_each_chunk_mut(
            &mut out,
            per_task.saturating_mul(out_vol),
            split.work,
            init,
            |(scratch, cells, totals), task, chunk| {
                for (g, chunk) in chunk.chunks_mut(group * out_vol).enumerate() {
                    let first = task * per_task + g * group;
                    let x = &x[first * in_vol..(first + chunk.len() / out_vol) * in_vol];
                    S::through_compute(x, chunk, |x, chunk| {
                        cells.clear();
                        cells.reserve(x.len());
                        powers(
                            x,
                            &general.power,
                            &mut cells.spare_capacity_mut()[..x.len()],
                        );
                        // SAFETY: `powers` wrote the first `x.len()` elements.
                        unsafe { cells.set_len(x.len()) };
                        totals.clear();
                        totals.reserve(chunk.len());
                        let targets = &mut totals.spare_capacity_mut()[..chunk.len()];
                        avg::avg_planes(&windows, rows, sums, cells, targets, scratch);
                        // SAFETY: `avg_planes` wrote every output of each plane, and
                        // the planes cover the first `chunk.len()` elements.
                        unsafe { totals.set_len(chunk.len()) };
                        general.roots(totals, chunk);
                    });
                }
            },
        )?;
    }
    // SAFETY: each chunk's roots wrote all of it, and the chunks cover the
    // buffer (when `len` is 0 there is nothing to write).
    into_array5(out_shape, unsafe { assume_init(out) })
}

/// Gradient of [`lp_pool`] with respect to its input `x` (whose window sums it
/// recomputes): zero where a window's sum is zero, as PyTorch's.
pub fn lp_pool_backward<T: Element>(
    grad_out: ArrayView5<'_, T>,
    x: ArrayView5<'_, T>,
    params: &PoolParams,
    p: f64,
) -> Result<Array5<T>> {
    check_norm(p)?;
    let input_shape: Shape5 = shape5(&x);
    let input = spatial(input_shape);
    let output = params.output_dims(input)?;
    let expected = with_spatial(input_shape, output);
    check_shape(
        "grad_out",
        shape5(&grad_out),
        "the output of the pooling",
        expected,
        params.rank,
    )?;
    let len = checked_product(&input_shape)?;
    if len == 0 || grad_out.is_empty() {
        return into_array5(input_shape, alloc_zeroed::<T>(len, "grad_input")?);
    }
    let mut grad_in = alloc_uninit::<T>(len, "grad_input")?;
    let windows = Windows::strided(params, input, output)?;
    let (grad_out, x) = (standard(grad_out)?, standard(x)?);
    let (grad_out, x) = (as_slice(&grad_out)?, as_slice(&x)?);
    let (in_vol, out_vol) = (windows.in_vol(), windows.out_vol());
    let split = PlaneSplit::new(
        len / in_vol.max(1),
        out_vol.saturating_mul(windows.max_window_vol()),
    );
    let volume = kernel_volume(params);
    let kind = norm_kind(p);
    let rows_plan = plan::avg_rows(&windows, false);
    // How the windows lie along a row: the same for every plane, so once a
    // call (per plane, on 1-D rows of thousands of windows, it showed).
    let cover = RowCover::of(&windows);
    // Whether some window is clipped by the end of the input (ceil mode), its
    // sum then scaled up.
    let clipped = (0..3).any(|axis| {
        windows.axes[axis]
            .iter()
            .any(|window| window.padded != params.kernel[axis])
    });
    let init = BackwardScratch::<T>::default;
    // Small planes in groups (see `lp_general`): a kernel call per group.
    let group = split.group(in_vol, rows_plan.kernel);
    let groups = PlaneSplit {
        per_task: (split.per_task / group).max(1),
        work: split.work,
    };
    let group_len = group * in_vol;
    for_each_zeroed_target_plane(
        &mut grad_in,
        group_len,
        groups,
        init,
        |scratch, index, g| {
            let (first, count) = (index * group, g.len() / in_vol);
            let x = &x[first * in_vol..(first + count) * in_vol];
            let grads = &grad_out[first * out_vol..(first + count) * out_vol];
            macro_rules! backward {
                ($norm:expr) => {{
                    let lp = Lp::<T, { $norm }>::new(p, volume);
                    dispatch!(
                        lp_backward_plane_any,
                        lp_backward_plane_avx512,
                        lp_backward_plane_avx2,
                        &windows,
                        rows_plan,
                        cover,
                        clipped,
                        lp,
                        x,
                        grads,
                        g,
                        scratch
                    )
                }};
            }
            match kind {
                1 => backward!(1),
                2 => backward!(2),
                3 => backward!(3),
                4 => backward!(4),
                5 => backward!(5),
                6 => backward!(6),
                HALF => backward!(HALF),
                MINUS_HALF => backward!(MINUS_HALF),
                MINUS_ONE => backward!(MINUS_ONE),
                MINUS_TWO => backward!(MINUS_TWO),
                _ => backward!(GENERAL),
            }
        },
    )?;
    // SAFETY: the planes cover the buffer (`len` is a whole number of planes),
    // and each was zeroed before its gradients were added.
    into_array5(input_shape, unsafe { assume_init(grad_in) })
}

/// Lp pooling as PyTorch computes it: `(scale * sum x^p)^(1/p)`, where `scale`
/// is the kernel volume over the window's taps inside the padded input (1 but for
/// ceil-mode windows hanging over the end, which PyTorch scales up so). `NORM`
/// says how the powers are computed (known when the kernels compile, so the
/// short forms vectorise inside the window sums): 1 to 6 for those whole `p`
/// (products, like PyTorch's `pow` for 2 and 3; square roots for 2 and 4, a
/// cube root for 3, `pow(s, 1/p)` for 5 and 6), [`HALF`],
/// [`MINUS_HALF`], [`MINUS_ONE`], [`MINUS_TWO`] for those `p` (square roots,
/// reciprocals and products; PyTorch's `pow` has short forms for them too), else
/// [`GENERAL`] (`kernels::elementary::pow`, in passes of their own).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lp<T, const NORM: i32> {
    /// `x^p`.
    power: Power<T>,
    /// `s^(1/p)`.
    root: Power<T>,
    kernel_vol: usize,
}

/// `NORM` of [`Lp`] for a norm without a short form: `pow`.
pub(crate) const GENERAL: i32 = 0;
/// `NORM` of [`Lp`] for p = 1/2: `x^p = sqrt(x)`, the root `s^2`.
pub(crate) const HALF: i32 = 10;
/// `NORM` of [`Lp`] for p = -1/2: `x^p = 1 / sqrt(x)`, the root `(1/s)^2`.
pub(crate) const MINUS_HALF: i32 = 11;
/// `NORM` of [`Lp`] for p = -1: `x^p = 1/x`, the root `1/s`.
pub(crate) const MINUS_ONE: i32 = -1;
/// `NORM` of [`Lp`] for p = -2: `x^p = (1/x)^2`, the root `1 / sqrt(s)`.
pub(crate) const MINUS_TWO: i32 = -2;

/// `NORM` of [`Lp`] for the norm `p`.
pub(crate) fn norm_kind(p: f64) -> i32 {
    match p {
        1.0 => 1,
        2.0 => 2,
        3.0 => 3,
        4.0 => 4,
        5.0 => 5,
        6.0 => 6,
        0.5 => HALF,
        -0.5 => MINUS_HALF,
        -1.0 => MINUS_ONE,
        -2.0 => MINUS_TWO,
        _ => GENERAL,
    }
}

/// C's `sqrt(x) = pow(x, 1/2)`: `sqrt` but for `-0` (+0) and `-inf` (`inf`).
#[inline(always)]
fn c_sqrt<T: Element>(x: T) -> T {
    if x == T::neg_infinity() {
        T::infinity()
    } else {
        x.sqrt() + T::zero()
    }
}

impl<T: Element, const NORM: i32> Lp<T, NORM> {
    pub fn new(p: f64, kernel_vol: usize) -> Self {
        let p_t = T::from(p).unwrap_or_else(T::nan);
        Lp {
            power: Power::new(p_t),
            root: Power::new(T::from(1.0 / p).unwrap_or_else(T::nan)),
            kernel_vol,
        }
    }

    /// `x^n` for a whole `n` of 0 to 6, as products (at most three: within
    /// about two units in the last place; a term's error reaches the output
    /// divided by `p`).
    #[inline(always)]
    fn product(value: T, n: i32) -> T {
        let square = value * value;
        match n {
            0 => T::one(),
            1 => value,
            2 => square,
            3 => square * value,
            4 => square * square,
            5 => square * square * value,
            _ => {
                let cube = square * value;
                cube * cube
            }
        }
    }

    /// `x^(p - 1)` of `value = x` in the norm's short form; for [`GENERAL`],
    /// `value` is that power already.
    #[inline(always)]
    fn slope_of(value: T) -> T {
        match NORM {
            1..=6 => Self::product(value, NORM - 1),
            HALF => T::one() / c_sqrt(value),
            MINUS_HALF => {
                let r = T::one() / c_sqrt(value);
                r * r * r
            }
            MINUS_ONE => {
                let r = T::one() / value;
                r * r
            }
            MINUS_TWO => {
                let r = T::one() / value;
                r * r * r
            }
            _ => value,
        }
    }

    /// Whether the root is `pow(s, 1/p)`, a pass of its own ([`GENERAL`], 5, 6).
    const ROOT_BY_POW: bool = NORM == GENERAL || NORM == 5 || NORM == 6;

    /// The root of one scaled sum `value` (in the plane pass for [`GENERAL`],
    /// 3, 5 and 6).
    #[inline(always)]
    fn root_of<F: Fma>(self, value: T) -> T {
        // As pow (and PyTorch's pow(1/p)): a negative finite sum has no real
        // root but for p = 1 and -1; a sum of -inf has inf (C's pow(-inf,
        // 1/3)). The sums of the other short forms are never negative.
        match NORM {
            1 => value,
            2 => value.sqrt(),
            3 if value == T::neg_infinity() => T::infinity(),
            3 if value < T::zero() => T::nan(),
            3 => cbrt::<T, F>(value),
            4 => value.sqrt().sqrt(),
            HALF => value * value,
            MINUS_HALF => {
                let r = T::one() / value;
                r * r
            }
            MINUS_ONE => T::one() / value,
            MINUS_TWO => T::one() / c_sqrt(value),
            _ => pow::<T, F>(value, &self.root),
        }
    }

    /// The roots of the scaled sums `values` into `out`, one vectorised pass.
    fn roots(self, values: &[T], out: &mut [MaybeUninit<T>]) {
        if Self::ROOT_BY_POW {
            return powers(values, &self.root, out);
        }
        dispatch_fma!(roots_any, roots_avx512, roots_avx2, [_], self, values, out)
    }
}

/// What the roots pass needs of [`Lp`], whatever its `NORM`.
pub(crate) trait Root: Copy + Send + Sync {
    type T: Element;
    fn root<F: Fma>(self, value: Self::T) -> Self::T;
}

impl<T: Element, const NORM: i32> Root for Lp<T, NORM> {
    type T = T;

    #[inline(always)]
    fn root<F: Fma>(self, value: T) -> T {
        self.root_of::<F>(value)
    }
}

simd_twins! {
    roots_any => roots_avx512, roots_avx2,
    <F: Fma, L: Root>(lp: L, values: &[L::T], out: &mut [MaybeUninit<L::T>])
}

#[inline(always)]
fn roots_any<F: Fma, L: Root>(lp: L, values: &[L::T], out: &mut [MaybeUninit<L::T>]) {
    for (slot, &value) in out.iter_mut().zip(values) {
        slot.write(lp.root::<F>(value));
    }
}

impl<T: Element, const NORM: i32> WindowSum for Lp<T, NORM> {
    type T = T;

    const FINISH_PLANE: bool = Self::ROOT_BY_POW || NORM == 3;

    #[inline(always)]
    fn term(self, value: T) -> T {
        match NORM {
            1..=6 => Self::product(value, NORM),
            HALF => c_sqrt(value),
            MINUS_HALF => T::one() / c_sqrt(value),
            MINUS_ONE => T::one() / value,
            MINUS_TWO => {
                let r = T::one() / value;
                r * r
            }
            // The cells' powers, computed in a pass of their own (`lp_general`,
            // the backward's terms): the sums take them as they are.
            _ => value,
        }
    }

    #[inline(always)]
    fn factor(self, wd: &AxisWindow, wh: &AxisWindow, ww: &AxisWindow) -> T {
        let taps = Windows::divisor::<T>(Divisor::Padded, wd, wh, ww);
        let kernel_vol = T::from(self.kernel_vol).unwrap_or_else(T::infinity);
        if taps == kernel_vol {
            T::one()
        } else {
            kernel_vol / taps
        }
    }

    #[inline(always)]
    fn finish(self, sum: T, scale: T) -> T {
        let value = sum * scale;
        if Self::FINISH_PLANE {
            // Roots in `finish_plane`, a loop of its own that vectorises.
            value
        } else {
            // Roots of a short form, in the sums' loop.
            self.root_of::<crate::kernels::elementary::Unfused>(value)
        }
    }

    fn finish_plane(self, finished: &[T], out: &mut [MaybeUninit<T>]) {
        self.roots(finished, out);
    }
}

/// The scaled window sums of an [`Lp`], without the root: the gradient's
/// totals.
#[derive(Debug, Clone, Copy)]
struct Totals<L>(L);

impl<T: Element, const NORM: i32> WindowSum for Totals<Lp<T, NORM>> {
    type T = T;

    #[inline(always)]
    fn term(self, value: T) -> T {
        self.0.term(value)
    }

    #[inline(always)]
    fn factor(self, wd: &AxisWindow, wh: &AxisWindow, ww: &AxisWindow) -> T {
        self.0.factor(wd, wh, ww)
    }

    #[inline(always)]
    fn finish(self, sum: T, scale: T) -> T {
        sum * scale
    }
}

/// What [`lp_backward_plane_any`] works in, kept by a task from plane to plane
/// (thousands of small planes made its allocations a good part of the cost).
pub(crate) struct BackwardScratch<T> {
    terms: Vec<T>,
    slopes: Vec<T>,
    totals: Vec<T>,
    roots: Vec<T>,
    ratios: Vec<T>,
    coefs: Vec<T>,
    spread: Vec<T>,
    rows: Vec<usize>,
    sums: Option<avg::PlaneScratch<T>>,
    /// Small planes: each cell's summed coefficients, whether a window reads
    /// it, and each window's scale.
    cell_coefs: Vec<T>,
    covered: Vec<bool>,
    factors: Vec<T>,
}

impl<T> Default for BackwardScratch<T> {
    fn default() -> Self {
        BackwardScratch {
            terms: Vec::new(),
            slopes: Vec::new(),
            totals: Vec::new(),
            roots: Vec::new(),
            ratios: Vec::new(),
            coefs: Vec::new(),
            spread: Vec::new(),
            rows: Vec::new(),
            sums: None,
            cell_coefs: Vec::new(),
            covered: Vec::new(),
            factors: Vec::new(),
        }
    }
}

simd_twins! {
    lp_backward_plane_any => lp_backward_plane_avx512, lp_backward_plane_avx2,
    <T: Element; const NORM: i32>(
        windows: &Windows,
        rows_plan: RowRuns,
        cover: RowCover,
        clipped: bool,
        lp: Lp<T, NORM>,
        x: &[T],
        grad_out: &[T],
        grad_in: &mut [T],
        scratch: &mut BackwardScratch<T>,
    )
}

/// Gradient of Lp pooling with respect to its input `x`, for a group of whole
/// planes (one, or several small ones: the passes below then run over all of
/// their cells at once): the window's sum `s = scale * sum x^p` recomputed, then every cell of the window gets
/// `grad * scale * s^(1/p - 1) * x^(p - 1)`, and nothing where `s` is 0 (as
/// PyTorch, whose ReLU masks that gradient). In passes: the powers ([`GENERAL`]:
/// `x^p` and `x^(p - 1)` of every cell at once), the sums, their roots, then the
/// cells' gradients.
///
/// Compiled per instruction set (`simd_twins`, called through `dispatch`): the
/// kernel's own loops (ratios, spread, row pass) vectorise to the register
/// width only so.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lp_backward_plane_any<T: Element, const NORM: i32>(
    windows: &Windows,
    rows_plan: RowRuns,
    cover: RowCover,
    clipped: bool,
    lp: Lp<T, NORM>,
    x: &[T],
    grad_out: &[T],
    grad_in: &mut [T],
    scratch: &mut BackwardScratch<T>,
) {
    let step_w = windows.step[2];
    let BackwardScratch {
        terms,
        slopes,
        totals,
        roots,
        ratios,
        coefs,
        spread,
        rows,
        sums,
        cell_coefs,
        covered,
        factors,
    } = scratch;
    for buffer in [
        &mut *terms,
        &mut *slopes,
        &mut *totals,
        &mut *roots,
        &mut *ratios,
    ] {
        buffer.clear();
    }
    if NORM == GENERAL {
        terms.reserve(x.len());
        slopes.reserve(x.len());
        powers_and_slopes(
            x,
            &lp.power,
            &mut terms.spare_capacity_mut()[..x.len()],
            &mut slopes.spare_capacity_mut()[..x.len()],
        );
        // SAFETY: `powers_and_slopes` wrote the first `x.len()` elements of both
        // capacities.
        unsafe {
            terms.set_len(x.len());
            slopes.set_len(x.len());
        }
    }
    let cells = if NORM == GENERAL { &terms[..] } else { x };
    // x^(p - 1): computed above (`slope_of` takes it as it is), or a product of x.
    let sources = if NORM == GENERAL { &slopes[..] } else { x };
    let (in_vol, out_vol) = (windows.in_vol(), windows.out_vol());
    let outputs = grad_out.len();
    totals.reserve(outputs);
    // The windows' factors do not depend on the norm's form: one scratch
    // serves every plane of the task.
    let sums = sums.get_or_insert_with(|| avg::PlaneScratch::new(windows, Totals(lp)));
    let targets = &mut totals.spare_capacity_mut()[..outputs];
    avg::avg_planes(windows, rows_plan, Totals(lp), cells, targets, sums);
    // SAFETY: `avg_planes` wrote every output of each plane, and the group's
    // planes cover the first `outputs` elements of the capacity.
    unsafe { totals.set_len(outputs) };
    roots.reserve(outputs);
    lp.roots(totals, &mut roots.spare_capacity_mut()[..outputs]);
    // SAFETY: `roots` wrote every element of its output, the first `outputs`
    // of the capacity (as long as `totals`).
    unsafe { roots.set_len(outputs) };
    // grad * s^(1/p - 1) = grad * root / total for every window at once (a loop
    // that vectorises), times the window's scale below where it is not 1.
    ratios.extend(
        grad_out
            .iter()
            .zip(roots.iter())
            .zip(totals.iter())
            .map(|((&g, &root), &total)| g * (root / total)),
    );
    // Windows that tile their rows (each starting where the one before ends,
    // cells one apart): a row's gradients go in one pass over its cells, the
    // coefficients spread out over them first (a loop that vectorises).
    let row_windows = &windows.axes[2];
    // Windows that overlap but leave no gap (e.g. 3 or 4 cells, stride 2) sum
    // their coefficients per cell first, `(sum c) x^(p - 1)`, one rounding
    // fewer than adding each window's `c x^(p - 1)`.
    let RowCover {
        first,
        span,
        tiled,
        gapless,
        uniform,
        ..
    } = cover;
    spread.clear();
    spread.resize(if gapless { span } else { 0 }, T::zero());
    // Small planes (rows of fewer than 8 windows, which have a tap table): the
    // coefficients summed per cell through the table, then one pass over the
    // plane, `(sum c) x^(p - 1)` where a window reads the cell. Walking such
    // planes row by row and window by window cost more than the arithmetic.
    let taps = windows
        .taps
        .as_ref()
        .filter(|_| rows_plan.kernel.lanes() == 0);
    if let Some(taps) = taps {
        covered.clear();
        covered.resize(in_vol, false);
        for cells in taps.windows() {
            for &cell in cells {
                covered[cell as usize] = true;
            }
        }
        factors.clear();
        if clipped {
            factors.extend(avg::window_shapes(windows).map(|(wd, wh, ww)| lp.factor(wd, wh, ww)));
        }
    }
    let planes = grad_in
        .chunks_mut(in_vol)
        .zip(sources.chunks(in_vol))
        .zip(totals.chunks(out_vol).zip(ratios.chunks(out_vol)));
    for ((grad_in, sources), (totals, ratios)) in planes {
        // A window whose sum is 0 adds nothing, even times an infinite x^(p - 1):
        // such planes keep the window loop below.
        if let Some(taps) = taps.filter(|_| totals.iter().all(|&total| total != T::zero())) {
            cell_coefs.clear();
            cell_coefs.resize(in_vol, T::zero());
            // A local slice: through the scratch's vector the loop reloaded its
            // pointer after every store.
            let coefs = &mut cell_coefs[..];
            for (o, cells) in taps.windows().enumerate() {
                let c = if clipped {
                    ratios[o] * factors[o]
                } else {
                    ratios[o]
                };
                for &cell in cells {
                    coefs[cell as usize] += c;
                }
            }
            let cells = grad_in
                .iter_mut()
                .zip(coefs.iter())
                .zip(sources)
                .zip(covered.iter());
            for (((cell, &c), &v), &read) in cells {
                let term = c * Lp::<T, NORM>::slope_of(v);
                *cell += if read { term } else { T::zero() };
            }
            continue;
        }
        let coefficient = |o: usize, wd: &AxisWindow, wh: &AxisWindow, ww: &AxisWindow| {
            if clipped {
                ratios[o] * lp.factor(wd, wh, ww)
            } else {
                ratios[o]
            }
        };
        let mut o = 0;
        for wd in &windows.axes[0] {
            for wh in &windows.axes[1] {
                windows.row_starts(wd, wh, rows);
                let outputs = o..o + row_windows.len();
                // A window whose sum is 0 adds nothing, even times an infinite x^(p - 1).
                if gapless
                    && totals[outputs.clone()]
                        .iter()
                        .all(|&total| total != T::zero())
                {
                    match (clipped, uniform) {
                        _ if !tiled => {
                            let row_coefs: &[T] = if clipped {
                                coefs.clear();
                                for (o, ww) in outputs.zip(row_windows) {
                                    coefs.push(coefficient(o, wd, wh, ww));
                                }
                                coefs
                            } else {
                                &ratios[outputs]
                            };
                            cover.spread(row_windows, row_coefs, spread);
                        }
                        (false, Some(width)) => {
                            let row_ratios = &ratios[outputs];
                            for (cells, &c) in spread.chunks_exact_mut(width).zip(row_ratios) {
                                cells.fill(c);
                            }
                        }
                        _ => {
                            for (o, ww) in outputs.zip(row_windows) {
                                let at = ww.first - first;
                                spread[at..at + ww.count].fill(coefficient(o, wd, wh, ww));
                            }
                        }
                    }
                    for &row in rows.iter() {
                        let cells = &mut grad_in[row + first..row + first + span];
                        let values = &sources[row + first..row + first + span];
                        for ((cell, &c), &v) in cells.iter_mut().zip(spread.iter()).zip(values) {
                            *cell += c * Lp::<T, NORM>::slope_of(v);
                        }
                    }
                } else {
                    for (o, ww) in outputs.zip(row_windows) {
                        if totals[o] == T::zero() {
                            continue;
                        }
                        let c = coefficient(o, wd, wh, ww);
                        for &row in rows.iter() {
                            let start = row + ww.first;
                            let cells = grad_in[start..].iter_mut().step_by(step_w);
                            let values = sources[start..].iter().step_by(step_w);
                            for (cell, &v) in cells.zip(values).take(ww.count) {
                                *cell += c * Lp::<T, NORM>::slope_of(v);
                            }
                        }
                    }
                }
                o += row_windows.len();
            }
        }
    }
}
