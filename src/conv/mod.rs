//! Convolution and transposed convolution, forward and backward, on 5-D arrays
//! `(N, C, D, H, W)` (1-D and 2-D problems have unit leading spatial axes).
//!
//! A call goes: validate the shapes into a `ConvGeometry` -> `plan` chooses
//! the algorithm of the pass -> the `run_*` function below executes the plan with
//! one `match` -> the algorithm module computes. A transposed convolution is the
//! adjoint of the convolution with the same arguments: its forward pass is that
//! convolution's input gradient, and its input gradient that convolution's
//! forward pass.
//!
//! Algorithms: `direct` and `depthwise` (tap by tap), `winograd`,
//! `implicit` (implicit GEMM over phase planes), `im2col` (GEMM over
//! gathered column tiles, col2im), `subpixel` (strided input gradients).

mod bias;
mod columns;
mod depthwise;
mod direct;
mod epilogue;
mod explain;
mod geometry;
mod im2col;
mod implicit;
mod plan;
mod precision;
mod subpixel;
mod weight_tasks;
mod weights;
mod winograd;

pub use epilogue::Activation;
pub use explain::{explain_conv, explain_conv_transpose};
pub use plan::{set_override as set_plan_override, PASSES as PLAN_PASSES};
pub use precision::{process_precision, set_process_precision, Precision};

use crate::alloc::{alloc_uninit, alloc_zeroed, assume_init};
use crate::arrays::{as_slice, into_array5, shape5, standard, user_shape, Shape5};
use crate::element::Element;
use crate::error::{value_error, Result};
use crate::geometry::{ConvParams, TransposeParams};
use crate::kernels::bf16_gemm;
use crate::threads::for_each_chunk_mut;
use epilogue::{Epilogue, Residual};
use geometry::ConvGeometry;
use ndarray::{Array1, Array5, ArrayView1, ArrayView5, ArrayViewMut5, CowArray};
use plan::{Forward, InputGrad, WeightGrad};
use std::mem::MaybeUninit;

/// Which gradients a backward call computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub input: bool,
    pub weight: bool,
    pub bias: bool,
}

impl Needs {
    pub const ALL: Needs = Needs {
        input: true,
        weight: true,
        bias: true,
    };
}

/// Gradients with respect to the input, the weight and the bias (`None` where not
/// requested).
#[derive(Debug, Clone)]
pub struct ConvGrads<T> {
    pub input: Option<Array5<T>>,
    pub weight: Option<Array5<T>>,
    pub bias: Option<Array1<T>>,
}

fn check_bias<T>(bias: Option<&ArrayView1<'_, T>>, channels: usize) -> Result<()> {
    match bias {
        Some(b) if b.len() != channels => value_error!(
            "bias has {} elements but the output has {channels} channels",
            b.len()
        ),
        _ => Ok(()),
    }
}

fn check_grad_out(grad_out: Shape5, expected: Shape5, rank: usize) -> Result<()> {
    if grad_out != expected {
        return value_error!(
            "grad_out has shape {} but the forward output has shape {}",
            user_shape(grad_out, rank),
            user_shape(expected, rank)
        );
    }
    Ok(())
}

/// Cross-correlation of `x (N, C_in, D, H, W)` with `weight (C_out, C_in/groups, kD,
/// kH, kW)`, plus `bias (C_out,)`, as PyTorch's `conv3d` (and `conv1d`/`conv2d` with
/// unit leading axes).
pub fn conv_forward<T: Element>(
    x: ArrayView5<'_, T>,
    weight: ArrayView5<'_, T>,
    bias: Option<ArrayView1<'_, T>>,
    params: &ConvParams,
) -> Result<Array5<T>> {
    let fused = Fused::default();
    let out = conv_forward_fused(x, weight, bias, params, &fused, None)?;
    out.map_or_else(|| value_error!("no output array was returned"), Ok)
}

