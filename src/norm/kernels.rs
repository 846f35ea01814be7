//! The loops of batch normalisation and ReLU over one contiguous run of values.
//!
//! Reductions keep [`LANES`] lane sums in `f64` (for `f32` input too), each fed
//! by partial sums of 16 terms in the element type, and combine them in a fixed
//! tree, so a run's sums are the same bits on every SIMD path (the compiler
//! vectorises the lanes and never contracts a multiply and an add into an FMA)
//! and however the run was reached. The element-wise loops compute in the
//! element type. Each body is `#[inline(always)]` and compiled into AVX-512 and
//! AVX2 twins ([`simd_twins`]) that [`dispatch`] picks from.

use crate::element::Element;
use crate::kernels::{dispatch, simd_twins};
use std::mem::MaybeUninit;

/// Lane sums per reduction: two AVX-512 registers of `f64`, enough independent
/// additions to hide their latency.
const LANES: usize = 16;

/// `f32` or `f64` with its exact widening to `f64` and rounding back.
pub trait Wide: Element {
    /// `self` as `f64` (exact).
    fn wide(self) -> f64;
    /// `v` rounded to this type.
    fn narrow(v: f64) -> Self;
}

impl Wide for f32 {
    #[inline(always)]
    fn wide(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn narrow(v: f64) -> f32 {
        v as f32
    }
}

impl Wide for f64 {
    #[inline(always)]
    fn wide(self) -> f64 {
        self
    }
    #[inline(always)]
    fn narrow(v: f64) -> f64 {
        v
    }
}

/// The sum of `LANES` lane sums, in a fixed pairwise order.
#[inline(always)]
fn fold_lanes(mut lanes: [f64; LANES]) -> f64 {
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
        width /= 2;
    }
    lanes[0]
}

/// Values whose terms each lane sums in the element type before adding that
/// partial sum to its `f64` sum: 16 terms per lane.
const GROUP: usize = 16 * LANES;

/// Add each lane's partial sum to its `f64` sum.
#[inline(always)]
fn flush<T: Wide>(sums: &mut [f64; LANES], partial: &[T; LANES]) {
    for (sum, &p) in sums.iter_mut().zip(partial) {
        *sum += p.wide();
    }
}

/// `[sum(d), sum(d^2)]` in `f64` with `d = x - shift` computed in `T` (the
/// caller knows `shift` as a `T`).
///
/// Lane `l` of a group of [`GROUP`] values sums the terms of the values
/// `l, l + LANES, ...` in `T`, then adds that to its `f64` sum; the tail after
/// the last whole block goes to a separate `f64` sum, in order; the lanes are
/// combined in a fixed tree. Each sum has its own loop over the group (in L1 by
/// then): written so, the compiler vectorises every loop, where it compiled
/// scalar code for one loop updating two sums, or for `f64` sums of `f32`
/// terms. A partial sum of 16 terms loses at most ~16 units of `T`'s roundoff
/// of their magnitude.
#[inline(always)]
fn moments_body<T: Wide>(x: &[T], shift: T, sums: &mut [f64; 2]) {
    let full = x.len() / LANES * LANES;
    let (mut a, mut b) = ([0.0; LANES], [0.0; LANES]);
    for group in x[..full].chunks(GROUP) {
        let mut partial = [T::zero(); LANES];
        for block in group.chunks_exact(LANES) {
            for (p, &v) in partial.iter_mut().zip(block) {
                *p += v - shift;
            }
        }
        flush(&mut a, &partial);
        let mut partial = [T::zero(); LANES];
        for block in group.chunks_exact(LANES) {
            for (p, &v) in partial.iter_mut().zip(block) {
                let d = v - shift;
                *p += d * d;
            }
        }
        flush(&mut b, &partial);
    }
    let (mut tail_a, mut tail_b) = (0.0, 0.0);
    for &v in &x[full..] {
        let d = v - shift;
        tail_a += d.wide();
        tail_b += (d * d).wide();
    }
    *sums = [fold_lanes(a) + tail_a, fold_lanes(b) + tail_b];
}

simd_twins! {
    moments_body => moments_avx512, moments_avx2,
    <T: Wide>(x: &[T], shift: T, sums: &mut [f64; 2])
}

/// `[sum(x - shift), sum((x - shift)^2)]` of a run, in `f64` (see
/// [`moments_body`]).
pub(super) fn moments<T: Wide>(x: &[T], shift: T) -> [f64; 2] {
    let mut sums = [0.0; 2];
    dispatch!(
        moments_body,
        moments_avx512,
        moments_avx2,
        x,
        shift,
        &mut sums
    );
    sums
}

