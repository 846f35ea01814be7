//! Convolution and transposed convolution, forward and backward, on 5-D arrays
//! `(N, C, D, H, W)` (1-D and 2-D problems have unit leading spatial axes).

mod depthwise;
mod direct;
mod im2col;
mod implicit;
mod passes;
mod shape;
mod subpixel;
mod winograd;

use crate::element::Element;
use crate::error::{alloc_zeroed, value_error, Error, Result};
use crate::geometry::{fmt_shape, ConvParams, TransposeParams};
use crate::layout::{as_slice, standard};
use ndarray::{Array1, Array5, ArrayView1, ArrayView5};
use shape::ConvGeometry;

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

fn shape5<T>(a: &ArrayView5<'_, T>) -> [usize; 5] {
    let s = a.shape();
    [s[0], s[1], s[2], s[3], s[4]]
}

fn new_array5<T: Element>(shape: [usize; 5], what: &str) -> Result<Vec<T>> {
    alloc_zeroed(shape.iter().product(), what)
}

fn into_array5<T>(shape: [usize; 5], data: Vec<T>) -> Result<Array5<T>> {
    Array5::from_shape_vec(shape, data).map_err(|e| Error::Value(format!("internal error: {e}")))
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

/// A 5-D shape in the caller's rank: `(N, C, *spatial[rank])`.
fn user_shape(shape: [usize; 5], rank: usize) -> String {
    let spatial = &shape[5 - rank.clamp(1, 3)..];
    fmt_shape(&[&shape[..2], spatial].concat())
}

fn check_grad_out(grad_out: [usize; 5], expected: [usize; 5], rank: usize) -> Result<()> {
    if grad_out != expected {
        return value_error!(
            "grad_out has shape {} but the forward output has shape {}",
            user_shape(grad_out, rank),
            user_shape(expected, rank)
        );
    }
    Ok(())
}

fn add_bias<T: Element>(
    out: &mut [T],
    bias: Option<ArrayView1<'_, T>>,
    positions: usize,
) -> Result<()> {
    if let Some(bias) = bias {
        let bias = standard(bias)?;
        passes::add_bias(positions, as_slice(&bias)?, out)?;
    }
    Ok(())
}

fn bias_grad<T: Element>(geo_out: [usize; 5], grad_out: &[T]) -> Result<Array1<T>> {
    let positions = geo_out[2] * geo_out[3] * geo_out[4];
    let mut grad_b = alloc_zeroed(geo_out[1], "grad_bias")?;
    passes::backward_bias(geo_out[0], geo_out[1], positions, grad_out, &mut grad_b)?;
    Ok(Array1::from_vec(grad_b))
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
    let geo = ConvGeometry::for_conv(shape5(&x), shape5(&weight), params)?;
    check_bias(bias.as_ref(), geo.c_out)?;
    let (x, weight) = (standard(x)?, standard(weight)?);
    let bias = bias.map(standard).transpose()?;
    let bias = bias.as_ref().map(as_slice).transpose()?;
    let out = passes::forward_new(&geo, as_slice(&x)?, as_slice(&weight)?, bias)?;
    into_array5(geo.out_shape(), out)
}

/// Gradients of [`conv_forward`] given the gradient of its output.
pub fn conv_backward<T: Element>(
    grad_out: ArrayView5<'_, T>,
    x: ArrayView5<'_, T>,
    weight: ArrayView5<'_, T>,
    params: &ConvParams,
    needs: Needs,
) -> Result<ConvGrads<T>> {
    let geo = ConvGeometry::for_conv(shape5(&x), shape5(&weight), params)?;
    check_grad_out(shape5(&grad_out), geo.out_shape(), params.rank)?;
    gradients(&geo, grad_out, x, weight, needs, false)
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
            passes::forward_new(geo, grad_out, weight, None)?
        } else {
            passes::backward_input_new(geo, grad_out, weight)?
        };
        Some(into_array5(x_shape, grad_x)?)
    } else {
        None
    };
    let weight = if needs.weight {
        let mut grad_w = new_array5(geo.weight_shape(), "grad_weight")?;
        let (adjoint_grad, adjoint_x) = if transposed {
            (x, grad_out)
        } else {
            (grad_out, x)
        };
        passes::backward_weight(geo, adjoint_grad, adjoint_x, &mut grad_w)?;
        Some(into_array5(geo.weight_shape(), grad_w)?)
    } else {
        None
    };
    let bias = if needs.bias {
        Some(bias_grad(out_shape, grad_out)?)
    } else {
        None
    };
    Ok(ConvGrads {
        input,
        weight,
        bias,
    })
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
    let geo = ConvGeometry::for_transpose(shape5(&x), shape5(&weight), params)?;
    check_bias(bias.as_ref(), geo.c_in)?;
    let (x, weight) = (standard(x)?, standard(weight)?);
    let mut out = passes::backward_input_new(&geo, as_slice(&x)?, as_slice(&weight)?)?;
    add_bias(&mut out, bias, geo.in_vol())?;
    into_array5(geo.x_shape(), out)
}

/// Gradients of [`conv_transpose_forward`] given the gradient of its output.
pub fn conv_transpose_backward<T: Element>(
    grad_out: ArrayView5<'_, T>,
    x: ArrayView5<'_, T>,
    weight: ArrayView5<'_, T>,
    params: &TransposeParams,
    needs: Needs,
) -> Result<ConvGrads<T>> {
    // `geo` is the adjoint convolution: its input is our output, its output our input.
    let geo = ConvGeometry::for_transpose(shape5(&x), shape5(&weight), params)?;
    check_grad_out(shape5(&grad_out), geo.x_shape(), params.rank)?;
    gradients(&geo, grad_out, x, weight, needs, true)
}

#[cfg(test)]
mod tests;
