//! Bindings of pooling (5-D arrays; the Python layer adds and removes the unit axes
//! of 1-D and 2-D problems and the batch axis of unbatched input).

use super::{borrow, to_numpy, view5, with_float_type};
use crate::element::Element;
use crate::geometry::{PoolParams, UnpoolParams, SPATIAL};
use crate::pool::{self, AvgOptions, MaxPooled};
use numpy::{PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

type Dims = [usize; SPATIAL];
type Shape = [usize; 5];
type Pooled<'py> = (Bound<'py, PyAny>, Option<Bound<'py, PyAny>>);

/// Borrow `obj` as an int64 array, or a `TypeError` naming it.
fn borrow_indices<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, i64>> {
    obj.extract::<PyReadonlyArrayDyn<'py, i64>>().map_err(|_| {
        let got = obj
            .cast::<PyUntypedArray>()
            .ok()
            .and_then(|a| a.dtype().str().ok().map(|s| s.to_string()))
            .unwrap_or_else(|| "a non-array".to_string());
        PyTypeError::new_err(format!("{name} must be an int64 array, got {got}"))
    })
}

fn pooled_to_py<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    pooled: MaxPooled<T>,
) -> PyResult<Pooled<'py>> {
    Ok((
        to_numpy(py, pooled.values)?,
        pooled.indices.map(|i| to_numpy(py, i)).transpose()?,
    ))
}

fn pool_params(
    rank: usize,
    kernel: Dims,
    stride: Dims,
    padding: Dims,
    dilation: Dims,
    ceil_mode: bool,
) -> PoolParams {
    PoolParams {
        rank,
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
    }
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn max_pool_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kernel: Dims,
    stride: Dims,
    padding: Dims,
    dilation: Dims,
    ceil_mode: bool,
    rank: usize,
    return_indices: bool,
) -> PyResult<Pooled<'py>> {
    let params = pool_params(rank, kernel, stride, padding, dilation, ceil_mode);
    with_float_type!(x, "x", T => {
        let x = borrow::<T>(x, "x")?;
        let x = view5(&x, "x")?;
        let pooled = py.detach(|| pool::max_pool(x, &params, return_indices))?;
        pooled_to_py(py, pooled)
    })
}

#[pyfunction]
fn max_pool_backward<'py>(
    py: Python<'py>,
    grad_out: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    input_shape: Shape,
    rank: usize,
) -> PyResult<Bound<'py, PyAny>> {
    with_float_type!(grad_out, "grad_out", T => {
        let grad_out = borrow::<T>(grad_out, "grad_out")?;
        let indices = borrow_indices(indices, "indices")?;
        let (grad_out, indices) = (view5(&grad_out, "grad_out")?, view5(&indices, "indices")?);
        let grad = py.detach(|| pool::max_pool_backward(grad_out, indices, input_shape, rank))?;
        to_numpy(py, grad)
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn max_unpool<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    kernel: Dims,
    stride: Dims,
    padding: Dims,
    output_size: Option<Dims>,
    rank: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let params = UnpoolParams {
        rank,
        kernel,
        stride,
        padding,
        output_size,
    };
    with_float_type!(x, "x", T => {
        let x = borrow::<T>(x, "x")?;
        let indices = borrow_indices(indices, "indices")?;
        let (x, indices) = (view5(&x, "x")?, view5(&indices, "indices")?);
        let out = py.detach(|| pool::max_unpool(x, indices, &params))?;
        to_numpy(py, out)
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn avg_pool_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kernel: Dims,
    stride: Dims,
    padding: Dims,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<i64>,
    rank: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let params = pool_params(rank, kernel, stride, padding, [1; SPATIAL], ceil_mode);
    let options = AvgOptions {
        count_include_pad,
        divisor_override,
    };
    with_float_type!(x, "x", T => {
        let x = borrow::<T>(x, "x")?;
        let x = view5(&x, "x")?;
        let out = py.detach(|| pool::avg_pool(x, &params, options))?;
        to_numpy(py, out)
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn avg_pool_backward<'py>(
    py: Python<'py>,
    grad_out: &Bound<'py, PyAny>,
    input_shape: Shape,
    kernel: Dims,
    stride: Dims,
    padding: Dims,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<i64>,
    rank: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let params = pool_params(rank, kernel, stride, padding, [1; SPATIAL], ceil_mode);
    let options = AvgOptions {
        count_include_pad,
        divisor_override,
    };
    with_float_type!(grad_out, "grad_out", T => {
        let grad_out = borrow::<T>(grad_out, "grad_out")?;
        let grad_out = view5(&grad_out, "grad_out")?;
        let grad = py.detach(|| pool::avg_pool_backward(grad_out, input_shape, &params, options))?;
        to_numpy(py, grad)
    })
}

#[pyfunction]
fn adaptive_avg_pool_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    output_size: Dims,
    rank: usize,
) -> PyResult<Bound<'py, PyAny>> {
    with_float_type!(x, "x", T => {
        let x = borrow::<T>(x, "x")?;
        let x = view5(&x, "x")?;
        let out = py.detach(|| pool::adaptive_avg_pool(x, output_size, rank))?;
        to_numpy(py, out)
    })
}

#[pyfunction]
fn adaptive_avg_pool_backward<'py>(
    py: Python<'py>,
    grad_out: &Bound<'py, PyAny>,
    input_shape: Shape,
    rank: usize,
) -> PyResult<Bound<'py, PyAny>> {
    with_float_type!(grad_out, "grad_out", T => {
        let grad_out = borrow::<T>(grad_out, "grad_out")?;
        let grad_out = view5(&grad_out, "grad_out")?;
        let grad = py.detach(|| pool::adaptive_avg_pool_backward(grad_out, input_shape, rank))?;
        to_numpy(py, grad)
    })
}

#[pyfunction]
fn adaptive_max_pool_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    output_size: Dims,
    rank: usize,
    return_indices: bool,
) -> PyResult<Pooled<'py>> {
    with_float_type!(x, "x", T => {
        let x = borrow::<T>(x, "x")?;
        let x = view5(&x, "x")?;
        let pooled = py.detach(|| pool::adaptive_max_pool(x, output_size, rank, return_indices))?;
        pooled_to_py(py, pooled)
    })
}

#[pyfunction]
fn pool_output_shape(
    input: Dims,
    kernel: Dims,
    stride: Dims,
    padding: Dims,
    dilation: Dims,
    ceil_mode: bool,
    rank: usize,
) -> PyResult<Dims> {
    let params = pool_params(rank, kernel, stride, padding, dilation, ceil_mode);
    Ok(params.output_dims(input)?)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(max_pool_forward, m)?)?;
    m.add_function(wrap_pyfunction!(max_pool_backward, m)?)?;
    m.add_function(wrap_pyfunction!(max_unpool, m)?)?;
    m.add_function(wrap_pyfunction!(avg_pool_forward, m)?)?;
    m.add_function(wrap_pyfunction!(avg_pool_backward, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_avg_pool_forward, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_avg_pool_backward, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_max_pool_forward, m)?)?;
    m.add_function(wrap_pyfunction!(pool_output_shape, m)?)?;
    Ok(())
}
