//! Bindings of pooling: arrays in the caller's rank, and one [`PoolSpec`] for
//! the window, the averaging options and the adaptive or unpooled size. A
//! backward call that only scatters takes the forward input's shape instead.

use super::spec::{dims, PoolSpec};
use super::{
    batched_shape, borrow, borrow_indices, borrow_max, to_numpy, view5, with_float_type,
    with_max_type,
};
use crate::geometry::SPATIAL;
use crate::pool::{self, MaxPooled};
use crate::storage::Storage;
use pyo3::prelude::*;

type Pooled<'py> = (Bound<'py, PyAny>, Option<Bound<'py, PyAny>>);

fn pooled_to_py<'py, T: numpy::Element>(
    py: Python<'py>,
    pooled: MaxPooled<T>,
    rank: usize,
) -> PyResult<Pooled<'py>> {
    Ok((
        to_numpy(py, pooled.values, Some(rank))?,
        pooled
            .indices
            .map(|i| to_numpy(py, i, Some(rank)))
            .transpose()?,
    ))
}

/// Max pooling, and the flat per-plane index of every maximum if asked.
#[pyfunction]
fn max_pool<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    spec: &Bound<'py, PoolSpec>,
    return_indices: bool,
) -> PyResult<Pooled<'py>> {
    let spec = spec.get();
    let (rank, params) = (spec.rank(), spec.window()?);
    with_max_type!(x, "x", T => {
        let x = borrow_max::<T>(x, "x")?;
        let x = view5(&x, "x", rank)?;
        let pooled = super::interrupt::detach(py, || pool::max_pool(x, params, return_indices))?;
        pooled_to_py(py, pooled, rank)
    })
}

/// Gradient of max pooling (strided, adaptive or global): `grad_out` scattered
/// into zeros of `input_shape` at `indices`.
#[pyfunction]
fn max_pool_backward<'py>(
    py: Python<'py>,
    grad_out: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    input_shape: Vec<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let (input_shape, rank) = batched_shape(&input_shape, "input_shape")?;
    with_float_type!(grad_out, "grad_out", T => {
        let grad_out = borrow::<T>(grad_out, "grad_out")?;
        let indices = borrow_indices(indices, "indices")?;
        let (grad_out, indices) = (view5(&grad_out, "grad_out", rank)?, view5(&indices, "indices", rank)?);
        let grad = super::interrupt::detach(py, || T::narrow(pool::max_pool_backward(T::widen(grad_out)?.view(), indices, input_shape, rank)?))?;
        to_numpy(py, grad, Some(rank))
    })
}

/// Max unpooling: zeros of the output size with each value of `x` at its index
/// (values are moved, not computed: any float or integer type, as it is).
#[pyfunction]
fn max_unpool<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    spec: &Bound<'py, PoolSpec>,
) -> PyResult<Bound<'py, PyAny>> {
    let spec = spec.get();
    let (rank, params) = (spec.rank(), spec.unpool()?);
    with_max_type!(x, "x", T => {
        let x = borrow_max::<T>(x, "x")?;
        let indices = borrow_indices(indices, "indices")?;
        let (x, indices) = (view5(&x, "x", rank)?, view5(&indices, "indices", rank)?);
        let out = super::interrupt::detach(py, || pool::max_unpool(x, indices, &params))?;
        to_numpy(py, out, Some(rank))
    })
}

/// Gradient of max unpooling: `grad_out` read at `indices` (the shape of `x`);
/// a gather, so any float or integer type, as it is.
#[pyfunction]
fn max_unpool_backward<'py>(
    py: Python<'py>,
    grad_out: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    rank: usize,
) -> PyResult<Bound<'py, PyAny>> {
    with_max_type!(grad_out, "grad_out", T => {
        let grad_out = borrow_max::<T>(grad_out, "grad_out")?;
        let indices = borrow_indices(indices, "indices")?;
        let (grad_out, indices) = (view5(&grad_out, "grad_out", rank)?, view5(&indices, "indices", rank)?);
        let grad = super::interrupt::detach(py, || pool::max_unpool_backward(grad_out, indices, rank))?;
        to_numpy(py, grad, Some(rank))
    })
}

