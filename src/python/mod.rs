//! The thin PyO3 layer: borrow NumPy arrays, release the GIL, call the core, wrap
//! the result. Argument normalisation (ints to tuples, "same" to pads, unbatched
//! input) lives in `python/ferroconv/functional.py`; every value check lives in the
//! core, whose errors become `ValueError` / `TypeError` / `MemoryError` here.

mod conv;
mod info;
mod pool;

use crate::element::Element;
use crate::error::Error;
use numpy::{PyArrayDescrMethods, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        match err {
            Error::Value(msg) => PyValueError::new_err(msg),
            Error::Type(msg) => PyTypeError::new_err(msg),
            Error::Memory(msg) => PyMemoryError::new_err(msg),
        }
    }
}

/// The element types arrays can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DType {
    F32,
    F64,
}

/// The dtype of `obj`, which must be a float32 or float64 ndarray in native byte order.
pub(crate) fn float_dtype(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<DType> {
    let array = obj.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be a numpy.ndarray, got {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let dtype = array.dtype();
    let py = obj.py();
    if dtype.is_equiv_to(&numpy::dtype::<f32>(py)) {
        Ok(DType::F32)
    } else if dtype.is_equiv_to(&numpy::dtype::<f64>(py)) {
        Ok(DType::F64)
    } else {
        Err(PyTypeError::new_err(format!(
            "{name} must be a float32 or float64 array in native byte order, got dtype {}",
            dtype.str().map(|s| s.to_string()).unwrap_or_default()
        )))
    }
}

/// Borrow `obj` as an array of `T`, or a `TypeError` naming it.
pub(crate) fn borrow<'py, T: Element + numpy::Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    obj.extract::<PyReadonlyArrayDyn<'py, T>>().map_err(|_| {
        let got = obj
            .cast::<PyUntypedArray>()
            .ok()
            .and_then(|a| a.dtype().str().ok().map(|s| s.to_string()))
            .unwrap_or_else(|| "a non-array".to_string());
        PyTypeError::new_err(format!(
            "{name} has dtype {got} but {} was expected (all arrays of one call share the dtype of x)",
            T::NAME
        ))
    })
}

/// Hand an owned array to NumPy, refusing shapes NumPy cannot represent (their byte
/// size, counting empty axes as 1, must fit an `isize`) with a `ValueError` instead of
/// the null array NumPy would return.
pub(crate) fn to_numpy<'py, T: numpy::Element, D: ndarray::Dimension>(
    py: Python<'py>,
    array: ndarray::Array<T, D>,
) -> PyResult<Bound<'py, PyAny>> {
    let bytes = array
        .shape()
        .iter()
        .try_fold(std::mem::size_of::<T>(), |acc, &d| {
            acc.checked_mul(d.max(1))
        });
    match bytes {
        Some(bytes) if isize::try_from(bytes).is_ok() => {
            Ok(numpy::PyArray::from_owned_array(py, array).into_any())
        }
        _ => Err(PyValueError::new_err(format!(
            "the result would have shape {}, too large for a NumPy array",
            crate::geometry::fmt_shape(array.shape())
        ))),
    }
}

/// `a` as a 5-D view (the Python layer always passes five axes).
pub(crate) fn view5<'a, T: numpy::Element>(
    a: &'a PyReadonlyArrayDyn<'_, T>,
    name: &str,
) -> PyResult<ndarray::ArrayView5<'a, T>> {
    a.as_array()
        .into_dimensionality::<ndarray::Ix5>()
        .map_err(|_| {
            PyValueError::new_err(format!(
                "{name} must have 5 dimensions here, got {}",
                a.ndim()
            ))
        })
}

/// Run `$body` with `$t` bound to `f32` or `f64` according to the dtype of `$x`.
macro_rules! with_float_type {
    ($x:expr, $name:expr, $t:ident => $body:expr) => {
        match $crate::python::float_dtype($x, $name)? {
            $crate::python::DType::F32 => {
                type $t = f32;
                $body
            }
            $crate::python::DType::F64 => {
                type $t = f64;
                $body
            }
        }
    };
}
pub(crate) use with_float_type;

#[pymodule]
fn _ferroconv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    conv::register(m)?;
    info::register(m)?;
    pool::register(m)?;
    Ok(())
}