/// Gradients of [`conv_forward`] given the gradient of its output.
pub fn conv_backward<T: Element>(
    grad_out: ArrayView5<'_, T>,
    x: ArrayView5<'_, T>,
    weight: ArrayView5<'_, T>,
    params: &ConvParams,
    needs: Needs,
) -> Result<ConvGrads<T>> {
    conv_backward_with(grad_out, x, weight, params, needs, None)
}

/// [`conv_backward`] computed with `precision` (the process default when `None`).
pub fn conv_backward_with<T: Element>(
    grad_out: ArrayView5<'_, T>,
    x: ArrayView5<'_, T>,
    weight: ArrayView5<'_, T>,
    params: &ConvParams,
    needs: Needs,
    precision: Option<Precision>,
) -> Result<ConvGrads<T>> {
    let geo =
        ConvGeometry::for_conv(shape5(&x), shape5(&weight), params)?.with_precision(precision);
    check_grad_out(shape5(&grad_out), geo.out_shape(), params.rank)?;
    gradients(&geo, grad_out, x, weight, needs, false)
}

/// Transposed convolution of `x (N, C_in, D, H, W)` with `weight (C_in,
/// C_out/groups, kD, kH, kW)`, as PyTorch's `conv_transpose3d`: the adjoint
/// (backward-input pass) of the convolution with the same arguments.
pub fn conv_transpose_forward<T: Element>(
    x: ArrayView5<'_, T>,
    weight: ArrayView5<'_, T>,
    bias: Option<ArrayView1<'_, T>>,
    params: &TransposeParams,
) -> Result<Array5<T>> {
    let fused = Fused::default();
    let out = conv_transpose_forward_fused(x, weight, bias, params, &fused, None)?;
    out.map_or_else(|| value_error!("no output array was returned"), Ok)
}

/// Gradients of [`conv_transpose_forward`] given the gradient of its output.
pub fn conv_transpose_backward<T: Element>(
    grad_out: ArrayView5<'_, T>,
    x: ArrayView5<'_, T>,
    weight: ArrayView5<'_, T>,
    params: &TransposeParams,
    needs: Needs,
) -> Result<ConvGrads<T>> {
    conv_transpose_backward_with(grad_out, x, weight, params, needs, None)
}

/// [`conv_transpose_backward`] computed with `precision` (the process default
/// when `None`).
pub fn conv_transpose_backward_with<T: Element>(
    grad_out: ArrayView5<'_, T>,
    x: ArrayView5<'_, T>,
    weight: ArrayView5<'_, T>,
    params: &TransposeParams,
    needs: Needs,
    precision: Option<Precision>,
) -> Result<ConvGrads<T>> {
    // `geo` is the adjoint convolution: its input is our output, its output our input.
    let geo =
        ConvGeometry::for_transpose(shape5(&x), shape5(&weight), params)?.with_precision(precision);
    check_grad_out(shape5(&grad_out), geo.x_shape(), params.rank)?;
    gradients(&geo, grad_out, x, weight, needs, true)
}

// ------------------------------------------------------------ fused forward

/// Where a fused forward's residual comes from.
#[derive(Debug, Clone, Default)]
pub enum ResidualArg<'a, T> {
    #[default]
    None,
    /// An array of the output's shape (any layout).
    Array(ArrayView5<'a, T>),
    /// The output array passed to the call holds it on entry.
    Out,
}

/// What a forward call does besides the convolution and its bias: the precision
/// the plan respects, and the epilogue `activation(conv + bias + residual)`.
#[derive(Debug, Clone)]
pub struct Fused<'a, T> {
    /// The process default when `None`.
    pub precision: Option<Precision>,
    pub activation: Activation,
    pub residual: ResidualArg<'a, T>,
}

impl<T> Default for Fused<'_, T> {
    fn default() -> Self {
        Fused {
            precision: None,
            activation: Activation::Identity,
            residual: ResidualArg::None,
        }
    }
}