/// Average pooling.
#[pyfunction]
fn avg_pool<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    spec: &Bound<'py, PoolSpec>,
) -> PyResult<Bound<'py, PyAny>> {
    let spec = spec.get();
    let (rank, params, options) = (spec.rank(), spec.window()?, spec.avg());
    with_float_type!(x, "x", T => {
        let x = borrow::<T>(x, "x")?;
        let x = view5(&x, "x", rank)?;
        let out = super::interrupt::detach(py, || pool::avg_pool(x, params, options))?;
        to_numpy(py, out, Some(rank))
    })
}

/// Gradient of average pooling with respect to its input of shape `input_shape`.
#[pyfunction]
fn avg_pool_backward<'py>(
    py: Python<'py>,
    grad_out: &Bound<'py, PyAny>,
    input_shape: Vec<i64>,
    spec: &Bound<'py, PoolSpec>,
) -> PyResult<Bound<'py, PyAny>> {
    let spec = spec.get();
    let (input_shape, rank) = batched_shape(&input_shape, "input_shape")?;
    let (params, options) = (spec.window()?, spec.avg());
    with_float_type!(grad_out, "grad_out", T => {
        let grad_out = borrow::<T>(grad_out, "grad_out")?;
        let grad_out = view5(&grad_out, "grad_out", rank)?;
        let grad = super::interrupt::detach(py, || T::narrow(pool::avg_pool_backward(T::widen(grad_out)?.view(), input_shape, params, options)?))?;
        to_numpy(py, grad, Some(rank))
    })
}

/// Lp pooling with norm `norm_type` (finite, nonzero).
#[pyfunction]
fn lp_pool<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    spec: &Bound<'py, PoolSpec>,
    norm_type: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let spec = spec.get();
    let (rank, params) = (spec.rank(), spec.window()?);
    with_float_type!(x, "x", T => {
        let x = borrow::<T>(x, "x")?;
        let x = view5(&x, "x", rank)?;
        let out = super::interrupt::detach(py, || pool::lp_pool(x, params, norm_type))?;
        to_numpy(py, out, Some(rank))
    })
}

/// Gradient of Lp pooling with respect to its input `x`.
#[pyfunction]
fn lp_pool_backward<'py>(
    py: Python<'py>,
    grad_out: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    spec: &Bound<'py, PoolSpec>,
    norm_type: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let spec = spec.get();
    let (rank, params) = (spec.rank(), spec.window()?);
    with_float_type!(grad_out, "grad_out", T => {
        let grad_out = borrow::<T>(grad_out, "grad_out")?;
        let x = borrow::<T>(x, "x")?;
        let (grad_out, x) = (view5(&grad_out, "grad_out", rank)?, view5(&x, "x", rank)?);
        let grad = super::interrupt::detach(py, || T::narrow(pool::lp_pool_backward(T::widen(grad_out)?.view(), T::widen(x)?.view(), params, norm_type)?))?;
        to_numpy(py, grad, Some(rank))
    })
}

/// Adaptive average pooling to `spec`'s output size.
#[pyfunction]
fn adaptive_avg_pool<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    spec: &Bound<'py, PoolSpec>,
) -> PyResult<Bound<'py, PyAny>> {
    let spec = spec.get();
    let (rank, size) = (spec.rank(), spec.output_size()?);
    with_float_type!(x, "x", T => {
        let x = borrow::<T>(x, "x")?;
        let x = view5(&x, "x", rank)?;
        let out = super::interrupt::detach(py, || pool::adaptive_avg_pool(x, size, rank))?;
        to_numpy(py, out, Some(rank))
    })
}

/// Gradient of adaptive average pooling (the output size is `grad_out`'s).
#[pyfunction]
fn adaptive_avg_pool_backward<'py>(
    py: Python<'py>,
    grad_out: &Bound<'py, PyAny>,
    input_shape: Vec<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let (input_shape, rank) = batched_shape(&input_shape, "input_shape")?;
    with_float_type!(grad_out, "grad_out", T => {
        let grad_out = borrow::<T>(grad_out, "grad_out")?;
        let grad_out = view5(&grad_out, "grad_out", rank)?;
        let grad = super::interrupt::detach(py, || T::narrow(pool::adaptive_avg_pool_backward(T::widen(grad_out)?.view(), input_shape, rank)?))?;
        to_numpy(py, grad, Some(rank))
    })
}

