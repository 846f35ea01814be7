//! Bindings of convolution and transposed convolution: arrays in the caller's
//! rank, and one [`ConvSpec`] saying which of the two and with what arguments.

use super::spec::{dims, ConvSpec};
use super::{borrow, borrow_mut, to_numpy, view5, view5_mut, with_float_type};
use crate::conv::{self, ConvGrads, Fused, Needs, ResidualArg};
use crate::geometry::{ConvParams, Dims, TransposeParams, SPATIAL};
use crate::storage::Storage;
use ndarray::{ArrayView1, ArrayView5, Ix1};
use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

type Grads<'py> = (
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
);

fn view1<'a, T: numpy::Element>(
    a: &'a PyReadonlyArrayDyn<'_, T>,
    name: &str,
) -> PyResult<ArrayView1<'a, T>> {
    // Checked before the view is made (rust-numpy panics beyond 32 axes).
    if a.ndim() != 1 {
        return Err(PyValueError::new_err(format!(
            "{name} must be 1-D, got {} dimensions",
            a.ndim()
        )));
    }
    a.as_array().into_dimensionality::<Ix1>().map_err(|_| {
        PyValueError::new_err(format!("{name} must be 1-D, got {} dimensions", a.ndim()))
    })
}

/// The spatial kernel size of a 5-D weight.
fn kernel<T>(weight: &ArrayView5<'_, T>) -> Dims {
    let s = weight.shape();
    [s[2], s[3], s[4]]
}

/// The geometry of a convolution or of a transposed one, resolved before the
/// GIL is released.
enum Params {
    Conv(ConvParams),
    Transposed(TransposeParams),
}

impl Params {
    fn of<T>(spec: &ConvSpec, weight: &ArrayView5<'_, T>) -> PyResult<Params> {
        Ok(if spec.is_transposed() {
            Params::Transposed(spec.transpose_params()?)
        } else {
            Params::Conv(spec.params(kernel(weight))?)
        })
    }
}

/// The output of `conv(x, weight) + bias`, or of the transposed convolution when
/// `spec` is one, with the spec's activation and the `residual` added before it
/// (`residual_is_out`: `out` holds the residual). Into `out` when given
/// (C-contiguous, the output's shape; the result is then `None`).
#[pyfunction]
#[pyo3(signature = (x, weight, bias, spec, residual=None, out=None, residual_is_out=false))]
#[allow(clippy::too_many_arguments)]
fn conv_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    spec: &Bound<'py, ConvSpec>,
    residual: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
    residual_is_out: bool,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let spec = spec.get();
    let rank = spec.rank();
    with_float_type!(x, "x", T => {
        let (x, weight) = (borrow::<T>(x, "x")?, borrow::<T>(weight, "weight")?);
        let bias = bias.map(|b| borrow::<T>(b, "bias")).transpose()?;
        let residual = residual.map(|r| borrow::<T>(r, "residual")).transpose()?;
        let mut out = out.map(|o| borrow_mut::<T>(o, "out")).transpose()?;
        let (x, weight) = (view5(&x, "x", rank)?, view5(&weight, "weight", rank)?);
        let bias = bias.as_ref().map(|b| view1(b, "bias")).transpose()?;
        let residual = residual.as_ref().map(|r| view5(r, "residual", rank)).transpose()?;
        let out = out.as_mut().map(|o| view5_mut(o, "out", rank)).transpose()?;
        let params = Params::of(spec, &weight)?;
        let result = super::interrupt::detach(py, || -> crate::Result<_> {
            // 16-bit arrays are widened to float32 here and the result rounded once
            // (crate::storage), unless the type has native kernels for the layer;
            // float32 and float64 pass through unchanged.
            let bias = bias.map(T::widen).transpose()?;
            let (direct, narrowed) = match out.map(T::direct_out) {
                Some(Ok(direct)) => (Some(direct), None),
                Some(Err(narrowed)) => (None, Some(narrowed)),
                None => (None, None),
            };
            // A narrowed `out` that is also the residual is read as an array.
            let out_residual = match (&narrowed, residual_is_out) {
                (Some(o), true) => Some(T::widen(o.view())?.into_owned()),
                _ => None,
            };
            let residual = residual.map(T::widen).transpose()?;
            let residual = match (&residual, &out_residual, residual_is_out) {
                (Some(r), _, _) => ResidualArg::Array(r.view()),
                (None, Some(r), _) => ResidualArg::Array(r.view()),
                (None, None, true) => ResidualArg::Out,
                (None, None, false) => ResidualArg::None,
            };
            let fused = Fused {
                precision: spec.precision(),
                activation: spec.activation(),
                residual,
            };
            let bias = bias.as_ref().map(|b| b.view());
            let native = match (&params, &narrowed, &direct) {
                (Params::Conv(params), _, None) => {
                    T::native_forward(x.view(), weight.view(), bias, params, &fused)?
                }
                _ => None,
            };
            if let Some(result) = native {
                return Ok(match narrowed {
                    Some(mut out) => {
                        out.assign(&result);
                        None
                    }
                    None => Some(result),
                });
            }
            let (x, weight) = (T::widen(x)?, T::widen(weight)?);
            let result = match &params {
                Params::Transposed(params) => conv::conv_transpose_forward_fused(
                    x.view(), weight.view(), bias, params, &fused, direct,
                )?,
                Params::Conv(params) => {
                    conv::conv_forward_fused(x.view(), weight.view(), bias, params, &fused, direct)?
                }
            };
            match (result, narrowed) {
                (Some(result), Some(out)) => {
                    T::narrow_into(result.view(), out);
                    Ok(None)
                }
                (result, _) => result.map(T::narrow).transpose(),
            }
        })?;
        result.map(|out| to_numpy(py, out, Some(rank))).transpose()
    })
}