/// `activation(conv(x, weight) + bias + residual)` with the epilogue applied to
/// each output run as it is written. Into `out` when given (C-contiguous, the
/// output's shape; then `None` is returned), else into a new array.
pub fn conv_forward_fused<T: Element>(
    x: ArrayView5<'_, T>,
    weight: ArrayView5<'_, T>,
    bias: Option<ArrayView1<'_, T>>,
    params: &ConvParams,
    fused: &Fused<'_, T>,
    out: Option<ArrayViewMut5<'_, T>>,
) -> Result<Option<Array5<T>>> {
    let geo = ConvGeometry::for_conv(shape5(&x), shape5(&weight), params)?
        .with_precision(fused.precision);
    check_bias(bias.as_ref(), geo.c_out)?;
    let (x, weight) = (standard(x)?, standard(weight)?);
    let bias = bias.map(standard).transpose()?;
    let bias = bias.as_ref().map(as_slice).transpose()?;
    let plan = plan::forward::<T>(&geo);
    let (x, w) = (as_slice(&x)?, as_slice(&weight)?);
    with_output(
        geo.out_shape(),
        params.rank,
        fused,
        out,
        |epilogue, dest| run_forward(&plan, &geo, x, w, bias, epilogue, dest),
    )
}

/// [`conv_forward_fused`] of bfloat16 `x` and `weight` on the native bfloat16
/// kernels (`vdpbf16ps`, float32 sums), where [`plan::forward_bf16`] picks them
/// and the CPU and the active path have them: the float32 result before
/// rounding (the caller rounds it once). `Ok(None)` when the native kernels do
/// not apply; the caller then runs the float32 path on the widened inputs.
pub fn conv_forward_bf16(
    x: ArrayView5<'_, half::bf16>,
    weight: ArrayView5<'_, half::bf16>,
    bias: Option<ArrayView1<'_, f32>>,
    params: &ConvParams,
    fused: &Fused<'_, f32>,
) -> Result<Option<Array5<half::bf16>>> {
    let plan = |geo: &ConvGeometry| plan::forward_bf16(geo).filter(|_| bf16_gemm::available());
    forward_16bit(
        x,
        weight,
        (bias, params, fused),
        plan,
        |geo, bands, x, w, tail, out| {
            implicit::forward_bf16(geo, bands, x, crate::storage::bits(w), tail, out)
        },
    )
}

/// [`conv_forward_bf16`] for float16 on the AVX-512 kernel that widens the
/// float16 input planes in registers (the filters widened once): the float32
/// path's sums, rounded once in the store, without widening the input, where
/// [`plan::forward_f16`] picks it.
pub fn conv_forward_f16(
    x: ArrayView5<'_, half::f16>,
    weight: ArrayView5<'_, half::f16>,
    bias: Option<ArrayView1<'_, f32>>,
    params: &ConvParams,
    fused: &Fused<'_, f32>,
) -> Result<Option<Array5<half::f16>>> {
    use crate::storage::Storage;
    let plan = |geo: &ConvGeometry| plan::forward_f16(geo).filter(|_| bf16_gemm::f16_available());
    forward_16bit(
        x,
        weight,
        (bias, params, fused),
        plan,
        |geo, bands, x, w, tail, out| {
            let w = half::f16::widen(ndarray::ArrayView1::from(w))?;
            implicit::forward_f16(geo, bands, x, flat1(&w)?, tail, out)
        },
    )
}

