//! Bindings of batch normalisation and ReLU: `x` of 2 to 5 dimensions
//! `(N, C, *spatial)` in any layout, per-channel vectors of shape `(C,)`, one
//! dtype for every array of a call. Batch normalisation takes float32 or float64
//! (Python computes 16-bit arrays in float32); ReLU takes every float type.

use super::{borrow, borrow_mut, to_numpy, with_float_type, DType};
use crate::norm::{self, Affine, Running, Stats};
use crate::storage::Storage;
use ndarray::{ArrayView1, ArrayViewD, ArrayViewMut1, Ix1};
use numpy::{PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

type Array<'py> = Bound<'py, PyAny>;

/// Run `$body` with `$t` bound to `f32` or `f64`, the dtype of `$x`.
macro_rules! with_wide_type {
    ($x:expr, $t:ident => $body:expr) => {
        match DType::of($x, "x")? {
            DType::F32 => {
                type $t = f32;
                $body
            }
            DType::F64 => {
                type $t = f64;
                $body
            }
            other => Err(PyTypeError::new_err(format!(
                "x has dtype {}: batch normalisation computes float16 and bfloat16 in float32, convert first",
                other.name()
            ))),
        }
    };
}

/// `a` as `(N, C, *spatial)` of 2 to 5 dimensions (checked before the view is
/// made: rust-numpy panics on more than 32).
fn batch_view<'a, T: numpy::Element>(
    a: &'a PyReadonlyArrayDyn<'_, T>,
    name: &str,
) -> PyResult<ArrayViewD<'a, T>> {
    if !(2..=5).contains(&a.ndim()) {
        return Err(PyValueError::new_err(format!(
            "{name} must have 2 to 5 dimensions (N, C, *spatial), got {}",
            a.ndim()
        )));
    }
    Ok(a.as_array())
}

fn vector_error(name: &str, ndim: usize) -> PyErr {
    PyValueError::new_err(format!(
        "{name} must be 1-D (one value per channel), got {ndim} dimensions"
    ))
}

/// A per-channel vector.
fn vector<'a, T: numpy::Element>(
    a: &'a PyReadonlyArrayDyn<'_, T>,
    name: &str,
) -> PyResult<ArrayView1<'a, T>> {
    if a.ndim() != 1 {
        return Err(vector_error(name, a.ndim()));
    }
    a.as_array()
        .into_dimensionality::<Ix1>()
        .map_err(|e| PyValueError::new_err(format!("internal error: {e}")))
}

/// A writeable per-channel vector.
fn vector_mut<'a, T: numpy::Element>(
    a: &'a mut PyReadwriteArrayDyn<'_, T>,
    name: &str,
) -> PyResult<ArrayViewMut1<'a, T>> {
    let ndim = a.ndim();
    if ndim != 1 {
        return Err(vector_error(name, ndim));
    }
    a.as_array_mut()
        .into_dimensionality::<Ix1>()
        .map_err(|e| PyValueError::new_err(format!("internal error: {e}")))
}

/// Borrow an optional array argument.
fn optional<'py, T: Storage + numpy::Element>(
    a: Option<&Array<'py>>,
    name: &str,
) -> PyResult<Option<PyReadonlyArrayDyn<'py, T>>> {
    a.map(|a| borrow::<T>(a, name)).transpose()
}

/// Batch normalisation; returns the output and the per-channel `mean` and
/// `invstd` it normalised by (the batch's when `training`, else those of the
/// running statistics, which are then required). The running statistics are
/// updated in place when `training` and given.
#[pyfunction]
#[pyo3(signature = (x, running_mean, running_var, weight, bias, training, momentum, eps, relu))]
#[allow(clippy::too_many_arguments)]
fn batch_norm<'py>(
    py: Python<'py>,
    x: &Array<'py>,
    running_mean: Option<&Array<'py>>,
    running_var: Option<&Array<'py>>,
    weight: Option<&Array<'py>>,
    bias: Option<&Array<'py>>,
    training: bool,
    momentum: f64,
    eps: f64,
    relu: bool,
) -> PyResult<(Array<'py>, Array<'py>, Array<'py>)> {
    with_wide_type!(x, T => {
        let x = borrow::<T>(x, "x")?;
        let (weight, bias) = (optional::<T>(weight, "weight")?, optional::<T>(bias, "bias")?);
        let affine = Affine {
            weight: weight.as_ref().map(|w| vector(w, "weight")).transpose()?,
            bias: bias.as_ref().map(|b| vector(b, "bias")).transpose()?,
        };
        let x = batch_view(&x, "x")?;
        let normalized = if training {
            let mut mean = running_mean.map(|a| borrow_mut::<T>(a, "running_mean")).transpose()?;
            let mut var = running_var.map(|a| borrow_mut::<T>(a, "running_var")).transpose()?;
            let running = match (mean.as_mut(), var.as_mut()) {
                (Some(mean), Some(var)) => Some(Running {
                    mean: vector_mut(mean, "running_mean")?,
                    var: vector_mut(var, "running_var")?,
                    momentum,
                }),
                (None, None) => None,
                _ => return Err(PyValueError::new_err(
                    "running_mean and running_var must both be arrays or both be None",
                )),
            };
            super::interrupt::detach(py, || norm::batch_norm(x, Stats::Batch(running), affine, eps, relu))?
        } else {
            let (Some(mean), Some(var)) = (running_mean, running_var) else {
                return Err(PyValueError::new_err(
                    "running_mean and running_var are required when training is False",
                ));
            };
            let (mean, var) = (borrow::<T>(mean, "running_mean")?, borrow::<T>(var, "running_var")?);
            let stats = Stats::Given { mean: vector(&mean, "running_mean")?, var: vector(&var, "running_var")? };
            super::interrupt::detach(py, || norm::batch_norm(x, stats, affine, eps, relu))?
        };
        Ok((
            to_numpy(py, normalized.output, None)?,
            to_numpy(py, normalized.mean, None)?,
            to_numpy(py, normalized.invstd, None)?,
        ))
    })
}