/// `g`, or with `MASKED` zero where `y` is not positive.
#[inline(always)]
fn masked<T: Element, const MASKED: bool>(g: T, y: T) -> T {
    if MASKED {
        relu_mask(g, y)
    } else {
        g
    }
}

/// `[sum(g), sum(g * (x - mean))]` as [`moments_body`] sums, `g` masked by `y`
/// when `MASKED` (else `y` is ignored).
#[inline(always)]
fn dot_sums<T: Wide, const MASKED: bool>(g: &[T], y: &[T], x: &[T], mean: T) -> [f64; 2] {
    let full = g.len() / LANES * LANES;
    let (x, y) = (&x[..g.len()], &y[..g.len()]);
    let (mut a, mut b) = ([0.0; LANES], [0.0; LANES]);
    let groups = g[..full]
        .chunks(GROUP)
        .zip(y[..full].chunks(GROUP))
        .zip(x[..full].chunks(GROUP));
    for ((gg, yg), xg) in groups {
        let mut partial = [T::zero(); LANES];
        for (gb, yb) in gg.chunks_exact(LANES).zip(yg.chunks_exact(LANES)) {
            for ((p, &g), &y) in partial.iter_mut().zip(gb).zip(yb) {
                *p += masked::<T, MASKED>(g, y);
            }
        }
        flush(&mut a, &partial);
        let mut partial = [T::zero(); LANES];
        let blocks = gg
            .chunks_exact(LANES)
            .zip(yg.chunks_exact(LANES))
            .zip(xg.chunks_exact(LANES));
        for ((gb, yb), xb) in blocks {
            for (((p, &g), &y), &x) in partial.iter_mut().zip(gb).zip(yb).zip(xb) {
                *p += masked::<T, MASKED>(g, y) * (x - mean);
            }
        }
        flush(&mut b, &partial);
    }
    let (mut tail_a, mut tail_b) = (0.0, 0.0);
    for ((&g, &y), &x) in g[full..].iter().zip(&y[full..]).zip(&x[full..]) {
        let g = masked::<T, MASKED>(g, y);
        tail_a += g.wide();
        tail_b += (g * (x - mean)).wide();
    }
    [fold_lanes(a) + tail_a, fold_lanes(b) + tail_b]
}

/// `[sum(g), sum(g * (x - mean))]` in `f64`, with `g` zero where `mask` (the
/// output of a fused ReLU) is not positive.
#[inline(always)]
fn grad_sums_body<T: Wide>(g: &[T], x: &[T], mask: Option<&[T]>, mean: T, sums: &mut [f64; 2]) {
    *sums = match mask {
        None => dot_sums::<T, false>(g, g, x, mean),
        Some(y) => dot_sums::<T, true>(g, y, x, mean),
    };
}

simd_twins! {
    grad_sums_body => grad_sums_avx512, grad_sums_avx2,
    <T: Wide>(g: &[T], x: &[T], mask: Option<&[T]>, mean: T, sums: &mut [f64; 2])
}

/// `[sum(g), sum(g * (x - mean))]` of a run (see [`grad_sums_body`]).
pub(super) fn grad_sums<T: Wide>(g: &[T], x: &[T], mask: Option<&[T]>, mean: T) -> [f64; 2] {
    let mut sums = [0.0; 2];
    dispatch!(
        grad_sums_body,
        grad_sums_avx512,
        grad_sums_avx2,
        g,
        x,
        mask,
        mean,
        &mut sums
    );
    sums
}

/// `g` where `y > 0`, else 0 (NaN in `y` masks too, as `y > 0` is false).
#[inline(always)]
fn relu_mask<T: Element>(g: T, y: T) -> T {
    if y > T::zero() {
        g
    } else {
        T::zero()
    }
}

/// `max(v, 0)`, NaN kept (as NumPy's `maximum` and PyTorch's `relu`), `-0` as `0`.
#[inline(always)]
fn relu_value<T: Element>(v: T) -> T {
    if v <= T::zero() {
        T::zero()
    } else {
        v
    }
}

/// `out = x * scale + shift`, then `max(., 0)` when `relu`.
#[inline(always)]
fn affine_body<T: Element>(x: &[T], out: &mut [MaybeUninit<T>], scale: T, shift: T, relu: bool) {
    let x = &x[..out.len()];
    if relu {
        for (o, &v) in out.iter_mut().zip(x) {
            o.write(relu_value(v * scale + shift));
        }
    } else {
        for (o, &v) in out.iter_mut().zip(x) {
            o.write(v * scale + shift);
        }
    }
}