/// The shared part of the native 16-bit forwards: the plan, the checks, the
/// epilogue of `fused` (no residual in the output), and a new 16-bit output that
/// `run(geo, bands, x bits, w, (bias, epilogue), out bits)` writes in full.
#[allow(clippy::type_complexity)]
fn forward_16bit<H: crate::storage::Half + crate::storage::Storage>(
    x: ArrayView5<'_, H>,
    weight: ArrayView5<'_, H>,
    (bias, params, fused): (Option<ArrayView1<'_, f32>>, &ConvParams, &Fused<'_, f32>),
    plan: impl FnOnce(&ConvGeometry) -> Option<implicit::Bands>,
    run: impl FnOnce(
        &ConvGeometry,
        implicit::Bands,
        &[u16],
        &[H],
        (Option<&[f32]>, &Epilogue<'_, f32>),
        &mut [MaybeUninit<u16>],
    ) -> Result<()>,
) -> Result<Option<Array5<H>>> {
    let geo = ConvGeometry::for_conv(shape5(&x), shape5(&weight), params)?
        .with_precision(fused.precision);
    let Some(bands) = plan(&geo) else {
        return Ok(None);
    };
    check_bias(bias.as_ref(), geo.c_out)?;
    let shape = geo.out_shape();
    let residual = match &fused.residual {
        ResidualArg::None => None,
        ResidualArg::Array(r) if shape5(r) == shape => Some(standard(r.view())?),
        ResidualArg::Array(r) => {
            return value_error!(
                "residual has shape {} but the output has shape {}",
                user_shape(shape5(r), params.rank),
                user_shape(shape, params.rank)
            )
        }
        ResidualArg::Out => {
            return value_error!("residual is the output, but no out array was given")
        }
    };
    let epilogue = Epilogue {
        residual: match &residual {
            Some(r) => Residual::Array(as_slice(r)?),
            None => Residual::None,
        },
        activation: fused.activation,
    };
    let (x, weight) = (standard(x)?, standard(weight)?);
    let bias = bias.map(standard).transpose()?;
    let bias = bias.as_ref().map(as_slice).transpose()?;
    let (x, w) = (crate::storage::bits(as_slice(&x)?), as_slice(&weight)?);
    let mut out = alloc_uninit::<H>(shape.iter().product(), "the output")?;
    run(
        &geo,
        bands,
        x,
        w,
        (bias, &epilogue),
        crate::storage::bit_slots(&mut out),
    )?;
    // SAFETY: the implicit forward writes every element of its output.
    let values = unsafe { assume_init(out) };
    Ok(Some(into_array5(shape, values)?))
}

/// The elements of a widened (C-ordered) 1-D array.
fn flat1<'a>(a: &'a CowArray<'_, f32, ndarray::Ix1>) -> Result<&'a [f32]> {
    a.as_slice().ok_or_else(|| {
        crate::Error::Value("internal error: a widened array is not contiguous".into())
    })
}

/// The gradients of a bfloat16 convolution, each the float32 result rounded
/// once, on the native bfloat16 kernels where they apply and this machine and
/// path have them (see [`bf16_native_passes`]): the input gradient of stride-1
/// layers as the adjoint forward (`grad_out` with the flipped filters) on the
/// bfloat16 implicit GEMM, the weight gradient of im2col-planned layers on the
/// bfloat16 pair GEMM. Other passes run the float32 plan on widened arrays, and
/// the bias gradient sums each widened plane in the float32 path's order.
pub fn conv_backward_bf16(
    grad_out: ArrayView5<'_, half::bf16>,
    x: ArrayView5<'_, half::bf16>,
    weight: ArrayView5<'_, half::bf16>,
    params: &ConvParams,
    needs: Needs,
    precision: Option<Precision>,
) -> Result<ConvGrads<half::bf16>> {
    use crate::storage::{bit_slots, bits, Storage};
    type B = half::bf16;
    let geo =
        ConvGeometry::for_conv(shape5(&x), shape5(&weight), params)?.with_precision(precision);
    check_grad_out(shape5(&grad_out), geo.out_shape(), params.rank)?;
    let (grad_out, x, weight) = (standard(grad_out)?, standard(x)?, standard(weight)?);
    let (g16, w16) = (as_slice(&grad_out)?, as_slice(&weight)?);
    let (native_input, native_weight) = native_backward(&geo);
    // Widened copies, made once and only when a pass needs them.
    let wide = |a: &CowArray<'_, B, ndarray::Ix5>| -> Result<Array5<f32>> {
        Ok(B::widen(a.view())?.into_owned())
    };
    let mut wide_g = None;
    let input = if !needs.input {
        None
    } else if let Some((geometry, bands)) = native_input {
        let flipped = weights::flip_weights(&geo, w16)?;
        let mut out = alloc_uninit::<B>(geo.n * geo.c_in * geo.in_vol(), "grad_input")?;
        let plain = (None, &Epilogue::NONE);
        implicit::forward_bf16(
            &geometry,
            bands,
            bits(g16),
            bits(&flipped),
            plain,
            bit_slots(&mut out),
        )?;
        // SAFETY: the implicit forward writes every element of its output.
        Some(into_array5(geo.x_shape(), unsafe { assume_init(out) })?)
    } else {
        let g = wide_g.insert(wide(&grad_out)?);
        let w = wide(&weight)?;
        let values = run_input_grad(&plan::input_grad::<f32>(&geo), &geo, flat(g)?, flat(&w)?)?;
        Some(B::narrow(into_array5(geo.x_shape(), values)?)?)
    };
    let weight = if !needs.weight {
        None
    } else {
        let len = geo.weight_shape().iter().product();
        let values = match native_weight {
            Some((tasks, tile, images)) => zero_filled(len, "grad_weight", |gw| {
                let (g, x) = (bits(g16), bits(as_slice(&x)?));
                im2col::backward_weight_bf16(&geo, &tasks, (tile, images), g, x, gw)
            })?,
            None => {
                let g = match &wide_g {
                    Some(g) => g,
                    None => wide_g.insert(wide(&grad_out)?),
                };
                run_weight_grad(
                    &plan::weight_grad::<f32>(&geo),
                    &geo,
                    flat(g)?,
                    flat(&wide(&x)?)?,
                )?
            }
        };
        Some(B::narrow(into_array5(geo.weight_shape(), values)?)?)
    };
    let bias = if needs.bias {
        let mut grad_b = alloc_zeroed::<f32>(geo.c_out, "grad_bias")?;
        bias::backward_bias_widened(geo.n, geo.c_out, geo.out_vol(), g16, &mut grad_b)?;
        Some(B::narrow(Array1::from_vec(grad_b))?)
    } else {
        None
    };
    Ok(ConvGrads {
        input,
        weight,
        bias,
    })
}