/// The gradients of batch normalisation: `(grad_input, grad_weight, grad_bias)`.
#[pyfunction]
#[pyo3(signature = (grad_out, x, weight, mean, invstd, training, relu_output))]
#[allow(clippy::too_many_arguments)]
fn batch_norm_backward<'py>(
    py: Python<'py>,
    grad_out: &Array<'py>,
    x: &Array<'py>,
    weight: Option<&Array<'py>>,
    mean: &Array<'py>,
    invstd: &Array<'py>,
    training: bool,
    relu_output: Option<&Array<'py>>,
) -> PyResult<(Array<'py>, Array<'py>, Array<'py>)> {
    with_wide_type!(x, T => {
        let (x, grad_out) = (borrow::<T>(x, "x")?, borrow::<T>(grad_out, "grad_out")?);
        let (mean, invstd) = (borrow::<T>(mean, "mean")?, borrow::<T>(invstd, "invstd")?);
        let weight = optional::<T>(weight, "weight")?;
        let relu_output = optional::<T>(relu_output, "relu_output")?;
        let (x, grad_out) = (batch_view(&x, "x")?, batch_view(&grad_out, "grad_out")?);
        let (mean, invstd) = (vector(&mean, "mean")?, vector(&invstd, "invstd")?);
        let weight = weight.as_ref().map(|w| vector(w, "weight")).transpose()?;
        let relu_output = relu_output.as_ref().map(|y| batch_view(y, "relu_output")).transpose()?;
        let grads = super::interrupt::detach(py, || {
            norm::batch_norm_backward(grad_out, x, weight, mean, invstd, training, relu_output)
        })?;
        Ok((
            to_numpy(py, grads.input, None)?,
            to_numpy(py, grads.weight, None)?,
            to_numpy(py, grads.bias, None)?,
        ))
    })
}

/// An array argument of an element-wise op as a view (at most 32 dimensions,
/// checked before the view is made: rust-numpy panics beyond).
fn any_view<'a, T: numpy::Element>(
    a: &'a PyReadonlyArrayDyn<'_, T>,
    name: &str,
) -> PyResult<ArrayViewD<'a, T>> {
    if a.ndim() > 32 {
        return Err(PyValueError::new_err(format!(
            "{name} has {} dimensions, more than the 32 supported",
            a.ndim()
        )));
    }
    Ok(a.as_array())
}

/// `max(x, 0)` as a new array (16-bit arrays computed in float32: exact).
#[pyfunction]
fn relu<'py>(py: Python<'py>, x: &Array<'py>) -> PyResult<Array<'py>> {
    with_float_type!(x, "x", T => {
        let x = borrow::<T>(x, "x")?;
        let x = any_view(&x, "x")?;
        let out = super::interrupt::detach(py, || T::narrow(norm::relu(T::widen(x)?.view())?))?;
        to_numpy(py, out, None)
    })
}

/// `max(out, 0)` in place (float32 or float64, any layout).
#[pyfunction]
fn relu_inplace(py: Python<'_>, out: &Array<'_>) -> PyResult<()> {
    with_wide_type!(out, T => {
        let mut out = borrow_mut::<T>(out, "out")?;
        if out.ndim() > 32 {
            return Err(PyValueError::new_err("out has more than the 32 supported dimensions"));
        }
        let view = out.as_array_mut();
        super::interrupt::detach(py, || norm::relu_inplace(view))
    })
}

/// The gradient of ReLU: `grad_out` where `output` is positive, else 0.
#[pyfunction]
fn relu_backward<'py>(
    py: Python<'py>,
    grad_out: &Array<'py>,
    output: &Array<'py>,
) -> PyResult<Array<'py>> {
    with_float_type!(grad_out, "grad_out", T => {
        let (grad_out, output) = (borrow::<T>(grad_out, "grad_out")?, borrow::<T>(output, "output")?);
        let (grad_out, output) = (any_view(&grad_out, "grad_out")?, any_view(&output, "output")?);
        let grad = super::interrupt::detach(py, || {
            T::narrow(norm::relu_backward(T::widen(grad_out)?.view(), T::widen(output)?.view())?)
        })?;
        to_numpy(py, grad, None)
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(batch_norm, m)?)?;
    m.add_function(wrap_pyfunction!(batch_norm_backward, m)?)?;
    m.add_function(wrap_pyfunction!(relu, m)?)?;
    m.add_function(wrap_pyfunction!(relu_inplace, m)?)?;
    m.add_function(wrap_pyfunction!(relu_backward, m)?)?;
    Ok(())
}
