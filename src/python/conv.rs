//! Bindings of convolution and transposed convolution (5-D arrays; the Python layer
//! adds and removes the unit axes of 1-D and 2-D problems).

use super::{borrow, to_numpy, view5, with_float_type};
use crate::conv::{self, ConvGrads, Needs};
use crate::element::Element;
use crate::geometry::{ConvParams, PaddingMode, TransposeParams, SPATIAL};
use ndarray::{ArrayView1, Ix1};
use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

type Dims = [usize; SPATIAL];
type Grads<'py> = (
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
);

fn view1<'a, T: Element + numpy::Element>(
    a: &'a PyReadonlyArrayDyn<'_, T>,
    name: &str,
) -> PyResult<ArrayView1<'a, T>> {
    a.as_array().into_dimensionality::<Ix1>().map_err(|_| {
        PyValueError::new_err(format!("{name} must be 1-D, got {} dimensions", a.ndim()))
    })
}

fn grads_to_py<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    grads: ConvGrads<T>,
) -> PyResult<Grads<'py>> {
    Ok((
        grads.input.map(|a| to_numpy(py, a)).transpose()?,
        grads.weight.map(|a| to_numpy(py, a)).transpose()?,
        grads.bias.map(|a| to_numpy(py, a)).transpose()?,
    ))
}

fn needs((input, weight, bias): (bool, bool, bool)) -> Needs {
    Needs {
        input,
        weight,
        bias,
    }
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn conv_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    stride: Dims,
    dilation: Dims,
    pad_lo: Dims,
    pad_hi: Dims,
    groups: usize,
    padding_mode: &str,
    rank: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let padding_mode = PaddingMode::parse(padding_mode)?;
    let params = ConvParams {
        rank,
        stride,
        dilation,
        pad_lo,
        pad_hi,
        groups,
        padding_mode,
    };
    with_float_type!(x, "x", T => {
        let (x, weight) = (borrow::<T>(x, "x")?, borrow::<T>(weight, "weight")?);
        let bias = bias.map(|b| borrow::<T>(b, "bias")).transpose()?;
        let (x, weight) = (view5(&x, "x")?, view5(&weight, "weight")?);
        let bias = bias.as_ref().map(|b| view1(b, "bias")).transpose()?;
        let out = py.detach(|| conv::conv_forward(x, weight, bias, &params))?;
        to_numpy(py, out)
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn conv_backward<'py>(
    py: Python<'py>,
    grad_out: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    stride: Dims,
    dilation: Dims,
    pad_lo: Dims,
    pad_hi: Dims,
    groups: usize,
    padding_mode: &str,
    rank: usize,
    needed: (bool, bool, bool),
) -> PyResult<Grads<'py>> {
    let padding_mode = PaddingMode::parse(padding_mode)?;
    let params = ConvParams {
        rank,
        stride,
        dilation,
        pad_lo,
        pad_hi,
        groups,
        padding_mode,
    };
    with_float_type!(x, "x", T => {
        let grad_out = borrow::<T>(grad_out, "grad_out")?;
        let (x, weight) = (borrow::<T>(x, "x")?, borrow::<T>(weight, "weight")?);
        let (grad_out, x, weight) = (view5(&grad_out, "grad_out")?, view5(&x, "x")?, view5(&weight, "weight")?);
        let grads = py.detach(|| conv::conv_backward(grad_out, x, weight, &params, needs(needed)))?;
        grads_to_py(py, grads)
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn conv_transpose_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    stride: Dims,
    dilation: Dims,
    padding: Dims,
    output_padding: Dims,
    groups: usize,
    rank: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let params = TransposeParams {
        rank,
        stride,
        dilation,
        padding,
        output_padding,
        groups,
    };
    with_float_type!(x, "x", T => {
        let (x, weight) = (borrow::<T>(x, "x")?, borrow::<T>(weight, "weight")?);
        let bias = bias.map(|b| borrow::<T>(b, "bias")).transpose()?;
        let (x, weight) = (view5(&x, "x")?, view5(&weight, "weight")?);
        let bias = bias.as_ref().map(|b| view1(b, "bias")).transpose()?;
        let out = py.detach(|| conv::conv_transpose_forward(x, weight, bias, &params))?;
        to_numpy(py, out)
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn conv_transpose_backward<'py>(
    py: Python<'py>,
    grad_out: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    stride: Dims,
    dilation: Dims,
    padding: Dims,
    output_padding: Dims,
    groups: usize,
    rank: usize,
    needed: (bool, bool, bool),
) -> PyResult<Grads<'py>> {
    let params = TransposeParams {
        rank,
        stride,
        dilation,
        padding,
        output_padding,
        groups,
    };
    with_float_type!(x, "x", T => {
        let grad_out = borrow::<T>(grad_out, "grad_out")?;
        let (x, weight) = (borrow::<T>(x, "x")?, borrow::<T>(weight, "weight")?);
        let (grad_out, x, weight) = (view5(&grad_out, "grad_out")?, view5(&x, "x")?, view5(&weight, "weight")?);
        let grads = py.detach(|| conv::conv_transpose_backward(grad_out, x, weight, &params, needs(needed)))?;
        grads_to_py(py, grads)
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(conv_forward, m)?)?;
    m.add_function(wrap_pyfunction!(conv_backward, m)?)?;
    m.add_function(wrap_pyfunction!(conv_transpose_forward, m)?)?;
    m.add_function(wrap_pyfunction!(conv_transpose_backward, m)?)?;
    Ok(())
}