/// The elements of a widened (C-ordered, owned) array.
fn flat(a: &Array5<f32>) -> Result<&[f32]> {
    a.as_slice().ok_or_else(|| {
        crate::Error::Value("internal error: a widened array is not contiguous".into())
    })
}

/// Which backward passes of `geo` run on the native bfloat16 kernels here: the
/// input gradient's adjoint geometry and its bands, and the weight gradient's
/// im2col tasks, tile and images side by side.
#[allow(clippy::type_complexity)]
fn native_backward(
    geo: &ConvGeometry,
) -> (
    Option<(Box<ConvGeometry>, implicit::Bands)>,
    Option<(weight_tasks::WeightTasks, usize, usize)>,
) {
    if !bf16_gemm::available() {
        return (None, None);
    }
    let input = match plan::input_grad::<f32>(geo) {
        InputGrad::Adjoint { geometry, .. } => {
            plan::forward_bf16(&geometry).map(|bands| (geometry, bands))
        }
        _ => None,
    };
    let weight = match plan::weight_grad::<f32>(geo) {
        WeightGrad::Im2colGemm {
            tasks,
            tile,
            images,
        } => Some((tasks, tile, images)),
        _ => None,
    };
    (input, weight)
}

/// Whether a float16 convolution of these shapes runs its forward on the
/// AVX-512 kernel that widens float16 planes in registers ([`conv_forward_f16`]).
pub fn f16_native_forward(
    x: Shape5,
    weight: Shape5,
    params: &ConvParams,
    precision: Option<Precision>,
) -> Result<bool> {
    let geo = ConvGeometry::for_conv(x, weight, params)?.with_precision(precision);
    Ok(bf16_gemm::f16_available() && plan::forward_f16(&geo).is_some())
}