/// Adaptive max pooling to `spec`'s output size, with indices if asked.
#[pyfunction]
fn adaptive_max_pool<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    spec: &Bound<'py, PoolSpec>,
    return_indices: bool,
) -> PyResult<Pooled<'py>> {
    let spec = spec.get();
    let (rank, size) = (spec.rank(), spec.output_size()?);
    with_max_type!(x, "x", T => {
        let x = borrow_max::<T>(x, "x")?;
        let x = view5(&x, "x", rank)?;
        let pooled = super::interrupt::detach(py, || pool::adaptive_max_pool(x, size, rank, return_indices))?;
        pooled_to_py(py, pooled, rank)
    })
}

/// Fractional max pooling: windows of `kernel` cells (in the caller's rank) at the
/// per-plane `starts` (`(N * C, sum(output))` int64, axis by axis), with indices
/// if asked.
#[pyfunction]
fn fractional_max_pool<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    starts: &Bound<'py, PyAny>,
    output: Vec<i64>,
    kernel: Vec<i64>,
    return_indices: bool,
) -> PyResult<Pooled<'py>> {
    let rank = kernel.len();
    let kernel = dims("kernel_size", &kernel, rank, 0, 1)?;
    let output = dims("output_size", &output, rank, 0, 1)?;
    // The window starts: a table, or PyTorch's samples (float32 / float64, one
    // column per core axis) to compute it from.
    let table = |input: crate::geometry::Dims| -> PyResult<ndarray::Array2<i64>> {
        if let Some(table) = starts_from_samples::<f64>(starts, input, output, kernel) {
            return table;
        }
        if let Some(table) = starts_from_samples::<f32>(starts, input, output, kernel) {
            return table;
        }
        Ok(borrow_indices(starts, "starts")?
            .as_array()
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|_| {
                pyo3::exceptions::PyValueError::new_err("starts must be a 2-D int64 array")
            })?
            .to_owned())
    };
    with_max_type!(x, "x", T => {
        let x = borrow_max::<T>(x, "x")?;
        let x = view5(&x, "x", rank)?;
        let starts = table(crate::arrays::spatial(crate::arrays::shape5(&x)))?;
        let pooled = super::interrupt::detach(py, || pool::fractional_max_pool(x, starts.view(), output, kernel, rank, return_indices))?;
        pooled_to_py(py, pooled, rank)
    })
}

/// The window-start table of fractional max pooling from `samples` if they are
/// a 2-D array of `U` (PyTorch's samples, in the input's float type), else
/// `None`.
fn starts_from_samples<'py, U: crate::element::Element + numpy::Element>(
    samples: &Bound<'py, PyAny>,
    input: crate::geometry::Dims,
    output: crate::geometry::Dims,
    kernel: crate::geometry::Dims,
) -> Option<PyResult<ndarray::Array2<i64>>> {
    let samples = samples.extract::<numpy::PyReadonlyArray2<'py, U>>().ok()?;
    Some(pool::window_starts(samples.as_array(), input, output, kernel).map_err(Into::into))
}

/// The spatial output size of max or average pooling for a spatial input size.
#[pyfunction]
fn pool_output_shape(input: Vec<i64>, spec: &Bound<'_, PoolSpec>) -> PyResult<Vec<usize>> {
    let spec = spec.get();
    let rank = spec.rank();
    let input = dims("input_shape", &input, rank, 0, 1)?;
    let output = spec.window()?.output_dims(input)?;
    Ok(output[SPATIAL - rank..].to_vec())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(max_pool, m)?)?;
    m.add_function(wrap_pyfunction!(max_pool_backward, m)?)?;
    m.add_function(wrap_pyfunction!(max_unpool, m)?)?;
    m.add_function(wrap_pyfunction!(max_unpool_backward, m)?)?;
    m.add_function(wrap_pyfunction!(avg_pool, m)?)?;
    m.add_function(wrap_pyfunction!(avg_pool_backward, m)?)?;
    m.add_function(wrap_pyfunction!(lp_pool, m)?)?;
    m.add_function(wrap_pyfunction!(lp_pool_backward, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_avg_pool, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_avg_pool_backward, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_max_pool, m)?)?;
    m.add_function(wrap_pyfunction!(fractional_max_pool, m)?)?;
    m.add_function(wrap_pyfunction!(pool_output_shape, m)?)?;
    Ok(())
}