simd_twins! {
    affine_body => affine_avx512, affine_avx2,
    <T: Element>(x: &[T], out: &mut [MaybeUninit<T>], scale: T, shift: T, relu: bool)
}

/// `out = x * scale + shift` (and ReLU), every element written.
pub(super) fn affine<T: Element>(
    x: &[T],
    out: &mut [MaybeUninit<T>],
    scale: T,
    shift: T,
    relu: bool,
) {
    dispatch!(
        affine_body,
        affine_avx512,
        affine_avx2,
        x,
        out,
        scale,
        shift,
        relu
    );
}

/// The per-channel constants of the input gradient of one channel.
#[derive(Debug, Clone, Copy)]
pub(super) struct GradCoefs<T> {
    /// `invstd * weight`.
    pub scale: T,
    /// Training mode: the saved mean, `sum(g (x - mean)) invstd^2 / count` and
    /// `sum(g) / count` (the batch statistics' share of the gradient).
    pub centred: Option<(T, T, T)>,
}

/// The input gradient of a run: `(g - (x - mean) k - mean_g) scale` in training
/// mode, `g scale` in eval mode; `g` masked by a fused ReLU's output first.
#[inline(always)]
fn grad_input_body<T: Element>(
    g: &[T],
    x: &[T],
    mask: Option<&[T]>,
    coefs: GradCoefs<T>,
    out: &mut [MaybeUninit<T>],
) {
    let (g, x) = (&g[..out.len()], &x[..out.len()]);
    let scale = coefs.scale;
    match (coefs.centred, mask) {
        (Some((mean, k, mean_g)), None) => {
            for ((o, &g), &x) in out.iter_mut().zip(g).zip(x) {
                o.write((g - (x - mean) * k - mean_g) * scale);
            }
        }
        (Some((mean, k, mean_g)), Some(y)) => {
            let y = &y[..out.len()];
            for (((o, &g), &x), &y) in out.iter_mut().zip(g).zip(x).zip(y) {
                o.write((relu_mask(g, y) - (x - mean) * k - mean_g) * scale);
            }
        }
        (None, None) => {
            for (o, &g) in out.iter_mut().zip(g) {
                o.write(g * scale);
            }
        }
        (None, Some(y)) => {
            let y = &y[..out.len()];
            for ((o, &g), &y) in out.iter_mut().zip(g).zip(y) {
                o.write(relu_mask(g, y) * scale);
            }
        }
    }
}

simd_twins! {
    grad_input_body => grad_input_avx512, grad_input_avx2,
    <T: Element>(
        g: &[T],
        x: &[T],
        mask: Option<&[T]>,
        coefs: GradCoefs<T>,
        out: &mut [MaybeUninit<T>],
    )
}

/// The input gradient of a run (see [`grad_input_body`]), every element written.
pub(super) fn grad_input<T: Element>(
    g: &[T],
    x: &[T],
    mask: Option<&[T]>,
    coefs: GradCoefs<T>,
    out: &mut [MaybeUninit<T>],
) {
    dispatch!(
        grad_input_body,
        grad_input_avx512,
        grad_input_avx2,
        g,
        x,
        mask,
        coefs,
        out
    );
}

/// `out = max(x, 0)` (or `grad` masked by `x > 0` when `grad` is given).
#[inline(always)]
fn relu_body<T: Element>(x: &[T], grad: Option<&[T]>, out: &mut [MaybeUninit<T>]) {
    let x = &x[..out.len()];
    match grad {
        None => {
            for (o, &v) in out.iter_mut().zip(x) {
                o.write(relu_value(v));
            }
        }
        Some(g) => {
            let g = &g[..out.len()];
            for ((o, &g), &y) in out.iter_mut().zip(g).zip(x) {
                o.write(relu_mask(g, y));
            }
        }
    }
}

simd_twins! {
    relu_body => relu_avx512, relu_avx2,
    <T: Element>(x: &[T], grad: Option<&[T]>, out: &mut [MaybeUninit<T>])
}

/// `out = max(x, 0)`, or with `grad`: `out = grad` where `x > 0`, else 0.
pub(super) fn relu_run<T: Element>(x: &[T], grad: Option<&[T]>, out: &mut [MaybeUninit<T>]) {
    dispatch!(relu_body, relu_avx512, relu_avx2, x, grad, out);
}