/// The passes of a bfloat16 convolution of these shapes that run on the native
/// bfloat16 kernels on this machine and path: `(forward, input_grad,
/// weight_grad)` (see [`conv_forward_bf16`], [`conv_backward_bf16`]).
pub fn bf16_native_passes(
    x: Shape5,
    weight: Shape5,
    params: &ConvParams,
    precision: Option<Precision>,
) -> Result<(bool, bool, bool)> {
    let geo = ConvGeometry::for_conv(x, weight, params)?.with_precision(precision);
    let (input, weight) = native_backward(&geo);
    let forward = bf16_gemm::available() && plan::forward_bf16(&geo).is_some();
    Ok((forward, input.is_some(), weight.is_some()))
}

/// The transposed convolution with the epilogue of `fused` (see
/// [`conv_forward_fused`]). Its forward pass scatters (or runs the adjoint's
/// forward), so bias and epilogue are applied in one pass after it.
pub fn conv_transpose_forward_fused<T: Element>(
    x: ArrayView5<'_, T>,
    weight: ArrayView5<'_, T>,
    bias: Option<ArrayView1<'_, T>>,
    params: &TransposeParams,
    fused: &Fused<'_, T>,
    out: Option<ArrayViewMut5<'_, T>>,
) -> Result<Option<Array5<T>>> {
    let geo = ConvGeometry::for_transpose(shape5(&x), shape5(&weight), params)?
        .with_precision(fused.precision);
    check_bias(bias.as_ref(), geo.c_in)?;
    let (x, weight) = (standard(x)?, standard(weight)?);
    let bias = bias.map(standard).transpose()?;
    let bias = bias.as_ref().map(as_slice).transpose()?;
    let plan = plan::input_grad::<T>(&geo);
    let (x, w) = (as_slice(&x)?, as_slice(&weight)?);
    let plain =
        matches!(fused.residual, ResidualArg::None) && fused.activation == Activation::Identity;
    if out.is_none() && plain {
        let mut values = run_input_grad(&plan, &geo, x, w)?;
        if let Some(bias) = bias {
            bias::add_bias(geo.in_vol(), bias, &mut values)?;
        }
        return Ok(Some(into_array5(geo.x_shape(), values)?));
    }
    with_output(geo.x_shape(), params.rank, fused, out, |epilogue, dest| {
        let values = run_input_grad(&plan, &geo, x, w)?;
        epilogue::finish_planes(geo.in_vol(), bias, epilogue, &values, dest)
    })
}