/// `(grad_x, grad_weight, grad_bias)` of [`conv_forward`] with `spec`, each `None` where
/// `needs` says `False`.
#[pyfunction]
fn conv_backward<'py>(
    py: Python<'py>,
    grad_out: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    spec: &Bound<'py, ConvSpec>,
    needs: (bool, bool, bool),
) -> PyResult<Grads<'py>> {
    let spec = spec.get();
    let rank = spec.rank();
    let needs = Needs {
        input: needs.0,
        weight: needs.1,
        bias: needs.2,
    };
    with_float_type!(x, "x", T => {
        let grad_out = borrow::<T>(grad_out, "grad_out")?;
        let (x, weight) = (borrow::<T>(x, "x")?, borrow::<T>(weight, "weight")?);
        let grad_out = view5(&grad_out, "grad_out", rank)?;
        let (x, weight) = (view5(&x, "x", rank)?, view5(&weight, "weight", rank)?);
        let params = Params::of(spec, &weight)?;
        let grads = super::interrupt::detach(py, || -> crate::Result<ConvGrads<T>> {
            // Types with native kernels (bfloat16) run their own backward;
            // the others widen, run the compute type and round once.
            if let Params::Conv(p) = &params {
                let native = T::native_backward(grad_out.view(), x.view(), weight.view(), p, needs, spec.precision())?;
                if let Some(grads) = native {
                    return Ok(grads);
                }
            }
            let (grad_out, x, weight) = (T::widen(grad_out)?, T::widen(x)?, T::widen(weight)?);
            let (grad_out, x, weight) = (grad_out.view(), x.view(), weight.view());
            let precision = spec.precision();
            let grads = match &params {
                Params::Transposed(params) => {
                    conv::conv_transpose_backward_with(grad_out, x, weight, params, needs, precision)?
                }
                Params::Conv(params) => {
                    conv::conv_backward_with(grad_out, x, weight, params, needs, precision)?
                }
            };
            Ok(ConvGrads {
                input: grads.input.map(T::narrow).transpose()?,
                weight: grads.weight.map(T::narrow).transpose()?,
                bias: grads.bias.map(T::narrow).transpose()?,
            })
        })?;
        grads_to_py(py, grads, rank)
    })
}

fn grads_to_py<'py, T: numpy::Element>(
    py: Python<'py>,
    grads: ConvGrads<T>,
    rank: usize,
) -> PyResult<Grads<'py>> {
    Ok((
        grads
            .input
            .map(|a| to_numpy(py, a, Some(rank)))
            .transpose()?,
        grads
            .weight
            .map(|a| to_numpy(py, a, Some(rank)))
            .transpose()?,
        grads.bias.map(|a| to_numpy(py, a, None)).transpose()?,
    ))
}

/// The spatial output size for a spatial input size and kernel size.
#[pyfunction]
fn conv_output_shape(
    input: Vec<i64>,
    kernel: Vec<i64>,
    spec: &Bound<'_, ConvSpec>,
) -> PyResult<Vec<usize>> {
    let spec = spec.get();
    let rank = spec.rank();
    let input = dims("input_shape", &input, rank, 0, 1)?;
    let kernel = dims("kernel_size", &kernel, rank, 1, 1)?;
    let output = if spec.is_transposed() {
        spec.transpose_params()?.output_dims(input, kernel)?
    } else {
        spec.params(kernel)?.output_dims(input, kernel)?
    };
    Ok(output[SPATIAL - rank..].to_vec())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(conv_forward, m)?)?;
    m.add_function(wrap_pyfunction!(conv_backward, m)?)?;
    m.add_function(wrap_pyfunction!(conv_output_shape, m)?)?;
    Ok(())
}