/// Run `write(epilogue, dest)` into the caller's `out` or a new buffer of
/// `shape`, with the epilogue of `fused` (its residual checked against `shape`).
fn with_output<T: Element>(
    shape: Shape5,
    rank: usize,
    fused: &Fused<'_, T>,
    out: Option<ArrayViewMut5<'_, T>>,
    write: impl FnOnce(&Epilogue<'_, T>, &mut [MaybeUninit<T>]) -> Result<()>,
) -> Result<Option<Array5<T>>> {
    let residual_array = match &fused.residual {
        ResidualArg::Array(r) => {
            if shape5(r) != shape {
                return value_error!(
                    "residual has shape {} but the output has shape {}",
                    user_shape(shape5(r), rank),
                    user_shape(shape, rank)
                );
            }
            Some(standard(r.view())?)
        }
        _ => None,
    };
    let residual = match (&fused.residual, &residual_array) {
        (ResidualArg::Array(_), Some(r)) => Residual::Array(as_slice(r)?),
        (ResidualArg::Out, _) if out.is_some() => Residual::Out,
        (ResidualArg::Out, _) => {
            return value_error!("residual is the output, but no out array was given")
        }
        _ => Residual::None,
    };
    let epilogue = Epilogue {
        residual,
        activation: fused.activation,
    };
    match out {
        Some(mut out) => {
            let out_shape = shape5(&out.view());
            if out_shape != shape {
                return value_error!(
                    "out has shape {} but the output has shape {}",
                    user_shape(out_shape, rank),
                    user_shape(shape, rank)
                );
            }
            let Some(dest) = out.as_slice_mut() else {
                return value_error!("out must be C-contiguous");
            };
            // SAFETY: `MaybeUninit<T>` has `T`'s layout, and the algorithms write
            // only initialised values into `dest`, so `out` stays initialised.
            let dest = unsafe { &mut *(dest as *mut [T] as *mut [MaybeUninit<T>]) };
            write(&epilogue, dest)?;
            Ok(None)
        }
        None => {
            let len = shape.iter().product();
            let mut dest = alloc_uninit::<T>(len, "the output")?;
            write(&epilogue, &mut dest)?;
            // SAFETY: every forward algorithm writes every element of its output
            // (see `run_forward`), as does the transposed epilogue pass.
            let values = unsafe { assume_init(dest) };
            Ok(Some(into_array5(shape, values)?))
        }
    }
}

/// The gradients of a convolution (`transposed == false`) or of the transposed
/// convolution whose adjoint convolution is `geo`.
fn gradients<T: Element>(
    geo: &ConvGeometry,
    grad_out: ArrayView5<'_, T>,
    x: ArrayView5<'_, T>,
    weight: ArrayView5<'_, T>,
    needs: Needs,
    transposed: bool,
) -> Result<ConvGrads<T>> {
    let (grad_out, x, weight) = (standard(grad_out)?, standard(x)?, standard(weight)?);
    let (grad_out, x, weight) = (as_slice(&grad_out)?, as_slice(&x)?, as_slice(&weight)?);
    // A transposed convolution's input plays the adjoint's output, and vice versa.
    let (x_shape, out_shape) = if transposed {
        (geo.out_shape(), geo.x_shape())
    } else {
        (geo.x_shape(), geo.out_shape())
    };
    let input = if needs.input {
        let grad_x = if transposed {
            forward_new(&plan::forward::<T>(geo), geo, grad_out, weight)?
        } else {
            run_input_grad(&plan::input_grad::<T>(geo), geo, grad_out, weight)?
        };
        Some(into_array5(x_shape, grad_x)?)
    } else {
        None
    };
    let weight = if needs.weight {
        let (adjoint_grad, adjoint_x) = if transposed {
            (x, grad_out)
        } else {
            (grad_out, x)
        };
        let plan = plan::weight_grad::<T>(geo);
        let grad_w = run_weight_grad(&plan, geo, adjoint_grad, adjoint_x)?;
        Some(into_array5(geo.weight_shape(), grad_w)?)
    } else {
        None
    };
    let bias = if needs.bias {
        let positions = out_shape[2] * out_shape[3] * out_shape[4];
        let mut grad_b = alloc_zeroed(out_shape[1], "grad_bias")?;
        bias::backward_bias(out_shape[0], out_shape[1], positions, grad_out, &mut grad_b)?;
        Some(Array1::from_vec(grad_b))
    } else {
        None
    };
    Ok(ConvGrads {
        input,
        weight,
        bias,
    })
}

// ------------------------------------------------------------- executing plans

/// A new zero-filled buffer of `len` elements that `fill` adds into or overwrites.
fn zero_filled<T: Element>(
    len: usize,
    what: &str,
    fill: impl FnOnce(&mut [T]) -> Result<()>,
) -> Result<Vec<T>> {
    let mut out = alloc_zeroed(len, what)?;
    fill(&mut out)?;
    Ok(out)
}

/// `conv(x, w) + bias` of `geo` as `plan` says, in a new buffer.
fn forward_new<T: Element>(plan: &Forward, geo: &ConvGeometry, x: &[T], w: &[T]) -> Result<Vec<T>> {
    let mut out = alloc_uninit::<T>(geo.n * geo.c_out * geo.out_vol(), "the output")?;
    run_forward(plan, geo, x, w, None, &Epilogue::NONE, &mut out)?;
    // SAFETY: `run_forward` writes every element of its output.
    Ok(unsafe { assume_init(out) })
}

/// `epilogue(conv(x, w) + bias)` of `geo` as `plan` says, into `out`: every
/// algorithm writes every element of `out` (none reads it first, except through
/// the epilogue when it is [`Residual::Out`], which only the caller's own,
/// initialised output array can be).
fn run_forward<T: Element>(
    plan: &Forward,
    geo: &ConvGeometry,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    epilogue: &Epilogue<'_, T>,
    out: &mut [MaybeUninit<T>],
) -> Result<()> {
    match *plan {
        Forward::Empty => Ok(()),
        Forward::BiasOnly => {
            let positions = geo.out_vol();
            for_each_chunk_mut(out, positions, out.len(), Vec::new, |saved, plane, dst| {
                // SAFETY: initialised whenever the epilogue reads it (above).
                unsafe { epilogue.save_uninit(dst, saved) };
                let b = bias.map_or(T::zero(), |b| b[plane % geo.c_out]);
                dst.iter_mut().for_each(|d| {
                    d.write(b);
                });
                // SAFETY: every element of `dst` was just written.
                unsafe { epilogue.finish_uninit(plane * positions, dst, saved) };
            })
        }
        Forward::DepthwiseRows => depthwise::forward(geo, x, w, bias, epilogue, out),
        Forward::Direct => direct::forward(geo, x, w, bias, epilogue, out),
        Forward::Winograd(split) => winograd::forward(geo, split, x, w, bias, epilogue, out),
        Forward::ImplicitGemm(bands) => implicit::forward(geo, bands, x, w, (bias, epilogue), out),
        Forward::Im2col(tiles) => im2col::forward(geo, tiles, x, w, bias, epilogue, out),
    }
}

/// `conv_backward_input(grad_out, w)` of `geo` as `plan` says, in a new buffer.
fn run_input_grad<T: Element>(
    plan: &InputGrad,
    geo: &ConvGeometry,
    grad_out: &[T],
    w: &[T],
) -> Result<Vec<T>> {
    let len = geo.n * geo.c_in * geo.in_vol();
    match plan {
        InputGrad::Zero => alloc_zeroed(len, "grad_input"),
        InputGrad::DepthwiseRows => zero_filled(len, "grad_input", |gx| {
            depthwise::backward_input(geo, grad_out, w, gx)
        }),
        InputGrad::Direct => zero_filled(len, "grad_input", |gx| {
            direct::backward_input(geo, grad_out, w, gx)
        }),
        InputGrad::Adjoint { geometry, forward } => {
            let flipped = weights::flip_weights(geo, w)?;
            forward_new(forward, geometry, grad_out, &flipped)
        }
        &InputGrad::SubPixel { channels } => zero_filled(len, "grad_input", |gx| {
            subpixel::backward_input(geo, channels, grad_out, w, gx)
        }),
        &InputGrad::Col2im(tiles) => zero_filled(len, "grad_input", |gx| {
            im2col::backward_input(geo, tiles, grad_out, w, gx)
        }),
    }
}

/// `conv_backward_weight(grad_out, x)` of `geo` as `plan` says, in a new buffer
/// of shape `(C_out, C_in / groups, *kernel)`.
fn run_weight_grad<T: Element>(
    plan: &WeightGrad,
    geo: &ConvGeometry,
    grad_out: &[T],
    x: &[T],
) -> Result<Vec<T>> {
    let len = geo.weight_shape().iter().product();
    match plan {
        WeightGrad::Zero => alloc_zeroed(len, "grad_weight"),
        WeightGrad::DepthwiseRows => zero_filled(len, "grad_weight", |gw| {
            depthwise::backward_weight(geo, grad_out, x, gw)
        }),
        WeightGrad::Direct => zero_filled(len, "grad_weight", |gw| {
            direct::backward_weight(geo, grad_out, x, gw)
        }),
        WeightGrad::PhasePlanes(waves) => zero_filled(len, "grad_weight", |gw| {
            implicit::backward_weight(geo, waves, grad_out, x, gw)
        }),
        WeightGrad::Im2colGemm {
            tasks,
            tile,
            images,
        } => zero_filled(len, "grad_weight", |gw| {
            im2col::backward_weight(geo, tasks, (*tile, *images), grad_out, x, gw)
        }),
    }
}

#[cfg(test)]
mod tests;
